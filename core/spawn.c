/* spawn.c - starting worker processes so that all they start can be killed
 * (see spawn.h). */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <sodium.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define STACK_SIZE (64 * 1024)  /* for the child until it execs, and the init's */
#define MEM_SIZE (2 * STACK_SIZE + 4096)    /* two stacks, then struct child */
#define CGROUP_MOUNT "/sys/fs/cgroup"

/* The child side runs in a clone of the daemon: with CLONE_VM it shares the
 * daemon's memory, so nothing there may touch sanitizer shadow memory. */
#define CHILD_SIDE __attribute__((no_sanitize("address", "undefined")))

struct child {
    const struct spawn_spec *spec;
    bool in_ns;                 /* started by the namespace's init */
    int fd3, status_w, cg_fd;
    int n_rl;
    int rl_kind[4];
    struct rlimit rl[4];
    void *worker_stack;         /* the init's clone of the worker runs here */
    bool set_id;                /* take uid and gid (run_as) before exec */
    unsigned uid, gid;
    int err;                    /* without a namespace: errno of the step that failed */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spawned *reg_head;    /* live (not released) processes */
static atomic_bool pidns_refused;
static atomic_bool dynamic_refused;

/* ---- the child side: async-signal-safe calls only ---- */

/* Handlers are the daemon's: in the child they would run the daemon's code. */
CHILD_SIDE static void reset_signals(void)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
            continue;
        bool forced = sig == SIGPIPE || sig == SIGIO || sig == SIGINT || sig == SIGTERM ||
                      sig == SIGHUP || sig == SIGCHLD;
        if (!forced && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
            continue;
        sa.sa_handler = SIG_DFL;
        sa.sa_flags = 0;
        sigaction(sig, &sa, NULL);
    }
}

CHILD_SIDE static int worker_child(void *arg)
{
    struct child *c = arg;
    const struct spawn_spec *s = c->spec;
    reset_signals();
    if (!c->in_ns) {            /* the init did these for the whole namespace */
        if (setpgid(0, 0) < 0 || (c->cg_fd >= 0 && write(c->cg_fd, "0", 1) != 1))
            goto fail;
    }
    for (int i = 0; i < c->n_rl; i++)
        if (setrlimit(c->rl_kind[i], &c->rl[i]) < 0)
            goto fail;
    if (c->set_id) {
        /* raw calls: glibc's would signal the daemon's other threads */
        if (syscall(SYS_setgroups, 0, NULL) < 0 ||
            syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0 ||
            syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
            goto fail;
    }
    /* after the identity change, which clears it; dies with its parent */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (c->fd3 == 3) {
        if (fcntl(3, F_SETFD, 0) < 0)
            goto fail;
    } else if (c->fd3 >= 0 && dup2(c->fd3, 3) < 0) {
        goto fail;
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(s->path, s->argv, s->envp);
fail:
    c->err = errno;
    _exit(127);
}

/* Close every fd above 2 but the ones in keep (sorted, -1 for none). */
CHILD_SIDE static void close_others(const int keep[3])
{
    unsigned from = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < (int)from)
            continue;
        if ((unsigned)keep[i] > from)
            syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

/* pid 1 of the worker's PID namespace: it starts the worker, reaps whatever
 * else dies in the namespace, and when the worker ends writes its wait status
 * and exits, at which the kernel kills everything left in the namespace.
 * It shares the daemon's memory (CLONE_VM, so starting it copies nothing)
 * and runs on a stack of its own, so once it has told the daemon the worker
 * started ('S'), it may touch only that block (struct child and the stacks)
 * and make only calls that cannot fail (errno is the daemon thread's). Its
 * signals stay blocked: no handler of the daemon can run here; SIGKILL from
 * the daemon still works, and pid 1 ignores signals from inside. */
CHILD_SIDE static int init_child(void *arg)
{
    struct child *c = arg;
    prctl(PR_SET_NAME, "sluice-init");
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (setpgid(0, 0) < 0 || (c->cg_fd >= 0 && write(c->cg_fd, "0", 1) != 1))
        _exit(127);
    int keep[3] = {c->fd3, c->status_w, c->cg_fd}, t;
    for (int i = 0; i < 2; i++)     /* sort three */
        for (int j = 0; j < 2 - i; j++)
            if (keep[j] > keep[j + 1]) {
                t = keep[j];
                keep[j] = keep[j + 1];
                keep[j + 1] = t;
            }
    close_others(keep);
    pid_t w = clone(worker_child, (char *)c->worker_stack + STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    char started = 'S';
    if (w < 0 || write(c->status_w, &started, 1) != 1)
        _exit(127);
    close(c->fd3);
    if (c->cg_fd >= 0)
        close(c->cg_fd);
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p == w) {
            ssize_t n = write(c->status_w, &st, sizeof st);
            _exit(n == sizeof st ? 0 : 126);
        }
        if (p < 0)
            _exit(126);
    }
}

/* ---- the daemon's side ---- */

static void reg_add(struct spawned *s)
{
    pthread_mutex_lock(&reg_lock);
    s->prev = NULL;
    s->next = reg_head;
    if (reg_head)
        reg_head->prev = s;
    reg_head = s;
    pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(struct spawned *s)
{
    pthread_mutex_lock(&reg_lock);
    if (s->prev)
        s->prev->next = s->next;
    else if (reg_head == s)
        reg_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* The cgroup folder of this daemon, probed once; NULL where there is none. */
static struct cgroup *probed_cg;
static void probe_cgroups(void)
{
    char dir[4096];
    struct err e;
    if (cgroup_find(CGROUP_MOUNT, "/proc/self/cgroup", dir, sizeof dir, &e) < 0 ||
        cgroup_open(dir, &probed_cg, &e) < 0)
        log_msg(LOG_INFO, "workers get no cgroup of their own (%s): pids, memory and cpu are "
                "limited by rlimits only (docs/isolation.md#13)", e.msg);
}

static struct cgroup *machine_cgroups(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe_cgroups);
    return probed_cg;
}

/* Is id free as both a user and a group on this machine (NSS: /etc/passwd,
 * /etc/group, and systemd's own dynamic users)? */
static bool id_free(unsigned id)
{
    char buf[16384];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    int rc = getpwuid_r(id, &pw, buf, sizeof buf, &pwp);
    if (rc != 0 || pwp)
        return false;
    rc = getgrgid_r(id, &gr, buf, sizeof buf, &grp);
    return rc == 0 && !grp;
}

int spawn_dynamic_id(const char *name, unsigned *id)
{
    uint32_t h;                 /* the same name, the same start */
    if (sodium_init() < 0 ||
        crypto_generichash((unsigned char *)&h, sizeof h, (const unsigned char *)name,
                           strlen(name), NULL, 0) != 0)
        return -1;
    unsigned n = SPAWN_DYNAMIC_LAST - SPAWN_DYNAMIC_FIRST + 1;
    for (unsigned i = 0; i < n; i++) {
        unsigned cand = SPAWN_DYNAMIC_FIRST + (h + i) % n;
        if (id_free(cand)) {
            *id = cand;
            return 0;
        }
    }
    return -1;
}

/* Fill the identity the worker takes: run_as as given, a dynamic one, or
 * none where the machine does not allow one (logged once). */
static int resolve_id(struct child *c, const struct spawn_spec *spec, struct err *e)
{
    const struct run_as *ra = spec->run_as;
    if (!ra || !ra->set)
        return 0;
    if (!ra->dynamic) {
        if (geteuid() != 0)
            return err_set(e, "cannot start a worker as uid %u: run_as needs the daemon to run "
                           "as root (remove run_as, or start sluice as root)", ra->uid);
        c->set_id = true;
        c->uid = ra->uid;
        c->gid = ra->gid;
        return 0;
    }
    const char *why = geteuid() != 0 ? "the daemon does not run as root" : NULL;
    if (!why && spawn_dynamic_id(spec->name ? spec->name : "worker", &c->uid) < 0)
        why = "every uid from 61184 to 65519 is taken";
    if (why) {
        if (!atomic_exchange(&dynamic_refused, true))
            log_msg(LOG_INFO, "workers run with the daemon's identity, not a dynamic uid of "
                    "their own (%s; docs/isolation.md#13)", why);
        return 0;
    }
    c->set_id = true;
    c->gid = c->uid;
    return 0;
}

static void set_rlimits(struct child *c, const struct spawn_spec *spec)
{
    const struct limits *l = spec->limits;
    if (!l)
        return;
    if (l->memory_mb > 0) {
        c->rl_kind[c->n_rl] = RLIMIT_AS;
        c->rl[c->n_rl].rlim_cur = c->rl[c->n_rl].rlim_max = (rlim_t)l->memory_mb << 20;
        c->n_rl++;
    }
    if (l->cpu_seconds > 0) {
        c->rl_kind[c->n_rl] = RLIMIT_CPU;
        c->rl[c->n_rl].rlim_cur = (rlim_t)l->cpu_seconds;
        c->rl[c->n_rl].rlim_max = (rlim_t)l->cpu_seconds + 1;
        c->n_rl++;
    }
    if (l->max_open_files > 0) {
        c->rl_kind[c->n_rl] = RLIMIT_NOFILE;
        c->rl[c->n_rl].rlim_cur = c->rl[c->n_rl].rlim_max = (rlim_t)l->max_open_files;
        c->n_rl++;
    }
    /* without a cgroup, pids counts the processes of the worker's user:
     * meaningful only for a user of its own (root is not limited) */
    if (l->pids > 0 && c->set_id) {
        c->rl_kind[c->n_rl] = RLIMIT_NPROC;
        c->rl[c->n_rl].rlim_cur = c->rl[c->n_rl].rlim_max = (rlim_t)l->pids;
        c->n_rl++;
    }
}

/* clone the init (with a namespace) or the worker itself, with every signal
 * blocked so no handler of the daemon runs in the child. mem holds the two
 * stacks; c lies beyond them. */
static pid_t start_child(struct child *c, bool ns, char *mem, int *pidfd)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid;
    c->in_ns = ns;
#ifdef SLUICE_TSAN
    /* ThreadSanitizer cannot follow a child that shares the daemon's memory
     * (CLONE_VM): in that build a plain fork, and no namespace (the caller
     * falls back as on a machine that refuses one). */
    (void)init_child;
    if (ns) {
        errno = EPERM;
        pid = -1;
    } else if ((pid = fork()) == 0) {
        worker_child(c);
        _exit(127);
    } else if (pid > 0) {
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    }
#else
    if (ns) {
        c->worker_stack = mem + STACK_SIZE;
        pid = clone(init_child, mem + STACK_SIZE, CLONE_VM | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD,
                    c, pidfd);
    } else {
        pid = clone(worker_child, mem + STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, c, pidfd);
    }
#endif
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

/* With a namespace: wait for the init's 'S' (the worker has called exec, or
 * failed to). 0, or -1 if the init died first. */
static int wait_started(int fd)
{
    char b;
    ssize_t n;
    while ((n = read(fd, &b, 1)) < 0 && errno == EINTR)
        ;
    return n == 1 && b == 'S' ? 0 : -1;
}

int spawn_start(const struct spawn_spec *spec, struct spawned *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->pidfd = out->status_fd = -1;
    if (access(spec->path, X_OK) < 0)
        return err_set(e, "cannot start a worker (%s): %s", spec->path, strerror(errno));
    /* the stacks, then the child's arguments: with a namespace the init
     * keeps using them after this returns, until it is reaped */
    char *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED)
        return err_set(e, "cannot start a worker (%s): %s", spec->path, strerror(errno));
    struct child *c = (struct child *)(mem + 2 * STACK_SIZE);
    *c = (struct child){.spec = spec, .fd3 = spec->fd3, .status_w = -1, .cg_fd = -1};
    if (resolve_id(c, spec, e) < 0) {
        munmap(mem, MEM_SIZE);
        return -1;
    }
    set_rlimits(c, spec);
    struct cgroup *cgs = spec->cgroups ? spec->cgroups : machine_cgroups();
    struct err ce;
    if (cgs && cgroup_worker_new(cgs, spec->name ? spec->name : "worker", spec->limits,
                                 &out->cg, &ce) < 0)
        log_msg(LOG_WARN, "a worker of %s starts without a cgroup: %s", spec->name, ce.msg);
    if (out->cg)
        c->cg_fd = cgroup_worker_procs_fd(out->cg);
    bool ns = (spec->flags & SPAWN_PIDNS) && !atomic_load(&pidns_refused);
    int sp[2] = {-1, -1};
    if (ns && pipe2(sp, O_CLOEXEC) < 0) {
        err_set(e, "cannot start a worker (%s): pipe: %s", spec->path, strerror(errno));
        goto fail;
    }
    c->status_w = sp[1];
    int pidfd = -1;
    pid_t pid = start_child(c, ns, mem, &pidfd);
    if (pid < 0 && ns && (errno == EPERM || errno == EINVAL || errno == EUSERS ||
                          errno == ENOSPC)) {
        if (!atomic_exchange(&pidns_refused, true))
            log_msg(LOG_INFO, "workers get no PID namespace of their own (%s): a worker's "
                    "children are killed through its process group only (docs/isolation.md"
                    "#13)", strerror(errno));
        ns = false;
        pid = start_child(c, false, mem, &pidfd);
    }
    int saved = errno;
    if (sp[1] >= 0)
        close(sp[1]);
    if (pid < 0) {
        err_set(e, "cannot start a worker (%s): %s", spec->path, strerror(saved));
        goto fail;
    }
    out->pid = out->pgid = pid;
    out->pidfd = pidfd;
    out->pidns = ns;
    if (ns) {
        out->status_fd = sp[0];
        out->mem = mem;
        wait_started(sp[0]); /* an init that died first is reaped as a failed worker */
    }
    int err = c->err;           /* the worker failed before exec */
    if (!ns)
        munmap(mem, MEM_SIZE);  /* vfork: the child has called exec or exited */
    if (err) {
        reg_add(out);
        spawn_release(out);
        return err_set(e, "cannot start a worker (%s): %s", spec->path, strerror(err));
    }
    reg_add(out);
    return 0;
fail:
    if (sp[0] >= 0)
        close(sp[0]);
    cgroup_worker_free(&out->cg);
    munmap(mem, MEM_SIZE);
    return -1;
}

/* Under reg_lock: if it has exited (waiting for that if block), kill its
 * group first (the pid, a zombie, cannot be reused until reaped), then reap. */
static void reap_locked(struct spawned *s, bool block)
{
    if (s->reaped || s->pid <= 0)
        return;
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0 ||
        si.si_pid == 0)
        return;                 /* still running */
    kill(-s->pgid, SIGKILL);
    int st = 0;
    if (waitpid(s->pid, &st, 0) != s->pid)
        return;
    s->reaped = true;
    s->status = st;
    if (s->status_fd >= 0) {    /* the init reports how the worker itself ended */
        int wst;
        if (read(s->status_fd, &wst, sizeof wst) == (ssize_t)sizeof wst)
            s->status = wst;
    }
}

/* Wait up to timeout_ms for it to exit, on its pidfd, outside the lock. */
static void wait_exit(const struct spawned *s, int timeout_ms)
{
    if (s->pidfd < 0 || timeout_ms == 0)
        return;
    struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};
    while (poll(&pfd, 1, timeout_ms) < 0 && errno == EINTR)
        ;
}

void spawn_kill_tree(struct spawned *s)
{
    if (s->cg)
        cgroup_worker_kill(s->cg);
    pthread_mutex_lock(&reg_lock);
    /* never started (pid 0): kill(-0) would be the daemon's own group */
    if (!s->reaped && s->pid > 0) {
        /* the whole group; with a namespace, its init, whose death kills
         * everything in the namespace */
        kill(-s->pgid, SIGKILL);
        if (s->pidfd < 0 || syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0) < 0)
            kill(s->pid, SIGKILL);
    }
    pthread_mutex_unlock(&reg_lock);
}

int spawn_reap(struct spawned *s, int timeout_ms, int *status)
{
    if (!spawn_reaped(s))
        wait_exit(s, timeout_ms);
    pthread_mutex_lock(&reg_lock);
    /* without a pidfd a wait for good blocks here, holding the lock */
    reap_locked(s, s->pidfd < 0 && timeout_ms < 0);
    bool done = s->reaped;
    if (done && status)
        *status = s->status;
    pthread_mutex_unlock(&reg_lock);
    return done;
}

bool spawn_reaped(struct spawned *s)
{
    pthread_mutex_lock(&reg_lock);
    bool done = s->reaped;
    pthread_mutex_unlock(&reg_lock);
    return done;
}

void spawn_release(struct spawned *s)
{
    if (s->pid <= 0)
        return;
    int st;
    if (!spawn_reap(s, 0, &st)) {
        spawn_kill_tree(s);
        spawn_reap(s, -1, &st);
    }
    if (s->cg)
        cgroup_worker_kill(s->cg); /* what outlived it in its cgroup */
    reg_remove(s);
    if (s->pidfd >= 0)
        close(s->pidfd);
    if (s->status_fd >= 0)
        close(s->status_fd);
    cgroup_worker_free(&s->cg);
    if (s->mem)                 /* the init's stack: it is gone now */
        munmap(s->mem, MEM_SIZE);
    s->mem = NULL;
    s->pid = 0;
    s->pidfd = s->status_fd = -1;
}

void spawn_reap_exited(void)
{
    pthread_mutex_lock(&reg_lock);
    for (struct spawned *s = reg_head; s; s = s->next)
        reap_locked(s, false);
    pthread_mutex_unlock(&reg_lock);
}

static int parse_id(const char *text, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (!*text || *end || errno || v > 0x7fffffffUL)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int spawn_parse_run_as(const char *text, struct run_as *out, struct err *e)
{
    char user[256], *group;
    memset(out, 0, sizeof *out);
    if (strcmp(text, "dynamic") == 0) { /* the uid is chosen when a worker starts */
        out->set = out->dynamic = true;
        return 0;
    }
    if (snprintf(user, sizeof user, "%s", text) >= (int)sizeof user || !*user)
        return err_set(e, "run_as \"%s\": expected \"USER\", \"USER:GROUP\" or \"UID:GID\"",
                       text);
    if ((group = strchr(user, ':')))
        *group++ = '\0';
    char buf[4096];
    struct passwd pw, *pwp = NULL;
    if (parse_id(user, &out->uid) < 0) {
        if (getpwnam_r(user, &pw, buf, sizeof buf, &pwp) != 0 || !pwp)
            return err_set(e, "run_as \"%s\": no user \"%s\" on this machine (create it, e.g. "
                           "`useradd --system %s`, or give a numeric UID:GID)", text, user, user);
        out->uid = pwp->pw_uid;
        out->gid = pwp->pw_gid;
    } else if (getpwuid_r(out->uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp) {
        out->gid = pwp->pw_gid;
    } else if (!group) {
        return err_set(e, "run_as \"%s\": uid %u has no user, so give its group too "
                       "(\"%u:GID\")", text, out->uid, out->uid);
    }
    if (group) {
        struct group gr, *grp = NULL;
        if (parse_id(group, &out->gid) < 0) {
            if (getgrnam_r(group, &gr, buf, sizeof buf, &grp) != 0 || !grp)
                return err_set(e, "run_as \"%s\": no group \"%s\" on this machine", text,
                               group);
            out->gid = grp->gr_gid;
        }
    }
    if (out->uid == 0)
        return err_set(e, "run_as \"%s\": that is root; name an unprivileged user", text);
    out->set = true;
    return 0;
}

void spawn_describe(int status, char *out, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(out, len, "the worker was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(out, len, "the worker exited with status %d", WEXITSTATUS(status));
    else
        snprintf(out, len, "the worker ended (wait status %d)", status);
}
