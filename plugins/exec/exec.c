/* exec.c - the exec plugin: run a command with the event on stdin and
 * answer with what it prints, so a script in any language can be a step.
 *
 * The step config names the command as an argv array (no shell unless
 * "shell": true). The event JSON goes to its stdin; its stdout, one JSON
 * value, becomes the response (or a JSON string with "stdout": "text"). A
 * non-zero exit, a signal, the step's deadline or too much output fails the
 * step with the tail of stderr in the message. The process work (spawn,
 * pipes, deadline, reaping) is in exec_run.c; this file turns the config
 * into an instance once per step (create: the host has checked the keys and
 * their types against config_keys), each event into a spec and a result into
 * a response or an error, and logs the run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sluice/handler.h>

#include "exec_run.h"

extern char **environ;

#define MAX_STDOUT_DEFAULT (16u << 20)
#define MAX_STDOUT_LIMIT (32u << 20) /* responses cross to the daemon in frames of 64 MiB */
/* The daemon keeps about 1200 characters of an error message, so the
 * message carries stderr's last KiB (its end is what explains a failure);
 * the last 2 KiB go to the logs table. */
#define ERROR_STDERR_MAX 1024
#define MSG_MAX 8192
#define ENV_NAME_MAX 255
/* Bytes of valid UTF-8 that len bytes of anything may become (U+FFFD is 3). */
#define CLEAN_SIZE(len) ((len) * 3 + 1)

/* The variables sluice sets itself; config "env" may not set them. */
static const char *const reserved_env[] = {"SLUICE_REQUEST_ID", "SLUICE_PIPELINE", "SLUICE_STEP",
                                           "SLUICE_FUNCTION", "SLUICE_ATTEMPT",
                                           "SLUICE_REMAINING_MS", NULL};

/* One step's command, from its config (create). Every string is owned. */
struct exec_config {
    char **argv;                /* NULL-terminated */
    int shell;                  /* argv is /bin/sh -c LINE */
    char *cwd;
    char **env;                 /* config "env" as "NAME=value", NULL-terminated */
    size_t n_env;
    int text;                   /* "stdout": "text" */
    size_t max_stdout;
};

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

static void free_strings(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void exec_destroy(void *instance)
{
    struct exec_config *c = instance;
    if (!c)
        return;
    free_strings(c->argv);
    free_strings(c->env);
    free(c->cwd);
    free(c);
}

/* config "env": an object of strings with usable, unreserved names. */
static int parse_env(const sl_host *h, const sl_json *env, struct exec_config *c, char *msg,
                     size_t msglen)
{
    size_t n = h->json_size(env);
    if (!(c->env = calloc(n + 1, sizeof *c->env)))
        return snprintf(msg, msglen, "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        const char *key = h->json_key(env, i);
        size_t len = strlen(key);
        int shown = (int)(len > 100 ? 100 : len);
        if (len > ENV_NAME_MAX)
            return snprintf(msg, msglen, "config.env: the name \"%.*s...\" is longer than %d "
                            "characters", shown, key, ENV_NAME_MAX), -1;
        if (!env_name_ok(key, len))
            return snprintf(msg, msglen, "config.env: \"%.*s\" is not a usable variable name "
                            "(use letters, digits and _, not starting with a digit)", shown,
                            key), -1;
        for (size_t j = 0; reserved_env[j]; j++)
            if (strcmp(key, reserved_env[j]) == 0)
                return snprintf(msg, msglen, "config.env: %s is set by sluice for every run "
                                "and cannot be overridden; use another name", key), -1;
        const sl_json *v = h->json_at(env, i);
        const char *value = h->json_string(v);
        if (!value)
            return snprintf(msg, msglen, "config.env.%.*s must be a string, not %s (quote it: "
                            "\"%.*s\": \"...\")", shown, key, type_name(h->json_type(v)),
                            shown, key), -1;
        if (!(c->env[c->n_env] = env_entry(key, len, value)))
            return snprintf(msg, msglen, "out of memory"), -1;
        c->n_env++;
    }
    return 0;
}

/* config "command" (and "shell"). */
static int parse_command(const sl_host *h, const sl_json *cfg, struct exec_config *c, char *msg,
                         size_t msglen)
{
    c->shell = h->json_type(h->json_get(cfg, "/shell")) == SL_JSON_TRUE;
    const sl_json *command = h->json_get(cfg, "/command");
    int ct = h->json_type(command);
    if (c->shell) {
        const char *line = h->json_string(command);
        if (!line || !*line)
            return snprintf(msg, msglen, "config.command must be one non-empty string when "
                            "\"shell\" is true (it runs as /bin/sh -c COMMAND), not %s",
                            type_name(ct)), -1;
        const char *argv[] = {"/bin/sh", "-c", line};
        if (!(c->argv = calloc(4, sizeof *c->argv)))
            return snprintf(msg, msglen, "out of memory"), -1;
        for (size_t i = 0; i < 3; i++)
            if (!(c->argv[i] = strdup(argv[i])))
                return snprintf(msg, msglen, "out of memory"), -1;
        return 0;
    }
    if (ct == SL_JSON_STRING)
        return snprintf(msg, msglen, "config.command is a string, but \"shell\" is not true: "
                        "give the program and its arguments as an array ([\"/usr/bin/wc\", "
                        "\"-c\"]), or set \"shell\": true to run the string with /bin/sh -c"), -1;
    size_t n = h->json_size(command);
    if (ct != SL_JSON_ARRAY || n == 0)
        return snprintf(msg, msglen, "config.command must be a non-empty array of strings (the "
                        "program and its arguments, e.g. [\"/usr/bin/wc\", \"-c\"]), not %s",
                        ct == SL_JSON_ARRAY ? "an empty array" : type_name(ct)), -1;
    if (!(c->argv = calloc(n + 1, sizeof *c->argv)))
        return snprintf(msg, msglen, "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        const sl_json *a = h->json_at(command, i);
        const char *s = h->json_string(a);
        if (!s || (i == 0 && !*s))
            return snprintf(msg, msglen, "config.command[%zu] must be a%s string, not %s (quote "
                            "every argument)", i, i == 0 ? " non-empty" : "",
                            s ? "an empty string" : type_name(h->json_type(a))), -1;
        if (!(c->argv[i] = strdup(s)))
            return snprintf(msg, msglen, "out of memory"), -1;
    }
    return 0;
}

/* The step config, its keys and types checked by the host already. On
 * failure writes what is wrong and how to fix it into msg. */
static int parse_config(const sl_host *h, const sl_json *cfg, struct exec_config *c, char *msg,
                        size_t msglen)
{
    c->max_stdout = (size_t)h->json_number(h->json_get(cfg, "/max_stdout_bytes"),
                                           MAX_STDOUT_DEFAULT);
    if (c->max_stdout < 1 || c->max_stdout > MAX_STDOUT_LIMIT)
        return snprintf(msg, msglen, "config.max_stdout_bytes must be a whole number from 1 to "
                        "%u", MAX_STDOUT_LIMIT), -1;
    if (parse_command(h, cfg, c, msg, msglen) < 0)
        return -1;
    const char *cwd = h->json_string(h->json_get(cfg, "/cwd"));
    if (cwd) {
        struct stat sb;
        int found = *cwd && stat(cwd, &sb) == 0;
        if (!*cwd)
            return snprintf(msg, msglen, "config.cwd must be a folder's path, not an empty "
                            "string"), -1;
        if (!found || !S_ISDIR(sb.st_mode))
            return snprintf(msg, msglen, "config.cwd \"%.1000s\": %s (relative paths start "
                            "from the daemon's working folder; an absolute path is safest)",
                            cwd, found ? "not a folder" : strerror(errno)), -1;
        if (!(c->cwd = strdup(cwd)))
            return snprintf(msg, msglen, "out of memory"), -1;
    }
    const char *mode = h->json_string(h->json_get(cfg, "/stdout"));
    c->text = strcmp(mode, "text") == 0;
    if (!c->text && strcmp(mode, "json") != 0)
        return snprintf(msg, msglen, "config.stdout must be \"json\" (stdout is one JSON value, "
                        "the default) or \"text\" (stdout becomes a JSON string)"), -1;
    const sl_json *env = h->json_get(cfg, "/env");
    return env ? parse_env(h, env, c, msg, msglen) : 0;
}

static int exec_create(const sl_host *h, const sl_json *cfg, void **instance, char *err,
                       size_t errlen)
{
    struct exec_config *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (parse_config(h, cfg, c, err, errlen) < 0) {
        exec_destroy(c);
        return -1;
    }
    *instance = c;
    return 0;
}

static int env_named(const char *entry, const char *name, size_t len)
{
    return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

/* 1 when the daemon's variable entry ("NAME=value") gives way to one that
 * sluice sets or that config "env" names. */
static int env_overridden(const struct exec_config *c, const char *entry)
{
    for (size_t i = 0; reserved_env[i]; i++)
        if (env_named(entry, reserved_env[i], strlen(reserved_env[i])))
            return 1;
    const char *eq = strchr(entry, '=');
    for (size_t i = 0; eq && i < c->n_env; i++)
        if (env_named(c->env[i], entry, (size_t)(eq - entry)))
            return 1;
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
static char **build_env(const sl_context *ctx, const struct exec_config *c, int64_t remaining,
                        size_t *first_owned)
{
    size_t n_daemon = 0, n = 0;
    while (environ && environ[n_daemon])
        n_daemon++;
    char **envp = calloc(n_daemon + c->n_env + 7, sizeof(char *));
    if (!envp)
        return NULL;
    for (size_t i = 0; i < n_daemon; i++)
        if (!env_overridden(c, environ[i]))
            envp[n++] = environ[i];
    *first_owned = n;
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
        if (!(envp[n] = env_entry(ours[i][0], strlen(ours[i][0]), v)))
            goto fail;
        n++;
    }
    for (size_t i = 0; i < c->n_env; i++)
        if (!(envp[n++] = strdup(c->env[i])))
            goto fail;
    return envp;
fail:
    env_free(envp, *first_owned);
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

/* Text for people: valid UTF-8 (the host cleans it), no control characters
 * but newlines (or no newlines either when one_line), no half character at
 * the start, cut to outlen at a character boundary. */
static void readable(const sl_host *h, const char *in, size_t n, int one_line, char *out,
                     size_t outlen)
{
    size_t skip = 0;
    while (skip < n && skip < 3 && ((unsigned char)in[skip] & 0xC0) == 0x80)
        skip++;
    sl_json *s = h->json_new_stringn(in + skip, n - skip);
    const char *clean = s ? h->json_string(s) : "";
    size_t w = strlen(clean);
    if (w >= outlen) {
        w = outlen - 1;
        while (w && ((unsigned char)clean[w] & 0xC0) == 0x80)
            w--;
    }
    memcpy(out, clean, w);
    out[w] = '\0';
    h->json_free(s);
    for (size_t i = 0; i < w; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch < 0x20 && !(ch == '\n' && !one_line))
            out[i] = ' ';
    }
}

/* "; stderr (last N of M bytes): TEXT" (the last max bytes of it, trailing
 * newlines not shown), or "; stderr was empty". */
static void stderr_part(const sl_host *h, const struct exec_result *r, size_t max, char *out,
                        size_t outlen)
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
    char clean[CLEAN_SIZE(EXEC_STDERR_TAIL)];
    readable(h, from, n, 0, clean, sizeof clean);
    if (shown < r->err_total)
        snprintf(out, outlen, "; stderr (last %zu of %zu bytes): %s", shown, r->err_total, clean);
    else
        snprintf(out, outlen, "; stderr: %s", clean);
}

static int respond_text(const sl_context *ctx, struct exec_result *r, sl_response *res)
{
    const sl_host *h = ctx->host;
    size_t len = r->out_len;
    while (len && (r->out[len - 1] == '\n' || r->out[len - 1] == '\r'))
        len--;
    /* every bad byte becomes 3 (U+FFFD): the same length means clean text */
    sl_json *s = h->json_new_stringn(r->out, len);
    if (s && strlen(h->json_string(s)) != len)
        h->log(ctx, SL_LOG_WARN, "stdout is not UTF-8 text: its invalid bytes (and NUL bytes) "
               "were replaced with U+FFFD");
    int rc = s ? h->respond_json(res, 200, s) : -1;
    h->json_free(s);
    return rc < 0 ? h->failf(res, "OutOfMemory", "out of memory building the response") : 0;
}

static int is_json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int respond_json_stdout(const sl_context *ctx, const char *label, struct exec_result *r,
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
    if (h->respond(res, 200, text, len) == 0) /* it checks strictly */
        return 0;
    size_t where = 0;
    const char *what = "the response could not be set (out of memory)";
    h->json_free(h->json_parse_at(text, len, &where, &what));
    char snippet[CLEAN_SIZE(80)];
    readable(h, text, len < 80 ? len : 80, 1, snippet, sizeof snippet);
    return h->failf(res, "InvalidOutput", "%s exited with status 0, but its stdout is not one "
                    "JSON value: %s, at byte %zu of %zu; stdout begins \"%s%s\". Print exactly "
                    "one JSON value (e.g. json.dumps in Python), or set \"stdout\": \"text\" in "
                    "the step config to get stdout as a JSON string", label, what,
                    where + (size_t)(text - r->out), r->out_len, snippet, len > 80 ? "..." : "");
}

/* Logs the run, then answers or fails. */
static int finish(const sl_context *ctx, const struct exec_config *c, struct exec_result *r,
                  const char *label, sl_response *res)
{
    const sl_host *h = ctx->host;
    char how[256], part[CLEAN_SIZE(EXEC_STDERR_TAIL) + 128];
    describe_end(r, c->max_stdout, how, sizeof how);
    int ok = r->end == EXEC_EXITED && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
    h->logf(ctx, ok ? SL_LOG_INFO : SL_LOG_ERROR, "%s %s (pid %d, stdout %zu bytes, stderr %zu "
            "bytes)", label, how, (int)r->pid, r->out_len, r->err_total);
    if (r->err_total) {
        stderr_part(h, r, EXEC_STDERR_TAIL, part, sizeof part);
        /* "; stderr..." -> " stderr..." */
        h->logf(ctx, ok ? SL_LOG_INFO : SL_LOG_ERROR, "%s%s", label, part + 1);
    }
    if (r->lingering)
        h->log(ctx, SL_LOG_WARN, "something the command started in the background still held its "
               "stdout or stderr open after it exited; sluice did not wait for it (redirect a "
               "background job's output, e.g. >/dev/null 2>&1)");
    if (ok)
        return c->text ? respond_text(ctx, r, res) : respond_json_stdout(ctx, label, r, res);

    stderr_part(h, r, ERROR_STDERR_MAX, part, sizeof part);
    const char *type = "CommandFailed", *fix = "";
    if (r->end == EXEC_TIMED_OUT) {
        type = "Sandbox.Timedout";
        fix = "; raise the step's \"timeout_ms\" or make the command faster";
    } else if (r->end == EXEC_TOO_MUCH_OUTPUT) {
        type = "OutputTooLarge";
        fix = "; raise \"max_stdout_bytes\", or write large results to a file and print its path";
    }
    return h->failf(res, type, "%s %s%s%s", label, how, fix, part);
}

static int exec_handler(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    const struct exec_config *c = ctx->instance;
    struct exec_result r;
    char msg[MSG_MAX], label[200];
    char **envp = NULL;
    size_t owned = 0;
    int rc = 1;
    memset(&r, 0, sizeof r);
    command_label(c, label, sizeof label);
    int64_t remaining = h->remaining_ms(ctx);
    if (remaining <= 0) {
        rc = h->failf(res, "Sandbox.Timedout", "no time was left before the step's deadline to "
                      "start %s; raise the step's \"timeout_ms\"", label);
        goto done;
    }
    if (!(envp = build_env(ctx, c, remaining, &owned))) {
        rc = h->failf(res, "OutOfMemory", "out of memory building the command's environment");
        goto done;
    }
    struct exec_spec spec = {
        .argv = c->argv,
        .envp = envp,
        .cwd = c->cwd,
        .input = event->json,
        .input_len = event->len,
        .max_stdout = c->max_stdout,
        .deadline_ns = exec_now_ns() + remaining * 1000000,
    };
    if (exec_run(&spec, &r, msg, sizeof msg) < 0) {
        h->log(ctx, SL_LOG_ERROR, msg);
        rc = h->failf(res, "SpawnError", "%s", msg);
        goto done;
    }
    rc = finish(ctx, c, &r, label, res);
done:
    exec_result_release(&r);
    env_free(envp, owned);
    return rc;
}

static const sl_handler_def handlers[] = {
    {"handler", exec_handler},
    {NULL, NULL},
};

static const sl_config_key config_keys[] = {
    {"command", SL_CONFIG_ANY, 1, NULL, "the program and its arguments, e.g. [\"/usr/bin/wc\", "
     "\"-c\"] (a string with \"shell\": true)"},
    {"shell", SL_CONFIG_BOOL, 0, "false", "run command with /bin/sh -c"},
    {"env", SL_CONFIG_OBJECT, 0, NULL, "more environment variables, e.g. {\"LANG\": \"C.UTF-8\"}"},
    {"cwd", SL_CONFIG_STRING, 0, NULL, "the folder the command runs in"},
    {"stdout", SL_CONFIG_STRING, 0, "\"json\"", "\"json\" (one JSON value) or \"text\""},
    {"max_stdout_bytes", SL_CONFIG_INTEGER, 0, NULL, "the most stdout taken (default 16 MiB)"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "exec",
    .version = "2.0",
    .handlers = handlers,
    .destroy = exec_destroy,
    .create = exec_create,
    .config_keys = config_keys,
};
