/* A custom runtime's bootstrap in C that speaks only the Lambda Runtime API
 * (plain HTTP/1.1 over a socket, nothing from sluice), as any compiled
 * runtime does. test_runtime_provided.py compiles and runs it. A string
 * value in the event (its "op") picks what it does: echo, fail (an /error post), sleep (past the
 * deadline), crash (abort), big (a response over 6 MB). With _HANDLER
 * "initfail", or a file "fail-init" in its folder, it posts /init/error
 * instead of asking for events. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct reply {
    int status;
    char request_id[128];
    char deadline[32];
    char arn[256];
    char *body;
    size_t len;
};

static int dial(void)
{
    char host[256];
    snprintf(host, sizeof host, "%s", getenv("AWS_LAMBDA_RUNTIME_API"));
    char *colon = strrchr(host, ':');
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        exit(10);
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        exit(11);
    freeaddrinfo(ai);
    return fd;
}

static void header(const char *line, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
        line += n + 1;
        while (*line == ' ')
            line++;
        snprintf(out, len, "%.*s", (int)strcspn(line, "\r\n"), line);
    }
}

/* One request on its own connection; the whole response read. */
static void call(const char *method, const char *path, const char *extra, const char *body,
                 size_t body_len, struct reply *r)
{
    int fd = dial();
    char head[1024];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n", method, path,
                     getenv("AWS_LAMBDA_RUNTIME_API"), body_len, extra);
    if (write(fd, head, (size_t)n) != n)
        exit(12);
    for (size_t off = 0; off < body_len;) {
        ssize_t w = write(fd, body + off, body_len - off);
        if (w <= 0)
            break; /* the server may refuse a large body early */
        off += (size_t)w;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    memset(r, 0, sizeof *r);
    sscanf(buf, "HTTP/1.%*d %d", &r->status);
    char *end = strstr(buf, "\r\n\r\n");
    for (char *line = buf; end && line < end; line = strstr(line, "\r\n") + 2) {
        header(line, "Lambda-Runtime-Aws-Request-Id", r->request_id, sizeof r->request_id);
        header(line, "Lambda-Runtime-Deadline-Ms", r->deadline, sizeof r->deadline);
        header(line, "Lambda-Runtime-Invoked-Function-Arn", r->arn, sizeof r->arn);
    }
    r->len = end ? len - (size_t)(end + 4 - buf) : 0;
    r->body = strdup(end ? end + 4 : "");
    free(buf);
}

static void post(const char *path, const char *extra, const char *body, size_t len)
{
    struct reply r;
    call("POST", path, extra, body, len, &r);
    printf("POST %s: %d %s\n", path, r.status, r.body);
    fflush(stdout);
    free(r.body);
}

int main(void)
{
    const char *handler = getenv("_HANDLER");
    if (strcmp(handler, "initfail") == 0 || access("fail-init", F_OK) == 0) {
        const char *err = "{\"errorMessage\":\"no config\",\"errorType\":\"InitBroken\"}";
        post("/2018-06-01/runtime/init/error", "Lambda-Runtime-Function-Error-Type: Unhandled\r\n",
             err, strlen(err));
        return 1;
    }
    for (;;) {
        struct reply ev;
        call("GET", "/2018-06-01/runtime/invocation/next", "", "", 0, &ev);
        char path[256], *out = NULL;
        fprintf(stderr, "c bootstrap got %s\n", ev.request_id);
        if (strstr(ev.body, "\"fail\"")) {
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/error", ev.request_id);
            const char *err = "{\"errorMessage\":\"it broke\",\"errorType\":\"CError\","
                              "\"stackTrace\":[\"main.c:1\"]}";
            post(path, "Lambda-Runtime-Function-Error-Type: Unhandled\r\n", err, strlen(err));
        } else if (strstr(ev.body, "\"sleep\"")) {
            sleep(300);
        } else if (strstr(ev.body, "\"crash\"")) {
            abort();
        } else if (strstr(ev.body, "\"big\"")) {
            size_t n = 7u << 20;
            out = malloc(n);
            memset(out, 'x', n);
            out[0] = out[n - 1] = '"';
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response",
                     ev.request_id);
            post(path, "", out, n);
        } else {
            size_t n = ev.len + 1024;
            out = malloc(n);
            int len = snprintf(out, n, "{\"event\":%s,\"handler\":\"%s\",\"deadline\":\"%s\","
                               "\"arn\":\"%s\",\"pid\":%d}", ev.body, handler, ev.deadline,
                               ev.arn, (int)getpid());
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response",
                     ev.request_id);
            post(path, "", out, (size_t)len);
        }
        free(out);
        free(ev.body);
    }
}
