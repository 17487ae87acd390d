/* writer.c - the database writer thread and its bounded queue (writer.h). */
#include "writer.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

#define STMT_CACHE 16
#define HOLD_NS 1000000         /* how long a small batch waits for a fold */
#define HOLD_MAX_OPS 64         /* what "small" means */

struct writer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t has_work;
    pthread_cond_t has_room;
    struct wop *head, *tail;
    int queued, max_queued;
    uint64_t next_seq;          /* the seq of the next submitted op (from 1) */
    bool stopping;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[STMT_CACHE];
};

void *writer_op_alloc(size_t head, const char *const *in, const char **out, int n)
{
    size_t total = head;
    for (int i = 0; i < n; i++)
        total += in[i] ? strlen(in[i]) + 1 : 0;
    char *block = malloc(total);
    if (!block)
        return NULL;
    memset(block, 0, head);
    char *at = block + head;
    for (int i = 0; i < n; i++) {
        out[i] = NULL;
        if (!in[i])
            continue;
        size_t len = strlen(in[i]) + 1;
        memcpy(at, in[i], len);
        out[i] = at;
        at += len;
    }
    return block;
}

sqlite3 *writer_db(struct writer *w)
{
    return w->db;
}

sqlite3_stmt *writer_stmt(struct writer *w, const char *sql, struct err *e)
{
    for (int i = 0; i < STMT_CACHE; i++) {
        if (w->stmts[i].sql == sql) {
            sqlite3_reset(w->stmts[i].st);
            sqlite3_clear_bindings(w->stmts[i].st);
            return w->stmts[i].st;
        }
        if (!w->stmts[i].sql) {
            if (sqlite3_prepare_v3(w->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &w->stmts[i].st,
                                   NULL) != SQLITE_OK) {
                err_set(e, "preparing statement: %s", sqlite3_errmsg(w->db));
                return NULL;
            }
            w->stmts[i].sql = sql;
            return w->stmts[i].st;
        }
    }
    err_set(e, "writer statement cache is full (raise STMT_CACHE)");
    return NULL;
}

/* Apply a batch in one transaction; returns the batch's commit status. */
static int run_batch(struct writer *w, struct wop *batch, int *rcs, struct err *errs, int n)
{
    struct err e;
    int i = 0;
    if (db_exec(w->db, "BEGIN", &e) < 0) {
        for (; i < n; i++)
            errs[i] = e;
        return -1;
    }
    for (struct wop *op = batch; op; op = op->next, i++)
        rcs[i] = op->folded ? 0 : op->apply(op, w, &errs[i]);
    if (db_exec(w->db, "COMMIT", &e) < 0) {
        db_exec(w->db, "ROLLBACK", NULL);
        for (i = 0; i < n; i++)
            errs[i] = e;
        return -1;
    }
    return 0;
}

/* Ops whose target is in this batch (and so still alive: ops are freed
 * only after their batch) may merge into it before anything is applied. */
static void fold_batch(struct wop *batch)
{
    uint64_t first = batch->seq;
    for (struct wop *op = batch; op; op = op->next)
        if (op->fold && op->target.seq >= first && op->target.seq < op->seq)
            op->folded = op->fold(op, op->target.op);
}

static void complete_batch(struct writer *w, struct wop *batch, int n)
{
    fold_batch(batch);
    int *rcs = calloc((size_t)n, sizeof *rcs);
    struct err *errs = calloc((size_t)n, sizeof *errs);
    int commit = (rcs && errs) ? run_batch(w, batch, rcs, errs, n) : -1;
    struct err oom;
    err_set(&oom, "database writer: out of memory");
    int i = 0;
    for (struct wop *op = batch, *next; op; op = next, i++) {
        next = op->next;
        if (!rcs || !errs)
            op->done(op, -1, &oom);
        else
            op->done(op, commit < 0 ? -1 : rcs[i], &errs[i]);
    }
    free(rcs);
    free(errs);
}

/* Lock held: move what is queued to the end of the batch (tail). Ops that
 * fold into a held op of the batch release it. */
static struct wop *take_queued(struct writer *w, struct wop *batch, struct wop *tail, int *n)
{
    struct wop *more = w->head;
    if (!more)
        return tail;
    for (struct wop *op = more; op; op = op->next)
        if (op->fold && op->target.seq >= batch->seq)
            op->target.op->hold = false;
    if (tail)
        tail->next = more;
    *n += w->queued;
    tail = w->tail;
    w->head = w->tail = NULL;
    w->queued = 0;
    pthread_cond_broadcast(&w->has_room);
    return tail;
}

static bool holds(const struct wop *batch)
{
    for (const struct wop *op = batch; op; op = op->next)
        if (op->hold)
            return true;
    return false;
}

/* Lock held: a small batch with a held op (an append whose run is still
 * going) waits up to HOLD_NS for the op that folds into it, so that a
 * quiet daemon commits once per event rather than twice. Under load the
 * batch is large and nothing waits. */
static void hold_for_folds(struct writer *w, struct wop *batch, struct wop *tail, int *n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += HOLD_NS;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (*n <= HOLD_MAX_OPS && !w->stopping && holds(batch)) {
        if (!w->head && pthread_cond_timedwait(&w->has_work, &w->lock, &until) == ETIMEDOUT)
            break;
        tail = take_queued(w, batch, tail, n);
    }
    for (struct wop *op = batch; op; op = op->next)
        op->hold = false;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->has_work, &w->lock);
        if (!w->head && w->stopping)
            break;
        struct wop *batch = w->head;
        int n = 0;
        struct wop *tail = take_queued(w, batch, NULL, &n);
        if (n <= HOLD_MAX_OPS)
            hold_for_folds(w, batch, tail, &n);
        pthread_mutex_unlock(&w->lock);
        complete_batch(w, batch, n);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int writer_start(const char *db_path, int max_queued, struct writer **out, struct err *e)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, "out of memory");
    w->max_queued = max_queued > 0 ? max_queued : 1;
    if (db_open(db_path, true, &w->db, e) < 0) {
        free(w);
        return -1;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->has_work, NULL);
    pthread_cond_init(&w->has_room, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        db_close(&w->db);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->has_work);
        pthread_cond_destroy(&w->has_room);
        free(w);
        return err_set(e, "cannot start the database writer thread");
    }
    *out = w;
    return 0;
}

struct writer_ticket writer_submit(struct writer *w, struct wop *op)
{
    op->next = NULL;
    op->folded = false;
    pthread_mutex_lock(&w->lock);
    while (w->queued >= w->max_queued && !w->stopping)
        pthread_cond_wait(&w->has_room, &w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        struct err e;
        err_set(&e, "database writer is stopping");
        op->done(op, -1, &e);
        return (struct writer_ticket){0};
    }
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    w->queued++;
    op->seq = ++w->next_seq;
    struct writer_ticket ticket = {.op = op, .seq = op->seq};
    pthread_cond_signal(&w->has_work);
    pthread_mutex_unlock(&w->lock);
    return ticket;
}

int writer_queued(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    int n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}

uint64_t writer_submitted(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t n = w->next_seq;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void writer_stop(struct writer **wp)
{
    struct writer *w = *wp;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->has_work);
    pthread_cond_broadcast(&w->has_room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    for (int i = 0; i < STMT_CACHE && w->stmts[i].sql; i++)
        sqlite3_finalize(w->stmts[i].st);
    db_exec(w->db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL);
    db_close(&w->db);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->has_work);
    pthread_cond_destroy(&w->has_room);
    free(w);
    *wp = NULL;
}

static int release_apply(struct wop *op, struct writer *w, struct err *e)
{
    (void)op;
    (void)e;
    sqlite3_db_release_memory(w->db);
    return 0;
}

static void release_done(struct wop *op, int rc, const struct err *e)
{
    (void)rc;
    (void)e;
    free(op);
    malloc_trim(0); /* now that the pages are free too */
}

void writer_release_memory(struct writer *w)
{
    struct wop *op = calloc(1, sizeof *op);
    if (!op)
        return;
    op->apply = release_apply;
    op->done = release_done;
    writer_submit(w, op);
}

struct barrier {
    struct wop base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool passed;
};

static int barrier_apply(struct wop *op, struct writer *w, struct err *e)
{
    (void)op;
    (void)w;
    (void)e;
    return 0;
}

static void barrier_done(struct wop *op, int rc, const struct err *e)
{
    struct barrier *b = (struct barrier *)op;
    (void)rc;
    (void)e;
    pthread_mutex_lock(&b->lock);
    b->passed = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

void writer_flush(struct writer *w)
{
    struct barrier b = {.base = {.apply = barrier_apply, .done = barrier_done}};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    writer_submit(w, &b.base);
    pthread_mutex_lock(&b.lock);
    while (!b.passed)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
}
