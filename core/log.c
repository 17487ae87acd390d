/* log.c - stderr logging for the daemon (see log.h). One fprintf per line,
 * so lines from different threads do not interleave.
 *
 * Messages carry names from outside (topics, file names, pipeline names):
 * every control character is escaped, so a newline cannot forge a second
 * line and an ANSI escape cannot repaint the operator's terminal; bytes
 * that are not UTF-8 are escaped too, so every line is valid UTF-8. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "utf8.h"

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level min)
{
    min_level = min;
}

static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\\': return "\\\\";
    default: return NULL;
    }
}

size_t log_escape(const char *in, char *out, size_t cap)
{
    size_t n = 0, left = strlen(in);
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        char buf[5];
        const char *rep = short_escape(*p);
        size_t len = 1, take = 1;
        if (!rep && (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8_sequence_len(p, left)))) {
            snprintf(buf, sizeof buf, "\\x%02x", *p);
            rep = buf;
        } else if (!rep && *p >= 0x80) {
            take = len = utf8_sequence_len(p, left); /* a character, kept whole */
        }
        if (rep)
            len = strlen(rep);
        if (n + len >= cap)
            break; /* whole escapes and characters only */
        memcpy(out + n, rep ? rep : (const char *)p, len);
        n += len;
        p += take;
        left -= take;
    }
    out[n] = '\0';
    return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (level < min_level)
        return;
    char when[32], msg[2048], safe[4096];
    clock_iso8601(clock_wall_ms(), when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_escape(msg, safe, sizeof safe);
    fprintf(stderr, "%s sluice %s: %s\n", when, names[level], safe);
}
