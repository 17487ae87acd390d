/* cgroup.h - a cgroup v2 per worker, where the daemon's cgroup is delegated.
 *
 * Under systemd with Delegate=yes (and DelegateSubgroup=, so the daemon sits
 * in a leaf), the daemon may create cgroups beside its own: each worker gets
 * one, with pids.max, memory.max and cpu.max from its pipeline's limits, and
 * is killed as a whole through cgroup.kill. Everything here works on a
 * folder given by path, so it is tested on a fake one (tests/unit/
 * test_cgroup.c); spawn.c decides where the real one is and falls back,
 * with one log line, where there is none.
 */
#ifndef SLUICE_CGROUP_H
#define SLUICE_CGROUP_H

#include <stddef.h>

#include "err.h"
#include "pipeline.h"

struct cgroup;                  /* the folder workers' cgroups are created in */
struct cgroup_worker;           /* one worker's cgroup */

/* Where the delegated folder is: the parent of the cgroup named by the "0::"
 * line of proc_file (/proc/self/cgroup), under mount (/sys/fs/cgroup).
 * Returns 0 and the path in out, or -1 with e saying why there is none. */
int cgroup_find(const char *mount, const char *proc_file, char *out, size_t len,
                struct err *e);

/* Use dir for workers' cgroups: its cgroup.controllers must offer pids,
 * memory and cpu, and its cgroup.subtree_control must enable them (they are
 * enabled here if they are not). 0, or -1 with e. */
int cgroup_open(const char *dir, struct cgroup **out, struct err *e);
void cgroup_free(struct cgroup **cg);

/* Create DIR/sluice-NAME-N with the limits written (pids.max from pids,
 * memory.max from memory_mb, cpu.max one CPU; "max" where unset) and
 * cgroup.procs open for the child to join by writing "0". */
int cgroup_worker_new(struct cgroup *cg, const char *name, const struct limits *l,
                      struct cgroup_worker **out, struct err *e);
/* The cgroup.procs fd (O_CLOEXEC) the new process writes "0" to. */
int cgroup_worker_procs_fd(const struct cgroup_worker *w);
const char *cgroup_worker_path(const struct cgroup_worker *w);
/* SIGKILL every process in it (cgroup.kill; where the kernel has none, each
 * pid in cgroup.procs). */
void cgroup_worker_kill(struct cgroup_worker *w);
/* Remove it (waiting a little for its processes to be gone) and free. */
void cgroup_worker_free(struct cgroup_worker **w);

#endif
