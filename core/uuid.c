/* uuid.c - UUIDv7 generation (see uuid.h). */
#include "uuid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"

/* Random bytes come from a per-thread pool refilled 4 KiB at a time: one
 * getrandom call per ~400 ids instead of one each. */
static int random_bytes(uint8_t *out, size_t n)
{
    static _Thread_local uint8_t pool[4096];
    static _Thread_local size_t left;
    if (left < n) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
            return -1;
        left = sizeof pool;
    }
    memcpy(out, pool + sizeof pool - left, n);
    left -= n;
    return 0;
}

int uuid_v7(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    if (random_bytes(b + 6, 10) < 0)
        return -1;
    uint64_t ms = (uint64_t)clock_wall_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (8 * (5 - i)));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    /* hex by table: this runs for every event and every invocation */
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0x0f];
    }
    *o = '\0';
    return 0;
}
