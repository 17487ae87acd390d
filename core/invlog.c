/* invlog.c - invocation rows and handler log lines (see invlog.h). Each
 * queued row is one allocation holding its strings, so the hot path does one
 * malloc and one free per row. */
#include "invlog.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "sluice/handler.h"
#include "writer.h"

static const char SQL_INVOCATION[] =
    "INSERT INTO invocations (request_id, event_id, pipeline, step, handler, source, attempt,"
    " started_at, duration_ms, init_ms, status, status_code, error, input_bytes, output_bytes,"
    " plugin_version, max_memory_kb, node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
    " ?12, ?13, ?14, ?15, ?16, ?17, sluice_node())";
static const char SQL_LOG[] =
    "INSERT INTO logs (request_id, pipeline, step, at, level, message, node)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, sluice_node())";

const char *invlog_status_name(enum inv_status s)
{
    static const char *const names[] = {"ok", "error", "timeout", "crashed"};
    return s <= INV_CRASHED ? names[s] : "error";
}

/* Strings packed after the op, in field order. */
enum { S_REQUEST, S_EVENT, S_PIPELINE, S_STEP, S_HANDLER, S_SOURCE, S_ERROR, S_VERSION, S_N };

struct inv_op {
    struct wop base;
    struct invocation inv;
    char started_at[32];
    const char *s[S_N];
};

static void bind_opt(sqlite3_stmt *st, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

static int inv_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct inv_op *o = (struct inv_op *)op;
    sqlite3_stmt *st = writer_stmt(w, SQL_INVOCATION, e);
    if (!st)
        return -1;
    for (int i = S_REQUEST; i <= S_SOURCE; i++)
        bind_opt(st, i + 1, o->s[i]);
    sqlite3_bind_int(st, 7, o->inv.attempt);
    sqlite3_bind_text(st, 8, o->started_at, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 9, o->inv.duration_ms);
    if (o->inv.init_ms >= 0)
        sqlite3_bind_double(st, 10, o->inv.init_ms);
    sqlite3_bind_text(st, 11, invlog_status_name(o->inv.status), -1, SQLITE_STATIC);
    if (o->inv.status_code > 0)
        sqlite3_bind_int(st, 12, o->inv.status_code);
    bind_opt(st, 13, o->s[S_ERROR]);
    sqlite3_bind_int64(st, 14, (sqlite3_int64)o->inv.input_bytes);
    sqlite3_bind_int64(st, 15, (sqlite3_int64)o->inv.output_bytes);
    bind_opt(st, 16, o->s[S_VERSION]);
    if (o->inv.max_memory_kb >= 0)
        sqlite3_bind_int64(st, 17, o->inv.max_memory_kb);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "logging invocation: %s", sqlite3_errmsg(writer_db(w)));
    return 0;
}

/* A row that could not be written is logged, not silently lost; the
 * first few in full, then one in a thousand, so a broken database cannot
 * flood stderr. */
static void free_op(struct wop *op, int rc, const struct err *e)
{
    static unsigned long failures; /* the writer thread's own */
    if (rc < 0 && (++failures <= 10 || failures % 1000 == 0))
        log_msg(LOG_ERROR, "database writer: %s (%lu rows lost so far)", e->msg, failures);
    free(op);
}

int invlog_record(struct writer *w, const struct invocation *inv, struct err *e)
{
    const char *in[S_N] = {inv->request_id, inv->event_id, inv->pipeline, inv->step,
                           inv->handler, inv->source, inv->error, inv->plugin_version};
    const char *out[S_N];
    metrics_invocation(inv); /* every attempt passes here, written or not */
    struct inv_op *o = writer_op_alloc(sizeof *o, in, out, S_N);
    if (!o)
        return err_set(e, "out of memory");
    memcpy(o->s, out, sizeof out);
    o->inv = *inv;
    clock_iso8601(inv->started_ms, o->started_at);
    o->base = (struct wop){.apply = inv_apply, .done = free_op};
    writer_submit(w, &o->base);
    return 0;
}

enum { L_REQUEST, L_PIPELINE, L_STEP, L_MESSAGE, L_N };

struct log_op {
    struct wop base;
    int level;
    char at[32];
    const char *s[L_N];
};

static const char *level_name(int level)
{
    if (level >= SL_LOG_ERROR)
        return "ERROR";
    if (level >= SL_LOG_WARN)
        return "WARN";
    if (level >= SL_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

static int log_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct log_op *o = (struct log_op *)op;
    sqlite3_stmt *st = writer_stmt(w, SQL_LOG, e);
    if (!st)
        return -1;
    bind_opt(st, 1, o->s[L_REQUEST]);
    bind_opt(st, 2, o->s[L_PIPELINE]);
    bind_opt(st, 3, o->s[L_STEP]);
    sqlite3_bind_text(st, 4, o->at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, level_name(o->level), -1, SQLITE_STATIC);
    bind_opt(st, 6, o->s[L_MESSAGE]);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "logging a handler line: %s", sqlite3_errmsg(writer_db(w)));
    return 0;
}

int invlog_line(struct writer *w, const char *request_id, const char *pipeline,
                const char *step, int level, const char *message, struct err *e)
{
    const char *in[L_N] = {request_id ? request_id : "", pipeline, step, message};
    const char *out[L_N];
    struct log_op *o = writer_op_alloc(sizeof *o, in, out, L_N);
    if (!o)
        return err_set(e, "out of memory");
    memcpy(o->s, out, sizeof out);
    o->level = level;
    clock_iso8601(clock_wall_ms(), o->at);
    o->base = (struct wop){.apply = log_apply, .done = free_op};
    writer_submit(w, &o->base);
    return 0;
}
