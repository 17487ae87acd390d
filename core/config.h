/* config.h - the daemon configuration (sluice.json) and its embedded default.
 *
 * Without -c, sluice reads ./sluice.json if present, else the embedded
 * default (state in ./var, pipelines from ./pipelines, plugins from the
 * build's or the installation's plugin folder (paths.h), ZeroMQ on
 * loopback). The file may hold // and block comments. Relative paths are resolved
 * against the folder holding the config file (the working folder for the
 * embedded default); the struct holds them resolved.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "confmap.h"
#include "diag.h"

struct config_zmq {
    char *pull;                 /* endpoint the PULL socket binds */
    char *router;               /* endpoint the ROUTER socket (invoke) binds */
    const cJSON *sub_raw;       /* [{endpoint, topics}] (borrowed, validated) */
    const cJSON *curve_raw;     /* borrowed */
    int max_message_bytes;      /* ZMQ_MAXMSGSIZE */
    int hwm;                    /* ZMQ_RCVHWM / ZMQ_SNDHWM */
    bool allow_remote;          /* bind beyond loopback without CURVE */
    /* CURVE (all Z85, 40 characters): the daemon's key pair, the client
     * keys it accepts, and the keys `sluice publish/invoke` use. */
    char *curve_secret, *curve_public;
    struct strv curve_clients;
    char *client_secret, *client_public;
};

struct config_http {
    char *listen;               /* HOST:PORT; on only when a pipeline has an http trigger */
    int max_body_bytes;
    int timeout_ms;
    bool allow_remote;          /* listen beyond loopback (HTTP has no auth here) */
};

struct config_admin {
    char *listen;               /* HOST:PORT of /metrics, /healthz, /status; NULL: off */
    bool allow_remote;          /* listen beyond loopback (it has no auth) */
};

/* How long the database keeps each kind of row; 0 = forever (the default).
 * Days may be fractional (tests use seconds). */
struct config_retention {
    double invocations_days;    /* invocations rows, by started_at */
    double logs_days;           /* handler log lines, by at */
    double events_done_days;    /* finished events, and dead ones already replayed */
    double events_dead_days;    /* dead-lettered events never replayed */
    double rejected_days;       /* rejected messages, by at */
    double max_db_mb;           /* above this, the oldest rows go first, whatever their age */
};

/* What a committed row survives (issue 15): "process" = the daemon being
 * killed (WAL, synchronous=NORMAL); "power" = also power loss (an fsync per
 * group commit, synchronous=FULL). See docs/reliability.md. */
enum config_durability { DURABILITY_POWER, DURABILITY_PROCESS };

struct config {
    char *file;                 /* the config file as named, or "(embedded default)" */
    char *base_dir;             /* relative paths resolve against this */
    char *state_dir;
    char *database;
    char *pipelines_dir;
    struct strv plugin_path;
    int workers;                /* executor threads; default concurrency of a pipeline */
    int max_concurrency;        /* events running at once, all pipelines together */
    int idle_timeout_s;         /* warm workers idle this long are stopped */
    int queue_size;             /* events held in memory per pipeline */
    struct config_zmq zmq;
    struct config_http http;
    struct config_admin admin;
    struct config_retention retention;
    enum config_durability durability;
    char *python;               /* interpreter for "python3" steps */
    char *node;                 /* interpreter for "nodejs" steps */
    char *region;               /* AWS_REGION of handlers, "local" by default */
    struct strv pass_env;       /* daemon variables workers get (names) */
    char *run_as;               /* workers' default identity (spawn_parse_run_as), or NULL */
    char *node_name;            /* this node's name in its rows (node column) */
    cJSON *doc;                 /* the parsed document (owns *_raw) */
};

/* The file name used for messages when no file was read. */
#define CONFIG_EMBEDDED "(embedded default)"

/* Load `file` (NULL: ./sluice.json if it exists, else the embedded default).
 * Problems are added to d; returns 0 and a config (possibly with warnings),
 * or -1 with errors in d and *out NULL. */
int config_load(const char *file, struct config **out, struct diag *d);
/* The same from text in memory; name stands for the file in messages and
 * its folder is the base for relative paths. */
int config_parse(const char *name, const char *text, size_t len, struct config **out,
                 struct diag *d);
void config_free(struct config **c);

/* Is a bind endpoint ("tcp://HOST:PORT", "ipc://...") reachable only from
 * this machine? */
bool config_endpoint_local(const char *endpoint);
/* Same for an HTTP listen address HOST:PORT. */
bool config_listen_local(const char *listen);

/* The embedded default, as JSON text (for docs and `sluice check -v`). */
const char *config_default_json(void);

#endif
