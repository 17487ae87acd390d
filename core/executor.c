/* executor.c - the in-process executor (see executor.h). timeout_ms cannot
 * be enforced on a thread, so an attempt that overran is recorded as a
 * timeout after it returns; process isolation kills it instead. Workers
 * run this file too: nothing here reaches the daemon's database or
 * sockets. */
#include "executor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "host.h"
#include "loader.h"
#include "pipeline.h"

static void set_error(struct attempt *a, enum inv_status status, const char *type,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct attempt *a, enum inv_status status, const char *type,
                      const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->status = status;
    free(a->error_type);
    free(a->error);
    a->error_type = strdup(type);
    a->error = strdup(buf);
}

static void take_response(struct attempt *a, int rc, struct sl_response *res)
{
    a->status_code = res->status_code;
    a->body = res->body ? res->body : strdup("null");
    a->body_len = res->body ? res->body_len : 4;
    res->body = NULL;
    const char *type = res->error_type ? res->error_type : "HandlerError";
    /* a handler that reports its own deadline passing (exec killing its
     * child, say) timed out, whatever else went wrong */
    enum inv_status failed = strcmp(type, "Sandbox.Timedout") == 0 ? INV_TIMEOUT : INV_ERROR;
    if (rc != 0 && res->error_message)
        set_error(a, failed, type, "%s", res->error_message);
    else if (rc != 0)
        set_error(a, INV_ERROR, type, "the handler returned %d", rc);
    /* a statusCode of 500 and above is judged by the runner (run_attempt) */
}

/* The deadline on the wall clock, for the context. */
static int64_t wall_deadline_ms(int64_t deadline_ns)
{
    return clock_wall_ms() + (deadline_ns - clock_mono_ns()) / 1000000;
}

void executor_call(struct attempt *a, int64_t deadline_ns,
                   void (*log)(void *arg, const sl_context *ctx, int level, const char *msg),
                   void *log_arg)
{
    const struct step *s = a->step;
    const struct pipeline *p = a->pipeline;
    struct plugin_instance *inst = s->instance;
    struct err e;
    a->started_ms = clock_wall_ms();
    int64_t t0 = clock_mono_ns();
    a->status = INV_OK;
    a->init_ms = -1;
    if (instance_ensure(inst, &a->init_ms, &e) < 0) {
        a->duration_ms = (double)(clock_mono_ns() - t0) / 1e6;
        set_error(a, INV_ERROR, "Runtime.InitError", "%s", e.msg);
        return;
    }
    int64_t start = clock_mono_ns();
    sl_event event = {.json = a->event, .len = a->event_len};
    struct host_call call = {
        .ctx = {
            .attempt = (uint32_t)a->number,
            .request_id = a->request_id,
            .event_id = a->event_id ? a->event_id : "",
            .source = a->source ? a->source : "",
            .folder = p->trigger == TRIGGER_DIRECTORY ? p->dir : NULL,
            .function_name = s->handler,
            .pipeline = p->name,
            .step = s->name,
            .deadline_ms = wall_deadline_ms(deadline_ns),
            /* limits bind worker processes only */
            .memory_limit_mb = p->isolation == ISOLATION_PROCESS && p->limits.memory_mb > 0
                                   ? (uint64_t)p->limits.memory_mb : 0,
        },
        .deadline_ns = deadline_ns,
        .event = &event,
        .config_json = inst->config,
        .config_len = strlen(inst->config),
        .log = log,
        .log_arg = log_arg,
    };
    host_call_contexts(&call, instance_object(inst));
    /* an ABI 1 handler gets ABI 1's context; the function types differ
     * only in the constness of the context */
    const void *ctx = inst->plugin->abi == 1 ? (const void *)&call.v1 : (const void *)&call.ctx;
    struct sl_response res;
    response_init(&res);
    int rc = ((sl_handler_fn)s->fn)(&event, ctx, &res);
    int64_t end = clock_mono_ns();
    a->duration_ms = (double)(end - start) / 1e6;
    take_response(a, rc, &res);
    if (end > call.deadline_ns && a->status == INV_OK) {
        set_error(a, INV_TIMEOUT, "Sandbox.Timedout", "the handler ran past its timeout_ms of %d "
                  "(%.0f ms)", s->timeout_ms, a->duration_ms);
    }
    response_release(&res);
    host_call_release(&call);
}

void attempt_release(struct attempt *a)
{
    free(a->body);
    free(a->error_type);
    free(a->error);
    free(a->stack);
    a->body = a->error_type = a->error = a->stack = NULL;
}
