/* zpush - the C PUSH producer: sends COUNT two-frame messages (TOPIC, a
 * ~200-byte JSON payload) to ENDPOINT, then (with --db) waits until the
 * table holds COUNT rows, polling max(id) through a read-only connection.
 * Prints key=value lines: the send time, the time until the last row was
 * visible (durable), the rate, and the daemon's RSS along the way and the
 * CPU time of its whole process tree (--pid: workers included).
 *
 *   zpush --endpoint tcp://127.0.0.1:P --count N [--topic T] [--db FILE]
 *         [--table invocations] [--pid PID] [--timeout S]
 *         [--spread K] [--payload-bytes B]
 *
 * --spread K sends event i with topic TOPIC<i mod K>/ (K pipelines, one
 * topic each); --payload-bytes B pads each payload's JSON to B bytes with
 * a "pad" string (issue 15 item 5).
 */
#include <sqlite3.h>
#include <zmq.h>

#include "common.h"

static long db_max_id(sqlite3 *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT coalesce(max(id),0) FROM %s", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    long v = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *topic = "bench.tp", *dbpath = NULL, *table = "invocations";
    long count = 100000, spread = 0, pad_to = 0;
    int pid = 0;
    double timeout = 600;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--endpoint")) endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--topic")) topic = argv[i + 1];
        else if (!strcmp(argv[i], "--db")) dbpath = argv[i + 1];
        else if (!strcmp(argv[i], "--table")) table = argv[i + 1];
        else if (!strcmp(argv[i], "--pid")) pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout")) timeout = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--spread")) spread = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload-bytes")) pad_to = atol(argv[i + 1]);
        else { fprintf(stderr, "zpush: unknown option %s\n", argv[i]); return 2; }
    }
    if (!endpoint) {
        fprintf(stderr, "usage: zpush --endpoint EP --count N [--db FILE --pid PID]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 10000, linger = -1;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, endpoint) < 0) {
        fprintf(stderr, "zpush: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    long rss_idle = pid ? proc_status_kb(pid, "VmRSS") : -1;
    double cpu0 = pid ? tree_cpu_ms(pid) : 0;
    size_t tlen = strlen(topic);
    size_t cap = pad_to > 512 ? (size_t)pad_to + 64 : 512;
    char *payload = malloc(cap), *padded = malloc(cap), ttopic[300];
    if (!payload || !padded)
        return 1;
    int64_t t0 = now_ns();
    for (long i = 0; i < count; i++) {
        int n = bench_payload(payload, cap, i);
        const char *body = payload;
        if (pad_to > n + 10) { /* {..., "pad":"xxx"} */
            int head = n - 1;
            memcpy(padded, payload, (size_t)head);
            memcpy(padded + head, ",\"pad\":\"", 8);
            int fill = (int)pad_to - head - 8 - 2;
            memset(padded + head + 8, 'x', (size_t)fill);
            memcpy(padded + head + 8 + fill, "\"}", 2);
            n = (int)pad_to;
            body = padded;
        }
        const char *t = topic;
        size_t tl = tlen;
        if (spread > 0) {
            tl = (size_t)snprintf(ttopic, sizeof ttopic, "%s%ld/", topic, i % spread);
            t = ttopic;
        }
        if (zmq_send(s, t, tl, ZMQ_SNDMORE) < 0 || zmq_send(s, body, (size_t)n, 0) < 0) {
            fprintf(stderr, "zpush: send: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    int64_t t_sent = now_ns();
    int plen = bench_payload(payload, cap, count / 2);
    printf("count=%ld\npayload_bytes=%ld\nsend_s=%.3f\n", count,
           pad_to > plen + 10 ? pad_to : (long)plen, (double)(t_sent - t0) / 1e9);
    free(payload);
    free(padded);
    int rc = 0;
    if (dbpath) {
        sqlite3 *db = NULL;
        /* wait for the file and the table to exist */
        long rows = -1, rss_warm = -1, rss_max = rss_idle, rss = -1;
        int64_t deadline = t0 + (int64_t)(timeout * 1e9);
        while (now_ns() < deadline) {
            if (!db && sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                db = NULL;
            }
            if (db) {
                sqlite3_busy_timeout(db, 1000);
                rows = db_max_id(db, table);
            }
            if (pid) {
                rss = proc_status_kb(pid, "VmRSS");
                if (rss > rss_max)
                    rss_max = rss;
                if (rss_warm < 0 && rows >= count / 10)
                    rss_warm = rss;
            }
            if (rows >= count)
                break;
            sleep_ns(5000000);
        }
        int64_t t_done = now_ns();
        double secs = (double)(t_done - t0) / 1e9;
        printf("rows=%ld\ndone_s=%.3f\nrate=%.0f\n", rows, secs, rows >= count ? count / secs : 0);
        if (pid) {
            double cpu = tree_cpu_ms(pid) - cpu0;
            printf("rss_idle_kb=%ld\nrss_warm_kb=%ld\nrss_end_kb=%ld\nrss_max_kb=%ld\n", rss_idle,
                   rss_warm, rss, rss_max);
            printf("rss_anon_end_kb=%ld\nrss_file_end_kb=%ld\n", proc_status_kb(pid, "RssAnon"),
                   proc_status_kb(pid, "RssFile"));
            printf("tree_cpu_ms=%.1f\ncpu_per_event_us=%.2f\n", cpu, cpu * 1e3 / (double)count);
            sleep_ns(1500000000); /* the daemon at rest after the burst */
            printf("rss_rest_kb=%ld\n", proc_status_kb(pid, "VmRSS"));
        }
        if (rows < count) {
            fprintf(stderr, "zpush: timed out with %ld of %ld rows\n", rows, count);
            rc = 1;
        }
        sqlite3_close(db);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}
