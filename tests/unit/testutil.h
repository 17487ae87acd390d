/* testutil.h - file-system helpers shared by the unit tests: a private
 * temporary folder per test (tests run in parallel under ctest -j), writing
 * small files into it, and removing it again, all without fixed paths. */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"

/* A new folder /tmp/sluice-ut-NAME-XXXXXX; exits the test if that fails
 * (nothing else could run). The caller frees the string. */
static inline char *tu_mkdtemp(const char *name)
{
    const char *base = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/sluice-ut-%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return strdup(buf);
}

/* dir + "/" + name, formatted, into a new string. */
static inline char *tu_path(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline char *tu_path(const char *dir, const char *fmt, ...)
{
    char name[2048], buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return strdup(buf);
}

/* Write text to path (created or truncated). Returns 0 or -1. */
static inline int tu_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Write text to dir/name. Returns 0 or -1. */
static inline int tu_write_in(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, "%s", name);
    int rc = p ? tu_write(p, text) : -1;
    free(p);
    return rc;
}

static inline int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* rm -rf dir. A test that made a folder unreadable restores it first. */
static inline void tu_rm_rf(const char *dir)
{
    if (!dir)
        return;
    nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many problems in d contain needle. */
static inline size_t tu_diag_count(const struct diag *d, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->items[i].text, needle))
            n++;
    return n;
}

/* The first problem in d containing needle, or NULL. */
static inline const char *tu_diag_find(const struct diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->items[i].text, needle))
            return d->items[i].text;
    return NULL;
}

/* Print every problem (to read a failing test's context). */
static inline void tu_diag_dump(const char *what, const struct diag *d)
{
    fprintf(stderr, "-- %s: %d error(s), %d warning(s)\n", what, d->errors, d->warnings);
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "   %s\n", d->items[i].text);
}

#endif
