/* http_event.c - routes, payload 2.0 events and response mapping (see
 * http_event.h). */
#include "http_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* URL-decode (and '+' as space) n bytes of s into a new string. */
static char *url_decode(const char *s, size_t n)
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
    return out;
}

/* queryStringParameters: repeated keys joined with commas, as API Gateway. */
static cJSON *query_params(const char *q)
{
    cJSON *o = cJSON_CreateObject();
    while (o && q && *q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        char *k = url_decode(q, klen);
        char *v = eq ? url_decode(eq + 1, len - klen - 1) : strdup("");
        cJSON *old = k ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
        if (k && v && *k && old) {
            size_t n = strlen(old->valuestring) + strlen(v) + 2;
            char *joined = malloc(n);
            if (joined) {
                snprintf(joined, n, "%s,%s", old->valuestring, v);
                cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateString(joined));
            }
            free(joined);
        } else if (k && v && *k) {
            cJSON_AddStringToObject(o, k, v);
        }
        free(k);
        free(v);
        q += len + (q[len] == '&');
    }
    return o;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || i + k > n || c == 0 || (k == 2 && c < 0xc2))
            return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k;
    }
    return true;
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

char *http_event_json(const struct http_request *r)
{
    cJSON *ev = cJSON_CreateObject();
    if (!ev)
        return NULL;
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

/* {statusCode, headers, body, isBase64Encoded} applied as is. */
static void structured(const cJSON *v, struct http_response *r)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(v, "statusCode");
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(v, "headers");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(v, "body");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(v, "isBase64Encoded");
    r->status = (int)code->valuedouble;
    if (r->status < 100 || r->status > 599)
        r->status = 500;
    r->headers = cJSON_CreateObject();
    const cJSON *h;
    cJSON_ArrayForEach(h, headers) {
        if (cJSON_IsString(h))
            cJSON_AddStringToObject(r->headers, h->string, h->valuestring);
        else if (cJSON_IsNumber(h) || cJSON_IsBool(h)) {
            char *s = cJSON_PrintUnformatted(h);
            if (s)
                cJSON_AddStringToObject(r->headers, h->string, s);
            free(s);
        }
    }
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
    if (cJSON_IsObject(body) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "statusCode"))) {
        structured(body, r);
    } else {
        r->status = 200;
        r->headers = cJSON_CreateObject();
        cJSON_AddStringToObject(r->headers, "content-type", "application/json");
        r->body = body ? cJSON_PrintUnformatted(body) : strdup("null");
        r->body_len = r->body ? strlen(r->body) : 0;
    }
    cJSON_Delete(a);
}

void http_response_release(struct http_response *r)
{
    cJSON_Delete(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}
