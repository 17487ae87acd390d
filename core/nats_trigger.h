/* nats_trigger.h - a pipeline's `nats` trigger as configured: the server,
 * the JetStream stream and durable pull consumer every node binds, and the
 * connection options passed through to libnats (creds, tls). Parsed and
 * checked here (table-driven, messages through diag.h, so `sluice check`
 * reports them); the connection itself is source_nats.h's.
 */
#ifndef SLUICE_NATS_TRIGGER_H
#define SLUICE_NATS_TRIGGER_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "diag.h"

struct nats_trigger {
    char *url;                  /* "nats://127.0.0.1:4222" (comma-separated: a cluster) */
    char *stream;               /* the JetStream stream */
    char *subject;              /* subject filter of the consumer ("orders.>") */
    char *consumer;             /* durable pull consumer, shared by every node */
    char *creds;                /* a .creds file (user JWT + nkey seed), or NULL */
    bool tls;                   /* tls: true, or an object */
    char *tls_ca, *tls_cert, *tls_key;  /* tls: {"ca", "cert", "key"} files */
    bool create;                /* create the stream and consumer if missing */
    int ack_wait_ms;            /* create: the consumer's AckWait */
    int max_deliver;            /* create: the consumer's MaxDeliver (-1: unlimited) */
    int replicas;               /* create: the stream's replicas */
    int nak_delay_ms;           /* a message this node cannot take comes back after this */
};

/* Parse trigger.nats (file names the pipeline file). Returns the number of
 * errors added to d; *out is set (owned) when there are none. */
int nats_trigger_parse(const cJSON *obj, const char *file, struct nats_trigger **out,
                       struct diag *d);
void nats_trigger_free(struct nats_trigger **t);

/* on_success / on_failure {"nats": {"url", "subject"}} (where: "on_failure").
 * Returns the number of errors; *url and *subject are set (owned) when
 * there are none. */
int nats_destination_parse(const cJSON *obj, const char *file, const char *where, char **url,
                           char **subject, struct diag *d);

#endif
