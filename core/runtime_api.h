/* runtime_api.h - the Lambda Runtime API served to one custom runtime.
 *
 * A `"runtime": "provided"` step runs its function folder's `bootstrap`,
 * which polls AWS Lambda's Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API
 * for events and posts their outcomes. struct rapi is that HTTP server for
 * one bootstrap: libmicrohttpd bound to a private loopback port, driven from
 * its owner's poll loop (rapi_fd, rapi_run; no threads), so the state below
 * needs no locks. The program around it (runtime_api_main.c) speaks the
 * worker protocol with the daemon and owns the bootstrap process.
 *
 *   bootstrap                                   rapi
 *   GET  /runtime/invocation/next         ->    ready; waits for rapi_offer
 *   POST /runtime/invocation/ID/response  ->    outcome (ok), 202; > 6 MB: 413
 *   POST /runtime/invocation/ID/error     ->    outcome (error), 202
 *   POST /runtime/init/error              ->    init failed (before the first next), 202
 */
#ifndef SLUICE_RUNTIME_API_H
#define SLUICE_RUNTIME_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Lambda's limit on a synchronous response: 6 MB and the 100 bytes its
 * Runtime API allows on top. */
#define RAPI_MAX_RESPONSE 6291556

struct rapi;

/* How one invocation ended, as the bootstrap posted it. */
struct rapi_outcome {
    bool error;                 /* posted to /error, or refused (too large) */
    char *body;                 /* the response bytes as posted (not necessarily JSON) */
    size_t body_len;
    char *error_type;           /* errorType, else Lambda-Runtime-Function-Error-Type */
    char *error_message;
    char *stack;                /* stackTrace as a JSON array of strings, or NULL */
    double duration_ms;         /* from handing out the event to the post */
};

/* Listen on 127.0.0.1, a port the kernel picks; arn is what the bootstrap
 * sees in Lambda-Runtime-Invoked-Function-Arn. */
int rapi_new(const char *arn, struct rapi **out, struct err *e);
void rapi_free(struct rapi **r);
/* "127.0.0.1:PORT": the bootstrap's AWS_LAMBDA_RUNTIME_API. */
const char *rapi_address(const struct rapi *r);
/* Poll this fd for input, at most rapi_timeout_ms (-1: none), then rapi_run. */
int rapi_fd(const struct rapi *r);
int rapi_timeout_ms(const struct rapi *r);
void rapi_run(struct rapi *r);

/* Has the bootstrap asked for its first event (its init is over)? */
bool rapi_ready(const struct rapi *r);
/* The init error it posted ("ErrorType: message"), or NULL. */
const char *rapi_init_error(const struct rapi *r);

/* Hand out one event (the bootstrap's pending or next `next` gets it).
 * deadline_ms is wall-clock ms since the epoch (Lambda-Runtime-Deadline-Ms).
 * Fails if an invocation is still in flight. */
int rapi_offer(struct rapi *r, const char *request_id, const char *event, size_t len,
               int64_t deadline_ms, struct err *e);
/* The outcome of the offered event once posted and the bootstrap is back at
 * `next` (Lambda's end of an invocation): true and *out filled (the caller
 * owns it; rapi_outcome_release), and the rapi is free for the next event. */
bool rapi_take(struct rapi *r, struct rapi_outcome *out);
void rapi_outcome_release(struct rapi_outcome *o);

#endif
