/* err.c - formatting of caller-owned error messages (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char prefix[512];
    char old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    int n = snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
    if (n >= (int)sizeof e->msg) /* keep the end readable when cut */
        memcpy(e->msg + sizeof e->msg - 4, "...", 4);
}
