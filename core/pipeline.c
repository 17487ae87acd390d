/* pipeline.c - parses and validates pipeline files through declared tables
 * (confmap) and collects the set in pipelines_dir. See pipeline.h. */
#include "pipeline.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "confmap.h"
#include "match.h"
#include "http_event.h"
#include "status.h"
#include "json.h"
#include "loader.h"
#include "path.h"
#include "nats_trigger.h"
#include "router.h"
#include "schedule.h"
#include "spawn.h"
#include "trust.h"

#define TIMEOUT_DEFAULT_MS 3000 /* Lambda's default */
#define TIMEOUT_MAX_MS 900000   /* Lambda's maximum, 15 minutes */

struct raw_pipeline {
    char *name, *description, *isolation;
    const cJSON *json;          /* the whole object, to tell absent keys from wrong ones */
    const cJSON *trigger, *steps, *on_failure, *on_success, *batch;
    int concurrency, memory_mb, cpu_seconds, max_open_files, max_event_age_ms;
    int reserved_concurrency;
    bool sandbox;
    const cJSON *environment;   /* issue 16 */
    struct strv layers;
    int pids;                   /* issue 21: worker containment */
    char *run_as;
};

static const struct confmap pipeline_map[] = {
    {"name", CONFMAP_STRING, offsetof(struct raw_pipeline, name), 0, 0,
     "unique pipeline name (letters, digits, '_', '-', '.')"},
    {"description", CONFMAP_STRING, offsetof(struct raw_pipeline, description), 0, 0,
     "free text"},
    {"trigger", CONFMAP_OBJECT, offsetof(struct raw_pipeline, trigger), 0, 0,
     "{\"directory\": PATH} or {\"zmq\": {\"topic\": PREFIX}}, with an optional match"},
    {"steps", CONFMAP_ARRAY, offsetof(struct raw_pipeline, steps), 0, 0,
     "handler steps, run in order; each step's response body is the next one's event"},
    {"on_failure", CONFMAP_OBJECT, offsetof(struct raw_pipeline, on_failure), 0, 0,
     "where dead events' records go: {\"directory\"|\"pipeline\"|\"zmq\": ...}"},
    {"on_success", CONFMAP_OBJECT, offsetof(struct raw_pipeline, on_success), 0, 0,
     "where finished events' records go: {\"directory\"|\"pipeline\"|\"zmq\": ...}"},
    {"concurrency", CONFMAP_INT, offsetof(struct raw_pipeline, concurrency), 1, 1024,
     "events of this pipeline run at once (default: config's workers)"},
    {"reserved_concurrency", CONFMAP_INT, offsetof(struct raw_pipeline, reserved_concurrency),
     0, 100000, "slots of max_concurrency only this pipeline may use (default 0)"},
    {"isolation", CONFMAP_STRING, offsetof(struct raw_pipeline, isolation), 0, 0,
     "\"process\" (default) or \"thread\""},
    {"memory_mb", CONFMAP_INT, offsetof(struct raw_pipeline, memory_mb), 16, 1 << 20,
     "address-space limit of each worker process, like Lambda's memory setting"},
    {"cpu_seconds", CONFMAP_INT, offsetof(struct raw_pipeline, cpu_seconds), 1, 1 << 24,
     "CPU time a worker process may use in all before it is killed"},
    {"max_open_files", CONFMAP_INT, offsetof(struct raw_pipeline, max_open_files), 8, 1 << 20,
     "open-file limit of each worker process"},
    {"sandbox", CONFMAP_BOOL, offsetof(struct raw_pipeline, sandbox), 0, 0,
     "C workers run under a seccomp filter that forbids ptrace, mount, module loading..."},
    {"pids", CONFMAP_INT, offsetof(struct raw_pipeline, pids), 1, 1 << 22,
     "processes and threads a worker may have at once (cgroup pids.max)"},
    {"run_as", CONFMAP_STRING, offsetof(struct raw_pipeline, run_as), 0, 0,
     "\"USER\" or \"USER:GROUP\" its workers run as when the daemon runs as root"},
    {"max_event_age_ms", CONFMAP_INT, offsetof(struct raw_pipeline, max_event_age_ms), 1,
     2147483647, "an event older than this is not retried again but dead-lettered"},
    {"batch", CONFMAP_OBJECT, offsetof(struct raw_pipeline, batch), 0, 0,
     "{\"size\": N, \"window_ms\": W}: the first step gets up to N events at once"},
    /* issue 16: the worker's environment and dependencies (core/worker_env.c) */
    {"environment", CONFMAP_OBJECT, offsetof(struct raw_pipeline, environment), 0, 0,
     "{\"NAME\": \"value\"}: environment variables of every step's worker"},
    {"layers", CONFMAP_STRINGS, offsetof(struct raw_pipeline, layers), 0, 0,
     "folders laid out as Lambda layers (python/, nodejs/node_modules/), searched in order"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_trigger {
    char *directory;
    bool recursive;
    const cJSON *zmq, *http, *match, *nats;
    char *schedule, *timezone, *overlap;
    bool catch_up;
};

static const struct confmap trigger_map[] = {
    {"directory", CONFMAP_STRING, offsetof(struct raw_trigger, directory), 0, 0,
     "watched folder; complete files dropped in start the pipeline"},
    {"recursive", CONFMAP_BOOL, offsetof(struct raw_trigger, recursive), 0, 0,
     "follow subfolders, including ones created later (default true)"},
    {"zmq", CONFMAP_OBJECT, offsetof(struct raw_trigger, zmq), 0, 0, "{\"topic\": PREFIX}"},
    {"http", CONFMAP_OBJECT, offsetof(struct raw_trigger, http), 0, 0,
     "{\"method\": M, \"path\": P}"},
    {"nats", CONFMAP_OBJECT, offsetof(struct raw_trigger, nats), 0, 0,
     "{\"url\", \"stream\", \"subject\", \"consumer\"}: a JetStream pull consumer"},
    {"match", CONFMAP_OBJECT, offsetof(struct raw_trigger, match), 0, 0,
     "filter: prefix, suffix, equals, anything-but on the file key or topic; event: pattern"},
    {"schedule", CONFMAP_STRING, offsetof(struct raw_trigger, schedule), 0, 0,
     "EventBridge schedule: \"rate(5 minutes)\" or \"cron(0 12 * * ? *)\""},
    {"timezone", CONFMAP_STRING, offsetof(struct raw_trigger, timezone), 0, 0,
     "schedule: TZ database zone of a cron expression (default UTC)"},
    {"catch_up", CONFMAP_BOOL, offsetof(struct raw_trigger, catch_up), 0, 0,
     "schedule: run a firing missed while sluice was down, once, at start (default false)"},
    {"overlap", CONFMAP_STRING, offsetof(struct raw_trigger, overlap), 0, 0,
     "schedule: \"skip\" (default) or \"queue\" a firing due while the last still runs"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_zmq {
    char *topic;
};

static const struct confmap zmq_trigger_map[] = {
    {"topic", CONFMAP_STRING, offsetof(struct raw_zmq, topic), 0, 0, "topic prefix to receive"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_step {
    const cJSON *json;
    char *name, *handler, *runtime, *code;
    const cJSON *config, *retry, *environment;
    int timeout_ms;
};

static const struct confmap step_map[] = {
    {"name", CONFMAP_STRING, offsetof(struct raw_step, name), 0, 0,
     "step name (default: the handler's FUNCTION)"},
    {"handler", CONFMAP_STRING, offsetof(struct raw_step, handler), 0, 0,
     "MODULE.FUNCTION: MODULE.so on plugin_path exporting handler FUNCTION"},
    {"config", CONFMAP_OBJECT, offsetof(struct raw_step, config), 0, 0,
     "handed to the handler as ctx->config_json"},
    {"timeout_ms", CONFMAP_INT, offsetof(struct raw_step, timeout_ms), 1, TIMEOUT_MAX_MS,
     "deadline of one attempt (default 3000)"},
    {"retry", CONFMAP_OBJECT, offsetof(struct raw_step, retry), 0, 0,
     "{max_attempts, interval_ms, backoff_rate, max_interval_ms}"},
    {"runtime", CONFMAP_STRING, offsetof(struct raw_step, runtime), 0, 0,
     "\"python3\", \"nodejs\" or \"provided\": a Lambda-style handler in \"code\""},
    {"code", CONFMAP_STRING, offsetof(struct raw_step, code), 0, 0,
     "folder of a script handler, or of a custom runtime's bootstrap (with runtime)"},
    {"environment", CONFMAP_OBJECT, offsetof(struct raw_step, environment), 0, 0,
     "{\"NAME\": \"value\"}: this step's environment variables, over the pipeline's"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_retry {
    struct retry r;
    struct strv on;
    char *jitter;
};

static const struct confmap retry_map[] = {
    {"max_attempts", CONFMAP_INT, offsetof(struct raw_retry, r.max_attempts), 1, 100,
     "attempts in all, the first included (default 1: no retry)"},
    {"interval_ms", CONFMAP_INT, offsetof(struct raw_retry, r.interval_ms), 0, 3600000,
     "wait before the first retry (default 1000)"},
    {"backoff_rate", CONFMAP_NUMBER, offsetof(struct raw_retry, r.backoff_rate), 1.0, 10.0,
     "multiplier of the wait after each retry (default 2.0)"},
    {"max_interval_ms", CONFMAP_INT, offsetof(struct raw_retry, r.max_interval_ms), 0, 3600000,
     "cap on the wait (default 60000)"},
    {"on", CONFMAP_STRINGS, offsetof(struct raw_retry, on), 0, 0,
     "failure kinds retried: \"error\", \"timeout\", \"crashed\" (default all)"},
    {"jitter", CONFMAP_STRING, offsetof(struct raw_retry, jitter), 0, 0,
     "\"full\": wait a random time up to the interval; \"none\" (default)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct confmap batch_map[] = {
    {"size", CONFMAP_INT, offsetof(struct batch, size), 1, 10000,
     "most events in one batch (default 10)"},
    {"window_ms", CONFMAP_INT, offsetof(struct batch, window_ms), 0, 300000,
     "how long to wait for a batch to fill (default 0: take what is queued)"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_destination {
    char *directory, *pipeline;
    const cJSON *zmq, *nats;
};

static const struct confmap destination_map[] = {
    {"directory", CONFMAP_STRING, offsetof(struct raw_destination, directory), 0, 0,
     "folder that receives a JSON record of each event"},
    {"pipeline", CONFMAP_STRING, offsetof(struct raw_destination, pipeline), 0, 0,
     "another pipeline that receives the record as its event"},
    {"zmq", CONFMAP_OBJECT, offsetof(struct raw_destination, zmq), 0, 0,
     "{\"endpoint\": E, \"topic\": T}: a PUSH socket sends TOPIC and the record"},
    {"nats", CONFMAP_OBJECT, offsetof(struct raw_destination, nats), 0, 0,
     "{\"url\": U, \"subject\": S}: published to JetStream, Nats-Msg-Id = the event id"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct raw_zmq_dest {
    char *endpoint, *topic;
};

static const struct confmap zmq_dest_map[] = {
    {"endpoint", CONFMAP_STRING, offsetof(struct raw_zmq_dest, endpoint), 0, 0,
     "where to connect, e.g. \"tcp://127.0.0.1:5560\""},
    {"topic", CONFMAP_STRING, offsetof(struct raw_zmq_dest, topic), 0, 0,
     "first frame (default: the pipeline's name)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.'))
            return false;
    return true;
}

static int split_handler(struct step *s, const char *file, const char *where, struct diag *d)
{
    const char *dot = strrchr(s->handler, '.');
    bool script = s->runtime != RUNTIME_C;
    if (s->runtime == RUNTIME_PROVIDED && *s->handler) {
        /* Lambda leaves a custom runtime's handler to the bootstrap: any text */
        s->module = dot ? strndup(s->handler, (size_t)(dot - s->handler)) : strdup(s->handler);
        s->function = strdup(dot && dot[1] ? dot + 1 : s->handler);
        if (!s->module || !s->function) {
            diag_error(d, file, "%s: out of memory", where);
            return 1;
        }
        return 0;
    }
    if (!dot || dot == s->handler || !dot[1] || (!script && strchr(s->handler, '/')) ||
        strstr(s->handler, "..")) {
        diag_error(d, file, "%s: handler \"%s\" must be MODULE.FUNCTION, e.g. \"echo.handler\"",
                   where, s->handler);
        return 1;
    }
    s->module = strndup(s->handler, (size_t)(dot - s->handler));
    s->function = strdup(dot + 1);
    if (!s->module || !s->function) {
        diag_error(d, file, "%s: out of memory", where);
        return 1;
    }
    if (!script && (!valid_name(s->module, 64) || strchr(s->module, '.'))) {
        diag_error(d, file, "%s: module \"%s\" in handler \"%s\" may hold only letters, digits, "
                   "'_' and '-'", where, s->module, s->handler);
        return 1;
    }
    return 0;
}

static int parse_retry(struct step *s, const cJSON *retry, const char *file, const char *where,
                       struct diag *d)
{
    struct raw_retry raw = {.r = {.max_attempts = 1, .interval_ms = 1000, .backoff_rate = 2.0,
                                  .max_interval_ms = 60000,
                                  .on = 1u << INV_ERROR | 1u << INV_TIMEOUT | 1u << INV_CRASHED}};
    int errors = 0;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.retry", where);
    if (retry)
        errors = confmap_apply(retry_map, retry, &raw, file, sub, d);
    if (raw.on.v)
        raw.r.on = 0;
    for (size_t i = 0; i < raw.on.n; i++) {
        static const char *const kinds[] = {"ok", "error", "timeout", "crashed"};
        size_t k = 1;
        while (k < 4 && strcmp(raw.on.v[i], kinds[k]) != 0)
            k++;
        if (k == 4) {
            diag_error(d, file, "%s.on: \"%s\" is not one of \"error\", \"timeout\", "
                       "\"crashed\"", sub, raw.on.v[i]);
            errors++;
        }
        raw.r.on |= 1u << k;
    }
    if (raw.jitter && strcmp(raw.jitter, "full") != 0 && strcmp(raw.jitter, "none") != 0) {
        diag_error(d, file, "%s.jitter: \"%s\" is not \"full\" or \"none\"", sub, raw.jitter);
        errors++;
    }
    raw.r.jitter = raw.jitter && strcmp(raw.jitter, "full") == 0;
    s->retry = raw.r;
    confmap_release(retry_map, &raw);
    return errors;
}

const char *runtime_name(enum runtime r)
{
    static const char *const names[] = {"c", "python3", "nodejs", "provided"};
    return r < RUNTIME_COUNT ? names[r] : "?";
}

const char *step_file(const struct step *s)
{
    if (s->runtime != RUNTIME_C)
        return s->source;
    return s->plugin ? s->plugin->path : NULL;
}

static int parse_runtime(struct step *s, const char *name)
{
    if (strncmp(name, "python", 6) == 0)
        s->runtime = RUNTIME_PYTHON;
    else if (strncmp(name, "node", 4) == 0)
        s->runtime = RUNTIME_NODE;
    else if (strcmp(name, "provided") == 0 || strncmp(name, "provided.", 9) == 0)
        s->runtime = RUNTIME_PROVIDED; /* Lambda's provided.al2, provided.al2023 too */
    else
        return -1;
    return 0;
}

/* The first executable `name` on PATH, or NULL. */
static char *which(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *found = NULL, *save = NULL;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char *cand = path_join(dir, name);
        if (cand && access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(copy);
    return found;
}

/* The handler's file in the code folder: FILE.py, or FILE.js/.mjs/.cjs. */
static char *find_source(const struct step *s)
{
    static const char *const py[] = {".py", NULL}, *const js[] = {".js", ".mjs", ".cjs", NULL};
    for (const char *const *ext = s->runtime == RUNTIME_PYTHON ? py : js; *ext; ext++) {
        size_t len = strlen(s->code) + strlen(s->module) + strlen(*ext) + 2;
        char *cand = malloc(len);
        if (!cand)
            return NULL;
        snprintf(cand, len, "%s/%s%s", s->code, s->module, *ext);
        if (access(cand, R_OK) == 0)
            return cand;
        free(cand);
    }
    return NULL;
}

/* A custom runtime: CODE/bootstrap must be an executable file, which the
 * Runtime API adapter starts (runtime_api.h). */
static int provided_fill(struct step *s, struct raw_step *r, const struct config *cfg,
                         const char *file, const char *where, struct diag *d)
{
    if (!r->code) {
        diag_error(d, file, "%s: a \"provided\" step needs \"code\": the folder that holds its "
                   "executable \"bootstrap\"", where);
        return 1;
    }
    s->code = path_resolve(cfg->base_dir, r->code);
    s->source = s->code ? path_join(s->code, "bootstrap") : NULL;
    if (!s->source) {
        diag_error(d, file, "%s: out of memory", where);
        return 1;
    }
    struct stat st;
    int rc = stat(s->source, &st);
    if (rc < 0 || !S_ISREG(st.st_mode)) {
        diag_error(d, file, "%s: runtime provided: %s: %s; the function folder needs an "
                   "executable file named \"bootstrap\"", where, s->source,
                   rc < 0 ? strerror(errno) : "not a file");
        return 1;
    }
    if (access(s->source, X_OK) < 0) {
        diag_error(d, file, "%s: runtime provided: %s is not executable (chmod +x it)", where,
                   s->source);
        return 1;
    }
    return 0;
}

static int script_fill(struct step *s, struct raw_step *r, const struct config *cfg,
                       const char *file, const char *where, struct diag *d)
{
    if (s->runtime == RUNTIME_PROVIDED)
        return provided_fill(s, r, cfg, file, where, d);
    const char *want = s->runtime == RUNTIME_PYTHON ? cfg->python : cfg->node;
    if (!r->code) {
        diag_error(d, file, "%s: a \"%s\" step needs \"code\": the folder that holds %s", where,
                   runtime_name(s->runtime), s->module);
        return 1;
    }
    s->code = path_resolve(cfg->base_dir, r->code);
    s->interpreter = strchr(want, '/') ? strdup(want) : which(want);
    if (!s->interpreter || access(s->interpreter, X_OK) < 0) {
        diag_error(d, file, "%s: runtime %s needs the interpreter \"%s\", which is not installed "
                   "(apt-get install %s, or set \"%s\" in sluice.json)", where,
                   runtime_name(s->runtime), want,
                   s->runtime == RUNTIME_PYTHON ? "python3" : "nodejs",
                   s->runtime == RUNTIME_PYTHON ? "python" : "node");
        return 1;
    }
    struct err te;
    if (s->code && trust_check(s->code, &te) < 0) {
        diag_error(d, file, "%s: code: %s", where, te.msg);
        return 1;
    }
    if (!s->code || !(s->source = find_source(s))) {
        diag_error(d, file, "%s: handler \"%s\": no %s%s in %s", where, s->handler, s->module,
                   s->runtime == RUNTIME_PYTHON ? ".py" : ".js (or .mjs, .cjs)",
                   s->code ? s->code : r->code);
        return 1;
    }
    return 0;
}

/* --- issue 16: environment and layers --- */

/* Variables the runtime sets (docs/lambda.md): a function cannot set them. */
static bool reserved_env(const char *name)
{
    static const char *const names[] = {"_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
                                        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
                                        NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return strncmp(name, "AWS_LAMBDA_", 11) == 0;
}

static bool env_name_ok(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

/* {"NAME": "value"} as NAME=value strings, in order. */
static int parse_environment(const cJSON *env, const char *file, const char *where,
                             struct strv *out, struct diag *d)
{
    int errors = 0, n = cJSON_GetArraySize(env);
    out->v = calloc((size_t)n + 1, sizeof *out->v);
    if (!out->v) {
        diag_error(d, file, "%senvironment: out of memory", where);
        return 1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, env) {
        if (!env_name_ok(it->string)) {
            diag_error(d, file, "%senvironment: \"%s\" is not a variable name (letters, digits "
                       "and '_', not starting with a digit)", where, it->string);
            errors++;
        } else if (reserved_env(it->string)) {
            diag_error(d, file, "%senvironment: %s is set by sluice, as Lambda sets it (see "
                       "docs/lambda.md; AWS_REGION comes from \"region\" in sluice.json)", where,
                       it->string);
            errors++;
        } else if (!cJSON_IsString(it)) {
            diag_error(d, file, "%senvironment.%s: values are strings; write it in quotes",
                       where, it->string);
            errors++;
        } else {
            size_t len = strlen(it->string) + strlen(it->valuestring) + 2;
            char *kv = malloc(len);
            if (kv)
                snprintf(kv, len, "%s=%s", it->string, it->valuestring);
            out->v[out->n++] = kv;
        }
    }
    return errors;
}

static int parse_layers(struct pipeline *p, struct strv *raw, const struct config *cfg,
                        struct diag *d)
{
    int errors = 0;
    p->layers.v = calloc(raw->n + 1, sizeof *p->layers.v);
    for (size_t i = 0; p->layers.v && i < raw->n; i++) {
        char *dir = path_resolve(cfg->base_dir, raw->v[i]);
        struct stat st;
        if (dir && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
            diag_error(d, p->file, "layers[%zu]: \"%s\" is not a folder (a layer holds python/ "
                       "or nodejs/node_modules/)", i, dir);
            errors++;
        } else if (dir) {
            struct err te;
            if (trust_check(dir, &te) < 0) {
                diag_error(d, p->file, "layers[%zu]: %s", i, te.msg);
                errors++;
            }
        }
        p->layers.v[p->layers.n++] = dir;
    }
    return errors;
}

static int copy_pass_env(struct pipeline *p, const struct config *cfg)
{
    p->pass_env.v = calloc(cfg->pass_env.n + 1, sizeof *p->pass_env.v);
    for (size_t i = 0; p->pass_env.v && i < cfg->pass_env.n; i++)
        p->pass_env.v[p->pass_env.n++] = strdup(cfg->pass_env.v[i]);
    p->region = strdup(cfg->region ? cfg->region : "local");
    return p->pass_env.v && p->region ? 0 : 1;
}

static int step_fill(struct step *s, struct raw_step *r, size_t index, const char *file,
                     const struct config *cfg, struct diag *d)
{
    char where[64];
    snprintf(where, sizeof where, "steps[%zu]", index);
    int errors = 0;
    if (r->runtime && parse_runtime(s, r->runtime) < 0) {
        diag_error(d, file, "%s: runtime \"%s\" is not one of \"python3\", \"nodejs\", "
                   "\"provided\"", where, r->runtime);
        errors++;
    }
    if (!r->handler) {
        if (cJSON_HasObjectItem(r->json, "handler"))
            return errors + 1; /* present with the wrong type: already reported */
        diag_error(d, file, "%s: missing \"handler\" (MODULE.FUNCTION, e.g. \"echo.handler\")",
                   where);
        return errors + 1;
    }
    s->handler = r->handler;
    r->handler = NULL;
    errors += split_handler(s, file, where, d);
    s->name = r->name ? r->name : strdup(s->function ? s->function : "step");
    r->name = NULL;
    if (s->name && !valid_name(s->name, 64)) {
        diag_error(d, file, "%s: step name \"%s\" may hold only letters, digits, '_', '-', '.'",
                   where, s->name);
        errors++;
    }
    if (errors == 0 && s->runtime != RUNTIME_C)
        errors += script_fill(s, r, cfg, file, where, d);
    else if (r->code)
        diag_warning(d, file, "%s: \"code\" is only used with \"runtime\"", where);
    s->config_json = r->config ? cJSON_PrintUnformatted(r->config) : strdup("{}");
    s->timeout_ms = r->timeout_ms ? r->timeout_ms : TIMEOUT_DEFAULT_MS;
    errors += parse_retry(s, r->retry, file, where, d);
    if (r->environment) {
        char at[80];
        snprintf(at, sizeof at, "%s.", where);
        errors += parse_environment(r->environment, file, at, &s->environment, d);
    }
    if (!s->name || !s->config_json) {
        diag_error(d, file, "%s: out of memory", where);
        errors++;
    }
    return errors;
}

static int parse_steps(struct pipeline *p, const cJSON *steps, const struct config *cfg,
                       struct diag *d)
{
    int n = cJSON_GetArraySize(steps);
    if (n == 0) {
        diag_error(d, p->file, "\"steps\" must hold at least one step, e.g. "
                   "[{\"handler\": \"echo.handler\"}]");
        return 1;
    }
    p->steps = calloc((size_t)n, sizeof *p->steps);
    if (!p->steps) {
        diag_error(d, p->file, "out of memory");
        return 1;
    }
    int errors = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, steps) {
        struct raw_step r = {0};
        char where[64];
        snprintf(where, sizeof where, "steps[%zu]", p->n_steps);
        r.json = it;
        int e = confmap_apply(step_map, it, &r, p->file, where, d);
        if (cJSON_IsObject(it))
            e += step_fill(&p->steps[p->n_steps], &r, p->n_steps, p->file, cfg, d);
        errors += e;
        confmap_release(step_map, &r);
        p->n_steps++;
    }
    for (size_t i = 0; i < p->n_steps; i++)
        for (size_t j = 0; j < i; j++)
            if (p->steps[i].name && p->steps[j].name &&
                strcmp(p->steps[i].name, p->steps[j].name) == 0) {
                diag_error(d, p->file, "steps[%zu]: step name \"%s\" is also used by steps[%zu]; "
                           "give each step its own \"name\"", i, p->steps[i].name, j);
                errors++;
            }
    return errors;
}

static int check_dir(const char *file, const char *what, const char *dir, struct diag *d)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno == ENOENT)
            return 0; /* created when the daemon starts */
        diag_error(d, file, "%s \"%s\" cannot be read: %s", what, dir, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        diag_error(d, file, "%s \"%s\" exists but is not a folder", what, dir);
        return 1;
    }
    if (access(dir, R_OK | X_OK) < 0) {
        diag_error(d, file, "%s \"%s\" is not readable: %s (fix its permissions)", what, dir,
                   strerror(errno));
        return 1;
    }
    return 0;
}

struct raw_http {
    char *method, *path, *payload;
};

static const struct confmap http_trigger_map[] = {
    {"method", CONFMAP_STRING, offsetof(struct raw_http, method), 0, 0,
     "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (default ANY)"},
    {"path", CONFMAP_STRING, offsetof(struct raw_http, path), 0, 0,
     "route, with {name} path parameters and an optional last {name+}: /users/{id}"},
    {"payload", CONFMAP_STRING, offsetof(struct raw_http, payload), 0, 0,
     "event shape: \"2.0\" (HTTP API, default) or \"1.0\" (REST API: httpMethod, path...)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static int parse_http_trigger(struct pipeline *p, const cJSON *http, struct diag *d)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                          "OPTIONS", "ANY", NULL};
    struct raw_http h = {0};
    int errors = confmap_apply(http_trigger_map, http, &h, p->file, "trigger.http", d);
    p->trigger = TRIGGER_HTTP;
    p->http_method = h.method ? h.method : strdup("ANY");
    p->http_path = h.path;
    for (char *c = p->http_method; c && *c; c++)
        *c = (char)toupper((unsigned char)*c);
    size_t k = 0;
    while (p->http_method && methods[k] && strcmp(methods[k], p->http_method) != 0)
        k++;
    struct err e;
    if (errors == 0 && !methods[k]) {
        diag_error(d, p->file, "trigger.http.method: \"%s\" is not one of GET, POST, PUT, "
                   "PATCH, DELETE, HEAD, OPTIONS, ANY", p->http_method);
        errors++;
    } else if (errors == 0 && !p->http_path) {
        diag_error(d, p->file, "trigger.http: missing \"path\", e.g. \"/users/{id}\"");
        errors++;
    } else if (errors == 0 && http_route_check(p->http_path, &e) < 0) {
        diag_error(d, p->file, "trigger.http.%s", e.msg);
        errors++;
    }
    p->http_payload_v1 = h.payload && strcmp(h.payload, "1.0") == 0;
    if (h.payload && !p->http_payload_v1 && strcmp(h.payload, "2.0") != 0) {
        diag_error(d, p->file, "trigger.http.payload: \"%s\" is not \"1.0\" or \"2.0\"",
                   h.payload);
        errors++;
    }
    free(h.payload);
    return errors;
}

/* trigger.schedule and the keys that go with it. */
static int parse_schedule_trigger(struct pipeline *p, struct raw_trigger *t, struct diag *d)
{
    int errors = 0;
    if (!t->schedule) {
        if (t->timezone || t->catch_up || t->overlap) {
            diag_error(d, p->file, "trigger: \"timezone\", \"catch_up\" and \"overlap\" go "
                       "with \"schedule\"");
            errors++;
        }
        return errors;
    }
    p->trigger = TRIGGER_SCHEDULE;
    p->catch_up = t->catch_up;
    struct schedule *s = NULL;
    struct err e;
    if (schedule_parse(t->schedule, t->timezone, &s, &e) < 0) {
        diag_error(d, p->file, "trigger.schedule: %s", e.msg);
        errors++;
    } else if (t->timezone && schedule_is_rate(s)) {
        diag_warning(d, p->file, "trigger.timezone: a rate does not depend on the zone; it "
                     "applies to cron expressions");
    }
    schedule_free(&s);
    if (t->overlap && strcmp(t->overlap, "skip") != 0 && strcmp(t->overlap, "queue") != 0) {
        diag_error(d, p->file, "trigger.overlap: \"%s\" is not \"skip\" or \"queue\"",
                   t->overlap);
        errors++;
    }
    p->overlap = t->overlap && strcmp(t->overlap, "queue") == 0 ? OVERLAP_QUEUE : OVERLAP_SKIP;
    p->schedule = t->schedule;
    p->timezone = t->timezone;
    t->schedule = t->timezone = NULL;
    return errors;
}

static int parse_trigger_kind(struct pipeline *p, struct raw_trigger *t, struct diag *d)
{
    int kinds = (t->directory != NULL) + (t->zmq != NULL) + (t->http != NULL) +
                (t->schedule != NULL) + (t->nats != NULL);
    if (kinds > 1) {
        diag_error(d, p->file, "trigger: give one of \"directory\", \"zmq\", \"http\", "
                   "\"schedule\" or \"nats\", not %d", kinds);
        return 1;
    }
    int schedule_errors = parse_schedule_trigger(p, t, d);
    if (p->trigger == TRIGGER_SCHEDULE || schedule_errors)
        return schedule_errors;
    if (t->http)
        return parse_http_trigger(p, t->http, d);
    if (t->nats) {
        p->trigger = TRIGGER_NATS;
        return nats_trigger_parse(t->nats, p->file, &p->nats, d);
    }
    if (t->zmq) {
        struct raw_zmq z = {0};
        int errors = confmap_apply(zmq_trigger_map, t->zmq, &z, p->file, "trigger.zmq", d);
        p->trigger = TRIGGER_ZMQ;
        p->zmq_topic = z.topic ? z.topic : strdup("");
        if (!p->zmq_topic) {
            diag_error(d, p->file, "trigger.zmq: out of memory");
            errors++;
        }
        return errors;
    }
    if (t->directory) {
        p->trigger = TRIGGER_DIRECTORY;
        p->dir_spec = t->directory;
        t->directory = NULL;
        return 0;
    }
    return 0;
}

static int parse_trigger(struct pipeline *p, const cJSON *trigger, const struct config *cfg,
                         struct diag *d)
{
    struct raw_trigger t = {.recursive = true};
    int errors = confmap_apply(trigger_map, trigger, &t, p->file, "trigger", d);
    errors += parse_trigger_kind(p, &t, d);
    p->recursive = t.recursive;
    if (p->dir_spec) {
        p->dir = path_resolve(cfg->base_dir, p->dir_spec);
        errors += check_dir(p->file, "trigger.directory", p->dir, d);
    }
    if (t.match) {
        struct err e;
        if (match_compile(t.match, &p->match, &e) < 0) {
            diag_error(d, p->file, "trigger.%s", e.msg);
            errors++;
        }
    }
    confmap_release(trigger_map, &t);
    return errors;
}

static int parse_zmq_dest(struct pipeline *p, struct destination *dst, const cJSON *zmq,
                          const char *where, struct diag *d)
{
    struct raw_zmq_dest z = {0};
    char sub[64];
    snprintf(sub, sizeof sub, "%s.zmq", where);
    int errors = confmap_apply(zmq_dest_map, zmq, &z, p->file, sub, d);
    if (errors == 0 && !z.endpoint) {
        diag_error(d, p->file, "%s: missing \"endpoint\"", sub);
        errors++;
    }
    dst->kind = DEST_ZMQ;
    dst->endpoint = z.endpoint;
    dst->topic = z.topic ? z.topic : strdup(p->name ? p->name : "");
    return errors;
}

/* Records written into the pipeline's own trigger folder (or, when it is
 * recursive, a folder below it) are files it picks up again: each one makes
 * a new event and a new record, for ever. */
static int check_own_folder(const struct pipeline *p, const struct destination *dst,
                            const char *where, struct diag *d)
{
    if (dst->kind != DEST_DIRECTORY || p->trigger != TRIGGER_DIRECTORY || !p->dir)
        return 0;
    int inside = path_inside(dst->directory, p->dir);
    if (inside == 2 || (inside == 1 && p->recursive)) {
        diag_error(d, p->file, "%s.directory: \"%s\" is inside the pipeline's own trigger "
                   "folder \"%s\": every record would be picked up as a new event, for ever "
                   "(choose a folder outside it%s)", where, dst->directory, p->dir,
                   p->recursive ? ", or set trigger.recursive to false and use a subfolder" : "");
        return 1;
    }
    return 0;
}

static int parse_destination(struct pipeline *p, struct destination *dst, const cJSON *json,
                             const char *where, const struct config *cfg, struct diag *d)
{
    struct raw_destination r = {0};
    int errors = confmap_apply(destination_map, json, &r, p->file, where, d);
    int kinds = (r.directory != NULL) + (r.pipeline != NULL) + (r.zmq != NULL) +
                (r.nats != NULL);
    if (errors == 0 && kinds != 1) {
        diag_error(d, p->file, "%s: give exactly one of \"directory\", \"pipeline\", \"zmq\", "
                   "\"nats\"", where);
        errors++;
    } else if (errors == 0 && r.directory) {
        char what[64];
        snprintf(what, sizeof what, "%s.directory", where);
        dst->kind = DEST_DIRECTORY;
        dst->directory = path_resolve(cfg->base_dir, r.directory);
        errors += check_dir(p->file, what, dst->directory, d);
    } else if (errors == 0 && r.pipeline) {
        dst->kind = DEST_PIPELINE;
        dst->pipeline = r.pipeline;
        r.pipeline = NULL;
    } else if (errors == 0 && r.nats) {
        dst->kind = DEST_NATS;
        errors += nats_destination_parse(r.nats, p->file, where, &dst->endpoint, &dst->topic, d);
    } else if (errors == 0) {
        errors += parse_zmq_dest(p, dst, r.zmq, where, d);
    }
    confmap_release(destination_map, &r);
    return errors;
}

static void destination_release(struct destination *dst)
{
    free(dst->directory);
    free(dst->pipeline);
    free(dst->endpoint);
    free(dst->topic);
    memset(dst, 0, sizeof *dst);
}

static int parse_run_as(struct pipeline *p, const char *text, struct diag *d)
{
    struct err e;
    if (text && spawn_parse_run_as(text, &p->run_as, &e) < 0) {
        diag_error(d, p->file, "%s", e.msg);
        return 1;
    }
    return 0;
}

static int parse_isolation(struct pipeline *p, const char *isolation, struct diag *d)
{
    if (!isolation || strcmp(isolation, "process") == 0) {
        p->isolation = ISOLATION_PROCESS;
        return 0;
    }
    if (strcmp(isolation, "thread") == 0) {
        p->isolation = ISOLATION_THREAD;
        return 0;
    }
    diag_error(d, p->file, "isolation: \"%s\" is not one of \"process\", \"thread\"", isolation);
    return 1;
}

static int pipeline_fill(struct pipeline *p, struct raw_pipeline *r, const struct config *cfg,
                         struct diag *d)
{
    int errors = 0;
    if (!r->name && !cJSON_HasObjectItem(r->json, "name")) {
        diag_error(d, p->file, "missing \"name\"");
        errors++;
    } else if (r->name && !valid_name(r->name, 64)) {
        diag_error(d, p->file, "name \"%s\" may hold only letters, digits, '_', '-', '.' "
                   "(at most 64)", r->name);
        errors++;
    }
    p->name = r->name;
    r->name = NULL;
    p->concurrency = r->concurrency ? r->concurrency : cfg->workers;
    p->reserved_concurrency = r->reserved_concurrency;
    if (p->reserved_concurrency > p->concurrency) {
        diag_error(d, p->file, "reserved_concurrency (%d) is more than concurrency (%d): a "
                   "pipeline cannot hold more slots than it may use at once",
                   p->reserved_concurrency, p->concurrency);
        errors++;
    }
    p->max_event_age_ms = r->max_event_age_ms;
    errors += parse_isolation(p, r->isolation, d);
    p->limits = (struct limits){.memory_mb = r->memory_mb, .cpu_seconds = r->cpu_seconds,
                                .max_open_files = r->max_open_files, .pids = r->pids};
    p->sandbox = r->sandbox;
    errors += parse_run_as(p, r->run_as ? r->run_as : cfg->run_as, d);
    if (p->isolation == ISOLATION_THREAD &&
        (r->memory_mb || r->cpu_seconds || r->max_open_files || r->sandbox))
        diag_warning(d, p->file, "memory_mb, cpu_seconds, max_open_files and sandbox apply to "
                     "worker processes; with isolation \"thread\" they are ignored");
    p->batch = (struct batch){.size = 1, .window_ms = 0};
    if (r->batch) {
        p->batch.size = 10;
        errors += confmap_apply(batch_map, r->batch, &p->batch, p->file, "batch", d);
    }
    if (r->trigger)
        errors += parse_trigger(p, r->trigger, cfg, d);
    if (!r->steps && !cJSON_HasObjectItem(r->json, "steps")) {
        diag_error(d, p->file, "missing \"steps\" (e.g. [{\"handler\": \"echo.handler\"}])");
        errors++;
    } else if (r->steps) {
        errors += parse_steps(p, r->steps, cfg, d);
    }
    if (r->environment)
        errors += parse_environment(r->environment, p->file, "", &p->environment, d);
    errors += parse_layers(p, &r->layers, cfg, d) + copy_pass_env(p, cfg);
    if (r->on_failure)
        errors += parse_destination(p, &p->on_failure, r->on_failure, "on_failure", cfg, d);
    if (r->on_success)
        errors += parse_destination(p, &p->on_success, r->on_success, "on_success", cfg, d);
    errors += check_own_folder(p, &p->on_success, "on_success", d);
    errors += check_own_folder(p, &p->on_failure, "on_failure", d);
    return errors;
}

int pipeline_load(const char *file, const struct config *cfg, struct pipeline **out,
                  struct diag *d)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    struct err e;
    if (trust_check(file, &e) < 0 || path_read_file(file, &text, &len, &e) < 0) {
        diag_error(d, file, "%s", e.msg);
        return -1;
    }
    int rc = pipeline_parse(file, text, len, cfg, out, d);
    free(text);
    return rc;
}

int pipeline_parse(const char *file, const char *text, size_t len, const struct config *cfg,
                   struct pipeline **out, struct diag *d)
{
    *out = NULL;
    size_t at = 0;
    cJSON *doc = json_parse_exact(text, len, &at);
    if (!doc) {
        diag_error(d, file, "not valid JSON near byte %zu: fix the syntax (a missing comma or "
                   "quote?)", at);
        return -1;
    }
    struct pipeline *p = calloc(1, sizeof *p);
    struct raw_pipeline r = {0};
    int errors = 1;
    if (p && (p->file = strdup(file))) {
        /* every stage runs whatever the ones before found, so that one
         * look at `sluice check` shows every problem */
        r.json = doc;
        errors = confmap_apply(pipeline_map, doc, &r, file, "", d);
        errors += pipeline_fill(p, &r, cfg, d);
    } else {
        diag_error(d, file, "out of memory");
    }
    confmap_release(pipeline_map, &r);
    cJSON_Delete(doc);
    if (errors) {
        pipeline_free(&p);
        return -1;
    }
    *out = p;
    return 0;
}

static void step_release(struct step *s)
{
    free(s->name);
    free(s->handler);
    free(s->module);
    free(s->function);
    free(s->config_json);
    free(s->code);
    free(s->source);
    free(s->interpreter);
    strv_free(&s->environment);
}

void pipeline_free(struct pipeline **pp)
{
    struct pipeline *p = *pp;
    if (!p)
        return;
    for (size_t i = 0; i < p->n_steps; i++)
        step_release(&p->steps[i]);
    free(p->steps);
    free(p->name);
    free(p->file);
    free(p->dir_spec);
    free(p->dir);
    free(p->zmq_topic);
    nats_trigger_free(&p->nats);
    free(p->http_method);
    free(p->http_path);
    strv_free(&p->environment);
    strv_free(&p->layers);
    strv_free(&p->pass_env);
    free(p->region);
    free(p->schedule);
    free(p->timezone);
    match_free(&p->match);
    destination_release(&p->on_success);
    destination_release(&p->on_failure);
    free(p);
    *pp = NULL;
}

static int json_file_filter(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".json") == 0;
}

static int set_add(struct pipeline_set *set, struct pipeline *p, struct diag *d)
{
    struct pipeline *twin = pipeline_set_find(set, p->name);
    if (twin) {
        diag_error(d, p->file, "pipeline name \"%s\" is already used by %s; names must be unique",
                   p->name, twin->file);
        return -1;
    }
    struct pipeline **v = realloc(set->v, (set->n + 1) * sizeof *v);
    if (!v) {
        diag_error(d, p->file, "out of memory");
        return -1;
    }
    set->v = v;
    p->index = set->n;
    set->v[set->n++] = p;
    return 0;
}

/* Same route, whatever the parameters are called: /u/{id} and /u/{name}. */
static bool same_route(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a == '{' && *b == '{') {
            const char *ea = strchr(a, '}'), *eb = strchr(b, '}');
            if (!ea || !eb || (ea[-1] == '+') != (eb[-1] == '+'))
                return false;
            a = ea + 1;
            b = eb + 1;
            continue;
        }
        if (*a++ != *b++)
            return false;
    }
    return *a == *b;
}

/* Two pipelines claiming one route is an error: which should answer? */
static void check_routes(const struct pipeline_set *set, struct diag *d)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct pipeline *p = set->v[i];
        for (size_t j = 0; p->trigger == TRIGGER_HTTP && j < i; j++) {
            const struct pipeline *q = set->v[j];
            if (q->trigger != TRIGGER_HTTP || !same_route(p->http_path, q->http_path))
                continue;
            if (strcmp(p->http_method, q->http_method) == 0 ||
                strcmp(p->http_method, "ANY") == 0 || strcmp(q->http_method, "ANY") == 0)
                diag_error(d, p->file, "trigger.http: route %s %s is also claimed by %s",
                           p->http_method, p->http_path, q->file);
        }
    }
}

/* Does following destinations from `next` lead back to `from`? */
static bool destination_loops(const struct pipeline_set *set, const struct pipeline *from,
                              const char *next)
{
    for (size_t hops = 0; next && hops <= set->n; hops++) {
        if (strcmp(next, from->name) == 0)
            return true;
        const struct pipeline *q = pipeline_set_find(set, next);
        if (!q)
            return false;
        /* a record is sent by on_success or on_failure: follow both */
        if (q->on_success.kind == DEST_PIPELINE && q->on_failure.kind == DEST_PIPELINE &&
            strcmp(q->on_success.pipeline, q->on_failure.pipeline) != 0 &&
            destination_loops(set, from, q->on_failure.pipeline))
            return true;
        next = q->on_success.kind == DEST_PIPELINE ? q->on_success.pipeline
               : q->on_failure.kind == DEST_PIPELINE ? q->on_failure.pipeline : NULL;
    }
    return false;
}

/* A destination pipeline must exist, and records must not loop. */
static void check_destinations(const struct pipeline_set *set, struct diag *d)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct pipeline *p = set->v[i];
        const struct destination *dests[2] = {&p->on_success, &p->on_failure};
        static const char *const names[2] = {"on_success", "on_failure"};
        for (int k = 0; k < 2; k++) {
            if (dests[k]->kind != DEST_PIPELINE)
                continue;
            if (!pipeline_set_find(set, dests[k]->pipeline))
                diag_error(d, p->file, "%s.pipeline: no pipeline named \"%s\"", names[k],
                           dests[k]->pipeline);
            else if (destination_loops(set, p, dests[k]->pipeline))
                diag_error(d, p->file, "%s.pipeline: records sent to \"%s\" come back to \"%s\" "
                           "through destinations, and would loop for ever", names[k],
                           dests[k]->pipeline, p->name);
        }
    }
}

/* Reservations are carved out of max_concurrency: together they cannot
 * exceed it, and what is left must still let every other pipeline run. */
static void check_reservations(const struct config *cfg, const struct pipeline_set *set,
                               struct diag *d)
{
    long sum = 0;
    for (size_t i = 0; i < set->n; i++)
        sum += set->v[i]->reserved_concurrency;
    if (sum > cfg->max_concurrency)
        diag_error(d, cfg->pipelines_dir, "the pipelines reserve %ld slots (reserved_concurrency) "
                   "but max_concurrency in %s is %d: lower the reservations or raise "
                   "max_concurrency", sum, cfg->file, cfg->max_concurrency);
}

int pipeline_set_load(const struct config *cfg, struct pipeline_set *set, struct diag *d)
{
    memset(set, 0, sizeof *set);
    struct dirent **names = NULL;
    int n = scandir(cfg->pipelines_dir, &names, json_file_filter, alphasort);
    if (n < 0) {
        diag_error(d, cfg->file, "pipelines_dir \"%s\" cannot be read: %s (create it or set "
                   "\"pipelines_dir\")", cfg->pipelines_dir, strerror(errno));
        return -1;
    }
    int before = d->errors;
    for (int i = 0; i < n; i++) {
        char *file = path_join(cfg->pipelines_dir, names[i]->d_name);
        struct pipeline *p = NULL;
        if (file && pipeline_load(file, cfg, &p, d) == 0 && set_add(set, p, d) < 0)
            pipeline_free(&p);
        free(file);
        free(names[i]);
    }
    free(names);
    if (n == 0)
        diag_warning(d, cfg->pipelines_dir, "no pipeline files (*.json) here; the daemon will "
                     "have nothing to run");
    check_destinations(set, d);
    check_routes(set, d);
    check_reservations(cfg, set, d);
    if (router_index_new(set, &set->routes) < 0)
        diag_error(d, cfg->pipelines_dir, "out of memory while indexing the pipelines' routes");
    return d->errors > before ? -1 : 0;
}

void pipeline_set_free(struct pipeline_set *set)
{
    router_index_free(&set->routes);
    for (size_t i = 0; i < set->n; i++)
        pipeline_free(&set->v[i]);
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

struct pipeline *pipeline_set_find(const struct pipeline_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->name && name && strcmp(set->v[i]->name, name) == 0)
            return set->v[i];
    return NULL;
}
