/* thumb_util.h - small helpers of the thumbnail plugin that need no libvips:
 * S3 key decoding, safe relative paths, folders. */
#ifndef THUMB_UTIL_H
#define THUMB_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* An S3 object key decoded as S3 encodes it (%XX, '+' for space); a new
 * string, NULL when out of memory. Invalid escapes, and %00 (which would cut
 * the name short), are kept as they are. */
char *url_decode(const char *key);

/* 1 if p is a relative path whose parts are all real names: not empty, not
 * absolute, no "", "." or ".." part. */
int relative_path_safe(const char *p);

/* mkdir -p: create p and its missing parents with mode. 0 or -1 (errno). */
int mkdirs(const char *p, mode_t mode);

/* folder/name as a new string, folder made absolute against the working
 * folder when relative. NULL on error (errno). */
char *path_under(const char *folder, const char *name);

#endif
