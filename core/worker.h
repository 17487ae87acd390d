/* worker.h - supervised worker processes ("isolation": "process").
 *
 * Each executor thread of a process-isolated pipeline owns one exec_slot and
 * so at most one worker: `sluice worker`, started with posix_spawn, which
 * loads the pipeline's plugins once (init = Lambda's init phase, a cold
 * start) and then serves invocations warm over a socketpair (wire.h). A
 * worker that crashes, hangs past its deadline or breaks the protocol is
 * killed and replaced; one that keeps dying before serving anything is
 * restarted with exponential back-off. A plugin file replaced on disk makes
 * the slot recycle its worker between invocations (hot reload).
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct attempt;
struct pipeline;
struct writer;
struct worker;

struct limits {
    int memory_mb;              /* RLIMIT_AS; 0: none */
    int cpu_seconds;            /* RLIMIT_CPU per worker; 0: none */
    int max_open_files;         /* RLIMIT_NOFILE; 0: inherit */
};

struct exec_slot {
    const char *exe;            /* the sluice binary */
    const struct pipeline *p;
    struct worker *worker;
    int init_failures;          /* workers in a row that died before serving */
    /* Sleep before a respawn; false if stopping. */
    bool (*wait)(void *arg, int ms);
    void *wait_arg;
};

/* Run one attempt in the slot's worker, starting one if needed. Fills a
 * like the thread executor does, plus max_memory_kb. */
void worker_run_attempt(struct exec_slot *slot, struct writer *w, struct attempt *a);
/* Stop the slot's worker gracefully (its plugins' destroy runs). */
void exec_slot_release(struct exec_slot *slot);

/* `sluice worker`: the worker process's main, serving on fd 3. */
int worker_main(int argc, char **argv);

#endif
