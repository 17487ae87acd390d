/* checksum.c - SHA-256 and size of the file that triggered the pipeline.
 *
 * Reads the S3-shaped directory event (Records[*].s3.object.path), hashes
 * each file with libsodium, and answers
 *   {"files": [{"key": K, "path": P, "size": N, "sha256": HEX}]}
 * A file that vanished or cannot be read fails the step with a clear error.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include <sluice/handler.h>

static int checksum_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    (void)state;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    return 0;
}

/* Hash path into hex; returns bytes read or -1 with errno set. */
static long long hash_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    long long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
        total += (long long)n;
    }
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) {
        errno = saved ? saved : EIO;
        return -1;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    return total;
}

static int fail(const sl_host *h, sl_response *res, sl_json *out, const char *type,
                const char *msg)
{
    h->json_free(out);
    h->fail(res, type, msg);
    return 1;
}

static int checksum_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    (void)event;
    const sl_json *records = h->json_get(h->event(ctx), "/Records");
    sl_json *out = h->json_new_object();
    sl_json *files = h->json_new_array();
    h->json_set(out, "files", files);
    if (h->json_type(records) != SL_JSON_ARRAY)
        return fail(h, res, out, "InvalidEvent",
                    "expected a directory event with Records[].s3.object.path");
    for (size_t i = 0; i < h->json_size(records); i++) {
        const sl_json *obj = h->json_get(h->json_at(records, i), "/s3/object");
        const char *path = h->json_string(h->json_get(obj, "/path"));
        if (!path)
            return fail(h, res, out, "InvalidEvent", "a record has no s3.object.path");
        char hex[65], msg[4200];
        long long size = hash_file(path, hex);
        if (size < 0) {
            snprintf(msg, sizeof msg, "cannot read %s: %s", path, strerror(errno));
            return fail(h, res, out, "FileError", msg);
        }
        sl_json *f = h->json_new_object();
        h->json_set(f, "key", h->json_copy(h->json_get(obj, "/key")));
        h->json_set(f, "path", h->json_new_string(path));
        h->json_set(f, "size", h->json_new_number((double)size));
        h->json_set(f, "sha256", h->json_new_string(hex));
        h->json_append(files, f);
        snprintf(msg, sizeof msg, "%s: %lld bytes, sha256 %s", path, size, hex);
        h->log(ctx, SL_LOG_INFO, msg);
    }
    int rc = h->respond_json(res, 200, out);
    h->json_free(out);
    return rc;
}

static const sl_handler_def handlers[] = {
    {"handler", checksum_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "checksum",
    .version = "1.0",
    .handlers = handlers,
    .init = checksum_init,
};
