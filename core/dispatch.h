/* dispatch.h - one lane per pipeline: a bounded in-memory queue, the
 * executor threads that drain it (as many as the pipeline's concurrency),
 * and the bookkeeping that keeps memory bounded without losing events.
 *
 * An event is journaled first and queued only after the commit, except an
 * event whose id sluice made (it cannot be a duplicate): while its lane has
 * room and no backlog it is queued at once and runs alongside the commit
 * (run-ahead; see dispatch_accept). When a lane's queue is full, newly journaled events simply stay pending in
 * the journal (the overflow lives on disk, not in memory) and the lane
 * refills from the journal, oldest first, as work finishes. The same refill
 * resumes the pending events of an earlier run at start.
 *
 * All calls except the executor threads' own run on the event loop thread.
 */
#ifndef SLUICE_DISPATCH_H
#define SLUICE_DISPATCH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "runner.h"

struct loop;
struct pipeline;
struct pipeline_set;
struct writer;
struct dispatch;

/* reader: a read-only connection for refills, owned by the caller. */
int dispatch_new(struct loop *l, struct writer *w, sqlite3 *reader,
                 const struct pipeline_set *set, int queue_size, struct dispatch **out,
                 struct err *e);
/* Delivers a destination record (pipeline or ZeroMQ destinations) on the
 * loop thread; ok tells on_success from on_failure. */
typedef void (*dispatch_deliver_fn)(void *arg, const struct pipeline *p, bool ok,
                                    const char *record, const char *event_id);
void dispatch_set_delivery(struct dispatch *d, dispatch_deliver_fn fn, void *arg);

/* Start the executor threads and load each lane's pending events. */
int dispatch_start(struct dispatch *d, struct err *e);
/* Called on the loop thread when a run that wants an answer ends. response
 * is the runner's answer JSON; request_id may be empty if it never ran. */
typedef void (*dispatch_reply_fn)(void *arg, enum run_outcome outcome, const char *response,
                                  const char *request_id);

struct dispatch_reply {
    dispatch_reply_fn fn;
    void *arg;
    const char *request_id;     /* optional: the run's request id, chosen by the caller */
};

/* Journal an event for pipeline p, then run it. Duplicates (same p and
 * event_id) are recognised by the journal and not run again. new_id says
 * event_id was just made by sluice (not given by a producer, not derived
 * from a file): such an event cannot be a duplicate, so while its lane has
 * room its run starts at once, overlapping the journal's commit.
 *
 * With reply (synchronous invoke), a slot is reserved first: if the lane is
 * full, nothing is journaled and -EBUSY is returned; otherwise reply->fn is
 * called exactly once, on the loop thread, however the run ends. */
int dispatch_accept(struct dispatch *d, const struct pipeline *p, const char *event_id,
                    bool new_id, const char *source, const char *payload,
                    const struct dispatch_reply *reply, struct err *e);
/* Let running events finish, stop the threads. Queued events stay pending
 * in the journal. Safe to call twice. */
void dispatch_stop(struct dispatch *d);
/* Events queued or running, over all lanes. */
int dispatch_inflight(const struct dispatch *d);
/* Are events of p queued, running, waiting for a retry or in the journal
 * (a schedule's overlap rule asks)? */
bool dispatch_busy(const struct dispatch *d, const struct pipeline *p);
/* Look in the journal for pending events (added from outside, e.g. by
 * `sluice replay`) and load them as room allows. */
void dispatch_refill(struct dispatch *d);

/* Is a lane filling faster than its executors drain it? The daemon then
 * stops reading ZeroMQ for a moment, so that the executors catch up rather
 * than the overflow taking the slower way through the journal. A crowded
 * lane where no run ends for DISPATCH_CROWDED_NS (a slow pipeline) stops
 * counting until it has drained: it must not hold up the others. */
#define DISPATCH_CROWDED_NS 2000000
bool dispatch_crowded(struct dispatch *d, int64_t now_ns);

/* Events accepted since the lanes filled up, waiting in the journal: the
 * daemon stops reading its sockets while this is high (backpressure). */
long dispatch_waiting(const struct dispatch *d);
void dispatch_free(struct dispatch **d);

#endif
