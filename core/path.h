/* path.h - file-system path helpers: joining, resolving relative paths
 * against the config's folder, creating folders, reading whole files. */
#ifndef SLUICE_PATH_H
#define SLUICE_PATH_H

#include <stddef.h>

#include "err.h"

/* "a" + "/" + "b" as a new string; NULL on out of memory. */
char *path_join(const char *a, const char *b);
/* p if absolute, else base/p, as a new string (not normalised). */
char *path_resolve(const char *base, const char *p);
/* The folder part of p as a new string ("." if none). */
char *path_dirname(const char *p);
/* mkdir -p with the given mode for created folders. */
int path_mkdirs(const char *p, unsigned mode, struct err *e);
/* Read a whole file into a NUL-terminated buffer. */
int path_read_file(const char *p, char **out, size_t *len, struct err *e);
/* Write data to dir/name atomically: a hidden temp file, fsync, rename. */
int path_write_atomic(const char *dir, const char *name, const char *data, size_t len,
                      struct err *e);

/* Is p root itself (2), a path below it (1), or neither (0)? Both are
 * compared as real paths when they exist, else lexically ("a/./b/.." is
 * "a"). -1 when out of memory. */
int path_inside(const char *p, const char *root);

#endif
