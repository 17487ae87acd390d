/* wrong_abi.c - fixture: a plugin that claims a future ABI version. */
#include <sluice/handler.h>

static int wrong_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    return 0;
}

static const sl_handler_def handlers[] = {{"handler", wrong_handler}, {0, 0}};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION + 1,
    .size = sizeof(sl_plugin),
    .name = "wrong_abi",
    .handlers = handlers,
};
