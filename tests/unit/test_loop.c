/* test_loop.c - unit tests for the event loop (core/loop.c): tasks posted
 * from other threads wake a loop blocked in epoll and run once each, in
 * order per poster, including tasks posted while the inbox runs (no
 * wake-up is lost, over many rounds); loop_run_inbox runs what was posted
 * without waiting; cancelled tasks do not run; timers fire in due order
 * and bound the wait; file descriptors are dispatched. */
#include "loop.h"

#include "clock.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct counted {
    struct loop_task task;
    int poster, seq;
    atomic_int *ran;
    int *last;                  /* last seq run, per poster (loop thread only) */
    bool *in_order;
};

static void counted_run(struct loop_task *t)
{
    struct counted *c = (struct counted *)t;
    if (c->last[c->poster] != c->seq - 1)
        *c->in_order = false;
    c->last[c->poster] = c->seq;
    atomic_fetch_add(c->ran, 1);
}

enum { POSTERS = 3, PER_POSTER = 20000 };

struct poster {
    struct loop *l;
    struct counted *tasks;
    int n;
};

static void *post_all(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < p->n; i++) {
        loop_post(p->l, &p->tasks[i].task);
        if (i % 64 == 0)
            usleep(10); /* let the loop go back to sleep now and then */
    }
    return NULL;
}

/* Many tasks from several threads while the loop blocks in epoll_wait with
 * no timeout: every one runs, once, in order per poster. A lost wake-up
 * would leave the loop asleep; the watchdog below reports it. */
static void test_cross_thread_posts(void)
{
    struct loop *l = NULL;
    struct err e;
    CHECK(loop_new(&l, &e) == 0);
    atomic_int ran = 0;
    int last[POSTERS];
    bool in_order = true;
    struct counted *tasks = calloc(POSTERS * PER_POSTER, sizeof *tasks);
    struct poster posters[POSTERS];
    pthread_t threads[POSTERS];
    for (int p = 0; p < POSTERS; p++) {
        last[p] = -1;
        for (int i = 0; i < PER_POSTER; i++)
            tasks[p * PER_POSTER + i] = (struct counted){
                .task.run = counted_run, .poster = p, .seq = i, .ran = &ran, .last = last,
                .in_order = &in_order};
        posters[p] = (struct poster){.l = l, .tasks = &tasks[p * PER_POSTER], .n = PER_POSTER};
        CHECK(pthread_create(&threads[p], NULL, post_all, &posters[p]) == 0);
    }
    int64_t deadline = clock_mono_ns() + 20 * 1000000000LL;
    while (atomic_load(&ran) < POSTERS * PER_POSTER && clock_mono_ns() < deadline)
        loop_run_once(l, 1000, &e); /* 1 s: long enough that a lost wake-up shows */
    for (int p = 0; p < POSTERS; p++)
        pthread_join(threads[p], NULL);
    CHECK(atomic_load(&ran) == POSTERS * PER_POSTER);
    CHECK(in_order);
    loop_free(&l);
    free(tasks);
}

struct ping {
    struct loop_task task;
    struct loop *l;
    atomic_int *ran;
    int64_t posted_ns;
    int64_t *worst_ns;
};

static void ping_run(struct loop_task *t)
{
    struct ping *p = (struct ping *)t;
    int64_t took = clock_mono_ns() - p->posted_ns;
    if (took > *p->worst_ns)
        *p->worst_ns = took;
    atomic_fetch_add(p->ran, 1);
}

struct pinger {
    struct loop *l;
    struct ping *pings;
    int n;
    atomic_int *ran;
};

/* One task at a time, each posted only after the last one ran: every post
 * finds the inbox empty and must wake the loop by itself. */
static void *ping_one_by_one(void *arg)
{
    struct pinger *g = arg;
    int64_t deadline = clock_mono_ns() + 20 * 1000000000LL;
    for (int i = 0; i < g->n; i++) {
        while (atomic_load(g->ran) < i && clock_mono_ns() < deadline)
            usleep(50);
        g->pings[i].posted_ns = clock_mono_ns();
        loop_post(g->l, &g->pings[i].task);
    }
    return NULL;
}

static void test_every_post_wakes(void)
{
    enum { N = 300 };
    struct loop *l = NULL;
    struct err e;
    CHECK(loop_new(&l, &e) == 0);
    atomic_int ran = 0;
    int64_t worst = 0;
    struct ping *pings = calloc(N, sizeof *pings);
    for (int i = 0; i < N; i++)
        pings[i] = (struct ping){.task.run = ping_run, .l = l, .ran = &ran, .worst_ns = &worst};
    struct pinger g = {.l = l, .pings = pings, .n = N, .ran = &ran};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, ping_one_by_one, &g) == 0);
    int64_t deadline = clock_mono_ns() + 20 * 1000000000LL;
    while (atomic_load(&ran) < N && clock_mono_ns() < deadline)
        loop_run_once(l, 2000, &e);
    pthread_join(t, NULL);
    loop_run_inbox(l); /* a task posted as time ran out */
    CHECK(atomic_load(&ran) == N);
    /* each woke the loop at once, not at the end of a 2 s wait */
    CHECK(worst < 1000 * 1000000LL);
    if (worst >= 1000 * 1000000LL)
        fprintf(stderr, "  slowest wake-up: %lld ms\n", (long long)(worst / 1000000));
    loop_free(&l);
    free(pings);
}

static int plain_ran;

static void plain_run(struct loop_task *t)
{
    (void)t;
    plain_ran++;
}

/* A task that cancels one posted after it, before it runs: what a source
 * freed by a task does with the batches its thread posted. */
static struct loop *cancel_loop;
static struct loop_task *cancel_victim, *repost;

static void cancel_run(struct loop_task *t)
{
    (void)t;
    plain_ran++;
    if (cancel_victim)
        loop_cancel(cancel_loop, cancel_victim);
    if (repost)
        loop_post(cancel_loop, repost);
}

static void test_a_task_cancels_a_later_one_of_its_round(void)
{
    struct err e;
    CHECK(loop_new(&cancel_loop, &e) == 0);
    struct loop_task a = {.run = cancel_run}, b = {.run = plain_run}, c = {.run = plain_run};
    plain_ran = 0;
    cancel_victim = &b;
    loop_post(cancel_loop, &a);
    loop_post(cancel_loop, &b);
    loop_run_inbox(cancel_loop);
    CHECK(plain_ran == 1); /* b was cancelled before its turn */
    /* a task posted during a round runs in the next, and the loop wakes for it */
    cancel_victim = NULL;
    repost = &c;
    loop_post(cancel_loop, &a);
    loop_run_inbox(cancel_loop);
    CHECK(plain_ran == 2);
    repost = NULL;
    int64_t t0 = clock_mono_ns();
    while (plain_ran < 3 && clock_mono_ns() - t0 < 2000 * 1000000LL)
        CHECK(loop_run_once(cancel_loop, 2000, &e) == 0);
    CHECK(plain_ran == 3); /* a lost wake-up would have left it waiting */
    loop_free(&cancel_loop);
}

static void test_inbox_and_cancel(void)
{
    struct loop *l = NULL;
    struct err e;
    CHECK(loop_new(&l, &e) == 0);
    struct loop_task a = {.run = plain_run}, b = {.run = plain_run}, c = {.run = plain_run};
    plain_ran = 0;
    loop_post(l, &a);
    loop_post(l, &b);
    loop_post(l, &c);
    loop_cancel(l, &b);
    loop_run_inbox(l);
    CHECK(plain_ran == 2);
    /* the wake-up those posts left pending returns at once, with nothing to run */
    int64_t t0 = clock_mono_ns();
    CHECK(loop_run_once(l, 2000, &e) == 0);
    CHECK(plain_ran == 2);
    CHECK(clock_mono_ns() - t0 < 1000 * 1000000LL);
    /* tasks still queued run when the loop is freed */
    loop_post(l, &a);
    loop_free(&l);
    CHECK(plain_ran == 3);
}

static int fired[3], n_fired;

static void timer_fire(struct loop_timer *t)
{
    fired[n_fired++] = (int)(t->due_ns % 10);
}

static void test_timers(void)
{
    struct loop *l = NULL;
    struct err e;
    CHECK(loop_new(&l, &e) == 0);
    int64_t now = clock_mono_ns();
    /* due times 30, 10 and 20 ms from now; the last digit names them */
    struct loop_timer t1 = {.fire = timer_fire}, t2 = {.fire = timer_fire},
                      t3 = {.fire = timer_fire}, gone = {.fire = timer_fire};
    loop_timer_arm(l, &t1, now / 10 * 10 + 30000000 + 1);
    loop_timer_arm(l, &t2, now / 10 * 10 + 10000000 + 2);
    loop_timer_arm(l, &t3, now / 10 * 10 + 20000000 + 3);
    loop_timer_arm(l, &gone, now + 15000000);
    loop_timer_cancel(l, &gone);
    int64_t deadline = now + 5 * 1000000000LL;
    while (n_fired < 3 && clock_mono_ns() < deadline)
        loop_run_once(l, -1, &e); /* no fd is ready: only the timers end the wait */
    CHECK(n_fired == 3);
    CHECK(fired[0] == 2 && fired[1] == 3 && fired[2] == 1);
    CHECK(clock_mono_ns() - now >= 30000000);
    CHECK(!t1.armed && !t2.armed && !t3.armed && !gone.armed);
    loop_free(&l);
}

static int fd_calls;

static void on_fd(void *arg, uint32_t events)
{
    int *fd = arg;
    char buf[16];
    if (events && read(*fd, buf, sizeof buf) > 0)
        fd_calls++;
}

static void test_fd(void)
{
    struct loop *l = NULL;
    struct err e;
    CHECK(loop_new(&l, &e) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(loop_add_fd(l, p[0], EPOLLIN, on_fd, &p[0], &e) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(loop_run_once(l, 1000, &e) == 0);
    CHECK(fd_calls == 1);
    loop_del_fd(l, p[0]);
    CHECK(write(p[1], "y", 1) == 1);
    CHECK(loop_run_once(l, 50, &e) == 0);
    CHECK(fd_calls == 1);
    close(p[0]);
    close(p[1]);
    loop_free(&l);
}

int main(void)
{
    test_cross_thread_posts();
    test_every_post_wakes();
    test_inbox_and_cancel();
    test_a_task_cancels_a_later_one_of_its_round();
    test_timers();
    test_fd();
    return test_summary();
}
