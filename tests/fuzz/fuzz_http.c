/* fuzz_http.c - the HTTP trigger's pure parts: route templates and paths,
 * the payload 2.0 and 1.0 events from hostile requests, the request check
 * (NUL, UTF-8), and mapping any answer JSON back to a response. The input is split into fields at NUL bytes. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *field[4] = {"", "", "", ""};
    size_t used = 0;
    for (int i = 0; i < 4 && used <= size; i++) {
        field[i] = copy + used;
        used += strlen(copy + used) + 1;
    }
    const char *body = used <= size ? copy + used : "";
    struct err e;
    cJSON *params = cJSON_CreateObject();
    if (http_route_check(field[0], &e) == 0)
        http_route_match(field[0], field[1], params);
    cJSON *headers = cJSON_CreateObject();
    cJSON_AddStringToObject(headers, "cookie", field[3]);
    struct http_request r = {.method = "POST", .route_key = "POST /x", .path = field[1],
                             .raw_query = field[2], .request_id = "id", .headers = headers,
                             .path_params = params, .body = body,
                             .body_len = size - (used <= size ? used : size)};
    cJSON *list = cJSON_CreateArray(), *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, cJSON_CreateString("X-Name"));
    cJSON_AddItemToArray(pair, cJSON_CreateString(field[3]));
    cJSON_AddItemToArray(list, pair);
    r.header_list = list;
    (void)http_request_check(field[1], list, &e);
    char *ev = http_event_json(&r);
    cJSON *v = ev ? cJSON_Parse(ev) : NULL;
    if (ev && !v)
        abort(); /* an event that is not JSON is a bug */
    cJSON_Delete(v);
    r.payload_v1 = true; /* the REST API shape from the same request */
    char *ev1 = http_event_json(&r);
    v = ev1 ? cJSON_Parse(ev1) : NULL;
    if (ev1 && !v)
        abort();
    cJSON_Delete(v);
    free(ev1);
    cJSON_Delete(list);
    struct http_response resp;
    http_response_from_answer(size % 2, field[2], &resp);
    http_response_release(&resp);
    free(ev);
    cJSON_Delete(headers);
    cJSON_Delete(params);
    free(copy);
    return 0;
}
