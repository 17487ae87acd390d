/* utf8.h - UTF-8 validation for text that enters the journal from outside
 * (ZeroMQ topics and payloads): a destination record or batch field built
 * from invalid UTF-8 would be invalid JSON, so such input is refused at the
 * door instead. */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Otherwise false, with the offset of
 * the first bad byte in *bad_at (if not NULL). */
bool utf8_valid(const void *s, size_t len, size_t *bad_at);

/* The length of the well-formed sequence at s (at most n bytes): 1 to 4,
 * or 0 if the bytes there are not UTF-8. */
size_t utf8_sequence_len(const void *s, size_t n);

/* The same for one named field of a message: false with "the WHAT is not
 * valid UTF-8 (byte N of M)" in reason when it is not. */
bool utf8_field_ok(const char *what, const void *s, size_t len, char *reason, size_t cap);

#endif
