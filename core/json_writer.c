/* json_writer.c - the streaming JSON writer (see json_writer.h). */
#include "json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void jw_init(struct json_writer *w)
{
    memset(w, 0, sizeof *w);
}

void jw_release(struct json_writer *w)
{
    free(w->buf);
    jw_init(w);
}

char *jw_take(struct json_writer *w, size_t *len)
{
    if (w->failed || !w->done || w->depth != 0) {
        jw_release(w);
        return NULL;
    }
    char *text = w->buf;
    *len = w->len;
    w->buf = NULL;
    jw_release(w);
    return text;
}

static int fail(struct json_writer *w)
{
    w->failed = true;
    return -1;
}

static int put(struct json_writer *w, const char *s, size_t n)
{
    if (w->failed)
        return -1;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b)
            return fail(w);
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
    return 0;
}

/* Where a value may go: at the top once, in an array, after a key. */
static int before_value(struct json_writer *w)
{
    if (w->failed)
        return -1;
    if (w->depth == 0)
        return w->done ? fail(w) : 0;
    if (w->open[w->depth - 1] == '{') {
        if (!w->after_key)
            return fail(w);
        w->after_key = false;
        return 0;
    }
    return w->count[w->depth - 1]++ ? put(w, ",", 1) : 0;
}

static void after_value(struct json_writer *w)
{
    if (w->depth == 0)
        w->done = true;
}

static int open_container(struct json_writer *w, char c)
{
    if (before_value(w) < 0 || w->depth == JW_MAX_DEPTH)
        return fail(w);
    w->open[w->depth] = c;
    w->count[w->depth] = 0;
    w->depth++;
    return put(w, &c, 1);
}

int jw_object(struct json_writer *w) { return open_container(w, '{'); }
int jw_array(struct json_writer *w) { return open_container(w, '['); }

int jw_close(struct json_writer *w)
{
    if (w->failed || w->depth == 0 || w->after_key)
        return fail(w);
    char c = w->open[--w->depth] == '{' ? '}' : ']';
    if (put(w, &c, 1) < 0)
        return -1;
    after_value(w);
    return 0;
}

/* A JSON string: escaped, bad UTF-8 and NUL bytes as U+FFFD. */
static int put_string(struct json_writer *w, const char *s, size_t n)
{
    char *clean = malloc(3 * n + 1);
    if (!clean)
        return fail(w);
    size_t m = json_utf8_clean(s, n, clean);
    int rc = put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; rc == 0 && i < m; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (c == '\r')
            snprintf(esc, sizeof esc, "\\r");
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        rc = put(w, clean + run, i - run);
        if (rc == 0)
            rc = put(w, esc, strlen(esc));
        run = i + 1;
    }
    if (rc == 0)
        rc = put(w, clean + run, m - run);
    free(clean);
    return rc == 0 ? put(w, "\"", 1) : -1;
}

int jw_key(struct json_writer *w, const char *key, size_t len)
{
    if (w->failed || w->depth == 0 || w->open[w->depth - 1] != '{' || w->after_key || !key)
        return fail(w);
    if (w->count[w->depth - 1]++ && put(w, ",", 1) < 0)
        return -1;
    if (put_string(w, key, len) < 0 || put(w, ":", 1) < 0)
        return -1;
    w->after_key = true;
    return 0;
}

static int value_text(struct json_writer *w, const char *text, size_t n)
{
    if (before_value(w) < 0 || put(w, text, n) < 0)
        return -1;
    after_value(w);
    return 0;
}

int jw_string(struct json_writer *w, const char *s, size_t len)
{
    if (!s)
        return fail(w);
    if (before_value(w) < 0 || put_string(w, s, len) < 0)
        return -1;
    after_value(w);
    return 0;
}

int jw_number(struct json_writer *w, double v)
{
    char num[32];
    if (!isfinite(v))
        return value_text(w, "null", 4);
    snprintf(num, sizeof num, "%.15g", v);
    if (strtod(num, NULL) != v) /* the shortest text that reads back the same */
        snprintf(num, sizeof num, "%.17g", v);
    return value_text(w, num, strlen(num));
}

int jw_int(struct json_writer *w, int64_t v)
{
    char num[32];
    const int64_t exact = ((int64_t)1 << 53) - 1;
    if (v >= -exact && v <= exact)
        snprintf(num, sizeof num, "%lld", (long long)v);
    else
        snprintf(num, sizeof num, "\"%lld\"", (long long)v);
    return value_text(w, num, strlen(num));
}

int jw_bool(struct json_writer *w, bool b)
{
    return b ? value_text(w, "true", 4) : value_text(w, "false", 5);
}

int jw_null(struct json_writer *w)
{
    return value_text(w, "null", 4);
}

int jw_raw_value(struct json_writer *w, const char *json, size_t len)
{
    return value_text(w, json, len);
}
