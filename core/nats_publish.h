/* nats_publish.h - publishing to JetStream and waiting for its publish ack
 * (the message is stored in the stream), with Nats-Msg-Id set so that a
 * retried publish is recognised by the stream (within its duplicate window)
 * instead of stored twice. Used by the nats destination (destinations.c)
 * and `sluice publish --nats`.
 *
 * nats_publisher_send blocks its caller until the ack (or timeout_ms): the
 * command-line tool. The loop thread (destinations) uses nats_publisher_post.
 */
#ifndef SLUICE_NATS_PUBLISH_H
#define SLUICE_NATS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct nats_publisher;

/* url: "nats://HOST:PORT" (comma-separated for a cluster); creds: a .creds
 * file or NULL. Connects now (fails if no server answers). With background,
 * it does not wait: it connects (and reconnects) on libnats's threads, and
 * publishes meanwhile are buffered (for nats_publisher_post). */
int nats_publisher_open(const char *url, const char *creds, int timeout_ms, bool background,
                        struct nats_publisher **out, struct err *e);
/* Publish without waiting: the stream's publish ack is awaited by libnats;
 * a publish it refuses or never acknowledges is logged (its thread). */
int nats_publisher_post(struct nats_publisher *p, const char *subject, const char *data,
                        size_t len, const char *msg_id, struct err *e);
/* Publish data to subject; msg_id (may be NULL) becomes Nats-Msg-Id. On
 * success *duplicate says whether the stream already had msg_id (may be
 * NULL) and *seq its stream sequence (may be NULL). */
int nats_publisher_send(struct nats_publisher *p, const char *subject, const char *data,
                        size_t len, const char *msg_id, bool *duplicate, uint64_t *seq,
                        struct err *e);
/* Waits up to timeout_ms for the publish acks still due, then closes. */
void nats_publisher_close(struct nats_publisher **p);

struct __natsOptions;
/* e = "what: libnats's status text: its last error" (status: a natsStatus); returns -1. */
int nats_fail(struct err *e, int status, const char *what);
/* The options every sluice connection starts from: the servers of urls
 * ("nats://a:4222,nats://b:4222": libnats's own SetURL takes one), the
 * connect timeout, reconnecting forever every 0.5 s (through a server
 * restart or a leader change) and the .creds file (NULL: none). Returns a
 * natsStatus (0: NATS_OK); *out, once set, is the caller's to destroy
 * whatever the status. */
int nats_options_new(const char *urls, int timeout_ms, const char *creds,
                     struct __natsOptions **out);

#endif
