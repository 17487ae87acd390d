/* bad_init.c - fixture: init fails, so every invocation must fail cleanly. */
#include <stdio.h>

#include <sluice/handler.h>

static int bad_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    (void)state;
    snprintf(err, errlen, "cannot reach the license server");
    return -1;
}

static int bad_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    return 0;
}

static const sl_handler_def handlers[] = {{"handler", bad_handler}, {0, 0}};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "bad_init",
    .handlers = handlers,
    .init = bad_init,
};
