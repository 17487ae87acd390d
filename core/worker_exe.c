/* worker_exe.c - `sluice-worker`, the small program that C workers run
 * (worker.h). It is worker_main (worker_main.c) and only what that reaches:
 * the wire protocol, the loader, the host table, executor_call. So it links
 * libc, cJSON and libseccomp, not the daemon's ZeroMQ, SQLite and
 * libmicrohttpd with their ~30 shared libraries, which the dynamic loader
 * would otherwise open, map and relocate at every cold start (several ms;
 * docs/isolation.md#3). Its command line is the same as `sluice worker`'s:
 * `sluice-worker worker PIPELINE`.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "worker") != 0) {
        fprintf(stderr, "usage: sluice-worker worker PIPELINE\n\nThe process behind a "
                "process-isolated pipeline, started by `sluice run`, not by hand.\n");
        return 2;
    }
    return worker_main(argc - 1, argv + 1);
}
