/* db.h - the SQLite database: opening it with the right pragmas, and the
 * schema, versioned with PRAGMA user_version and migrated forward on open.
 *
 * Tables: events (the journal), invocations (one row per handler attempt),
 * logs (handler log lines), schedules (last and next firing of each
 * scheduled pipeline). Views for people at the sqlite3 prompt:
 * failures, pipeline_stats.
 */
#ifndef SLUICE_DB_H
#define SLUICE_DB_H

#include <sqlite3.h>
#include <stdbool.h>

#include "err.h"

#define DB_SCHEMA_VERSION 2

/* Open (creating and migrating when writable). Read-only handles never
 * migrate and fail on a database newer than this build understands. */
int db_open(const char *path, bool writable, sqlite3 **out, struct err *e);
void db_close(sqlite3 **db);

/* Run SQL text (several statements) or fail with a message. */
int db_exec(sqlite3 *db, const char *sql, struct err *e);

#endif
