/* nap.c - fixture: an ABI 2 handler that sleeps the event's "nap_ms" (if
 * any), then logs "ran I remaining R" (I the event's "i", R the time left
 * before its deadline) and answers I. Pipelining tests read the log lines. */
#include <time.h>

#include <sluice/handler.h>

static int nap_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const sl_host *h = ctx->host;
    const sl_json *ev = h->event(ctx);
    double ms = h->json_number(h->json_get(ev, "/nap_ms"), 0);
    if (ms > 0) {
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                              .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    long long i = (long long)h->json_number(h->json_get(ev, "/i"), -2);
    h->logf(ctx, SL_LOG_INFO, "ran %lld remaining %lld pid 0", i, (long long)h->remaining_ms(ctx));
    sl_writer *w = h->writer_begin(res);
    h->write_int(w, i);
    return h->writer_end(w, 200);
}

static const sl_handler_def handlers[] = {
    {"handler", nap_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "nap",
    .version = "test",
    .handlers = handlers,
};
