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
 * a failure leaves nothing behind. libvips is initialised by the first
 * create in a process and shut down as the process exits (see
 * thumb_destroy). The image must lie in the pipeline's trigger folder or a
 * folder of config.allow (files_fs.c, as the files plugin confines itself):
 * an event may name any path.
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

#include "../files/files_fs.h"
#include "thumb_util.h"

#define MSG_MAX (2 * PATH_MAX + 512)

enum thumb_format { FMT_SAME, FMT_JPEG, FMT_PNG, FMT_WEBP };

static const char *const format_names[] = {"same", "jpeg", "png", "webp"};
static const char *const format_exts[] = {"", ".jpg", ".png", ".webp"};

/* One step's config: its instance. */
struct thumb_config {
    char *output;               /* folder, relative to the working folder or absolute */
    struct fs_folders allow;    /* besides the trigger folder, where images may come from */
    int width, height;          /* the box the thumbnail fits in */
    enum thumb_format format;
    int quality;                /* 1..100, JPEG and WebP */
    int upscale;                /* enlarge images smaller than the box */
    VipsInteresting crop;       /* VIPS_INTERESTING_NONE: fit, else fill and crop */
    double max_megapixels;      /* larger inputs are refused */
};

/* Where a failure goes: the host's failf into the response. */
struct failure {
    const sl_host *h;
    sl_response *res;
};

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

static int vips_start(char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
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

/* Only the config: libvips itself is shut down at exit (see
 * register_shutdown), never here, because under "thread" isolation a reload
 * destroys the instances and creates them again in the same process, and
 * libvips cannot be restarted. */
static void thumb_destroy(void *instance)
{
    struct thumb_config *c = instance;
    if (!c)
        return;
    free(c->output);
    fs_folders_free(&c->allow);
    free(c);
}

/* --- config ------------------------------------------------------------ */

static int read_int(const sl_host *h, const sl_json *v, const char *key, int lo, int hi,
                    int *out, char *err, size_t errlen)
{
    double d = h->json_number(v, -1);
    if (h->json_type(v) != SL_JSON_NUMBER || !(d >= lo && d <= hi) || d != (double)(int)d)
        return snprintf(err, errlen, "config.%s must be a whole number from %d to %d, e.g. "
                     "\"%s\": %d", key, lo, hi, key, *out), -1;
    *out = (int)d;
    return 0;
}

/* The step's config; the host checked its keys and their types and put in
 * the defaults (config_keys). */
static int read_config(const sl_host *h, const sl_json *cfg, struct thumb_config *c, char *err,
                       size_t errlen)
{
    c->width = c->height = 100;
    c->format = FMT_SAME;
    c->quality = 80;
    c->crop = VIPS_INTERESTING_NONE;
    c->max_megapixels = 100;
    const char *output = h->json_string(h->json_get(cfg, "/output"));
    if (!*output)
        return snprintf(err, errlen, "config.output must be a folder name, e.g. \"output\": "
                        "\"var/thumbnails\""), -1;
    if (!(c->output = strdup(output)))
        return snprintf(err, errlen, "out of memory"), -1;
    if (fs_folders_from_config(h, h->json_get(cfg, "/allow"), &c->allow, err, errlen) < 0)
        return -1;
    const sl_json *v;
    v = h->json_get(cfg, "/size");
    if (h->json_type(v) == SL_JSON_ARRAY) {
        if (h->json_size(v) != 2)
            return snprintf(err, errlen, "config.size must be a number (a square box) or "
                         "[width, height], e.g. \"size\": [160, 120]"), -1;
        if (read_int(h, h->json_at(v, 0), "size[0]", 1, 10000, &c->width, err, errlen) < 0 ||
            read_int(h, h->json_at(v, 1), "size[1]", 1, 10000, &c->height, err, errlen) < 0)
            return -1;
    } else if (v) {
        if (read_int(h, v, "size", 1, 10000, &c->width, err, errlen) < 0)
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
            return snprintf(err, errlen, "config.format must be one of \"same\" (the "
                         "input's format), \"jpeg\", \"png\" or \"webp\""), -1;
    }
    v = h->json_get(cfg, "/quality");
    if (v && read_int(h, v, "quality", 1, 100, &c->quality, err, errlen) < 0)
        return -1;
    v = h->json_get(cfg, "/upscale");
    if (v) {
        int t = h->json_type(v);
        if (t != SL_JSON_TRUE && t != SL_JSON_FALSE)
            return snprintf(err, errlen, "config.upscale must be true or false"), -1;
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
            return snprintf(err, errlen, "config.crop must be \"none\" (fit inside the box), "
                         "\"centre\", \"attention\" or \"entropy\" (fill the box, then crop)"), -1;
    }
    v = h->json_get(cfg, "/max_megapixels");
    if (v) {
        double d = h->json_number(v, -1);
        if (h->json_type(v) != SL_JSON_NUMBER || !(d > 0 && d <= 100000))
            return snprintf(err, errlen, "config.max_megapixels must be a number above 0, "
                         "e.g. \"max_megapixels\": 250"), -1;
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
static int open_image(const sl_context *ctx, const char *path, enum thumb_format *fmt,
                      struct failure *f)
{
    const struct thumb_config *c = ctx->instance;
    struct fs_error fe;
    /* confined, never following a link; O_NONBLOCK: a FIFO must not block */
    int fd = fs_read_open(ctx->folder, &c->allow, path, &fe);
    if (fd < 0)
        return f->h->failf(f->res, fe.type, "%s", fe.msg);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return f->h->failf(f->res, "FileError", "%s is not a regular file", path);
    }
    unsigned char head[16];
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n < 0) {
        int saved = errno;
        close(fd);
        return f->h->failf(f->res, "FileError", "cannot read %s: %s", path, strerror(saved));
    }
    const char *other;
    *fmt = sniff(head, (size_t)n, &other);
    if (*fmt == FMT_SAME) {
        close(fd);
        if (other)
            return f->h->failf(f->res, "UnsupportedImage", "%s is %s; thumbnail.handler reads JPEG, PNG "
                         "and WebP images only (filter the trigger with \"match\": "
                         "{\"suffix\": [...]})", path, other);
        return f->h->failf(f->res, "NotAnImage", "%s is not a JPEG, PNG or WebP image (its first bytes "
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
            f->h->failf(f->res, "InternalError", "out of memory");
            return NULL;
        }
        if (!relative_path_safe(name)) {
            f->h->failf(f->res, "InvalidEvent", "the object key \"%s\" is not a plain relative path "
                  "(it is empty, absolute, or has \".\", \"..\" or empty parts); "
                  "refusing to write outside the output folder", key);
            free(name);
            return NULL;
        }
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!relative_path_safe(base)) {
            f->h->failf(f->res, "InvalidEvent", "the path %s has no file name", path);
            return NULL;
        }
        name = strdup(base);
        if (!name) {
            f->h->failf(f->res, "InternalError", "out of memory");
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
        f->h->failf(f->res, "InternalError", "out of memory");
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
        return f->h->failf(f->res, "OutputError", "the output path %s is too long", final);
    memcpy(dir, final, dlen);
    dir[dlen] = '\0';
    if (dlen > 0 && mkdirs(dir, 0755) < 0)
        return f->h->failf(f->res, "OutputError", "cannot create the output folder %s: %s (check "
                     "config.output and its permissions)", dir, strerror(errno));
    struct stat st;
    if (stat(final, &st) == 0 && st.st_dev == src->st_dev && st.st_ino == src->st_ino)
        return f->h->failf(f->res, "ConfigError", "the thumbnail %s would overwrite its source image; "
                     "config.output must name another folder than the trigger's", final);
    /* the name is cut so that ".NAME.XXXXXX" stays within NAME_MAX */
    snprintf(tmp, sizeof tmp, "%.*s%s.%.200s.XXXXXX", (int)dlen, final, dlen ? "/" : "",
             slash ? slash + 1 : final);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return f->h->failf(f->res, "OutputError", "cannot create a file in %s: %s (check config.output "
                     "and its permissions)", dlen ? dir : ".", strerror(errno));
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = f->h->failf(f->res, "OutputError", "cannot write %s: %s", tmp,
                       n < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        rc = f->h->failf(f->res, "OutputError", "cannot sync %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = f->h->failf(f->res, "OutputError", "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, final) < 0)
        rc = f->h->failf(f->res, "OutputError", "cannot rename %s to %s: %s", tmp, final, strerror(errno));
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

static int make_thumbnail(const sl_context *ctx, const char *path, const char *key,
                          struct thumb_result *r, struct failure *f)
{
    const struct thumb_config *c = ctx->instance;
    enum thumb_format in_fmt;
    VipsSource *source = NULL;
    VipsImage *header = NULL, *thumb = NULL;
    void *buf = NULL;
    size_t len = 0;
    char *name = NULL, *final = NULL;
    char why[1024];
    struct stat st;
    int rc = -1;

    int fd = open_image(ctx, path, &in_fmt, f);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        f->h->failf(f->res, "FileError", "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    r->format = c->format == FMT_SAME ? in_fmt : c->format;
    if (!(name = output_name(key, path, c->format, f)))
        goto done;
    if (!(final = path_under(c->output, name))) {
        f->h->failf(f->res, "OutputError", "cannot resolve the output folder %s: %s", c->output,
              strerror(errno));
        goto done;
    }

    /* libvips dups the descriptor; ours is closed at the end. */
    if (!(source = vips_source_new_from_descriptor(fd))) {
        vips_message(why, sizeof why);
        f->h->failf(f->res, "ImageError", "cannot read %s: %s", path, why);
        goto done;
    }
    if (!(header = vips_image_new_from_source(source, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                              NULL))) {
        vips_message(why, sizeof why);
        f->h->failf(f->res, "ImageError", "%s is not a readable %s image: %s", path,
              format_names[in_fmt], why);
        goto done;
    }
    r->src_width = vips_image_get_width(header);
    r->src_height = vips_image_get_height(header);
    double mp = (double)r->src_width * (double)r->src_height / 1e6;
    if (mp > c->max_megapixels) {
        f->h->failf(f->res, "ImageTooLarge", "%s is %dx%d (%.1f megapixels), above config.max_megapixels "
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
        f->h->failf(f->res, "ImageError", "cannot make a thumbnail of %s (a damaged or truncated %s "
              "image?): %s", path, format_names[in_fmt], why);
        goto done;
    }
    /* Encoding runs the whole pipeline: decoding errors surface here. */
    if (encode(thumb, r->format, c->quality, &buf, &len)) {
        vips_message(why, sizeof why);
        f->h->failf(f->res, "ImageError", "cannot make a thumbnail of %s (a damaged or truncated %s "
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

static void write_result(const sl_host *h, sl_writer *w, const struct thumb_result *r,
                         const char *key, const char *path)
{
    const char *format = format_names[r->format];
    const char *source = key ? key : path;
    h->write_object(w);
    h->write_key(w, "output", 6);
    h->write_string(w, r->output, strlen(r->output));
    h->write_key(w, "width", 5);
    h->write_int(w, r->width);
    h->write_key(w, "height", 6);
    h->write_int(w, r->height);
    h->write_key(w, "bytes", 5);
    h->write_int(w, (int64_t)r->bytes);
    h->write_key(w, "format", 6);
    h->write_string(w, format, strlen(format));
    h->write_key(w, "source", 6);
    h->write_string(w, source, strlen(source));
    h->write_key(w, "input", 5);
    h->write_string(w, path, strlen(path));
    h->write_key(w, "input_width", 11);
    h->write_int(w, r->src_width);
    h->write_key(w, "input_height", 12);
    h->write_int(w, r->src_height);
    h->write_close(w);
}

/* One record: its thumbnail made, its result written. */
static int one_record(const sl_context *ctx, const sl_json *record, size_t i, sl_writer *w,
                      struct failure *f)
{
    const sl_host *h = ctx->host;
    const sl_json *obj = h->json_get(record, "/s3/object");
    const char *path = h->json_string(h->json_get(obj, "/path"));
    const char *key = h->json_string(h->json_get(obj, "/key"));
    if (!path || !*path)
        return h->failf(f->res, "InvalidEvent", "Records[%zu].s3.object.path is missing: "
                        "thumbnail.handler needs the image's path, as a directory trigger gives "
                        "it", i);
    struct thumb_result r = {0};
    if (make_thumbnail(ctx, path, key, &r, f) < 0)
        return -1;
    h->logf(ctx, SL_LOG_INFO, "%s (%dx%d) -> %s (%dx%d %s, %zu bytes)", path, r.src_width,
            r.src_height, r.output, r.width, r.height, format_names[r.format], r.bytes);
    write_result(h, w, &r, key, path);
    free(r.output);
    return 0;
}

static int thumb_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct failure f = {h, res};
    (void)event;
    const sl_json *records = h->json_get(h->event(ctx), "/Records");
    size_t n = h->json_size(records);
    if (h->json_type(records) != SL_JSON_ARRAY || n == 0)
        return h->failf(res, "InvalidEvent", "expected a directory event, {\"Records\": "
                        "[{\"s3\": {\"object\": {\"key\": ..., \"path\": ...}}}]}; put "
                        "thumbnail.handler first in a pipeline with a directory trigger");
    /* one image: its object; several: {"count": N, "thumbnails": [...]} */
    sl_writer *w = h->writer_begin(res);
    if (n != 1) {
        h->write_object(w);
        h->write_key(w, "count", 5);
        h->write_int(w, (int64_t)n);
        h->write_key(w, "thumbnails", 10);
        h->write_array(w);
    }
    for (size_t i = 0; i < n; i++) {
        if (one_record(ctx, h->json_at(records, i), i, w, &f) < 0) {
            h->writer_end(w, 200); /* incomplete: discarded */
            return 1;
        }
    }
    if (n != 1) {
        h->write_close(w);
        h->write_close(w);
    }
    if (h->writer_end(w, 200) < 0)
        return h->failf(res, "InternalError", "cannot set the response (out of memory?)");
    return 0;
}

static int thumb_create(const sl_host *h, const sl_json *cfg, void **instance, char *err,
                        size_t errlen)
{
    if (vips_start(err, errlen) < 0)
        return -1;
    struct thumb_config *c = calloc(1, sizeof *c);
    if (!c)
        return snprintf(err, errlen, "out of memory"), -1;
    if (read_config(h, cfg, c, err, errlen) < 0) {
        thumb_destroy(c);
        return -1;
    }
    *instance = c;
    return 0;
}

static const sl_handler_def handlers[] = {
    {"handler", thumb_handler},
    {NULL, NULL},
};

static const sl_config_key config_keys[] = {
    {"output", SL_CONFIG_STRING, 0, "\"var/thumbnails\"", "the folder thumbnails go to"},
    {"size", SL_CONFIG_ANY, 0, NULL, "the box: a number (square) or [width, height]"},
    {"format", SL_CONFIG_STRING, 0, NULL, "\"same\", \"jpeg\", \"png\" or \"webp\""},
    {"quality", SL_CONFIG_INTEGER, 0, NULL, "1 to 100, JPEG and WebP"},
    {"upscale", SL_CONFIG_BOOL, 0, NULL, "enlarge images smaller than the box"},
    {"crop", SL_CONFIG_STRING, 0, NULL, "\"none\", \"centre\", \"attention\" or \"entropy\""},
    {"max_megapixels", SL_CONFIG_NUMBER, 0, NULL, "larger inputs are refused"},
    {"allow", SL_CONFIG_STRINGS, 0, NULL, "folders besides the trigger folder images may be "
     "read from"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "thumbnail",
    .version = "2.0",
    .handlers = handlers,
    .destroy = thumb_destroy,
    .create = thumb_create,
    .config_keys = config_keys,
};
