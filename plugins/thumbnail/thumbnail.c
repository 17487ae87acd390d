/* thumbnail.c - the thumbnail plugin: an image that triggered the pipeline
 * becomes a small copy of itself in an output folder, the textbook Lambda
 * example.
 *
 * Design: libvips' thumbnail operation does the work (shrink-on-load,
 * streaming, a few MB of memory whatever the input size). The source file is
 * opened once, its first bytes are sniffed, and only JPEG, PNG and WebP go
 * further; libvips then reads from that descriptor (never from the file name,
 * which libvips would parse for "[options]"). The thumbnail is encoded into
 * memory, written to a hidden temporary file in the output folder, synced,
 * and renamed over the final name, so a reader never sees a partial file and
 * a failure leaves nothing behind. libvips is initialised in init, once per
 * process, and shut down as the process exits (see thumb_destroy).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vips/vips.h>

#include <sluice/handler.h>

#include "thumb_util.h"

#define MSG_MAX (2 * PATH_MAX + 512)

enum thumb_format { FMT_SAME, FMT_JPEG, FMT_PNG, FMT_WEBP };

static const char *const format_names[] = {"same", "jpeg", "png", "webp"};
static const char *const format_exts[] = {"", ".jpg", ".png", ".webp"};

struct thumb_config {
    const char *output;         /* folder, relative to the working folder or absolute */
    int width, height;          /* the box the thumbnail fits in */
    enum thumb_format format;
    int quality;                /* 1..100, JPEG and WebP */
    int upscale;                /* enlarge images smaller than the box */
    VipsInteresting crop;       /* VIPS_INTERESTING_NONE: fit, else fill and crop */
    double max_megapixels;      /* larger inputs are refused */
};

static const char *const known_keys[] = {"output", "size", "format", "quality", "upscale",
                                         "crop", "max_megapixels", NULL};

/* One failure: an error type and a message, filled by whoever fails. */
struct failure {
    const char *type;
    char msg[MSG_MAX];
};

static int failf(struct failure *f, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct failure *f, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->type = type;
    return -1;
}

/* libvips' error text for the last failure on this thread, cleared, with
 * trailing newlines joined into "; ". */
static void vips_message(char *out, size_t len)
{
    char *text = vips_error_buffer_copy();
    size_t n = text ? strlen(text) : 0;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    size_t o = 0;
    for (size_t i = 0; text && text[i] && o + 3 < len; i++) {
        if (text[i] == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else {
            out[o++] = text[i];
        }
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, len, "libvips gave no reason");
    g_free(text);
}

/* libvips' warnings ("error in tile 0 x 8", ...) go to stderr from its own
 * threads, with no request to attach them to; what matters of them is in
 * the error a failed step reports. */
static void drop_vips_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                              gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

/* libvips cannot be started again once shut down, and init/destroy pairs
 * come and go in one process (a reload under "thread" isolation), so the
 * shutdown waits for the process to exit. It joins libvips' threads first,
 * which leaves nothing running behind the exit (and nothing for a leak
 * checker to trip over). The plugin is linked with -z nodelete, so this
 * code is still mapped when exit() runs it. */
static void register_shutdown(void)
{
    atexit(vips_shutdown);
}

static int thumb_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)host;
    (void)state;
    /* VIPS_INIT is idempotent: under "thread" isolation several plugin
     * instances in one process may call it. */
    if (VIPS_INIT("sluice")) {
        char why[512];
        vips_message(why, sizeof why);
        snprintf(err, errlen, "libvips failed to initialise: %s", why);
        return -1;
    }
    /* Nothing is worth caching between events, and a cached operation would
     * keep its source file open. */
    vips_cache_set_max(0);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_vips_warning, NULL);
    pthread_once(&once, register_shutdown);
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 && VIPS_MINOR_VERSION >= 13)
    /* Loaders libvips marks untrusted (ImageMagick, MATLAB, ...) are never
     * needed here: the inputs are sniffed as JPEG, PNG or WebP first. */
    vips_block_untrusted_set(TRUE);
#endif
    return 0;
}

/* Nothing per instance: libvips itself is shut down at exit (see
 * register_shutdown), never here, because under "thread" isolation a reload
 * destroys the plugin and then initialises it again in the same process,
 * and libvips cannot be restarted. */
static void thumb_destroy(void *state)
{
    (void)state;
}

/* --- config ------------------------------------------------------------ */

static int read_int(const sl_host *h, const sl_json *v, const char *key, int lo, int hi,
                    int *out, struct failure *f)
{
    double d = h->json_number(v, -1);
    if (h->json_type(v) != SL_JSON_NUMBER || !(d >= lo && d <= hi) || d != (double)(int)d)
        return failf(f, "ConfigError", "config.%s must be a whole number from %d to %d, e.g. "
                     "\"%s\": %d", key, lo, hi, key, *out);
    *out = (int)d;
    return 0;
}

static int read_config(const sl_host *h, sl_context *ctx, struct thumb_config *c,
                       struct failure *f)
{
    *c = (struct thumb_config){.output = "var/thumbnails", .width = 100, .height = 100,
                               .format = FMT_SAME, .quality = 80, .upscale = 0,
                               .crop = VIPS_INTERESTING_NONE, .max_megapixels = 100};
    const sl_json *cfg = h->config(ctx);
    if (h->json_type(cfg) != SL_JSON_OBJECT)
        return failf(f, "ConfigError", "the step's config must be an object, e.g. "
                     "{\"output\": \"var/thumbnails\", \"size\": 100}");
    const char *bad = sl_config_unknown_key(ctx, known_keys);
    if (bad)
        return failf(f, "ConfigError", "config key \"%s\" is not known to thumbnail.handler; "
                     "its keys are output, size, format, quality, upscale, crop and "
                     "max_megapixels", bad);

    const sl_json *v = h->json_get(cfg, "/output");
    if (v) {
        c->output = h->json_string(v);
        if (!c->output || !*c->output)
            return failf(f, "ConfigError", "config.output must be a folder name, e.g. "
                         "\"output\": \"var/thumbnails\"");
    }
    v = h->json_get(cfg, "/size");
    if (h->json_type(v) == SL_JSON_ARRAY) {
        if (h->json_size(v) != 2)
            return failf(f, "ConfigError", "config.size must be a number (a square box) or "
                         "[width, height], e.g. \"size\": [160, 120]");
        if (read_int(h, h->json_at(v, 0), "size[0]", 1, 10000, &c->width, f) < 0 ||
            read_int(h, h->json_at(v, 1), "size[1]", 1, 10000, &c->height, f) < 0)
            return -1;
    } else if (v) {
        if (read_int(h, v, "size", 1, 10000, &c->width, f) < 0)
            return -1;
        c->height = c->width;
    }
    v = h->json_get(cfg, "/format");
    if (v) {
        const char *s = h->json_string(v);
        int found = 0;
        for (int i = 0; s && i < 4; i++) {
            if (strcmp(s, format_names[i]) == 0) {
                c->format = (enum thumb_format)i;
                found = 1;
            }
        }
        if (s && strcmp(s, "jpg") == 0) {
            c->format = FMT_JPEG;
            found = 1;
        }
        if (!found)
            return failf(f, "ConfigError", "config.format must be one of \"same\" (the "
                         "input's format), \"jpeg\", \"png\" or \"webp\"");
    }
    v = h->json_get(cfg, "/quality");
    if (v && read_int(h, v, "quality", 1, 100, &c->quality, f) < 0)
        return -1;
    v = h->json_get(cfg, "/upscale");
    if (v) {
        int t = h->json_type(v);
        if (t != SL_JSON_TRUE && t != SL_JSON_FALSE)
            return failf(f, "ConfigError", "config.upscale must be true or false");
        c->upscale = t == SL_JSON_TRUE;
    }
    v = h->json_get(cfg, "/crop");
    if (v) {
        const char *s = h->json_string(v);
        if (s && strcmp(s, "none") == 0)
            c->crop = VIPS_INTERESTING_NONE;
        else if (s && (strcmp(s, "centre") == 0 || strcmp(s, "center") == 0))
            c->crop = VIPS_INTERESTING_CENTRE;
        else if (s && strcmp(s, "attention") == 0)
            c->crop = VIPS_INTERESTING_ATTENTION;
        else if (s && strcmp(s, "entropy") == 0)
            c->crop = VIPS_INTERESTING_ENTROPY;
        else
            return failf(f, "ConfigError", "config.crop must be \"none\" (fit inside the box), "
                         "\"centre\", \"attention\" or \"entropy\" (fill the box, then crop)");
    }
    v = h->json_get(cfg, "/max_megapixels");
    if (v) {
        double d = h->json_number(v, -1);
        if (h->json_type(v) != SL_JSON_NUMBER || !(d > 0 && d <= 100000))
            return failf(f, "ConfigError", "config.max_megapixels must be a number above 0, "
                         "e.g. \"max_megapixels\": 250");
        c->max_megapixels = d;
    }
    return 0;
}

/* --- input ------------------------------------------------------------- */

/* The format the first bytes announce; other known image formats are named
 * in *other so that the error can say what the file is. */
static enum thumb_format sniff(const unsigned char *b, size_t n, const char **other)
{
    *other = NULL;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return FMT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return FMT_PNG;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return FMT_WEBP;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        *other = "a GIF image";
    else if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        *other = "a TIFF image";
    else if (n >= 2 && memcmp(b, "BM", 2) == 0)
        *other = "a BMP image";
    else if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0)
        *other = "a HEIF/AVIF or MP4 file";
    else if (n >= 5 && memcmp(b, "%PDF-", 5) == 0)
        *other = "a PDF document";
    else if (n == 0)
        *other = "empty";
    return FMT_SAME;
}

/* Open path for reading: a regular file whose first bytes say JPEG, PNG or
 * WebP. Returns the descriptor, or -1 with f filled. */
static int open_image(const char *path, enum thumb_format *fmt, struct failure *f)
{
    /* O_NONBLOCK: a FIFO named like an image must not block the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return failf(f, "FileError", "cannot open %s: it no longer exists (moved or "
                         "deleted before the step ran)", path);
        return failf(f, "FileError", "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return failf(f, "FileError", "%s is not a regular file", path);
    }
    unsigned char head[16];
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n < 0) {
        int saved = errno;
        close(fd);
        return failf(f, "FileError", "cannot read %s: %s", path, strerror(saved));
    }
    const char *other;
    *fmt = sniff(head, (size_t)n, &other);
    if (*fmt == FMT_SAME) {
        close(fd);
        if (other)
            return failf(f, "UnsupportedImage", "%s is %s; thumbnail.handler reads JPEG, PNG "
                         "and WebP images only (filter the trigger with \"match\": "
                         "{\"suffix\": [...]})", path, other);
        return failf(f, "NotAnImage", "%s is not a JPEG, PNG or WebP image (its first bytes "
                     "match none of them)", path);
    }
    return fd;
}

/* --- output ------------------------------------------------------------ */

/* The output name, relative to the output folder: the decoded key (its
 * subfolders kept), else the source's file name; with a format other than
 * "same", its extension replaced. NULL with f filled when the name would
 * leave the folder. */
static char *output_name(const char *key, const char *path, enum thumb_format format,
                         struct failure *f)
{
    char *name;
    if (key) {
        name = url_decode(key);
        if (!name) {
            failf(f, "InternalError", "out of memory");
            return NULL;
        }
        if (!relative_path_safe(name)) {
            failf(f, "InvalidEvent", "the object key \"%s\" is not a plain relative path "
                  "(it is empty, absolute, or has \".\", \"..\" or empty parts); "
                  "refusing to write outside the output folder", key);
            free(name);
            return NULL;
        }
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!relative_path_safe(base)) {
            failf(f, "InvalidEvent", "the path %s has no file name", path);
            return NULL;
        }
        name = strdup(base);
        if (!name) {
            failf(f, "InternalError", "out of memory");
            return NULL;
        }
    }
    if (format == FMT_SAME)
        return name;
    const char *ext = format_exts[format];
    char *slash = strrchr(name, '/');
    char *base = slash ? slash + 1 : name;
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    size_t len = strlen(name) + strlen(ext) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s%s", name, ext);
    else
        failf(f, "InternalError", "out of memory");
    free(name);
    return out;
}

/* Write data to dir/name (dir/name's folders created) through a hidden
 * temporary file in the same folder and a rename. A file of the same
 * name is replaced, unless it is the source itself (src). */
static int publish(const char *final, const void *data, size_t len, const struct stat *src,
                   struct failure *f)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *slash = strrchr(final, '/');
    size_t dlen = slash ? (size_t)(slash - final) : 0;
    if (dlen >= sizeof dir || strlen(final) + 16 >= sizeof tmp)
        return failf(f, "OutputError", "the output path %s is too long", final);
    memcpy(dir, final, dlen);
    dir[dlen] = '\0';
    if (dlen > 0 && mkdirs(dir, 0755) < 0)
        return failf(f, "OutputError", "cannot create the output folder %s: %s (check "
                     "config.output and its permissions)", dir, strerror(errno));
    struct stat st;
    if (stat(final, &st) == 0 && st.st_dev == src->st_dev && st.st_ino == src->st_ino)
        return failf(f, "ConfigError", "the thumbnail %s would overwrite its source image; "
                     "config.output must name another folder than the trigger's", final);
    /* the name is cut so that ".NAME.XXXXXX" stays within NAME_MAX */
    snprintf(tmp, sizeof tmp, "%.*s%s.%.200s.XXXXXX", (int)dlen, final, dlen ? "/" : "",
             slash ? slash + 1 : final);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return failf(f, "OutputError", "cannot create a file in %s: %s (check config.output "
                     "and its permissions)", dlen ? dir : ".", strerror(errno));
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = failf(f, "OutputError", "cannot write %s: %s", tmp,
                       n < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        rc = failf(f, "OutputError", "cannot sync %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = failf(f, "OutputError", "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, final) < 0)
        rc = failf(f, "OutputError", "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* --- the work ---------------------------------------------------------- */

struct thumb_result {
    char *output;               /* absolute path */
    int width, height, src_width, src_height;
    size_t bytes;
    enum thumb_format format;
};

/* Encode img in format; the buffer is g_free'd by the caller. */
static int encode(VipsImage *img, enum thumb_format format, int quality, void **buf,
                  size_t *len)
{
    switch (format) {
    case FMT_JPEG: {
        /* JPEG has no alpha: flatten onto white rather than black
         * (white being 65535 in a 16-bit image). */
        VipsImage *flat = NULL;
        if (vips_image_hasalpha(img)) {
            VipsInterpretation type = vips_image_get_interpretation(img);
            double max = type == VIPS_INTERPRETATION_RGB16 ||
                         type == VIPS_INTERPRETATION_GREY16 ? 65535 : 255;
            double white[] = {max, max, max};
            VipsArrayDouble *bg = vips_array_double_new(white, 3);
            int rc = vips_flatten(img, &flat, "background", bg, "max_alpha", max, NULL);
            vips_area_unref(VIPS_AREA(bg));
            if (rc)
                return -1;
        }
        int rc = vips_jpegsave_buffer(flat ? flat : img, buf, len, "Q", quality,
                                      "strip", TRUE, "optimize_coding", TRUE, NULL);
        if (flat)
            g_object_unref(flat);
        return rc;
    }
    case FMT_PNG:
        return vips_pngsave_buffer(img, buf, len, "strip", TRUE, NULL);
    case FMT_WEBP:
        return vips_webpsave_buffer(img, buf, len, "Q", quality, "strip", TRUE, NULL);
    case FMT_SAME:
        break;
    }
    return -1;
}

static int make_thumbnail(const struct thumb_config *c, const char *path, const char *key,
                          struct thumb_result *r, struct failure *f)
{
    enum thumb_format in_fmt;
    VipsSource *source = NULL;
    VipsImage *header = NULL, *thumb = NULL;
    void *buf = NULL;
    size_t len = 0;
    char *name = NULL, *final = NULL;
    char why[1024];
    struct stat st;
    int rc = -1;

    int fd = open_image(path, &in_fmt, f);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        failf(f, "FileError", "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    r->format = c->format == FMT_SAME ? in_fmt : c->format;
    if (!(name = output_name(key, path, c->format, f)))
        goto done;
    if (!(final = path_under(c->output, name))) {
        failf(f, "OutputError", "cannot resolve the output folder %s: %s", c->output,
              strerror(errno));
        goto done;
    }

    /* libvips dups the descriptor; ours is closed at the end. */
    if (!(source = vips_source_new_from_descriptor(fd))) {
        vips_message(why, sizeof why);
        failf(f, "ImageError", "cannot read %s: %s", path, why);
        goto done;
    }
    if (!(header = vips_image_new_from_source(source, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                              NULL))) {
        vips_message(why, sizeof why);
        failf(f, "ImageError", "%s is not a readable %s image: %s", path,
              format_names[in_fmt], why);
        goto done;
    }
    r->src_width = vips_image_get_width(header);
    r->src_height = vips_image_get_height(header);
    double mp = (double)r->src_width * (double)r->src_height / 1e6;
    if (mp > c->max_megapixels) {
        failf(f, "ImageTooLarge", "%s is %dx%d (%.1f megapixels), above config.max_megapixels "
              "(%g); raise it if such images are expected", path, r->src_width,
              r->src_height, mp, c->max_megapixels);
        goto done;
    }
    if (vips_thumbnail_source(source, &thumb, c->width, "height", c->height,
                              "size", c->upscale ? VIPS_SIZE_BOTH : VIPS_SIZE_DOWN,
                              "crop", c->crop, "fail_on", VIPS_FAIL_ON_ERROR,
                              /* libvips 8.14 passes fail_on to file loaders
                               * only; a source loader needs it spelt out */
                              "option_string", "fail_on=error", NULL)) {
        vips_message(why, sizeof why);
        failf(f, "ImageError", "cannot make a thumbnail of %s (a damaged or truncated %s "
              "image?): %s", path, format_names[in_fmt], why);
        goto done;
    }
    /* Encoding runs the whole pipeline: decoding errors surface here. */
    if (encode(thumb, r->format, c->quality, &buf, &len)) {
        vips_message(why, sizeof why);
        failf(f, "ImageError", "cannot make a thumbnail of %s (a damaged or truncated %s "
              "image?): %s", path, format_names[in_fmt], why);
        goto done;
    }
    if (publish(final, buf, len, &st, f) < 0)
        goto done;
    r->width = vips_image_get_width(thumb);
    r->height = vips_image_get_height(thumb);
    r->bytes = len;
    r->output = final;
    final = NULL;
    rc = 0;
done:
    g_free(buf);
    if (thumb)
        g_object_unref(thumb);
    if (header)
        g_object_unref(header);
    if (source)
        g_object_unref(source);
    close(fd);
    free(name);
    free(final);
    return rc;
}

static sl_json *result_json(const sl_host *h, const struct thumb_result *r, const char *key,
                            const char *path)
{
    sl_json *o = h->json_new_object();
    if (!o)
        return NULL;
    h->json_set(o, "output", h->json_new_string(r->output));
    h->json_set(o, "width", h->json_new_number(r->width));
    h->json_set(o, "height", h->json_new_number(r->height));
    h->json_set(o, "bytes", h->json_new_number((double)r->bytes));
    h->json_set(o, "format", h->json_new_string(format_names[r->format]));
    h->json_set(o, "source", key ? h->json_new_string(key) : h->json_new_string(path));
    h->json_set(o, "input", h->json_new_string(path));
    h->json_set(o, "input_width", h->json_new_number(r->src_width));
    h->json_set(o, "input_height", h->json_new_number(r->src_height));
    return o;
}

static int respond_failure(const sl_host *h, sl_response *res, sl_json *out,
                           const struct failure *f)
{
    h->json_free(out);
    h->fail(res, f->type, f->msg);
    return 1;
}

static int thumb_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct failure f = {0};
    struct thumb_config c;
    (void)event;
    if (read_config(h, ctx, &c, &f) < 0)
        return respond_failure(h, res, NULL, &f);

    const sl_json *records = h->json_get(h->event(ctx), "/Records");
    size_t n = h->json_size(records);
    if (h->json_type(records) != SL_JSON_ARRAY || n == 0) {
        failf(&f, "InvalidEvent", "expected a directory event, {\"Records\": [{\"s3\": "
              "{\"object\": {\"key\": ..., \"path\": ...}}}]}; put thumbnail.handler first "
              "in a pipeline with a directory trigger");
        return respond_failure(h, res, NULL, &f);
    }
    sl_json *list = h->json_new_array();
    if (!list) {
        failf(&f, "InternalError", "out of memory");
        return respond_failure(h, res, NULL, &f);
    }
    for (size_t i = 0; i < n; i++) {
        const sl_json *obj = h->json_get(h->json_at(records, i), "/s3/object");
        const char *path = h->json_string(h->json_get(obj, "/path"));
        const char *key = h->json_string(h->json_get(obj, "/key"));
        if (!path || !*path) {
            failf(&f, "InvalidEvent", "Records[%zu].s3.object.path is missing: thumbnail.handler "
                  "needs the image's path, as a directory trigger gives it", i);
            return respond_failure(h, res, list, &f);
        }
        struct thumb_result r = {0};
        if (make_thumbnail(&c, path, key, &r, &f) < 0)
            return respond_failure(h, res, list, &f);
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "%s (%dx%d) -> %s (%dx%d %s, %zu bytes)", path,
                 r.src_width, r.src_height, r.output, r.width, r.height,
                 format_names[r.format], r.bytes);
        h->log(ctx, SL_LOG_INFO, msg);
        sl_json *one = result_json(h, &r, key, path);
        free(r.output);
        if (!one || h->json_append(list, one) < 0) {
            h->json_free(one);
            failf(&f, "InternalError", "out of memory");
            return respond_failure(h, res, list, &f);
        }
    }
    int rc;
    if (n == 1) {
        rc = h->respond_json(res, 200, h->json_at(list, 0));
    } else {
        sl_json *out = h->json_new_object();
        h->json_set(out, "count", h->json_new_number((double)n));
        h->json_set(out, "thumbnails", list);
        list = NULL;
        rc = h->respond_json(res, 200, out);
        h->json_free(out);
    }
    h->json_free(list);
    if (rc != 0) {
        h->fail(res, "InternalError", "cannot set the response (out of memory?)");
        return 1;
    }
    return 0;
}

static const sl_handler_def handlers[] = {
    {"handler", thumb_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "thumbnail",
    .version = "1.0",
    .handlers = handlers,
    .init = thumb_init,
    .destroy = thumb_destroy,
};
