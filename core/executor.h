/* executor.h - runs one attempt of one step and reports what happened.
 *
 * This is the in-process (thread) executor: the handler runs on the calling
 * thread. A process executor (worker processes behind a socketpair) fills
 * the same struct attempt, so the runner above does not change.
 */
#ifndef SLUICE_EXECUTOR_H
#define SLUICE_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "sluice/handler.h"

struct pipeline;
struct step;

struct attempt {
    /* in */
    const struct pipeline *pipeline;
    const struct step *step;
    const char *request_id;
    const char *event_id;       /* stable across retries and redeliveries; may be NULL */
    const char *source;         /* where the event came from; may be NULL */
    const char *event;          /* JSON text */
    size_t event_len;
    int number;                 /* 1 for the first attempt */
    /* out (owned; release with attempt_release) */
    int64_t started_ms;
    double duration_ms;
    double init_ms;             /* < 0 unless this attempt paid for init */
    enum inv_status status;
    int status_code;
    char *body;                 /* JSON text; "null" if the handler gave none */
    size_t body_len;
    char *error_type;
    char *error;
    char *stack;                /* stackTrace as a JSON array, from script runtimes */
    int64_t max_memory_kb;      /* peak RSS of the worker; < 0 if unknown */
    bool interrupted;           /* sluice stopped before it could run: not an attempt */
    char plugin_version[64];    /* of the code that ran ("" if unknown) */
};

/* The call itself, in this process, with a deadline (CLOCK_MONOTONIC) and a
 * sink for log lines. The runner calls it for thread isolation (runner.c
 * run_attempt), worker processes for process isolation. */
void executor_call(struct attempt *a, int64_t deadline_ns,
                   void (*log)(void *arg, const sl_context *ctx, int level, const char *msg),
                   void *log_arg);
void attempt_release(struct attempt *a);

#endif
