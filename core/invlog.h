/* invlog.h - the invocation log: one invocations row per handler attempt,
 * and the lines handlers log through their context, both written by the
 * writer thread in group commits. */
#ifndef SLUICE_INVLOG_H
#define SLUICE_INVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "status.h"

struct writer;

struct invocation {
    const char *request_id;
    const char *event_id;
    const char *pipeline;
    const char *step;
    const char *handler;
    const char *source;
    int attempt;
    int64_t started_ms;         /* wall clock */
    double duration_ms;
    double init_ms;             /* < 0: not a cold start */
    enum inv_status status;
    int status_code;
    const char *error;          /* NULL if none */
    size_t input_bytes;
    size_t output_bytes;
    const char *plugin_version;
    int64_t max_memory_kb;      /* < 0: unknown (thread isolation) */
};

const char *invlog_status_name(enum inv_status s);

/* Queue the row (strings copied). */
int invlog_record(struct writer *w, const struct invocation *inv, struct err *e);
/* Queue a handler log line. */
int invlog_line(struct writer *w, const char *request_id, const char *pipeline,
                const char *step, int level, const char *message, struct err *e);

#endif
