/* test_runner.c - unit tests for the runner's retry waits: the back-off
 * sequence, max_interval_ms as a cap, and no overflow (undefined behaviour
 * before) when max_interval_ms is 0, which pipeline files allow, and the
 * interval and rate are large. */
#include "runner.h"

#include "test.h"

#include "pipeline.h"

static void test_backoff_sequence(void)
{
    struct retry r = {.max_attempts = 4, .interval_ms = 200, .backoff_rate = 2.0};
    CHECK(runner_retry_wait_ms(&r, 0) == 200);
    CHECK(runner_retry_wait_ms(&r, 1) == 400);
    CHECK(runner_retry_wait_ms(&r, 2) == 800);
}

static void test_max_interval_caps(void)
{
    struct retry r = {.interval_ms = 1000, .backoff_rate = 3.0, .max_interval_ms = 5000};
    CHECK(runner_retry_wait_ms(&r, 1) == 3000);
    CHECK(runner_retry_wait_ms(&r, 2) == 5000);
    CHECK(runner_retry_wait_ms(&r, 50) == 5000);
}

static void test_no_cap_does_not_overflow(void)
{
    /* the largest values pipeline.c allows: 1 h, times 10 each retry */
    struct retry r = {.interval_ms = 3600000, .backoff_rate = 10.0, .max_interval_ms = 0};
    CHECK(runner_retry_wait_ms(&r, 0) == 3600000);
    CHECK(runner_retry_wait_ms(&r, 1) == 36000000); /* 10 h */
    CHECK(runner_retry_wait_ms(&r, 2) == 86400000); /* 100 h: the day's cap */
    CHECK(runner_retry_wait_ms(&r, 99) == 86400000);
    struct retry zero = {.interval_ms = 0, .backoff_rate = 10.0};
    CHECK(runner_retry_wait_ms(&zero, 99) == 0);
}

int main(void)
{
    test_backoff_sequence();
    test_max_interval_caps();
    test_no_cap_does_not_overflow();
    return test_summary();
}
