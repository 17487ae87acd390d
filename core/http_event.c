/* http_event.c - routes, payload 2.0 events and response mapping (see
 * http_event.h). */
#include "http_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int http_route_check(const char *t, struct err *e)
{
    if (t[0] != '/')
        return err_set(e, "path \"%s\" must start with '/'", t);
    for (const char *p = t; *p; p++) {
        if (*p != '{')
            continue;
        const char *close = strchr(p, '}');
        if (!close || close == p + 1 || p[-1] != '/' || (close[1] && close[1] != '/'))
            return err_set(e, "path \"%s\": a parameter is a whole segment, e.g. /users/{id}",
                           t);
        if (close[-1] == '+' && close[1])
            return err_set(e, "path \"%s\": a greedy parameter {name+} must be the last "
                           "segment", t);
        p = close;
    }
    return 0;
}

/* Length of the segment at s (up to '/' or the end). */
static size_t seg_len(const char *s)
{
    return strcspn(s, "/");
}

bool http_route_match(const char *t, const char *path, cJSON *params)
{
    while (*t == '/' && *path == '/') {
        t++;
        path++;
        size_t tl = seg_len(t), pl = seg_len(path);
        if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
            bool greedy = t[tl - 2] == '+';
            size_t take = greedy ? strlen(path) : pl;
            if (take == 0)
                return false;
            if (params) {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)(tl - 2 - greedy), t + 1);
                char *value = strndup(path, take);
                if (value)
                    cJSON_AddStringToObject(params, name, value);
                free(value);
            }
            t += tl;
            path += take;
            continue;
        }
        if (tl != pl || strncmp(t, path, tl) != 0)
            return false;
        t += tl;
        path += pl;
    }
    return *t == '\0' && *path == '\0';
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* URL-decode (and '+' as space) n bytes of s into a new string; *out_len
 * its length (a %00 makes a NUL inside it). */
static char *url_decode_n(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static char *url_decode(const char *s, size_t n)
{
    size_t len;
    return url_decode_n(s, n, &len);
}

/* The query's pairs, decoded, as [[key, value]...] (empty keys dropped). */
static cJSON *query_pairs(const char *q)
{
    cJSON *pairs = cJSON_CreateArray();
    while (pairs && q && *q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        char *k = url_decode(q, klen);
        char *v = eq ? url_decode(eq + 1, len - klen - 1) : strdup("");
        if (k && v && *k) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(k));
            cJSON_AddItemToArray(pair, cJSON_CreateString(v));
            cJSON_AddItemToArray(pairs, pair);
        }
        free(k);
        free(v);
        q += len + (q[len] == '&');
    }
    return pairs;
}

/* queryStringParameters of 2.0: repeated keys joined with commas. */
static cJSON *query_params(const char *q)
{
    cJSON *o = cJSON_CreateObject(), *pairs = query_pairs(q);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, pairs) {
        const char *k = cJSON_GetArrayItem(pair, 0)->valuestring;
        const char *v = cJSON_GetArrayItem(pair, 1)->valuestring;
        cJSON *old = cJSON_GetObjectItemCaseSensitive(o, k);
        if (!old) {
            cJSON_AddStringToObject(o, k, v);
            continue;
        }
        size_t n = strlen(old->valuestring) + strlen(v) + 2;
        char *joined = malloc(n);
        if (joined) {
            snprintf(joined, n, "%s,%s", old->valuestring, v);
            cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateString(joined));
        }
        free(joined);
    }
    cJSON_Delete(pairs);
    return o;
}

/* Strict UTF-8: no NUL, no overlong forms, no surrogates, nothing past
 * U+10FFFF (what Python's and Node's decoders accept). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || i + k > n || c == 0 || (k == 2 && c < 0xc2) || c > 0xf4)
            return false;
        unsigned char c1 = k > 1 ? s[i + 1] : 0;
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) ||
            (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90))
            return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static bool text_ok(const char *s, size_t n)
{
    return valid_utf8((const unsigned char *)s, n);
}

/* Does n bytes of s, URL-decoded, make valid UTF-8 without NUL? */
static bool decoded_ok(const char *s, size_t n)
{
    size_t len;
    char *d = url_decode_n(s, n, &len);
    bool ok = d && text_ok(d, len);
    free(d);
    return ok;
}

int http_request_check(const char *raw_uri, const cJSON *header_list, struct err *e)
{
    size_t path_len = strcspn(raw_uri, "?");
    if (!decoded_ok(raw_uri, path_len))
        return err_set(e, "the path holds a NUL byte (%%00) or is not valid UTF-8");
    const char *q = raw_uri[path_len] ? raw_uri + path_len + 1 : "";
    while (*q) {
        size_t len = strcspn(q, "&");
        if (!decoded_ok(q, len))
            return err_set(e, "the query string holds a NUL byte (%%00) or is not valid "
                           "UTF-8");
        q += len + (q[len] == '&');
    }
    const cJSON *pair;
    cJSON_ArrayForEach(pair, header_list) {
        const cJSON *k = cJSON_GetArrayItem(pair, 0), *v = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsString(k) || !cJSON_IsString(v) ||
            !text_ok(k->valuestring, strlen(k->valuestring)) ||
            !text_ok(v->valuestring, strlen(v->valuestring)))
            return err_set(e, "a header is not valid UTF-8");
    }
    return 0;
}

static char *base64(const unsigned char *s, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void add_body(cJSON *ev, const struct http_request *r)
{
    if (!r->body_len) {
        cJSON_AddBoolToObject(ev, "isBase64Encoded", 0);
        return;
    }
    bool text = valid_utf8((const unsigned char *)r->body, r->body_len);
    char *b = text ? strndup(r->body, r->body_len)
                   : base64((const unsigned char *)r->body, r->body_len);
    if (b)
        cJSON_AddStringToObject(ev, "body", b);
    cJSON_AddBoolToObject(ev, "isBase64Encoded", !text);
    free(b);
}

static cJSON *request_context(const struct http_request *r)
{
    char when[64];
    time_t secs = (time_t)(r->time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    cJSON *ctx = cJSON_CreateObject();
    cJSON *http = cJSON_AddObjectToObject(ctx, "http");
    const cJSON *ua = cJSON_GetObjectItemCaseSensitive(r->headers, "user-agent");
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(r->headers, "host");
    cJSON_AddStringToObject(ctx, "accountId", "local");
    cJSON_AddStringToObject(ctx, "apiId", "sluice");
    cJSON_AddStringToObject(ctx, "domainName", cJSON_IsString(host) ? host->valuestring : "");
    cJSON_AddStringToObject(http, "method", r->method);
    cJSON_AddStringToObject(http, "path", r->path);
    cJSON_AddStringToObject(http, "protocol", r->protocol ? r->protocol : "HTTP/1.1");
    cJSON_AddStringToObject(http, "sourceIp", r->source_ip ? r->source_ip : "");
    cJSON_AddStringToObject(http, "userAgent", cJSON_IsString(ua) ? ua->valuestring : "");
    cJSON_AddStringToObject(ctx, "requestId", r->request_id);
    cJSON_AddStringToObject(ctx, "routeKey", r->route_key);
    cJSON_AddStringToObject(ctx, "stage", "$default");
    cJSON_AddStringToObject(ctx, "time", when);
    cJSON_AddNumberToObject(ctx, "timeEpoch", (double)r->time_ms);
    return ctx;
}

/* The payload 2.0 event (HTTP API). */
static cJSON *event_v2(const struct http_request *r)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "version", "2.0");
    cJSON_AddStringToObject(ev, "routeKey", r->route_key);
    cJSON_AddStringToObject(ev, "rawPath", r->path);
    cJSON_AddStringToObject(ev, "rawQueryString", r->raw_query ? r->raw_query : "");
    const cJSON *cookie = cJSON_GetObjectItemCaseSensitive(r->headers, "cookie");
    if (cJSON_IsString(cookie)) {
        cJSON *cookies = cJSON_AddArrayToObject(ev, "cookies");
        char *copy = strdup(cookie->valuestring), *save = NULL;
        for (char *c = copy ? strtok_r(copy, ";", &save) : NULL; c; c = strtok_r(NULL, ";", &save))
            cJSON_AddItemToArray(cookies, cJSON_CreateString(c + strspn(c, " ")));
        free(copy);
    }
    cJSON_AddItemToObject(ev, "headers", r->headers ? cJSON_Duplicate(r->headers, 1)
                                                    : cJSON_CreateObject());
    if (r->raw_query && *r->raw_query)
        cJSON_AddItemToObject(ev, "queryStringParameters", query_params(r->raw_query));
    if (r->path_params && cJSON_GetArraySize(r->path_params) > 0)
        cJSON_AddItemToObject(ev, "pathParameters", cJSON_Duplicate(r->path_params, 1));
    cJSON_AddItemToObject(ev, "requestContext", request_context(r));
    return ev;
}

/* {name: last value} and {name: [values]} from [[name, value]...], or two
 * nulls when there are no pairs (as REST APIs send them). */
static void single_and_multi(cJSON *ev, const char *single, const char *multi, cJSON *pairs)
{
    if (cJSON_GetArraySize(pairs) == 0) {
        cJSON_AddNullToObject(ev, single);
        cJSON_AddNullToObject(ev, multi);
        return;
    }
    cJSON *s = cJSON_AddObjectToObject(ev, single), *m = cJSON_AddObjectToObject(ev, multi);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, pairs) {
        const char *k = cJSON_GetArrayItem(pair, 0)->valuestring;
        const char *v = cJSON_GetArrayItem(pair, 1)->valuestring;
        cJSON_DeleteItemFromObjectCaseSensitive(s, k);
        cJSON_AddStringToObject(s, k, v);
        cJSON *list = cJSON_GetObjectItemCaseSensitive(m, k);
        if (!list)
            list = cJSON_AddArrayToObject(m, k);
        cJSON_AddItemToArray(list, cJSON_CreateString(v));
    }
}

/* The request's headers as [[name, value]...]: as sent when known (REST
 * APIs keep the client's case), else the lower-case joined ones. */
static cJSON *header_pairs(const struct http_request *r)
{
    cJSON *pairs = cJSON_CreateArray();
    const cJSON *h;
    if (r->header_list) {
        cJSON_ArrayForEach(h, r->header_list)
            cJSON_AddItemToArray(pairs, cJSON_Duplicate(h, 1));
        return pairs;
    }
    cJSON_ArrayForEach(h, r->headers) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(h->string));
        cJSON_AddItemToArray(pair, cJSON_CreateString(cJSON_IsString(h) ? h->valuestring : ""));
        cJSON_AddItemToArray(pairs, pair);
    }
    return pairs;
}

static cJSON *request_context_v1(const struct http_request *r, const char *resource)
{
    char when[64];
    time_t secs = (time_t)(r->time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    const cJSON *ua = cJSON_GetObjectItemCaseSensitive(r->headers, "user-agent");
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(r->headers, "host");
    cJSON *ctx = cJSON_CreateObject();
    cJSON_AddStringToObject(ctx, "accountId", "local");
    cJSON_AddStringToObject(ctx, "apiId", "sluice");
    cJSON_AddStringToObject(ctx, "domainName", cJSON_IsString(host) ? host->valuestring : "");
    cJSON_AddStringToObject(ctx, "extendedRequestId", r->request_id);
    cJSON_AddStringToObject(ctx, "httpMethod", r->method);
    cJSON *id = cJSON_AddObjectToObject(ctx, "identity");
    cJSON_AddStringToObject(id, "sourceIp", r->source_ip ? r->source_ip : "");
    cJSON_AddStringToObject(id, "userAgent", cJSON_IsString(ua) ? ua->valuestring : "");
    cJSON_AddStringToObject(ctx, "path", r->path);
    cJSON_AddStringToObject(ctx, "protocol", r->protocol ? r->protocol : "HTTP/1.1");
    cJSON_AddStringToObject(ctx, "requestId", r->request_id);
    cJSON_AddStringToObject(ctx, "requestTime", when);
    cJSON_AddNumberToObject(ctx, "requestTimeEpoch", (double)r->time_ms);
    cJSON_AddStringToObject(ctx, "resourceId", r->route_key);
    cJSON_AddStringToObject(ctx, "resourcePath", resource);
    cJSON_AddStringToObject(ctx, "stage", "$default");
    return ctx;
}

/* The payload 1.0 event (REST API, Lambda proxy integration). */
static cJSON *event_v1(const struct http_request *r)
{
    const char *space = strchr(r->route_key, ' ');
    const char *resource = space ? space + 1 : r->path;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "version", "1.0");
    cJSON_AddStringToObject(ev, "resource", resource);
    cJSON_AddStringToObject(ev, "path", r->path);
    cJSON_AddStringToObject(ev, "httpMethod", r->method);
    cJSON *pairs = header_pairs(r);
    single_and_multi(ev, "headers", "multiValueHeaders", pairs);
    cJSON_Delete(pairs);
    pairs = query_pairs(r->raw_query);
    single_and_multi(ev, "queryStringParameters", "multiValueQueryStringParameters", pairs);
    cJSON_Delete(pairs);
    if (r->path_params && cJSON_GetArraySize(r->path_params) > 0)
        cJSON_AddItemToObject(ev, "pathParameters", cJSON_Duplicate(r->path_params, 1));
    else
        cJSON_AddNullToObject(ev, "pathParameters");
    cJSON_AddNullToObject(ev, "stageVariables");
    cJSON_AddItemToObject(ev, "requestContext", request_context_v1(r, resource));
    if (!r->body_len)
        cJSON_AddNullToObject(ev, "body");
    return ev;
}

char *http_event_json(const struct http_request *r)
{
    cJSON *ev = r->payload_v1 ? event_v1(r) : event_v2(r);
    if (!ev)
        return NULL;
    add_body(ev, r);
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return text;
}

void http_response_error(int status, const char *message, struct http_response *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", message);
    r->status = status;
    r->headers = cJSON_CreateObject();
    cJSON_AddStringToObject(r->headers, "content-type", "application/json");
    r->body = cJSON_PrintUnformatted(o);
    r->body_len = r->body ? strlen(r->body) : 0;
    cJSON_Delete(o);
}

static int b64val(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
         : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode base64, skipping what is not an alphabet character. */
static char *unbase64(const char *s, size_t *len)
{
    char *out = malloc(strlen(s) / 4 * 3 + 4);
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; out && *s; s++) {
        int v = b64val(*s);
        if (v < 0)
            continue;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)(acc >> bits & 0xff);
        }
    }
    *len = n;
    return out;
}

/* One header line per call; a name may come more than once (Set-Cookie). */
static void add_response_header(cJSON *headers, const char *name, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        cJSON_AddItemToObject(headers, name, cJSON_CreateString(v->valuestring));
    } else if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *s = cJSON_PrintUnformatted(v);
        if (s)
            cJSON_AddItemToObject(headers, name, cJSON_CreateString(s));
        free(s);
    }
}

/* Is name: value already among the headers (headers and multiValueHeaders
 * both naming it)? */
static bool has_header(const cJSON *headers, const char *name, const char *value)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, headers) {
        if (strcasecmp(h->string, name) == 0 && strcmp(h->valuestring, value) == 0)
            return true;
    }
    return false;
}

/* {statusCode, headers, multiValueHeaders, cookies, body, isBase64Encoded}
 * applied as API Gateway applies them. */
static void structured(const cJSON *v, struct http_response *r)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(v, "statusCode");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(v, "body");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(v, "isBase64Encoded");
    r->status = (int)code->valuedouble;
    if (r->status < 200 || r->status > 599) /* 1xx is never a final answer */
        r->status = 500;
    r->headers = cJSON_CreateObject();
    const cJSON *h, *item;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(v, "headers"))
        add_response_header(r->headers, h->string, h);
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(v, "multiValueHeaders")) {
        cJSON_ArrayForEach(item, h) {
            if (!cJSON_IsString(item) || !has_header(r->headers, h->string, item->valuestring))
                add_response_header(r->headers, h->string, item);
        }
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(v, "cookies"))
        add_response_header(r->headers, "set-cookie", item);
    if (cJSON_IsString(body) && cJSON_IsTrue(b64)) {
        r->body = unbase64(body->valuestring, &r->body_len);
    } else if (cJSON_IsString(body)) {
        r->body = strdup(body->valuestring);
        r->body_len = r->body ? strlen(r->body) : 0;
    } else if (body) {
        r->body = cJSON_PrintUnformatted(body);
        r->body_len = r->body ? strlen(r->body) : 0;
    }
}

/* Any other answer: API Gateway's inferred response, 200 with the value as
 * a JSON body (a string is the body as is). */
static void inferred(const cJSON *body, struct http_response *r)
{
    r->status = 200;
    r->headers = cJSON_CreateObject();
    cJSON_AddStringToObject(r->headers, "content-type", "application/json");
    r->body = cJSON_IsString(body) ? strdup(body->valuestring)
              : body ? cJSON_PrintUnformatted(body) : strdup("null");
    r->body_len = r->body ? strlen(r->body) : 0;
}

void http_response_from_answer(bool ok, const char *answer, struct http_response *r)
{
    memset(r, 0, sizeof *r);
    cJSON *a = answer ? cJSON_Parse(answer) : NULL;
    if (!ok) {
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(a, "status");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(a, "errorType");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (cJSON_IsString(status) && strcmp(status->valuestring, "timeout") == 0)
            http_response_error(504, "the handler did not answer before its deadline", r);
        else if (strcmp(t, "TooManyRequests") == 0)
            http_response_error(429, "too many requests; retry later", r);
        else if (strcmp(t, "DuplicateEvent") == 0)
            http_response_error(409, "this Idempotency-Key was already used for this route; the "
                                "request is not run twice", r);
        else if (strcmp(t, "Interrupted") == 0)
            http_response_error(503, "sluice is stopping or reloading; retry", r);
        else
            http_response_error(502, "the handler failed; see `sluice logs` for the "
                                "x-request-id", r);
        cJSON_Delete(a);
        return;
    }
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(a, "body");
    if (cJSON_IsObject(body) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "statusCode")))
        structured(body, r);
    else
        inferred(body, r);
    cJSON_Delete(a);
}

bool http_status_fails_step(bool http_trigger, int status_code)
{
    return !http_trigger && status_code >= 500;
}

void http_response_release(struct http_response *r)
{
    cJSON_Delete(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}
