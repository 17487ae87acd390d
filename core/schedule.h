/* schedule.h - EventBridge schedule expressions: rate(...) and cron(...).
 *
 * Pure functions over explicit times (the caller's clock, a fake one in
 * tests): parse an expression, and find the first firing strictly after a
 * given instant. Syntax and semantics are EventBridge's:
 *
 *   rate(VALUE UNIT)   UNIT minute(s), hour(s), day(s), and second(s) for
 *                      local use (EventBridge has no seconds); singular with 1
 *   cron(MIN HOUR DOM MONTH DOW YEAR)   six fields, , - * / everywhere, ? in
 *                      exactly one of DOM and DOW, L and W in DOM (L, LW,
 *                      15W), L and # in DOW (6L, 2#1), names JAN-DEC, SUN-SAT
 *                      (1 = SUN), years 1970-2199
 *
 * cron is in UTC unless a timezone (a TZ database name) is given; then its
 * fields are local wall-clock times: a time skipped when clocks go forward
 * does not fire, a time repeated when they go back fires once (as
 * EventBridge Scheduler). A rate counts from an anchor: a previous firing.
 */
#ifndef SLUICE_SCHEDULE_H
#define SLUICE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* The last year a cron expression may name (EventBridge's). */
#define SCHEDULE_YEAR_MAX 2199

struct schedule;

/* Parse expr (and check zone, a TZ database name, NULL for UTC). On error
 * e says what is wrong and how to write it. */
int schedule_parse(const char *expr, const char *zone, struct schedule **out, struct err *e);
void schedule_free(struct schedule **s);

bool schedule_is_rate(const struct schedule *s);
/* A rate's period in ms (0 for cron). */
int64_t schedule_period_ms(const struct schedule *s);

/* The first firing strictly after after_ms (ms since the epoch, UTC). A
 * rate fires at anchor_ms + k * period. Returns 0 and *next_ms, or -1 when
 * there is none (a cron whose years are over). */
int schedule_next(const struct schedule *s, int64_t after_ms, int64_t anchor_ms,
                  int64_t *next_ms);

/* "2026-12-06T01:40:00.000Z" (clock_iso8601's form) or without the
 * fraction, back to ms since the epoch; -1 if it is not that form. */
int64_t schedule_parse_iso(const char *text);

#endif
