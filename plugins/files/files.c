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
 * followed. The config becomes an instance once per step (create); the rules
 * that depend on the handler (delete takes no "to") are checked per call,
 * since one config may serve any of the three.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/handler.h>

#include "files_fs.h"

enum action { ACT_MOVE, ACT_COPY, ACT_DELETE };

static const char *const verbs[] = {"move", "copy", "delete"};
static const char *const past[] = {"moved", "copied", "deleted"};

struct files_config {
    struct fs_folders allow;
    char *to;                   /* NULL if absent */
    char *pointer;              /* config.path, or NULL: look in the usual places */
    enum fs_exists exists;
    int exists_given;           /* config.if_exists was set */
    int keep_subfolders;
};

/* --- config ------------------------------------------------------------ */

static void files_destroy(void *instance)
{
    struct files_config *c = instance;
    if (!c)
        return;
    fs_folders_free(&c->allow);
    free(c->to);
    free(c->pointer);
    free(c);
}

static char *copy_of(const char *s, int *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

/* The step's config; the host checked its keys and their types. */
static int read_config(const sl_host *h, const sl_json *cfg, struct files_config *c,
                       char *err, size_t errlen)
{
    int oom = 0;
    if (fs_folders_from_config(h, h->json_get(cfg, "/allow"), &c->allow, err, errlen) < 0)
        return -1;
    if (c->allow.n == 0)
        return snprintf(err, errlen, "config.allow must list the folders files may act in "
                        "(1 to %d), e.g. \"allow\": [\"var/inbox/archive\"]; files outside "
                        "them are refused", FS_FOLDERS_MAX), -1;
    const char *to = h->json_string(h->json_get(cfg, "/to"));
    if (to && !*to)
        return snprintf(err, errlen, "config.to must name a folder, e.g. \"to\": \"var/done\" "
                        "(created if missing)"), -1;
    c->to = copy_of(to, &oom);
    const char *pointer = h->json_string(h->json_get(cfg, "/path"));
    if (pointer && *pointer && *pointer != '/')
        return snprintf(err, errlen, "config.path must be a JSON pointer to the file's path in "
                        "the event, e.g. \"path\": \"/input\""), -1;
    c->pointer = copy_of(pointer, &oom);
    const char *exists = h->json_string(h->json_get(cfg, "/if_exists"));
    c->exists_given = exists != NULL;
    if (!exists || strcmp(exists, "rename") == 0)
        c->exists = FS_EXISTS_RENAME;
    else if (strcmp(exists, "overwrite") == 0)
        c->exists = FS_EXISTS_OVERWRITE;
    else if (strcmp(exists, "fail") == 0)
        c->exists = FS_EXISTS_FAIL;
    else
        return snprintf(err, errlen, "config.if_exists must be \"rename\" (name-1.ext, the "
                        "default), \"overwrite\" or \"fail\""), -1;
    c->keep_subfolders = h->json_type(h->json_get(cfg, "/keep_subfolders")) == SL_JSON_TRUE;
    return oom ? snprintf(err, errlen, "out of memory"), -1 : 0;
}

static int files_create(const sl_host *h, const sl_json *cfg, void **instance, char *err,
                        size_t errlen)
{
    struct files_config *c = calloc(1, sizeof *c);
    if (!c)
        return snprintf(err, errlen, "out of memory"), -1;
    if (read_config(h, cfg, c, err, errlen) < 0) {
        files_destroy(c);
        return -1;
    }
    *instance = c;
    return 0;
}

/* What only some handlers take. */
static int check_action(const sl_host *h, const struct files_config *c, enum action act,
                        sl_response *res)
{
    const char *verb = verbs[act];
    if (act == ACT_DELETE && c->to)
        return h->failf(res, "ConfigError", "config.to makes no sense for files.delete (did you "
                        "mean files.move?)");
    if (act == ACT_DELETE && c->exists_given)
        return h->failf(res, "ConfigError", "config.if_exists makes no sense for files.delete");
    if (act != ACT_DELETE && !c->to)
        return h->failf(res, "ConfigError", "config.to must name the folder to %s files into, "
                        "e.g. \"to\": \"var/done\" (created if missing)", verb);
    return 0;
}

/* --- the event --------------------------------------------------------- */

struct target {
    const char *path;
    const char *key;            /* the S3 key, when the event has one */
};

/* Collect up to max paths from the event into t. Returns how many, or -1
 * with the failure set in res. */
static int find_paths(const sl_host *h, const sl_context *ctx, const struct files_config *c,
                      struct target *t, size_t max, sl_response *res)
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
                    return h->failf(res, "InvalidEvent", "the event's %s/%zu (config.path) is not a "
                                 "string", c->pointer, i);
                t[n++] = (struct target){s, NULL};
            }
            return (int)n;
        }
        return h->failf(res, "InvalidEvent", "the event has no file path at %s (config.path): "
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
                return h->failf(res, "InvalidEvent", "the event's %s is missing", what);
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
    return h->failf(res, "InvalidEvent", "the event names no file: expected Records[].s3.object.path "
                 "(a directory trigger's event), files[].path (checksum.handler's response) or "
                 "a top-level \"path\"; or point config.path at it");
}

/* --- handlers ---------------------------------------------------------- */

static int expired(void *arg)
{
    const sl_context *ctx = arg;
    return ctx->host->remaining_ms(ctx) <= 0;
}

#define MAX_TARGETS 1000

/* Act on one target; its result goes into w. */
static int act_on(const sl_context *ctx, enum action act, const struct fs_allow *allow,
                  const struct target *t, sl_writer *w, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct files_config *c = ctx->instance;
    struct fs_error e = {0};
    struct fs_source s;
    char dest[PATH_MAX] = "";
    if (fs_source_open(allow, t->path, verbs[act], &s, &e) < 0)
        return h->failf(res, e.type, "%s", e.msg);
    int rc = act == ACT_DELETE ? fs_delete(&s, &e)
                               : fs_transfer(&s, c->to, c->keep_subfolders, act == ACT_COPY,
                                             c->exists, expired, (void *)ctx, dest, &e);
    if (rc < 0) {
        fs_source_release(&s);
        return h->failf(res, e.type, "%s", e.msg);
    }
    h->write_object(w);
    h->write_key(w, "action", 6);
    h->write_string(w, verbs[act], strlen(verbs[act]));
    h->write_key(w, "source", 6);
    h->write_string(w, s.path, strlen(s.path));
    if (act != ACT_DELETE) {
        h->write_key(w, "destination", 11);
        h->write_string(w, dest, strlen(dest));
        h->write_key(w, "path", 4);
        h->write_string(w, dest, strlen(dest));
    }
    h->write_key(w, "bytes", 5);
    h->write_int(w, (int64_t)s.size);
    if (t->key) {
        h->write_key(w, "key", 3);
        h->write_string(w, t->key, strlen(t->key));
    }
    h->write_close(w);
    if (act == ACT_DELETE)
        h->logf(ctx, SL_LOG_INFO, "deleted %s (%llu bytes)", s.path, (unsigned long long)s.size);
    else
        h->logf(ctx, SL_LOG_INFO, "%s %s to %s (%llu bytes)", past[act], s.path, dest,
                (unsigned long long)s.size);
    fs_source_release(&s);
    return 0;
}

#define MAX_TARGETS 1000

static int run(enum action act, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct files_config *c = ctx->instance;
    if (check_action(h, c, act, res) < 0)
        return 1;
    struct target *targets = calloc(MAX_TARGETS, sizeof *targets);
    if (!targets)
        return h->failf(res, "InternalError", "out of memory");
    int n = find_paths(h, ctx, c, targets, MAX_TARGETS, res);
    struct fs_allow allow;
    struct fs_error e = {0};
    if (n < 0 || fs_allow_init(&allow, (const char *const *)c->allow.v, c->allow.n, &e) < 0) {
        free(targets);
        return n < 0 ? 1 : h->failf(res, e.type, "%s", e.msg);
    }
    /* one file: its object; several: {"count": N, "files": [...]} */
    sl_writer *w = h->writer_begin(res);
    if (n != 1) {
        h->write_object(w);
        h->write_key(w, "count", 5);
        h->write_int(w, n);
        h->write_key(w, "files", 5);
        h->write_array(w);
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = act_on(ctx, act, &allow, &targets[i], w, res);
    fs_allow_release(&allow);
    free(targets);
    if (n != 1) {
        h->write_close(w);
        h->write_close(w);
    }
    if (rc < 0) {
        h->writer_end(w, 200); /* discarded: incomplete */
        return 1;
    }
    if (h->writer_end(w, 200) < 0)
        return h->failf(res, "InternalError", "cannot set the response (out of memory?)");
    return 0;
}

static int files_move(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    return run(ACT_MOVE, ctx, res);
}

static int files_copy(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    return run(ACT_COPY, ctx, res);
}

static int files_delete(const sl_event *event, const sl_context *ctx, sl_response *res)
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

static const sl_config_key config_keys[] = {
    {"allow", SL_CONFIG_STRINGS, 1, NULL, "the folders the file must be in, e.g. "
     "[\"var/inbox/archive\"]"},
    {"to", SL_CONFIG_STRING, 0, NULL, "move and copy: the folder the file goes to"},
    {"path", SL_CONFIG_STRING, 0, NULL, "a JSON pointer to the file's path in the event"},
    {"if_exists", SL_CONFIG_STRING, 0, NULL, "\"rename\" (the default), \"overwrite\" or "
     "\"fail\""},
    {"keep_subfolders", SL_CONFIG_BOOL, 0, "false", "keep the file's subfolder below \"to\""},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "files",
    .version = "2.0",
    .handlers = handlers,
    .destroy = files_destroy,
    .create = files_create,
    .config_keys = config_keys,
};
