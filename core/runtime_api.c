/* runtime_api.c - the Lambda Runtime API for one bootstrap (see runtime_api.h).
 *
 * libmicrohttpd runs in its owner's loop (external select through its epoll
 * fd). A `next` that finds no event is suspended, not answered, and resumed
 * by rapi_offer: the long poll Lambda's runtimes expect. Paths, headers,
 * status codes and error bodies are Lambda's, so runtime interface clients
 * written for AWS run unchanged.
 */
#include "runtime_api.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"

#define PREFIX "/2018-06-01/runtime/"
#define ERROR_TYPE_HEADER "Lambda-Runtime-Function-Error-Type"

enum inv_state { INV_NONE, INV_PENDING, INV_RUNNING, INV_DONE };

struct rapi {
    struct MHD_Daemon *mhd;
    char address[32];
    char arn[256];
    bool ready;                 /* a first `next` came */
    char *init_error;
    bool stopping;
    struct MHD_Connection *waiting; /* a suspended `next` */
    enum inv_state inv;
    char request_id[37];
    char trace_id[96];
    char *event;
    size_t event_len;
    int64_t deadline_ms;
    int64_t handed_ns;
    struct rapi_outcome outcome;
};

enum call_kind { CALL_NEXT, CALL_RESPONSE, CALL_ERROR, CALL_INIT_ERROR, CALL_BAD };

/* One HTTP request: what it is, and its body as it arrives. */
struct call {
    enum call_kind kind;
    char id[64];                /* the request id in the path */
    char *body;
    size_t len, cap;
    bool too_large;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body,
                             const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Lambda's error body: {"errorMessage": ..., "errorType": ...}. */
static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status,
                                   const char *type, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "errorMessage", message);
    cJSON_AddStringToObject(o, "errorType", type);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    enum MHD_Result rc = reply(conn, status, text ? text : "{}", NULL);
    free(text);
    return rc;
}

static enum MHD_Result reply_accepted(struct MHD_Connection *conn)
{
    return reply(conn, 202, "{\"status\":\"OK\"}", NULL);
}

static enum MHD_Result reply_event(struct rapi *r, struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->event_len, r->event,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    char deadline[24];
    snprintf(deadline, sizeof deadline, "%lld", (long long)r->deadline_ms);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Lambda-Runtime-Aws-Request-Id", r->request_id);
    MHD_add_response_header(resp, "Lambda-Runtime-Deadline-Ms", deadline);
    MHD_add_response_header(resp, "Lambda-Runtime-Invoked-Function-Arn", r->arn);
    MHD_add_response_header(resp, "Lambda-Runtime-Trace-Id", r->trace_id);
    enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    free(r->event);
    r->event = NULL;
    r->inv = INV_RUNNING;
    r->handed_ns = clock_mono_ns();
    return rc;
}

static enum MHD_Result invalid_transition(struct MHD_Connection *conn, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "State transition is not allowed: %s", what);
    return reply_error(conn, 403, "InvalidStateTransition", msg);
}

static enum MHD_Result on_next(struct rapi *r, struct MHD_Connection *conn)
{
    if (r->stopping)
        return reply_error(conn, 503, "ServiceUnavailable", "the worker is stopping");
    if (!r->ready && r->init_error)
        return invalid_transition(conn, "next after an init error");
    r->ready = true;
    if (r->inv == INV_PENDING)
        return reply_event(r, conn);
    if (r->inv == INV_RUNNING)
        return invalid_transition(conn, "next before the current invocation's response");
    if (r->waiting && r->waiting != conn)
        return invalid_transition(conn, "a second concurrent next");
    r->waiting = conn;
    MHD_suspend_connection(conn); /* answered when an event comes */
    return MHD_YES;
}

/* A JSON string of text that may be neither JSON nor NUL-terminated. */
static char *dup_text(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* An /error or /init/error body: {"errorMessage", "errorType", "stackTrace"}
 * if it is that JSON, else the text itself is the message. */
static void parse_error_body(const struct call *c, const char *header, struct rapi_outcome *o)
{
    size_t at;
    cJSON *doc = c->len ? json_parse_exact(c->body, c->len, &at) : NULL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "errorType");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "errorMessage");
    const cJSON *stack = cJSON_GetObjectItemCaseSensitive(doc, "stackTrace");
    if (cJSON_IsString(type) && *type->valuestring)
        o->error_type = strdup(type->valuestring);
    else
        o->error_type = strdup(header && *header ? header : "Unhandled");
    if (cJSON_IsString(msg))
        o->error_message = strdup(msg->valuestring);
    else if (!cJSON_IsObject(doc))
        o->error_message = dup_text(c->body ? c->body : "", c->len);
    if (cJSON_IsArray(stack))
        o->stack = cJSON_PrintUnformatted(stack);
    cJSON_Delete(doc);
}

static void finish(struct rapi *r, struct rapi_outcome *o)
{
    o->duration_ms = (double)(clock_mono_ns() - r->handed_ns) / 1e6;
    r->outcome = *o;
    r->inv = INV_DONE;
}

static enum MHD_Result on_result(struct rapi *r, struct MHD_Connection *conn, struct call *c)
{
    if (r->inv != INV_RUNNING || strcmp(c->id, r->request_id) != 0)
        return reply_error(conn, 400, "InvalidRequestID", "Invalid request ID");
    struct rapi_outcome o = {0};
    if (c->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "Response payload size exceeded maximum allowed payload size "
                 "(%d bytes).", RAPI_MAX_RESPONSE);
        o.error = true;
        o.error_type = strdup("Function.ResponseSizeTooLarge");
        o.error_message = strdup(msg);
        finish(r, &o);
        snprintf(msg, sizeof msg, "Exceeded maximum allowed payload size (%d bytes).",
                 RAPI_MAX_RESPONSE);
        return reply_error(conn, 413, "RequestEntityTooLarge", msg);
    }
    if (c->kind == CALL_ERROR) {
        o.error = true;
        parse_error_body(c, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        ERROR_TYPE_HEADER), &o);
    } else {
        o.body = c->body;
        o.body_len = c->len;
        c->body = NULL;
    }
    finish(r, &o);
    return reply_accepted(conn);
}

static enum MHD_Result on_init_error(struct rapi *r, struct MHD_Connection *conn, struct call *c)
{
    if (r->ready || r->init_error)
        return invalid_transition(conn, "init error after init");
    struct rapi_outcome o = {0};
    parse_error_body(c, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, ERROR_TYPE_HEADER),
                     &o);
    size_t len = strlen(o.error_type) + (o.error_message ? strlen(o.error_message) : 0) + 3;
    if ((r->init_error = malloc(len)))
        snprintf(r->init_error, len, "%s: %s", o.error_type,
                 o.error_message ? o.error_message : "");
    rapi_outcome_release(&o);
    return reply_accepted(conn);
}

/* What the path and method ask for; the request id goes to c->id. */
static void classify(struct call *c, const char *url, const char *method)
{
    c->kind = CALL_BAD;
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strncmp(url, PREFIX, strlen(PREFIX)) != 0)
        return;
    const char *rest = url + strlen(PREFIX);
    if (get && strcmp(rest, "invocation/next") == 0) {
        c->kind = CALL_NEXT;
    } else if (post && strcmp(rest, "init/error") == 0) {
        c->kind = CALL_INIT_ERROR;
    } else if (post && strncmp(rest, "invocation/", 11) == 0) {
        const char *id = rest + 11, *slash = strchr(id, '/');
        if (!slash || (size_t)(slash - id) >= sizeof c->id)
            return;
        snprintf(c->id, sizeof c->id, "%.*s", (int)(slash - id), id);
        if (strcmp(slash, "/response") == 0)
            c->kind = CALL_RESPONSE;
        else if (strcmp(slash, "/error") == 0)
            c->kind = CALL_ERROR;
    }
}

/* Keep the body, up to Lambda's limit; past it only count it as too large. */
static bool take_body(struct call *c, const char *data, size_t n)
{
    if (c->too_large || c->len + n > RAPI_MAX_RESPONSE) {
        c->too_large = true;
        free(c->body);
        c->body = NULL;
        c->len = c->cap = 0;
        return true;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b)
            return false;
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct rapi *r = cls;
    struct call *c = *con_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        classify(c, url, method);
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size) {
        bool ok = take_body(c, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    switch (c->kind) {
    case CALL_NEXT:
        return on_next(r, conn);
    case CALL_RESPONSE:
    case CALL_ERROR:
        return on_result(r, conn, c);
    case CALL_INIT_ERROR:
        return on_init_error(r, conn, c);
    case CALL_BAD:
        break;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "No route for %s %.100s", method, url);
    return reply_error(conn, 404, "InvalidRequest", msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct rapi *r = cls;
    struct call *c = *con_cls;
    if (r->waiting == conn)
        r->waiting = NULL;
    if (c) {
        free(c->body);
        free(c);
    }
    *con_cls = NULL;
}

int rapi_new(const char *arn, struct rapi **out, struct err *e)
{
    *out = NULL;
    struct rapi *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, "out of memory");
    snprintf(r->arn, sizeof r->arn, "%s", arn);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* no connection timeout: a `next` may wait for an event for hours */
    r->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
                              NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                              r, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    const union MHD_DaemonInfo *port =
        r->mhd ? MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!port || !port->port) {
        rapi_free(&r);
        return err_set(e, "cannot serve the Runtime API on 127.0.0.1 (libmicrohttpd failed to "
                       "start; is the loopback interface up?)");
    }
    snprintf(r->address, sizeof r->address, "127.0.0.1:%u", (unsigned)port->port);
    *out = r;
    return 0;
}

void rapi_free(struct rapi **rp)
{
    struct rapi *r = *rp;
    if (!r)
        return;
    if (r->mhd) {
        r->stopping = true;
        if (r->waiting) { /* a suspended connection must be resumed to be closed */
            MHD_resume_connection(r->waiting);
            MHD_run(r->mhd);
        }
        MHD_stop_daemon(r->mhd);
    }
    free(r->event);
    free(r->init_error);
    rapi_outcome_release(&r->outcome);
    free(r);
    *rp = NULL;
}

const char *rapi_address(const struct rapi *r)
{
    return r->address;
}

int rapi_fd(const struct rapi *r)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

int rapi_timeout_ms(const struct rapi *r)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(r->mhd, &ms) != MHD_YES)
        return -1;
    return ms > 60000 ? 60000 : (int)ms;
}

void rapi_run(struct rapi *r)
{
    MHD_run(r->mhd);
}

bool rapi_ready(const struct rapi *r)
{
    return r->ready;
}

const char *rapi_init_error(const struct rapi *r)
{
    return r->init_error;
}

/* X-Ray's form, Root=1-EPOCH_HEX-24_HEX, the 24 taken from the request id. */
static void make_trace_id(struct rapi *r)
{
    char hex[33];
    size_t n = 0;
    for (const char *c = r->request_id; *c && n < 24; c++)
        if (*c != '-')
            hex[n++] = *c;
    hex[n] = '\0';
    snprintf(r->trace_id, sizeof r->trace_id, "Root=1-%08llx-%s;Sampled=0",
             (unsigned long long)(clock_wall_ms() / 1000), hex);
}

int rapi_offer(struct rapi *r, const char *request_id, const char *event, size_t len,
               int64_t deadline_ms, struct err *e)
{
    if (r->inv != INV_NONE)
        return err_set(e, "an invocation is still in flight");
    if (!(r->event = malloc(len ? len : 1)))
        return err_set(e, "out of memory");
    memcpy(r->event, event, len);
    r->event_len = len;
    snprintf(r->request_id, sizeof r->request_id, "%s", request_id);
    make_trace_id(r);
    r->deadline_ms = deadline_ms;
    r->inv = INV_PENDING;
    if (r->waiting) { /* its handler runs again, and answers */
        MHD_resume_connection(r->waiting);
        r->waiting = NULL;
        MHD_run(r->mhd);
    }
    return 0;
}

bool rapi_take(struct rapi *r, struct rapi_outcome *out)
{
    /* as in Lambda, the invocation ends when the runtime asks for the next
     * event: what it writes after posting still belongs to this one */
    if (r->inv != INV_DONE || !r->waiting)
        return false;
    *out = r->outcome;
    memset(&r->outcome, 0, sizeof r->outcome);
    r->inv = INV_NONE;
    return true;
}

void rapi_outcome_release(struct rapi_outcome *o)
{
    free(o->body);
    free(o->error_type);
    free(o->error_message);
    free(o->stack);
    memset(o, 0, sizeof *o);
}
