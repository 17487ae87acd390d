/* source_schedule.c - scheduled pipelines (see source_schedule.h).
 *
 * Times are wall-clock ms (schedules are calendar times); the loop's timers
 * are monotonic, so each is armed for the wall-clock distance and checked
 * against the wall clock when it fires (a clock step re-arms it).
 */
#include "source_schedule.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "loop.h"
#include "pipeline.h"
#include "schedule.h"
#include "writer.h"

#define QUEUE_MAX 64              /* overlap "queue": firings held at most */
#define DRAIN_POLL_NS 100000000   /* ... checked for the run's end this often */
#define CATCH_UP_MAX_STEPS 1000000

struct entry {
    struct source_schedule *src;
    const struct pipeline *p;
    struct schedule *sched;
    struct loop_timer timer;    /* the next firing */
    struct loop_timer drain;    /* overlap "queue": is the run over yet? */
    int64_t next_ms;            /* -1: no more firings */
    int64_t last_ms;            /* -1: none yet */
    int64_t missed_ms;          /* catch_up: a firing to run at start; -1: none */
    int64_t queued[QUEUE_MAX];
    int n_queued;
};

struct source_schedule {
    struct loop *loop;
    struct writer *writer;
    struct source_schedule_hooks hooks;
    struct entry *entries;
    size_t n;
};

/* -- the event ---------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A UUID (version 8: custom) from the pipeline and the time: the same
 * firing always has the same id. */
static void firing_id(const char *pipeline, int64_t at_ms, char id[UUID_STR_LEN])
{
    uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    for (int i = 0; i < 2; i++) {
        h[i] = fnv1a(h[i], pipeline, strlen(pipeline) + 1);
        h[i] = fnv1a(h[i], &at_ms, sizeof at_ms);
    }
    h[0] = (h[0] & ~0xf000ULL) | 0x8000ULL;                            /* version 8 */
    h[1] = (h[1] & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;      /* variant 10 */
    snprintf(id, UUID_STR_LEN, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h[0] >> 32),
             (unsigned)(h[0] >> 16) & 0xffff, (unsigned)h[0] & 0xffff, (unsigned)(h[1] >> 48),
             (unsigned long long)(h[1] & 0xffffffffffffULL));
}

/* EventBridge's time: seconds, no fraction. */
static void event_time(int64_t ms, char out[32])
{
    clock_iso8601(ms, out);
    char *dot = strchr(out, '.');
    if (dot)
        strcpy(dot, "Z");
}

char *schedule_event_json(const char *pipeline, int64_t scheduled_ms, char id[UUID_STR_LEN])
{
    char when[32], arn[200];
    firing_id(pipeline, scheduled_ms, id);
    event_time(scheduled_ms, when);
    snprintf(arn, sizeof arn, "arn:sluice:events:local:000000000000:rule/%s", pipeline);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", "0");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "detail-type", "Scheduled Event");
    cJSON_AddStringToObject(o, "source", "aws.events");
    cJSON_AddStringToObject(o, "account", "000000000000");
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "region", "local");
    cJSON *res = cJSON_AddArrayToObject(o, "resources");
    cJSON_AddItemToArray(res, cJSON_CreateString(arn));
    cJSON_AddObjectToObject(o, "detail");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* -- the database ------------------------------------------------------------------------- */

static const char SQL_SAVE[] =
    "INSERT INTO schedules (pipeline, expression, timezone, last_fired_at, next_fire_at, "
    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pipeline) DO UPDATE SET "
    "expression = ?2, timezone = ?3, last_fired_at = ?4, next_fire_at = ?5, updated_at = ?6";

struct save_op {
    struct wop op;
    const char *s[6];           /* the six columns, NULL for SQL NULL */
};

static int save_apply(struct wop *op, struct writer *w, struct err *e)
{
    struct save_op *o = (struct save_op *)op;
    sqlite3_stmt *st = writer_stmt(w, SQL_SAVE, e);
    if (!st)
        return -1;
    for (int i = 0; i < 6; i++)
        sqlite3_bind_text(st, i + 1, o->s[i], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return err_set(e, "recording schedule of pipeline %s: %s", o->s[0],
                       sqlite3_errmsg(writer_db(w)));
    return 0;
}

static void save_done(struct wop *op, int rc, const struct err *e)
{
    if (rc < 0)
        log_msg(LOG_ERROR, "%s", e->msg);
    free(op);
}

/* Record en's last and next firing (asynchronously, through the writer). */
static void save(struct entry *en)
{
    char last[32], next[32], now[32];
    if (en->last_ms >= 0)
        clock_iso8601(en->last_ms, last);
    if (en->next_ms >= 0)
        clock_iso8601(en->next_ms, next);
    clock_iso8601(clock_wall_ms(), now);
    const char *in[6] = {en->p->name, en->p->schedule, en->p->timezone,
                         en->last_ms >= 0 ? last : NULL, en->next_ms >= 0 ? next : NULL, now};
    const char *out[6];
    struct save_op *o = writer_op_alloc(sizeof *o, in, out, 6);
    if (!o) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory recording its schedule", en->p->name);
        return;
    }
    memcpy(o->s, out, sizeof out);
    o->op.apply = save_apply;
    o->op.done = save_done;
    writer_submit(en->src->writer, &o->op);
}

/* The stored state of p's schedule, if it is for the same expression:
 * last and next firing (-1 when unknown). */
static void load(sqlite3 *reader, const struct pipeline *p, int64_t *last, int64_t *next)
{
    *last = *next = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(reader, "SELECT expression, timezone, last_fired_at, next_fire_at "
                           "FROM schedules WHERE pipeline = ?", -1, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_WARN, "pipeline %s: cannot read its schedule's last firing: %s", p->name,
                sqlite3_errmsg(reader));
        return;
    }
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *expr = (const char *)sqlite3_column_text(st, 0);
        const char *tz = (const char *)sqlite3_column_text(st, 1);
        bool same = expr && strcmp(expr, p->schedule) == 0 &&
                    ((!tz && !p->timezone) || (tz && p->timezone && strcmp(tz, p->timezone) == 0));
        if (same) {
            *last = schedule_parse_iso((const char *)sqlite3_column_text(st, 2));
            *next = schedule_parse_iso((const char *)sqlite3_column_text(st, 3));
        }
    }
    sqlite3_finalize(st);
}

/* -- firing ------------------------------------------------------------------------------- */

static void arm(struct entry *en, struct loop_timer *t, int64_t wall_ms)
{
    int64_t wait_ms = wall_ms - clock_wall_ms();
    if (wait_ms < 0)
        wait_ms = 0;
    loop_timer_arm(en->src->loop, t, clock_mono_ns() + wait_ms * 1000000);
}

static void send(struct entry *en, int64_t at_ms)
{
    char id[UUID_STR_LEN];
    char *payload = schedule_event_json(en->p->name, at_ms, id);
    size_t len = strlen(en->p->schedule) + 16;
    char *source = malloc(len);
    if (!payload || !source) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory for a scheduled firing", en->p->name);
    } else {
        snprintf(source, len, "schedule:%s", en->p->schedule);
        en->src->hooks.fire(en->src->hooks.arg, en->p, id, source, payload);
        if (at_ms > en->last_ms)
            en->last_ms = at_ms;
    }
    free(payload);
    free(source);
}

/* A firing: run now, or follow overlap if the last one still runs. */
static void fire_at(struct entry *en, int64_t at_ms)
{
    if (!en->src->hooks.busy(en->src->hooks.arg, en->p) && en->n_queued == 0) {
        send(en, at_ms);
        return;
    }
    char when[32];
    clock_iso8601(at_ms, when);
    if (en->p->overlap == OVERLAP_SKIP) {
        log_msg(LOG_INFO, "pipeline %s: skipped the firing of %s: the last one still runs "
                "(overlap \"skip\")", en->p->name, when);
        return;
    }
    if (en->n_queued == QUEUE_MAX) {
        log_msg(LOG_WARN, "pipeline %s: %d firings already wait for a run to end; the firing "
                "of %s is dropped", en->p->name, QUEUE_MAX, when);
        return;
    }
    log_msg(LOG_INFO, "pipeline %s: the firing of %s waits for the last run to end (overlap "
            "\"queue\")", en->p->name, when);
    en->queued[en->n_queued++] = at_ms;
    if (!en->drain.armed)
        loop_timer_arm(en->src->loop, &en->drain, clock_mono_ns() + DRAIN_POLL_NS);
}

static void on_drain(struct loop_timer *t)
{
    struct entry *en = (struct entry *)((char *)t - offsetof(struct entry, drain));
    if (en->n_queued > 0 && !en->src->hooks.busy(en->src->hooks.arg, en->p)) {
        int64_t at = en->queued[0];
        memmove(en->queued, en->queued + 1, (size_t)--en->n_queued * sizeof en->queued[0]);
        send(en, at);
        save(en);
    }
    if (en->n_queued > 0)
        loop_timer_arm(en->src->loop, &en->drain, clock_mono_ns() + DRAIN_POLL_NS);
}

static void on_timer(struct loop_timer *t)
{
    struct entry *en = (struct entry *)((char *)t - offsetof(struct entry, timer));
    int64_t now = clock_wall_ms();
    if (en->missed_ms >= 0) { /* catch_up, at start */
        int64_t missed = en->missed_ms;
        en->missed_ms = -1;
        log_msg(LOG_INFO, "pipeline %s: catching up on a firing missed while sluice was down",
                en->p->name);
        fire_at(en, missed);
    } else if (en->next_ms >= 0 && now >= en->next_ms) {
        int64_t at = en->next_ms;
        if (schedule_next(en->sched, now > at ? now : at, at, &en->next_ms) < 0)
            en->next_ms = -1; /* late: the ticks meanwhile are not made up */
        fire_at(en, at);
    }
    save(en);
    if (en->next_ms >= 0)
        arm(en, &en->timer, en->next_ms); /* early (the clock moved): waits again */
    else
        log_msg(LOG_INFO, "pipeline %s: %s has no more firings", en->p->name, en->p->schedule);
}

/* The latest firing from next_ms on that is not after now. */
static int64_t latest_missed(const struct entry *en, int64_t next_ms, int64_t now)
{
    int64_t period = schedule_period_ms(en->sched);
    if (period)
        return next_ms + (now - next_ms) / period * period;
    int64_t t = next_ms, n;
    for (int i = 0; i < CATCH_UP_MAX_STEPS && schedule_next(en->sched, t, t, &n) == 0 && n <= now;
         i++)
        t = n;
    return t;
}

static int entry_start(struct source_schedule *src, struct entry *en, const struct pipeline *p,
                       sqlite3 *reader, struct err *e)
{
    en->src = src;
    en->p = p;
    en->timer.fire = on_timer;
    en->drain.fire = on_drain;
    en->missed_ms = -1;
    if (schedule_parse(p->schedule, p->timezone, &en->sched, e) < 0)
        return -1;
    int64_t now = clock_wall_ms(), stored_next;
    load(reader, p, &en->last_ms, &stored_next);
    /* a rate keeps its phase across restarts; a new one counts from now */
    int64_t anchor = en->last_ms >= 0 ? en->last_ms : stored_next >= 0 ? stored_next
                                                                        : now / 1000 * 1000;
    if (schedule_next(en->sched, now, anchor, &en->next_ms) < 0)
        en->next_ms = -1;
    if (p->catch_up && stored_next >= 0 && stored_next <= now)
        en->missed_ms = latest_missed(en, stored_next, now);
    char next[32] = "never";
    if (en->next_ms >= 0)
        clock_iso8601(en->next_ms, next);
    log_msg(LOG_INFO, "pipeline %s: %s%s%s, next firing %s", p->name, p->schedule,
            p->timezone ? " in " : "", p->timezone ? p->timezone : "", next);
    save(en);
    if (en->missed_ms >= 0)
        loop_timer_arm(src->loop, &en->timer, clock_mono_ns());
    else if (en->next_ms >= 0)
        arm(en, &en->timer, en->next_ms);
    return 0;
}

int source_schedule_new(struct loop *l, struct writer *w, sqlite3 *reader,
                        const struct pipeline_set *set, const struct source_schedule_hooks *hooks,
                        struct source_schedule **out, struct err *e)
{
    *out = NULL;
    struct source_schedule *s = calloc(1, sizeof *s);
    if (!s || !(s->entries = calloc(set->n ? set->n : 1, sizeof *s->entries))) {
        free(s);
        return err_set(e, "out of memory");
    }
    s->loop = l;
    s->writer = w;
    s->hooks = *hooks;
    for (size_t i = 0; i < set->n; i++) {
        if (set->v[i]->trigger != TRIGGER_SCHEDULE)
            continue;
        if (entry_start(s, &s->entries[s->n++], set->v[i], reader, e) < 0) {
            err_prefix(e, "%s: trigger.schedule", set->v[i]->file);
            source_schedule_free(&s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

void source_schedule_free(struct source_schedule **sp)
{
    struct source_schedule *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        loop_timer_cancel(s->loop, &s->entries[i].timer);
        loop_timer_cancel(s->loop, &s->entries[i].drain);
        schedule_free(&s->entries[i].sched);
    }
    free(s->entries);
    free(s);
    *sp = NULL;
}
