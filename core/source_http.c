/* source_http.c - libmicrohttpd on the event loop (see source_http.h).
 *
 * A call is shared by the connection (MHD) and the pipeline run that
 * answers it; it is freed when both have let go, so a client that hangs up
 * or a run that answers after the 504 never touches freed memory.
 *
 * Slow clients cannot hold the listener: every connection is tracked, a
 * request head must arrive whole within HEADER_TIMEOUT_MS (MHD's own timeout
 * only bounds idle time, which a line every few seconds resets), one client
 * address holds at most MAX_PER_CLIENT connections, and past the connection
 * limit less a reserve the oldest connection that is not in a request is
 * closed, so a new client always finds room. The limit is MAX_CONNECTIONS,
 * or half the file descriptors still free at start if that is less: past
 * them MHD's accepts fail with EMFILE and it logs each failure.
 */
#include "source_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "loop.h"
#include "uuid.h"

#define MAX_CONNECTIONS 1000
#define MAX_PER_CLIENT 256
#define RESERVE_PERCENT 10      /* of the limit, kept free for new clients */
#define HEADER_TIMEOUT_MS 10000 /* request line and headers, whole */
#define IDLE_TIMEOUT_S 60
/* MHD's per-connection pool holds the request head and one record per
 * header and query parameter: a 6 KB URL with 1,000 parameters needs ~90 KB.
 * Pages are touched only as used. */
#define MEMORY_PER_CONNECTION (128 * 1024)
#define SWEEP_MS 1000

struct http_call {
    struct source_http *owner;
    struct MHD_Connection *conn;
    char *uri;                  /* as sent, with the query */
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    bool started;               /* the first call (headers only) has been seen */
    bool dispatched;            /* handed to the daemon, suspended */
    bool answered;              /* a response is ready (or was sent) */
    bool mhd_done;              /* MHD finished with the connection */
    bool run_done;              /* the daemon answered */
    struct http_response resp;
    char request_id[64];
    struct loop_timer deadline;
    struct http_conn *hc;       /* its connection (NULL if untracked) */
    cJSON *header_list;         /* [[name, value]...] as sent */
};

/* One client connection, from accept to close. */
struct http_conn {
    struct http_conn *prev, *next;
    struct MHD_Connection *conn;
    int fd;
    int64_t waiting_since_ns;   /* for a request head, since then; 0: in a request */
    bool closing;               /* shut down by us; MHD closes it next */
};

struct source_http {
    struct loop *loop;
    struct MHD_Daemon *mhd;
    int epfd;
    struct http_settings set;
    source_http_fn fn;
    void *arg;
    struct loop_timer tick;     /* MHD's own timeouts */
    struct loop_timer sweep;    /* request heads past HEADER_TIMEOUT_MS */
    struct http_conn conns;     /* list head, oldest first */
    int n_conns;
    int max_conns;              /* MAX_CONNECTIONS, or less with few fds */
};

static void call_release(struct http_call *c)
{
    if (!c->mhd_done || !c->run_done)
        return;
    if (c->deadline.armed)
        loop_timer_cancel(c->owner->loop, &c->deadline);
    http_response_release(&c->resp);
    cJSON_Delete(c->header_list);
    free(c->uri);
    free(c->body);
    free(c);
}

static void run_mhd(struct source_http *s);

static void on_tick(struct loop_timer *t)
{
    run_mhd((struct source_http *)((char *)t - offsetof(struct source_http, tick)));
}

/* Let MHD work, then re-arm for its next timeout. */
static void run_mhd(struct source_http *s)
{
    MHD_run(s->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
        loop_timer_arm(s->loop, &s->tick, clock_mono_ns() + (int64_t)(ms > 60000 ? 60000 : ms) *
                                                                1000000);
}

static void on_epoll(void *arg, uint32_t events)
{
    (void)events;
    run_mhd(arg);
}

/* Close a connection from outside MHD: its next read sees the end and MHD
 * releases it the usual way. */
static void conn_close(struct http_conn *hc, const char *why)
{
    if (hc->closing)
        return;
    hc->closing = true;
    shutdown(hc->fd, SHUT_RDWR);
    log_msg(LOG_DEBUG, "http: closed a connection: %s", why);
}

/* Past the limit less its reserve: the longest-waiting connection that is
 * not in a request makes room. */
static void make_room(struct source_http *s, const struct http_conn *fresh)
{
    struct http_conn *oldest = NULL;
    for (struct http_conn *hc = s->conns.next; hc != &s->conns; hc = hc->next)
        if (hc != fresh && !hc->closing && hc->waiting_since_ns &&
            (!oldest || hc->waiting_since_ns < oldest->waiting_since_ns))
            oldest = hc;
    if (oldest)
        conn_close(oldest, "the listener is near its connection limit");
}

static void on_sweep(struct loop_timer *t)
{
    struct source_http *s = (struct source_http *)((char *)t - offsetof(struct source_http, sweep));
    int64_t now = clock_mono_ns(), limit = (int64_t)HEADER_TIMEOUT_MS * 1000000;
    for (struct http_conn *hc = s->conns.next; hc != &s->conns; hc = hc->next)
        if (hc->waiting_since_ns && now - hc->waiting_since_ns > limit)
            conn_close(hc, "no whole request head within the header timeout");
    if (s->n_conns > 0)
        loop_timer_arm(s->loop, &s->sweep, now + (int64_t)SWEEP_MS * 1000000);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct source_http *s = cls;
    struct http_conn *hc = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (hc) {
            hc->prev->next = hc->next;
            hc->next->prev = hc->prev;
            s->n_conns--;
            free(hc);
        }
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || !(hc = calloc(1, sizeof *hc)))
        return; /* untracked: MHD's idle timeout still applies */
    *hc = (struct http_conn){.conn = conn, .fd = ci->connect_fd,
                             .waiting_since_ns = clock_mono_ns(), .prev = s->conns.prev,
                             .next = &s->conns};
    s->conns.prev->next = hc;
    s->conns.prev = hc;
    *socket_context = hc;
    if (++s->n_conns > s->max_conns - s->max_conns * RESERVE_PERCENT / 100)
        make_room(s, hc);
    if (!s->sweep.armed)
        loop_timer_arm(s->loop, &s->sweep, clock_mono_ns() + (int64_t)SWEEP_MS * 1000000);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->owner = cls;
    c->conn = conn;
    c->uri = strdup(uri);
    c->run_done = true; /* until dispatched */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    c->hc = ci ? ci->socket_context : NULL;
    return c;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct http_call *c = *con_cls;
    if (!c)
        return;
    if (c->hc) /* keep-alive: the next request head has HEADER_TIMEOUT_MS too */
        c->hc->waiting_since_ns = clock_mono_ns();
    c->mhd_done = true;
    call_release(c);
    *con_cls = NULL;
}

static enum MHD_Result queue(struct http_call *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        c->resp.body_len, c->resp.body ? c->resp.body : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    const cJSON *h;
    cJSON_ArrayForEach(h, c->resp.headers) {
        if (cJSON_IsString(h))
            MHD_add_response_header(r, h->string, h->valuestring);
    }
    if (!c->request_id[0] && uuid_v7(c->request_id) < 0)
        snprintf(c->request_id, sizeof c->request_id, "00000000-0000-7000-8000-000000000000");
    MHD_add_response_header(r, "x-request-id", c->request_id);
    enum MHD_Result rc = MHD_queue_response(c->conn, (unsigned)c->resp.status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    cJSON *headers = cls;
    char name[256];
    size_t n = 0;
    for (; n < sizeof name - 1 && key[n]; n++)
        name[n] = (char)tolower((unsigned char)key[n]);
    name[n] = '\0';
    cJSON *old = cJSON_GetObjectItemCaseSensitive(headers, name);
    if (!old) {
        cJSON_AddStringToObject(headers, name, value ? value : "");
        return MHD_YES;
    }
    size_t len = strlen(old->valuestring) + strlen(value ? value : "") + 2;
    char *joined = malloc(len);
    if (joined) {
        snprintf(joined, len, "%s,%s", old->valuestring, value ? value : "");
        cJSON_ReplaceItemInObjectCaseSensitive(headers, name, cJSON_CreateString(joined));
    }
    free(joined);
    return MHD_YES;
}

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, cJSON_CreateString(key));
    cJSON_AddItemToArray(pair, cJSON_CreateString(value ? value : ""));
    cJSON_AddItemToArray(cls, pair);
    return MHD_YES;
}

/* Requests refused as soon as their head is in: 0, or the status to answer
 * (msg says why). */
static int refuse_early(struct source_http *s, struct http_call *c, char *msg, size_t len)
{
    struct err e;
    int lengths = 0;
    const char *cl = NULL;
    bool expect = false;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, c->header_list) {
        const char *k = cJSON_GetArrayItem(pair, 0)->valuestring;
        if (strcasecmp(k, "content-length") == 0) {
            lengths++;
            cl = cJSON_GetArrayItem(pair, 1)->valuestring;
        } else if (strcasecmp(k, "expect") == 0) {
            expect = true;
        }
    }
    if (lengths > 1 || (cl && cl[strspn(cl, "0123456789")] != '\0')) {
        snprintf(msg, len, "one Content-Length header with one number, please");
        return 400;
    }
    if (http_request_check(c->uri ? c->uri : "", c->header_list, &e) < 0) {
        snprintf(msg, len, "%.150s", e.msg);
        return 400;
    }
    /* with Expect: 100-continue the client waits for a word before sending
     * the body: say 413 now rather than "continue" */
    if (expect && cl && strtoull(cl, NULL, 10) > s->set.max_body_bytes) {
        snprintf(msg, len, "the request body is over the %zu byte limit",
                 s->set.max_body_bytes);
        return 413;
    }
    return 0;
}

static void on_deadline(struct loop_timer *t)
{
    struct http_call *c = (struct http_call *)((char *)t - offsetof(struct http_call, deadline));
    if (c->answered)
        return;
    http_response_error(504, "the pipeline did not answer within the HTTP timeout", &c->resp);
    c->answered = true;
    MHD_resume_connection(c->conn);
    run_mhd(c->owner);
}

static bool take_body(struct http_call *c, const char *data, size_t n)
{
    if (c->too_big || c->body_len + n > c->owner->set.max_body_bytes) {
        c->too_big = true;
        return true;
    }
    if (c->body_len + n > c->body_cap) {
        size_t cap = (c->body_len + n) * 2;
        char *b = realloc(c->body, cap);
        if (!b)
            return false;
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    return true;
}

static void dispatch_call(struct source_http *s, struct http_call *c, const char *method,
                          const char *url, const char *version)
{
    cJSON *headers = cJSON_CreateObject();
    MHD_get_connection_values(c->conn, MHD_HEADER_KIND, add_header, headers);
    char ip[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip,
                  sizeof ip);
    const char *q = c->uri ? strchr(c->uri, '?') : NULL;
    struct http_incoming in = {.method = method, .path = url, .raw_query = q ? q + 1 : "",
                               .protocol = version, .source_ip = ip, .headers = headers,
                               .header_list = c->header_list, .body = c->body,
                               .body_len = c->body_len};
    c->dispatched = true;
    c->run_done = false;
    MHD_suspend_connection(c->conn);
    c->deadline.fire = on_deadline;
    loop_timer_arm(s->loop, &c->deadline,
                   clock_mono_ns() + (int64_t)s->set.timeout_ms * 1000000);
    s->fn(s->arg, c, &in);
    cJSON_Delete(headers);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct source_http *s = cls;
    struct http_call *c = *con_cls;
    if (!c)
        return MHD_NO;
    if (c->answered)
        return queue(c);
    if (!c->started) { /* headers only; the body (if any) comes next */
        c->started = true;
        if (c->hc)
            c->hc->waiting_since_ns = 0;
        char msg[200];
        int status = (c->header_list = cJSON_CreateArray()) ? 0 : 500;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, add_pair, c->header_list);
        if (!status)
            status = refuse_early(s, c, msg, sizeof msg);
        if (status) {
            http_response_error(status, status == 500 ? "out of memory" : msg, &c->resp);
            c->answered = true;
            return queue(c);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        bool ok = take_body(c, upload_data, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    if (c->dispatched)
        return MHD_YES;
    if (c->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is over the %zu byte limit",
                 s->set.max_body_bytes);
        http_response_error(413, msg, &c->resp);
        c->answered = true;
        return queue(c);
    }
    dispatch_call(s, c, method, url, version);
    return MHD_YES;
}

void source_http_set_request_id(struct http_call *c, const char *request_id)
{
    snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
}

void source_http_answer(struct source_http *s, struct http_call *c, struct http_response *r,
                        const char *request_id)
{
    c->run_done = true;
    if (c->answered) { /* the 504 went out first */
        http_response_release(r);
        call_release(c);
        return;
    }
    c->resp = *r;
    memset(r, 0, sizeof *r);
    if (request_id && *request_id)
        snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
    c->answered = true;
    if (c->deadline.armed)
        loop_timer_cancel(s->loop, &c->deadline);
    MHD_resume_connection(c->conn);
    run_mhd(s);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, struct err *e)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return err_set(e, "http.listen \"%s\" must be HOST:PORT, e.g. 127.0.0.1:8080", listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                  &sa->sin_addr) != 1)
        return err_set(e, "http.listen \"%s\" must be an IPv4 address and port, e.g. "
                       "127.0.0.1:8080", listen);
    return 0;
}

static int fds_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 2 ? n - 2 : 0; /* "." and ".." */
}

/* Half of the fds still free: the other half is for workers and the
 * database as they open. */
static int connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur / 2 >= MAX_CONNECTIONS + 1024)
        return MAX_CONNECTIONS;
    long free_fds = (long)rl.rlim_cur - fds_open();
    return free_fds / 2 >= MAX_CONNECTIONS ? MAX_CONNECTIONS
           : free_fds / 2 > 4              ? (int)(free_fds / 2)
                                           : 4;
}

int source_http_new(struct loop *l, const struct http_settings *set, source_http_fn fn,
                    void *arg, struct source_http **out, struct err *e)
{
    struct sockaddr_in sa;
    if (parse_listen(set->listen, &sa, e) < 0)
        return -1;
    struct source_http *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, "out of memory");
    *s = (struct source_http){.loop = l, .set = *set, .fn = fn, .arg = arg,
                              .max_conns = connection_limit()};
    s->tick.fire = on_tick;
    s->sweep.fire = on_sweep;
    s->conns.prev = s->conns.next = &s->conns;
    s->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_PER_CONNECTION,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_CLIENT, MHD_OPTION_END);
    if (!s->mhd) {
        free(s);
        return err_set(e, "cannot listen for HTTP on %s (in use? set \"http\": {\"listen\": "
                       "...} in sluice.json)", set->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    s->epfd = info ? info->epoll_fd : -1;
    if (s->epfd < 0 || loop_add_fd(l, s->epfd, EPOLLIN, on_epoll, s, e) < 0) {
        MHD_stop_daemon(s->mhd);
        free(s);
        return -1;
    }
    log_msg(LOG_INFO, "http listening on %s", set->listen);
    run_mhd(s);
    *out = s;
    return 0;
}

void source_http_free(struct source_http **sp)
{
    struct source_http *s = *sp;
    if (!s)
        return;
    loop_timer_cancel(s->loop, &s->tick);
    loop_timer_cancel(s->loop, &s->sweep);
    loop_del_fd(s->loop, s->epfd);
    MHD_stop_daemon(s->mhd);
    free(s);
    *sp = NULL;
}
