/* event.h - one event as it enters sluice: made once by the source that
 * received it (its id, where it came from, the text a match filter tests,
 * and the JSON), then shared by pointer by everything downstream: the
 * router, each pipeline's job, the runner and the destinations. The JSON is
 * copied once, on entry, and parsed at most once (for match filters).
 *
 * Loop thread only, except that a running job's executor reads the fields
 * (never the reference count) while its job holds a reference.
 */
#ifndef SLUICE_EVENT_H
#define SLUICE_EVENT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event {
    int refs;
    const char *id;             /* the producer's, derived (files), or a new UUIDv7 */
    const char *source;         /* "zmq:TOPIC", "directory:DIR", "invoke", "http:ROUTE", ... */
    const char *subject;        /* what a match filter's "key" tests: topic, key or path */
    const char *json;           /* the payload, NUL-terminated */
    size_t len;
    bool new_id;                /* the id was just made here: it cannot be a duplicate */
    bool live_file;             /* a file the live watch reported: it may run ahead once
                                 * the lane knows its id is new (dispatch.c) */
    int64_t received_ms;        /* wall clock, for display and the journal */
    int64_t received_ns;        /* CLOCK_MONOTONIC, for ages (max_event_age_ms) */
    cJSON *parsed;              /* event_parsed()'s tree, or NULL */
    bool parse_tried;
};

/* One allocation holding the struct and copies of the strings (subject may
 * be NULL: then the source stands in). received_* are now. NULL if out of
 * memory. */
struct event *event_new(const char *id, const char *source, const char *subject,
                        const char *json, size_t len, bool new_id);
/* An event read back from the journal: its age continues from received_ms,
 * but never counts more than this process's own uptime for rows it took in
 * itself, so a wall-clock step cannot age queued events (see event.c). */
struct event *event_from_journal(const char *id, const char *source, const char *json,
                                 int64_t received_ms);
/* The age event_from_journal gives a row received at received_ms, the
 * process having started at started_wall (wall ms) / started_mono_ns: the
 * wall-clock age, but for rows of this process never more than its uptime.
 * Pure, for tests of clock steps. */
int64_t event_journal_age_ms(int64_t received_ms, int64_t started_wall, int64_t started_mono_ns,
                             int64_t now_wall_ms, int64_t now_ns);
struct event *event_ref(struct event *ev);
void event_unref(struct event **ev);
/* The payload as a cJSON tree, parsed on first use; NULL if it is not JSON. */
const cJSON *event_parsed(struct event *ev);
/* Milliseconds since the event was received, on the monotonic clock. */
int64_t event_age_ms(const struct event *ev, int64_t now_ns);
/* Call once at start: the reference point event_from_journal clamps to. */
void event_clock_start(void);

#endif
