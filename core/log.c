/* log.c - stderr logging for the daemon (see log.h). One fprintf per line,
 * so lines from different threads do not interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "clock.h"

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level min)
{
    min_level = min;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (level < min_level)
        return;
    char when[32], msg[2048];
    clock_iso8601(clock_wall_ms(), when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s sluice %s: %s\n", when, names[level], msg);
}
