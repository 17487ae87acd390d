/* runner.h - runs one journaled event through a pipeline's steps: each
 * step's response body is the next step's event; a step that fails is
 * retried as its retry policy says; when it is out of attempts the run stops,
 * the event goes to the on_failure folder and is marked dead. Every attempt
 * is an invocations row; the journal gets the outcome. */
#ifndef SLUICE_RUNNER_H
#define SLUICE_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

struct pipeline;
struct writer;

struct run_env {
    struct writer *writer;
    /* Sleep ms before a retry; false if the daemon is stopping meanwhile. */
    bool (*wait)(void *arg, int ms);
    void *wait_arg;
};

struct run_input {
    int64_t journal_id;
    const char *event_id;
    const char *source;
    const char *payload;
};

enum run_outcome {
    RUN_DONE,                   /* every step succeeded */
    RUN_DEAD,                   /* a step failed for good */
    RUN_INTERRUPTED,            /* stopping: left pending, resumed at next start */
};

/* If response is not NULL it receives the run's answer as JSON text (the
 * caller frees it): {"statusCode": N, "body": BODY} when done, else
 * {"errorType", "errorMessage", "status", "step"}; request_id receives the
 * run's request id. */
enum run_outcome runner_run(const struct run_env *env, const struct pipeline *p,
                            const struct run_input *in, char **response,
                            char request_id[37]);

#endif
