/* json_text.h - strict checks on JSON text that the host's parsed views do
 * not offer: "exactly one value, nothing after it" (a command's stdout), the
 * names of an object's members (to reject unknown config keys), and UTF-8
 * clean-up for text that goes into a JSON string or an error message.
 *
 * The host's json_parse is lenient about text after the value and about
 * UTF-8, and the ABI has no way to list an object's keys, so these few
 * scanners live here rather than widening the plugin ABI.
 */
#ifndef SLUICE_EXEC_JSON_TEXT_H
#define SLUICE_EXEC_JSON_TEXT_H

#include <stddef.h>

/* IN text, len: bytes to check. OUT *where: byte offset of the first
 * problem, *what: a static description of it. Returns 0 when the text is
 * exactly one JSON value (RFC 8259, UTF-8) with optional white space around
 * it, -1 otherwise. */
int json_text_check(const char *text, size_t len, size_t *where, const char **what);

/* Calls fn for each member of the top-level object in text (valid JSON,
 * as the host hands config_json in), in document order: key is the name as
 * it appears between the quotes (escapes included), value the member's JSON
 * text. Stops and returns fn's value when it returns non-zero; returns 0
 * otherwise (also when text is not an object). */
typedef int (*json_member_fn)(const char *key, size_t key_len, const char *value,
                              size_t value_len, void *arg);
int json_text_members(const char *text, size_t len, json_member_fn fn, void *arg);

/* 1 when text holds only well-formed UTF-8 and no NUL byte, else 0. */
int utf8_valid(const char *text, size_t len);

/* Copies at most out_size - 1 bytes of in[0..len) into out as valid UTF-8,
 * NUL-terminated: invalid sequences and NUL bytes become U+FFFD (or '?' when
 * there is no room for it) and a multi-byte character is never cut in half.
 * Returns the length written. */
size_t utf8_clean(const char *in, size_t len, char *out, size_t out_size);

/* Bytes utf8_clean needs at most for len input bytes, NUL included. */
#define UTF8_CLEAN_SIZE(len) ((len) * 3 + 1)

#endif
