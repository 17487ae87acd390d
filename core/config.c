/* config.c - reads and validates sluice.json through a declared table
 * (confmap), then resolves paths. See config.h. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "path.h"
#include "paths.h"
#include "wire.h"
#include "spawn.h"

/* Loopback only by default; nothing listens beyond this machine unless a
 * config says so. */
static const char default_json[] =
    "{\n"
    "  \"state_dir\": \"var\",\n"
    "  \"pipelines_dir\": \"pipelines\",\n"
    "  \"zmq\": { \"pull\": \"tcp://127.0.0.1:5557\", \"router\": \"tcp://127.0.0.1:5558\" }\n"
    "}\n";

const char *config_default_json(void)
{
    return default_json;
}

struct raw {
    char *state_dir, *database, *pipelines_dir;
    struct strv plugin_path;
    int workers, queue_size, max_concurrency, idle_timeout_s;
    const cJSON *zmq, *http, *admin, *retention;
    char *python, *node;
    char *region;               /* issue 16: worker environment */
    struct strv pass_env;
    char *run_as;               /* issue 21: workers' identity */
    char *node_name;            /* issue 18: this node's name in its rows */
    char *durability;           /* issue 15: "process" or "power" */
};

static const struct confmap config_map[] = {
    {"state_dir", CONFMAP_STRING, offsetof(struct raw, state_dir), 0, 0,
     "folder for the database and other state (default \"var\")"},
    {"database", CONFMAP_STRING, offsetof(struct raw, database), 0, 0,
     "SQLite database file (default STATE_DIR/sluice.db)"},
    {"pipelines_dir", CONFMAP_STRING, offsetof(struct raw, pipelines_dir), 0, 0,
     "folder of pipeline files, one pipeline per *.json (default \"pipelines\")"},
    {"plugin_path", CONFMAP_STRINGS, offsetof(struct raw, plugin_path), 0, 0,
     "folders searched for MODULE.so, in order"},
    {"workers", CONFMAP_INT, offsetof(struct raw, workers), 1, 1024,
     "executor threads shared by all pipelines, and the concurrency of a pipeline that sets "
     "none (default: number of CPUs)"},
    {"max_concurrency", CONFMAP_INT, offsetof(struct raw, max_concurrency), 1, 100000,
     "events running at once over all pipelines, like Lambda's account concurrency "
     "(default 64, at least workers)"},
    {"idle_timeout_s", CONFMAP_INT, offsetof(struct raw, idle_timeout_s), 1, 86400,
     "a warm worker process idle this long is stopped (default 300)"},
    {"queue_size", CONFMAP_INT, offsetof(struct raw, queue_size), 1, 1 << 20,
     "events each pipeline holds in memory; more wait in the journal (default 1024)"},
    {"durability", CONFMAP_STRING, offsetof(struct raw, durability), 0, 0,
     "what a logged event survives: \"process\" (the daemon killed, kill -9 included) or "
     "\"power\" (also power loss: an fsync per group commit) (default \"power\")"},
    {"run_as", CONFMAP_STRING, offsetof(struct raw, run_as), 0, 0,
     "\"USER\" or \"USER:GROUP\" worker processes run as when the daemon runs as root"},
    {"python", CONFMAP_STRING, offsetof(struct raw, python), 0, 0,
     "interpreter for \"runtime\": \"python3\" steps (default: python3 on PATH)"},
    {"node", CONFMAP_STRING, offsetof(struct raw, node), 0, 0,
     "interpreter for \"runtime\": \"nodejs\" steps (default: node on PATH)"},
    {"http", CONFMAP_OBJECT, offsetof(struct raw, http), 0, 0,
     "HTTP trigger listener: listen, max_body_bytes, timeout_ms"},
    {"zmq", CONFMAP_OBJECT, offsetof(struct raw, zmq), 0, 0,
     "ZeroMQ endpoints: pull, router, sub: [{endpoint, topics}]"},
    /* issue 16: what workers see (core/worker_env.c) */
    {"node_name", CONFMAP_STRING, offsetof(struct raw, node_name), 0, 0,
     "this node's name in the node column of its rows (default: the host name)"},
    {"region", CONFMAP_STRING, offsetof(struct raw, region), 0, 0,
     "AWS_REGION and AWS_DEFAULT_REGION of handlers (default \"local\")"},
    {"pass_env", CONFMAP_STRINGS, offsetof(struct raw, pass_env), 0, 0,
     "names of the daemon's environment variables handed to workers (default none)"},
    {"admin", CONFMAP_OBJECT, offsetof(struct raw, admin), 0, 0,
     "admin listener (/metrics, /healthz, /status): listen, allow_remote"},
    {"retention", CONFMAP_OBJECT, offsetof(struct raw, retention), 0, 0,
     "how long rows are kept: invocations_days, logs_days, events_done_days, "
     "events_dead_days, rejected_days, max_db_mb"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct confmap admin_map[] = {
    {"listen", CONFMAP_STRING, offsetof(struct config_admin, listen), 0, 0,
     "HOST:PORT for /metrics, /healthz and /status (default 127.0.0.1:9090; \"\" turns it off)"},
    {"allow_remote", CONFMAP_BOOL, offsetof(struct config_admin, allow_remote), 0, 0,
     "allow listening beyond loopback (default false)"},
    {NULL, 0, 0, 0, 0, NULL},
};

#define DAYS_MAX 36500.0
static const struct confmap retention_map[] = {
    {"invocations_days", CONFMAP_NUMBER, offsetof(struct config_retention, invocations_days),
     0, DAYS_MAX, "days invocation rows are kept (default 0: forever)"},
    {"logs_days", CONFMAP_NUMBER, offsetof(struct config_retention, logs_days), 0, DAYS_MAX,
     "days handler log lines are kept (default 0: forever)"},
    {"events_done_days", CONFMAP_NUMBER, offsetof(struct config_retention, events_done_days), 0,
     DAYS_MAX, "days finished events (and replayed dead ones) are kept (default 0: forever)"},
    {"events_dead_days", CONFMAP_NUMBER, offsetof(struct config_retention, events_dead_days), 0,
     DAYS_MAX, "days dead-lettered events never replayed are kept (default 0: until replayed)"},
    {"rejected_days", CONFMAP_NUMBER, offsetof(struct config_retention, rejected_days), 0,
     DAYS_MAX, "days rejected messages are kept (default 0: forever)"},
    {"max_db_mb", CONFMAP_NUMBER, offsetof(struct config_retention, max_db_mb), 0, 1 << 24,
     "database size above which the oldest rows are pruned first (default 0: no cap)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct confmap zmq_map[] = {
    {"pull", CONFMAP_STRING, offsetof(struct config_zmq, pull), 0, 0,
     "endpoint the PULL socket binds (producers PUSH here)"},
    {"router", CONFMAP_STRING, offsetof(struct config_zmq, router), 0, 0,
     "endpoint the ROUTER socket binds (sluice invoke)"},
    {"sub", CONFMAP_ARRAY, offsetof(struct config_zmq, sub_raw), 0, 0,
     "publishers to connect to: [{\"endpoint\": E, \"topics\": [T...]}]"},
    {"max_message_bytes", CONFMAP_INT, offsetof(struct config_zmq, max_message_bytes), 64,
     1 << 30, "largest message accepted (ZMQ_MAXMSGSIZE; default 1048576)"},
    {"hwm", CONFMAP_INT, offsetof(struct config_zmq, hwm), 1, 10000000,
     "messages libzmq queues per socket before pushing back (default 10000)"},
    {"allow_remote", CONFMAP_BOOL, offsetof(struct config_zmq, allow_remote), 0, 0,
     "allow binding beyond loopback without CURVE (default false)"},
    {"curve", CONFMAP_OBJECT, offsetof(struct config_zmq, curve_raw), 0, 0,
     "CURVE: {secret_key, public_key, allowed_clients: [..], client_secret_key, "
     "client_public_key} (Z85, from `sluice keygen`)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct confmap curve_map[] = {
    {"secret_key", CONFMAP_STRING, offsetof(struct config_zmq, curve_secret), 0, 0,
     "the daemon's secret key"},
    {"public_key", CONFMAP_STRING, offsetof(struct config_zmq, curve_public), 0, 0,
     "the daemon's public key (clients need it)"},
    {"allowed_clients", CONFMAP_STRINGS, offsetof(struct config_zmq, curve_clients), 0, 0,
     "public keys of the clients allowed in"},
    {"client_secret_key", CONFMAP_STRING, offsetof(struct config_zmq, client_secret), 0, 0,
     "secret key `sluice publish`/`invoke` use"},
    {"client_public_key", CONFMAP_STRING, offsetof(struct config_zmq, client_public), 0, 0,
     "public key `sluice publish`/`invoke` use"},
    {NULL, 0, 0, 0, 0, NULL},
};

bool config_listen_local(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    return (n == 9 && strncmp(listen, "localhost", 9) == 0) ||
           (n >= 4 && strncmp(listen, "127.", 4) == 0) || (n == 5 && strncmp(listen, "[::1]", 5) == 0);
}

bool config_endpoint_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    return config_listen_local(endpoint + 6);
}

static int check_z85(const char *key, const char *file, const char *what, struct diag *d)
{
    size_t n = key ? strlen(key) : 0;
    if (key && n != 40) {
        diag_error(d, file, "zmq.curve.%s: a key is 40 Z85 characters (from `sluice keygen`), "
                   "got %zu", what, n);
        return 1;
    }
    return 0;
}

static int check_curve(struct config *c, struct diag *d)
{
    struct config_zmq *z = &c->zmq;
    int errors = check_z85(z->curve_secret, c->file, "secret_key", d) +
                 check_z85(z->curve_public, c->file, "public_key", d) +
                 check_z85(z->client_secret, c->file, "client_secret_key", d) +
                 check_z85(z->client_public, c->file, "client_public_key", d);
    for (size_t i = 0; i < z->curve_clients.n; i++)
        errors += check_z85(z->curve_clients.v[i], c->file, "allowed_clients[]", d);
    if (z->curve_secret && (!z->curve_public || z->curve_clients.n == 0)) {
        diag_error(d, c->file, "zmq.curve: with secret_key give public_key and "
                   "allowed_clients (the client public keys let in)");
        errors++;
    }
    return errors;
}

/* What a source accepts must fit in a worker's frame: process isolation
 * (the default) could not run it. An HTTP body may grow by a third in the
 * event (base64). */
/* The name in the node column: given, else the host name. Printable,
 * 1-64 bytes, so fleet views can show it as it is. Returns the errors. */
static int set_node_name(struct config *c, const char *given, struct diag *d)
{
    char host[256] = "";
    if (!given && gethostname(host, sizeof host - 1) < 0)
        snprintf(host, sizeof host, "localhost");
    const char *name = given ? given : host;
    size_t n = strlen(name);
    bool printable = n > 0 && n <= 64;
    for (size_t i = 0; printable && i < n; i++)
        printable = (unsigned char)name[i] > 0x20 && name[i] != 0x7f;
    if (!printable) {
        diag_error(d, c->file, "node_name \"%.80s\": give 1 to 64 printable characters without "
                   "spaces (it names this node in every row of its database)", name);
        return 1;
    }
    c->node_name = strdup(name);
    return c->node_name ? 0 : 1;
}

static int check_sizes(const struct config *c, struct diag *d)
{
    int errors = 0;
    if ((unsigned)c->zmq.max_message_bytes > WIRE_MAX_EVENT) {
        diag_error(d, c->file, "zmq.max_message_bytes: %d is more than the largest event a "
                   "worker process takes (%u bytes: 64 MiB less room for the frame); lower it",
                   c->zmq.max_message_bytes, WIRE_MAX_EVENT);
        errors++;
    }
    if ((unsigned)c->http.max_body_bytes > WIRE_MAX_EVENT / 4 * 3) {
        diag_error(d, c->file, "http.max_body_bytes: %d is more than a worker process takes in "
                   "an event (%u bytes, base64 included); lower it", c->http.max_body_bytes,
                   WIRE_MAX_EVENT / 4 * 3);
        errors++;
    }
    return errors;
}

/* Binding beyond loopback needs authentication or an explicit opt-in. */
static int check_exposure(struct config *c, struct diag *d)
{
    int errors = 0;
    const char *binds[2] = {c->zmq.pull, c->zmq.router};
    for (int i = 0; i < 2; i++) {
        if (binds[i] && !config_endpoint_local(binds[i]) && !c->zmq.curve_secret &&
            !c->zmq.allow_remote) {
            diag_error(d, c->file, "zmq.%s: %s is reachable from other machines without "
                       "authentication; configure zmq.curve (see `sluice keygen`) or set "
                       "zmq.allow_remote to true", i ? "router" : "pull", binds[i]);
            errors++;
        }
    }
    if (c->admin.listen && !config_listen_local(c->admin.listen) && !c->admin.allow_remote) {
        diag_error(d, c->file, "admin.listen: %s is reachable from other machines and /metrics "
                   "and /status have no authentication; keep it on 127.0.0.1 (scrape through a "
                   "proxy or an SSH tunnel), or set admin.allow_remote to true", c->admin.listen);
        errors++;
    }
    if (c->http.listen && !config_listen_local(c->http.listen) && !c->http.allow_remote) {
        diag_error(d, c->file, "http.listen: %s is reachable from other machines and the HTTP "
                   "trigger has no authentication; put it behind a proxy that has, and set "
                   "http.allow_remote to true", c->http.listen);
        errors++;
    }
    return errors;
}

struct raw_sub {
    char *endpoint;
    struct strv topics;
};

static const struct confmap sub_map[] = {
    {"endpoint", CONFMAP_STRING, offsetof(struct raw_sub, endpoint), 0, 0,
     "publisher to connect to, e.g. \"tcp://127.0.0.1:5556\""},
    {"topics", CONFMAP_STRINGS, offsetof(struct raw_sub, topics), 0, 0,
     "topic prefixes to subscribe to (default: all)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct confmap http_map[] = {
    {"listen", CONFMAP_STRING, offsetof(struct config_http, listen), 0, 0,
     "HOST:PORT to listen on (default 127.0.0.1:8080)"},
    {"max_body_bytes", CONFMAP_INT, offsetof(struct config_http, max_body_bytes), 0, 1 << 30,
     "largest request body; larger ones get 413 (default 1048576)"},
    {"timeout_ms", CONFMAP_INT, offsetof(struct config_http, timeout_ms), 1, 900000,
     "answer 504 when the pipeline takes longer (default 30000)"},
    {"allow_remote", CONFMAP_BOOL, offsetof(struct config_http, allow_remote), 0, 0,
     "allow listening beyond loopback (default false)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static int check_subs(const cJSON *subs, const char *file, struct diag *d)
{
    int errors = 0, i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, subs) {
        char where[32];
        snprintf(where, sizeof where, "zmq.sub[%d]", i++);
        struct raw_sub r = {0};
        int e = confmap_apply(sub_map, s, &r, file, where, d);
        if (e == 0 && !r.endpoint) {
            diag_error(d, file, "%s: missing \"endpoint\" (e.g. \"tcp://127.0.0.1:5556\")",
                       where);
            e++;
        }
        confmap_release(sub_map, &r);
        errors += e;
    }
    return errors;
}

static int resolve_paths(struct config *c, struct raw *r, struct diag *d)
{
    c->state_dir = path_resolve(c->base_dir, r->state_dir ? r->state_dir : "var");
    c->pipelines_dir = path_resolve(c->base_dir, r->pipelines_dir ? r->pipelines_dir : "pipelines");
    if (r->database)
        c->database = path_resolve(c->base_dir, r->database);
    else if (c->state_dir)
        c->database = path_join(c->state_dir, "sluice.db");
    if (!c->state_dir || !c->pipelines_dir || !c->database)
        goto oom;
    c->plugin_path.n = r->plugin_path.n;
    c->plugin_path.v = calloc(r->plugin_path.n + 1, sizeof(char *));
    if (!c->plugin_path.v)
        goto oom;
    for (size_t i = 0; i < r->plugin_path.n; i++)
        if (!(c->plugin_path.v[i] = path_resolve(c->base_dir, r->plugin_path.v[i])))
            goto oom;
    return 0;
oom:
    diag_error(d, c->file, "out of memory");
    return -1;
}

/* sluice.json may carry comments (the example in share/doc/sluice/examples
 * does). They are blanked out in place, outside strings, so a syntax error
 * is still reported at its own byte. An unterminated block comment runs to
 * the end (and the parse then fails there). */
static void blank_comments(char *t, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (t[i] == '\\')
                i++;
            else if (t[i] == '"')
                in_string = false;
        } else if (t[i] == '"') {
            in_string = true;
        } else if (t[i] == '/' && i + 1 < len && (t[i + 1] == '/' || t[i + 1] == '*')) {
            bool line = t[i + 1] == '/';
            size_t j = i + 2;
            while (j < len && (line ? t[j] != '\n' : !(t[j] == '*' && j + 1 < len && t[j + 1] == '/')))
                j++;
            size_t stop = line || j >= len ? j : j + 2;
            for (; i < stop; i++)
                if (t[i] != '\n')
                    t[i] = ' ';
            i--;
        }
    }
}

static cJSON *parse_commented(const char *text, size_t len, size_t *at)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        *at = 0;
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    blank_comments(copy, len);
    cJSON *doc = json_parse_exact(copy, len, at);
    free(copy);
    return doc;
}

static int parse_doc(struct config *c, const char *text, size_t len, struct diag *d)
{
    size_t at = 0;
    c->doc = parse_commented(text, len, &at);
    if (!c->doc) {
        diag_error(d, c->file, "not valid JSON near byte %zu: fix the syntax (a missing comma "
                   "or quote?)", at);
        return -1;
    }
    return 0;
}

static int fill_default_plugin_path(struct strv *s)
{
    s->v = calloc(2, sizeof(char *));
    if (!s->v || !(s->v[0] = strdup(paths_plugin_dir()))) {
        free(s->v);
        s->v = NULL;
        return -1;
    }
    s->n = 1;
    return 0;
}

static int parse_durability(struct config *c, const char *v, struct diag *d)
{
    c->durability = DURABILITY_POWER;
    if (!v || !strcmp(v, "power"))
        return 0;
    if (!strcmp(v, "process")) {
        c->durability = DURABILITY_PROCESS;
        return 0;
    }
    diag_error(d, c->file, "durability: \"%s\" is not a setting: use \"process\" (survives the "
               "daemon being killed) or \"power\" (also survives power loss)", v);
    return 1;
}

static int apply_doc(struct config *c, struct diag *d)
{
    struct raw r = {.workers = (int)sysconf(_SC_NPROCESSORS_ONLN), .queue_size = 1024};
    c->zmq.max_message_bytes = 1 << 20;
    c->zmq.hwm = 10000;
    int errors = confmap_apply(config_map, c->doc, &r, c->file, "", d);
    if (r.zmq)
        errors += confmap_apply(zmq_map, r.zmq, &c->zmq, c->file, "zmq", d);
    c->http.max_body_bytes = 1 << 20;
    c->http.timeout_ms = 30000;
    if (r.http)
        errors += confmap_apply(http_map, r.http, &c->http, c->file, "http", d);
    if (!c->http.listen)
        c->http.listen = strdup("127.0.0.1:8080");
    if (r.admin)
        errors += confmap_apply(admin_map, r.admin, &c->admin, c->file, "admin", d);
    if (!c->admin.listen)
        c->admin.listen = strdup("127.0.0.1:9090");
    if (c->admin.listen && !c->admin.listen[0]) { /* "" turns it off */
        free(c->admin.listen);
        c->admin.listen = NULL;
    }
    if (r.retention)
        errors += confmap_apply(retention_map, r.retention, &c->retention, c->file, "retention",
                                d);
    if (c->zmq.curve_raw)
        errors += confmap_apply(curve_map, c->zmq.curve_raw, &c->zmq, c->file, "zmq.curve", d);
    errors += check_curve(c, d);
    if (c->zmq.sub_raw)
        errors += check_subs(c->zmq.sub_raw, c->file, d);
    if (!r.plugin_path.v && fill_default_plugin_path(&r.plugin_path) < 0)
        errors++;
    c->workers = r.workers > 0 ? r.workers : 1;
    c->max_concurrency = r.max_concurrency ? r.max_concurrency
                                           : c->workers > 64 ? c->workers : 64;
    c->idle_timeout_s = r.idle_timeout_s ? r.idle_timeout_s : 300;
    /* Debian's interpreters first: their python3-* and node-* packages
     * install for them, whatever else is on PATH. */
    c->python = r.python ? r.python
                         : strdup(access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                                         : "python3");
    c->node = r.node ? r.node
                     : strdup(access("/usr/bin/node", X_OK) == 0 ? "/usr/bin/node" : "node");
    r.python = r.node = NULL;
    c->region = r.region ? r.region : strdup("local");
    c->pass_env = r.pass_env;
    r.region = NULL;
    r.pass_env = (struct strv){0};
    struct err re;
    struct run_as ra;
    if (r.run_as && spawn_parse_run_as(r.run_as, &ra, &re) < 0) {
        diag_error(d, c->file, "%s", re.msg);
        errors++;
    }
    c->run_as = r.run_as;
    r.run_as = NULL;
    errors += set_node_name(c, r.node_name, d);
    c->queue_size = r.queue_size;
    errors += parse_durability(c, r.durability, d);
    if (!c->zmq.pull)
        c->zmq.pull = strdup("tcp://127.0.0.1:5557");
    if (!c->zmq.router)
        c->zmq.router = strdup("tcp://127.0.0.1:5558");
    if (errors == 0)
        errors += check_exposure(c, d) + check_sizes(c, d);
    if (errors == 0)
        errors += resolve_paths(c, &r, d) < 0;
    confmap_release(config_map, &r);
    return errors ? -1 : 0;
}

static int config_base(struct config *c, const char *file)
{
    if (!file) {
        c->file = strdup(CONFIG_EMBEDDED);
        c->base_dir = strdup(".");
    } else {
        c->file = strdup(file);
        c->base_dir = path_dirname(file);
    }
    return c->file && c->base_dir ? 0 : -1;
}

static int config_build(struct config *c, const char *text, size_t len, struct config **out,
                        struct diag *d);

int config_load(const char *file, struct config **out, struct diag *d)
{
    *out = NULL;
    if (!file && access("sluice.json", F_OK) == 0)
        file = "sluice.json";
    struct config *c = calloc(1, sizeof *c);
    if (!c || config_base(c, file) < 0) {
        diag_error(d, file ? file : CONFIG_EMBEDDED, "out of memory");
        config_free(&c);
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    struct err e;
    if (file && path_read_file(file, &text, &len, &e) < 0) {
        diag_error(d, file, "%s (pass an existing file with -c, or none for the embedded default)",
                   e.msg);
        config_free(&c);
        return -1;
    }
    int rc = config_build(c, file ? text : default_json, file ? len : strlen(default_json), out, d);
    free(text);
    return rc;
}

/* Parse and validate text into c; takes c over (freed on failure). */
static int config_build(struct config *c, const char *text, size_t len, struct config **out,
                        struct diag *d)
{
    if (parse_doc(c, text, len, d) < 0 || apply_doc(c, d) < 0) {
        config_free(&c);
        return -1;
    }
    *out = c;
    return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct config **out,
                 struct diag *d)
{
    *out = NULL;
    struct config *c = calloc(1, sizeof *c);
    if (!c || config_base(c, name) < 0) {
        diag_error(d, name, "out of memory");
        config_free(&c);
        return -1;
    }
    return config_build(c, text, len, out, d);
}

void config_free(struct config **cp)
{
    struct config *c = *cp;
    if (!c)
        return;
    free(c->file);
    free(c->base_dir);
    free(c->state_dir);
    free(c->database);
    free(c->pipelines_dir);
    strv_free(&c->plugin_path);
    free(c->zmq.pull);
    free(c->zmq.router);
    free(c->http.listen);
    free(c->admin.listen);
    free(c->zmq.curve_secret);
    free(c->zmq.curve_public);
    strv_free(&c->zmq.curve_clients);
    free(c->zmq.client_secret);
    free(c->zmq.client_public);
    free(c->python);
    free(c->run_as);
    free(c->node_name);
    free(c->node);
    free(c->region);
    strv_free(&c->pass_env);
    cJSON_Delete(c->doc);
    free(c);
    *cp = NULL;
}
