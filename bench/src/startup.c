/* startup - time from `sluice run` to ready, idle RSS, and cold/warm invoke.
 *
 * Starts SLUICE run -c CONFIG with stderr on a pipe (copied to --log),
 * takes "ready" as the moment the daemon logs "running N pipeline(s)", waits
 * --idle-ms, reads VmRSS, then (with --invoke) sends two invokes over a
 * DEALER to the ROUTER endpoint (the first is the cold start), sends
 * SIGTERM and waits for the exit.
 *
 *   startup --sluice BIN --config FILE --log FILE [--router EP --invoke PIPELINE]
 *           [--idle-ms 1000] [--invokes 4]
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <zmq.h>

#include "common.h"

static int logfd = -1;

/* Read what the child wrote (bytes read, 0 on timeout or EOF); *seen
 * becomes true once `needle` has been seen. */
static ssize_t pump(int fd, const char *needle, bool *seen, int timeout_ms)
{
    static char acc[65536];
    static size_t used;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
        return 0;
    if (logfd >= 0 && write(logfd, buf, (size_t)n) < 0)
        logfd = -1;
    if (used + (size_t)n < sizeof acc - 1) {
        memcpy(acc + used, buf, (size_t)n);
        used += (size_t)n;
        acc[used] = '\0';
        if (strstr(acc, needle))
            *seen = true;
    }
    return n;
}

static double invoke_once(void *s, const char *pipeline, char *status)
{
    char payload[512];
    int plen = bench_payload(payload, sizeof payload, 1);
    int64_t t0 = now_ns();
    zmq_send(s, "", 0, ZMQ_SNDMORE);
    zmq_send(s, "invoke", 6, ZMQ_SNDMORE);
    zmq_send(s, pipeline, strlen(pipeline), ZMQ_SNDMORE);
    zmq_send(s, payload, (size_t)plen, 0);
    int part = 0, more = 1;
    status[0] = '\0';
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            strcpy(status, "timeout");
            return -1;
        }
        if (part == 1) {
            size_t len = zmq_msg_size(&m) < 15 ? zmq_msg_size(&m) : 15;
            memcpy(status, zmq_msg_data(&m), len);
            status[len] = '\0';
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        part++;
    }
    return (double)(now_ns() - t0) / 1e6;
}

int main(int argc, char **argv)
{
    const char *sluice = NULL, *config = NULL, *log = NULL, *router = NULL, *pipeline = NULL;
    int idle_ms = 1000, invokes = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sluice")) sluice = argv[i + 1];
        else if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) log = argv[i + 1];
        else if (!strcmp(argv[i], "--router")) router = argv[i + 1];
        else if (!strcmp(argv[i], "--invoke")) pipeline = argv[i + 1];
        else if (!strcmp(argv[i], "--idle-ms")) idle_ms = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--invokes")) invokes = atoi(argv[i + 1]);
    }
    if (!sluice || !config) {
        fprintf(stderr, "usage: startup --sluice BIN --config FILE [--log F --router EP --invoke P]\n");
        return 2;
    }
    if (log)
        logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return 1;
    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        execl(sluice, sluice, "run", "-c", config, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    bool seen = false;
    int64_t deadline = t0 + 10000000000LL;
    while (!seen && now_ns() < deadline) {
        pump(pfd[0], "sluice info: running ", &seen, 50);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "startup: sluice exited before it was ready (see %s)\n",
                    log ? log : "its stderr");
            return 1;
        }
    }
    int64_t t_ready = now_ns();
    if (!seen) {
        kill(pid, SIGKILL);
        fprintf(stderr, "startup: sluice not ready within 10 s\n");
        return 1;
    }
    printf("pid=%d\nready_ms=%.2f\n", (int)pid, (double)(t_ready - t0) / 1e6);
    int64_t idle_until = now_ns() + (int64_t)idle_ms * 1000000;
    while (now_ns() < idle_until)
        pump(pfd[0], "\x01", &seen, 20);
    printf("rss_idle_kb=%ld\nrss_anon_idle_kb=%ld\nrss_file_idle_kb=%ld\n",
           proc_status_kb(pid, "VmRSS"), proc_status_kb(pid, "RssAnon"),
           proc_status_kb(pid, "RssFile"));
    int rc = 0;
    if (router && pipeline) {
        void *ctx = zmq_ctx_new();
        void *s = zmq_socket(ctx, ZMQ_DEALER);
        int timeout = 10000, linger = 0;
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(s, router);
        /* one invoke per executor thread is a cold start (each has its own
         * worker); the last ones are warm */
        for (int i = 0; i < invokes; i++) {
            char st[16];
            double ms = invoke_once(s, pipeline, st);
            printf("invoke%d_ms=%.3f\n", i + 1, ms);
            if (strcmp(st, "ok"))
                rc = 1;
        }
        printf("rss_after_invoke_kb=%ld\n", proc_status_kb(pid, "VmRSS"));
        zmq_close(s);
        zmq_ctx_term(ctx);
    }
    int64_t t_stop = now_ns();
    kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0)
        pump(pfd[0], "\x01", &seen, 20);
    while (pump(pfd[0], "\x01", &seen, 0) > 0)
        ;
    printf("stop_ms=%.2f\nexit_status=%d\n", (double)(now_ns() - t_stop) / 1e6,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return rc;
}
