/* cmd_status.c - `sluice status`: asks the running daemon (GET /status on
 * its admin listener, admin.listen in the same config) and prints what it
 * runs: pipelines, triggers, in-flight events, backlog, workers, last error.
 * A plain HTTP/1.0 request over a socket: the daemon is on this machine. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "clock.h"
#include "config.h"
#include "err.h"

static const char status_usage[] =
    "usage: sluice status [-c FILE] [--json]\n"
    "\n"
    "Asks the running daemon (its admin listener, admin.listen) what it runs: each\n"
    "pipeline with its trigger, events in flight, journal backlog, invocations, errors\n"
    "and last error; worker processes and the database size.\n"
    "  --json   the daemon's answer as it is (GET /status)\n";

#define STATUS_TIMEOUT_MS 5000

static int wait_fd(int fd, short events, int64_t until_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t left = until_ms - clock_wall_ms();
    return left > 0 && poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

static int connect_to(const char *listen, int64_t until_ms, struct err *e)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return err_set(e, "admin.listen \"%s\" is not HOST:PORT", listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                  &sa.sin_addr) != 1)
        return err_set(e, "admin.listen \"%s\" is not an IPv4 address and port", listen);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return err_set(e, "socket: %s", strerror(errno));
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (rc < 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, until_ms) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
        rc = 0;
    if (rc < 0) {
        close(fd);
        return err_set(e, "no sluice daemon answers on %s (admin.listen): %s; is `sluice run` "
                       "running with this config?", listen, strerror(soerr ? soerr : errno));
    }
    return fd;
}

/* GET path from the admin listener; the body (malloc'd) or NULL with e set. */
static char *http_get(const char *listen, const char *path, struct err *e)
{
    int64_t until = clock_wall_ms() + STATUS_TIMEOUT_MS;
    int fd = connect_to(listen, until, e);
    if (fd < 0)
        return NULL;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, listen);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
    while (ok) {
        if (len + 4096 + 1 > cap) {
            char *more = realloc(buf, cap = cap ? cap * 2 : 16384);
            if (!(ok = more != NULL))
                break;
            buf = more;
        }
        if (!(ok = wait_fd(fd, POLLIN, until) == 0))
            break;
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got == 0)
            break;
        ok = got > 0 || errno == EAGAIN || errno == EINTR;
        len += got > 0 ? (size_t)got : 0;
    }
    close(fd);
    char *body = ok && buf ? (buf[len] = '\0', strstr(buf, "\r\n\r\n")) : NULL;
    if (!body || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0) {
        err_set(e, "the daemon on %s did not answer %s (timed out or not sluice?)", listen, path);
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

static double num(const cJSON *o, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static void print_status(const cJSON *root)
{
    const cJSON *db = cJSON_GetObjectItemCaseSensitive(root, "database");
    printf("sluice %s, pid %.0f, up %.0f s, config %s\n", str(root, "version"), num(root, "pid"),
           num(root, "uptime_seconds"), str(root, "config"));
    printf("database %s (%.1f MiB), %.0f worker processes, writer queue %.0f, rejected %.0f\n\n",
           str(db, "path"), num(db, "bytes") / 1048576.0, num(root, "workers"),
           num(root, "writer_queue"), num(root, "rejected"));
    printf("%-24s %-32s %9s %8s %12s %8s\n", "pipeline", "trigger", "in-flight", "backlog",
           "invocations", "errors");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "pipelines")) {
        printf("%-24s %-32s %9.0f %8.0f %12.0f %8.0f\n", str(p, "name"), str(p, "trigger"),
               num(p, "in_flight"), num(p, "backlog"), num(p, "invocations"), num(p, "errors"));
        if (str(p, "last_error")[0])
            printf("    last error %s: %.200s\n", str(p, "last_error_at"), str(p, "last_error"));
    }
}

int cmd_status(int argc, char **argv)
{
    const char *config = NULL;
    int help, json = 0;
    argc = cli_common(argc, argv, status_usage, &config, &help);
    if (argc < 0)
        return help ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0) {
            fprintf(stderr, "sluice status: unknown option \"%s\"\n\n%s", argv[i], status_usage);
            return 2;
        }
        json = 1;
    }
    struct diag d = {0};
    struct config *cfg = NULL;
    if (config_load(config, &cfg, &d) < 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        return 1;
    }
    diag_free(&d);
    struct err e;
    char *body = cfg->admin.listen ? http_get(cfg->admin.listen, "/status", &e) : NULL;
    if (!cfg->admin.listen)
        err_set(&e, "%s: admin.listen is off (\"\"), so the daemon cannot be asked; set it "
                "to 127.0.0.1:PORT", cfg->file);
    config_free(&cfg);
    if (!body) {
        fprintf(stderr, "sluice status: %s\n", e.msg);
        return 1;
    }
    cJSON *root = json ? NULL : cJSON_Parse(body);
    if (json)
        printf("%s\n", body);
    else if (root)
        print_status(root);
    else
        fprintf(stderr, "sluice status: the daemon's answer is not JSON\n");
    int rc = json || root ? 0 : 1;
    cJSON_Delete(root);
    free(body);
    return rc;
}
