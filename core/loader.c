/* loader.c - plugin discovery, dlopen, ABI checks and step binding
 * (see loader.h). Every failure names the file, the symbol or the version
 * involved and what to do about it, then releases what it opened. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "confmap.h"
#include "host.h"
#include "json.h"
#include "path.h"
#include "trust.h"
#include "pipeline.h"
#include "plugin_config.h"

struct loader {
    struct strv folders;
    struct plugin **plugins;
    size_t n;
    struct plugin_instance *instances;
};

/* Descriptor fields past ABI 1's, NULL unless the plugin's size reaches them. */
#define DESC_HAS(p, member) ((p)->abi >= 2 && SL_HAS((p)->desc, sl_plugin, member))

static void instance_free(struct plugin_instance *inst)
{
    struct plugin *p = inst->plugin;
    if (inst->create.done && inst->create.rc == 0 && p->abi >= 2 && p->desc->destroy)
        p->desc->destroy(inst->ptr);
    pthread_mutex_destroy(&inst->create.lock);
    free(inst->config);
    free(inst);
}

int loader_new(const struct strv *folders, struct loader **out, struct err *e)
{
    struct loader *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(e, "out of memory");
    l->folders.v = calloc(folders->n + 1, sizeof(char *));
    if (!l->folders.v)
        goto oom;
    for (size_t i = 0; i < folders->n; i++) {
        if (!(l->folders.v[i] = strdup(folders->v[i])))
            goto oom;
        l->folders.n++;
    }
    *out = l;
    return 0;
oom:
    loader_free(&l);
    return err_set(e, "out of memory");
}

static void plugin_free(struct plugin *p)
{
    if (!p)
        return;
    if (p->init.done && p->init.rc == 0 && p->abi == 1 && p->desc->destroy)
        p->desc->destroy(p->state);
    if (p->dl)
        dlclose(p->dl);
    pthread_mutex_destroy(&p->init.lock);
    free(p->name);
    free(p->path);
    free(p);
}

void loader_free(struct loader **lp)
{
    struct loader *l = *lp;
    if (!l)
        return;
    while (l->instances) { /* before their plugins close */
        struct plugin_instance *next = l->instances->next;
        instance_free(l->instances);
        l->instances = next;
    }
    for (size_t i = 0; i < l->n; i++)
        plugin_free(l->plugins[i]);
    free(l->plugins);
    strv_free(&l->folders);
    free(l);
    *lp = NULL;
}

/* The first of FOLDER/MODULE.so, FOLDER/libMODULE.so over plugin_path. */
static char *find_file(const struct loader *l, const char *module, struct err *e)
{
    char tried[768] = "";
    size_t used = 0;
    for (size_t i = 0; i < l->folders.n; i++) {
        static const char *const patterns[] = {"%s/%s.so", "%s/lib%s.so"};
        for (size_t k = 0; k < 2; k++) {
            char buf[4096];
            snprintf(buf, sizeof buf, patterns[k], l->folders.v[i], module);
            if (access(buf, F_OK) == 0)
                return strdup(buf);
        }
        int w = snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "",
                         l->folders.v[i]);
        if (w > 0 && (size_t)w < sizeof tried - used)
            used += (size_t)w;
    }
    err_set(e, "plugin \"%s\" not found: no %s.so in plugin_path (%s); build it, or add its "
            "folder to \"plugin_path\" in sluice.json", module, module, used ? tried : "empty");
    return NULL;
}

/* The smallest descriptor each ABI version may have. */
static size_t descriptor_min_size(uint32_t abi)
{
    return abi == 1 ? offsetof(sl_plugin, create) : offsetof(sl_plugin, config_keys) +
                                                        sizeof(const sl_config_key *);
}

static int check_descriptor(const sl_plugin *d, const char *module, const char *path,
                            struct err *e)
{
    if (d->abi_version < 1 || d->abi_version > SL_ABI_VERSION)
        return err_set(e, "plugin %s was built for handler ABI version %u, this sluice speaks "
                       "versions 1 to %u: rebuild it against this sluice's "
                       "include/sluice/handler.h (or declare the oldest ABI it needs)", path,
                       d->abi_version, SL_ABI_VERSION);
    if (d->size < descriptor_min_size(d->abi_version))
        return err_set(e, "plugin %s has a descriptor of %u bytes, ABI version %u needs %zu: "
                       "rebuild it against include/sluice/handler.h", path, d->size,
                       d->abi_version, descriptor_min_size(d->abi_version));
    if (!d->name || strcmp(d->name, module) != 0)
        return err_set(e, "plugin %s calls itself \"%s\", but was loaded as \"%s\": the module "
                       "name in the descriptor must match the file name", path,
                       d->name ? d->name : "(null)", module);
    if (!d->handlers)
        return err_set(e, "plugin %s exports no handlers (its descriptor's handlers is NULL)",
                       path);
    return 0;
}

/* Refuse code that other users could have replaced: the file and every
 * folder up to /, after symlinks (issue 21, core/trust.c). */
static int check_trust(const char *path, struct err *e)
{
    return trust_check(path, e);
}

static int plugin_open(struct plugin *p, const char *module, struct err *e)
{
    if (check_trust(p->path, e) < 0)
        return -1;
    if (access(p->path, R_OK) < 0)
        return err_set(e, "cannot read plugin %s: %s", p->path, strerror(errno));
    loader_file_version(p->path, p->version, sizeof p->version);
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl)
        return err_set(e, "cannot load plugin %s: %s", p->path, dlerror());
    p->desc = dlsym(p->dl, SL_PLUGIN_SYMBOL);
    if (!p->desc)
        return err_set(e, "no entry point [%s] in shared library [%s]: is it a sluice plugin? "
                       "export `const sl_plugin %s` with SL_PLUGIN_EXPORT", SL_PLUGIN_SYMBOL,
                       p->path, SL_PLUGIN_SYMBOL);
    if (check_descriptor(p->desc, module, p->path, e) < 0)
        return -1;
    p->abi = p->desc->abi_version;
    p->host = p->abi == 1 ? &host_table_v1 : &host_table;
    return 0;
}

static struct plugin *find_loaded(struct loader *l, const char *module)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->plugins[i]->name, module) == 0)
            return l->plugins[i];
    return NULL;
}

/* Open path as module and keep it. path is taken over (freed on failure). */
static int open_and_keep(struct loader *l, const char *module, char *path, struct plugin **out,
                         struct err *e)
{
    struct plugin *p = calloc(1, sizeof *p);
    if (!p) {
        free(path);
        return err_set(e, "out of memory");
    }
    pthread_mutex_init(&p->init.lock, NULL);
    p->name = strdup(module);
    p->path = path;
    if (!p->name || !p->path || plugin_open(p, module, e) < 0) {
        if (!p->name || !p->path)
            err_set(e, "out of memory");
        plugin_free(p);
        return -1;
    }
    struct plugin **v = realloc(l->plugins, (l->n + 1) * sizeof *v);
    if (!v) {
        plugin_free(p);
        return err_set(e, "out of memory");
    }
    l->plugins = v;
    l->plugins[l->n++] = p;
    *out = p;
    return 0;
}

int loader_open(struct loader *l, const char *module, struct plugin **out, struct err *e)
{
    if ((*out = find_loaded(l, module)))
        return 0;
    char *path = find_file(l, module, e);
    if (!path)
        return -1;
    return open_and_keep(l, module, path, out, e);
}

int loader_open_file(struct loader *l, const char *module, const char *path,
                     struct plugin **out, struct err *e)
{
    if ((*out = find_loaded(l, module)))
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return err_set(e, "out of memory");
    return open_and_keep(l, module, copy, out, e);
}

void loader_file_id(const char *path, struct loader_file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) < 0)
        return;
    id->present = true;
    id->mtime_s = (int64_t)st.st_mtim.tv_sec;
    id->mtime_ns = (long)st.st_mtim.tv_nsec;
    id->size = (int64_t)st.st_size;
    id->ino = (uint64_t)st.st_ino;
}

bool loader_file_id_equal(const struct loader_file_id *a, const struct loader_file_id *b)
{
    return a->present == b->present && a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
           a->size == b->size && a->ino == b->ino;
}

void loader_file_id_text(const struct loader_file_id *id, char *out, size_t len)
{
    if (!id->present)
        snprintf(out, len, "missing");
    else
        snprintf(out, len, "%lld.%09ld-%lld-%llu", (long long)id->mtime_s, id->mtime_ns,
                 (long long)id->size, (unsigned long long)id->ino);
}

void loader_file_version(const char *path, char *out, size_t len)
{
    struct loader_file_id id;
    loader_file_id(path, &id);
    loader_file_id_text(&id, out, len);
}

sl_handler_fn loader_find(const struct plugin *p, const char *function, struct err *e)
{
    char names[512] = "";
    size_t used = 0;
    for (const sl_handler_def *h = p->desc->handlers; h->name; h++) {
        if (strcmp(h->name, function) == 0 && h->fn)
            return h->fn;
        int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", h->name);
        if (w > 0 && (size_t)w < sizeof names - used)
            used += (size_t)w;
    }
    err_set(e, "plugin \"%s\" (%s) has no handler \"%s\"; it has: %s", p->name, p->path,
            function, used ? names : "none");
    return NULL;
}

int loader_bind_pipeline(struct loader *l, struct pipeline *pl, struct diag *d)
{
    int errors = 0;
    for (size_t i = 0; i < pl->n_steps; i++) {
        struct step *s = &pl->steps[i];
        if (s->runtime != RUNTIME_C)
            continue; /* scripts load in their interpreter */
        struct err e;
        sl_handler_fn fn = NULL;
        if (loader_open(l, s->module, &s->plugin, &e) == 0)
            fn = loader_find(s->plugin, s->function, &e);
        if (!fn) {
            diag_error(d, pl->file, "steps[%zu] (%s): %s", i, s->name, e.msg);
            errors++;
            continue;
        }
        s->fn = (void *)fn;
        if (loader_instance(l, s, i, pl->file, d) < 0)
            errors++;
    }
    return errors ? -1 : 0;
}

int loader_instance(struct loader *l, struct step *s, size_t i, const char *file,
                    struct diag *d)
{
    struct plugin *p = s->plugin;
    char where[300];
    snprintf(where, sizeof where, "steps[%zu] (%s).config", i, s->name);
    const sl_config_key *keys = DESC_HAS(p, config_keys) ? p->desc->config_keys : NULL;
    char *merged = NULL;
    if (plugin_config_check(keys, s->config_json, file, where, d, &merged) != 0)
        return -1;
    struct plugin_instance *inst = calloc(1, sizeof *inst);
    if (!inst) {
        free(merged);
        diag_error(d, file, "%s: out of memory", where);
        return -1;
    }
    pthread_mutex_init(&inst->create.lock, NULL);
    inst->plugin = p;
    inst->config = merged;
    inst->next = l->instances;
    l->instances = inst;
    s->instance = inst;
    return 0;
}

/* Run fn once under o's lock (what) and keep its outcome; *ms is how long
 * this call took running it, else -1. Returns the outcome. */
static int once_run(struct run_once *o, int (*fn)(void *arg, char *err, size_t errlen),
                    void *arg, const char *what, double *ms)
{
    *ms = -1;
    pthread_mutex_lock(&o->lock);
    if (!o->done) {
        int64_t t0 = clock_mono_ns();
        o->rc = fn(arg, o->err, sizeof o->err);
        *ms = (double)(clock_mono_ns() - t0) / 1e6;
        o->done = true;
        o->err[sizeof o->err - 1] = '\0';
        if (o->rc != 0 && !o->err[0])
            snprintf(o->err, sizeof o->err, "%s returned %d", what, o->rc);
    }
    int rc = o->rc;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* ABI 2: the plugin's create with the step's config. */
static int instance_create(void *arg, char *err, size_t errlen)
{
    struct plugin_instance *inst = arg;
    struct plugin *p = inst->plugin;
    if (!DESC_HAS(p, create) || !p->desc->create)
        return 0;
    size_t at;
    cJSON *cfg = json_parse_strict(inst->config, strlen(inst->config), &at, NULL);
    int rc = p->desc->create(p->host, (const sl_json *)cfg, &inst->ptr, err, errlen);
    cJSON_Delete(cfg);
    return rc;
}

int instance_ensure(struct plugin_instance *inst, double *init_ms, struct err *e)
{
    struct plugin *p = inst->plugin;
    if (p->abi == 1)
        return plugin_ensure_init(p, init_ms, e);
    if (once_run(&inst->create, instance_create, inst, "create", init_ms) != 0)
        return err_set(e, "plugin \"%s\" failed to create its instance: %s", p->name,
                       inst->create.err);
    return 0;
}

void *instance_object(const struct plugin_instance *inst)
{
    return inst->plugin->abi == 1 ? inst->plugin->state : inst->ptr;
}

int loader_bind_set(struct loader *l, struct pipeline_set *set, struct diag *d)
{
    int rc = 0;
    for (size_t i = 0; i < set->n; i++)
        if (loader_bind_pipeline(l, set->v[i], d) < 0)
            rc = -1;
    return rc;
}

/* ABI 1: the plugin's init, once per process. */
static int plugin_init_v1(void *arg, char *err, size_t errlen)
{
    struct plugin *p = arg;
    if (p->abi != 1 || !p->desc->init_v1)
        return 0;
    return p->desc->init_v1(p->host, &p->state, err, errlen);
}

int plugin_ensure_init(struct plugin *p, double *init_ms, struct err *e)
{
    if (once_run(&p->init, plugin_init_v1, p, "init", init_ms) != 0)
        return err_set(e, "plugin \"%s\" failed to initialise: %s", p->name, p->init.err);
    return 0;
}
