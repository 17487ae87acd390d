/* source_http.h - the HTTP trigger's listener: GNU libmicrohttpd driven by
 * the daemon's event loop (its epoll fd is one more fd in the loop; no
 * thread per connection). A complete request is handed to the daemon, which
 * routes it and runs a pipeline; the connection is suspended meanwhile and
 * resumed with the answer, or with 504 when timeout_ms passes first. */
#ifndef SLUICE_SOURCE_HTTP_H
#define SLUICE_SOURCE_HTTP_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"
#include "http_event.h"

struct loop;
struct source_http;
struct http_call;

struct http_incoming {
    const char *method;
    const char *path;           /* decoded, no query */
    const char *raw_query;
    const char *protocol;
    const char *source_ip;
    cJSON *headers;             /* lower-case names, repeated ones comma-joined */
    const cJSON *header_list;   /* [[name, value]...] as sent */
    const char *body;
    size_t body_len;
};

/* The daemon answers every call exactly once with source_http_answer. */
typedef void (*source_http_fn)(void *arg, struct http_call *call, const struct http_incoming *in);

struct http_settings {
    const char *listen;         /* "127.0.0.1:8080" */
    size_t max_body_bytes;
    int timeout_ms;
};

int source_http_new(struct loop *l, const struct http_settings *set, source_http_fn fn,
                    void *arg, struct source_http **out, struct err *e);
/* The request id the run will use, for the x-request-id of any answer
 * (the 504 of the HTTP timeout included). */
void source_http_set_request_id(struct http_call *call, const char *request_id);
/* Answer (r is taken over); request_id goes out as x-request-id. */
void source_http_answer(struct source_http *s, struct http_call *call, struct http_response *r,
                        const char *request_id);
void source_http_free(struct source_http **s);

#endif
