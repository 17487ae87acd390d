/* runner.h - runs one journaled event through a pipeline's steps: each
 * step's response body is the next step's event; a step that fails is
 * retried as its retry policy says; when it is out of attempts the run stops,
 * the event goes to the on_failure folder and is marked dead. Every attempt
 * is an invocations row; the journal gets the outcome. */
#ifndef SLUICE_RUNNER_H
#define SLUICE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "writer.h"

struct pipeline;

struct exec_slot;

struct run_env {
    struct writer *writer;
    struct exec_slot *slot;     /* the worker process slot, NULL for "thread" */
    /* Sleep ms before a retry; false if the daemon is stopping meanwhile. */
    bool (*wait)(void *arg, int ms);
    void *wait_arg;
};

/* Where a run that waits for a retry picks up again. The runner fills it
 * when it returns RUN_RETRY; the dispatcher keeps it, waits on a loop timer
 * (never by sleeping an executor thread) and runs the event again with it. */
struct run_resume {
    size_t step;                /* the step to try again */
    int attempt;                /* attempts of that step so far */
    char *event;                /* its input (owned) */
    int attempts;               /* attempts of the whole run so far */
    char request_id[37];
    int64_t due_ns;             /* CLOCK_MONOTONIC */
};

struct run_input {
    int64_t journal_id;         /* 0: not known yet (the run started early) ... */
    struct writer_ticket append;    /* ... then this is its journal append */
    const char *event_id;
    const char *source;
    const char *payload;
    int64_t received_ms;        /* when the event was accepted (wall clock) */
    struct run_resume *resume;  /* NULL: retries wait on this thread (batches) */
    const char *request_id;     /* NULL: the run makes a new one */
    /* Optional: told (on the writer thread) when the run's outcome is in the
     * journal; see journal_ref.finished. */
    void (*finished)(void *arg);
    void *finished_arg;
};

enum run_outcome {
    RUN_DONE,                   /* every step succeeded */
    RUN_DEAD,                   /* a step failed for good */
    RUN_INTERRUPTED,            /* stopping: left pending, resumed at next start */
    RUN_RETRY,                  /* a step failed and is retried at resume->due_ns */
};

/* If response is not NULL it receives the run's answer as JSON text (the
 * caller frees it): {"statusCode": N, "body": BODY} when done, else
 * {"errorType", "errorMessage", "status", "step"}; request_id receives the
 * run's request id. *record receives the destination record when the
 * pipeline's on_success/on_failure is a pipeline or ZeroMQ endpoint (the
 * caller delivers and frees it); folders are written by the runner. */
enum run_outcome runner_run(const struct run_env *env, const struct pipeline *p,
                            const struct run_input *in, char **response,
                            char request_id[37], char **record);

/* Run n events as batches (the pipeline's batch setting): the first step
 * receives {"Records": [{"eventId", "eventSource", "body"}...]} and may
 * answer {"batchItemFailures": [{"itemIdentifier": ID}...]}; those items are
 * retried in a smaller batch as the first step's retry policy says, then
 * dead-lettered. Each event keeps its own journal row. outcome[i] receives
 * each event's end; records[i] its destination record, if the loop must deliver one. */
void runner_run_batch(const struct run_env *env, const struct pipeline *p,
                      const struct run_input *const *in, size_t n, enum run_outcome *outcome,
                      char **records, char **responses);

#endif
