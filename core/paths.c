/* paths.c - install-relative or build-tree folders (see paths.h). Resolved
 * once per process, on first use, from /proc/self/exe. */
#include "paths.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SLUICE_PLUGIN_DIR
#define SLUICE_PLUGIN_DIR "plugins"
#endif
#ifndef SLUICE_RUNTIME_DIR
#define SLUICE_RUNTIME_DIR "runtimes"
#endif
#ifndef SLUICE_REL_PLUGINDIR
#define SLUICE_REL_PLUGINDIR "../lib/sluice/plugins"
#endif
#ifndef SLUICE_REL_WORKERDIR
#define SLUICE_REL_WORKERDIR "../libexec/sluice"
#endif
#ifndef SLUICE_REL_RUNTIMEDIR
#define SLUICE_REL_RUNTIMEDIR "../share/sluice/runtimes"
#endif

#define WORKER_EXE "sluice-worker"

static struct {
    pthread_once_t once;
    bool installed;
    char exe_dir[PATH_MAX];
    char plugin_dir[PATH_MAX];
    char runtime_dir[PATH_MAX];
    char worker_dir[PATH_MAX];
    char py_boot[PATH_MAX + 32], js_boot[PATH_MAX + 32];
} P = {.once = PTHREAD_ONCE_INIT};

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "dir/rel" normalised through realpath when it exists, else as joined. */
static void below(char out[PATH_MAX], const char *dir, const char *rel)
{
    char joined[PATH_MAX * 2];
    snprintf(joined, sizeof joined, "%s/%s", dir, rel);
    if (!realpath(joined, out))
        snprintf(out, PATH_MAX, "%.*s", PATH_MAX - 1, joined);
}

static void resolve(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(P.exe_dir, sizeof P.exe_dir, "%s", slash ? exe : ".");
    char runtimes[PATH_MAX];
    below(runtimes, P.exe_dir, SLUICE_REL_RUNTIMEDIR);
    P.installed = is_dir(runtimes);
    if (P.installed) {
        snprintf(P.runtime_dir, sizeof P.runtime_dir, "%s", runtimes);
        below(P.plugin_dir, P.exe_dir, SLUICE_REL_PLUGINDIR);
        below(P.worker_dir, P.exe_dir, SLUICE_REL_WORKERDIR);
    } else {
        snprintf(P.runtime_dir, sizeof P.runtime_dir, "%s", SLUICE_RUNTIME_DIR);
        snprintf(P.plugin_dir, sizeof P.plugin_dir, "%s", SLUICE_PLUGIN_DIR);
        snprintf(P.worker_dir, sizeof P.worker_dir, "%s", P.exe_dir);
    }
    snprintf(P.py_boot, sizeof P.py_boot, "%s/python/bootstrap.py", P.runtime_dir);
    snprintf(P.js_boot, sizeof P.js_boot, "%s/node/bootstrap.js", P.runtime_dir);
}

bool paths_installed(void)
{
    pthread_once(&P.once, resolve);
    return P.installed;
}

const char *paths_plugin_dir(void)
{
    pthread_once(&P.once, resolve);
    return P.plugin_dir;
}

const char *paths_runtime_dir(void)
{
    pthread_once(&P.once, resolve);
    return P.runtime_dir;
}

const char *paths_python_bootstrap(void)
{
    pthread_once(&P.once, resolve);
    return P.py_boot;
}

const char *paths_node_bootstrap(void)
{
    pthread_once(&P.once, resolve);
    return P.js_boot;
}

static const char *worker_program(const char *name, char *buf, size_t len)
{
    pthread_once(&P.once, resolve);
    int n = snprintf(buf, len, "%s/%s", P.worker_dir, name);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

const char *paths_worker_exe(char *buf, size_t len)
{
    return worker_program(WORKER_EXE, buf, len);
}

const char *paths_runtime_api_exe(char *buf, size_t len)
{
    return worker_program("sluice-runtime-api", buf, len);
}
