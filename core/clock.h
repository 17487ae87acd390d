/* clock.h - wall-clock and monotonic time, and the ISO-8601 form the
 * database stores (UTC, millisecond precision). */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_wall_ms(void);    /* milliseconds since the Unix epoch */
int64_t clock_mono_ns(void);    /* CLOCK_MONOTONIC, nanoseconds */
/* Format ms since the epoch as "2026-11-23T09:30:00.123Z" (24 chars + NUL). */
void clock_iso8601(int64_t wall_ms, char out[32]);

#endif
