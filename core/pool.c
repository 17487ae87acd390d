/* pool.c - the executor threads (see pool.h). */
#include "pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pool_task *head, *tail;
    int idle;                   /* threads waiting on cond */
    int waking;                 /* ... of them signalled and not yet awake */
    bool stopping;
    pthread_t *threads;
    int n;
};

static struct pool_task *take(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->head && !p->stopping) {
        p->idle++;
        pthread_cond_wait(&p->cond, &p->lock);
        p->idle--;
        if (p->waking > 0)
            p->waking--;
    }
    struct pool_task *t = p->head;
    if (t) {
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return t;
}

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    struct pool_task *t;
    while ((t = take(p)))
        t->run(t);
    return NULL;
}

int pool_new(int threads, struct pool **out, struct err *e)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)threads, sizeof *p->threads))) {
        free(p);
        return err_set(e, "out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (; p->n < threads; p->n++) {
        if (pthread_create(&p->threads[p->n], NULL, pool_thread, p) != 0) {
            pool_free(&p);
            return err_set(e, "cannot start executor thread %d of %d", p->n + 1, threads);
        }
    }
    *out = p;
    return 0;
}

void pool_submit(struct pool *p, struct pool_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    /* a thread already signalled takes this task too once awake: a burst
     * of submits costs one futex wake per sleeping thread, not per task */
    bool wake = p->idle > p->waking;
    p->waking += wake;
    pthread_mutex_unlock(&p->lock);
    if (wake) /* after unlocking: the woken thread does not block on the lock at once */
        pthread_cond_signal(&p->cond);
}

void pool_free(struct pool **pp)
{
    struct pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_broadcast(&p->cond);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
    *pp = NULL;
}
