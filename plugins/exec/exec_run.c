/* exec_run.c - spawn a command, feed and drain its pipes, enforce its
 * deadline, reap it (see exec_run.h).
 *
 * Design notes:
 * - posix_spawn (clone+exec in glibc), not fork: handlers may run on several
 *   threads of the daemon, where only async-signal-safe work is allowed
 *   between fork and exec.
 * - Our pipe ends are O_CLOEXEC, and the child closes every descriptor above
 *   2, so a command started on another thread at the same moment never holds
 *   our pipes (which would delay EOF) and no command inherits the daemon's
 *   sockets or database.
 * - SIGPIPE is blocked on this thread while we write, so a command that
 *   exits without reading its stdin gives EPIPE instead of killing a worker
 *   process whose SIGPIPE disposition is the default; a SIGPIPE we caused is
 *   consumed before the mask is restored.
 * - When the command exits but something it started in the background still
 *   holds stdout or stderr open, we stop waiting after a short grace instead
 *   of hanging until the deadline: the command's own exit ends the call.
 */
#include "exec_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK 65536
#define LINGER_GRACE_NS (100 * 1000000LL) /* after the exit, for the pipes' EOF */
#define NO_PIDFD_TICK_MS 10              /* exit polling when pidfds are missing */

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_ADDCLOSEFROM 1
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define HAVE_ADDCHDIR 1
#endif

int64_t exec_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* A pipe whose ends are close-on-exec and above 2, so the child's dup2 onto
 * 0, 1 and 2 never overwrites one of them. */
static int cloexec_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (fds[i] > 2)
            continue;
        int high = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        int saved = errno;
        close(fds[i]);
        fds[i] = high;
        if (high < 0) {
            close_fd(&fds[1 - i]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static int spawn_child(const struct exec_spec *spec, const int fds[3], pid_t *pid, char *err,
                       size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) {
        snprintf(err, errlen, "cannot prepare to start the command: %s", strerror(rc));
        return -1;
    }
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        snprintf(err, errlen, "cannot prepare to start the command: %s", strerror(rc));
        return -1;
    }
    for (int i = 0; i < 3 && !rc; i++)
        rc = posix_spawn_file_actions_adddup2(&fa, fds[i], i);
#ifdef HAVE_ADDCLOSEFROM
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    if (!rc && spec->cwd) {
#ifdef HAVE_ADDCHDIR
        rc = posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
#else
        rc = ENOSYS;
#endif
    }
    /* A clean slate: the daemon blocks and ignores signals the command
     * expects at their defaults. */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    static const int reset[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD, SIGIO,
                                SIGALRM, SIGUSR1, SIGUSR2, SIGXFSZ, SIGTSTP, SIGTTIN, SIGTTOU};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&dflt, reset[i]);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &dflt);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&attr, 0); /* its own group, to kill all of it */
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (rc) {
        snprintf(err, errlen, "cannot prepare to start the command: %s", strerror(rc));
    } else {
        rc = posix_spawnp(pid, spec->argv[0], &fa, &attr, spec->argv, spec->envp);
        if (rc == ENOENT && strchr(spec->argv[0], '/'))
            snprintf(err, errlen, "cannot start \"%s\": no such file%s", spec->argv[0],
                     spec->cwd && spec->argv[0][0] != '/' ? " (relative to \"cwd\")" : "");
        else if (rc == ENOENT)
            snprintf(err, errlen, "cannot start \"%s\": not found on the daemon's PATH; give "
                     "an absolute path, or install it", spec->argv[0]);
        else if (rc == EACCES)
            snprintf(err, errlen, "cannot start \"%s\": permission denied (is it an "
                     "executable file? chmod +x it)", spec->argv[0]);
        else if (rc == ENOEXEC)
            snprintf(err, errlen, "cannot start \"%s\": not a program this system can run (a "
                     "script needs a #! line naming its interpreter)", spec->argv[0]);
        else if (rc)
            snprintf(err, errlen, "cannot start \"%s\": %s", spec->argv[0], strerror(rc));
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -1 : 0;
}

static void tail_append(struct exec_result *r, const char *b, size_t n)
{
    if (n > EXEC_STDERR_TAIL) {
        r->err_total += n - EXEC_STDERR_TAIL;
        b += n - EXEC_STDERR_TAIL;
        n = EXEC_STDERR_TAIL;
    }
    size_t pos = r->err_total % EXEC_STDERR_TAIL;
    size_t first = n < EXEC_STDERR_TAIL - pos ? n : EXEC_STDERR_TAIL - pos;
    memcpy(r->err_tail + pos, b, first);
    memcpy(r->err_tail, b + first, n - first);
    r->err_total += n;
    r->err_tail_len = r->err_total < EXEC_STDERR_TAIL ? r->err_total : EXEC_STDERR_TAIL;
}

size_t exec_stderr_tail(const struct exec_result *r, char out[EXEC_STDERR_TAIL])
{
    if (r->err_total <= EXEC_STDERR_TAIL) {
        memcpy(out, r->err_tail, r->err_total);
        return r->err_total;
    }
    size_t pos = r->err_total % EXEC_STDERR_TAIL;
    memcpy(out, r->err_tail + pos, EXEC_STDERR_TAIL - pos);
    memcpy(out + EXEC_STDERR_TAIL - pos, r->err_tail, pos);
    return EXEC_STDERR_TAIL;
}

/* Reads what stdout has; returns 1 at EOF, 0 to go on, -1 when it passed
 * max_stdout (or memory ran out: errno ENOMEM). */
static int read_stdout(int fd, const struct exec_spec *spec, struct exec_result *r, size_t *cap)
{
    size_t want = IO_CHUNK;
    if (want > spec->max_stdout + 1 - r->out_len)
        want = spec->max_stdout + 1 - r->out_len; /* one byte more detects the overflow */
    if (r->out_len + want + 1 > *cap) {
        size_t ncap = *cap * 2 > r->out_len + want + 1 ? *cap * 2 : r->out_len + want + 1;
        if (ncap > spec->max_stdout + 2)
            ncap = spec->max_stdout + 2;
        char *p = realloc(r->out, ncap);
        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        r->out = p;
        *cap = ncap;
    }
    ssize_t n = read(fd, r->out + r->out_len, want);
    if (n == 0)
        return 1;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : 1;
    r->out_len += (size_t)n;
    if (r->out_len > spec->max_stdout) {
        errno = 0;
        return -1;
    }
    return 0;
}

static int read_stderr(int fd, struct exec_result *r)
{
    char buf[IO_CHUNK];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0)
        return 1;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : 1;
    tail_append(r, buf, (size_t)n);
    return 0;
}

static int poll_timeout_ms(int64_t until_ns, int64_t now_ns)
{
    int64_t ms = (until_ns - now_ns + 999999) / 1000000;
    if (ms < 0)
        return 0;
    return ms > 60000 ? 60000 : (int)ms;
}

int exec_run(const struct exec_spec *spec, struct exec_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, pidfd = -1;
    pid_t pid = -1;
    int exited = 0, rc = -1, caused_sigpipe = 0, sigpipe_pending_before = 0, masked = 0;
    size_t cap = spec->max_stdout + 2 < IO_CHUNK ? spec->max_stdout + 2 : IO_CHUNK;
    size_t in_off = 0;
    int64_t t0 = exec_now_ns(), exit_ns = 0;
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);

    r->out = malloc(cap);
    if (!r->out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cloexec_pipe(in) < 0 || cloexec_pipe(out) < 0 || cloexec_pipe(errp) < 0) {
        snprintf(err, errlen, "cannot create pipes for the command: %s", strerror(errno));
        goto done;
    }
    const int child_fds[3] = {in[0], out[1], errp[1]};
    if (spawn_child(spec, child_fds, &pid, err, errlen) < 0) {
        pid = -1;
        goto done;
    }
    r->pid = pid;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    set_nonblock(in[1]);
    set_nonblock(out[0]);
    set_nonblock(errp[0]);
    pidfd = open_pidfd(pid);
    if (spec->input_len == 0)
        close_fd(&in[1]);

    sigpending(&pending);
    sigpipe_pending_before = sigismember(&pending, SIGPIPE) == 1;
    masked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask) == 0;

    r->end = EXEC_EXITED;
    for (;;) {
        int64_t now = exec_now_ns();
        if (exited && out[0] < 0 && errp[0] < 0)
            break;
        if (exited && (now >= exit_ns + LINGER_GRACE_NS || now >= spec->deadline_ns)) {
            r->lingering = 1;
            break;
        }
        if (!exited && now >= spec->deadline_ns) {
            kill(-pid, SIGKILL);
            r->end = EXEC_TIMED_OUT;
            break;
        }
        int64_t until = spec->deadline_ns;
        if (exited && exit_ns + LINGER_GRACE_NS < until)
            until = exit_ns + LINGER_GRACE_NS;
        int timeout = poll_timeout_ms(until, now);
        if (pidfd < 0 && !exited && timeout > NO_PIDFD_TICK_MS)
            timeout = NO_PIDFD_TICK_MS;

        struct pollfd pf[4];
        int n = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
        if (in[1] >= 0)
            pf[i_in = n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        if (out[0] >= 0)
            pf[i_out = n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        if (errp[0] >= 0)
            pf[i_err = n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        if (pidfd >= 0 && !exited)
            pf[i_pid = n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (poll(pf, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "poll on the command's pipes: %s", strerror(errno));
            goto done;
        }
        if (i_in >= 0 && pf[i_in].revents) {
            size_t left = spec->input_len - in_off;
            ssize_t w = write(in[1], spec->input + in_off, left < IO_CHUNK ? left : IO_CHUNK);
            if (w > 0)
                in_off += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                caused_sigpipe |= errno == EPIPE;
                r->stdin_short = 1; /* the command stopped reading: not an error by itself */
                close_fd(&in[1]);
            } else if (in_off == spec->input_len) {
                close_fd(&in[1]);
            }
        }
        if (i_out >= 0 && pf[i_out].revents) {
            int st = read_stdout(out[0], spec, r, &cap);
            if (st < 0 && errno == ENOMEM) {
                snprintf(err, errlen, "out of memory reading the command's stdout");
                goto done;
            }
            if (st < 0) {
                if (!exited)
                    kill(-pid, SIGKILL);
                r->end = EXEC_TOO_MUCH_OUTPUT;
                break;
            }
            if (st > 0)
                close_fd(&out[0]);
        }
        if (i_err >= 0 && pf[i_err].revents && read_stderr(errp[0], r) > 0)
            close_fd(&errp[0]);
        if (!exited && (pidfd < 0 || (i_pid >= 0 && pf[i_pid].revents))) {
            pid_t w = waitpid(pid, &r->status, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD)) {
                if (w < 0) { /* reaped behind our back (SIGCHLD ignored?) */
                    snprintf(err, errlen, "the command's exit status was lost: something else "
                             "reaped process %d", (int)pid);
                    pid = -1;
                    goto done;
                }
                exited = 1;
                exit_ns = exec_now_ns();
                if (in[1] >= 0) {
                    r->stdin_short = 1;
                    close_fd(&in[1]);
                }
            }
        }
    }
    rc = 0;

done:
    if (pid > 0 && !exited) {
        if (rc < 0)
            kill(-pid, SIGKILL);
        while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
            ;
    }
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&pidfd);
    if (masked) {
        if (caused_sigpipe && !sigpipe_pending_before) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    }
    r->out[r->out_len] = '\0';
    r->elapsed_ms = (exec_now_ns() - t0) / 1000000;
    return rc;
}

void exec_result_release(struct exec_result *r)
{
    if (!r)
        return;
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
}
