/* test_metrics.c - counting attempts and the Prometheus exposition:
 * counters by status, retries, cold starts, cumulative histogram buckets,
 * label escaping, per-pipeline totals and the engine's gauges. */
#include <stdlib.h>
#include <string.h>

#include "invlog.h"
#include "metrics.h"
#include "test.h"

static char *render(const struct engine_snapshot *snap, int64_t db_bytes)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f && metrics_write(f, snap, db_bytes) == 0);
    fclose(f);
    return buf;
}

static void attempt(const char *pipeline, const char *step, enum inv_status st, int attempt_no,
                    double ms, double init_ms, const char *error)
{
    struct invocation inv = {.pipeline = pipeline, .step = step, .status = st,
                             .attempt = attempt_no, .duration_ms = ms, .init_ms = init_ms,
                             .error = error, .started_ms = 1000};
    metrics_invocation(&inv);
}

static void test_counters_and_histogram(void)
{
    metrics_reset();
    attempt("p", "s", INV_OK, 1, 0.2, 3.0, NULL);  /* cold, 0.2 ms */
    attempt("p", "s", INV_OK, 1, 7.0, -1, NULL);   /* 7 ms */
    attempt("p", "s", INV_ERROR, 1, 70000, -1, "boom"); /* beyond the last bucket */
    attempt("p", "s", INV_TIMEOUT, 2, 40, -1, NULL);     /* a retry */
    char *text = render(&(struct engine_snapshot){0}, 4096);
    CHECK_CONTAINS(text, "# TYPE sluice_invocations_total counter\n");
    CHECK_CONTAINS(text, "sluice_invocations_total{pipeline=\"p\",step=\"s\",status=\"ok\"} 2\n");
    CHECK_CONTAINS(text, "sluice_invocations_total{pipeline=\"p\",step=\"s\",status=\"error\"} 1\n");
    CHECK_CONTAINS(text, "sluice_invocations_total{pipeline=\"p\",step=\"s\",status=\"timeout\"} 1\n");
    CHECK_CONTAINS(text, "sluice_invocations_total{pipeline=\"p\",step=\"s\",status=\"crashed\"} 0\n");
    CHECK_CONTAINS(text, "sluice_retries_total{pipeline=\"p\",step=\"s\"} 1\n");
    CHECK_CONTAINS(text, "sluice_cold_starts_total{pipeline=\"p\",step=\"s\"} 1\n");
    /* cumulative: 0.2 ms in le=0.0005 and every bucket after it */
    CHECK_CONTAINS(text, "sluice_invocation_duration_seconds_bucket{pipeline=\"p\",step=\"s\","
                   "le=\"0.0005\"} 1\n");
    CHECK_CONTAINS(text, "le=\"0.01\"} 2\n");
    CHECK_CONTAINS(text, "le=\"0.05\"} 3\n");
    CHECK_CONTAINS(text, "le=\"60\"} 3\n");
    CHECK_CONTAINS(text, "le=\"+Inf\"} 4\n");
    CHECK_CONTAINS(text, "sluice_invocation_duration_seconds_count{pipeline=\"p\",step=\"s\"} 4\n");
    CHECK_CONTAINS(text, "sluice_invocation_duration_seconds_sum{pipeline=\"p\",step=\"s\"} 70.0472\n");
    CHECK_CONTAINS(text, "sluice_database_bytes 4096\n");
    free(text);

    struct metrics_pipeline t;
    metrics_pipeline_totals("p", &t);
    CHECK(t.invocations == 4 && t.errors == 2);
    CHECK_STR(t.last_error, "timeout"); /* the latest failure; it had no message */
    metrics_pipeline_totals("none", &t);
    CHECK(t.invocations == 0 && t.last_error[0] == '\0');
}

static void test_labels_and_gauges(void)
{
    metrics_reset();
    attempt("we\"ird\\name\n", "s", INV_OK, 1, 1, -1, NULL);
    struct engine_pipeline pl[2] = {{.name = "a", .in_flight = 3, .backlog = 10},
                                    {.name = "b\"", .in_flight = 0, .backlog = 0}};
    struct engine_snapshot snap = {.pipelines = pl, .n_pipelines = 2, .writer_queued = 7,
                                   .rejected = 5, .pruned = 9};
    metrics_workers_add(2);
    metrics_workers_add(-1);
    char *text = render(&snap, -1);
    CHECK_CONTAINS(text, "{pipeline=\"we\\\"ird\\\\name\\n\",step=\"s\",status=\"ok\"} 1\n");
    CHECK_CONTAINS(text, "sluice_queue_depth{pipeline=\"a\"} 3\n");
    CHECK_CONTAINS(text, "sluice_journal_backlog{pipeline=\"a\"} 10\n");
    CHECK_CONTAINS(text, "sluice_queue_depth{pipeline=\"b\\\"\"} 0\n");
    CHECK_CONTAINS(text, "sluice_workers 1\n");
    CHECK_CONTAINS(text, "sluice_pipelines 2\n");
    CHECK_CONTAINS(text, "sluice_writer_queue_length 7\n");
    CHECK_CONTAINS(text, "sluice_rejected_messages_total 5\n");
    CHECK_CONTAINS(text, "sluice_retention_deleted_rows_total 9\n");
    CHECK(text && !strstr(text, "sluice_database_bytes")); /* unknown: left out */
    free(text);
    metrics_reset();
}

int main(void)
{
    test_counters_and_histogram();
    test_labels_and_gauges();
    return test_summary();
}
