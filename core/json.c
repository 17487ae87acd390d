/* json.c - strict parsing and UTF-8 checks (see json.h). The checker
 * follows RFC 8259 and refuses what cJSON would refuse as well (unpaired
 * UTF-16 surrogates, nesting deeper than 1000), so text it accepts cJSON
 * parses; it came from the exec plugin, which had to write it itself when
 * the host's parser was lenient. */
#include "json.h"

#include <stdbool.h>
#include <string.h>

#include "utf8.h"

cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at)
{
    const char *nul = memchr(text, 0, len);
    if (nul) {
        *error_at = (size_t)(nul - text);
        return NULL;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        *error_at = end ? (size_t)(end - text) : 0;
        return NULL;
    }
    while (end < text + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != text + len) {
        *error_at = (size_t)(end - text);
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* utf8_sequence_len, except that a NUL byte is not a character here: the
 * texts go on as C strings. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    return n > 0 && s[0] == 0 ? 0 : utf8_sequence_len(s, n);
}

size_t json_utf8_clean(const char *in, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(s + i, len - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

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
        size_t n = utf8_seq(s->p, (size_t)(s->end - s->p));
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

bool json_check(const char *text, size_t len, size_t *where, const char **what)
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
        if (what)
            *what = s.what;
    }
    return rc == 0;
}

cJSON *json_parse_strict(const char *text, size_t len, size_t *error_at, const char **what)
{
    if (!json_check(text, len, error_at, what))
        return NULL;
    cJSON *v = json_parse_exact(text, len, error_at);
    if (!v && what) /* the checker and cJSON disagree: cJSON ran out of memory */
        *what = "out of memory";
    return v;
}
