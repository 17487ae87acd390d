/* capture.c - per-invocation stdout/stderr capture (see capture.h). */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sluice/handler.h"

#define PIPE_BYTES (1 << 20)

/* In a sanitizer build: where its reports go (weak: absent otherwise). */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static int redirect(int target, int *rfd, struct err *e)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return err_set(e, "cannot capture the handler's output: %s", strerror(errno));
    fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES); /* best effort: the default is 64 KiB */
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    if (dup2(p[1], target) < 0) {
        int saved = errno;
        close(p[0]);
        close(p[1]);
        return err_set(e, "cannot capture the handler's output: %s", strerror(saved));
    }
    close(p[1]);
    *rfd = p[0];
    return 0;
}

int capture_start(struct capture *c, struct err *e)
{
    c->rfd[0] = c->rfd[1] = -1;
    fflush(stdout);
    fflush(stderr);
    c->diag = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (c->diag >= 0 && __sanitizer_set_report_fd)
        __sanitizer_set_report_fd((void *)(intptr_t)c->diag);
    if (redirect(STDOUT_FILENO, &c->rfd[0], e) < 0 || redirect(STDERR_FILENO, &c->rfd[1], e) < 0) {
        capture_stop(c);
        return -1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return 0;
}

struct drain {
    capture_line_fn line;
    void *arg;
    size_t lines;               /* handed out this drain */
    size_t cut;                 /* bytes not handed out */
};

static void emit(struct drain *d, int level, const char *s, size_t n)
{
    while (n > CAPTURE_LINE_MAX) {
        emit(d, level, s, CAPTURE_LINE_MAX);
        s += CAPTURE_LINE_MAX;
        n -= CAPTURE_LINE_MAX;
    }
    if (d->lines >= CAPTURE_MAX_LINES) {
        d->cut += n + 1;
        return;
    }
    d->lines++;
    d->line(d->arg, level, s, n);
}

static void drain_fd(struct drain *d, int fd, int level)
{
    static char buf[PIPE_BYTES + 1];
    size_t have = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof buf - 1 - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k > 0)
            have += (size_t)k;
        /* whole lines out; a full buffer without one goes as it is */
        size_t start = 0;
        for (char *nl; (nl = memchr(buf + start, '\n', have - start));) {
            emit(d, level, buf + start, (size_t)(nl - (buf + start)));
            start = (size_t)(nl - buf) + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (k <= 0 || have == sizeof buf - 1) {
            if (have)
                emit(d, level, buf, have);
            have = 0;
            if (k <= 0)
                return;
        }
    }
}

void capture_drain(struct capture *c, capture_line_fn line, void *arg)
{
    if (c->rfd[0] < 0)
        return;
    fflush(stdout);
    fflush(stderr);
    clearerr(stdout); /* a full pipe set the error flag; the next call starts afresh */
    clearerr(stderr);
    struct drain d = {.line = line, .arg = arg};
    drain_fd(&d, c->rfd[0], SL_LOG_INFO);
    drain_fd(&d, c->rfd[1], SL_LOG_ERROR);
    if (d.cut) {
        char msg[160];
        int n = snprintf(msg, sizeof msg, "[sluice: %zu more bytes of output cut: at most %d "
                         "lines per invocation]", d.cut, CAPTURE_MAX_LINES);
        line(arg, SL_LOG_WARN, msg, (size_t)n);
    }
}

void capture_stop(struct capture *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->rfd[i] >= 0)
            close(c->rfd[i]);
        c->rfd[i] = -1;
    }
    /* c->diag stays open: the sanitizer's leak report comes at exit */
}
