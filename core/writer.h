/* writer.h - the one thread that writes the database, with group commit.
 *
 * Producers (the event loop, executor threads) submit operations; the
 * writer takes everything queued, runs it in one transaction, commits, and
 * only then calls each operation's done callback. So nothing is acknowledged
 * before it is durable, and a burst costs one commit, not one per row. The
 * queue is bounded: a producer that outruns the disk waits (backpressure)
 * rather than growing memory.
 */
#ifndef SLUICE_WRITER_H
#define SLUICE_WRITER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct writer;
struct wop;

/* Names one submitted operation, even after it has been freed: the pointer
 * is only followed while seq says the operation is still in the writer's
 * hands (see wop.fold). */
struct writer_ticket {
    struct wop *op;
    uint64_t seq;
};

struct wop {
    /* Run on the writer thread inside the open transaction. A failure is
     * passed to done; it does not abort the other operations. */
    int (*apply)(struct wop *op, struct writer *w, struct err *e);
    /* After the commit (rc 0) or after a failure (rc < 0, message in e).
     * Owns op: must free it. */
    void (*done)(struct wop *op, int rc, const struct err *e);
    /* Optional. When the operation named by target is in the same
     * transaction (submitted earlier, not applied yet), fold may merge this
     * one into it (writer thread, before any apply); it returns true if it
     * did, and then this op's apply is skipped (done still runs). So a row
     * written and then updated in one transaction is written once. */
    bool (*fold)(struct wop *op, struct wop *target);
    struct writer_ticket target;
    /* Optional: an op that another will probably fold into soon. A small
     * transaction holding it waits a moment (about a millisecond) for that
     * op before committing. */
    bool hold;
    /* the writer's own */
    struct wop *next;
    uint64_t seq;
    bool folded;
    int rc;                     /* apply's result ... */
    struct err *err;            /* ... and its error, when it failed */
};

/* One allocation for an op of head bytes (zeroed, so optional fields such
 * as fold start unset) followed by copies of n strings; out[i] points at
 * the copy of in[i] (NULL stays NULL). Free it with free(). NULL when out
 * of memory. */
void *writer_op_alloc(size_t head, const char *const *in, const char **out, int n);

/* fsync_commits: every group commit is fsynced (synchronous=FULL; survives
 * power loss); false: WAL with synchronous=NORMAL, a commit survives the
 * process being killed and is fsynced at the next checkpoint. */
int writer_start(const char *db_path, int max_queued, bool fsync_commits, struct writer **out,
                 struct err *e);
/* Queue op; blocks while the queue is full. After writer_stop began, op is
 * completed at once with an error. Returns op's ticket (seq 0 if it was
 * refused). */
struct writer_ticket writer_submit(struct writer *w, struct wop *op);
/* Operations submitted and not yet taken by the writer thread: sources
 * that can wait (ZeroMQ) stop reading while this is high, so the queue
 * stays short and never blocks the loop. */
int writer_queued(struct writer *w);
enum writer_health {
    WRITER_OK,
    /* The database cannot be written for now (locked by another connection,
     * disk full, an I/O error): operations wait and are retried; intake
     * should pause until the writer is OK again. */
    WRITER_WAITING,
    /* The database file was deleted, moved or replaced: operations fail. */
    WRITER_LOST,
};
/* The writer's state, and (if why) what is wrong in words. */
enum writer_health writer_health(struct writer *w, char *why, size_t len);
/* Operations ever submitted: tells whether anything happened meanwhile. */
uint64_t writer_submitted(struct writer *w);
/* Ask the writer thread to give back its connection's cached pages, then
 * the process's free heap to the system (when quiet: both fill up during a
 * burst and glibc keeps freed memory). Does not wait. */
void writer_release_memory(struct writer *w);
/* Wait until everything submitted so far has committed and its done
 * callback has run. */
void writer_flush(struct writer *w);

/* A barrier: passed(b) runs on the writer thread once every op submitted
 * before it has committed (or failed). The caller owns b (embed it first in
 * a struct of its own) until passed is called. writer_flush waits for one;
 * journal_barrier posts a loop task from one. */
struct writer_barrier {
    struct wop base;
    void (*passed)(struct writer_barrier *b);
};
void writer_barrier_post(struct writer *w, struct writer_barrier *b,
                         void (*passed)(struct writer_barrier *b));
/* Commit what is queued, stop the thread, close the database. */
void writer_stop(struct writer **w);

/* A statement prepared once on the writer's connection (sql must be a string
 * constant: its address is the cache key). NULL with e filled on error. */
sqlite3_stmt *writer_stmt(struct writer *w, const char *sql, struct err *e);
sqlite3 *writer_db(struct writer *w);

#endif
