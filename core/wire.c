/* wire.c - frames between the daemon and workers (see wire.h). Decoders
 * check every length against what remains, so a hostile or corrupted frame
 * yields an error, never an out-of-bounds read. */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"

/* Send iov[0..n) whole: one sendmsg unless the socket takes less (a frame
 * larger than its buffer) or a signal interrupts it. Advances iov. */
static int send_all(int fd, struct iovec *iov, int n, struct err *e)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return err_set(e, "writing to the worker socket: %s", strerror(errno));
        size_t done = (size_t)k;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            if (k == 0)
                return err_set(e, "writing to the worker socket: nothing was written");
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* One frame whose payload is parts[1..n) (parts[0] is left for the header). */
static int write_frame(int fd, uint32_t type, struct iovec *parts, int n, struct err *e)
{
    size_t total = 0;
    for (int i = 1; i < n; i++)
        total += parts[i].iov_len < WIRE_MAX_FRAME ? parts[i].iov_len : (size_t)WIRE_MAX_FRAME + 1;
    if (total > WIRE_MAX_FRAME)
        return err_set(e, "a frame over the %u byte limit", WIRE_MAX_FRAME);
    uint32_t head[2] = {(uint32_t)total, type};
    parts[0] = (struct iovec){.iov_base = head, .iov_len = sizeof head};
    return send_all(fd, parts, n, e);
}

int wire_write(int fd, uint32_t type, const void *a, size_t alen, const void *b, size_t blen,
               struct err *e)
{
    struct iovec parts[3] = {{0}, {(void *)a, alen}, {(void *)b, blen}};
    return write_frame(fd, type, parts, 3, e);
}

#define READ_BUF_MIN 16384u         /* enough for most frames, with room for several */
#define READ_BUF_KEEP (256u << 10)  /* larger buffers go once their frame is done */

void wire_reader_init(struct wire_reader *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->exit_fd = -1;
}

void wire_reader_free(struct wire_reader *r)
{
    free(r->buf);
    wire_reader_init(r, -1);
}

void wire_reader_idle(struct wire_reader *r)
{
    if (r->holding) { /* the last frame is done with: give back the byte after it */
        r->buf[r->held_at] = r->held;
        r->holding = 0;
    }
    if (r->start == r->end) {
        r->start = r->end = 0;
        if (r->cap > READ_BUF_KEEP) {
            free(r->buf);
            r->buf = NULL;
            r->cap = 0;
        }
    }
}

/* Make room for need bytes from r->start; 0 or -1 with e. */
static int reserve(struct wire_reader *r, size_t need, struct err *e)
{
    if (r->cap - r->start >= need)
        return 0;
    size_t have = r->end - r->start;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, have);
        r->start = 0;
        r->end = have;
    }
    if (r->cap >= need)
        return 0;
    size_t cap = need > READ_BUF_MIN ? need : READ_BUF_MIN;
    unsigned char *buf = realloc(r->buf, cap + 1);
    if (!buf)
        return err_set(e, "out of memory for a %zu byte frame", need);
    r->buf = buf;
    r->cap = cap;
    return 0;
}

/* Wait for bytes (until deadline_ns, if any) and read what has come, up to
 * the free room. The wait is a poll() even without a deadline: a read()
 * blocked on a Unix stream socket is also woken each time the peer reads
 * what this end sent (the freed send buffer wakes the socket's wait queue,
 * unfiltered), which would cost the worker a second, useless wake-up per
 * invocation, often on another CPU; poll() sleeps through those. */
static int fill(struct wire_reader *r, int64_t deadline_ns, int *timed_out, struct err *e)
{
    for (;;) {
        int ms = -1, rc = 0;
        if (deadline_ns) {
            int64_t left = (deadline_ns - clock_mono_ns()) / 1000000;
            ms = left <= 0 ? 0 : left > 86400000 ? 86400000 : (int)left;
        }
        struct pollfd pfd[2] = {{.fd = r->fd, .events = POLLIN},
                                {.fd = r->exit_fd, .events = POLLIN}};
        if (!deadline_ns || ms > 0)
            rc = poll(pfd, r->exit_fd >= 0 ? 2 : 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return err_set(e, "waiting for the worker socket: %s", strerror(errno));
        if (rc == 0) {
            *timed_out = 1;
            return err_set(e, "deadline passed");
        }
        /* its process exited, but a child it left holds the socket open */
        if (!pfd[0].revents && pfd[1].revents)
            return err_set(e, "the worker process exited");
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(e, "reading from the worker socket: %s", strerror(errno));
        if (n == 0)
            return err_set(e, "the other end closed the socket");
        r->end += (size_t)n;
        return 0;
    }
}

/* A whole frame from what was received: 1 (f set), 0 (*need bytes from
 * r->start are wanted first), or -1 with e (a bad header). */
static int next_frame(struct wire_reader *r, struct wire_frame *f, size_t *need, struct err *e)
{
    size_t have = r->end - r->start;
    *need = 8;
    if (have < 8)
        return 0;
    uint32_t head[2];
    memcpy(head, r->buf + r->start, sizeof head);
    if (head[0] > WIRE_MAX_FRAME)
        return err_set(e, "protocol error: a frame of %u bytes (limit %u)", head[0],
                       WIRE_MAX_FRAME);
    if (head[1] < WIRE_INIT || head[1] > WIRE_INVOKE_IDS)
        return err_set(e, "protocol error: unknown frame type %u", head[1]);
    *need += head[0];
    if (have < *need)
        return 0;
    f->type = head[1];
    f->len = head[0];
    f->data = r->buf + r->start + 8;
    r->start += *need;
    r->held_at = r->start; /* < cap + 1: the buffer has a byte to spare */
    r->held = r->buf[r->held_at];
    r->holding = 1;
    r->buf[r->held_at] = '\0';
    return 1;
}

int wire_read(struct wire_reader *r, int64_t deadline_ns, struct wire_frame *f, int *timed_out,
              struct err *e)
{
    *timed_out = 0;
    memset(f, 0, sizeof *f);
    wire_reader_idle(r);
    for (;;) {
        size_t need;
        int rc = next_frame(r, f, &need, e);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (reserve(r, need, e) < 0 || fill(r, deadline_ns, timed_out, e) < 0)
            return -1;
    }
}

int wire_try_read(struct wire_reader *r, struct wire_frame *f, struct err *e)
{
    memset(f, 0, sizeof *f);
    wire_reader_idle(r);
    for (;;) { /* read until a frame is whole or nothing more has come */
        size_t need;
        int rc = next_frame(r, f, &need, e);
        if (rc != 0)
            return rc;
        if (reserve(r, need, e) < 0)
            return WIRE_CLOSED; /* out of memory for its frame: this worker is done */
        ssize_t n;
        do
            n = recv(r->fd, r->buf + r->end, r->cap - r->end, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0) {
            err_set(e, "reading from the worker socket: %s", strerror(errno));
            return WIRE_CLOSED;
        }
        if (n == 0) {
            err_set(e, "the other end closed the socket");
            return WIRE_CLOSED;
        }
        r->end += (size_t)n;
    }
}

void wire_frame_release(struct wire_frame *f)
{
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

/* A u32-length-prefixed string (0xffffffff for NULL) as two parts. */
static int put_str(struct iovec *parts, uint32_t *len_out, const char *s, size_t len)
{
    *len_out = s ? (uint32_t)len : UINT32_MAX;
    parts[0] = (struct iovec){.iov_base = len_out, .iov_len = sizeof *len_out};
    parts[1] = (struct iovec){.iov_base = (void *)s, .iov_len = s ? len : 0};
    return 2;
}

int wire_send_invoke(int fd, const struct wire_invoke *in, struct err *e)
{
    unsigned char head[4 + 4 + 8 + 37];
    memcpy(head, &in->step, 4);
    memcpy(head + 4, &in->attempt, 4);
    memcpy(head + 8, &in->deadline_ns, 8);
    memcpy(head + 16, in->request_id, 37);
    if (!in->ids)
        return wire_write(fd, WIRE_INVOKE, head, sizeof head, in->event, in->event_len, e);
    /* the ids with their NULs, so the worker uses them in place */
    uint32_t lens[2];
    struct iovec parts[2 + 2 * 2 + 1] = {{0}, {head, sizeof head}};
    int n = 2;
    n += put_str(parts + n, &lens[0], in->event_id, in->event_id ? strlen(in->event_id) + 1 : 0);
    n += put_str(parts + n, &lens[1], in->source, in->source ? strlen(in->source) + 1 : 0);
    parts[n++] = (struct iovec){.iov_base = (void *)in->event, .iov_len = in->event_len};
    return write_frame(fd, WIRE_INVOKE_IDS, parts, n, e);
}

/* A string sent with its NUL (or NULL): anything else is malformed. */
static const char *take_cstr(struct reader *r)
{
    size_t len;
    const char *s = take_str(r, &len);
    if (s && (len == 0 || s[len - 1] != '\0' || memchr(s, 0, len - 1)))
        r->bad = 1;
    return r->bad ? NULL : s;
}

int wire_decode_invoke(const struct wire_frame *f, struct wire_invoke *out, struct err *e)
{
    struct reader r = {.p = f->data, .left = f->len};
    take(&r, &out->step, 4);
    take(&r, &out->attempt, 4);
    take(&r, &out->deadline_ns, 8);
    take(&r, out->request_id, 37);
    out->ids = f->type == WIRE_INVOKE_IDS;
    out->event_id = out->ids ? take_cstr(&r) : NULL;
    out->source = out->ids ? take_cstr(&r) : NULL;
    if (r.bad || out->request_id[36] != '\0')
        return err_set(e, "protocol error: a malformed invoke frame");
    out->event = (const char *)r.p;
    out->event_len = r.left;
    return 0;
}

int wire_send_result(int fd, const struct wire_result *res, struct err *e)
{
    unsigned char head[4 + 4 + 8 + 8 + 8];
    memcpy(head, &res->status, 4);
    memcpy(head + 4, &res->status_code, 4);
    memcpy(head + 8, &res->init_ms, 8);
    memcpy(head + 16, &res->duration_ms, 8);
    memcpy(head + 24, &res->max_rss_kb, 8);
    uint32_t lens[4];
    struct iovec parts[2 + 4 * 2] = {{0}, {head, sizeof head}};
    int n = 2;
    n += put_str(parts + n, &lens[0], res->body, res->body_len);
    n += put_str(parts + n, &lens[1], res->error_type, res->error_type_len);
    n += put_str(parts + n, &lens[2], res->error, res->error_len);
    n += put_str(parts + n, &lens[3], res->stack, res->stack_len);
    return write_frame(fd, WIRE_RESULT, parts, n, e);
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
