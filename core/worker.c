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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "executor.h"
#include "json.h"
#include "loader.h"
#include "log.h"
#include "pipeline.h"
#include "spawn.h"
#include "wire.h"
#include "writer.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define STOP_GRACE_MS 2000
#define WORKER_EXE "sluice-worker" /* beside the sluice binary */

extern char **environ;

struct worker {
    struct spawned sp;          /* its process and all it starts (spawn.h) */
    int fd;
    struct wire_reader rd;      /* frames from the worker */
    double start_ms;            /* spawn to ready: part of the first invocation's init */
    int served;                 /* invocations answered */
    enum runtime kind;
    char (*versions)[64];       /* of each of its steps' files, as this worker loaded them */
    struct loader_file_id *files;   /* the same, to compare */
};

bool worker_needed(const struct pipeline *p, const struct step *s)
{
    return p->isolation == ISOLATION_PROCESS || s->runtime != RUNTIME_C;
}

/* Did any file behind w's steps change since w loaded it (hot reload)? One
 * stat per file and attempt. */
static bool code_changed(const struct worker *w, const struct pipeline *p)
{
    for (size_t i = 0; i < p->n_steps; i++) {
        if (p->steps[i].runtime != w->kind)
            continue;
        struct loader_file_id now;
        loader_file_id(step_file(&p->steps[i]), &now);
        if (!loader_file_id_equal(&now, &w->files[i]))
            return true;
    }
    return false;
}

/* The INIT frame: the steps this kind of worker serves, by resolved file,
 * each with its index in the pipeline (INVOKE frames name steps by it). */
static char *init_json(const struct pipeline *p, enum runtime kind)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "pipeline", p->name);
    cJSON_AddStringToObject(root, "runtime", runtime_name(kind));
    cJSON_AddNumberToObject(root, "memory_mb", p->limits.memory_mb);
    cJSON_AddBoolToObject(root, "sandbox", p->sandbox);
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
        cJSON_AddItemToArray(steps, js);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* SIGKILL, reap, and say how it ended. */
static void worker_kill(struct worker **wp, char *why, size_t len)
{
    struct worker *w = *wp;
    if (!w)
        return;
    close(w->fd);
    wire_reader_free(&w->rd);
    int status = 0;
    if (!spawn_reap(&w->sp, 0, &status)) { /* issue 21: the whole tree, spawn.c */
        spawn_kill_tree(&w->sp);
        spawn_reap(&w->sp, -1, &status);
    }
    if (why)
        spawn_describe(status, why, len);
    spawn_release(&w->sp);
    free(w->versions);
    free(w->files);
    free(w);
    *wp = NULL;
}

/* Ask it to finish (EOF on its socket), then insist. */
static void worker_stop(struct worker **wp)
{
    struct worker *w = *wp;
    if (!w)
        return;
    shutdown(w->fd, SHUT_WR);
    int64_t until = clock_mono_ns() + (int64_t)STOP_GRACE_MS * 1000000;
    struct wire_frame f;
    int timed_out;
    struct err e;
    while (wire_read(&w->rd, until, &f, &timed_out, &e) == 0) /* drain until EOF */
        wire_frame_release(&f);
    worker_kill(wp, NULL, 0);
}

#ifndef SLUICE_RUNTIME_DIR
#define SLUICE_RUNTIME_DIR "runtimes"
#endif

/* The program C workers run: sluice-worker beside the sluice binary, which
 * links only what a worker needs and so starts several ms sooner than the
 * daemon's own binary with its ~30 shared libraries (worker_exe.c). Without
 * it, `sluice worker` (the same code), and the log says so once. Returns
 * buf, filled, or exe. */
static const char *c_worker_exe(const char *exe, char *buf, size_t len)
{
    static atomic_bool said;
    const char *slash = strrchr(exe, '/');
    int dir = slash ? (int)(slash - exe + 1) : 0;
    int n = snprintf(buf, len, "%.*s%s", dir, exe, WORKER_EXE);
    if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0)
        return buf;
    const char *why = n > 0 && (size_t)n < len ? strerror(errno) : "path too long";
    if (!atomic_exchange(&said, true))
        log_msg(LOG_WARN, "%.*s%s: %s; C workers run as `%s worker` instead, which starts "
                "slower (build or install " WORKER_EXE " beside sluice)", dir, exe, WORKER_EXE,
                why, exe);
    return exe;
}

/* The program and arguments of a worker of this kind; C workers keep the
 * command line `PROGRAM worker PIPELINE` whichever program runs them. */
static void worker_argv(const struct exec_slot *slot, enum runtime kind, char *argv[6],
                        const char **prog, char *exe_buf, size_t exe_len)
{
    static const char py_boot[] = SLUICE_RUNTIME_DIR "/python/bootstrap.py";
    static const char js_boot[] = SLUICE_RUNTIME_DIR "/node/bootstrap.js";
    const char *interp = NULL;
    for (size_t i = 0; i < slot->p->n_steps && !interp; i++)
        if (slot->p->steps[i].runtime == kind)
            interp = slot->p->steps[i].interpreter;
    int n = 0;
    if (kind == RUNTIME_C) {
        *prog = c_worker_exe(slot->exe, exe_buf, exe_len);
        argv[n++] = (char *)*prog;
        argv[n++] = "worker";
    } else {
        *prog = interp;
        argv[n++] = (char *)interp;
        if (kind == RUNTIME_PYTHON)
            argv[n++] = "-u";
        argv[n++] = (char *)(kind == RUNTIME_PYTHON ? py_boot : js_boot);
    }
    argv[n++] = (char *)slot->p->name;
    argv[n] = NULL;
}

static int spawn(const struct exec_slot *slot, enum runtime kind, struct worker **out,
                 struct err *e)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return err_set(e, "socketpair: %s", strerror(errno));
    struct worker *w = calloc(1, sizeof *w);
    if (w && (!(w->versions = calloc(slot->p->n_steps, sizeof *w->versions)) ||
              !(w->files = calloc(slot->p->n_steps, sizeof *w->files)))) {
        free(w->versions);
        free(w);
        w = NULL;
    }
    if (!w) {
        close(sv[0]);
        close(sv[1]);
        return err_set(e, "out of memory");
    }
    char *argv[6], exe[PATH_MAX];
    const char *prog;
    worker_argv(slot, kind, argv, &prog, exe, sizeof exe);
    /* issue 21: process creation, limits, identity, namespace, cgroup: spawn.c */
    struct spawn_spec spec = {.path = prog, .argv = argv, .envp = environ, .fd3 = sv[1],
                              .limits = &slot->p->limits, .run_as = &slot->p->run_as,
                              .flags = slot->p->sandbox ? SPAWN_PIDNS : 0,
                              .name = slot->p->name};
    int rc = spawn_start(&spec, &w->sp, e);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        free(w->versions);
        free(w->files);
        free(w);
        return -1;
    }
    w->fd = sv[0];
    wire_reader_init(&w->rd, w->fd);
    w->rd.exit_fd = w->sp.pidfd; /* issue 21: a worker that exits is noticed at once */
    w->kind = kind;
    for (size_t i = 0; i < slot->p->n_steps; i++) { /* before the worker opens them */
        if (slot->p->steps[i].runtime == kind) {
            loader_file_id(step_file(&slot->p->steps[i]), &w->files[i]);
            loader_file_id_text(&w->files[i], w->versions[i], sizeof w->versions[i]);
        }
    }
    *out = w;
    return 0;
}

/* Send INIT and wait for READY: 0, -1 with e (I/O or protocol), or 1 when
 * the worker refused (e holds its reason: a plugin that does not load). */
static int handshake(struct worker *w, const struct pipeline *p, int64_t deadline,
                     struct err *e)
{
    char *json = init_json(p, w->kind);
    if (!json)
        return err_set(e, "out of memory");
    int rc = wire_write(w->fd, WIRE_INIT, json, strlen(json), NULL, 0, e);
    free(json);
    if (rc < 0)
        return -1;
    struct wire_frame f;
    int timed_out;
    if (wire_read(&w->rd, deadline, &f, &timed_out, e) < 0)
        return -1;
    if (f.type != WIRE_READY || f.len < 4) {
        wire_frame_release(&f);
        return err_set(e, "protocol error: expected a ready frame");
    }
    int32_t ok;
    memcpy(&ok, f.data, 4);
    if (!ok)
        err_set(e, "%.900s", (const char *)f.data + 4);
    wire_frame_release(&f);
    return ok ? 0 : 1;
}

static void set_failure(struct attempt *a, enum inv_status status, const char *type,
                        const char *msg)
{
    a->status = status;
    free(a->error_type);
    free(a->error);
    a->error_type = strdup(type);
    a->error = strdup(msg);
}

/* Wait before the next start after n failures in a row: 100 ms doubling to
 * 30 s, so a plugin that can never start is not respawned in a hot loop. */
static int backoff_ms(int n)
{
    int ms = BACKOFF_FIRST_MS << (n > 9 ? 9 : n - 1);
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

/* Make sure the slot has a ready worker. On failure a is filled. */
static int ensure_worker(struct exec_slot *slot, struct attempt *a)
{
    enum runtime k = a->step->runtime;
    if (slot->workers[k] && code_changed(slot->workers[k], slot->p)) {
        log_msg(LOG_INFO, "pipeline %s: a plugin file changed on disk; recycling a worker",
                slot->p->name);
        worker_stop(&slot->workers[k]); /* the next one loads the new file */
    }
    if (slot->workers[k] && spawn_reaped(&slot->workers[k]->sp)) { /* issue 21 */
        char why[256];
        worker_kill(&slot->workers[k], why, sizeof why);
        log_msg(LOG_INFO, "pipeline %s: an idle worker ended (%s); starting a new one",
                slot->p->name, why);
    }
    if (slot->workers[k])
        return 0;
    if (slot->init_failures[k] > 0) {
        if (!slot->wait(slot->wait_arg, backoff_ms(slot->init_failures[k]))) {
            a->interrupted = true; /* not a failure: the event stays pending */
            return -1;
        }
    }
    int64_t t0 = clock_mono_ns();
    struct err e;
    int64_t deadline = t0 + (int64_t)a->step->timeout_ms * 1000000 + 10000000000LL;
    int hs = -1;
    if (spawn(slot, k, &slot->workers[k], &e) == 0 &&
        (hs = handshake(slot->workers[k], slot->p, deadline, &e)) == 0) {
        slot->workers[k]->start_ms = (double)(clock_mono_ns() - t0) / 1e6;
        return 0;
    }
    char why[256] = "";
    bool refused = hs == 1; /* it said why; how it then ended adds nothing */
    if (slot->workers[k])
        worker_kill(&slot->workers[k], refused ? NULL : why, sizeof why);
    slot->init_failures[k]++;
    char msg[1400];
    snprintf(msg, sizeof msg, "the worker failed to start: %s%s%s", e.msg, *why ? "; " : "",
             why);
    log_msg(LOG_ERROR, "pipeline %s: %s (%d in a row; the next one starts after %d ms)",
            slot->p->name, msg, slot->init_failures[k], backoff_ms(slot->init_failures[k]));
    set_failure(a, INV_CRASHED, "Runtime.InitError", msg);
    return -1;
}

static void forward_log(struct writer *w, const struct attempt *a, const struct wire_frame *f)
{
    int level;
    const char *msg;
    struct err e;
    if (wire_decode_log(f, &level, &msg, &e) == 0)
        invlog_line(w, a->request_id, a->pipeline->name, a->step->name, level, msg, NULL);
}

static int take_result(struct attempt *a, const struct wire_frame *f, struct err *e)
{
    struct wire_result r;
    if (wire_decode_result(f, &r, e) < 0)
        return -1;
    if (r.body) {
        size_t at;
        cJSON *v = json_parse_exact(r.body, r.body_len, &at);
        if (!v)
            return err_set(e, "protocol error: the response body is not JSON");
        cJSON_Delete(v);
    }
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

/* The worker is gone or misbehaved: record why, reap it. */
static void worker_lost(struct exec_slot *slot, struct attempt *a, enum inv_status status,
                        const char *what)
{
    enum runtime k = a->step->runtime;
    char why[256];
    worker_kill(&slot->workers[k], why, sizeof why);
    char msg[1400];
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    set_failure(a, status, status == INV_TIMEOUT ? "Sandbox.Timedout" : "Runtime.ExitError",
                msg);
    /* its init had passed (READY): the next worker starts at once */
}

void worker_run_attempt(struct exec_slot *slot, struct writer *w, struct attempt *a)
{
    enum runtime k = a->step->runtime;
    a->started_ms = clock_wall_ms();
    a->init_ms = -1;
    int64_t t0 = clock_mono_ns();
    if (ensure_worker(slot, a) < 0) {
        a->duration_ms = (double)(clock_mono_ns() - t0) / 1e6;
        return;
    }
    int64_t start = clock_mono_ns();
    int64_t deadline = start + (int64_t)a->step->timeout_ms * 1000000;
    /* a cold start: this worker's start (spawn, load, init) is this
     * invocation's init_ms, however it ends */
    double cold = slot->workers[k]->served == 0 ? slot->workers[k]->start_ms : -1;
    const char *version = slot->workers[k]->versions[a->step - slot->p->steps];
    size_t vlen = strnlen(version, sizeof a->plugin_version - 1);
    memcpy(a->plugin_version, version, vlen);
    a->plugin_version[vlen] = '\0';
    struct wire_invoke in = {.step = (uint32_t)(a->step - slot->p->steps),
                             .attempt = (uint32_t)a->number, .deadline_ns = deadline,
                             .event = a->event, .event_len = a->event_len};
    snprintf(in.request_id, sizeof in.request_id, "%s", a->request_id);
    struct err e;
    bool sent = wire_send_invoke(slot->workers[k]->fd, &in, &e) == 0;
    if (!sent)
        worker_lost(slot, a, INV_CRASHED, "the worker stopped taking work");
    while (sent) {
        struct wire_frame f;
        int timed_out;
        /* a little grace so a result written at the deadline still counts */
        if (wire_read(&slot->workers[k]->rd, deadline + 50000000, &f, &timed_out, &e) < 0) {
            char what[1100];
            if (timed_out)
                snprintf(what, sizeof what, "Task timed out after %d ms (timeout_ms); the worker "
                         "was killed and will be replaced", a->step->timeout_ms);
            else if (strstr(e.msg, "protocol error"))
                snprintf(what, sizeof what, "the worker broke the protocol (%s) and was killed",
                         e.msg);
            else
                snprintf(what, sizeof what, "the worker died during the invocation");
            worker_lost(slot, a, timed_out ? INV_TIMEOUT : INV_CRASHED, what);
            break;
        }
        if (f.type == WIRE_LOG) {
            forward_log(w, a, &f);
            wire_frame_release(&f);
            continue;
        }
        int rc = f.type == WIRE_RESULT ? take_result(a, &f, &e)
                                       : err_set(&e, "protocol error: frame type %u", f.type);
        wire_frame_release(&f);
        wire_reader_idle(&slot->workers[k]->rd); /* a big response's buffer goes now */
        if (rc < 0) {
            worker_lost(slot, a, INV_CRASHED, e.msg);
            break;
        }
        slot->workers[k]->served++;
        if (a->status == INV_OK && a->status_code >= 500) {
            set_failure(a, INV_ERROR, "HandlerError", "the handler answered statusCode >= 500");
        }
        if (a->error_type && strcmp(a->error_type, "Runtime.InitError") == 0) {
            /* init failed: the next try starts a fresh worker, after a back-off */
            worker_stop(&slot->workers[k]);
            slot->init_failures[k]++;
            break;
        }
        slot->init_failures[k] = 0;
        break;
    }
    if (a->duration_ms <= 0)
        a->duration_ms = (double)(clock_mono_ns() - start) / 1e6;
    if (cold >= 0)
        a->init_ms = cold + (a->init_ms > 0 ? a->init_ms : 0);
}

void exec_slot_release(struct exec_slot *slot)
{
    for (int k = 0; k < RUNTIME_COUNT; k++)
        worker_stop(&slot->workers[k]);
}
