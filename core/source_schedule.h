/* source_schedule.h - the schedule trigger source: one loop timer per
 * pipeline with a "schedule" trigger (schedule.h), firing EventBridge's
 * Scheduled Event.
 *
 * A firing is handed to the daemon (hooks.fire) with an event id derived
 * from the pipeline and the scheduled time, so the journal runs it once
 * however often it is handed in: across restarts, catch-up included. The
 * last and next firing of each pipeline are kept in the database's
 * schedules table (through the writer), read back at start: with catch_up a
 * firing that fell due while sluice was down runs once, at start. A firing
 * due while the previous firing's run still goes (hooks.busy) is dropped
 * ("overlap": "skip") or held until that run is over ("queue").
 */
#ifndef SLUICE_SOURCE_SCHEDULE_H
#define SLUICE_SOURCE_SCHEDULE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "uuid.h"

struct loop;
struct pipeline;
struct pipeline_set;
struct source_schedule;
struct writer;

struct source_schedule_hooks {
    /* Journal and run one firing (loop thread). */
    void (*fire)(void *arg, const struct pipeline *p, const char *event_id, const char *source,
                 const char *payload);
    /* Are events of p still queued or running (loop thread)? */
    bool (*busy)(void *arg, const struct pipeline *p);
    void *arg;
};

/* Start the timers of set's scheduled pipelines (none: a source that does
 * nothing). reader reads the schedules table; w records firings. */
int source_schedule_new(struct loop *l, struct writer *w, sqlite3 *reader,
                        const struct pipeline_set *set, const struct source_schedule_hooks *hooks,
                        struct source_schedule **out, struct err *e);
void source_schedule_free(struct source_schedule **s);

/* The Scheduled Event of pipeline's firing at scheduled_ms (malloc'd JSON),
 * and its id (a UUID made from the pipeline and the time). */
char *schedule_event_json(const char *pipeline, int64_t scheduled_ms, char id[UUID_STR_LEN]);

#endif
