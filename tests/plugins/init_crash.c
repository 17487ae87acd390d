/* init_crash.c - fixture: create segfaults, every time (a worker that can
 * never start; sluice must back off, not respawn in a hot loop). */
#include <signal.h>

#include <sluice/handler.h>

static int init_crash_init(const sl_host *host, const sl_json *config, void **instance, char *err,
                           size_t errlen)
{
    (void)host;
    (void)config;
    (void)instance;
    (void)err;
    (void)errlen;
    raise(SIGSEGV);
    return 0;
}

static int init_crash_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    return ctx->host->respond(res, 200, event->json, event->len);
}

static const sl_handler_def handlers[] = {{"handler", init_crash_handler}, {0, 0}};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "init_crash",
    .handlers = handlers,
    .create = init_crash_init,
};
