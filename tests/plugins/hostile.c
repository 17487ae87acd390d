/* hostile.c - fixture: handlers that attack the machine around them rather
 * than crash (issue 21): they leave processes behind, fork bombs, signal the
 * daemon, write its database. Every process they start appends its pid (as
 * the machine's /proc sees it, so the test can find it) to the file named
 * by the event's "pidfile", one per line. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/handler.h>

/* Its pid in the machine's /proc (getpid() is 1 or 2 in a PID namespace). */
static long host_pid(void)
{
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

static void record_pid(const char *pidfile)
{
    if (!pidfile)
        return;
    int fd = open(pidfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return;
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", host_pid());
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

static const char *event_string(const sl_context *ctx, const char *pointer)
{
    return ctx->host->json_string(ctx->host->json_get(ctx->host->event(ctx), pointer));
}

static void sleep_forever(void)
{
    for (;;)
        pause();
}

/* Forks a child that sleeps for good, then the worker process exits 0: the
 * child still holds the worker's socket. */
static int hostile_fork_exit(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)res;
    const char *pidfile = event_string(ctx, "/pidfile");
    int ready[2];
    if (pipe(ready) < 0)
        _exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        record_pid(pidfile);
        ssize_t w = write(ready[1], "x", 1);
        (void)w;
        sleep_forever();
    }
    char c;
    ssize_t r = read(ready[0], &c, 1); /* it has recorded its pid */
    (void)r;
    _exit(0);
}

/* Double fork with setsid: a daemon, out of the worker's process group; the
 * handler answers 200 once the daemon has recorded its pid. */
static int hostile_daemonize(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const char *pidfile = event_string(ctx, "/pidfile");
    int ready[2];
    if (pipe(ready) < 0)
        return ctx->host->respond(res, 500, "{\"error\":\"pipe\"}", 16);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() == 0) {
            record_pid(pidfile);
            ssize_t w = write(ready[1], "x", 1);
            (void)w;
            sleep_forever();
        }
        _exit(0);
    }
    close(ready[1]);
    char c;
    ssize_t r = read(ready[0], &c, 1);
    close(ready[0]);
    (void)r;
    return ctx->host->respond(res, 200, "{\"daemonized\":true}", 19);
}

/* A fork bomb with a bound (the event's "n", default 64): every process
 * forks until n have been started, records its pid and sleeps. The handler
 * then sleeps past its deadline. */
static int hostile_fork_bomb(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    (void)res;
    const char *pidfile = event_string(ctx, "/pidfile");
    int n = (int)ctx->host->json_number(ctx->host->json_get(ctx->host->event(ctx), "/n"), 64);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            record_pid(pidfile);
            if (i % 2 == 0 && fork() == 0)  /* grandchildren too */
                record_pid(pidfile);
            sleep_forever();
        }
        if (pid < 0)
            break;
    }
    sleep_forever();
    return 0;
}

/* Sends SIGTERM to its parent process (the daemon, unless something stands
 * between them) and answers {"errno": E, "ppid": P}. */
static int hostile_kill_parent(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    pid_t ppid = getppid();
    errno = 0;
    int rc = kill(ppid, SIGTERM);
    char body[64];
    int n = snprintf(body, sizeof body, "{\"errno\":%d,\"ppid\":%ld}", rc < 0 ? errno : 0,
                     (long)ppid);
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Opens the event's "path" for writing (the daemon's database, say) and
 * answers {"errno": E}: 0 when it could. */
static int hostile_write_file(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const char *path = event_string(ctx, "/path");
    int fd = path ? open(path, O_WRONLY | O_CLOEXEC) : -1;
    int err = fd < 0 ? (path ? errno : EINVAL) : 0;
    if (fd >= 0)
        close(fd);
    char body[32];
    int n = snprintf(body, sizeof body, "{\"errno\":%d}", err);
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Who and where it runs: {"uid", "gid", "pid", "host_pid"}. */
static int hostile_whoami(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    char body[128];
    int n = snprintf(body, sizeof body, "{\"uid\":%u,\"gid\":%u,\"pid\":%ld,\"host_pid\":%ld}",
                     (unsigned)getuid(), (unsigned)getgid(), (long)getpid(), host_pid());
    return ctx->host->respond(res, 200, body, (size_t)n);
}

/* Answers a JSON string of the event's "mb" MiB (plus a little): over the
 * 64 MiB a worker may return when mb >= 64. */
static int hostile_big_response(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    (void)event;
    const char *mb = event_string(ctx, "/mb");
    size_t len = (size_t)(mb ? strtoul(mb, NULL, 10) : 65) << 20;
    char *body = malloc(len + 2);
    if (!body) {
        ctx->host->fail(res, "OutOfMemory", "cannot build the response");
        return -1;
    }
    memset(body, 'x', len + 2);
    body[0] = body[len + 1] = '"';
    int rc = ctx->host->respond(res, 200, body, len + 2);
    free(body);
    return rc;
}

static const sl_handler_def handlers[] = {
    {"fork_exit", hostile_fork_exit},     {"daemonize", hostile_daemonize},
    {"fork_bomb", hostile_fork_bomb},     {"kill_parent", hostile_kill_parent},
    {"write_file", hostile_write_file},   {"whoami", hostile_whoami},
    {"big_response", hostile_big_response},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "hostile",
    .handlers = handlers,
};
