/* test_uuid_clock.c - unit tests for UUIDv7 request ids (core/uuid.c) and
 * the clocks and timestamp format (core/clock.c): the canonical form,
 * version and variant bits, uniqueness, the timestamp prefix (ordered, and
 * the wall clock's), and known answers for clock_iso8601. */
#include "clock.h"
#include "uuid.h"

#include "test.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N_IDS = 1000 };

static int is_canonical(const char *u)
{
    if (strlen(u) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)u[i]) || isupper((unsigned char)u[i])) {
            return 0;
        }
    }
    return 1;
}

/* The 48-bit millisecond timestamp in the first 12 hex digits. */
static uint64_t uuid_ms(const char *u)
{
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return strtoull(hex, NULL, 16);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_uuid(void)
{
    static char ids[N_IDS][UUID_STR_LEN];
    int64_t before = clock_wall_ms();
    int bad = 0, version = 0, variant = 0, ordered = 1;
    for (int i = 0; i < N_IDS; i++) {
        memset(ids[i], 'Z', UUID_STR_LEN);
        if (uuid_v7(ids[i]) != 0)
            bad++;
        if (ids[i][36] != '\0' || !is_canonical(ids[i]))
            bad++;
        version += ids[i][14] == '7';
        variant += strchr("89ab", ids[i][19]) != NULL && ids[i][19] != '\0';
        if (i > 0 && uuid_ms(ids[i]) < uuid_ms(ids[i - 1]))
            ordered = 0;
    }
    int64_t after = clock_wall_ms();
    CHECK(bad == 0);
    CHECK(version == N_IDS);  /* version nibble 7 */
    CHECK(variant == N_IDS);  /* variant 10xx */
    CHECK(ordered);           /* the timestamp prefix never goes back */
    /* the prefix is the wall clock in ms */
    CHECK((int64_t)uuid_ms(ids[0]) >= before && (int64_t)uuid_ms(ids[0]) <= after);
    CHECK((int64_t)uuid_ms(ids[N_IDS - 1]) >= before &&
          (int64_t)uuid_ms(ids[N_IDS - 1]) <= after);
    /* unique */
    qsort(ids, N_IDS, UUID_STR_LEN, cmp_str);
    int dups = 0;
    for (int i = 1; i < N_IDS; i++)
        dups += strcmp(ids[i], ids[i - 1]) == 0;
    CHECK(dups == 0);
    /* the random part does vary: not all ids share their last 12 digits */
    int same_tail = 0;
    for (int i = 1; i < N_IDS; i++)
        same_tail += strcmp(ids[i] + 24, ids[0] + 24) == 0;
    CHECK(same_tail < 2);

    /* ids made in later milliseconds sort after earlier ones as text */
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    CHECK(uuid_v7(a) == 0);
    struct timespec ts = {0, 3 * 1000000L};
    nanosleep(&ts, NULL);
    CHECK(uuid_v7(b) == 0);
    CHECK(uuid_ms(a) < uuid_ms(b));
    CHECK(strcmp(a, b) < 0);
}

static void test_iso8601(void)
{
    char out[32];
    memset(out, 'Z', sizeof out);
    clock_iso8601(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    CHECK(strlen(out) == 24);
    clock_iso8601(1, out);
    CHECK_STR(out, "1970-01-01T00:00:00.001Z");
    clock_iso8601(999, out);
    CHECK_STR(out, "1970-01-01T00:00:00.999Z");
    clock_iso8601(1234567890123, out);
    CHECK_STR(out, "2009-02-13T23:31:30.123Z");
    clock_iso8601(951782400000, out); /* a leap day */
    CHECK_STR(out, "2000-02-29T00:00:00.000Z");
    clock_iso8601(1795426200123, out);
    CHECK_STR(out, "2026-11-23T09:30:00.123Z");
    clock_iso8601(253402300799999, out);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
    /* before the epoch (a file's mtime can be): still a well-formed time */
    clock_iso8601(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    clock_iso8601(-1500, out);
    CHECK_STR(out, "1969-12-31T23:59:58.500Z");
    /* the per-thread cache of the seconds: the same second twice, then the
     * next one, then back to an earlier one */
    clock_iso8601(1234567890123, out);
    clock_iso8601(1234567890999, out);
    CHECK_STR(out, "2009-02-13T23:31:30.999Z");
    clock_iso8601(1234567891000, out);
    CHECK_STR(out, "2009-02-13T23:31:31.000Z");
    clock_iso8601(1234567890007, out);
    CHECK_STR(out, "2009-02-13T23:31:30.007Z");
    /* text order is time order for the same width */
    char x[32], y[32];
    clock_iso8601(1700000000000, x);
    clock_iso8601(1700000000001, y);
    CHECK(strcmp(x, y) < 0);
}

static void test_clocks(void)
{
    int64_t w = clock_wall_ms();
    CHECK(w > 1577836800000LL); /* after 2020 */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t sys = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    CHECK(sys - w >= 0 && sys - w < 1000);
    int64_t m1 = clock_mono_ns();
    struct timespec nap = {0, 2 * 1000000L};
    nanosleep(&nap, NULL);
    int64_t m2 = clock_mono_ns();
    CHECK(m2 - m1 >= 2 * 1000000LL);
    CHECK(m2 - m1 < 2 * 1000000000LL);
}

int main(void)
{
    test_uuid();
    test_iso8601();
    test_clocks();
    return test_summary();
}
