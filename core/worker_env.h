/* worker_env.h - the environment a worker process starts with, built from
 * scratch as Lambda builds a function's: never the daemon's own environ.
 *
 * In order (a later entry replaces an earlier one of the same name): PATH,
 * LANG and TZ as Lambda sets them; the config's pass_env names, with the
 * daemon's values (and for C workers, sluice's own program, the daemon's
 * ASAN_/UBSAN_/LSAN_OPTIONS); the Lambda runtime's variables (AWS_LAMBDA_FUNCTION_NAME,
 * _VERSION, _MEMORY_SIZE, _HANDLER, LAMBDA_TASK_ROOT, AWS_REGION,
 * AWS_DEFAULT_REGION, AWS_LAMBDA_LOG_GROUP_NAME, _LOG_STREAM_NAME) for the
 * worker's first step; PYTHONPATH or NODE_PATH for dependencies beside the
 * handler and in layers (Lambda's order); the pipeline's "environment"; for
 * C workers the first C step's. A worker serves every step of its kind in
 * the pipeline: the Python and Node.js runtimes put each step's own
 * variables on top per invocation (worker_env_step, in the INIT frame); the
 * C steps of one pipeline share one environment. See docs/lambda.md. */
#ifndef SLUICE_WORKER_ENV_H
#define SLUICE_WORKER_ENV_H

#include <cjson/cJSON.h>

#include "pipeline.h"

/* A NULL-terminated "NAME=value" array for a worker of this kind, or NULL
 * when out of memory. Release with worker_env_free. */
char **worker_env_build(const struct pipeline *p, enum runtime kind);
void worker_env_free(char **env);

/* The variables that differ between the steps one worker serves (function
 * name, handler, task root, the step's "environment"), as a JSON object for
 * the INIT frame. */
cJSON *worker_env_step(const struct pipeline *p, const struct step *s);

/* What AWS_LAMBDA_FUNCTION_MEMORY_SIZE and context.memory_limit_in_mb say:
 * the pipeline's memory_mb, else Lambda's default, 128 (not enforced then). */
int worker_env_memory_mb(const struct pipeline *p);

#endif
