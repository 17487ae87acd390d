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
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define DB_SCHEMA_VERSION 4

/* Open (creating and migrating when writable). Read-only handles never
 * migrate and fail on a database newer than this build understands. */
int db_open(const char *path, bool writable, sqlite3 **out, struct err *e);
/* The name writable connections put in the node column of the rows they
 * add (sluice_node() in SQL); before it is set: the host name. */
void db_set_node(const char *name);
void db_close(sqlite3 **db);

/* Run SQL text (several statements) or fail with a message. */
int db_exec(sqlite3 *db, const char *sql, struct err *e);
/* The first column of sql's first row as an integer (a PRAGMA, a count);
 * fallback when there is no row or the statement fails. */
int64_t db_int(sqlite3 *db, const char *sql, int64_t fallback);

/* The database file as opened, to notice when it is deleted, moved or
 * replaced under a running daemon (SQLite would go on writing the old
 * inode, and nobody would see the journal again). */
struct db_file {
    int fd;
    dev_t dev;
    ino_t ino;
};

int db_file_open(const char *path, struct db_file *f, struct err *e);
/* 0 while path still names the file opened; -1 with what happened. */
int db_file_check(const struct db_file *f, const char *path, struct err *e);
void db_file_close(struct db_file *f);

#endif
