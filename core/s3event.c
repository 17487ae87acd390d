/* s3event.c - builds S3-notification-shaped events (see s3event.h). */
#include "s3event.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

bool s3event_ignored_name(const char *name)
{
    static const char *const suffixes[] = {".tmp", ".temp", ".part", ".partial", ".swp", ".swx",
                                           ".crdownload", ".download", ".filepart", "~"};
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.' || (name[0] == '#' && name[n - 1] == '#'))
        return true;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static const char HEX[] = "0123456789ABCDEF";

/* The percent-encoding of key at o; returns the end. At most 3 bytes per
 * byte of key. */
static char *put_url(char *o, const char *key)
{
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~' || *c == '/') {
            *o++ = (char)*c;
        } else if (*c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = HEX[*c >> 4];
            *o++ = HEX[*c & 15];
        }
    }
    return o;
}

char *s3event_url_encode(const char *key)
{
    char *out = malloc(strlen(key) * 3 + 1);
    if (out)
        *put_url(out, key) = '\0';
    return out;
}

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* The event is written straight into one buffer, as cJSON_PrintUnformatted
 * would print it (same keys, order and escapes), without building a tree:
 * this runs on the event loop for every file. */

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

/* Most bytes one input byte can take in a string: a control character
 * becomes \u00XX. */
#define ESCAPED_MAX 6

/* s as the inside of a JSON string, escaped as cJSON escapes. With clean,
 * bytes that are not valid UTF-8 become U+FFFD (so the JSON stays valid;
 * the URL-encoded key keeps the exact bytes); without, they are copied. */
static char *put_text(char *o, const char *s, bool clean)
{
    static const char lower_hex[] = "0123456789abcdef";
    const unsigned char *c = (const unsigned char *)s;
    while (*c) {
        if (*c >= 0x80) {
            size_t n = clean ? utf8_seq(c) : 1;
            if (n == 0) {
                o = PUT_LIT(o, "\xef\xbf\xbd");
                c++;
            } else {
                o = put(o, (const char *)c, n);
                c += n;
            }
            continue;
        }
        switch (*c) {
        case '"': o = PUT_LIT(o, "\\\""); break;
        case '\\': o = PUT_LIT(o, "\\\\"); break;
        case '\b': o = PUT_LIT(o, "\\b"); break;
        case '\f': o = PUT_LIT(o, "\\f"); break;
        case '\n': o = PUT_LIT(o, "\\n"); break;
        case '\r': o = PUT_LIT(o, "\\r"); break;
        case '\t': o = PUT_LIT(o, "\\t"); break;
        default:
            if (*c < 32) {
                o = PUT_LIT(o, "\\u00");
                *o++ = lower_hex[*c >> 4];
                *o++ = lower_hex[*c & 15];
            } else {
                *o++ = (char)*c;
            }
        }
        c++;
    }
    return o;
}

/* Decimal digits of v at o; returns the end (at most 20 bytes). */
static char *put_u64(char *o, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = digits[--n];
    return o;
}

static char *put_i64(char *o, int64_t v)
{
    if (v >= 0)
        return put_u64(o, (uint64_t)v);
    *o++ = '-';
    return put_u64(o, (uint64_t)0 - (uint64_t)v);
}

/* cJSON's test that a printed number reads back as the same double. */
static bool same_double(double a, double b)
{
    double max = a > b ? a : b, diff = a > b ? a - b : b - a;
    return diff <= max * DBL_EPSILON;
}

/* The size as cJSON prints the double it would hold: every size below
 * 10^15 is its exact decimal; past that, cJSON's %1.15g or %1.17g. At most
 * 32 bytes. */
static char *put_size(char *o, uint64_t size)
{
    if (size < 1000000000000000ULL)
        return put_u64(o, size);
    char num[32];
    double d = (double)size, back;
    int n = snprintf(num, sizeof num, "%1.15g", d);
    if (sscanf(num, "%lg", &back) != 1 || !same_double(back, d))
        n = snprintf(num, sizeof num, "%1.17g", d);
    return put(o, num, n > 0 && (size_t)n < sizeof num ? (size_t)n : 0);
}

/* 16 upper-case hex digits of v. */
static char *put_hex16(char *o, uint64_t v)
{
    for (int shift = 60; shift >= 0; shift -= 4)
        *o++ = HEX[(v >> shift) & 15];
    return o;
}

char *s3event_json(const struct file_event *f)
{
    size_t pipeline = strlen(f->pipeline), bucket = strlen(f->bucket), key = strlen(f->key),
           path = strlen(f->path);
    /* an upper bound: the text below, 32 for each number and the time */
    size_t cap = 512 + ESCAPED_MAX * (pipeline + 2 * bucket + path) + 3 * key;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    char when[32];
    clock_iso8601(f->event_ms, when);
    char *o = out;
    o = PUT_LIT(o, "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"sluice:directory\","
                   "\"awsRegion\":\"local\",\"eventTime\":\"");
    o = put_text(o, when, false);
    o = PUT_LIT(o, "\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"");
    o = put_text(o, f->bucket, true);
    o = PUT_LIT(o, "\",\"arn\":\"arn:sluice:s3:::");
    o = put_text(o, f->bucket, true);
    o = PUT_LIT(o, "\"},\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"");
    o = put_text(o, f->pipeline, false);
    o = PUT_LIT(o, "\",\"object\":{\"key\":\"");
    o = put_url(o, f->key);
    o = PUT_LIT(o, "\",\"size\":");
    o = put_size(o, f->size);
    o = PUT_LIT(o, ",\"sequencer\":\"");
    o = put_hex16(o, (uint64_t)f->mtime_ns);
    o = PUT_LIT(o, "\",\"path\":\"");
    o = put_text(o, f->path, true);
    o = PUT_LIT(o, "\"}}}]}");
    *o = '\0';
    return out;
}

static bool utf8_valid(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_seq(c);
        if (n == 0)
            return false;
        c += n;
    }
    return true;
}

char *s3event_id(const struct file_event *f)
{
    /* the id goes into TEXT columns: a name that is not UTF-8 is kept
     * exactly, percent-encoded, rather than made invalid or lossy */
    bool valid = utf8_valid(f->path);
    size_t len = valid ? strlen(f->path) : 3 * strlen(f->path);
    char *id = malloc(len + 5 + 3 + 3 * 21);
    if (!id)
        return NULL;
    /* file:PATH@INODE:SIZE:MTIME_NS */
    char *o = PUT_LIT(id, "file:");
    o = valid ? put(o, f->path, len) : put_url(o, f->path);
    *o++ = '@';
    o = put_u64(o, f->inode);
    *o++ = ':';
    o = put_u64(o, f->size);
    *o++ = ':';
    o = put_i64(o, f->mtime_ns);
    *o = '\0';
    return id;
}
