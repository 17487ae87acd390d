/* db.c - database opening and schema migrations (see db.h).
 *
 * Index choices: invocations are keyed by an integer rowid and indexed on
 * request_id (UUIDv7, time-ordered: appends), started_at (appends) and
 * pipeline+started_at; failures get a partial index so the common 'ok' row
 * pays nothing for it. The journal's pending index is partial too: it only
 * holds the events still to run.
 */
#include "db.h"

#include <stdio.h>
#include <sys/stat.h>

static const char *const migrations[] = {
    /* version 1 */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL,"
    "  pipeline TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done','dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  received_at TEXT NOT NULL,"
    "  finished_at TEXT,"
    "  error TEXT,"
    "  duplicates INTEGER NOT NULL DEFAULT 0,"
    "  replay_of INTEGER REFERENCES events (id),"
    "  UNIQUE (pipeline, event_id));"
    "CREATE INDEX events_pending ON events (pipeline, id) WHERE state = 'pending';"
    "CREATE INDEX events_received ON events (received_at);"
    "CREATE TABLE invocations ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL,"
    "  event_id TEXT,"
    "  pipeline TEXT NOT NULL,"
    "  step TEXT NOT NULL,"
    "  handler TEXT NOT NULL,"
    "  source TEXT,"
    "  attempt INTEGER NOT NULL,"
    "  started_at TEXT NOT NULL,"
    "  duration_ms REAL NOT NULL,"
    "  init_ms REAL,"
    "  status TEXT NOT NULL CHECK (status IN ('ok','error','timeout','crashed')),"
    "  status_code INTEGER,"
    "  error TEXT,"
    "  input_bytes INTEGER NOT NULL,"
    "  output_bytes INTEGER NOT NULL,"
    "  plugin_version TEXT,"
    "  max_memory_kb INTEGER);"
    "CREATE INDEX invocations_request ON invocations (request_id);"
    "CREATE INDEX invocations_started ON invocations (started_at);"
    "CREATE INDEX invocations_pipeline ON invocations (pipeline, started_at);"
    "CREATE INDEX invocations_failed ON invocations (status) WHERE status <> 'ok';"
    "CREATE TABLE logs ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL,"
    "  pipeline TEXT,"
    "  step TEXT,"
    "  at TEXT NOT NULL,"
    "  level TEXT NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX logs_request ON logs (request_id);"
    "CREATE TABLE rejected ("
    "  id INTEGER PRIMARY KEY,"
    "  at TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  payload BLOB);"
    "CREATE INDEX rejected_at ON rejected (at);"
    "CREATE VIEW failures AS"
    "  SELECT started_at, pipeline, step, handler, attempt, status, status_code, error,"
    "         request_id, event_id, source"
    "  FROM invocations INDEXED BY invocations_failed WHERE status <> 'ok' ORDER BY id DESC;"
    "CREATE VIEW pipeline_stats AS"
    "  WITH ranked AS ("
    "    SELECT pipeline, step, status, duration_ms, init_ms, started_at,"
    "           ROW_NUMBER() OVER (PARTITION BY pipeline, step ORDER BY duration_ms) AS rn,"
    "           COUNT(*) OVER (PARTITION BY pipeline, step) AS n"
    "    FROM invocations)"
    "  SELECT pipeline, step, COUNT(*) AS invocations,"
    "         SUM(status <> 'ok') AS errors,"
    "         MIN(CASE WHEN rn >= 0.50 * n THEN duration_ms END) AS p50_ms,"
    "         MIN(CASE WHEN rn >= 0.95 * n THEN duration_ms END) AS p95_ms,"
    "         MIN(CASE WHEN rn >= 0.99 * n THEN duration_ms END) AS p99_ms,"
    "         SUM(init_ms IS NOT NULL) AS cold_starts,"
    "         MAX(started_at) AS last_started_at,"
    "         (SELECT f.error FROM invocations f WHERE f.pipeline = ranked.pipeline"
    "            AND f.step = ranked.step AND f.status <> 'ok' ORDER BY f.id DESC LIMIT 1)"
    "           AS last_error"
    "  FROM ranked GROUP BY pipeline, step;",
    /* version 2: scheduled pipelines (source_schedule.c) */
    "CREATE TABLE schedules ("
    "  pipeline TEXT PRIMARY KEY,"
    "  expression TEXT NOT NULL,"
    "  timezone TEXT,"
    "  last_fired_at TEXT,"
    "  next_fire_at TEXT,"
    "  updated_at TEXT NOT NULL);",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == DB_SCHEMA_VERSION, "DB_SCHEMA_VERSION must count the migrations");

int db_exec(sqlite3 *db, const char *sql, struct err *e)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int user_version(sqlite3 *db, int *out, struct err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return err_set(e, "%s", sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : err_set(e, "%s", sqlite3_errmsg(db));
}

static int migrate(sqlite3 *db, const char *path, struct err *e)
{
    int version;
    if (user_version(db, &version, e) < 0)
        return -1;
    if (version > N_MIGRATIONS)
        return err_set(e, "database %s has schema version %d, this sluice knows up to %d: use a "
                       "newer sluice or another database", path, version, N_MIGRATIONS);
    for (; version < N_MIGRATIONS; version++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", version + 1);
        if (db_exec(db, "BEGIN IMMEDIATE", e) < 0)
            return -1;
        if (db_exec(db, migrations[version], e) < 0 || db_exec(db, bump, e) < 0) {
            err_prefix(e, "migrating %s to schema version %d", path, version + 1);
            db_exec(db, "ROLLBACK", NULL);
            return -1;
        }
        if (db_exec(db, "COMMIT", e) < 0)
            return -1;
    }
    return 0;
}

/* Readers never migrate: they refuse what they do not understand. */
static int check_version(sqlite3 *db, const char *path, struct err *e)
{
    int version;
    if (user_version(db, &version, e) < 0) {
        err_prefix(e, "database %s", path);
        return -1;
    }
    if (version == 0)
        return err_set(e, "%s is not a sluice database yet (start `sluice run` with this config "
                       "once)", path);
    if (version > N_MIGRATIONS)
        return err_set(e, "database %s has schema version %d, this sluice knows up to %d: use a "
                       "newer sluice", path, version, N_MIGRATIONS);
    return 0;
}

int db_open(const char *path, bool writable, sqlite3 **out, struct err *e)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    mode_t old = umask(027); /* the database holds event payloads: not world-readable */
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    umask(old);
    if (rc != SQLITE_OK) {
        err_set(e, "cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    const char *pragmas = writable ? "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                     "PRAGMA foreign_keys = ON;"
                                   : "PRAGMA query_only = ON;";
    if (db_exec(db, pragmas, e) < 0)
        err_prefix(e, "database %s", path);
    else if ((writable ? migrate(db, path, e) : check_version(db, path, e)) == 0) {
        *out = db;
        return 0;
    }
    sqlite3_close(db);
    return -1;
}

void db_close(sqlite3 **db)
{
    if (!*db)
        return;
    sqlite3_close(*db);
    *db = NULL;
}
