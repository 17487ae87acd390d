/* test_config.c - unit tests for the daemon configuration (core/config.c):
 * the embedded default (no sluice.json in the working folder), ./sluice.json
 * picked up without -c, relative paths resolved against the config file's
 * folder, ZeroMQ settings, and the problems a bad file reports: unknown key,
 * wrong type, out of range, invalid JSON (saying where), missing file. */
#include "config.h"

#include "test.h"
#include "testutil.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp;           /* this test's private folder */
static char saved_cwd[PATH_MAX];

static void enter(const char *dir)
{
    if (chdir(dir) < 0) {
        perror(dir);
        exit(2);
    }
}

static void leave(void)
{
    if (chdir(saved_cwd) < 0) {
        perror(saved_cwd);
        exit(2);
    }
}

/* The build's plugin folder: FIXTURE_PLUGIN_DIR is BUILD/tests/plugins, the
 * bundled plugins live in BUILD/plugins. */
static char *build_plugin_dir(void)
{
    const char *fx = FIXTURE_PLUGIN_DIR;
    const char *tail = "/tests/plugins";
    size_t n = strlen(fx), k = strlen(tail);
    if (n < k || strcmp(fx + n - k, tail) != 0)
        return NULL;
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s/plugins", (int)(n - k), fx);
    return strdup(buf);
}

/* p names the same place as dir/rel: either literally, or as rel relative
 * to the working folder dir. */
static int same_place(const char *p, const char *dir, const char *rel)
{
    if (!p)
        return 0;
    char abs[4096];
    snprintf(abs, sizeof abs, "%s/%s", dir, rel);
    return strcmp(p, abs) == 0 || strcmp(p, rel) == 0;
}

static void test_embedded_default(void)
{
    char *dir = tu_path(tmp, "empty");
    mkdir(dir, 0755);
    char real[PATH_MAX];
    CHECK(realpath(dir, real) != NULL);
    enter(dir);
    struct config *c = (struct config *)&c; /* must be overwritten */
    struct diag d = {0};
    int rc = config_load(NULL, &c, &d);
    leave();
    CHECK(rc == 0);
    CHECK(d.errors == 0);
    if (d.n)
        tu_diag_dump("embedded default", &d);
    CHECK(c != NULL);
    if (rc == 0 && c) {
        CHECK_STR(c->file, CONFIG_EMBEDDED);
        /* state in ./var, database var/sluice.db, pipelines from ./pipelines,
         * all relative to the working folder the default was loaded in */
        CHECK(same_place(c->state_dir, real, "var"));
        CHECK(same_place(c->database, real, "var/sluice.db"));
        CHECK(same_place(c->pipelines_dir, real, "pipelines"));
        char want_db[4096];
        snprintf(want_db, sizeof want_db, "%s/sluice.db", c->state_dir);
        CHECK_STR(c->database, want_db);
        /* plugins from the build's plugin folder, where echo.so was built */
        char *plugins = build_plugin_dir();
        CHECK(c->plugin_path.n == 1);
        CHECK_STR(c->plugin_path.n ? c->plugin_path.v[0] : NULL, plugins);
        char *echo = plugins ? tu_path(plugins, "echo.so") : NULL;
        CHECK(echo && access(echo, R_OK) == 0);
        free(echo);
        free(plugins);
        /* ZeroMQ on loopback, and the documented limits */
        CHECK_STR(c->zmq.pull, "tcp://127.0.0.1:5557");
        CHECK_STR(c->zmq.router, "tcp://127.0.0.1:5558");
        CHECK(c->zmq.sub_raw == NULL);
        CHECK(c->zmq.max_message_bytes == 1048576);
        CHECK(c->zmq.hwm == 10000);
        CHECK(c->workers >= 1);
        CHECK(c->workers == (int)sysconf(_SC_NPROCESSORS_ONLN));
        CHECK(c->queue_size == 1024);
        CHECK(c->zmq.allow_remote == false);
        CHECK(c->zmq.curve_secret == NULL);
        CHECK_STR(c->http.listen, "127.0.0.1:8080");
        CHECK(c->http.max_body_bytes == 1048576);
        CHECK(c->http.timeout_ms == 30000);
        CHECK(c->python != NULL && c->node != NULL);
        CHECK_STR(c->admin.listen, "127.0.0.1:9090");
        CHECK(c->retention.invocations_days == 0 && c->retention.max_db_mb == 0);
    }
    config_free(&c);
    CHECK(c == NULL);
    config_free(&c); /* NULL is fine */
    diag_free(&d);

    /* the default text itself is valid JSON that names what the docs say */
    cJSON *def = cJSON_Parse(config_default_json());
    CHECK(def != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(def, "state_dir")), "var");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(def, "pipelines_dir")), "pipelines");
    cJSON_Delete(def);
    free(dir);
}

/* Without -c, ./sluice.json wins over the embedded default. */
static void test_cwd_sluice_json(void)
{
    char *dir = tu_path(tmp, "cwdconf");
    mkdir(dir, 0755);
    CHECK(tu_write_in(dir, "sluice.json", "{\"state_dir\": \"st\", \"workers\": 3}") == 0);
    enter(dir);
    struct config *c = NULL;
    struct diag d = {0};
    int rc = config_load(NULL, &c, &d);
    leave();
    CHECK(rc == 0 && c);
    if (c) {
        CHECK_STR(c->file, "sluice.json");
        CHECK(c->workers == 3);
        CHECK(same_place(c->state_dir, dir, "st"));
        CHECK(same_place(c->database, dir, "st/sluice.db"));
        CHECK(same_place(c->pipelines_dir, dir, "pipelines"));
    }
    config_free(&c);
    diag_free(&d);
    free(dir);
}

static void test_relative_paths(void)
{
    char *dir = tu_path(tmp, "conf");
    mkdir(dir, 0755);
    CHECK(tu_write_in(dir, "sluice.json",
                      "{\n"
                      "  \"state_dir\": \"state\",\n"
                      "  \"pipelines_dir\": \"pl\",\n"
                      "  \"plugin_path\": [\"plug\", \"/opt/sluice/plugins\"],\n"
                      "  \"workers\": 2,\n"
                      "  \"queue_size\": 16,\n"
                      "  \"zmq\": {\"pull\": \"tcp://*:6000\", \"router\": \"ipc:///tmp/r\",\n"
                      "          \"allow_remote\": true,\n"
                      "          \"sub\": [{\"endpoint\": \"tcp://127.0.0.1:5556\","
                      " \"topics\": [\"a\", \"b\"]}],\n"
                      "          \"max_message_bytes\": 4096, \"hwm\": 50}\n"
                      "}\n") == 0);
    char *file = tu_path(dir, "sluice.json");
    struct config *c = NULL;
    struct diag d = {0};
    /* load from somewhere else: paths follow the file, not the working folder */
    CHECK(config_load(file, &c, &d) == 0);
    CHECK(d.errors == 0);
    if (d.n)
        tu_diag_dump("relative paths", &d);
    if (c) {
        char *want;
        CHECK_STR(c->file, file);
        CHECK_STR(c->base_dir, dir);
        want = tu_path(dir, "state");
        CHECK_STR(c->state_dir, want);
        free(want);
        want = tu_path(dir, "state/sluice.db");
        CHECK_STR(c->database, want);
        free(want);
        want = tu_path(dir, "pl");
        CHECK_STR(c->pipelines_dir, want);
        free(want);
        CHECK(c->plugin_path.n == 2);
        want = tu_path(dir, "plug");
        CHECK_STR(c->plugin_path.n == 2 ? c->plugin_path.v[0] : NULL, want);
        free(want);
        CHECK_STR(c->plugin_path.n == 2 ? c->plugin_path.v[1] : NULL, "/opt/sluice/plugins");
        CHECK(c->workers == 2);
        CHECK(c->queue_size == 16);
        CHECK_STR(c->zmq.pull, "tcp://*:6000");
        CHECK_STR(c->zmq.router, "ipc:///tmp/r");
        CHECK(cJSON_IsArray(c->zmq.sub_raw) && cJSON_GetArraySize(c->zmq.sub_raw) == 1);
        CHECK(c->zmq.max_message_bytes == 4096);
        CHECK(c->zmq.hwm == 50);
        CHECK(c->zmq.allow_remote == true);
    }
    config_free(&c);
    diag_free(&d);

    /* an explicit database, relative, resolves against the file's folder too;
     * an absolute one stays as written */
    CHECK(tu_write_in(dir, "db.json", "{\"database\": \"data/x.db\"}") == 0);
    char *file2 = tu_path(dir, "db.json");
    CHECK(config_load(file2, &c, &d) == 0);
    if (c) {
        char *want = tu_path(dir, "data/x.db");
        CHECK_STR(c->database, want);
        free(want);
        want = tu_path(dir, "var");
        CHECK_STR(c->state_dir, want);
        free(want);
    }
    config_free(&c);
    CHECK(tu_write_in(dir, "abs.json", "{\"database\": \"/srv/sluice.db\", "
                      "\"state_dir\": \"/srv/state\"}") == 0);
    char *file3 = tu_path(dir, "abs.json");
    CHECK(config_load(file3, &c, &d) == 0);
    if (c) {
        CHECK_STR(c->database, "/srv/sluice.db");
        CHECK_STR(c->state_dir, "/srv/state");
    }
    config_free(&c);
    CHECK(d.errors == 0);

    /* a relative -c: paths resolve against the file's folder, seen from here */
    enter(tmp);
    CHECK(config_load("conf/sluice.json", &c, &d) == 0);
    leave();
    if (c) {
        CHECK_STR(c->state_dir, "conf/state");
        CHECK_STR(c->database, "conf/state/sluice.db");
        CHECK_STR(c->pipelines_dir, "conf/pl");
    }
    config_free(&c);
    diag_free(&d);
    free(file);
    free(file2);
    free(file3);
    free(dir);
}

/* Load text as a config file; returns config_load's result. */
static int load_text(const char *name, const char *text, struct config **c, struct diag *d,
                     char **file_out)
{
    char *file = tu_path(tmp, "%s", name);
    CHECK(tu_write(file, text) == 0);
    *c = (struct config *)c; /* must be overwritten */
    int rc = config_load(file, c, d);
    *file_out = file;
    return rc;
}

static void test_unknown_key(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    int rc = load_text("unknown.json", "{\"workrs\": 4, \"state_dir\": \"s\"}", &c, &d, &file);
    CHECK(rc == -1);
    CHECK(c == NULL);
    CHECK(d.errors == 1);
    char want[4200];
    snprintf(want, sizeof want, "%s: unknown key \"workrs\" (did you mean \"workers\"?)", file);
    CHECK_STR(d.n ? d.items[0].text : NULL, want);
    diag_free(&d);
    free(file);

    /* inside zmq, and inside zmq.sub[i] */
    rc = load_text("zmqkey.json", "{\"zmq\": {\"pul\": \"tcp://*:1\", \"sub\": [{\"endpoint\":"
                   " \"tcp://127.0.0.1:1\", \"topic\": \"x\"}, {\"topics\": [\"t\"]}]}}",
                   &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK(d.errors == 3);
    CHECK_CONTAINS(tu_diag_find(&d, "pul\""), "zmq: unknown key \"pul\" (did you mean \"pull\"?)");
    CHECK_CONTAINS(tu_diag_find(&d, "zmq.sub[0]"),
                   "zmq.sub[0]: unknown key \"topic\" (did you mean \"topics\"?)");
    CHECK_CONTAINS(tu_diag_find(&d, "zmq.sub[1]"), "zmq.sub[1]: missing \"endpoint\"");
    diag_free(&d);
    free(file);
}

/* issue 15: durability is "power" unless set; "process" is the other
 * setting; anything else is refused with both settings named. */
static void test_durability(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    CHECK(load_text("dur0.json", "{}", &c, &d, &file) == 0 && c);
    CHECK(c && c->durability == DURABILITY_POWER);
    config_free(&c);
    free(file);
    CHECK(load_text("dur1.json", "{\"durability\": \"process\"}", &c, &d, &file) == 0 && c);
    CHECK(c && c->durability == DURABILITY_PROCESS);
    config_free(&c);
    free(file);
    CHECK(load_text("dur2.json", "{\"durability\": \"power\"}", &c, &d, &file) == 0 && c);
    CHECK(c && c->durability == DURABILITY_POWER);
    config_free(&c);
    free(file);
    CHECK(d.errors == 0);
    int rc = load_text("dur3.json", "{\"durability\": \"disk\"}", &c, &d, &file);
    CHECK(rc == -1 && c == NULL && d.errors == 1);
    char want[4200];
    snprintf(want, sizeof want, "%s: durability: \"disk\" is not a setting: use \"process\" "
             "(survives the daemon being killed) or \"power\" (also survives power loss)", file);
    CHECK_STR(d.n ? d.items[d.n - 1].text : NULL, want);
    diag_free(&d);
    free(file);
}

static void test_wrong_type(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    /* every problem is reported, not only the first */
    int rc = load_text("types.json",
                       "{\"workers\": \"4\", \"state_dir\": 1, \"plugin_path\": [\"a\", 2],"
                       " \"zmq\": {\"hwm\": 0}, \"queue_size\": 0}",
                       &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK(d.errors == 5);
    CHECK_CONTAINS(tu_diag_find(&d, "workers"), "workers: expected an integer, got a string");
    CHECK_CONTAINS(tu_diag_find(&d, "state_dir"), "state_dir: expected a string, got a number");
    CHECK_CONTAINS(tu_diag_find(&d, "plugin_path"),
                   "plugin_path: expected a string or an array of strings, got an array");
    CHECK_CONTAINS(tu_diag_find(&d, "zmq.hwm"), "zmq.hwm: 0 is out of range (allowed 1 to 1e+07)");
    CHECK_CONTAINS(tu_diag_find(&d, "queue_size"), "queue_size: 0 is out of range");
    for (size_t i = 0; i < d.n; i++) {
        CHECK(strncmp(d.items[i].text, file, strlen(file)) == 0);
        CHECK(d.items[i].severity == DIAG_ERROR);
    }
    diag_free(&d);
    free(file);

    /* the document must be an object */
    rc = load_text("array.json", "[1, 2]", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK(d.errors == 1);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "expected an object, got an array");
    diag_free(&d);
    free(file);
}

static void test_invalid_json(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    /* a missing comma: the parser stops at the key after it */
    const char *text = "{\n  \"workers\": 4\n  \"state_dir\": \"x\"\n}\n";
    long at = (long)(strstr(text, "\"state_dir\"") - text);
    int rc = load_text("bad.json", text, &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK(d.errors == 1);
    char want[4200];
    snprintf(want, sizeof want, "%s: not valid JSON near byte %ld", file, at);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, want);
    diag_free(&d);
    free(file);

    /* trailing garbage after the document is an error too */
    rc = load_text("trailing.json", "{\"workers\": 2} x", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "not valid JSON near byte");
    diag_free(&d);
    free(file);

    /* an empty file */
    rc = load_text("empty.json", "", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "not valid JSON near byte 0");
    diag_free(&d);
    free(file);
}

/* Binding beyond loopback needs CURVE or an explicit opt-in. */
static void test_exposure(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    int rc = load_text("exposed.json", "{\"zmq\": {\"pull\": \"tcp://0.0.0.0:5557\"},"
                       " \"http\": {\"listen\": \"0.0.0.0:8080\"}}", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK(d.errors == 2);
    CHECK_CONTAINS(tu_diag_find(&d, "zmq.pull"), "zmq.pull: tcp://0.0.0.0:5557 is reachable from "
                   "other machines without authentication");
    CHECK_CONTAINS(tu_diag_find(&d, "http.listen"), "http.listen: 0.0.0.0:8080 is reachable");
    diag_free(&d);
    free(file);

    rc = load_text("optin.json", "{\"zmq\": {\"pull\": \"tcp://0.0.0.0:5557\","
                   " \"allow_remote\": true}, \"http\": {\"listen\": \"[::1]:81\"}}",
                   &c, &d, &file);
    CHECK(rc == 0 && c);
    CHECK(d.n == 0);
    config_free(&c);
    diag_free(&d);
    free(file);

    CHECK(config_endpoint_local("tcp://127.0.0.1:5557"));
    CHECK(config_endpoint_local("tcp://localhost:5557"));
    CHECK(config_endpoint_local("ipc:///tmp/sluice.sock"));
    CHECK(config_endpoint_local("inproc://x"));
    CHECK(!config_endpoint_local("tcp://*:5557"));
    CHECK(!config_endpoint_local("tcp://0.0.0.0:5557"));
    CHECK(!config_endpoint_local("tcp://192.168.1.2:5557"));
    CHECK(!config_endpoint_local("tcp://localhost.example.com:5557"));
    CHECK(config_listen_local("127.0.0.1:8080"));
    CHECK(config_listen_local("[::1]:8080"));
    CHECK(!config_listen_local("0.0.0.0:8080"));
    CHECK(!config_listen_local(":8080"));

    /* CURVE keys are 40 characters */
    rc = load_text("curve.json", "{\"zmq\": {\"curve\": {\"secret_key\": \"short\"}}}", &c,
                   &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(tu_diag_find(&d, "secret_key"), "zmq.curve.secret_key: a key is 40 Z85 "
                   "characters (from `sluice keygen`), got 5");
    CHECK_CONTAINS(tu_diag_find(&d, "allowed_clients"), "zmq.curve: with secret_key give "
                   "public_key and allowed_clients");
    diag_free(&d);
    free(file);
}

/* config_parse: the same from text in memory. */
static void test_parse_text(void)
{
    struct config *c = NULL;
    struct diag d = {0};
    const char *text = "{\"pipelines_dir\": \"p\", \"python\": \"/opt/py/bin/python3\"}";
    CHECK(config_parse("/etc/sluice/sluice.json", text, strlen(text), &c, &d) == 0);
    if (c) {
        CHECK_STR(c->file, "/etc/sluice/sluice.json");
        CHECK_STR(c->pipelines_dir, "/etc/sluice/p");
        CHECK_STR(c->python, "/opt/py/bin/python3");
    }
    config_free(&c);
    /* only len bytes count */
    CHECK(config_parse("x.json", "{}garbage", 2, &c, &d) == 0);
    config_free(&c);
    CHECK(config_parse("x.json", "{} garbage", 10, &c, &d) == -1);
    CHECK(c == NULL);
    CHECK_CONTAINS(d.n ? d.items[d.n - 1].text : NULL, "x.json: not valid JSON near byte 3");
    diag_free(&d);
}

/* node_name: the host name unless given; printable, 1-64 bytes. */
static void test_node_name(void)
{
    struct config *c = NULL;
    struct diag d = {0};
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    CHECK(config_parse("x.json", "{}", 2, &c, &d) == 0);
    if (c)
        CHECK_STR(c->node_name, host);
    config_free(&c);
    const char *given = "{\"node_name\": \"eu-1\"}";
    CHECK(config_parse("x.json", given, strlen(given), &c, &d) == 0);
    if (c)
        CHECK_STR(c->node_name, "eu-1");
    config_free(&c);
    const char *bad = "{\"node_name\": \"eu 1\"}";
    CHECK(config_parse("x.json", bad, strlen(bad), &c, &d) == -1);
    CHECK_CONTAINS(d.n ? d.items[d.n - 1].text : NULL,
                   "x.json: node_name \"eu 1\": give 1 to 64 printable characters");
    diag_free(&d);
}

/* admin, retention, and comments in the file. */
static void test_operations_keys(void)
{
    struct config *c;
    struct diag d = {0};
    char *file;
    const char *text =
        "// the example config has comments\n"
        "{\n"
        "  /* a block one */ \"admin\": {\"listen\": \"127.0.0.1:9191\"}, // and a line one\n"
        "  \"retention\": {\"invocations_days\": 0.5, \"logs_days\": 2, \"events_done_days\": 3,\n"
        "                \"events_dead_days\": 4, \"rejected_days\": 5, \"max_db_mb\": 64},\n"
        "  \"state_dir\": \"a//b\"\n"
        "}\n";
    int rc = load_text("ops.json", text, &c, &d, &file);
    CHECK(rc == 0 && c);
    if (c) {
        CHECK_STR(c->admin.listen, "127.0.0.1:9191");
        CHECK(c->retention.invocations_days == 0.5 && c->retention.logs_days == 2 &&
              c->retention.events_done_days == 3 && c->retention.events_dead_days == 4 &&
              c->retention.rejected_days == 5 && c->retention.max_db_mb == 64);
        CHECK_CONTAINS(c->state_dir, "a//b"); /* "//" inside a string is not a comment */
    }
    config_free(&c);
    diag_free(&d);
    free(file);

    /* "" turns the listener off; beyond loopback needs the opt-in */
    rc = load_text("off.json", "{\"admin\": {\"listen\": \"\"}}", &c, &d, &file);
    CHECK(rc == 0 && c && c->admin.listen == NULL);
    config_free(&c);
    free(file);
    rc = load_text("remote.json", "{\"admin\": {\"listen\": \"0.0.0.0:9090\"}}", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(tu_diag_find(&d, "admin.listen"), "admin.listen: 0.0.0.0:9090 is reachable "
                   "from other machines");
    diag_free(&d);
    free(file);
    rc = load_text("optin.json", "{\"admin\": {\"listen\": \"0.0.0.0:9090\", "
                   "\"allow_remote\": true}}", &c, &d, &file);
    CHECK(rc == 0 && c);
    config_free(&c);
    free(file);

    /* a negative retention, an unknown retention key */
    rc = load_text("neg.json", "{\"retention\": {\"logs_days\": -1, \"log_days\": 1}}", &c, &d,
                   &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(tu_diag_find(&d, "logs_days"), "retention.logs_days");
    CHECK_CONTAINS(tu_diag_find(&d, "log_days"), "did you mean \"logs_days\"");
    diag_free(&d);
    free(file);

    /* a syntax error in a commented file is reported at its own byte */
    rc = load_text("badc.json", "// c\n{\"workers\": /* x */ }", &c, &d, &file);
    CHECK(rc == -1 && c == NULL);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "not valid JSON near byte 25");
    diag_free(&d);
    free(file);
}

static void test_missing_file(void)
{
    char *file = tu_path(tmp, "nope/sluice.json");
    struct config *c = (struct config *)&c;
    struct diag d = {0};
    CHECK(config_load(file, &c, &d) == -1);
    CHECK(c == NULL);
    CHECK(d.errors == 1);
    const char *msg = d.n ? d.items[0].text : NULL;
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s: ", file);
    CHECK(msg && strncmp(msg, prefix, strlen(prefix)) == 0);
    CHECK_CONTAINS(msg, "No such file or directory");
    CHECK_CONTAINS(msg, "-c"); /* says what to do */
    diag_free(&d);
    free(file);
}

int main(void)
{
    if (!getcwd(saved_cwd, sizeof saved_cwd)) {
        perror("getcwd");
        return 2;
    }
    tmp = tu_mkdtemp("config");
    test_embedded_default();
    test_cwd_sluice_json();
    test_relative_paths();
    test_unknown_key();
    test_wrong_type();
    test_durability();
    test_invalid_json();
    test_exposure();
    test_parse_text();
    test_node_name();
    test_operations_keys();
    test_missing_file();
    tu_rm_rf(tmp);
    free(tmp);
    return test_summary();
}
