/* test_trust.c - unit tests for core/trust.c: the StrictModes-like check of
 * pipeline files, plugins and code folders. Runs in a folder under /tmp
 * (sticky 1777, which must be accepted), then opens up modes, owners and
 * symlinks one at a time and expects each to be refused with the path and
 * the fix. */
#include "trust.h"

#include "test.h"
#include "testutil.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_private_group(gid_t gid, uid_t owner)
{
    struct passwd *pw = getpwuid(owner);
    struct group *gr = getgrgid(gid);
    if (!pw || !gr)
        return 0;
    if (!gr->gr_mem[0])
        return pw->pw_gid == gid;
    return !gr->gr_mem[1] && strcmp(gr->gr_mem[0], pw->pw_name) == 0;
}

int main(void)
{
    char *dir = tu_mkdtemp("trust");
    char *sub = tu_path(dir, "pipelines");
    char *file = tu_path(sub, "p.json");
    struct err e;
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(tu_write(file, "{}") == 0);
    chmod(file, 0644);
    chmod(dir, 0755);

    /* an ordinary layout under the sticky /tmp is trusted */
    CHECK(trust_check(file, &e) == 0);
    CHECK(trust_check(sub, &e) == 0);

    /* a file anyone can write */
    chmod(file, 0666);
    CHECK(trust_check(file, &e) < 0);
    CHECK_CONTAINS(e.msg, "the file is writable by other users");
    CHECK_CONTAINS(e.msg, "chmod o-w");
    CHECK_CONTAINS(e.msg, file);
    chmod(file, 0644);

    /* a folder on the way anyone can write (no sticky bit) */
    chmod(sub, 0777);
    CHECK(trust_check(file, &e) < 0);
    CHECK_CONTAINS(e.msg, "a folder on the way to");
    char fix[4200];
    snprintf(fix, sizeof fix, "chmod o-w %s", sub);
    CHECK_CONTAINS(e.msg, fix);
    /* with the sticky bit, as /tmp: accepted */
    chmod(sub, 01777);
    CHECK(trust_check(file, &e) == 0);
    chmod(sub, 0755);

    /* a symlink is judged by what it points to */
    char *open_dir = tu_path(dir, "open");
    char *real = tu_path(open_dir, "plugin.so");
    char *link = tu_path(sub, "plugin.so");
    CHECK(mkdir(open_dir, 0755) == 0);
    CHECK(tu_write(real, "x") == 0);
    chmod(real, 0644);
    CHECK(symlink(real, link) == 0);
    CHECK(trust_check(link, &e) == 0);
    chmod(open_dir, 0777);
    CHECK(trust_check(link, &e) < 0);
    CHECK_CONTAINS(e.msg, "resolves to");
    CHECK_CONTAINS(e.msg, real);
    chmod(open_dir, 0755);

    /* group-writable: only when the group holds no one but the owner */
    struct stat st;
    CHECK(stat(sub, &st) == 0);
    chmod(sub, 0775);
    if (is_private_group(st.st_gid, st.st_uid)) {
        CHECK(trust_check(file, &e) == 0);
    } else {
        CHECK(trust_check(file, &e) < 0);
        CHECK_CONTAINS(e.msg, "chmod g-w");
    }
    chmod(sub, 0755);

    /* owned by another user (needs root to set up) */
    if (geteuid() == 0) {
        CHECK(chown(file, 65534, 65534) == 0);
        CHECK(trust_check(file, &e) < 0);
        CHECK_CONTAINS(e.msg, "owned by uid 65534");
        CHECK_CONTAINS(e.msg, "chown root");
        CHECK(chown(file, 0, 0) == 0);
    }

    /* a missing file says so, as reading it would */
    char *missing = tu_path(dir, "missing.json");
    CHECK(trust_check(missing, &e) < 0);
    CHECK_CONTAINS(e.msg, "cannot read");

    tu_rm_rf(dir);
    free(missing);
    free(open_dir);
    free(real);
    free(link);
    free(file);
    free(sub);
    free(dir);
    return test_summary();
}
