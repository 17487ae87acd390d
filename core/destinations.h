/* destinations.h - the one place that delivers a finished event's record
 * where its pipeline's on_success / on_failure says: a folder (one file per
 * record, written atomically), another pipeline (journaled there, so the
 * hand-over is as durable as any event), a ZeroMQ endpoint (a PUSH
 * socket per endpoint, made on first use and owned here), or a NATS
 * JetStream subject (a connection per server, made on first use; the
 * publish ack is awaited by libnats, Nats-Msg-Id = the event id).
 *
 * Loop thread only. A record that cannot be delivered is logged; the
 * event's own journal row keeps its outcome either way.
 */
#ifndef SLUICE_DESTINATIONS_H
#define SLUICE_DESTINATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct pipeline;
struct destinations;

struct delivery {
    const struct pipeline *p;   /* whose record it is */
    bool ok;                    /* on_success (true) or on_failure */
    const char *record;
    const char *event_id;
    const char *request_id;     /* names the record's file */
    int64_t journal_id;         /* ... with this, for the items of a batch (0: none) */
};

/* Hand a record to pipeline `target` as a new event with id `id`. */
typedef int (*destinations_accept_fn)(void *arg, const char *target, const char *id,
                                      const char *source, const char *record, struct err *e);

/* zmq_ctx: the daemon's ZeroMQ context (sockets are made in it); hwm: the
 * PUSH sockets' send high-water mark. */
int destinations_new(void *zmq_ctx, int hwm, destinations_accept_fn accept, void *accept_arg,
                     struct destinations **out, struct err *e);
void destinations_deliver(struct destinations *d, const struct delivery *dl);
/* Send TOPIC and payload on the PUSH socket for endpoint. Never blocks:
 * while the peer is away libzmq queues up to the high-water mark; past it
 * the send fails with a message in e. */
int destinations_push(struct destinations *d, const char *endpoint, const char *topic,
                      const char *payload, struct err *e);
/* Before the ZeroMQ context is terminated. */
void destinations_free(struct destinations **d);

#endif
