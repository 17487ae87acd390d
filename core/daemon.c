/* daemon.c - the running daemon (see daemon.h).
 *
 * A "generation" is what a pipeline reload replaces: the pipeline set, the
 * plugins they bound, the lanes and the watched folders. The database
 * writer, its reader connection and the loop outlive generations.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "db.h"
#include "diag.h"
#include "dispatch.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "spawn.h"
#include "loop.h"
#include "match.h"
#include "path.h"
#include "pipeline.h"
#include "s3event.h"
#include "http_event.h"
#include "source_dir.h"
#include "source_http.h"
#include "source_zmq.h"
#include "uuid.h"
#include "writer.h"

struct generation {
    struct pipeline_set set;
    struct loader *loader;
    struct dispatch *dispatch;
    struct source_dir *dirs;
};

struct daemon {
    struct config *cfg;
    const char *config_file;
    struct loop *loop;
    struct writer *writer;
    sqlite3 *reader;
    int sigfd;
    bool stop;
    bool reload;
    int status;                 /* exit status once stopped */
    struct generation *gen;
    struct source_zmq *zmq;
    struct source_http *http;
    unsigned long rejected;
    bool backlog_high;          /* zmq paused: the journal backlog is high (logged) */
    bool writer_busy;           /* zmq paused: the writer's queue is long (routine) */
    bool crowded;               /* zmq paused: a lane is filling up (routine, brief) */
    struct loop_timer quiet;    /* gives memory back once a burst is over */
    uint64_t quiet_seen;        /* writer_submitted() when it was armed */
    uint64_t trimmed_at;        /* ... at the last trim */
};

#define QUIET_NS 200000000

/* The writer's queue length (operations) above which the zmq event sockets
 * wait, and below which they are read again: short enough that a flood
 * never fills the queue (which would block the loop), long enough for
 * large group commits. */
#define WRITER_BUSY 2048

/* Load and bind everything a generation needs; print problems. */
/* Drop the pipelines whose plugins do not load, keeping the rest running
 * (a reload must not take down pipelines that are fine). */
static void bind_tolerant(struct generation *g, struct diag *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (loader_bind_pipeline(g->loader, p, d) == 0) {
            g->set.v[kept++] = p;
            continue;
        }
        log_msg(LOG_ERROR, "pipeline %s is not running until its plugins load (fix them and "
                "send SIGHUP)", p->name);
        pipeline_free(&p);
    }
    g->set.n = kept;
    d->errors = 0;
}

static int load_pipelines(struct daemon *dm, struct generation *g, bool tolerant)
{
    struct diag d = {0};
    struct err e;
    pipeline_set_load(dm->cfg, &g->set, &d);
    if (d.errors == 0 && loader_new(&dm->cfg->plugin_path, &g->loader, &e) < 0)
        diag_error(&d, dm->cfg->file, "%s", e.msg);
    if (d.errors == 0 && tolerant)
        bind_tolerant(g, &d);
    else if (d.errors == 0)
        loader_bind_set(g->loader, &g->set, &d);
    for (size_t i = 0; i < d.n; i++) /* warnings say "warning:" themselves */
        log_msg(d.items[i].severity == DIAG_ERROR ? LOG_ERROR : LOG_INFO, "%s", d.items[i].text);
    int errors = d.errors;
    diag_free(&d);
    if (errors) {
        log_msg(LOG_ERROR, "%d problem%s in the pipelines; run `sluice check` for the list", errors,
                errors == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

static void route_file(struct daemon *dm, struct pipeline *p, const char *path,
                       const struct stat *st)
{
    size_t n = strlen(p->dir);
    if (strncmp(path, p->dir, n) != 0 || path[n] != '/')
        return;
    const char *key = path + n + 1;
    if (!p->recursive && strchr(key, '/'))
        return;
    struct file_event fe = {.pipeline = p->name, .bucket = p->dir_spec, .key = key, .path = path,
                            .size = (uint64_t)st->st_size, .inode = (uint64_t)st->st_ino,
                            .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                                        st->st_mtim.tv_nsec,
                            .event_ms = clock_wall_ms()};
    char *json = s3event_json(&fe);
    char *id = s3event_id(&fe);
    char *source = malloc(strlen(p->dir_spec) + 16);
    cJSON *parsed = p->match && json ? cJSON_Parse(json) : NULL;
    struct err e;
    if (!json || !id || !source) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory for %s; it will be picked up at the next "
                "scan", p->name, path);
    } else if (match_test(p->match, key, parsed)) {
        sprintf(source, "directory:%s", p->dir_spec);
        if (dispatch_accept(dm->gen->dispatch, p, id, false, source, json, NULL, &e) < 0)
            log_msg(LOG_ERROR, "pipeline %s: %s not accepted: %s", p->name, path, e.msg);
    }
    cJSON_Delete(parsed);
    free(json);
    free(id);
    free(source);
}

static void on_file(void *arg, const char *path, const struct stat *st)
{
    struct daemon *dm = arg;
    for (size_t i = 0; i < dm->gen->set.n; i++)
        if (dm->gen->set.v[i]->trigger == TRIGGER_DIRECTORY)
            route_file(dm, dm->gen->set.v[i], path, st);
}

static void on_reject(void *arg, const char *source, const char *reason, const char *payload,
                      size_t len)
{
    struct daemon *dm = arg;
    struct err e;
    /* Every one is in the rejected table; the log gets the first ones and then
     * one in a thousand, so a flood of garbage cannot flood stderr. */
    if (++dm->rejected <= 20 || dm->rejected % 1000 == 0)
        log_msg(LOG_WARN, "%s: message rejected (%lu so far): %s", source, dm->rejected, reason);
    if (journal_reject(dm->writer, source, reason, payload, len, &e) < 0)
        log_msg(LOG_ERROR, "%s: %s", source, e.msg);
}

static bool topic_matches(const struct pipeline *p, const char *topic, const char *payload,
                          cJSON **parsed)
{
    if (p->trigger != TRIGGER_ZMQ || strncmp(topic, p->zmq_topic, strlen(p->zmq_topic)) != 0)
        return false;
    if (p->match && !*parsed)
        *parsed = cJSON_Parse(payload);
    return match_test(p->match, topic, *parsed);
}

/* The producer's event id, else a new UUIDv7. */
static int event_id(const char *given, char id[256])
{
    if (given) {
        snprintf(id, 256, "%s", given);
        return 0;
    }
    return uuid_v7(id);
}

static void on_zmq_event(void *arg, const char *socket, const char *topic, const char *payload,
                         const char *given_id)
{
    struct daemon *dm = arg;
    char id[256];
    size_t len = strlen(topic) + 8;
    char *source = malloc(len);
    if (!source || event_id(given_id, id) < 0) {
        free(source);
        on_reject(dm, "zmq", "out of memory (or no randomness) while accepting", payload,
                  strlen(payload));
        return;
    }
    snprintf(source, len, "zmq:%s", topic);
    cJSON *parsed = NULL;
    int matched = 0;
    struct err e;
    if (!dm->gen) {
        on_reject(dm, source, "sluice is stopping or reloading", payload, strlen(payload));
        free(source);
        return;
    }
    for (size_t i = 0; i < dm->gen->set.n; i++) {
        struct pipeline *p = dm->gen->set.v[i];
        if (!topic_matches(p, topic, payload, &parsed))
            continue;
        matched++;
        if (dispatch_accept(dm->gen->dispatch, p, id, !given_id, source, payload, NULL, &e) < 0)
            on_reject(dm, source, e.msg, payload, strlen(payload));
    }
    if (!matched) {
        char reason[300];
        snprintf(reason, sizeof reason, "no pipeline has a zmq trigger (and match) for topic "
                 "\"%.200s\" (received on %s)", topic, socket);
        on_reject(dm, source, reason, payload, strlen(payload));
    }
    cJSON_Delete(parsed);
    free(source);
}

/* Someone waiting on the ROUTER socket for a run's answer. */
struct waiter {
    struct daemon *dm;
    struct zmq_peer *peer;
};

static void invoke_answer(void *arg, enum run_outcome outcome, const char *response,
                          const char *request_id)
{
    struct waiter *w = arg;
    if (w->dm->zmq)
        source_zmq_answer(w->dm->zmq, w->peer, outcome == RUN_DONE, response, request_id);
    else
        free(w->peer);
    free(w);
}

static void answer_error(struct daemon *dm, struct zmq_peer *peer, const char *type,
                         const char *message)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "errorType", type);
    cJSON_AddStringToObject(r, "errorMessage", message);
    char *text = cJSON_PrintUnformatted(r);
    source_zmq_answer(dm->zmq, peer, false, text ? text : "{}", "");
    free(text);
    cJSON_Delete(r);
}

static void on_zmq_invoke(void *arg, struct zmq_peer *peer, const char *pipeline,
                          const char *payload, const char *given_id)
{
    struct daemon *dm = arg;
    if (!dm->gen) {
        answer_error(dm, peer, "Interrupted", "sluice is stopping or reloading; retry");
        return;
    }
    struct pipeline *p = pipeline_set_find(&dm->gen->set, pipeline);
    char id[256], msg[400];
    struct err e;
    if (!p) {
        snprintf(msg, sizeof msg, "no pipeline named \"%.200s\" (`sluice check` lists them)",
                 pipeline);
        on_reject(dm, "zmq:invoke", msg, payload, strlen(payload));
        answer_error(dm, peer, "UnknownPipeline", msg);
        return;
    }
    struct waiter *w = malloc(sizeof *w);
    if (!w || event_id(given_id, id) < 0) {
        free(w);
        answer_error(dm, peer, "InternalError", "out of memory or randomness");
        return;
    }
    *w = (struct waiter){.dm = dm, .peer = peer};
    struct dispatch_reply reply = {.fn = invoke_answer, .arg = w};
    int rc = dispatch_accept(dm->gen->dispatch, p, id, !given_id, "invoke", payload, &reply,
                             &e);
    if (rc < 0) {
        free(w);
        answer_error(dm, peer, rc == -EBUSY ? "TooManyRequests" : "InternalError", e.msg);
    }
}

static void on_refill(void *arg)
{
    struct daemon *dm = arg;
    if (dm->gen && dm->gen->dispatch)
        dispatch_refill(dm->gen->dispatch);
}

/* An HTTP request waiting for its pipeline. */
struct http_waiter {
    struct daemon *dm;
    struct http_call *call;
};

static void http_answer(void *arg, enum run_outcome outcome, const char *response,
                        const char *request_id)
{
    struct http_waiter *w = arg;
    struct http_response r;
    http_response_from_answer(outcome == RUN_DONE, response, &r);
    if (w->dm->http)
        source_http_answer(w->dm->http, w->call, &r, request_id);
    http_response_release(&r);
    free(w);
}

static void http_fail(struct daemon *dm, struct http_call *call, int status, const char *msg,
                      const char *allow)
{
    struct http_response r;
    http_response_error(status, msg, &r);
    if (allow)
        cJSON_AddStringToObject(r.headers, "allow", allow);
    source_http_answer(dm->http, call, &r, "");
    http_response_release(&r);
}

/* The pipeline whose route matches; 404 or 405 (with the allowed methods). */
static struct pipeline *http_route(struct daemon *dm, const struct http_incoming *in,
                                   cJSON *params, char *allow, size_t allow_len)
{
    allow[0] = '\0';
    for (size_t i = 0; i < dm->gen->set.n; i++) {
        struct pipeline *p = dm->gen->set.v[i];
        if (p->trigger != TRIGGER_HTTP || !http_route_match(p->http_path, in->path, NULL))
            continue;
        if (strcmp(p->http_method, "ANY") == 0 || strcmp(p->http_method, in->method) == 0) {
            http_route_match(p->http_path, in->path, params);
            return p;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", p->http_method);
    }
    return NULL;
}

static void on_http(void *arg, struct http_call *call, const struct http_incoming *in)
{
    struct daemon *dm = arg;
    if (!dm->gen) { /* between generations, or stopping */
        http_fail(dm, call, 503, "sluice is stopping or reloading; retry", NULL);
        return;
    }
    char allow[128], id[256], route_key[300], source[320];
    cJSON *params = cJSON_CreateObject();
    struct pipeline *p = http_route(dm, in, params, allow, sizeof allow);
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(in->headers, "idempotency-key");
    struct http_waiter *w = p ? malloc(sizeof *w) : NULL;
    if (!p) {
        http_fail(dm, call, allow[0] ? 405 : 404, allow[0] ? "method not allowed on this route"
                  : "no route for this path", allow[0] ? allow : NULL);
    } else if (!w || event_id(cJSON_IsString(key) ? key->valuestring : NULL, id) < 0) {
        http_fail(dm, call, 500, "out of memory", NULL);
    } else {
        snprintf(route_key, sizeof route_key, "%s %s", p->http_method, p->http_path);
        snprintf(source, sizeof source, "http:%s", route_key);
        struct http_request req = {.method = in->method, .route_key = route_key,
                                   .path = in->path, .raw_query = in->raw_query,
                                   .source_ip = in->source_ip, .request_id = id,
                                   .time_ms = clock_wall_ms(), .headers = in->headers,
                                   .path_params = params, .body = in->body,
                                   .body_len = in->body_len, .protocol = in->protocol};
        char *event = http_event_json(&req);
        *w = (struct http_waiter){.dm = dm, .call = call};
        char rid[UUID_STR_LEN];
        struct dispatch_reply reply = {.fn = http_answer, .arg = w};
        if (uuid_v7(rid) == 0) {
            reply.request_id = rid;
            source_http_set_request_id(call, rid);
        }
        struct err e;
        cJSON *parsed = p->match && event ? cJSON_Parse(event) : NULL;
        int rc = !event ? err_set(&e, "out of memory")
                 : !match_test(p->match, in->path, parsed) ? -ENOENT
                 : dispatch_accept(dm->gen->dispatch, p, id, !cJSON_IsString(key), source, event,
                                   &reply, &e);
        cJSON_Delete(parsed);
        if (rc == -ENOENT) {
            http_fail(dm, call, 404, "the request does not pass the route's match filter", NULL);
            free(w);
        } else if (rc < 0) {
            http_fail(dm, call, rc == -EBUSY ? 429 : 500, e.msg, NULL);
            free(w);
        }
        w = NULL;
        free(event);
    }
    free(w);
    cJSON_Delete(params);
}

static int start_http(struct daemon *dm)
{
    bool wanted = false;
    for (size_t i = 0; dm->gen && i < dm->gen->set.n; i++)
        wanted = wanted || dm->gen->set.v[i]->trigger == TRIGGER_HTTP;
    if (!wanted || dm->http)
        return 0;
    struct http_settings set = {.listen = dm->cfg->http.listen,
                                .max_body_bytes = (size_t)dm->cfg->http.max_body_bytes,
                                .timeout_ms = dm->cfg->http.timeout_ms};
    struct err e;
    if (source_http_new(dm->loop, &set, on_http, dm, &dm->http, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        return -1;
    }
    return 0;
}

/* Loop thread: a finished event's record for a pipeline or ZeroMQ
 * destination. (Folders are written by the runner.) */
static void deliver(void *arg, const struct pipeline *p, bool ok, const char *record,
                    const char *event_id)
{
    struct daemon *dm = arg;
    const struct destination *dst = ok ? &p->on_success : &p->on_failure;
    const char *which = ok ? "on_success" : "on_failure";
    struct err e;
    int rc = 0;
    if (dst->kind == DEST_PIPELINE && !dm->gen) {
        rc = err_set(&e, "sluice is stopping");
    } else if (dst->kind == DEST_PIPELINE) {
        struct pipeline *target = pipeline_set_find(&dm->gen->set, dst->pipeline);
        size_t len = strlen(event_id) + strlen(p->name) + 32;
        char *id = malloc(len), source[160];
        snprintf(source, sizeof source, "destination:%s", p->name);
        if (!target || !id)
            rc = err_set(&e, "%s", !id ? "out of memory" : "the pipeline is gone");
        else {
            snprintf(id, len, "%s/%s.%s", event_id, p->name, which);
            rc = dispatch_accept(dm->gen->dispatch, target, id, false, source, record, NULL, &e);
        }
        free(id);
    } else if (dst->kind == DEST_ZMQ && dm->zmq) {
        rc = source_zmq_push(dm->zmq, dst->endpoint, dst->topic, record, &e);
    }
    if (rc < 0)
        log_msg(LOG_ERROR, "pipeline %s: the %s record of event %s was not delivered: %s "
                "(the journal keeps the event)", p->name, which, event_id, e.msg);
}

/* Create trigger folders and canonicalise their paths, so every path the
 * watcher reports can be compared by prefix. */
static int prepare_dirs(struct generation *g, struct err *e)
{
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (p->trigger != TRIGGER_DIRECTORY)
            continue;
        if (path_mkdirs(p->dir, 0750, e) < 0) {
            err_prefix(e, "%s: trigger.directory", p->file);
            return -1;
        }
        char *real = realpath(p->dir, NULL);
        if (!real)
            return err_set(e, "%s: trigger.directory %s: %s", p->file, p->dir, strerror(errno));
        free(p->dir);
        p->dir = real;
    }
    return 0;
}

static int start_sources(struct daemon *dm, struct generation *g, struct err *e)
{
    if (source_dir_new(dm->loop, on_file, dm, &g->dirs, e) < 0)
        return -1;
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (p->trigger != TRIGGER_DIRECTORY)
            continue;
        bool seen = false, recursive = false;
        for (size_t k = 0; k < g->set.n; k++) {
            const struct pipeline *q = g->set.v[k];
            if (q->trigger == TRIGGER_DIRECTORY && strcmp(q->dir, p->dir) == 0) {
                seen = seen || k < i;
                recursive = recursive || q->recursive;
            }
        }
        if (!seen && source_dir_add(g->dirs, p->dir, recursive, e) < 0)
            return -1;
        log_msg(LOG_INFO, "pipeline %s: watching %s", p->name, p->dir);
    }
    source_dir_scan(g->dirs);
    return 0;
}

static void generation_free(struct daemon *dm, struct generation **gp)
{
    struct generation *g = *gp;
    if (!g)
        return;
    source_dir_free(&g->dirs);
    if (g->dispatch) {
        dispatch_stop(g->dispatch);
        writer_flush(dm->writer);          /* every append callback has been posted */
        loop_run_inbox(dm->loop);          /* ... and run against the lanes */
        dispatch_free(&g->dispatch);
    }
    pipeline_set_free(&g->set);
    loader_free(&g->loader);
    free(g);
    *gp = NULL;
}

static int generation_start(struct daemon *dm, struct generation **out, bool tolerant)
{
    struct generation *g = calloc(1, sizeof *g);
    struct err e;
    if (!g) {
        log_msg(LOG_ERROR, "out of memory");
        return -1;
    }
    *out = g;
    if (load_pipelines(dm, g, tolerant) < 0)
        return -1;
    if (prepare_dirs(g, &e) < 0 ||
        dispatch_new(dm->loop, dm->writer, dm->reader, &g->set, dm->cfg->queue_size,
                     &g->dispatch, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        return -1;
    }
    dispatch_set_delivery(g->dispatch, deliver, dm);
    if (dispatch_start(g->dispatch, &e) < 0 || start_sources(dm, g, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        return -1;
    }
    return 0;
}

static void reload(struct daemon *dm)
{
    log_msg(LOG_INFO, "SIGHUP: reloading pipelines from %s", dm->cfg->pipelines_dir);
    struct generation *old = dm->gen;
    /* Check the new pipelines before letting go of the old ones. */
    struct generation probe = {0};
    if (load_pipelines(dm, &probe, false) < 0) {
        log_msg(LOG_ERROR, "reload refused; the running pipelines stay as they were");
        pipeline_set_free(&probe.set);
        loader_free(&probe.loader);
        return;
    }
    pipeline_set_free(&probe.set);
    loader_free(&probe.loader);
    generation_free(dm, &old);
    dm->gen = NULL;
    /* A plugin the probe saw (dlopen shares a file already loaded) may
     * still fail now that the old copy is gone: such pipelines are left out
     * and the rest run. */
    if (generation_start(dm, &dm->gen, true) < 0) {
        log_msg(LOG_ERROR, "reload failed; stopping");
        dm->stop = true;
        dm->status = 1;
        return;
    }
    if (start_http(dm) < 0)
        dm->stop = true;
    log_msg(LOG_INFO, "reloaded: %zu pipeline%s", dm->gen->set.n, dm->gen->set.n == 1 ? "" : "s");
}

static void on_signal(void *arg, uint32_t events)
{
    struct daemon *dm = arg;
    (void)events;
    struct signalfd_siginfo si;
    while (read(dm->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            spawn_reap_exited(); /* issue 21: no zombie of an idle worker */
        } else if (si.ssi_signo == SIGHUP) {
            dm->reload = true;
        } else {
            log_msg(LOG_INFO, "%s: letting running handlers finish, then exiting",
                    strsignal((int)si.ssi_signo));
            dm->stop = true;
        }
    }
}

static int setup_signals(struct daemon *dm, struct err *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    /* Blocked before any thread starts, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGIO, SIG_IGN); /* lease breaks (source_dir's completeness check) */
    dm->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (dm->sigfd < 0)
        return err_set(e, "signalfd: %s", strerror(errno));
    return loop_add_fd(dm->loop, dm->sigfd, EPOLLIN, on_signal, dm, e);
}

static int open_state(struct daemon *dm, struct err *e)
{
    if (path_mkdirs(dm->cfg->state_dir, 0750, e) < 0)
        return -1;
    char *dbdir = path_dirname(dm->cfg->database);
    int rc = dbdir ? path_mkdirs(dbdir, 0750, e) : err_set(e, "out of memory");
    free(dbdir);
    if (rc < 0)
        return -1;
    if (writer_start(dm->cfg->database, 16384, &dm->writer, e) < 0)
        return -1;
    return db_open(dm->cfg->database, false, &dm->reader, e);
}

static void shutdown_all(struct daemon *dm)
{
    if (dm->zmq) /* no new events while the lanes drain; invokes are answered */
        source_zmq_pause(dm->zmq, true);
    generation_free(dm, &dm->gen); /* waiting invokes and requests are answered here */
    source_http_free(&dm->http);
    source_zmq_free(&dm->zmq);
    if (dm->sigfd >= 0) {
        loop_del_fd(dm->loop, dm->sigfd);
        close(dm->sigfd);
    }
    if (dm->loop)
        loop_timer_cancel(dm->loop, &dm->quiet);
    db_close(&dm->reader);
    writer_stop(&dm->writer);
    loop_free(&dm->loop);
    config_free(&dm->cfg);
}

/* Producers over ZeroMQ meet backpressure (their high-water mark) while
 * the journal backlog is high, or, briefly and routinely, while the writer
 * has a long queue or a lane is filling up. */
static void flow_control(struct daemon *dm)
{
    long waiting = dispatch_waiting(dm->gen->dispatch);
    long high = (long)dm->cfg->queue_size * 64;
    int queued = writer_queued(dm->writer);
    if (waiting > high && !dm->backlog_high) {
        dm->backlog_high = true;
        log_msg(LOG_WARN, "the journal backlog is high (%ld events): not reading the zmq event "
                "sockets until the pipelines catch up (producers meet backpressure)", waiting);
    } else if (waiting < high / 2 && dm->backlog_high) {
        dm->backlog_high = false;
        log_msg(LOG_INFO, "the backlog is down: reading the zmq event sockets again");
    }
    if (queued > WRITER_BUSY)
        dm->writer_busy = true;
    else if (queued < WRITER_BUSY / 2)
        dm->writer_busy = false;
    dm->crowded = dispatch_crowded(dm->gen->dispatch, clock_mono_ns());
    source_zmq_pause(dm->zmq, dm->backlog_high || dm->writer_busy || dm->crowded);
}

/* After a burst, glibc keeps the freed heap: RSS would stay at the burst's
 * high-water mark. Once nothing has been written and nothing run for
 * QUIET_NS, it goes back to the system and RSS returns to about idle. */
static void on_quiet(struct loop_timer *t)
{
    struct daemon *dm = (struct daemon *)((char *)t - offsetof(struct daemon, quiet));
    uint64_t seen = writer_submitted(dm->writer);
    bool running = dm->gen && dm->gen->dispatch && dispatch_inflight(dm->gen->dispatch) > 0;
    if (seen != dm->quiet_seen || running || writer_queued(dm->writer) > 0) {
        dm->quiet_seen = seen;
        loop_timer_arm(dm->loop, &dm->quiet, clock_mono_ns() + QUIET_NS);
        return;
    }
    sqlite3_db_release_memory(dm->reader);
    writer_release_memory(dm->writer); /* and then trims the heap */
    dm->trimmed_at = writer_submitted(dm->writer); /* that release counts as activity */
}

static void watch_quiet(struct daemon *dm)
{
    uint64_t seen = writer_submitted(dm->writer);
    if (dm->quiet.armed || seen == dm->trimmed_at)
        return;
    dm->quiet_seen = seen;
    dm->quiet.fire = on_quiet;
    loop_timer_arm(dm->loop, &dm->quiet, clock_mono_ns() + QUIET_NS);
}

static int serve(struct daemon *dm)
{
    struct err e;
    while (!dm->stop) {
        /* paused briefly: look again soon (a commit may post nothing) */
        if (loop_run_once(dm->loop, dm->writer_busy || dm->crowded ? 1 : -1, &e) < 0) {
            log_msg(LOG_ERROR, "%s", e.msg);
            return 1;
        }
        if (dm->zmq && dm->gen && dm->gen->dispatch)
            flow_control(dm);
        watch_quiet(dm);
        if (dm->reload && !dm->stop) {
            dm->reload = false;
            reload(dm);
        }
    }
    return 0;
}

int daemon_run(const char *config_file)
{
    struct daemon dm = {.config_file = config_file, .sigfd = -1};
    struct diag d = {0};
    struct err e;
    int status = 1;
    if (config_load(config_file, &dm.cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return 1;
    }
    diag_free(&d);
    log_msg(LOG_INFO, "config %s, database %s", dm.cfg->file, dm.cfg->database);
    if (loop_new(&dm.loop, &e) < 0 || setup_signals(&dm, &e) < 0 || open_state(&dm, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        goto out;
    }
    if (generation_start(&dm, &dm.gen, false) < 0)
        goto out;
    static const struct source_zmq_callbacks zmq_cb = {
        .event = on_zmq_event, .invoke = on_zmq_invoke, .reject = on_reject,
        .refill = on_refill};
    if (source_zmq_new(dm.loop, dm.cfg, &zmq_cb, &dm, &dm.zmq, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        goto out;
    }
    if (start_http(&dm) < 0)
        goto out;
    log_msg(LOG_INFO, "running %zu pipeline%s (pid %d)", dm.gen->set.n,
            dm.gen->set.n == 1 ? "" : "s", (int)getpid());
    status = serve(&dm);
    if (status == 0)
        status = dm.status;
out:
    shutdown_all(&dm);
    if (status == 0)
        log_msg(LOG_INFO, "stopped cleanly");
    return status;
}
