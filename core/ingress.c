/* ingress.c - arrivals, routing, answers and backpressure (see ingress.h). */
#include "ingress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "http_event.h"
#include "journal.h"
#include "log.h"
#include "pipeline.h"
#include "router.h"
#include "s3event.h"
#include "source_http.h"
#include "uuid.h"
#include "writer.h"

#define ID_MAX 255              /* the longest event id (or Idempotency-Key) taken */

struct ingress {
    const struct config *cfg;
    struct loop *loop;
    struct writer *writer;
    const struct pipeline_set *set;
    struct dispatch *dispatch;
    struct source_zmq *zmq;
    struct source_http *http;
    unsigned long rejected;
    bool backlog_high;          /* zmq paused: the journal backlog is high (logged) */
    bool writer_busy;           /* zmq paused: the writer's queue is long (routine) */
    bool crowded;               /* zmq paused: a lane is filling up (routine, brief) */
    bool stopping;              /* sources refused; destination records still taken */
};

int ingress_new(const struct config *cfg, struct loop *l, struct writer *w,
                struct ingress **out, struct err *e)
{
    struct ingress *in = calloc(1, sizeof *in);
    if (!in)
        return err_set(e, "out of memory");
    in->cfg = cfg;
    in->loop = l;
    in->writer = w;
    *out = in;
    return 0;
}

void ingress_use(struct ingress *in, const struct pipeline_set *set, struct dispatch *d)
{
    in->set = set;
    in->dispatch = d;
}

void ingress_stop(struct ingress *in)
{
    in->stopping = true;
}

/* Refusing arrivals: stopping, or no generation. Records handed on by
 * destinations are still taken while stopping (journaled for the next start). */
static bool closed(const struct ingress *in)
{
    return !in->set || in->stopping;
}

void ingress_attach(struct ingress *in, struct source_zmq *zmq, struct source_http *http)
{
    in->zmq = zmq;
    in->http = http;
}

static void reject(struct ingress *in, const char *source, const char *reason,
                   const char *payload, size_t len)
{
    struct err e;
    /* Every one is in the rejected table; the log gets the first ones and then
     * one in a thousand, so a flood of garbage cannot flood stderr. */
    if (++in->rejected <= 20 || in->rejected % 1000 == 0)
        log_msg(LOG_WARN, "%s: message rejected (%lu so far): %s", source, in->rejected, reason);
    if (journal_reject(in->writer, source, reason, payload, len, &e) < 0)
        log_msg(LOG_ERROR, "%s: %s", source, e.msg);
}

void ingress_on_reject(void *arg, const char *source, const char *reason, const char *payload,
                       size_t len)
{
    reject(arg, source, reason, payload, len);
}

/* The producer's event id, else a new UUIDv7. */
static int event_id(const char *given, char id[ID_MAX + 1])
{
    if (given) {
        snprintf(id, ID_MAX + 1, "%s", given);
        return 0;
    }
    return uuid_v7(id);
}

/* What becomes of an arrival: one event made here and handed to p's
 * dispatch (reply: NULL, or the caller waiting for the answer). With
 * filter, p's match filter is applied first: 1 when it leaves the event
 * out. Otherwise dispatch_accept's code, e saying why it failed. */
struct arrival {
    const char *id, *source, *subject, *json;
    bool new_id;                /* the id was made here */
    bool live_file;             /* a file the watch reported (event.h) */
    bool filter;
};

static int accept_event(struct ingress *in, const struct pipeline *p, const struct arrival *a,
                        const struct dispatch_reply *reply, struct err *e)
{
    struct event *ev = event_new(a->id, a->source, a->subject, a->json, strlen(a->json),
                                 a->new_id);
    if (!ev)
        return err_set(e, "out of memory");
    ev->live_file = a->live_file;
    int rc = a->filter && !router_accepts(p, ev) ? 1
                                                 : dispatch_accept(in->dispatch, p, ev, reply, e);
    event_unref(&ev);
    return rc;
}

/* --- files ----------------------------------------------------------------- */

static void accept_file(struct ingress *in, struct pipeline *p, const char *key, const char *path,
                        const struct stat *st, bool live)
{
    struct file_event fe = {.pipeline = p->name, .bucket = p->dir_spec, .key = key, .path = path,
                            .size = (uint64_t)st->st_size, .inode = (uint64_t)st->st_ino,
                            .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                                        st->st_mtim.tv_nsec,
                            .event_ms = clock_wall_ms()};
    char *json = s3event_json(&fe);
    char *id = s3event_id(&fe);
    size_t len = strlen(p->dir_spec) + 16;
    char *source = malloc(len);
    if (source)
        snprintf(source, len, "directory:%s", p->dir_spec);
    struct arrival a = {.id = id, .source = source, .subject = key, .json = json,
                        .live_file = live, .filter = true};
    struct err e;
    if (!json || !id || !source)
        log_msg(LOG_ERROR, "pipeline %s: out of memory for %s; it will be picked up at the next "
                "scan", p->name, path);
    else if (accept_event(in, p, &a, NULL, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: %s not accepted: %s", p->name, path, e.msg);
    free(source);
    free(json);
    free(id);
}

void ingress_on_file(void *arg, const char *path, const struct stat *st, bool live)
{
    struct ingress *in = arg;
    if (closed(in)) /* between generations: the next generation's scan finds it */
        return;
    for (size_t i = 0; i < in->set->n; i++) {
        const char *key = router_file_key(in->set->v[i], path);
        if (key)
            accept_file(in, in->set->v[i], key, path, st, live);
    }
}

/* --- ZeroMQ ---------------------------------------------------------------- */

struct zmq_accept {
    struct ingress *in;
    struct event *ev;
};

static void accept_zmq(void *arg, struct pipeline *p)
{
    struct zmq_accept *za = arg;
    struct err e;
    if (dispatch_accept(za->in->dispatch, p, za->ev, NULL, &e) < 0)
        reject(za->in, za->ev->source, e.msg, za->ev->json, za->ev->len);
}

static void on_zmq_event(void *arg, const char *socket, const char *topic, const char *payload,
                         const char *given_id)
{
    struct ingress *in = arg;
    char id[ID_MAX + 1], source[ID_MAX + 16];
    snprintf(source, sizeof source, "zmq:%.*s", ID_MAX, topic);
    if (closed(in)) {
        reject(in, source, "sluice is stopping", payload, strlen(payload));
        return;
    }
    struct event *ev = event_id(given_id, id) == 0
                           ? event_new(id, source, topic, payload, strlen(payload), !given_id)
                           : NULL;
    if (!ev) {
        reject(in, "zmq", "out of memory (or no randomness) while accepting", payload,
               strlen(payload));
        return;
    }
    struct zmq_accept za = {.in = in, .ev = ev};
    if (router_zmq(in->set, ev, accept_zmq, &za) == 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "no pipeline has a zmq trigger (and match) for topic "
                 "\"%.200s\" (received on %s)", topic, socket);
        reject(in, source, reason, payload, strlen(payload));
    }
    event_unref(&ev);
}

/* Someone waiting on the ROUTER socket for a run's answer. */
struct waiter {
    struct ingress *in;
    struct zmq_peer *peer;
};

static void invoke_answer(void *arg, enum run_outcome outcome, const char *response,
                          const char *request_id)
{
    struct waiter *w = arg;
    if (w->in->zmq)
        source_zmq_answer(w->in->zmq, w->peer, outcome == RUN_DONE, response, request_id);
    else
        free(w->peer);
    free(w);
}

static void answer_error(struct ingress *in, struct zmq_peer *peer, const char *type,
                         const char *message)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "errorType", type);
    cJSON_AddStringToObject(r, "errorMessage", message);
    char *text = cJSON_PrintUnformatted(r);
    source_zmq_answer(in->zmq, peer, false, text ? text : "{}", "");
    free(text);
    cJSON_Delete(r);
}

static const char *busy_type(int rc)
{
    return rc == -EBUSY ? "TooManyRequests" : rc == -EAGAIN ? "Interrupted" : "InternalError";
}

static void on_zmq_invoke(void *arg, struct zmq_peer *peer, const char *pipeline,
                          const char *payload, const char *given_id)
{
    struct ingress *in = arg;
    if (closed(in)) {
        answer_error(in, peer, "Interrupted", "sluice is stopping or reloading; retry");
        return;
    }
    struct pipeline *p = router_named(in->set, pipeline);
    char id[ID_MAX + 1], msg[400];
    struct err e;
    if (!p) {
        snprintf(msg, sizeof msg, "no pipeline named \"%.200s\" (`sluice check` lists them)",
                 pipeline);
        reject(in, "zmq:invoke", msg, payload, strlen(payload));
        answer_error(in, peer, "UnknownPipeline", msg);
        return;
    }
    struct waiter *w = malloc(sizeof *w);
    if (!w || event_id(given_id, id) < 0) {
        free(w);
        answer_error(in, peer, "InternalError", "out of memory or randomness");
        return;
    }
    *w = (struct waiter){.in = in, .peer = peer};
    struct dispatch_reply reply = {.fn = invoke_answer, .arg = w};
    struct arrival a = {.id = id, .source = "invoke", .subject = "invoke", .json = payload,
                        .new_id = !given_id};
    int rc = accept_event(in, p, &a, &reply, &e);
    if (rc < 0) {
        free(w);
        answer_error(in, peer, busy_type(rc), e.msg);
    }
}

static void on_refill(void *arg)
{
    struct ingress *in = arg;
    if (in->dispatch)
        dispatch_refill(in->dispatch);
}

/* A `sluice replay` waiting for the journal to take its replays. */
struct replay_waiter {
    struct journal_receipt receipt;
    struct ingress *in;
    struct zmq_peer *peer;
};

static void replayed(struct loop_task *t)
{
    struct replay_waiter *w = (struct replay_waiter *)((char *)t -
                                                       offsetof(struct replay_waiter, receipt));
    struct ingress *in = w->in;
    char text[320];
    if (w->receipt.rc < 0) {
        snprintf(text, sizeof text, "{\"errorType\":\"JournalError\",\"errorMessage\":\"%s\"}",
                 "the replay could not be written; see the daemon's log");
        log_msg(LOG_ERROR, "replay: %s", w->receipt.error);
    } else {
        snprintf(text, sizeof text, "{\"replayed\":%lld}", (long long)w->receipt.id);
        if (in->dispatch && w->receipt.id > 0)
            dispatch_refill(in->dispatch);
    }
    if (in->zmq)
        source_zmq_answer(in->zmq, w->peer, w->receipt.rc >= 0, text, "");
    else
        free(w->peer);
    free(w);
}

static const char *filter_str(const cJSON *filter, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(filter, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Replays go through the daemon's own writer: a second writer on the
 * database (and a schema migration under a running daemon) is avoided. */
static void on_zmq_replay(void *arg, struct zmq_peer *peer, const char *filter_json)
{
    struct ingress *in = arg;
    cJSON *filter = cJSON_Parse(filter_json);
    struct journal_replay_filter f = {.pipeline = filter_str(filter, "pipeline"),
                                      .event_id = filter_str(filter, "id"),
                                      .since = filter_str(filter, "since")};
    struct replay_waiter *w = calloc(1, sizeof *w);
    struct err e;
    if (!w) {
        answer_error(in, peer, "InternalError", "out of memory");
    } else {
        *w = (struct replay_waiter){.in = in, .peer = peer};
        w->receipt.task.run = replayed;
        if (journal_replay(in->writer, in->loop, &f, &w->receipt, &e) < 0) {
            answer_error(in, peer, "InternalError", e.msg);
            free(w);
        }
    }
    cJSON_Delete(filter);
}

const struct source_zmq_callbacks ingress_zmq_callbacks = {
    .event = on_zmq_event, .invoke = on_zmq_invoke, .reject = ingress_on_reject, .refill = on_refill,
    .replay = on_zmq_replay};

/* --- HTTP ------------------------------------------------------------------ */

/* An HTTP request waiting for its pipeline. */
struct http_waiter {
    struct ingress *in;
    struct http_call *call;
};

static void http_answer(void *arg, enum run_outcome outcome, const char *response,
                        const char *request_id)
{
    struct http_waiter *w = arg;
    struct http_response r;
    http_response_from_answer(outcome == RUN_DONE, response, &r);
    if (w->in->http)
        source_http_answer(w->in->http, w->call, &r, request_id);
    http_response_release(&r);
    free(w);
}

static void http_fail(struct ingress *in, struct http_call *call, int status, const char *msg,
                      const char *allow)
{
    struct http_response r;
    http_response_error(status, msg, &r);
    if (allow)
        cJSON_AddStringToObject(r.headers, "allow", allow);
    source_http_answer(in->http, call, &r, "");
    http_response_release(&r);
}

/* The event of a routed request, or an HTTP error already answered. */
static struct event *http_event(struct ingress *in, struct http_call *call,
                                const struct http_incoming *req, const struct pipeline *p,
                                cJSON *params)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(req->headers, "idempotency-key");
    const char *given = cJSON_IsString(key) ? key->valuestring : NULL;
    char id[ID_MAX + 1], route_key[300], source[320];
    if (given && (strlen(given) > ID_MAX || !*given)) {
        http_fail(in, call, 400, "the Idempotency-Key header must be 1 to 255 bytes long; a "
                  "longer key could collide with another once cut", NULL);
        return NULL;
    }
    if (event_id(given, id) < 0) {
        http_fail(in, call, 500, "no randomness for a request id", NULL);
        return NULL;
    }
    snprintf(route_key, sizeof route_key, "%s %s", p->http_method, p->http_path);
    snprintf(source, sizeof source, "http:%s", route_key);
    struct http_request hr = {.method = req->method, .route_key = route_key,
                              .path = req->path, .raw_query = req->raw_query,
                              .source_ip = req->source_ip, .request_id = id,
                              .time_ms = clock_wall_ms(), .headers = req->headers,
                              .path_params = params, .body = req->body,
                              .body_len = req->body_len, .protocol = req->protocol,
                              .header_list = req->header_list,
                              .payload_v1 = p->http_payload_v1};
    char *json = http_event_json(&hr);
    struct event *ev = json ? event_new(id, source, req->path, json, strlen(json), !given) : NULL;
    free(json);
    if (!ev)
        http_fail(in, call, 500, "out of memory", NULL);
    return ev;
}

void ingress_on_http(void *arg, struct http_call *call, const struct http_incoming *req)
{
    struct ingress *in = arg;
    if (closed(in)) { /* stopping */
        http_fail(in, call, 503, "sluice is stopping or reloading; retry", NULL);
        return;
    }
    char allow[128], rid[UUID_STR_LEN] = "";
    cJSON *params = cJSON_CreateObject();
    struct pipeline *p = router_http(in->set, req->method, req->path, params, allow,
                                     sizeof allow);
    struct event *ev = NULL;
    struct http_waiter *w = NULL;
    struct err e;
    if (!p) {
        http_fail(in, call, allow[0] ? 405 : 404, allow[0] ? "method not allowed on this route"
                  : "no route for this path", allow[0] ? allow : NULL);
    } else if ((ev = http_event(in, call, req, p, params))) {
        if (!router_accepts(p, ev)) {
            http_fail(in, call, 404, "the request does not pass the route's match filter", NULL);
        } else if (!(w = malloc(sizeof *w))) {
            http_fail(in, call, 500, "out of memory", NULL);
        } else {
            *w = (struct http_waiter){.in = in, .call = call};
            struct dispatch_reply reply = {.fn = http_answer, .arg = w};
            if (uuid_v7(rid) == 0) {
                reply.request_id = rid;
                source_http_set_request_id(call, rid);
            }
            int rc = dispatch_accept(in->dispatch, p, ev, &reply, &e);
            if (rc < 0) {
                http_fail(in, call, rc == -EBUSY ? 429 : rc == -EAGAIN ? 503 : 500, e.msg, NULL);
                free(w);
            }
        }
    }
    event_unref(&ev);
    cJSON_Delete(params);
}

/* --- schedules ------------------------------------------------------------- */

void ingress_on_schedule(void *arg, const struct pipeline *p, const char *event_id,
                         const char *source, const char *payload)
{
    struct ingress *in = arg;
    struct err e;
    struct arrival a = {.id = event_id, .source = source, .subject = source, .json = payload};
    if (closed(in))
        log_msg(LOG_WARN, "pipeline %s: a firing during a stop is not run", p->name);
    else if (accept_event(in, p, &a, NULL, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: a scheduled firing was not accepted: %s", p->name,
                e.msg);
}

bool ingress_schedule_busy(void *arg, const struct pipeline *p)
{
    struct ingress *in = arg;
    return in->dispatch && dispatch_busy(in->dispatch, p);
}

/* --- destinations ---------------------------------------------------------- */

int ingress_accept_record(void *arg, const char *target, const char *id, const char *source,
                          const char *record, struct err *e)
{
    struct ingress *in = arg;
    if (!in->set)
        return err_set(e, "sluice is stopping");
    struct pipeline *p = router_named(in->set, target);
    if (!p)
        return err_set(e, "the pipeline is gone");
    struct arrival a = {.id = id, .source = source, .subject = source, .json = record};
    return accept_event(in, p, &a, NULL, e);
}

/* --- NATS ------------------------------------------------------------------ */

int ingress_on_nats(void *arg, const char *pipeline, const char *id, const char *source,
                    const char *subject, const char *json, const struct dispatch_reply *reply,
                    struct err *e)
{
    struct ingress *in = arg;
    if (closed(in)) {
        err_set(e, "sluice is stopping or reloading");
        return -EAGAIN;
    }
    struct pipeline *p = router_named(in->set, pipeline);
    if (!p || p->trigger != TRIGGER_NATS) {
        err_set(e, "pipeline %s has no nats trigger since the reload", pipeline);
        return -ENOENT;
    }
    struct arrival a = {.id = id, .source = source, .subject = subject, .json = json,
                        .filter = true};
    return accept_event(in, p, &a, reply, e);
}


/* --- backpressure ---------------------------------------------------------- */

/* Producers over ZeroMQ meet backpressure (their high-water mark) while
 * the journal backlog is high, or, briefly and routinely, while the writer
 * has a long queue or a lane is filling up. */
bool ingress_flow_control(struct ingress *in, bool writer_waiting)
{
    if (!in->zmq || !in->dispatch)
        return false;
    /* A pipeline's overflow waits in its own journal rows, on disk: one slow
     * pipeline must not stop the others' intake. Only a backlog far beyond
     * what any pipeline holds in memory (a disk filling up) pauses it all. */
    long waiting = dispatch_waiting(in->dispatch);
    long high = (long)in->cfg->queue_size * INGRESS_BACKLOG_FACTOR;
    int queued = writer_queued(in->writer);
    if (waiting > high && !in->backlog_high) {
        in->backlog_high = true;
        log_msg(LOG_WARN, "the journal backlog is high (%ld events): not reading the zmq event "
                "sockets until the pipelines catch up (producers meet backpressure)", waiting);
    } else if (waiting < high / 2 && in->backlog_high) {
        in->backlog_high = false;
        log_msg(LOG_INFO, "the backlog is down: reading the zmq event sockets again");
    }
    if (queued > INGRESS_WRITER_BUSY)
        in->writer_busy = true;
    else if (queued < INGRESS_WRITER_BUSY / 2)
        in->writer_busy = false;
    in->crowded = dispatch_crowded(in->dispatch, clock_mono_ns());
    source_zmq_pause(in->zmq, in->backlog_high || in->writer_busy || in->crowded ||
                     writer_waiting);
    return in->writer_busy || in->crowded;
}

bool ingress_crowded(const struct ingress *in)
{
    return in->crowded;
}

unsigned long ingress_rejected(const struct ingress *in)
{
    return in ? in->rejected : 0;
}

void ingress_free(struct ingress **in)
{
    free(*in);
    *in = NULL;
}
