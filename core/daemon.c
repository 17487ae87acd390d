/* daemon.c - the running daemon, wiring only (see daemon.h): it starts the
 * loop, the database writer, the executor threads, the worker processes,
 * the scheduler and the sources; builds a generation of pipelines and
 * swaps in a new one on SIGHUP; and stops in order.
 *
 * A "generation" is what a reload replaces: the pipeline set, the plugins
 * they bound, their dispatch (lanes) and the watched folders. Everything
 * else outlives generations. A reload validates the pipeline files once
 * and builds the new generation from exactly what it validated: the new
 * generation journals what arrives at once but starts its runs only when
 * the old one's last run has ended (the loop goes on meanwhile); a reload
 * that fails leaves the running pipelines as they are.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "destinations.h"
#include "diag.h"
#include "dispatch.h"
#include "event.h"
#include "ingress.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "spawn.h"
#include "loop.h"
#include "path.h"
#include "pipeline.h"
#include "pool.h"
#include "nats_trigger.h"
#include "retention.h"
#include "router.h"
#include "runner.h"
#include "scheduler.h"
#include "service.h"
#include "source_dir.h"
#include "source_http.h"
#include "source_nats.h"
#include "source_schedule.h"
#include "source_zmq.h"
#include "statelock.h"
#include "worker.h"
#include "writer.h"

#define QUIET_NS 200000000

struct generation {
    struct pipeline_set set;
    struct loader *loader;
    struct dispatch *dispatch;
    struct source_dir *dirs;
    struct source_schedule *schedules;
    struct source_nats *nats;
};

struct daemon {
    struct config *cfg;
    struct loop *loop;
    struct statelock *lock;     /* one daemon per state folder */
    struct writer *writer;
    sqlite3 *reader;
    int sigfd;
    bool stop;
    bool reload;
    int status;                 /* exit status once stopped */
    bool writer_waiting;        /* intake paused: the database is locked or the disk full */
    struct generation *gen;     /* the current one (held while the old one retires) */
    struct generation *old;     /* retiring: its runs are ending */
    struct loop_task barrier;   /* ... and then their outcomes committing */
    struct pool *pool;
    struct workers *workers;
    struct sched sched;
    struct runner runner;
    struct ingress *ingress;
    struct destinations *dests;
    struct source_zmq *zmq;
    struct source_http *http;
    struct loop_timer quiet;    /* gives memory back once a burst is over */
    uint64_t quiet_seen;        /* writer_submitted() when it was armed */
    uint64_t trimmed_at;        /* ... at the last trim */
    struct service svc;         /* sd_notify (service.c) */
    struct admin *admin;        /* /metrics, /healthz, /status (admin.c) */
    struct retention *retention; /* pruning (retention.c) */
};

/* --- generations ----------------------------------------------------------- */

static void print_diag(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++) /* warnings say "warning:" themselves */
        log_msg(d->items[i].severity == DIAG_ERROR ? LOG_ERROR : LOG_INFO, "%s",
                d->items[i].text);
}

/* Read and check the pipeline files, their plugins included, bound to a
 * probe loader. keep (the first start: no generation holds the plugin
 * files) takes the probe with its bindings for the generation; on a reload
 * they are unbound again, and the new generation binds its own once the old
 * one has let go of the plugin files. */
static int validate(struct daemon *dm, struct pipeline_set *set, struct loader **keep)
{
    struct diag d = {0};
    struct loader *probe = NULL;
    struct err e;
    pipeline_set_load(dm->cfg, set, &d);
    if (d.errors == 0 && loader_new(&dm->cfg->plugin_path, &probe, &e) < 0)
        diag_error(&d, dm->cfg->file, "%s", e.msg);
    if (d.errors == 0)
        loader_bind_set(probe, set, &d);
    int errors = d.errors;
    if (keep && errors == 0) {
        *keep = probe;
        probe = NULL;
    } else {
        for (size_t i = 0; i < set->n; i++)
            for (size_t k = 0; k < set->v[i]->n_steps; k++) {
                set->v[i]->steps[k].plugin = NULL;
                set->v[i]->steps[k].fn = NULL;
            }
    }
    loader_free(&probe);
    print_diag(&d);
    diag_free(&d);
    if (errors)
        log_msg(LOG_ERROR, "%d problem%s in the pipelines; run `sluice check` for the list",
                errors, errors == 1 ? "" : "s");
    return errors ? -1 : 0;
}

/* Bind each pipeline to its plugins. One whose plugins do not load (a file
 * changed since it was validated) stays parked: its events are journaled
 * and wait for a reload that fixes it; the rest run. */
static void bind_plugins(struct daemon *dm, struct generation *g)
{
    struct err e;
    struct diag d = {0};
    if (g->loader) /* the first start's probe: bound as validated */
        return;
    if (loader_new(&dm->cfg->plugin_path, &g->loader, &e) < 0)
        log_msg(LOG_ERROR, "%s", e.msg);
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (g->loader && loader_bind_pipeline(g->loader, p, &d) == 0)
            continue;
        log_msg(LOG_ERROR, "pipeline %s is not running until its plugins load (fix them and "
                "send SIGHUP)", p->name);
        dispatch_park(g->dispatch, p);
    }
    print_diag(&d);
    diag_free(&d);
}

/* Create trigger folders and canonicalise their paths, so every path the
 * watcher reports can be compared by prefix. */
static int prepare_dirs(struct generation *g, struct err *e)
{
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (p->trigger != TRIGGER_DIRECTORY)
            continue;
        if (path_mkdirs(p->dir, 0750, e) < 0) {
            err_prefix(e, "%s: trigger.directory", p->file);
            return -1;
        }
        char *real = realpath(p->dir, NULL);
        if (!real)
            return err_set(e, "%s: trigger.directory %s: %s", p->file, p->dir, strerror(errno));
        free(p->dir);
        p->dir = real;
    }
    return 0;
}

static int start_dirs(struct daemon *dm, struct generation *g, struct err *e)
{
    if (source_dir_new(dm->loop, ingress_on_file, dm->ingress, &g->dirs, e) < 0)
        return -1;
    for (size_t i = 0; i < g->set.n; i++) {
        struct pipeline *p = g->set.v[i];
        if (p->trigger != TRIGGER_DIRECTORY)
            continue;
        bool seen = false, recursive = false;
        for (size_t k = 0; k < g->set.n; k++) {
            const struct pipeline *q = g->set.v[k];
            if (q->trigger == TRIGGER_DIRECTORY && strcmp(q->dir, p->dir) == 0) {
                seen = seen || k < i;
                recursive = recursive || q->recursive;
            }
        }
        if (!seen && source_dir_add(g->dirs, p->dir, recursive, e) < 0)
            return -1;
        log_msg(LOG_INFO, "pipeline %s: watching %s", p->name, p->dir);
    }
    source_dir_scan(g->dirs);
    return 0;
}

static bool nats_runs(void *dispatch, const struct pipeline *p)
{
    return !dispatch_parked(dispatch, p);
}

static int start_nats(struct daemon *dm, struct generation *g, struct err *e)
{
    struct source_nats_hooks hooks = {.accept = ingress_on_nats, .reject = ingress_on_reject,
                                      .runs = nats_runs, .runs_arg = g->dispatch,
                                      .arg = dm->ingress, .reader = dm->reader};
    return source_nats_new(dm->loop, &g->set, &hooks, &g->nats, e);
}

static int start_schedules(struct daemon *dm, struct generation *g, struct err *e)
{
    struct source_schedule_hooks hooks = {.fire = ingress_on_schedule,
                                          .busy = ingress_schedule_busy, .arg = dm->ingress};
    return source_schedule_new(dm->loop, dm->writer, dm->reader, &g->set, &hooks, &g->schedules,
                               e);
}

static void deliver(void *arg, const struct delivery *dl)
{
    struct daemon *dm = arg;
    destinations_deliver(dm->dests, dl);
}

/* A generation for a validated set (taken over), held until released. */
static struct generation *generation_new(struct daemon *dm, struct pipeline_set *set)
{
    struct generation *g = calloc(1, sizeof *g);
    struct err e;
    if (!g) {
        log_msg(LOG_ERROR, "out of memory");
        pipeline_set_free(set);
        return NULL;
    }
    g->set = *set;
    *set = (struct pipeline_set){0};
    struct dispatch_env env = {.runner = &dm->runner, .sched = &dm->sched,
                               .reader = dm->reader, .queue_size = dm->cfg->queue_size,
                               .deliver = deliver, .deliver_arg = dm};
    if (prepare_dirs(g, &e) < 0 || dispatch_new(&env, &g->set, true, &g->dispatch, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        pipeline_set_free(&g->set);
        free(g);
        return NULL;
    }
    return g;
}

/* The held generation binds its plugins, watches its folders and runs. */
static int generation_start(struct daemon *dm, struct generation *g)
{
    struct err e;
    bind_plugins(dm, g);
    int rc = start_dirs(dm, g, &e) < 0 || start_schedules(dm, g, &e) < 0 ||
                     start_nats(dm, g, &e) < 0 ? -1 : 0;
    if (rc < 0)
        log_msg(LOG_ERROR, "%s", e.msg);
    dispatch_release(g->dispatch); /* the other triggers run either way */
    return rc;
}

/* After its last run: its workers, plugins and pipelines go. */
static void generation_free(struct daemon *dm, struct generation **gp)
{
    struct generation *g = *gp;
    if (!g)
        return;
    source_dir_free(&g->dirs);
    source_schedule_free(&g->schedules);
    source_nats_free(&g->nats);
    for (size_t i = 0; dm->workers && i < g->set.n; i++)
        workers_forget(dm->workers, g->set.v[i]);
    dispatch_free(&g->dispatch);
    pipeline_set_free(&g->set);
    loader_free(&g->loader);
    free(g);
    *gp = NULL;
}

static int start_http(struct daemon *dm)
{
    bool wanted = false;
    for (size_t i = 0; dm->gen && i < dm->gen->set.n; i++)
        wanted = wanted || dm->gen->set.v[i]->trigger == TRIGGER_HTTP;
    if (!wanted || dm->http)
        return 0;
    struct http_settings set = {.listen = dm->cfg->http.listen,
                                .max_body_bytes = (size_t)dm->cfg->http.max_body_bytes,
                                .timeout_ms = dm->cfg->http.timeout_ms};
    struct err e;
    if (source_http_new(dm->loop, &set, ingress_on_http, dm->ingress, &dm->http, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        return -1;
    }
    ingress_attach(dm->ingress, dm->zmq, dm->http);
    return 0;
}

/* --- reload ---------------------------------------------------------------- */

static void reload(struct daemon *dm);

/* The old generation's last outcome is committed: let it go, start the
 * new one (whose refill must not find those rows still pending). */
static void old_settled(struct loop_task *t)
{
    struct daemon *dm = (struct daemon *)((char *)t - offsetof(struct daemon, barrier));
    generation_free(dm, &dm->old);
    if (dm->stop)
        return;
    if (generation_start(dm, dm->gen) < 0)
        log_msg(LOG_ERROR, "a trigger of the new pipelines could not start (see above); the "
                "other triggers run (fix it and send SIGHUP)");
    start_http(dm);
    log_msg(LOG_INFO, "reloaded: %zu pipeline%s", dm->gen->set.n, dm->gen->set.n == 1 ? "" : "s");
    service_ready(&dm->svc, "reloaded");
    if (dm->reload) { /* SIGHUPs that came meanwhile: the newest files */
        dm->reload = false;
        reload(dm);
    }
}

/* The old generation's last run ended; its outcomes are still on their
 * way to the database. */
static void old_retired(void *arg)
{
    struct daemon *dm = arg;
    struct err e;
    dm->barrier.run = old_settled;
    if (journal_barrier(dm->writer, dm->loop, &dm->barrier, &e) < 0) {
        writer_flush(dm->writer); /* out of memory: wait here instead */
        old_settled(&dm->barrier);
    }
}

static void reload(struct daemon *dm)
{
    if (dm->old) { /* one at a time; done once this one is */
        dm->reload = true;
        return;
    }
    log_msg(LOG_INFO, "SIGHUP: reloading pipelines from %s", dm->cfg->pipelines_dir);
    service_reloading(&dm->svc);
    struct pipeline_set set;
    struct generation *g = validate(dm, &set, NULL) == 0 ? generation_new(dm, &set) : NULL;
    if (!g) {
        log_msg(LOG_ERROR, "reload refused; the running pipelines stay as they were");
        pipeline_set_free(&set);
        service_ready(&dm->svc, "reload refused");
        return;
    }
    dm->old = dm->gen;
    dm->gen = g;
    source_dir_free(&dm->old->dirs); /* the new one's scan finds what lands meanwhile */
    source_schedule_free(&dm->old->schedules); /* the new one's timers take over */
    source_nats_stop(dm->old->nats); /* the new one's fetchers take over */
    ingress_use(dm->ingress, &g->set, g->dispatch);
    dispatch_retire(dm->old->dispatch, old_retired, dm);
}

/* --- signals and state ----------------------------------------------------- */

static void on_signal(void *arg, uint32_t events)
{
    struct daemon *dm = arg;
    (void)events;
    struct signalfd_siginfo si;
    while (read(dm->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            spawn_reap_exited(); /* issue 21: no zombie of an idle worker */
        } else if (si.ssi_signo == SIGHUP) {
            dm->reload = true;
        } else if (!dm->stop) {
            log_msg(LOG_INFO, "%s: letting running handlers finish, then exiting",
                    strsignal((int)si.ssi_signo));
            service_stopping(&dm->svc);
            dm->stop = true;
        }
    }
}

static int setup_signals(struct daemon *dm, struct err *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    /* Blocked before any thread starts, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGIO, SIG_IGN); /* lease breaks (source_dir's completeness check) */
    dm->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (dm->sigfd < 0)
        return err_set(e, "signalfd: %s", strerror(errno));
    return loop_add_fd(dm->loop, dm->sigfd, EPOLLIN, on_signal, dm, e);
}

static int open_state(struct daemon *dm, struct err *e)
{
    if (path_mkdirs(dm->cfg->state_dir, 0750, e) < 0 ||
        statelock_take(dm->cfg->state_dir, &dm->lock, e) < 0)
        return -1;
    char *dbdir = path_dirname(dm->cfg->database);
    int rc = dbdir ? path_mkdirs(dbdir, 0750, e) : err_set(e, "out of memory");
    free(dbdir);
    if (rc < 0)
        return -1;
    if (writer_start(dm->cfg->database, 16384, dm->cfg->durability == DURABILITY_POWER,
                     &dm->writer, e) < 0)
        return -1;
    return db_open(dm->cfg->database, false, &dm->reader, e);
}

/* The executor threads, the worker processes, the scheduler, the runner's
 * context, and the ingress and destinations around them. */
static int start_engine(struct daemon *dm, struct err *e)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return err_set(e, "cannot find this program's file (/proc/self/exe) to start workers");
    exe[n] = '\0';
    if (pool_new(dm->cfg->workers, &dm->pool, e) < 0 ||
        workers_new(dm->loop, dm->writer, exe, dm->cfg->idle_timeout_s, &dm->workers, e) < 0 ||
        ingress_new(dm->cfg, dm->loop, dm->writer, &dm->ingress, e) < 0)
        return -1;
    sched_init(&dm->sched, dm->cfg->max_concurrency);
    dm->runner = (struct runner){.loop = dm->loop, .writer = dm->writer, .pool = dm->pool,
                                 .workers = dm->workers};
    return 0;
}

/* --- stopping -------------------------------------------------------------- */

static void stop_retired(void *arg)
{
    *(bool *)arg = true;
}

/* Let running handlers finish (the loop goes on answering and committing
 * meanwhile); queued events stay pending in the journal. */
static void drain(struct daemon *dm)
{
    if (!dm->ingress) /* it never started */
        return;
    if (dm->zmq) /* no new events while the lanes drain; invokes are answered */
        source_zmq_pause(dm->zmq, true);
    ingress_stop(dm->ingress);
    if (dm->gen) /* NATS holds the rest for the other nodes */
        source_nats_stop(dm->gen->nats);
    bool retired = !dm->gen || !dm->gen->dispatch;
    if (!retired) /* first: then nothing new starts */
        dispatch_retire(dm->gen->dispatch, stop_retired, &retired);
    if (dm->workers) /* runs waiting for a worker's start back-off end now */
        workers_interrupt(dm->workers);
    struct err e;
    while (!retired || dm->old) /* old_retired frees dm->old */
        if (loop_run_once(dm->loop, 100, &e) < 0)
            break;
    writer_flush(dm->writer); /* every receipt has been posted ... */
    loop_run_inbox(dm->loop); /* ... and taken */
}

static void shutdown_all(struct daemon *dm)
{
    admin_free(&dm->admin);
    retention_free(&dm->retention);
    service_stop(&dm->svc);
    drain(dm);
    generation_free(dm, &dm->old);
    generation_free(dm, &dm->gen);
    workers_free(&dm->workers);
    pool_free(&dm->pool);
    source_http_free(&dm->http);
    destinations_free(&dm->dests);
    source_zmq_free(&dm->zmq);
    ingress_free(&dm->ingress);
    if (dm->sigfd >= 0) {
        loop_del_fd(dm->loop, dm->sigfd);
        close(dm->sigfd);
    }
    if (dm->loop)
        loop_timer_cancel(dm->loop, &dm->quiet);
    db_close(&dm->reader);
    writer_stop(&dm->writer);
    source_nats_library_close();
    statelock_release(&dm->lock);
    loop_free(&dm->loop);
    config_free(&dm->cfg);
}

/* --- running --------------------------------------------------------------- */

/* After a burst, glibc keeps the freed heap: RSS would stay at the burst's
 * high-water mark. Once nothing has been written and nothing run for
 * QUIET_NS, it goes back to the system and RSS returns to about idle. */
static void on_quiet(struct loop_timer *t)
{
    struct daemon *dm = (struct daemon *)((char *)t - offsetof(struct daemon, quiet));
    uint64_t seen = writer_submitted(dm->writer);
    bool running = dm->gen && dm->gen->dispatch && dispatch_inflight(dm->gen->dispatch) > 0;
    if (seen != dm->quiet_seen || running || writer_queued(dm->writer) > 0) {
        dm->quiet_seen = seen;
        loop_timer_arm(dm->loop, &dm->quiet, clock_mono_ns() + QUIET_NS);
        return;
    }
    sqlite3_db_release_memory(dm->reader);
    writer_release_memory(dm->writer); /* and then trims the heap */
    dm->trimmed_at = writer_submitted(dm->writer); /* that release counts as activity */
}

static void watch_quiet(struct daemon *dm)
{
    uint64_t seen = writer_submitted(dm->writer);
    if (dm->quiet.armed || seen == dm->trimmed_at)
        return;
    dm->quiet_seen = seen;
    dm->quiet.fire = on_quiet;
    loop_timer_arm(dm->loop, &dm->quiet, clock_mono_ns() + QUIET_NS);
}

/* While the database cannot be written (the writer retries, and logs it)
 * intake waits; a database deleted or replaced stops the daemon. Folder
 * scans also wait while the writer's queue is long, so a big folder is
 * journaled slice by slice rather than held in memory, and folder watching
 * while a lane is crowded, as long as the kernel's queue is not deep. */
static void watch_writer(struct daemon *dm)
{
    char why[1024];
    enum writer_health h = writer_health(dm->writer, why, sizeof why);
    if (h == WRITER_LOST && !dm->stop) {
        log_msg(LOG_ERROR, "stopping: %s", why);
        dm->stop = true;
        dm->status = 1;
    }
    dm->writer_waiting = h == WRITER_WAITING;
    if (dm->gen && dm->gen->dirs)
        source_dir_pause(dm->gen->dirs,
                         h != WRITER_OK || writer_queued(dm->writer) > INGRESS_WRITER_BUSY ||
                         (ingress_crowded(dm->ingress) && !source_dir_queue_deep(dm->gen->dirs)));
}

static int serve(struct daemon *dm)
{
    struct err e;
    bool brief = false;
    while (!dm->stop) {
        /* paused briefly: look again soon (a commit may post nothing); and
         * once a second at least, for watch_writer */
        if (loop_run_once(dm->loop, brief ? 1 : dm->writer_waiting ? 100 : 1000, &e) < 0) {
            log_msg(LOG_ERROR, "%s", e.msg);
            return 1;
        }
        watch_writer(dm);
        brief = ingress_flow_control(dm->ingress, dm->writer_waiting);
        watch_quiet(dm);
        if (dm->reload && !dm->stop) {
            dm->reload = false;
            reload(dm);
        }
    }
    return 0;
}

struct backlog_fill {
    struct engine_snapshot *out;
    const struct pipeline_set *set;
};

/* The snapshot's pipelines are in the set's order. */
static void snapshot_backlog(void *arg, const char *pipeline, int64_t n)
{
    struct backlog_fill *f = arg;
    const struct pipeline *p = router_named(f->set, pipeline);
    if (p && p->index < f->out->n_pipelines)
        f->out->pipelines[p->index].backlog = (long)n;
}

/* Loop thread: what /metrics and /status show of the engine. */
static void engine_snapshot(void *arg, struct engine_snapshot *out)
{
    struct daemon *dm = arg;
    size_t n = dm->gen ? dm->gen->set.n : 0;
    out->pipelines = calloc(n ? n : 1, sizeof *out->pipelines);
    out->writer_queued = writer_queued(dm->writer);
    out->rejected = ingress_rejected(dm->ingress);
    out->pruned = retention_pruned(dm->retention);
    for (size_t i = 0; out->pipelines && i < n; i++) {
        const struct pipeline *p = dm->gen->set.v[i];
        struct engine_pipeline *ep = &out->pipelines[out->n_pipelines++];
        ep->name = p->name;
        ep->in_flight = dm->gen->dispatch ? dispatch_inflight_of(dm->gen->dispatch, p) : 0;
        if (p->trigger == TRIGGER_DIRECTORY)
            snprintf(ep->trigger, sizeof ep->trigger, "directory:%s", p->dir_spec);
        else if (p->trigger == TRIGGER_ZMQ)
            snprintf(ep->trigger, sizeof ep->trigger, "zmq:%s", p->zmq_topic);
        else if (p->trigger == TRIGGER_HTTP)
            snprintf(ep->trigger, sizeof ep->trigger, "http:%s %s", p->http_method, p->http_path);
        else if (p->trigger == TRIGGER_NATS)
            snprintf(ep->trigger, sizeof ep->trigger, "nats:%s %s", p->nats->stream,
                     p->nats->subject);
        else
            snprintf(ep->trigger, sizeof ep->trigger, "none");
    }
    struct backlog_fill fill = {out, dm->gen ? &dm->gen->set : NULL};
    if (fill.set && journal_count_pending(dm->reader, snapshot_backlog, &fill, NULL) < 0)
        for (size_t i = 0; i < out->n_pipelines; i++)
            out->pipelines[i].backlog = -1;
}

/* The admin listener, retention and systemd's notifications. A busy admin
 * port is not fatal: the daemon runs on without /metrics and says so. */
static void start_operations(struct daemon *dm)
{
    struct err e;
    service_start(&dm->svc, dm->loop);
    struct admin_settings as = {.listen = dm->cfg->admin.listen, .database = dm->cfg->database,
                                .config_file = dm->cfg->file};
    struct admin_source src = {.snapshot = engine_snapshot, .arg = dm};
    if (as.listen && admin_new(dm->loop, &as, &src, &dm->admin, &e) < 0)
        log_msg(LOG_ERROR, "%s; running on without it", e.msg);
    if (retention_wanted(&dm->cfg->retention) &&
        retention_new(dm->loop, dm->writer, &dm->cfg->retention, &dm->retention, &e) < 0)
        log_msg(LOG_ERROR, "%s; running on without retention", e.msg);
}

/* Config, loop, signals, database, engine, the first generation, sources. */
static int start(struct daemon *dm, const char *config_file)
{
    struct diag d = {0};
    struct err e;
    if (config_load(config_file, &dm->cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return -1;
    }
    diag_free(&d);
    log_msg(LOG_INFO, "config %s, database %s, node %s", dm->cfg->file, dm->cfg->database,
            dm->cfg->node_name);
    db_set_node(dm->cfg->node_name);
    event_clock_start();
    if (loop_new(&dm->loop, &e) < 0 || setup_signals(dm, &e) < 0 || open_state(dm, &e) < 0 ||
        start_engine(dm, &e) < 0 ||
        source_zmq_new(dm->loop, dm->cfg, &ingress_zmq_callbacks, dm->ingress, &dm->zmq, &e) < 0 ||
        destinations_new(source_zmq_context(dm->zmq), dm->cfg->zmq.hwm, ingress_accept_record,
                         dm->ingress, &dm->dests, &e) < 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        return -1;
    }
    ingress_attach(dm->ingress, dm->zmq, NULL);
    struct pipeline_set set;
    struct loader *probe = NULL;
    if (validate(dm, &set, &probe) < 0) {
        pipeline_set_free(&set);
        return -1;
    }
    if (!(dm->gen = generation_new(dm, &set))) { /* it freed the set */
        loader_free(&probe);
        return -1;
    }
    dm->gen->loader = probe; /* bound once, by validate */
    ingress_use(dm->ingress, &dm->gen->set, dm->gen->dispatch);
    if (generation_start(dm, dm->gen) < 0 || start_http(dm) < 0)
        return -1;
    start_operations(dm);
    log_msg(LOG_INFO, "running %zu pipeline%s (pid %d)", dm->gen->set.n,
            dm->gen->set.n == 1 ? "" : "s", (int)getpid());
    service_ready(&dm->svc, "running");
    return 0;
}

int daemon_run(const char *config_file)
{
    struct daemon dm = {.sigfd = -1};
    int status = start(&dm, config_file) < 0 ? 1 : serve(&dm);
    if (status == 0)
        status = dm.status;
    shutdown_all(&dm);
    if (status == 0)
        log_msg(LOG_INFO, "stopped cleanly");
    return status;
}
