/* thumb_util.c - helpers of the thumbnail plugin (see thumb_util.h). */
#include "thumb_util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *url_decode(const char *key)
{
    size_t n = strlen(key);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (key[i] == '+') {
            *o++ = ' ';
        } else if (key[i] == '%' && i + 2 < n && (hi = hexval(key[i + 1])) >= 0 &&
                   (lo = hexval(key[i + 2])) >= 0 && (hi | lo) != 0) {
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *o++ = key[i];
        }
    }
    *o = '\0';
    return out;
}

int relative_path_safe(const char *p)
{
    if (!p || !*p || *p == '/')
        return 0;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += len;
        if (*p == '/')
            p++;
        if (!*p && p[-1] == '/')
            return 0;
    }
    return 1;
}

int mkdirs(const char *p, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(p);
    if (len == 0 || len >= sizeof buf) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, p, len + 1);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

char *path_under(const char *folder, const char *name)
{
    char cwd[PATH_MAX];
    const char *base = "";
    if (folder[0] != '/') {
        if (!getcwd(cwd, sizeof cwd))
            return NULL;
        base = cwd;
    }
    size_t flen = strlen(folder);
    while (flen > 1 && folder[flen - 1] == '/')
        flen--;
    if (flen == 1 && folder[0] == '.')
        flen = 0;
    size_t len = strlen(base) + 1 + flen + 1 + strlen(name) + 1;
    if (len > PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    char *out = malloc(len);
    if (!out)
        return NULL;
    int n; /* len fits all three; checking n keeps gcc -O0 from guessing otherwise */
    if (*base && flen)
        n = snprintf(out, len, "%s/%.*s/%s", base, (int)flen, folder, name);
    else if (*base)
        n = snprintf(out, len, "%s/%s", base, name);
    else
        n = snprintf(out, len, "%.*s/%s", (int)flen, folder, name);
    if (n < 0 || (size_t)n >= len) {
        free(out);
        errno = ENAMETOOLONG;
        return NULL;
    }
    return out;
}
