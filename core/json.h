/* json.h - strict JSON parsing on top of cJSON: exactly one value in the
 * given bytes (whitespace around it allowed), no NUL bytes, nothing after.
 * (cJSON's own length-limited parser either accepts trailing garbage or,
 * asked not to, refuses every buffer that is not followed by a NUL.) */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The parsed value, or NULL with *error_at set to the byte offset where
 * parsing stopped. */
cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at);

#endif
