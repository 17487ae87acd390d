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
};

/* The payload 2.0 event as JSON text (NULL when out of memory). */
char *http_event_json(const struct http_request *r);

struct http_response {
    int status;
    cJSON *headers;             /* owned: name -> string */
    char *body;                 /* owned */
    size_t body_len;
};

/* Map a run's answer to a response. ok: the run succeeded; answer is the
 * runner's JSON ({"statusCode", "body"} on success; error fields else);
 * timeout: a step timed out. Fills r (release with http_response_release). */
void http_response_from_answer(bool ok, const char *answer, struct http_response *r);
/* A small JSON error response: {"message": msg}. */
void http_response_error(int status, const char *message, struct http_response *r);
void http_response_release(struct http_response *r);

#endif
