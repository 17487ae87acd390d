/* runner.h - runs one event (or one batch of events) through a pipeline's
 * steps, as a state machine that moves between threads instead of holding
 * one: a step in thread isolation runs on an executor thread (pool.h), a
 * step in a worker process is sent from the loop thread (worker.h) and its
 * result comes back there, and a retry waits on a loop timer. Only one
 * thread advances a run at a time; the hand-offs are posted tasks.
 *
 * Each step's response body is the next step's event; a step that fails is
 * retried as its retry policy says; when it is out of attempts the run stops
 * and the event is dead. Every attempt is an invocations row; the journal
 * gets the outcome; the destination record is built here and delivered by
 * the caller (destinations.h) on the loop thread.
 */
#ifndef SLUICE_RUNNER_H
#define SLUICE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor.h"
#include "loop.h"
#include "pool.h"
#include "writer.h"

struct event;
struct pipeline;
struct workers;
struct batch_item;

/* What every run needs; one for the daemon. */
struct runner {
    struct loop *loop;
    struct writer *writer;
    struct pool *pool;
    struct workers *workers;
};

enum run_outcome {
    RUN_DONE,                   /* every step succeeded */
    RUN_DEAD,                   /* a step failed for good */
    RUN_INTERRUPTED,            /* stopping: left pending, resumed at next start */
};

/* One event of a run: a run has one, a batch run up to batch.size. */
struct run_item {
    struct event *ev;           /* borrowed: the caller holds a reference */
    int64_t journal_id;         /* 0: not known yet (the run started early) ... */
    struct writer_ticket append;    /* ... then this is its journal append */
    int attempts_before;        /* attempts made in earlier lives of the daemon */
    bool want_response;         /* someone waits: build response */
    /* Optional: posted to the loop once the outcome is in the journal. */
    struct loop_task *settled;
    /* out */
    enum run_outcome outcome;
    char *response;             /* {"statusCode", "body"} or {"errorType", ...} (owned) */
    char *record;               /* the destination record, if the pipeline has one (owned) */
    char *error;                /* why it died (owned) */
    /* runner's own */
    int attempts;               /* attempts this item took part in */
    bool active, failed, final;
};

struct run {
    /* set by the caller */
    const struct runner *rn;
    const struct pipeline *p;
    struct run_item *items;
    size_t n_items;             /* 1, or a batch */
    char request_id[37];        /* "": a new one is made */
    /* Loop thread: the run is over; each item's outcome, response and record
     * are set. */
    void (*ended)(struct run *r);
    /* Optional (runs of one event), loop thread: the run waits for a retry
     * and holds no slot meanwhile (paused); its wait is over and it needs a
     * slot again (due), then the caller continues it with run_resume. */
    void (*paused)(struct run *r);
    void (*due)(struct run *r);
    /* runner's own */
    size_t step;
    int attempt;                /* attempt number of this step */
    int attempts;               /* attempts of this round */
    char *input;                /* the current step's event (owned; NULL: the payload) */
    size_t input_len;
    struct attempt a;
    const char *condition;      /* why it died: RetriesExhausted, EventAgeExceeded */
    int wait_ms;
    int step0_attempt;          /* batches: the first step's last attempt number */
    struct batch_item *batch_items; /* batches: this round's records (batch.c) */
    bool *batch_active;         /* ... which items are in it */
    char *batch_why;            /* ... why the whole round failed, if it did */
    struct loop_task task;      /* hand-offs to the loop thread */
    struct pool_task work;      /* ... and to an executor thread */
    struct loop_timer timer;    /* a retry's wait */
    bool waiting;               /* the timer is armed */
    bool stop;                  /* interrupted: end instead of waiting for a retry */
};

struct retry;
/* The wait before retry number retry_index + 1 (0: the first retry): the
 * interval times backoff_rate to the retry_index, capped by max_interval_ms
 * (0: no cap) and by one day, whatever the numbers. */
int runner_retry_wait_ms(const struct retry *rt, int retry_index);

/* Loop thread: start (or, for a batch, start a round). */
void run_start(struct run *r);
/* Loop thread: go on after `due`, in the slot the caller got for it. */
void run_resume(struct run *r);
/* Loop thread: the daemon stops (or reloads): a run waiting for a retry
 * ends at once as interrupted (the attempts so far are written to the
 * journal); one whose attempt is running ends so when that attempt fails,
 * instead of waiting for a retry. Returns false if it was not waiting. */
bool run_interrupt(struct run *r);
/* Write an ended item's outcome to the journal (after its record was
 * delivered): done, dead, or still pending with the attempts it made. */
void run_item_commit(const struct runner *rn, const struct pipeline *p, struct run_item *it);
/* Loop thread: a run between attempts (waiting, or due and not resumed)
 * ends now as interrupted. */
void run_abort(struct run *r);
/* Free what the run still owns (after ended); the items' responses and
 * records are the caller's. */
void run_release(struct run *r);

#endif
