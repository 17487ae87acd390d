/* test_spawn.c - unit tests for core/spawn.c with /bin/sh as the worker:
 * fd 3, rlimits, exit statuses (also through a PID namespace's init), start
 * errors, killing the whole tree (process group; PID namespace where the
 * machine allows, setsid'd grandchildren included), reaping on SIGCHLD,
 * run_as (as root), a fake cgroup folder, and run_as parsing. */
#include "spawn.h"

#include "cgroup.h"
#include "test.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int start_sh(const char *script, int fd3, const struct limits *l, unsigned flags,
                    struct spawned *out, struct err *e)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    struct spawn_spec spec = {.path = "/bin/sh", .argv = argv, .envp = environ, .fd3 = fd3,
                              .limits = l, .flags = flags, .name = "test"};
    return spawn_start(&spec, out, e);
}

/* Everything the shell writes to fd 3, until it closes it. */
static void read_all(int fd, char *buf, size_t len)
{
    size_t have = 0;
    ssize_t n;
    while (have + 1 < len && (n = read(fd, buf + have, len - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
}

static int run_sh(const char *script, const struct limits *l, unsigned flags, char *out,
                  size_t len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    struct spawned s;
    struct err e;
    int rc = start_sh(script, p[1], l, flags, &s, &e);
    close(p[1]);
    if (rc < 0) {
        fprintf(stderr, "%s\n", e.msg);
        close(p[0]);
        return -1;
    }
    read_all(p[0], out, len);
    close(p[0]);
    int st = -1;
    CHECK(spawn_reap(&s, -1, &st) == 1);
    spawn_release(&s);
    return st;
}

static bool dead(long pid)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *paren = strrchr(text, ')');
    return !paren || paren[2] == 'Z';
}

static bool wait_dead(const long *pids, int n)
{
    for (int round = 0; round < 1000; round++) {
        int alive = 0;
        for (int i = 0; i < n; i++)
            alive += !dead(pids[i]);
        if (!alive)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    }
    return false;
}

static void test_basics(void)
{
    char out[256];
    int st = run_sh("echo hello >&3", NULL, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_STR(out, "hello\n");
    st = run_sh("exit 7", NULL, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    st = run_sh("kill -SEGV $$", NULL, 0, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    char why[128];
    spawn_describe(st, why, sizeof why);
    CHECK_CONTAINS(why, "killed by signal 11");
    /* limits are in place before the program runs */
    struct limits l = {.max_open_files = 42, .cpu_seconds = 30};
    st = run_sh("ulimit -n >&3; ulimit -t >&3", &l, 0, out, sizeof out);
    CHECK_STR(out, "42\n30\n");
    /* its own process group */
    st = run_sh("ps -o pgid= -p $$ | tr -d ' ' >&3; echo $$ >&3", NULL, 0, out, sizeof out);
    char *nl = strchr(out, '\n');
    CHECK(nl && strcmp(nl + 1, "") != 0 && strncmp(out, nl + 1, (size_t)(nl - out)) == 0);

    struct spawned s;
    struct err e;
    char *argv[] = {"/nonexistent/worker", NULL};
    struct spawn_spec spec = {.path = "/nonexistent/worker", .argv = argv, .envp = environ,
                              .fd3 = -1};
    CHECK(spawn_start(&spec, &s, &e) < 0);
    CHECK_CONTAINS(e.msg, "cannot start a worker (/nonexistent/worker): No such file");
    /* exec itself fails (a folder passes the access check): said at once,
     * also from inside a PID namespace */
    for (unsigned flags = 0; flags <= SPAWN_PIDNS; flags += SPAWN_PIDNS) {
        char *dargv[] = {"/", NULL};
        struct spawn_spec dspec = {.path = "/", .argv = dargv, .envp = environ, .fd3 = -1,
                                   .flags = flags};
        CHECK(spawn_start(&dspec, &s, &e) < 0);
        CHECK_CONTAINS(e.msg, "cannot start a worker (/): Permission denied");
    }
}

/* A shell that starts two sleeps (one in a new session) and reports their
 * pids, then sleeps itself: the tree dies with spawn_kill_tree. */
static void test_kill_tree(unsigned flags)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    struct spawned s;
    struct err e;
    /* each sh reads its own pid from /proc/self/stat (a builtin, no fork):
     * the pid as this test sees it, also from inside a PID namespace */
    const char *script =
        "sh -c 'read p r < /proc/self/stat; echo g $p >&3; exec sleep 1000 3>&-' & "
        "setsid sh -c 'read p r < /proc/self/stat; echo s $p >&3; exec sleep 1000 3>&-' & "
        "exec 3>&-; wait";
    CHECK(start_sh(script, p[1], NULL, flags, &s, &e) == 0);
    close(p[1]);
    char out[256];
    read_all(p[0], out, sizeof out);
    close(p[0]);
    /* the two lines come in either order: "g PID" (in the group), "s PID" */
    long pids[2] = {0, 0}, pid;
    char kind;
    for (char *line = out; line && sscanf(line, "%c %ld", &kind, &pid) == 2;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        pids[kind == 's'] = pid;
    CHECK(pids[0] > 0 && pids[1] > 0);
    CHECK(!dead(pids[0]) && !dead(pids[1]));
    int st;
    CHECK(spawn_reap(&s, 0, &st) == 0);     /* still running */
    spawn_kill_tree(&s);
    CHECK(spawn_reap(&s, -1, &st) == 1);
    bool ns = s.pidns;
    spawn_release(&s);
    if (ns) {
        CHECK(wait_dead(pids, 2)); /* the setsid'd one too */
    } else {
        CHECK(wait_dead(pids, 1)); /* its group; a new session escapes it */
        kill((pid_t)pids[1], SIGKILL);
    }
}

static void test_pid_namespace(void)
{
    char out[256];
    /* the worker is pid 2 (the init is 1), and its statuses pass through */
    int st = run_sh("echo $$ >&3", NULL, SPAWN_PIDNS, out, sizeof out);
    if (geteuid() == 0) {
        CHECK_STR(out, "2\n");
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_sh("kill -ABRT $$", NULL, SPAWN_PIDNS, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    st = run_sh("exit 9", NULL, SPAWN_PIDNS, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 9);
    /* the parent it sees is the init, which ignores it */
    st = run_sh("kill -TERM $PPID; echo $PPID >&3", NULL, SPAWN_PIDNS, out, sizeof out);
    if (geteuid() == 0) {
        CHECK_STR(out, "1\n");
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_reap_exited(void)
{
    struct spawned s;
    struct err e;
    CHECK(start_sh("exit 3", -1, NULL, 0, &s, &e) == 0);
    struct pollfd pfd = {.fd = s.pidfd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 10000) == 1);
    CHECK(!spawn_reaped(&s));
    spawn_reap_exited();
    CHECK(spawn_reaped(&s));
    long pid = s.pid;
    CHECK(dead(pid));
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld", pid);
    CHECK(access(path, F_OK) < 0); /* reaped, not a zombie */
    int st = 0;
    CHECK(spawn_reap(&s, 0, &st) == 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    spawn_kill_tree(&s); /* reaped: kills nothing */
    spawn_release(&s);
}

static void test_run_as(void)
{
    struct run_as ra;
    struct err e;
    CHECK(spawn_parse_run_as("nobody", &ra, &e) == 0);
    CHECK(ra.set && ra.uid == 65534);
    CHECK(spawn_parse_run_as("1234:5678", &ra, &e) == 0);
    CHECK(ra.uid == 1234 && ra.gid == 5678);
    CHECK(spawn_parse_run_as("1234", &ra, &e) < 0 || ra.uid == 1234);
    CHECK(spawn_parse_run_as("no-such-user-here", &ra, &e) < 0);
    CHECK_CONTAINS(e.msg, "no user \"no-such-user-here\"");
    CHECK(spawn_parse_run_as("root", &ra, &e) < 0);
    CHECK_CONTAINS(e.msg, "root");
    CHECK(spawn_parse_run_as("nobody:no-such-group-here", &ra, &e) < 0);
    CHECK(spawn_parse_run_as("", &ra, &e) < 0);
    CHECK(spawn_parse_run_as("dynamic", &ra, &e) == 0);
    CHECK(ra.set && ra.dynamic);
    unsigned a = 0, b = 1, c = 0;
    CHECK(spawn_dynamic_id("resize", &a) == 0 && spawn_dynamic_id("resize", &b) == 0);
    CHECK(a == b && a >= SPAWN_DYNAMIC_FIRST && a <= SPAWN_DYNAMIC_LAST);
    CHECK(spawn_dynamic_id("thumbs", &c) == 0 && c != a);
    CHECK(getpwuid(a) == NULL);
    if (geteuid() != 0)
        return;
    CHECK(spawn_parse_run_as("4242:4343", &ra, &e) == 0);
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *argv[] = {"/bin/sh", "-c", "id -u >&3; id -g >&3; id -G >&3", NULL};
    struct spawn_spec spec = {.path = "/bin/sh", .argv = argv, .envp = environ, .fd3 = p[1],
                              .run_as = &ra};
    struct spawned s;
    CHECK(spawn_start(&spec, &s, &e) == 0);
    close(p[1]);
    char out[128];
    read_all(p[0], out, sizeof out);
    close(p[0]);
    CHECK_STR(out, "4242\n4343\n4343\n"); /* no supplementary groups kept */
    spawn_release(&s);
}

/* Start `id -u; id -g` with run_as "dynamic" and return what it printed. */
static void run_dynamic(const char *name, char *out, size_t len)
{
    struct run_as ra;
    struct err e;
    CHECK(spawn_parse_run_as("dynamic", &ra, &e) == 0);
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *argv[] = {"/bin/sh", "-c", "id -u >&3; id -g >&3", NULL};
    struct spawn_spec spec = {.path = "/bin/sh", .argv = argv, .envp = environ, .fd3 = p[1],
                              .run_as = &ra, .name = name};
    struct spawned s;
    int rc = spawn_start(&spec, &s, &e);
    CHECK(rc == 0);
    close(p[1]);
    out[0] = '\0';
    if (rc == 0)
        read_all(p[0], out, len);
    close(p[0]);
    if (rc == 0)
        spawn_release(&s);
}

/* As root: the pipeline's dynamic uid and gid. In a child that is not root
 * (nobody): the worker starts with the child's own identity (the fallback,
 * logged once), not an error. */
static void test_run_as_dynamic(void)
{
    if (geteuid() != 0)
        return;
    unsigned id;
    CHECK(spawn_dynamic_id("dyn", &id) == 0);
    char want[64], out[64];
    snprintf(want, sizeof want, "%u\n%u\n", id, id);
    run_dynamic("dyn", out, sizeof out);
    CHECK_STR(out, want);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        run_dynamic("dyn", out, sizeof out);
        _exit(strcmp(out, "65534\n65534\n") == 0 ? 0 : 1);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_fake_cgroup(void)
{
    char *dir = tu_mkdtemp("spawn-cg");
    CHECK(tu_write_in(dir, "cgroup.controllers", "cpu memory pids") == 0);
    CHECK(tu_write_in(dir, "cgroup.subtree_control", "cpu memory pids") == 0);
    struct cgroup *cg;
    struct err e;
    CHECK(cgroup_open(dir, &cg, &e) == 0);
    struct limits l = {.pids = 16};
    char *argv[] = {"/bin/sh", "-c", "exit 0", NULL};
    struct spawn_spec spec = {.path = "/bin/sh", .argv = argv, .envp = environ, .fd3 = -1,
                              .limits = &l, .cgroups = cg, .name = "cgtest"};
    struct spawned s;
    CHECK(spawn_start(&spec, &s, &e) == 0);
    CHECK(s.cg != NULL);
    char procs[4096] = "", pids[4096] = "";
    if (s.cg) {
        snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup_worker_path(s.cg));
        snprintf(pids, sizeof pids, "%s/pids.max", cgroup_worker_path(s.cg));
    }
    int st;
    CHECK(spawn_reap(&s, -1, &st) == 1);
    /* the child joined by writing "0" to cgroup.procs before exec */
    FILE *f = fopen(procs, "r");
    char buf[16] = "";
    if (f) {
        CHECK(fgets(buf, sizeof buf, f) != NULL);
        fclose(f);
    }
    CHECK_STR(buf, "0");
    f = fopen(pids, "r");
    buf[0] = '\0';
    if (f) {
        CHECK(fgets(buf, sizeof buf, f) != NULL);
        fclose(f);
    }
    CHECK_STR(buf, "16");
    spawn_release(&s);
    cgroup_free(&cg);
    tu_rm_rf(dir);
    free(dir);
}

/* A worker whose start failed before spawn_start (socketpair: EMFILE) is a
 * zeroed struct: killing its tree used to be kill(-0, SIGKILL), the caller's
 * own process group, the daemon included. In a child, to survive a failure. */
static void test_kill_never_started(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* a group of its own: such a kill takes only this child */
        struct spawned s;
        memset(&s, 0, sizeof s);
        s.pidfd = s.status_fd = -1;
        spawn_kill_tree(&s);
        int st;
        spawn_reap(&s, -1, &st);
        spawn_release(&s);
        _exit(0);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    test_kill_never_started();
    test_basics();
    test_kill_tree(0);
    test_kill_tree(SPAWN_PIDNS);
    test_pid_namespace();
    test_reap_exited();
    test_run_as();
    test_run_as_dynamic();
    test_fake_cgroup();
    return test_summary();
}
