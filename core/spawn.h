/* spawn.h - starting worker processes so that all they start can be killed.
 *
 * The daemon starts each worker here (worker.c calls spawn_start) and kills
 * it here (spawn_kill_tree): not only its pid but everything it started,
 * forked children, fork bombs and daemonised grandchildren included. In order
 * of strength, whichever the machine allows (docs/isolation.md#13):
 *
 * - a cgroup v2 of its own (cgroup.h) when the daemon's cgroup is delegated:
 *   pids.max, memory.max and cpu.max from the limits, cgroup.kill at the end;
 * - a PID namespace of its own when the daemon may create one (root): a small
 *   init (a copy of the daemon that runs no library code) is pid 1 of the
 *   namespace, starts the worker, reaps orphans and reports the worker's wait
 *   status; when it dies the kernel kills every process of the namespace, and
 *   a worker cannot see or signal the daemon or other workers by pid;
 * - always a process group of its own, killed as a whole.
 *
 * A worker can also run as another user (run_as: a user, or a dynamic uid
 * of its pipeline's own) and always gets its rlimits before it runs any
 * code of its own. The child side runs only async-signal-
 * safe system calls (the daemon is multithreaded): clone with CLONE_VM and
 * CLONE_VFORK on a stack of its own, as posix_spawn does, so the fast path
 * copies no page tables. Each started process has a pidfd, readable once it
 * has exited, for a loop to watch; spawn_reap_exited reaps every started
 * process that has exited (call it on SIGCHLD), so an idle worker killed
 * from outside does not stay a zombie.
 */
#ifndef SLUICE_SPAWN_H
#define SLUICE_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "pipeline.h"

struct cgroup;
struct cgroup_worker;

enum {
    SPAWN_PIDNS = 1 << 0,       /* a PID namespace of its own, if the machine allows */
};

struct spawn_spec {
    const char *path;           /* the program, as for execve */
    char *const *argv;
    char *const *envp;          /* NULL-terminated; environ until worker_env.c lands */
    int fd3;                    /* becomes fd 3 in the worker; -1: none */
    const struct limits *limits;    /* NULL: none */
    const struct run_as *run_as;    /* NULL: the daemon's identity */
    unsigned flags;             /* SPAWN_* */
    struct cgroup *cgroups;     /* where per-worker cgroups go; NULL: none */
    const char *name;           /* names its cgroup ("PIPELINE") */
};

/* A started process. Owned by whoever called spawn_start, until
 * spawn_release. */
struct spawned {
    pid_t pid;                  /* the process the daemon started (the init with a namespace) */
    pid_t pgid;
    int pidfd;                  /* readable once pid has exited; -1 if the kernel has none */
    int status_fd;              /* with a namespace: the worker's wait status, from the init */
    bool pidns;                 /* in a PID namespace of its own */
    void *mem;                  /* with a namespace: the init's stack, until it is reaped */
    struct cgroup_worker *cg;   /* NULL: none */
    /* Set once reaped (under the registry's lock). */
    bool reaped;
    int status;                 /* the worker's wait status */
    struct spawned *prev, *next;    /* the registry of live processes */
};

/* Start spec->path. Returns 0 and fills *out, or -1 with e ("cannot start a
 * worker (PATH): ..."). What the machine refused (a namespace, a cgroup) is
 * not an error: it is logged once and the worker starts without it. */
int spawn_start(const struct spawn_spec *spec, struct spawned *out, struct err *e);

/* SIGKILL the process and everything it started. Safe to call again, on a
 * process already reaped (then it kills nothing: its pid may be reused) and
 * on one that never started (a zeroed struct, after a failed spawn_start). */
void spawn_kill_tree(struct spawned *s);

/* Reap it: wait up to timeout_ms (-1: for good, 0: not at all). Returns 1
 * and *status (the worker's wait status) once reaped, 0 if it is still
 * running. */
int spawn_reap(struct spawned *s, int timeout_ms, int *status);

/* Has it been reaped already (by spawn_reap_exited, say)? No system call:
 * cheap enough to ask before every use of an idle worker. */
bool spawn_reaped(struct spawned *s);

/* Kill what is left, reap, release its fds and cgroup. *s may be freed then. */
void spawn_release(struct spawned *s);

/* Reap every started process that has exited, without blocking; their
 * owners find the status in spawn_reap. Call it when SIGCHLD arrives. */
void spawn_reap_exited(void);

/* Parse run_as: "USER", "USER:GROUP", "UID", "UID:GID" or "dynamic". 0, or
 * -1 with e saying what is wrong. */
int spawn_parse_run_as(const char *text, struct run_as *out, struct err *e);

/* "run_as": "dynamic": a uid (and the gid of the same number) of systemd's
 * dynamic range, the first free one (no user or group of that number, by
 * NSS) from a hash of name on, so a pipeline keeps its uid across restarts
 * while /etc/passwd does not change. 0 and *id, or -1 if all are taken. */
#define SPAWN_DYNAMIC_FIRST 61184u
#define SPAWN_DYNAMIC_LAST 65519u
int spawn_dynamic_id(const char *name, unsigned *id);

/* Describe a wait status: "the worker was killed by signal 9 (Killed)". */
void spawn_describe(int status, char *out, size_t len);

#endif
