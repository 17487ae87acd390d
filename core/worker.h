/* worker.h - supervised worker processes ("isolation": "process").
 *
 * Each executor thread of a process-isolated pipeline owns one exec_slot and
 * so at most one worker: `sluice-worker worker PIPELINE` (worker_exe.c; the
 * same worker_main as `sluice worker`, which runs instead when sluice-worker
 * is not beside the sluice binary), started with posix_spawn, which loads the
 * pipeline's plugins once (init = Lambda's init phase, a cold start) and then
 * serves invocations warm over a socketpair (wire.h). A worker that crashes,
 * hangs past its deadline or breaks the protocol is
 * killed and replaced; one that keeps dying before serving anything is
 * restarted with exponential back-off. A plugin file replaced on disk makes
 * the slot recycle its worker between invocations (hot reload).
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#include "pipeline.h"

struct attempt;
struct writer;
struct worker;

/* One worker per kind of code a pipeline's steps need: C plugins
 * (sluice-worker), Python (python3 running runtimes/python/bootstrap.py) and
 * Node.js (node running runtimes/node/bootstrap.js), all speaking wire.h. */
struct exec_slot {
    const char *exe;            /* the sluice binary */
    const struct pipeline *p;
    struct worker *workers[RUNTIME_COUNT];
    int init_failures[RUNTIME_COUNT]; /* workers in a row that died before serving */
    /* Sleep before a respawn; false if stopping. */
    bool (*wait)(void *arg, int ms);
    void *wait_arg;
};

/* Does this step run in a worker process (rather than on the thread)? */
bool worker_needed(const struct pipeline *p, const struct step *s);

/* Run one attempt in the slot's worker, starting one if needed. Fills a
 * like the thread executor does, plus max_memory_kb. */
void worker_run_attempt(struct exec_slot *slot, struct writer *w, struct attempt *a);
/* Stop the slot's workers gracefully (their plugins' destroy runs). */
void exec_slot_release(struct exec_slot *slot);

/* `sluice worker` and `sluice-worker worker`: the worker process's main,
 * serving on fd 3. */
int worker_main(int argc, char **argv);

#endif
