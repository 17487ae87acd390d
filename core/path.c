/* path.c - path helpers (see path.h). */
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    size_t at = la;
    if (la && a[la - 1] != '/')
        p[at++] = '/';
    memcpy(p + at, b, lb + 1);
    return p;
}

char *path_resolve(const char *base, const char *p)
{
    if (p[0] == '/' || !base)
        return strdup(p);
    if (strcmp(base, ".") == 0)
        return strdup(p);
    return path_join(base, p);
}

char *path_dirname(const char *p)
{
    const char *slash = strrchr(p, '/');
    if (!slash)
        return strdup(".");
    if (slash == p)
        return strdup("/");
    return strndup(p, (size_t)(slash - p));
}

int path_mkdirs(const char *p, unsigned mode, struct err *e)
{
    char *copy = strdup(p);
    if (!copy)
        return err_set(e, "out of memory");
    for (char *s = copy + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(copy, mode) < 0 && errno != EEXIST) {
            err_set(e, "cannot create folder %s: %s", copy, strerror(errno));
            free(copy);
            return -1;
        }
        *s = saved;
        if (!saved)
            break;
    }
    free(copy);
    struct stat st;
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, "%s exists but is not a folder", p);
    return 0;
}

int path_read_file(const char *p, char **out, size_t *len, struct err *e)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return err_set(e, "cannot read %s: %s", p, strerror(errno));
    char *buf = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (cap - used < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                fclose(f);
                return err_set(e, "cannot read %s: out of memory", p);
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + used, 1, cap - used - 1, f);
        used += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err_set(e, "cannot read %s: I/O error", p);
    }
    buf[used] = '\0';
    *out = buf;
    if (len)
        *len = used;
    return 0;
}

int path_write_atomic(const char *dir, const char *name, const char *data, size_t len,
                      struct err *e)
{
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(e, "cannot create %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err_set(e, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    int synced = fsync(fd);
    if (close(fd) < 0 || synced < 0) {
        err_set(e, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, dst) < 0) {
        err_set(e, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Lexical form of an absolute-or-relative path: no "." or empty parts, ".."
 * taken against the part before it (not past the root), no trailing "/". */
static char *path_lexical(const char *p)
{
    char *out = malloc(strlen(p) + 2);
    if (!out)
        return NULL;
    bool absolute = p[0] == '/';
    size_t base = absolute ? 1 : 0; /* out[0, base) is the root's "/" */
    size_t n = base, keep = base;   /* out[0, keep) is "../.." that stays */
    out[0] = '/';
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *end = strchrnul(s, '/');
        size_t part = (size_t)(end - s);
        bool dotdot = part == 2 && s[0] == '.' && s[1] == '.';
        if (dotdot && n > keep) {
            while (n > keep && out[n - 1] != '/')
                n--;
            if (n > base)
                n--;
        } else if (part > 0 && !(part == 1 && s[0] == '.') && !(dotdot && absolute)) {
            if (n > base)
                out[n++] = '/';
            memcpy(out + n, s, part);
            n += part;
            if (dotdot)
                keep = n;
        }
        s = end;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
    return out;
}

/* The lexical path with its longest existing prefix replaced by that
 * prefix's real path (symlinks resolved), so a folder not created yet still
 * compares right against one reached through a symlink. */
static char *path_best(const char *p)
{
    char *lex = path_lexical(p);
    if (!lex)
        return NULL;
    size_t cut = strlen(lex);
    for (;;) {
        char saved = lex[cut];
        lex[cut] = '\0';
        char *real = realpath(cut ? lex : "/", NULL);
        lex[cut] = saved;
        if (real) {
            char *out = lex[cut] ? path_join(real, lex + cut + 1) : strdup(real);
            free(real);
            free(lex);
            return out;
        }
        char *slash = cut ? memrchr(lex, '/', cut) : NULL;
        if (!slash)
            return lex; /* nothing of it exists (relative, from a missing folder) */
        cut = (size_t)(slash - lex);
    }
}

int path_inside(const char *p, const char *root)
{
    char *a = path_best(p), *b = path_best(root);
    int rc = -1;
    if (a && b) {
        size_t n = strlen(b);
        rc = strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/' || strcmp(b, "/") == 0)
             ? (a[n] == '\0' ? 2 : 1) : 0;
    }
    free(a);
    free(b);
    return rc;
}
