/* files.c - the files plugin: move, copy or delete the file that triggered
 * the pipeline, confined to the folders its config names.
 *
 * Handlers files.move, files.copy and files.delete take the file's path from
 * the event (a directory trigger's Records[].s3.object.path, a checksum
 * step's files[].path, a top-level "path", or where config.path points) and
 * act on it only if it lies inside one of config.allow's folders once every
 * symbolic link in its folder is resolved; the file itself must be a regular
 * file, never a link. The checks and the action go through directory
 * descriptors (files_fs.c), so a path changed between them is refused, not
 * followed.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/handler.h>

#include "files_fs.h"

#define MAX_ALLOW 64

enum action { ACT_MOVE, ACT_COPY, ACT_DELETE };

static const char *const verbs[] = {"move", "copy", "delete"};
static const char *const past[] = {"moved", "copied", "deleted"};

struct files_config {
    const char *allow[MAX_ALLOW];
    size_t n_allow;
    const char *to;
    const char *pointer;        /* config.path, or NULL: look in the usual places */
    enum fs_exists exists;
    int keep_subfolders;
};

static const char *const known_keys[] = {"allow", "to", "path", "if_exists", "keep_subfolders",
                                         NULL};

static int failf(struct fs_error *e, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct fs_error *e, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->type = type;
    return -1;
}

/* --- config ------------------------------------------------------------ */

static int read_config(const sl_host *h, sl_context *ctx, enum action act,
                       struct files_config *c, struct fs_error *e)
{
    memset(c, 0, sizeof *c);
    c->exists = FS_EXISTS_RENAME;
    const char *verb = verbs[act];
    const sl_json *cfg = h->config(ctx);
    if (h->json_type(cfg) != SL_JSON_OBJECT)
        return failf(e, "ConfigError", "the step's config must be an object, e.g. "
                     "{\"allow\": [\"var/inbox\"], \"to\": \"var/done\"}");
    const char *bad = sl_config_unknown_key(ctx, known_keys);
    if (bad)
        return failf(e, "ConfigError", "config key \"%s\" is not known to files.%s; its keys are "
                     "allow, to, path, if_exists and keep_subfolders", bad, verb);

    const sl_json *allow = h->json_get(cfg, "/allow");
    if (h->json_type(allow) == SL_JSON_STRING) {
        c->allow[c->n_allow++] = h->json_string(allow);
    } else if (h->json_type(allow) == SL_JSON_ARRAY && h->json_size(allow) > 0 &&
               h->json_size(allow) <= MAX_ALLOW) {
        for (size_t i = 0; i < h->json_size(allow); i++) {
            const char *s = h->json_string(h->json_at(allow, i));
            if (!s || !*s)
                return failf(e, "ConfigError", "config.allow[%zu] must be a folder name", i);
            c->allow[c->n_allow++] = s;
        }
    } else {
        return failf(e, "ConfigError", "config.allow must list the folders files.%s may act in "
                     "(1 to %d), e.g. \"allow\": [\"var/inbox/archive\"]; files outside them are "
                     "refused", verb, MAX_ALLOW);
    }

    const sl_json *to = h->json_get(cfg, "/to");
    if (act == ACT_DELETE && to)
        return failf(e, "ConfigError", "config.to makes no sense for files.delete (did you mean "
                     "files.move?)");
    if (act != ACT_DELETE) {
        c->to = h->json_string(to);
        if (!c->to || !*c->to)
            return failf(e, "ConfigError", "config.to must name the folder to %s files into, "
                         "e.g. \"to\": \"var/done\" (created if missing)", verb);
    }

    const sl_json *v = h->json_get(cfg, "/path");
    if (v) {
        c->pointer = h->json_string(v);
        if (!c->pointer || (*c->pointer && *c->pointer != '/'))
            return failf(e, "ConfigError", "config.path must be a JSON pointer to the file's path "
                         "in the event, e.g. \"path\": \"/input\"");
    }
    v = h->json_get(cfg, "/if_exists");
    if (v) {
        const char *s = h->json_string(v);
        if (act == ACT_DELETE)
            return failf(e, "ConfigError", "config.if_exists makes no sense for files.delete");
        if (s && strcmp(s, "rename") == 0)
            c->exists = FS_EXISTS_RENAME;
        else if (s && strcmp(s, "overwrite") == 0)
            c->exists = FS_EXISTS_OVERWRITE;
        else if (s && strcmp(s, "fail") == 0)
            c->exists = FS_EXISTS_FAIL;
        else
            return failf(e, "ConfigError", "config.if_exists must be \"rename\" (name-1.ext, "
                         "the default), \"overwrite\" or \"fail\"");
    }
    v = h->json_get(cfg, "/keep_subfolders");
    if (v) {
        int t = h->json_type(v);
        if (t != SL_JSON_TRUE && t != SL_JSON_FALSE)
            return failf(e, "ConfigError", "config.keep_subfolders must be true or false");
        c->keep_subfolders = t == SL_JSON_TRUE;
    }
    return 0;
}

/* --- the event --------------------------------------------------------- */

struct target {
    const char *path;
    const char *key;            /* the S3 key, when the event has one */
};

/* Collect up to max paths from the event into t. Returns how many, or -1
 * with e filled. */
static int find_paths(const sl_host *h, sl_context *ctx, const struct files_config *c,
                      struct target *t, size_t max, struct fs_error *e)
{
    const sl_json *ev = h->event(ctx);
    size_t n = 0;
    if (c->pointer) {
        const sl_json *v = h->json_get(ev, c->pointer);
        if (h->json_type(v) == SL_JSON_STRING) {
            t[n++] = (struct target){h->json_string(v), NULL};
            return (int)n;
        }
        if (h->json_type(v) == SL_JSON_ARRAY && h->json_size(v) > 0) {
            for (size_t i = 0; i < h->json_size(v) && n < max; i++) {
                const char *s = h->json_string(h->json_at(v, i));
                if (!s)
                    return failf(e, "InvalidEvent", "the event's %s/%zu (config.path) is not a "
                                 "string", c->pointer, i);
                t[n++] = (struct target){s, NULL};
            }
            return (int)n;
        }
        return failf(e, "InvalidEvent", "the event has no file path at %s (config.path): "
                     "expected a string or an array of strings", c->pointer);
    }
    const sl_json *list = h->json_get(ev, "/Records");
    const char *inner = "/s3/object";
    const char *where = "Records[%zu].s3.object.path";
    if (h->json_type(list) != SL_JSON_ARRAY) {
        list = h->json_get(ev, "/files");
        inner = "";
        where = "files[%zu].path";
    }
    if (h->json_type(list) == SL_JSON_ARRAY && h->json_size(list) > 0) {
        for (size_t i = 0; i < h->json_size(list) && n < max; i++) {
            const sl_json *obj = h->json_get(h->json_at(list, i), inner);
            const char *p = h->json_string(h->json_get(obj, "/path"));
            if (!p) {
                char what[64];
                snprintf(what, sizeof what, where, i);
                return failf(e, "InvalidEvent", "the event's %s is missing", what);
            }
            t[n++] = (struct target){p, h->json_string(h->json_get(obj, "/key"))};
        }
        return (int)n;
    }
    const char *p = h->json_string(h->json_get(ev, "/path"));
    if (p) {
        t[n++] = (struct target){p, h->json_string(h->json_get(ev, "/key"))};
        return (int)n;
    }
    return failf(e, "InvalidEvent", "the event names no file: expected Records[].s3.object.path "
                 "(a directory trigger's event), files[].path (checksum.handler's response) or "
                 "a top-level \"path\"; or point config.path at it");
}

/* --- handlers ---------------------------------------------------------- */

static int expired(void *arg)
{
    sl_context *ctx = arg;
    return ctx->host->remaining_ms(ctx) <= 0;
}

static int refuse(const sl_host *h, sl_response *res, sl_json *out, const struct fs_error *e)
{
    h->json_free(out);
    h->fail(res, e->type, e->msg);
    return 1;
}

#define MAX_TARGETS 1000

static int run(enum action act, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct fs_error e = {0};
    struct files_config c;
    if (read_config(h, ctx, act, &c, &e) < 0)
        return refuse(h, res, NULL, &e);
    struct target *targets = calloc(MAX_TARGETS, sizeof *targets);
    if (!targets) {
        failf(&e, "InternalError", "out of memory");
        return refuse(h, res, NULL, &e);
    }
    int n = find_paths(h, ctx, &c, targets, MAX_TARGETS, &e);
    struct fs_allow allow;
    if (n < 0 || fs_allow_init(&allow, c.allow, c.n_allow, &e) < 0) {
        free(targets);
        return refuse(h, res, NULL, &e);
    }
    sl_json *list = h->json_new_array();
    int rc = list ? 0 : failf(&e, "InternalError", "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        struct fs_source s;
        char dest[PATH_MAX] = "";
        rc = fs_source_open(&allow, targets[i].path, verbs[act], &s, &e);
        if (rc < 0)
            break;
        if (act == ACT_DELETE)
            rc = fs_delete(&s, &e);
        else
            rc = fs_transfer(&s, c.to, c.keep_subfolders, act == ACT_COPY, c.exists, expired,
                             ctx, dest, &e);
        if (rc == 0) {
            sl_json *o = h->json_new_object();
            h->json_set(o, "action", h->json_new_string(verbs[act]));
            h->json_set(o, "source", h->json_new_string(s.path));
            if (act != ACT_DELETE) {
                h->json_set(o, "destination", h->json_new_string(dest));
                h->json_set(o, "path", h->json_new_string(dest));
            }
            h->json_set(o, "bytes", h->json_new_number((double)s.size));
            if (targets[i].key)
                h->json_set(o, "key", h->json_new_string(targets[i].key));
            if (!o || h->json_append(list, o) < 0) {
                h->json_free(o);
                rc = failf(&e, "InternalError", "out of memory");
            }
            char msg[2 * PATH_MAX + 64];
            if (act == ACT_DELETE)
                snprintf(msg, sizeof msg, "deleted %s (%llu bytes)", s.path,
                         (unsigned long long)s.size);
            else
                snprintf(msg, sizeof msg, "%s %s to %s (%llu bytes)", past[act], s.path, dest,
                         (unsigned long long)s.size);
            h->log(ctx, SL_LOG_INFO, msg);
        }
        fs_source_release(&s);
    }
    fs_allow_release(&allow);
    free(targets);
    if (rc < 0)
        return refuse(h, res, list, &e);
    if (n == 1) {
        rc = h->respond_json(res, 200, h->json_at(list, 0));
    } else {
        sl_json *out = h->json_new_object();
        h->json_set(out, "count", h->json_new_number(n));
        h->json_set(out, "files", list);
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

static int files_move(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    return run(ACT_MOVE, ctx, res);
}

static int files_copy(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    return run(ACT_COPY, ctx, res);
}

static int files_delete(const sl_event *event, sl_context *ctx, sl_response *res)
{
    (void)event;
    return run(ACT_DELETE, ctx, res);
}

static const sl_handler_def handlers[] = {
    {"move", files_move},
    {"copy", files_copy},
    {"delete", files_delete},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "files",
    .version = "1.0",
    .handlers = handlers,
};
