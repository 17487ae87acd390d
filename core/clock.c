/* clock.c - time sources and the timestamp format (see clock.h). */
#include "clock.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The date and time to the second change once a second: each thread keeps
 * the last one formatted and only writes the milliseconds (this runs for
 * every journal row, invocation row and log line). */
void clock_iso8601(int64_t wall_ms, char out[32])
{
    static _Thread_local int64_t cached_secs = INT64_MIN;
    static _Thread_local char cached[32];
    int64_t ms = wall_ms % 1000;
    int64_t secs = wall_ms / 1000;
    if (ms < 0) { /* C division truncates toward zero; times before 1970 need the floor */
        ms += 1000;
        secs--;
    }
    if (secs != cached_secs) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        /* tm_year is bounded for any ms an int64 clock gives today; the check
         * only quiets the compiler's worst case */
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n < 0 || n > 24)
            n = 0; /* years past 9999: not a date sluice meets */
        cached[n] = '\0';
        cached_secs = secs;
    }
    size_t n = strlen(cached);
    memcpy(out, cached, n);
    out[n] = (char)('0' + ms / 100);
    out[n + 1] = (char)('0' + ms / 10 % 10);
    out[n + 2] = (char)('0' + ms % 10);
    out[n + 3] = 'Z';
    out[n + 4] = '\0';
}
