/* test_statelock.c - unit tests for the state folder lock
 * (core/statelock.c): a second taker is refused with the holder's pid in
 * the message (flock locks are per open file, so this works in one
 * process), and the lock can be taken again once released. */
#include "statelock.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/sluice-statelock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct statelock *first = NULL, *second = NULL;
    struct err e;
    CHECK(statelock_take(dir, &first, &e) == 0);
    CHECK(first != NULL);
    CHECK(statelock_take(dir, &second, &e) < 0);
    CHECK(second == NULL);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK_CONTAINS(e.msg, pid);
    CHECK_CONTAINS(e.msg, dir);
    statelock_release(&first);
    CHECK(first == NULL);
    CHECK(statelock_take(dir, &second, &e) == 0);
    statelock_release(&second);
    statelock_release(&second); /* NULL is fine */
    char path[128];
    snprintf(path, sizeof path, "%s/sluice.lock", dir);
    unlink(path);
    rmdir(dir);
    return test_summary();
}
