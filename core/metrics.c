/* metrics.c - counters and their Prometheus exposition (see metrics.h).
 * Names follow Prometheus' naming guide: a sluice_ prefix, base units
 * (seconds, bytes), _total on counters. The series list is short (one per
 * pipeline step) and searched linearly under one mutex; the lock is held for
 * a few increments per attempt. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "invlog.h"

/* Upper bounds in seconds: handlers run from microseconds (C, warm) to
 * minutes (timeouts). */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])
#define N_STATUS (INV_CRASHED + 1)

struct series {
    char *pipeline, *step;
    uint64_t by_status[N_STATUS];
    uint64_t retries, cold_starts;
    uint64_t buckets[N_BUCKETS]; /* not cumulative; summed when written */
    uint64_t count;
    double sum_s;
    char last_error[256];
    int64_t last_error_ms;
};

static struct {
    pthread_mutex_t lock;
    struct series *v;
    size_t n, cap;
    atomic_long workers;
    atomic_long pipelined;
} M = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The series for pipeline/step, created on first use; NULL if out of
 * memory. Lock held. */
static struct series *find(const char *pipeline, const char *step)
{
    for (size_t i = 0; i < M.n; i++)
        if (strcmp(M.v[i].pipeline, pipeline) == 0 && strcmp(M.v[i].step, step) == 0)
            return &M.v[i];
    if (M.n == M.cap) {
        size_t cap = M.cap ? M.cap * 2 : 16;
        struct series *v = realloc(M.v, cap * sizeof *v);
        if (!v)
            return NULL;
        M.v = v;
        M.cap = cap;
    }
    struct series *s = &M.v[M.n];
    *s = (struct series){.pipeline = strdup(pipeline), .step = strdup(step)};
    if (!s->pipeline || !s->step) {
        free(s->pipeline);
        free(s->step);
        return NULL;
    }
    M.n++;
    return s;
}

void metrics_invocation(const struct invocation *inv)
{
    if (!inv->pipeline || !inv->step)
        return;
    double secs = inv->duration_ms / 1000.0;
    size_t b = 0;
    while (b < N_BUCKETS && secs > bucket_le[b])
        b++;
    pthread_mutex_lock(&M.lock);
    struct series *s = find(inv->pipeline, inv->step);
    if (s) {
        s->by_status[inv->status < N_STATUS ? inv->status : INV_ERROR]++;
        s->retries += inv->attempt > 1;
        s->cold_starts += inv->init_ms >= 0;
        if (b < N_BUCKETS)
            s->buckets[b]++;
        s->count++;
        s->sum_s += secs;
        if (inv->status != INV_OK) {
            snprintf(s->last_error, sizeof s->last_error, "%s",
                     inv->error ? inv->error : invlog_status_name(inv->status));
            s->last_error_ms = inv->started_ms;
        }
    }
    pthread_mutex_unlock(&M.lock);
}

void metrics_workers_add(int delta)
{
    atomic_fetch_add(&M.workers, delta);
}

void metrics_pipelined(void)
{
    atomic_fetch_add(&M.pipelined, 1);
}

long metrics_workers(void)
{
    return atomic_load(&M.workers);
}

void metrics_pipeline_totals(const char *pipeline, struct metrics_pipeline *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&M.lock);
    for (size_t i = 0; i < M.n; i++) {
        const struct series *s = &M.v[i];
        if (strcmp(s->pipeline, pipeline) != 0)
            continue;
        out->invocations += s->count;
        out->errors += s->count - s->by_status[INV_OK];
        if (s->last_error_ms >= out->last_error_ms && s->last_error[0]) {
            out->last_error_ms = s->last_error_ms;
            snprintf(out->last_error, sizeof out->last_error, "%s", s->last_error);
        }
    }
    pthread_mutex_unlock(&M.lock);
}

/* A label value with \, " and newlines escaped, as the text format wants. */
static void put_label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out);
        if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void put_series(FILE *out, const char *name, const struct series *s)
{
    fprintf(out, "%s{pipeline=\"", name);
    put_label(out, s->pipeline);
    fputs("\",step=\"", out);
    put_label(out, s->step);
    fputc('"', out);
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_counters(FILE *out)
{
    header(out, "sluice_invocations_total", "counter",
           "Handler attempts that ended, by pipeline, step and status.");
    for (size_t i = 0; i < M.n; i++)
        for (int st = 0; st < N_STATUS; st++) {
            put_series(out, "sluice_invocations_total", &M.v[i]);
            fprintf(out, ",status=\"%s\"} %llu\n", invlog_status_name((enum inv_status)st),
                    (unsigned long long)M.v[i].by_status[st]);
        }
    header(out, "sluice_retries_total", "counter", "Attempts after the first, by pipeline and step.");
    for (size_t i = 0; i < M.n; i++) {
        put_series(out, "sluice_retries_total", &M.v[i]);
        fprintf(out, "} %llu\n", (unsigned long long)M.v[i].retries);
    }
    header(out, "sluice_cold_starts_total", "counter",
           "Attempts that first had to load their handler, by pipeline and step.");
    for (size_t i = 0; i < M.n; i++) {
        put_series(out, "sluice_cold_starts_total", &M.v[i]);
        fprintf(out, "} %llu\n", (unsigned long long)M.v[i].cold_starts);
    }
}

static void write_histograms(FILE *out)
{
    header(out, "sluice_invocation_duration_seconds", "histogram",
           "How long handler attempts took, by pipeline and step.");
    for (size_t i = 0; i < M.n; i++) {
        const struct series *s = &M.v[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += s->buckets[b];
            put_series(out, "sluice_invocation_duration_seconds_bucket", s);
            fprintf(out, ",le=\"%g\"} %llu\n", bucket_le[b], (unsigned long long)cum);
        }
        put_series(out, "sluice_invocation_duration_seconds_bucket", s);
        fprintf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)s->count);
        put_series(out, "sluice_invocation_duration_seconds_sum", s);
        fprintf(out, "} %.9g\n", s->sum_s);
        put_series(out, "sluice_invocation_duration_seconds_count", s);
        fprintf(out, "} %llu\n", (unsigned long long)s->count);
    }
}

static void write_pipeline_gauge(FILE *out, const struct engine_snapshot *snap, const char *name,
                                 const char *help, bool backlog)
{
    header(out, name, "gauge", help);
    for (size_t i = 0; i < snap->n_pipelines; i++) {
        fprintf(out, "%s{pipeline=\"", name);
        put_label(out, snap->pipelines[i].name);
        fprintf(out, "\"} %ld\n", backlog ? snap->pipelines[i].backlog
                                          : snap->pipelines[i].in_flight);
    }
}

static void write_gauges(FILE *out, const struct engine_snapshot *snap, int64_t database_bytes)
{
    write_pipeline_gauge(out, snap, "sluice_queue_depth",
                         "Events queued in memory or running, by pipeline.", false);
    write_pipeline_gauge(out, snap, "sluice_journal_backlog",
                         "Events journaled and not finished yet, by pipeline.", true);
    header(out, "sluice_workers", "gauge", "Worker processes running handlers.");
    fprintf(out, "sluice_workers %ld\n", metrics_workers());
    header(out, "sluice_worker_pipelined_total", "counter",
           "Invocations sent to a worker while it still ran the one before (pipelining).");
    fprintf(out, "sluice_worker_pipelined_total %ld\n", atomic_load(&M.pipelined));
    header(out, "sluice_pipelines", "gauge", "Pipelines running.");
    fprintf(out, "sluice_pipelines %zu\n", snap->n_pipelines);
    header(out, "sluice_writer_queue_length", "gauge",
           "Database operations waiting for the writer thread.");
    fprintf(out, "sluice_writer_queue_length %ld\n", snap->writer_queued);
    header(out, "sluice_rejected_messages_total", "counter",
           "Messages rejected (unroutable, malformed, refused) since the start.");
    fprintf(out, "sluice_rejected_messages_total %lu\n", snap->rejected);
    header(out, "sluice_retention_deleted_rows_total", "counter",
           "Database rows retention deleted since the start.");
    fprintf(out, "sluice_retention_deleted_rows_total %llu\n", (unsigned long long)snap->pruned);
    if (database_bytes >= 0) {
        header(out, "sluice_database_bytes", "gauge",
               "Size of the SQLite database file and its write-ahead log.");
        fprintf(out, "sluice_database_bytes %lld\n", (long long)database_bytes);
    }
}

int metrics_write(FILE *out, const struct engine_snapshot *snap, int64_t database_bytes)
{
    header(out, "sluice_build_info", "gauge", "Always 1; the labels name the build.");
    fprintf(out, "sluice_build_info{version=\"%s\"} 1\n", SLUICE_VERSION);
    pthread_mutex_lock(&M.lock);
    write_counters(out);
    write_histograms(out);
    pthread_mutex_unlock(&M.lock);
    write_gauges(out, snap, database_bytes);
    return ferror(out) ? -1 : 0;
}

void engine_snapshot_release(struct engine_snapshot *s)
{
    free(s->pipelines);
    s->pipelines = NULL;
    s->n_pipelines = 0;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&M.lock);
    for (size_t i = 0; i < M.n; i++) {
        free(M.v[i].pipeline);
        free(M.v[i].step);
    }
    free(M.v);
    M.v = NULL;
    M.n = M.cap = 0;
    atomic_store(&M.workers, 0);
    atomic_store(&M.pipelined, 0);
    pthread_mutex_unlock(&M.lock);
}
