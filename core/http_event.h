/* http_event.h - the pure parts of the HTTP trigger: route templates
 * ("/users/{id}", "/files/{path+}"), the API Gateway HTTP API payload 2.0
 * event, and mapping a pipeline's answer back to an HTTP response as API
 * Gateway does. No sockets here, so all of it is unit-tested and fuzzed. */
#ifndef SLUICE_HTTP_EVENT_H
#define SLUICE_HTTP_EVENT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Is template a valid route path? ("/a/{b}/c", "{x+}" only last). */
int http_route_check(const char *template, struct err *e);
/* Match path against template; on success fill params (an object of path
 * parameters, may be NULL) and return true. */
bool http_route_match(const char *template, const char *path, cJSON *params);

struct http_request {
    const char *method;
    const char *route_key;      /* "GET /users/{id}" */
    const char *path;           /* decoded path, no query */
    const char *raw_query;      /* after '?', may be "" */
    const char *source_ip;
    const char *request_id;
    int64_t time_ms;
    cJSON *headers;             /* lower-case name -> value (borrowed) */
    cJSON *path_params;         /* borrowed, may be NULL */
    const char *body;
    size_t body_len;
    const char *protocol;       /* "HTTP/1.1" */
    const cJSON *header_list;   /* [[name, value]...] as sent, may be NULL (payload 1.0) */
    bool payload_v1;            /* the route's "payload": "1.0" (REST API shape) */
};

/* The payload 2.0 event (or 1.0 with payload_v1) as JSON text (NULL when
 * out of memory). */
char *http_event_json(const struct http_request *r);

/* Can the request be handed to handlers as JSON text? -1 (e says why; the
 * answer is 400) when its path or query, URL-decoded, holds a NUL byte or
 * is not valid UTF-8, or a header in header_list ([[name, value]...]) is
 * not valid UTF-8. */
int http_request_check(const char *raw_uri, const cJSON *header_list, struct err *e);

/* Does a handler's own statusCode fail its step? On an HTTP pipeline never:
 * the answer is the response, passed to the client as API Gateway passes a
 * Lambda function's. Elsewhere 500 and above does (docs/reliability.md). */
bool http_status_fails_step(bool http_trigger, int status_code);

struct http_response {
    int status;
    cJSON *headers;             /* owned: name -> string */
    char *body;                 /* owned */
    size_t body_len;
};

/* Map a run's answer to a response. ok: the run succeeded; answer is the
 * runner's JSON ({"statusCode", "body"} on success; error fields else).
 * Fills r (release with http_response_release). r->headers may name a
 * header more than once (one line each: Set-Cookie). */
void http_response_from_answer(bool ok, const char *answer, struct http_response *r);
/* A small JSON error response: {"message": msg}. */
void http_response_error(int status, const char *message, struct http_response *r);
void http_response_release(struct http_response *r);

#endif
