/* newer.c - fixture: what a plugin built against a future header (ABI 3,
 * say) looks like to this host: its descriptor is larger than this host's
 * sl_plugin (fields this host does not know follow), and it declares
 * abi_version 2 because ABI 2's semantics are all it relies on. It checks
 * host->size before using a service this host may not have. The host must
 * load it and ignore the tail. */
#include <string.h>

#include <sluice/handler.h>

/* The future descriptor: today's fields, then one more. */
struct future_plugin {
    sl_plugin base;
    void (*future_hook)(void);
};

/* Stands in for a future service at the end of a newer sl_host. */
#define FUTURE_SERVICE_END (sizeof(sl_host) + sizeof(void (*)(void)))

static int newer_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const sl_host *h = ctx->host;
    int has_logf = SL_HOST_HAS(h, logf);
    int has_future = h->size >= FUTURE_SERVICE_END;
    const char *body = has_future ? "{\"future\":true}"
                       : has_logf ? "{\"future\":false,\"logf\":true}"
                                  : "{\"future\":false,\"logf\":false}";
    return h->respond(res, 200, body, strlen(body));
}

static void future_hook(void) {}

static const sl_handler_def handlers[] = {{"handler", newer_handler}, {NULL, NULL}};

SL_PLUGIN_EXPORT const struct future_plugin sluice_plugin = {
    .base = {
        .abi_version = 2,
        .size = sizeof(struct future_plugin),
        .name = "newer",
        .handlers = handlers,
    },
    .future_hook = future_hook,
};
