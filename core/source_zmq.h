/* source_zmq.h - the ZeroMQ sources, all on the daemon's event loop:
 *
 *   PULL   (bound; producers PUSH)        frames: TOPIC, JSON payload [, EVENT_ID]
 *   SUB    (connected to publishers)      frames: TOPIC, JSON payload [, EVENT_ID]
 *   ROUTER (bound; `sluice invoke`)       frames: [id], "", "invoke", PIPELINE, JSON [, EVENT_ID]
 *                                         reply:  [id], "", "ok"|"error", JSON, REQUEST_ID
 *                                         frames: [id], "", "refill" (after `sluice replay`)
 *                                         frames: [id], "", "replay", FILTER (JSON)
 *
 * Each socket's ZMQ_FD is watched by the loop; a readable socket is drained in
 * bounded rounds so one flood cannot starve the rest. High-water marks bound
 * what libzmq buffers, ZMQ_MAXMSGSIZE bounds one message: a producer that
 * outruns the daemon meets backpressure, not unbounded memory.
 */
#ifndef SLUICE_SOURCE_ZMQ_H
#define SLUICE_SOURCE_ZMQ_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct config;
struct loop;
struct source_zmq;
struct zmq_peer;                /* who is waiting for an invoke's answer */

struct source_zmq_callbacks {
    /* A well-formed event (payload is valid JSON, NUL-terminated); id is the
     * producer's event id (a third frame) or NULL. */
    void (*event)(void *arg, const char *socket, const char *topic, const char *payload,
                  const char *id);
    /* An invoke request; answer it with source_zmq_answer (peer is owned by
     * the callee from now on). id as for events. */
    void (*invoke)(void *arg, struct zmq_peer *peer, const char *pipeline, const char *payload,
                   const char *id);
    /* `sluice replay` added pending events to the journal: load them. */
    void (*refill)(void *arg);
    /* `sluice replay` asks the daemon to replay dead events (filter: JSON
     * {"pipeline", "id", "since"}); answer with source_zmq_answer. */
    void (*replay)(void *arg, struct zmq_peer *peer, const char *filter);
    /* A message refused before it became an event. */
    void (*reject)(void *arg, const char *source, const char *reason, const char *payload,
                   size_t len);
};

int source_zmq_new(struct loop *l, const struct config *cfg,
                   const struct source_zmq_callbacks *cb, void *arg, struct source_zmq **out,
                   struct err *e);
/* Send the answer (ok: the run succeeded) and free peer. */
void source_zmq_answer(struct source_zmq *s, struct zmq_peer *peer, bool ok, const char *json,
                       const char *request_id);
/* The ZeroMQ context, for the destinations' sockets (closed before
 * source_zmq_free). */
void *source_zmq_context(struct source_zmq *zs);

/* Stop (true) or resume reading the event sockets (PULL, SUB); invokes are
 * still read. While paused libzmq queues up to the high-water mark, then
 * producers block: backpressure instead of memory. */
bool source_zmq_pause(struct source_zmq *s, bool paused); /* true if it changed */
void source_zmq_free(struct source_zmq **s);

/* One received frame, as bytes. */
struct zmq_frame {
    const void *data;
    size_t size;
};

/* Do these frames make a valid event (TOPIC, JSON payload [, EVENT_ID])?
 * 0, or -1 with the reason. Pure: fuzzed and unit-tested. */
int source_zmq_check_event(const struct zmq_frame *f, int n, char *reason, size_t len);

/* The endpoint a client connects to for a bound one: a wildcard host (the
 * star or 0.0.0.0) becomes 127.0.0.1. Caller frees. */
char *source_zmq_connect_endpoint(const char *bind_endpoint);

#endif
