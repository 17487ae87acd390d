/* host.c - the sl_host service table (see host.h). Every function accepts
 * NULL arguments and answers with NULL/-1 rather than crashing: plugins are
 * other people's code. */
#include "host.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"

static struct host_call *call_of(const sl_context *ctx)
{
    return ctx ? ctx->host_private : NULL;
}

static int64_t h_remaining_ms(const sl_context *ctx)
{
    struct host_call *c = call_of(ctx);
    if (!c)
        return 0;
    int64_t left = (c->deadline_ns - clock_mono_ns()) / 1000000;
    return left > 0 ? left : 0;
}

static void h_log(sl_context *ctx, int level, const char *message)
{
    struct host_call *c = call_of(ctx);
    if (c && c->log && message)
        c->log(c->log_arg, ctx, level, message);
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
    cJSON *v = json_parse_exact(body, len, &at);
    if (!v)
        return -1;
    cJSON_Delete(v);
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

static const sl_json *h_event(sl_context *ctx)
{
    struct host_call *c = call_of(ctx);
    if (!c || !c->event)
        return NULL;
    if (!c->event_parsed)
        c->event_parsed = cJSON_ParseWithLength(c->event->json, c->event->len);
    return (const sl_json *)c->event_parsed;
}

static const sl_json *h_config(sl_context *ctx)
{
    struct host_call *c = call_of(ctx);
    if (!c || !ctx->config_json)
        return NULL;
    if (!c->config_parsed)
        c->config_parsed = cJSON_ParseWithLength(ctx->config_json, ctx->config_len);
    return (const sl_json *)c->config_parsed;
}

static sl_json *h_json_parse(const char *text, size_t len)
{
    return text ? (sl_json *)cJSON_ParseWithLength(text, len) : NULL;
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

static int h_json_set(sl_json *object, const char *key, sl_json *item)
{
    cJSON *o = (cJSON *)object;
    if (!cJSON_IsObject(o) || !key || !item)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, key, (cJSON *)item) ? 0 : -1;
    return cJSON_AddItemToObject(o, key, (cJSON *)item) ? 0 : -1;
}

static int h_json_append(sl_json *array, sl_json *item)
{
    cJSON *a = (cJSON *)array;
    if (!cJSON_IsArray(a) || !item)
        return -1;
    return cJSON_AddItemToArray(a, (cJSON *)item) ? 0 : -1;
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

const sl_host host_table = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_host),
    .remaining_ms = h_remaining_ms,
    .log = h_log,
    .respond = h_respond,
    .respond_json = h_respond_json,
    .fail = h_fail,
    .event = h_event,
    .config = h_config,
    .json_parse = h_json_parse,
    .json_free = h_json_free,
    .json_get = h_json_get,
    .json_type = h_json_type,
    .json_string = h_json_string,
    .json_number = h_json_number,
    .json_size = h_json_size,
    .json_at = h_json_at,
    .json_new_object = h_new_object,
    .json_new_array = h_new_array,
    .json_new_string = h_new_string,
    .json_new_number = h_new_number,
    .json_new_bool = h_new_bool,
    .json_set = h_json_set,
    .json_append = h_json_append,
    .json_copy = h_json_copy,
    .json_key = h_json_key,
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

void host_call_release(struct host_call *c)
{
    cJSON_Delete(c->event_parsed);
    cJSON_Delete(c->config_parsed);
    c->event_parsed = NULL;
    c->config_parsed = NULL;
}
