/* host.c - the sl_host service tables (see host.h). Every function accepts
 * NULL arguments and answers with NULL/-1 rather than crashing: plugins are
 * other people's code. Builders that take an item take it whatever happens
 * (freeing it on failure), so a plugin never has to guess who frees. */
#include "host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "json_writer.h"

/* An ABI 2 context is the first member of its call. */
static struct host_call *call_of(const sl_context *ctx)
{
    return (struct host_call *)ctx;
}

static struct host_call *call_of_v1(const sl_context *ctx)
{
    return ctx ? ((const struct host_context_v1 *)(const void *)ctx)->host_private : NULL;
}

static int64_t remaining(const struct host_call *c)
{
    if (!c)
        return 0;
    int64_t left = (c->deadline_ns - clock_mono_ns()) / 1000000;
    return left > 0 ? left : 0;
}

static int64_t h_remaining_ms(const sl_context *ctx) { return remaining(call_of(ctx)); }
static int64_t h1_remaining_ms(const sl_context *ctx) { return remaining(call_of_v1(ctx)); }

static void log_line(struct host_call *c, int level, const char *message)
{
    if (c && c->log && message)
        c->log(c->log_arg, &c->ctx, level, message);
}

static void h_log(const sl_context *ctx, int level, const char *message)
{
    log_line(call_of(ctx), level, message);
}

static void h1_log(const sl_context *ctx, int level, const char *message)
{
    log_line(call_of_v1(ctx), level, message);
}

static void h_logf(const sl_context *ctx, int level, const char *fmt, ...)
{
    char line[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt ? fmt : "", ap);
    va_end(ap);
    log_line(call_of(ctx), level, line);
}

static int set_body(sl_response *res, int status_code, char *body)
{
    if (!body)
        return -1;
    free(res->body);
    res->body = body;
    res->body_len = strlen(body);
    res->status_code = status_code;
    return 0;
}

static int h_respond(sl_response *res, int status_code, const char *body, size_t len)
{
    if (!res || !body)
        return -1;
    size_t at;
    if (!json_check(body, len, &at, NULL)) /* checked, not parsed: this is every answer's path */
        return -1;
    return set_body(res, status_code, strndup(body, len));
}

static int h_respond_json(sl_response *res, int status_code, const sl_json *body)
{
    if (!res || !body)
        return -1;
    return set_body(res, status_code, cJSON_PrintUnformatted((const cJSON *)body));
}

static void h_fail(sl_response *res, const char *error_type, const char *message)
{
    if (!res)
        return;
    free(res->error_type);
    free(res->error_message);
    res->error_type = error_type ? strdup(error_type) : NULL;
    res->error_message = message ? strdup(message) : NULL;
}

static int h_failf(sl_response *res, const char *error_type, const char *fmt, ...)
{
    char msg[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    h_fail(res, error_type, msg);
    return -1;
}

static const cJSON *parsed(cJSON **slot, const char *text, size_t len)
{
    size_t at;
    if (!*slot && text)
        *slot = json_parse_strict(text, len, &at, NULL);
    return *slot;
}

static const sl_json *event_of(struct host_call *c)
{
    if (!c || !c->event)
        return NULL;
    return (const sl_json *)parsed(&c->event_parsed, c->event->json, c->event->len);
}

static const sl_json *config_of(struct host_call *c)
{
    return c ? (const sl_json *)parsed(&c->config_parsed, c->config_json, c->config_len) : NULL;
}

static const sl_json *h_event(const sl_context *ctx) { return event_of(call_of(ctx)); }
static const sl_json *h1_event(const sl_context *ctx) { return event_of(call_of_v1(ctx)); }
static const sl_json *h_config(const sl_context *ctx) { return config_of(call_of(ctx)); }
static const sl_json *h1_config(const sl_context *ctx) { return config_of(call_of_v1(ctx)); }

static sl_json *h_json_parse_at(const char *text, size_t len, size_t *error_at,
                                const char **why)
{
    size_t at = 0;
    const char *what = "no text";
    cJSON *v = text ? json_parse_strict(text, len, &at, &what) : NULL;
    if (error_at)
        *error_at = at;
    if (why)
        *why = v ? NULL : what;
    return (sl_json *)v;
}

static sl_json *h_json_parse(const char *text, size_t len)
{
    return h_json_parse_at(text, len, NULL, NULL);
}

static void h_json_free(sl_json *v)
{
    cJSON_Delete((cJSON *)v);
}

/* Compare one pointer token (with ~0 ~1 escapes) to a key. */
static int token_equals(const char *tok, size_t len, const char *key)
{
    size_t i = 0;
    for (; i < len; i++, key++) {
        char want = tok[i];
        if (want == '~' && i + 1 < len) {
            want = tok[i + 1] == '1' ? '/' : tok[i + 1] == '0' ? '~' : 0;
            i++;
        }
        if (!want || *key != want)
            return 0;
    }
    return *key == '\0';
}

static const cJSON *step_into(const cJSON *v, const char *tok, size_t len)
{
    if (cJSON_IsArray(v)) {
        if (len == 0 || len > 9 || (len > 1 && tok[0] == '0')) /* RFC 6901: no leading 0 */
            return NULL;
        size_t idx = 0;
        for (size_t i = 0; i < len; i++) {
            if (tok[i] < '0' || tok[i] > '9')
                return NULL;
            idx = idx * 10 + (size_t)(tok[i] - '0');
        }
        return cJSON_GetArrayItem(v, (int)idx);
    }
    if (!cJSON_IsObject(v))
        return NULL;
    const cJSON *child;
    cJSON_ArrayForEach(child, v) if (child->string && token_equals(tok, len, child->string))
        return child;
    return NULL;
}

const cJSON *host_json_pointer(const cJSON *root, const char *pointer)
{
    if (!root || !pointer)
        return NULL;
    const cJSON *v = root;
    const char *p = pointer;
    while (v && *p) {
        if (*p != '/')
            return NULL;
        p++;
        size_t len = strcspn(p, "/");
        v = step_into(v, p, len);
        p += len;
    }
    return v;
}

static const sl_json *h_json_get(const sl_json *root, const char *pointer)
{
    return (const sl_json *)host_json_pointer((const cJSON *)root, pointer);
}

static int h_json_type(const sl_json *value)
{
    const cJSON *v = (const cJSON *)value;
    if (!v)
        return SL_JSON_INVALID;
    switch (v->type & 0xff) {
    case cJSON_NULL: return SL_JSON_NULL;
    case cJSON_False: return SL_JSON_FALSE;
    case cJSON_True: return SL_JSON_TRUE;
    case cJSON_Number: return SL_JSON_NUMBER;
    case cJSON_String: return SL_JSON_STRING;
    case cJSON_Array: return SL_JSON_ARRAY;
    case cJSON_Object: return SL_JSON_OBJECT;
    }
    return SL_JSON_INVALID;
}

static const char *h_json_string(const sl_json *value)
{
    const cJSON *v = (const cJSON *)value;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double h_json_number(const sl_json *value, double fallback)
{
    const cJSON *v = (const cJSON *)value;
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static size_t h_json_size(const sl_json *value)
{
    const cJSON *v = (const cJSON *)value;
    return cJSON_IsArray(v) || cJSON_IsObject(v) ? (size_t)cJSON_GetArraySize(v) : 0;
}

static const sl_json *h_json_at(const sl_json *value, size_t index)
{
    const cJSON *v = (const cJSON *)value;
    if (!(cJSON_IsArray(v) || cJSON_IsObject(v)) || index >= (size_t)cJSON_GetArraySize(v))
        return NULL;
    return (const sl_json *)cJSON_GetArrayItem(v, (int)index);
}

static sl_json *h_new_object(void) { return (sl_json *)cJSON_CreateObject(); }
static sl_json *h_new_array(void) { return (sl_json *)cJSON_CreateArray(); }
static sl_json *h_new_string(const char *s) { return s ? (sl_json *)cJSON_CreateString(s) : NULL; }
static sl_json *h_new_number(double n) { return (sl_json *)cJSON_CreateNumber(n); }
static sl_json *h_new_bool(int b) { return (sl_json *)cJSON_CreateBool(b); }

/* Add item; false (item untouched) when it cannot be. */
static bool set_item(cJSON *o, const char *key, cJSON *it)
{
    if (!cJSON_IsObject(o) || !key || !it || o == it)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, key, it);
    return cJSON_AddItemToObject(o, key, it);
}

static bool append_item(cJSON *a, cJSON *it)
{
    return cJSON_IsArray(a) && it && a != it && cJSON_AddItemToArray(a, it);
}

/* ABI 2: both take item whatever happens, freed here when it cannot be
 * added (but a container is never added to itself, nor freed for trying). */
static int h_json_set(sl_json *object, const char *key, sl_json *item)
{
    bool added = set_item((cJSON *)object, key, (cJSON *)item);
    if (!added && object != item)
        cJSON_Delete((cJSON *)item);
    return added ? 0 : -1;
}

static int h_json_append(sl_json *array, sl_json *item)
{
    bool added = append_item((cJSON *)array, (cJSON *)item);
    if (!added && array != item)
        cJSON_Delete((cJSON *)item);
    return added ? 0 : -1;
}

/* ABI 1 documented the item as still the caller's on failure: its plugins
 * may free it then, so the ABI 1 table must not. */
static int h1_json_set(sl_json *object, const char *key, sl_json *item)
{
    return set_item((cJSON *)object, key, (cJSON *)item) ? 0 : -1;
}

static int h1_json_append(sl_json *array, sl_json *item)
{
    return append_item((cJSON *)array, (cJSON *)item) ? 0 : -1;
}

static sl_json *h_json_copy(const sl_json *value)
{
    return value ? (sl_json *)cJSON_Duplicate((const cJSON *)value, 1) : NULL;
}

static const char *h_json_key(const sl_json *object, size_t index)
{
    const cJSON *o = (const cJSON *)object;
    if (!cJSON_IsObject(o) || index >= (size_t)cJSON_GetArraySize(o))
        return NULL;
    return cJSON_GetArrayItem(o, (int)index)->string;
}

static sl_json *h_new_stringn(const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *clean = malloc(3 * len + 1);
    if (!clean)
        return NULL;
    json_utf8_clean(s, len, clean);
    cJSON *v = cJSON_CreateString(clean);
    free(clean);
    return (sl_json *)v;
}

static char *h_json_print(const sl_json *value, size_t *len)
{
    char *text = value ? cJSON_PrintUnformatted((const cJSON *)value) : NULL;
    if (len)
        *len = text ? strlen(text) : 0;
    return text;
}

static void h_text_free(char *text)
{
    cJSON_free(text);
}

/* The writer a handler answers through: its text becomes the body. */
struct sl_writer {
    struct json_writer jw;
    sl_response *res;
};

static sl_writer *h_writer_begin(sl_response *res)
{
    sl_writer *w = res ? malloc(sizeof *w) : NULL;
    if (w) {
        jw_init(&w->jw);
        w->res = res;
    }
    return w;
}

static int h_writer_end(sl_writer *w, int status_code)
{
    if (!w)
        return -1;
    size_t len = 0;
    char *text = jw_take(&w->jw, &len);
    sl_response *res = w->res;
    free(w);
    if (!text)
        return -1;
    free(res->body);
    res->body = text;
    res->body_len = len;
    res->status_code = status_code;
    return 0;
}

static int h_write_object(sl_writer *w) { return w ? jw_object(&w->jw) : -1; }
static int h_write_array(sl_writer *w) { return w ? jw_array(&w->jw) : -1; }
static int h_write_close(sl_writer *w) { return w ? jw_close(&w->jw) : -1; }
static int h_write_null(sl_writer *w) { return w ? jw_null(&w->jw) : -1; }
static int h_write_bool(sl_writer *w, int b) { return w ? jw_bool(&w->jw, b != 0) : -1; }
static int h_write_number(sl_writer *w, double v) { return w ? jw_number(&w->jw, v) : -1; }
static int h_write_int(sl_writer *w, int64_t v) { return w ? jw_int(&w->jw, v) : -1; }

static int h_write_key(sl_writer *w, const char *key, size_t len)
{
    return w ? jw_key(&w->jw, key, len) : -1;
}

static int h_write_string(sl_writer *w, const char *s, size_t len)
{
    return w ? jw_string(&w->jw, s, len) : -1;
}

static int h_write_json(sl_writer *w, const sl_json *value)
{
    if (!w)
        return -1;
    char *text = value ? cJSON_PrintUnformatted((const cJSON *)value) : NULL;
    if (!text) {
        w->jw.failed = true;
        return -1;
    }
    int rc = jw_raw_value(&w->jw, text, strlen(text));
    cJSON_free(text);
    return rc;
}

static int h_write_text(sl_writer *w, const char *json, size_t len)
{
    if (!w)
        return -1;
    size_t at;
    if (!json || !json_check(json, len, &at, NULL)) {
        w->jw.failed = true;
        return -1;
    }
    return jw_raw_value(&w->jw, json, len);
}

/* The entries both tables share: what takes no context, but the two builders. */
#define HOST_COMMON_V1                                                                         \
    .respond = h_respond, .respond_json = h_respond_json, .fail = h_fail,                     \
    .json_parse = h_json_parse, .json_free = h_json_free, .json_get = h_json_get,             \
    .json_type = h_json_type, .json_string = h_json_string, .json_number = h_json_number,     \
    .json_size = h_json_size, .json_at = h_json_at, .json_new_object = h_new_object,          \
    .json_new_array = h_new_array, .json_new_string = h_new_string,                           \
    .json_new_number = h_new_number, .json_new_bool = h_new_bool, .json_copy = h_json_copy,   \
    .json_key = h_json_key

const sl_host host_table = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_host),
    .remaining_ms = h_remaining_ms,
    .log = h_log,
    .event = h_event,
    .config = h_config,
    HOST_COMMON_V1,
    .json_set = h_json_set,
    .json_append = h_json_append,
    .logf = h_logf,
    .failf = h_failf,
    .json_parse_at = h_json_parse_at,
    .json_new_stringn = h_new_stringn,
    .json_print = h_json_print,
    .text_free = h_text_free,
    .writer_begin = h_writer_begin,
    .writer_end = h_writer_end,
    .write_object = h_write_object,
    .write_array = h_write_array,
    .write_close = h_write_close,
    .write_key = h_write_key,
    .write_string = h_write_string,
    .write_number = h_write_number,
    .write_int = h_write_int,
    .write_bool = h_write_bool,
    .write_null = h_write_null,
    .write_json = h_write_json,
    .write_text = h_write_text,
};

/* ABI 1 plugins: the ABI 1 entries only (size stops before logf); the four
 * that take a context read ABI 1's layout, and the builders keep ABI 1's
 * ownership rule. */
const sl_host host_table_v1 = {
    .abi_version = 1,
    .size = offsetof(sl_host, logf),
    .remaining_ms = h1_remaining_ms,
    .log = h1_log,
    .event = h1_event,
    .config = h1_config,
    HOST_COMMON_V1,
    .json_set = h1_json_set,
    .json_append = h1_json_append,
};

void response_init(struct sl_response *r)
{
    memset(r, 0, sizeof *r);
    r->status_code = 200;
}

void response_release(struct sl_response *r)
{
    free(r->body);
    free(r->error_type);
    free(r->error_message);
    memset(r, 0, sizeof *r);
}

void host_call_contexts(struct host_call *c, void *instance)
{
    sl_context *x = &c->ctx;
    x->size = sizeof *x;
    x->instance = instance;
    x->host = &host_table;
    c->v1 = (struct host_context_v1){
        .size = sizeof c->v1, .request_id = x->request_id, .function_name = x->function_name,
        .pipeline = x->pipeline, .step = x->step, .config_json = c->config_json,
        .config_len = c->config_len, .attempt = x->attempt, .plugin_state = instance,
        .host = &host_table_v1, .host_private = c,
    };
}

void host_call_release(struct host_call *c)
{
    cJSON_Delete(c->event_parsed);
    cJSON_Delete(c->config_parsed);
    c->event_parsed = NULL;
    c->config_parsed = NULL;
}
