/* capture.h - a C worker's stdout and stderr, captured per invocation.
 *
 * A C handler that prints would otherwise write straight into the daemon's
 * own output, unbounded and unattributed. The worker points fds 1 and 2 at
 * pipes instead; after each invocation it drains them into that
 * invocation's log lines (stdout at INFO, stderr at ERROR, as the Python and
 * Node runtimes do), at most CAPTURE_MAX_LINES lines, then one line saying
 * how much was cut. The pipes are large and their write ends non-blocking, so
 * a handler that prints more than they hold during one call loses the
 * excess instead of blocking until its timeout. A sanitizer's report (in a
 * sanitizer build) still goes to the original stderr, where the daemon's
 * own output is, not into a pipe nobody reads once the worker died.
 */
#ifndef SLUICE_CAPTURE_H
#define SLUICE_CAPTURE_H

#include <stddef.h>

#include "err.h"

#define CAPTURE_MAX_LINES 10000   /* per invocation, both streams together */
#define CAPTURE_LINE_MAX 16384    /* a longer line goes out in pieces */

struct capture {
    int rfd[2];                 /* read ends of stdout's and stderr's pipes */
    int diag;                   /* the original stderr, for sanitizer reports */
};

typedef void (*capture_line_fn)(void *arg, int level, const char *text, size_t len);

/* Point fds 1 and 2 at new pipes. */
int capture_start(struct capture *c, struct err *e);
/* Flush stdio and hand out what was written since the last drain. */
void capture_drain(struct capture *c, capture_line_fn line, void *arg);
void capture_stop(struct capture *c);

#endif
