/* source_nats.h - the `nats` triggers of one generation: per pipeline, a
 * libnats connection bound to the JetStream durable pull consumer that every
 * node of a deployment shares, so JetStream spreads the messages over the
 * nodes (docs/scaling.md).
 *
 * Threads: one fetcher thread per nats pipeline connects (with back-off),
 * checks or creates the stream and consumer, and fetches batches never
 * larger than the pipeline's free slots (its budget); it hands each batch
 * to the loop as a posted task and touches nothing else. On the loop
 * thread each message becomes an event (ingress_on_nats) whose answer comes
 * once its outcome has committed: then it is acknowledged (done or dead),
 * nak'd (stopping: another node takes it now; refused or still running
 * here: after nak_delay_ms). While it is held, an in-progress ack goes out
 * every third of the consumer's AckWait.
 *
 * Owned by the generation (daemon.c); loop thread except the fetchers.
 */
#ifndef SLUICE_SOURCE_NATS_H
#define SLUICE_SOURCE_NATS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct dispatch_reply;
struct loop;
struct pipeline;
struct pipeline_set;
struct source_nats;

struct source_nats_hooks {
    /* A message as an event for pipeline `pipeline`: 0 when accepted (the
     * reply is then called exactly once), 1 when the pipeline's match filter
     * leaves it out, negative when refused for now (e says why). */
    int (*accept)(void *arg, const char *pipeline, const char *id, const char *source,
                  const char *subject, const char *json, const struct dispatch_reply *reply,
                  struct err *e);
    /* A message that cannot become an event (its body is not JSON). */
    void (*reject)(void *arg, const char *source, const char *reason, const char *payload,
                   size_t len);
    /* Does the pipeline run here? One that does not (its plugins did not
     * load) fetches nothing: its messages stay in the stream for the other
     * nodes, and do not use up their deliveries on refusals. */
    bool (*runs)(void *runs_arg, const struct pipeline *p);
    void *runs_arg;
    void *arg;
    sqlite3 *reader;            /* the journal, for redeliveries of finished events */
};

/* Start the fetchers of set's nats pipelines (none: *out stays NULL). */
int source_nats_new(struct loop *l, const struct pipeline_set *set,
                    const struct source_nats_hooks *hooks, struct source_nats **out,
                    struct err *e);
/* Fetch nothing more (a reload or a stop); messages in hand are still
 * answered. Does not wait. */
void source_nats_stop(struct source_nats *s);
/* After the generation's last run: the fetchers are joined (a fetch in
 * progress ends within its 500 ms wait, a set-up step within 2 s: a server
 * that does not answer can hold the loop that long); connections close
 * once their last message in hand is answered. */
void source_nats_free(struct source_nats **s);
/* At exit, once every source_nats and NATS destination is closed:
 * libnats's own threads and memory (nats_Close). */
void source_nats_library_close(void);

#endif
