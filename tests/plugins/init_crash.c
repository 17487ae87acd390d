/* init_crash.c - fixture: init segfaults, every time (a worker that can
 * never start; sluice must back off, not respawn in a hot loop). */
#include <signal.h>

#include <sluice/handler.h>

static int init_crash_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    (void)state;
    (void)err;
    (void)errlen;
    raise(SIGSEGV);
    return 0;
}

static int init_crash_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    return ctx->host->respond(res, 200, event->json, event->len);
}

static const sl_handler_def handlers[] = {{"handler", init_crash_handler}, {0, 0}};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "init_crash",
    .handlers = handlers,
    .init = init_crash_init,
};
