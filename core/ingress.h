/* ingress.h - where events come in: the callbacks of every source (files,
 * ZeroMQ events and invokes, HTTP requests, `sluice replay` refills, and
 * records handed on by destinations). Each arrival becomes one event object
 * (event.h), is routed (router.h) and accepted by the current generation's
 * dispatch; callers that wait (invoke, HTTP) are answered from here when
 * their run ends. It also applies backpressure: the ZeroMQ event sockets
 * stop being read while the writer or a lane falls behind.
 *
 * Loop thread only.
 */
#ifndef SLUICE_INGRESS_H
#define SLUICE_INGRESS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "err.h"
#include "source_zmq.h"

struct config;
struct dispatch;
struct dispatch_reply;
struct http_call;
struct http_incoming;
struct loop;
struct pipeline;
struct pipeline_set;
struct source_http;
struct writer;
struct ingress;

int ingress_new(const struct config *cfg, struct loop *l, struct writer *w,
                struct ingress **out, struct err *e);
/* The generation events go to from now on (both NULL: none, between
 * generations or stopping: arrivals are refused with a retryable answer). */
void ingress_use(struct ingress *in, const struct pipeline_set *set, struct dispatch *d);
/* Stopping: every source is refused (retryable answers); records that
 * finishing runs hand to other pipelines are still journaled. */
void ingress_stop(struct ingress *in);
/* The sources answers go back through (either may be NULL). */
void ingress_attach(struct ingress *in, struct source_zmq *zmq, struct source_http *http);

/* source_dir's callback: a complete file at path (live: from the watch, not
 * a scan; such an event may run ahead, see dispatch_accept). */
void ingress_on_file(void *arg, const char *path, const struct stat *st, bool live);
/* source_http's callback. */
void ingress_on_http(void *arg, struct http_call *call, const struct http_incoming *req);
/* source_zmq's callbacks (arg: the ingress). */
extern const struct source_zmq_callbacks ingress_zmq_callbacks;
/* source_schedule's hooks: a firing of p; is p still busy (overlap)? */
void ingress_on_schedule(void *arg, const struct pipeline *p, const char *event_id,
                         const char *source, const char *payload);
bool ingress_schedule_busy(void *arg, const struct pipeline *p);
/* destinations' accept function: a record for pipeline `target`. */
int ingress_accept_record(void *arg, const char *target, const char *id, const char *source,
                          const char *record, struct err *e);

/* source_nats's hooks: a message as an event for `pipeline` (0: accepted,
 * reply called once its outcome has committed; 1: its match filter leaves
 * it out; negative: refused for now), and a message that is no event. */
int ingress_on_nats(void *arg, const char *pipeline, const char *id, const char *source,
                    const char *subject, const char *json, const struct dispatch_reply *reply,
                    struct err *e);
/* A message that never became an event (zmq frames, a NATS body that is
 * not JSON): a row in `rejected`. */
void ingress_on_reject(void *arg, const char *source, const char *reason, const char *payload,
                       size_t len);

/* The writer's queue length (operations) above which the zmq event sockets
 * (and folder scans) wait, and below which they are read again: short
 * enough that a flood never fills the queue (which would block the loop),
 * long enough for large group commits. */
#define INGRESS_WRITER_BUSY 2048
/* Events waiting in the journal, over all pipelines, per queue_size, above
 * which the zmq event sockets are not read (1,048,576 by default). */
#define INGRESS_BACKLOG_FACTOR 1024

/* After each loop turn: pause or resume the ZeroMQ event sockets (also
 * while the writer waits for a locked database or a full disk). Returns
 * true while paused only briefly (look again within a millisecond). */
bool ingress_flow_control(struct ingress *in, bool writer_waiting);
/* Was a lane crowded at the last flow control? Folder watching pauses too
 * then (while the kernel's queue is not deep), so a burst of files runs
 * ahead rather than overflowing into the journal. */
bool ingress_crowded(const struct ingress *in);
/* Messages refused since start (each is a row in `rejected`). */
unsigned long ingress_rejected(const struct ingress *in);
void ingress_free(struct ingress **in);

#endif
