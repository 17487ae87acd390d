/* wire.c - frames between the daemon and workers (see wire.h). Decoders
 * check every length against what remains, so a hostile or corrupted frame
 * yields an error, never an out-of-bounds read. */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

static int write_all(int fd, const void *buf, size_t len, struct err *e)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(e, "writing to the worker socket: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int wire_write(int fd, uint32_t type, const void *a, size_t alen, const void *b, size_t blen,
               struct err *e)
{
    if (alen + blen > WIRE_MAX_FRAME)
        return err_set(e, "frame of %zu bytes is over the %u byte limit", alen + blen,
                       WIRE_MAX_FRAME);
    uint32_t head[2] = {(uint32_t)(alen + blen), type};
    if (write_all(fd, head, sizeof head, e) < 0)
        return -1;
    if (alen && write_all(fd, a, alen, e) < 0)
        return -1;
    return blen ? write_all(fd, b, blen, e) : 0;
}

static int read_all(int fd, void *buf, size_t len, int64_t deadline_ns, int *timed_out,
                    struct err *e)
{
    char *p = buf;
    while (len > 0) {
        if (deadline_ns) {
            int64_t left = (deadline_ns - clock_mono_ns()) / 1000000;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int rc = left > 0 ? poll(&pfd, 1, (int)(left > 86400000 ? 86400000 : left)) : 0;
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc == 0) {
                *timed_out = 1;
                return err_set(e, "deadline passed");
            }
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(e, "reading from the worker socket: %s", strerror(errno));
        if (n == 0)
            return err_set(e, "the other end closed the socket");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int wire_read(int fd, int64_t deadline_ns, struct wire_frame *f, int *timed_out, struct err *e)
{
    uint32_t head[2];
    *timed_out = 0;
    memset(f, 0, sizeof *f);
    if (read_all(fd, head, sizeof head, deadline_ns, timed_out, e) < 0)
        return -1;
    if (head[0] > WIRE_MAX_FRAME)
        return err_set(e, "protocol error: a frame of %u bytes (limit %u)", head[0],
                       WIRE_MAX_FRAME);
    if (head[1] < WIRE_INIT || head[1] > WIRE_RESULT)
        return err_set(e, "protocol error: unknown frame type %u", head[1]);
    f->type = head[1];
    f->len = head[0];
    f->data = malloc((size_t)f->len + 1);
    if (!f->data)
        return err_set(e, "out of memory for a %u byte frame", f->len);
    if (read_all(fd, f->data, f->len, deadline_ns, timed_out, e) < 0) {
        wire_frame_release(f);
        return -1;
    }
    f->data[f->len] = '\0';
    return 0;
}

void wire_frame_release(struct wire_frame *f)
{
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

/* A cursor over a frame's payload. */
struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
};

static void take(struct reader *r, void *out, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

/* A u32-length-prefixed string; NULL for length 0xffffffff. */
static const char *take_str(struct reader *r, size_t *len)
{
    uint32_t n;
    take(r, &n, sizeof n);
    *len = 0;
    if (r->bad || n == UINT32_MAX)
        return NULL;
    if (n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += n;
    r->left -= n;
    *len = n;
    return s;
}

struct writer_buf {
    unsigned char *p;
    size_t len, cap;
    int bad;
};

static void put(struct writer_buf *w, const void *data, size_t n)
{
    if (w->bad)
        return;
    if (w->len + n > w->cap) {
        size_t cap = (w->cap ? w->cap * 2 : 256) + n;
        unsigned char *p = realloc(w->p, cap);
        if (!p) {
            w->bad = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put_str(struct writer_buf *w, const char *s, size_t len)
{
    uint32_t n = s ? (uint32_t)len : UINT32_MAX;
    put(w, &n, sizeof n);
    if (s)
        put(w, s, len);
}

int wire_send_invoke(int fd, const struct wire_invoke *in, struct err *e)
{
    unsigned char head[4 + 4 + 8 + 37];
    memcpy(head, &in->step, 4);
    memcpy(head + 4, &in->attempt, 4);
    memcpy(head + 8, &in->deadline_ns, 8);
    memcpy(head + 16, in->request_id, 37);
    return wire_write(fd, WIRE_INVOKE, head, sizeof head, in->event, in->event_len, e);
}

int wire_decode_invoke(const struct wire_frame *f, struct wire_invoke *out, struct err *e)
{
    struct reader r = {.p = f->data, .left = f->len};
    take(&r, &out->step, 4);
    take(&r, &out->attempt, 4);
    take(&r, &out->deadline_ns, 8);
    take(&r, out->request_id, 37);
    if (r.bad || out->request_id[36] != '\0')
        return err_set(e, "protocol error: a malformed invoke frame");
    out->event = (const char *)r.p;
    out->event_len = r.left;
    return 0;
}

int wire_send_result(int fd, const struct wire_result *res, struct err *e)
{
    struct writer_buf w = {0};
    put(&w, &res->status, 4);
    put(&w, &res->status_code, 4);
    put(&w, &res->init_ms, 8);
    put(&w, &res->duration_ms, 8);
    put(&w, &res->max_rss_kb, 8);
    put_str(&w, res->body, res->body_len);
    put_str(&w, res->error_type, res->error_type_len);
    put_str(&w, res->error, res->error_len);
    put_str(&w, res->stack, res->stack_len);
    int rc = w.bad ? err_set(e, "out of memory encoding a result")
                   : wire_write(fd, WIRE_RESULT, w.p, w.len, NULL, 0, e);
    free(w.p);
    return rc;
}

int wire_decode_result(const struct wire_frame *f, struct wire_result *out, struct err *e)
{
    struct reader r = {.p = f->data, .left = f->len};
    take(&r, &out->status, 4);
    take(&r, &out->status_code, 4);
    take(&r, &out->init_ms, 8);
    take(&r, &out->duration_ms, 8);
    take(&r, &out->max_rss_kb, 8);
    out->body = take_str(&r, &out->body_len);
    out->error_type = take_str(&r, &out->error_type_len);
    out->error = take_str(&r, &out->error_len);
    out->stack = take_str(&r, &out->stack_len);
    if (r.bad || r.left != 0)
        return err_set(e, "protocol error: a malformed result frame");
    if (out->status > 3)
        return err_set(e, "protocol error: result status %u", out->status);
    if (out->duration_ms != out->duration_ms || out->duration_ms < 0 ||
        out->init_ms != out->init_ms)
        return err_set(e, "protocol error: result timings are not numbers");
    return 0;
}

int wire_decode_log(const struct wire_frame *f, int *level, const char **msg, struct err *e)
{
    if (f->len < 4 || f->len > 4 + WIRE_LOG_MAX)
        return err_set(e, "protocol error: a log frame of %u bytes", f->len);
    int32_t lv;
    memcpy(&lv, f->data, 4);
    *level = lv;
    *msg = (const char *)f->data + 4;
    return 0;
}
