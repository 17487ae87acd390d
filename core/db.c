/* db.c - database opening and schema migrations (see db.h).
 *
 * Index choices: invocations are keyed by an integer rowid and indexed on
 * request_id (UUIDv7, time-ordered: appends), started_at (appends) and
 * pipeline+started_at; failures get a partial index so the common 'ok' row
 * pays nothing for it. The journal's pending index is partial too: it only
 * holds the events still to run.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "walbuf.h"

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
    /* version 2: retention (core/retention.c) prunes logs by age, and nulls
     * the replay_of links to a dead event it prunes */
    "CREATE INDEX logs_at ON logs (at);"
    "CREATE INDEX events_replay_of ON events (replay_of) WHERE replay_of IS NOT NULL;",
    /* version 3: scheduled pipelines (source_schedule.c) */
    "CREATE TABLE schedules ("
    "  pipeline TEXT PRIMARY KEY,"
    "  expression TEXT NOT NULL,"
    "  timezone TEXT,"
    "  last_fired_at TEXT,"
    "  next_fire_at TEXT,"
    "  updated_at TEXT NOT NULL);",
    /* version 4: the node that wrote each row (node_name in sluice.json), so
     * a fleet's databases can be read together (sluice logs --db A --db B) */
    "ALTER TABLE events ADD COLUMN node TEXT;"
    "ALTER TABLE invocations ADD COLUMN node TEXT;"
    "ALTER TABLE logs ADD COLUMN node TEXT;",
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

int64_t db_int(sqlite3 *db, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st;
    int64_t v = fallback;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
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

/* Retention gives space back with incremental vacuum, which needs
 * auto_vacuum = INCREMENTAL: a new database gets it before its first table
 * (db_open), an older one is rebuilt once here (VACUUM: a copy of the
 * database, so it takes as long as copying the file). */
static int use_incremental_vacuum(sqlite3 *db, const char *path, struct err *e)
{
    int64_t mode = db_int(db, "PRAGMA auto_vacuum", -1);
    if (mode < 0)
        return err_set(e, "database %s: cannot read PRAGMA auto_vacuum: %s", path,
                       sqlite3_errmsg(db));
    if (mode == 2)
        return 0;
    log_msg(LOG_INFO, "database %s: switching to incremental vacuum (once; the file is "
            "rewritten)", path);
    if (db_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM;", e) < 0) {
        err_prefix(e, "database %s: switching to auto_vacuum = INCREMENTAL", path);
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

/* The node name rows are written with: one per process, like its config. */
static char node_name[65];

void db_set_node(const char *name)
{
    snprintf(node_name, sizeof node_name, "%s", name ? name : "");
}

/* sluice_node(): the writers' SQL names the node through it, so every
 * statement that adds a row says which node wrote it without a bound
 * parameter of its own. */
static void sql_node(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    if (!node_name[0] && gethostname(node_name, sizeof node_name - 1) < 0)
        snprintf(node_name, sizeof node_name, "localhost");
    sqlite3_result_text(ctx, node_name, -1, SQLITE_TRANSIENT);
}

int db_open(const char *path, bool writable, sqlite3 **out, struct err *e)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    /* The database holds event payloads: not world-readable. SQLite gives
     * its -wal and -shm files the database file's mode, so creating that
     * file with an explicit mode is enough (umask() would change it for
     * every thread of the process). */
    int fd = writable ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640) : -1;
    if (fd >= 0)
        close(fd);
    /* a writer's WAL frames go out in one write per commit (walbuf.c) */
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX,
                             writable ? walbuf_vfs_name() : NULL);
    if (rc != SQLITE_OK) {
        err_set(e, "cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    if (writable && sqlite3_create_function(db, "sluice_node", 0, SQLITE_UTF8, NULL, sql_node,
                                            NULL, NULL) != SQLITE_OK) {
        err_set(e, "database %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    const char *pragmas = writable ? "PRAGMA auto_vacuum = INCREMENTAL;" /* before WAL: see above */
                                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                     "PRAGMA foreign_keys = ON;"
                                   : "PRAGMA query_only = ON;";
    if (db_exec(db, pragmas, e) < 0)
        err_prefix(e, "database %s", path);
    else if ((writable ? migrate(db, path, e) == 0 && use_incremental_vacuum(db, path, e) == 0
                       : check_version(db, path, e) == 0)) {
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

int db_file_open(const char *path, struct db_file *f, struct err *e)
{
    struct stat st;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &st) < 0) {
        err_set(e, "cannot open database %s: %s", path, strerror(errno));
        db_file_close(f);
        return -1;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

int db_file_check(const struct db_file *f, const char *path, struct err *e)
{
    struct stat open_st, path_st;
    if (f->fd < 0 || fstat(f->fd, &open_st) < 0)
        return 0; /* nothing to compare */
    if (stat(path, &path_st) == 0) {
        if (path_st.st_dev == f->dev && path_st.st_ino == f->ino)
            return 0;
        return err_set(e, "the database %s was replaced by another file while sluice was "
                       "running (sluice was writing the old one, which nobody can read now)",
                       path);
    }
    if (errno != ENOENT && errno != ENOTDIR)
        return 0; /* cannot tell (permissions): do not guess */
    if (open_st.st_nlink == 0)
        return err_set(e, "the database %s was deleted while sluice was running (the journal "
                       "and logs written since are gone with it)", path);
    return err_set(e, "the database %s was moved away while sluice was running (nothing is "
                   "at that path now)", path);
}

void db_file_close(struct db_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}
