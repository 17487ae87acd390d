/* source_dir.c - inotify-based folder watching (see source_dir.h).
 *
 * Watches are kept in an array sorted by watch descriptor. A file found by
 * a scan is checked with a read lease: the kernel refuses the lease while
 * anyone has the file open for writing, which is exactly "not complete yet".
 *
 * Scans run in slices of SCAN_SLICE entries, one slice per loop turn (a
 * timer due at once), so a folder of 200,000 files neither blocks the loop
 * nor piles its events up in memory: what a slice reports is journaled and
 * released before the next one. The scan holds one open folder and the
 * paths of the folders still to read, never the files.
 *
 * A root (a folder a pipeline names) that is deleted or moved away is
 * noticed (IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED), logged, and looked
 * for every ROOT_RETRY_NS; when it is back it is watched and scanned again.
 */
#include "source_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "loop.h"
#include "path.h"
#include "s3event.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_ONLYDIR | \
                    IN_DELETE_SELF | IN_MOVE_SELF)
#define SCAN_SLICE 256                  /* folder entries per loop turn */
#define ROOT_RETRY_NS 500000000         /* how often a missing root is looked for */
#define MAX_DEPTH 64

struct watch {
    int wd;
    bool recursive;
    char *path;
};

struct root {
    char *dir;
    bool recursive;
    bool lost;                  /* deleted or moved away: looked for by the timer */
};

/* A folder the scan has still to read. */
struct pending {
    char *dir;
    bool recursive;
    int depth;
};

static void forget_tree(struct source_dir *s, const char *dir);
static void on_readable(void *arg, uint32_t events);

struct source_dir {
    struct loop *loop;
    int fd;
    source_dir_fn fn;
    void *arg;
    struct watch *watches;
    size_t n_watches, cap_watches;
    struct root *roots;
    size_t n_roots;
    bool paused;                /* the fd is out of the loop, and the scan waits */
    struct pending *todo;       /* a stack: depth first */
    size_t n_todo, cap_todo;
    DIR *cur;                   /* the folder being read, described by at */
    struct pending at;
    struct loop_timer slice;    /* the scan's next slice */
    struct loop_timer look;     /* looks for lost roots */
};

static struct watch *watch_find(struct source_dir *s, int wd)
{
    size_t lo = 0, hi = s->n_watches;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->watches[mid].wd == wd)
            return &s->watches[mid];
        if (s->watches[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int watch_insert(struct source_dir *s, int wd, const char *path, bool recursive)
{
    struct watch *w = watch_find(s, wd);
    if (w) { /* the same folder under a new name, or a second root */
        char *p = strdup(path);
        if (!p)
            return -1;
        free(w->path);
        w->path = p;
        w->recursive = w->recursive || recursive;
        return 0;
    }
    if (s->n_watches == s->cap_watches) {
        size_t cap = s->cap_watches ? s->cap_watches * 2 : 16;
        struct watch *v = realloc(s->watches, cap * sizeof *v);
        if (!v)
            return -1;
        s->watches = v;
        s->cap_watches = cap;
    }
    size_t at = s->n_watches;
    while (at > 0 && s->watches[at - 1].wd > wd)
        at--;
    char *p = strdup(path);
    if (!p)
        return -1;
    memmove(&s->watches[at + 1], &s->watches[at], (s->n_watches - at) * sizeof *s->watches);
    s->watches[at] = (struct watch){.wd = wd, .recursive = recursive, .path = p};
    s->n_watches++;
    return 0;
}

static void watch_remove(struct source_dir *s, int wd)
{
    struct watch *w = watch_find(s, wd);
    if (!w)
        return;
    free(w->path);
    size_t at = (size_t)(w - s->watches);
    memmove(w, w + 1, (s->n_watches - at - 1) * sizeof *w);
    s->n_watches--;
}

static int add_watch(struct source_dir *s, const char *dir, bool recursive)
{
    int wd = inotify_add_watch(s->fd, dir, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOSPC)
            log_msg(LOG_ERROR, "cannot watch %s: too many inotify watches; raise "
                    "fs.inotify.max_user_watches (sysctl)", dir);
        else
            log_msg(LOG_ERROR, "cannot watch %s: %s", dir, strerror(errno));
        return -1;
    }
    if (watch_insert(s, wd, dir, recursive) < 0) {
        log_msg(LOG_ERROR, "cannot watch %s: out of memory", dir);
        return -1;
    }
    return 0;
}

/* True if path is a regular file nobody has open for writing, with *st
 * taken while that holds: a stat taken before the check could describe the
 * file before its writer's last write and close (size 0, say), which would
 * be reported as a version that never was complete. */
static bool file_is_complete(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool complete = true;
    bool leased = fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    if (!leased && errno == EAGAIN)
        complete = false;
    /* other errors (no CAP_LEASE, a file system without leases): assume the
     * writer is done, as every other folder watcher must */
    if (complete && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)))
        complete = false;
    if (leased)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    close(fd);
    return complete;
}

/* A file an inotify event named as complete (closed after writing, or
 * moved in): reported if it is (still) a regular file. */
static void report(struct source_dir *s, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return; /* gone again, or not a regular file: symlinks are never followed */
    s->fn(s->arg, path, &st, true);
}

static void arm_slice(struct source_dir *s)
{
    if (!s->paused && (s->cur || s->n_todo) && !s->slice.armed)
        loop_timer_arm(s->loop, &s->slice, clock_mono_ns());
}

/* Queue dir to be scanned (its files reported, and when recursive its
 * subfolders watched and scanned). */
static void scan_later(struct source_dir *s, const char *dir, bool recursive, int depth)
{
    if (depth > MAX_DEPTH) {
        log_msg(LOG_WARN, "not following %s: folders nested deeper than %d", dir, MAX_DEPTH);
        return;
    }
    if (s->n_todo == s->cap_todo) {
        size_t cap = s->cap_todo ? s->cap_todo * 2 : 8;
        struct pending *v = realloc(s->todo, cap * sizeof *v);
        if (!v) {
            log_msg(LOG_ERROR, "cannot scan %s: out of memory", dir);
            return;
        }
        s->todo = v;
        s->cap_todo = cap;
    }
    char *copy = strdup(dir);
    if (!copy) {
        log_msg(LOG_ERROR, "cannot scan %s: out of memory", dir);
        return;
    }
    s->todo[s->n_todo++] = (struct pending){.dir = copy, .recursive = recursive, .depth = depth};
    arm_slice(s);
}

static void close_current(struct source_dir *s)
{
    if (s->cur)
        closedir(s->cur);
    s->cur = NULL;
    free(s->at.dir);
    s->at.dir = NULL;
}

/* Open the next folder to read; false when the scan is over. */
static bool open_next(struct source_dir *s)
{
    while (!s->cur && s->n_todo) {
        s->at = s->todo[--s->n_todo];
        s->cur = opendir(s->at.dir);
        if (!s->cur) {
            if (errno != ENOENT)
                log_msg(LOG_WARN, "cannot scan %s: %s", s->at.dir, strerror(errno));
            close_current(s);
        }
    }
    return s->cur != NULL;
}

/* One entry of the folder being read. */
static void scan_entry(struct source_dir *s, const char *name)
{
    if (s3event_ignored_name(name))
        return; /* hidden, temporary, "." and ".." */
    char *path = path_join(s->at.dir, name);
    if (!path)
        return;
    struct stat st; /* lstat: symlinks are never followed */
    bool found = lstat(path, &st) == 0;
    if (found && S_ISDIR(st.st_mode)) {
        if (s->at.recursive && add_watch(s, path, true) == 0)
            scan_later(s, path, true, s->at.depth + 1);
    } else if (found && S_ISREG(st.st_mode) && file_is_complete(path, &st)) {
        s->fn(s->arg, path, &st, false);
    }
    free(path);
}

static void on_slice(struct loop_timer *t)
{
    struct source_dir *s = (struct source_dir *)((char *)t - offsetof(struct source_dir, slice));
    for (int done = 0; done < SCAN_SLICE && !s->paused && open_next(s); done++) {
        struct dirent *de = readdir(s->cur);
        if (de)
            scan_entry(s, de->d_name);
        else
            close_current(s);
    }
    arm_slice(s);
}

static bool scan_pending(const struct source_dir *s, const char *dir)
{
    for (size_t i = 0; i < s->n_todo; i++)
        if (strcmp(s->todo[i].dir, dir) == 0)
            return true;
    return false;
}

/* A root already waiting to be scanned is not queued twice (overflows
 * come in bursts); one being read now is, since files may have landed
 * behind the point it has reached. */
void source_dir_scan(struct source_dir *s)
{
    for (size_t i = 0; i < s->n_roots; i++)
        if (!s->roots[i].lost && !scan_pending(s, s->roots[i].dir))
            scan_later(s, s->roots[i].dir, s->roots[i].recursive, 0);
}

bool source_dir_scanning(const struct source_dir *s)
{
    return s->cur || s->n_todo;
}

void source_dir_pause(struct source_dir *s, bool pause)
{
    if (pause == s->paused)
        return;
    s->paused = pause;
    if (pause) {
        loop_del_fd(s->loop, s->fd); /* the kernel queues events; an overflow rescans */
        loop_timer_cancel(s->loop, &s->slice);
        return;
    }
    struct err e;
    if (loop_add_fd(s->loop, s->fd, EPOLLIN, on_readable, s, &e) < 0)
        log_msg(LOG_ERROR, "folder watching cannot resume: %s", e.msg);
    arm_slice(s);
}

bool source_dir_queue_deep(const struct source_dir *s)
{
    int bytes = 0;
    return ioctl(s->fd, FIONREAD, &bytes) == 0 && bytes > SOURCE_DIR_DEEP_BYTES;
}

static struct root *root_of(struct source_dir *s, const char *dir)
{
    for (size_t i = 0; i < s->n_roots; i++)
        if (strcmp(s->roots[i].dir, dir) == 0)
            return &s->roots[i];
    return NULL;
}

static void on_look(struct loop_timer *t)
{
    struct source_dir *s = (struct source_dir *)((char *)t - offsetof(struct source_dir, look));
    bool missing = false;
    for (size_t i = 0; i < s->n_roots; i++) {
        struct root *r = &s->roots[i];
        struct stat st;
        if (!r->lost)
            continue;
        if (stat(r->dir, &st) < 0 || !S_ISDIR(st.st_mode) || add_watch(s, r->dir, r->recursive)) {
            missing = true;
            continue;
        }
        r->lost = false;
        log_msg(LOG_INFO, "watched folder %s is back: watching it again and scanning it for "
                "files dropped meanwhile", r->dir);
        scan_later(s, r->dir, r->recursive, 0);
    }
    if (missing)
        loop_timer_arm(s->loop, &s->look, clock_mono_ns() + ROOT_RETRY_NS);
}

/* A root went away: stop watching what was under it (a moved folder's
 * watches follow it elsewhere) and look for it until it is back. */
static void lose_root(struct source_dir *s, struct root *r, const char *how)
{
    if (r->lost)
        return;
    r->lost = true;
    log_msg(LOG_WARN, "watched folder %s was %s: files dropped there are not seen until it is "
            "back; sluice watches it again (and scans it) as soon as it is recreated", r->dir,
            how);
    forget_tree(s, r->dir);
    if (!s->look.armed)
        loop_timer_arm(s->loop, &s->look, clock_mono_ns() + ROOT_RETRY_NS);
}

/* Stop watching a folder that moved away, and everything below it. */
static void forget_tree(struct source_dir *s, const char *dir)
{
    size_t len = strlen(dir);
    for (size_t i = s->n_watches; i-- > 0;) {
        const char *p = s->watches[i].path;
        if (strncmp(p, dir, len) == 0 && (p[len] == '\0' || p[len] == '/')) {
            inotify_rm_watch(s->fd, s->watches[i].wd);
            watch_remove(s, s->watches[i].wd);
        }
    }
}

static void handle_event(struct source_dir *s, const struct inotify_event *ev, bool *rescan)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        *rescan = true;
        return;
    }
    struct watch *w = watch_find(s, ev->wd);
    struct root *r = w ? root_of(s, w->path) : NULL;
    if (r && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
        lose_root(s, r, ev->mask & IN_MOVE_SELF ? "moved away" : "deleted");
        return;
    }
    if (ev->mask & IN_IGNORED) {
        watch_remove(s, ev->wd);
        return;
    }
    if (!w || !ev->len || s3event_ignored_name(ev->name))
        return;
    char *path = path_join(w->path, ev->name);
    if (!path)
        return;
    bool recursive = w->recursive;
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & IN_MOVED_FROM)
            forget_tree(s, path);
        else if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && recursive &&
                 add_watch(s, path, true) == 0)
            scan_later(s, path, true, 1);
    } else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        report(s, path);
    }
    free(path);
}

static void on_readable(void *arg, uint32_t events)
{
    struct source_dir *s = arg;
    (void)events;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false;
    /* One read per wake-up: the fd is level-triggered, so events left in
     * the queue wake the loop again at once, and a quiet folder costs no
     * second read that would only say EAGAIN. 16 KiB (a few hundred files)
     * is less than half a default lane, so the flow control between turns
     * can pause the watch before a burst overflows a lane into the journal
     * (where files no longer run ahead). */
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        log_msg(LOG_ERROR, "reading inotify events: %s", strerror(errno));
    for (char *p = buf; n > 0 && p < buf + n;) {
        const struct inotify_event *ev = (const struct inotify_event *)p;
        handle_event(s, ev, &rescan);
        p += sizeof *ev + ev->len;
    }
    if (rescan) {
        log_msg(LOG_WARN, "inotify queue overflowed (raise fs.inotify.max_queued_events for "
                "bursts this size); rescanning watched folders so no file is missed");
        source_dir_scan(s);
    }
}

int source_dir_new(struct loop *l, source_dir_fn fn, void *arg, struct source_dir **out,
                   struct err *e)
{
    struct source_dir *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, "out of memory");
    s->loop = l;
    s->fn = fn;
    s->arg = arg;
    s->slice.fire = on_slice;
    s->look.fire = on_look;
    s->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->fd < 0) {
        err_set(e, "inotify_init1: %s (raise fs.inotify.max_user_instances?)", strerror(errno));
        free(s);
        return -1;
    }
    if (loop_add_fd(l, s->fd, EPOLLIN, on_readable, s, e) < 0) {
        close(s->fd);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int source_dir_add(struct source_dir *s, const char *dir, bool recursive, struct err *e)
{
    if (path_mkdirs(dir, 0750, e) < 0)
        return -1;
    struct root *v = realloc(s->roots, (s->n_roots + 1) * sizeof *v);
    if (!v)
        return err_set(e, "out of memory");
    s->roots = v;
    char *copy = strdup(dir);
    if (!copy)
        return err_set(e, "out of memory");
    s->roots[s->n_roots++] = (struct root){.dir = copy, .recursive = recursive};
    if (add_watch(s, dir, recursive) < 0)
        return err_set(e, "cannot watch folder %s (see the message above)", dir);
    return 0;
}

void source_dir_free(struct source_dir **sp)
{
    struct source_dir *s = *sp;
    if (!s)
        return;
    loop_del_fd(s->loop, s->fd);
    close(s->fd);
    loop_timer_cancel(s->loop, &s->slice);
    loop_timer_cancel(s->loop, &s->look);
    close_current(s);
    for (size_t i = 0; i < s->n_todo; i++)
        free(s->todo[i].dir);
    free(s->todo);
    for (size_t i = 0; i < s->n_watches; i++)
        free(s->watches[i].path);
    free(s->watches);
    for (size_t i = 0; i < s->n_roots; i++)
        free(s->roots[i].dir);
    free(s->roots);
    free(s);
    *sp = NULL;
}
