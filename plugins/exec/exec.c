/* exec.c - the exec plugin: run a command with the event on stdin and
 * answer with what it prints, so a script in any language can be a step.
 *
 * The step config names the command as an argv array (no shell unless
 * "shell": true). The event JSON goes to its stdin; its stdout, one JSON
 * value, becomes the response (or a JSON string with "stdout": "text"). A
 * non-zero exit, a signal, the step's deadline or too much output fails the
 * step with the tail of stderr in the message. The process work (spawn,
 * pipes, deadline, reaping) is in exec_run.c; this file turns config into a
 * spec and a result into a response or an error, and logs the run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sluice/handler.h>

#include "exec_run.h"
#include "json_text.h"

extern char **environ;

#define MAX_STDOUT_DEFAULT (16u << 20)
#define MAX_STDOUT_LIMIT (32u << 20) /* responses cross to the daemon in frames of 64 MiB */
/* The daemon keeps about 1200 characters of an error message, so the
 * message carries stderr's last KiB (its end is what explains a failure);
 * the last 2 KiB go to the logs table. */
#define ERROR_STDERR_MAX 1024
#define MSG_MAX 8192
#define ENV_NAME_MAX 255

/* The config keys, for the unknown-key check and its message. */
static const char *const known_keys[] = {"command", "shell", "env", "cwd", "stdout",
                                         "max_stdout_bytes", NULL};

/* The variables sluice sets itself; config "env" may not set them. */
static const char *const reserved_env[] = {"SLUICE_REQUEST_ID", "SLUICE_PIPELINE", "SLUICE_STEP",
                                           "SLUICE_FUNCTION", "SLUICE_ATTEMPT",
                                           "SLUICE_REMAINING_MS", NULL};

struct exec_config {
    char **argv;                /* malloc'd array; strings belong to the host's config view */
    int shell;                  /* argv is /bin/sh -c LINE */
    const char *cwd;
    const char *env_text;       /* the "env" object's JSON text inside config_json, or NULL */
    size_t env_len;
    const sl_json *env;
    int text;                   /* "stdout": "text" */
    size_t max_stdout;
};

static int fail(const sl_host *h, sl_response *res, const char *type, const char *message)
{
    h->fail(res, type, message);
    return 1;
}

static const char *type_name(int type)
{
    switch (type) {
    case SL_JSON_NULL: return "null";
    case SL_JSON_FALSE:
    case SL_JSON_TRUE: return "a boolean";
    case SL_JSON_NUMBER: return "a number";
    case SL_JSON_STRING: return "a string";
    case SL_JSON_ARRAY: return "an array";
    case SL_JSON_OBJECT: return "an object";
    default: return "nothing";
    }
}

static int key_is(const char *key, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(key, name, len) == 0;
}

struct key_check {
    struct exec_config *c;
    char *msg;
    size_t msglen;
};

/* Rejects unknown keys and remembers where "env" is in the text. */
static int check_key(const char *key, size_t len, const char *value, size_t value_len, void *arg)
{
    struct key_check *k = arg;
    for (size_t i = 0; known_keys[i]; i++) {
        if (key_is(key, len, known_keys[i])) {
            if (strcmp(known_keys[i], "env") == 0) {
                k->c->env_text = value;
                k->c->env_len = value_len;
            }
            return 0;
        }
    }
    snprintf(k->msg, k->msglen, "config key \"%.*s\" is not known to exec.handler; its keys "
             "are command, shell, env, cwd, stdout and max_stdout_bytes",
             (int)(len > 100 ? 100 : len), key);
    return -1;
}

static int env_name_ok(const char *name, size_t len)
{
    if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

struct env_check {
    const sl_host *h;
    const sl_json *env;
    char *msg;
    size_t msglen;
};

static int check_env_member(const char *key, size_t len, const char *value, size_t value_len,
                            void *arg)
{
    struct env_check *e = arg;
    (void)value;
    (void)value_len;
    int shown = (int)(len > 100 ? 100 : len);
    if (len > ENV_NAME_MAX) {
        snprintf(e->msg, e->msglen, "config.env: the name \"%.*s...\" is longer than %d "
                 "characters", shown, key, ENV_NAME_MAX);
        return -1;
    }
    if (!env_name_ok(key, len)) {
        snprintf(e->msg, e->msglen, "config.env: \"%.*s\" is not a usable variable name (use "
                 "letters, digits and _, not starting with a digit)", shown, key);
        return -1;
    }
    for (size_t i = 0; reserved_env[i]; i++) {
        if (key_is(key, len, reserved_env[i])) {
            snprintf(e->msg, e->msglen, "config.env: %s is set by sluice for every run and "
                     "cannot be overridden; use another name", reserved_env[i]);
            return -1;
        }
    }
    char pointer[ENV_NAME_MAX + 2];
    snprintf(pointer, sizeof pointer, "/%.*s", (int)len, key);
    const sl_json *v = e->h->json_get(e->env, pointer);
    if (e->h->json_type(v) != SL_JSON_STRING) {
        snprintf(e->msg, e->msglen, "config.env.%.*s must be a string, not %s (quote it: "
                 "\"%.*s\": \"...\")", shown, key, type_name(e->h->json_type(v)), shown, key);
        return -1;
    }
    return 0;
}

/* Reads and checks the step config. On failure writes what is wrong and how
 * to fix it into msg. */
static int parse_config(sl_context *ctx, struct exec_config *c, char *msg, size_t msglen)
{
    const sl_host *h = ctx->host;
    const sl_json *cfg = h->config(ctx);
    memset(c, 0, sizeof *c);
    c->max_stdout = MAX_STDOUT_DEFAULT;
    if (h->json_type(cfg) != SL_JSON_OBJECT) {
        snprintf(msg, msglen, "the step needs a \"config\" object with a \"command\", e.g. "
                 "\"config\": {\"command\": [\"/usr/bin/wc\", \"-c\"]}");
        return -1;
    }
    struct key_check k = {c, msg, msglen};
    if (json_text_members(ctx->config_json, ctx->config_len, check_key, &k) != 0)
        return -1;

    const sl_json *shell = h->json_get(cfg, "/shell");
    int st = h->json_type(shell);
    if (shell && st != SL_JSON_TRUE && st != SL_JSON_FALSE) {
        snprintf(msg, msglen, "config.shell must be true or false, not %s", type_name(st));
        return -1;
    }
    const sl_json *command = h->json_get(cfg, "/command");
    int ct = h->json_type(command);
    if (!command) {
        snprintf(msg, msglen, "the step's config needs \"command\", the program and its "
                 "arguments, e.g. \"config\": {\"command\": [\"/usr/bin/wc\", \"-c\"]}");
        return -1;
    }
    if (st == SL_JSON_TRUE) {
        const char *line = h->json_string(command);
        if (!line || !*line) {
            snprintf(msg, msglen, "config.command must be one non-empty string when \"shell\" is "
                     "true (it runs as /bin/sh -c COMMAND), not %s", type_name(ct));
            return -1;
        }
        c->argv = calloc(4, sizeof *c->argv);
        if (!c->argv)
            goto oom;
        c->shell = 1;
        c->argv[0] = "/bin/sh";
        c->argv[1] = "-c";
        c->argv[2] = (char *)line;
    } else {
        if (ct == SL_JSON_STRING) {
            snprintf(msg, msglen, "config.command is a string, but \"shell\" is not true: give "
                     "the program and its arguments as an array ([\"/usr/bin/wc\", \"-c\"]), or "
                     "set \"shell\": true to run the string with /bin/sh -c");
            return -1;
        }
        size_t n = h->json_size(command);
        if (ct != SL_JSON_ARRAY || n == 0) {
            snprintf(msg, msglen, "config.command must be a non-empty array of strings (the "
                     "program and its arguments, e.g. [\"/usr/bin/wc\", \"-c\"]), not %s",
                     ct == SL_JSON_ARRAY ? "an empty array" : type_name(ct));
            return -1;
        }
        c->argv = calloc(n + 1, sizeof *c->argv);
        if (!c->argv)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            const sl_json *a = h->json_at(command, i);
            const char *s = h->json_string(a);
            if (!s || (i == 0 && !*s)) {
                snprintf(msg, msglen, "config.command[%zu] must be a%s string, not %s (quote "
                         "every argument)", i, i == 0 ? " non-empty" : "",
                         s ? "an empty string" : type_name(h->json_type(a)));
                free(c->argv);
                c->argv = NULL;
                return -1;
            }
            c->argv[i] = (char *)s;
        }
    }

    const sl_json *cwd = h->json_get(cfg, "/cwd");
    if (cwd) {
        c->cwd = h->json_string(cwd);
        if (!c->cwd || !*c->cwd) {
            snprintf(msg, msglen, "config.cwd must be a folder's path, not %s",
                     c->cwd ? "an empty string" : type_name(h->json_type(cwd)));
            goto fail;
        }
        struct stat sb;
        int found = stat(c->cwd, &sb) == 0;
        if (!found || !S_ISDIR(sb.st_mode)) {
            snprintf(msg, msglen, "config.cwd \"%.1000s\": %s (relative paths start from the "
                     "daemon's working folder; an absolute path is safest)", c->cwd,
                     found ? "not a folder" : strerror(errno));
            goto fail;
        }
    }

    const sl_json *out = h->json_get(cfg, "/stdout");
    if (out) {
        const char *mode = h->json_string(out);
        if (mode && strcmp(mode, "text") == 0)
            c->text = 1;
        else if (!mode || strcmp(mode, "json") != 0) {
            snprintf(msg, msglen, "config.stdout must be \"json\" (stdout is one JSON value, the "
                     "default) or \"text\" (stdout becomes a JSON string)");
            goto fail;
        }
    }

    const sl_json *max = h->json_get(cfg, "/max_stdout_bytes");
    if (max) {
        double v = h->json_number(max, -1);
        if (v < 1 || v > MAX_STDOUT_LIMIT || v != (double)(size_t)v) {
            snprintf(msg, msglen, "config.max_stdout_bytes must be a whole number from 1 to %u",
                     MAX_STDOUT_LIMIT);
            goto fail;
        }
        c->max_stdout = (size_t)v;
    }

    c->env = h->json_get(cfg, "/env");
    if (c->env) {
        if (h->json_type(c->env) != SL_JSON_OBJECT || !c->env_text) {
            snprintf(msg, msglen, "config.env must be an object of strings, e.g. {\"LANG\": "
                     "\"C.UTF-8\"}, not %s", type_name(h->json_type(c->env)));
            goto fail;
        }
        struct env_check e = {h, c->env, msg, msglen};
        if (json_text_members(c->env_text, c->env_len, check_env_member, &e) != 0)
            goto fail;
    }
    return 0;

oom:
    snprintf(msg, msglen, "out of memory");
fail:
    free(c->argv);
    c->argv = NULL;
    return -1;
}


static int env_named(const char *entry, const char *name, size_t len)
{
    return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

/* 1 when the daemon's variable entry ("NAME=value") gives way to one that
 * sluice sets or that config "env" names. */
static int env_overridden(const sl_host *h, const struct exec_config *c, const char *entry)
{
    for (size_t i = 0; reserved_env[i]; i++)
        if (env_named(entry, reserved_env[i], strlen(reserved_env[i])))
            return 1;
    const char *eq = strchr(entry, '=');
    if (!c->env || !eq)
        return 0;
    size_t len = (size_t)(eq - entry);
    if (len > ENV_NAME_MAX || !env_name_ok(entry, len))
        return 0; /* config names are all well-formed */
    char pointer[ENV_NAME_MAX + 2];
    snprintf(pointer, sizeof pointer, "/%.*s", (int)len, entry);
    return h->json_get(c->env, pointer) != NULL;
}

struct env_build {
    const sl_host *h;
    const sl_json *env;
    char **envp;
    size_t n;
};

static char *env_entry(const char *name, size_t len, const char *value)
{
    size_t vlen = strlen(value);
    char *s = malloc(len + vlen + 2);
    if (s) {
        memcpy(s, name, len);
        s[len] = '=';
        memcpy(s + len + 1, value, vlen + 1);
    }
    return s;
}

static int add_config_env(const char *key, size_t len, const char *value, size_t value_len,
                          void *arg)
{
    struct env_build *b = arg;
    (void)value;
    (void)value_len;
    char pointer[ENV_NAME_MAX + 2];
    snprintf(pointer, sizeof pointer, "/%.*s", (int)len, key);
    const char *v = b->h->json_string(b->h->json_get(b->env, pointer));
    if (!v || !(b->envp[b->n] = env_entry(key, len, v)))
        return -1;
    b->n++;
    return 0;
}

static void env_free(char **envp, size_t first_owned)
{
    if (!envp)
        return;
    for (size_t i = first_owned; envp[i]; i++)
        free(envp[i]);
    free(envp);
}

/* The child's environment: the daemon's, then sluice's variables, then
 * config "env". Entries from first_owned on are allocated here. NULL when
 * out of memory. */
static char **build_env(sl_context *ctx, const struct exec_config *c, int64_t remaining,
                        size_t *first_owned)
{
    const sl_host *h = ctx->host;
    size_t n_daemon = 0;
    while (environ && environ[n_daemon])
        n_daemon++;
    size_t n_config = c->env ? h->json_size(c->env) : 0;
    struct env_build b = {h, c->env, calloc(n_daemon + n_config + 7, sizeof(char *)), 0};
    if (!b.envp)
        return NULL;
    for (size_t i = 0; i < n_daemon; i++)
        if (!env_overridden(h, c, environ[i]))
            b.envp[b.n++] = environ[i];
    *first_owned = b.n;
    char attempt[16], left[24];
    snprintf(attempt, sizeof attempt, "%u", (unsigned)ctx->attempt);
    snprintf(left, sizeof left, "%lld", (long long)remaining);
    const char *ours[][2] = {
        {"SLUICE_REQUEST_ID", ctx->request_id}, {"SLUICE_PIPELINE", ctx->pipeline},
        {"SLUICE_STEP", ctx->step},             {"SLUICE_FUNCTION", ctx->function_name},
        {"SLUICE_ATTEMPT", attempt},            {"SLUICE_REMAINING_MS", left},
    };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        const char *v = ours[i][1] ? ours[i][1] : "";
        if (!(b.envp[b.n] = env_entry(ours[i][0], strlen(ours[i][0]), v)))
            goto fail;
        b.n++;
    }
    if (c->env && json_text_members(c->env_text, c->env_len, add_config_env, &b) != 0)
        goto fail;
    return b.envp;
fail:
    env_free(b.envp, *first_owned);
    return NULL;
}

/* The command as messages name it: its program, or the shell line. */
static void command_label(const struct exec_config *c, char *out, size_t len)
{
    if (c->shell) {
        size_t n = strlen(c->argv[2]);
        snprintf(out, len, "shell command \"%.60s%s\"", c->argv[2], n > 60 ? "..." : "");
    } else {
        snprintf(out, len, "command \"%.120s\"", c->argv[0]);
    }
}

static const char *signal_name(int sig)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *abbrev = sigabbrev_np(sig);
    return abbrev ? abbrev : "?";
#else
    (void)sig;
    return "?";
#endif
}

/* "exited with status 3 after 12 ms" and the like. */
static void describe_end(const struct exec_result *r, size_t max_stdout, char *out, size_t len)
{
    long long ms = (long long)r->elapsed_ms;
    if (r->end == EXEC_TIMED_OUT)
        snprintf(out, len, "was still running at the step's deadline and was killed (SIGKILL to "
                 "its process group) after %lld ms", ms);
    else if (r->end == EXEC_TOO_MUCH_OUTPUT)
        snprintf(out, len, "wrote more than %zu bytes to stdout (max_stdout_bytes) and was "
                 "killed after %lld ms", max_stdout, ms);
    else if (WIFEXITED(r->status))
        snprintf(out, len, "exited with status %d after %lld ms", WEXITSTATUS(r->status), ms);
    else if (WIFSIGNALED(r->status))
        snprintf(out, len, "was killed by signal %d (SIG%s) after %lld ms",
                 WTERMSIG(r->status), signal_name(WTERMSIG(r->status)), ms);
    else
        snprintf(out, len, "ended with wait status %#x after %lld ms", r->status, ms);
}

/* Text for people: valid UTF-8, no control characters but newlines (or no
 * newlines either when one_line), no half character at the start. */
static void readable(const char *in, size_t n, int one_line, char *out, size_t outlen)
{
    size_t skip = 0;
    while (skip < n && skip < 3 && ((unsigned char)in[skip] & 0xC0) == 0x80)
        skip++;
    size_t w = utf8_clean(in + skip, n - skip, out, outlen);
    for (size_t i = 0; i < w; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch < 0x20 && !(ch == '\n' && !one_line))
            out[i] = ' ';
    }
}

/* "; stderr (last N of M bytes): TEXT" (the last max bytes of it, trailing
 * newlines not shown), or "; stderr was empty". */
static void stderr_part(const struct exec_result *r, size_t max, char *out, size_t outlen)
{
    char raw[EXEC_STDERR_TAIL];
    size_t n = exec_stderr_tail(r, raw);
    const char *from = raw;
    if (n > max) {
        from += n - max;
        n = max;
    }
    size_t shown = n;
    while (n && (from[n - 1] == '\n' || from[n - 1] == '\r'))
        n--;
    if (n == 0 && shown == r->err_total) {
        snprintf(out, outlen, "; stderr was empty");
        return;
    }
    char clean[UTF8_CLEAN_SIZE(EXEC_STDERR_TAIL)];
    readable(from, n, 0, clean, sizeof clean);
    if (shown < r->err_total)
        snprintf(out, outlen, "; stderr (last %zu of %zu bytes): %s", shown, r->err_total, clean);
    else
        snprintf(out, outlen, "; stderr: %s", clean);
}

static int respond_text(sl_context *ctx, struct exec_result *r, sl_response *res)
{
    const sl_host *h = ctx->host;
    size_t len = r->out_len;
    while (len && (r->out[len - 1] == '\n' || r->out[len - 1] == '\r'))
        len--;
    r->out[len] = '\0';
    char *clean = NULL;
    if (!utf8_valid(r->out, len)) {
        if (!(clean = malloc(UTF8_CLEAN_SIZE(len))))
            return fail(h, res, "OutOfMemory", "out of memory converting stdout to text");
        utf8_clean(r->out, len, clean, UTF8_CLEAN_SIZE(len));
        h->log(ctx, SL_LOG_WARN, "stdout is not UTF-8 text: its invalid bytes (and NUL bytes) "
               "were replaced with U+FFFD");
    }
    sl_json *s = h->json_new_string(clean ? clean : r->out);
    int rc = s ? h->respond_json(res, 200, s) : -1;
    h->json_free(s);
    free(clean);
    return rc < 0 ? fail(h, res, "OutOfMemory", "out of memory building the response") : 0;
}

static int is_json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int respond_json_stdout(sl_context *ctx, const char *label, struct exec_result *r,
                               sl_response *res)
{
    const sl_host *h = ctx->host;
    const char *text = r->out;
    size_t len = r->out_len;
    while (len && is_json_ws(text[len - 1]))
        len--;
    while (len && is_json_ws(*text))
        text++, len--;
    if (len == 0) /* printed nothing: a side-effect-only command */
        return h->respond(res, 200, "null", 4) < 0 ? 1 : 0;
    size_t where;
    const char *what;
    if (json_text_check(text, len, &where, &what) < 0) {
        char snippet[UTF8_CLEAN_SIZE(80)], msg[MSG_MAX];
        readable(text, len < 80 ? len : 80, 1, snippet, sizeof snippet);
        snprintf(msg, sizeof msg, "%s exited with status 0, but its stdout is not one JSON value: "
                 "%s, at byte %zu of %zu; stdout begins \"%s%s\". Print exactly one JSON value "
                 "(e.g. json.dumps in Python), or set \"stdout\": \"text\" in the step config to "
                 "get stdout as a JSON string", label, what, where + (size_t)(text - r->out),
                 r->out_len, snippet, len > 80 ? "..." : "");
        return fail(h, res, "InvalidOutput", msg);
    }
    if (h->respond(res, 200, text, len) < 0) {
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "%s printed JSON that sluice could not take as the response "
                 "(%zu bytes)", label, len);
        return fail(h, res, "InvalidOutput", msg);
    }
    return 0;
}

/* Logs the run, then answers or fails. */
static int finish(sl_context *ctx, const struct exec_config *c, struct exec_result *r,
                  const char *label, sl_response *res)
{
    const sl_host *h = ctx->host;
    char how[256], msg[MSG_MAX], part[UTF8_CLEAN_SIZE(EXEC_STDERR_TAIL) + 128];
    describe_end(r, c->max_stdout, how, sizeof how);
    int ok = r->end == EXEC_EXITED && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
    snprintf(msg, sizeof msg, "%s %s (pid %d, stdout %zu bytes, stderr %zu bytes)", label, how,
             (int)r->pid, r->out_len, r->err_total);
    h->log(ctx, ok ? SL_LOG_INFO : SL_LOG_ERROR, msg);
    if (r->err_total) {
        stderr_part(r, EXEC_STDERR_TAIL, part, sizeof part);
        snprintf(msg, sizeof msg, "%s%s", label, part + 1); /* "; stderr..." -> " stderr..." */
        h->log(ctx, ok ? SL_LOG_INFO : SL_LOG_ERROR, msg);
    }
    if (r->lingering)
        h->log(ctx, SL_LOG_WARN, "something the command started in the background still held its "
               "stdout or stderr open after it exited; sluice did not wait for it (redirect a "
               "background job's output, e.g. >/dev/null 2>&1)");
    if (ok)
        return c->text ? respond_text(ctx, r, res) : respond_json_stdout(ctx, label, r, res);

    stderr_part(r, ERROR_STDERR_MAX, part, sizeof part);
    const char *type = "CommandFailed", *fix = "";
    if (r->end == EXEC_TIMED_OUT) {
        type = "Sandbox.Timedout";
        fix = "; raise the step's \"timeout_ms\" or make the command faster";
    } else if (r->end == EXEC_TOO_MUCH_OUTPUT) {
        type = "OutputTooLarge";
        fix = "; raise \"max_stdout_bytes\", or write large results to a file and print its path";
    }
    snprintf(msg, sizeof msg, "%s %s%s%s", label, how, fix, part);
    return fail(h, res, type, msg);
}

static int exec_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct exec_config c;
    struct exec_result r;
    char msg[MSG_MAX], label[200];
    char **envp = NULL;
    size_t owned = 0;
    int rc = 1;
    memset(&r, 0, sizeof r);
    if (parse_config(ctx, &c, msg, sizeof msg) < 0)
        return fail(h, res, "ConfigError", msg);
    command_label(&c, label, sizeof label);
    int64_t remaining = h->remaining_ms(ctx);
    if (remaining <= 0) {
        snprintf(msg, sizeof msg, "no time was left before the step's deadline to start %s; "
                 "raise the step's \"timeout_ms\"", label);
        rc = fail(h, res, "Sandbox.Timedout", msg);
        goto done;
    }
    if (!(envp = build_env(ctx, &c, remaining, &owned))) {
        rc = fail(h, res, "OutOfMemory", "out of memory building the command's environment");
        goto done;
    }
    struct exec_spec spec = {
        .argv = c.argv,
        .envp = envp,
        .cwd = c.cwd,
        .input = event->json,
        .input_len = event->len,
        .max_stdout = c.max_stdout,
        .deadline_ns = exec_now_ns() + remaining * 1000000,
    };
    if (exec_run(&spec, &r, msg, sizeof msg) < 0) {
        h->log(ctx, SL_LOG_ERROR, msg);
        rc = fail(h, res, "SpawnError", msg);
        goto done;
    }
    rc = finish(ctx, &c, &r, label, res);
done:
    exec_result_release(&r);
    env_free(envp, owned);
    free(c.argv);
    return rc;
}

static const sl_handler_def handlers[] = {
    {"handler", exec_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "exec",
    .version = "1.0",
    .handlers = handlers,
};
