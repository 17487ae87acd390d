/* zmq_forward.c - the zmq_forward plugin: send the step's event (the
 * previous step's response) to a ZeroMQ endpoint as two frames, TOPIC and
 * the JSON, for other programs to consume: sluice's SNS topic, or a Lambda
 * destination.
 *
 * Design: one instance per step (create, with the step's config checked by
 * the host against config_keys), holding a ZeroMQ context and the step's one
 * socket, created on first use and kept, so connections stay up between
 * events. ZeroMQ sockets are not thread-safe and, under "thread" isolation,
 * handlers run on several threads at once, so the socket has a mutex; a
 * send holds it for at most the step's remaining time. A PUSH socket sets
 * ZMQ_IMMEDIATE, so with no receiver connected the send waits (up to the
 * deadline) and fails clearly instead of queueing for a peer that may never
 * come. LINGER is bounded so that shutdown never hangs on an absent peer.
 *
 * Binding follows the daemon's own exposure rule (docs/zeromq.md): a bound
 * endpoint stays on loopback (or ipc://, inproc://) unless the step sets
 * "allow_remote": true; the plugin has no CURVE, so nothing else opens it.
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

struct fwd_instance {
    void *zctx;
    char *endpoint;
    char *topic;                /* NULL: the pipeline's name */
    int kind;                   /* ZMQ_PUSH or ZMQ_PUB */
    int bind;
    pthread_mutex_t lock;       /* guards sock; one thread sends at a time */
    void *sock;                 /* made on first use */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fwd_destroy(void *instance)
{
    struct fwd_instance *in = instance;
    if (!in)
        return;
    if (in->sock)
        zmq_close(in->sock);
    if (in->zctx)
        zmq_ctx_term(in->zctx); /* waits at most LINGER_MS for queued messages */
    pthread_mutex_destroy(&in->lock);
    free(in->endpoint);
    free(in->topic);
    free(in);
}

/* Reachable from this machine only: loopback, ipc://, inproc:// (as the
 * daemon's config_endpoint_local judges its own binds). */
static int endpoint_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return 1;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return 0;
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0 || strncmp(host, "lo:", 3) == 0;
}

/* The step's config, checked by the host already (types, unknown keys). */
static int parse_config(const sl_host *h, const sl_json *cfg, struct fwd_instance *in,
                        char *msg, size_t msglen)
{
    const char *endpoint = h->json_string(h->json_get(cfg, "/endpoint"));
    if (!endpoint || !*endpoint) {
        snprintf(msg, msglen, "config.endpoint must be a ZeroMQ endpoint string, e.g. "
                 "\"tcp://127.0.0.1:5560\" or \"ipc:///run/sluice/out.sock\"");
        return -1;
    }
    const char *topic = h->json_string(h->json_get(cfg, "/topic"));
    const char *k = h->json_string(h->json_get(cfg, "/socket"));
    if (strcmp(k, "push") == 0)
        in->kind = ZMQ_PUSH;
    else if (strcmp(k, "pub") == 0)
        in->kind = ZMQ_PUB;
    else {
        snprintf(msg, msglen, "config.socket must be \"push\" (one receiver takes each message; "
                 "the default) or \"pub\" (every subscriber gets a copy)");
        return -1;
    }
    const sl_json *bind = h->json_get(cfg, "/bind");
    /* The usual sides: PUSH connects to a bound PULL, PUB binds for SUBs. */
    in->bind = bind ? h->json_type(bind) == SL_JSON_TRUE : in->kind == ZMQ_PUB;
    int remote = h->json_type(h->json_get(cfg, "/allow_remote")) == SL_JSON_TRUE;
    if (in->bind && !remote && !endpoint_local(endpoint)) {
        snprintf(msg, msglen, "config.endpoint: binding %.300s makes it reachable from other "
                 "machines without authentication; bind a loopback address "
                 "(tcp://127.0.0.1:PORT) or ipc://, or set \"allow_remote\": true", endpoint);
        return -1;
    }
    in->endpoint = strdup(endpoint);
    in->topic = topic ? strdup(topic) : NULL;
    if (!in->endpoint || (topic && !in->topic)) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    return 0;
}

static int fwd_create(const sl_host *h, const sl_json *cfg, void **instance, char *err,
                      size_t errlen)
{
    struct fwd_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&in->lock, NULL);
    if (parse_config(h, cfg, in, err, errlen) < 0) {
        fwd_destroy(in);
        return -1;
    }
    if (!(in->zctx = zmq_ctx_new())) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        fwd_destroy(in);
        return -1;
    }
    zmq_ctx_set(in->zctx, ZMQ_BLOCKY, 0); /* never block termination on a forgotten socket */
    *instance = in;
    return 0;
}

static const char *kind_name(int kind)
{
    return kind == ZMQ_PUB ? "pub" : "push";
}

/* Opens in->sock; called with in->lock held. Returns -1 with msg set. */
static int open_socket(const sl_context *ctx, struct fwd_instance *in, char *msg, size_t msglen)
{
    void *sock = zmq_socket(in->zctx, in->kind);
    if (!sock) {
        snprintf(msg, msglen, "cannot create a ZeroMQ %s socket: %s", kind_name(in->kind),
                 zmq_strerror(errno));
        return -1;
    }
    int linger = LINGER_MS, one = 1;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (in->kind == ZMQ_PUSH) /* no peer yet: block (then fail), do not queue */
        zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof one);
    int rc = in->bind ? zmq_bind(sock, in->endpoint) : zmq_connect(sock, in->endpoint);
    if (rc < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(msg, msglen, "cannot bind the %s socket to %s: the address is in use, by "
                     "another program or another sluice worker process (with \"isolation\": "
                     "\"process\" every pipeline, and each of its \"concurrency\" slots, has its "
                     "own worker): bind from one worker only, use \"isolation\": \"thread\", or "
                     "let the receivers bind and set \"bind\": false", kind_name(in->kind),
                     in->endpoint);
        else
            snprintf(msg, msglen, "cannot %s the %s socket to %s: %s (endpoints look like "
                     "tcp://127.0.0.1:5560 or ipc:///run/sluice/out.sock)",
                     in->bind ? "bind" : "connect", kind_name(in->kind), in->endpoint,
                     zmq_strerror(e));
        zmq_close(sock);
        return -1;
    }
    in->sock = sock;
    /* One line per socket, not per message: the invocations table counts those. */
    ctx->host->logf(ctx, SL_LOG_INFO, "%s a %s socket to %s; it stays open for the next events",
                    in->bind ? "bound" : "connected", kind_name(in->kind), in->endpoint);
    return 0;
}

/* Locks in before deadline_ns (CLOCK_MONOTONIC). */
static int lock_until(struct fwd_instance *s, int64_t deadline_ns)
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

/* Sends TOPIC + JSON within the time left, opening the socket first if
 * need be. Returns 0, or -1 with errno (EAGAIN: nobody took it in time;
 * ETIMEDOUT: the socket stayed busy; 0: opening failed, msg says why). */
static int send_two(const sl_context *ctx, struct fwd_instance *in, const char *topic,
                    const sl_event *event, int64_t deadline_ns, char *msg, size_t msglen)
{
    if (lock_until(in, deadline_ns) != 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (!in->sock && open_socket(ctx, in, msg, msglen) < 0) {
        pthread_mutex_unlock(&in->lock);
        errno = 0;
        return -1;
    }
    int64_t left = (deadline_ns - now_ns()) / 1000000;
    int timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    zmq_setsockopt(in->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    int rc = zmq_send(in->sock, topic, strlen(topic), ZMQ_SNDMORE);
    if (rc >= 0) /* the rest of a multi-part message never waits */
        rc = zmq_send(in->sock, event->json, event->len, 0);
    int e = errno;
    pthread_mutex_unlock(&in->lock);
    errno = e;
    return rc < 0 ? -1 : 0;
}

static void explain(const struct fwd_instance *in, int e, int64_t remaining, char *msg,
                    size_t msglen)
{
    if (e == EAGAIN && in->kind == ZMQ_PUSH)
        snprintf(msg, msglen, "nothing took the message at %s within %lld ms: no PULL "
                 "socket is %s there, or every receiver's queue is full. Start the "
                 "receiver (a PULL socket %s %s), or raise the step's \"timeout_ms\"",
                 in->endpoint, (long long)remaining, in->bind ? "connected" : "bound",
                 in->bind ? "connecting to" : "bound to", in->endpoint);
    else if (e == ETIMEDOUT || e == EAGAIN)
        snprintf(msg, msglen, "the %s socket to %s stayed busy with other invocations "
                 "until the step's deadline (%lld ms)", kind_name(in->kind), in->endpoint,
                 (long long)remaining);
    else if (e == ETERM)
        snprintf(msg, msglen, "cannot send to %s: the worker is shutting down", in->endpoint);
    else
        snprintf(msg, msglen, "cannot send to %s (%s socket): %s", in->endpoint,
                 kind_name(in->kind), zmq_strerror(e));
}

static int fwd_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct fwd_instance *in = ctx->instance;
    const char *topic = in->topic ? in->topic : ctx->pipeline;
    char msg[MSG_MAX];
    int64_t remaining = h->remaining_ms(ctx);
    if (remaining <= 0) {
        h->failf(res, "Sandbox.Timedout", "no time was left before the step's deadline to send "
                 "to %s; raise the step's \"timeout_ms\"", in->endpoint);
        return 1;
    }
    int64_t deadline = now_ns() + remaining * 1000000;
    if (send_two(ctx, in, topic, event, deadline, msg, sizeof msg) < 0) {
        int e = errno;
        if (e != 0)
            explain(in, e, remaining, msg, sizeof msg);
        h->fail(res, e == EAGAIN || e == ETIMEDOUT ? "ForwardTimeout" : "ForwardError", msg);
        return 1;
    }
    sl_writer *w = h->writer_begin(res);
    h->write_object(w);
    h->write_key(w, "forwarded", 9);
    h->write_bool(w, 1);
    h->write_key(w, "endpoint", 8);
    h->write_string(w, in->endpoint, strlen(in->endpoint));
    h->write_key(w, "topic", 5);
    h->write_string(w, topic, strlen(topic));
    h->write_key(w, "bytes", 5);
    h->write_int(w, (int64_t)event->len);
    h->write_close(w);
    if (h->writer_end(w, 200) < 0) {
        h->fail(res, "OutOfMemory", "out of memory building the response");
        return 1;
    }
    return 0;
}

static const sl_handler_def handlers[] = {
    {"handler", fwd_handler},
    {NULL, NULL},
};

static const sl_config_key config_keys[] = {
    {"endpoint", SL_CONFIG_STRING, 1, NULL,
     "the ZeroMQ endpoint to send to, e.g. \"tcp://127.0.0.1:5560\""},
    {"topic", SL_CONFIG_STRING, 0, NULL, "the first frame of each message (default: the "
     "pipeline's name)"},
    {"socket", SL_CONFIG_STRING, 0, "\"push\"", "\"push\" (one receiver) or \"pub\" (every "
     "subscriber)"},
    {"bind", SL_CONFIG_BOOL, 0, NULL, "bind the endpoint instead of connecting (default: "
     "false for push, true for pub)"},
    {"allow_remote", SL_CONFIG_BOOL, 0, "false", "let a bound endpoint be reachable from other "
     "machines (there is no authentication)"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "zmq_forward",
    .version = "1.0",
    .handlers = handlers,
    .destroy = fwd_destroy,
    .create = fwd_create,
    .config_keys = config_keys,
};
