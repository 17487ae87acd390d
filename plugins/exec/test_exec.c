/* test_exec.c - known-answer tests for the exec plugin's parts that need no
 * daemon: exec_run itself (pipes, deadline, output bound, stderr ring,
 * EPIPE). The strict JSON checker it once had is the host's now
 * (tests/unit/test_host.c).
 * Built and registered by plugins/exec/CMakeLists.txt as unit.plugin_exec. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_run.h"

extern char **environ;

static int failures;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)


static struct exec_result run(const char *const *argv, const char *input, size_t max_stdout,
                              int timeout_ms, int *rc)
{
    struct exec_spec spec = {
        .argv = (char *const *)argv,
        .envp = environ,
        .input = input,
        .input_len = input ? strlen(input) : 0,
        .max_stdout = max_stdout,
        .deadline_ns = exec_now_ns() + (int64_t)timeout_ms * 1000000,
    };
    struct exec_result r;
    char err[512];
    *rc = exec_run(&spec, &r, err, sizeof err);
    if (*rc < 0)
        fprintf(stderr, "exec_run: %s\n", err);
    return r;
}

static void test_run(void)
{
    int rc;
    /* stdin to stdout, and an exit status. */
    const char *const cat[] = {"/bin/sh", "-c", "cat; echo oops >&2; exit 4", NULL};
    struct exec_result r = run(cat, "{\"a\":1}", 1 << 20, 5000, &rc);
    CHECK(rc == 0 && r.end == EXEC_EXITED && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 4);
    CHECK(r.out_len == 7 && strcmp(r.out, "{\"a\":1}") == 0);
    char tail[EXEC_STDERR_TAIL];
    CHECK(exec_stderr_tail(&r, tail) == 5 && memcmp(tail, "oops\n", 5) == 0);
    exec_result_release(&r);

    /* 4 MiB through both pipes at once. */
    size_t big = 4u << 20;
    char *input = malloc(big + 1);
    CHECK(input != NULL);
    if (input) {
        memset(input, 'x', big);
        input[big] = '\0';
        const char *const cat2[] = {"/bin/cat", NULL};
        r = run(cat2, input, big, 20000, &rc);
        CHECK(rc == 0 && r.end == EXEC_EXITED && r.out_len == big && !r.stdin_short);
        exec_result_release(&r);
        /* A command that reads nothing: EPIPE, no SIGPIPE (we would die). */
        const char *const no_read[] = {"/bin/true", NULL};
        r = run(no_read, input, 100, 5000, &rc);
        CHECK(rc == 0 && r.end == EXEC_EXITED && WEXITSTATUS(r.status) == 0 && r.stdin_short);
        exec_result_release(&r);
        sigset_t pending;
        sigpending(&pending);
        CHECK(!sigismember(&pending, SIGPIPE));
        free(input);
    }

    /* The deadline kills the whole group, background job included. */
    const char *const hang[] = {"/bin/sh", "-c", "sleep 30 & echo $!; wait", NULL};
    int64_t t0 = exec_now_ns();
    r = run(hang, NULL, 1000, 300, &rc);
    int64_t ms = (exec_now_ns() - t0) / 1000000;
    CHECK(rc == 0 && r.end == EXEC_TIMED_OUT && WIFSIGNALED(r.status));
    CHECK(ms >= 290 && ms < 2000);
    pid_t bg = (pid_t)atoi(r.out);
    CHECK(bg > 0);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) { /* reparented to init: wait for its end */
        char path[64], state = 0;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)bg);
        FILE *f = fopen(path, "r");
        if (!f || fscanf(f, "%*d (%*[^)]) %c", &state) != 1 || state == 'Z')
            gone = 1;
        if (f)
            fclose(f);
        if (!gone)
            usleep(10000);
    }
    CHECK(gone);
    exec_result_release(&r);

    /* Output past the bound is cut short. */
    const char *const yes[] = {"/usr/bin/yes", NULL};
    r = run(yes, NULL, 100000, 5000, &rc);
    CHECK(rc == 0 && r.end == EXEC_TOO_MUCH_OUTPUT && r.out_len == 100001);
    exec_result_release(&r);

    /* The stderr ring keeps the last 2 KiB, in order. */
    const char *const noisy[] = {"/bin/sh", "-c",
                                 "i=0; while [ $i -lt 700 ]; do printf '%04d\\n' $i >&2; "
                                 "i=$((i+1)); done", NULL};
    r = run(noisy, NULL, 100, 5000, &rc);
    CHECK(rc == 0 && r.err_total == 3500);
    size_t n = exec_stderr_tail(&r, tail);
    CHECK(n == EXEC_STDERR_TAIL);
    CHECK(memcmp(tail + n - 5, "0699\n", 5) == 0);
    CHECK(memcmp(tail + n - 10, "0698\n", 5) == 0);
    exec_result_release(&r);

    /* A background job holding stdout open does not hold the call. */
    const char *const linger[] = {"/bin/sh", "-c", "sleep 1 & echo '{}'", NULL};
    t0 = exec_now_ns();
    r = run(linger, NULL, 100, 5000, &rc);
    ms = (exec_now_ns() - t0) / 1000000;
    CHECK(rc == 0 && r.end == EXEC_EXITED && r.lingering && ms < 1000);
    CHECK(strcmp(r.out, "{}\n") == 0);
    exec_result_release(&r);

    /* A program that does not exist. */
    const char *const missing[] = {"/nonexistent/program", NULL};
    r = run(missing, NULL, 100, 5000, &rc);
    CHECK(rc < 0);
    exec_result_release(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* as in a worker process: a stray SIGPIPE kills us */
    test_run();
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("all exec checks passed\n");
    return failures ? 1 : 0;
}
