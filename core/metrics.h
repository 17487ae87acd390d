/* metrics.h - the daemon's counters for /metrics and /status.
 *
 * Per pipeline and step: attempts by status, retries, cold starts and a
 * duration histogram, counted where every attempt is recorded
 * (invlog_record), from any thread, under the module's own lock; and the
 * number of live worker processes. The engine's gauges (in-flight events,
 * journal backlog) are not kept here: the admin listener asks the engine
 * for them at scrape time (struct engine_snapshot). Process-wide, like the
 * process it describes.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>
#include <stdio.h>

struct invocation;

/* One pipeline as the engine sees it at a scrape (strings borrowed for the
 * duration of the scrape). */
struct engine_pipeline {
    const char *name;
    char trigger[192];          /* "directory:inbox/x", "zmq:orders.", "http:GET /u/{id}" */
    long in_flight;             /* queued in memory or running */
    long backlog;               /* journaled, not finished (includes in_flight) */
};

struct engine_snapshot {
    struct engine_pipeline *pipelines; /* filled by the engine (malloc'd; freed by release) */
    size_t n_pipelines;
    long writer_queued;         /* database operations waiting for the writer */
    unsigned long rejected;     /* messages rejected since start */
    uint64_t pruned;            /* rows retention deleted since start */
};

/* Implemented by the engine (daemon.c today), called on the loop thread. */
struct admin_source {
    void (*snapshot)(void *arg, struct engine_snapshot *out);
    void *arg;
};

void engine_snapshot_release(struct engine_snapshot *s);

/* Count one attempt (any thread). */
void metrics_invocation(const struct invocation *inv);
/* A worker process started (+1) or ended (-1). */
void metrics_workers_add(int delta);
/* One more invocation sent to a worker ahead of its answer (worker.c). */
void metrics_pipelined(void);
long metrics_workers(void);

/* Per pipeline totals, for /status. */
struct metrics_pipeline {
    uint64_t invocations, errors;
    char last_error[256];       /* "" if none */
    int64_t last_error_ms;      /* wall clock; 0 if none */
};
void metrics_pipeline_totals(const char *pipeline, struct metrics_pipeline *out);

/* The Prometheus text exposition (format 0.0.4) of everything: the counters
 * above, the snapshot's gauges and database_bytes (< 0: unknown). Returns
 * 0, or -1 if out writes failed. */
int metrics_write(FILE *out, const struct engine_snapshot *snap, int64_t database_bytes);

/* Forget everything (tests). */
void metrics_reset(void);

#endif
