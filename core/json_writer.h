/* json_writer.h - JSON text written as it goes, without a tree: the
 * sl_writer plugins answer large responses with (sl_host.writer_begin).
 *
 * The writer tracks where it is (top level, in an array, in an object before
 * a key or after one), puts the commas and colons, and refuses what would
 * make invalid JSON. The first failure sticks: every later call returns -1
 * and does nothing, so a caller may check only the end.
 */
#ifndef SLUICE_JSON_WRITER_H
#define SLUICE_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define JW_MAX_DEPTH 512

struct json_writer {
    char *buf;
    size_t len, cap;
    bool failed;
    bool done;                  /* one whole value was written */
    bool after_key;             /* in an object: a value is due */
    int depth;
    char open[JW_MAX_DEPTH];    /* '{' or '[' */
    size_t count[JW_MAX_DEPTH]; /* members written at each depth */
};

void jw_init(struct json_writer *w);
void jw_release(struct json_writer *w);
/* The text, once exactly one value is complete; the caller owns it. NULL
 * (and the writer released) otherwise. */
char *jw_take(struct json_writer *w, size_t *len);

int jw_object(struct json_writer *w);
int jw_array(struct json_writer *w);
int jw_close(struct json_writer *w);
int jw_key(struct json_writer *w, const char *key, size_t len);
int jw_string(struct json_writer *w, const char *s, size_t len);
int jw_number(struct json_writer *w, double v);
int jw_int(struct json_writer *w, int64_t v);
int jw_bool(struct json_writer *w, bool b);
int jw_null(struct json_writer *w);
/* A value already valid JSON text (the caller checked). */
int jw_raw_value(struct json_writer *w, const char *json, size_t len);

#endif
