/* wire.h - the framed protocol between the daemon and a worker process.
 *
 * A frame is an 8-byte header (u32 payload length, u32 type, both little-
 * endian as the host is) and the payload. The daemon trusts nothing a worker
 * sends: every frame is bounded and fully validated, and a bad one ends that
 * worker, never the daemon.
 *
 *   daemon -> worker   WIRE_INIT    JSON: {"pipeline", "steps": [{"name", "handler",
 *                                    "function", "path", "config"}]}
 *                      WIRE_INVOKE  step, attempt, deadline, request id, event
 *                      WIRE_INVOKE_IDS  the same, with event id and source before the
 *                                   event (C workers: the ABI 2 context carries them;
 *                                   the script runtimes read WIRE_INVOKE)
 *   worker -> daemon   WIRE_READY   ok flag, error text
 *                      WIRE_LOG     level, message (any number, before the result)
 *                      WIRE_RESULT  status, code, timings, peak memory, body, error,
 *                                   stack trace
 */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WIRE_MAX_FRAME (64u << 20) /* 64 MiB: the largest event or response */
/* The largest event a worker takes: a frame less room for its other fields. */
#define WIRE_MAX_EVENT (WIRE_MAX_FRAME - (64u << 10))
#define WIRE_LOG_MAX 16384

enum wire_type {
    WIRE_INIT = 1,
    WIRE_READY,
    WIRE_INVOKE,
    WIRE_LOG,
    WIRE_RESULT,
    WIRE_INVOKE_IDS,
};

/* A frame as wire_read hands it out: a view into its reader's buffer, valid
 * until the next wire_read on that reader or wire_reader_free. */
struct wire_frame {
    uint32_t type;
    uint32_t len;
    unsigned char *data;        /* len bytes plus a NUL */
};

/* The receiving end of one socket. It reads whatever has arrived, up to the
 * free room of its buffer, so a frame (header and payload) and any frames
 * behind it usually take one read() between them; a frame larger than the
 * buffer grows it, and the buffer shrinks back once that frame is done with. */
struct wire_reader {
    int fd;
    int exit_fd;                /* readable once the peer process exited (a pidfd); -1: none */
    unsigned char *buf;         /* cap bytes plus one for the NUL after a frame */
    size_t cap;
    size_t start, end;          /* bytes received but not yet handed out */
    size_t held_at;             /* the byte the NUL after the last frame replaced */
    unsigned char held;         /* its value */
    int holding;
};

struct wire_invoke {
    uint32_t step;
    uint32_t attempt;
    int64_t deadline_ns;        /* CLOCK_MONOTONIC, shared by both processes;
                                 * < 0: the timeout, counted by the worker from
                                 * when it takes the frame (one sent while the
                                 * worker still runs another: pipelining) */
    char request_id[37];
    bool ids;                   /* send WIRE_INVOKE_IDS (event_id, source) */
    const char *event_id;       /* NUL-terminated, NULL if none */
    const char *source;         /* NUL-terminated, NULL if none */
    const char *event;
    size_t event_len;
};

struct wire_result {
    uint32_t status;            /* enum inv_status */
    int32_t status_code;
    double init_ms;             /* < 0: warm */
    double duration_ms;
    int64_t max_rss_kb;
    const char *body;           /* JSON text or NULL */
    size_t body_len;
    const char *error_type;     /* NULL if none; not NUL-terminated when decoded */
    size_t error_type_len;
    const char *error;
    size_t error_len;
    const char *stack;          /* JSON array of strings (stackTrace) or NULL */
    size_t stack_len;
};

/* Blocking I/O on a socket. A frame goes out in one sendmsg (short writes and
 * EINTR are resumed), so the peer wakes once per frame. wire_read waits until
 * deadline_ns (CLOCK_MONOTONIC; 0: forever); returns 0, or -1 with e (EOF,
 * timeout, bad frame), and sets *timed_out when the deadline passed. */
int wire_write(int fd, uint32_t type, const void *a, size_t alen, const void *b, size_t blen,
               struct err *e);
void wire_reader_init(struct wire_reader *r, int fd);
void wire_reader_free(struct wire_reader *r);
/* Done with the last frame for now: a buffer grown for a large frame goes
 * back (wire_read does this too), so an idle worker or slot does not keep a
 * big event's memory (it would count against the worker's memory_mb). */
void wire_reader_idle(struct wire_reader *r);
int wire_read(struct wire_reader *r, int64_t deadline_ns, struct wire_frame *f, int *timed_out,
              struct err *e);
/* What wire_try_read's failures mean. */
enum wire_failure {
    WIRE_BROKEN = -1,           /* the peer broke the protocol (a bad frame) */
    WIRE_CLOSED = -2,           /* the peer closed the socket, or reading failed */
};
/* The same without waiting, for a socket watched by the loop: it reads what
 * has come (non-blocking) until a frame is whole: 1 and a frame, 0 if none
 * is whole yet, or a wire_failure with e. */
int wire_try_read(struct wire_reader *r, struct wire_frame *f, struct err *e);
/* Forget f (its bytes stay the reader's). */
void wire_frame_release(struct wire_frame *f);

/* Encoders send straight from the caller's fields (one sendmsg, no copy into
 * a buffer); decoders return views into the frame (no copies). */
int wire_send_invoke(int fd, const struct wire_invoke *in, struct err *e);
/* Either invoke frame (f->type says which). */
int wire_decode_invoke(const struct wire_frame *f, struct wire_invoke *out, struct err *e);
int wire_send_result(int fd, const struct wire_result *r, struct err *e);
int wire_decode_result(const struct wire_frame *f, struct wire_result *out, struct err *e);
int wire_decode_log(const struct wire_frame *f, int *level, const char **msg, struct err *e);

#endif
