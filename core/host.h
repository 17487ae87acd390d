/* host.h - the services sluice hands to plugins (the sl_host table), the
 * response a handler fills, and the per-call state behind sl_context.
 *
 * sl_json is cJSON underneath, but only this file knows: plugins see an
 * opaque type, so cJSON's struct never becomes part of the ABI.
 */
#ifndef SLUICE_HOST_H
#define SLUICE_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sluice/handler.h"

extern const sl_host host_table;

struct sl_response {
    int status_code;
    char *body;                 /* JSON text; NULL until the handler responds */
    size_t body_len;
    char *error_type;
    char *error_message;
};

/* Where a handler's log lines go. */
typedef void (*host_log_fn)(void *arg, const sl_context *ctx, int level, const char *msg);

/* Behind sl_context.host_private for one call. */
struct host_call {
    int64_t deadline_ns;        /* CLOCK_MONOTONIC */
    const sl_event *event;
    cJSON *event_parsed;        /* parsed on first use */
    cJSON *config_parsed;
    host_log_fn log;
    void *log_arg;
};

void response_init(struct sl_response *r);
void response_release(struct sl_response *r);
void host_call_release(struct host_call *c);

/* Resolve an RFC 6901 JSON pointer ("" is the root). NULL if absent. */
const cJSON *host_json_pointer(const cJSON *root, const char *pointer);

#endif
