/* clock.c - time sources and the timestamp format (see clock.h). */
#include "clock.h"

#include <stdio.h>
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

void clock_iso8601(int64_t wall_ms, char out[32])
{
    int64_t ms = wall_ms % 1000;
    time_t secs = (time_t)(wall_ms / 1000);
    if (ms < 0) { /* C division truncates toward zero; times before 1970 need the floor */
        ms += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* tm_year is bounded for any ms an int64 clock gives today; the check
     * only quiets the compiler's worst case */
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
    if (n >= 32)
        out[31] = '\0';
}
