/* checksum.c - SHA-256 and size of the file that triggered the pipeline.
 *
 * Reads the S3-shaped directory event (Records[*].s3.object.path), hashes
 * each file with libsodium, and answers
 *   {"files": [{"key": K, "path": P, "size": N, "sha256": HEX}]}
 * A file that vanished or cannot be read fails the step with a clear error.
 * Only files inside the pipeline's trigger folder or a folder of
 * config.allow are read (files_fs.c, as the files plugin confines itself):
 * an event may name any path, and this must not become a way to read
 * /etc/shadow's size and hash.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/handler.h>

#include "../files/files_fs.h"

struct checksum_instance {
    struct fs_folders allow;    /* besides the trigger folder */
};

static void checksum_destroy(void *instance)
{
    struct checksum_instance *in = instance;
    if (in)
        fs_folders_free(&in->allow);
    free(in);
}

static int checksum_create(const sl_host *h, const sl_json *config, void **instance, char *err,
                           size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    struct checksum_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (fs_folders_from_config(h, h->json_get(config, "/allow"), &in->allow, err, errlen) < 0) {
        checksum_destroy(in);
        return -1;
    }
    *instance = in;
    return 0;
}

/* Hash fd (closed here) into hex; returns bytes read or -1 with errno set. */
static long long hash_fd(int fd, char hex[65])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        crypto_hash_sha256_update(&st, buf, (size_t)n);
        total += n;
    }
    close(fd);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    return total;
}

static int checksum_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct checksum_instance *in = ctx->instance;
    (void)event;
    const sl_json *records = h->json_get(h->event(ctx), "/Records");
    if (h->json_type(records) != SL_JSON_ARRAY)
        return h->failf(res, "InvalidEvent",
                        "expected a directory event with Records[].s3.object.path");
    sl_writer *w = h->writer_begin(res);
    h->write_object(w);
    h->write_key(w, "files", 5);
    h->write_array(w);
    for (size_t i = 0; i < h->json_size(records); i++) {
        const sl_json *obj = h->json_get(h->json_at(records, i), "/s3/object");
        const char *path = h->json_string(h->json_get(obj, "/path"));
        if (!path) {
            h->writer_end(w, 200); /* frees it; the failure below wins */
            return h->failf(res, "InvalidEvent", "a record has no s3.object.path");
        }
        struct fs_error fe;
        char hex[65];
        int fd = fs_read_open(ctx->folder, &in->allow, path, &fe);
        long long size = fd < 0 ? -1 : hash_fd(fd, hex);
        if (size < 0) {
            h->writer_end(w, 200);
            if (fd < 0)
                return h->failf(res, fe.type, "%s", fe.msg);
            return h->failf(res, "FileError", "cannot read %s: %s", path, strerror(errno));
        }
        h->write_object(w);
        h->write_key(w, "key", 3);
        h->write_json(w, h->json_get(obj, "/key"));
        h->write_key(w, "path", 4);
        h->write_string(w, path, strlen(path));
        h->write_key(w, "size", 4);
        h->write_int(w, size);
        h->write_key(w, "sha256", 6);
        h->write_string(w, hex, 64);
        h->write_close(w);
        h->logf(ctx, SL_LOG_INFO, "%s: %lld bytes, sha256 %s", path, size, hex);
    }
    h->write_close(w);
    h->write_close(w);
    if (h->writer_end(w, 200) < 0)
        return h->failf(res, "OutOfMemory", "out of memory building the response");
    return 0;
}

static const sl_handler_def handlers[] = {
    {"handler", checksum_handler},
    {NULL, NULL},
};

static const sl_config_key config_keys[] = {
    {"allow", SL_CONFIG_STRINGS, 0, NULL, "folders besides the trigger folder whose files may "
     "be hashed (events from other triggers name files there)"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "checksum",
    .version = "2.0",
    .handlers = handlers,
    .destroy = checksum_destroy,
    .create = checksum_create,
    .config_keys = config_keys,
};
