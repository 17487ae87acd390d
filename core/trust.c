/* trust.c - refusing code and config another user could have changed (see
 * trust.h). */
#include "trust.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Does group gid hold no one but owner? Its member list names only the
 * owner, or it is the owner's own primary group with no members. */
static bool private_group(gid_t gid, uid_t owner)
{
    char pbuf[4096], gbuf[16384];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    if (getpwuid_r(owner, &pw, pbuf, sizeof pbuf, &pwp) != 0 || !pwp)
        return false;
    if (getgrgid_r(gid, &gr, gbuf, sizeof gbuf, &grp) != 0 || !grp)
        return false;
    for (char **m = grp->gr_mem; *m; m++)
        if (strcmp(*m, pwp->pw_name) != 0)
            return false;
    return grp->gr_mem[0] ? true : pwp->pw_gid == gid;
}

static int check_one(const char *path, const struct stat *st, const char *target,
                     struct err *e)
{
    uid_t me = geteuid();
    bool dir = S_ISDIR(st->st_mode);
    bool self = strcmp(path, target) == 0;
    const char *who = self ? "the file is" : "a folder on the way to";
    char its[PATH_MAX + 32] = "";
    if (!self)
        snprintf(its, sizeof its, " %s,", target);
    if (st->st_uid != 0 && st->st_uid != me)
        return err_set(e, "refusing %s: %s%s owned by uid %u, who could change it (%s; fix: "
                       "chown root %s, or move it)", target, who, its, (unsigned)st->st_uid,
                       path, path);
    if ((st->st_mode & S_IWOTH) && !(dir && (st->st_mode & S_ISVTX)))
        return err_set(e, "refusing %s: %s%s writable by other users (%s, mode %04o; fix: "
                       "chmod o-w %s)", target, who, its, path,
                       (unsigned)(st->st_mode & 07777), path);
    if ((st->st_mode & S_IWGRP) && !(dir && (st->st_mode & S_ISVTX)) &&
        !private_group(st->st_gid, st->st_uid))
        return err_set(e, "refusing %s: %s%s writable by group %u, which has other members "
                       "(%s, mode %04o; fix: chmod g-w %s)", target, who, its,
                       (unsigned)st->st_gid, path, (unsigned)(st->st_mode & 07777), path);
    return 0;
}

int trust_check(const char *path, struct err *e)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return err_set(e, "cannot read %s: %s", path, strerror(errno));
    char walk[PATH_MAX];
    memcpy(walk, real, sizeof walk);
    for (;;) {
        struct stat st;
        if (stat(walk, &st) < 0)
            return err_set(e, "%s: %s", walk, strerror(errno));
        if (check_one(walk, &st, real, e) < 0) {
            if (strcmp(real, path) != 0)
                err_prefix(e, "%s (resolves to %s)", path, real);
            return -1;
        }
        if (strcmp(walk, "/") == 0)
            return 0;
        char *slash = strrchr(walk, '/');
        if (slash == walk)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}
