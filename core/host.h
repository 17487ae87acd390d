/* host.h - the services sluice hands to plugins (the sl_host table), the
 * response a handler fills, and the per-call state behind sl_context.
 *
 * sl_json is cJSON underneath, but only this file knows: plugins see an
 * opaque type, so cJSON's struct never becomes part of the ABI.
 *
 * Two tables: host_table (ABI 2) and host_table_v1, what ABI 1 plugins get.
 * They share every entry but the four that take a context, because an ABI 1
 * context is laid out differently (struct host_context_v1) and carried the
 * host's state in a pointer that ABI 2 no longer shows, and json_set /
 * json_append, which free a refused item in ABI 2 but left it to the caller
 * in ABI 1.
 */
#ifndef SLUICE_HOST_H
#define SLUICE_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sluice/handler.h"

extern const sl_host host_table;
extern const sl_host host_table_v1;

struct sl_response {
    int status_code;
    char *body;                 /* JSON text; NULL until the handler responds */
    size_t body_len;
    char *error_type;
    char *error_message;
};

/* Where a handler's log lines go. */
typedef void (*host_log_fn)(void *arg, const sl_context *ctx, int level, const char *msg);

/* ABI 1's sl_context, field for field (tests/abi/v1/sluice/handler.h). */
struct host_context_v1 {
    uint32_t size;
    const char *request_id;
    const char *function_name;
    const char *pipeline;
    const char *step;
    const char *config_json;
    size_t config_len;
    uint32_t attempt;
    void *plugin_state;
    const sl_host *host;
    void *host_private;         /* the struct host_call */
};

/* One call. A plugin sees ctx (ABI 2) or v1 (ABI 1); the host finds the
 * rest from either. */
struct host_call {
    sl_context ctx;             /* first: an ABI 2 context pointer is the call */
    struct host_context_v1 v1;
    int64_t deadline_ns;        /* CLOCK_MONOTONIC */
    const sl_event *event;
    const char *config_json;
    size_t config_len;
    cJSON *event_parsed;        /* parsed on first use */
    cJSON *config_parsed;
    host_log_fn log;
    void *log_arg;
};

/* Fill c->ctx and c->v1 from what is set in c and the given fields. */
void host_call_contexts(struct host_call *c, void *instance);
void host_call_release(struct host_call *c);

void response_init(struct sl_response *r);
void response_release(struct sl_response *r);

/* Resolve an RFC 6901 JSON pointer ("" is the root). NULL if absent. */
const cJSON *host_json_pointer(const cJSON *root, const char *pointer);

#endif
