/* loop.h - the daemon's one event loop: epoll over file descriptors
 * (inotify, signals, later sockets and worker pipes), plus an inbox that
 * other threads post tasks to (the writer's commits, finished runs).
 *
 * Everything that changes daemon state runs on this loop's thread, so that
 * state needs no locks; threads talk to it only through loop_post.
 */
#ifndef SLUICE_LOOP_H
#define SLUICE_LOOP_H

#include <stdint.h>

#include "err.h"

struct loop;

typedef void (*loop_fd_fn)(void *arg, uint32_t events);

/* A task posted from any thread; run on the loop thread, which then owns it. */
struct loop_task {
    void (*run)(struct loop_task *task);
    struct loop_task *next;
};

/* A one-shot timer on the loop thread (CLOCK_MONOTONIC), owned by the caller. */
struct loop_timer {
    int64_t due_ns;
    void (*fire)(struct loop_timer *timer);
    struct loop_timer *next;
    int armed;
};

int loop_new(struct loop **out, struct err *e);
/* Runs the tasks still in the inbox, then frees. Fds must be removed first. */
void loop_free(struct loop **l);

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg,
                struct err *e);
void loop_del_fd(struct loop *l, int fd);

/* Thread-safe. */
void loop_post(struct loop *l, struct loop_task *task);
/* Take task out of the inbox if it is still there (its owner is going away). */
void loop_cancel(struct loop *l, struct loop_task *task);

/* Loop thread only: arm (or re-arm) t to fire at due_ns; cancel disarms. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t due_ns);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* Run the tasks posted so far, and nothing else. */
void loop_run_inbox(struct loop *l);

/* Wait up to timeout_ms (-1: forever; sooner if a timer is due) and
 * dispatch what is ready, the inbox and due timers included. Returns 0, or -1 on an epoll failure. */
int loop_run_once(struct loop *l, int timeout_ms, struct err *e);

#endif
