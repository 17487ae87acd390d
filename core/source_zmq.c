/* source_zmq.c - ZeroMQ sockets on the event loop (see source_zmq.h).
 *
 * ZMQ_FD is edge-triggered: it signals that ZMQ_EVENTS may have changed, not
 * that a message waits. So every wake-up (and every send, which can consume a
 * notification) is followed by reading until ZMQ_EVENTS lacks POLLIN; a round
 * that hits its budget re-queues itself on the loop instead of waiting.
 */
#include "source_zmq.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <zmq.h>

#include "config.h"
#include "json.h"
#include "confmap.h"
#include "log.h"
#include "loop.h"
#include "utf8.h"

#define MAX_FRAMES 8
#define ROUND_BUDGET 512

enum kind { KIND_PULL, KIND_SUB, KIND_ROUTER };

struct sock {
    struct source_zmq *owner;
    enum kind kind;
    void *z;
    int fd;
    char *endpoint;
    struct loop_task again;     /* posted when a round used its budget */
    bool again_posted;
};

struct source_zmq {
    struct loop *loop;
    void *ctx;
    struct source_zmq_callbacks cb;
    void *arg;
    struct sock *socks;
    size_t n_socks;
    bool freeing;
    bool paused;
    int hwm;
    size_t max_bytes;           /* zmq.max_message_bytes: over it, refused with a reason */
    void *zap;                  /* ZAP handler (REP) when CURVE is on */
    int zap_fd;
    struct strv allowed;        /* client public keys, Z85 */
};

struct zmq_peer {
    size_t id_len;
    unsigned char id[256];
};

static const char *kind_name(enum kind k)
{
    return k == KIND_PULL ? "pull" : k == KIND_SUB ? "sub" : "router";
}

/* Read one whole message (all its frames). Returns the frame count, 0 if
 * none waits, or a count above MAX_FRAMES (extra frames dropped). */
static int recv_frames(void *z, zmq_msg_t *frames)
{
    int n = 0;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *m = n < MAX_FRAMES ? &frames[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, z, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            return n; /* EAGAIN on the first frame: nothing waits */
        }
        int more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(m);
        n++;
        if (!more)
            return n;
    }
}

static void close_frames(zmq_msg_t *frames, int n)
{
    for (int i = 0; i < n && i < MAX_FRAMES; i++)
        zmq_msg_close(&frames[i]);
}

static char *frame_str(zmq_msg_t *m)
{
    return strndup(zmq_msg_data(m), zmq_msg_size(m));
}

static void reject(struct sock *s, const char *topic, const char *reason, zmq_msg_t *payload)
{
    char source[300];
    if (topic && !utf8_valid(topic, strlen(topic), NULL))
        topic = "(not UTF-8)"; /* rejected.source is text */
    snprintf(source, sizeof source, "zmq:%s%s%s", kind_name(s->kind), topic ? ":" : "",
             topic ? topic : "");
    s->owner->cb.reject(s->owner->arg, source, reason, payload ? zmq_msg_data(payload) : NULL,
                        payload ? zmq_msg_size(payload) : 0);
}

/* Is this exactly one JSON value as plugins' parser has it (json_check:
 * strict RFC 8259, UTF-8, no NUL bytes)? Checked without building a tree;
 * a refused payload is looked at again to say why. */
static bool json_ok(const void *data, size_t size, char *reason, size_t len)
{
    size_t at = 0;
    const char *what = NULL;
    if (json_check(data, size, &at, &what))
        return true;
    size_t lenient_at = 0;
    cJSON *v = json_parse_exact(data, size, &lenient_at);
    if (!v) {
        snprintf(reason, len, "payload is not valid JSON (near byte %zu of %zu)", lenient_at, size);
        return false;
    }
    cJSON_Delete(v);
    if (!utf8_field_ok("payload", data, size, reason, len))
        return false;
    snprintf(reason, len, "payload is not valid JSON (near byte %zu of %zu: %s)", at, size,
             what ? what : "not strict JSON");
    return false;
}

static bool id_ok(const struct zmq_frame *f)
{
    const unsigned char *p = f->data;
    if (f->size == 0 || f->size > 200)
        return false;
    for (size_t i = 0; i < f->size; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return utf8_valid(f->data, f->size, NULL);
}

int source_zmq_check_event(const struct zmq_frame *f, int n, char *reason, size_t len)
{
    if (n != 2 && n != 3)
        snprintf(reason, len, "expected 2 frames (TOPIC, JSON payload) or 3 (and an event id), "
                 "got %d", n);
    else if (memchr(f[0].data, 0, f[0].size))
        snprintf(reason, len, "the topic frame holds a NUL byte");
    else if (!utf8_field_ok("topic", f[0].data, f[0].size, reason, len))
        return -1;
    else if (n == 3 && !id_ok(&f[2]))
        snprintf(reason, len, "the event id frame must be 1 to 200 printable bytes");
    else if (json_ok(f[1].data, f[1].size, reason, len))
        return 0;
    return -1;
}

static struct zmq_frame view(zmq_msg_t *m)
{
    return (struct zmq_frame){.data = zmq_msg_data(m), .size = zmq_msg_size(m)};
}

/* The whole message's size against max_message_bytes. */
static bool too_big(struct sock *s, zmq_msg_t *frames, int n, char *reason, size_t len)
{
    size_t total = 0;
    for (int i = 0; i < n && i < MAX_FRAMES; i++)
        total += zmq_msg_size(&frames[i]);
    if (total <= s->owner->max_bytes)
        return false;
    snprintf(reason, len, "a message of %zu bytes is over zmq.max_message_bytes (%zu)", total,
             s->owner->max_bytes);
    return true;
}

static void handle_event(struct sock *s, zmq_msg_t *frames, int n)
{
    char reason[200];
    struct zmq_frame f[3];
    for (int i = 0; i < n && i < 3; i++)
        f[i] = view(&frames[i]);
    char *topic = n >= 1 ? frame_str(&frames[0]) : NULL;
    if (too_big(s, frames, n, reason, sizeof reason)) {
        reject(s, topic, reason, NULL);
    } else if (source_zmq_check_event(f, n, reason, sizeof reason) < 0) {
        reject(s, topic, reason, n >= 2 ? &frames[1] : NULL);
    } else {
        char *payload = frame_str(&frames[1]);
        char *id = n == 3 ? frame_str(&frames[2]) : NULL;
        if (payload && (n == 2 || id))
            s->owner->cb.event(s->owner->arg, kind_name(s->kind), topic, payload, id);
        free(payload);
        free(id);
    }
    free(topic);
}

static void send_reply(void *z, const struct zmq_peer *peer, const char *status, const char *json,
                       const char *request_id)
{
    /* ROUTER drops (never blocks) a reply to a peer that went away. */
    zmq_send(z, peer->id, peer->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z, status, strlen(status), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z, json, strlen(json), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z, request_id, strlen(request_id), ZMQ_DONTWAIT);
}

static void invoke_error(struct sock *s, const struct zmq_peer *peer, const char *type,
                         const char *message)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "errorType", type);
    cJSON_AddStringToObject(r, "errorMessage", message);
    char *text = cJSON_PrintUnformatted(r);
    send_reply(s->z, peer, "error", text ? text : "{}", "");
    free(text);
    cJSON_Delete(r);
}

static void handle_replay(struct sock *s, const struct zmq_peer *peer, zmq_msg_t *filter)
{
    char reason[200];
    struct zmq_frame f = view(filter);
    char *text = json_ok(f.data, f.size, reason, sizeof reason) ? frame_str(filter) : NULL;
    struct zmq_peer *owned = text ? malloc(sizeof *owned) : NULL;
    if (!owned) {
        invoke_error(s, peer, "InvalidRequest", text ? "out of memory" : reason);
        free(text);
        return;
    }
    *owned = *peer;
    s->owner->cb.replay(s->owner->arg, owned, text);
    free(text);
}

static void handle_invoke(struct sock *s, zmq_msg_t *frames, int n)
{
    struct zmq_peer peer = {0};
    if (n < 1 || zmq_msg_size(&frames[0]) > sizeof peer.id)
        return; /* ROUTER always gives an identity frame of at most 255 bytes */
    peer.id_len = zmq_msg_size(&frames[0]);
    memcpy(peer.id, zmq_msg_data(&frames[0]), peer.id_len);
    char reason[200];
    if (too_big(s, frames, n, reason, sizeof reason)) {
        reject(s, NULL, reason, NULL);
        invoke_error(s, &peer, "RequestTooLarge", reason);
        return;
    }
    if (n == 3 && zmq_msg_size(&frames[1]) == 0 && zmq_msg_size(&frames[2]) == 6 &&
        memcmp(zmq_msg_data(&frames[2]), "refill", 6) == 0) {
        s->owner->cb.refill(s->owner->arg);
        send_reply(s->z, &peer, "ok", "{}", "");
        return;
    }
    if (n == 4 && zmq_msg_size(&frames[1]) == 0 && zmq_msg_size(&frames[2]) == 6 &&
        memcmp(zmq_msg_data(&frames[2]), "replay", 6) == 0) {
        handle_replay(s, &peer, &frames[3]);
        return;
    }
    if ((n != 5 && n != 6) || zmq_msg_size(&frames[1]) != 0 || zmq_msg_size(&frames[2]) != 6 ||
        memcmp(zmq_msg_data(&frames[2]), "invoke", 6) != 0) {
        snprintf(reason, sizeof reason, "expected frames \"\", \"invoke\", PIPELINE, JSON "
                 "[, EVENT_ID] (a REQ socket adds the empty one), got %d frames", n - 1);
        reject(s, NULL, reason, n >= 5 ? &frames[4] : NULL);
        invoke_error(s, &peer, "InvalidRequest", reason);
        return;
    }
    char *pipeline = frame_str(&frames[3]);
    struct zmq_frame idf = n == 6 ? view(&frames[5]) : (struct zmq_frame){0};
    char *id = n == 6 && id_ok(&idf) ? frame_str(&frames[5]) : NULL;
    struct zmq_frame payload_f = view(&frames[4]);
    if (n == 6 && !id) {
        reject(s, pipeline, "the event id frame must be 1 to 200 printable bytes", &frames[4]);
        invoke_error(s, &peer, "InvalidRequest", "the event id must be 1 to 200 printable bytes");
    } else if (!json_ok(payload_f.data, payload_f.size, reason, sizeof reason)) {
        reject(s, pipeline, reason, &frames[4]);
        invoke_error(s, &peer, "InvalidRequest", reason);
    } else {
        char *payload = frame_str(&frames[4]);
        struct zmq_peer *owned = malloc(sizeof *owned);
        if (pipeline && payload && owned) {
            *owned = peer;
            s->owner->cb.invoke(s->owner->arg, owned, pipeline, payload, id);
        } else {
            free(owned);
            invoke_error(s, &peer, "OutOfMemory", "sluice is out of memory");
        }
        free(payload);
    }
    free(id);
    free(pipeline);
}

static bool readable(void *z)
{
    int events = 0;
    size_t len = sizeof events;
    return zmq_getsockopt(z, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

static void drain_again(struct loop_task *t);

/* Read up to a budget of messages; re-queue if more wait. */
static void drain(struct sock *s)
{
    if (s->owner->paused && s->kind != KIND_ROUTER)
        return;
    for (int i = 0; i < ROUND_BUDGET; i++) {
        zmq_msg_t frames[MAX_FRAMES];
        int n = recv_frames(s->z, frames);
        if (n == 0)
            return;
        if (s->kind == KIND_ROUTER)
            handle_invoke(s, frames, n);
        else
            handle_event(s, frames, n);
        close_frames(frames, n);
    }
    if (readable(s->z) && !s->again_posted && !s->owner->freeing) {
        s->again_posted = true;
        s->again.run = drain_again;
        loop_post(s->owner->loop, &s->again);
    }
}

static void drain_again(struct loop_task *t)
{
    struct sock *s = (struct sock *)((char *)t - offsetof(struct sock, again));
    s->again_posted = false;
    if (!s->owner->freeing)
        drain(s);
}

static void on_fd(void *arg, uint32_t events)
{
    (void)events;
    drain(arg);
}

void source_zmq_answer(struct source_zmq *zs, struct zmq_peer *peer, bool ok, const char *json,
                       const char *request_id)
{
    for (size_t i = 0; i < zs->n_socks; i++) {
        struct sock *s = &zs->socks[i];
        if (s->kind != KIND_ROUTER)
            continue;
        send_reply(s->z, peer, ok ? "ok" : "error", json, request_id ? request_id : "");
        drain(s); /* a send may have eaten the fd's edge */
    }
    free(peer);
}

static int set_int(void *z, int opt, int value)
{
    return zmq_setsockopt(z, opt, &value, sizeof value);
}

/* CURVE server side on a bound socket. */
static int curve_server(void *z, const struct config *cfg, struct err *e)
{
    int one = 1;
    if (zmq_setsockopt(z, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
        zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, cfg->zmq.curve_secret, 40) < 0)
        return err_set(e, "CURVE: %s (is libzmq built with libsodium? is the key from `sluice "
                       "keygen`?)", zmq_strerror(zmq_errno()));
    return 0;
}

static int open_sock(struct source_zmq *zs, struct sock *s, enum kind kind, const char *endpoint,
                     const struct config *cfg, struct err *e)
{
    static const int types[] = {ZMQ_PULL, ZMQ_SUB, ZMQ_ROUTER};
    s->owner = zs;
    s->kind = kind;
    s->endpoint = strdup(endpoint);
    s->z = zmq_socket(zs->ctx, types[kind]);
    if (!s->z || !s->endpoint)
        return err_set(e, "cannot create a ZeroMQ %s socket: %s", kind_name(kind),
                       zmq_strerror(zmq_errno()));
    /* Messages over max_message_bytes are refused with a clear reason (a row
     * in rejected, an answer to an invoke); ZMQ_MAXMSGSIZE is the hard wall
     * far above it, where libzmq drops the peer before reading more. */
    int64_t max = (int64_t)cfg->zmq.max_message_bytes * 16 + (1 << 20);
    zmq_setsockopt(s->z, ZMQ_MAXMSGSIZE, &max, sizeof max);
    set_int(s->z, ZMQ_RCVHWM, cfg->zmq.hwm);
    set_int(s->z, ZMQ_SNDHWM, cfg->zmq.hwm);
    set_int(s->z, ZMQ_LINGER, kind == KIND_ROUTER ? 1000 : 0);
    if (kind != KIND_SUB && cfg->zmq.curve_secret && curve_server(s->z, cfg, e) < 0)
        return -1;
    int rc = kind == KIND_SUB ? zmq_connect(s->z, endpoint) : zmq_bind(s->z, endpoint);
    if (rc < 0)
        return err_set(e, "cannot %s the ZeroMQ %s socket %s %s: %s%s",
                       kind == KIND_SUB ? "connect" : "bind", kind_name(kind),
                       kind == KIND_SUB ? "to" : "to", endpoint, zmq_strerror(zmq_errno()),
                       zmq_errno() == EADDRINUSE ? " (is another sluice running? set other "
                       "endpoints under \"zmq\" in sluice.json)" : "");
    size_t len = sizeof s->fd;
    if (zmq_getsockopt(s->z, ZMQ_FD, &s->fd, &len) < 0)
        return err_set(e, "ZMQ_FD: %s", zmq_strerror(zmq_errno()));
    return loop_add_fd(zs->loop, s->fd, EPOLLIN | EPOLLET, on_fd, s, e);
}

static int subscribe(struct sock *s, const cJSON *sub)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(sub, "topics");
    if (!cJSON_IsArray(topics) || cJSON_GetArraySize(topics) == 0)
        return zmq_setsockopt(s->z, ZMQ_SUBSCRIBE, "", 0);
    const cJSON *t;
    cJSON_ArrayForEach(t, topics) {
        if (cJSON_IsString(t) && zmq_setsockopt(s->z, ZMQ_SUBSCRIBE, t->valuestring,
                                                strlen(t->valuestring)) < 0)
            return -1;
    }
    return 0;
}

/* ZAP (RFC 27): libzmq asks, for each CURVE handshake, whether the
 * client's public key may come in. Answered on the loop, from the allow-list. */
static void on_zap(void *arg, uint32_t events)
{
    struct source_zmq *zs = arg;
    (void)events;
    for (;;) {
        zmq_msg_t frames[MAX_FRAMES];
        int n = recv_frames(zs->zap, frames);
        if (n == 0)
            break;
        bool ok = false;
        char key[41] = "";
        if (n >= 7 && zmq_msg_size(&frames[6]) == 32) {
            zmq_z85_encode(key, zmq_msg_data(&frames[6]), 32);
            for (size_t i = 0; i < zs->allowed.n && !ok; i++)
                ok = strcmp(zs->allowed.v[i], key) == 0;
        }
        if (!ok)
            log_msg(LOG_WARN, "zmq: refused a CURVE client whose key %s is not in "
                    "zmq.curve.allowed_clients", key[0] ? key : "(none)");
        const char *status = ok ? "200" : "400";
        zmq_send(zs->zap, "1.0", 3, ZMQ_SNDMORE);
        if (n >= 2)
            zmq_send(zs->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE);
        else
            zmq_send(zs->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(zs->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(zs->zap, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
        zmq_send(zs->zap, key, strlen(key), ZMQ_SNDMORE);
        zmq_send(zs->zap, "", 0, 0);
        close_frames(frames, n);
    }
}

static int start_zap(struct source_zmq *zs, const struct config *cfg, struct err *e)
{
    zs->allowed.v = calloc(cfg->zmq.curve_clients.n + 1, sizeof(char *));
    for (size_t i = 0; zs->allowed.v && i < cfg->zmq.curve_clients.n; i++)
        if ((zs->allowed.v[i] = strdup(cfg->zmq.curve_clients.v[i])))
            zs->allowed.n++;
    zs->zap = zmq_socket(zs->ctx, ZMQ_REP);
    size_t len = sizeof zs->zap_fd;
    if (!zs->allowed.v || !zs->zap || zmq_bind(zs->zap, "inproc://zeromq.zap.01") < 0 ||
        zmq_getsockopt(zs->zap, ZMQ_FD, &zs->zap_fd, &len) < 0)
        return err_set(e, "cannot start the CURVE authenticator: %s", zmq_strerror(zmq_errno()));
    return loop_add_fd(zs->loop, zs->zap_fd, EPOLLIN | EPOLLET, on_zap, zs, e);
}

static int open_all(struct source_zmq *zs, const struct config *cfg, struct err *e)
{
    if (cfg->zmq.curve_secret && start_zap(zs, cfg, e) < 0)
        return -1;
    size_t n_subs = cfg->zmq.sub_raw ? (size_t)cJSON_GetArraySize(cfg->zmq.sub_raw) : 0;
    zs->socks = calloc(2 + n_subs, sizeof *zs->socks);
    if (!zs->socks)
        return err_set(e, "out of memory");
    if (open_sock(zs, &zs->socks[zs->n_socks++], KIND_PULL, cfg->zmq.pull, cfg, e) < 0 ||
        open_sock(zs, &zs->socks[zs->n_socks++], KIND_ROUTER, cfg->zmq.router, cfg, e) < 0)
        return -1;
    const cJSON *sub;
    cJSON_ArrayForEach(sub, cfg->zmq.sub_raw) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(sub, "endpoint");
        struct sock *s = &zs->socks[zs->n_socks++];
        if (open_sock(zs, s, KIND_SUB, ep->valuestring, cfg, e) < 0)
            return -1;
        if (subscribe(s, sub) < 0)
            return err_set(e, "cannot subscribe on %s: %s", ep->valuestring,
                           zmq_strerror(zmq_errno()));
    }
    return 0;
}

int source_zmq_new(struct loop *l, const struct config *cfg,
                   const struct source_zmq_callbacks *cb, void *arg, struct source_zmq **out,
                   struct err *e)
{
    struct source_zmq *zs = calloc(1, sizeof *zs);
    if (!zs)
        return err_set(e, "out of memory");
    zs->loop = l;
    zs->hwm = cfg->zmq.hwm;
    zs->max_bytes = (size_t)cfg->zmq.max_message_bytes;
    zs->cb = *cb;
    zs->arg = arg;
    zs->ctx = zmq_ctx_new();
    if (!zs->ctx || open_all(zs, cfg, e) < 0) {
        source_zmq_free(&zs);
        return -1;
    }
    for (size_t i = 0; i < zs->n_socks; i++) {
        log_msg(LOG_INFO, "zmq %s socket on %s", kind_name(zs->socks[i].kind),
                zs->socks[i].endpoint);
        drain(&zs->socks[i]); /* anything that arrived before the fd was watched */
    }
    *out = zs;
    return 0;
}

void *source_zmq_context(struct source_zmq *zs)
{
    return zs->ctx;
}

bool source_zmq_pause(struct source_zmq *zs, bool paused)
{
    if (zs->paused == paused)
        return false;
    zs->paused = paused;
    for (size_t i = 0; !paused && i < zs->n_socks; i++)
        drain(&zs->socks[i]); /* edge-triggered: what queued meanwhile signals nothing new */
    return true;
}

void source_zmq_free(struct source_zmq **zp)
{
    struct source_zmq *zs = *zp;
    if (!zs)
        return;
    zs->freeing = true;
    for (size_t i = 0; i < zs->n_socks; i++) {
        struct sock *s = &zs->socks[i];
        if (s->again_posted)
            loop_cancel(zs->loop, &s->again);
        if (s->fd > 0)
            loop_del_fd(zs->loop, s->fd);
        if (s->z)
            zmq_close(s->z);
        free(s->endpoint);
    }
    free(zs->socks);
    if (zs->zap) {
        if (zs->zap_fd > 0)
            loop_del_fd(zs->loop, zs->zap_fd);
        zmq_close(zs->zap);
    }
    strv_free(&zs->allowed);
    if (zs->ctx)
        zmq_ctx_term(zs->ctx);
    free(zs);
    *zp = NULL;
}

char *source_zmq_connect_endpoint(const char *bind_endpoint)
{
    static const char *const wild[] = {"tcp://*:", "tcp://0.0.0.0:"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(wild[i]);
        if (strncmp(bind_endpoint, wild[i], n) == 0) {
            size_t len = strlen(bind_endpoint) + 16;
            char *out = malloc(len);
            if (out)
                snprintf(out, len, "tcp://127.0.0.1:%s", bind_endpoint + n);
            return out;
        }
    }
    return strdup(bind_endpoint);
}
