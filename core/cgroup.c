/* cgroup.c - a cgroup v2 per worker (see cgroup.h). */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CPU_PERIOD_US 100000
static const char *const needed[] = {"pids", "memory", "cpu"};

struct cgroup {
    char dir[PATH_MAX];
};

struct cgroup_worker {
    char path[PATH_MAX];
    int procs_fd;
};

static int read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

/* Does a space-separated list ("cpu memory pids", or "+cpu" as written to a
 * fake folder) hold word? */
static int has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\n' || *p == '+')
            p++;
        size_t n = strcspn(p, " \n");
        if (n == wl && strncmp(p, word, wl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

int cgroup_find(const char *mount, const char *proc_file, char *out, size_t len, struct err *e)
{
    char buf[4096], probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/cgroup.controllers", mount);
    if (access(probe, R_OK) != 0)
        return err_set(e, "cgroup v2 is not mounted at %s (%s)", mount, strerror(errno));
    if (read_text(proc_file, buf, sizeof buf) < 0)
        return err_set(e, "%s: %s", proc_file, strerror(errno));
    char *line = strstr(buf, "0::");
    if (!line || (line != buf && line[-1] != '\n'))
        return err_set(e, "%s has no cgroup v2 line (0::)", proc_file);
    line += 3;
    line[strcspn(line, "\n")] = '\0';
    char *slash = strrchr(line, '/');
    if (!slash || slash == line)
        return err_set(e, "the daemon runs in the root cgroup (%s), which it does not manage",
                       *line ? line : "/");
    *slash = '\0';
    int n = snprintf(out, len, "%s%s", mount, line);
    if (n < 0 || (size_t)n >= len)
        return err_set(e, "cgroup path too long");
    return 0;
}

int cgroup_open(const char *dir, struct cgroup **out, struct err *e)
{
    *out = NULL;
    char path[PATH_MAX], have[1024], on[1024];
    snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
    if (read_text(path, have, sizeof have) < 0)
        return err_set(e, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++)
        if (!has_word(have, needed[i]))
            return err_set(e, "%s does not offer the %s controller (delegate it: systemd "
                           "Delegate=yes)", path, needed[i]);
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    if (read_text(path, on, sizeof on) < 0)
        return err_set(e, "%s: %s", path, strerror(errno));
    if (!has_word(on, "pids") || !has_word(on, "memory") || !has_word(on, "cpu")) {
        if (write_text(path, "+pids +memory +cpu") < 0)
            return err_set(e, "cannot enable pids, memory and cpu in %s: %s (is the daemon "
                           "in a leaf cgroup of its own? systemd: DelegateSubgroup=)", path,
                           strerror(errno));
    }
    struct cgroup *cg = calloc(1, sizeof *cg);
    if (!cg)
        return err_set(e, "out of memory");
    snprintf(cg->dir, sizeof cg->dir, "%s", dir);
    *out = cg;
    return 0;
}

void cgroup_free(struct cgroup **cg)
{
    free(*cg);
    *cg = NULL;
}

static int write_limit(const char *dir, const char *file, const char *value, struct err *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (write_text(path, value) < 0)
        return err_set(e, "%s: %s", path, strerror(errno));
    return 0;
}

int cgroup_worker_new(struct cgroup *cg, const char *name, const struct limits *l,
                      struct cgroup_worker **out, struct err *e)
{
    static atomic_uint serial;
    *out = NULL;
    struct cgroup_worker *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, "out of memory");
    w->procs_fd = -1;
    int n = snprintf(w->path, sizeof w->path, "%s/sluice-%s-%u", cg->dir, name,
                     atomic_fetch_add(&serial, 1));
    if (n < 0 || (size_t)n >= sizeof w->path) {
        free(w);
        return err_set(e, "cgroup path too long");
    }
    if (mkdir(w->path, 0755) < 0) {
        err_set(e, "%s: %s", w->path, strerror(errno));
        free(w);
        return -1;
    }
    char pids[32] = "max", mem[32] = "max", cpu[32];
    if (l && l->pids > 0)
        snprintf(pids, sizeof pids, "%d", l->pids);
    if (l && l->memory_mb > 0)
        snprintf(mem, sizeof mem, "%lld", (long long)l->memory_mb << 20);
    snprintf(cpu, sizeof cpu, "%d %d", CPU_PERIOD_US, CPU_PERIOD_US); /* one CPU */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cgroup.procs", w->path);
    if (write_limit(w->path, "pids.max", pids, e) < 0 ||
        write_limit(w->path, "memory.max", mem, e) < 0 ||
        write_limit(w->path, "cpu.max", cpu, e) < 0)
        goto fail;
    w->procs_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (w->procs_fd < 0) {
        err_set(e, "%s: %s", path, strerror(errno));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    cgroup_worker_free(&w);
    return -1;
}

int cgroup_worker_procs_fd(const struct cgroup_worker *w)
{
    return w->procs_fd;
}

const char *cgroup_worker_path(const struct cgroup_worker *w)
{
    return w->path;
}

void cgroup_worker_kill(struct cgroup_worker *w)
{
    if (!w)
        return;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cgroup.kill", w->path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, "1", 1);
        close(fd);
        if (n == 1)
            return;
    }
    /* kernels before 5.14: one pid at a time (a fork bomb may need rounds) */
    snprintf(path, sizeof path, "%s/cgroup.procs", w->path);
    for (int round = 0; round < 10; round++) {
        FILE *f = fopen(path, "re");
        if (!f)
            return;
        long pid;
        int found = 0;
        while (fscanf(f, "%ld", &pid) == 1) {
            if (pid <= 0)
                continue;
            kill((pid_t)pid, SIGKILL);
            found = 1;
        }
        fclose(f);
        if (!found)
            return;
    }
}

void cgroup_worker_free(struct cgroup_worker **wp)
{
    struct cgroup_worker *w = *wp;
    if (!w)
        return;
    if (w->procs_fd >= 0)
        close(w->procs_fd);
    /* its last processes may still be on their way out after a kill */
    for (int i = 0; i < 40 && rmdir(w->path) < 0 && errno == EBUSY; i++)
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    free(w);
    *wp = NULL;
}
