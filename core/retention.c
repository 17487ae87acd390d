/* retention.c - age- and size-based pruning through the writer (see
 * retention.h). The operation runs on the writer thread; the loop thread
 * only arms the timer and reads the flags the operation leaves behind. */
#include "retention.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "loop.h"
#include "writer.h"

#define SOON_NS 20000000LL          /* rows remain: next batch after 20 ms */
#define MIN_INTERVAL_NS 200000000LL
#define MAX_INTERVAL_NS 60000000000LL
#define VACUUM_PAGES 512            /* pages given back per operation */
#define DAY_MS 86400000.0

/* Rows older than ?1 (ISO 8601), oldest first, at most ?2. */
static const char SQL_INVOCATIONS[] =
    "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations WHERE started_at < ?1"
    " ORDER BY started_at LIMIT ?2)";
static const char SQL_LOGS[] =
    "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE at < ?1 ORDER BY at LIMIT ?2)";
static const char SQL_REJECTED[] =
    "DELETE FROM rejected WHERE id IN (SELECT id FROM rejected WHERE at < ?1 ORDER BY at"
    " LIMIT ?2)";
/* Events: finished ones, and dead ones that have been replayed, by the done
 * limit (?1); dead ones never replayed only by their own limit (?3). */
static const char SQL_EVENTS[] =
    "SELECT id FROM events e WHERE (received_at < ?1 AND (state = 'done' OR (state = 'dead'"
    " AND EXISTS (SELECT 1 FROM events r WHERE r.replay_of = e.id))))"
    " OR (state = 'dead' AND received_at < ?3) ORDER BY received_at LIMIT ?2";
static const char SQL_UNLINK[] = "UPDATE events SET replay_of = NULL WHERE replay_of = ?1";
static const char SQL_EVENT[] = "DELETE FROM events WHERE id = ?1";

struct retention {
    struct loop *loop;
    struct writer *writer;
    struct config_retention cfg;
    struct loop_timer timer;
    int64_t interval_ns;
    atomic_bool busy;           /* an operation is in the writer's hands */
    atomic_bool more;           /* the last one left rows (or pages) behind */
    atomic_uint_least64_t pruned;
    atomic_bool said_error;
};

struct prune_op {
    struct wop base;
    struct retention *r;
    char cut_inv[32], cut_logs[32], cut_done[32], cut_dead[32], cut_rej[32];
    int deleted;
    bool more;
};

bool retention_wanted(const struct config_retention *c)
{
    return c->invocations_days > 0 || c->logs_days > 0 || c->events_done_days > 0 ||
           c->events_dead_days > 0 || c->rejected_days > 0 || c->max_db_mb > 0;
}

/* The cutoff for a retention of `days` ("" = keep everything; "~" sorts
 * after every timestamp, so everything is older: the size cap). */
static void cutoff(double days, bool over_cap, char out[32])
{
    if (over_cap)
        strcpy(out, "~");
    else if (days <= 0)
        out[0] = '\0';
    else
        clock_iso8601(clock_wall_ms() - (int64_t)(days * DAY_MS), out);
}

/* Bytes the database's live pages take (the file less its free pages). */
static int64_t used_bytes(sqlite3 *db)
{
    return (db_int(db, "PRAGMA page_count", -1) - db_int(db, "PRAGMA freelist_count", -1)) *
           db_int(db, "PRAGMA page_size", -1);
}

/* Run a prepared DELETE ... LIMIT ?2 with cutoff ?1; count what went. */
static int delete_older(struct prune_op *o, struct writer *w, const char *sql, const char *cut,
                        struct err *e)
{
    if (!cut[0])
        return 0;
    sqlite3_stmt *st = writer_stmt(w, sql, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, cut, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, RETENTION_BATCH);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "retention: %s", sqlite3_errmsg(writer_db(w)));
    int n = sqlite3_changes(writer_db(w));
    o->deleted += n;
    o->more = o->more || n == RETENTION_BATCH;
    return 0;
}

/* Events go one by one: a dead event's replays point at it (replay_of), and
 * that link is cut first. */
static int delete_events(struct prune_op *o, struct writer *w, struct err *e)
{
    if (!o->cut_done[0] && !o->cut_dead[0])
        return 0;
    sqlite3_stmt *pick = writer_stmt(w, SQL_EVENTS, e);
    sqlite3_stmt *unlink = pick ? writer_stmt(w, SQL_UNLINK, e) : NULL;
    sqlite3_stmt *del = unlink ? writer_stmt(w, SQL_EVENT, e) : NULL;
    if (!del)
        return -1;
    int64_t ids[RETENTION_BATCH];
    int n = 0;
    sqlite3_bind_text(pick, 1, o->cut_done, -1, SQLITE_STATIC);
    sqlite3_bind_int(pick, 2, RETENTION_BATCH);
    sqlite3_bind_text(pick, 3, o->cut_dead, -1, SQLITE_STATIC);
    while (n < RETENTION_BATCH && sqlite3_step(pick) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(pick, 0);
    sqlite3_reset(pick);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(unlink, 1, ids[i]);
        sqlite3_bind_int64(del, 1, ids[i]);
        int rc = sqlite3_step(unlink) == SQLITE_DONE && sqlite3_step(del) == SQLITE_DONE;
        sqlite3_reset(unlink);
        sqlite3_reset(del);
        if (!rc)
            return err_set(e, "retention: events: %s", sqlite3_errmsg(writer_db(w)));
    }
    o->deleted += n;
    o->more = o->more || n == RETENTION_BATCH;
    return 0;
}

static int prune_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct prune_op *o = (struct prune_op *)op;
    const struct config_retention *c = &o->r->cfg;
    sqlite3 *db = writer_db(w);
    bool over = c->max_db_mb > 0 && used_bytes(db) > (int64_t)(c->max_db_mb * 1048576.0);
    cutoff(c->invocations_days, over, o->cut_inv);
    cutoff(c->logs_days, over, o->cut_logs);
    cutoff(c->events_done_days, over, o->cut_done);
    cutoff(c->events_dead_days, false, o->cut_dead); /* the size cap never takes dead events */
    cutoff(c->rejected_days, over, o->cut_rej);
    if (delete_older(o, w, SQL_INVOCATIONS, o->cut_inv, e) < 0 ||
        delete_older(o, w, SQL_LOGS, o->cut_logs, e) < 0 ||
        delete_older(o, w, SQL_REJECTED, o->cut_rej, e) < 0 || delete_events(o, w, e) < 0)
        return -1;
    char vacuum[64];
    snprintf(vacuum, sizeof vacuum, "PRAGMA incremental_vacuum(%d)", VACUUM_PAGES);
    if (db_int(db, "PRAGMA freelist_count", -1) > 0) {
        char *msg = NULL;
        if (sqlite3_exec(db, vacuum, NULL, NULL, &msg) != SQLITE_OK) {
            err_set(e, "retention: incremental vacuum: %s", msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return -1;
        }
        o->more = o->more || db_int(db, "PRAGMA freelist_count", -1) > 0;
    }
    return 0;
}

/* Writer thread, after the commit. */
static void prune_done(struct wop *op, int rc, const struct err *e)
{
    struct prune_op *o = (struct prune_op *)op;
    struct retention *r = o->r;
    if (rc < 0 && !atomic_exchange(&r->said_error, true))
        log_msg(LOG_ERROR, "%s (retention keeps trying; this is said once)", e->msg);
    if (rc == 0)
        atomic_fetch_add(&r->pruned, (uint64_t)o->deleted);
    atomic_store(&r->more, rc == 0 && o->more);
    atomic_store(&r->busy, false);
    free(o);
}

static void on_timer(struct loop_timer *t)
{
    struct retention *r = (struct retention *)((char *)t - offsetof(struct retention, timer));
    int64_t next = r->interval_ns;
    if (atomic_load(&r->busy)) {
        next = SOON_NS;
    } else {
        if (atomic_load(&r->more))
            next = SOON_NS;
        struct prune_op *o = calloc(1, sizeof *o);
        if (o) {
            o->r = r;
            o->base = (struct wop){.apply = prune_apply, .done = prune_done};
            atomic_store(&r->busy, true);
            writer_submit(r->writer, &o->base);
        }
    }
    loop_timer_arm(r->loop, &r->timer, clock_mono_ns() + next);
}

/* A tenth of the shortest retention, within [MIN, MAX]. */
static int64_t interval_for(const struct config_retention *c)
{
    double days[] = {c->invocations_days, c->logs_days, c->events_done_days, c->events_dead_days,
                     c->rejected_days};
    double shortest = 0;
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++)
        if (days[i] > 0 && (shortest == 0 || days[i] < shortest))
            shortest = days[i];
    double ns = shortest > 0 ? shortest * DAY_MS * 1e6 / 10 : (double)MAX_INTERVAL_NS;
    return ns < MIN_INTERVAL_NS ? MIN_INTERVAL_NS : ns > MAX_INTERVAL_NS ? MAX_INTERVAL_NS
                                                                        : (int64_t)ns;
}

int retention_new(struct loop *l, struct writer *w, const struct config_retention *cfg,
                  struct retention **out, struct err *e)
{
    struct retention *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, "out of memory");
    r->loop = l;
    r->writer = w;
    r->cfg = *cfg;
    r->interval_ns = interval_for(cfg);
    r->timer.fire = on_timer;
    loop_timer_arm(l, &r->timer, clock_mono_ns() + MIN_INTERVAL_NS);
    log_msg(LOG_INFO, "retention: pruning every %.1f s", (double)r->interval_ns / 1e9);
    *out = r;
    return 0;
}

uint64_t retention_pruned(const struct retention *r)
{
    return r ? atomic_load(&r->pruned) : 0;
}

void retention_free(struct retention **rp)
{
    struct retention *r = *rp;
    if (!r)
        return;
    loop_timer_cancel(r->loop, &r->timer);
    if (atomic_load(&r->busy))
        writer_flush(r->writer); /* its done callback touches r */
    free(r);
    *rp = NULL;
}
