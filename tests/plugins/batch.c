/* batch.c - fixture: a batch handler that reports as failed every record
 * whose body has "fail": true (until attempt "heal_at", if the body sets it). */
#include <stdio.h>
#include <string.h>

#include <sluice/handler.h>

static int batch_partial(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const sl_host *h = ctx->host;
    const sl_json *records = h->json_get(h->event(ctx), "/Records");
    if (h->json_type(records) != SL_JSON_ARRAY) {
        h->fail(res, "NotABatch", "expected {\"Records\": [...]}");
        return 1;
    }
    sl_json *out = h->json_new_object();
    sl_json *failures = h->json_new_array();
    h->json_set(out, "batchItemFailures", failures);
    h->json_set(out, "size", h->json_new_number((double)h->json_size(records)));
    for (size_t i = 0; i < h->json_size(records); i++) {
        const sl_json *r = h->json_at(records, i);
        const char *text = h->json_string(h->json_get(r, "/body")); /* SQS: the body is text */
        sl_json *body = text ? h->json_parse(text, strlen(text)) : NULL;
        double heal_at = h->json_number(h->json_get(body, "/heal_at"), 1e9);
        if (h->json_type(h->json_get(body, "/fail")) == SL_JSON_TRUE && ctx->attempt < heal_at) {
            sl_json *f = h->json_new_object();
            h->json_set(f, "itemIdentifier", h->json_copy(h->json_get(r, "/messageId")));
            h->json_append(failures, f);
        }
        h->json_free(body);
    }
    int rc = h->respond_json(res, 200, out);
    h->json_free(out);
    return rc;
}

static const sl_handler_def handlers[] = {{"partial", batch_partial}, {NULL, NULL}};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "batch",
    .handlers = handlers,
};
