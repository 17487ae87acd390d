/* runner.c - one event, or one batch, through a pipeline's steps (see
 * runner.h). The functions that advance a run take `on_pool`: true on an
 * executor thread, false on the loop thread; each hand-off to the other
 * kind of thread ends the current thread's part. */
#include "runner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "batch.h"
#include "clock.h"
#include "event.h"
#include "http_event.h"
#include "invlog.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "pipeline.h"
#include "uuid.h"
#include "worker.h"

#define LOG_LINE_MAX 16384

static void next_attempt(struct run *r, bool on_pool);
static void run_end(struct run *r, enum run_outcome out, bool on_pool);

static const struct step *cur_step(const struct run *r)
{
    return &r->p->steps[r->step];
}

static bool is_batch(const struct run *r)
{
    return r->p->batch.size > 1;
}

static void record(struct run *r, const struct attempt *a)
{
    const struct run_item *it = &r->items[0];
    char *ids = NULL;
    if (is_batch(r)) { /* the rows of a batch name all its events */
        cJSON *v = cJSON_CreateArray();
        for (size_t i = 0; i < r->n_items; i++)
            if (r->items[i].active)
                cJSON_AddItemToArray(v, cJSON_CreateString(r->items[i].ev->id));
        ids = cJSON_PrintUnformatted(v);
        cJSON_Delete(v);
    }
    struct invocation inv = {
        .request_id = r->request_id,
        .event_id = ids ? ids : it->ev->id,
        .pipeline = r->p->name,
        .step = a->step->name,
        .handler = a->step->handler,
        .source = it->ev->source,
        .attempt = a->number,
        .started_ms = a->started_ms,
        .duration_ms = a->duration_ms,
        .init_ms = a->init_ms,
        .status = a->status,
        .status_code = a->status_code,
        .error = a->error,
        .input_bytes = a->event_len,
        .output_bytes = a->body ? a->body_len : 0,
        .plugin_version = a->plugin_version[0] ? a->plugin_version : NULL,
        .max_memory_kb = a->max_memory_kb,
    };
    struct err e;
    if (invlog_record(r->rn->writer, &inv, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: cannot log an invocation: %s", r->p->name, e.msg);
    free(ids);
}

/* The wait before retry number retry_index + 1, capped by max_interval_ms
 * (0: no cap). Computed in double and clamped before the conversion, so no
 * interval or rate can overflow an int. */
int runner_retry_wait_ms(const struct retry *rt, int retry_index)
{
    double ms = rt->interval_ms;
    for (int i = 0; i < retry_index && ms < 86400000.0; i++)
        ms *= rt->backoff_rate;
    if (rt->max_interval_ms > 0 && ms > rt->max_interval_ms)
        ms = rt->max_interval_ms;
    return ms > 86400000.0 ? 86400000 : (int)ms;
}

static int jittered(const struct retry *rt, int ms)
{
    unsigned int x;
    if (!rt->jitter || ms <= 0 || getrandom(&x, sizeof x, 0) != sizeof x)
        return ms;
    return (int)(x % (unsigned)(ms + 1));
}

/* The oldest event of the run decides its age. */
static int64_t run_age_ms(const struct run *r)
{
    int64_t now = clock_mono_ns(), age = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        int64_t a = event_age_ms(r->items[i].ev, now);
        if (r->items[i].active && a > age)
            age = a;
    }
    return age;
}

static int attempts_before(const struct run *r)
{
    return r->step == 0 && !is_batch(r) ? r->items[0].attempts_before : 0;
}

/* Should the failed attempt be tried again? Attempts made before a restart
 * count against max_attempts too. */
static bool retryable(struct run *r, const struct attempt *a)
{
    const struct step *s = a->step;
    if (a->number + attempts_before(r) >= s->retry.max_attempts ||
        !(s->retry.on & (1u << a->status))) {
        r->condition = "RetriesExhausted";
        return false;
    }
    if (r->p->max_event_age_ms > 0 && run_age_ms(r) > r->p->max_event_age_ms) {
        r->condition = "EventAgeExceeded";
        return false;
    }
    return true;
}

/* Thread isolation: a handler's log line, bounded, to the logs table. */
static void log_to_db(void *arg, const sl_context *ctx, int level, const char *msg)
{
    char line[LOG_LINE_MAX];
    size_t n = strlen(msg);
    if (n >= sizeof line) { /* bounded: a runaway handler cannot fill memory */
        memcpy(line, msg, sizeof line - 20);
        strcpy(line + sizeof line - 20, "... [truncated]");
        msg = line;
    }
    invlog_line(arg, ctx->request_id, ctx->pipeline, ctx->step, level, msg, NULL);
}

static cJSON *parse_or_string(const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    return v ? v : cJSON_CreateString(json ? json : "");
}

/* The active items as SQS records (batch.c); ApproximateReceiveCount is
 * the first step's attempt number this round. The round keeps the items,
 * which batchItemFailures is read against. */
static char *batch_event(struct run *r)
{
    free(r->batch_items);
    free(r->batch_active);
    r->batch_items = calloc(r->n_items, sizeof *r->batch_items);
    r->batch_active = calloc(r->n_items, sizeof *r->batch_active);
    if (!r->batch_items || !r->batch_active)
        return NULL;
    for (size_t i = 0; i < r->n_items; i++) {
        const struct run_item *it = &r->items[i];
        r->batch_items[i] = (struct batch_item){.message_id = it->ev->id,
                                                .source = it->ev->source, .body = it->ev->json,
                                                .receive_count = r->attempt,
                                                .sent_ms = it->ev->received_ms};
        r->batch_active[i] = it->active;
    }
    struct batch_origin o = {.pipeline = r->p->name, .region = r->p->region};
    return batch_event_json(&o, r->batch_items, r->n_items, r->batch_active);
}

/* Lambda's rules on batchItemFailures (batch.c): a wrong itemIdentifier
 * fails every item of the round, and the log says why. */
static void first_step_done(struct run *r, const struct attempt *a)
{
    r->step0_attempt = a->number;
    bool *failed = calloc(r->n_items ? r->n_items : 1, sizeof *failed);
    char why[400] = "";
    if (!failed || !r->batch_items)
        return free(failed);
    if (batch_read_failures(a->body, r->batch_items, r->n_items, r->batch_active, failed, why,
                            sizeof why) == BATCH_ALL_FAILED) {
        char line[600];
        snprintf(line, sizeof line, "%s; the whole batch fails, as on Lambda", why);
        log_msg(LOG_WARN, "pipeline %s: %s", r->p->name, line);
        invlog_line(r->rn->writer, r->request_id, r->p->name, a->step->name, SL_LOG_WARN, line,
                    NULL);
        free(r->batch_why);
        r->batch_why = strdup(line);
    }
    for (size_t i = 0; i < r->n_items; i++)
        r->items[i].failed = failed[i];
    free(failed);
}

/* --- hand-offs ------------------------------------------------------------ */

static void continue_on_loop(struct loop_task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, task));
    next_attempt(r, false);
}

static void continue_on_pool(struct pool_task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, work));
    next_attempt(r, true);
}

static void retry_due(struct loop_timer *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, timer));
    r->waiting = false;
    if (r->due) /* its slot went back meanwhile: the caller gets one first */
        r->due(r);
    else
        next_attempt(r, false);
}

static void arm_retry(struct loop_task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, task));
    if (r->stop) { /* interrupted while its attempt ran: no retry now */
        run_end(r, RUN_INTERRUPTED, false);
        return;
    }
    r->timer.fire = retry_due;
    r->waiting = true;
    loop_timer_arm(r->rn->loop, &r->timer, clock_mono_ns() + (int64_t)r->wait_ms * 1000000);
    if (r->paused)
        r->paused(r);
}

void run_resume(struct run *r)
{
    next_attempt(r, false);
}

static void ended_on_loop(struct loop_task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, task));
    r->ended(r);
}

/* --- attempts ------------------------------------------------------------- */

static void attempt_done(struct run *r, bool on_pool);

static void worker_attempt_done(void *arg)
{
    attempt_done(arg, false);
}

/* Run the current step's next attempt where it belongs. */
static void next_attempt(struct run *r, bool on_pool)
{
    const struct step *s = cur_step(r);
    const struct run_item *it = &r->items[0];
    attempt_release(&r->a);
    r->a = (struct attempt){.pipeline = r->p, .step = s, .request_id = r->request_id,
                            /* the ABI 2 context's: a batch has no one event */
                            .event_id = is_batch(r) ? NULL : it->ev->id,
                            .source = it->ev->source,
                            .event = r->input ? r->input : it->ev->json,
                            .event_len = r->input ? r->input_len : it->ev->len,
                            .number = r->attempt, .max_memory_kb = -1};
    if (worker_needed(r->p, s)) {
        if (on_pool) {
            r->task.run = continue_on_loop;
            loop_post(r->rn->loop, &r->task);
        } else {
            workers_run(r->rn->workers, &r->a, worker_attempt_done, r);
        }
        return;
    }
    if (!on_pool) {
        r->work.run = continue_on_pool;
        pool_submit(r->rn->pool, &r->work);
        return;
    }
    const char *version = s->plugin ? s->plugin->version : "";
    size_t n = strnlen(version, sizeof r->a.plugin_version - 1);
    memcpy(r->a.plugin_version, version, n); /* a bounded copy: this runs before every handler */
    r->a.plugin_version[n] = '\0';
    executor_call(&r->a, clock_mono_ns() + (int64_t)s->timeout_ms * 1000000, log_to_db,
                  r->rn->writer);
    attempt_done(r, true);
}

/* The step succeeded: its body is the next step's event. */
static void step_succeeded(struct run *r, bool on_pool)
{
    if (r->step == 0 && is_batch(r))
        first_step_done(r, &r->a);
    free(r->input);
    r->input = r->a.body;
    r->input_len = r->a.body_len;
    r->a.body = NULL;
    r->step++;
    r->attempt = 1;
    if (r->step == r->p->n_steps)
        run_end(r, RUN_DONE, on_pool);
    else
        next_attempt(r, on_pool);
}

static void attempt_done(struct run *r, bool on_pool)
{
    if (r->a.interrupted) {
        run_end(r, RUN_INTERRUPTED, on_pool);
        return;
    }
    r->attempts++;
    /* a handler's own statusCode: a success for an HTTP client (who gets
     * it), a failure elsewhere from 500 up (http_event.c says which) */
    if (r->a.status == INV_OK &&
        http_status_fails_step(r->p->trigger == TRIGGER_HTTP, r->a.status_code)) {
        char msg[96];
        snprintf(msg, sizeof msg, "the handler answered statusCode %d", r->a.status_code);
        r->a.status = INV_ERROR;
        free(r->a.error_type);
        free(r->a.error);
        r->a.error_type = strdup("HandlerError");
        r->a.error = strdup(msg);
    }
    record(r, &r->a);
    if (r->a.status == INV_OK && r->a.body) {
        step_succeeded(r, on_pool);
        return;
    }
    if (!retryable(r, &r->a)) {
        run_end(r, RUN_DEAD, on_pool);
        return;
    }
    const struct retry *rt = &cur_step(r)->retry;
    r->wait_ms = jittered(rt, runner_retry_wait_ms(rt, r->attempt - 1));
    r->attempt++;
    if (r->wait_ms <= 0) {
        next_attempt(r, on_pool);
        return;
    }
    if (on_pool) { /* timers are the loop's */
        r->task.run = arm_retry;
        loop_post(r->rn->loop, &r->task);
    } else {
        arm_retry(&r->task);
    }
}

/* --- the end -------------------------------------------------------------- */

/* A record shaped like a Lambda destination record, so downstream tools
 * can tell why it arrived: condition "Success", "RetriesExhausted" or
 * "EventAgeExceeded"; body is the final response when it succeeded. */
static char *destination_record(const struct run *r, const struct run_item *it,
                                const struct attempt *a, bool ok, const char *body)
{
    char when[32];
    clock_iso8601(clock_wall_ms(), when);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", "1.0");
    cJSON_AddStringToObject(o, "timestamp", when);
    cJSON *rc = cJSON_AddObjectToObject(o, "requestContext");
    cJSON_AddStringToObject(rc, "requestId", r->request_id);
    cJSON_AddStringToObject(rc, "functionArn", a->step->handler);
    cJSON_AddStringToObject(rc, "condition", ok ? "Success" : r->condition ? r->condition
                                                                             : "RetriesExhausted");
    cJSON_AddNumberToObject(rc, "approximateInvokeCount", it->attempts_before + it->attempts);
    cJSON_AddItemToObject(o, "requestPayload", parse_or_string(it->ev->json));
    cJSON *resp = cJSON_AddObjectToObject(o, "responseContext");
    cJSON_AddNumberToObject(resp, "statusCode", a->status_code ? a->status_code : 500);
    cJSON_AddStringToObject(resp, "executedVersion", "$LATEST");
    cJSON *payload;
    if (ok) {
        payload = parse_or_string(body);
    } else {
        cJSON_AddStringToObject(resp, "functionError", "Unhandled");
        payload = cJSON_CreateObject();
        cJSON_AddStringToObject(payload, "errorType", a->error_type ? a->error_type : "Error");
        cJSON_AddStringToObject(payload, "errorMessage", a->error ? a->error : "");
        if (a->stack)
            cJSON_AddItemToObject(payload, "stackTrace", parse_or_string(a->stack));
    }
    cJSON_AddItemToObject(o, "responsePayload", payload);
    cJSON *sl = cJSON_AddObjectToObject(o, "sluice");
    cJSON_AddStringToObject(sl, "pipeline", r->p->name);
    cJSON_AddStringToObject(sl, "step", a->step->name);
    cJSON_AddStringToObject(sl, "status", invlog_status_name(a->status));
    cJSON_AddStringToObject(sl, "eventId", it->ev->id);
    cJSON_AddStringToObject(sl, "source", it->ev->source);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

/* The answer `sluice invoke` prints. */
static char *answer(enum run_outcome out, const struct attempt *a, const char *body)
{
    cJSON *o = cJSON_CreateObject();
    if (out == RUN_DONE) {
        cJSON_AddNumberToObject(o, "statusCode", a->status_code);
        cJSON_AddItemToObject(o, "body", parse_or_string(body));
    } else if (out == RUN_DEAD) {
        cJSON_AddStringToObject(o, "errorType", a->error_type ? a->error_type : "Error");
        cJSON_AddStringToObject(o, "errorMessage", a->error ? a->error : "");
        if (a->stack)
            cJSON_AddItemToObject(o, "stackTrace", parse_or_string(a->stack));
        cJSON_AddStringToObject(o, "status", invlog_status_name(a->status));
        cJSON_AddStringToObject(o, "step", a->step ? a->step->name : "");
    } else {
        cJSON_AddStringToObject(o, "errorType", "Interrupted");
        cJSON_AddStringToObject(o, "errorMessage", "sluice stopped before the run finished; the "
                                "event stays journaled and runs at the next start");
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* One item's outcome: its answer, its record and its error; the caller
 * delivers the record and then commits (run_item_commit), in that order, so
 * a crash between the two repeats a record rather than loses one. */
static void finish_item(struct run *r, struct run_item *it, enum run_outcome out,
                        const struct attempt *a, const char *body)
{
    it->outcome = out;
    it->final = true;
    it->active = false;
    if (it->want_response)
        it->response = answer(out, a, body);
    const struct destination *dst = out == RUN_DONE ? &r->p->on_success : &r->p->on_failure;
    if (out != RUN_INTERRUPTED && dst->kind != DEST_NONE)
        it->record = destination_record(r, it, a, out == RUN_DONE, body);
    if (out == RUN_DEAD)
        it->error = strdup(a->error ? a->error : "failed");
}

void run_item_commit(const struct runner *rn, const struct pipeline *p, struct run_item *it)
{
    /* only a written outcome is waited for (an ahead job's row) */
    bool wrote = it->outcome != RUN_INTERRUPTED;
    if (!wrote && it->attempts == 0)
        return; /* nothing to count */
    struct journal_ref ref = {.id = it->journal_id, .append = it->append,
                              .pipeline = p->name, .event_id = it->ev->id,
                              .loop = rn->loop, .settled = wrote ? it->settled : NULL};
    struct err e;
    const char *state = it->outcome == RUN_DONE ? "done" : wrote ? "dead" : "pending";
    if (journal_finish(rn->writer, &ref, state, it->attempts, it->error, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: event %s stays pending: %s", p->name, it->ev->id,
                e.msg);
}

/* An event that waited in the queue past max_event_age_ms is not run at
 * all: it goes to on_failure as EventAgeExceeded, as Lambda does it. */
static bool too_old(struct run *r)
{
    int64_t age = run_age_ms(r);
    if (r->p->max_event_age_ms <= 0 || age <= r->p->max_event_age_ms)
        return false;
    char msg[160];
    snprintf(msg, sizeof msg, "the event waited %lld ms, over max_event_age_ms (%d); not run",
             (long long)age, r->p->max_event_age_ms);
    r->condition = "EventAgeExceeded";
    attempt_release(&r->a);
    r->a = (struct attempt){.step = &r->p->steps[0], .status = INV_ERROR,
                            .error_type = strdup("EventAgeExceeded"), .error = strdup(msg)};
    return true;
}

/* A round of a batch ended: items named in batchItemFailures go again in
 * a smaller batch while the first step has attempts left, after its retry
 * wait; the rest are final. Returns true if another round follows. */
static bool batch_round_end(struct run *r, enum run_outcome out)
{
    const struct retry *rt = &r->p->steps[0].retry;
    bool again = false;
    for (size_t i = 0; i < r->n_items; i++) {
        struct run_item *it = &r->items[i];
        if (!it->active)
            continue;
        it->attempts += r->attempts;
        if (out != RUN_DONE || !it->failed) {
            finish_item(r, it, out, &r->a, r->input);
        } else if (r->step0_attempt >= rt->max_attempts) { /* the step succeeded, the item not */
            struct attempt item = {.step = &r->p->steps[0], .number = r->step0_attempt,
                                   .error_type = "BatchItemFailure", .status = INV_ERROR,
                                   .error = r->batch_why ? r->batch_why
                                            : "the handler named this item in batchItemFailures"};
            finish_item(r, it, RUN_DEAD, &item, NULL);
        } else {
            again = true;
        }
    }
    if (!again)
        return false;
    r->wait_ms = runner_retry_wait_ms(rt, r->step0_attempt - 1);
    r->attempt = r->step0_attempt + 1;
    return true;
}

static void begin_round(struct run *r);

static void round_due(struct loop_timer *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, timer));
    r->waiting = false;
    begin_round(r);
    next_attempt(r, false);
}

static void arm_round(struct loop_task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, task));
    if (r->stop) { /* the failed items stay pending, their attempts counted */
        run_end(r, RUN_INTERRUPTED, false);
        return;
    }
    r->timer.fire = round_due;
    r->waiting = true;
    loop_timer_arm(r->rn->loop, &r->timer, clock_mono_ns() + (int64_t)r->wait_ms * 1000000);
}

static void run_end(struct run *r, enum run_outcome out, bool on_pool)
{
    if (is_batch(r) && out != RUN_INTERRUPTED && batch_round_end(r, out)) {
        r->task.run = arm_round;
        if (on_pool)
            loop_post(r->rn->loop, &r->task);
        else
            arm_round(&r->task);
        return;
    }
    for (size_t i = 0; i < r->n_items; i++) {
        struct run_item *it = &r->items[i];
        if (it->final)
            continue;
        if (!is_batch(r))
            it->attempts += r->attempts;
        finish_item(r, it, out, &r->a, out == RUN_DONE ? r->input : NULL);
    }
    attempt_release(&r->a);
    free(r->input);
    r->input = NULL;
    r->task.run = ended_on_loop;
    if (on_pool)
        loop_post(r->rn->loop, &r->task);
    else
        r->ended(r);
}

/* A round starts: a batch's active items become its event; each round is
 * a new request. */
static void begin_round(struct run *r)
{
    free(r->input);
    r->input = NULL;
    r->step = 0;
    r->attempts = 0;
    if (!is_batch(r))
        return;
    if (uuid_v7(r->request_id) < 0)
        snprintf(r->request_id, sizeof r->request_id, "00000000-0000-7000-8000-000000000000");
    for (size_t i = 0; i < r->n_items; i++)
        r->items[i].failed = false;
    free(r->batch_why);
    r->batch_why = NULL;
    r->input = batch_event(r);
    r->input_len = r->input ? strlen(r->input) : 0;
}

void run_start(struct run *r)
{
    r->attempt = 1;
    for (size_t i = 0; i < r->n_items; i++) {
        r->items[i].active = true;
        r->items[i].final = false;
        r->items[i].attempts = 0;
    }
    if (!r->request_id[0] && uuid_v7(r->request_id) < 0)
        snprintf(r->request_id, sizeof r->request_id, "00000000-0000-7000-8000-000000000000");
    begin_round(r);
    if (is_batch(r) && !r->input) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory for a batch of %zu; it stays pending",
                r->p->name, r->n_items);
        run_end(r, RUN_INTERRUPTED, false);
        return;
    }
    if (too_old(r)) {
        run_end(r, RUN_DEAD, false);
        return;
    }
    next_attempt(r, false);
}

void run_abort(struct run *r)
{
    if (r->waiting)
        loop_timer_cancel(r->rn->loop, &r->timer);
    r->waiting = false;
    run_end(r, RUN_INTERRUPTED, false);
}

bool run_interrupt(struct run *r)
{
    r->stop = true; /* a retry it comes to later ends it instead */
    if (!r->waiting)
        return false;
    loop_timer_cancel(r->rn->loop, &r->timer);
    r->waiting = false;
    run_end(r, RUN_INTERRUPTED, false);
    return true;
}

void run_release(struct run *r)
{
    attempt_release(&r->a);
    free(r->input);
    free(r->batch_items);
    free(r->batch_active);
    free(r->batch_why);
    r->input = r->batch_why = NULL;
    r->batch_items = NULL;
    r->batch_active = NULL;
}
