/* zmq_forward.c - the zmq_forward plugin: send the step's event (the
 * previous step's response) to a ZeroMQ endpoint as two frames, TOPIC and
 * the JSON, for other programs to consume: sluice's SNS topic, or a Lambda
 * destination.
 *
 * Design: one ZeroMQ context per worker (created in init, terminated in
 * destroy) and one socket per distinct (kind, endpoint, bind) that steps
 * name, created on first use and kept, so connections stay up between
 * events. ZeroMQ sockets are not thread-safe and, under "thread" isolation,
 * handlers run on several threads at once, so each socket has a mutex; a
 * send holds it for at most the step's remaining time. A PUSH socket sets
 * ZMQ_IMMEDIATE, so with no receiver connected the send waits (up to the
 * deadline) and fails clearly instead of queueing for a peer that may never
 * come. LINGER is bounded so that shutdown never hangs on an absent peer.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <sluice/handler.h>

#define LINGER_MS 1000 /* how long queued messages may delay shutdown */
#define MSG_MAX 2048

struct fwd_socket {
    struct fwd_socket *next;
    int kind;                   /* ZMQ_PUSH or ZMQ_PUB */
    int bind;
    char *endpoint;
    void *sock;
    pthread_mutex_t lock;       /* a socket is used by one thread at a time */
};

struct fwd_state {
    void *zctx;
    pthread_mutex_t lock;       /* guards sockets */
    struct fwd_socket *sockets;
};

struct fwd_config {
    const char *endpoint;
    const char *topic;
    int kind;
    int bind;
};

static const char *const known_keys[] = {"endpoint", "topic", "socket", "bind", NULL};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fwd_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    struct fwd_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->zctx = zmq_ctx_new();
    if (!st->zctx) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        free(st);
        return -1;
    }
    zmq_ctx_set(st->zctx, ZMQ_BLOCKY, 0); /* never block termination on a forgotten socket */
    pthread_mutex_init(&st->lock, NULL);
    *state = st;
    return 0;
}

static void fwd_destroy(void *state)
{
    struct fwd_state *st = state;
    if (!st)
        return;
    struct fwd_socket *s = st->sockets;
    while (s) {
        struct fwd_socket *next = s->next;
        zmq_close(s->sock);
        pthread_mutex_destroy(&s->lock);
        free(s->endpoint);
        free(s);
        s = next;
    }
    zmq_ctx_term(st->zctx); /* waits at most LINGER_MS for queued messages */
    pthread_mutex_destroy(&st->lock);
    free(st);
}


static int parse_config(sl_context *ctx, struct fwd_config *c, char *msg, size_t msglen)
{
    const sl_host *h = ctx->host;
    const sl_json *cfg = h->config(ctx);
    const char *bad = sl_config_unknown_key(ctx, known_keys);
    if (h->json_type(cfg) == SL_JSON_OBJECT && bad) {
        snprintf(msg, msglen, "config key \"%.100s\" is not known to zmq_forward.handler; its "
                 "keys are endpoint, topic, socket and bind", bad);
        return -1;
    }
    if (h->json_type(cfg) != SL_JSON_OBJECT || !h->json_get(cfg, "/endpoint")) {
        snprintf(msg, msglen, "the step needs \"config\": {\"endpoint\": ...}, the ZeroMQ "
                 "endpoint to send to, e.g. \"tcp://127.0.0.1:5560\"");
        return -1;
    }
    c->endpoint = h->json_string(h->json_get(cfg, "/endpoint"));
    if (!c->endpoint || !*c->endpoint) {
        snprintf(msg, msglen, "config.endpoint must be a ZeroMQ endpoint string, e.g. "
                 "\"tcp://127.0.0.1:5560\" or \"ipc:///run/sluice/out.sock\"");
        return -1;
    }
    const sl_json *topic = h->json_get(cfg, "/topic");
    c->topic = topic ? h->json_string(topic) : ctx->pipeline;
    if (!c->topic) {
        snprintf(msg, msglen, "config.topic must be a string (the first frame of each message; "
                 "subscribers filter on its prefix)");
        return -1;
    }
    const sl_json *kind = h->json_get(cfg, "/socket");
    const char *k = kind ? h->json_string(kind) : "push";
    if (k && strcmp(k, "push") == 0)
        c->kind = ZMQ_PUSH;
    else if (k && strcmp(k, "pub") == 0)
        c->kind = ZMQ_PUB;
    else {
        snprintf(msg, msglen, "config.socket must be \"push\" (one receiver takes each message; "
                 "the default) or \"pub\" (every subscriber gets a copy)");
        return -1;
    }
    const sl_json *bind = h->json_get(cfg, "/bind");
    int bt = h->json_type(bind);
    if (bind && bt != SL_JSON_TRUE && bt != SL_JSON_FALSE) {
        snprintf(msg, msglen, "config.bind must be true or false");
        return -1;
    }
    /* The usual sides: PUSH connects to a bound PULL, PUB binds for SUBs. */
    c->bind = bind ? bt == SL_JSON_TRUE : c->kind == ZMQ_PUB;
    return 0;
}

static const char *kind_name(int kind)
{
    return kind == ZMQ_PUB ? "pub" : "push";
}

/* The socket for c, made on first use. Returns NULL with msg set. */
static struct fwd_socket *get_socket(sl_context *ctx, struct fwd_state *st,
                                     const struct fwd_config *c, char *msg, size_t msglen)
{
    pthread_mutex_lock(&st->lock);
    struct fwd_socket *s = st->sockets;
    while (s && !(s->kind == c->kind && s->bind == c->bind &&
                  strcmp(s->endpoint, c->endpoint) == 0))
        s = s->next;
    if (s) {
        pthread_mutex_unlock(&st->lock);
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->endpoint = strdup(c->endpoint))) {
        snprintf(msg, msglen, "out of memory");
        goto fail;
    }
    s->kind = c->kind;
    s->bind = c->bind;
    if (!(s->sock = zmq_socket(st->zctx, c->kind))) {
        snprintf(msg, msglen, "cannot create a ZeroMQ %s socket: %s", kind_name(c->kind),
                 zmq_strerror(errno));
        goto fail;
    }
    int linger = LINGER_MS, one = 1;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (c->kind == ZMQ_PUSH) /* no peer yet: block (then fail), do not queue */
        zmq_setsockopt(s->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    int rc = c->bind ? zmq_bind(s->sock, c->endpoint) : zmq_connect(s->sock, c->endpoint);
    if (rc < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(msg, msglen, "cannot bind the %s socket to %s: the address is in use, by "
                     "another program or another sluice worker process (with \"isolation\": "
                     "\"process\" every pipeline, and each of its \"concurrency\" slots, has its "
                     "own worker): bind from one worker only, use \"isolation\": \"thread\", or "
                     "let the receivers bind and set \"bind\": false", kind_name(c->kind),
                     c->endpoint);
        else
            snprintf(msg, msglen, "cannot %s the %s socket to %s: %s (endpoints look like "
                     "tcp://127.0.0.1:5560 or ipc:///run/sluice/out.sock)",
                     c->bind ? "bind" : "connect", kind_name(c->kind), c->endpoint,
                     zmq_strerror(e));
        goto fail;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->next = st->sockets;
    st->sockets = s;
    pthread_mutex_unlock(&st->lock);
    /* One line per socket, not per message: the invocations table counts those. */
    snprintf(msg, msglen, "%s a %s socket to %s; it stays open for the next events",
             c->bind ? "bound" : "connected", kind_name(c->kind), c->endpoint);
    ctx->host->log(ctx, SL_LOG_INFO, msg);
    return s;
fail:
    if (s) {
        if (s->sock)
            zmq_close(s->sock);
        free(s->endpoint);
        free(s);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* Locks s before deadline_ns (CLOCK_MONOTONIC). */
static int lock_until(struct fwd_socket *s, int64_t deadline_ns)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
    struct timespec ts = {(time_t)(deadline_ns / 1000000000LL), (long)(deadline_ns % 1000000000LL)};
    return pthread_mutex_clocklock(&s->lock, CLOCK_MONOTONIC, &ts);
#else
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t left = deadline_ns - now_ns(), at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    at += left > 0 ? left : 0;
    ts.tv_sec = (time_t)(at / 1000000000LL);
    ts.tv_nsec = (long)(at % 1000000000LL);
    return pthread_mutex_timedlock(&s->lock, &ts);
#endif
}

/* Sends TOPIC + JSON within the time left. Returns 0, or -1 with errno
 * (EAGAIN: nobody took it in time; ETIMEDOUT: the socket stayed busy). */
static int send_two(struct fwd_socket *s, const struct fwd_config *c, const sl_event *event,
                    int64_t deadline_ns)
{
    if (lock_until(s, deadline_ns) != 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    int64_t left = (deadline_ns - now_ns()) / 1000000;
    int timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    int rc = zmq_send(s->sock, c->topic, strlen(c->topic), ZMQ_SNDMORE);
    if (rc >= 0) /* the rest of a multi-part message never waits */
        rc = zmq_send(s->sock, event->json, event->len, 0);
    int e = errno;
    pthread_mutex_unlock(&s->lock);
    errno = e;
    return rc < 0 ? -1 : 0;
}

static int fail(const sl_host *h, sl_response *res, const char *type, const char *msg)
{
    h->fail(res, type, msg);
    return 1;
}

static int fwd_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct fwd_state *st = ctx->plugin_state;
    struct fwd_config c;
    char msg[MSG_MAX];
    if (!st)
        return fail(h, res, "Runtime.InitError", "zmq_forward was not initialised");
    if (parse_config(ctx, &c, msg, sizeof msg) < 0)
        return fail(h, res, "ConfigError", msg);
    int64_t remaining = h->remaining_ms(ctx);
    if (remaining <= 0) {
        snprintf(msg, sizeof msg, "no time was left before the step's deadline to send to %s; "
                 "raise the step's \"timeout_ms\"", c.endpoint);
        return fail(h, res, "Sandbox.Timedout", msg);
    }
    int64_t deadline = now_ns() + remaining * 1000000;
    struct fwd_socket *s = get_socket(ctx, st, &c, msg, sizeof msg);
    if (!s)
        return fail(h, res, "ForwardError", msg);
    if (send_two(s, &c, event, deadline) < 0) {
        int e = errno;
        if (e == EAGAIN && c.kind == ZMQ_PUSH)
            snprintf(msg, sizeof msg, "nothing took the message at %s within %lld ms: no PULL "
                     "socket is %s there, or every receiver's queue is full. Start the "
                     "receiver (a PULL socket %s %s), or raise the step's \"timeout_ms\"",
                     c.endpoint, (long long)remaining, c.bind ? "connected" : "bound",
                     c.bind ? "connecting to" : "bound to", c.endpoint);
        else if (e == ETIMEDOUT || e == EAGAIN)
            snprintf(msg, sizeof msg, "the %s socket to %s stayed busy with other invocations "
                     "until the step's deadline (%lld ms)", kind_name(c.kind), c.endpoint,
                     (long long)remaining);
        else if (e == ETERM)
            snprintf(msg, sizeof msg, "cannot send to %s: the worker is shutting down",
                     c.endpoint);
        else
            snprintf(msg, sizeof msg, "cannot send to %s (%s socket): %s", c.endpoint,
                     kind_name(c.kind), zmq_strerror(e));
        return fail(h, res, e == EAGAIN || e == ETIMEDOUT ? "ForwardTimeout" : "ForwardError",
                    msg);
    }
    sl_json *out = h->json_new_object();
    if (!out)
        return fail(h, res, "OutOfMemory", "out of memory building the response");
    h->json_set(out, "forwarded", h->json_new_bool(1));
    h->json_set(out, "endpoint", h->json_new_string(c.endpoint));
    h->json_set(out, "topic", h->json_new_string(c.topic));
    h->json_set(out, "bytes", h->json_new_number((double)event->len));
    int rc = h->respond_json(res, 200, out);
    h->json_free(out);
    return rc < 0 ? fail(h, res, "OutOfMemory", "out of memory building the response") : 0;
}

static const sl_handler_def handlers[] = {
    {"handler", fwd_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "zmq_forward",
    .version = "1.0",
    .handlers = handlers,
    .init = fwd_init,
    .destroy = fwd_destroy,
};
