/* echo.c - the smallest useful plugin: answers with the event it was given.
 * Handy as a first step while building a pipeline, and as a template. */
#include <sluice/handler.h>

static int echo_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    return ctx->host->respond(res, 200, event->json, event->len);
}

static const sl_handler_def handlers[] = {
    {"handler", echo_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "echo",
    .version = "1.0",
    .handlers = handlers,
};
