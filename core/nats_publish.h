/* nats_publish.h - publishing to JetStream and waiting for its publish ack
 * (the message is stored in the stream), with Nats-Msg-Id set so that a
 * retried publish is recognised by the stream (within its duplicate window)
 * instead of stored twice. Used by the nats destination (destinations.c)
 * and `sluice publish --nats`.
 *
 * A publish blocks its caller until the ack (or timeout_ms): callers are a
 * command-line tool and the destinations of finished runs.
 */
#ifndef SLUICE_NATS_PUBLISH_H
#define SLUICE_NATS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct nats_publisher;

/* url: "nats://HOST:PORT" (comma-separated for a cluster); creds: a .creds
 * file or NULL. Connects now (fails if no server answers). */
int nats_publisher_open(const char *url, const char *creds, int timeout_ms,
                        struct nats_publisher **out, struct err *e);
/* Publish data to subject; msg_id (may be NULL) becomes Nats-Msg-Id. On
 * success *duplicate says whether the stream already had msg_id (may be
 * NULL) and *seq its stream sequence (may be NULL). */
int nats_publisher_send(struct nats_publisher *p, const char *subject, const char *data,
                        size_t len, const char *msg_id, bool *duplicate, uint64_t *seq,
                        struct err *e);
void nats_publisher_close(struct nats_publisher **p);

#endif
