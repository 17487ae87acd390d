/* json.h - strict JSON on top of cJSON: exactly one value in the given bytes
 * (whitespace around it allowed), valid UTF-8, no NUL bytes, nothing after.
 * (cJSON's own length-limited parser either accepts trailing garbage or,
 * asked not to, refuses every buffer that is not followed by a NUL, and it
 * does not look at UTF-8.) Plugins get the same parser through the host. */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* The parsed value, or NULL with *error_at set to the byte offset where
 * parsing stopped. Does not check UTF-8 (see json_parse_strict). */
cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at);

/* true when text is exactly one JSON value as RFC 8259 has it (numbers
 * without leading zeros, no control characters in strings, UTF-8, paired
 * surrogates, at most 1000 deep) with white space around it; else false,
 * *where the byte offset of the problem and *what (if not NULL) a static
 * description of it ("a number with a leading zero"). */
bool json_check(const char *text, size_t len, size_t *where, const char **what);

/* json_check, then cJSON's parse: the one parser sluice hands plugins and
 * uses for what they hand back. what may be NULL. */
cJSON *json_parse_strict(const char *text, size_t len, size_t *error_at, const char **what);

/* Copy in[0..len) to out as well-formed UTF-8: a bad sequence or a NUL byte
 * becomes U+FFFD. out must hold 3 * len + 1 bytes; returns the length
 * written (out is NUL-terminated). */
size_t json_utf8_clean(const char *in, size_t len, char *out);

#endif
