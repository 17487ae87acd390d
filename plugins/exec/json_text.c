/* json_text.c - strict JSON and UTF-8 scanners over raw text (see
 * json_text.h). The checker follows RFC 8259 and refuses what cJSON, the
 * host's parser, would refuse as well (unpaired UTF-16 surrogates, nesting
 * deeper than 1000), so text it accepts is text the host accepts. */
#include "json_text.h"

#include <string.h>

#define JSON_DEPTH_MAX 1000

struct scan {
    const unsigned char *start, *p, *end;
    const char *what;
};

static int fail(struct scan *s, const char *what)
{
    s->what = what;
    return -1;
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if none. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static int hex4(struct scan *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return fail(s, "a \\u escape needs four hexadecimal digits");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s->p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(s, "a \\u escape needs four hexadecimal digits");
        v = v * 16 + d;
    }
    s->p += 4;
    *out = v;
    return 0;
}

/* At the opening quote. */
static int scan_string(struct scan *s)
{
    s->p++;
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return fail(s, "a control character inside a string (it must be escaped)");
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                break;
            c = *s->p++;
            if (c == 'u') {
                unsigned u;
                if (hex4(s, &u) < 0)
                    return -1;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return fail(s, "an unpaired UTF-16 low surrogate in a \\u escape");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned low;
                    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                        return fail(s, "an unpaired UTF-16 high surrogate in a \\u escape");
                    s->p += 2;
                    if (hex4(s, &low) < 0)
                        return -1;
                    if (low < 0xDC00 || low > 0xDFFF)
                        return fail(s, "an unpaired UTF-16 high surrogate in a \\u escape");
                }
            } else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
                s->p--;
                return fail(s, "an invalid escape in a string");
            }
            continue;
        }
        size_t n = utf8_len(s->p, s->end);
        if (n == 0)
            return fail(s, "bytes that are not UTF-8 inside a string");
        s->p += n;
    }
    return fail(s, "a string that is never closed");
}

static int digits(struct scan *s)
{
    const unsigned char *from = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from ? 0 : fail(s, "a number with a digit missing");
}

static int scan_number(struct scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            return fail(s, "a number with a leading zero");
    } else if (digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (digits(s) < 0)
            return -1;
    }
    return 0;
}

static int scan_word(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "an unexpected character where a JSON value should start");
    s->p += n;
    return 0;
}

static int scan_value(struct scan *s, int depth);

/* At '{' or '['. */
static int scan_container(struct scan *s, int depth)
{
    if (depth >= JSON_DEPTH_MAX)
        return fail(s, "values nested more than 1000 deep");
    int object = *s->p == '{';
    unsigned char close = object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"')
                return fail(s, "an object member without a quoted name");
            if (scan_string(s) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return fail(s, "a missing ':' after an object member's name");
            s->p++;
        }
        if (scan_value(s, depth + 1) < 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return fail(s, object ? "an object that is never closed"
                                  : "an array that is never closed");
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        if (*s->p != ',')
            return fail(s, object ? "a missing ',' or '}' in an object"
                                  : "a missing ',' or ']' in an array");
        s->p++;
    }
}

static int scan_value(struct scan *s, int depth)
{
    skip_ws(s);
    if (s->p >= s->end)
        return fail(s, "the text ends where a JSON value should start");
    switch (*s->p) {
    case '{':
    case '[':
        return scan_container(s, depth);
    case '"':
        return scan_string(s);
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return fail(s, "an unexpected character where a JSON value should start");
    }
}

int json_text_check(const char *text, size_t len, size_t *where, const char **what)
{
    struct scan s = {.start = (const unsigned char *)text, .p = (const unsigned char *)text,
                     .end = (const unsigned char *)text + len};
    int rc = scan_value(&s, 0);
    if (rc == 0) {
        skip_ws(&s);
        if (s.p < s.end)
            rc = fail(&s, "more text after the JSON value (print exactly one value)");
    }
    if (rc < 0) {
        *where = (size_t)(s.p - s.start);
        *what = s.what;
    }
    return rc;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* At an opening quote of valid JSON: just past the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    p++;
    while (p < end && *p != '"')
        p += (*p == '\\' && p + 1 < end) ? 2 : 1;
    return p < end ? p + 1 : end;
}

/* At the start of a value of valid JSON: just past its end. */
static const char *skip_value(const char *p, const char *end)
{
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

int json_text_members(const char *text, size_t len, json_member_fn fn, void *arg)
{
    const char *p = text, *end = text + len;
    while (p < end && is_ws(*p))
        p++;
    if (p >= end || *p != '{')
        return 0;
    p++;
    for (;;) {
        while (p < end && is_ws(*p))
            p++;
        if (p >= end || *p != '"')
            return 0;
        const char *key = p + 1;
        p = skip_string(p, end);
        size_t key_len = (size_t)(p - 1 - key);
        while (p < end && is_ws(*p))
            p++;
        if (p >= end || *p != ':')
            return 0;
        p++;
        while (p < end && is_ws(*p))
            p++;
        if (p >= end)
            return 0;
        const char *value = p;
        p = skip_value(p, end);
        int rc = fn(key, key_len, value, (size_t)(p - value), arg);
        if (rc)
            return rc;
        while (p < end && is_ws(*p))
            p++;
        if (p >= end || *p != ',')
            return 0;
        p++;
    }
}

int utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = *p ? utf8_len(p, end) : 0;
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

size_t utf8_clean(const char *in, size_t len, char *out, size_t out_size)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    size_t o = 0;
    if (out_size == 0)
        return 0;
    while (p < end) {
        size_t n = *p ? utf8_len(p, end) : 0;
        const char *src = n ? (const char *)p : replacement;
        size_t w = n ? n : 3;
        if (o + w >= out_size) {
            if (!n && o + 1 < out_size) { /* no room for U+FFFD: a plain marker */
                out[o++] = '?';
                p++;
                continue;
            }
            break;
        }
        memcpy(out + o, src, w);
        o += w;
        p += n ? n : 1;
    }
    out[o] = '\0';
    return o;
}
