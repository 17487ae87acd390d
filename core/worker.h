/* worker.h - supervised worker processes ("isolation": "process"), driven
 * from the event loop.
 *
 * A function is one pipeline's steps of one kind of code: C plugins
 * (`sluice-worker worker PIPELINE`, worker_exe.c; `sluice worker` when
 * sluice-worker is not beside sluice), Python (python3 running
 * runtimes/python/bootstrap.py) or Node.js (node running
 * runtimes/node/bootstrap.js), all speaking wire.h over a socketpair.
 *
 * Workers start lazily, when an attempt needs one and no idle one is warm
 * (init = Lambda's init phase, a cold start), and are then kept warm per
 * function. The most recently used idle worker is taken first (LIFO), so a
 * run of invocations one after another keeps one worker busy and pays one
 * cold start; one idle for `idle_timeout_s` is stopped, as Lambda reclaims
 * idle environments. The loop watches every worker's socket and process
 * (a pidfd): a result, a log line, a crash or an exit is seen at once; a
 * deadline is a loop timer that ends in SIGKILL of the worker's process
 * group, so a worker that stops reading or answering wedges nothing. A
 * worker that crashes, hangs or breaks the protocol is killed and replaced;
 * a function whose workers keep dying before serving anything is restarted
 * with exponential back-off. A code file replaced on disk recycles idle
 * workers (hot reload).
 *
 * Everything here runs on the loop thread.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "pipeline.h"

struct attempt;
struct loop;
struct writer;
struct workers;

/* Does this step run in a worker process (rather than on a thread)? */
bool worker_needed(const struct pipeline *p, const struct step *s);

/* exe: the sluice binary (sluice-worker is looked for beside it). */
int workers_new(struct loop *l, struct writer *w, const char *exe, int idle_timeout_s,
                struct workers **out, struct err *e);
/* Run the attempt a (its pipeline, step, event and number set) in a warm or
 * new worker of its function; fill a as the thread executor does, plus
 * max_memory_kb; then call done(arg) on the loop thread, exactly once. */
void workers_run(struct workers *ws, struct attempt *a, void (*done)(void *arg), void *arg);
/* How many of p's runs may be in flight per unit of its concurrency: more
 * than 1 while every step runs in a worker and its handlers are fast, as
 * then attempts are queued in workers ahead of their answers (pipelining);
 * the workers themselves stay within p's concurrency. */
int workers_depth(const struct workers *ws, const struct pipeline *p);
/* p is going away (its generation was replaced): its idle workers stop now,
 * busy ones once their attempt is over. No attempt of p may follow. */
void workers_forget(struct workers *ws, const struct pipeline *p);
/* Daemon stopping: attempts waiting for a start back-off end, interrupted. */
void workers_interrupt(struct workers *ws);
/* Worker processes alive (starting, busy or idle). */
int workers_count(const struct workers *ws);
/* Stop every worker gracefully (their plugins' destroy runs), waiting up
 * to a grace period, then free. No attempt may be running. */
void workers_free(struct workers **ws);

/* `sluice worker` and `sluice-worker worker`: the worker process's main,
 * serving on fd 3. */
int worker_main(int argc, char **argv);

#endif
