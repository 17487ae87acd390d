/* test_host.c - unit tests for the services sluice hands to plugins
 * (core/host.c), called through host_table as a plugin would: JSON pointers
 * (escapes, array indexes, missing paths), respond / respond_json / fail,
 * remaining_ms against a deadline, the logger, the event and config views,
 * the JSON readers and builders, and NULL arguments everywhere. */
#include "host.h"

#include "clock.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const sl_host *H = &host_table;

static void test_table(void)
{
    CHECK(H->abi_version == SL_ABI_VERSION);
    CHECK(H->size == sizeof(sl_host));
    CHECK(H->remaining_ms && H->log && H->respond && H->respond_json && H->fail);
    CHECK(H->event && H->config && H->json_parse && H->json_free && H->json_get);
    CHECK(H->json_type && H->json_string && H->json_number && H->json_size && H->json_at);
    CHECK(H->json_new_object && H->json_new_array && H->json_new_string);
    CHECK(H->json_new_number && H->json_new_bool && H->json_set && H->json_append);
    CHECK(H->json_copy);
}

static const char DOC[] =
    "{\"Records\": [{\"s3\": {\"object\": {\"key\": \"k\", \"size\": 12}}}],"
    " \"a/b\": 1, \"m~n\": 2, \"\": 3, \"~1\": 4, \"arr\": [10, 20, 30],"
    " \"x\": {\"y\": null}, \"e\": {}}";

static void test_json_pointer(void)
{
    cJSON *doc = cJSON_Parse(DOC);
    CHECK(doc != NULL);
    CHECK(host_json_pointer(doc, "") == doc);
    CHECK_STR(cJSON_GetStringValue(host_json_pointer(doc, "/Records/0/s3/object/key")), "k");
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/Records/0/s3/object/size")) == 12);
    /* escapes: ~1 is '/', ~0 is '~', and ~01 is "~1", not "/" */
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/a~1b")) == 1);
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/m~0n")) == 2);
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/~01")) == 4);
    CHECK(host_json_pointer(doc, "/a/b") == NULL);
    CHECK(host_json_pointer(doc, "/m~n") == NULL);
    CHECK(host_json_pointer(doc, "/a~2b") == NULL);
    /* the empty key */
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/")) == 3);
    /* arrays */
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/arr/0")) == 10);
    CHECK(cJSON_GetNumberValue(host_json_pointer(doc, "/arr/2")) == 30);
    CHECK(host_json_pointer(doc, "/arr/3") == NULL);
    CHECK(host_json_pointer(doc, "/arr/-") == NULL);
    CHECK(host_json_pointer(doc, "/arr/x") == NULL);
    CHECK(host_json_pointer(doc, "/arr/") == NULL);
    CHECK(host_json_pointer(doc, "/arr/-1") == NULL);
    CHECK(host_json_pointer(doc, "/arr/99999999999") == NULL);
    /* RFC 6901: an array index has no leading zeros */
    CHECK(host_json_pointer(doc, "/arr/01") == NULL);
    /* present but null is not missing */
    const cJSON *y = host_json_pointer(doc, "/x/y");
    CHECK(y != NULL && cJSON_IsNull(y));
    CHECK(cJSON_IsObject(host_json_pointer(doc, "/e")));
    /* missing paths */
    CHECK(host_json_pointer(doc, "/missing") == NULL);
    CHECK(host_json_pointer(doc, "/missing/deeper") == NULL);
    CHECK(host_json_pointer(doc, "/arr/0/deeper") == NULL);
    CHECK(host_json_pointer(doc, "/Records/0/s3/object/key/x") == NULL);
    CHECK(host_json_pointer(doc, "/e/x") == NULL);
    CHECK(host_json_pointer(doc, "Records") == NULL); /* must start with '/' */
    CHECK(host_json_pointer(doc, "/record") == NULL); /* case matters */
    CHECK(host_json_pointer(doc, "/Record") == NULL); /* no prefix matches */
    CHECK(host_json_pointer(doc, "/Recordsx") == NULL);
    CHECK(host_json_pointer(NULL, "/a") == NULL);
    CHECK(host_json_pointer(doc, NULL) == NULL);

    /* the same through the table, on a value the host parsed */
    sl_json *v = H->json_parse(DOC, strlen(DOC));
    CHECK(v != NULL);
    CHECK_STR(H->json_string(H->json_get(v, "/Records/0/s3/object/key")), "k");
    CHECK(H->json_get(v, "/nope") == NULL);
    CHECK(H->json_get(NULL, "/a") == NULL);
    CHECK(H->json_get(v, NULL) == NULL);
    H->json_free(v);
    cJSON_Delete(doc);
}

static void test_json_readers(void)
{
    const char *text = "{\"s\": \"str\", \"n\": 2.5, \"t\": true, \"f\": false, \"z\": null,"
                       " \"a\": [1, 2], \"o\": {\"k\": 1}}";
    sl_json *v = H->json_parse(text, strlen(text));
    CHECK(v != NULL);
    CHECK(H->json_type(v) == SL_JSON_OBJECT);
    CHECK(H->json_type(H->json_get(v, "/s")) == SL_JSON_STRING);
    CHECK(H->json_type(H->json_get(v, "/n")) == SL_JSON_NUMBER);
    CHECK(H->json_type(H->json_get(v, "/t")) == SL_JSON_TRUE);
    CHECK(H->json_type(H->json_get(v, "/f")) == SL_JSON_FALSE);
    CHECK(H->json_type(H->json_get(v, "/z")) == SL_JSON_NULL);
    CHECK(H->json_type(H->json_get(v, "/a")) == SL_JSON_ARRAY);
    CHECK(H->json_type(H->json_get(v, "/o")) == SL_JSON_OBJECT);
    CHECK(H->json_type(NULL) == SL_JSON_INVALID);
    CHECK_STR(H->json_string(H->json_get(v, "/s")), "str");
    CHECK(H->json_string(H->json_get(v, "/n")) == NULL);
    CHECK(H->json_number(H->json_get(v, "/n"), -1) == 2.5);
    CHECK(H->json_number(H->json_get(v, "/s"), -1) == -1);
    CHECK(H->json_size(v) == 7);
    CHECK(H->json_size(H->json_get(v, "/a")) == 2);
    CHECK(H->json_size(H->json_get(v, "/s")) == 0);
    CHECK(H->json_number(H->json_at(H->json_get(v, "/a"), 1), 0) == 2);
    CHECK(H->json_at(H->json_get(v, "/a"), 2) == NULL);
    CHECK_STR(H->json_string(H->json_at(v, 0)), "str"); /* objects in order */
    CHECK(H->json_at(H->json_get(v, "/s"), 0) == NULL);
    H->json_free(v);
    /* json_parse takes len: only those bytes */
    v = H->json_parse("[1]xyz", 3);
    CHECK(v != NULL && H->json_size(v) == 1);
    H->json_free(v);
    CHECK(H->json_parse("{", 1) == NULL);
    CHECK(H->json_parse("", 0) == NULL);
}

static void test_json_builders(void)
{
    sl_json *o = H->json_new_object();
    sl_json *list = H->json_new_array();
    CHECK(o && list);
    CHECK(H->json_set(o, "name", H->json_new_string("x")) == 0);
    CHECK(H->json_set(o, "n", H->json_new_number(1)) == 0);
    CHECK(H->json_set(o, "ok", H->json_new_bool(1)) == 0);
    CHECK(H->json_append(list, H->json_new_number(1)) == 0);
    CHECK(H->json_append(list, H->json_new_string("two")) == 0);
    CHECK(H->json_append(list, H->json_new_bool(0)) == 0);
    CHECK(H->json_set(o, "list", list) == 0);
    /* setting a key again replaces it in place: no duplicate keys */
    CHECK(H->json_set(o, "n", H->json_new_number(2)) == 0);
    CHECK(H->json_size(o) == 4);
    sl_json *copy = H->json_copy(o);
    CHECK(copy != NULL && copy != o);
    H->json_free(o); /* the copy is independent */

    struct sl_response res;
    response_init(&res);
    CHECK(res.status_code == 200 && res.body == NULL);
    CHECK(H->respond_json(&res, 201, copy) == 0);
    CHECK(res.status_code == 201);
    CHECK_STR(res.body, "{\"name\":\"x\",\"n\":2,\"ok\":true,\"list\":[1,\"two\",false]}");
    CHECK(res.body && res.body_len == strlen(res.body));
    /* parse it back */
    sl_json *back = res.body ? H->json_parse(res.body, res.body_len) : NULL;
    CHECK(H->json_number(H->json_get(back, "/n"), 0) == 2);
    CHECK_STR(H->json_string(H->json_get(back, "/list/1")), "two");
    H->json_free(back);
    H->json_free(copy);

    /* wrong containers: refused, and the item stays the caller's */
    sl_json *arr = H->json_new_array();
    sl_json *item = H->json_new_number(5);
    CHECK(H->json_set(arr, "k", item) == -1);
    sl_json *obj = H->json_new_object();
    CHECK(H->json_append(obj, item) == -1);
    CHECK(H->json_set(obj, NULL, item) == -1);
    CHECK(H->json_set(obj, "k", NULL) == -1);
    CHECK(H->json_append(arr, NULL) == -1);
    H->json_free(item);
    H->json_free(arr);
    H->json_free(obj);
    response_release(&res);
    CHECK(res.body == NULL);
}

static void test_respond_and_fail(void)
{
    struct sl_response res;
    response_init(&res);
    CHECK(H->respond(&res, 200, "{\"a\":1}", 7) == 0);
    CHECK_STR(res.body, "{\"a\":1}");
    CHECK(res.body_len == 7);
    CHECK(res.status_code == 200);
    /* only len bytes are taken */
    CHECK(H->respond(&res, 202, "[1,2]garbage", 5) == 0);
    CHECK_STR(res.body, "[1,2]");
    CHECK(res.status_code == 202);
    /* invalid JSON is refused and leaves the earlier response alone */
    CHECK(H->respond(&res, 500, "not json{", 9) == -1);
    CHECK(H->respond(&res, 500, "", 0) == -1);
    CHECK(H->respond(&res, 500, "{\"a\":", 5) == -1);
    /* a valid value followed by more text is not valid JSON either: the body
     * is handed to the next step and to callers as JSON */
    CHECK(H->respond(&res, 500, "{} trailing", 11) == -1);
    CHECK(H->respond(&res, 500, "1 2", 3) == -1);
    CHECK_STR(res.body, "[1,2]");
    CHECK(res.status_code == 202);
    /* scalars are JSON too */
    CHECK(H->respond(&res, 200, "\"text\"", 6) == 0);
    CHECK_STR(res.body, "\"text\"");
    CHECK(H->respond(&res, 200, " null ", 6) == 0);

    H->fail(&res, "TestError", "it broke");
    CHECK_STR(res.error_type, "TestError");
    CHECK_STR(res.error_message, "it broke");
    H->fail(&res, "Other", NULL); /* replaces both */
    CHECK_STR(res.error_type, "Other");
    CHECK(res.error_message == NULL);
    H->fail(&res, NULL, "only a message");
    CHECK(res.error_type == NULL);
    CHECK_STR(res.error_message, "only a message");
    response_release(&res);
    CHECK(res.body == NULL && res.error_type == NULL && res.error_message == NULL);
}

struct logged {
    int calls;
    int level;
    const sl_context *ctx;
    char msg[128];
};

static void capture_log(void *arg, const sl_context *ctx, int level, const char *msg)
{
    struct logged *l = arg;
    l->calls++;
    l->level = level;
    l->ctx = ctx;
    snprintf(l->msg, sizeof l->msg, "%s", msg);
}

static void test_context_services(void)
{
    const char *event_text = "{\"Records\": [{\"s3\": {\"object\": {\"key\": \"a+b\"}}}]}";
    sl_event ev = {event_text, strlen(event_text)};
    struct logged logged = {0};
    struct host_call call = {
        .deadline_ns = clock_mono_ns() + 500 * 1000000LL,
        .event = &ev,
        .log = capture_log,
        .log_arg = &logged,
    };
    const char *config = "{\"size\": 100}";
    sl_context ctx = {.size = sizeof ctx, .request_id = "r", .config_json = config,
                      .config_len = strlen(config), .host = H, .host_private = &call};

    int64_t left = H->remaining_ms(&ctx);
    CHECK(left > 300 && left <= 500);
    call.deadline_ns = clock_mono_ns() - 1000000LL; /* past: never negative */
    CHECK(H->remaining_ms(&ctx) == 0);
    call.deadline_ns = clock_mono_ns() + 60 * 1000000000LL;
    left = H->remaining_ms(&ctx);
    CHECK(left > 59000 && left <= 60000);

    H->log(&ctx, SL_LOG_WARN, "hello");
    CHECK(logged.calls == 1);
    CHECK(logged.level == SL_LOG_WARN);
    CHECK(logged.ctx == &ctx);
    CHECK_STR(logged.msg, "hello");
    H->log(&ctx, SL_LOG_INFO, NULL); /* nothing to log */
    CHECK(logged.calls == 1);

    const sl_json *e1 = H->event(&ctx);
    CHECK(e1 != NULL);
    CHECK_STR(H->json_string(H->json_get(e1, "/Records/0/s3/object/key")), "a+b");
    CHECK(H->event(&ctx) == e1); /* parsed once */
    const sl_json *c1 = H->config(&ctx);
    CHECK(H->json_number(H->json_get(c1, "/size"), 0) == 100);
    CHECK(H->config(&ctx) == c1);
    host_call_release(&call);
    CHECK(call.event_parsed == NULL && call.config_parsed == NULL);
    host_call_release(&call); /* twice is harmless */

    /* no host state behind the context: answers, no crash */
    sl_context bare = {.size = sizeof bare, .config_json = config, .config_len = strlen(config)};
    CHECK(H->remaining_ms(&bare) == 0);
    H->log(&bare, SL_LOG_INFO, "dropped");
    CHECK(H->event(&bare) == NULL);
    CHECK(H->config(&bare) == NULL);
}

static void test_null_arguments(void)
{
    CHECK(H->remaining_ms(NULL) == 0);
    H->log(NULL, SL_LOG_INFO, "x");
    CHECK(H->respond(NULL, 200, "{}", 2) == -1);
    struct sl_response res;
    response_init(&res);
    CHECK(H->respond(&res, 200, NULL, 0) == -1);
    CHECK(H->respond_json(NULL, 200, NULL) == -1);
    CHECK(H->respond_json(&res, 200, NULL) == -1);
    CHECK(res.body == NULL);
    H->fail(NULL, "a", "b");
    CHECK(H->event(NULL) == NULL);
    CHECK(H->config(NULL) == NULL);
    CHECK(H->json_parse(NULL, 5) == NULL);
    H->json_free(NULL);
    CHECK(H->json_get(NULL, NULL) == NULL);
    CHECK(H->json_type(NULL) == SL_JSON_INVALID);
    CHECK(H->json_string(NULL) == NULL);
    CHECK(H->json_number(NULL, 7.5) == 7.5);
    CHECK(H->json_size(NULL) == 0);
    CHECK(H->json_at(NULL, 0) == NULL);
    CHECK(H->json_new_string(NULL) == NULL);
    CHECK(H->json_set(NULL, "k", NULL) == -1);
    CHECK(H->json_append(NULL, NULL) == -1);
    CHECK(H->json_copy(NULL) == NULL);
    response_release(&res);
}

int main(void)
{
    test_table();
    test_json_pointer();
    test_json_readers();
    test_json_builders();
    test_respond_and_fail();
    test_context_services();
    test_null_arguments();
    return test_summary();
}
