/* test_pipeline.c - unit tests for pipeline files (core/pipeline.c): a valid
 * multi-step pipeline and its defaults, the trigger kinds and destinations,
 * script steps, each kind of problem with its "file: message" line, that
 * every problem in a file is reported in one pass, warnings that are not
 * errors, and pipeline_set_load over a folder (duplicate names across files,
 * ignored files, destinations and routes checked across the set, empty and
 * missing folders). */
#include "pipeline.h"

#include "config.h"
#include "match.h"
#include "test.h"
#include "testutil.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

static char *tmp;
static struct config cfg;

/* Write text to tmp/name and load it. *file_out receives the path. */
static int load(const char *name, const char *text, struct pipeline **p, struct diag *d,
                char **file_out)
{
    char *file = tu_path(tmp, "%s", name);
    CHECK(tu_write(file, text) == 0);
    *p = (struct pipeline *)p; /* must be overwritten */
    int rc = pipeline_load(file, &cfg, p, d);
    if (file_out)
        *file_out = file;
    else
        free(file);
    return rc;
}

/* Load text that must fail with exactly `errors` errors, one of which is
 * "FILE: " + want. Returns nothing; checks as it goes. */
static void expect_error(const char *name, const char *text, int errors, const char *want)
{
    struct pipeline *p;
    struct diag d = {0};
    char *file;
    int rc = load(name, text, &p, &d, &file);
    CHECK(rc == -1);
    CHECK(p == NULL);
    CHECK(d.errors == errors);
    char line[4096];
    snprintf(line, sizeof line, "%s: %s", file, want);
    const char *hit = NULL;
    for (size_t i = 0; i < d.n; i++)
        if (strncmp(d.items[i].text, line, strlen(line)) == 0)
            hit = d.items[i].text;
    CHECK_CONTAINS(hit, line);
    if (!hit || d.errors != errors)
        tu_diag_dump(name, &d);
    pipeline_free(&p);
    diag_free(&d);
    free(file);
}

static void test_valid_pipeline(void)
{
    struct pipeline *p;
    struct diag d = {0};
    char *file;
    int rc = load("thumbs.json",
                  "{\n"
                  "  \"name\": \"thumbnails\",\n"
                  "  \"description\": \"make small pictures\",\n"
                  "  \"trigger\": {\"directory\": \"inbox/images\", \"recursive\": false,\n"
                  "              \"match\": {\"suffix\": [\".jpg\", \".png\"]}},\n"
                  "  \"steps\": [\n"
                  "    {\"name\": \"resize\", \"handler\": \"thumbnail.handler\",\n"
                  "     \"config\": {\"size\": 100, \"output\": \"var/thumbs\"},\n"
                  "     \"timeout_ms\": 5000,\n"
                  "     \"retry\": {\"max_attempts\": 3, \"interval_ms\": 200,\n"
                  "               \"backoff_rate\": 1.5, \"max_interval_ms\": 900}},\n"
                  "    {\"handler\": \"zmq_forward.announce\"},\n"
                  "    {\"handler\": \"my-mod.v2_fn\", \"name\": \"third.step\"}\n"
                  "  ],\n"
                  "  \"on_failure\": {\"directory\": \"dead\"},\n"
                  "  \"isolation\": \"thread\"\n"
                  "}\n",
                  &p, &d, &file);
    CHECK(rc == 0);
    CHECK(d.errors == 0);
    CHECK(d.warnings == 0); /* "thread" is in force: nothing to warn about */
    if (d.n)
        tu_diag_dump("valid pipeline", &d);
    if (rc != 0 || !p) {
        diag_free(&d);
        free(file);
        return;
    }
    CHECK_STR(p->name, "thumbnails");
    CHECK_STR(p->file, file);
    CHECK(p->trigger == TRIGGER_DIRECTORY);
    CHECK_STR(p->dir_spec, "inbox/images");
    char *want = tu_path(tmp, "inbox/images");
    CHECK_STR(p->dir, want); /* resolved against the config's folder */
    free(want);
    CHECK(p->recursive == false);
    CHECK(p->zmq_topic == NULL);
    CHECK(p->match != NULL);
    CHECK(match_test(p->match, "a/b.jpg", NULL));
    CHECK(match_test(p->match, "b.png", NULL));
    CHECK(!match_test(p->match, "b.gif", NULL));
    CHECK(p->n_steps == 3);
    if (p->n_steps == 3) {
        const struct step *s = &p->steps[0];
        CHECK_STR(s->name, "resize");
        CHECK_STR(s->handler, "thumbnail.handler");
        CHECK_STR(s->module, "thumbnail");
        CHECK_STR(s->function, "handler");
        cJSON *conf = cJSON_Parse(s->config_json);
        CHECK(cJSON_IsObject(conf));
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(conf, "size")) == 100);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(conf, "output")), "var/thumbs");
        cJSON_Delete(conf);
        CHECK(s->timeout_ms == 5000);
        CHECK(s->retry.max_attempts == 3);
        CHECK(s->retry.interval_ms == 200);
        CHECK(s->retry.backoff_rate == 1.5);
        CHECK(s->retry.max_interval_ms == 900);
        CHECK(s->plugin == NULL && s->fn == NULL); /* the loader binds later */

        s = &p->steps[1];
        CHECK_STR(s->name, "announce"); /* defaults to FUNCTION */
        CHECK_STR(s->module, "zmq_forward");
        CHECK_STR(s->function, "announce");
        CHECK_STR(s->config_json, "{}");
        CHECK(s->timeout_ms == 3000);   /* Lambda's default */
        CHECK(s->retry.max_attempts == 1);
        CHECK(s->retry.interval_ms == 1000);
        CHECK(s->retry.backoff_rate == 2.0);
        CHECK(s->retry.max_interval_ms == 60000);

        s = &p->steps[2];
        CHECK_STR(s->name, "third.step");
        CHECK_STR(s->module, "my-mod");
        CHECK_STR(s->function, "v2_fn");
    }
    want = tu_path(tmp, "dead");
    CHECK(p->on_failure.kind == DEST_DIRECTORY);
    CHECK_STR(p->on_failure.directory, want);
    free(want);
    CHECK(p->on_success.kind == DEST_NONE);
    CHECK(p->batch.size == 1);              /* no batching by default */
    CHECK(p->max_event_age_ms == 0);
    CHECK(p->sandbox == false);
    CHECK(p->limits.memory_mb == 0 && p->limits.cpu_seconds == 0);
    CHECK(p->concurrency == cfg.workers); /* from the config's workers */
    CHECK(p->isolation == ISOLATION_THREAD);
    pipeline_free(&p);
    CHECK(p == NULL);
    pipeline_free(&p); /* NULL is fine */
    diag_free(&d);
    free(file);

    /* minimal: no trigger (invoke only), explicit concurrency, recursive by
     * default, no dead-letter folder, absolute paths kept */
    rc = load("minimal.json",
              "{\"name\": \"mini\", \"concurrency\": 7, \"isolation\": \"thread\","
              " \"trigger\": {\"directory\": \"/nonexistent/sluice-ut/in\"},"
              " \"steps\": [{\"handler\": \"echo.handler\", \"timeout_ms\": 900000}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p) {
        CHECK(p->concurrency == 7);
        CHECK(p->recursive == true);
        CHECK_STR(p->dir, "/nonexistent/sluice-ut/in"); /* created when the daemon starts */
        CHECK(p->match == NULL);
        CHECK(p->on_failure.kind == DEST_NONE && p->on_failure.directory == NULL);
        CHECK(p->n_steps == 1 && p->steps[0].timeout_ms == 900000);
        CHECK_STR(p->n_steps ? p->steps[0].name : NULL, "handler");
    }
    pipeline_free(&p);
    rc = load("notrigger.json",
              "{\"name\": \"inv\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(p && p->trigger == TRIGGER_NONE && p->dir == NULL);
    pipeline_free(&p);
    diag_free(&d);
}

static void test_zmq_and_http_triggers(void)
{
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("zmq.json",
                  "{\"name\": \"orders\", \"isolation\": \"thread\","
                  " \"trigger\": {\"zmq\": {\"topic\": \"orders.\"}},"
                  " \"steps\": [{\"handler\": \"echo.handler\"}]}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.errors == 0);
    if (p) {
        CHECK(p->trigger == TRIGGER_ZMQ);
        CHECK_STR(p->zmq_topic, "orders.");
        CHECK(p->dir == NULL);
    }
    pipeline_free(&p);
    rc = load("zmqall.json",
              "{\"name\": \"all\", \"isolation\": \"thread\", \"trigger\": {\"zmq\": {}},"
              " \"steps\": [{\"handler\": \"echo.handler\"}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    CHECK_STR(p ? p->zmq_topic : NULL, ""); /* every topic */
    pipeline_free(&p);
    diag_free(&d);

    expect_error("zmqkey.json",
                 "{\"name\": \"z\", \"isolation\": \"thread\","
                 " \"trigger\": {\"zmq\": {\"topik\": \"a\"}}, \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.zmq: unknown key \"topik\" (did you mean \"topic\"?)");
    expect_error("twokinds.json",
                 "{\"name\": \"t\", \"isolation\": \"thread\","
                 " \"trigger\": {\"directory\": \"in\", \"zmq\": {\"topic\": \"a\"}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger: give one of \"directory\", \"zmq\", \"http\", \"schedule\" or \"nats\", not 2");
}

static void test_http_trigger(void)
{
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("http.json",
                  "{\"name\": \"users\", \"isolation\": \"thread\","
                  " \"trigger\": {\"http\": {\"method\": \"get\", \"path\": \"/users/{id}\"}},"
                  " \"steps\": [{\"handler\": \"echo.handler\"}]}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p) {
        CHECK(p->trigger == TRIGGER_HTTP);
        CHECK_STR(p->http_method, "GET"); /* upper-cased */
        CHECK_STR(p->http_path, "/users/{id}");
    }
    pipeline_free(&p);
    rc = load("httpany.json",
              "{\"name\": \"any\", \"isolation\": \"thread\","
              " \"trigger\": {\"http\": {\"path\": \"/files/{key+}\"}},"
              " \"steps\": [{\"handler\": \"echo.handler\"}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    CHECK_STR(p ? p->http_method : NULL, "ANY");
    pipeline_free(&p);
    diag_free(&d);

    expect_error("http-method.json",
                 "{\"name\": \"h\", \"isolation\": \"thread\","
                 " \"trigger\": {\"http\": {\"method\": \"FETCH\", \"path\": \"/a\"}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.http.method: \"FETCH\" is not one of GET, POST");
    expect_error("http-nopath.json",
                 "{\"name\": \"h\", \"isolation\": \"thread\","
                 " \"trigger\": {\"http\": {\"method\": \"POST\"}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.http: missing \"path\"");
    expect_error("http-slash.json",
                 "{\"name\": \"h\", \"isolation\": \"thread\","
                 " \"trigger\": {\"http\": {\"path\": \"users\"}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.http.path \"users\" must start with '/'");
    expect_error("http-key.json",
                 "{\"name\": \"h\", \"isolation\": \"thread\","
                 " \"trigger\": {\"http\": {\"path\": \"/a\", \"verb\": \"GET\"}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.http: unknown key \"verb\"");
}

/* "runtime": "provided": CODE/bootstrap, executable; the handler is free text. */
static void test_provided_steps(void)
{
    char *code = tu_path(tmp, "fn");
    CHECK(mkdir(code, 0755) == 0);
    CHECK(tu_write_in(code, "bootstrap", "#!/bin/sh\n") == 0);
    char *boot = tu_path(code, "bootstrap");
    CHECK(chmod(boot, 0755) == 0);
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("provided.json",
                  "{\"name\": \"pr\", \"steps\": [{\"name\": \"srv\", \"handler\": \"serve:v2\", "
                  "\"runtime\": \"provided.al2023\", \"code\": \"fn\"}]}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p && p->n_steps == 1) {
        const struct step *s = &p->steps[0];
        CHECK(s->runtime == RUNTIME_PROVIDED);
        CHECK_STR(runtime_name(s->runtime), "provided");
        CHECK_STR(step_file(s), boot);
        CHECK_STR(s->handler, "serve:v2"); /* no MODULE.FUNCTION needed */
        CHECK_STR(s->function, "serve:v2");
        CHECK(s->interpreter == NULL);
    }
    pipeline_free(&p);
    diag_free(&d);
    CHECK(chmod(boot, 0644) == 0);
    expect_error("provided-noexec.json",
                 "{\"name\": \"pr\", \"steps\": [{\"handler\": \"h\", \"runtime\": "
                 "\"provided\", \"code\": \"fn\"}]}",
                 1, "steps[0]: runtime provided: ");
    expect_error("provided-nocode.json",
                 "{\"name\": \"pr\", \"steps\": [{\"handler\": \"h\", \"runtime\": "
                 "\"provided\"}]}",
                 1, "steps[0]: a \"provided\" step needs \"code\"");
    free(boot);
    free(code);
}

static void test_schedule_trigger(void)
{
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("sched.json",
                  "{\"name\": \"noon\", \"isolation\": \"thread\","
                  " \"trigger\": {\"schedule\": \"cron(0 12 ? * MON-FRI *)\","
                  " \"timezone\": \"Europe/Paris\", \"catch_up\": true, \"overlap\": \"queue\"},"
                  " \"steps\": [{\"handler\": \"echo.handler\"}]}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p) {
        CHECK(p->trigger == TRIGGER_SCHEDULE);
        CHECK_STR(p->schedule, "cron(0 12 ? * MON-FRI *)");
        CHECK_STR(p->timezone, "Europe/Paris");
        CHECK(p->catch_up);
        CHECK(p->overlap == OVERLAP_QUEUE);
    }
    pipeline_free(&p);
    rc = load("rate.json",
              "{\"name\": \"tick\", \"isolation\": \"thread\","
              " \"trigger\": {\"schedule\": \"rate(1 second)\"},"
              " \"steps\": [{\"handler\": \"echo.handler\"}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    if (p) { /* the defaults: UTC, no catch-up, skip */
        CHECK(p->timezone == NULL);
        CHECK(!p->catch_up);
        CHECK(p->overlap == OVERLAP_SKIP);
    }
    pipeline_free(&p);
    diag_free(&d);

    expect_error("both-star.json",
                 "{\"name\": \"s\", \"isolation\": \"thread\","
                 " \"trigger\": {\"schedule\": \"cron(0 12 * * * *)\"},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.schedule: cron(0 12 * * * *): day-of-month and day-of-week cannot "
                 "both be `*`");
    expect_error("overlap.json",
                 "{\"name\": \"s\", \"isolation\": \"thread\","
                 " \"trigger\": {\"schedule\": \"rate(5 minutes)\", \"overlap\": \"wait\"},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.overlap: \"wait\" is not \"skip\" or \"queue\"");
    expect_error("catch-up-alone.json",
                 "{\"name\": \"s\", \"isolation\": \"thread\","
                 " \"trigger\": {\"zmq\": {}, \"catch_up\": true},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger: \"timezone\", \"catch_up\" and \"overlap\" go with \"schedule\"");
    expect_error("two-kinds.json",
                 "{\"name\": \"s\", \"isolation\": \"thread\","
                 " \"trigger\": {\"schedule\": \"rate(5 minutes)\", \"directory\": \"in\"},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger: give one of \"directory\", \"zmq\", \"http\", \"schedule\" or "
                 "\"nats\", not 2");
}

static void test_destinations(void)
{
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("dest.json",
                  "{\"name\": \"src\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}],"
                  " \"on_success\": {\"pipeline\": \"next\"},"
                  " \"on_failure\": {\"zmq\": {\"endpoint\": \"tcp://127.0.0.1:5560\"}}}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p) {
        CHECK(p->on_success.kind == DEST_PIPELINE);
        CHECK_STR(p->on_success.pipeline, "next");
        CHECK(p->on_failure.kind == DEST_ZMQ);
        CHECK_STR(p->on_failure.endpoint, "tcp://127.0.0.1:5560");
        CHECK_STR(p->on_failure.topic, "src"); /* defaults to the pipeline's name */
    }
    pipeline_free(&p);
    diag_free(&d);
    expect_error("dest-two.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}],"
                 " \"on_failure\": {\"directory\": \"dead\", \"pipeline\": \"y\"}}",
                 1, "on_failure: give exactly one of \"directory\", \"pipeline\", \"zmq\", \"nats\"");
    expect_error("dest-none.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}],"
                 " \"on_success\": {}}",
                 1, "on_success: give exactly one of \"directory\", \"pipeline\", \"zmq\", \"nats\"");
    expect_error("dest-zmq.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}],"
                 " \"on_failure\": {\"zmq\": {\"topic\": \"t\"}}}",
                 1, "on_failure.zmq: missing \"endpoint\"");
}

/* An executable that stands in for an interpreter. */
static char *fake_interpreter(void)
{
    char *path = tu_path(tmp, "fake-python3");
    CHECK(tu_write(path, "#!/bin/sh\nexit 0\n") == 0);
    CHECK(chmod(path, 0755) == 0);
    return path;
}

static void test_script_steps(void)
{
    char *interp = fake_interpreter();
    char *code = tu_path(tmp, "pycode");
    CHECK(mkdir(code, 0755) == 0);
    CHECK(tu_write_in(code, "app.py", "def lambda_handler(event, context):\n    return event\n")
          == 0);
    cfg.python = interp;
    struct pipeline *p;
    struct diag d = {0};
    int rc = load("py.json",
                  "{\"name\": \"py\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                  "\"app.lambda_handler\", \"runtime\": \"python3\", \"code\": \"pycode\"}]}",
                  &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.errors == 0);
    if (d.n)
        tu_diag_dump("python step", &d);
    if (p && p->n_steps == 1) {
        const struct step *s = &p->steps[0];
        char *want = tu_path(code, "app.py");
        CHECK(s->runtime == RUNTIME_PYTHON);
        CHECK_STR(s->code, code);
        CHECK_STR(s->source, want);
        CHECK_STR(s->interpreter, interp);
        CHECK_STR(s->module, "app");
        CHECK_STR(s->function, "lambda_handler");
        CHECK_STR(s->name, "lambda_handler");
        CHECK_STR(step_file(s), want);
        CHECK_STR(runtime_name(s->runtime), "python3");
        free(want);
    }
    pipeline_free(&p);
    diag_free(&d);

    expect_error("py-nocode.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                 "\"app.fn\", \"runtime\": \"python3\"}]}",
                 1, "steps[0]: a \"python3\" step needs \"code\"");
    expect_error("py-nofile.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                 "\"other.fn\", \"runtime\": \"python3\", \"code\": \"pycode\"}]}",
                 1, "steps[0]: handler \"other.fn\": no other.py in");
    cfg.python = "/nonexistent/sluice-ut/python3";
    expect_error("py-nointerp.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                 "\"app.fn\", \"runtime\": \"python3\", \"code\": \"pycode\"}]}",
                 1, "steps[0]: runtime python3 needs the interpreter "
                    "\"/nonexistent/sluice-ut/python3\", which is not installed");
    cfg.python = interp;
    expect_error("ruby.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                 "\"app.fn\", \"runtime\": \"ruby\", \"code\": \"pycode\"}]}",
                 1, "steps[0]: runtime \"ruby\" is not one of \"python3\", \"nodejs\"");
    /* "code" without "runtime": a warning */
    int rc2 = load("codeonly.json",
                   "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": "
                   "\"a.b\", \"code\": \"pycode\"}]}",
                   &p, &d, NULL);
    CHECK(rc2 == 0);
    CHECK(d.errors == 0 && d.warnings == 1);
    CHECK_CONTAINS(tu_diag_find(&d, "warning"), "steps[0]: \"code\" is only used with \"runtime\"");
    pipeline_free(&p);
    diag_free(&d);
    cfg.python = NULL;
    free(code);
    free(interp);
}

/* Each kind of problem, alone in its file, with its message. */
static void test_each_error(void)
{
    /* unknown keys at every level */
    expect_error("u-top.json",
                 "{\"nmae\": \"x\", \"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "unknown key \"nmae\" (did you mean \"name\"?)");
    expect_error("u-step.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\", \"timout_ms\": 5}]}",
                 1, "steps[0]: unknown key \"timout_ms\" (did you mean \"timeout_ms\"?)");
    expect_error("u-trigger.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"trigger\": {\"directry\": \"in\"}, \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger: unknown key \"directry\" (did you mean \"directory\"?)");
    expect_error("u-retry.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\"}, {\"handler\": \"a.c\","
                 " \"retry\": {\"max_attempt\": 3}}]}",
                 1, "steps[1].retry: unknown key \"max_attempt\" (did you mean \"max_attempts\"?)");
    expect_error("u-failure.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"on_failure\": {\"dir\": \"dead\"}, \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "on_failure: unknown key \"dir\"");

    /* wrong types and ranges */
    expect_error("t-conc.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"concurrency\": \"2\","
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "concurrency: expected an integer, got a string");
    expect_error("t-steps.json", "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": {}}", 1,
                 "steps: expected an array, got an object");
    expect_error("t-step.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [\"a.b\"]}", 1,
                 "steps[0]: expected an object, got a string");
    expect_error("t-timeout.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\", \"timeout_ms\": 0}]}",
                 1, "steps[0].timeout_ms: 0 is out of range (allowed 1 to 900000)");
    expect_error("t-backoff.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\", \"retry\": {\"backoff_rate\": 0.5}}]}",
                 1, "steps[0].retry.backoff_rate: 0.5 is out of range (allowed 1 to 10)");
    expect_error("t-name.json",
                 "{\"name\": 5, \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "name: expected a string, got a number");

    /* names and handlers */
    expect_error("n-missing.json", "{\"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "missing \"name\"");
    expect_error("n-bad.json",
                 "{\"name\": \"a b\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "name \"a b\" may hold only letters");
    expect_error("h-missing.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"name\": \"s\"}]}", 1,
                 "steps[0]: missing \"handler\" (MODULE.FUNCTION");
    expect_error("h-nodot.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"echo\"}]}",
                 1, "steps[0]: handler \"echo\" must be MODULE.FUNCTION, e.g. \"echo.handler\"");
    expect_error("h-emptymod.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \".fn\"}]}",
                 1, "steps[0]: handler \".fn\" must be MODULE.FUNCTION");
    expect_error("h-emptyfn.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"mod.\"}]}",
                 1, "steps[0]: handler \"mod.\" must be MODULE.FUNCTION");
    expect_error("h-slash.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"../evil.fn\"}]}",
                 1, "steps[0]: handler \"../evil.fn\" must be MODULE.FUNCTION");
    expect_error("h-dots.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": [{\"handler\": \"a.b.c\"}]}",
                 1, "steps[0]: module \"a.b\" in handler \"a.b.c\" may hold only letters");
    expect_error("s-badname.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"steps\": [{\"handler\": \"a.b\", \"name\": \"no/slash\"}]}",
                 1, "steps[0]: step name \"no/slash\" may hold only letters");

    /* steps */
    expect_error("s-empty.json", "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": []}", 1,
                 "\"steps\" must hold at least one step");
    expect_error("s-missing.json", "{\"name\": \"x\", \"isolation\": \"thread\"}", 1,
                 "missing \"steps\"");
    expect_error("s-dup.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": ["
                 "{\"name\": \"one\", \"handler\": \"a.b\"}, {\"name\": \"two\", \"handler\": \"a.c\"},"
                 " {\"name\": \"one\", \"handler\": \"a.d\"}]}",
                 1, "steps[2]: step name \"one\" is also used by steps[0]");
    /* two handlers with the same FUNCTION get the same default name */
    expect_error("s-dupdefault.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\", \"steps\": ["
                 "{\"handler\": \"resize.handler\"}, {\"handler\": \"upload.handler\"}]}",
                 1, "steps[1]: step name \"handler\" is also used by steps[0]");

    /* folders */
    char *afile = tu_path(tmp, "afile");
    CHECK(tu_write(afile, "x") == 0);
    char text[8192], want[8192];
    snprintf(text, sizeof text,
             "{\"name\": \"x\", \"isolation\": \"thread\", \"trigger\": {\"directory\": \"afile\"},"
             " \"steps\": [{\"handler\": \"a.b\"}]}");
    snprintf(want, sizeof want, "trigger.directory \"%s\" exists but is not a folder", afile);
    expect_error("d-file.json", text, 1, want);
    snprintf(text, sizeof text,
             "{\"name\": \"x\", \"isolation\": \"thread\", \"on_failure\": {\"directory\": \"%s\"},"
             " \"steps\": [{\"handler\": \"a.b\"}]}", afile);
    snprintf(want, sizeof want, "on_failure.directory \"%s\" exists but is not a folder", afile);
    expect_error("d-failfile.json", text, 1, want);
    /* a path below a file cannot be read */
    snprintf(text, sizeof text,
             "{\"name\": \"x\", \"isolation\": \"thread\", \"trigger\": {\"directory\": \"%s/sub\"},"
             " \"steps\": [{\"handler\": \"a.b\"}]}", afile);
    snprintf(want, sizeof want, "trigger.directory \"%s/sub\" cannot be read: Not a directory",
             afile);
    expect_error("d-below.json", text, 1, want);
    free(afile);

    /* isolation, runtime, match */
    expect_error("i-bad.json",
                 "{\"name\": \"x\", \"isolation\": \"fork\", \"steps\": [{\"handler\": \"a.b\"}]}", 1,
                 "isolation: \"fork\" is not one of \"process\", \"thread\"");
    expect_error("m-bad.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"trigger\": {\"directory\": \"in\", \"match\": {\"suffix\": 5}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.match.suffix: must be a string or a non-empty array of strings");
    expect_error("m-event.json",
                 "{\"name\": \"x\", \"isolation\": \"thread\","
                 " \"trigger\": {\"zmq\": {\"topic\": \"t\"}, \"match\": {\"event\": {\"a\": []}}},"
                 " \"steps\": [{\"handler\": \"a.b\"}]}",
                 1, "trigger.match.event.a: a condition list must not be empty");

    /* not JSON, not there */
    /* the second comma is at byte 13; cJSON stops right after it */
    expect_error("j-bad.json", "{\"name\": \"x\",, }", 1, "not valid JSON near byte 1");
    {
        struct pipeline *jp;
        struct diag jd = {0};
        load("j-bad2.json", "{\"name\": \"x\",, }", &jp, &jd, NULL);
        const char *at = jd.n ? strstr(jd.items[0].text, "near byte ") : NULL;
        long byte = at ? strtol(at + 10, NULL, 10) : -1;
        CHECK(byte >= 13 && byte <= 14);
        diag_free(&jd);
    }
    expect_error("j-trailing.json",
                 "{\"name\": \"x\", \"steps\": [{\"handler\": \"a.b\"}]} {}", 1,
                 "not valid JSON near byte 45");
    struct pipeline *p = (struct pipeline *)&p;
    struct diag d = {0};
    char *missing = tu_path(tmp, "missing.json");
    CHECK(pipeline_load(missing, &cfg, &p, &d) == -1);
    CHECK(p == NULL);
    CHECK(d.errors == 1);
    snprintf(want, sizeof want, "%s: cannot read %s: No such file or directory", missing, missing);
    CHECK_STR(d.n ? d.items[0].text : NULL, want);
    free(missing);
    diag_free(&d);
}

/* Warnings are printed, not failures: the pipeline still loads. */
static void test_warnings(void)
{
    /* process isolation (the default) is accepted as it is */
    static const char *const texts[] = {
        "{\"name\": \"x\", \"isolation\": \"process\", \"steps\": [{\"handler\": \"a.b\"}]}",
        "{\"name\": \"x\", \"steps\": [{\"handler\": \"a.b\"}]}",
    };
    for (size_t i = 0; i < 2; i++) {
        struct pipeline *p;
        struct diag d = {0};
        int rc = load("iso.json", texts[i], &p, &d, NULL);
        CHECK(rc == 0);
        CHECK(d.errors == 0);
        CHECK(p && p->isolation == ISOLATION_PROCESS);
        pipeline_free(&p);
        diag_free(&d);
    }
    /* worker-process limits with thread isolation: a warning, not an error */
    struct pipeline *p;
    struct diag d = {0};
    char *file;
    int rc = load("limits.json",
                  "{\"name\": \"x\", \"isolation\": \"thread\", \"memory_mb\": 128,"
                  " \"steps\": [{\"handler\": \"a.b\"}]}",
                  &p, &d, &file);
    CHECK(rc == 0);
    CHECK(p != NULL);
    CHECK(d.errors == 0);
    CHECK(d.warnings == 1);
    CHECK(d.n == 1 && d.items[0].severity == DIAG_WARNING);
    char want[4200];
    snprintf(want, sizeof want, "%s: warning: memory_mb, cpu_seconds", file);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, want);
    CHECK(p && p->limits.memory_mb == 128);
    pipeline_free(&p);
    diag_free(&d);
    free(file);
    /* the same limits under process isolation are in force: no warning */
    rc = load("limits2.json",
              "{\"name\": \"x\", \"memory_mb\": 128, \"cpu_seconds\": 5, \"max_open_files\": 64,"
              " \"sandbox\": true, \"steps\": [{\"handler\": \"a.b\"}]}",
              &p, &d, NULL);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    if (p) {
        CHECK(p->limits.memory_mb == 128 && p->limits.cpu_seconds == 5);
        CHECK(p->limits.max_open_files == 64 && p->sandbox);
    }
    pipeline_free(&p);
    diag_free(&d);
}

/* A file with several problems reports every one of them, not the first. */
static void test_all_problems_reported(void)
{
    struct pipeline *p;
    struct diag d = {0};
    char *file;
    char *afile = tu_path(tmp, "afile2");
    CHECK(tu_write(afile, "x") == 0);
    /* problems in every part of the file, no unknown keys or wrong types */
    int rc = load("many.json",
                  "{\"isolation\": \"fork\", \"trigger\": {\"directory\": \"afile2\"},"
                  " \"steps\": [{\"handler\": \"nodot\"}, {\"name\": \"lonely\"},"
                  "  {\"handler\": \"app.fn\", \"runtime\": \"ruby\"},"
                  "  {\"handler\": \"m.dup\"}, {\"handler\": \"n.dup\"}],"
                  " \"on_failure\": {}}",
                  &p, &d, &file);
    CHECK(rc == -1 && p == NULL);
    CHECK(d.errors == 8);
    CHECK(tu_diag_count(&d, "missing \"name\"") == 1);
    CHECK(tu_diag_count(&d, "isolation: \"fork\"") == 1);
    CHECK(tu_diag_count(&d, "exists but is not a folder") == 1);
    CHECK(tu_diag_count(&d, "steps[0]: handler \"nodot\" must be MODULE.FUNCTION") == 1);
    CHECK(tu_diag_count(&d, "steps[1]: missing \"handler\"") == 1);
    CHECK(tu_diag_count(&d, "steps[2]: runtime \"ruby\" is not one of") == 1);
    CHECK(tu_diag_count(&d, "steps[4]: step name \"dup\" is also used by steps[3]") == 1);
    CHECK(tu_diag_count(&d, "on_failure: give exactly one of") == 1);
    for (size_t i = 0; i < d.n; i++)
        CHECK(strncmp(d.items[i].text, file, strlen(file)) == 0);
    if (d.errors != 8)
        tu_diag_dump("many problems", &d);
    diag_free(&d);
    free(file);

    /* one unknown key in each of two steps: both reported */
    rc = load("twosteps.json",
              "{\"name\": \"x\", \"isolation\": \"thread\","
              " \"steps\": [{\"handler\": \"a.b\", \"nmae\": \"s\"},"
              "  {\"handler\": \"a.c\", \"timeout\": 5}]}",
              &p, &d, NULL);
    CHECK(rc == -1 && p == NULL);
    CHECK(d.errors == 2);
    CHECK(tu_diag_count(&d, "steps[0]: unknown key \"nmae\"") == 1);
    CHECK(tu_diag_count(&d, "steps[1]: unknown key \"timeout\"") == 1);
    diag_free(&d);

    /* an unknown top-level key must not hide the problems in the rest of
     * the file (sluice check promises every problem in one run) */
    rc = load("unknown-and-more.json",
              "{\"name\": \"x\", \"isolaton\": \"thread\", \"isolation\": \"fork\","
              " \"steps\": [{\"handler\": \"nodot\"}]}",
              &p, &d, NULL);
    CHECK(rc == -1 && p == NULL);
    CHECK(tu_diag_count(&d, "unknown key \"isolaton\"") == 1);
    CHECK(tu_diag_count(&d, "isolation: \"fork\" is not one of") == 1);
    CHECK(tu_diag_count(&d, "steps[0]: handler \"nodot\" must be MODULE.FUNCTION") == 1);
    CHECK(d.errors == 3);
    if (d.errors != 3)
        tu_diag_dump("unknown top-level key and more", &d);
    diag_free(&d);

    /* nor may a wrong type at the top */
    rc = load("type-and-more.json",
              "{\"name\": \"x\", \"isolation\": \"thread\", \"concurrency\": \"4\","
              " \"steps\": [{\"name\": \"s\"}]}",
              &p, &d, NULL);
    CHECK(rc == -1 && p == NULL);
    CHECK(tu_diag_count(&d, "concurrency: expected an integer") == 1);
    CHECK(tu_diag_count(&d, "steps[0]: missing \"handler\"") == 1);
    CHECK(d.errors == 2);
    if (d.errors != 2)
        tu_diag_dump("wrong type and more", &d);
    diag_free(&d);

    /* an unknown key in a step must not hide that step's other problems */
    rc = load("stepkey-and-more.json",
              "{\"name\": \"x\", \"isolation\": \"thread\","
              " \"steps\": [{\"handler\": \"nodot\", \"timout_ms\": 10}]}",
              &p, &d, NULL);
    CHECK(rc == -1 && p == NULL);
    CHECK(tu_diag_count(&d, "steps[0]: unknown key \"timout_ms\"") == 1);
    CHECK(tu_diag_count(&d, "steps[0]: handler \"nodot\" must be MODULE.FUNCTION") == 1);
    CHECK(d.errors == 2);
    if (d.errors != 2)
        tu_diag_dump("unknown step key and more", &d);
    diag_free(&d);

    /* an unknown key in the trigger must not hide the trigger's folder problem */
    rc = load("trigkey-and-more.json",
              "{\"name\": \"x\", \"isolation\": \"thread\","
              " \"trigger\": {\"directory\": \"afile2\", \"recursve\": true},"
              " \"steps\": [{\"handler\": \"a.b\"}]}",
              &p, &d, NULL);
    CHECK(rc == -1 && p == NULL);
    CHECK(tu_diag_count(&d, "trigger: unknown key \"recursve\"") == 1);
    CHECK(tu_diag_count(&d, "exists but is not a folder") == 1);
    CHECK(d.errors == 2);
    if (d.errors != 2)
        tu_diag_dump("unknown trigger key and more", &d);
    diag_free(&d);
    free(afile);
}

static int setgroups_drop(void)
{
    return setgroups(0, NULL);
}

/* Load the pipeline at file (its trigger folder unreadable) and return the
 * first problem, as another user when running as root. NULL: skipped. */
static char *unreadable_problem(const char *file)
{
    struct pipeline *p = NULL;
    struct diag d = {0};
    if (geteuid() != 0) {
        pipeline_load(file, &cfg, &p, &d);
        char *msg = d.n ? strdup(d.items[0].text) : strdup("(no problem reported)");
        pipeline_free(&p);
        diag_free(&d);
        return msg;
    }
    /* root passes access(): ask as nobody, in a child */
    int fds[2];
    if (pipe(fds) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        close(fds[0]);
        if (setgroups_drop() < 0 || setgid(65534) < 0 || setuid(65534) < 0 || geteuid() == 0)
            _exit(77);
        pipeline_load(file, &cfg, &p, &d);
        const char *msg = d.n ? d.items[0].text : "(no problem reported)";
        ssize_t w = write(fds[1], msg, strlen(msg));
        _exit(w < 0 ? 1 : 0);
    }
    close(fds[1]);
    char buf[4096];
    size_t used = 0;
    ssize_t r;
    while (used < sizeof buf - 1 && (r = read(fds[0], buf + used, sizeof buf - 1 - used)) > 0)
        used += (size_t)r;
    buf[used] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 77)
        return NULL;
    return strdup(buf);
}

static void test_unreadable_directory(void)
{
    char *locked = tu_path(tmp, "locked");
    CHECK(mkdir(locked, 0755) == 0);
    CHECK(chmod(locked, 0) == 0);
    /* the child runs as another user: it needs to read the file and the folder */
    chmod(tmp, 0755);
    char *file = tu_path(tmp, "locked.json");
    CHECK(tu_write(file, "{\"name\": \"x\", \"isolation\": \"thread\","
                         " \"trigger\": {\"directory\": \"locked\"},"
                         " \"steps\": [{\"handler\": \"a.b\"}]}") == 0);
    chmod(file, 0644);
    char *msg = unreadable_problem(file);
    if (!msg) {
        fprintf(stderr, "note: unreadable-folder check skipped (running as root, cannot "
                        "switch user)\n");
    } else {
        char want[8192];
        snprintf(want, sizeof want, "%s: trigger.directory \"%s\" is not readable: Permission "
                 "denied (fix its permissions)", file, locked);
        CHECK_STR(msg, want);
    }
    free(msg);
    chmod(locked, 0755);
    chmod(tmp, 0700);
    free(file);
    free(locked);
}

static void test_set_load(void)
{
    char *dir = tu_path(tmp, "set");
    CHECK(mkdir(dir, 0700) == 0);
    cfg.pipelines_dir = dir;
    CHECK(tu_write_in(dir, "a.json", "{\"name\": \"dup\", \"isolation\": \"thread\","
                                     " \"steps\": [{\"handler\": \"a.b\"}]}") == 0);
    CHECK(tu_write_in(dir, "b.json", "{\"name\": \"dup\", \"isolation\": \"thread\","
                                     " \"steps\": [{\"handler\": \"a.c\"}]}") == 0);
    CHECK(tu_write_in(dir, "c.json", "{\"name\": \"other\", \"isolation\": \"thread\","
                                     " \"steps\": [{\"handler\": \"a.d\"}]}") == 0);
    CHECK(tu_write_in(dir, "broken.json", "{") == 0);
    CHECK(tu_write_in(dir, ".hidden.json", "{") == 0);      /* ignored */
    CHECK(tu_write_in(dir, "notes.txt", "not a pipeline") == 0); /* ignored */
    CHECK(tu_write_in(dir, "x.json.bak", "{") == 0);        /* ignored */
    struct pipeline_set set = {.v = (struct pipeline **)&set, .n = 99};
    struct diag d = {0};
    int rc = pipeline_set_load(&cfg, &set, &d);
    CHECK(rc == -1);
    CHECK(d.errors == 2);
    char *a = tu_path(dir, "a.json"), *b = tu_path(dir, "b.json");
    char want[8192];
    snprintf(want, sizeof want, "%s: pipeline name \"dup\" is already used by %s; names must be "
             "unique", b, a);
    CHECK_STR(tu_diag_find(&d, "already used"), want);
    CHECK_CONTAINS(tu_diag_find(&d, "broken.json"), "not valid JSON");
    if (d.errors != 2)
        tu_diag_dump("set", &d);
    /* the set holds what parsed, sorted by file name */
    CHECK(set.n == 2);
    if (set.n == 2) {
        CHECK_STR(set.v[0]->file, a);
        CHECK_STR(set.v[1]->name, "other");
    }
    CHECK(pipeline_set_find(&set, "other") != NULL);
    CHECK(pipeline_set_find(&set, "dup") == (set.n ? set.v[0] : NULL));
    CHECK(pipeline_set_find(&set, "nope") == NULL);
    CHECK(pipeline_set_find(&set, NULL) == NULL);
    pipeline_set_free(&set);
    CHECK(set.v == NULL && set.n == 0);
    diag_free(&d);
    free(a);
    free(b);

    /* all valid: 0, no problems */
    char *bad = tu_path(dir, "b.json");
    unlink(bad);
    free(bad);
    bad = tu_path(dir, "broken.json");
    unlink(bad);
    free(bad);
    rc = pipeline_set_load(&cfg, &set, &d);
    CHECK(rc == 0);
    CHECK(d.n == 0);
    CHECK(set.n == 2);
    pipeline_set_free(&set);
    diag_free(&d);

    /* across files: destinations must exist and not loop, routes not clash */
    char *xdir = tu_path(tmp, "cross");
    CHECK(mkdir(xdir, 0700) == 0);
    cfg.pipelines_dir = xdir;
    CHECK(tu_write_in(xdir, "a.json", "{\"name\": \"a\", \"isolation\": \"thread\","
                      " \"steps\": [{\"handler\": \"m.f\"}], \"on_success\": {\"pipeline\": \"b\"}}")
          == 0);
    CHECK(tu_write_in(xdir, "b.json", "{\"name\": \"b\", \"isolation\": \"thread\","
                      " \"steps\": [{\"handler\": \"m.f\"}], \"on_failure\": {\"pipeline\": \"a\"}}")
          == 0);
    CHECK(tu_write_in(xdir, "c.json", "{\"name\": \"c\", \"isolation\": \"thread\","
                      " \"steps\": [{\"handler\": \"m.f\"}], \"on_failure\": {\"pipeline\": \"zz\"},"
                      " \"trigger\": {\"http\": {\"method\": \"GET\", \"path\": \"/u/{id}\"}}}") == 0);
    CHECK(tu_write_in(xdir, "d.json", "{\"name\": \"d\", \"isolation\": \"thread\","
                      " \"steps\": [{\"handler\": \"m.f\"}],"
                      " \"trigger\": {\"http\": {\"path\": \"/u/{id}\"}}}") == 0);
    rc = pipeline_set_load(&cfg, &set, &d);
    CHECK(rc == -1);
    CHECK(set.n == 4);
    CHECK(d.errors == 4);
    CHECK_CONTAINS(tu_diag_find(&d, "a.json: on_success"),
                   "on_success.pipeline: records sent to \"b\" come back to \"a\"");
    CHECK_CONTAINS(tu_diag_find(&d, "b.json: on_failure"),
                   "on_failure.pipeline: records sent to \"a\" come back to \"b\"");
    CHECK_CONTAINS(tu_diag_find(&d, "c.json"), "on_failure.pipeline: no pipeline named \"zz\"");
    CHECK_CONTAINS(tu_diag_find(&d, "d.json"), "trigger.http: route ANY /u/{id} is also claimed by");
    if (d.errors != 4)
        tu_diag_dump("cross-file checks", &d);
    pipeline_set_free(&set);
    diag_free(&d);
    free(xdir);

    /* an empty folder: a warning, not an error */
    char *empty = tu_path(tmp, "emptyset");
    CHECK(mkdir(empty, 0700) == 0);
    cfg.pipelines_dir = empty;
    rc = pipeline_set_load(&cfg, &set, &d);
    CHECK(rc == 0);
    CHECK(d.errors == 0 && d.warnings == 1);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "no pipeline files");
    CHECK(set.n == 0);
    pipeline_set_free(&set);
    diag_free(&d);

    /* a missing folder: an error naming it and the config file */
    char *gone = tu_path(tmp, "gone");
    cfg.pipelines_dir = gone;
    rc = pipeline_set_load(&cfg, &set, &d);
    CHECK(rc == -1);
    CHECK(d.errors == 1);
    snprintf(want, sizeof want, "sluice.json: pipelines_dir \"%s\" cannot be read: No such file "
             "or directory", gone);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, want);
    CHECK(set.n == 0);
    pipeline_set_free(&set);
    diag_free(&d);
    cfg.pipelines_dir = NULL;
    free(gone);
    free(empty);
    free(dir);
}

int main(void)
{
    tmp = tu_mkdtemp("pipeline");
    cfg.file = "sluice.json";
    cfg.base_dir = tmp;
    cfg.workers = 3;
    test_valid_pipeline();
    test_zmq_and_http_triggers();
    test_http_trigger();
    test_schedule_trigger();
    test_provided_steps();
    test_destinations();
    test_script_steps();
    test_each_error();
    test_warnings();
    test_all_problems_reported();
    test_unreadable_directory();
    test_set_load();
    tu_rm_rf(tmp);
    free(tmp);
    return test_summary();
}
