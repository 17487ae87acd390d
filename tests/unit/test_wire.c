/* test_wire.c - unit tests for the worker protocol's framing (core/wire.c)
 * over a real socketpair: INVOKE and RESULT round trips, frames that arrive
 * a byte at a time or several to one read, frames far larger than the
 * socket's buffer (short writes) and than the reader's buffer, the NUL after
 * each frame, deadlines, end of file, signals in the middle of a wait, and
 * frames the reader must refuse. */
#include "clock.h"
#include "wire.h"

#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
}

static void test_invoke_and_result(void)
{
    int sv[2];
    pair(sv);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct err e;
    const char event[] = "{\"hello\":\"world\"}";
    struct wire_invoke in = {.step = 3, .attempt = 2, .deadline_ns = 123456789,
                             .event = event, .event_len = strlen(event)};
    snprintf(in.request_id, sizeof in.request_id, "01a20807-f54a-7e57-ac73-dec45e47ddc8");
    CHECK(wire_send_invoke(sv[0], &in, &e) == 0);
    struct wire_frame f;
    int timed_out = -1;
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0);
    CHECK(timed_out == 0);
    CHECK(f.type == WIRE_INVOKE);
    struct wire_invoke out;
    CHECK(wire_decode_invoke(&f, &out, &e) == 0);
    CHECK(out.step == 3 && out.attempt == 2 && out.deadline_ns == 123456789);
    CHECK_STR(out.request_id, in.request_id);
    CHECK(out.event_len == strlen(event) && memcmp(out.event, event, out.event_len) == 0);
    CHECK(out.event[out.event_len] == '\0'); /* the NUL after the frame */
    wire_frame_release(&f);

    /* a result with every kind of field, NULL strings included */
    struct wire_result r = {.status = 1, .status_code = 502, .init_ms = -1, .duration_ms = 0.25,
                            .max_rss_kb = 1820, .body = "{\"a\":1}", .body_len = 7,
                            .error_type = "HandlerError", .error_type_len = 12,
                            .error = NULL, .stack = "[\"x\"]", .stack_len = 5};
    CHECK(wire_send_result(sv[1], &r, &e) == 0);
    struct wire_reader back;
    wire_reader_init(&back, sv[0]);
    CHECK(wire_read(&back, clock_mono_ns() + 1000000000, &f, &timed_out, &e) == 0);
    CHECK(f.type == WIRE_RESULT);
    struct wire_result got;
    CHECK(wire_decode_result(&f, &got, &e) == 0);
    CHECK(got.status == 1 && got.status_code == 502 && got.init_ms == -1);
    CHECK(got.duration_ms == 0.25 && got.max_rss_kb == 1820);
    CHECK(got.body_len == 7 && memcmp(got.body, "{\"a\":1}", 7) == 0);
    CHECK(got.error_type_len == 12 && memcmp(got.error_type, "HandlerError", 12) == 0);
    CHECK(got.error == NULL && got.error_len == 0);
    CHECK(got.stack_len == 5 && memcmp(got.stack, "[\"x\"]", 5) == 0);
    wire_reader_free(&back);
    wire_reader_free(&rd);
    close(sv[0]);
    close(sv[1]);
}

/* The invoke frame C workers get: event id and source (one NULL) before
 * the event, NUL-terminated in place; a source whose NUL is missing is a
 * malformed frame, not a read past it. */
static void test_invoke_with_ids(void)
{
    int sv[2];
    pair(sv);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct err e;
    struct wire_invoke in = {.step = 1, .attempt = 4, .deadline_ns = 42, .ids = true,
                             .event_id = "ev-7", .source = NULL, .event = "[1]", .event_len = 3};
    snprintf(in.request_id, sizeof in.request_id, "01a20807-f54a-7e57-ac73-dec45e47ddc8");
    CHECK(wire_send_invoke(sv[0], &in, &e) == 0);
    struct wire_frame f;
    int timed_out;
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0);
    CHECK(f.type == WIRE_INVOKE_IDS);
    struct wire_invoke out;
    CHECK(wire_decode_invoke(&f, &out, &e) == 0);
    CHECK(out.ids && out.step == 1 && out.attempt == 4 && out.deadline_ns == 42);
    CHECK_STR(out.event_id, "ev-7");
    CHECK(out.source == NULL);
    CHECK(out.event_len == 3 && memcmp(out.event, "[1]", 3) == 0);
    /* the same frame with the id's NUL turned into a letter */
    unsigned char *nul = memchr(f.data + 53 + 4, 0, 5);
    CHECK(nul != NULL);
    if (nul) {
        *nul = 'x';
        CHECK(wire_decode_invoke(&f, &out, &e) == -1);
        CHECK_CONTAINS(e.msg, "malformed invoke frame");
    }
    wire_frame_release(&f);
    wire_reader_free(&rd);
    close(sv[0]);
    close(sv[1]);
}

/* Several frames in one write come out one by one, each NUL-terminated,
 * and the byte the NUL covered is back for the next frame. */
static void test_many_frames_one_read(void)
{
    int sv[2];
    pair(sv);
    unsigned char buf[256];
    size_t n = 0;
    const char *msgs[] = {"one", "", "three!", "{\"four\":4}"};
    for (int i = 0; i < 4; i++) {
        uint32_t head[2] = {(uint32_t)(4 + strlen(msgs[i])), WIRE_LOG};
        int32_t level = i;
        memcpy(buf + n, head, 8);
        memcpy(buf + n + 8, &level, 4);
        memcpy(buf + n + 12, msgs[i], strlen(msgs[i]));
        n += 12 + strlen(msgs[i]);
    }
    CHECK(write(sv[0], buf, n) == (ssize_t)n);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct err e;
    for (int i = 0; i < 4; i++) {
        struct wire_frame f;
        int timed_out, level = -1;
        const char *msg = NULL;
        CHECK(wire_read(&rd, clock_mono_ns() + 1000000000, &f, &timed_out, &e) == 0);
        CHECK(f.type == WIRE_LOG);
        CHECK(wire_decode_log(&f, &level, &msg, &e) == 0);
        CHECK(level == i);
        CHECK_STR(msg, msgs[i]);
        wire_frame_release(&f);
    }
    /* nothing more: the deadline passes */
    struct wire_frame f;
    int timed_out = 0;
    int64_t t0 = clock_mono_ns();
    CHECK(wire_read(&rd, t0 + 30000000, &f, &timed_out, &e) < 0);
    CHECK(timed_out == 1);
    CHECK(clock_mono_ns() - t0 >= 20000000);
    CHECK_CONTAINS(e.msg, "deadline");
    wire_reader_free(&rd);
    close(sv[0]);
    close(sv[1]);
}

struct dribble {
    int fd;
    const unsigned char *p;
    size_t len;
};

/* Write a byte at a time, with pauses, as a slow or hostile peer might. */
static void *dribble_main(void *arg)
{
    struct dribble *d = arg;
    for (size_t i = 0; i < d->len; i++) {
        if (write(d->fd, d->p + i, 1) != 1)
            break;
        if (i % 7 == 0)
            usleep(200);
    }
    return NULL;
}

static void test_frame_in_pieces(void)
{
    int sv[2];
    pair(sv);
    unsigned char buf[64];
    const char text[] = "\x01\x00\x00\x00ready, slowly";
    uint32_t head[2] = {sizeof text - 1, WIRE_READY};
    memcpy(buf, head, 8);
    memcpy(buf + 8, text, sizeof text - 1);
    struct dribble d = {.fd = sv[0], .p = buf, .len = 8 + sizeof text - 1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, dribble_main, &d) == 0);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct wire_frame f;
    int timed_out;
    struct err e;
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0);
    CHECK(f.type == WIRE_READY && f.len == sizeof text - 1);
    CHECK(memcmp(f.data, text, f.len) == 0 && f.data[f.len] == '\0');
    pthread_join(t, NULL);
    /* then end of file */
    close(sv[0]);
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) < 0);
    CHECK(timed_out == 0);
    CHECK_CONTAINS(e.msg, "closed");
    wire_reader_free(&rd);
    close(sv[1]);
}

struct big_writer {
    int fd;
    const char *event;
    size_t len;
    int rc;
};

static void *big_writer_main(void *arg)
{
    struct big_writer *b = arg;
    struct err e;
    struct wire_invoke in = {.step = 0, .attempt = 1, .event = b->event, .event_len = b->len};
    snprintf(in.request_id, sizeof in.request_id, "%036d", 7);
    b->rc = wire_send_invoke(b->fd, &in, &e);
    if (b->rc == 0) { /* and a small one behind it */
        in.event = "{}";
        in.event_len = 2;
        b->rc = wire_send_invoke(b->fd, &in, &e);
    }
    return NULL;
}

/* A frame far larger than the socket buffer (the writer's sendmsg returns
 * short and resumes) and than the reader's buffer (which grows for it, then
 * shrinks back once the frame is done with). */
static void test_big_frame(void)
{
    int sv[2];
    pair(sv);
    size_t len = 3u << 20;
    char *event = malloc(len);
    CHECK(event != NULL);
    if (!event)
        return;
    for (size_t i = 0; i < len; i++)
        event[i] = (char)('a' + i % 26);
    struct big_writer b = {.fd = sv[0], .event = event, .len = len};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, big_writer_main, &b) == 0);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct wire_frame f;
    int timed_out;
    struct err e;
    CHECK(wire_read(&rd, clock_mono_ns() + 10000000000LL, &f, &timed_out, &e) == 0);
    struct wire_invoke out;
    CHECK(wire_decode_invoke(&f, &out, &e) == 0);
    CHECK(out.event_len == len && memcmp(out.event, event, len) == 0);
    CHECK(out.event[len] == '\0');
    CHECK(rd.cap >= len);
    CHECK(wire_read(&rd, clock_mono_ns() + 10000000000LL, &f, &timed_out, &e) == 0);
    CHECK(wire_decode_invoke(&f, &out, &e) == 0);
    CHECK(out.event_len == 2 && memcmp(out.event, "{}", 2) == 0);
    pthread_join(t, NULL);
    CHECK(b.rc == 0);
    wire_reader_idle(&rd); /* the big buffer goes once nothing is left in it */
    CHECK(rd.cap < len);
    /* and at the next read too */
    struct big_writer again = {.fd = sv[0], .event = event, .len = len};
    CHECK(pthread_create(&t, NULL, big_writer_main, &again) == 0);
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0 && f.len > len);
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0 && f.len < 100);
    pthread_join(t, NULL);
    close(sv[0]);
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) < 0);
    CHECK(rd.cap < len);
    wire_reader_free(&rd);
    close(sv[1]);
    free(event);
}

static void on_alarm(int sig)
{
    (void)sig;
}

struct late {
    int fd;
    int rc;
};

static void *late_main(void *arg)
{
    struct late *l = arg;
    struct err e;
    usleep(60000);
    l->rc = wire_write(l->fd, WIRE_LOG, "\0\0\0\0", 4, "late", 4, &e);
    return NULL;
}

/* A signal that interrupts the wait (no SA_RESTART) does not end the read,
 * with or without a deadline. */
static void test_eintr(void)
{
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    for (int with_deadline = 0; with_deadline < 2; with_deadline++) {
        int sv[2];
        pair(sv);
        struct late l = {.fd = sv[0], .rc = -1};
        pthread_t t;
        sigset_t alrm, prev;
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        pthread_sigmask(SIG_BLOCK, &alrm, &prev); /* the signal is for this thread */
        CHECK(pthread_create(&t, NULL, late_main, &l) == 0);
        pthread_sigmask(SIG_SETMASK, &prev, NULL);
        struct itimerval it = {.it_value = {.tv_usec = 20000}};
        setitimer(ITIMER_REAL, &it, NULL);
        struct wire_reader rd;
        wire_reader_init(&rd, sv[1]);
        struct wire_frame f;
        int timed_out;
        struct err e;
        int64_t deadline = with_deadline ? clock_mono_ns() + 5000000000LL : 0;
        CHECK(wire_read(&rd, deadline, &f, &timed_out, &e) == 0);
        CHECK(f.type == WIRE_LOG && f.len == 8 && memcmp(f.data + 4, "late", 5) == 0);
        pthread_join(t, NULL);
        CHECK(l.rc == 0);
        wire_reader_free(&rd);
        close(sv[0]);
        close(sv[1]);
    }
    sigaction(SIGALRM, &old, NULL);
}

/* What a broken or hostile worker might send. */
static void test_refused(void)
{
    struct {
        uint32_t len, type;
        const char *want;
    } cases[] = {
        {3000000000u, WIRE_RESULT, "a frame of 3000000000 bytes"},
        {4, 0, "unknown frame type 0"},
        {4, 99, "unknown frame type 99"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sv[2];
        pair(sv);
        uint32_t head[2] = {cases[i].len, cases[i].type};
        CHECK(write(sv[0], head, sizeof head) == sizeof head);
        struct wire_reader rd;
        wire_reader_init(&rd, sv[1]);
        struct wire_frame f;
        int timed_out;
        struct err e;
        CHECK(wire_read(&rd, clock_mono_ns() + 1000000000, &f, &timed_out, &e) < 0);
        CHECK_CONTAINS(e.msg, "protocol error");
        CHECK_CONTAINS(e.msg, cases[i].want);
        wire_reader_free(&rd);
        close(sv[0]);
        close(sv[1]);
    }
    /* a malformed result and an over-long frame on the way out */
    int sv[2];
    pair(sv);
    struct err e;
    CHECK(wire_write(sv[0], WIRE_RESULT, "\x01\x00", 2, NULL, 0, &e) == 0);
    struct wire_reader rd;
    wire_reader_init(&rd, sv[1]);
    struct wire_frame f;
    int timed_out;
    CHECK(wire_read(&rd, 0, &f, &timed_out, &e) == 0);
    struct wire_result r;
    CHECK(wire_decode_result(&f, &r, &e) < 0);
    CHECK_CONTAINS(e.msg, "malformed result");
    struct wire_result huge = {.body = "x", .body_len = (size_t)WIRE_MAX_FRAME};
    CHECK(wire_send_result(sv[0], &huge, &e) < 0);
    CHECK_CONTAINS(e.msg, "limit");
    wire_reader_free(&rd);
    close(sv[0]);
    close(sv[1]);
    /* a write to a closed peer fails (no SIGPIPE) */
    pair(sv);
    close(sv[1]);
    CHECK(wire_write(sv[0], WIRE_LOG, "\0\0\0\0", 4, "x", 1, &e) < 0);
    CHECK_CONTAINS(e.msg, "writing to the worker socket");
    close(sv[0]);
}

int main(void)
{
    test_invoke_and_result();
    test_invoke_with_ids();
    test_many_frames_one_read();
    test_frame_in_pieces();
    test_big_frame();
    test_eintr();
    test_refused();
    return test_summary();
}
