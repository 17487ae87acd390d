/* sluice/handler.h - the handler plugin ABI, version 1. FROZEN: a copy of the
 * header as ABI 1 shipped, kept so that test fixtures built from it prove
 * every later host still loads ABI 1 plugins. Never edit it.
 *
 * This is the only header a plugin author includes. A plugin is a shared
 * object that exports one symbol, SL_PLUGIN_SYMBOL, a const sl_plugin
 * descriptor. Plugins link against nothing of sluice's: every service they
 * need (remaining time, logging, setting the response, a parsed JSON view)
 * comes through the sl_host table that sluice hands in.
 *
 * Stability rules: every struct that crosses the boundary starts with its ABI
 * version or its size and only ever grows at the end; the host reads only the
 * fields the declared version promises. Memory that crosses the boundary is
 * allocated and copied by the host, so two allocators never mix.
 */
#ifndef SLUICE_HANDLER_H
#define SLUICE_HANDLER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_VERSION 1u

/* The one symbol a plugin exports (see SL_PLUGIN_EXPORT). */
#define SL_PLUGIN_SYMBOL "sluice_plugin"

#if defined(__GNUC__)
#define SL_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SL_PLUGIN_EXPORT
#endif

/* Log levels for sl_host.log. */
enum sl_log_level { SL_LOG_DEBUG = 10, SL_LOG_INFO = 20, SL_LOG_WARN = 30, SL_LOG_ERROR = 40 };

/* JSON value types reported by sl_host.json_type. */
enum sl_json_type {
    SL_JSON_INVALID = 0, SL_JSON_NULL, SL_JSON_FALSE, SL_JSON_TRUE,
    SL_JSON_NUMBER, SL_JSON_STRING, SL_JSON_ARRAY, SL_JSON_OBJECT
};

/* An opaque JSON value owned by the host. */
typedef struct sl_json sl_json;

/* An opaque response under construction, owned by the host. */
typedef struct sl_response sl_response;

typedef struct sl_host sl_host;

/* The event a handler receives: JSON text, NUL-terminated, valid JSON. */
typedef struct sl_event {
    const char *json;
    size_t len;
} sl_event;

/* Per-invocation context. Valid only for the duration of the call. */
typedef struct sl_context {
    uint32_t size;              /* sizeof(sl_context) of the host that filled it */
    const char *request_id;     /* UUID, 36 characters, shared by every step of one run */
    const char *function_name;  /* "MODULE.FUNCTION" */
    const char *pipeline;       /* pipeline name */
    const char *step;           /* step name */
    const char *config_json;    /* the step's "config" as JSON text ("{}" if absent) */
    size_t config_len;
    uint32_t attempt;           /* 1 for the first attempt */
    void *plugin_state;         /* what the plugin's init stored, else NULL */
    const sl_host *host;        /* the host services, same as handed to init */
    void *host_private;         /* the host's own; plugins must not touch it */
} sl_context;

/* A handler: return 0 on success, non-zero on failure. A handler that
 * returns 0 without responding answers statusCode 200 with body null. A
 * statusCode >= 500 also fails the step. */
typedef int (*sl_handler_fn)(const sl_event *event, sl_context *ctx, sl_response *res);

typedef struct sl_handler_def {
    const char *name;           /* FUNCTION in "MODULE.FUNCTION" */
    sl_handler_fn fn;
} sl_handler_def;

/* The plugin descriptor. abi_version and size come first so that a host of
 * any version can read them and refuse what it does not understand. */
typedef struct sl_plugin {
    uint32_t abi_version;       /* SL_ABI_VERSION the plugin was built with */
    uint32_t size;              /* sizeof(sl_plugin) */
    const char *name;           /* MODULE: must match the file name libMODULE.so / MODULE.so */
    const char *version;        /* the plugin's own version, free text, may be NULL */
    const sl_handler_def *handlers; /* terminated by an entry with name == NULL */
    /* Optional, run once per worker before the first invocation (Lambda's
     * init phase). Return 0 on success; on failure write a message to err. */
    int (*init)(const sl_host *host, void **state, char *err, size_t errlen);
    /* Optional, run once per worker at shutdown with init's state. */
    void (*destroy)(void *state);
} sl_plugin;

/* Services the host offers. Append-only: entries are grouped by the ABI
 * version that added them. Check host->size before using newer entries. */
struct sl_host {
    uint32_t abi_version;
    uint32_t size;

    /* --- ABI 1 --- */

    /* Milliseconds left before the step's deadline (never negative). */
    int64_t (*remaining_ms)(const sl_context *ctx);

    /* A log line; it lands in the database's logs table by request id. */
    void (*log)(sl_context *ctx, int level, const char *message);

    /* Set the response. body is JSON text of length len (copied, validated:
     * returns -1 if it is not valid JSON). */
    int (*respond)(sl_response *res, int status_code, const char *body, size_t len);

    /* Set the response from a JSON value (copied; the caller keeps it). */
    int (*respond_json)(sl_response *res, int status_code, const sl_json *body);

    /* Record why the handler failed (as Lambda's errorType/errorMessage).
     * The handler still returns non-zero. */
    void (*fail)(sl_response *res, const char *error_type, const char *message);

    /* The event and the step config, parsed once and owned by the host. */
    const sl_json *(*event)(sl_context *ctx);
    const sl_json *(*config)(sl_context *ctx);

    /* Parse JSON text; NULL if invalid. Free with json_free. */
    sl_json *(*json_parse)(const char *text, size_t len);
    void (*json_free)(sl_json *value);

    /* Look up by JSON pointer (RFC 6901, e.g. "/Records/0/s3/object/key").
     * Returns NULL if absent. The result belongs to root. */
    const sl_json *(*json_get)(const sl_json *root, const char *pointer);
    int (*json_type)(const sl_json *value);
    const char *(*json_string)(const sl_json *value);   /* NULL if not a string */
    double (*json_number)(const sl_json *value, double fallback);
    size_t (*json_size)(const sl_json *value);          /* array or object length */
    const sl_json *(*json_at)(const sl_json *value, size_t index);

    /* Build values. New values are owned by the caller until added to a
     * container (json_set / json_append take ownership of item). */
    sl_json *(*json_new_object)(void);
    sl_json *(*json_new_array)(void);
    sl_json *(*json_new_string)(const char *s);
    sl_json *(*json_new_number)(double n);
    sl_json *(*json_new_bool)(int b);
    int (*json_set)(sl_json *object, const char *key, sl_json *item);
    int (*json_append)(sl_json *array, sl_json *item);
    sl_json *(*json_copy)(const sl_json *value);
    /* The key of an object's index-th member (NULL past the end or for a
     * non-object): walk json_size/json_key/json_at to see every member. */
    const char *(*json_key)(const sl_json *object, size_t index);
};

/* A convenience compiled into the plugin, not a host service: the first
 * key of the step's config that is not in known (a NULL-terminated list),
 * or NULL. Plugins use it to refuse misspelt config keys by name. */
static inline const char *sl_config_unknown_key(sl_context *ctx, const char *const *known)
{
    const sl_host *h = ctx->host;
    const sl_json *cfg = h->config(ctx);
    if (h->size < offsetof(sl_host, json_key) + sizeof h->json_key)
        return NULL; /* an older host: nothing to list keys with */
    for (size_t i = 0; i < h->json_size(cfg); i++) {
        const char *key = h->json_key(cfg, i);
        size_t j = 0;
        while (key && known[j] && strcmp(known[j], key) != 0)
            j++;
        if (key && !known[j])
            return key;
    }
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif
