/* executor.h - runs one attempt of one step and reports what happened.
 *
 * This is the in-process (thread) executor: the handler runs on the calling
 * thread. A process executor (worker processes behind a socketpair) fills
 * the same struct attempt, so the runner above does not change.
 */
#ifndef SLUICE_EXECUTOR_H
#define SLUICE_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "invlog.h"

struct pipeline;
struct step;
struct writer;

struct attempt {
    /* in */
    const struct pipeline *pipeline;
    const struct step *step;
    const char *request_id;
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
};

/* Run the attempt on this thread. Handler log lines go to w. */
void executor_run(struct writer *w, struct attempt *a);
void attempt_release(struct attempt *a);

#endif
