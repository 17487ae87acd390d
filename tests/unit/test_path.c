/* test_path.c - unit tests for path helpers (core/path.c): path_inside on
 * lexical forms ("." and ".." parts, doubled and trailing slashes) and on
 * real folders reached through a symlink. */
#include "path.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    CHECK(path_inside("/nowhere/in", "/nowhere/in") == 2);
    CHECK(path_inside("/nowhere/in/", "/nowhere//in") == 2);
    CHECK(path_inside("/nowhere/in/./done", "/nowhere/in") == 1);
    CHECK(path_inside("/nowhere/in/x/../done", "/nowhere/in") == 1);
    CHECK(path_inside("/nowhere/in/../out", "/nowhere/in") == 0);
    CHECK(path_inside("/nowhere/inbox", "/nowhere/in") == 0);
    CHECK(path_inside("/nowhere/in/..", "/nowhere/in") == 0);
    CHECK(path_inside("/../nowhere/in", "/nowhere/in") == 2);
    CHECK(path_inside("rel/in/done", "rel/in") == 1);
    CHECK(path_inside("../rel/in", "../rel/x/../in") == 2);
    CHECK(path_inside("../in", "in") == 0);
    CHECK(path_inside("/anything", "/") == 1);

    char dir[] = "/tmp/sluice-path-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char real[128], link[128], via[160];
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    snprintf(via, sizeof via, "%s/link/sub", dir);
    CHECK(mkdir(real, 0700) == 0);
    CHECK(symlink(real, link) == 0);
    CHECK(path_inside(link, real) == 2);
    CHECK(path_inside(via, real) == 1);
    unlink(link);
    rmdir(real);
    rmdir(dir);
    return test_summary();
}
