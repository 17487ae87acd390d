/* cmd_replay.c - `sluice replay`: re-runs dead events. Each dead event gets
 * a new pending journal row (replay_of = the dead row) that the daemon runs
 * like any other; the old row and its invocations stay as they were, linked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "config.h"
#include "db.h"

static const char replay_usage[] =
    "usage: sluice replay [-c FILE] [--pipeline P] [--id EVENT_ID] [--since TIME] [--dry-run]\n"
    "\n"
    "Re-runs dead events: each gets a new pending journal row whose replay_of names the\n"
    "dead one, and its event id gets a #rN suffix. A running daemon is told to pick\n"
    "them up at once; otherwise they run when it starts. An event is replayed once:\n"
    "if the replay dies too, replay that one.\n"
    "  --pipeline P   only events of pipeline P\n"
    "  --id EVENT_ID  only this event id\n"
    "  --since TIME   only events received at or after TIME (ISO-8601, e.g. 2026-11-23T10:00)\n"
    "  --dry-run      list what would be replayed, change nothing\n";

struct replay_opts {
    const char *config, *pipeline, *id, *since;
    int dry_run;
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
        } else if (dst && i + 1 < argc) {
            *dst = argv[++i];
        } else {
            fprintf(stderr, "sluice replay: unexpected \"%s\"\n\n%s", a, replay_usage);
            return 2;
        }
    }
    return -1;
}

#define DEAD_MATCHING                                                                      \
    " FROM events e WHERE e.state = 'dead'"                                                \
    " AND NOT EXISTS (SELECT 1 FROM events r WHERE r.replay_of = e.id)"                    \
    " AND (?1 IS NULL OR e.pipeline = ?1) AND (?2 IS NULL OR e.event_id = ?2)"             \
    " AND (?3 IS NULL OR e.received_at >= ?3)"

static void bind_filters(sqlite3_stmt *st, const struct replay_opts *o)
{
    if (o->pipeline)
        sqlite3_bind_text(st, 1, o->pipeline, -1, SQLITE_STATIC);
    if (o->id)
        sqlite3_bind_text(st, 2, o->id, -1, SQLITE_STATIC);
    if (o->since)
        sqlite3_bind_text(st, 3, o->since, -1, SQLITE_STATIC);
}

static int list(sqlite3 *db, const struct replay_opts *o)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT e.id, e.pipeline, e.event_id, e.error" DEAD_MATCHING
                           " ORDER BY e.id", -1, &st, NULL) != SQLITE_OK)
        return -1;
    bind_filters(st, o);
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

static int insert(sqlite3 *db, const struct replay_opts *o, const char *now)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO events (event_id, pipeline, source, payload, received_at,"
                           " replay_of) SELECT e.event_id || '#r' || e.id, e.pipeline,"
                           " 'replay:' || e.source, e.payload, ?4, e.id" DEAD_MATCHING,
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    bind_filters(st, o);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(db) : -1;
    sqlite3_finalize(st);
    return rc;
}

int cmd_replay(int argc, char **argv)
{
    struct replay_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    struct diag d = {0};
    struct config *cfg = NULL;
    if (config_load(o.config, &cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return 1;
    }
    diag_free(&d);
    sqlite3 *db = NULL;
    struct err e;
    if (db_open(cfg->database, !o.dry_run, &db, &e) < 0) {
        fprintf(stderr, "sluice replay: %s\n", e.msg);
        config_free(&cfg);
        return 1;
    }
    char now[32];
    clock_iso8601(clock_wall_ms(), now);
    int n = list(db, &o);
    if (n > 0 && !o.dry_run)
        n = insert(db, &o, now);
    if (n < 0)
        fprintf(stderr, "sluice replay: %s\n", sqlite3_errmsg(db));
    db_close(&db);
    if (n == 0)
        printf("no dead events match\n");
    else if (n > 0 && o.dry_run)
        printf("%d dead event%s would be replayed\n", n, n == 1 ? "" : "s");
    else if (n > 0 && cli_poke_refill(o.config, 2000) == 0)
        printf("replayed %d dead event%s; the daemon is running them\n", n, n == 1 ? "" : "s");
    else if (n > 0)
        printf("replayed %d dead event%s; no daemon is running: they run when `sluice run` "
               "starts\n", n, n == 1 ? "" : "s");
    config_free(&cfg);
    return n < 0 ? 1 : 0;
}
