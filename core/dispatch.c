/* dispatch.c - lanes, jobs and journal refills (see dispatch.h). */
#include "dispatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "clock.h"
#include "destinations.h"
#include "event.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "pipeline.h"
#include "runner.h"
#include "worker.h"

struct lane;
struct batch_run;

static const char INTERRUPTED[] =
    "{\"errorType\":\"Interrupted\",\"errorMessage\":\"sluice stopped before the run "
    "finished; the event stays journaled and runs at the next start\"}";
static const char JOURNAL_ERROR[] =
    "{\"errorType\":\"JournalError\",\"errorMessage\":"
    "\"the event could not be journaled; see the daemon's log\"}";

struct job {
    struct lane *lane;
    struct event *ev;
    int64_t id;
    bool inserted;
    bool failed;
    int attempts_before;
    struct journal_receipt receipt;  /* the append's outcome, posted by the writer */
    struct dispatch_reply reply;    /* fn NULL unless someone waits for the answer */
    char request_id[37];
    struct run run;             /* a run of its own (no batch) */
    struct run_item item;
    struct batch_run *batch;        /* or the batch it runs in */
    bool batch_of;              /* it ran in a batch (whose request id it holds) */
    /* A job started ahead of its journal append (see may_run_ahead) gives
     * its slot back when its run ends, answers once the append's outcome is
     * in too, and is freed once the run's outcome has committed. */
    bool ahead;
    bool appended;              /* ahead: the append's outcome arrived */
    bool ran;                   /* ahead: the run ended */
    bool settled;               /* ahead: the outcome committed */
    bool exposed;               /* ahead: on the lane's exposed list */
    bool running;
    bool paused;                /* queued again to go on with a retry */
    bool slot;                  /* it holds one of the scheduler's slots */
    struct writer_ticket append;
    struct loop_task settled_task;
    struct job *next_exposed;
    struct job *next_running;   /* in the lane's list of started jobs */
    bool tracked;               /* in the lane's set of ids in flight (id_in_flight) */
    struct job *next_tracked;
};

/* A batch of a batch pipeline's jobs, run as one. */
struct batch_run {
    struct lane *lane;
    struct batch_run *next;         /* in the lane's list of running batches */
    struct run run;
    struct run_item *items;
    struct job **jobs;
    size_t n;
};

struct lane {
    struct dispatch *d;
    const struct pipeline *p;
    struct sched_lane sl;
    int inflight;               /* queued + running */
    int reserved;               /* invokes journaling, sure of a slot */
    int appending;              /* other events journaling, not queued yet (dispatch_busy) */
    int capacity;
    int64_t loaded_max;         /* highest journal id handed to this lane */
    bool backlog;               /* pending events wait in the journal */
    unsigned long ended;        /* runs ended, ever */
    unsigned long ended_seen;   /* ... when crowded_since_ns was set */
    int64_t crowded_since_ns;   /* crowded, and no run ended since; 0 if not crowded */
    bool crowded_expired;       /* ... for too long to wait for */
    long journal_waiting;       /* how many (new ones counted; refills subtract) */
    struct job **ring;          /* queued, waiting for a slot */
    int head, count;
    struct job *running;        /* started and not yet ended */
    struct batch_run *batches;      /* the same, for batch pipelines */
    int ahead_unacked;          /* ahead jobs whose append outcome is not in */
    /* Ahead jobs whose append committed while events waited in the journal:
     * loaded_max could not cover them, and their rows read 'pending' until
     * their outcome commits, so refills skip them by id. */
    struct job *exposed;
    /* Jobs of events whose id was not made here, from their append's post
     * until they are freed: chains hashed by event id, cap_tracked (a
     * power of two) of them. What may_run_ahead asks before a file runs. */
    struct job **tracked;
    size_t n_tracked, cap_tracked;
    bool parked;                /* its plugins did not load: it runs nothing */
    struct loop_timer window;   /* batches: the first queued one's wait is over */
    bool window_over;
};

struct dispatch {
    struct dispatch_env env;
    struct journal_probe *probe;    /* on env.reader; NULL: files never run ahead */
    unsigned char hash_key[crypto_shorthash_KEYBYTES]; /* of the lanes' ids in flight */
    struct lane *lanes;
    size_t n_lanes;
    bool held;
    bool retiring;
    int jobs;                   /* alive: queued, running, journaling or settling */
    void (*retired)(void *arg);
    void *retired_arg;
    struct loop_task retired_task;
    bool retired_posted;
};

static void lane_release(struct lane *lane);
static void maybe_retired(struct dispatch *d);
static void pump(struct dispatch *d);

static struct loop *loop_of(const struct dispatch *d)
{
    return d->env.runner->loop;
}

static void untrack(struct job *j);

static void job_free(struct job *j)
{
    if (!j)
        return;
    struct dispatch *d = j->lane->d;
    untrack(j);
    run_release(&j->run);
    free(j->item.response);
    free(j->item.record);
    free(j->item.error);
    event_unref(&j->ev);
    free(j);
    d->jobs--;
    maybe_retired(d);
}

/* Answer whoever waits for this job, once: its own response, else the
 * fallback. */
static void job_answer(struct job *j, enum run_outcome outcome, const char *fallback)
{
    if (!j->reply.fn)
        return;
    dispatch_reply_fn fn = j->reply.fn;
    j->reply.fn = NULL;
    if (j->item.response)
        fn(j->reply.arg, j->item.outcome, j->item.response, j->request_id);
    else
        fn(j->reply.arg, outcome, fallback, j->request_id);
}

static struct job *job_new(struct lane *lane, struct event *ev)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->lane = lane;
    j->ev = event_ref(ev);
    j->item.outcome = RUN_INTERRUPTED; /* until it runs */
    lane->d->jobs++;
    return j;
}

/* --- ids in flight --------------------------------------------------------- */

/* SipHash (libsodium's short hash) with a key drawn at start: file names,
 * and so ids, are chosen by others, who must not be able to make one chain
 * long. */
static struct job **chain_of(const struct lane *lane, const char *id)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)id, strlen(id),
                     lane->d->hash_key);
    return &lane->tracked[h & (lane->cap_tracked - 1)];
}

static void chain_insert(struct lane *lane, struct job *j)
{
    struct job **chain = chain_of(lane, j->ev->id);
    j->next_tracked = *chain;
    *chain = j;
}

/* Twice the chains once there are as many jobs as chains. Out of memory,
 * the chains just grow longer. */
static void tracked_grow(struct lane *lane)
{
    size_t old_cap = lane->cap_tracked;
    struct job **old = lane->tracked, **chains = calloc(old_cap * 2, sizeof *chains);
    if (!chains)
        return;
    lane->tracked = chains;
    lane->cap_tracked = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        for (struct job *j = old[i], *next; j; j = next) {
            next = j->next_tracked;
            chain_insert(lane, j);
        }
    free(old);
}

static void track(struct lane *lane, struct job *j)
{
    if (lane->n_tracked >= lane->cap_tracked)
        tracked_grow(lane);
    chain_insert(lane, j);
    lane->n_tracked++;
    j->tracked = true;
}

static void untrack(struct job *j)
{
    if (!j->tracked)
        return;
    struct lane *lane = j->lane;
    for (struct job **p = chain_of(lane, j->ev->id); *p; p = &(*p)->next_tracked)
        if (*p == j) {
            *p = j->next_tracked;
            break;
        }
    lane->n_tracked--;
    j->tracked = false;
}

/* Is an event of this id being journaled, queued or running here (other
 * than except)? */
static bool id_in_flight(const struct lane *lane, const char *id, const struct job *except)
{
    for (const struct job *j = *chain_of(lane, id); j; j = j->next_tracked)
        if (j != except && strcmp(j->ev->id, id) == 0)
            return true;
    return false;
}

/* --- slots ----------------------------------------------------------------- */

/* What the scheduler may start of this lane: each queued job, or for a
 * batch pipeline each full batch, and a partial one once its window is over. */
static void lane_sync_ready(struct lane *lane)
{
    int size = lane->p->batch.size;
    struct sched *s = lane->d->env.sched;
    if (lane->d->retiring) {
        sched_set_ready(s, &lane->sl, 0);
    } else if (size <= 1) {
        sched_set_ready(s, &lane->sl, lane->count);
    } else {
        sched_set_ready(s, &lane->sl,
                        lane->count / size + (lane->count % size && lane->window_over));
        if (lane->count == 0)
            lane->window_over = false;
    }
}

static void on_window(struct loop_timer *t)
{
    struct lane *lane = (struct lane *)((char *)t - offsetof(struct lane, window));
    lane->window_over = true;
    lane_sync_ready(lane);
    pump(lane->d);
}

static struct job *lane_pop(struct lane *lane)
{
    struct job *j = lane->ring[lane->head];
    lane->head = (lane->head + 1) % lane->capacity;
    lane->count--;
    return j;
}

static void on_run_ended(struct run *r);
static void on_batch_ended(struct run *r);

static void on_run_paused(struct run *r);
static void on_run_due(struct run *r);

static void start_one(struct lane *lane)
{
    struct job *j = lane_pop(lane);
    j->slot = true;
    if (j->paused) { /* a retry that was due: it goes on in this slot */
        j->paused = false;
        run_resume(&j->run);
        return;
    }
    j->running = true;
    j->next_running = lane->running;
    lane->running = j;
    j->item = (struct run_item){.ev = j->ev, .journal_id = j->ahead ? 0 : j->id,
                                .append = j->append, .attempts_before = j->attempts_before,
                                .want_response = j->reply.fn != NULL,
                                .settled = j->ahead || j->reply.after_commit
                                               ? &j->settled_task : NULL};
    j->run = (struct run){.rn = lane->d->env.runner, .p = lane->p, .items = &j->item,
                          .n_items = 1, .ended = on_run_ended, .paused = on_run_paused,
                          .due = on_run_due};
    memcpy(j->run.request_id, j->request_id, sizeof j->request_id);
    run_start(&j->run);
}

static bool start_batch(struct lane *lane)
{
    size_t n = (size_t)(lane->count < lane->p->batch.size ? lane->count : lane->p->batch.size);
    struct batch_run *b = calloc(1, sizeof *b);
    if (b && (!(b->items = calloc(n, sizeof *b->items)) || !(b->jobs = calloc(n, sizeof *b->jobs)))) {
        free(b->items);
        free(b);
        b = NULL;
    }
    if (!b) { /* they stay queued; the next run that ends tries again */
        log_msg(LOG_ERROR, "pipeline %s: out of memory for a batch of %zu", lane->p->name, n);
        sched_done(lane->d->env.sched, &lane->sl);
        return false;
    }
    b->lane = lane;
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        struct job *j = lane_pop(lane);
        j->running = true;
        j->batch = b;
        b->jobs[i] = j;
        b->items[i] = (struct run_item){.ev = j->ev, .journal_id = j->id,
                                        .want_response = j->reply.fn != NULL,
                                        .settled = j->reply.after_commit ? &j->settled_task
                                                                         : NULL};
    }
    b->run = (struct run){.rn = lane->d->env.runner, .p = lane->p, .items = b->items,
                          .n_items = n, .ended = on_batch_ended};
    b->next = lane->batches;
    lane->batches = b;
    run_start(&b->run);
    return true;
}

/* The scheduler gave lane a slot. */
static void sched_start(void *arg, struct sched_lane *sl)
{
    struct lane *lane = (struct lane *)((char *)sl - offsetof(struct lane, sl));
    (void)arg;
    if (lane->p->batch.size <= 1)
        start_one(lane);
    else if (!start_batch(lane))
        return; /* ready stays 0 until the lane changes: no busy loop */
    lane_sync_ready(lane);
}

static void pump(struct dispatch *d)
{
    sched_pump(d->env.sched, sched_start, NULL);
}

/* Every pending row up to id is in memory now: refills start after it. */
static void lane_loaded(struct lane *lane, int64_t id)
{
    if (id > lane->loaded_max)
        lane->loaded_max = id;
}

/* Queue a job for a slot. The caller checked room. */
static void lane_push(struct lane *lane, struct job *j)
{
    lane->inflight++;
    lane->ring[(lane->head + lane->count) % lane->capacity] = j;
    lane->count++;
    if (lane->p->batch.size > 1 && lane->count == 1 && lane->p->batch.window_ms > 0)
        loop_timer_arm(loop_of(lane->d), &lane->window,
                       clock_mono_ns() + (int64_t)lane->p->batch.window_ms * 1000000);
    else if (lane->p->batch.size > 1 && lane->p->batch.window_ms == 0)
        lane->window_over = true;
    lane_sync_ready(lane);
    pump(lane->d);
}

/* --- refills --------------------------------------------------------------- */

static bool is_exposed(const struct lane *lane, int64_t id)
{
    for (const struct job *j = lane->exposed; j; j = j->next_exposed)
        if (j->id == id)
            return true;
    return false;
}

/* A job whose committed row a refill must skip (it runs already). */
static void expose(struct lane *lane, struct job *j)
{
    j->exposed = true;
    j->next_exposed = lane->exposed;
    lane->exposed = j;
}

static void unexpose(struct job *j)
{
    for (struct job **p = &j->lane->exposed; j->exposed && *p; p = &(*p)->next_exposed)
        if (*p == j) {
            *p = j->next_exposed;
            break;
        }
    j->exposed = false;
}

static void refill_one(void *arg, const struct journal_entry *entry)
{
    struct lane *lane = arg;
    if (lane->exposed && is_exposed(lane, entry->id))
        return;
    struct event *ev = event_from_journal(entry->event_id, entry->source, entry->payload,
                                          entry->received_ms);
    struct job *j = ev ? job_new(lane, ev) : NULL;
    event_unref(&ev);
    if (!j) {
        lane->backlog = true; /* try again at the next refill */
        return;
    }
    j->id = entry->id;
    j->attempts_before = entry->attempts;
    if (lane->journal_waiting > 0)
        lane->journal_waiting--;
    lane_loaded(lane, j->id);
    lane_push(lane, j);
}

/* Move pending journal entries into the lane while there is room, oldest
 * first. */
static void lane_refill(struct lane *lane)
{
    int room = lane->capacity - lane->inflight - lane->reserved;
    struct dispatch *d = lane->d;
    /* Not while an ahead job's or an invoke's append may have committed
     * unseen: its row would look like one waiting to be loaded. */
    if (!lane->backlog || room <= 0 || d->held || d->retiring || lane->parked ||
        lane->ahead_unacked > 0 || lane->reserved > 0)
        return;
    struct err e;
    int got = journal_load_pending(d->env.reader, lane->p->name, lane->loaded_max, room,
                                   refill_one, lane, &e);
    if (got < 0) {
        log_msg(LOG_ERROR, "pipeline %s: %s; retrying when an event finishes", lane->p->name,
                e.msg);
        return;
    }
    if (got < room) {
        lane->backlog = false;
        lane->journal_waiting = 0;
    }
}

/* --- ends ------------------------------------------------------------------ */

/* Its run ended: deliver its record, then write its outcome. */
static void job_conclude(struct job *j)
{
    struct dispatch *d = j->lane->d;
    if (j->item.record && d->env.deliver) {
        struct delivery dl = {.p = j->lane->p, .ok = j->item.outcome == RUN_DONE,
                              .record = j->item.record, .event_id = j->ev->id,
                              .request_id = j->request_id,
                              .journal_id = j->batch_of ? j->id : 0};
        d->env.deliver(d->env.deliver_arg, &dl);
    }
    run_item_commit(d->env.runner, j->lane->p, &j->item);
}

/* Answer, free. */
static void job_end(struct job *j)
{
    unexpose(j);
    job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    job_free(j);
}

static void lane_release(struct lane *lane)
{
    lane->inflight--;
    if (lane->inflight <= lane->capacity / 2)
        lane_refill(lane);
}

/* An ahead job answers once its event is durable and its run over, and
 * ends once its outcome is durable too. */
static void ahead_progress(struct job *j)
{
    if (!j->appended || !j->ran)
        return;
    if (j->failed && j->reply.fn) { /* it ran, but was never accepted: say so */
        free(j->item.response);
        j->item.response = NULL;
        job_answer(j, RUN_DEAD, JOURNAL_ERROR);
    }
    job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    bool wrote_outcome = j->item.outcome == RUN_DONE || j->item.outcome == RUN_DEAD;
    if (wrote_outcome && !j->settled)
        return;
    job_end(j);
}

static void unlist_running(struct lane *lane, struct job *j)
{
    for (struct job **p = &lane->running; *p; p = &(*p)->next_running)
        if (*p == j) {
            *p = j->next_running;
            break;
        }
    j->running = false;
}

/* A run ended: its slot (if it held one) is free for the next. */
static void slot_free(struct lane *lane, bool held)
{
    lane->ended++;
    if (held)
        sched_done(lane->d->env.sched, &lane->sl);
    /* fast handlers in workers: more runs in flight than workers (worker.h) */
    lane->sl.concurrency = lane->p->concurrency *
                           workers_depth(lane->d->env.runner->workers, lane->p);
    lane_release(lane);
    pump(lane->d);
}

/* A run waits for its retry: its slot goes to others meanwhile. */
static void on_run_paused(struct run *r)
{
    struct job *j = (struct job *)((char *)r - offsetof(struct job, run));
    struct lane *lane = j->lane;
    j->slot = false;
    sched_done(lane->d->env.sched, &lane->sl);
    pump(lane->d);
}

/* Its retry is due: first in line for the lane's next slot. */
static void on_run_due(struct run *r)
{
    struct job *j = (struct job *)((char *)r - offsetof(struct job, run));
    struct lane *lane = j->lane;
    j->paused = true;
    lane->head = (lane->head + lane->capacity - 1) % lane->capacity;
    lane->ring[lane->head] = j;
    lane->count++;
    lane_sync_ready(lane);
    pump(lane->d);
}

/* Is its answer held until its outcome commits (reply.after_commit)? Then
 * on_ahead_settled ends it. */
static bool waits_for_commit(const struct job *j)
{
    return j->reply.fn && j->reply.after_commit &&
           (j->item.outcome == RUN_DONE || j->item.outcome == RUN_DEAD);
}

static void on_run_ended(struct run *r)
{
    struct job *j = (struct job *)((char *)r - offsetof(struct job, run));
    struct lane *lane = j->lane;
    unlist_running(lane, j);
    memcpy(j->request_id, r->request_id, sizeof j->request_id);
    job_conclude(j);
    bool held = j->slot;
    if (j->ahead) {
        j->ran = true;
        ahead_progress(j);
    } else if (!waits_for_commit(j)) {
        job_end(j);
    }
    slot_free(lane, held);
}

static void on_batch_ended(struct run *r)
{
    struct batch_run *b = (struct batch_run *)((char *)r - offsetof(struct batch_run, run));
    struct lane *lane = b->lane;
    for (struct batch_run **p = &lane->batches; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    for (size_t i = 0; i < b->n; i++) {
        struct job *j = b->jobs[i];
        j->item = b->items[i]; /* its outcome, response and record are the job's now */
        j->running = false;
        j->batch = NULL;
        j->batch_of = true;
        memcpy(j->request_id, b->run.request_id, sizeof j->request_id);
        lane->inflight--;
        job_conclude(j);
        if (!waits_for_commit(j))
            job_end(j);
    }
    lane->inflight++; /* slot_free gives back one */
    run_release(&b->run);
    free(b->items);
    free(b->jobs);
    free(b);
    slot_free(lane, true);
}

/* An ahead job's append committed (or failed). While nothing waits in the
 * journal, every pending row up to its id is loaded, so loaded_max may
 * cover it; otherwise it is exposed until it ends. */
static void on_ahead_appended(struct loop_task *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, receipt.task));
    struct lane *lane = j->lane;
    j->appended = true;
    lane->ahead_unacked--;
    if (!j->failed && !j->inserted) /* see file_is_new: another writer of this database */
        log_msg(LOG_ERROR, "pipeline %s: event %s ran ahead of its journal row, but the journal "
                "had it already (is another process writing this database?)", lane->p->name,
                j->ev->id);
    if (!j->failed && j->inserted && !lane->backlog && j->id > lane->loaded_max) {
        lane->loaded_max = j->id;
    } else if (!j->failed && j->inserted && lane->backlog) {
        expose(lane, j);
    }
    ahead_progress(j);
    if (lane->ahead_unacked == 0 && lane->inflight <= lane->capacity / 2)
        lane_refill(lane);
}

static void on_ahead_settled(struct loop_task *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, settled_task));
    j->settled = true;
    if (!j->ahead) { /* an answer after the commit (waits_for_commit) */
        job_end(j);
        return;
    }
    ahead_progress(j);
}

/* NATS owns redelivery: a nats lane loads nothing from the journal, so a
 * pending row an earlier process of this node left is run only when NATS
 * redelivers its message here (and not twice, if it went to another node).
 * Is j such a redelivery? Then it runs that row. */
static bool rerun_pending(struct lane *lane, struct job *j)
{
    if (lane->p->trigger != TRIGGER_NATS || id_in_flight(lane, j->ev->id, j))
        return false;
    struct err e;
    int rc = journal_find_pending(lane->d->env.reader, lane->p->name, j->ev->id, &j->id,
                                  &j->attempts_before, &e);
    if (rc < 0) /* taken for a duplicate: NATS delivers it again after AckWait */
        log_msg(LOG_ERROR, "pipeline %s: event %s: %s; it is not run now (NATS delivers it "
                "again)", lane->p->name, j->ev->id, e.msg);
    return rc == 1;
}

/* An invoke's append committed (or failed); its slot was reserved, so it
 * never waits in the backlog. */
static void invoke_journaled(struct lane *lane, struct job *j)
{
    lane->reserved--;
    if (!j->failed && !j->inserted && rerun_pending(lane, j))
        j->inserted = true;
    if (j->failed)
        job_answer(j, RUN_DEAD, JOURNAL_ERROR);
    else if (!j->inserted)
        job_answer(j, RUN_DEAD, "{\"errorType\":\"DuplicateEvent\",\"errorMessage\":"
                   "\"an event with this id was already accepted by this pipeline; it is not "
                   "run twice\"}");
    else if (lane->d->retiring)
        job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    if (j->failed || !j->inserted || lane->d->retiring) {
        job_free(j);
        return;
    }
    if (lane->backlog) /* older rows wait: loaded_max must not pass them */
        expose(lane, j);
    else
        lane_loaded(lane, j->id);
    lane_push(lane, j);
    if (lane->reserved == 0 && lane->inflight <= lane->capacity / 2)
        lane_refill(lane);
}

/* The journal append committed (or failed): the writer's receipt. */
static void on_job_journaled(struct loop_task *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, receipt.task));
    struct lane *lane = j->lane;
    j->inserted = j->receipt.inserted;
    j->id = j->receipt.id;
    j->failed = j->receipt.rc < 0;
    if (j->failed)
        log_msg(LOG_ERROR, "pipeline %s: event %s was not accepted: %s", lane->p->name,
                j->ev->id, j->receipt.error);
    if (j->ahead) {
        on_ahead_appended(t);
        return;
    }
    if (j->reply.fn) {
        invoke_journaled(lane, j);
        return;
    }
    lane->appending--;
    if (j->failed || !j->inserted || lane->d->retiring || j->id <= lane->loaded_max) {
        job_free(j); /* failed (logged), a duplicate, retiring, or a refill took it */
        return;
    }
    if (lane->d->held || lane->parked || lane->backlog ||
        lane->inflight + lane->reserved >= lane->capacity) {
        lane->backlog = true; /* it waits in the journal */
        lane->journal_waiting++;
        job_free(j);
        if (lane->inflight <= lane->capacity / 2)
            lane_refill(lane);
        return;
    }
    lane_loaded(lane, j->id);
    lane_push(lane, j);
}

/* Is a file event's id new to this pipeline? Exactly once per (pipeline,
 * event id) holds because no append of the id can be missed by both checks:
 *
 * - Every append of an id not made here is tracked from the moment it is
 *   posted (dispatch_accept, in the same call that asked this) until its
 *   job is freed, which is never before its receipt is handled here.
 * - The writer posts a receipt only after the transaction holding the
 *   append has committed. So an append no longer tracked has committed
 *   before this moment (or failed, and was never accepted), and the
 *   probe, a read transaction begun now, sees its row. It says "seen" when
 *   it cannot begin one (journal_probe_has).
 * - Rows of earlier processes committed before this one started. Earlier
 *   generations: a new generation watches its folders only once the old
 *   one's jobs are all freed (dispatch_retire) and a writer barrier passed.
 * - Both checks and the tracking run on the loop thread, with nothing in
 *   between: no other append of the id can be posted meanwhile.
 *
 * What neither knows is a row written by another process into this
 * database while sluice runs; `sluice replay` writes only ids ending in
 * '#rN', which no file's id does. */
static bool file_is_new(struct lane *lane, const struct event *ev)
{
    if (!ev->live_file || !lane->d->probe || id_in_flight(lane, ev->id, NULL))
        return false;
    return !journal_probe_has(lane->d->probe, lane->p->name, ev->id);
}

/* May this event start before its append commits? Only if it cannot be a
 * duplicate (its id was made here, or it is a file the watch just reported
 * whose id is new, see file_is_new), nothing waits in the journal ahead of
 * it, and there is room: then the run overlaps the commit, and when the run
 * ends before the append is written, the row is written finished at once.
 * An answer still waits for the commit. A file's own copy is the file: if
 * sluice dies before the row commits, the next start's scan finds it.
 * Files a scan finds take the journal first: most are repeats (every file
 * at a restart, the reported ones after an overflow), and a scan is about
 * catching up, not about latency. */
static bool may_run_ahead(struct lane *lane, const struct event *ev)
{
    return (ev->new_id || ev->live_file) && !lane->d->held && !lane->d->retiring &&
           !lane->parked && !lane->backlog && lane->p->batch.size <= 1 &&
           lane->inflight + lane->reserved < lane->capacity &&
           (ev->new_id || file_is_new(lane, ev));
}

/* Lanes are built in the set's order, so a pipeline's place finds its lane
 * at once; the scan is for sets built by hand. */
static struct lane *lane_of(const struct dispatch *d, const struct pipeline *p)
{
    if (p->index < d->n_lanes && d->lanes[p->index].p == p)
        return &d->lanes[p->index];
    for (size_t i = 0; i < d->n_lanes; i++)
        if (d->lanes[i].p == p)
            return &d->lanes[i];
    return NULL;
}

int dispatch_accept(struct dispatch *d, const struct pipeline *p, struct event *ev,
                    const struct dispatch_reply *reply, struct err *e)
{
    struct lane *lane = lane_of(d, p);
    if (!lane)
        return err_set(e, "no lane for pipeline %s", p->name);
    if (d->retiring && reply) /* it would never run here to answer */
        return err_set(e, "pipeline %s is stopping", p->name);
    if (reply && lane->parked) {
        err_set(e, "pipeline %s is not running: its plugins did not load (see the log)",
                p->name);
        return -EBUSY;
    }
    if (reply && d->held) {
        err_set(e, "sluice is reloading its pipelines; retry in a moment");
        return -EAGAIN;
    }
    if (reply && (lane->backlog || lane->inflight + lane->reserved >= lane->capacity)) {
        err_set(e, "pipeline %s is at its queue limit (%d events); retry later or raise "
                "queue_size", p->name, lane->capacity);
        return -EBUSY;
    }
    struct job *j = job_new(lane, ev);
    if (!j)
        return err_set(e, "out of memory");
    j->ahead = may_run_ahead(lane, ev);
    if (reply) {
        j->reply = *reply;
        j->reply.request_id = NULL;
        if (reply->request_id)
            snprintf(j->request_id, sizeof j->request_id, "%s", reply->request_id);
        if (!j->ahead)
            lane->reserved++;
    }
    j->receipt.task.run = on_job_journaled;
    j->settled_task.run = on_ahead_settled;
    if (journal_append_post(d->env.runner->writer, loop_of(d), p->name, ev->id, ev->source,
                            ev->json, &j->receipt, j->ahead ? &j->append : NULL, e) < 0) {
        if (reply && !j->ahead)
            lane->reserved--;
        j->reply.fn = NULL;
        job_free(j);
        return -1;
    }
    if (!ev->new_id) /* before anything else runs on the loop: see file_is_new */
        track(lane, j);
    if (j->ahead) { /* after the append, so its rows follow it in the writer's queue */
        lane->ahead_unacked++;
        lane_push(lane, j);
    } else if (!reply) {
        lane->appending++;
    }
    return 0;
}

/* --- life ------------------------------------------------------------------ */

static int lane_init(struct lane *lane, struct dispatch *d, const struct pipeline *p,
                     int queue_size)
{
    lane->d = d;
    lane->p = p;
    lane->capacity = queue_size > 2 * p->concurrency ? queue_size : 2 * p->concurrency;
    if (p->batch.size > 1 && lane->capacity < 2 * p->batch.size)
        lane->capacity = 2 * p->batch.size;
    lane->backlog = true; /* load what an earlier run left pending */
    lane->ring = calloc((size_t)lane->capacity, sizeof *lane->ring);
    lane->cap_tracked = 8; /* doubles as needed: 1,000 quiet lanes cost 64 KiB */
    lane->tracked = calloc(lane->cap_tracked, sizeof *lane->tracked);
    lane->window.fire = on_window;
    sched_lane_init(&lane->sl, p->concurrency, p->reserved_concurrency);
    return lane->ring && lane->tracked ? 0 : -1;
}

int dispatch_new(const struct dispatch_env *env, const struct pipeline_set *set, bool held,
                 struct dispatch **out, struct err *e)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, "out of memory");
    d->env = *env;
    d->held = true;
    if (getrandom(d->hash_key, sizeof d->hash_key, 0) != (ssize_t)sizeof d->hash_key)
        memset(d->hash_key, 0, sizeof d->hash_key); /* still a hash, a predictable one */
    struct err pe;
    if (env->reader && journal_probe_open(env->reader, &d->probe, &pe) < 0)
        log_msg(LOG_WARN, "%s: files wait for their journal row before they run", pe.msg);
    d->lanes = calloc(set->n ? set->n : 1, sizeof *d->lanes);
    if (!d->lanes) {
        free(d);
        return err_set(e, "out of memory");
    }
    for (size_t i = 0; i < set->n; i++) {
        d->n_lanes++;
        if (lane_init(&d->lanes[i], d, set->v[i], env->queue_size) < 0) {
            dispatch_free(&d);
            return err_set(e, "out of memory");
        }
    }
    *out = d;
    if (!held)
        dispatch_release(d);
    return 0;
}

void dispatch_park(struct dispatch *d, const struct pipeline *p)
{
    struct lane *lane = lane_of(d, p);
    if (lane)
        lane->parked = true;
}

bool dispatch_parked(const struct dispatch *d, const struct pipeline *p)
{
    const struct lane *lane = lane_of(d, p);
    return lane && lane->parked;
}

/* A nats lane does not resume what an earlier process (or generation) left
 * pending: NATS redelivers those messages, here (rerun_pending) or to
 * another node. Refills (a `sluice replay`) start after them. */
static void skip_leftovers(struct lane *lane)
{
    int64_t last;
    struct err e;
    if (journal_last_id(lane->d->env.reader, lane->p->name, &last, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: %s; rows left pending before this start may run "
                "here too (NATS also delivers them again)", lane->p->name, e.msg);
    else
        lane_loaded(lane, last);
}

void dispatch_release(struct dispatch *d)
{
    if (!d->held)
        return;
    d->held = false;
    for (size_t i = 0; i < d->n_lanes; i++) {
        if (d->lanes[i].parked)
            continue;
        sched_link(d->env.sched, &d->lanes[i].sl);
        if (d->lanes[i].p->trigger == TRIGGER_NATS)
            skip_leftovers(&d->lanes[i]);
        else
            d->lanes[i].backlog = true;
        lane_refill(&d->lanes[i]);
    }
    pump(d);
}

/* Told from a posted task, never from inside the job that ended last:
 * the callee may free the dispatch. */
static void on_retired(struct loop_task *t)
{
    struct dispatch *d = (struct dispatch *)((char *)t - offsetof(struct dispatch, retired_task));
    void (*fn)(void *) = d->retired;
    d->retired = NULL;
    fn(d->retired_arg);
}

static void maybe_retired(struct dispatch *d)
{
    if (!d->retiring || d->jobs > 0 || !d->retired || d->retired_posted)
        return;
    d->retired_posted = true;
    d->retired_task.run = on_retired;
    loop_post(loop_of(d), &d->retired_task);
}

void dispatch_retire(struct dispatch *d, void (*retired)(void *arg), void *arg)
{
    d->retiring = true;
    d->retired = retired;
    d->retired_arg = arg;
    d->jobs++; /* held while this runs: nothing below may finish the retirement early */
    for (size_t i = 0; i < d->n_lanes; i++) { /* first: nothing of it may start below */
        sched_unlink(d->env.sched, &d->lanes[i].sl);
        sched_set_ready(d->env.sched, &d->lanes[i].sl, 0);
        loop_timer_cancel(loop_of(d), &d->lanes[i].window);
    }
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        while (lane->count > 0) { /* queued: they stay pending in the journal */
            struct job *j = lane_pop(lane);
            if (j->paused) { /* a retry that was due ends here, its attempts counted */
                j->paused = false;
                run_abort(&j->run);
                continue;
            }
            lane->inflight--;
            if (j->ahead) { /* it ends once its append's receipt is in */
                j->ran = true;
                ahead_progress(j);
            } else {
                job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
                job_free(j);
            }
        }
        lane_sync_ready(lane);
        for (struct job *j = lane->running, *next; j; j = next) {
            next = j->next_running;
            run_interrupt(&j->run); /* a retry's wait ends now; on_run_ended follows */
        }
        for (struct batch_run *b = lane->batches, *next; b; b = next) {
            next = b->next;
            run_interrupt(&b->run);
        }
    }
    d->jobs--;
    maybe_retired(d);
}

int dispatch_inflight(const struct dispatch *d)
{
    int n = 0;
    for (size_t i = 0; i < d->n_lanes; i++)
        n += d->lanes[i].inflight;
    return n;
}

int dispatch_inflight_of(const struct dispatch *d, const struct pipeline *p)
{
    const struct lane *lane = lane_of(d, p);
    return lane ? lane->inflight : 0;
}

bool dispatch_busy(const struct dispatch *d, const struct pipeline *p)
{
    const struct lane *lane = lane_of(d, p);
    return lane && (lane->inflight + lane->reserved + lane->appending > 0 || lane->backlog);
}

void dispatch_refill(struct dispatch *d)
{
    for (size_t i = 0; i < d->n_lanes; i++) {
        d->lanes[i].backlog = true;
        lane_refill(&d->lanes[i]);
    }
}

/* Crowded: half full (a drain round reads at most a few hundred events,
 * so it cannot overflow a default lane from there) until a quarter full,
 * as long as its runs keep ending. */
bool dispatch_crowded(struct dispatch *d, int64_t now_ns)
{
    bool crowded = false;
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        int used = lane->inflight + lane->reserved;
        if (used <= lane->capacity / 4) {
            lane->crowded_since_ns = 0;
            lane->crowded_expired = false;
            continue;
        }
        if (used < lane->capacity / 2 && !lane->crowded_since_ns)
            continue;
        if (!lane->crowded_since_ns || lane->ended != lane->ended_seen) {
            lane->crowded_since_ns = now_ns; /* progress: keep waiting for it */
            lane->ended_seen = lane->ended;
        } else if (now_ns - lane->crowded_since_ns > DISPATCH_CROWDED_NS) {
            lane->crowded_expired = true; /* stuck: its overflow goes to the journal */
        }
        crowded = crowded || !lane->crowded_expired;
    }
    return crowded;
}

long dispatch_waiting(const struct dispatch *d)
{
    long n = 0;
    for (size_t i = 0; i < d->n_lanes; i++)
        n += d->lanes[i].journal_waiting;
    return n;
}

void dispatch_free(struct dispatch **dp)
{
    struct dispatch *d = *dp;
    if (!d)
        return;
    for (size_t i = 0; i < d->n_lanes; i++) {
        sched_unlink(d->env.sched, &d->lanes[i].sl);
        loop_timer_cancel(loop_of(d), &d->lanes[i].window);
        free(d->lanes[i].ring);
        free(d->lanes[i].tracked);
    }
    journal_probe_close(&d->probe);
    free(d->lanes);
    free(d);
    *dp = NULL;
}
