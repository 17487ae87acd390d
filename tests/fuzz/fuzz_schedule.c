/* fuzz_schedule.c - schedule expressions (schedule.c) from hostile text:
 * parsing must fail cleanly or give a schedule whose next firing comes
 * strictly after the instant asked about. The input is an expression; its
 * first byte also picks the instant (and, when odd, a time zone). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 512)
        return 0;
    char *expr = malloc(size);
    if (!expr)
        return 0;
    memcpy(expr, data + 1, size - 1);
    expr[size - 1] = '\0';
    const char *zone = data[0] & 1 ? "America/New_York" : NULL;
    struct schedule *s = NULL;
    struct err e;
    if (schedule_parse(expr, zone, &s, &e) == 0) {
        int64_t after = 1796521200000LL + (int64_t)data[0] * 86400000LL * 37, next;
        if (schedule_next(s, after, after - 1000, &next) == 0 && next <= after)
            abort(); /* a next firing that is not after the instant is a bug */
        schedule_free(&s);
    } else if (s || !e.msg[0]) {
        abort(); /* a failure leaves no schedule and says why */
    }
    free(expr);
    return 0;
}
