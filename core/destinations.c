/* destinations.c - on_success / on_failure delivery (see destinations.h). */
#include "destinations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "nats_publish.h"
#include "path.h"
#include "pipeline.h"

struct pusher {
    char *endpoint;
    void *z;
};

/* A NATS connection per server URL, made on first use. */
struct nats_out {
    char *url;
    struct nats_publisher *pub;
};

struct destinations {
    void *ctx;
    int hwm;
    destinations_accept_fn accept;
    void *accept_arg;
    struct pusher *pushers;
    size_t n_pushers;
    struct nats_out *nats;
    size_t n_nats;
};

int destinations_new(void *zmq_ctx, int hwm, destinations_accept_fn accept, void *accept_arg,
                     struct destinations **out, struct err *e)
{
    struct destinations *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, "out of memory");
    *d = (struct destinations){.ctx = zmq_ctx, .hwm = hwm, .accept = accept,
                               .accept_arg = accept_arg};
    *out = d;
    return 0;
}

static void *pusher(struct destinations *d, const char *endpoint, struct err *e)
{
    for (size_t i = 0; i < d->n_pushers; i++)
        if (strcmp(d->pushers[i].endpoint, endpoint) == 0)
            return d->pushers[i].z;
    struct pusher *v = realloc(d->pushers, (d->n_pushers + 1) * sizeof *v);
    if (!v)
        return err_set(e, "out of memory"), NULL;
    d->pushers = v;
    void *z = d->ctx ? zmq_socket(d->ctx, ZMQ_PUSH) : NULL;
    char *copy = strdup(endpoint);
    int linger = 2000;
    if (!z || !copy || zmq_setsockopt(z, ZMQ_SNDHWM, &d->hwm, sizeof d->hwm) < 0 ||
        zmq_setsockopt(z, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_connect(z, endpoint) < 0) {
        err_set(e, "cannot connect a PUSH socket to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        if (z)
            zmq_close(z);
        free(copy);
        return NULL;
    }
    d->pushers[d->n_pushers++] = (struct pusher){.endpoint = copy, .z = z};
    return z;
}

int destinations_push(struct destinations *d, const char *endpoint, const char *topic,
                      const char *payload, struct err *e)
{
    void *z = pusher(d, endpoint, e);
    if (!z)
        return -1;
    if (zmq_send(z, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(z, payload, strlen(payload), ZMQ_DONTWAIT) < 0)
        return err_set(e, "sending to %s: %s (its queue of %d messages is full: is anyone "
                       "receiving?)", endpoint, zmq_strerror(zmq_errno()), d->hwm);
    return 0;
}

static struct nats_publisher *nats_out(struct destinations *d, const char *url, struct err *e)
{
    for (size_t i = 0; i < d->n_nats; i++)
        if (strcmp(d->nats[i].url, url) == 0)
            return d->nats[i].pub;
    struct nats_out *v = realloc(d->nats, (d->n_nats + 1) * sizeof *v);
    if (!v)
        return err_set(e, "out of memory"), NULL;
    d->nats = v;
    struct nats_publisher *pub = NULL;
    char *copy = strdup(url);
    /* in the background: the loop never waits for a server */
    if (!copy || nats_publisher_open(url, NULL, 5000, true, &pub, e) < 0) {
        free(copy);
        return NULL;
    }
    d->nats[d->n_nats++] = (struct nats_out){.url = copy, .pub = pub};
    return pub;
}

/* Nats-Msg-Id is the event id: a record published again (a crash before
 * the outcome committed) is recognised by the stream, not stored twice. */
static int to_nats(struct destinations *d, const struct destination *dst,
                   const struct delivery *dl, struct err *e)
{
    struct nats_publisher *pub = nats_out(d, dst->endpoint, e);
    if (!pub)
        return -1;
    return nats_publisher_post(pub, dst->topic, dl->record, strlen(dl->record), dl->event_id, e);
}

/* One file per record; items of one batch share a request id, so their
 * journal ids tell them apart. */
static int to_folder(const struct destination *dst, const struct delivery *dl, struct err *e)
{
    char name[96];
    if (dl->journal_id)
        snprintf(name, sizeof name, "%s-%lld.json", dl->request_id, (long long)dl->journal_id);
    else
        snprintf(name, sizeof name, "%s.json", dl->request_id);
    if (path_mkdirs(dst->directory, 0750, e) < 0)
        return -1;
    return path_write_atomic(dst->directory, name, dl->record, strlen(dl->record), e);
}

static int to_pipeline(struct destinations *d, const struct destination *dst,
                       const struct delivery *dl, const char *which, struct err *e)
{
    size_t len = strlen(dl->event_id) + strlen(dl->p->name) + 32;
    char *id = malloc(len), source[160];
    if (!id)
        return err_set(e, "out of memory");
    snprintf(id, len, "%s/%s.%s", dl->event_id, dl->p->name, which);
    snprintf(source, sizeof source, "destination:%s", dl->p->name);
    int rc = d->accept(d->accept_arg, dst->pipeline, id, source, dl->record, e);
    free(id);
    return rc;
}

void destinations_deliver(struct destinations *d, const struct delivery *dl)
{
    const struct destination *dst = dl->ok ? &dl->p->on_success : &dl->p->on_failure;
    const char *which = dl->ok ? "on_success" : "on_failure";
    struct err e;
    int rc = 0;
    if (dst->kind == DEST_DIRECTORY)
        rc = to_folder(dst, dl, &e);
    else if (dst->kind == DEST_PIPELINE)
        rc = to_pipeline(d, dst, dl, which, &e);
    else if (dst->kind == DEST_ZMQ)
        rc = destinations_push(d, dst->endpoint, dst->topic, dl->record, &e);
    else if (dst->kind == DEST_NATS)
        rc = to_nats(d, dst, dl, &e);
    if (rc < 0)
        log_msg(LOG_ERROR, "pipeline %s: the %s record of event %s was not delivered: %s "
                "(the journal keeps the event)", dl->p->name, which, dl->event_id, e.msg);
}

void destinations_free(struct destinations **dp)
{
    struct destinations *d = *dp;
    if (!d)
        return;
    for (size_t i = 0; i < d->n_pushers; i++) {
        zmq_close(d->pushers[i].z);
        free(d->pushers[i].endpoint);
    }
    free(d->pushers);
    for (size_t i = 0; i < d->n_nats; i++) {
        nats_publisher_close(&d->nats[i].pub);
        free(d->nats[i].url);
    }
    free(d->nats);
    free(d);
    *dp = NULL;
}
