/* bench.c - handlers for the benchmarks (built by bench/run.sh, not part of
 * sluice):
 *   bench.stamp  logs "t=<CLOCK_REALTIME ns> key=<S3 object key>" through the
 *                context logger (so the handler's start time lands in the
 *                database's logs table at ns precision), then echoes the event
 *   bench.hello  answers {"statusCode":200,"body":"Hello, World!"} (HTTP no-op)
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sluice/handler.h>

static int stamp(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const sl_host *h = ctx->host;
    const sl_json *key = h->json_get(h->event(ctx), "/Records/0/s3/object/key");
    const char *k = key ? h->json_string(key) : NULL;
    char line[512];
    snprintf(line, sizeof line, "t=%lld key=%s",
             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, k ? k : "-");
    h->log(ctx, SL_LOG_INFO, line);
    return h->respond(res, 200, event->json, event->len);
}

static int hello(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    static const char body[] =
        "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/plain\"},"
        "\"body\":\"Hello, World!\"}";
    return ctx->host->respond(res, 200, body, sizeof body - 1);
}

static const sl_handler_def handlers[] = {
    {"stamp", stamp},
    {"hello", hello},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "bench",
    .version = "bench",
    .handlers = handlers,
};
