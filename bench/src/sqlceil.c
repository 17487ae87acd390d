/* sqlceil - the SQLite ceiling: COUNT rows inserted from C with prepared
 * statements, BATCH rows per transaction, WAL and synchronous=FULL as
 * sluice opens its database (by default), into a database whose schema is copied from a
 * database sluice created (--schema-from), so tables and indexes are
 * exactly sluice's.
 *
 *   --mode inv   one invocations row per event (the ceiling)
 *   --mode full  the journal append (INSERT OR IGNORE INTO events), the
 *                invocations row and the journal finish (UPDATE events):
 *                what sluice wrote per event before run-ahead
 *   --mode merged  the journal row written finished at once, then the
 *                invocations row: what sluice writes when a run's outcome
 *                folds into its append
 *   --drop-index NAME  drop one of the copied indexes first (to price it)
 *   --sync normal   synchronous=NORMAL (durability "process") instead of FULL
 *   --walbuf        write through sluice's WAL writer (core/walbuf.c), as the
 *                   daemon's database writer does
 *   --page-size N, --auto-vacuum  price those settings
 *
 *   sqlceil --db NEW.db --schema-from SLUICE.db --count N [--batch B]
 *           [--mode inv|full|merged] [--drop-index NAME] [--sync normal]
 *           [--walbuf] [--page-size N] [--auto-vacuum]
 */
#include <sqlite3.h>
#include <sys/resource.h>

#include "common.h"
#include "walbuf.h"

static const char SQL_APPEND[] =
    "INSERT OR IGNORE INTO events (event_id, pipeline, source, payload, received_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_APPEND_DONE[] =
    "INSERT OR IGNORE INTO events (event_id, pipeline, source, payload, received_at, state,"
    " attempts, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, 'done', 1, ?5)";
static const char SQL_FINISH[] =
    "UPDATE events SET state = ?2, attempts = attempts + ?3, finished_at = ?4, error = ?5"
    " WHERE id = ?1";
static const char SQL_INVOCATION[] =
    "INSERT INTO invocations (request_id, event_id, pipeline, step, handler, source, attempt,"
    " started_at, duration_ms, init_ms, status, status_code, error, input_bytes, output_bytes,"
    " plugin_version, max_memory_kb) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
    " ?13, ?14, ?15, ?16, ?17)";

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlceil: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlceil: %s: %s\n", sql, msg);
        exit(1);
    }
}

static void copy_schema(sqlite3 *db, const char *from)
{
    sqlite3 *src;
    if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die(src, "opening the schema source");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name "
                           "NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 WHEN "
                           "'index' THEN 1 ELSE 2 END, rowid", -1, &st, NULL) != SQLITE_OK)
        die(src, "reading the schema");
    exec(db, "BEGIN");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        exec(db, (const char *)sqlite3_column_text(st, 0));
        n++;
    }
    exec(db, "COMMIT");
    sqlite3_finalize(st);
    sqlite3_close(src);
    if (n == 0) {
        fprintf(stderr, "sqlceil: no schema in %s\n", from);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL, *from = NULL, *mode = "inv", *drop = NULL, *sync = "FULL";
    long count = 100000, batch = 1000, page_size = 0;
    bool walbuf = false, auto_vacuum = false;
    bool bad = false; /* an option misspelt must not measure something else */
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--walbuf")) walbuf = true;
        else if (!strcmp(argv[i], "--auto-vacuum")) auto_vacuum = true;
        else if (i + 1 == argc) bad = true; /* unknown, or missing its value */
        else if (!strcmp(argv[i], "--sync")) {
            sync = !strcmp(argv[++i], "normal") ? "NORMAL" : !strcmp(argv[i], "full") ? "FULL" : NULL;
            bad = !sync;
        }
        else if (!strcmp(argv[i], "--page-size")) page_size = atol(argv[++i]);
        else if (!strcmp(argv[i], "--db")) path = argv[++i];
        else if (!strcmp(argv[i], "--schema-from")) from = argv[++i];
        else if (!strcmp(argv[i], "--count")) count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch")) batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--mode")) mode = argv[++i];
        else if (!strcmp(argv[i], "--drop-index")) drop = argv[++i];
        else bad = true;
    }
    if (bad || !path || !from) {
        fprintf(stderr, "usage: sqlceil --db NEW --schema-from SLUICE.db --count N [--batch B]\n"
                "  [--mode inv|full|merged] [--drop-index NAME] [--sync normal|full] [--walbuf]\n"
                "  [--page-size N] [--auto-vacuum]\n");
        return 2;
    }
    bool merged = !strcmp(mode, "merged");
    bool full = merged || !strcmp(mode, "full");
    sqlite3 *db;
    unlink(path);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, walbuf ? walbuf_vfs_name() : NULL) != SQLITE_OK)
        die(db, "open");
    if (page_size) { /* both before WAL and the first table */
        char ps[64];
        snprintf(ps, sizeof ps, "PRAGMA page_size = %ld;", page_size);
        exec(db, ps);
    }
    if (auto_vacuum)
        exec(db, "PRAGMA auto_vacuum = INCREMENTAL;");
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;"
             " PRAGMA foreign_keys = ON;", sync);
    exec(db, pragmas);
    copy_schema(db, from);
    if (drop) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP INDEX %s", drop);
        exec(db, sql);
    }
    sqlite3_stmt *ins, *app = NULL, *fin = NULL;
    if (sqlite3_prepare_v3(db, SQL_INVOCATION, -1, SQLITE_PREPARE_PERSISTENT, &ins, NULL) !=
        SQLITE_OK)
        die(db, "prepare");
    const char *append_sql = merged ? SQL_APPEND_DONE : SQL_APPEND;
    if (full && (sqlite3_prepare_v3(db, append_sql, -1, SQLITE_PREPARE_PERSISTENT, &app, NULL) !=
                 SQLITE_OK || sqlite3_prepare_v3(db, SQL_FINISH, -1, SQLITE_PREPARE_PERSISTENT,
                                                 &fin, NULL) != SQLITE_OK))
        die(db, "prepare");
    static const char version[] = "1795429343.449806599-15248-11000465";
    char payload[512], request_id[37], event_id[37], when[32], done_at[32];
    int64_t t0 = now_ns();
    long commits = 0;
    for (long i = 0; i < count; i++) {
        if (i % batch == 0)
            exec(db, "BEGIN");
        uuid7(event_id);
        int plen = full ? bench_payload(payload, sizeof payload, i) : 200;
        int64_t id = 0;
        if (full) {
            iso8601(wall_ns() / 1000000, when);
            sqlite3_reset(app);
            sqlite3_bind_text(app, 1, event_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(app, 2, "bench", -1, SQLITE_STATIC);
            sqlite3_bind_text(app, 3, "zmq:bench.tp", -1, SQLITE_STATIC);
            sqlite3_bind_text(app, 4, payload, plen, SQLITE_STATIC);
            sqlite3_bind_text(app, 5, when, -1, SQLITE_STATIC);
            if (sqlite3_step(app) != SQLITE_DONE)
                die(db, "append");
            id = sqlite3_last_insert_rowid(db);
        }
        uuid7(request_id);
        iso8601(wall_ns() / 1000000, when);
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
        sqlite3_bind_text(ins, 1, request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, event_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, "bench", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, "echo", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, "echo.handler", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, "zmq:bench.tp", -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 7, 1);
        sqlite3_bind_text(ins, 8, when, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 9, 0.0042);
        sqlite3_bind_text(ins, 11, "ok", -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 12, 200);
        sqlite3_bind_int64(ins, 14, plen);
        sqlite3_bind_int64(ins, 15, plen);
        sqlite3_bind_text(ins, 16, version, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        if (full && !merged) {
            iso8601(wall_ns() / 1000000, done_at);
            sqlite3_reset(fin);
            sqlite3_bind_int64(fin, 1, id);
            sqlite3_bind_text(fin, 2, "done", -1, SQLITE_STATIC);
            sqlite3_bind_int(fin, 3, 1);
            sqlite3_bind_text(fin, 4, done_at, -1, SQLITE_STATIC);
            sqlite3_bind_null(fin, 5);
            if (sqlite3_step(fin) != SQLITE_DONE)
                die(db, "finish");
        }
        if (i % batch == batch - 1 || i == count - 1) {
            exec(db, "COMMIT");
            commits++;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    struct rusage ru; /* the whole run's CPU: the schema copy is negligible */
    getrusage(RUSAGE_SELF, &ru);
    double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("mode=%s\ncount=%ld\nbatch=%ld\ncommits=%ld\nsecs=%.3f\nrate=%.0f\n"
           "cpu_per_event_us=%.2f\n", mode, count, batch, commits, secs, count / secs,
           cpu_us / (double)count);
    sqlite3_finalize(ins);
    sqlite3_finalize(app);
    sqlite3_finalize(fin);
    sqlite3_close(db);
    return 0;
}
