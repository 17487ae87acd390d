/* worker_exe.c - `sluice-worker`, the small program that C workers run
 * (worker.h). It is worker_main (worker_main.c) and only what that reaches:
 * the wire protocol, the loader, the host table, executor_call. So it links
 * libc, cJSON and libseccomp, not the daemon's ZeroMQ, SQLite and
 * libmicrohttpd with their ~30 shared libraries, which the dynamic loader
 * would otherwise open, map and relocate at every cold start (several ms;
 * docs/isolation.md#3). Its command line is the same as `sluice worker`'s:
 * `sluice-worker worker PIPELINE`.
 *
 * executor.c also holds the daemon's executor_run, which names the process
 * executor (worker.c) and the invocation log (invlog.c). A worker never calls
 * executor_run, so instead of linking the daemon this file stands in for
 * those three functions, with versions that fail and say why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "invlog.h"
#include "worker.h"

bool worker_needed(const struct pipeline *p, const struct step *s)
{
    (void)p;
    (void)s;
    return true; /* so a stray executor_run reaches the refusal below */
}

void worker_run_attempt(struct exec_slot *slot, struct writer *w, struct attempt *a)
{
    (void)slot;
    (void)w;
    a->status = INV_CRASHED;
    a->error_type = strdup("Runtime.ExitError");
    a->error = strdup("sluice-worker runs invocations, it does not start workers");
}

int invlog_line(struct writer *w, const char *request_id, const char *pipeline,
                const char *step, int level, const char *message, struct err *e)
{
    (void)w;
    (void)request_id;
    (void)pipeline;
    (void)step;
    (void)level;
    (void)message;
    return err_set(e, "sluice-worker has no invocation log: its log lines go over the socket");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "worker") != 0) {
        fprintf(stderr, "usage: sluice-worker worker PIPELINE\n\nThe process behind a "
                "process-isolated pipeline, started by `sluice run`, not by hand.\n");
        return 2;
    }
    return worker_main(argc - 1, argv + 1);
}
