/* worker_main.c - `sluice worker`, the process behind a process-isolated
 * pipeline's executor slot (see worker.h). It reads what to load from the
 * INIT frame, opens exactly those plugin files, answers READY, then serves
 * INVOKE frames until its socket closes, running the same in-process call as
 * the thread executor. Everything it says goes back over fd 3; what handlers
 * print on stdout and stderr becomes their invocation's log lines
 * (capture.h), never the daemon's output.
 *
 * It is also the whole of sluice-worker (worker_exe.c), which links only the
 * files of sluice_worker_objs (core/CMakeLists.txt): what this file reaches
 * must stay among them, or sluice-worker stops linking. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "capture.h"
#include "clock.h"
#include "confmap.h"
#include "executor.h"
#include "host.h"
#include "loader.h"
#include "pipeline.h"
#include "wire.h"
#include "worker.h"

#define WORKER_FD 3

static void send_line(void *arg, int level, const char *msg, size_t len)
{
    int fd = *(int *)arg;
    int32_t lv = level;
    if (len > WIRE_LOG_MAX)
        len = WIRE_LOG_MAX;
    wire_write(fd, WIRE_LOG, &lv, sizeof lv, msg, len, NULL);
}

static void send_log(void *arg, const sl_context *ctx, int level, const char *msg)
{
    (void)ctx;
    send_line(arg, level, msg, strlen(msg));
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_step(struct loader *l, struct step *s, size_t i, const char *file,
                     const cJSON *js, struct err *e)
{
    const char *name = json_str(js, "name"), *handler = json_str(js, "handler");
    const char *module = json_str(js, "module"), *function = json_str(js, "function");
    const char *path = json_str(js, "path"), *config = json_str(js, "config");
    if (!name || !handler || !module || !function || !path || !config)
        return err_set(e, "a malformed init frame");
    s->name = strdup(name);
    s->handler = strdup(handler);
    s->module = strdup(module);
    s->function = strdup(function);
    s->config_json = strdup(config);
    if (!s->name || !s->handler || !s->module || !s->function || !s->config_json)
        return err_set(e, "out of memory");
    if (loader_open_file(l, module, path, &s->plugin, e) < 0)
        return -1;
    s->fn = (void *)loader_find(s->plugin, function, e);
    if (!s->fn)
        return -1;
    struct diag d = {0};
    int rc = loader_instance(l, s, i, file, &d);
    if (rc < 0)
        err_set(e, "%s", d.n ? d.items[0].text : "cannot create the step's instance");
    diag_free(&d);
    return rc;
}

/* Signals to any process but this one (the daemon, its other workers, the
 * user's other processes) are refused: kill, tgkill, rt_sigqueueinfo and
 * rt_tgsigqueueinfo only with this process's pid (so abort() and raise()
 * still work), tkill only for its main thread, pidfd_send_signal never. */
static int deny_signals(scmp_filter_ctx ctx)
{
    /* arg 0 (the pid) is not this process's */
    const struct scmp_arg_cmp other = {.arg = 0, .op = SCMP_CMP_NE,
                                       .datum_a = (scmp_datum_t)getpid(), .datum_b = 0};
    static const int by_pid[] = {SCMP_SYS(kill), SCMP_SYS(tgkill), SCMP_SYS(tkill),
                                 SCMP_SYS(rt_sigqueueinfo), SCMP_SYS(rt_tgsigqueueinfo)};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof by_pid / sizeof by_pid[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), by_pid[i], 1, other);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_send_signal), 0);
    return rc;
}

/* What a handler has no business doing; each is refused with EPERM. */
static int sandbox(struct err *e)
{
    static const int denied[] = {
        SCMP_SYS(ptrace), SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(reboot),
        SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
        SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(swapon), SCMP_SYS(swapoff),
        SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(setns), SCMP_SYS(unshare),
        SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key),
        SCMP_SYS(request_key), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
        SCMP_SYS(open_by_handle_at), SCMP_SYS(acct), SCMP_SYS(settimeofday),
        SCMP_SYS(clock_settime), SCMP_SYS(sethostname), SCMP_SYS(setdomainname),
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = ctx ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < sizeof denied / sizeof denied[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    if (rc == 0)
        rc = deny_signals(ctx);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc == 0 ? 0 : err_set(e, "cannot install the seccomp sandbox: %s", strerror(-rc));
}

/* Steps keep their index in the pipeline; the ones other kinds of worker
 * serve stay empty here. */
static size_t steps_needed(const cJSON *steps)
{
    size_t n = 0;
    const cJSON *js;
    cJSON_ArrayForEach(js, steps) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(js, "index");
        if (cJSON_IsNumber(idx) && idx->valuedouble >= 0 && idx->valuedouble < 1024 &&
            (size_t)idx->valuedouble + 1 > n)
            n = (size_t)idx->valuedouble + 1;
    }
    return n;
}

/* Build the pipeline the INIT frame describes. */
static int load(struct loader *l, struct pipeline *p, const struct wire_frame *f, struct err *e)
{
    cJSON *root = cJSON_ParseWithLength((const char *)f->data, f->len);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    const char *name = json_str(root, "pipeline");
    size_t n = steps_needed(steps);
    int rc = 0;
    if (!cJSON_IsArray(steps) || !name || n == 0) {
        rc = err_set(e, "a malformed init frame");
    } else if (!(p->name = strdup(name)) || !(p->steps = calloc(n, sizeof *p->steps))) {
        rc = err_set(e, "out of memory");
    } else {
        p->n_steps = n;
        p->isolation = ISOLATION_PROCESS;
        const char *dir = json_str(root, "dir");
        if (dir && (p->dir = strdup(dir)))
            p->trigger = TRIGGER_DIRECTORY;
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(root, "memory_mb");
        if (cJSON_IsNumber(mem) && mem->valuedouble > 0 && mem->valuedouble < 1 << 30)
            p->limits.memory_mb = (int)mem->valuedouble;
        const cJSON *js;
        cJSON_ArrayForEach(js, steps) {
            const cJSON *idx = cJSON_GetObjectItemCaseSensitive(js, "index");
            size_t i = cJSON_IsNumber(idx) ? (size_t)idx->valuedouble : n;
            if (i >= n || load_step(l, &p->steps[i], i, name, js, e) < 0) {
                if (i >= n)
                    err_set(e, "a malformed init frame");
                rc = -1;
                break;
            }
        }
    }
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(root, "sandbox");
    if (rc == 0 && cJSON_IsTrue(sb))
        rc = sandbox(e);
    cJSON_Delete(root);
    return rc;
}

static int send_ready(int fd, int ok, const char *msg)
{
    int32_t flag = ok;
    return wire_write(fd, WIRE_READY, &flag, sizeof flag, msg, strlen(msg) + 1, NULL);
}

/* This process's own peak RSS (VmHWM): getrusage's ru_maxrss would carry
 * the daemon's peak over from before exec. */
static long peak_rss_kb(void)
{
    /* reading /proc costs more than a no-op handler: at most every 50 ms */
    static int64_t read_at;
    static long cached = -1;
    int64_t now = clock_mono_ns();
    if (cached >= 0 && now - read_at < 50000000)
        return cached;
    read_at = now;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    cached = kb;
    return kb;
}

static int serve_one(int fd, struct pipeline *p, const struct wire_frame *f,
                     struct capture *out)
{
    struct wire_invoke in;
    struct err e;
    if (wire_decode_invoke(f, &in, &e) < 0 || in.step >= p->n_steps || !p->steps[in.step].fn)
        return -1;
    struct attempt a = {.pipeline = p, .step = &p->steps[in.step], .request_id = in.request_id,
                        .event_id = in.event_id, .source = in.source, .event = in.event,
                        .event_len = in.event_len, .number = (int)in.attempt};
    int64_t deadline = in.deadline_ns < 0 ? clock_mono_ns() - in.deadline_ns : in.deadline_ns;
    executor_call(&a, deadline, send_log, &fd);
    capture_drain(out, send_line, &fd); /* before the result: the daemon logs until then */
    long peak_kb = peak_rss_kb();
    struct wire_result r = {
        .status = (uint32_t)a.status, .status_code = a.status_code, .init_ms = a.init_ms,
        .duration_ms = a.duration_ms, .max_rss_kb = peak_kb,
        .body = a.body, .body_len = a.body ? a.body_len : 0,
        .error_type = a.error_type, .error_type_len = a.error_type ? strlen(a.error_type) : 0,
        .error = a.error, .error_len = a.error ? strlen(a.error) : 0,
    };
    char too_large[96];
    if (r.body_len > WIRE_MAX_EVENT) { /* it would not fit in a frame */
        snprintf(too_large, sizeof too_large, "the response is %.1f MB; the largest a worker "
                 "returns is 64 MiB", (double)r.body_len / 1e6);
        r = (struct wire_result){.status = INV_ERROR, .status_code = 500, .init_ms = a.init_ms,
                                 .duration_ms = a.duration_ms, .max_rss_kb = peak_kb,
                                 .error_type = "Function.ResponseSizeTooLarge",
                                 .error_type_len = strlen("Function.ResponseSizeTooLarge"),
                                 .error = too_large,
                                 .error_len = strlen(too_large)};
    }
    int rc = wire_send_result(fd, &r, &e);
    attempt_release(&a);
    return rc;
}

int worker_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int fd = WORKER_FD;
    /* die with the daemon, even a kill -9 of it, instead of lingering in a
     * handler; if it died before this line, the socket is closed already */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct wire_reader rd;
    struct wire_frame f;
    int timed_out;
    struct err e;
    wire_reader_init(&rd, fd);
    if (wire_read(&rd, 0, &f, &timed_out, &e) < 0 || f.type != WIRE_INIT) {
        fprintf(stderr, "sluice worker: expected an init frame on fd %d (this command is "
                "started by `sluice run`, not by hand)\n", fd);
        wire_reader_free(&rd);
        return 2;
    }
    struct strv none = {0};
    struct loader *l = NULL;
    struct pipeline p = {0};
    int rc = loader_new(&none, &l, &e);
    if (rc == 0)
        rc = load(l, &p, &f, &e);
    wire_frame_release(&f);
    /* Lambda's init phase, before READY: a crash here is a failed start
     * (backed off), a crash later is the handler's */
    for (size_t i = 0; rc == 0 && i < p.n_steps; i++) {
        double ms;
        if (p.steps[i].instance && instance_ensure(p.steps[i].instance, &ms, &e) < 0)
            rc = -1;
    }
    struct capture out = {{-1, -1}, -1};
    if (rc == 0)
        rc = capture_start(&out, &e);
    send_ready(fd, rc == 0, rc == 0 ? "" : e.msg);
    while (rc == 0 && wire_read(&rd, 0, &f, &timed_out, &e) == 0) {
        bool invoke = f.type == WIRE_INVOKE || f.type == WIRE_INVOKE_IDS;
        if (!invoke || serve_one(fd, &p, &f, &out) < 0)
            rc = -1;
        wire_frame_release(&f);
        wire_reader_idle(&rd); /* a big event's buffer does not count against memory_mb */
    }
    for (size_t i = 0; i < p.n_steps; i++) {
        free(p.steps[i].name);
        free(p.steps[i].handler);
        free(p.steps[i].module);
        free(p.steps[i].function);
        free(p.steps[i].config_json);
    }
    free(p.steps);
    free(p.name);
    free(p.dir);
    loader_free(&l);
    capture_stop(&out);
    wire_reader_free(&rd);
    return 0;
}
