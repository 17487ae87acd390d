/* zsink - the raw libzmq ceiling: binds a PULL socket and receives COUNT
 * two-frame messages (what zpush sends), doing nothing with them. Prints the
 * time from the first to the last message and the rate; run.sh also times
 * it from the producer's start.
 *
 *   zsink --endpoint tcp://127.0.0.1:P --count N
 */
#include <zmq.h>

#include "common.h"

int main(int argc, char **argv)
{
    const char *endpoint = NULL;
    long count = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--endpoint")) endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
    }
    if (!endpoint)
        return 2;
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 10000, timeout = 60000; /* give up after a minute without a message */
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_bind(s, endpoint) < 0) {
        fprintf(stderr, "zsink: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    int64_t t_first = 0;
    long got = 0, frames = 0;
    size_t bytes = 0;
    while (got < count) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            fprintf(stderr, "zsink: %s after %ld messages\n", zmq_strerror(zmq_errno()), got);
            return 1;
        }
        if (!t_first)
            t_first = now_ns();
        bytes += zmq_msg_size(&m);
        frames++;
        if (!zmq_msg_more(&m))
            got++;
        zmq_msg_close(&m);
    }
    double secs = (double)(now_ns() - t_first) / 1e9;
    printf("received=%ld\nframes=%ld\nbytes=%zu\nrecv_s=%.3f\nrate=%.0f\n", got, frames, bytes,
           secs, got / secs);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
