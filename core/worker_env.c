/* worker_env.c - a worker's environment from scratch (see worker_env.h). */
#include "worker_env.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#ifndef SLUICE_RUNTIME_DIR
#define SLUICE_RUNTIME_DIR "runtimes"
#endif

#define LAMBDA_DEFAULT_MEMORY_MB 128

struct env {
    char **v;
    size_t n, cap;
    int failed;
};

/* Set name=value, replacing an earlier value of name. */
static void env_put(struct env *e, const char *name, const char *value)
{
    size_t nl = strlen(name), len = nl + strlen(value) + 2;
    char *kv = malloc(len);
    if (!kv) {
        e->failed = 1;
        return;
    }
    snprintf(kv, len, "%s=%s", name, value);
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], name, nl) == 0 && e->v[i][nl] == '=') {
            free(e->v[i]);
            e->v[i] = kv;
            return;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 32;
        char **v = realloc(e->v, cap * sizeof *v);
        if (!v) {
            free(kv);
            e->failed = 1;
            return;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
}

/* "NAME=value" strings, as the pipeline parser keeps them. */
static void env_put_all(struct env *e, const struct strv *kvs)
{
    for (size_t i = 0; i < kvs->n; i++) {
        const char *eq = strchr(kvs->v[i], '=');
        if (!eq)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - kvs->v[i]), kvs->v[i]);
        env_put(e, name, eq + 1);
    }
}

/* A search path being built: entries joined with ':'. */
struct path_list {
    char *s;
    size_t len;
};

static void path_add(struct path_list *l, const char *dir)
{
    size_t n = strlen(dir);
    char *s = realloc(l->s, l->len + n + 2);
    if (!s)
        return;
    if (l->len)
        s[l->len++] = ':';
    memcpy(s + l->len, dir, n + 1);
    l->s = s;
    l->len += n;
}

/* Every existing folder matching pattern, sorted (glob's order). */
static void path_add_glob(struct path_list *l, const char *pattern)
{
    glob_t g;
    if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            path_add(l, g.gl_pathv[i]);
    globfree(&g);
}

static void path_add_fmt(struct path_list *l, bool glob_it, const char *a, const char *b)
{
    char buf[4200];
    snprintf(buf, sizeof buf, "%s%s", a, b);
    if (glob_it)
        path_add_glob(l, buf);
    else
        path_add(l, buf);
}

/* Lambda's PYTHONPATH: (the task root, which the runtime puts first,) then
 * vendor/ and python/ beside each handler, then each layer's
 * python/lib/python3.X/site-packages and python/. */
static void python_path(struct env *e, const struct pipeline *p)
{
    struct path_list l = {0};
    for (size_t i = 0; i < p->n_steps; i++) {
        const struct step *s = &p->steps[i];
        if (s->runtime != RUNTIME_PYTHON || !s->code)
            continue;
        path_add_fmt(&l, true, s->code, "/vendor");
        path_add_fmt(&l, true, s->code, "/python");
    }
    for (size_t i = 0; i < p->layers.n; i++) {
        path_add_fmt(&l, true, p->layers.v[i], "/python/lib/python3*/site-packages");
        path_add_fmt(&l, false, p->layers.v[i], "/python");
    }
    if (l.s)
        env_put(e, "PYTHONPATH", l.s);
    free(l.s);
}

/* Lambda's NODE_PATH: each layer's nodejs/nodeNN/node_modules and
 * nodejs/node_modules; node_modules beside the handler is found by Node's
 * own lookup, and the runtime adds the task roots last. */
static void node_path(struct env *e, const struct pipeline *p)
{
    struct path_list l = {0};
    for (size_t i = 0; i < p->layers.n; i++) {
        path_add_fmt(&l, true, p->layers.v[i], "/nodejs/node[0-9]*/node_modules");
        path_add_fmt(&l, false, p->layers.v[i], "/nodejs/node_modules");
    }
    if (l.s)
        env_put(e, "NODE_PATH", l.s);
    free(l.s);
}

int worker_env_memory_mb(const struct pipeline *p)
{
    return p->limits.memory_mb > 0 ? p->limits.memory_mb : LAMBDA_DEFAULT_MEMORY_MB;
}

/* Lambda's log stream name: DATE/[$LATEST]32 hex digits. */
static void log_stream_name(char *out, size_t len)
{
    unsigned char r[16] = {0};
    if (getrandom(r, sizeof r, 0) != sizeof r)
        r[0] = (unsigned char)time(NULL);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[16];
    strftime(date, sizeof date, "%Y/%m/%d", &tm);
    snprintf(out, len, "%s/[$LATEST]%s", date, hex);
}

cJSON *worker_env_step(const struct pipeline *p, const struct step *s)
{
    (void)p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "AWS_LAMBDA_FUNCTION_NAME", s->handler);
    cJSON_AddStringToObject(o, "_HANDLER", s->handler);
    if (s->code)
        cJSON_AddStringToObject(o, "LAMBDA_TASK_ROOT", s->code);
    for (size_t i = 0; i < s->environment.n; i++) {
        const char *kv = s->environment.v[i], *eq = strchr(kv, '=');
        char name[256];
        if (!eq)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
        cJSON_AddStringToObject(o, name, eq + 1);
    }
    return o;
}

char **worker_env_build(const struct pipeline *p, enum runtime kind)
{
    struct env e = {0};
    env_put(&e, "PATH", "/usr/local/bin:/usr/bin:/bin");
    env_put(&e, "LANG", "C.UTF-8");
    env_put(&e, "TZ", ":UTC");
    for (size_t i = 0; i < p->pass_env.n; i++) {
        const char *v = getenv(p->pass_env.v[i]);
        if (v)
            env_put(&e, p->pass_env.v[i], v);
    }
    /* a C worker is sluice's own program: a sanitizer build's settings
     * (tests, debugging) go with it, as they went with the daemon */
    static const char *const sanitizer[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                            "TSAN_OPTIONS",
                                            NULL};
    for (size_t i = 0; kind == RUNTIME_C && sanitizer[i]; i++)
        if (getenv(sanitizer[i]))
            env_put(&e, sanitizer[i], getenv(sanitizer[i]));
    const struct step *first = NULL;
    for (size_t i = 0; i < p->n_steps && !first; i++)
        if (p->steps[i].runtime == kind)
            first = &p->steps[i];
    char buf[128];
    env_put(&e, "AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    snprintf(buf, sizeof buf, "%d", worker_env_memory_mb(p));
    env_put(&e, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", buf);
    env_put(&e, "AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    env_put(&e, "AWS_REGION", p->region ? p->region : "local");
    env_put(&e, "AWS_DEFAULT_REGION", p->region ? p->region : "local");
    env_put(&e, "AWS_EXECUTION_ENV", kind == RUNTIME_PYTHON ? "sluice_python3"
                                     : kind == RUNTIME_NODE ? "sluice_nodejs" : "sluice_c");
    env_put(&e, "LAMBDA_RUNTIME_DIR", SLUICE_RUNTIME_DIR);
    char group[300];
    snprintf(group, sizeof group, "/sluice/%s", p->name);
    env_put(&e, "AWS_LAMBDA_LOG_GROUP_NAME", group);
    log_stream_name(buf, sizeof buf);
    env_put(&e, "AWS_LAMBDA_LOG_STREAM_NAME", buf);
    if (kind == RUNTIME_PYTHON)
        python_path(&e, p);
    else if (kind == RUNTIME_NODE)
        node_path(&e, p);
    env_put_all(&e, &p->environment);
    if (first) {
        env_put(&e, "AWS_LAMBDA_FUNCTION_NAME", first->handler);
        env_put(&e, "_HANDLER", first->handler);
        if (first->code)
            env_put(&e, "LAMBDA_TASK_ROOT", first->code);
        /* the script runtimes put each step's own "environment" on top per
         * invocation, over this pipeline-wide base; a C worker's steps share it */
        if (kind == RUNTIME_C)
            env_put_all(&e, &first->environment);
    }
    if (e.failed || !e.v) {
        worker_env_free(e.v);
        return NULL;
    }
    return e.v;
}

void worker_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}
