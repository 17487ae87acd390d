/* sq_json.h - a growing buffer of JSON text, in which the sqlite plugin
 * writes its rows. */
#ifndef SQ_JSON_H
#define SQ_JSON_H

#include <stddef.h>
#include <stdint.h>

struct jbuf {
    char *p;
    size_t len, cap;
    int oom;                    /* set once an allocation failed; later appends are no-ops */
};

void jb_free(struct jbuf *b);
void jb_raw(struct jbuf *b, const char *s, size_t n);
void jb_str(struct jbuf *b, const char *s);                 /* raw text, NUL-terminated */
/* A JSON string of n bytes of s; bytes that are not valid UTF-8 become
 * U+FFFD, so the result is always valid JSON. */
void jb_string(struct jbuf *b, const char *s, size_t n);
void jb_int(struct jbuf *b, int64_t v);
/* An integer as a JSON number when a double holds it exactly (|v| <= 2^53 - 1),
 * else as a JSON string of its digits: sluice, JavaScript and most JSON
 * libraries read numbers as doubles and would silently change the value. */
void jb_int_exact(struct jbuf *b, int64_t v);
/* A finite double as the shortest text that reads back the same; NaN and
 * infinities, which JSON cannot hold, as null. */
void jb_double(struct jbuf *b, double v);
/* Bytes as a base64 JSON string. */
void jb_base64(struct jbuf *b, const unsigned char *s, size_t n);

#endif
