/* pipeline.h - one pipeline file (pipelines/NAME.json): its trigger, match
 * filter, steps, failure destination, concurrency and isolation.
 *
 * Parsing validates everything it can without touching plugins; binding
 * handlers to loaded plugins is the loader's job (loader_bind_pipeline).
 */
#ifndef SLUICE_PIPELINE_H
#define SLUICE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "confmap.h"
#include "diag.h"

struct config;
struct match;
struct nats_trigger;
struct plugin;
struct plugin_instance;

enum trigger_kind { TRIGGER_NONE, TRIGGER_DIRECTORY, TRIGGER_ZMQ, TRIGGER_HTTP, TRIGGER_SCHEDULE,
                    TRIGGER_NATS };
/* A firing due while the previous one's run is still going: dropped, or run
 * after it. */
enum overlap { OVERLAP_SKIP, OVERLAP_QUEUE };
enum isolation { ISOLATION_PROCESS, ISOLATION_THREAD };
/* RUNTIME_PROVIDED: a Lambda custom runtime, the "bootstrap" executable of
 * the step's code folder served the Lambda Runtime API (runtime_api.h). */
enum runtime { RUNTIME_C, RUNTIME_PYTHON, RUNTIME_NODE, RUNTIME_PROVIDED, RUNTIME_COUNT };

struct limits {
    int memory_mb;              /* RLIMIT_AS of worker processes; 0: none */
    int cpu_seconds;            /* RLIMIT_CPU per worker; 0: none */
    int max_open_files;         /* RLIMIT_NOFILE; 0: inherit */
    int pids;                   /* cgroup pids.max (else RLIMIT_NPROC with run_as); 0: none */
};

/* Who worker processes run as (run_as); set = false: the daemon's identity. */
struct run_as {
    bool set;
    bool dynamic;               /* "dynamic": uid and gid chosen by spawn_dynamic_id */
    unsigned uid, gid;
};

struct retry {
    int max_attempts;           /* 1 = no retry */
    int interval_ms;
    double backoff_rate;
    int max_interval_ms;
    unsigned on;                /* bit (1 << inv_status) for each status retried */
    bool jitter;                /* full jitter: wait a random part of the interval */
};

struct step {
    char *name;
    char *handler;              /* "MODULE.FUNCTION" (C) or "FILE.FUNCTION" (scripts);
                                 * provided: free text, the bootstrap's _HANDLER */
    char *module;
    char *function;
    enum runtime runtime;
    char *code;                 /* script handlers: the folder, resolved */
    char *source;               /* script handlers: the handler's file, resolved;
                                 * provided: CODE/bootstrap */
    char *interpreter;          /* script handlers: python3 or node, resolved (not provided) */
    char *config_json;          /* the step's "config" as compact JSON text */
    int timeout_ms;
    struct retry retry;
    struct strv environment;    /* "NAME=value", over the pipeline's */
    /* Filled by the loader. */
    struct plugin *plugin;
    void *fn;                   /* sl_handler_fn */
    struct plugin_instance *instance; /* owned by the loader */
};

/* Where a finished event's record goes (on_success / on_failure). */
enum dest_kind { DEST_NONE, DEST_DIRECTORY, DEST_PIPELINE, DEST_ZMQ, DEST_NATS };

struct destination {
    enum dest_kind kind;
    char *directory;            /* resolved */
    char *pipeline;
    char *endpoint;             /* zmq: connect a PUSH socket here; nats: the server URL */
    char *topic;                /* zmq: the first frame; nats: the subject */
};

struct pipeline {
    char *name;
    size_t index;               /* its place in its set: set->v[index] */
    char *file;                 /* the pipeline file, for messages */
    enum trigger_kind trigger;
    char *dir_spec;             /* trigger directory as written */
    char *dir;                  /* trigger directory, resolved */
    bool recursive;
    char *zmq_topic;
    char *http_method;          /* upper case, or "ANY" */
    char *http_path;            /* route template, "/users/{id}" */
    bool http_payload_v1;       /* "payload": "1.0", the REST API event shape */
    char *schedule;             /* "rate(5 minutes)" or "cron(0 12 * * ? *)" (schedule.h) */
    char *timezone;             /* of a cron schedule; NULL: UTC */
    bool catch_up;              /* run a firing missed while sluice was down, once */
    enum overlap overlap;
    struct nats_trigger *nats;  /* trigger.nats (nats_trigger.h), or NULL */
    struct match *match;
    struct step *steps;
    size_t n_steps;
    struct destination on_success;
    struct destination on_failure;  /* the dead-letter destination */
    int concurrency;            /* the most of its events that run at once */
    int reserved_concurrency;   /* slots of max_concurrency kept for it alone */
    enum isolation isolation;
    struct batch {
        int size;               /* 1: no batching */
        int window_ms;
    } batch;
    struct limits limits;       /* for worker processes */
    bool sandbox;               /* seccomp filter in C workers */
    struct run_as run_as;       /* the pipeline's run_as, else sluice.json's */
    int max_event_age_ms;       /* 0: no limit */
    /* issue 16: what worker processes see (worker_env.h) */
    struct strv environment;    /* "NAME=value" of every step */
    struct strv layers;         /* folders, resolved, in order */
    struct strv pass_env;       /* the config's pass_env names */
    char *region;               /* the config's region */
};

struct route_index;

struct pipeline_set {
    struct pipeline **v;
    size_t n;
    struct route_index *routes; /* router.c's index, built by pipeline_set_load */
};

/* Parse one pipeline file. Returns 0 and a pipeline, or -1 with problems in
 * d. Relative paths resolve against cfg->base_dir. */
/* The file whose change means new code: the plugin or the script. */
const char *step_file(const struct step *s);
const char *runtime_name(enum runtime r);

int pipeline_load(const char *file, const struct config *cfg, struct pipeline **out,
                  struct diag *d);
/* The same from text already in memory (file names it in messages). */
int pipeline_parse(const char *file, const char *text, size_t len, const struct config *cfg,
                   struct pipeline **out, struct diag *d);
void pipeline_free(struct pipeline **p);

/* Load every *.json in cfg->pipelines_dir (sorted by name), reporting every
 * problem, duplicate names included. Returns 0 if there were no errors; the
 * set holds the pipelines that parsed either way. */
int pipeline_set_load(const struct config *cfg, struct pipeline_set *set, struct diag *d);
void pipeline_set_free(struct pipeline_set *set);
struct pipeline *pipeline_set_find(const struct pipeline_set *set, const char *name);

#endif
