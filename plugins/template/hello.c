/* hello.c - a plugin template: copy this folder, rename, build it against
 * the installed sluice (CMakeLists.txt here, or
 * `cc -shared -fPIC $(pkg-config --cflags sluice) -o hello.so hello.c`).
 * The handler answers {"hello": NAME} for an event {"name": NAME}, reading
 * the event through the host's JSON view (ABI 2, docs/handlers.md). */
#include <stdio.h>

#include <sluice/handler.h>

static int hello_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event; /* its parsed view comes from the host */
    const sl_host *host = ctx->host;
    const char *name = host->json_string(host->json_get(host->event(ctx), "/name"));
    char body[192];
    int n = snprintf(body, sizeof body, "{\"hello\":\"%.150s\"}", name ? name : "world");
    return host->respond(res, 200, body, (size_t)n);
}

static const sl_handler_def handlers[] = {
    {"handler", hello_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "hello",
    .version = "1.0",
    .handlers = handlers,
};
