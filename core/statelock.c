/* statelock.c - the state folder's lock file (see statelock.h). */
#include "statelock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "path.h"

#define LOCK_NAME "sluice.lock"

struct statelock {
    int fd;
    char *path;
};

/* The pid the holder wrote, or 0 if it cannot be read (it may be writing it
 * right now). */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

static int write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return -1;
    return 0;
}

int statelock_take(const char *state_dir, struct statelock **out, struct err *e)
{
    *out = NULL;
    struct statelock *l = calloc(1, sizeof *l);
    char *path = path_join(state_dir, LOCK_NAME);
    if (!l || !path) {
        free(l);
        free(path);
        return err_set(e, "out of memory");
    }
    l->path = path;
    l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (l->fd < 0) {
        err_set(e, "cannot open the lock file %s: %s", path, strerror(errno));
        statelock_release(&l);
        return -1;
    }
    if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            long pid = holder_pid(l->fd);
            char who[48] = "another process";
            if (pid > 0)
                snprintf(who, sizeof who, "pid %ld", pid);
            err_set(e, "the state folder %s is in use by another sluice (%s holds %s): stop "
                    "it first, or give this daemon its own state_dir and database", state_dir,
                    who, path);
        } else {
            err_set(e, "cannot lock %s: %s", path, strerror(errno));
        }
        statelock_release(&l);
        return -1;
    }
    if (write_pid(l->fd) < 0) {
        err_set(e, "cannot write the pid into %s: %s", path, strerror(errno));
        statelock_release(&l);
        return -1;
    }
    *out = l;
    return 0;
}

void statelock_release(struct statelock **lp)
{
    struct statelock *l = *lp;
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd); /* drops the flock; the file stays (unlinking would race a starter) */
    free(l->path);
    free(l);
    *lp = NULL;
}
