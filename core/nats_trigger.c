/* nats_trigger.c - the `nats` trigger's keys (see nats_trigger.h). */
#include "nats_trigger.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confmap.h"

struct raw_nats {
    char *url, *stream, *subject, *consumer, *creds;
    const cJSON *tls;
    bool create;
    int ack_wait_ms, max_deliver, replicas, nak_delay_ms;
};

static const struct confmap nats_map[] = {
    {"url", CONFMAP_STRING, offsetof(struct raw_nats, url), 0, 0,
     "the NATS server, \"nats://HOST:4222\" (a cluster: several, comma-separated)"},
    {"stream", CONFMAP_STRING, offsetof(struct raw_nats, stream), 0, 0,
     "the JetStream stream holding the messages"},
    {"subject", CONFMAP_STRING, offsetof(struct raw_nats, subject), 0, 0,
     "subject filter of the consumer, e.g. \"orders.>\""},
    {"consumer", CONFMAP_STRING, offsetof(struct raw_nats, consumer), 0, 0,
     "durable pull consumer every node binds (no dots)"},
    {"creds", CONFMAP_STRING, offsetof(struct raw_nats, creds), 0, 0,
     "a NATS .creds file (user JWT and nkey seed)"},
    {"tls", CONFMAP_OBJECT, offsetof(struct raw_nats, tls), 0, 0,
     "{\"ca\": FILE, \"cert\": FILE, \"key\": FILE} (any of them): connect with TLS"},
    {"create", CONFMAP_BOOL, offsetof(struct raw_nats, create), 0, 0,
     "create the stream and the consumer when missing (default false)"},
    {"ack_wait_ms", CONFMAP_INT, offsetof(struct raw_nats, ack_wait_ms), 1000, 3600000,
     "create: the consumer's AckWait (default 30000); in-progress acks keep long runs"},
    {"max_deliver", CONFMAP_INT, offsetof(struct raw_nats, max_deliver), -1, 1000000,
     "create: deliveries of one message at most (default 10; -1: unlimited)"},
    {"replicas", CONFMAP_INT, offsetof(struct raw_nats, replicas), 1, 5,
     "create: the stream's replicas (default 1; 3 in a 3-server cluster)"},
    {"nak_delay_ms", CONFMAP_INT, offsetof(struct raw_nats, nak_delay_ms), 0, 3600000,
     "a message this node cannot take now is redelivered after this (default 1000)"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_tls {
    char *ca, *cert, *key;
};

static const struct confmap tls_map[] = {
    {"ca", CONFMAP_STRING, offsetof(struct raw_tls, ca), 0, 0, "CA certificates file (PEM)"},
    {"cert", CONFMAP_STRING, offsetof(struct raw_tls, cert), 0, 0,
     "client certificate chain (PEM)"},
    {"key", CONFMAP_STRING, offsetof(struct raw_tls, key), 0, 0, "client private key (PEM)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static int require(const char *value, const char *key, const char *example, const char *file,
                   struct diag *d)
{
    if (value && *value)
        return 0;
    diag_error(d, file, "trigger.nats: missing \"%s\", e.g. %s", key, example);
    return 1;
}

static int check_tls(const cJSON *obj, const char *file, struct nats_trigger *t, struct diag *d)
{
    struct raw_tls r = {0};
    int errors = confmap_apply(tls_map, obj, &r, file, "trigger.nats.tls", d);
    if (errors == 0 && r.cert && !r.key) {
        diag_error(d, file, "trigger.nats.tls: \"cert\" needs its \"key\"");
        errors++;
    }
    t->tls = true;
    t->tls_ca = r.ca;
    t->tls_cert = r.cert;
    t->tls_key = r.key;
    return errors;
}

int nats_trigger_parse(const cJSON *obj, const char *file, struct nats_trigger **out,
                       struct diag *d)
{
    struct raw_nats r = {.ack_wait_ms = 30000, .max_deliver = 10, .replicas = 1,
                         .nak_delay_ms = 1000};
    int errors = confmap_apply(nats_map, obj, &r, file, "trigger.nats", d);
    errors += require(r.url, "url", "\"nats://127.0.0.1:4222\"", file, d);
    errors += require(r.stream, "stream", "\"ORDERS\"", file, d);
    errors += require(r.subject, "subject", "\"orders.>\"", file, d);
    errors += require(r.consumer, "consumer", "\"sluice-orders\"", file, d);
    if (r.consumer && strpbrk(r.consumer, ". *>")) {
        diag_error(d, file, "trigger.nats.consumer: \"%s\": a durable name has no '.', ' ', "
                   "'*' or '>'", r.consumer);
        errors++;
    }
    if (r.stream && strpbrk(r.stream, ". *>")) {
        diag_error(d, file, "trigger.nats.stream: \"%s\": a stream name has no '.', ' ', "
                   "'*' or '>'", r.stream);
        errors++;
    }
    if (r.max_deliver == 0) {
        diag_error(d, file, "trigger.nats.max_deliver: 0 would deliver nothing; give 1 or "
                   "more, or -1 for no limit");
        errors++;
    }
    struct nats_trigger *t = calloc(1, sizeof *t);
    if (!t) {
        diag_error(d, file, "trigger.nats: out of memory");
        errors++;
    } else if (r.tls) {
        errors += check_tls(r.tls, file, t, d);
    }
    if (t) {
        t->url = r.url;
        t->stream = r.stream;
        t->subject = r.subject;
        t->consumer = r.consumer;
        t->creds = r.creds;
        r.url = r.stream = r.subject = r.consumer = r.creds = NULL;
        t->create = r.create;
        t->ack_wait_ms = r.ack_wait_ms;
        t->max_deliver = r.max_deliver;
        t->replicas = r.replicas;
        t->nak_delay_ms = r.nak_delay_ms;
    }
    confmap_release(nats_map, &r);
    if (errors)
        nats_trigger_free(&t);
    *out = t;
    return errors;
}

void nats_trigger_free(struct nats_trigger **tp)
{
    struct nats_trigger *t = *tp;
    if (!t)
        return;
    free(t->url);
    free(t->stream);
    free(t->subject);
    free(t->consumer);
    free(t->creds);
    free(t->tls_ca);
    free(t->tls_cert);
    free(t->tls_key);
    free(t);
    *tp = NULL;
}

struct raw_nats_dest {
    char *url, *subject;
};

static const struct confmap nats_dest_map[] = {
    {"url", CONFMAP_STRING, offsetof(struct raw_nats_dest, url), 0, 0,
     "the NATS server, \"nats://HOST:4222\" (a cluster: several, comma-separated)"},
    {"subject", CONFMAP_STRING, offsetof(struct raw_nats_dest, subject), 0, 0,
     "the subject records are published on (a JetStream stream must take it)"},
    {NULL, 0, 0, 0, 0, NULL},
};

int nats_destination_parse(const cJSON *obj, const char *file, const char *where, char **url,
                           char **subject, struct diag *d)
{
    struct raw_nats_dest r = {0};
    char sub[64];
    snprintf(sub, sizeof sub, "%s.nats", where);
    int errors = confmap_apply(nats_dest_map, obj, &r, file, sub, d);
    if (errors == 0 && !r.url) {
        diag_error(d, file, "%s: missing \"url\", e.g. \"nats://127.0.0.1:4222\"", sub);
        errors++;
    }
    if (errors == 0 && (!r.subject || !*r.subject || strpbrk(r.subject, " *>"))) {
        diag_error(d, file, "%s: \"subject\" must be one subject, without wildcards, e.g. "
                   "\"orders.done\"", sub);
        errors++;
    }
    if (errors == 0) {
        *url = r.url;
        *subject = r.subject;
        r.url = r.subject = NULL;
    }
    confmap_release(nats_dest_map, &r);
    return errors;
}
