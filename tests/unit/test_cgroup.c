/* test_cgroup.c - unit tests for core/cgroup.c against a fake cgroup v2
 * folder (the machines here have no delegated cgroup v2): finding the
 * delegated folder from /proc/self/cgroup, refusing one without the
 * controllers, enabling them, and the files a worker's cgroup gets. */
#include "cgroup.h"

#include "test.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *slurp(const char *dir, const char *name)
{
    char *path = tu_path(dir, "%s", name);
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    free(path);
    return buf;
}

int main(void)
{
    char *mount = tu_mkdtemp("cgroup");
    char *proc = tu_path(mount, "proc-self-cgroup");
    char out[4096];
    struct err e;

    /* no cgroup v2 mounted there */
    CHECK(tu_write(proc, "0::/system.slice/sluice.service/daemon\n") == 0);
    CHECK(cgroup_find(mount, proc, out, sizeof out, &e) < 0);
    CHECK_CONTAINS(e.msg, "cgroup v2 is not mounted");

    CHECK(tu_write_in(mount, "cgroup.controllers", "cpuset cpu io memory pids\n") == 0);
    CHECK(cgroup_find(mount, proc, out, sizeof out, &e) == 0);
    char *want = tu_path(mount, "system.slice/sluice.service");
    CHECK_STR(out, want);

    /* hybrid: v1 lines before the v2 one */
    CHECK(tu_write(proc, "12:pids:/x\n1:name=systemd:/x\n0::/a/b\n") == 0);
    CHECK(cgroup_find(mount, proc, out, sizeof out, &e) == 0);
    char *want2 = tu_path(mount, "a");
    CHECK_STR(out, want2);
    /* the root cgroup is not ours to manage */
    CHECK(tu_write(proc, "0::/\n") == 0);
    CHECK(cgroup_find(mount, proc, out, sizeof out, &e) < 0);
    CHECK_CONTAINS(e.msg, "root cgroup");
    CHECK(tu_write(proc, "1:name=systemd:/x\n") == 0);
    CHECK(cgroup_find(mount, proc, out, sizeof out, &e) < 0);
    CHECK_CONTAINS(e.msg, "no cgroup v2 line");

    /* a folder without the memory controller delegated */
    char *dir = tu_path(mount, "deleg");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(tu_write_in(dir, "cgroup.controllers", "cpu pids\n") == 0);
    CHECK(tu_write_in(dir, "cgroup.subtree_control", "") == 0);
    struct cgroup *cg = NULL;
    CHECK(cgroup_open(dir, &cg, &e) < 0);
    CHECK(cg == NULL);
    CHECK_CONTAINS(e.msg, "memory controller");
    CHECK_CONTAINS(e.msg, "Delegate=yes");

    /* delegated: the controllers get enabled for the workers' cgroups */
    CHECK(tu_write_in(dir, "cgroup.controllers", "cpuset cpu io memory pids\n") == 0);
    CHECK(cgroup_open(dir, &cg, &e) == 0);
    CHECK_CONTAINS(slurp(dir, "cgroup.subtree_control"), "+pids +memory +cpu");

    /* a worker's cgroup: its limits, cgroup.procs open to join */
    struct limits l = {.memory_mb = 64, .pids = 32};
    struct cgroup_worker *w = NULL;
    CHECK(cgroup_worker_new(cg, "resize", &l, &w, &e) == 0);
    CHECK(w != NULL);
    if (w) {
        const char *path = cgroup_worker_path(w);
        CHECK_CONTAINS(path, "/deleg/sluice-resize-");
        CHECK_STR(slurp(path, "pids.max"), "32");
        CHECK_STR(slurp(path, "memory.max"), "67108864");
        CHECK_STR(slurp(path, "cpu.max"), "100000 100000");
        CHECK(cgroup_worker_procs_fd(w) >= 0);
        CHECK(write(cgroup_worker_procs_fd(w), "0", 1) == 1);
        CHECK_STR(slurp(path, "cgroup.procs"), "0");
        /* the kill goes through cgroup.kill (here: a plain file) */
        char *kill_file = tu_path(path, "cgroup.kill");
        CHECK(tu_write(kill_file, "") == 0);
        cgroup_worker_kill(w);
        CHECK_STR(slurp(path, "cgroup.kill"), "1");
        free(kill_file);
        cgroup_worker_free(&w);
        CHECK(w == NULL);
    }
    /* unset limits are "max" */
    struct limits none = {0};
    CHECK(cgroup_worker_new(cg, "p", &none, &w, &e) == 0);
    if (w) {
        CHECK_STR(slurp(cgroup_worker_path(w), "pids.max"), "max");
        CHECK_STR(slurp(cgroup_worker_path(w), "memory.max"), "max");
        cgroup_worker_free(&w);
    }
    cgroup_worker_kill(NULL);
    cgroup_worker_free(&w);
    cgroup_free(&cg);
    CHECK(cg == NULL);

    tu_rm_rf(mount);
    free(dir);
    free(want);
    free(want2);
    free(proc);
    free(mount);
    return test_summary();
}
