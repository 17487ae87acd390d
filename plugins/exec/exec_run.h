/* exec_run.h - run one command to completion or to its deadline: the
 * process side of the exec plugin, independent of sluice's ABI.
 *
 * The child is started with posix_spawn (never fork without exec: the
 * daemon is multi-threaded), as the leader of a new process group, with
 * stdin, stdout and stderr on pipes and every other descriptor closed. One
 * poll() loop feeds stdin and drains stdout and stderr together, so neither
 * side can deadlock on a full pipe, and watches the child's exit through a
 * pidfd. At the deadline, or when stdout grows past its bound, the whole
 * process group gets SIGKILL. The child is always reaped before returning.
 */
#ifndef SLUICE_EXEC_RUN_H
#define SLUICE_EXEC_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How much of stderr's end is kept. */
#define EXEC_STDERR_TAIL 2048

struct exec_spec {
    char *const *argv;          /* argv[0] without '/' is looked up on the daemon's PATH */
    char *const *envp;          /* the child's whole environment */
    const char *cwd;            /* NULL: the daemon's working directory */
    const char *input;          /* written to stdin, then stdin is closed */
    size_t input_len;
    size_t max_stdout;          /* more than this is killed and reported */
    int64_t deadline_ns;        /* CLOCK_MONOTONIC; the process group is killed at it */
};

enum exec_end {
    EXEC_EXITED,                /* status holds the wait status (exit code or signal) */
    EXEC_TIMED_OUT,             /* killed at the deadline */
    EXEC_TOO_MUCH_OUTPUT,       /* killed: stdout passed max_stdout */
};

struct exec_result {
    enum exec_end end;
    int status;                 /* waitpid status */
    pid_t pid;
    char *out;                  /* stdout, NUL-terminated (malloc'd; may hold NULs) */
    size_t out_len;
    char err_tail[EXEC_STDERR_TAIL]; /* the last bytes of stderr, not terminated */
    size_t err_tail_len;
    size_t err_total;           /* all stderr bytes seen */
    int stdin_short;            /* the child closed stdin before reading all of it */
    int lingering;              /* descendants still held stdout/stderr when it exited */
    int64_t elapsed_ms;
};

/* Runs spec to its end. Returns 0 when the command ran (whatever its
 * outcome, see r->end), -1 when it could not be started or the run could not
 * be managed, with a message in err naming the cause. Either way release r
 * with exec_result_release. */
int exec_run(const struct exec_spec *spec, struct exec_result *r, char *err, size_t errlen);

/* Frees what r holds; accepts a zeroed or released r. */
void exec_result_release(struct exec_result *r);

/* The stderr tail in order (it is kept in a ring): copies at most
 * EXEC_STDERR_TAIL bytes into out and returns their count. */
size_t exec_stderr_tail(const struct exec_result *r, char out[EXEC_STDERR_TAIL]);

int64_t exec_now_ns(void);

#endif
