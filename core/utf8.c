/* utf8.c - UTF-8 validation (see utf8.h), after the table in RFC 3629 §4. */
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>

size_t utf8_sequence_len(const void *s, size_t n)
{
    const uint8_t *p = s;
    if (n == 0)
        return 0;
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

bool utf8_valid(const void *s, size_t len, size_t *bad_at)
{
    const uint8_t *p = s;
    size_t at = 0;
    while (at < len) {
        size_t n = utf8_sequence_len(p + at, len - at);
        if (!n) {
            if (bad_at)
                *bad_at = at;
            return false;
        }
        at += n;
    }
    return true;
}

bool utf8_field_ok(const char *what, const void *s, size_t len, char *reason, size_t cap)
{
    size_t at;
    if (utf8_valid(s, len, &at))
        return true;
    snprintf(reason, cap, "the %s is not valid UTF-8 (byte %zu of %zu)", what, at, len);
    return false;
}
