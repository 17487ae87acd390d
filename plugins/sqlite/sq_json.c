/* sq_json.c - JSON text output for the sqlite plugin (see sq_json.h). */
#include "sq_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_free(struct jbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int reserve(struct jbuf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void jb_raw(struct jbuf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jb_str(struct jbuf *b, const char *s)
{
    jb_raw(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void jb_string(struct jbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    jb_raw(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jb_raw(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                              : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (named) {
                jb_raw(b, named, 2);
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                jb_raw(b, esc, 6);
            }
            i++;
        } else {
            size_t len = utf8_len(s + i, n - i);
            if (len == 0) {
                jb_raw(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                jb_raw(b, (const char *)s + i, len);
                i += len;
            }
        }
    }
    jb_raw(b, "\"", 1);
}

void jb_int(struct jbuf *b, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    jb_raw(b, buf, (size_t)n);
}

void jb_int_exact(struct jbuf *b, int64_t v)
{
    const int64_t max_exact = 9007199254740991LL; /* 2^53 - 1 */
    if (v >= -max_exact && v <= max_exact) {
        jb_int(b, v);
        return;
    }
    jb_raw(b, "\"", 1);
    jb_int(b, v);
    jb_raw(b, "\"", 1);
}

void jb_double(struct jbuf *b, double v)
{
    if (!isfinite(v)) {
        jb_raw(b, "null", 4);
        return;
    }
    char buf[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* "%g" may print "1e+20" (valid JSON) or "5" for 5.0 (an integer-looking
     * number: still the same value). */
    jb_raw(b, buf, (size_t)n);
}

void jb_base64(struct jbuf *b, const unsigned char *s, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    jb_raw(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char out[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63],
                       i + 1 < n ? tbl[v >> 6 & 63] : '=', i + 2 < n ? tbl[v & 63] : '='};
        jb_raw(b, out, 4);
    }
    jb_raw(b, "\"", 1);
}
