/* pool.h - the executor threads: a fixed number (`workers`, default one
 * per CPU) shared by every pipeline of every generation. They run only
 * what must not run on the loop thread: handler calls in thread isolation
 * and the run bookkeeping between them. Worker processes need no thread
 * here: the loop talks to them (worker.h). Tasks run in the order they
 * were submitted; the scheduler decides that order. */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include "err.h"

struct pool;

struct pool_task {
    void (*run)(struct pool_task *t);
    struct pool_task *next;
};

int pool_new(int threads, struct pool **out, struct err *e);
/* Any thread. */
void pool_submit(struct pool *p, struct pool_task *t);
/* Let queued and running tasks finish, then join the threads. */
void pool_free(struct pool **p);

#endif
