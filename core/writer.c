/* writer.c - the database writer thread and its bounded queue (writer.h).
 *
 * A batch that meets a passing condition (the database locked by another
 * connection longer than the busy timeout, a full disk, an I/O error) is
 * rolled back and run again after a back-off, for as long as it takes: the
 * operations wait, nobody sees "database is locked", and writer_health
 * says WAITING so the daemon pauses intake meanwhile. Between batches (and
 * once a second when idle) the database file is checked against the one
 * opened: deleted, moved or replaced is WRITER_LOST, and every operation
 * fails from then on.
 */
#include "writer.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "log.h"

#define STMT_CACHE 32        /* distinct statements of every op, BEGIN and COMMIT */
#define RETRY_FIRST_MS 10       /* back-off of a batch that met a passing condition ... */
#define RETRY_MAX_MS 1000       /* ... doubling up to this */
#define STOP_PATIENCE_MS 30000  /* when stopping, how long a stall may hold the exit */
#define IDLE_CHECK_MS 1000      /* how often an idle writer checks the database file */
#define BATCH_RETRY 1
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
    int room_waiters;           /* producers waiting on has_room */
    uint64_t holding_from;      /* while hold_for_folds waits: its batch's first seq, else 0 */
    bool woken;                 /* an op signalled has_work for the holding writer */
    uint64_t next_seq;          /* the seq of the next submitted op (from 1) */
    bool stopping;
    char *path;
    struct db_file file;
    enum writer_health health;  /* under lock, as is why */
    char why[1024];
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

/* A condition that passes by itself (or by an operator's hand): the batch
 * waits and runs again rather than failing. */
static bool passing(sqlite3 *db)
{
    switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return true;
    default:
        return false;
    }
}

static void rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) /* SQLite may have rolled back already (disk full) */
        db_exec(db, "ROLLBACK", NULL);
}

/* BEGIN IMMEDIATE and COMMIT, prepared once (writer_stmt) rather than parsed
 * per transaction. */
static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";

static int step_stmt(struct writer *w, const char *sql, struct err *e)
{
    sqlite3_stmt *st = writer_stmt(w, sql, e);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return err_set(e, "%s: %s", sql, sqlite3_errmsg(w->db));
    return 0;
}

/* An op's own failure, kept until its done runs (rare: allocated then). */
static void keep_error(struct wop *op, const struct err *e)
{
    free(op->err);
    op->err = malloc(sizeof *op->err);
    if (op->err)
        *op->err = *e;
}

static void clear_results(struct wop *batch)
{
    for (struct wop *op = batch; op; op = op->next) {
        op->rc = 0;
        free(op->err);
        op->err = NULL;
    }
}

/* Apply a batch in one transaction. Returns 0 (committed; each op's result
 * in op->rc, op->err), -1 (failed as a whole: the error in *why) or
 * BATCH_RETRY (a passing condition, described in *why: nothing was
 * written). */
static int run_batch(struct writer *w, struct wop *batch, struct err *why)
{
    /* IMMEDIATE: a lock held by someone else is met here, before any work */
    if (step_stmt(w, SQL_BEGIN, why) < 0)
        return passing(w->db) ? BATCH_RETRY : -1;
    struct err e;
    for (struct wop *op = batch; op; op = op->next) {
        op->rc = op->folded ? 0 : op->apply(op, w, &e);
        if (op->rc >= 0)
            continue;
        if (passing(w->db)) {
            *why = e;
            rollback(w->db);
            return BATCH_RETRY;
        }
        keep_error(op, &e);
    }
    if (step_stmt(w, SQL_COMMIT, why) < 0) {
        bool again = passing(w->db);
        rollback(w->db);
        return again ? BATCH_RETRY : -1;
    }
    return 0;
}

static void set_health(struct writer *w, enum writer_health h, const char *why)
{
    pthread_mutex_lock(&w->lock);
    w->health = h;
    snprintf(w->why, sizeof w->why, "%s", why ? why : "");
    pthread_mutex_unlock(&w->lock);
}

/* Writer thread: is the database file still the one opened? */
static bool file_lost(struct writer *w, struct err *e)
{
    pthread_mutex_lock(&w->lock);
    bool lost = w->health == WRITER_LOST;
    if (lost)
        err_set(e, "%s", w->why);
    pthread_mutex_unlock(&w->lock);
    if (lost)
        return true;
    if (db_file_check(&w->file, w->path, e) == 0)
        return false;
    log_msg(LOG_ERROR, "%s: no more work is accepted; restore the file or start sluice again "
            "(a new database is created at that path)", e->msg);
    set_health(w, WRITER_LOST, e->msg);
    return true;
}

static void timespec_after_ms(struct timespec *t, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}

/* Writer thread: sleep ms before trying a batch again. False once stopping
 * has waited STOP_PATIENCE_MS for the stall (then the batch fails). */
static bool retry_wait(struct writer *w, int ms, int64_t stalled_ns)
{
    struct timespec until;
    timespec_after_ms(&until, ms);
    pthread_mutex_lock(&w->lock);
    /* the whole delay, even when stopping: a full disk fails at once, and
     * must not be retried in a tight loop */
    while (pthread_cond_timedwait(&w->has_work, &w->lock, &until) != ETIMEDOUT)
        ;
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->lock);
    return !stopping || clock_mono_ns() - stalled_ns < (int64_t)STOP_PATIENCE_MS * 1000000;
}

static void log_stall(struct writer *w, sqlite3 *db, const struct err *why)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_FULL)
        log_msg(LOG_ERROR, "disk full: cannot write the database %s (%s); intake is paused and "
                "resumes by itself when space returns; nothing is lost", w->path, why->msg);
    else if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        log_msg(LOG_WARN, "the database %s is locked by another connection (an operator's "
                "sqlite3 in a transaction?): waiting for it, with intake paused; nothing is "
                "lost (%s)", w->path, why->msg);
    else
        log_msg(LOG_ERROR, "cannot write the database %s (%s): retrying, with intake paused; "
                "nothing is lost", w->path, why->msg);
}

/* Run the batch until it commits or fails for good; a passing condition is
 * logged once, makes the writer WAITING, and is retried with back-off. */
static int run_until_done(struct writer *w, struct wop *batch, int n, struct err *why)
{
    int64_t stalled = 0;
    int delay = RETRY_FIRST_MS, rc;
    for (;;) {
        clear_results(batch);
        if (file_lost(w, why)) {
            rc = -1;
            break;
        }
        rc = run_batch(w, batch, why);
        if (rc != BATCH_RETRY)
            break;
        if (!stalled) {
            stalled = clock_mono_ns();
            log_stall(w, w->db, why);
            set_health(w, WRITER_WAITING, why->msg);
        }
        if (!retry_wait(w, delay, stalled)) {
            log_msg(LOG_ERROR, "stopping: giving up on %d database write%s after %d s (%s); "
                    "events not recorded as done run again at the next start", n,
                    n == 1 ? "" : "s", STOP_PATIENCE_MS / 1000, why->msg);
            rc = -1;
            break;
        }
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
    if (stalled && rc == 0) {
        log_msg(LOG_INFO, "the database %s is writable again after %.1f s: intake resumes",
                w->path, (double)(clock_mono_ns() - stalled) / 1e9);
        set_health(w, WRITER_OK, NULL);
    }
    return rc;
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
    struct err why, ok = {.msg = ""}, oom;
    err_set(&oom, "database writer: out of memory");
    int commit = run_until_done(w, batch, n, &why);
    for (struct wop *op = batch, *next; op; op = next) {
        next = op->next;
        struct err *own = op->err; /* done frees op */
        const struct err *e = commit < 0 ? &why : own ? own : op->rc < 0 ? &oom : &ok;
        op->done(op, commit < 0 ? -1 : op->rc, e);
        free(own);
    }
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
    if (w->room_waiters)
        pthread_cond_broadcast(&w->has_room);
    return tail;
}

/* Lock held, the writer holding a batch: should op wake it? When it folds
 * into a held op of the batch (ops from holding_from on are alive: freed
 * only after their batch), or when the queue is long enough to end the hold
 * or to make producers wait for room. */
static bool wakes_holder(const struct writer *w, const struct wop *op)
{
    if (w->queued + 1 >= HOLD_MAX_OPS || w->queued + 1 >= w->max_queued)
        return true;
    return op->fold && op->target.seq >= w->holding_from && op->target.op->hold;
}

/* Is an op of the batch, up to last, still held? */
static bool holds(const struct wop *batch, const struct wop *last)
{
    for (const struct wop *op = batch; op; op = op->next) {
        if (op->hold)
            return true;
        if (op == last)
            break;
    }
    return false;
}

/* Lock held: a small batch with a held op (an append whose run is still
 * going) waits up to HOLD_NS for the op that folds into it, so that a
 * quiet daemon commits once per event rather than twice. Under load the
 * batch is large and nothing waits. Only the ops in the batch when the
 * wait began are waited for: with requests arriving all the time (HTTP
 * with many connections), each newcomer's run would otherwise hold the
 * commit, and every answer in it, for the whole HOLD_NS. */
static void hold_for_folds(struct writer *w, struct wop *batch, struct wop *tail, int *n)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* has_work waits on CLOCK_MONOTONIC */
    until.tv_nsec += HOLD_NS;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    w->holding_from = batch->seq;
    w->woken = false;
    const struct wop *last = tail;
    while (*n <= HOLD_MAX_OPS && !w->stopping && holds(batch, last)) {
        if (!w->woken && pthread_cond_timedwait(&w->has_work, &w->lock, &until) == ETIMEDOUT &&
            !w->woken) /* a signal that raced the timeout still counts */
            break;
        w->woken = false;
        tail = take_queued(w, batch, tail, n);
    }
    w->holding_from = 0;
    for (struct wop *op = batch; op; op = op->next)
        op->hold = false;
}

/* Lock held: wait for work; when none comes for a while, check that the
 * database file is still there (a quiet daemon notices too). */
static void idle_wait(struct writer *w)
{
    struct timespec until;
    timespec_after_ms(&until, IDLE_CHECK_MS);
    if (pthread_cond_timedwait(&w->has_work, &w->lock, &until) != ETIMEDOUT)
        return;
    pthread_mutex_unlock(&w->lock);
    struct err e;
    file_lost(w, &e);
    pthread_mutex_lock(&w->lock);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            idle_wait(w);
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

int writer_start(const char *db_path, int max_queued, bool fsync_commits, struct writer **out,
                 struct err *e)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, "out of memory");
    w->max_queued = max_queued > 0 ? max_queued : 1;
    w->file.fd = -1;
    if (!(w->path = strdup(db_path))) {
        free(w);
        return err_set(e, "out of memory");
    }
    if (db_open(db_path, true, &w->db, e) < 0 || db_file_open(db_path, &w->file, e) < 0 ||
        (!fsync_commits && db_exec(w->db, "PRAGMA synchronous = NORMAL;", e) < 0)) {
        db_close(&w->db);
        free(w->path);
        free(w);
        return -1;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* a clock step is no timeout */
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->has_work, &attr);
    pthread_cond_init(&w->has_room, NULL);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        db_close(&w->db);
        db_file_close(&w->file);
        free(w->path);
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
    op->rc = 0;
    op->err = NULL;
    pthread_mutex_lock(&w->lock);
    while (w->queued >= w->max_queued && !w->stopping) {
        w->room_waiters++;
        pthread_cond_wait(&w->has_room, &w->lock);
        w->room_waiters--;
    }
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        struct err e;
        err_set(&e, "database writer is stopping");
        op->done(op, -1, &e);
        return (struct writer_ticket){0};
    }
    /* An idle writer waits on has_work only while the queue is empty, so
     * only the op that makes it non-empty wakes it; a writer holding a
     * batch for folds (hold_for_folds) only for an op that releases one
     * (the others join the batch when it wakes). The signal is sent after
     * the unlock, so the woken writer does not wake into a held lock. */
    bool wake = w->holding_from ? wakes_holder(w, op) : w->head == NULL;
    if (wake && w->holding_from)
        w->woken = true;
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    w->queued++;
    op->seq = ++w->next_seq;
    struct writer_ticket ticket = {.op = op, .seq = op->seq};
    pthread_mutex_unlock(&w->lock);
    if (wake)
        pthread_cond_signal(&w->has_work);
    return ticket;
}

int writer_queued(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    int n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}

enum writer_health writer_health(struct writer *w, char *why, size_t len)
{
    pthread_mutex_lock(&w->lock);
    enum writer_health h = w->health;
    if (why && len)
        snprintf(why, len, "%s", w->why);
    pthread_mutex_unlock(&w->lock);
    return h;
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
    if (w->health == WRITER_OK)
        db_exec(w->db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL);
    db_close(&w->db);
    db_file_close(&w->file);
    free(w->path);
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

static int barrier_apply(struct wop *op, struct writer *w, struct err *e)
{
    (void)op;
    (void)w;
    (void)e;
    return 0;
}

static void barrier_done(struct wop *op, int rc, const struct err *e)
{
    struct writer_barrier *b = (struct writer_barrier *)op;
    (void)rc;
    (void)e;
    b->passed(b);
}

void writer_barrier_post(struct writer *w, struct writer_barrier *b,
                         void (*passed)(struct writer_barrier *b))
{
    b->base = (struct wop){.apply = barrier_apply, .done = barrier_done};
    b->passed = passed;
    writer_submit(w, &b->base);
}

struct flush {
    struct writer_barrier barrier;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool passed;
};

static void flush_passed(struct writer_barrier *barrier)
{
    struct flush *f = (struct flush *)barrier;
    pthread_mutex_lock(&f->lock);
    f->passed = true;
    pthread_cond_signal(&f->cond); /* under the lock: f lives on the waiter's stack */
    pthread_mutex_unlock(&f->lock);
}

void writer_flush(struct writer *w)
{
    struct flush f = {.passed = false};
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    writer_barrier_post(w, &f.barrier, flush_passed);
    pthread_mutex_lock(&f.lock);
    while (!f.passed)
        pthread_cond_wait(&f.cond, &f.lock);
    pthread_mutex_unlock(&f.lock);
    pthread_mutex_destroy(&f.lock);
    pthread_cond_destroy(&f.cond);
}
