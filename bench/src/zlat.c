/* zlat - round-trip latency over ZeroMQ, one request at a time.
 *
 *   zlat invoke ENDPOINT PIPELINE N [WARMUP]  DEALER -> sluice's ROUTER: frames "", "invoke",
 *                                             PIPELINE, JSON; reply "", "ok"|"error", JSON,
 *                                             REQUEST_ID
 *   zlat rep ENDPOINT                         a raw REP echo server (until killed)
 *   zlat req ENDPOINT N [WARMUP]              REQ client of the echo, same payload
 *
 * Prints n, p50_us, p90_us, p99_us, mean_us, max_us, errors.
 */
#include <zmq.h>

#include "common.h"

static void report(double *lat, long n, long errors)
{
    double sum = 0, max = 0;
    for (long i = 0; i < n; i++) {
        sum += lat[i];
        if (lat[i] > max)
            max = lat[i];
    }
    double p50 = percentile(lat, (size_t)n, 0.50), p90 = percentile(lat, (size_t)n, 0.90),
           p99 = percentile(lat, (size_t)n, 0.99);
    printf("n=%ld\np50_us=%.1f\np90_us=%.1f\np99_us=%.1f\nmean_us=%.1f\nmax_us=%.1f\nerrors=%ld\n",
           n, p50, p90, p99, sum / (double)n, max, errors);
}

static int recv_all(void *s, char parts[][4096], size_t *lens, int max)
{
    int n = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0)
            return -1;
        if (n < max) {
            size_t len = zmq_msg_size(&m) < 4095 ? zmq_msg_size(&m) : 4095;
            memcpy(parts[n], zmq_msg_data(&m), len);
            parts[n][len] = '\0';
            lens[n] = len;
        }
        n++;
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (!more)
            return n;
    }
}

static int run_invoke(const char *ep, const char *pipeline, long n, long warm)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 10000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, ep) < 0)
        return 1;
    double *lat = calloc((size_t)n, sizeof *lat);
    char payload[512], parts[6][4096];
    size_t lens[6];
    long errors = 0;
    for (long i = -warm; i < n; i++) {
        int plen = bench_payload(payload, sizeof payload, i + warm);
        int64_t t0 = now_ns();
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        zmq_send(s, "invoke", 6, ZMQ_SNDMORE);
        zmq_send(s, pipeline, strlen(pipeline), ZMQ_SNDMORE);
        zmq_send(s, payload, (size_t)plen, 0);
        int k = recv_all(s, parts, lens, 6);
        int64_t t1 = now_ns();
        if (k < 0) {
            fprintf(stderr, "zlat: no answer within %d ms\n", timeout);
            return 1;
        }
        if (k < 3 || strcmp(parts[1], "ok") != 0) {
            if (errors++ < 3)
                fprintf(stderr, "zlat: error answer: %s %s\n", k > 1 ? parts[1] : "?",
                        k > 2 ? parts[2] : "");
        }
        if (i >= 0)
            lat[i] = (double)(t1 - t0) / 1e3;
    }
    report(lat, n, errors);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

static int run_rep(const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REP);
    if (zmq_bind(s, ep) < 0) {
        fprintf(stderr, "zlat rep: bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char buf[65536];
    for (;;) {
        int n = zmq_recv(s, buf, sizeof buf, 0);
        if (n < 0)
            break;
        zmq_send(s, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf), 0);
    }
    return 0;
}

static int run_req(const char *ep, long n, long warm)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int timeout = 10000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, ep) < 0)
        return 1;
    double *lat = calloc((size_t)n, sizeof *lat);
    char payload[512], buf[4096];
    for (long i = -warm; i < n; i++) {
        int plen = bench_payload(payload, sizeof payload, i + warm);
        int64_t t0 = now_ns();
        zmq_send(s, payload, (size_t)plen, 0);
        if (zmq_recv(s, buf, sizeof buf, 0) < 0) {
            fprintf(stderr, "zlat req: no answer\n");
            return 1;
        }
        int64_t t1 = now_ns();
        if (i >= 0)
            lat[i] = (double)(t1 - t0) / 1e3;
    }
    report(lat, n, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "invoke"))
        return run_invoke(argv[2], argv[3], atol(argv[4]), argc > 5 ? atol(argv[5]) : 100);
    if (argc >= 3 && !strcmp(argv[1], "rep"))
        return run_rep(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "req"))
        return run_req(argv[2], atol(argv[3]), argc > 4 ? atol(argv[4]) : 100);
    fprintf(stderr, "usage: zlat invoke EP PIPELINE N | rep EP | req EP N\n");
    return 2;
}
