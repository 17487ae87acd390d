/* worker.c - the daemon's side of worker processes (see worker.h). */
#include "worker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "executor.h"
#include "invlog.h"
#include "json.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "paths.h"
#include "pipeline.h"
#include "spawn.h"
#include "wire.h"
#include "worker_env.h"
#include "writer.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define STOP_GRACE_MS 2000
#define INIT_GRACE_MS 10000     /* on top of timeout_ms, for a worker's start */
#define RESULT_GRACE_MS 50      /* a result written at the deadline still counts */
#define SNDBUF_BYTES (1 << 20)
#define SEND_TIMEOUT_S 5
#define WORKER_EXE "sluice-worker" /* beside the sluice binary */
/* Pipelining: while every worker a function may have is busy, up to
 * PIPE_DEPTH - 1 more invocations are sent to one ahead of its answer, so
 * a fast handler's worker goes from one to the next without a round trip
 * through the daemon (one round trip costs two wake-ups of ~40 us each on
 * these VMs: docs/benchmarks.md). Only for handlers that have been fast
 * (the function's average under PIPE_FAST_MS) and small events: an event
 * queued behind a slow one would wait for it, and queued bytes sit in the
 * socket buffer, which must never fill (a send would block the loop). */
#define PIPE_DEPTH 8
#define PIPE_FAST_MS 2.0
#define PIPE_MAX_BYTES (256u << 10)
#define CODE_CHECK_NS 2000000   /* a code file replaced is seen within 2 ms */

enum worker_state { W_STARTING, W_IDLE, W_BUSY, W_STOPPING };

struct fn;

/* An attempt and whom to tell when it ends. */
struct call {
    struct attempt *a;
    void (*done)(void *arg);
    void *done_arg;
};

struct worker {
    struct fn *fn;
    uint64_t serial;            /* unique: tells a worker from a later one at its address */
    enum worker_state state;
    struct spawned sp;          /* its process and all it starts (spawn.h); sp.pidfd is
                                 * readable once the process has exited */
    int fd;                     /* the socketpair's daemon end */
    struct wire_reader rd;
    int64_t spawned_ns;
    double start_ms;            /* spawn to ready: part of the first invocation's init */
    int served;                 /* invocations answered */
    int64_t idle_since_ns;
    bool exited;                /* its pidfd said so, or a send to it failed: never idle again */
    char (*versions)[64];       /* of each of its steps' files, as this worker loaded them */
    struct loader_file_id *files;   /* the same, to compare */
    struct loop_timer timer;    /* the start's or the attempt's deadline; the stop's grace */
    struct worker *next;        /* in its function's list of all workers */
    /* the attempt in flight (starting: the one it starts for) */
    struct attempt *a;
    void (*done)(void *arg);
    void *done_arg;
    int64_t attempt_start_ns;
    /* sent after it, in order, not started yet (pipelining) */
    struct call queue[PIPE_DEPTH - 1];
    int n_queued;
    size_t queued_bytes;
};

/* An attempt waiting for its function's start back-off to pass. */
struct pending {
    struct attempt *a;
    void (*done)(void *arg);
    void *done_arg;
    struct pending *next;
};

/* One function: a pipeline's steps of one kind of code. */
struct fn {
    struct workers *ws;
    const struct pipeline *p;
    enum runtime kind;
    struct worker *all;         /* every worker of it, idle ones first in LIFO order */
    int init_failures;          /* workers in a row that died before serving */
    int64_t backoff_until_ns;
    struct loop_timer backoff;
    struct pending *waiting, *waiting_tail;   /* for a back-off, or for a worker */
    double avg_ms;              /* its handlers' recent duration; < 0: none seen yet */
    bool forgotten;
    struct fn *next;
    struct fn *same_index;      /* the chain of fns at its pipeline's index */
    size_t index;               /* that index (p may be freed before this fn) */
    struct loader_file_id *files;   /* its steps' files as last looked at (code_changed) */
    int64_t files_at;           /* ... when; 0: never */
};

struct workers {
    struct loop *loop;
    struct writer *writer;
    char exe[PATH_MAX];
    int64_t idle_ns;
    struct fn *fns;
    struct fn **by_index;       /* by pipeline index: its fns (any generation) */
    size_t n_index;
    int count;
    struct loop_timer sweep;    /* stops workers idle too long */
};

static void worker_end(struct worker *w);
static void start_attempt(struct worker *w);
static void place(struct fn *f, struct attempt *a, void (*done)(void *), void *arg);
static void on_deadline(struct loop_timer *t);
static void worker_idle(struct worker *w);
static void feed_waiting(struct fn *f);

bool worker_needed(const struct pipeline *p, const struct step *s)
{
    return p->isolation == ISOLATION_PROCESS || s->runtime != RUNTIME_C;
}

/* --- processes ------------------------------------------------------------- */

/* Did any file behind w's steps change since w loaded it (hot reload)?
 * One stat per file, at most every CODE_CHECK_NS per function: under a
 * flood it was ~5% of the CPU per event. */
static bool code_changed(const struct worker *w)
{
    struct fn *f = w->fn;
    const struct pipeline *p = f->p;
    int64_t now = clock_mono_ns();
    if (!f->files_at || now - f->files_at >= CODE_CHECK_NS) {
        for (size_t i = 0; i < p->n_steps; i++)
            if (p->steps[i].runtime == f->kind)
                loader_file_id(step_file(&p->steps[i]), &f->files[i]);
        f->files_at = now;
    }
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].runtime == f->kind && !loader_file_id_equal(&f->files[i], &w->files[i]))
            return true;
    return false;
}

/* The INIT frame: the steps this kind of worker serves, by resolved file,
 * each with its index in the pipeline (INVOKE frames name steps by it). */
static char *init_json(const struct pipeline *p, enum runtime kind)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "pipeline", p->name);
    cJSON_AddStringToObject(root, "runtime", runtime_name(kind));
    cJSON_AddNumberToObject(root, "memory_mb", worker_env_memory_mb(p));
    cJSON_AddBoolToObject(root, "sandbox", p->sandbox);
    if (p->trigger == TRIGGER_DIRECTORY) /* ctx->folder (issue 20) */
        cJSON_AddStringToObject(root, "dir", p->dir);
    cJSON *steps = cJSON_AddArrayToObject(root, "steps");
    for (size_t i = 0; i < p->n_steps; i++) {
        const struct step *s = &p->steps[i];
        if (s->runtime != kind)
            continue;
        cJSON *js = cJSON_CreateObject();
        cJSON_AddNumberToObject(js, "index", (double)i);
        cJSON_AddStringToObject(js, "name", s->name);
        cJSON_AddStringToObject(js, "handler", s->handler);
        cJSON_AddStringToObject(js, "module", s->module);
        cJSON_AddStringToObject(js, "function", s->function);
        cJSON_AddStringToObject(js, "path", step_file(s));
        if (s->code)
            cJSON_AddStringToObject(js, "code", s->code);
        cJSON_AddStringToObject(js, "config", s->config_json);
        cJSON_AddNumberToObject(js, "timeout_ms", s->timeout_ms);
        cJSON_AddItemToObject(js, "environment", worker_env_step(p, s));
        cJSON_AddItemToArray(steps, js);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* The program C workers run: sluice-worker (beside the sluice binary in the
 * build tree, in libexec/sluice when installed: paths.c), which links only
 * what a worker needs and so starts several ms sooner than the daemon's own
 * binary with its ~30 shared libraries (worker_exe.c). Without it, `sluice
 * worker` (the same code), and the log says so once. Returns buf, filled, or
 * exe. */
static const char *c_worker_exe(const char *exe, char *buf, size_t len)
{
    static atomic_bool said;
    const char *path = paths_worker_exe(buf, len);
    if (path && access(path, X_OK) == 0)
        return buf;
    const char *why = path ? strerror(errno) : "path too long";
    if (!atomic_exchange(&said, true))
        log_msg(LOG_WARN, "%s: %s; C workers run as `%s worker` instead, which starts "
                "slower (build or install " WORKER_EXE " with sluice)", path ? path : WORKER_EXE,
                why, exe);
    return exe;
}

/* The program and arguments of a worker of this kind; C workers keep the
 * command line `PROGRAM worker PIPELINE` whichever program runs them. */
static void worker_argv(const struct fn *f, char *argv[6], const char **prog, char *exe_buf,
                        size_t exe_len)
{
    const char *py_boot = paths_python_bootstrap(), *js_boot = paths_node_bootstrap();
    const char *interp = NULL;
    for (size_t i = 0; i < f->p->n_steps && !interp; i++)
        if (f->p->steps[i].runtime == f->kind)
            interp = f->p->steps[i].interpreter;
    int n = 0;
    if (f->kind == RUNTIME_PROVIDED) { /* runtime_api_main.c starts the bootstraps */
        *prog = paths_runtime_api_exe(exe_buf, exe_len);
        if (!*prog)
            *prog = "sluice-runtime-api";
        argv[n++] = (char *)*prog;
    } else if (f->kind == RUNTIME_C) {
        *prog = c_worker_exe(f->ws->exe, exe_buf, exe_len);
        argv[n++] = (char *)*prog;
        argv[n++] = "worker";
    } else {
        *prog = interp;
        argv[n++] = (char *)interp;
        if (f->kind == RUNTIME_PYTHON)
            argv[n++] = "-u";
        argv[n++] = (char *)(f->kind == RUNTIME_PYTHON ? py_boot : js_boot);
    }
    argv[n++] = (char *)f->p->name;
    argv[n] = NULL;
}

/* Its process, in a process group of its own (a Ctrl-C at the terminal
 * reaches only the daemon, which stops workers in order; a kill reaches the
 * whole tree), with its limits, identity and namespace (spawn.c). */
static int spawn_process(const struct fn *f, int child_fd, struct spawned *sp, struct err *e)
{
    char *argv[6], exe[PATH_MAX];
    const char *prog;
    worker_argv(f, argv, &prog, exe, sizeof exe);
    char **env = worker_env_build(f->p, f->kind); /* a clean environment, as on Lambda */
    if (!env)
        return err_set(e, "cannot start a worker (%s): out of memory", prog);
    struct spawn_spec spec = {.path = prog, .argv = argv, .envp = env, .fd3 = child_fd,
                              .limits = &f->p->limits, .run_as = &f->p->run_as,
                              .flags = f->p->sandbox ? SPAWN_PIDNS : 0, .name = f->p->name};
    int rc = spawn_start(&spec, sp, e);
    worker_env_free(env);
    return rc;
}

static void on_worker_io(void *arg, uint32_t events);
static void on_worker_exit(void *arg, uint32_t events);

/* A new process for f, with its socket and pidfd watched by the loop. */
static int worker_spawn(struct fn *f, struct worker **out, struct err *e)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w || !(w->versions = calloc(f->p->n_steps, sizeof *w->versions)) ||
        !(w->files = calloc(f->p->n_steps, sizeof *w->files))) {
        if (w)
            free(w->versions);
        free(w);
        return err_set(e, "out of memory");
    }
    static uint64_t serials;
    w->fn = f;
    w->serial = ++serials;
    w->fd = -1;
    w->sp.pidfd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        err_set(e, "socketpair: %s", strerror(errno));
        goto fail;
    }
    int sndbuf = SNDBUF_BYTES;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    /* A frame beyond the socket buffer is sent blocking on the loop thread: a
     * worker that does not read it within this is given up on, not waited for. */
    struct timeval sndtimeo = {.tv_sec = SEND_TIMEOUT_S};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    for (size_t i = 0; i < f->p->n_steps; i++) { /* before the worker opens them */
        if (f->p->steps[i].runtime == f->kind) {
            loader_file_id(step_file(&f->p->steps[i]), &w->files[i]);
            loader_file_id_text(&w->files[i], w->versions[i], sizeof w->versions[i]);
        }
    }
    w->spawned_ns = clock_mono_ns();
    int rc = spawn_process(f, sv[1], &w->sp, e);
    close(sv[1]);
    w->fd = sv[0];
    if (rc < 0) {
        close(w->fd);
        goto free;
    }
    wire_reader_init(&w->rd, w->fd);
    w->rd.exit_fd = w->sp.pidfd; /* a worker that exits is noticed at once, also by wire_read */
    if (loop_add_fd(f->ws->loop, w->fd, EPOLLIN, on_worker_io, w, e) < 0 ||
        (w->sp.pidfd >= 0 &&
         loop_add_fd(f->ws->loop, w->sp.pidfd, EPOLLIN, on_worker_exit, w, e) < 0))
        goto fail;
    w->next = f->all;
    f->all = w;
    f->ws->count++;
    metrics_workers_add(1);
    *out = w;
    return 0;
fail:
    loop_del_fd(f->ws->loop, w->fd);
    close(w->fd);
    if (w->sp.pidfd >= 0)
        loop_del_fd(f->ws->loop, w->sp.pidfd);
    spawn_kill_tree(&w->sp);
    spawn_reap(&w->sp, -1, NULL);
    spawn_release(&w->sp);
    wire_reader_free(&w->rd);
free:
    free(w->versions);
    free(w->files);
    free(w);
    return -1;
}

/* SIGKILL the whole process group, reap, say how it ended, free. */
static void worker_reap(struct worker *w, char *why, size_t len)
{
    struct fn *f = w->fn;
    loop_timer_cancel(f->ws->loop, &w->timer);
    loop_del_fd(f->ws->loop, w->fd);
    close(w->fd);
    if (w->sp.pidfd >= 0)
        loop_del_fd(f->ws->loop, w->sp.pidfd);
    wire_reader_free(&w->rd);
    int status = 0;
    spawn_kill_tree(&w->sp); /* its children too: its group, namespace or cgroup */
    spawn_reap(&w->sp, -1, &status);
    if (why)
        spawn_describe(status, why, len);
    spawn_release(&w->sp); /* closes the pidfd */
    for (struct worker **p = &f->all; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    f->ws->count--;
    metrics_workers_add(-1);
    free(w->versions);
    free(w->files);
    free(w);
}

/* Ask it to finish (EOF on its socket: its plugins' destroy runs); its
 * exit, or the grace timer, ends it. */
static void on_stop_grace(struct loop_timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, timer));
    worker_reap(w, NULL, 0);
}

static void worker_stop(struct worker *w)
{
    if (w->state == W_STOPPING)
        return;
    w->state = W_STOPPING;
    shutdown(w->fd, SHUT_WR);
    w->timer.fire = on_stop_grace;
    loop_timer_arm(w->fn->ws->loop, &w->timer, clock_mono_ns() + (int64_t)STOP_GRACE_MS * 1000000);
}

/* --- attempts -------------------------------------------------------------- */

static void set_failure(struct attempt *a, enum inv_status status, const char *type,
                        const char *msg)
{
    a->status = status;
    free(a->error_type);
    free(a->error);
    a->error_type = strdup(type);
    a->error = strdup(msg);
}

/* The next queued attempt is the one the worker runs now: its deadline
 * counts from here (the worker counts its own from reading its INVOKE). */
static void promote(struct worker *w)
{
    struct call c = w->queue[0];
    w->n_queued--;
    memmove(w->queue, w->queue + 1, (size_t)w->n_queued * sizeof *w->queue);
    w->queued_bytes -= c.a->event_len;
    w->a = c.a;
    w->done = c.done;
    w->done_arg = c.done_arg;
    w->attempt_start_ns = clock_mono_ns();
    c.a->started_ms = clock_wall_ms();
    w->timer.fire = on_deadline;
    loop_timer_arm(w->fn->ws->loop, &w->timer, w->attempt_start_ns +
                   (int64_t)(c.a->step->timeout_ms + RESULT_GRACE_MS) * 1000000);
}

/* Take the attempts queued behind the one in flight, which will not run in
 * this worker (it is being killed); they go back to their function. */
static int take_queue(struct worker *w, struct call out[PIPE_DEPTH - 1])
{
    int n = w->n_queued;
    memcpy(out, w->queue, (size_t)n * sizeof *out);
    w->n_queued = 0;
    w->queued_bytes = 0;
    return n;
}

static void requeue(struct fn *f, const struct call *q, int n)
{
    for (int i = 0; i < n; i++)
        place(f, q[i].a, q[i].done, q[i].done_arg);
}

/* Hand the finished attempt back (it may start the next one at once); the
 * worker goes on with its queue, or is idle. */
static void attempt_end(struct worker *w)
{
    struct attempt *a = w->a;
    void (*done)(void *) = w->done;
    void *arg = w->done_arg;
    w->a = NULL;
    if (a->duration_ms <= 0)
        a->duration_ms = (double)(clock_mono_ns() - w->attempt_start_ns) / 1e6;
    if (w->n_queued > 0)
        promote(w);
    else
        worker_idle(w);
    feed_waiting(w->fn);
    done(arg);
}

/* Wait before the next start after n failures in a row: 100 ms doubling to
 * 30 s, so code that can never start is not respawned in a hot loop. */
static int backoff_ms(int n)
{
    int ms = BACKOFF_FIRST_MS << (n > 9 ? 9 : n - 1);
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

/* One more start failed: the next waits out a back-off, and so does what
 * already waits for a worker. */
static void fn_back_off(struct fn *f)
{
    f->init_failures++;
    f->backoff_until_ns = clock_mono_ns() + (int64_t)backoff_ms(f->init_failures) * 1000000;
    if (f->waiting)
        loop_timer_arm(f->ws->loop, &f->backoff, f->backoff_until_ns);
}

/* The worker could not start (or refused to: a plugin that does not load).
 * The attempt fails with Runtime.InitError; the function backs off. */
static void start_failed(struct worker *w, const char *reason, bool said)
{
    struct fn *f = w->fn;
    struct attempt *a = w->a;
    int64_t t0 = w->attempt_start_ns;
    char why[256] = "";
    worker_reap(w, said ? NULL : why, sizeof why);
    fn_back_off(f);
    char msg[1400];
    snprintf(msg, sizeof msg, "the worker failed to start: %s%s%s", reason, *why ? "; " : "",
             why);
    log_msg(LOG_ERROR, "pipeline %s: %s (%d in a row; the next one starts after %d ms)",
            f->p->name, msg, f->init_failures, backoff_ms(f->init_failures));
    if (a) {
        set_failure(a, INV_CRASHED, "Runtime.InitError", msg);
        a->duration_ms = (double)(clock_mono_ns() - t0) / 1e6;
    }
}

/* The worker is gone or misbehaved during an attempt: record why, reap. */
static void worker_lost(struct worker *w, enum inv_status status, const char *what)
{
    struct fn *f = w->fn;
    struct attempt *a = w->a;
    void (*done)(void *) = w->done;
    void *arg = w->done_arg;
    int64_t t0 = w->attempt_start_ns;
    struct call q[PIPE_DEPTH - 1];
    int n = take_queue(w, q);
    char why[256];
    worker_reap(w, why, sizeof why);
    char msg[1400];
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    set_failure(a, status, status == INV_TIMEOUT ? "Sandbox.Timedout" : "Runtime.ExitError",
                msg);
    a->duration_ms = (double)(clock_mono_ns() - t0) / 1e6;
    /* a handler that was fast and now hangs or crashes is no longer one to
     * queue behind: a fresh result must say so first */
    f->avg_ms = -1;
    done(arg); /* its init had passed (READY): the next worker starts at once */
    if (n > 0)
        log_msg(LOG_INFO, "pipeline %s: %d invocation%s queued behind it go%s to another "
                "worker (they had not started)", f->p->name, n, n == 1 ? "" : "s",
                n == 1 ? "es" : "");
    requeue(f, q, n); /* they never started: no attempt of theirs is used up */
    feed_waiting(f);
}

static void on_deadline(struct loop_timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, timer));
    char what[200];
    if (w->state == W_STARTING) {
        snprintf(what, sizeof what, "it did not report ready within %d ms",
                 w->a ? w->a->step->timeout_ms + INIT_GRACE_MS : INIT_GRACE_MS);
        struct attempt *a = w->a;
        void (*done)(void *) = w->done;
        void *arg = w->done_arg;
        start_failed(w, what, false);
        if (a)
            done(arg);
        return;
    }
    snprintf(what, sizeof what, "Task timed out after %d ms (timeout_ms); the worker was killed "
             "and will be replaced", w->a->step->timeout_ms);
    worker_lost(w, INV_TIMEOUT, what);
}

static void forward_log(struct worker *w, const struct wire_frame *f)
{
    int level;
    const char *msg;
    struct err e;
    const struct attempt *a = w->a;
    if (a && wire_decode_log(f, &level, &msg, &e) == 0)
        invlog_line(w->fn->ws->writer, a->request_id, a->pipeline->name, a->step->name, level,
                    msg, NULL);
}

static int take_result(struct attempt *a, const struct wire_frame *f, struct err *e)
{
    struct wire_result r;
    if (wire_decode_result(f, &r, e) < 0)
        return -1;
    size_t at;
    if (r.body && !json_check(r.body, r.body_len, &at, NULL)) /* checked, not parsed */
        return err_set(e, "protocol error: the response body is not JSON");
    a->status = (enum inv_status)r.status;
    a->status_code = r.status_code;
    a->init_ms = r.init_ms;
    a->duration_ms = r.duration_ms;
    a->max_memory_kb = r.max_rss_kb;
    a->body = r.body ? strndup(r.body, r.body_len) : strdup("null");
    a->body_len = r.body ? r.body_len : 4;
    if (r.error_type)
        a->error_type = strndup(r.error_type, r.error_type_len);
    if (r.error)
        a->error = strndup(r.error, r.error_len);
    if (r.stack) {
        cJSON *v = cJSON_ParseWithLength(r.stack, r.stack_len);
        if (cJSON_IsArray(v))
            a->stack = strndup(r.stack, r.stack_len);
        cJSON_Delete(v);
    }
    return 0;
}

/* Back to the function's idle workers, most recent first. */
static void worker_idle(struct worker *w)
{
    struct fn *f = w->fn;
    loop_timer_cancel(f->ws->loop, &w->timer);
    wire_reader_idle(&w->rd); /* a big response's buffer goes now */
    if (f->forgotten || w->exited) {
        worker_stop(w);
        return;
    }
    w->state = W_IDLE;
    w->idle_since_ns = clock_mono_ns();
    for (struct worker **p = &f->all; *p; p = &(*p)->next) /* to the front */
        if (*p == w) {
            *p = w->next;
            break;
        }
    w->next = f->all;
    f->all = w;
    if (!f->ws->sweep.armed)
        loop_timer_arm(f->ws->loop, &f->ws->sweep, clock_mono_ns() + f->ws->idle_ns);
}

static void on_result(struct worker *w, const struct wire_frame *fr)
{
    struct attempt *a = w->a;
    struct err e;
    if (take_result(a, fr, &e) < 0) {
        worker_lost(w, INV_CRASHED, e.msg);
        return;
    }
    w->served++;
    if (w->served == 1)
        a->init_ms = w->start_ms + (a->init_ms > 0 ? a->init_ms : 0);
    struct fn *f = w->fn;
    if (error_kind_of(a->error_type) == ERROR_INIT) {
        /* init failed: the next try starts a fresh worker, after a back-off */
        fn_back_off(f);
        void (*done)(void *) = w->done;
        void *arg = w->done_arg;
        if (a->duration_ms <= 0)
            a->duration_ms = (double)(clock_mono_ns() - w->attempt_start_ns) / 1e6;
        w->a = NULL;
        struct call q[PIPE_DEPTH - 1];
        int n = take_queue(w, q);
        if (n > 0)
            worker_reap(w, NULL, 0); /* what it was sent must not run there */
        else
            worker_stop(w);
        done(arg);
        requeue(f, q, n);
        return;
    }
    f->init_failures = 0;
    /* how fast its handlers are decides whether it is worth queueing behind them */
    f->avg_ms = f->avg_ms < 0 ? a->duration_ms : f->avg_ms + (a->duration_ms - f->avg_ms) / 8;
    attempt_end(w);
}

static void on_ready(struct worker *w, const struct wire_frame *fr)
{
    if (fr->len < 4) {
        worker_end(w);
        return;
    }
    int32_t ok;
    memcpy(&ok, fr->data, 4);
    if (!ok) {
        char reason[1000];
        snprintf(reason, sizeof reason, "%.900s", (const char *)fr->data + 4);
        struct attempt *a = w->a;
        void (*done)(void *) = w->done;
        void *arg = w->done_arg;
        start_failed(w, reason, true);
        if (a)
            done(arg);
        return;
    }
    struct fn *f = w->fn;
    w->start_ms = (double)(clock_mono_ns() - w->spawned_ns) / 1e6;
    loop_timer_cancel(f->ws->loop, &w->timer);
    if (w->a)
        start_attempt(w);
    else
        worker_idle(w);
    feed_waiting(f);
}

/* The socket or the process ended, or a frame broke the protocol. */
static void worker_end(struct worker *w)
{
    if (w->state == W_STOPPING || w->state == W_IDLE) {
        struct fn *f = w->fn;
        bool idle = w->state == W_IDLE;
        worker_reap(w, NULL, 0);
        if (idle) /* one fewer counts against the concurrency */
            feed_waiting(f);
        return;
    }
    if (w->state == W_STARTING) {
        struct attempt *a = w->a;
        void (*done)(void *) = w->done;
        void *arg = w->done_arg;
        start_failed(w, "it ended before it was ready", false);
        if (a)
            done(arg);
        return;
    }
    worker_lost(w, INV_CRASHED, "the worker died during the invocation");
}

static bool handle_frame(struct worker *w, const struct wire_frame *fr)
{
    if (fr->type == WIRE_LOG) { /* outside an invocation (a handler's timer): no row owns it */
        if (w->state == W_BUSY)
            forward_log(w, fr);
        return true;
    }
    if (fr->type == WIRE_RESULT && w->state == W_BUSY) {
        on_result(w, fr);
        return false; /* w may be gone or busy with the next attempt */
    }
    if (fr->type == WIRE_READY && w->state == W_STARTING) {
        on_ready(w, fr);
        return false;
    }
    if (w->state == W_STOPPING)
        return true; /* draining: whatever it still says */
    if (w->state == W_BUSY) {
        char msg[100];
        snprintf(msg, sizeof msg, "the worker broke the protocol (frame type %u) and was killed",
                 fr->type);
        worker_lost(w, INV_CRASHED, msg);
    } else {
        worker_end(w);
    }
    return false;
}

static bool still_there(const struct fn *f, uint64_t serial)
{
    for (const struct worker *x = f->all; x; x = x->next)
        if (x->serial == serial)
            return true;
    return false;
}

/* Read what the worker sent, while the worker is there. */
static void drain(struct worker *w)
{
    struct fn *f = w->fn;
    uint64_t serial = w->serial;
    for (;;) {
        struct wire_frame fr;
        struct err e;
        int rc = wire_try_read(&w->rd, &fr, &e);
        if (rc == 0)
            return;
        if (rc < 0) {
            if (w->state == W_BUSY && rc == WIRE_BROKEN) {
                char what[1100];
                snprintf(what, sizeof what, "the worker broke the protocol (%s) and was killed",
                         e.msg);
                worker_lost(w, INV_CRASHED, what);
            } else {
                worker_end(w);
            }
            return;
        }
        /* after a result, the next queued attempt's frames may be buffered already */
        if (!handle_frame(w, &fr) && !still_there(f, serial))
            return;
    }
}

static void on_worker_io(void *arg, uint32_t events)
{
    (void)events;
    drain(arg);
}

/* The process exited: what it wrote before is read first; a worker whose
 * children still hold its socket is over all the same. */
static void on_worker_exit(void *arg, uint32_t events)
{
    struct worker *w = arg;
    struct fn *f = w->fn;
    uint64_t serial = w->serial;
    (void)events;
    w->exited = true;
    drain(w);
    if (still_there(f, serial))
        worker_end(w);
}

/* Send a's INVOKE to w. deadline_ns < 0 is a timeout the worker counts
 * from when it takes the frame (a queued attempt: wire.h). */
static int send_invoke(struct worker *w, struct attempt *a, int64_t deadline_ns)
{
    const struct pipeline *p = w->fn->p;
    const char *version = w->versions[a->step - p->steps];
    size_t vlen = strnlen(version, sizeof a->plugin_version - 1);
    memcpy(a->plugin_version, version, vlen);
    a->plugin_version[vlen] = '\0';
    struct wire_invoke in = {.step = (uint32_t)(a->step - p->steps),
                             .attempt = (uint32_t)a->number, .deadline_ns = deadline_ns,
                             .event = a->event, .event_len = a->event_len};
    snprintf(in.request_id, sizeof in.request_id, "%s", a->request_id);
    /* C workers: event id and source for the ABI 2 context (issue 20) */
    in.ids = a->step->runtime == RUNTIME_C;
    in.event_id = a->event_id;
    in.source = a->source;
    struct err e;
    return wire_send_invoke(w->fd, &in, &e);
}

/* Send the attempt's INVOKE; its deadline is a loop timer. */
static void start_attempt(struct worker *w)
{
    struct attempt *a = w->a;
    w->state = W_BUSY;
    w->attempt_start_ns = clock_mono_ns();
    int64_t deadline = w->attempt_start_ns + (int64_t)a->step->timeout_ms * 1000000;
    if (send_invoke(w, a, deadline) < 0) {
        worker_lost(w, INV_CRASHED, "the worker stopped taking work");
        return;
    }
    w->timer.fire = on_deadline;
    loop_timer_arm(w->fn->ws->loop, &w->timer, deadline + (int64_t)RESULT_GRACE_MS * 1000000);
}

/* Send it behind the worker's attempt in flight (pipelining). False: the
 * worker is gone (its results still unread say how far it got: its end is
 * handled when the loop sees it, not here) and a was not sent. */
static bool enqueue(struct worker *w, struct attempt *a, void (*done)(void *), void *arg)
{
    if (send_invoke(w, a, -(int64_t)a->step->timeout_ms * 1000000) < 0) {
        w->exited = true; /* nothing more is sent to it */
        return false;
    }
    w->queue[w->n_queued++] = (struct call){.a = a, .done = done, .done_arg = arg};
    w->queued_bytes += a->event_len;
    metrics_pipelined();
    return true;
}

/* A new worker for the attempt: spawned now, INIT sent; READY starts it. */
static void start_worker(struct fn *f, struct attempt *a, void (*done)(void *), void *arg)
{
    struct worker *w = NULL;
    struct err e;
    char *json = init_json(f->p, f->kind);
    int rc = json ? worker_spawn(f, &w, &e) : err_set(&e, "out of memory");
    if (rc == 0) {
        w->state = W_STARTING;
        w->a = a;
        w->done = done;
        w->done_arg = arg;
        w->attempt_start_ns = clock_mono_ns();
        rc = wire_write(w->fd, WIRE_INIT, json, strlen(json), NULL, 0, &e);
        if (rc == 0) {
            w->timer.fire = on_deadline;
            loop_timer_arm(f->ws->loop, &w->timer, clock_mono_ns() +
                           (int64_t)(a->step->timeout_ms + INIT_GRACE_MS) * 1000000);
        } else {
            start_failed(w, e.msg, false);
            done(arg);
        }
    } else {
        fn_back_off(f);
        char msg[1200];
        snprintf(msg, sizeof msg, "the worker failed to start: %s", e.msg);
        log_msg(LOG_ERROR, "pipeline %s: %s (%d in a row)", f->p->name, msg, f->init_failures);
        set_failure(a, INV_CRASHED, "Runtime.InitError", msg);
        done(arg);
    }
    free(json);
}

static struct worker *take_idle(struct fn *f)
{
    for (struct worker *w = f->all; w; w = w->next) {
        if (w->state != W_IDLE)
            continue;
        if (!code_changed(w))
            return w;
        log_msg(LOG_INFO, "pipeline %s: a plugin file changed on disk; recycling a worker",
                f->p->name);
        worker_stop(w); /* the next one loads the new file */
        return take_idle(f);
    }
    return NULL;
}

/* Workers that count against the function's concurrency. */
static int live_workers(const struct fn *f)
{
    int n = 0;
    for (const struct worker *w = f->all; w; w = w->next)
        n += w->state != W_STOPPING;
    return n;
}

/* Worth queueing behind: its handlers have been fast. The provided
 * runtime's adapter takes a readable socket mid-invocation for the daemon
 * leaving, so it is never sent one ahead. */
static bool fast(const struct fn *f)
{
    return f->kind != RUNTIME_PROVIDED && f->avg_ms >= 0 && f->avg_ms < PIPE_FAST_MS;
}

/* The busy worker with the shortest queue that may take a behind it. */
static struct worker *pipe_target(struct fn *f, const struct attempt *a)
{
    if (!fast(f) || a->event_len > PIPE_MAX_BYTES)
        return NULL;
    struct worker *best = NULL;
    for (struct worker *w = f->all; w; w = w->next)
        if (w->state == W_BUSY && !w->exited && w->n_queued < PIPE_DEPTH - 1 &&
            w->queued_bytes + a->event_len <= PIPE_MAX_BYTES &&
            (!best || w->n_queued < best->n_queued))
            best = w;
    return best && !code_changed(best) ? best : NULL;
}

static bool backing_off(const struct fn *f)
{
    return f->init_failures > 0 && clock_mono_ns() < f->backoff_until_ns;
}

/* An idle worker, a new one (within the function's concurrency, outside a
 * start back-off), or a place behind a busy one; false: none now. */
static bool try_dispatch(struct fn *f, struct attempt *a, void (*done)(void *), void *arg)
{
    struct worker *w = take_idle(f);
    if (w) {
        w->a = a;
        w->done = done;
        w->done_arg = arg;
        start_attempt(w);
        return true;
    }
    if (live_workers(f) < f->p->concurrency && !backing_off(f)) {
        start_worker(f, a, done, arg);
        return true;
    }
    while ((w = pipe_target(f, a)))
        if (enqueue(w, a, done, arg))
            return true;
    return false;
}

/* Waits for a worker (or the end of a back-off), in order of arrival. */
static void wait_for_worker(struct fn *f, struct attempt *a, void (*done)(void *), void *arg)
{
    struct pending *pd = malloc(sizeof *pd);
    if (!pd) {
        a->interrupted = true;
        done(arg);
        return;
    }
    *pd = (struct pending){.a = a, .done = done, .done_arg = arg};
    if (f->waiting_tail)
        f->waiting_tail->next = pd;
    else
        f->waiting = pd;
    f->waiting_tail = pd;
    if (backing_off(f))
        loop_timer_arm(f->ws->loop, &f->backoff, f->backoff_until_ns);
}

/* An attempt for f: at once if it can go somewhere, else after those
 * already waiting. */
static void place(struct fn *f, struct attempt *a, void (*done)(void *), void *arg)
{
    if (f->waiting || !try_dispatch(f, a, done, arg))
        wait_for_worker(f, a, done, arg);
}

/* A worker became free, left, or took a queued attempt: hand out what waits. */
static void feed_waiting(struct fn *f)
{
    while (f->waiting) {
        struct pending *pd = f->waiting; /* off the list first: a dispatch can feed too */
        f->waiting = pd->next;
        if (!f->waiting)
            f->waiting_tail = NULL;
        if (!try_dispatch(f, pd->a, pd->done, pd->done_arg)) {
            pd->next = f->waiting; /* back in front: it found no place, and did nothing */
            f->waiting = pd;
            if (!f->waiting_tail)
                f->waiting_tail = pd;
            break;
        }
        free(pd);
    }
    if (f->waiting && backing_off(f))
        loop_timer_arm(f->ws->loop, &f->backoff, f->backoff_until_ns);
}

static void on_backoff_over(struct loop_timer *t)
{
    feed_waiting((struct fn *)((char *)t - offsetof(struct fn, backoff)));
}

/* fns are found by their pipeline's index in its set (a chain per index:
 * kinds and generations), so finding one costs the same for 1 or 1,000
 * pipelines. */
static struct fn *fn_find(const struct workers *ws, const struct pipeline *p, enum runtime kind)
{
    if (p->index >= ws->n_index)
        return NULL;
    for (struct fn *f = ws->by_index[p->index]; f; f = f->same_index)
        if (f->p == p && f->kind == kind && !f->forgotten)
            return f;
    return NULL;
}

static struct fn *fn_get(struct workers *ws, const struct pipeline *p, enum runtime kind)
{
    struct fn *f = fn_find(ws, p, kind);
    if (f)
        return f;
    if (p->index >= ws->n_index) {
        size_t n = p->index + 64;
        struct fn **v = realloc(ws->by_index, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + ws->n_index, 0, (n - ws->n_index) * sizeof *v);
        ws->by_index = v;
        ws->n_index = n;
    }
    if (!(f = calloc(1, sizeof *f)) || !(f->files = calloc(p->n_steps, sizeof *f->files))) {
        free(f);
        return NULL;
    }
    *f = (struct fn){.ws = ws, .p = p, .kind = kind, .next = ws->fns, .avg_ms = -1,
                     .same_index = ws->by_index[p->index], .index = p->index,
                     .files = f->files};
    f->backoff.fire = on_backoff_over;
    ws->fns = f;
    ws->by_index[p->index] = f;
    return f;
}

int workers_depth(const struct workers *ws, const struct pipeline *p)
{
    bool any = false;
    for (size_t i = 0; ws && i < p->n_steps; i++) {
        if (!worker_needed(p, &p->steps[i]))
            return 1; /* its thread steps hold an executor each: no queueing there */
        const struct fn *f = fn_find(ws, p, p->steps[i].runtime);
        if (!f || !fast(f))
            return 1;
        any = true;
    }
    return any ? PIPE_DEPTH : 1;
}

void workers_run(struct workers *ws, struct attempt *a, void (*done)(void *arg), void *arg)
{
    a->started_ms = clock_wall_ms();
    a->init_ms = -1;
    if (a->event_len > WIRE_MAX_EVENT) { /* it would not fit in a frame */
        char msg[200];
        snprintf(msg, sizeof msg, "the event is %.1f MB; the largest a worker takes is 64 MiB",
                 (double)a->event_len / 1e6);
        set_failure(a, INV_ERROR, "RequestTooLarge", msg);
        done(arg);
        return;
    }
    struct fn *f = fn_get(ws, a->pipeline, a->step->runtime);
    if (!f) {
        set_failure(a, INV_CRASHED, "Runtime.InitError", "out of memory");
        done(arg);
        return;
    }
    place(f, a, done, arg);
}

/* --- the set --------------------------------------------------------------- */

static void fn_free(struct workers *ws, struct fn *f)
{
    for (struct fn **p = &ws->fns; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    if (f->index < ws->n_index)
        for (struct fn **p = &ws->by_index[f->index]; *p; p = &(*p)->same_index)
            if (*p == f) {
                *p = f->same_index;
                break;
            }
    loop_timer_cancel(ws->loop, &f->backoff);
    free(f->files);
    free(f);
}

/* Stop workers idle longer than idle_timeout_s; free forgotten functions
 * with no worker left. */
static void on_sweep(struct loop_timer *t)
{
    struct workers *ws = (struct workers *)((char *)t - offsetof(struct workers, sweep));
    int64_t now = clock_mono_ns(), next = 0;
    for (struct fn *f = ws->fns, *fnext; f; f = fnext) {
        fnext = f->next;
        for (struct worker *w = f->all, *wnext; w; w = wnext) {
            wnext = w->next;
            if (w->state != W_IDLE)
                continue;
            if (now - w->idle_since_ns >= ws->idle_ns)
                worker_stop(w);
            else if (!next || w->idle_since_ns + ws->idle_ns < next)
                next = w->idle_since_ns + ws->idle_ns;
        }
        if (f->forgotten && !f->all && !f->waiting)
            fn_free(ws, f);
    }
    if (next)
        loop_timer_arm(ws->loop, &ws->sweep, next);
}

int workers_new(struct loop *l, struct writer *w, const char *exe, int idle_timeout_s,
                struct workers **out, struct err *e)
{
    struct workers *ws = calloc(1, sizeof *ws);
    if (!ws)
        return err_set(e, "out of memory");
    ws->loop = l;
    ws->writer = w;
    snprintf(ws->exe, sizeof ws->exe, "%s", exe);
    ws->idle_ns = (int64_t)(idle_timeout_s > 0 ? idle_timeout_s : 300) * 1000000000;
    ws->sweep.fire = on_sweep;
    *out = ws;
    return 0;
}

void workers_forget(struct workers *ws, const struct pipeline *p)
{
    for (struct fn *f = ws->fns, *next; f; f = next) {
        next = f->next;
        if (f->p != p)
            continue;
        f->forgotten = true;
        for (struct worker *w = f->all, *wnext; w; w = wnext) {
            wnext = w->next;
            if (w->state == W_IDLE)
                worker_stop(w);
        }
    }
    if (!ws->sweep.armed)
        loop_timer_arm(ws->loop, &ws->sweep, clock_mono_ns() + STOP_GRACE_MS * 1000000LL);
}

void workers_interrupt(struct workers *ws)
{
    for (struct fn *f = ws->fns; f; f = f->next) {
        while (f->waiting) {
            struct pending *pd = f->waiting;
            f->waiting = pd->next;
            pd->a->interrupted = true;
            pd->done(pd->done_arg);
            free(pd);
        }
        f->waiting_tail = NULL;
    }
}

int workers_count(const struct workers *ws)
{
    return ws->count;
}

void workers_free(struct workers **wsp)
{
    struct workers *ws = *wsp;
    if (!ws)
        return;
    workers_interrupt(ws);
    for (struct fn *f = ws->fns; f; f = f->next)
        for (struct worker *w = f->all; w; w = w->next)
            shutdown(w->fd, SHUT_WR);
    int64_t until = clock_mono_ns() + (int64_t)STOP_GRACE_MS * 1000000;
    while (ws->fns) {
        struct fn *f = ws->fns;
        while (f->all) {
            struct worker *w = f->all;
            struct wire_frame fr;
            int timed_out;
            struct err e;
            while (wire_read(&w->rd, until, &fr, &timed_out, &e) == 0) /* drain until EOF */
                wire_frame_release(&fr);
            worker_reap(w, NULL, 0);
        }
        fn_free(ws, f);
    }
    loop_timer_cancel(ws->loop, &ws->sweep);
    free(ws->by_index);
    free(ws);
    *wsp = NULL;
}
