/* ok.c - fixture: an ABI 1 plugin, built from the frozen ABI 1 header
 * (tests/abi/v1/sluice/handler.h, never edited), that every later host must
 * load and run: several handlers, an init that counts its calls, a logger user. */
#include <stdio.h>
#include <string.h>

#include <sluice/handler.h>

static int init_calls;

static int ok_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    (void)err;
    (void)errlen;
    init_calls++;
    *state = &init_calls;
    return 0;
}

/* Answers {"init_calls": N, "remaining_ms": R, "request_id": ID, "config": C}. */
static int ok_info(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"init_calls\":%d,\"remaining_ms\":%lld,\"request_id\":\"%s\",\"config\":%s,"
             "\"pipeline\":\"%s\",\"step\":\"%s\",\"function\":\"%s\"}",
             *(int *)ctx->plugin_state, (long long)ctx->host->remaining_ms(ctx), ctx->request_id,
             ctx->config_json, ctx->pipeline, ctx->step, ctx->function_name);
    ctx->host->log(ctx, SL_LOG_INFO, "ok.info ran");
    return ctx->host->respond(res, 200, body, strlen(body));
}

/* Returns 0 without responding: body null. */
static int ok_silent(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    return 0;
}

static const sl_handler_def handlers[] = {
    {"info", ok_info},
    {"silent", ok_silent},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "ok",
    .version = "test",
    .handlers = handlers,
    .init = ok_init,
};
