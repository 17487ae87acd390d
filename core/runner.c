/* runner.c - one event through a pipeline's steps (see runner.h). */
#include "runner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "executor.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "path.h"
#include "pipeline.h"
#include "uuid.h"
#include "worker.h"

struct run_state {
    const struct run_env *env;
    const struct pipeline *p;
    const struct run_input *in;
    char request_id[UUID_STR_LEN];
    int attempts;               /* all attempts of this run */
    int first_attempt;          /* attempt number of a step's first try */
    size_t first_step;          /* where a resumed run starts */
    int retry_wait_ms;          /* >= 0: the failed step is retried after this */
    const char *condition;      /* why an event died: RetriesExhausted, EventAgeExceeded */
    /* Batches: called when the first step succeeded, with its body. */
    void (*first_step_done)(struct run_state *rs, const struct attempt *a);
    void *batch;
};

static void record(struct run_state *rs, const struct attempt *a)
{
    struct invocation inv = {
        .request_id = rs->request_id,
        .event_id = rs->in->event_id,
        .pipeline = rs->p->name,
        .step = a->step->name,
        .handler = a->step->handler,
        .source = rs->in->source,
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
    if (invlog_record(rs->env->writer, &inv, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: cannot log an invocation: %s", rs->p->name, e.msg);
}

static int next_wait(const struct retry *r, int retry_index)
{
    double ms = r->interval_ms;
    for (int i = 0; i < retry_index; i++)
        ms *= r->backoff_rate;
    if (r->max_interval_ms > 0 && ms > r->max_interval_ms)
        ms = r->max_interval_ms;
    return (int)ms;
}

static int jittered(const struct retry *r, int ms)
{
    unsigned int x;
    if (!r->jitter || ms <= 0 || getrandom(&x, sizeof x, 0) != sizeof x)
        return ms;
    return (int)(x % (unsigned)(ms + 1));
}

/* Should the failed attempt a (number n) be tried again? */
static bool retryable(struct run_state *rs, const struct step *s, const struct attempt *a, int n)
{
    if (n >= s->retry.max_attempts || !(s->retry.on & (1u << a->status))) {
        rs->condition = "RetriesExhausted";
        return false;
    }
    if (rs->p->max_event_age_ms > 0 && rs->in->received_ms > 0 &&
        clock_wall_ms() - rs->in->received_ms > rs->p->max_event_age_ms) {
        rs->condition = "EventAgeExceeded";
        return false;
    }
    return true;
}

#define LOG_LINE_MAX 16384

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

/* Run an attempt where its pipeline says: on this thread (isolation
 * "thread", slot NULL) or in the slot's worker process. Handler log lines
 * go to the invocation log through w. */
static void run_attempt(struct writer *w, struct exec_slot *slot, struct attempt *a)
{
    a->max_memory_kb = -1;
    /* a bounded copy, not snprintf: this runs before every handler */
    const char *version = a->step->plugin ? a->step->plugin->version : "";
    size_t n = strnlen(version, sizeof a->plugin_version - 1);
    memcpy(a->plugin_version, version, n);
    a->plugin_version[n] = '\0';
    if (slot && worker_needed(a->pipeline, a->step)) {
        worker_run_attempt(slot, w, a);
        return;
    }
    int64_t deadline = clock_mono_ns() + (int64_t)a->step->timeout_ms * 1000000;
    executor_call(a, deadline, log_to_db, w);
}

/* Run one step. A failure that may be retried either returns at once with
 * retry_wait_ms set (a run that can resume) or waits here (batches). On
 * return a holds the last attempt. */
static bool run_step(struct run_state *rs, const struct step *s, const char *event,
                     size_t len, struct attempt *a, bool *interrupted)
{
    for (int n = rs->first_attempt;; n++) {
        attempt_release(a);
        *a = (struct attempt){.pipeline = rs->p, .step = s, .request_id = rs->request_id,
                              .event = event, .event_len = len, .number = n};
        a->event_id = rs->in->event_id; /* ABI 2 context (issue 20) */
        a->source = rs->in->source;
        run_attempt(rs->env->writer, rs->env->slot, a);
        if (a->interrupted) {
            *interrupted = true;
            return false;
        }
        rs->attempts++;
        record(rs, a);
        if (a->status == INV_OK && a->body)
            return true;
        if (!retryable(rs, s, a, n))
            return false;
        int ms = jittered(&s->retry, next_wait(&s->retry, n - 1));
        if (rs->in->resume) {
            rs->retry_wait_ms = ms;
            return false;
        }
        if (!rs->env->wait(rs->env->wait_arg, ms)) {
            *interrupted = true;
            return false;
        }
    }
}

static cJSON *parse_or_string(const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    return v ? v : cJSON_CreateString(json ? json : "");
}

/* A record shaped like a Lambda destination record, so downstream tools
 * can tell why it arrived: condition "Success", "RetriesExhausted" or
 * "EventAgeExceeded"; body is the final response when it succeeded. */
static char *destination_record(struct run_state *rs, const struct attempt *a, bool ok,
                                const char *body)
{
    char when[32];
    clock_iso8601(clock_wall_ms(), when);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "version", "1.0");
    cJSON_AddStringToObject(r, "timestamp", when);
    cJSON *rc = cJSON_AddObjectToObject(r, "requestContext");
    cJSON_AddStringToObject(rc, "requestId", rs->request_id);
    cJSON_AddStringToObject(rc, "functionArn", a->step->handler);
    cJSON_AddStringToObject(rc, "condition", ok ? "Success" : rs->condition ? rs->condition
                                                                               : "RetriesExhausted");
    cJSON_AddNumberToObject(rc, "approximateInvokeCount", rs->attempts);
    cJSON_AddItemToObject(r, "requestPayload", parse_or_string(rs->in->payload));
    cJSON *resp = cJSON_AddObjectToObject(r, "responseContext");
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
    cJSON_AddItemToObject(r, "responsePayload", payload);
    cJSON *sl = cJSON_AddObjectToObject(r, "sluice");
    cJSON_AddStringToObject(sl, "pipeline", rs->p->name);
    cJSON_AddStringToObject(sl, "step", a->step->name);
    cJSON_AddStringToObject(sl, "status", invlog_status_name(a->status));
    cJSON_AddStringToObject(sl, "eventId", rs->in->event_id);
    cJSON_AddStringToObject(sl, "source", rs->in->source);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    return text;
}

/* Send the run's record where the pipeline says. A folder is written here;
 * a pipeline or a ZeroMQ endpoint is the event loop's job, so the record is
 * handed back in *out. */
static void send_record(struct run_state *rs, const struct attempt *a, bool ok,
                        const char *body, char **out)
{
    const struct destination *dst = ok ? &rs->p->on_success : &rs->p->on_failure;
    if (dst->kind == DEST_NONE)
        return;
    char *text = destination_record(rs, a, ok, body);
    if (dst->kind != DEST_DIRECTORY && out) {
        *out = text;
        return;
    }
    char name[96]; /* items of one batch share a request id: their row ids tell them apart */
    if (rs->batch)
        snprintf(name, sizeof name, "%s-%lld.json", rs->request_id, (long long)rs->in->journal_id);
    else
        snprintf(name, sizeof name, "%s.json", rs->request_id);
    struct err e;
    if (!text || path_mkdirs(dst->directory, 0750, &e) < 0 ||
        path_write_atomic(dst->directory, name, text, strlen(text), &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: the record of event %s did not reach %s: %s",
                rs->p->name, rs->in->event_id, dst->directory, text ? e.msg : "out of memory");
    free(text);
}

static void finish(struct run_state *rs, const char *state, const char *error)
{
    struct err e;
    struct journal_ref ref = {.id = rs->in->journal_id, .append = rs->in->append,
                              .pipeline = rs->p->name, .event_id = rs->in->event_id,
                              .finished = rs->in->finished, .finished_arg = rs->in->finished_arg};
    if (journal_finish(rs->env->writer, &ref, state, rs->attempts, error, &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: event %s stays pending: %s", rs->p->name,
                rs->in->event_id, e.msg);
}

/* The answer `sluice invoke` prints. */
static char *answer(enum run_outcome out, const struct attempt *a, const char *body)
{
    cJSON *r = cJSON_CreateObject();
    if (out == RUN_DONE) {
        cJSON_AddNumberToObject(r, "statusCode", a->status_code);
        cJSON_AddItemToObject(r, "body", parse_or_string(body));
    } else if (out == RUN_DEAD) {
        cJSON_AddStringToObject(r, "errorType", a->error_type ? a->error_type : "Error");
        cJSON_AddStringToObject(r, "errorMessage", a->error ? a->error : "");
        if (a->stack)
            cJSON_AddItemToObject(r, "stackTrace", parse_or_string(a->stack));
        cJSON_AddStringToObject(r, "status", invlog_status_name(a->status));
        cJSON_AddStringToObject(r, "step", a->step ? a->step->name : "");
    } else {
        cJSON_AddStringToObject(r, "errorType", "Interrupted");
        cJSON_AddStringToObject(r, "errorMessage", "sluice stopped before the run finished; the "
                                "event stays journaled and runs at the next start");
    }
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return text;
}

static void new_request_id(struct run_state *rs)
{
    if (uuid_v7(rs->request_id) < 0)
        snprintf(rs->request_id, sizeof rs->request_id, "00000000-0000-7000-8000-000000000000");
}

/* Run every step on event (consumed). On return *a is the last attempt and
 * *last the final body (RUN_DONE) or the failed step's input. */
static enum run_outcome run_steps(struct run_state *rs, char *event, struct attempt *a,
                                  char **last)
{
    size_t len = event ? strlen(event) : 0;
    bool interrupted = false;
    enum run_outcome out = RUN_DONE;
    rs->retry_wait_ms = -1;
    for (size_t i = rs->first_step; event && i < rs->p->n_steps; i++) {
        if (!run_step(rs, &rs->p->steps[i], event, len, a, &interrupted)) {
            out = interrupted ? RUN_INTERRUPTED : rs->retry_wait_ms >= 0 ? RUN_RETRY : RUN_DEAD;
            if (out == RUN_RETRY)
                rs->first_step = i;
            break;
        }
        rs->first_attempt = 1; /* a resumed step's numbering ends with it */
        if (i == 0 && rs->first_step_done)
            rs->first_step_done(rs, a);
        free(event);
        event = a->body; /* this step's response is the next step's event */
        len = a->body_len;
        a->body = NULL;
    }
    if (!event && out == RUN_DONE) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory running event %s", rs->p->name,
                rs->in->event_id);
        out = RUN_INTERRUPTED;
    }
    *last = event;
    return out;
}

/* An event that waited in the queue past max_event_age_ms is not run at
 * all: it goes to on_failure as EventAgeExceeded, as Lambda does it. */
static bool too_old(struct run_state *rs, struct attempt *a)
{
    int64_t age = clock_wall_ms() - rs->in->received_ms;
    if (rs->p->max_event_age_ms <= 0 || rs->in->received_ms <= 0 ||
        age <= rs->p->max_event_age_ms)
        return false;
    char msg[160];
    snprintf(msg, sizeof msg, "the event waited %lld ms, over max_event_age_ms (%d); not run",
             (long long)age, rs->p->max_event_age_ms);
    rs->condition = "EventAgeExceeded";
    *a = (struct attempt){.step = &rs->p->steps[0], .status = INV_ERROR,
                          .error_type = strdup("EventAgeExceeded"), .error = strdup(msg)};
    return true;
}

/* Take up a run where its last retry left it, or start it. */
static char *begin(struct run_state *rs, struct run_resume *resume)
{
    if (!resume || !resume->event) {
        if (rs->in->request_id)
            snprintf(rs->request_id, sizeof rs->request_id, "%s", rs->in->request_id);
        else
            new_request_id(rs);
        return strdup(rs->in->payload);
    }
    rs->first_step = resume->step;
    rs->first_attempt = resume->attempt + 1;
    rs->attempts = resume->attempts;
    memcpy(rs->request_id, resume->request_id, UUID_STR_LEN);
    char *event = resume->event;
    resume->event = NULL;
    return event;
}

/* Remember where to pick up after the wait. */
static void suspend(struct run_state *rs, struct run_resume *resume, const struct attempt *a,
                    char *event)
{
    resume->step = rs->first_step;
    resume->attempt = a->number;
    resume->event = event;
    resume->attempts = rs->attempts;
    memcpy(resume->request_id, rs->request_id, UUID_STR_LEN);
    resume->due_ns = clock_mono_ns() + (int64_t)rs->retry_wait_ms * 1000000;
}

enum run_outcome runner_run(const struct run_env *env, const struct pipeline *p,
                            const struct run_input *in, char **response, char request_id[37],
                            char **record)
{
    struct run_state rs = {.env = env, .p = p, .in = in, .first_attempt = 1};
    struct attempt a = {0};
    char *event = NULL;
    char *start = begin(&rs, in->resume);
    enum run_outcome out;
    if (!(in->resume && in->resume->attempts) && too_old(&rs, &a)) {
        out = RUN_DEAD;
        event = start;
    } else {
        out = run_steps(&rs, start, &a, &event);
    }
    if (out == RUN_RETRY) {
        suspend(&rs, in->resume, &a, event);
        attempt_release(&a);
        return out;
    }
    if (out == RUN_DEAD) {
        send_record(&rs, &a, false, NULL, record);
        finish(&rs, "dead", a.error);
    } else if (out == RUN_DONE) {
        send_record(&rs, &a, true, event, record);
        finish(&rs, "done", NULL);
    }
    if (response)
        *response = answer(out, &a, event);
    if (request_id)
        memcpy(request_id, rs.request_id, UUID_STR_LEN);
    attempt_release(&a);
    free(event);
    return out;
}

/* --- batches --- */

struct batch_state {
    const struct run_input *const *in;
    size_t n;
    bool *active;               /* in this round */
    bool *failed;               /* named in batchItemFailures this round */
    int *attempts;              /* attempts each item took part in */
    enum run_outcome *outcome;
    char **records;             /* for destinations the loop delivers */
    char **responses;           /* each item's answer, for invokes */
    int step0_attempt;          /* the first step's last attempt number */
};

/* {"Records": [{"eventId", "eventSource", "body"}...]} of the active items,
 * shaped like an SQS batch so Lambda SQS handlers read it unchanged. */
static char *batch_event(const struct batch_state *b)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *records = cJSON_AddArrayToObject(root, "Records");
    for (size_t i = 0; i < b->n; i++) {
        if (!b->active[i])
            continue;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "eventId", b->in[i]->event_id);
        cJSON_AddStringToObject(r, "eventSource", b->in[i]->source);
        cJSON_AddItemToObject(r, "body", parse_or_string(b->in[i]->payload));
        cJSON_AddItemToArray(records, r);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* The ids of the active items, as a JSON array, for the invocation rows. */
static char *batch_ids(const struct batch_state *b)
{
    cJSON *ids = cJSON_CreateArray();
    for (size_t i = 0; i < b->n; i++)
        if (b->active[i])
            cJSON_AddItemToArray(ids, cJSON_CreateString(b->in[i]->event_id));
    char *text = cJSON_PrintUnformatted(ids);
    cJSON_Delete(ids);
    return text;
}

/* batchItemFailures names items by eventId (or by their index in Records). */
static void mark_failed(struct batch_state *b, const cJSON *ident)
{
    size_t index = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->active[i])
            continue;
        bool hit = (cJSON_IsString(ident) && strcmp(ident->valuestring, b->in[i]->event_id) == 0) ||
                   (cJSON_IsNumber(ident) && ident->valuedouble == (double)index);
        if (hit)
            b->failed[i] = true;
        index++;
    }
}

static void first_step_done(struct run_state *rs, const struct attempt *a)
{
    struct batch_state *b = rs->batch;
    b->step0_attempt = a->number;
    cJSON *v = a->body ? cJSON_Parse(a->body) : NULL;
    const cJSON *failures = cJSON_GetObjectItemCaseSensitive(v, "batchItemFailures");
    const cJSON *f;
    cJSON_ArrayForEach(f, failures) {
        mark_failed(b, cJSON_GetObjectItemCaseSensitive(f, "itemIdentifier"));
    }
    cJSON_Delete(v);
}

static void finish_item(struct run_state *rs, struct batch_state *b, size_t i,
                        enum run_outcome out, const struct attempt *a, const char *body)
{
    struct run_state one = *rs;
    one.in = b->in[i];
    one.attempts = b->attempts[i];
    b->outcome[i] = out;
    b->active[i] = false;
    if (b->responses && out != RUN_INTERRUPTED)
        b->responses[i] = answer(out, a, body);
    if (out == RUN_DEAD) {
        send_record(&one, a, false, NULL, &b->records[i]);
        finish(&one, "dead", a->error ? a->error : "named in batchItemFailures");
    } else if (out == RUN_DONE) {
        send_record(&one, a, true, body, &b->records[i]);
        finish(&one, "done", NULL);
    }
}

/* One round: the active items through the pipeline, the first step's
 * attempts numbered from `first`. Returns true if some items failed
 * individually and may be retried. */
static bool batch_round(struct run_state *rs, struct batch_state *b, int first)
{
    char *ids = batch_ids(b);
    struct run_input in = {.event_id = ids ? ids : "[]", .source = b->in[0]->source, .payload = ""};
    rs->in = &in;
    rs->first_attempt = first;
    rs->attempts = 0;
    new_request_id(rs);
    memset(b->failed, 0, b->n * sizeof *b->failed);
    struct attempt a = {0};
    char *last = NULL;
    enum run_outcome out = run_steps(rs, batch_event(b), &a, &last);
    const struct retry *r = &rs->p->steps[0].retry;
    bool retry = false;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->active[i])
            continue;
        b->attempts[i] += rs->attempts;
        if (out != RUN_DONE || !b->failed[i])
            finish_item(rs, b, i, out, &a, last);
        else if (b->step0_attempt >= r->max_attempts) /* the step succeeded, the item not */
            finish_item(rs, b, i, RUN_DEAD, &(struct attempt){.step = &rs->p->steps[0],
                        .number = b->step0_attempt, .error_type = "BatchItemFailure",
                        .error = "the handler named this item in batchItemFailures",
                        .status = INV_ERROR}, NULL);
        else
            retry = true;
    }
    attempt_release(&a);
    free(last);
    free(ids);
    return retry;
}

void runner_run_batch(const struct run_env *env, const struct pipeline *p,
                      const struct run_input *const *in, size_t n, enum run_outcome *outcome,
                      char **records, char **responses)
{
    struct batch_state b = {.in = in, .n = n, .outcome = outcome, .records = records,
                            .responses = responses};
    b.active = calloc(n, sizeof *b.active);
    b.failed = calloc(n, sizeof *b.failed);
    b.attempts = calloc(n, sizeof *b.attempts);
    for (size_t i = 0; i < n; i++) {
        outcome[i] = RUN_INTERRUPTED;
        if (b.active)
            b.active[i] = true;
    }
    struct run_state rs = {.env = env, .p = p, .first_step_done = first_step_done, .batch = &b};
    const struct retry *r = &p->steps[0].retry;
    int first = 1;
    while (b.active && b.failed && b.attempts && batch_round(&rs, &b, first)) {
        if (!env->wait(env->wait_arg, next_wait(r, b.step0_attempt - 1)))
            break; /* stopping: the rest stay pending */
        first = b.step0_attempt + 1;
    }
    free(b.active);
    free(b.failed);
    free(b.attempts);
}
