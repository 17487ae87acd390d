/* dispatch.h - one lane per pipeline: a bounded in-memory queue of events
 * waiting for a slot, and the journal bookkeeping that keeps memory
 * bounded without losing events. Which lane runs next is the scheduler's
 * decision (scheduler.h); a run itself is the runner's (runner.h).
 *
 * An event is journaled first and queued only after the commit, except an
 * event whose id sluice made (it cannot be a duplicate) and a file the live
 * watch reported whose id the lane knows is new (nothing of that id in
 * flight here, no committed row): while its lane has room and no backlog it
 * is queued at once and runs alongside the commit (run-ahead; see
 * dispatch_accept). When a lane's queue is full, newly
 * journaled events simply stay pending in the journal (the overflow lives
 * on disk, not in memory) and the lane refills from the journal, oldest
 * first, as work finishes. The same refill resumes the pending events of an
 * earlier run at start.
 *
 * One dispatch serves one generation of pipelines. A reload makes the new
 * one `held` (it journals what arrives but starts nothing and loads
 * nothing) and retires the old one (it starts nothing more, and tells when
 * its last run has ended); then the new one is released. The loop never
 * waits for a run.
 *
 * Loop thread only.
 */
#ifndef SLUICE_DISPATCH_H
#define SLUICE_DISPATCH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "runner.h"
#include "scheduler.h"

struct event;
struct pipeline;
struct pipeline_set;
struct dispatch;

struct delivery;

/* Delivers a finished event's destination record on the loop thread
 * (destinations.h). */
typedef void (*dispatch_deliver_fn)(void *arg, const struct delivery *dl);

struct dispatch_env {
    const struct runner *runner;
    struct sched *sched;        /* shared by every generation */
    sqlite3 *reader;            /* for refills, owned by the caller */
    int queue_size;
    dispatch_deliver_fn deliver;
    void *deliver_arg;
};

int dispatch_new(const struct dispatch_env *env, const struct pipeline_set *set, bool held,
                 struct dispatch **out, struct err *e);
/* Start: load each lane's pending events and run (a held dispatch: now). */
void dispatch_release(struct dispatch *d);
/* Before the release: p's lane journals its events but runs nothing (its
 * plugins did not load). */
void dispatch_park(struct dispatch *d, const struct pipeline *p);
bool dispatch_parked(const struct dispatch *d, const struct pipeline *p);

/* Called on the loop thread when a run that wants an answer ends. response
 * is the runner's answer JSON; request_id may be empty if it never ran. */
typedef void (*dispatch_reply_fn)(void *arg, enum run_outcome outcome, const char *response,
                                  const char *request_id);

struct dispatch_reply {
    dispatch_reply_fn fn;
    void *arg;
    const char *request_id;     /* optional: the run's request id, chosen by the caller */
    /* A run that ends done or dead is answered only once its outcome has
     * committed (a NATS message is acknowledged then, not before). */
    bool after_commit;
};

/* Journal ev for pipeline p, then run it. Duplicates (same p and event id)
 * are recognised by the journal and not run again. An event whose id sluice
 * just made (ev->new_id) cannot be a duplicate, nor can a live file
 * (ev->live_file) whose id is neither in flight here nor committed (one
 * point read), so while its lane has room its run starts at once,
 * overlapping the journal's commit.
 *
 * With reply (synchronous invoke), a slot is reserved first: if the lane is
 * full, nothing is journaled and -EBUSY is returned (-EAGAIN while the
 * dispatch is held by a reload); otherwise reply->fn is called exactly
 * once, on the loop thread, however the run ends. */
int dispatch_accept(struct dispatch *d, const struct pipeline *p, struct event *ev,
                    const struct dispatch_reply *reply, struct err *e);
/* Start nothing more; queued events stay pending in the journal, runs
 * waiting for a retry end as interrupted (their attempts counted), running
 * ones finish. retired(arg) is called, on the loop thread, once the last
 * one has ended (maybe at once); then dispatch_free. */
void dispatch_retire(struct dispatch *d, void (*retired)(void *arg), void *arg);
/* Events queued or running, over all lanes. */
int dispatch_inflight(const struct dispatch *d);
/* Events of pipeline p queued or running (0 if it has no lane here). */
int dispatch_inflight_of(const struct dispatch *d, const struct pipeline *p);
/* Are events of p queued, running, waiting for a retry or in the journal
 * (a schedule's overlap rule asks)? */
bool dispatch_busy(const struct dispatch *d, const struct pipeline *p);
/* Look in the journal for pending events (added from outside, e.g. by
 * `sluice replay`) and load them as room allows. */
void dispatch_refill(struct dispatch *d);

/* Is a lane filling faster than it drains? The daemon then stops reading
 * ZeroMQ for a moment, so that the runs catch up rather than the overflow
 * taking the slower way through the journal. A crowded lane where no run
 * ends for DISPATCH_CROWDED_NS (a slow pipeline) stops counting until it
 * has drained: it must not hold up the others. */
#define DISPATCH_CROWDED_NS 2000000
bool dispatch_crowded(struct dispatch *d, int64_t now_ns);

/* Events accepted since the lanes filled up, waiting in the journal. */
long dispatch_waiting(const struct dispatch *d);
void dispatch_free(struct dispatch **d);

#endif
