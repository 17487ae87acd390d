/* crash.c - fixture: handlers that take their process down in each way a
 * worker can die, or break the worker protocol on purpose. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/handler.h>

static int crash_segv(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    raise(SIGSEGV);
    return 0;
}

static int crash_abort(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    abort();
}

static int crash_exit(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    _exit(7);
}

static int crash_hang(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    while (ctx)
        pause();
    return 0;
}

/* Writes a bogus frame header (a 3 GB frame of type 99) on the worker socket. */
static int crash_garbage_frame(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)ctx;
    (void)res;
    unsigned int head[2] = {3000000000u, 99};
    ssize_t n = write(3, head, sizeof head);
    (void)n;
    pause();
    return 0;
}

/* Allocates and touches ~N MB (config {"mb": N}); fails under memory_mb. */
static int crash_hog(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    size_t mb = (size_t)ctx->host->json_number(ctx->host->json_get(ctx->host->config(ctx), "/mb"),
                                               64);
    char *p = malloc(mb << 20);
    if (!p) {
        ctx->host->fail(res, "MemoryError", "malloc failed under the memory limit");
        return 1;
    }
    volatile char *touch = p; /* every page, for real: no optimising it away */
    for (size_t i = 0; i < mb << 20; i += 4096)
        touch[i] = 1;
    free(p);
    return ctx->host->respond(res, 200, "{\"ok\":true}", 11);
}

/* Answers with its process id, so tests can tell workers apart. */
static int crash_pid(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    char body[64];
    int n = 0;
    long pid = (long)getpid();
    body[n++] = '{';
    memcpy(body + n, "\"pid\":", 6);
    n += 6;
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid);
    while (k)
        body[n++] = digits[--k];
    body[n++] = '}';
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Tries what the seccomp sandbox forbids (ptrace on itself) and answers
 * {"errno": E}: 0 when allowed, EPERM (1) under "sandbox": true. */
static int crash_forbidden(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    errno = 0;
    long rc = syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
    char body[32];
    int n = snprintf(body, sizeof body, "{\"errno\":%d}", rc < 0 ? errno : 0);
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Signals the daemon (its parent) with SIGTERM and answers {"errno": E}:
 * under "sandbox": true the sandbox refuses (EPERM) and the daemon lives. */
static int crash_kill_parent(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    errno = 0;
    int rc = kill(getppid(), SIGTERM);
    char body[32];
    int n = snprintf(body, sizeof body, "{\"errno\":%d}", rc < 0 ? errno : 0);
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Prints: event {"lines": N} lines on stdout (N, default 3), one on
 * stderr, and a last stdout line without a newline. */
static int crash_print(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const sl_host *h = ctx->host;
    long n = (long)h->json_number(h->json_get(h->event(ctx), "/lines"), 3);
    for (long i = 0; i < n; i++)
        printf("out line %ld\n", i);
    fprintf(stderr, "err line\n");
    printf("no newline");
    return h->respond(res, 200, "{}", 2);
}

static const sl_handler_def handlers[] = {
    {"forbidden", crash_forbidden},
    {"kill_parent", crash_kill_parent},
    {"print", crash_print},
    {"segv", crash_segv},   {"abort", crash_abort},
    {"exit", crash_exit},   {"hang", crash_hang},
    {"garbage_frame", crash_garbage_frame},
    {"hog", crash_hog},     {"pid", crash_pid},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "crash",
    .handlers = handlers,
};
