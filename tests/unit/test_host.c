/* test_host.c - unit tests for the services sluice hands to plugins
 * (core/host.c), called through host_table as a plugin would: JSON pointers
 * (escapes, array indexes, missing paths), respond / respond_json / fail /
 * failf, remaining_ms against a deadline, the logger, the event and config
 * views through an ABI 2 and an ABI 1 context, the strict parser (known
 * answers, as the exec plugin once checked them itself), the JSON readers,
 * builders (that take their item even on failure: run under LeakSanitizer)
 * and the response writer, and NULL arguments everywhere. */
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
    CHECK(H->json_copy && H->json_key);
    CHECK(SL_HOST_HAS(H, write_text) && SL_HOST_HAS(H, logf) && SL_HOST_HAS(H, failf));
    /* what ABI 1 plugins get: ABI 1's entries, and a size that says so */
    const sl_host *v1 = &host_table_v1;
    CHECK(v1->abi_version == 1);
    CHECK(SL_HOST_HAS(v1, json_key) && !SL_HOST_HAS(v1, logf));
    CHECK(v1->respond == H->respond && v1->json_key == H->json_key);
    /* ABI 1's ownership rule stays for ABI 1 plugins: a refused item is
     * still theirs (they free it; freeing it here too would be a double
     * free under ASan) */
    sl_json *arr = v1->json_new_array();
    sl_json *item = v1->json_new_number(5);
    CHECK(v1->json_set(arr, "k", item) == -1);
    CHECK(v1->json_append(NULL, item) == -1);
    CHECK(v1->json_number(item, 0) == 5); /* still there */
    v1->json_free(item);
    CHECK(v1->json_append(arr, v1->json_new_bool(1)) == 0);
    CHECK(v1->json_size(arr) == 1);
    v1->json_free(arr);
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

    /* wrong containers: refused, and the item is taken all the same
     * (test_builders_take_item_on_failure) */
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
    const char *config = "{\"size\": 100}";
    int instance = 7;
    struct host_call call = {
        .ctx = {.request_id = "r", .event_id = "e-1", .attempt = 2, .pipeline = "p",
                .step = "s", .function_name = "m.f"},
        .deadline_ns = clock_mono_ns() + 500 * 1000000LL,
        .event = &ev,
        .config_json = config,
        .config_len = strlen(config),
        .log = capture_log,
        .log_arg = &logged,
    };
    host_call_contexts(&call, &instance);
    const sl_context *ctx = &call.ctx;
    CHECK(ctx->size == sizeof *ctx && ctx->host == H && ctx->instance == &instance);
    CHECK(SL_CONTEXT_HAS(ctx, event_id) && SL_CONTEXT_HAS(ctx, host));

    int64_t left = H->remaining_ms(ctx);
    CHECK(left > 300 && left <= 500);
    call.deadline_ns = clock_mono_ns() - 1000000LL; /* past: never negative */
    CHECK(H->remaining_ms(ctx) == 0);
    call.deadline_ns = clock_mono_ns() + 60 * 1000000000LL;
    left = H->remaining_ms(ctx);
    CHECK(left > 59000 && left <= 60000);

    H->log(ctx, SL_LOG_WARN, "hello");
    CHECK(logged.calls == 1);
    CHECK(logged.level == SL_LOG_WARN);
    CHECK(logged.ctx == ctx);
    CHECK_STR(logged.msg, "hello");
    H->log(ctx, SL_LOG_INFO, NULL); /* nothing to log */
    CHECK(logged.calls == 1);
    H->logf(ctx, SL_LOG_ERROR, "%s %d of %s", "attempt", (int)ctx->attempt, ctx->event_id);
    CHECK(logged.calls == 2 && logged.level == SL_LOG_ERROR);
    CHECK_STR(logged.msg, "attempt 2 of e-1");

    const sl_json *e1 = H->event(ctx);
    CHECK(e1 != NULL);
    CHECK_STR(H->json_string(H->json_get(e1, "/Records/0/s3/object/key")), "a+b");
    CHECK(H->event(ctx) == e1); /* parsed once */
    const sl_json *c1 = H->config(ctx);
    CHECK(H->json_number(H->json_get(c1, "/size"), 0) == 100);
    CHECK(H->config(ctx) == c1);

    /* an ABI 1 plugin sees ABI 1's context and table, and reaches the same call */
    const struct host_context_v1 *v1 = &call.v1;
    const sl_host *h1 = v1->host;
    CHECK(h1 == &host_table_v1 && v1->host_private == &call);
    CHECK(v1->plugin_state == &instance && v1->attempt == 2);
    CHECK_STR(v1->request_id, "r");
    CHECK_STR(v1->config_json, config);
    const sl_context *as_v1 = (const sl_context *)(const void *)v1;
    CHECK(h1->remaining_ms(as_v1) > 59000);
    CHECK(h1->event(as_v1) == e1);
    CHECK(h1->config(as_v1) == c1);
    h1->log(as_v1, SL_LOG_INFO, "from v1");
    CHECK(logged.calls == 3 && logged.ctx == ctx); /* the sink sees one context */
    CHECK_STR(logged.msg, "from v1");

    host_call_release(&call);
    CHECK(call.event_parsed == NULL && call.config_parsed == NULL);
    host_call_release(&call); /* twice is harmless */
}

/* The strict parser: RFC 8259 exactly, and where it went wrong. */
static void test_strict_parser(void)
{
    static const char *const ok[] = {
        "0", "-0", "1.5e10", "-12.25E-3", "true", "false", "null", "\"\"", " {} ", "[]",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\\\"\"}", "\"na\xc3\xafve \xf0\x9f\x98\x80\"",
        "\"\\ud83d\\ude00\"", "\n\t[ 1 , 2 ]\r\n", "\"\\/\\b\\f\\r\\t\"",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sl_json *v = H->json_parse(ok[i], strlen(ok[i]));
        if (!v)
            fprintf(stderr, "should be valid: %s\n", ok[i]);
        CHECK(v != NULL);
        H->json_free(v);
    }
    static const struct {
        const char *text;
        size_t at;
    } bad[] = {
        {"", 0},        {"1 2", 2},       {"{\"a\":1}{", 7},  {"01", 1},       {"1.", 2},
        {"1e", 2},      {"-", 1},         {"+1", 0},          {"tru", 0},      {"[1,]", 3},
        {"{\"a\"}", 4}, {"{a:1}", 1},     {"\"a\x01\"", 2},   {"\"\\x\"", 2},  {"\"abc", 4},
        {"\"\xff\"", 1}, {"\"\xc0\xaf\"", 1}, {"\"\xed\xa0\x80\"", 1}, {"\"\\ude00\"", 7},
        {"\"\\ud83d\"", 7}, {"[1 2]", 3},  {"hello world", 0}, {"{\"a\":1,}", 7}, {"\"\\u12\"", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = 99;
        const char *why = NULL;
        sl_json *v = H->json_parse_at(bad[i].text, strlen(bad[i].text), &at, &why);
        if (v || at != bad[i].at)
            fprintf(stderr, "bad JSON %zu: want an error at %zu, got %zu\n", i, bad[i].at, at);
        CHECK(v == NULL && at == bad[i].at && why != NULL);
        H->json_free(v);
    }
    size_t at;
    const char *why;
    CHECK(H->json_parse_at("{} x", 4, &at, &why) == NULL && at == 3);
    CHECK_STR(why, "more text after the JSON value (print exactly one value)");
    CHECK(H->json_parse_at("hello", 5, &at, &why) == NULL && at == 0);
    CHECK_STR(why, "an unexpected character where a JSON value should start");
    /* a NUL byte is no JSON either, and respond checks the same way */
    CHECK(H->json_parse("[1]\0", 4) == NULL);
    struct sl_response res;
    response_init(&res);
    CHECK(H->respond(&res, 200, "01", 2) == -1);
    CHECK(H->respond(&res, 200, "\"\xff\"", 3) == -1);
    CHECK(res.body == NULL);
    response_release(&res);
    /* depth: 1000 levels pass (as cJSON's limit), 1001 do not */
    char deep[2 * 1001 + 1];
    for (int depth = 1000; depth <= 1001; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        sl_json *v = H->json_parse(deep, 2 * (size_t)depth);
        CHECK((v != NULL) == (depth == 1000));
        H->json_free(v);
    }
}

/* Builders take their item whatever happens (issue 14: json_set leaked it
 * on failure). LeakSanitizer is what fails this test if they do not. */
static void test_builders_take_item_on_failure(void)
{
    sl_json *arr = H->json_new_array();
    CHECK(H->json_set(arr, "k", H->json_new_string("leaks?")) == -1); /* not an object */
    CHECK(H->json_set(NULL, "k", H->json_new_number(1)) == -1);
    sl_json *obj = H->json_new_object();
    CHECK(H->json_set(obj, NULL, H->json_new_bool(1)) == -1);          /* no key */
    CHECK(H->json_append(obj, H->json_new_string("x")) == -1);          /* not an array */
    CHECK(H->json_append(NULL, H->json_new_object()) == -1);
    CHECK(H->json_size(obj) == 0);
    H->json_free(obj);
    H->json_free(arr);
    sl_json *again = H->json_new_object();
    CHECK(H->json_set(again, "k", H->json_new_number(1)) == 0);
    CHECK(H->json_set(again, "k", H->json_new_number(2)) == 0); /* replaced, old freed */
    CHECK(H->json_number(H->json_get(again, "/k"), 0) == 2);
    size_t len = 0;
    char *text = H->json_print(again, &len);
    CHECK_STR(text, "{\"k\":2}");
    CHECK(len == 7);
    H->text_free(text);
    H->json_free(again);
    /* strings of any bytes: bad UTF-8 and NUL become U+FFFD */
    sl_json *s = H->json_new_stringn("a\xff\0b", 4);
    CHECK_STR(H->json_string(s), "a\xef\xbf\xbd\xef\xbf\xbd" "b");
    H->json_free(s);
}

/* The writer: a body written as it goes, commas and escapes its business. */
static void test_writer(void)
{
    struct sl_response res;
    response_init(&res);
    sl_writer *w = H->writer_begin(&res);
    CHECK(H->write_object(w) == 0);
    H->write_key(w, "s", 1);
    H->write_string(w, "q\"\\\n\x01\xff", 6);
    H->write_key(w, "n", 1);
    H->write_array(w);
    H->write_number(w, 1.5);
    H->write_number(w, 0.1);
    H->write_number(w, 1.0 / 0.0);
    H->write_int(w, 9007199254740991LL);
    H->write_int(w, 9007199254740993LL);
    H->write_bool(w, 0);
    H->write_null(w);
    H->write_close(w);
    H->write_key(w, "t", 1);
    H->write_text(w, " [1, 2] ", 8);
    sl_json *tree = H->json_parse("{\"x\":true}", 10);
    H->write_key(w, "j", 1);
    H->write_json(w, tree);
    H->json_free(tree);
    H->write_close(w);
    CHECK(H->writer_end(w, 201) == 0);
    CHECK_STR(res.body, "{\"s\":\"q\\\"\\\\\\n\\u0001\xef\xbf\xbd\",\"n\":[1.5,0.1,null,"
                        "9007199254740991,\"9007199254740993\",false,null],\"t\": [1, 2] ,"
                        "\"j\":{\"x\":true}}");
    CHECK(res.status_code == 201);
    sl_json *back = H->json_parse(res.body, res.body_len); /* what it wrote is JSON */
    CHECK(back != NULL);
    H->json_free(back);

    /* misuse fails the writer, and the response keeps what it had */
    w = H->writer_begin(&res);
    H->write_array(w);
    CHECK(H->write_key(w, "k", 1) == -1); /* a key in an array */
    CHECK(H->write_null(w) == -1);        /* sticky */
    CHECK(H->writer_end(w, 200) == -1);
    CHECK(res.status_code == 201);
    w = H->writer_begin(&res);
    H->write_object(w);
    CHECK(H->write_null(w) == -1); /* a value where a key is due */
    CHECK(H->writer_end(w, 200) == -1);
    w = H->writer_begin(&res);
    H->write_array(w);
    CHECK(H->writer_end(w, 200) == -1); /* never closed */
    w = H->writer_begin(&res);
    H->write_null(w);
    CHECK(H->write_null(w) == -1); /* two values */
    CHECK(H->writer_end(w, 200) == -1);
    w = H->writer_begin(&res);
    CHECK(H->write_text(w, "01", 2) == -1); /* checked strictly */
    CHECK(H->writer_end(w, 200) == -1);
    CHECK(H->writer_end(NULL, 200) == -1);
    CHECK(H->writer_begin(NULL) == NULL);
    CHECK(H->write_null(NULL) == -1);

    CHECK(H->failf(&res, "Bad", "%d %s", 3, "things") == -1);
    CHECK_STR(res.error_type, "Bad");
    CHECK_STR(res.error_message, "3 things");
    response_release(&res);
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
    test_strict_parser();
    test_builders_take_item_on_failure();
    test_writer();
    test_null_arguments();
    return test_summary();
}
