/* fail.c - fixture: handlers that fail in each way a step can fail. */
#include <string.h>
#include <time.h>

#include <sluice/handler.h>

static int fail_error(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    ctx->host->fail(res, "TestError", "failing on purpose");
    return 1;
}

static int fail_status500(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    return ctx->host->respond(res, 503, "{\"busy\":true}", 13);
}

/* Responds with text that is not JSON: respond refuses it and the handler
 * passes that refusal on. */
static int fail_garbage(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    if (ctx->host->respond(res, 200, "not json{", 9) < 0) {
        ctx->host->fail(res, "InvalidResponse", "host refused a body that is not JSON");
        return 1;
    }
    return 0;
}

/* Sleeps past a short timeout_ms (thread isolation records a timeout). */
static int fail_slow(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)res;
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    (void)ctx;
    return 0;
}

/* Fails on the first attempt, succeeds after (uses the attempt number). */
static int fail_flaky(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    if (ctx->attempt < 2) {
        ctx->host->fail(res, "Flaky", "first attempt fails");
        return 1;
    }
    return ctx->host->respond(res, 200, event->json, event->len);
}

static const sl_handler_def handlers[] = {
    {"error", fail_error},
    {"status500", fail_status500},
    {"garbage", fail_garbage},
    {"slow", fail_slow},
    {"flaky", fail_flaky},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "fail",
    .handlers = handlers,
};
