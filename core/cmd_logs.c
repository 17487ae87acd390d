/* cmd_logs.c - `sluice logs` and `sluice stats`: read the database the
 * daemon writes (read-only, so they are safe while it runs), or several
 * nodes' databases at once (--db, ATTACHed). `logs --follow`
 * polls for rows past the last one it printed, the way `journalctl -f`
 * tails, until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "config.h"
#include "db.h"

static const char logs_usage[] =
    "usage: sluice logs [-c FILE | --db FILE...] [--pipeline P] [--failed] [--limit N]\n"
    "                   [--follow] [--json]\n"
    "\n"
    "Recent invocations, oldest first, one line each: start time, pipeline/step,\n"
    "attempt, status, duration, status code, request id, and the source or error.\n"
    "  --pipeline P   only pipeline P\n"
    "  --failed       only attempts whose status is not ok\n"
    "  --limit N      the last N invocations (default 20)\n"
    "  --follow, -f   then keep printing new invocations as they land (Ctrl-C ends)\n"
    "  --json         one JSON object per line (for scripts and jq)\n"
    "  --db FILE      read this database instead of the config's; give it once per node\n"
    "                 (--db a.db --db b.db) to see a fleet: rows say which node wrote them\n";

static const char stats_usage[] =
    "usage: sluice stats [-c FILE | --db FILE...]\n"
    "\n"
    "Per pipeline and step: invocations, errors, p50/p95/p99 duration in ms, cold\n"
    "starts, the time of the last run and the last error (the pipeline_stats view);\n"
    "then each scheduled pipeline's schedule, last and next firing (the schedules table).\n"
    "  --db FILE      read this database instead; several --db: the whole fleet's\n"
    "                 invocations counted together\n";

/* Load the config and open its database read-only. */
static int open_db(const char *config, sqlite3 **db)
{
    struct diag d = {0};
    struct config *cfg = NULL;
    if (config_load(config, &cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return -1;
    }
    diag_free(&d);
    struct err e;
    int rc = db_open(cfg->database, false, db, &e);
    if (rc < 0)
        fprintf(stderr, "sluice: %s\n(has `sluice run` been started with this config?)\n", e.msg);
    config_free(&cfg);
    return rc;
}

#define FLEET_MAX 64

/* The databases --db names (none: the config's). */
struct fleet {
    const char *db[FLEET_MAX];
    int n;
};

/* Take "--db FILE" at argv[*i]; returns 1 if taken, -1 on a mistake. */
static int fleet_arg(struct fleet *f, int argc, char **argv, int *i, const char *cmd)
{
    if (strcmp(argv[*i], "--db") != 0)
        return 0;
    if (*i + 1 >= argc || f->n == FLEET_MAX) {
        fprintf(stderr, "sluice %s: --db needs a database file (at most %d)\n", cmd, FLEET_MAX);
        return -1;
    }
    f->db[f->n++] = argv[++*i];
    return 1;
}

/* The columns of main's table other than node, comma-separated (sqlite3_free). */
static char *columns_but_node(sqlite3 *db, const char *table)
{
    sqlite3_stmt *st;
    char *cols = NULL;
    if (sqlite3_prepare_v2(db, "SELECT group_concat('\"' || replace(name, '\"', '\"\"') || '\"',"
                           " ', ') FROM pragma_table_info(?1, 'main') WHERE name <> 'node'",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        cols = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return cols;
}

/* What a database's rows say their node is: the node column (schema 4 on),
 * or, for rows written before it, the file as given. */
static char *node_of(sqlite3 *db, const char *schema, const char *table, const char *file)
{
    sqlite3_stmt *st;
    bool has = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1, ?2) WHERE name = 'node'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, schema, -1, SQLITE_STATIC);
        has = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return has ? sqlite3_mprintf("coalesce(node, %Q)", file) : sqlite3_mprintf("%Q", file);
}

/* One table over every node: SELECT its columns and the node from each. */
static char *fleet_view(sqlite3 *db, const struct fleet *f, const char *table)
{
    char *cols = columns_but_node(db, table);
    char *sql = cols ? sqlite3_mprintf("CREATE TEMP VIEW %s AS ", table) : NULL;
    for (int i = 0; sql && i < f->n; i++) {
        char schema[32];
        snprintf(schema, sizeof schema, i == 0 ? "main" : "node%d", i);
        char *node = node_of(db, schema, table, f->db[i]);
        char *more = node ? sqlite3_mprintf("%s%sSELECT %s, %s AS node FROM %s.%s", sql,
                                            i ? " UNION ALL " : "", cols, node, schema, table)
                          : NULL;
        sqlite3_free(node);
        sqlite3_free(sql);
        sql = more;
    }
    sqlite3_free(cols);
    return sql;
}

/* Several databases as one: the others ATTACHed to the first, and TEMP
 * views (searched before main's tables) over all of them: invocations and
 * events with their `node` (the node_name that wrote them, or the file as
 * given for rows from before there was one), and pipeline_stats made from
 * main's own definition, so it counts the whole fleet. */
static int fleet_views(sqlite3 *db, const struct fleet *f)
{
    static const char *const tables[] = {"invocations", "events"};
    if (sqlite3_exec(db, "PRAGMA query_only = OFF", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    for (int i = 1; i < f->n; i++) {
        char *sql = sqlite3_mprintf("ATTACH DATABASE %Q AS node%d", f->db[i], i);
        int rc = sql ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
        sqlite3_free(sql);
        if (rc != SQLITE_OK)
            return -1;
    }
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
        char *sql = fleet_view(db, f, tables[t]);
        int rc = sql ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
        sqlite3_free(sql);
        if (rc != SQLITE_OK)
            return -1;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT replace(sql, 'CREATE VIEW', 'CREATE TEMP VIEW')"
                                " FROM main.sqlite_master WHERE type = 'view' AND"
                                " name = 'pipeline_stats'", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        rc = sqlite3_exec(db, (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return -1;
    return sqlite3_exec(db, "PRAGMA query_only = ON", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The config's database, or the fleet's. */
static int open_fleet(const char *config, const struct fleet *f, sqlite3 **db)
{
    if (f->n == 0)
        return open_db(config, db);
    struct err e;
    if (db_open(f->db[0], false, db, &e) < 0) {
        fprintf(stderr, "sluice: %s\n", e.msg);
        return -1;
    }
    if (f->n > 1 && fleet_views(*db, f) < 0) {
        fprintf(stderr, "sluice: reading %d databases together: %s (are they all sluice "
                "databases of the same version?)\n", f->n, sqlite3_errmsg(*db));
        db_close(db);
        return -1;
    }
    return 0;
}

struct logs_opts {
    struct fleet fleet;
    const char *pipeline;
    int failed;
    int limit;
    int follow;
    int json;
};

#define FOLLOW_POLL_NS 200000000L

static int parse_logs(int argc, char **argv, int i, struct logs_opts *o)
{
    for (; i < argc; i++) {
        int took = fleet_arg(&o->fleet, argc, argv, &i, "logs");
        if (took < 0)
            return -1;
        if (took) {
            continue;
        } else if (strcmp(argv[i], "--failed") == 0) {
            o->failed = 1;
        } else if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
            o->follow = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--pipeline") == 0 && i + 1 < argc) {
            o->pipeline = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 1000000) {
                fprintf(stderr, "sluice logs: --limit wants a number from 1 to 1000000, not "
                        "\"%s\"\n", argv[i]);
                return -1;
            }
            o->limit = (int)n;
        } else if (strcmp(argv[i], "--pipeline") == 0 || strcmp(argv[i], "--limit") == 0) {
            fprintf(stderr, "sluice logs: %s needs a value\n\n%s", argv[i], logs_usage);
            return -1;
        } else {
            fprintf(stderr, "sluice logs: unknown option \"%s\"\n\n%s", argv[i], logs_usage);
            return -1;
        }
    }
    return 0;
}

/* Columns of the logs query, in order. */
enum { C_STARTED, C_PIPELINE, C_STEP, C_ATTEMPT, C_STATUS, C_DURATION, C_CODE, C_REQUEST,
       C_ERROR, C_SOURCE, C_ID, C_EVENT, C_HANDLER, C_INIT, C_NODE, C_N };

static void print_row(sqlite3_stmt *st)
{
    const char *error = (const char *)sqlite3_column_text(st, C_ERROR);
    const char *source = (const char *)sqlite3_column_text(st, C_SOURCE);
    char where[160];
    snprintf(where, sizeof where, "%s/%s", sqlite3_column_text(st, C_PIPELINE),
             sqlite3_column_text(st, C_STEP));
    char code[16] = "-";
    const char *node = (const char *)sqlite3_column_text(st, C_NODE);
    if (node)
        printf("%s  ", node);
    if (sqlite3_column_type(st, C_CODE) != SQLITE_NULL)
        snprintf(code, sizeof code, "%d", sqlite3_column_int(st, C_CODE));
    printf("%s  %-32s #%d %-7s %9.2fms %4s  %s  %s\n", sqlite3_column_text(st, C_STARTED), where,
           sqlite3_column_int(st, C_ATTEMPT), sqlite3_column_text(st, C_STATUS),
           sqlite3_column_double(st, C_DURATION), code, sqlite3_column_text(st, C_REQUEST),
           error ? error : source ? source : "");
}

/* One JSON object per row: the column names of the invocations table. */
static void print_json(sqlite3_stmt *st)
{
    static const char *const names[C_N] = {
        "started_at", "pipeline", "step", "attempt", "status", "duration_ms", "status_code",
        "request_id", "error", "source", "id", "event_id", "handler", "init_ms", "node"};
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < C_N; c++) {
        int type = sqlite3_column_type(st, c);
        if (c == C_NODE && type == SQLITE_NULL)
            continue; /* one database */
        if (type == SQLITE_NULL)
            cJSON_AddNullToObject(o, names[c]);
        else if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
            cJSON_AddNumberToObject(o, names[c], sqlite3_column_double(st, c));
        else
            cJSON_AddStringToObject(o, names[c], (const char *)sqlite3_column_text(st, c));
    }
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        puts(text);
    free(text);
    cJSON_Delete(o);
}

/* The last `limit` rows after id `after`, oldest first; printed, and the
 * highest id seen left in *after. Returns 0 or -1 (message printed). */
static int print_rows(sqlite3 *db, const struct logs_opts *o, sqlite3_int64 *after)
{
    /* a fleet's ids are per database: its rows go by start time */
    bool fleet = o->fleet.n > 1;
    char sql[600];
    snprintf(sql, sizeof sql,
        "SELECT * FROM (SELECT started_at, pipeline, step, attempt, status, duration_ms,"
        " status_code, request_id, error, source, id, event_id, handler, init_ms, %s FROM"
        " invocations WHERE (?1 IS NULL OR pipeline = ?1) AND (?2 = 0 OR status <> 'ok')"
        " AND id > ?4 ORDER BY %s DESC LIMIT ?3) ORDER BY %s", fleet ? "node" : "NULL",
        fleet ? "started_at DESC, node DESC, id" : "id", fleet ? "started_at, node, id" : "id");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sluice logs: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    if (o->pipeline)
        sqlite3_bind_text(st, 1, o->pipeline, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, o->failed);
    sqlite3_bind_int(st, 3, o->limit);
    sqlite3_bind_int64(st, 4, *after);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        (o->json ? print_json : print_row)(st);
        *after = sqlite3_column_int64(st, C_ID);
    }
    if (rc != SQLITE_DONE)
        fprintf(stderr, "sluice logs: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    fflush(stdout);
    return rc == SQLITE_DONE ? 0 : -1;
}

static volatile sig_atomic_t follow_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    follow_stop = 1;
}

/* Print what lands, a poll every FOLLOW_POLL_NS, until SIGINT or SIGTERM. */
static int follow(sqlite3 *db, struct logs_opts *o, sqlite3_int64 after)
{
    o->limit = 1000000;
    while (!follow_stop) {
        struct timespec ts = {0, FOLLOW_POLL_NS};
        nanosleep(&ts, NULL);
        if (!follow_stop && print_rows(db, o, &after) < 0)
            return -1;
    }
    return 0;
}

int cmd_logs(int argc, char **argv)
{
    const char *config = NULL;
    int help;
    argc = cli_common(argc, argv, logs_usage, &config, &help);
    if (argc < 0)
        return help ? 0 : 2;
    int i = 1;
    struct logs_opts o = {.limit = 20};
    if (parse_logs(argc, argv, i, &o) < 0)
        return 2;
    if (o.follow && o.fleet.n > 1) {
        fprintf(stderr, "sluice logs: --follow reads one database; follow each node's "
                "apart\n");
        return 2;
    }
    if (o.follow) { /* from the start: a signal during the first query ends it cleanly too */
        struct sigaction sa = {.sa_handler = on_stop_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    sqlite3 *db;
    if (open_fleet(config, &o.fleet, &db) < 0)
        return 1;
    sqlite3_int64 after = 0;
    int rc = print_rows(db, &o, &after);
    if (rc == 0 && o.follow)
        rc = follow(db, &o, after);
    db_close(&db);
    return rc == 0 ? 0 : 1;
}

/* The schedules table, if any pipeline has a schedule (a database from
 * before schedules has no such table: nothing to show). */
static int print_schedules(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT pipeline, expression, timezone, last_fired_at,"
                           " next_fire_at FROM schedules ORDER BY pipeline", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == 0)
            printf("\n%-32s %-28s %-26s %s\n", "scheduled pipeline", "schedule", "last firing",
                   "next firing");
        char expr[160];
        const char *tz = (const char *)sqlite3_column_text(st, 2);
        snprintf(expr, sizeof expr, "%s%s%s", sqlite3_column_text(st, 1), tz ? " " : "",
                 tz ? tz : "");
        const char *last = (const char *)sqlite3_column_text(st, 3);
        const char *next = (const char *)sqlite3_column_text(st, 4);
        printf("%-32s %-28s %-26s %s\n", sqlite3_column_text(st, 0), expr, last ? last : "-",
               next ? next : "-");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int cmd_stats(int argc, char **argv)
{
    const char *config = NULL;
    int help;
    argc = cli_common(argc, argv, stats_usage, &config, &help);
    if (argc < 0)
        return help ? 0 : 2;
    struct fleet fleet = {0};
    for (int i = 1; i < argc; i++) {
        int took = fleet_arg(&fleet, argc, argv, &i, "stats");
        if (took < 0)
            return 2;
        if (!took) {
            fprintf(stderr, "sluice stats: unexpected argument \"%s\"\n\n%s", argv[i],
                    stats_usage);
            return 2;
        }
    }
    sqlite3 *db;
    if (open_fleet(config, &fleet, &db) < 0)
        return 1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT pipeline, step, invocations, errors, p50_ms, p95_ms,"
                           " p99_ms, cold_starts, last_started_at, last_error FROM pipeline_stats"
                           " ORDER BY pipeline, step", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sluice stats: %s\n", sqlite3_errmsg(db));
        db_close(&db);
        return 1;
    }
    printf("%-32s %10s %8s %9s %9s %9s %6s  %s\n", "pipeline/step", "count", "errors", "p50_ms",
           "p95_ms", "p99_ms", "cold", "last run");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char where[160];
        snprintf(where, sizeof where, "%s/%s", sqlite3_column_text(st, 0),
                 sqlite3_column_text(st, 1));
        const char *last_error = (const char *)sqlite3_column_text(st, 9);
        printf("%-32s %10lld %8lld %9.2f %9.2f %9.2f %6lld  %s\n", where,
               sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
               sqlite3_column_double(st, 4), sqlite3_column_double(st, 5),
               sqlite3_column_double(st, 6), sqlite3_column_int64(st, 7),
               sqlite3_column_text(st, 8));
        if (last_error)
            printf("    last error: %.200s\n", last_error);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE && print_schedules(db) < 0) {
        fprintf(stderr, "sluice stats: %s\n", sqlite3_errmsg(db));
        rc = SQLITE_ERROR;
    }
    db_close(&db);
    return rc == SQLITE_DONE ? 0 : 1;
}
