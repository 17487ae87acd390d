/* runner.c - one event through a pipeline's steps (see runner.h). */
#include "runner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "executor.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "path.h"
#include "pipeline.h"
#include "uuid.h"

struct run_state {
    const struct run_env *env;
    const struct pipeline *p;
    const struct run_input *in;
    char request_id[UUID_STR_LEN];
    int attempts;               /* all attempts of this run */
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
        .plugin_version = a->step->plugin ? a->step->plugin->version : NULL,
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

/* Run one step with its retries. On return a holds the last attempt. */
static bool run_step(struct run_state *rs, const struct step *s, const char *event,
                     size_t len, struct attempt *a, bool *interrupted)
{
    for (int n = 1;; n++) {
        attempt_release(a);
        *a = (struct attempt){.pipeline = rs->p, .step = s, .request_id = rs->request_id,
                              .event = event, .event_len = len, .number = n};
        executor_run(rs->env->writer, a);
        rs->attempts++;
        record(rs, a);
        if (a->status == INV_OK && a->body)
            return true;
        if (n >= s->retry.max_attempts)
            return false;
        if (!rs->env->wait(rs->env->wait_arg, next_wait(&s->retry, n - 1))) {
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

/* A record shaped like a Lambda destination record, so tools can tell why
 * it arrived. */
static char *dead_letter_record(struct run_state *rs, const struct attempt *a)
{
    char when[32];
    clock_iso8601(clock_wall_ms(), when);
    cJSON *r = cJSON_CreateObject();
    cJSON *rc = cJSON_AddObjectToObject(r, "requestContext");
    cJSON *resp = cJSON_AddObjectToObject(r, "responseContext");
    cJSON *payload = cJSON_CreateObject();
    cJSON *sl = cJSON_AddObjectToObject(r, "sluice");
    cJSON_AddStringToObject(r, "version", "1.0");
    cJSON_AddStringToObject(r, "timestamp", when);
    cJSON_AddStringToObject(rc, "requestId", rs->request_id);
    cJSON_AddStringToObject(rc, "functionArn", a->step->handler);
    cJSON_AddStringToObject(rc, "condition", "RetriesExhausted");
    cJSON_AddNumberToObject(rc, "approximateInvokeCount", a->number);
    cJSON_AddItemToObject(r, "requestPayload", parse_or_string(rs->in->payload));
    cJSON_AddNumberToObject(resp, "statusCode", a->status_code ? a->status_code : 500);
    cJSON_AddStringToObject(resp, "functionError", "Unhandled");
    cJSON_AddStringToObject(payload, "errorType", a->error_type ? a->error_type : "Error");
    cJSON_AddStringToObject(payload, "errorMessage", a->error ? a->error : "");
    cJSON_AddItemToObject(r, "responsePayload", payload);
    cJSON_AddStringToObject(sl, "pipeline", rs->p->name);
    cJSON_AddStringToObject(sl, "step", a->step->name);
    cJSON_AddStringToObject(sl, "status", invlog_status_name(a->status));
    cJSON_AddStringToObject(sl, "eventId", rs->in->event_id);
    cJSON_AddStringToObject(sl, "source", rs->in->source);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    return text;
}

static void dead_letter(struct run_state *rs, const struct attempt *a)
{
    if (!rs->p->dead_letter_dir)
        return;
    char *text = dead_letter_record(rs, a);
    char name[64];
    snprintf(name, sizeof name, "%s.json", rs->request_id);
    struct err e;
    if (!text || path_mkdirs(rs->p->dead_letter_dir, 0750, &e) < 0 ||
        path_write_atomic(rs->p->dead_letter_dir, name, text, strlen(text), &e) < 0)
        log_msg(LOG_ERROR, "pipeline %s: dead event %s stays only in the journal: %s",
                rs->p->name, rs->in->event_id, text ? e.msg : "out of memory");
    free(text);
}

static void finish(struct run_state *rs, const char *state, const char *error)
{
    struct err e;
    if (journal_finish(rs->env->writer, rs->in->journal_id, state, rs->attempts, error, &e) < 0)
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

enum run_outcome runner_run(const struct run_env *env, const struct pipeline *p,
                            const struct run_input *in, char **response, char request_id[37])
{
    struct run_state rs = {.env = env, .p = p, .in = in};
    if (uuid_v7(rs.request_id) < 0)
        snprintf(rs.request_id, sizeof rs.request_id, "00000000-0000-7000-8000-000000000000");
    char *event = strdup(in->payload);
    size_t len = event ? strlen(event) : 0;
    struct attempt a = {0};
    bool interrupted = false;
    enum run_outcome out = RUN_DONE;
    for (size_t i = 0; event && i < p->n_steps; i++) {
        if (!run_step(&rs, &p->steps[i], event, len, &a, &interrupted)) {
            out = interrupted ? RUN_INTERRUPTED : RUN_DEAD;
            break;
        }
        free(event);
        event = a.body; /* this step's response is the next step's event */
        len = a.body_len;
        a.body = NULL;
    }
    if (!event && out == RUN_DONE) {
        log_msg(LOG_ERROR, "pipeline %s: out of memory running event %s", p->name, in->event_id);
        out = RUN_INTERRUPTED;
    }
    if (out == RUN_DEAD) {
        dead_letter(&rs, &a);
        finish(&rs, "dead", a.error);
    } else if (out == RUN_DONE) {
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
