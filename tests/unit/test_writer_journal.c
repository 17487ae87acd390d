/* test_writer_journal.c - unit tests for the database writer thread
 * (core/writer.c), the event journal (core/journal.c), the invocation log
 * (core/invlog.c) and the schema (core/db.c), on a temporary database:
 * duplicates recognised, ids ascending, outcomes recorded, pending events
 * paged with after/limit, rows visible to a separate read-only connection
 * once flushed, WAL mode, user_version, the views, reopening without
 * migrating again, and refusing a database from a newer sluice. */
#include "db.h"
#include "invlog.h"
#include "journal.h"
#include "writer.h"

#include "clock.h"
#include "sluice/handler.h"
#include "test.h"
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;

/* What each append's callback reported (written on the writer thread,
 * read after writer_flush, which orders the two). */
struct appended {
    int calls;
    int rc;
    bool inserted;
    int64_t id;
};

static void on_appended(void *arg, int rc, bool inserted, int64_t id, const struct err *e)
{
    struct appended *a = arg;
    a->calls++;
    a->rc = rc;
    a->inserted = inserted;
    a->id = id;
    if (rc < 0)
        fprintf(stderr, "append failed: %s\n", e ? e->msg : "?");
}

static struct writer *start(const char *db)
{
    struct writer *w = NULL;
    struct err e = {""};
    int rc = writer_start(db, 64, true, &w, &e);
    CHECK(rc == 0);
    CHECK(w != NULL);
    if (rc != 0)
        fprintf(stderr, "writer_start: %s\n", e.msg);
    return w;
}

static sqlite3 *reader(const char *db)
{
    sqlite3 *r = NULL;
    struct err e = {""};
    int rc = db_open(db, false, &r, &e);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "db_open read-only: %s\n", e.msg);
    return r;
}

/* The first column of the first row of sql, as an integer (-999 if none). */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -999;
    if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "query_int: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "no db");
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row of sql, as text (a static copy). */
static const char *query_text(sqlite3 *db, const char *sql)
{
    static char buf[1024];
    sqlite3_stmt *st;
    snprintf(buf, sizeof buf, "(no row)");
    if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "query_text: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "no db");
        return "(error)";
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(buf, sizeof buf, "%s", t ? (const char *)t : "(null)");
    }
    sqlite3_finalize(st);
    return buf;
}

static void append(struct writer *w, const char *pipeline, const char *event_id,
                   struct appended *a)
{
    struct err e;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", event_id);
    CHECK(journal_append(w, pipeline, event_id, "test", payload, on_appended, a, NULL, &e) == 0);
}

struct pending {
    int n;
    int64_t ids[16];
    char event_ids[16][32];
    int attempts[16];
    int64_t received_ms[16];
};

static void count_p1(void *arg, const char *pipeline, int64_t n)
{
    if (strcmp(pipeline, "p1") == 0)
        *(int64_t *)arg = n;
}

static void on_pending(void *arg, const struct journal_entry *entry)
{
    struct pending *p = arg;
    if (p->n < 16) {
        p->ids[p->n] = entry->id;
        snprintf(p->event_ids[p->n], sizeof p->event_ids[0], "%s", entry->event_id);
        p->attempts[p->n] = entry->attempts;
        p->received_ms[p->n] = entry->received_ms;
    }
    p->n++;
}

static void test_journal(void)
{
    char *db = tu_path(tmp, "journal.db");
    struct writer *w = start(db);
    if (!w) {
        free(db);
        return;
    }
    int64_t before_ms = clock_wall_ms();
    struct appended a[6] = {{0}};
    append(w, "p1", "e1", &a[0]);
    append(w, "p1", "e1", &a[1]); /* the same event again */
    append(w, "p1", "e2", &a[2]);
    append(w, "p2", "e1", &a[3]); /* same event id, another pipeline */
    append(w, "p1", "e3", &a[4]);
    append(w, "p1", "e4", &a[5]);
    writer_flush(w);
    for (int i = 0; i < 6; i++) {
        CHECK(a[i].calls == 1);
        CHECK(a[i].rc == 0);
    }
    CHECK(a[0].inserted && a[0].id > 0);
    CHECK(!a[1].inserted);
    CHECK(a[1].id == 0);
    CHECK(a[2].inserted && a[3].inserted && a[4].inserted && a[5].inserted);
    /* ids ascend in the order of appends */
    CHECK(a[0].id < a[2].id && a[2].id < a[3].id && a[3].id < a[4].id && a[4].id < a[5].id);

    /* the duplicate was counted on the original row */
    sqlite3 *r = reader(db);
    CHECK(query_int(r, "SELECT count(*) FROM events") == 5);
    CHECK(query_int(r, "SELECT duplicates FROM events WHERE pipeline='p1' AND event_id='e1'") == 1);
    CHECK(query_int(r, "SELECT duplicates FROM events WHERE pipeline='p2'") == 0);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='e2'"), "pending");

    /* pending, oldest first, per pipeline */
    struct err e = {""};
    struct pending p = {0};
    CHECK(journal_load_pending(r, "p1", 0, 100, on_pending, &p, &e) == 4);
    CHECK(p.n == 4);
    CHECK(p.ids[0] == a[0].id && p.ids[1] == a[2].id && p.ids[2] == a[4].id &&
          p.ids[3] == a[5].id);
    CHECK_STR(p.event_ids[0], "e1");
    CHECK_STR(p.event_ids[3], "e4");
    CHECK(p.attempts[0] == 0);
    /* received_at is stored with ms precision; allow for that rounding */
    CHECK(p.received_ms[0] >= before_ms - 1 && p.received_ms[0] <= clock_wall_ms() + 1);
    int64_t n_pending = -1;
    CHECK(journal_count_pending(r, count_p1, &n_pending, &e) == 0);
    CHECK(n_pending == 4);

    /* finish two: they leave the pending list */
    CHECK(journal_finish(w, &(struct journal_ref){.id = a[2].id}, "done", 1, NULL, &e) == 0);
    CHECK(journal_finish(w, &(struct journal_ref){.id = a[4].id}, "dead", 3,
                         "step resize: TestError: boom", &e) == 0);
    writer_flush(w);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='e2'"), "done");
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='e3'"), "dead");
    CHECK(query_int(r, "SELECT attempts FROM events WHERE event_id='e3'") == 3);
    CHECK_STR(query_text(r, "SELECT error FROM events WHERE event_id='e3'"),
              "step resize: TestError: boom");
    CHECK_STR(query_text(r, "SELECT error FROM events WHERE event_id='e2'"), "(null)");
    CHECK(query_int(r, "SELECT finished_at IS NOT NULL FROM events WHERE event_id='e2'") == 1);
    CHECK(query_int(r, "SELECT finished_at IS NULL FROM events WHERE event_id='e1'") == 1);
    CHECK(journal_count_pending(r, count_p1, &n_pending, &e) == 0);
    CHECK(n_pending == 2);

    /* after / limit: paging through what is still pending */
    memset(&p, 0, sizeof p);
    CHECK(journal_load_pending(r, "p1", 0, 1, on_pending, &p, &e) == 1);
    CHECK(p.n == 1 && p.ids[0] == a[0].id);
    memset(&p, 0, sizeof p);
    CHECK(journal_load_pending(r, "p1", a[0].id, 10, on_pending, &p, &e) == 1);
    CHECK(p.n == 1 && p.ids[0] == a[5].id); /* e2 done, e3 dead: skipped */
    memset(&p, 0, sizeof p);
    CHECK(journal_load_pending(r, "p1", a[5].id, 10, on_pending, &p, &e) == 0);
    CHECK(p.n == 0);
    CHECK(journal_load_pending(r, "p1", 0, 0, on_pending, &p, &e) == 0);
    memset(&p, 0, sizeof p);
    CHECK(journal_load_pending(r, "p2", 0, 10, on_pending, &p, &e) == 1);
    CHECK(p.n == 1 && p.ids[0] == a[3].id);
    CHECK(journal_load_pending(r, "nope", 0, 10, on_pending, &p, &e) == 0);
    /* a finished event appended again is a duplicate: not run twice */
    struct appended again = {0};
    append(w, "p1", "e2", &again);
    writer_flush(w);
    CHECK(again.calls == 1 && again.rc == 0 && !again.inserted);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='e2'"), "done");

    /* rejected messages are kept (4 KiB at most) */
    char big[5000];
    memset(big, 'x', sizeof big);
    CHECK(journal_reject(w, "zmq:pull", "not JSON", big, sizeof big, &e) == 0);
    CHECK(journal_reject(w, "zmq:pull", "no frames", NULL, 10, &e) == 0);
    writer_flush(w);
    CHECK(query_int(r, "SELECT count(*) FROM rejected") == 2);
    CHECK(query_int(r, "SELECT length(payload) FROM rejected WHERE reason='not JSON'") == 4096);
    CHECK(query_int(r, "SELECT coalesce(length(payload), 0) FROM rejected WHERE "
                       "reason='no frames'") == 0);
    db_close(&r);
    CHECK(r == NULL);
    db_close(&r); /* NULL is fine */
    writer_stop(&w);
    CHECK(w == NULL);
    writer_stop(&w);
    free(db);
}

static void test_invlog(void)
{
    char *db = tu_path(tmp, "invlog.db");
    struct writer *w = start(db);
    if (!w) {
        free(db);
        return;
    }
    sqlite3 *r = reader(db);
    struct err e = {""};
    struct invocation inv = {
        .request_id = "0190b3a8-7c2e-7000-8000-000000000001",
        .event_id = "file:/in/a.jpg@1:2:3",
        .pipeline = "thumbs",
        .step = "resize",
        .handler = "thumbnail.handler",
        .source = "directory",
        .attempt = 1,
        .started_ms = 0,
        .duration_ms = 12.5,
        .init_ms = 3.25,
        .status = INV_OK,
        .status_code = 200,
        .error = NULL,
        .input_bytes = 100,
        .output_bytes = 20,
        .plugin_version = "1-2-3",
        .max_memory_kb = -1,
    };
    CHECK(invlog_record(w, &inv, &e) == 0);
    inv.attempt = 2;
    inv.init_ms = -1;
    inv.status = INV_ERROR;
    inv.status_code = 0;
    inv.error = "TestError: failing on purpose";
    inv.started_ms = 1000;
    inv.max_memory_kb = 2048;
    CHECK(invlog_record(w, &inv, &e) == 0);
    inv.attempt = 3;
    inv.status = INV_TIMEOUT;
    inv.error = "timed out after 3000 ms";
    inv.started_ms = 2000;
    CHECK(invlog_record(w, &inv, &e) == 0);
    CHECK(invlog_line(w, inv.request_id, "thumbs", "resize", SL_LOG_WARN, "low on disk", &e) == 0);
    CHECK(invlog_line(w, NULL, NULL, NULL, SL_LOG_DEBUG, "no context", &e) == 0);

    /* not necessarily visible before the flush; certainly after */
    writer_flush(w);
    CHECK(query_int(r, "SELECT count(*) FROM invocations") == 3);
    CHECK_STR(query_text(r, "SELECT status FROM invocations WHERE attempt=1"), "ok");
    CHECK_STR(query_text(r, "SELECT started_at FROM invocations WHERE attempt=1"),
              "1970-01-01T00:00:00.000Z");
    CHECK_STR(query_text(r, "SELECT started_at FROM invocations WHERE attempt=2"),
              "1970-01-01T00:00:01.000Z");
    CHECK(query_int(r, "SELECT init_ms * 100 FROM invocations WHERE attempt=1") == 325);
    CHECK(query_int(r, "SELECT init_ms IS NULL FROM invocations WHERE attempt=2") == 1);
    CHECK(query_int(r, "SELECT status_code FROM invocations WHERE attempt=1") == 200);
    CHECK(query_int(r, "SELECT status_code IS NULL FROM invocations WHERE attempt=2") == 1);
    CHECK_STR(query_text(r, "SELECT status FROM invocations WHERE attempt=2"), "error");
    CHECK_STR(query_text(r, "SELECT status FROM invocations WHERE attempt=3"), "timeout");
    CHECK_STR(query_text(r, "SELECT error FROM invocations WHERE attempt=2"),
              "TestError: failing on purpose");
    CHECK(query_int(r, "SELECT duration_ms * 10 FROM invocations WHERE attempt=1") == 125);
    CHECK(query_int(r, "SELECT input_bytes FROM invocations WHERE attempt=1") == 100);
    CHECK(query_int(r, "SELECT output_bytes FROM invocations WHERE attempt=1") == 20);
    CHECK_STR(query_text(r, "SELECT plugin_version FROM invocations WHERE attempt=1"), "1-2-3");
    CHECK(query_int(r, "SELECT max_memory_kb IS NULL FROM invocations WHERE attempt=1") == 1);
    CHECK(query_int(r, "SELECT max_memory_kb FROM invocations WHERE attempt=2") == 2048);
    CHECK_STR(query_text(r, "SELECT handler || ' ' || source || ' ' || event_id FROM invocations"
                            " WHERE attempt=1"),
              "thumbnail.handler directory file:/in/a.jpg@1:2:3");
    CHECK(query_int(r, "SELECT count(*) FROM logs") == 2);
    CHECK_STR(query_text(r, "SELECT level || ' ' || message || ' ' || step FROM logs WHERE "
                            "request_id='0190b3a8-7c2e-7000-8000-000000000001'"),
              "WARN low on disk resize");
    CHECK_STR(query_text(r, "SELECT request_id FROM logs WHERE message='no context'"), "");
    CHECK_STR(query_text(r, "SELECT level FROM logs WHERE message='no context'"), "DEBUG");

    /* the views people query at the sqlite3 prompt */
    CHECK(query_int(r, "SELECT count(*) FROM failures") == 2);
    CHECK_STR(query_text(r, "SELECT status FROM failures"), "timeout"); /* newest first */
    CHECK(query_int(r, "SELECT invocations FROM pipeline_stats WHERE pipeline='thumbs' AND "
                       "step='resize'") == 3);
    CHECK(query_int(r, "SELECT errors FROM pipeline_stats WHERE pipeline='thumbs'") == 2);
    CHECK(query_int(r, "SELECT cold_starts FROM pipeline_stats WHERE pipeline='thumbs'") == 1);
    CHECK(query_int(r, "SELECT p50_ms * 10 FROM pipeline_stats WHERE pipeline='thumbs'") == 125);
    CHECK_STR(query_text(r, "SELECT last_error FROM pipeline_stats WHERE pipeline='thumbs'"),
              "timed out after 3000 ms");

    CHECK_STR(invlog_status_name(INV_OK), "ok");
    CHECK_STR(invlog_status_name(INV_ERROR), "error");
    CHECK_STR(invlog_status_name(INV_TIMEOUT), "timeout");
    CHECK_STR(invlog_status_name(INV_CRASHED), "crashed");
    db_close(&r);
    writer_stop(&w);
    free(db);
}

/* writer_stop commits what is still queued. */
static void test_stop_commits(void)
{
    char *db = tu_path(tmp, "stop.db");
    struct writer *w = start(db);
    if (!w) {
        free(db);
        return;
    }
    struct appended a[20] = {{0}};
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        append(w, "p", id, &a[i]);
    }
    writer_stop(&w);
    for (int i = 0; i < 20; i++)
        CHECK(a[i].calls == 1 && a[i].rc == 0 && a[i].inserted);
    sqlite3 *r = reader(db);
    CHECK(query_int(r, "SELECT count(*) FROM events WHERE pipeline='p'") == 20);
    db_close(&r);
    free(db);
}

/* Many producers, a small queue: everything lands, each callback once. */
struct producer {
    struct writer *w;
    int index;
    struct appended a[50];
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < 50; i++) {
        char id[32];
        struct err e;
        snprintf(id, sizeof id, "t%d-%d", p->index, i);
        journal_append(p->w, "conc", id, "test", "{}", on_appended, &p->a[i], NULL, &e);
    }
    return NULL;
}

static void test_concurrent_producers(void)
{
    char *db = tu_path(tmp, "conc.db");
    struct writer *w = NULL;
    struct err e = {""};
    CHECK(writer_start(db, 4, true, &w, &e) == 0); /* a small queue: producers wait */
    if (!w) {
        free(db);
        return;
    }
    static struct producer prod[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(&prod[i], 0, sizeof prod[i]);
        prod[i].w = w;
        prod[i].index = i;
        CHECK(pthread_create(&t[i], NULL, produce, &prod[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    writer_flush(w);
    int ok = 0;
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 50; k++)
            ok += prod[i].a[k].calls == 1 && prod[i].a[k].rc == 0 && prod[i].a[k].inserted;
    CHECK(ok == 200);
    sqlite3 *r = reader(db);
    CHECK(query_int(r, "SELECT count(*) FROM events WHERE pipeline='conc'") == 200);
    db_close(&r);
    writer_stop(&w);
    free(db);
}

/* An op that holds the writer thread until released, so that what is
 * submitted meanwhile lands in the next transaction together. */
struct gate {
    struct wop base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, open;
};

static int gate_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct gate *g = (struct gate *)op;
    (void)w;
    (void)e;
    pthread_mutex_lock(&g->lock);
    g->entered = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static void gate_done(struct wop *op, int rc, const struct err *e)
{
    (void)op;
    (void)rc;
    (void)e;
}

static void gate_close(struct writer *w, struct gate *g)
{
    *g = (struct gate){.base = {.apply = gate_apply, .done = gate_done}};
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    writer_submit(w, &g->base);
    pthread_mutex_lock(&g->lock);
    while (!g->entered)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct writer *w, struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    writer_flush(w);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

static void on_finished(void *arg)
{
    ++*(int *)arg;
}

/* A run that started before its append committed finishes by ticket and
 * key: folded into the append when both share a transaction (one row
 * write, written finished), an update by (pipeline, event_id) otherwise. */
static void test_finish_folds_into_append(void)
{
    char *db = tu_path(tmp, "fold.db");
    struct writer *w = start(db);
    sqlite3 *r = reader(db);
    struct err e = {""};
    struct appended a[3] = {{0}};
    struct writer_ticket t[3];
    int finished = 0;
    struct gate g;

    gate_close(w, &g); /* f1's append and its finish share the next transaction */
    CHECK(journal_append(w, "p", "f1", "test", "{}", on_appended, &a[0], &t[0], &e) == 0);
    CHECK(t[0].seq > 0 && t[0].op != NULL);
    struct journal_ref ref = {.append = t[0], .pipeline = "p", .event_id = "f1",
                              .finished = on_finished, .finished_arg = &finished};
    CHECK(journal_finish(w, &ref, "dead", 2, "boom", &e) == 0);
    gate_open(w, &g);
    CHECK(a[0].rc == 0 && a[0].inserted && finished == 1);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='f1'"), "dead");
    CHECK(query_int(r, "SELECT attempts FROM events WHERE event_id='f1'") == 2);
    CHECK_STR(query_text(r, "SELECT error FROM events WHERE event_id='f1'"), "boom");
    CHECK(query_int(r, "SELECT finished_at IS NOT NULL FROM events WHERE event_id='f1'") == 1);

    /* the append committed first: the finish updates the row by its key */
    CHECK(journal_append(w, "p", "f2", "test", "{}", on_appended, &a[1], &t[1], &e) == 0);
    CHECK(journal_append(w, "q", "f2", "test", "{}", on_appended, &a[2], &t[2], &e) == 0);
    writer_flush(w);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='f2' AND pipeline='p'"),
              "pending");
    ref = (struct journal_ref){.append = t[1], .pipeline = "p", .event_id = "f2",
                               .finished = on_finished, .finished_arg = &finished};
    CHECK(journal_finish(w, &ref, "done", 1, NULL, &e) == 0);
    writer_flush(w);
    CHECK(finished == 2);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='f2' AND pipeline='p'"),
              "done");
    CHECK(query_int(r, "SELECT attempts FROM events WHERE event_id='f2' AND pipeline='p'") == 1);
    CHECK_STR(query_text(r, "SELECT state FROM events WHERE event_id='f2' AND pipeline='q'"),
              "pending"); /* same event id, other pipeline: untouched */
    sqlite3_close(r);
    writer_stop(&w);
    free(db);
}

/* While the writer holds a batch for a run's outcome, ops that do not fold
 * into it only join the queue (they do not wake it): none may be left
 * waiting for a wake-up that never comes, whether few (the hold times out),
 * more than fill the queue (producers wait for room), or a stop. */
static void test_ops_queued_during_a_hold_all_complete(void)
{
    char *db = tu_path(tmp, "hold.db");
    struct writer *w = start(db);
    struct err e = {""};
    enum { N = 150 }; /* more than the queue's 64 */
    static struct appended a[N + 1];
    memset(a, 0, sizeof a);
    struct writer_ticket t;
    int finished = 0;
    for (int round = 0; round < 2; round++) {
        int n = round == 0 ? 20 : N; /* fewer than a hold's batch, then more than the queue */
        char held[16];
        snprintf(held, sizeof held, "held%d", round);
        CHECK(journal_append(w, "p", held, "test", "{}", on_appended, &a[0], &t, &e) == 0);
        for (int i = 1; i <= n; i++) {
            char id[24];
            snprintf(id, sizeof id, "q%d-%d", round, i);
            CHECK(journal_append(w, "p", id, "test", "{}", on_appended, &a[i], NULL, &e) == 0);
        }
        writer_flush(w);
        int ok = 0;
        for (int i = 0; i <= n; i++)
            ok += a[i].rc == 0 && a[i].inserted;
        CHECK(ok == n + 1);
        struct journal_ref ref = {.append = t, .pipeline = "p", .event_id = held,
                                  .finished = on_finished, .finished_arg = &finished};
        CHECK(journal_finish(w, &ref, "done", 1, NULL, &e) == 0);
        writer_flush(w);
        CHECK(finished == round + 1);
    }
    memset(a, 0, sizeof a);
    CHECK(journal_append(w, "p", "held-at-stop", "test", "{}", on_appended, &a[0], &t, &e) == 0);
    writer_stop(&w); /* returns, with the held append written */
    CHECK(a[0].calls == 1 && a[0].rc == 0);
    sqlite3 *r = reader(db);
    CHECK(query_int(r, "SELECT count(*) FROM events WHERE state = 'done'") == 2);
    CHECK(query_int(r, "SELECT count(*) FROM events") == 2 + 20 + N + 1);
    sqlite3_close(r);
    free(db);
}

/* Ops and their strings in one block: the op part zeroed (an unset fold
 * must read NULL), the strings copied, a NULL string left NULL. */
/* Ops of one transaction that use many distinct statements (the cache also
 * holds BEGIN and COMMIT), and one op that fails: its own error reaches its
 * done, the others commit with rc 0 and no message. Durability "process". */
static const char *const MANY_SQL[] = {
    "SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4", "SELECT 5", "SELECT 6", "SELECT 7",
    "SELECT 8", "SELECT 9", "SELECT 10", "SELECT 11", "SELECT 12", "SELECT 13", "SELECT 14",
    "SELECT 15", "SELECT 16", "SELECT 17", "SELECT 18", "SELECT 19", "SELECT 20",
};
#define N_MANY (int)(sizeof MANY_SQL / sizeof MANY_SQL[0])

struct stmt_op {
    struct wop base;
    const char *sql;            /* NULL: fail */
    int *ok, *failed;
};

static int stmt_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct stmt_op *o = (struct stmt_op *)op;
    if (!o->sql)
        return err_set(e, "boom %d", 42);
    sqlite3_stmt *st = writer_stmt(w, o->sql, e);
    return st && sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
}

static void stmt_done(struct wop *op, int rc, const struct err *e)
{
    struct stmt_op *o = (struct stmt_op *)op;
    if (!o->sql) {
        CHECK(rc < 0);
        CHECK_STR(e->msg, "boom 42");
        ++*o->failed;
    } else if (rc == 0 && e->msg[0] == 0) {
        ++*o->ok;
    } else {
        fprintf(stderr, "%s: rc %d, %s\n", o->sql, rc, e->msg);
    }
    free(o);
}

static void test_many_statements_and_op_errors(void)
{
    char *db = tu_path(tmp, "many.db");
    struct writer *w = NULL;
    struct err e = {""};
    CHECK(writer_start(db, 64, false, &w, &e) == 0);
    if (!w) {
        free(db);
        return;
    }
    int ok = 0, failed = 0;
    struct gate g;
    gate_close(w, &g); /* what follows shares one transaction */
    for (int i = 0; i <= N_MANY; i++) {
        struct stmt_op *o = calloc(1, sizeof *o);
        *o = (struct stmt_op){.base = {.apply = stmt_apply, .done = stmt_done},
                              .sql = i < N_MANY ? MANY_SQL[i] : NULL, .ok = &ok,
                              .failed = &failed};
        writer_submit(w, &o->base);
    }
    gate_open(w, &g);
    CHECK(ok == N_MANY);
    CHECK(failed == 1);
    writer_stop(&w);
    free(db);
}

static void test_op_alloc(void)
{
    struct big {
        struct wop base;
        char pad[200];
    };
    char name[] = "pipeline-a";
    const char *in[3] = {name, NULL, ""}, *out[3] = {"x", "x", "x"};
    struct big *b = writer_op_alloc(sizeof *b, in, out, 3);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK(b->base.fold == NULL && b->base.apply == NULL && !b->base.hold && b->pad[199] == 0);
    name[0] = 'X'; /* a copy, not the caller's string */
    CHECK_STR(out[0], "pipeline-a");
    CHECK(out[1] == NULL);
    CHECK_STR(out[2], "");
    CHECK((const char *)out[0] >= (const char *)(b + 1));
    free(b);
}

static void test_schema(void)
{
    char *db = tu_path(tmp, "schema.db");
    struct writer *w = start(db);
    if (!w) {
        free(db);
        return;
    }
    sqlite3 *wdb = writer_db(w);
    CHECK(wdb != NULL);
    sqlite3 *r = reader(db);
    CHECK(query_int(r, "PRAGMA user_version") == DB_SCHEMA_VERSION);
    CHECK_STR(query_text(r, "PRAGMA journal_mode"), "wal");
    /* the tables and views are there */
    CHECK(query_int(r, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                       "('events','invocations','logs','rejected')") == 4);
    CHECK(query_int(r, "SELECT count(*) FROM sqlite_master WHERE type='view' AND name IN "
                       "('failures','pipeline_stats')") == 2);
    CHECK(query_int(r, "SELECT count(*) FROM failures") == 0);
    CHECK(query_int(r, "SELECT count(*) FROM pipeline_stats") == 0);
    /* the people's queries have indexes */
    CHECK(query_int(r, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                       "tbl_name='invocations' AND name NOT LIKE 'sqlite_%'") >= 3);
    /* a read-only connection cannot write */
    CHECK(r && sqlite3_exec(r, "DELETE FROM events", NULL, NULL, NULL) != SQLITE_OK);
    struct appended a = {0};
    append(w, "keep", "k1", &a);
    writer_flush(w);
    db_close(&r);
    writer_stop(&w);

    /* reopening an existing database does not migrate it again */
    struct err e = {""};
    w = start(db);
    if (w) {
        r = reader(db);
        CHECK(query_int(r, "PRAGMA user_version") == DB_SCHEMA_VERSION);
        CHECK(query_int(r, "SELECT count(*) FROM events WHERE pipeline='keep'") == 1);
        struct appended b = {0};
        append(w, "keep", "k1", &b);
        writer_flush(w);
        CHECK(b.rc == 0 && !b.inserted); /* the old row is still the one */
        db_close(&r);
        writer_stop(&w);
    }
    sqlite3 *raw = NULL;
    CHECK(db_open(db, true, &raw, &e) == 0);
    db_close(&raw);

    /* a database from a newer sluice is refused, with a message */
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", DB_SCHEMA_VERSION + 1);
    CHECK(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    raw = NULL;
    char want[4200];
    snprintf(want, sizeof want, "database %s has schema version %d, this sluice knows up to %d",
             db, DB_SCHEMA_VERSION + 1, DB_SCHEMA_VERSION);
    w = (struct writer *)&w;
    snprintf(e.msg, sizeof e.msg, "(untouched)");
    CHECK(writer_start(db, 8, true, &w, &e) == -1);
    CHECK_CONTAINS(e.msg, want);
    CHECK_CONTAINS(e.msg, "newer sluice");
    snprintf(e.msg, sizeof e.msg, "(untouched)");
    CHECK(db_open(db, true, &raw, &e) == -1);
    CHECK(raw == NULL);
    CHECK_CONTAINS(e.msg, want);
    snprintf(e.msg, sizeof e.msg, "(untouched)");
    CHECK(db_open(db, false, &raw, &e) == -1); /* readers refuse it too */
    CHECK(raw == NULL);
    CHECK_CONTAINS(e.msg, want);
    /* and it was left as it was */
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    CHECK(query_int(raw, "PRAGMA user_version") == DB_SCHEMA_VERSION + 1);
    sqlite3_close(raw);
    raw = NULL;

    /* a reader on a file that is not a sluice database yet */
    char *empty = tu_path(tmp, "empty.db");
    CHECK(sqlite3_open(empty, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    raw = NULL;
    CHECK(db_open(empty, false, &raw, &e) == -1);
    CHECK_CONTAINS(e.msg, "is not a sluice database yet");
    /* a missing file: read-only does not create it */
    char *missing = tu_path(tmp, "missing.db");
    CHECK(db_open(missing, false, &raw, &e) == -1);
    CHECK(raw == NULL);
    CHECK_CONTAINS(e.msg, missing);
    CHECK(access(missing, F_OK) != 0);
    /* a folder that does not exist: the writer says which file */
    char *nodir = tu_path(tmp, "no/such/dir/x.db");
    CHECK(writer_start(nodir, 8, true, &w, &e) == -1);
    CHECK_CONTAINS(e.msg, nodir);
    free(nodir);
    free(missing);
    free(empty);
    free(db);
}

int main(void)
{
    tmp = tu_mkdtemp("writer");
    test_journal();
    test_invlog();
    test_stop_commits();
    test_concurrent_producers();
    test_finish_folds_into_append();
    test_ops_queued_during_a_hold_all_complete();
    test_op_alloc();
    test_many_statements_and_op_errors();
    test_schema();
    tu_rm_rf(tmp);
    free(tmp);
    return test_summary();
}
