/* admin.c - the admin HTTP listener (see admin.h). Answers are built whole
 * in memory at request time; nothing here blocks the loop for longer than a
 * stat() of the database and a walk over the counters. */
#include "admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "log.h"
#include "loop.h"

struct admin {
    struct loop *loop;
    struct MHD_Daemon *mhd;
    int epfd;
    struct admin_settings set;
    struct admin_source src;
    struct loop_timer tick;     /* MHD's own timeouts */
    int64_t started_ms;
};

int64_t admin_database_bytes(const char *database)
{
    struct stat st;
    if (stat(database, &st) < 0)
        return -1;
    int64_t bytes = (int64_t)st.st_size;
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", database);
    if (stat(wal, &st) == 0)
        bytes += (int64_t)st.st_size;
    return bytes;
}

static void add_pipeline(cJSON *arr, const struct engine_pipeline *p)
{
    struct metrics_pipeline t;
    metrics_pipeline_totals(p->name, &t);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "trigger", p->trigger);
    cJSON_AddNumberToObject(o, "in_flight", (double)p->in_flight);
    cJSON_AddNumberToObject(o, "backlog", (double)p->backlog);
    cJSON_AddNumberToObject(o, "invocations", (double)t.invocations);
    cJSON_AddNumberToObject(o, "errors", (double)t.errors);
    if (t.last_error[0]) {
        char at[32];
        clock_iso8601(t.last_error_ms, at);
        cJSON_AddStringToObject(o, "last_error", t.last_error);
        cJSON_AddStringToObject(o, "last_error_at", at);
    } else {
        cJSON_AddNullToObject(o, "last_error");
        cJSON_AddNullToObject(o, "last_error_at");
    }
    cJSON_AddItemToArray(arr, o);
}

char *admin_status_json(const struct admin_settings *set, const struct engine_snapshot *snap,
                        int64_t started_ms)
{
    cJSON *root = cJSON_CreateObject();
    char at[32];
    clock_iso8601(started_ms, at);
    cJSON_AddStringToObject(root, "version", SLUICE_VERSION);
    cJSON_AddNumberToObject(root, "pid", (double)getpid());
    cJSON_AddStringToObject(root, "started_at", at);
    cJSON_AddNumberToObject(root, "uptime_seconds", (double)(clock_wall_ms() - started_ms) / 1e3);
    cJSON_AddStringToObject(root, "config", set->config_file ? set->config_file : "");
    cJSON *db = cJSON_AddObjectToObject(root, "database");
    cJSON_AddStringToObject(db, "path", set->database ? set->database : "");
    cJSON_AddNumberToObject(db, "bytes", (double)admin_database_bytes(set->database));
    cJSON_AddNumberToObject(root, "workers", (double)metrics_workers());
    cJSON_AddNumberToObject(root, "writer_queue", (double)snap->writer_queued);
    cJSON_AddNumberToObject(root, "rejected", (double)snap->rejected);
    cJSON *arr = cJSON_AddArrayToObject(root, "pipelines");
    for (size_t i = 0; i < snap->n_pipelines; i++)
        add_pipeline(arr, &snap->pipelines[i]);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static char *render_metrics(struct admin *a, const struct engine_snapshot *snap, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    int rc = metrics_write(f, snap, admin_database_bytes(a->set.database));
    if (fclose(f) != 0 || rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "content-type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result text_reply(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    char *body = strdup(msg);
    return body ? reply(conn, status, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct admin *a = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return text_reply(conn, 405, "only GET here\n");
    if (strcmp(url, "/healthz") == 0)
        return text_reply(conn, 200, "ok\n");
    bool metrics = strcmp(url, "/metrics") == 0, status = strcmp(url, "/status") == 0;
    if (!metrics && !status)
        return text_reply(conn, 404, "not found: try /metrics, /healthz or /status\n");
    struct engine_snapshot snap = {0};
    if (a->src.snapshot)
        a->src.snapshot(a->src.arg, &snap);
    size_t len = 0;
    char *body = metrics ? render_metrics(a, &snap, &len)
                         : admin_status_json(&a->set, &snap, a->started_ms);
    engine_snapshot_release(&snap);
    if (!body)
        return text_reply(conn, 500, "out of memory\n");
    if (status)
        len = strlen(body);
    return reply(conn, 200, metrics ? "text/plain; version=0.0.4; charset=utf-8"
                                    : "application/json", body, len);
}

static void run_mhd(struct admin *a)
{
    MHD_run(a->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(a->mhd, &ms) == MHD_YES)
        loop_timer_arm(a->loop, &a->tick,
                       clock_mono_ns() + (int64_t)(ms > 60000 ? 60000 : ms) * 1000000);
}

static void on_tick(struct loop_timer *t)
{
    run_mhd((struct admin *)((char *)t - offsetof(struct admin, tick)));
}

static void on_epoll(void *arg, uint32_t events)
{
    (void)events;
    run_mhd(arg);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, struct err *e)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host || *end ||
        port < 0 || port > 65535)
        return err_set(e, "admin.listen \"%s\" must be HOST:PORT, e.g. 127.0.0.1:9090", listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                  &sa->sin_addr) != 1)
        return err_set(e, "admin.listen \"%s\" must be an IPv4 address and port, e.g. "
                       "127.0.0.1:9090", listen);
    return 0;
}

int admin_new(struct loop *l, const struct admin_settings *set, const struct admin_source *src,
              struct admin **out, struct err *e)
{
    *out = NULL;
    struct sockaddr_in sa;
    if (parse_listen(set->listen, &sa, e) < 0)
        return -1;
    struct admin *a = calloc(1, sizeof *a);
    if (!a)
        return err_set(e, "out of memory");
    *a = (struct admin){.loop = l, .set = *set, .src = *src, .started_ms = clock_wall_ms()};
    a->tick.fire = on_tick;
    a->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!a->mhd) {
        free(a);
        return err_set(e, "admin.listen: cannot listen on %s (in use? set \"admin\": "
                       "{\"listen\": \"127.0.0.1:PORT\"} in sluice.json, or \"\" to turn it off)",
                       set->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    a->epfd = info ? info->epoll_fd : -1;
    if (a->epfd < 0 || loop_add_fd(l, a->epfd, EPOLLIN, on_epoll, a, e) < 0) {
        MHD_stop_daemon(a->mhd);
        free(a);
        return -1;
    }
    log_msg(LOG_INFO, "admin listening on %s (/metrics, /healthz, /status)", set->listen);
    run_mhd(a);
    *out = a;
    return 0;
}

void admin_free(struct admin **ap)
{
    struct admin *a = *ap;
    if (!a)
        return;
    loop_timer_cancel(a->loop, &a->tick);
    loop_del_fd(a->loop, a->epfd);
    MHD_stop_daemon(a->mhd);
    free(a);
    *ap = NULL;
}
