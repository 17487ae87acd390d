/* sluice/handler.h - the handler plugin ABI, version 2.
 *
 * This is the only header a plugin author includes. A plugin is a shared
 * object that exports one symbol, SL_PLUGIN_SYMBOL, a const sl_plugin
 * descriptor. Plugins link against nothing of sluice's: every service they
 * need (remaining time, logging, responding, JSON) comes through the sl_host
 * table that sluice hands in.
 *
 * Evolving (docs/handlers.md, "Versions and evolving", says it in full):
 * - Every struct that crosses the boundary starts with a size (and the
 *   descriptor with the ABI version) and only ever grows at the end.
 * - A host loads any plugin whose abi_version is <= its own and reads only
 *   the descriptor fields that the plugin's size covers.
 * - A plugin reads a host service or a context field only if the table's
 *   size covers it: SL_HOST_HAS(host, member), SL_CONTEXT_HAS(ctx, member).
 *   Set abi_version to the oldest ABI whose semantics you rely on, and a
 *   plugin built against a newer header runs on an older host.
 * Memory that crosses the boundary is allocated and copied by the host, so
 * two allocators never mix.
 */
#ifndef SLUICE_HANDLER_H
#define SLUICE_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_VERSION 2u

/* The one symbol a plugin exports (see SL_PLUGIN_EXPORT). */
#define SL_PLUGIN_SYMBOL "sluice_plugin"

#if defined(__GNUC__)
#define SL_PLUGIN_EXPORT __attribute__((visibility("default")))
#define SL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SL_PLUGIN_EXPORT
#define SL_PRINTF(f, a)
#endif

/* Does this host table / context reach `member`? Check before using
 * anything newer than the abi_version the plugin declares. */
#define SL_HAS(ptr, type, member) \
    ((ptr)->size >= offsetof(type, member) + sizeof(((type *)0)->member))
#define SL_HOST_HAS(host, member) SL_HAS(host, sl_host, member)
#define SL_CONTEXT_HAS(ctx, member) SL_HAS(ctx, sl_context, member)

/* Log levels for sl_host.log and logf. */
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

/* An opaque JSON writer that writes a response body directly (no tree). */
typedef struct sl_writer sl_writer;

typedef struct sl_host sl_host;

/* The event a handler receives: JSON text, NUL-terminated, valid JSON. */
typedef struct sl_event {
    const char *json;
    size_t len;
} sl_event;

/* Per-invocation context, read-only, valid only for the duration of the
 * call. Pass this very pointer back to the host (never a copy). */
typedef struct sl_context {
    uint32_t size;              /* how far this struct reaches: SL_CONTEXT_HAS */
    uint32_t attempt;           /* 1 for the first attempt of this step */
    const char *request_id;     /* UUID, 36 characters, shared by every step of one run */
    const char *event_id;       /* the event's id: the same across retries and
                                 * redeliveries, so side effects can be deduplicated */
    const char *source;         /* where the event came from: "directory:SPEC", "zmq:TOPIC",
                                 * "http:ROUTE", "invoke", "destination:PIPELINE" */
    const char *folder;         /* a directory trigger's folder (absolute), else NULL:
                                 * plugins that read files named in the event keep to it */
    const char *function_name;  /* "MODULE.FUNCTION" */
    const char *pipeline;       /* pipeline name */
    const char *step;           /* step name */
    int64_t deadline_ms;        /* wall clock, ms since the epoch: the step's timeout */
    uint64_t memory_limit_mb;   /* the worker's memory limit; 0: none */
    void *instance;             /* what create made for this step, else NULL */
    const sl_host *host;        /* the host services, as handed to create */
} sl_context;

/* A handler: return 0 on success, non-zero on failure. A handler that
 * returns 0 without responding answers statusCode 200 with body null. A
 * statusCode >= 500 also fails the step. */
typedef int (*sl_handler_fn)(const sl_event *event, const sl_context *ctx, sl_response *res);

typedef struct sl_handler_def {
    const char *name;           /* FUNCTION in "MODULE.FUNCTION" */
    sl_handler_fn fn;
} sl_handler_def;

/* Types of declared config keys. */
enum sl_config_type {
    SL_CONFIG_ANY = 0, SL_CONFIG_STRING, SL_CONFIG_INTEGER, SL_CONFIG_NUMBER, SL_CONFIG_BOOL,
    SL_CONFIG_STRINGS,          /* a string or an array of strings */
    SL_CONFIG_ARRAY, SL_CONFIG_OBJECT
};

/* One key of a step's "config". This struct is frozen (arrays of it cannot
 * grow per element): a later ABI adds a new descriptor field instead. */
typedef struct sl_config_key {
    const char *name;
    int type;                   /* enum sl_config_type */
    int required;               /* non-zero: a step without it is refused */
    const char *default_json;   /* JSON text put in the config when absent, or NULL */
    const char *help;           /* one line, for people */
} sl_config_key;

/* The plugin descriptor. abi_version and size come first so that a host of
 * any version can read them and refuse what it does not understand. */
typedef struct sl_plugin {
    uint32_t abi_version;       /* the oldest ABI whose semantics the plugin relies on:
                                 * SL_ABI_VERSION unless you know better */
    uint32_t size;              /* sizeof(sl_plugin) */
    const char *name;           /* MODULE: must match the file name libMODULE.so / MODULE.so */
    const char *version;        /* the plugin's own version, free text, may be NULL */
    const sl_handler_def *handlers; /* terminated by an entry with name == NULL */
    /* ABI 1's per-process init; ignored for abi_version >= 2 (leave NULL). */
    int (*init_v1)(const sl_host *host, void **state, char *err, size_t errlen);
    /* Optional: releases what create made (ABI 1: what init made). */
    void (*destroy)(void *instance);

    /* --- ABI 2 --- */

    /* Optional, Lambda's init phase: once per step per worker, before the
     * step's first invocation, with the step's config (validated against
     * config_keys, defaults filled in; owned by the host, valid only during
     * the call). *instance reaches handlers as ctx->instance. Return 0, or
     * non-zero with a message in err (errlen bytes). */
    int (*create)(const sl_host *host, const sl_json *config, void **instance, char *err,
                  size_t errlen);
    /* Optional: the config keys the plugin takes, ended by name == NULL.
     * NULL: any config is handed over unchecked. */
    const sl_config_key *config_keys;
} sl_plugin;

/* Services the host offers. Append-only: entries are grouped by the ABI
 * version that added them. Check SL_HOST_HAS before using newer entries. */
struct sl_host {
    uint32_t abi_version;
    uint32_t size;

    /* --- ABI 1 --- */

    /* Milliseconds left before the step's deadline (never negative). */
    int64_t (*remaining_ms)(const sl_context *ctx);

    /* A log line; it lands in the database's logs table by request id. */
    void (*log)(const sl_context *ctx, int level, const char *message);

    /* Set the response. body is JSON text of length len (copied, validated
     * strictly: returns -1 if it is not exactly one JSON value). */
    int (*respond)(sl_response *res, int status_code, const char *body, size_t len);

    /* Set the response from a JSON value (copied; the caller keeps it). */
    int (*respond_json)(sl_response *res, int status_code, const sl_json *body);

    /* Record why the handler failed (as Lambda's errorType/errorMessage).
     * The handler still returns non-zero. */
    void (*fail)(sl_response *res, const char *error_type, const char *message);

    /* The event and the step config, parsed once and owned by the host. */
    const sl_json *(*event)(const sl_context *ctx);
    const sl_json *(*config)(const sl_context *ctx);

    /* Parse JSON text strictly (exactly one value, white space around it,
     * valid UTF-8, nothing after); NULL if invalid. Free with json_free. */
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

    /* Build values. A new value belongs to the caller until a container
     * takes it. json_set and json_append ALWAYS take item: on failure they
     * free it (so `json_set(o, "k", json_new_string(s))` never leaks). */
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

    /* --- ABI 2 --- */

    /* printf-style log and fail (a message is cut at 16 KiB). failf returns
     * -1, so `return h->failf(res, "NotFound", "no %s", key);` both records
     * the failure and fails the handler (or a helper of it). */
    void (*logf)(const sl_context *ctx, int level, const char *fmt, ...) SL_PRINTF(3, 4);
    int (*failf)(sl_response *res, const char *error_type, const char *fmt, ...)
        SL_PRINTF(3, 4);

    /* json_parse that also says what is wrong and where: *error_at is the
     * byte offset of the problem, *why a description that lives forever
     * ("a number with a leading zero"); either may be NULL. */
    sl_json *(*json_parse_at)(const char *text, size_t len, size_t *error_at, const char **why);
    /* A new string of len bytes; invalid UTF-8 and NUL bytes become U+FFFD. */
    sl_json *(*json_new_stringn)(const char *s, size_t len);
    /* The JSON text of value, compact, NUL-terminated; *len gets its length
     * (len may be NULL). Free with text_free. NULL if value is NULL. */
    char *(*json_print)(const sl_json *value, size_t *len);
    void (*text_free)(char *text);

    /* A writer whose output becomes the response body, written as it goes:
     * no tree is built. Begin it, write exactly one value, end it. Every
     * call returns 0, or -1 once anything failed (out of memory, a key
     * outside an object, a value where a key is due); after a failure every
     * call is a no-op returning -1, so checking writer_end alone is enough.
     * writer_end sets the response (status_code) if the value is complete
     * and frees the writer either way. A response set otherwise later wins. */
    sl_writer *(*writer_begin)(sl_response *res);
    int (*writer_end)(sl_writer *w, int status_code);
    int (*write_object)(sl_writer *w);          /* { */
    int (*write_array)(sl_writer *w);           /* [ */
    int (*write_close)(sl_writer *w);           /* } or ], whichever is open */
    int (*write_key)(sl_writer *w, const char *key, size_t len);
    /* A string of len bytes: invalid UTF-8 and NUL bytes become U+FFFD. */
    int (*write_string)(sl_writer *w, const char *s, size_t len);
    /* A finite number; NaN and infinities, which JSON cannot hold, as null. */
    int (*write_number)(sl_writer *w, double v);
    /* An integer, exact: a JSON number when a double holds it exactly
     * (|v| <= 2^53 - 1), else a JSON string of its digits. */
    int (*write_int)(sl_writer *w, int64_t v);
    int (*write_bool)(sl_writer *w, int b);
    int (*write_null)(sl_writer *w);
    /* A whole value: a tree (copied as text) or JSON text (validated). */
    int (*write_json)(sl_writer *w, const sl_json *value);
    int (*write_text)(sl_writer *w, const char *json, size_t len);
};

#ifdef __cplusplus
}
#endif

#endif
