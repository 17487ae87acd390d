/* cmd_replay.c - `sluice replay`: re-runs dead events. Each dead event gets
 * a new pending journal row (replay_of = the dead row) that the daemon runs
 * like any other; the old row and its invocations stay as they were, linked. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "journal.h"

static const char replay_usage[] =
    "usage: sluice replay [-c FILE] [--pipeline P] [--id EVENT_ID] [--since TIME] [--dry-run]\n"
    "       sluice replay --db FILE... --dry-run [--pipeline P] [--id EVENT_ID] [--since TIME]\n"
    "\n"
    "Re-runs dead events: each gets a new pending journal row whose replay_of names the\n"
    "dead one, and its event id gets a #rN suffix. A running daemon is told to pick\n"
    "them up at once; otherwise they run when it starts. An event is replayed once:\n"
    "if the replay dies too, replay that one.\n"
    "  --pipeline P   only events of pipeline P\n"
    "  --id EVENT_ID  only this event id\n"
    "  --since TIME   only events received at or after TIME (ISO-8601, e.g. 2026-11-23T10:00)\n"
    "  --dry-run      list what would be replayed, change nothing\n"
    "  --db FILE      with --dry-run: list the dead events of these databases (one per\n"
    "                 node of a fleet); replay them on each node with its own config\n";

#define FLEET_MAX 64

struct replay_opts {
    const char *config, *pipeline, *id, *since;
    int dry_run;
    const char *db[FLEET_MAX];  /* --db: several nodes' databases, listed */
    int n_db;
};

static int parse(int argc, char **argv, struct replay_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = strcmp(a, "--pipeline") == 0 ? &o->pipeline
                           : strcmp(a, "--id") == 0     ? &o->id
                           : strcmp(a, "--since") == 0  ? &o->since
                           : (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) ? &o->config
                                                                                  : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(replay_usage, stdout);
            return 0;
        } else if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc && o->n_db < FLEET_MAX) {
            o->db[o->n_db++] = argv[++i];
        } else if (dst && i + 1 < argc) {
            *dst = argv[++i];
        } else {
            fprintf(stderr, "sluice replay: unexpected \"%s\"\n\n%s", a, replay_usage);
            return 2;
        }
    }
    if (o->n_db && !o->dry_run) {
        fprintf(stderr, "sluice replay: --db lists (with --dry-run); a replay writes to a "
                "node's own database: run `sluice replay -c CONFIG` on that node\n");
        return 2;
    }
    return -1;
}

static struct journal_replay_filter filter_of(const struct replay_opts *o)
{
    return (struct journal_replay_filter){.pipeline = o->pipeline, .event_id = o->id,
                                          .since = o->since};
}

static int list(sqlite3 *db, const struct replay_opts *o)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT e.id, e.pipeline, e.event_id, e.error"
                           JOURNAL_DEAD_MATCHING " ORDER BY e.id", -1, &st, NULL) != SQLITE_OK)
        return -1;
    struct journal_replay_filter f = filter_of(o);
    journal_bind_filter(st, &f);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n++ < 50)
            printf("  #%lld %s %s: %s\n", sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1),
                   sqlite3_column_text(st, 2),
                   sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
    }
    if (n > 50)
        printf("  ... and %d more\n", n - 50);
    sqlite3_finalize(st);
    return n;
}

/* The running daemon writes the replays through its own writer; only
 * when none runs is the database opened for writing here. Returns how
 * many were replayed, or -1; *by_daemon tells which happened. */
static int replay(const struct config *cfg, const struct replay_opts *o, bool *by_daemon)
{
    cJSON *filter = cJSON_CreateObject();
    if (o->pipeline)
        cJSON_AddStringToObject(filter, "pipeline", o->pipeline);
    if (o->id)
        cJSON_AddStringToObject(filter, "id", o->id);
    if (o->since)
        cJSON_AddStringToObject(filter, "since", o->since);
    char *text = cJSON_PrintUnformatted(filter), *answer = NULL;
    cJSON_Delete(filter);
    int rc = text ? cli_replay_request(o->config, text, 5000, &answer) : -1;
    free(text);
    *by_daemon = rc >= 0;
    if (rc >= 0) {
        cJSON *a = cJSON_Parse(answer);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "replayed");
        int count = rc == 0 && cJSON_IsNumber(n) ? n->valueint : -1;
        if (count < 0)
            fprintf(stderr, "sluice replay: the daemon refused: %s\n", answer ? answer : "");
        cJSON_Delete(a);
        free(answer);
        return count;
    }
    sqlite3 *db = NULL;
    struct err e;
    struct journal_replay_filter f = filter_of(o);
    int n = db_open(cfg->database, true, &db, &e) < 0 ? -1 : journal_replay_now(db, &f, &e);
    if (n < 0)
        fprintf(stderr, "sluice replay: %s\n", e.msg);
    db_close(&db);
    return n;
}

static int list(sqlite3 *db, const struct replay_opts *o);

/* --db ... --dry-run: each node's dead events, node by node (ids are per
 * database, so each is asked on its own). */
static int list_fleet(const struct replay_opts *o)
{
    int total = 0;
    for (int i = 0; i < o->n_db; i++) {
        sqlite3 *db = NULL;
        struct err e;
        printf("%s:\n", o->db[i]);
        int n = db_open(o->db[i], false, &db, &e) < 0 ? -1 : list(db, o);
        if (n < 0)
            fprintf(stderr, "sluice replay: %s: %s\n", o->db[i], db ? sqlite3_errmsg(db) : e.msg);
        db_close(&db);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%d dead event%s would be replayed over %d databases\n", total,
           total == 1 ? "" : "s", o->n_db);
    return 0;
}

int cmd_replay(int argc, char **argv)
{
    struct replay_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.n_db)
        return list_fleet(&o);
    struct diag d = {0};
    struct config *cfg = NULL;
    if (config_load(o.config, &cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return 1;
    }
    diag_free(&d);
    db_set_node(cfg->node_name);
    sqlite3 *db = NULL;
    struct err e;
    if (db_open(cfg->database, false, &db, &e) < 0) { /* read-only: no migration here */
        fprintf(stderr, "sluice replay: %s\n", e.msg);
        config_free(&cfg);
        return 1;
    }
    int n = list(db, &o);
    if (n < 0)
        fprintf(stderr, "sluice replay: %s\n", sqlite3_errmsg(db));
    db_close(&db);
    bool by_daemon = false;
    if (n > 0 && !o.dry_run)
        n = replay(cfg, &o, &by_daemon);
    if (n == 0)
        printf("no dead events match\n");
    else if (n > 0 && o.dry_run)
        printf("%d dead event%s would be replayed\n", n, n == 1 ? "" : "s");
    else if (n > 0 && by_daemon)
        printf("replayed %d dead event%s; the daemon is running them\n", n, n == 1 ? "" : "s");
    else if (n > 0)
        printf("replayed %d dead event%s; no daemon is running: they run when `sluice run` "
               "starts\n", n, n == 1 ? "" : "s");
    config_free(&cfg);
    return n < 0 ? 1 : 0;
}
