/* wordcount.c - a sluice handler plugin that counts the lines, words and
 * bytes of the file that triggered the pipeline, as wc(1) does.
 *
 * Reads Records[0].s3.object.path from the directory event, refuses files
 * larger than the step's "max_bytes" (config), logs one line and answers
 *   {"key": K, "path": P, "lines": L, "words": W, "bytes": B}
 *
 * Build:
 *   cc -std=c11 -O2 -Wall -Wextra -shared -fPIC -fvisibility=hidden \
 *      -I /path/to/sluice/include -o wordcount.so wordcount.c
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/handler.h>

/* Set once by init, then only read: safe to share between threads. */
struct wordcount_state {
    double default_max_bytes;
};

/* Lambda's init phase: runs once, before the first invocation. */
static int wordcount_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    if (host->abi_version < 1) {
        snprintf(err, errlen, "needs a host with handler ABI 1 or later");
        return -1;
    }
    struct wordcount_state *s = malloc(sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->default_max_bytes = 10 * 1024 * 1024; /* 10 MiB unless the step says otherwise */
    *state = s;
    return 0;
}

static void wordcount_destroy(void *state)
{
    free(state);
}

/* Record the error and fail the step. */
static int fail(sl_context *ctx, sl_response *res, const char *type, const char *message)
{
    ctx->host->log(ctx, SL_LOG_ERROR, message);
    ctx->host->fail(res, type, message);
    return 1;
}

static int count_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct wordcount_state *state = ctx->plugin_state;
    char msg[4400];
    (void)event; /* the parsed view below is easier than the raw text */

    /* Both views belong to the host; never free them. */
    const sl_json *object = h->json_get(h->event(ctx), "/Records/0/s3/object");
    const char *path = h->json_string(h->json_get(object, "/path"));
    if (!path)
        return fail(ctx, res, "InvalidEvent", "expected a directory event with "
                    "Records[0].s3.object.path");
    double max_bytes = h->json_number(h->json_get(h->config(ctx), "/max_bytes"),
                                      state->default_max_bytes);

    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
        return fail(ctx, res, "FileError", msg);
    }
    long long lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        bytes += (long long)n;
        if (bytes > max_bytes) {
            fclose(f);
            snprintf(msg, sizeof msg, "%s is larger than max_bytes (%.0f)", path, max_bytes);
            return fail(ctx, res, "FileTooLarge", msg);
        }
        if (h->remaining_ms(ctx) == 0) {
            fclose(f);
            return fail(ctx, res, "Timeout", "out of time before the end of the file");
        }
        for (size_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                lines++;
            if (isspace(buf[i]))
                in_word = 0;
            else if (!in_word) {
                in_word = 1;
                words++;
            }
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(msg, sizeof msg, "cannot read %s", path);
        return fail(ctx, res, "FileError", msg);
    }

    snprintf(msg, sizeof msg, "%s: %lld lines, %lld words, %lld bytes", path, lines, words,
             bytes);
    h->log(ctx, SL_LOG_INFO, msg);

    /* Built values belong to us until json_set hands them to their parent. */
    sl_json *out = h->json_new_object();
    h->json_set(out, "key", h->json_copy(h->json_get(object, "/key")));
    h->json_set(out, "path", h->json_new_string(path));
    h->json_set(out, "lines", h->json_new_number((double)lines));
    h->json_set(out, "words", h->json_new_number((double)words));
    h->json_set(out, "bytes", h->json_new_number((double)bytes));
    int rc = h->respond_json(res, 200, out); /* copies out */
    h->json_free(out);
    return rc == 0 ? 0 : fail(ctx, res, "ResponseError", "could not set the response");
}

static const sl_handler_def handlers[] = {
    {"count", count_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "wordcount",
    .version = "1.0",
    .handlers = handlers,
    .init = wordcount_init,
    .destroy = wordcount_destroy,
};
