/* test_exec.c - known-answer tests for the exec plugin's parts that need no
 * daemon: the strict JSON checker, the member scanner, UTF-8 clean-up, and
 * exec_run itself (pipes, deadline, output bound, stderr ring, EPIPE).
 * Built and registered by plugins/exec/CMakeLists.txt as unit.plugin_exec. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_run.h"
#include "json_text.h"

extern char **environ;

static int failures;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

static int valid(const char *s)
{
    size_t where;
    const char *what;
    return json_text_check(s, strlen(s), &where, &what) == 0;
}

static size_t bad_at(const char *s)
{
    size_t where = (size_t)-1;
    const char *what = NULL;
    if (json_text_check(s, strlen(s), &where, &what) == 0)
        return (size_t)-1;
    return what ? where : (size_t)-2;
}

static void test_check(void)
{
    static const char *const ok[] = {
        "0", "-0", "1.5e10", "-12.25E-3", "true", "false", "null", "\"\"", " {} ", "[]",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\\\"\"}", "\"na\xc3\xafve \xf0\x9f\x98\x80\"",
        "\"\\ud83d\\ude00\"", "\n\t[ 1 , 2 ]\r\n", "\"\\/\\b\\f\\r\\t\"",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!valid(ok[i]))
            fprintf(stderr, "should be valid: %s\n", ok[i]);
        CHECK(valid(ok[i]));
    }
    static const struct {
        const char *text;
        size_t at;
    } bad[] = {
        {"", 0},        {"1 2", 2},       {"{\"a\":1}{", 7},  {"01", 1},       {"1.", 2},
        {"1e", 2},      {"-", 1},         {"+1", 0},          {"tru", 0},      {"[1,]", 3},
        {"{\"a\"}", 4}, {"{a:1}", 1},     {"\"a\x01\"", 2},   {"\"\\x\"", 2},  {"\"abc", 4},
        {"\"\xff\"", 1}, {"\"\xc0\xaf\"", 1}, {"\"\xed\xa0\x80\"", 1}, {"\"\\ude00\"", 7},
        {"\"\\ud83d\"", 7}, {"[1 2]", 3},  {"hello world", 0}, {"{\"a\":1,}", 7}, {"\"\\u12\"", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = bad_at(bad[i].text);
        if (at != bad[i].at)
            fprintf(stderr, "bad JSON %zu: want an error at %zu, got %zu\n", i, bad[i].at, at);
        CHECK(at == bad[i].at);
    }
    /* Depth: 1000 levels pass (as cJSON's limit), 1001 do not. */
    char deep[2 * 1001 + 1];
    for (int depth = 1000; depth <= 1001; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        CHECK(valid(deep) == (depth == 1000));
    }
}

struct seen {
    char keys[8][32];
    char values[8][64];
    int n;
};

static int collect(const char *key, size_t key_len, const char *value, size_t value_len,
                   void *arg)
{
    struct seen *s = arg;
    if (s->n >= 8)
        return -1;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)key_len, key);
    snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int)value_len, value);
    s->n++;
    return 0;
}

static void test_members(void)
{
    const char *text = "{\"command\":[\"a\",\"}\"],\"env\":{\"X\":\"1\",\"Y\":\"\\\"\"},"
                       " \"n\" : -1.5 ,\"s\":\"x,y\",\"t\":true}";
    struct seen s = {0};
    CHECK(json_text_members(text, strlen(text), collect, &s) == 0);
    CHECK(s.n == 5);
    CHECK(strcmp(s.keys[0], "command") == 0 && strcmp(s.values[0], "[\"a\",\"}\"]") == 0);
    CHECK(strcmp(s.keys[1], "env") == 0 &&
          strcmp(s.values[1], "{\"X\":\"1\",\"Y\":\"\\\"\"}") == 0);
    CHECK(strcmp(s.keys[2], "n") == 0 && strcmp(s.values[2], "-1.5") == 0);
    CHECK(strcmp(s.keys[3], "s") == 0 && strcmp(s.values[3], "\"x,y\"") == 0);
    CHECK(strcmp(s.keys[4], "t") == 0 && strcmp(s.values[4], "true") == 0);
    struct seen none = {0};
    CHECK(json_text_members("[1,2]", 5, collect, &none) == 0 && none.n == 0);
    CHECK(json_text_members("{}", 2, collect, &none) == 0 && none.n == 0);
}

static void test_utf8(void)
{
    char out[64];
    CHECK(utf8_valid("caf\xc3\xa9", 5));
    CHECK(!utf8_valid("caf\xe9", 4));
    CHECK(!utf8_valid("a\0b", 3));
    size_t n = utf8_clean("caf\xe9!", 5, out, sizeof out);
    CHECK(n == 7 && strcmp(out, "caf\xef\xbf\xbd!") == 0);
    n = utf8_clean("a\0b", 3, out, sizeof out);
    CHECK(n == 5 && memcmp(out, "a\xef\xbf\xbd" "b", 5) == 0);
    /* Never half a character: "é" does not fit in 2 bytes with the NUL. */
    n = utf8_clean("a\xc3\xa9", 3, out, 3);
    CHECK(n == 1 && strcmp(out, "a") == 0);
}

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
    test_check();
    test_members();
    test_utf8();
    test_run();
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("all exec checks passed\n");
    return failures ? 1 : 0;
}
