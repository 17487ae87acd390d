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

/* One step's instance: made by create from the step's config, then only
 * read, so it is safe to share between threads. */
struct wordcount {
    double max_bytes;
};

/* Lambda's init phase: once per step per worker, before its first event.
 * The host has checked the config against config_keys and filled in the
 * defaults, so max_bytes is there and is a number. */
static int wordcount_create(const sl_host *h, const sl_json *config, void **instance,
                            char *err, size_t errlen)
{
    struct wordcount *wc = malloc(sizeof *wc);
    if (!wc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    wc->max_bytes = h->json_number(h->json_get(config, "/max_bytes"), 0);
    if (wc->max_bytes < 1) {
        snprintf(err, errlen, "config.max_bytes must be at least 1");
        free(wc);
        return -1;
    }
    *instance = wc;
    return 0;
}

static void wordcount_destroy(void *instance)
{
    free(instance);
}

static int count_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct wordcount *wc = ctx->instance;
    (void)event; /* the parsed view below is easier than the raw text */

    /* The view belongs to the host; never free it. */
    const sl_json *object = h->json_get(h->event(ctx), "/Records/0/s3/object");
    const char *path = h->json_string(h->json_get(object, "/path"));
    if (!path)
        return h->failf(res, "InvalidEvent", "expected a directory event with "
                        "Records[0].s3.object.path");

    FILE *f = fopen(path, "rb");
    if (!f)
        return h->failf(res, "FileError", "cannot open %s: %s", path, strerror(errno));
    long long lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        bytes += (long long)n;
        if (bytes > wc->max_bytes) {
            fclose(f);
            h->logf(ctx, SL_LOG_ERROR, "%s is larger than max_bytes (%.0f)", path, wc->max_bytes);
            return h->failf(res, "FileTooLarge", "%s is larger than max_bytes (%.0f)", path,
                            wc->max_bytes);
        }
        if (h->remaining_ms(ctx) == 0) {
            fclose(f);
            return h->failf(res, "Timeout", "out of time before the end of the file");
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
    if (failed)
        return h->failf(res, "FileError", "cannot read %s", path);

    h->logf(ctx, SL_LOG_INFO, "%s: %lld lines, %lld words, %lld bytes", path, lines, words,
            bytes);

    /* The writer puts the body straight into the response: no tree to build
     * and free. Checking writer_end alone is enough: a failure sticks. */
    sl_writer *w = h->writer_begin(res);
    h->write_object(w);
    h->write_key(w, "key", 3);
    h->write_json(w, h->json_get(object, "/key"));
    h->write_key(w, "path", 4);
    h->write_string(w, path, strlen(path));
    h->write_key(w, "lines", 5);
    h->write_int(w, lines);
    h->write_key(w, "words", 5);
    h->write_int(w, words);
    h->write_key(w, "bytes", 5);
    h->write_int(w, bytes);
    h->write_close(w);
    if (h->writer_end(w, 200) < 0)
        return h->failf(res, "ResponseError", "could not set the response");
    return 0;
}

static const sl_handler_def handlers[] = {
    {"count", count_handler},
    {NULL, NULL},
};

/* What `sluice check` checks each step's config against. */
static const sl_config_key config_keys[] = {
    {"max_bytes", SL_CONFIG_NUMBER, 0, "10485760", "the largest file counted (default 10 MiB)"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "wordcount",
    .version = "2.0",
    .handlers = handlers,
    .destroy = wordcount_destroy,
    .create = wordcount_create,
    .config_keys = config_keys,
};
