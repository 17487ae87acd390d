/* cmd_zmq.c - the ZeroMQ clients: `sluice publish` (PUSH to the daemon's
 * PULL socket) and `sluice invoke` (DEALER to its ROUTER socket).
 *
 * Both wait for the connection with a socket monitor, so a daemon that is
 * not running is reported at once ("connection refused") instead of after
 * the whole timeout, and never hangs.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <nats/nats.h>
#include <zmq.h>

#include "cli.h"
#include "err.h"
#include "json.h"
#include "clock.h"
#include "config.h"
#include "nats_publish.h"
#include "source_zmq.h"

static const char publish_usage[] =
    "usage: sluice publish [-c FILE] [--lines] [--id ID] [--timeout MS] TOPIC [JSON|-]\n"
    "       sluice publish --nats URL [--lines] [--id ID] [--timeout MS] SUBJECT [JSON|-]\n"
    "\n"
    "Publishes one event to the daemon's PULL socket (zmq.pull in sluice.json) as two\n"
    "frames, TOPIC and the JSON payload. JSON comes from the argument, or from stdin\n"
    "when it is - or absent. With --lines, each non-empty stdin line is one event.\n"
    "Fire and forget: the daemon journals what it accepts; `sluice logs` shows runs.\n"
    "  --id ID        the event's id: an id the pipeline already ran is not run again\n"
    "                 (with --nats: the Nats-Msg-Id the stream deduplicates by;\n"
    "                 with --nats --lines, line N's is ID:N)\n"
    "  --nats URL     publish to NATS JetStream instead, each message acknowledged by\n"
    "                 the stream (nats://HOST:4222, comma-separated for a cluster)\n"
    "  --timeout MS   give up if no daemon accepts within MS (default 5000); with\n"
    "                 --nats, a message not acknowledged is sent again until then\n";

static const char invoke_usage[] =
    "usage: sluice invoke [-c FILE] [--id ID] [--timeout MS] [-v] PIPELINE [JSON|-]\n"
    "\n"
    "Runs PIPELINE synchronously through the daemon (zmq.router in sluice.json) and\n"
    "prints its response, {\"statusCode\":...,\"body\":...}. On failure prints the error\n"
    "JSON ({\"errorType\":...,\"errorMessage\":...}) and exits non-zero. The event is\n"
    "the JSON argument, stdin with -, or {} when absent.\n"
    "  --id ID        the event's id: an id the pipeline already ran is refused\n"
    "  --timeout MS   wait at most MS for the answer (default 30000)\n"
    "  -v             also print the request id (to find the run in `sluice logs`)\n"
    "exit status: 0 success, 1 the pipeline failed, 2 usage, 3 no answer in time\n";

struct client_opts {
    const char *config;
    int timeout_ms;
    int lines;
    int verbose;
    const char *target;         /* TOPIC or PIPELINE */
    const char *json;           /* NULL or "-": stdin */
    const char *id;             /* the producer's event id, or NULL */
    const char *nats;           /* publish: a NATS URL instead of the daemon */
};

/* Options may come before or after the positional arguments. Returns an
 * exit status, or -1 to go on. */
static int parse_opts(int argc, char **argv, const char *usage, struct client_opts *o)
{
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--lines") == 0 && usage == publish_usage) {
            o->lines = 1;
        } else if (strcmp(a, "-v") == 0 && usage == invoke_usage) {
            o->verbose = 1;
        } else if (strcmp(a, "--nats") == 0 && i + 1 < argc && usage == publish_usage) {
            o->nats = argv[++i];
        } else if (strcmp(a, "--id") == 0 && i + 1 < argc) {
            o->id = argv[++i];
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            o->config = argv[++i];
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            char *end;
            long ms = strtol(argv[++i], &end, 10);
            if (*end || ms < 1 || ms > 86400000) {
                fprintf(stderr, "sluice %s: --timeout wants milliseconds (1 to 86400000), not "
                        "\"%s\"\n", argv[0], argv[i]);
                return 2;
            }
            o->timeout_ms = (int)ms;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sluice %s: unknown option \"%s\"\n\n%s", argv[0], a, usage);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            n_pos++;
        }
    }
    if (n_pos < 1 || n_pos > 2) {
        fprintf(stderr, "sluice %s: expected %s [JSON|-]\n\n%s", argv[0],
                usage == publish_usage ? "TOPIC" : "PIPELINE", usage);
        return 2;
    }
    o->target = pos[0];
    o->json = n_pos > 1 ? pos[1] : NULL;
    if (o->id && ((o->lines && !o->nats) || !*o->id || strlen(o->id) > 200)) {
        fprintf(stderr, "sluice %s: --id wants 1 to 200 characters, and one event (not "
                "--lines)\n", argv[0]);
        return 2;
    }
    return -1;
}

static char *read_stdin(void)
{
    size_t cap = 65536, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + used, 1, cap - used - 1, stdin);
        used += n;
        if (n == 0)
            break;
        if (cap - used < 2) {
            char *nbuf = realloc(buf, cap * 2);
            if (!nbuf) {
                free(buf);
                return NULL;
            }
            buf = nbuf;
            cap *= 2;
        }
    }
    if (buf)
        buf[used] = '\0';
    return buf;
}

/* Is text one JSON value, no larger than the daemon takes (max_bytes; 0:
 * unknown)? If not, why goes into e. */
static int check_json(const char *text, size_t max_bytes, const char *what, struct err *e)
{
    size_t len = strlen(text), at = 0;
    if (max_bytes && len > max_bytes)
        return err_set(e, "%s is %zu bytes, over the daemon's zmq.max_message_bytes (%zu); "
                       "nothing sent for it", what, len, max_bytes);
    cJSON *v = json_parse_exact(text, len, &at);
    if (!v)
        return err_set(e, "%s is not valid JSON (near byte %zu); nothing sent for it", what, at);
    cJSON_Delete(v);
    return 0;
}

/* One monitor event: frame 1 holds the event number and a value, frame 2
 * the endpoint. */
static uint16_t monitor_event(void *mon)
{
    uint16_t event = 0;
    int more = 1;
    for (int frame = 0; more; frame++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, mon, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        if (frame == 0 && zmq_msg_size(&m) >= 2)
            memcpy(&event, zmq_msg_data(&m), 2);
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return event;
}

/* Connect and wait until the connection is up. Returns 0, or -1 with why
 * (refused at once, or nothing within timeout_ms). */
static int connect_wait(void *ctx, void *sock, const char *endpoint, int timeout_ms,
                        struct err *why)
{
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://sluice-monitor-%p", sock);
    zmq_socket_monitor(sock, mon_ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_CONNECT_RETRIED |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_connect(mon, mon_ep);
    int rc = zmq_connect(sock, endpoint);
    if (rc < 0) {
        err_set(why, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(mon);
        return -1;
    }
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    rc = -1;
    for (;;) {
        long left = (long)((deadline - clock_mono_ns()) / 1000000);
        zmq_pollitem_t item = {.socket = mon, .events = ZMQ_POLLIN};
        if (left <= 0 || zmq_poll(&item, 1, left) <= 0) {
            err_set(why, "no sluice daemon answered at %s within %d ms (is `sluice run` running "
                    "with this config?)", endpoint, timeout_ms);
            break;
        }
        uint16_t event = monitor_event(mon);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            rc = 0;
            break;
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            err_set(why, "the daemon at %s refused the connection (CURVE: is this client's "
                    "public key in zmq.curve.allowed_clients, and are the keys in sluice.json "
                    "right?)", endpoint);
            break;
        }
        if (event == ZMQ_EVENT_CONNECT_RETRIED) {
            err_set(why, "no sluice daemon at %s (connection refused; is `sluice run` running "
                    "with this config?)", endpoint);
            break;
        }
    }
    zmq_socket_monitor(sock, NULL, 0);
    zmq_close(mon);
    return rc;
}

/* The client's CURVE keys, when the daemon wants them. */
struct client_keys {
    char server[41], secret[41], public[41];
    size_t max_bytes;           /* the daemon's zmq.max_message_bytes */
};

/* The endpoint to connect to, and CURVE keys, from the config. */
static char *endpoint_from_config(const char *config, int router, struct client_keys *keys)
{
    struct diag d = {0};
    struct config *cfg = NULL;
    if (config_load(config, &cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return NULL;
    }
    diag_free(&d);
    char *ep = source_zmq_connect_endpoint(router ? cfg->zmq.router : cfg->zmq.pull);
    memset(keys, 0, sizeof *keys);
    keys->max_bytes = (size_t)cfg->zmq.max_message_bytes;
    if (cfg->zmq.curve_public && cfg->zmq.client_secret && cfg->zmq.client_public) {
        snprintf(keys->server, sizeof keys->server, "%s", cfg->zmq.curve_public);
        snprintf(keys->secret, sizeof keys->secret, "%s", cfg->zmq.client_secret);
        snprintf(keys->public, sizeof keys->public, "%s", cfg->zmq.client_public);
    }
    config_free(&cfg);
    return ep;
}

static void use_keys(void *sock, const struct client_keys *k)
{
    if (!k->server[0])
        return;
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k->server, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->public, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->secret, 40);
}

static int send_event(void *sock, const char *topic, const char *json, const char *id)
{
    if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, json, strlen(json), id ? ZMQ_SNDMORE : 0) < 0 ||
        (id && zmq_send(sock, id, strlen(id), 0) < 0)) {
        fprintf(stderr, "sluice publish: send failed: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* An invoke that fails before any answer: the error JSON on stdout (for
 * scripts, like the daemon's own errors) and the message on stderr. */
static void print_error(const char *type, const char *message)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "errorType", type);
    cJSON_AddStringToObject(r, "errorMessage", message);
    char *json = cJSON_PrintUnformatted(r);
    printf("%s\n", json ? json : "{}");
    fprintf(stderr, "sluice invoke: %s\n", message);
    free(json);
    cJSON_Delete(r);
}

static int publish_lines(void *sock, const char *topic, size_t max_bytes)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int bad = 0, number = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        number++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        char what[32];
        snprintf(what, sizeof what, "line %d", number);
        struct err e;
        if (check_json(line, max_bytes, what, &e) < 0) {
            fprintf(stderr, "sluice publish: %s\n", e.msg);
            bad++;
        }
        else if (send_event(sock, topic, line, NULL) < 0) {
            bad++;
            break;
        }
    }
    free(line);
    return bad ? 1 : 0;
}

static int publish(void *ctx, const struct client_opts *o, const char *endpoint,
                   const struct client_keys *keys)
{
    void *sock = zmq_socket(ctx, ZMQ_PUSH);
    use_keys(sock, keys);
    int one = 1, linger = o->timeout_ms;
    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &linger, sizeof linger);
    int status = 1;
    struct err why;
    if (connect_wait(ctx, sock, endpoint, o->timeout_ms, &why) < 0) {
        fprintf(stderr, "sluice publish: %s\n", why.msg);
    } else {
        if (o->lines) {
            status = publish_lines(sock, o->target, keys->max_bytes);
        } else {
            char *text = o->json && strcmp(o->json, "-") != 0 ? strdup(o->json) : read_stdin();
            struct err e;
            if (text && check_json(text, keys->max_bytes, "the payload", &e) < 0)
                fprintf(stderr, "sluice publish: %s\n", e.msg);
            else if (text)
                status = send_event(sock, o->target, text, o->id) < 0;
            free(text);
        }
    }
    zmq_close(sock); /* lingers until what was sent is delivered, or the timeout */
    return status;
}

typedef int (*client_fn)(void *ctx, const struct client_opts *o, const char *endpoint,
                         const struct client_keys *keys);

/* What publish and invoke share: options, endpoint and keys, a context. */
static int run_client(int argc, char **argv, const char *usage, int timeout_ms, int router,
                      client_fn fn)
{
    struct client_opts o = {.timeout_ms = timeout_ms};
    int rc = parse_opts(argc, argv, usage, &o);
    if (rc >= 0)
        return rc;
    struct client_keys keys;
    char *endpoint = endpoint_from_config(o.config, router, &keys);
    if (!endpoint)
        return router ? 2 : 1;
    void *ctx = zmq_ctx_new();
    int status = fn(ctx, &o, endpoint, &keys);
    zmq_ctx_term(ctx);
    free(endpoint);
    return status;
}

/* A publish that failed (no ack in time, a stream leader being elected, a
 * server restarting) is sent again until --timeout has passed since the
 * first try; with a Nats-Msg-Id the stream keeps one copy. */
static int send_retrying(struct nats_publisher *pub, const struct client_opts *o,
                         const char *msg, const char *id, struct err *e)
{
    int64_t give_up = clock_mono_ns() + (int64_t)o->timeout_ms * 1000000;
    while (nats_publisher_send(pub, o->target, msg, strlen(msg), id, NULL, NULL, e) < 0) {
        if (clock_mono_ns() >= give_up)
            return -1;
        struct timespec pause = {0, 200 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* Each message waits for the stream's publish ack: it is stored when the
 * next one goes. */
static int publish_nats(const struct client_opts *o)
{
    struct nats_publisher *pub = NULL;
    struct err e;
    if (nats_publisher_open(o->nats, NULL, o->timeout_ms, false, &pub, &e) < 0) {
        fprintf(stderr, "sluice publish: %s\n", e.msg);
        nats_Close();
        return 1;
    }
    int bad = 0, number = 0;
    char *text = o->lines ? NULL
                 : o->json && strcmp(o->json, "-") != 0 ? strdup(o->json) : read_stdin();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!bad && (o->lines ? (n = getline(&line, &cap, stdin)) >= 0 : text != NULL)) {
        char what[32] = "the payload", *msg = text;
        if (o->lines) {
            number++;
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            if (n == 0)
                continue;
            snprintf(what, sizeof what, "line %d", number);
            msg = line;
        }
        char id[256];
        if (o->id && o->lines)
            snprintf(id, sizeof id, "%s:%d", o->id, number);
        if (check_json(msg, 0, what, &e) < 0 ||
            send_retrying(pub, o, msg, o->id && o->lines ? id : o->id, &e) < 0) {
            fprintf(stderr, "sluice publish: %s\n", e.msg);
            bad++;
        }
        if (!o->lines)
            break;
    }
    free(line);
    free(text);
    nats_publisher_close(&pub);
    nats_Close();
    return bad ? 1 : 0;
}

int cmd_publish(int argc, char **argv)
{
    struct client_opts o = {.timeout_ms = 5000};
    int rc = parse_opts(argc, argv, publish_usage, &o);
    if (rc >= 0)
        return rc;
    if (o.nats)
        return publish_nats(&o);
    return run_client(argc, argv, publish_usage, 5000, 0, publish);
}

/* Wait for the answer: "", STATUS, JSON, REQUEST_ID. */
/* Receive a reply's frames: "", "ok"|"error", JSON, REQUEST_ID. Returns
 * how many came; frames[0..3] are the caller's to free. */
static int recv_reply(void *sock, char *frames[4])
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0)
            break;
        if (n < 4)
            frames[n] = strndup(zmq_msg_data(&m), zmq_msg_size(&m));
        n++;
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return n;
}

static int await_answer(void *sock, const struct client_opts *o, const char *endpoint)
{
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, o->timeout_ms) <= 0) {
        printf("{\"errorType\":\"Timeout\",\"errorMessage\":\"no answer from %s within %d ms; "
               "the run may still finish: see `sluice logs`\"}\n", endpoint, o->timeout_ms);
        return 3;
    }
    char *frames[4] = {0};
    int n = recv_reply(sock, frames);
    int status = 1;
    if (n == 4 && frames[1] && frames[2] && frames[3]) {
        printf("%s\n", frames[2]);
        if (o->verbose && frames[3][0])
            fprintf(stderr, "request id: %s\n", frames[3]);
        status = strcmp(frames[1], "ok") == 0 ? 0 : 1;
    } else {
        fprintf(stderr, "sluice invoke: malformed answer (%d frames) from %s\n", n, endpoint);
    }
    for (int i = 0; i < 4; i++)
        free(frames[i]);
    return status;
}

static int invoke(void *ctx, const struct client_opts *o, const char *endpoint,
                  const struct client_keys *keys)
{
    char *text = !o->json ? strdup("{}") : strcmp(o->json, "-") == 0 ? read_stdin()
                                                                     : strdup(o->json);
    struct err e;
    if (!text || check_json(text, keys->max_bytes, "the event", &e) < 0) {
        print_error(strstr(e.msg, "max_message_bytes") ? "RequestTooLarge" : "InvalidRequest",
                    text ? e.msg : "cannot read the event");
        free(text);
        return 2;
    }
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    use_keys(sock, keys);
    int one = 1, zero = 0;
    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &o->timeout_ms, sizeof o->timeout_ms);
    int status = 3;
    struct err why;
    if (connect_wait(ctx, sock, endpoint, o->timeout_ms, &why) < 0) {
        print_error("NotConnected", why.msg);
    } else {
        if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, "invoke", 6, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, o->target, strlen(o->target), ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, text, strlen(text), o->id ? ZMQ_SNDMORE : 0) < 0 ||
            (o->id && zmq_send(sock, o->id, strlen(o->id), 0) < 0))
            fprintf(stderr, "sluice invoke: send failed: %s\n", zmq_strerror(zmq_errno()));
        else
            status = await_answer(sock, o, endpoint);
    }
    zmq_close(sock);
    free(text);
    return status;
}

int cmd_invoke(int argc, char **argv)
{
    return run_client(argc, argv, invoke_usage, 30000, 1, invoke);
}

/* One request to the daemon's ROUTER socket: "", COMMAND [, PAYLOAD]; -1 if
 * no daemon answered within timeout_ms, else 0 ("ok") or 1 ("error") with
 * its JSON in *answer (the caller frees it; may be NULL if it sent none). */
static int router_request(const char *config, const char *command, const char *payload,
                          int timeout_ms, char **answer)
{
    struct client_keys keys;
    *answer = NULL;
    char *endpoint = endpoint_from_config(config, 1, &keys);
    if (!endpoint)
        return -1;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    use_keys(sock, &keys);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    struct err why;
    int rc = -1;
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    if (connect_wait(ctx, sock, endpoint, timeout_ms, &why) == 0 &&
        zmq_send(sock, "", 0, ZMQ_SNDMORE) >= 0 &&
        zmq_send(sock, command, strlen(command), payload ? ZMQ_SNDMORE : 0) >= 0 &&
        (!payload || zmq_send(sock, payload, strlen(payload), 0) >= 0) &&
        zmq_poll(&item, 1, timeout_ms) == 1) {
        char *frames[4] = {0};
        int n = recv_reply(sock, frames);
        rc = n >= 3 && frames[1] && strcmp(frames[1], "ok") == 0 ? 0 : 1;
        if (n >= 3) {
            *answer = frames[2];
            frames[2] = NULL;
        }
        for (int i = 0; i < 4; i++)
            free(frames[i]);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    free(endpoint);
    return rc;
}

int cli_poke_refill(const char *config, int timeout_ms)
{
    char *answer;
    int rc = router_request(config, "refill", NULL, timeout_ms, &answer);
    free(answer);
    return rc < 0 ? -1 : 0;
}

int cli_replay_request(const char *config, const char *filter_json, int timeout_ms,
                       char **answer)
{
    return router_request(config, "replay", filter_json, timeout_ms, answer);
}

static const char keygen_usage[] =
    "usage: sluice keygen\n"
    "\n"
    "Prints a new CURVE key pair (Z85) as JSON. Give the daemon one pair as\n"
    "zmq.curve.secret_key/public_key, each remote client its own pair, and list the\n"
    "clients' public keys in zmq.curve.allowed_clients.\n";

int cmd_keygen(int argc, char **argv)
{
    if (argc > 1) {
        fputs(keygen_usage, strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
                                ? stdout : stderr);
        return strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? 0 : 2;
    }
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) < 0) {
        fprintf(stderr, "sluice keygen: %s (libzmq without CURVE support?)\n",
                zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("{\"public_key\": \"%s\", \"secret_key\": \"%s\"}\n", pub, sec);
    return 0;
}
