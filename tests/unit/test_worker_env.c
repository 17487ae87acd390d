/* test_worker_env.c - unit tests for core/worker_env.c: nothing of the
 * daemon's environ leaks unless pass_env names it, Lambda's variables, the
 * order (pipeline, then step; C workers get the first C step's), PYTHONPATH
 * and NODE_PATH from vendor/, python/ and layers, and the memory size. */
#include "worker_env.h"

#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static char *kv1[] = {"STAGE=pipeline", "TABLE=users", NULL};
static char *kv2[] = {"STAGE=step", NULL};

static void test_environment(void)
{
    setenv("SLUICE_UNIT_SECRET", "x", 1);
    setenv("SLUICE_UNIT_PASSED", "y", 1);
    char *pass[] = {"SLUICE_UNIT_PASSED", "SLUICE_UNIT_UNSET", NULL};
    struct step steps[2] = {
        {.name = "a", .handler = "app.handler", .runtime = RUNTIME_C,
         .environment = {kv2, 1}},
        {.name = "b", .handler = "x.handler", .runtime = RUNTIME_PYTHON, .code = "/srv/code"},
    };
    struct pipeline p = {.name = "orders", .steps = steps, .n_steps = 2,
                         .environment = {kv1, 2}, .pass_env = {pass, 2}, .region = "eu-1"};
    char **env = worker_env_build(&p, RUNTIME_C);
    CHECK(env != NULL);
    CHECK(get(env, "SLUICE_UNIT_SECRET") == NULL);
    CHECK_STR(get(env, "SLUICE_UNIT_PASSED"), "y");
    CHECK(get(env, "SLUICE_UNIT_UNSET") == NULL);
    CHECK(get(env, "HOME") == NULL);
    CHECK_STR(get(env, "STAGE"), "step");
    CHECK_STR(get(env, "TABLE"), "users");
    CHECK_STR(get(env, "AWS_LAMBDA_FUNCTION_NAME"), "app.handler");
    CHECK_STR(get(env, "_HANDLER"), "app.handler");
    CHECK_STR(get(env, "AWS_REGION"), "eu-1");
    CHECK_STR(get(env, "AWS_DEFAULT_REGION"), "eu-1");
    CHECK_STR(get(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "128");
    CHECK_STR(get(env, "AWS_LAMBDA_LOG_GROUP_NAME"), "/sluice/orders");
    CHECK_CONTAINS(get(env, "AWS_LAMBDA_LOG_STREAM_NAME"), "/[$LATEST]");
    CHECK_STR(get(env, "TZ"), ":UTC");
    CHECK(get(env, "PATH") != NULL);
    size_t n = 0;
    for (; env[n]; n++)
        for (size_t j = 0; j < n; j++) /* each name once */
            CHECK(strncmp(env[j], env[n], strcspn(env[n], "=") + 1) != 0);
    worker_env_free(env);

    /* a Python worker: the pipeline's values; its steps' come per invocation */
    p.limits.memory_mb = 300;
    env = worker_env_build(&p, RUNTIME_PYTHON);
    CHECK_STR(get(env, "STAGE"), "pipeline");
    CHECK_STR(get(env, "_HANDLER"), "x.handler");
    CHECK_STR(get(env, "LAMBDA_TASK_ROOT"), "/srv/code");
    CHECK_STR(get(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "300");
    worker_env_free(env);
    cJSON *s = worker_env_step(&p, &steps[0]);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "STAGE")), "step");
    cJSON_Delete(s);
}

static void mk(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    CHECK(system(cmd) == 0);
}

static void test_search_paths(void)
{
    char tmp[] = "/tmp/sluice-wenv-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char code[256], vendor[300], layer[256], site[400], lpy[300], nm[300], nm20[300];
    snprintf(code, sizeof code, "%s/code", tmp);
    snprintf(vendor, sizeof vendor, "%s/vendor", code);
    snprintf(layer, sizeof layer, "%s/layer", tmp);
    snprintf(site, sizeof site, "%s/python/lib/python3.11/site-packages", layer);
    snprintf(lpy, sizeof lpy, "%s/python", layer);
    snprintf(nm, sizeof nm, "%s/nodejs/node_modules", layer);
    snprintf(nm20, sizeof nm20, "%s/nodejs/node20/node_modules", layer);
    mk(vendor);
    mk(site);
    mk(nm);
    mk(nm20);
    char *layers[] = {layer, NULL};
    struct step steps[1] = {{.name = "a", .handler = "app.h", .runtime = RUNTIME_PYTHON,
                             .code = code}};
    struct pipeline p = {.name = "x", .steps = steps, .n_steps = 1, .layers = {layers, 1}};
    char **env = worker_env_build(&p, RUNTIME_PYTHON);
    char want[2000];
    snprintf(want, sizeof want, "%s:%s:%s", vendor, site, lpy); /* no python/ beside: skipped */
    CHECK_STR(get(env, "PYTHONPATH"), want);
    CHECK(get(env, "NODE_PATH") == NULL);
    worker_env_free(env);
    steps[0].runtime = RUNTIME_NODE;
    env = worker_env_build(&p, RUNTIME_NODE);
    snprintf(want, sizeof want, "%s:%s", nm20, nm);
    CHECK_STR(get(env, "NODE_PATH"), want);
    worker_env_free(env);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_environment();
    test_search_paths();
    return test_summary();
}
