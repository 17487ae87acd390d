/* batch.h - a pipeline's batches shaped as Lambda's SQS event source makes
 * them: the first step gets {"Records": [SQS message records]} and may
 * answer {"batchItemFailures": [{"itemIdentifier": messageId}...]}. Reading
 * that answer follows Lambda's rules exactly, so no item is ever marked done
 * by a mistake in the handler. Pure: the runner (runner_run_batch) owns the
 * rounds, retries and journal. */
#ifndef SLUICE_BATCH_H
#define SLUICE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One event of a batch, as the record shows it. */
struct batch_item {
    const char *message_id;     /* the event id: messageId, what itemIdentifier names */
    const char *source;         /* sluice's source: "zmq:TOPIC", "dir:..." */
    const char *body;           /* the event as received (JSON text), passed as a string */
    int receive_count;          /* ApproximateReceiveCount: deliveries so far, this one too */
    int64_t sent_ms;            /* SentTimestamp: when sluice accepted the event (wall) */
};

/* Where the records say they come from. */
struct batch_origin {
    const char *pipeline;       /* the queue's name in eventSourceARN */
    const char *region;         /* awsRegion */
};

/* {"Records": [...]} of the items with active[i] (active NULL: all), as
 * JSON text (NULL when out of memory). */
char *batch_event_json(const struct batch_origin *o, const struct batch_item *items, size_t n,
                       const bool *active);

enum batch_verdict {
    BATCH_ALL_OK,               /* nothing named (no or empty batchItemFailures) */
    BATCH_SOME_FAILED,          /* failed[i] set for each named item */
    BATCH_ALL_FAILED,           /* an invalid answer: every active item failed */
};

/* Read the first step's answer (JSON text, may be NULL) against the active
 * items: failed[i] is set for each item batchItemFailures names. An
 * itemIdentifier that is empty, null, not a string or not a messageId of
 * this batch, or a batchItemFailures that is not a list of objects, fails
 * the whole batch as Lambda does (every active item's failed[i] is set);
 * why (why_len bytes) then says what was wrong. */
enum batch_verdict batch_read_failures(const char *answer, const struct batch_item *items,
                                       size_t n, const bool *active, bool *failed, char *why,
                                       size_t why_len);

#endif
