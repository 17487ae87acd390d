/* dispatch.c - lanes, executor threads and journal refills (see dispatch.h).
 *
 * Lane counters (inflight, loaded_max, backlog) belong to the loop thread;
 * the queue between the loop and the executor threads has its own lock.
 */
#include "dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "pipeline.h"
#include "runner.h"
#include "worker.h"

struct lane;

static const char INTERRUPTED[] =
    "{\"errorType\":\"Interrupted\",\"errorMessage\":\"sluice stopped before the run "
    "finished; the event stays journaled and runs at the next start\"}";
static const char JOURNAL_ERROR[] =
    "{\"errorType\":\"JournalError\",\"errorMessage\":"
    "\"the event could not be journaled; see the daemon's log\"}";

struct job {
    struct loop_task task;      /* posted back to the loop when journaled or run */
    struct lane *lane;
    int64_t id;
    bool inserted;
    bool failed;
    char *event_id, *source, *payload;
    struct dispatch_reply reply;    /* fn NULL unless someone waits for the answer */
    enum run_outcome outcome;
    char *response;
    char request_id[37];
    char *record;               /* for a pipeline or ZeroMQ destination */
    int64_t received_ms;
    struct run_resume resume;   /* a run waiting for its retry */
    struct loop_timer timer;    /* ... fires when it is due */
    struct job *next_waiting;   /* the lane's list of jobs waiting for a timer */
    /* A job started ahead of its journal append (see may_run_ahead) gives
     * its slot back when its run ends, answers once the append's outcome is
     * in too, and is freed once the run's outcome has committed. */
    bool ahead;
    bool appended;              /* ahead: the append's outcome arrived */
    bool ran;                   /* ahead: the run ended */
    bool settled;               /* ahead: the outcome committed */
    bool exposed;               /* ahead: on the lane's exposed list */
    struct writer_ticket append;
    struct loop_task appended_task, settled_task;
    struct job *next_exposed;
};

struct lane {
    struct dispatch *d;
    const struct pipeline *p;
    /* loop thread only */
    int inflight;               /* queued + running */
    int reserved;               /* invokes journaling, sure of a slot */
    int appending;              /* other events journaling, not queued yet (dispatch_busy) */
    int capacity;
    int64_t loaded_max;         /* highest journal id handed to this lane */
    bool backlog;               /* pending events wait in the journal */
    unsigned long ended;        /* runs ended, ever */
    unsigned long ended_seen;   /* ... when crowded_since_ns was set */
    int64_t crowded_since_ns;   /* crowded, and no run ended since; 0 if not crowded */
    bool crowded_expired;       /* ... for too long to wait for */
    long journal_waiting;       /* how many (new ones counted; refills subtract) */
    /* shared with executor threads */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* a job was queued, or stopping */
    pthread_cond_t stop_cond;   /* stopping: wakes retry waits */
    struct job **ring;
    int head, count;
    bool stopping;
    struct job *waiting;        /* loop thread: jobs whose retry timer is armed */
    int ahead_unacked;          /* ahead jobs whose append outcome is not in */
    /* Ahead jobs whose append committed while events waited in the journal:
     * loaded_max could not cover them, and their rows read 'pending' until
     * their outcome commits, so refills skip them by id. */
    struct job *exposed;
    pthread_t *threads;
    int n_threads;
};

struct dispatch {
    char exe[4096];             /* this binary, for worker processes */
    struct loop *loop;
    struct writer *writer;
    sqlite3 *reader;
    struct lane *lanes;
    size_t n_lanes;
    bool started;
    dispatch_deliver_fn deliver;
    void *deliver_arg;
};

void dispatch_set_delivery(struct dispatch *d, dispatch_deliver_fn fn, void *arg)
{
    d->deliver = fn;
    d->deliver_arg = arg;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->event_id);
    free(j->source);
    free(j->payload);
    free(j->response);
    free(j->record);
    free(j->resume.event);
    free(j);
}

/* Loop thread: answer whoever waits for this job, once. */
static void job_answer(struct job *j, enum run_outcome outcome, const char *fallback)
{
    if (!j->reply.fn)
        return;
    if (j->response)
        j->reply.fn(j->reply.arg, j->outcome, j->response, j->request_id);
    else
        j->reply.fn(j->reply.arg, outcome, fallback, j->request_id);
    j->reply.fn = NULL;
}

static struct job *job_new(struct lane *lane, const char *event_id, const char *source,
                           const char *payload)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->lane = lane;
    j->received_ms = clock_wall_ms();
    j->event_id = strdup(event_id);
    j->source = strdup(source);
    j->payload = strdup(payload);
    if (!j->event_id || !j->source || !j->payload) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void on_job_finished(struct loop_task *t);

/* Loop thread: hand a job to the executor threads. The caller checked room. */
static void lane_push(struct lane *lane, struct job *j)
{
    j->task.run = on_job_finished;
    lane->inflight++;
    if (!j->ahead && j->id > lane->loaded_max) /* an ahead job's id is not known yet */
        lane->loaded_max = j->id;
    pthread_mutex_lock(&lane->lock);
    lane->ring[(lane->head + lane->count) % lane->capacity] = j;
    lane->count++;
    pthread_cond_signal(&lane->cond);
    pthread_mutex_unlock(&lane->lock);
}

static bool is_exposed(const struct lane *lane, int64_t id)
{
    for (const struct job *j = lane->exposed; j; j = j->next_exposed)
        if (j->id == id)
            return true;
    return false;
}

static void refill_one(void *arg, const struct journal_entry *entry)
{
    struct lane *lane = arg;
    if (lane->exposed && is_exposed(lane, entry->id))
        return;
    struct job *j = job_new(lane, entry->event_id, entry->source, entry->payload);
    if (!j) {
        lane->backlog = true; /* try again at the next refill */
        return;
    }
    j->id = entry->id;
    j->received_ms = entry->received_ms;
    if (lane->journal_waiting > 0)
        lane->journal_waiting--;
    lane_push(lane, j);
}

/* Loop thread: move pending journal entries into the lane while there is
 * room, oldest first. Not while an ahead job's append may have committed
 * unseen: its row would look like one waiting to be loaded. */
static void lane_refill(struct lane *lane)
{
    int room = lane->capacity - lane->inflight;
    if (!lane->backlog || room <= 0 || lane->stopping || lane->ahead_unacked > 0)
        return;
    struct err e;
    int got = journal_load_pending(lane->d->reader, lane->p->name, lane->loaded_max, room,
                                   refill_one, lane, &e);
    if (got < 0) {
        log_msg(LOG_ERROR, "pipeline %s: %s; retrying when an event finishes", lane->p->name,
                e.msg);
        return;
    }
    if (got < room) {
        lane->backlog = false;
        lane->journal_waiting = 0;
    }
}

/* Loop thread: a retry is due; the job still holds its slot in the lane. */
static void on_retry_due(struct loop_timer *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, timer));
    struct lane *lane = j->lane;
    for (struct job **p = &lane->waiting; *p; p = &(*p)->next_waiting)
        if (*p == j) {
            *p = j->next_waiting;
            break;
        }
    pthread_mutex_lock(&lane->lock);
    lane->ring[(lane->head + lane->count) % lane->capacity] = j;
    lane->count++;
    pthread_cond_signal(&lane->cond);
    pthread_mutex_unlock(&lane->lock);
}

/* Loop thread: deliver the job's record, answer, free. */
static void job_end(struct job *j)
{
    struct lane *lane = j->lane;
    if (j->record && lane->d->deliver)
        lane->d->deliver(lane->d->deliver_arg, lane->p, j->outcome == RUN_DONE, j->record,
                         j->event_id);
    job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    job_free(j);
}

static void lane_release(struct lane *lane)
{
    lane->inflight--;
    if (lane->inflight <= lane->capacity / 2)
        lane_refill(lane);
}

/* Loop thread: an ahead job answers once its event is durable and its run
 * over, and ends once its outcome is durable too. */
static void ahead_progress(struct job *j)
{
    if (!j->appended || !j->ran)
        return;
    if (j->failed && j->reply.fn) { /* it ran, but was never accepted: say so */
        free(j->response);
        j->response = NULL;
        job_answer(j, RUN_DEAD, JOURNAL_ERROR);
    }
    job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    bool wrote_outcome = j->outcome == RUN_DONE || j->outcome == RUN_DEAD;
    if (wrote_outcome && !j->settled)
        return;
    for (struct job **p = &j->lane->exposed; j->exposed && *p; p = &(*p)->next_exposed)
        if (*p == j) {
            *p = j->next_exposed;
            break;
        }
    job_end(j);
}

/* Loop thread: a run finished (or an append completed and was not queued). */
static void on_job_finished(struct loop_task *t)
{
    struct job *j = (struct job *)t;
    struct lane *lane = j->lane;
    lane->ended++;
    if (j->outcome == RUN_RETRY && !lane->stopping) {
        j->timer.fire = on_retry_due;
        j->next_waiting = lane->waiting;
        lane->waiting = j;
        loop_timer_arm(lane->d->loop, &j->timer, j->resume.due_ns);
        return;
    }
    if (j->ahead) {
        j->ran = true;
        ahead_progress(j);
    } else {
        job_end(j);
    }
    lane_release(lane);
}

/* Loop thread: an ahead job's append committed (or failed). While nothing
 * waits in the journal, every pending row up to its id is loaded, so
 * loaded_max may cover it; otherwise it is exposed until it ends. */
static void on_ahead_appended(struct loop_task *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, appended_task));
    struct lane *lane = j->lane;
    j->appended = true;
    lane->ahead_unacked--;
    if (!j->failed && j->inserted && !lane->backlog && j->id > lane->loaded_max) {
        lane->loaded_max = j->id;
    } else if (!j->failed && j->inserted && lane->backlog) {
        j->exposed = true;
        j->next_exposed = lane->exposed;
        lane->exposed = j;
    }
    ahead_progress(j);
    if (lane->ahead_unacked == 0 && lane->inflight <= lane->capacity / 2)
        lane_refill(lane);
}

static void on_ahead_settled(struct loop_task *t)
{
    struct job *j = (struct job *)((char *)t - offsetof(struct job, settled_task));
    j->settled = true;
    ahead_progress(j);
}

/* Writer thread: an ahead job's outcome has committed. */
static void ahead_settled(void *arg)
{
    struct job *j = arg;
    j->settled_task.run = on_ahead_settled;
    loop_post(j->lane->d->loop, &j->settled_task);
}

/* Loop thread: an invoke's append committed (or failed); its slot was
 * reserved, so it never waits in the backlog. */
static void invoke_journaled(struct lane *lane, struct job *j)
{
    lane->reserved--;
    if (j->failed)
        job_answer(j, RUN_DEAD, JOURNAL_ERROR);
    else if (!j->inserted)
        job_answer(j, RUN_DEAD, "{\"errorType\":\"DuplicateEvent\",\"errorMessage\":"
                   "\"an event with this id was already accepted by this pipeline; it is not "
                   "run twice\"}");
    else if (lane->stopping)
        job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
    if (j->failed || !j->inserted || lane->stopping) {
        job_free(j);
        return;
    }
    lane_push(lane, j);
}

/* Loop thread: the journal append committed (or failed). */
static void on_job_journaled(struct loop_task *t)
{
    struct job *j = (struct job *)t;
    struct lane *lane = j->lane;
    if (j->reply.fn) {
        invoke_journaled(lane, j);
        return;
    }
    lane->appending--;
    if (j->failed || !j->inserted || lane->stopping || j->id <= lane->loaded_max) {
        job_free(j); /* failed (logged), a duplicate, stopping, or a refill took it */
        return;
    }
    if (lane->backlog || lane->inflight + lane->reserved >= lane->capacity) {
        lane->backlog = true; /* it waits in the journal */
        lane->journal_waiting++;
        job_free(j);
        if (lane->inflight <= lane->capacity / 2)
            lane_refill(lane);
        return;
    }
    lane_push(lane, j);
}

/* Writer thread: after the commit. An ahead job may be running: only
 * fields its executor thread does not read are written here. */
static void journaled(void *arg, int rc, bool inserted, int64_t id, const struct err *e)
{
    struct job *j = arg;
    j->inserted = inserted;
    j->id = id;
    j->failed = rc < 0;
    if (rc < 0)
        log_msg(LOG_ERROR, "pipeline %s: event %s was not accepted: %s", j->lane->p->name,
                j->event_id, e->msg);
    if (j->ahead) {
        j->appended_task.run = on_ahead_appended;
        loop_post(j->lane->d->loop, &j->appended_task);
        return;
    }
    j->task.run = on_job_journaled;
    loop_post(j->lane->d->loop, &j->task);
}

/* May this event start before its append commits? Only if its id was made
 * here (so it cannot be a duplicate), nothing waits in the journal ahead of
 * it, and there is room: then the run overlaps the commit, and when the run
 * ends before the append is written, the row is written finished at once.
 * An answer still waits for the commit. */
static bool may_run_ahead(const struct lane *lane, bool new_id)
{
    return new_id && !lane->backlog && lane->p->batch.size <= 1 &&
           lane->inflight + lane->reserved < lane->capacity;
}

int dispatch_accept(struct dispatch *d, const struct pipeline *p, const char *event_id,
                    bool new_id, const char *source, const char *payload,
                    const struct dispatch_reply *reply, struct err *e)
{
    struct lane *lane = NULL;
    for (size_t i = 0; i < d->n_lanes; i++)
        if (d->lanes[i].p == p)
            lane = &d->lanes[i];
    if (!lane)
        return err_set(e, "no lane for pipeline %s", p->name);
    if (lane->stopping) /* its journal callback would outlive the lane */
        return err_set(e, "pipeline %s is stopping", p->name);
    if (reply && (lane->backlog || lane->inflight + lane->reserved >= lane->capacity)) {
        err_set(e, "pipeline %s is at its queue limit (%d events); retry later or raise "
                "queue_size", p->name, lane->capacity);
        return -EBUSY;
    }
    struct job *j = job_new(lane, event_id, source, payload);
    if (!j)
        return err_set(e, "out of memory");
    j->ahead = may_run_ahead(lane, new_id);
    if (reply) {
        j->reply = *reply;
        j->reply.request_id = NULL;
        if (reply->request_id)
            snprintf(j->request_id, sizeof j->request_id, "%s", reply->request_id);
        if (!j->ahead)
            lane->reserved++;
    }
    if (journal_append(d->writer, p->name, event_id, source, payload, journaled, j,
                       j->ahead ? &j->append : NULL, e) < 0) {
        if (reply && !j->ahead)
            lane->reserved--;
        job_free(j);
        return -1;
    }
    if (j->ahead) { /* after the append, so its rows follow it in the writer's queue */
        lane->ahead_unacked++;
        lane_push(lane, j);
    } else if (!reply) {
        lane->appending++;
    }
    return 0;
}

static void timespec_add_ms(struct timespec *t, int ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}

/* Executor thread: sleep before a retry unless the lane stops. */
static bool lane_wait(void *arg, int ms)
{
    struct lane *lane = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    timespec_add_ms(&until, ms);
    pthread_mutex_lock(&lane->lock);
    int rc = 0;
    while (!lane->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&lane->stop_cond, &lane->lock, &until);
    bool go_on = !lane->stopping;
    pthread_mutex_unlock(&lane->lock);
    return go_on;
}

static struct job *lane_pop(struct lane *lane)
{
    pthread_mutex_lock(&lane->lock);
    while (lane->count == 0 && !lane->stopping)
        pthread_cond_wait(&lane->cond, &lane->lock);
    struct job *j = NULL;
    if (!lane->stopping) {
        j = lane->ring[lane->head];
        lane->head = (lane->head + 1) % lane->capacity;
        lane->count--;
    }
    pthread_mutex_unlock(&lane->lock);
    return j;
}

/* Executor thread: up to batch.size jobs, waiting at most window_ms for
 * the batch to fill once the first job is in. */
static size_t lane_pop_batch(struct lane *lane, struct job **jobs)
{
    struct job *first = lane_pop(lane);
    if (!first)
        return 0;
    jobs[0] = first;
    size_t n = 1, want = (size_t)lane->p->batch.size;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    timespec_add_ms(&until, lane->p->batch.window_ms);
    pthread_mutex_lock(&lane->lock);
    while (n < want && !lane->stopping) {
        if (lane->count > 0) {
            jobs[n++] = lane->ring[lane->head];
            lane->head = (lane->head + 1) % lane->capacity;
            lane->count--;
        } else if (pthread_cond_timedwait(&lane->cond, &lane->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&lane->lock);
    return n;
}

static void run_batch(struct lane *lane, struct run_env *env, struct job **jobs, size_t n)
{
    const struct run_input **in = calloc(n, sizeof *in);
    struct run_input *inputs = calloc(n, sizeof *inputs);
    enum run_outcome *outcome = calloc(n, sizeof *outcome);
    char **records = calloc(n, sizeof *records);
    char **responses = calloc(n, sizeof *responses);
    for (size_t i = 0; in && inputs && outcome && records && responses && i < n; i++) {
        inputs[i] = (struct run_input){.journal_id = jobs[i]->id, .event_id = jobs[i]->event_id,
                                       .source = jobs[i]->source, .payload = jobs[i]->payload,
                                       .received_ms = jobs[i]->received_ms};
        in[i] = &inputs[i];
    }
    if (in && inputs && outcome && records && responses)
        runner_run_batch(env, lane->p, in, n, outcome, records, responses);
    else /* they stay pending and run at the next start */
        log_msg(LOG_ERROR, "pipeline %s: out of memory for a batch of %zu", lane->p->name, n);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->outcome = outcome ? outcome[i] : RUN_INTERRUPTED;
        jobs[i]->record = records ? records[i] : NULL;
        jobs[i]->response = responses ? responses[i] : NULL;
        loop_post(lane->d->loop, &jobs[i]->task);
    }
    free(records);
    free(responses);
    free(in);
    free(inputs);
    free(outcome);
}

static void lane_serve(struct lane *lane, struct run_env *env);

static void *lane_thread(void *arg)
{
    struct lane *lane = arg;
    struct exec_slot slot = {.exe = lane->d->exe, .p = lane->p, .wait = lane_wait,
                             .wait_arg = lane};
    struct run_env env = {.writer = lane->d->writer, .wait = lane_wait, .wait_arg = lane,
                          .slot = &slot};
    lane_serve(lane, &env);
    exec_slot_release(&slot);
    return NULL;
}

/* Executor thread: run jobs (one by one or in batches) until stopping. */
static void lane_serve(struct lane *lane, struct run_env *env)
{
    if (lane->p->batch.size > 1) {
        struct job **jobs = calloc((size_t)lane->p->batch.size, sizeof *jobs);
        size_t n;
        while (jobs && (n = lane_pop_batch(lane, jobs)) > 0)
            run_batch(lane, env, jobs, n);
        free(jobs);
        return;
    }
    struct job *j;
    while ((j = lane_pop(lane))) {
        struct run_input in = {.journal_id = j->ahead ? 0 : j->id, .append = j->append,
                               .event_id = j->event_id, .source = j->source,
                               .payload = j->payload, .received_ms = j->received_ms,
                               .resume = &j->resume,
                               .request_id = j->request_id[0] ? j->request_id : NULL,
                               .finished = j->ahead ? ahead_settled : NULL,
                               .finished_arg = j};
        j->outcome = runner_run(env, lane->p, &in, j->reply.fn ? &j->response : NULL,
                                j->request_id, &j->record);
        loop_post(lane->d->loop, &j->task);
    }
}

static int lane_init(struct lane *lane, struct dispatch *d, const struct pipeline *p,
                     int queue_size)
{
    lane->d = d;
    lane->p = p;
    lane->capacity = queue_size > 2 * p->concurrency ? queue_size : 2 * p->concurrency;
    lane->backlog = true; /* load what an earlier run left pending */
    lane->ring = calloc((size_t)lane->capacity, sizeof *lane->ring);
    lane->threads = calloc((size_t)p->concurrency, sizeof *lane->threads);
    pthread_mutex_init(&lane->lock, NULL);
    pthread_cond_init(&lane->cond, NULL);
    pthread_cond_init(&lane->stop_cond, NULL);
    return lane->ring && lane->threads ? 0 : -1;
}

int dispatch_new(struct loop *l, struct writer *w, sqlite3 *reader,
                 const struct pipeline_set *set, int queue_size, struct dispatch **out,
                 struct err *e)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, "out of memory");
    ssize_t n = readlink("/proc/self/exe", d->exe, sizeof d->exe - 1);
    if (n <= 0) {
        free(d);
        return err_set(e, "cannot find this program's file (/proc/self/exe) to start workers");
    }
    d->exe[n] = '\0';
    d->loop = l;
    d->writer = w;
    d->reader = reader;
    d->lanes = calloc(set->n ? set->n : 1, sizeof *d->lanes);
    if (!d->lanes) {
        free(d);
        return err_set(e, "out of memory");
    }
    for (size_t i = 0; i < set->n; i++) {
        d->n_lanes++;
        if (lane_init(&d->lanes[i], d, set->v[i], queue_size) < 0) {
            dispatch_free(&d);
            return err_set(e, "out of memory");
        }
    }
    *out = d;
    return 0;
}

int dispatch_start(struct dispatch *d, struct err *e)
{
    d->started = true;
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        for (int t = 0; t < lane->p->concurrency; t++) {
            if (pthread_create(&lane->threads[t], NULL, lane_thread, lane) != 0) {
                dispatch_stop(d);
                return err_set(e, "cannot start executor threads for pipeline %s",
                               lane->p->name);
            }
            lane->n_threads++;
        }
        lane_refill(lane);
    }
    return 0;
}

void dispatch_stop(struct dispatch *d)
{
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        pthread_mutex_lock(&lane->lock);
        lane->stopping = true;
        pthread_cond_broadcast(&lane->cond);
        pthread_cond_broadcast(&lane->stop_cond);
        pthread_mutex_unlock(&lane->lock);
    }
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        for (int t = 0; t < lane->n_threads; t++)
            pthread_join(lane->threads[t], NULL);
        lane->n_threads = 0;
    }
}

int dispatch_inflight(const struct dispatch *d)
{
    int n = 0;
    for (size_t i = 0; i < d->n_lanes; i++)
        n += d->lanes[i].inflight;
    return n;
}

bool dispatch_busy(const struct dispatch *d, const struct pipeline *p)
{
    for (size_t i = 0; i < d->n_lanes; i++)
        if (d->lanes[i].p == p)
            return d->lanes[i].inflight + d->lanes[i].reserved + d->lanes[i].appending > 0 ||
                   d->lanes[i].backlog;
    return false;
}

void dispatch_refill(struct dispatch *d)
{
    for (size_t i = 0; i < d->n_lanes; i++) {
        d->lanes[i].backlog = true;
        lane_refill(&d->lanes[i]);
    }
}

/* Crowded: half full (a drain round reads at most a few hundred events,
 * so it cannot overflow a default lane from there) until a quarter full,
 * as long as its runs keep ending. */
bool dispatch_crowded(struct dispatch *d, int64_t now_ns)
{
    bool crowded = false;
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        int used = lane->inflight + lane->reserved;
        if (used <= lane->capacity / 4) {
            lane->crowded_since_ns = 0;
            lane->crowded_expired = false;
            continue;
        }
        if (used < lane->capacity / 2 && !lane->crowded_since_ns)
            continue;
        if (!lane->crowded_since_ns || lane->ended != lane->ended_seen) {
            lane->crowded_since_ns = now_ns; /* progress: keep waiting for it */
            lane->ended_seen = lane->ended;
        } else if (now_ns - lane->crowded_since_ns > DISPATCH_CROWDED_NS) {
            lane->crowded_expired = true; /* stuck: its overflow goes to the journal */
        }
        crowded = crowded || !lane->crowded_expired;
    }
    return crowded;
}

long dispatch_waiting(const struct dispatch *d)
{
    long n = 0;
    for (size_t i = 0; i < d->n_lanes; i++)
        n += d->lanes[i].journal_waiting;
    return n;
}

void dispatch_free(struct dispatch **dp)
{
    struct dispatch *d = *dp;
    if (!d)
        return;
    dispatch_stop(d);
    for (size_t i = 0; i < d->n_lanes; i++) {
        struct lane *lane = &d->lanes[i];
        while (lane->waiting) { /* retries not yet due: the events stay pending */
            struct job *j = lane->waiting;
            lane->waiting = j->next_waiting;
            loop_timer_cancel(d->loop, &j->timer);
            job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
            job_free(j);
        }
        for (int k = 0; k < lane->count; k++) {
            struct job *j = lane->ring[(lane->head + k) % lane->capacity];
            job_answer(j, RUN_INTERRUPTED, INTERRUPTED);
            job_free(j);
        }
        free(lane->ring);
        free(lane->threads);
        pthread_mutex_destroy(&lane->lock);
        pthread_cond_destroy(&lane->cond);
        pthread_cond_destroy(&lane->stop_cond);
    }
    free(d->lanes);
    free(d);
    *dp = NULL;
}
