/* runtime_api_main.c - sluice-runtime-api, the worker program of
 * `"runtime": "provided"` steps.
 *
 * The daemon starts it like any worker (worker.c): `sluice-runtime-api
 * PIPELINE`, the worker protocol (wire.h) on fd 3. On INIT it starts each
 * provided step's `bootstrap` as its child, in its own process group (the
 * daemon's kill of a worker reaches it) and with PR_SET_PDEATHSIG (so does
 * any death of this process), serves each one the Runtime API on its own
 * loopback port (runtime_api.h) and answers READY once every bootstrap has
 * asked for its first event: their init is the worker's cold start. An
 * INVOKE becomes the answer to a `next`; the post that ends it becomes the
 * RESULT. What a bootstrap writes to stdout and stderr becomes LOG frames.
 * A bootstrap that exits during an invocation ends this process, so the
 * daemon reports the crash and starts a fresh worker; one that exits between
 * invocations is started again here. Deadlines are the daemon's (it kills
 * the worker and its process group).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "json.h"
#include "runtime_api.h"
#include "wire.h"

#define WORKER_FD 3
#define LV_INFO 20
#define LV_WARN 30
#define LV_ERROR 40
#define HELD_MAX_LINES 1000      /* output between invocations, kept for the next one */
#define INV_MAX_LINES 10000      /* per invocation, as the script runtimes */
#define INV_MAX_BYTES (10 << 20)
#define TAIL_MAX 600             /* the last output, for an init failure's message */
#define ST_OK 0                  /* enum inv_status (invlog.h), which this program does not link */
#define ST_ERROR 1
#define ST_CRASHED 3

/* One output stream of a bootstrap, cut into lines. */
struct stream {
    int fd;                     /* -1 once at EOF */
    int level;
    char buf[WIRE_LOG_MAX];
    size_t len;
};

struct held_line {
    int level;
    char *text;
};

/* One provided step: its bootstrap and the Runtime API it is served. */
struct fn {
    uint32_t index;             /* the step's index in the pipeline */
    char name[65];
    const cJSON *step;          /* its part of the INIT frame */
    struct rapi *api;
    pid_t pid;
    int pidfd;
    int status;                 /* wait status once exited */
    bool exited;
    bool failed;                /* a restarted bootstrap failed its init: why says so */
    char why[1400];
    struct stream out, err;
};

struct adapter {
    struct wire_reader rd;
    cJSON *init;                /* the INIT frame: pipeline, memory_mb, steps */
    struct fn *fns;
    size_t n_fns;
    struct fn *current;         /* the step of the invocation in flight */
    char request_id[37];
    int64_t invoked_ns;
    /* output lines */
    struct held_line held[HELD_MAX_LINES];
    size_t n_held;
    size_t inv_lines, inv_bytes;
    bool inv_cut;
    char tail[TAIL_MAX + 1];
};

/* A broken protocol or no memory: this worker ends, the daemon reports it. */
__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice-runtime-api: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* -- output lines ------------------------------------------------------------------------ */

static void keep_tail(struct adapter *a, const char *line)
{
    size_t have = strlen(a->tail), add = strlen(line) + 1;
    if (add > TAIL_MAX) {
        line += add - TAIL_MAX;
        add = TAIL_MAX;
    }
    if (have + add > TAIL_MAX) {
        memmove(a->tail, a->tail + (have + add - TAIL_MAX), TAIL_MAX - add);
        have = TAIL_MAX - add;
    }
    snprintf(a->tail + have, TAIL_MAX + 1 - have, "%s%s", have ? "\n" : "", line);
}

static void send_log(int level, const char *text)
{
    int32_t lv = level;
    size_t len = strnlen(text, WIRE_LOG_MAX);
    wire_write(WORKER_FD, WIRE_LOG, &lv, sizeof lv, text, len, NULL);
}

/* During an invocation a line goes out at once (bounded per invocation);
 * between invocations it waits for the next one, as the daemon reads LOG
 * frames only then. */
static void emit_line(struct adapter *a, int level, const char *text)
{
    keep_tail(a, text);
    if (!a->current) {
        if (a->n_held < HELD_MAX_LINES && (a->held[a->n_held].text = strdup(text)))
            a->held[a->n_held++].level = level;
        return;
    }
    if (a->inv_cut)
        return;
    size_t len = strlen(text);
    if (a->inv_lines >= INV_MAX_LINES || a->inv_bytes + len > INV_MAX_BYTES) {
        a->inv_cut = true;
        char msg[200];
        snprintf(msg, sizeof msg, "[sluice] log output truncated: more than %d lines or %d MiB "
                 "in one invocation; the rest of its lines were dropped", INV_MAX_LINES,
                 INV_MAX_BYTES >> 20);
        send_log(LV_WARN, msg);
        return;
    }
    a->inv_lines++;
    a->inv_bytes += len;
    send_log(level, text);
}

static void flush_held(struct adapter *a)
{
    for (size_t i = 0; i < a->n_held; i++) {
        emit_line(a, a->held[i].level, a->held[i].text);
        free(a->held[i].text);
    }
    a->n_held = 0;
}

/* A last line without a newline (curl's output ends so). */
static void flush_partial(struct adapter *a, struct stream *s)
{
    if (s->len) {
        s->buf[s->len] = '\0';
        emit_line(a, s->level, s->buf);
        s->len = 0;
    }
}

/* Read what the stream has (it is non-blocking) and emit its whole lines; a
 * line longer than a LOG frame is cut there. */
static void drain(struct adapter *a, struct stream *s)
{
    while (s->fd >= 0) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN) {
                close(s->fd);
                s->fd = -1;
            }
            break;
        }
        s->len += (size_t)n;
        char *start = s->buf, *nl;
        while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->buf)))) {
            *nl = '\0';
            emit_line(a, s->level, start);
            start = nl + 1;
        }
        s->len -= (size_t)(start - s->buf);
        memmove(s->buf, start, s->len);
        if (s->len == sizeof s->buf - 1) { /* no newline in a whole frame's worth */
            s->buf[s->len] = '\0';
            emit_line(a, s->level, s->buf);
            s->len = 0;
        }
    }
    if (s->fd < 0)
        flush_partial(a, s);
}

/* -- bootstraps ------------------------------------------------------------------------ */

static const char *json_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* In the child: the environment Lambda gives a custom runtime, then exec. */
static void exec_bootstrap(const char *pipeline, const cJSON *step, const struct rapi *api,
                           int memory_mb, int out_fd, int err_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) /* the adapter died before the line above */
        _exit(127);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    const char *code = json_str(step, "code", "."), *path = json_str(step, "path", "bootstrap");
    char fname[200], memory[16];
    snprintf(fname, sizeof fname, "%s-%s", pipeline, json_str(step, "name", "step"));
    snprintf(memory, sizeof memory, "%d", memory_mb > 0 ? memory_mb : 128);
    setenv("AWS_LAMBDA_RUNTIME_API", rapi_address(api), 1);
    setenv("_HANDLER", json_str(step, "handler", ""), 1);
    setenv("LAMBDA_TASK_ROOT", code, 1);
    setenv("LAMBDA_RUNTIME_DIR", code, 1);
    setenv("AWS_LAMBDA_FUNCTION_NAME", fname, 1);
    setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST", 1);
    setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory, 1);
    if (!getenv("AWS_REGION"))
        setenv("AWS_REGION", "local", 1);
    if (chdir(code) < 0) {
        fprintf(stderr, "cannot enter %s: %s\n", code, strerror(errno));
        _exit(127);
    }
    execl(path, path, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
}

static int nonblocking_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    return 0;
}

/* Start one step's server and bootstrap (again, after fn_release). Runs
 * on the only thread (libmicrohttpd has none here), so fork is safe. */
static int fn_start(struct adapter *a, struct fn *f, struct err *e)
{
    const char *pipeline = json_str(a->init, "pipeline", "pipeline");
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(a->init, "memory_mb");
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(f->step, "index");
    f->index = cJSON_IsNumber(idx) ? (uint32_t)idx->valuedouble : 0;
    snprintf(f->name, sizeof f->name, "%s", json_str(f->step, "name", "step"));
    f->out = (struct stream){.fd = -1, .level = LV_INFO};
    f->err = (struct stream){.fd = -1, .level = LV_ERROR};
    f->pidfd = -1;
    f->exited = false;
    char arn[256];
    snprintf(arn, sizeof arn, "arn:sluice:lambda:local:000000000000:function:%s-%s", pipeline,
             f->name);
    if (rapi_new(arn, &f->api, e) < 0)
        return -1;
    int po[2], pe[2];
    if (nonblocking_pipe(po) < 0)
        return err_set(e, "pipe: %s", strerror(errno));
    if (nonblocking_pipe(pe) < 0) {
        close(po[0]);
        close(po[1]);
        return err_set(e, "pipe: %s", strerror(errno));
    }
    f->pid = fork();
    if (f->pid == 0)
        exec_bootstrap(pipeline, f->step, f->api, cJSON_IsNumber(mem) ? mem->valueint : 0, po[1],
                       pe[1]);
    close(po[1]);
    close(pe[1]);
    f->out.fd = po[0];
    f->err.fd = pe[0];
    if (f->pid < 0)
        return err_set(e, "fork: %s", strerror(errno));
    f->pidfd = (int)syscall(SYS_pidfd_open, f->pid, 0);
    if (f->pidfd < 0)
        return err_set(e, "pidfd_open: %s", strerror(errno));
    return 0;
}

/* Kill (if need be) and reap the bootstrap; close its server and pipes. */
static void fn_release(struct fn *f)
{
    if (f->pid > 0 && !f->exited) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
    rapi_free(&f->api);
    if (f->pidfd >= 0)
        close(f->pidfd);
    if (f->out.fd >= 0)
        close(f->out.fd);
    if (f->err.fd >= 0)
        close(f->err.fd);
    f->pidfd = f->out.fd = f->err.fd = -1;
}

/* Lambda's words for how a runtime ended. */
static void describe_exit(int status, char *out, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(out, len, "Runtime exited with error: signal: %s", strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "Runtime exited with error: exit status %d", WEXITSTATUS(status));
}

/* Did f's bootstrap fail its init: an init error posted, or an exit before
 * its first `next`? If so, why. */
static bool init_failed(const struct adapter *a, const struct fn *f, char *why, size_t len)
{
    char how[128];
    if (rapi_init_error(f->api)) {
        snprintf(why, len, "step %s: the bootstrap reported an init error: %s", f->name,
                 rapi_init_error(f->api));
        return true;
    }
    if (f->exited && !rapi_ready(f->api)) {
        describe_exit(f->status, how, sizeof how);
        snprintf(why, len, "step %s: the bootstrap ended before asking for an event (%s)%s%s",
                 f->name, how, *a->tail ? "; its last output: " : "", a->tail);
        return true;
    }
    return false;
}

/* -- the loop -------------------------------------------------------------------------- */

/* Wait for any input (the daemon's socket too if want_wire) and handle what
 * the bootstraps did. Returns 1 if a frame is readable on fd 3. */
static int step_loop(struct adapter *a, bool want_wire)
{
    if (want_wire && a->rd.start < a->rd.end)
        return 1; /* a frame already buffered */
    size_t n = 0, cap = 1 + 4 * a->n_fns;
    struct pollfd *pf = calloc(cap, sizeof *pf);
    if (!pf)
        die("out of memory");
    int timeout = -1;
    if (want_wire)
        pf[n++] = (struct pollfd){.fd = WORKER_FD, .events = POLLIN};
    for (size_t i = 0; i < a->n_fns; i++) {
        struct fn *f = &a->fns[i];
        if (f->failed)
            continue;
        pf[n++] = (struct pollfd){.fd = rapi_fd(f->api), .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = f->out.fd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = f->err.fd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = f->exited ? -1 : f->pidfd, .events = POLLIN};
        int t = rapi_timeout_ms(f->api);
        if (t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
    }
    if (poll(pf, n, timeout) < 0 && errno != EINTR)
        die("poll: %s", strerror(errno));
    int wire = want_wire && (pf[0].revents & (POLLIN | POLLHUP | POLLERR));
    free(pf);
    for (size_t i = 0; i < a->n_fns; i++) {
        struct fn *f = &a->fns[i];
        if (f->failed)
            continue;
        rapi_run(f->api);
        drain(a, &f->out);
        drain(a, &f->err);
        if (!f->exited && waitpid(f->pid, &f->status, WNOHANG) == f->pid)
            f->exited = true;
    }
    return wire;
}

static int send_ready(bool ok, const char *msg)
{
    int32_t flag = ok;
    return wire_write(WORKER_FD, WIRE_READY, &flag, sizeof flag, msg, strlen(msg) + 1, NULL);
}

/* Init: every bootstrap asks for an event (READY), or one fails (READY with
 * why; the daemon reports Runtime.InitError and starts another worker later). */
static int wait_ready(struct adapter *a)
{
    for (;;) {
        size_t ready = 0;
        for (size_t i = 0; i < a->n_fns; i++) {
            char why[sizeof a->fns[i].why];
            if (init_failed(a, &a->fns[i], why, sizeof why))
                return send_ready(false, why) < 0 ? -1 : 1;
            ready += rapi_ready(a->fns[i].api);
        }
        if (ready == a->n_fns)
            return send_ready(true, "") < 0 ? -1 : 0;
        if (step_loop(a, true)) { /* the daemon said something before READY: it is gone */
            struct wire_frame fr;
            int timed_out;
            struct err e;
            if (wire_read(&a->rd, 0, &fr, &timed_out, &e) < 0)
                return -1;
            wire_frame_release(&fr);
            return -1;
        }
    }
}

/* The bootstrap's peak resident memory (VmHWM), in KiB; -1 if unknown. */
static int64_t peak_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    long long kb = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "VmHWM: %lld", &kb) == 1)
            break;
    if (fp)
        fclose(fp);
    return kb;
}

/* The response as the daemon records it: JSON as posted; any other bytes
 * (a shell bootstrap's plain text) as a JSON string; nothing as null. */
static char *response_json(const struct rapi_outcome *o)
{
    size_t at;
    if (!o->body_len)
        return strdup("null");
    cJSON *v = json_parse_exact(o->body, o->body_len, &at);
    if (v) {
        cJSON_Delete(v);
        return strndup(o->body, o->body_len);
    }
    char *text = strndup(o->body, o->body_len);
    cJSON *s = text ? cJSON_CreateString(text) : NULL;
    char *out = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    free(text);
    return out;
}

/* statusCode of an object response, as the script runtimes read it; else 200. */
static int status_code_of(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(v, "statusCode");
    int code = 200;
    if (cJSON_IsNumber(sc) && sc->valuedouble >= INT32_MIN && sc->valuedouble <= INT32_MAX &&
        sc->valuedouble == (double)(int)sc->valuedouble)
        code = (int)sc->valuedouble;
    cJSON_Delete(v);
    return code;
}

static int send_outcome(struct adapter *a, const struct rapi_outcome *o)
{
    struct wire_result r = {.init_ms = -1, .duration_ms = o->duration_ms,
                            .max_rss_kb = peak_kb(a->current->pid)};
    char *body = NULL;
    if (o->error) {
        r.status = ST_ERROR;
        r.status_code = 500;
        r.error_type = o->error_type;
        r.error_type_len = strlen(o->error_type);
        r.error = o->error_message ? o->error_message : "";
        r.error_len = strlen(r.error);
        r.stack = o->stack;
        r.stack_len = o->stack ? strlen(o->stack) : 0;
    } else {
        if (!(body = response_json(o)))
            die("out of memory");
        r.status = ST_OK;
        r.status_code = status_code_of(body);
        r.body = body;
        r.body_len = strlen(body);
        if (r.status_code >= 500) {
            r.status = ST_ERROR;
            r.error_type = "HandlerError";
            r.error_type_len = strlen(r.error_type);
            r.error = "the handler answered statusCode >= 500";
            r.error_len = strlen(r.error);
        }
    }
    struct err e;
    int rc = wire_send_result(WORKER_FD, &r, &e);
    free(body);
    return rc;
}

/* A restarted bootstrap failed its init: the invocation fails as the first
 * start of a worker would (Runtime.InitError), and the daemon replaces this
 * worker after a back-off. */
static int send_init_error(const char *why)
{
    struct wire_result r = {.status = ST_CRASHED, .init_ms = -1, .max_rss_kb = -1,
                            .error_type = "Runtime.InitError", .error = why};
    r.error_type_len = strlen(r.error_type);
    r.error_len = strlen(why);
    struct err e;
    return wire_send_result(WORKER_FD, &r, &e);
}

static struct fn *fn_by_index(struct adapter *a, uint32_t index)
{
    for (size_t i = 0; i < a->n_fns; i++)
        if (a->fns[i].index == index)
            return &a->fns[i];
    return NULL;
}

/* One INVOKE: hand out the event, forward output until the outcome. Returns
 * 0, or -1 when this process must end (the bootstrap exited, the daemon left). */
static int invoke(struct adapter *a, const struct wire_frame *fr)
{
    struct wire_invoke in;
    struct err e;
    if (wire_decode_invoke(fr, &in, &e) < 0)
        die("%s", e.msg);
    struct fn *f = fn_by_index(a, in.step);
    if (!f)
        die("an invocation for step %u, which is not a provided step", in.step);
    a->current = f;
    a->inv_lines = a->inv_bytes = 0;
    a->inv_cut = false;
    flush_held(a);
    int64_t deadline_ms = clock_wall_ms() + (in.deadline_ns - clock_mono_ns()) / 1000000;
    if (!f->failed && rapi_offer(f->api, in.request_id, in.event, in.event_len, deadline_ms,
                                 &e) < 0)
        die("%s", e.msg);
    for (;;) {
        struct rapi_outcome o;
        if (!f->failed && rapi_take(f->api, &o)) {
            drain(a, &f->out); /* what it wrote until `next` belongs to this invocation */
            drain(a, &f->err);
            flush_partial(a, &f->out);
            flush_partial(a, &f->err);
            int rc = send_outcome(a, &o);
            rapi_outcome_release(&o);
            a->current = NULL;
            return rc;
        }
        if (f->failed || init_failed(a, f, f->why, sizeof f->why)) {
            f->failed = true;
            a->current = NULL;
            return send_init_error(f->why);
        }
        if (f->exited) {
            char how[128], msg[300];
            describe_exit(f->status, how, sizeof how);
            snprintf(msg, sizeof msg, "RequestId: %s Error: %s (step %s's bootstrap)",
                     in.request_id, how, f->name);
            emit_line(a, LV_ERROR, msg);
            return -1; /* the daemon sees the worker end: Runtime.ExitError */
        }
        if (step_loop(a, true))
            return -1; /* the daemon closed the socket (or broke the protocol) mid-invocation */
    }
}

/* A bootstrap that exited between invocations is started again, as Lambda
 * starts a new runtime: its init runs while the next invocation waits for
 * it. One that then fails its init stays failed (see invoke). */
static void restart_exited(struct adapter *a)
{
    for (size_t i = 0; i < a->n_fns; i++) {
        struct fn *f = &a->fns[i];
        if (!f->exited || f->failed)
            continue;
        if (init_failed(a, f, f->why, sizeof f->why)) {
            f->failed = true;
            continue;
        }
        char how[128], msg[300];
        describe_exit(f->status, how, sizeof how);
        snprintf(msg, sizeof msg, "[sluice] step %s: the bootstrap exited between invocations "
                 "(%s); starting a new one", f->name, how);
        emit_line(a, LV_WARN, msg);
        fn_release(f);
        struct err e;
        if (fn_start(a, f, &e) < 0) {
            snprintf(f->why, sizeof f->why, "step %s: cannot start the bootstrap again: %s",
                     f->name, e.msg);
            f->failed = true;
        }
    }
}

static int serve(struct adapter *a)
{
    for (;;) {
        restart_exited(a);
        if (!step_loop(a, true))
            continue;
        struct wire_frame fr;
        int timed_out;
        struct err e;
        if (wire_read(&a->rd, 0, &fr, &timed_out, &e) < 0)
            return 0; /* EOF: the daemon stops this worker */
        if (fr.type != WIRE_INVOKE)
            die("protocol error: frame type %s", fr.type == WIRE_INIT ? "INIT" : "unexpected");
        int rc = invoke(a, &fr);
        wire_frame_release(&fr);
        wire_reader_idle(&a->rd);
        if (rc < 0)
            return 1;
    }
}

static int start_all(struct adapter *a, const struct wire_frame *fr, struct err *e)
{
    size_t at;
    a->init = json_parse_exact((const char *)fr->data, fr->len, &at);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(a->init, "steps");
    int rc = 0;
    if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) == 0) {
        rc = err_set(e, "protocol error: an init frame without steps");
    } else if (!(a->fns = calloc((size_t)cJSON_GetArraySize(steps), sizeof *a->fns))) {
        rc = err_set(e, "out of memory");
    } else {
        const cJSON *s;
        cJSON_ArrayForEach(s, steps) {
            a->fns[a->n_fns].step = s;
            if ((rc = fn_start(a, &a->fns[a->n_fns++], e)) < 0)
                break;
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* die with the daemon, even a kill -9 of it; the bootstraps die with us */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC); /* the daemon's socket is not the bootstrap's */
    static struct adapter a;
    wire_reader_init(&a.rd, WORKER_FD);
    struct wire_frame fr;
    int timed_out;
    struct err e;
    if (wire_read(&a.rd, 0, &fr, &timed_out, &e) < 0 || fr.type != WIRE_INIT)
        die("expected an init frame on fd 3 (this program is started by `sluice run` for "
            "\"runtime\": \"provided\" steps, not by hand)");
    int rc = start_all(&a, &fr, &e);
    wire_frame_release(&fr);
    if (rc < 0)
        rc = send_ready(false, e.msg) < 0 ? -1 : 1;
    else
        rc = wait_ready(&a);
    if (rc == 0)
        rc = serve(&a);
    for (size_t i = 0; i < a.n_fns; i++)
        fn_release(&a.fns[i]);
    free(a.fns);
    cJSON_Delete(a.init);
    for (size_t i = 0; i < a.n_held; i++)
        free(a.held[i].text);
    wire_reader_free(&a.rd);
    return rc < 0 ? 2 : rc;
}
