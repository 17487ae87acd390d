/* v2.c - fixture: an ABI 2 plugin using what ABI 2 adds: declared config keys
 * (one required, one with a default), a per-step instance made by create
 * from that config and released by destroy, the read-only context's new
 * fields, logf/failf and the response writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/handler.h>

static int creates, destroys; /* in this process */

struct inst {
    char greeting[64];
    double limit;
    int serial;                 /* which create made it */
    int calls;
};

static int v2_create(const sl_host *h, const sl_json *config, void **instance, char *err,
                     size_t errlen)
{
    const char *greeting = h->json_string(h->json_get(config, "/greeting"));
    if (greeting && strcmp(greeting, "refuse") == 0) {
        snprintf(err, errlen, "greeting \"refuse\" refused");
        return -1;
    }
    struct inst *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(in->greeting, sizeof in->greeting, "%s", greeting ? greeting : "?");
    in->limit = h->json_number(h->json_get(config, "/limit"), -1);
    in->serial = ++creates;
    *instance = in;
    return 0;
}

static void v2_destroy(void *instance)
{
    destroys++;
    free(instance);
}

/* Answers the context and the instance, written with the writer. */
static int v2_info(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const sl_host *h = ctx->host;
    struct inst *in = ctx->instance;
    in->calls++;
    h->logf(ctx, SL_LOG_INFO, "v2.info call %d of instance %d", in->calls, in->serial);
    sl_writer *w = h->writer_begin(res);
    h->write_object(w);
    h->write_key(w, "greeting", 8);
    h->write_string(w, in->greeting, strlen(in->greeting));
    h->write_key(w, "limit", 5);
    h->write_number(w, in->limit);
    h->write_key(w, "serial", 6);
    h->write_int(w, in->serial);
    h->write_key(w, "calls", 5);
    h->write_int(w, in->calls);
    h->write_key(w, "creates", 7);
    h->write_int(w, creates);
    h->write_key(w, "destroys", 8);
    h->write_int(w, destroys);
    const struct { const char *key; const char *value; } strs[] = {
        {"request_id", ctx->request_id}, {"event_id", ctx->event_id},
        {"source", ctx->source}, {"function", ctx->function_name},
        {"pipeline", ctx->pipeline}, {"step", ctx->step},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        h->write_key(w, strs[i].key, strlen(strs[i].key));
        if (strs[i].value)
            h->write_string(w, strs[i].value, strlen(strs[i].value));
        else
            h->write_null(w);
    }
    h->write_key(w, "attempt", 7);
    h->write_int(w, ctx->attempt);
    h->write_key(w, "deadline_ms", 11);
    h->write_int(w, ctx->deadline_ms);
    h->write_key(w, "remaining_ms", 12);
    h->write_int(w, h->remaining_ms(ctx));
    h->write_key(w, "memory_limit_mb", 15);
    h->write_int(w, (int64_t)ctx->memory_limit_mb);
    h->write_key(w, "config", 6);
    h->write_json(w, h->config(ctx));
    h->write_close(w);
    return h->writer_end(w, 200);
}

/* Fails on its first attempt (of a run), succeeds after: the event id stays. */
static int v2_flaky(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    if (ctx->attempt < 2) {
        ctx->host->failf(res, "Flaky", "attempt %u of event %s fails", ctx->attempt,
                         ctx->event_id);
        return 1;
    }
    return v2_info(event, ctx, res);
}

static const sl_handler_def handlers[] = {
    {"info", v2_info},
    {"flaky", v2_flaky},
    {NULL, NULL},
};

static const sl_config_key keys[] = {
    {"greeting", SL_CONFIG_STRING, 1, NULL, "what to greet with"},
    {"limit", SL_CONFIG_NUMBER, 0, "2.5", "a number with a default"},
    {"extra", SL_CONFIG_ANY, 0, NULL, "anything at all"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "v2",
    .version = "test",
    .handlers = handlers,
    .destroy = v2_destroy,
    .create = v2_create,
    .config_keys = keys,
};
