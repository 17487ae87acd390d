/* journal.c - the event journal on top of the writer (see journal.h). */
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "writer.h"

static const char SQL_APPEND[] =
    "INSERT OR IGNORE INTO events (event_id, pipeline, source, payload, received_at, state,"
    " attempts, finished_at, error, node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " sluice_node())";
static const char SQL_DUPLICATE[] =
    "UPDATE events SET duplicates = duplicates + 1 WHERE pipeline = ?2 AND event_id = ?1";
static const char SQL_FINISH[] =
    "UPDATE events SET state = ?2, attempts = attempts + ?3, finished_at = ?4, error = ?5"
    " WHERE id = ?1";
static const char SQL_FINISH_BY_KEY[] =
    "UPDATE events SET state = ?2, attempts = attempts + ?3, finished_at = ?4, error = ?5"
    " WHERE pipeline = ?6 AND event_id = ?7";

struct finish_op;

struct append_op {
    struct wop base;
    const char *pipeline, *event_id, *source, *payload; /* copies, after the op */
    char received_at[32];
    journal_appended_fn cb;
    void *arg;
    bool inserted;
    int64_t id;
    const struct finish_op *outcome; /* folded in: the row is written finished */
};

struct finish_op {
    struct wop base;
    int64_t id;                 /* 0: by (pipeline, event_id) */
    char state[8];
    int attempts;
    char finished_at[32];
    char *error;
    char *pipeline, *event_id;
    void (*finished)(void *arg);
    void *finished_arg;
    struct loop *loop;
    struct loop_task *settled;
};

static int append_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct append_op *a = (struct append_op *)op;
    const struct finish_op *f = a->outcome;
    sqlite3_stmt *st = writer_stmt(w, SQL_APPEND, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, a->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->pipeline, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->received_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, f ? f->state : "pending", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, f ? f->attempts : 0);
    if (f)
        sqlite3_bind_text(st, 8, f->finished_at, -1, SQLITE_STATIC);
    if (f && f->error)
        sqlite3_bind_text(st, 9, f->error, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "journaling event %s: %s", a->event_id, sqlite3_errmsg(writer_db(w)));
    a->inserted = sqlite3_changes(writer_db(w)) == 1;
    a->id = a->inserted ? sqlite3_last_insert_rowid(writer_db(w)) : 0;
    if (a->inserted)
        return 0;
    /* seen before: count it, so a retrying producer shows up in the journal */
    sqlite3_stmt *dup = writer_stmt(w, SQL_DUPLICATE, e);
    if (!dup)
        return -1;
    sqlite3_bind_text(dup, 1, a->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(dup, 2, a->pipeline, -1, SQLITE_STATIC);
    if (sqlite3_step(dup) != SQLITE_DONE)
        return err_set(e, "counting a duplicate of %s: %s", a->event_id,
                       sqlite3_errmsg(writer_db(w)));
    return 0;
}

static void append_done(struct wop *op, int rc, const struct err *e)
{
    struct append_op *a = (struct append_op *)op;
    a->cb(a->arg, rc, a->inserted, a->id, e);
    free(a);
}

int journal_append(struct writer *w, const char *pipeline, const char *event_id,
                   const char *source, const char *payload, journal_appended_fn cb, void *arg,
                   struct writer_ticket *ticket, struct err *e)
{
    const char *in[4] = {pipeline, event_id, source, payload}, *out[4];
    struct append_op *a = writer_op_alloc(sizeof *a, in, out, 4);
    if (!a)
        return err_set(e, "out of memory");
    a->pipeline = out[0];
    a->event_id = out[1];
    a->source = out[2];
    a->payload = out[3];
    clock_iso8601(clock_wall_ms(), a->received_at);
    a->base.apply = append_apply;
    a->base.done = append_done;
    a->cb = cb;
    a->arg = arg;
    a->base.hold = ticket != NULL;
    struct writer_ticket t = writer_submit(w, &a->base);
    if (ticket)
        *ticket = t;
    return 0;
}

static int finish_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct finish_op *f = (struct finish_op *)op;
    sqlite3_stmt *st = writer_stmt(w, f->id ? SQL_FINISH : SQL_FINISH_BY_KEY, e);
    if (!st)
        return -1;
    if (f->id) {
        sqlite3_bind_int64(st, 1, f->id);
    } else {
        sqlite3_bind_text(st, 6, f->pipeline, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, f->event_id, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 2, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, f->attempts);
    sqlite3_bind_text(st, 4, f->finished_at, -1, SQLITE_STATIC);
    if (f->error)
        sqlite3_bind_text(st, 5, f->error, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "finishing event %s: %s", f->id ? "" : f->event_id,
                       sqlite3_errmsg(writer_db(w)));
    return 0;
}

/* The append is in the same transaction and not written yet: write the row
 * finished in the first place (one row write instead of two). */
static bool finish_fold(struct wop *op, struct wop *target)
{
    struct append_op *a = (struct append_op *)target;
    a->outcome = (const struct finish_op *)op; /* freed after a's apply */
    return true;
}

static void finish_done(struct wop *op, int rc, const struct err *e)
{
    struct finish_op *f = (struct finish_op *)op;
    (void)rc;
    (void)e; /* a lost update leaves the event pending: it runs again at start */
    if (f->finished)
        f->finished(f->finished_arg);
    if (f->settled)
        loop_post(f->loop, f->settled);
    free(f->error);
    free(f->pipeline);
    free(f->event_id);
    free(f);
}

int journal_finish(struct writer *w, const struct journal_ref *ref, const char *state,
                   int attempts, const char *error, struct err *e)
{
    struct finish_op *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, "out of memory");
    f->id = ref->id;
    snprintf(f->state, sizeof f->state, "%s", state);
    f->attempts = attempts;
    clock_iso8601(clock_wall_ms(), f->finished_at);
    bool oom = error && !(f->error = strdup(error));
    if (!ref->id)
        oom = oom || !(f->pipeline = strdup(ref->pipeline)) ||
              !(f->event_id = strdup(ref->event_id));
    if (oom) {
        finish_done(&f->base, -1, NULL);
        if (ref->finished)
            ref->finished(ref->finished_arg);
        if (ref->settled)
            loop_post(ref->loop, ref->settled);
        return err_set(e, "out of memory");
    }
    f->finished = ref->finished;
    f->finished_arg = ref->finished_arg;
    f->loop = ref->loop;
    f->settled = ref->settled;
    f->base.apply = finish_apply;
    f->base.done = finish_done;
    if (!ref->id) {
        f->base.fold = finish_fold;
        f->base.target = ref->append;
    }
    writer_submit(w, &f->base);
    return 0;
}

struct receipt_arg {
    struct loop *loop;
    struct journal_receipt *receipt;
};

/* Writer thread: fill the receipt and post it; nothing else. */
static void post_receipt(void *arg, int rc, bool inserted, int64_t id, const struct err *e)
{
    struct receipt_arg *ra = arg;
    struct journal_receipt *r = ra->receipt;
    r->rc = rc;
    r->inserted = inserted;
    r->id = id;
    snprintf(r->error, sizeof r->error, "%.255s", rc < 0 && e ? e->msg : "");
    struct loop *l = ra->loop;
    free(ra);
    loop_post(l, &r->task);
}

int journal_append_post(struct writer *w, struct loop *l, const char *pipeline,
                        const char *event_id, const char *source, const char *payload,
                        struct journal_receipt *receipt, struct writer_ticket *ticket,
                        struct err *e)
{
    struct receipt_arg *ra = malloc(sizeof *ra);
    if (!ra)
        return err_set(e, "out of memory");
    *ra = (struct receipt_arg){.loop = l, .receipt = receipt};
    if (journal_append(w, pipeline, event_id, source, payload, post_receipt, ra, ticket, e) < 0) {
        free(ra);
        return -1;
    }
    return 0;
}

static const char SQL_REPLAY[] =
    "INSERT INTO events (event_id, pipeline, source, payload, received_at, replay_of, node)"
    " SELECT e.event_id || '#r' || e.id, e.pipeline, 'replay:' || e.source, e.payload, ?4, e.id,"
    " sluice_node()"
    JOURNAL_DEAD_MATCHING;

void journal_bind_filter(sqlite3_stmt *st, const struct journal_replay_filter *f)
{
    if (f->pipeline)
        sqlite3_bind_text(st, 1, f->pipeline, -1, SQLITE_STATIC);
    if (f->event_id)
        sqlite3_bind_text(st, 2, f->event_id, -1, SQLITE_STATIC);
    if (f->since)
        sqlite3_bind_text(st, 3, f->since, -1, SQLITE_STATIC);
}

static int replay_step(sqlite3 *db, sqlite3_stmt *st, const struct journal_replay_filter *f,
                       struct err *e)
{
    char now[32];
    clock_iso8601(clock_wall_ms(), now);
    journal_bind_filter(st, f);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(db)
                                             : err_set(e, "replaying: %s", sqlite3_errmsg(db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int journal_replay_now(sqlite3 *db, const struct journal_replay_filter *f, struct err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, SQL_REPLAY, -1, &st, NULL) != SQLITE_OK)
        return err_set(e, "replaying: %s", sqlite3_errmsg(db));
    int rc = replay_step(db, st, f, e);
    sqlite3_finalize(st);
    return rc;
}

struct replay_op {
    struct wop base;
    struct journal_replay_filter f; /* copies, after the op */
    struct loop *loop;
    struct journal_receipt *receipt;
    int changed;
};

static int replay_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct replay_op *r = (struct replay_op *)op;
    sqlite3_stmt *st = writer_stmt(w, SQL_REPLAY, e);
    if (!st)
        return -1;
    r->changed = replay_step(writer_db(w), st, &r->f, e);
    return r->changed < 0 ? -1 : 0;
}

static void replay_done(struct wop *op, int rc, const struct err *e)
{
    struct replay_op *r = (struct replay_op *)op;
    struct journal_receipt *rcpt = r->receipt;
    rcpt->rc = rc;
    rcpt->id = rc < 0 ? 0 : r->changed;
    snprintf(rcpt->error, sizeof rcpt->error, "%.255s", rc < 0 && e ? e->msg : "");
    struct loop *l = r->loop;
    free(r);
    loop_post(l, &rcpt->task);
}

int journal_replay(struct writer *w, struct loop *l, const struct journal_replay_filter *f,
                   struct journal_receipt *receipt, struct err *e)
{
    const char *in[3] = {f->pipeline, f->event_id, f->since}, *out[3];
    struct replay_op *r = writer_op_alloc(sizeof *r, in, out, 3);
    if (!r)
        return err_set(e, "out of memory");
    r->f = (struct journal_replay_filter){.pipeline = out[0], .event_id = out[1],
                                          .since = out[2]};
    r->loop = l;
    r->receipt = receipt;
    r->base.apply = replay_apply;
    r->base.done = replay_done;
    writer_submit(w, &r->base);
    return 0;
}

struct barrier_op {
    struct writer_barrier barrier;
    struct loop *loop;
    struct loop_task *task;
};

static void barrier_passed(struct writer_barrier *barrier)
{
    struct barrier_op *b = (struct barrier_op *)barrier;
    loop_post(b->loop, b->task);
    free(b);
}

int journal_barrier(struct writer *w, struct loop *l, struct loop_task *task, struct err *e)
{
    struct barrier_op *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, "out of memory");
    b->loop = l;
    b->task = task;
    writer_barrier_post(w, &b->barrier, barrier_passed);
    return 0;
}

int journal_load_pending(sqlite3 *db, const char *pipeline, int64_t after, int limit,
                         void (*cb)(void *arg, const struct journal_entry *entry), void *arg,
                         struct err *e)
{
    static const char sql[] =
        "SELECT id, event_id, source, payload, attempts,"
        " CAST((julianday(received_at) - 2440587.5) * 86400000 AS INTEGER) FROM events"
        " WHERE state = 'pending' AND pipeline = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_entry entry = {
            .id = sqlite3_column_int64(st, 0),
            .pipeline = (char *)pipeline,
            .event_id = (char *)sqlite3_column_text(st, 1),
            .source = (char *)sqlite3_column_text(st, 2),
            .payload = (char *)sqlite3_column_text(st, 3),
            .attempts = sqlite3_column_int(st, 4),
            .received_ms = sqlite3_column_int64(st, 5),
        };
        cb(arg, &entry);
        n++;
    }
    if (rc != SQLITE_DONE)
        err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : -1;
}

/* One row (or none) of a query on (pipeline[, event_id]): 1, 0 or -1 with e. */
static int query_row(sqlite3 *db, const char *sql, const char *pipeline, const char *event_id,
                     sqlite3_stmt **st, struct err *e)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(*st, 1, pipeline, -1, SQLITE_STATIC);
    if (event_id)
        sqlite3_bind_text(*st, 2, event_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc == SQLITE_ROW;
    err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
    sqlite3_finalize(*st);
    *st = NULL;
    return -1;
}

int journal_find_pending(sqlite3 *db, const char *pipeline, const char *event_id, int64_t *id,
                         int *attempts, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = query_row(db, "SELECT id, attempts FROM events WHERE pipeline = ?1 AND "
                       "event_id = ?2 AND state = 'pending'", pipeline, event_id, &st, e);
    if (rc == 1) {
        *id = sqlite3_column_int64(st, 0);
        *attempts = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

int journal_last_id(sqlite3 *db, const char *pipeline, int64_t *id, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = query_row(db, "SELECT max(id) FROM events WHERE pipeline = ?1", pipeline, NULL,
                       &st, e);
    *id = rc == 1 ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc < 0 ? -1 : 0;
}

struct journal_probe {
    sqlite3 *db;
    sqlite3_stmt *st;
};

int journal_probe_open(sqlite3 *db, struct journal_probe **out, struct err *e)
{
    struct journal_probe *pr = calloc(1, sizeof *pr);
    if (!pr)
        return err_set(e, "out of memory");
    pr->db = db;
    if (sqlite3_prepare_v3(db, "SELECT 1 FROM events WHERE pipeline = ?1 AND event_id = ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &pr->st, NULL) != SQLITE_OK) {
        err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
        free(pr);
        return -1;
    }
    *out = pr;
    return 0;
}

/* Outside a transaction, with no other statement mid-step, the step begins
 * a read transaction of its own: it sees every commit made before it. */
static bool fresh_snapshot(sqlite3 *db, sqlite3_stmt *self)
{
    if (!sqlite3_get_autocommit(db))
        return false;
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st))
        if (st != self && sqlite3_stmt_busy(st))
            return false;
    return true;
}

bool journal_probe_has(struct journal_probe *pr, const char *pipeline, const char *event_id)
{
    if (!fresh_snapshot(pr->db, pr->st))
        return true;
    sqlite3_bind_text(pr->st, 1, pipeline, -1, SQLITE_STATIC);
    sqlite3_bind_text(pr->st, 2, event_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(pr->st);
    sqlite3_reset(pr->st); /* ends the read transaction */
    sqlite3_clear_bindings(pr->st);
    return rc != SQLITE_DONE;
}

void journal_probe_close(struct journal_probe **pr)
{
    if (!*pr)
        return;
    sqlite3_finalize((*pr)->st);
    free(*pr);
    *pr = NULL;
}

int journal_count_pending(sqlite3 *db, void (*cb)(void *arg, const char *pipeline, int64_t n),
                          void *arg, struct err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT pipeline, count(*) FROM events WHERE state = 'pending' "
                           "GROUP BY pipeline", -1, &st, NULL) != SQLITE_OK)
        return err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : err_set(e, "reading the journal: %s", sqlite3_errmsg(db));
}

#define REJECT_KEEP 4096

static const char SQL_REJECT[] =
    "INSERT INTO rejected (at, source, reason, payload) VALUES (?1, ?2, ?3, ?4)";

struct reject_op {
    struct wop base;
    char at[32];
    char *source, *reason;
    size_t len;
    char payload[];
};

static int reject_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct reject_op *r = (struct reject_op *)op;
    sqlite3_stmt *st = writer_stmt(w, SQL_REJECT, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, r->at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, r->payload, (int)r->len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "recording a rejected message: %s", sqlite3_errmsg(writer_db(w)));
    return 0;
}

static void reject_done(struct wop *op, int rc, const struct err *e)
{
    struct reject_op *r = (struct reject_op *)op;
    (void)rc;
    (void)e;
    free(r->source);
    free(r->reason);
    free(r);
}

int journal_reject(struct writer *w, const char *source, const char *reason, const char *payload,
                   size_t len, struct err *e)
{
    if (!payload)
        len = 0;
    if (len > REJECT_KEEP)
        len = REJECT_KEEP;
    struct reject_op *r = calloc(1, sizeof *r + len);
    if (!r)
        return err_set(e, "out of memory");
    r->source = strdup(source);
    r->reason = strdup(reason);
    if (!r->source || !r->reason) {
        reject_done(&r->base, 0, NULL);
        return err_set(e, "out of memory");
    }
    if (len)
        memcpy(r->payload, payload, len);
    r->len = len;
    clock_iso8601(clock_wall_ms(), r->at);
    r->base.apply = reject_apply;
    r->base.done = reject_done;
    writer_submit(w, &r->base);
    return 0;
}

void journal_entry_release(struct journal_entry *entry)
{
    free(entry->pipeline);
    free(entry->event_id);
    free(entry->source);
    free(entry->payload);
    memset(entry, 0, sizeof *entry);
}
