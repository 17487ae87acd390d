/* loader.h - finds, dlopens and checks handler plugins, and binds pipeline
 * steps ("MODULE.FUNCTION") to the handlers they name.
 *
 * A plugin is opened once per process with RTLD_NOW|RTLD_LOCAL, so a missing
 * symbol fails at load, not mid-pipeline. Its descriptor may declare any ABI
 * version up to this host's; the loader reads only the descriptor fields its
 * size covers and hands it the host table of its version.
 *
 * Each bound step gets an instance (Lambda's init phase): an ABI 2 plugin's
 * create runs with the step's config, once per step per process, lazily
 * before its first invocation (workers: before READY); an ABI 1 plugin's
 * init runs once per process and its state is every step's instance. The
 * time it took is that invocation's cold start. The loader owns instances
 * and destroys them before it closes the plugins.
 */
#ifndef SLUICE_LOADER_H
#define SLUICE_LOADER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "err.h"
#include "sluice/handler.h"

struct pipeline;
struct pipeline_set;
struct step;
struct strv;

/* Something that runs once per process (an init, a create), its outcome
 * kept for every later caller. */
struct run_once {
    pthread_mutex_t lock;
    bool done;
    int rc;
    char err[512];
};

struct plugin {
    char *name;
    char *path;
    char version[64];           /* "mtime-size" of the file that was loaded */
    void *dl;
    const sl_plugin *desc;
    uint32_t abi;               /* the ABI version the plugin declares */
    const sl_host *host;        /* the host table of that version */
    struct run_once init;       /* ABI 1's init */
    void *state;                /* from init */
};

/* One step's instance of its plugin. */
struct plugin_instance {
    struct plugin *plugin;
    char *config;               /* the step's config, defaults filled in */
    struct run_once create;
    void *ptr;                  /* from create (ABI 2) */
    struct plugin_instance *next;
};

struct loader;

/* folders: the plugin_path (copied). */
int loader_new(const struct strv *folders, struct loader **out, struct err *e);
/* Runs every initialised plugin's destroy, then dlcloses. */
void loader_free(struct loader **l);

/* Open MODULE (once; later calls return the same plugin). */
int loader_open(struct loader *l, const char *module, struct plugin **out, struct err *e);
/* Open MODULE from exactly this file (worker processes use the file the
 * daemon resolved). */
int loader_open_file(struct loader *l, const char *module, const char *path,
                     struct plugin **out, struct err *e);
/* What a file is as far as mtime, size and inode tell: replacing a plugin
 * changes it. Comparing two costs no formatting (checked before every
 * attempt for hot reload). */
struct loader_file_id {
    bool present;
    int64_t mtime_s;
    long mtime_ns;
    int64_t size;
    uint64_t ino;
};
void loader_file_id(const char *path, struct loader_file_id *id);
bool loader_file_id_equal(const struct loader_file_id *a, const struct loader_file_id *b);
/* The id as text, "mtime-size-inode" or "missing" (invocations.plugin_version). */
void loader_file_id_text(const struct loader_file_id *id, char *out, size_t len);
/* loader_file_id, then its text. */
void loader_file_version(const char *path, char *out, size_t len);
/* The handler FUNCTION of plugin p, or NULL with a message listing those it has. */
sl_handler_fn loader_find(const struct plugin *p, const char *function, struct err *e);

/* A new instance of s->plugin for step s (index i of the pipeline in file),
 * its config checked against the plugin's declared keys: problems go to d
 * as "file: steps[i] (name).config...". Sets s->instance. */
int loader_instance(struct loader *l, struct step *s, size_t i, const char *file,
                    struct diag *d);
/* Create inst if that has not happened yet. Returns 0 if it exists (now or
 * before); *init_ms is how long this call took to create it, else -1. */
int instance_ensure(struct plugin_instance *inst, double *init_ms, struct err *e);
/* What handlers get as ctx->instance once instance_ensure succeeded: create's
 * instance, or an ABI 1 plugin's init state. */
void *instance_object(const struct plugin_instance *inst);

/* Bind every step of p: errors go to d as "file: steps[i] (name): message". */
int loader_bind_pipeline(struct loader *l, struct pipeline *p, struct diag *d);
int loader_bind_set(struct loader *l, struct pipeline_set *set, struct diag *d);

/* Run an ABI 1 plugin's init once (ABI 2: nothing to do). Returns 0 if it
 * succeeded (now or before); *init_ms is set to how long it took when this
 * call ran it, else -1. */
int plugin_ensure_init(struct plugin *p, double *init_ms, struct err *e);

#endif
