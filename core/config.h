/* config.h - the daemon configuration (sluice.json) and its embedded default.
 *
 * Without -c, sluice reads ./sluice.json if present, else the embedded
 * default (state in ./var, pipelines from ./pipelines, plugins from the
 * build's plugin folder, ZeroMQ on loopback). Relative paths are resolved
 * against the folder holding the config file (the working folder for the
 * embedded default); the struct holds them resolved.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <cjson/cJSON.h>

#include "confmap.h"
#include "diag.h"

struct config_zmq {
    char *pull;                 /* endpoint the PULL socket binds */
    char *router;               /* endpoint the ROUTER socket (invoke) binds */
    const cJSON *sub_raw;       /* [{endpoint, topics}] (borrowed, validated) */
    int max_message_bytes;      /* ZMQ_MAXMSGSIZE */
    int hwm;                    /* ZMQ_RCVHWM / ZMQ_SNDHWM */
};

struct config_http {
    char *listen;               /* HOST:PORT; on only when a pipeline has an http trigger */
    int max_body_bytes;
    int timeout_ms;
};

struct config {
    char *file;                 /* the config file as named, or "(embedded default)" */
    char *base_dir;             /* relative paths resolve against this */
    char *state_dir;
    char *database;
    char *pipelines_dir;
    struct strv plugin_path;
    int workers;                /* default concurrency of a pipeline */
    int queue_size;             /* events held in memory per pipeline */
    struct config_zmq zmq;
    struct config_http http;
    char *python;               /* interpreter for "python3" steps */
    char *node;                 /* interpreter for "nodejs" steps */
    cJSON *doc;                 /* the parsed document (owns *_raw) */
};

/* The file name used for messages when no file was read. */
#define CONFIG_EMBEDDED "(embedded default)"

/* Load `file` (NULL: ./sluice.json if it exists, else the embedded default).
 * Problems are added to d; returns 0 and a config (possibly with warnings),
 * or -1 with errors in d and *out NULL. */
int config_load(const char *file, struct config **out, struct diag *d);
void config_free(struct config **c);

/* The embedded default, as JSON text (for docs and `sluice check -v`). */
const char *config_default_json(void);

#endif
