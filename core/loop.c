/* loop.c - epoll loop with a cross-thread inbox woken by an eventfd
 * (see loop.h). */
#include "loop.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct watcher {
    int fd;
    loop_fd_fn fn;
    void *arg;
    struct watcher *next;
};

struct loop {
    int epfd;
    int wakefd;
    struct watcher *watchers;
    /* Removed while events for them may still be in the batch being
     * dispatched: freed once it is done. */
    struct watcher *dead;
    pthread_mutex_t lock;
    struct loop_task *inbox_head, *inbox_tail;
    size_t inbox_len;
    struct loop_timer *timers;  /* sorted by due time */
};

int loop_new(struct loop **out, struct err *e)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(e, "out of memory");
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wakefd < 0) {
        err_set(e, "cannot create the event loop: %s", strerror(errno));
        goto fail;
    }
    /* Edge-triggered and never read: every write to an eventfd signals
     * epoll again, whatever its count, so a wake-up costs the poster's
     * write and nothing else (the count cannot reach its limit of 2^64 - 2
     * writes). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
        err_set(e, "cannot create the event loop: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&l->lock, NULL);
    *out = l;
    return 0;
fail:
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l);
    return -1;
}

/* The tasks posted before this call, taken one at a time under the lock, so
 * a task can still cancel one not yet run (a source freed by an earlier
 * task cancels what its thread posted). Tasks posted meanwhile wait for the
 * next round (the loop wakes itself for them), so timers and sockets get
 * their turn between rounds. */
void loop_run_inbox(struct loop *l)
{
    pthread_mutex_lock(&l->lock);
    size_t n = l->inbox_len;
    pthread_mutex_unlock(&l->lock);
    for (; n > 0; n--) {
        pthread_mutex_lock(&l->lock);
        struct loop_task *t = l->inbox_head;
        if (t) {
            l->inbox_head = t->next;
            if (!l->inbox_head)
                l->inbox_tail = NULL;
            l->inbox_len--;
        }
        pthread_mutex_unlock(&l->lock);
        if (!t)
            break;
        t->run(t);
    }
    pthread_mutex_lock(&l->lock);
    bool more = l->inbox_head != NULL;
    pthread_mutex_unlock(&l->lock);
    if (more) { /* posted meanwhile into a list not empty: nobody woke the loop */
        uint64_t one = 1;
        ssize_t w = write(l->wakefd, &one, sizeof one);
        (void)w;
    }
}

void loop_free(struct loop **lp)
{
    struct loop *l = *lp;
    if (!l)
        return;
    loop_run_inbox(l);
    while (l->watchers) {
        struct watcher *w = l->watchers;
        l->watchers = w->next;
        free(w);
    }
    while (l->dead) {
        struct watcher *w = l->dead;
        l->dead = w->next;
        free(w);
    }
    close(l->epfd);
    close(l->wakefd);
    pthread_mutex_destroy(&l->lock);
    free(l);
    *lp = NULL;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg,
                struct err *e)
{
    struct watcher *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, "out of memory");
    *w = (struct watcher){.fd = fd, .fn = fn, .arg = arg, .next = l->watchers};
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(w);
        return err_set(e, "cannot watch fd %d: %s", fd, strerror(errno));
    }
    l->watchers = w;
    return 0;
}

void loop_del_fd(struct loop *l, int fd)
{
    for (struct watcher **p = &l->watchers; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            struct watcher *w = *p;
            *p = w->next;
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            w->fn = NULL;
            w->next = l->dead;
            l->dead = w;
            return;
        }
    }
}

void loop_post(struct loop *l, struct loop_task *task)
{
    task->next = NULL;
    pthread_mutex_lock(&l->lock);
    bool was_empty = l->inbox_head == NULL;
    if (l->inbox_tail)
        l->inbox_tail->next = task;
    else
        l->inbox_head = task;
    l->inbox_tail = task;
    l->inbox_len++;
    pthread_mutex_unlock(&l->lock);
    if (!was_empty)
        return; /* the loop was woken for the first task and takes them all */
    uint64_t one = 1;
    ssize_t w = write(l->wakefd, &one, sizeof one);
    (void)w; /* cannot fail: the count only grows by one per wake-up */
}

void loop_cancel(struct loop *l, struct loop_task *task)
{
    pthread_mutex_lock(&l->lock);
    struct loop_task *prev = NULL;
    for (struct loop_task *t = l->inbox_head; t; prev = t, t = t->next) {
        if (t != task)
            continue;
        if (prev)
            prev->next = t->next;
        else
            l->inbox_head = t->next;
        if (l->inbox_tail == t)
            l->inbox_tail = prev;
        l->inbox_len--;
        break;
    }
    pthread_mutex_unlock(&l->lock);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    for (struct loop_timer **p = &l->timers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    t->armed = 0;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t due_ns)
{
    if (t->armed)
        loop_timer_cancel(l, t);
    t->due_ns = due_ns;
    t->armed = 1;
    struct loop_timer **p = &l->timers;
    while (*p && (*p)->due_ns <= due_ns)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

static int timer_timeout(struct loop *l, int timeout_ms)
{
    if (!l->timers)
        return timeout_ms;
    int64_t left = (l->timers->due_ns - clock_mono_ns() + 999999) / 1000000;
    if (left < 0)
        left = 0;
    if (timeout_ms >= 0 && left > timeout_ms)
        return timeout_ms;
    return left > 86400000 ? 86400000 : (int)left;
}

static void fire_timers(struct loop *l)
{
    int64_t now = clock_mono_ns();
    while (l->timers && l->timers->due_ns <= now) {
        struct loop_timer *t = l->timers;
        l->timers = t->next;
        t->armed = 0;
        t->fire(t);
    }
}

int loop_run_once(struct loop *l, int timeout_ms, struct err *e)
{
    struct epoll_event evs[64];
    int n = epoll_wait(l->epfd, evs, 64, timer_timeout(l, timeout_ms));
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        return err_set(e, "epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        struct watcher *w = evs[i].data.ptr;
        if (w && w->fn) /* NULL: the inbox's eventfd (it runs below), or removed */
            w->fn(w->arg, evs[i].events);
    }
    while (l->dead) {
        struct watcher *w = l->dead;
        l->dead = w->next;
        free(w);
    }
    loop_run_inbox(l);
    fire_timers(l);
    return 0;
}
