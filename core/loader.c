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
#include "path.h"
#include "trust.h"
#include "pipeline.h"

struct loader {
    struct strv folders;
    struct plugin **plugins;
    size_t n;
};

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
    if (p->init_done && p->init_rc == 0 && p->desc->destroy)
        p->desc->destroy(p->state);
    if (p->dl)
        dlclose(p->dl);
    pthread_mutex_destroy(&p->init_lock);
    free(p->name);
    free(p->path);
    free(p);
}

void loader_free(struct loader **lp)
{
    struct loader *l = *lp;
    if (!l)
        return;
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

static int check_descriptor(const sl_plugin *d, const char *module, const char *path,
                            struct err *e)
{
    if (d->abi_version != SL_ABI_VERSION)
        return err_set(e, "plugin %s was built for handler ABI version %u, this sluice speaks "
                       "version %u: rebuild it against this sluice's include/sluice/handler.h",
                       path, d->abi_version, SL_ABI_VERSION);
    if (d->size < sizeof(sl_plugin))
        return err_set(e, "plugin %s has a descriptor of %u bytes, ABI version %u needs %zu: "
                       "rebuild it against include/sluice/handler.h", path, d->size,
                       SL_ABI_VERSION, sizeof(sl_plugin));
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
    return check_descriptor(p->desc, module, p->path, e);
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
    pthread_mutex_init(&p->init_lock, NULL);
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
    }
    return errors ? -1 : 0;
}

int loader_bind_set(struct loader *l, struct pipeline_set *set, struct diag *d)
{
    int rc = 0;
    for (size_t i = 0; i < set->n; i++)
        if (loader_bind_pipeline(l, set->v[i], d) < 0)
            rc = -1;
    return rc;
}

int plugin_ensure_init(struct plugin *p, const sl_host *host, double *init_ms, struct err *e)
{
    *init_ms = -1;
    pthread_mutex_lock(&p->init_lock);
    if (!p->init_done) {
        int64_t t0 = clock_mono_ns();
        p->init_rc = 0;
        if (p->desc->init)
            p->init_rc = p->desc->init(host, &p->state, p->init_err, sizeof p->init_err);
        *init_ms = (double)(clock_mono_ns() - t0) / 1e6;
        p->init_done = true;
        if (p->init_rc != 0 && !p->init_err[0])
            snprintf(p->init_err, sizeof p->init_err, "init returned %d", p->init_rc);
    }
    int rc = p->init_rc;
    pthread_mutex_unlock(&p->init_lock);
    if (rc != 0)
        return err_set(e, "plugin \"%s\" failed to initialise: %s", p->name, p->init_err);
    return 0;
}
