/* bad_init.c - fixture: create fails, so every invocation must fail cleanly. */
#include <stdio.h>

#include <sluice/handler.h>

static int bad_init(const sl_host *host, const sl_json *config, void **instance, char *err,
                    size_t errlen)
{
    (void)host;
    (void)config;
    (void)instance;
    snprintf(err, errlen, "cannot reach the license server");
    return -1;
}

static int bad_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
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
    .create = bad_init,
};
