/* test_match.c - unit tests for the trigger "match" filter (core/match.c):
 * subject keys, every event-pattern operator, AND/OR, array-valued event
 * fields, NULL subject and event, and compile errors that name the path. */
#include "match.h"

#include "test.h"

#include <stdbool.h>
#include <stdlib.h>

/* Compile pattern_json (NULL means a NULL pattern), test it against subject
 * and event_json (NULL means a NULL event) and free everything.
 * Returns 1 on a match, 0 on none, -1 when compiling fails. */
static int matches(const char *pattern_json, const char *subject, const char *event_json)
{
    cJSON *pattern = pattern_json ? cJSON_Parse(pattern_json) : NULL;
    cJSON *event = event_json ? cJSON_Parse(event_json) : NULL;
    struct match *m = NULL;
    struct err e = { "" };
    int rc = -1;
    if ((pattern_json && !pattern) || (event_json && !event)) {
        fprintf(stderr, "test JSON does not parse: %s / %s\n", pattern_json,
                event_json ? event_json : "(null)");
    } else if (match_compile(pattern, &m, &e) != 0) {
        fprintf(stderr, "unexpected compile error: %s\n", e.msg);
    } else {
        rc = match_test(m, subject, event) ? 1 : 0;
    }
    match_free(&m);
    cJSON_Delete(pattern);
    cJSON_Delete(event);
    return rc;
}

/* Shorthands: an event pattern tested against an event, no subject needed. */
static int ev(const char *event_pattern, const char *event_json)
{
    char pattern[2048];
    snprintf(pattern, sizeof pattern, "{\"event\": %s}", event_pattern);
    return matches(pattern, "any", event_json);
}

/* A non-NULL value for *out that match_compile must overwrite with NULL. */
static char not_null;
#define NOT_NULL ((struct match *)(void *)&not_null)

/* Compile a pattern that must fail; returns the message (static buffer), or
 * a note saying why it is not an error message. */
static const char *compile_error(const char *pattern_json)
{
    static struct err e;
    cJSON *pattern = cJSON_Parse(pattern_json);
    struct match *m = NOT_NULL;
    snprintf(e.msg, sizeof e.msg, "(no message written)");
    if (!pattern)
        return "(test JSON does not parse)";
    int rc = match_compile(pattern, &m, &e);
    cJSON_Delete(pattern);
    if (rc == 0)
        match_free(&m);
    if (rc != -1 || m != NULL) {
        return "(compiled without error, or *out not NULL)";
    }
    return e.msg;
}

static void test_null_and_empty(void)
{
    struct match *m = NULL;
    struct err e = { "" };
    CHECK(match_test(NULL, NULL, NULL));
    CHECK(match_test(NULL, "x", NULL));
    match_free(NULL);
    match_free(&m);
    CHECK(m == NULL);
    CHECK(match_compile(NULL, &m, &e) == 0);
    CHECK(m == NULL);
    CHECK(matches("{}", NULL, NULL) == 1);
    CHECK(matches("{}", "a.jpg", "{\"k\": 1}") == 1);
}

static void test_subject_prefix_suffix_equals(void)
{
    CHECK(matches("{\"prefix\": \"img/\"}", "img/a.jpg", NULL) == 1);
    CHECK(matches("{\"prefix\": \"img/\"}", "doc/a.jpg", NULL) == 0);
    CHECK(matches("{\"prefix\": [\"img/\", \"pic/\"]}", "pic/a.jpg", NULL) == 1);
    CHECK(matches("{\"prefix\": [\"img/\", \"pic/\"]}", "doc/a.jpg", NULL) == 0);
    CHECK(matches("{\"suffix\": [\".jpg\", \".png\"]}", "a.png", NULL) == 1);
    CHECK(matches("{\"suffix\": [\".jpg\", \".png\"]}", "a.gif", NULL) == 0);
    CHECK(matches("{\"suffix\": \".jpg\"}", "jpg", NULL) == 0);
    CHECK(matches("{\"suffix\": \".jpg\"}", ".jpg", NULL) == 1);
    CHECK(matches("{\"equals\": \"orders\"}", "orders", NULL) == 1);
    CHECK(matches("{\"equals\": \"orders\"}", "orders.new", NULL) == 0);
    CHECK(matches("{\"equals\": [\"a\", \"b\"]}", "b", NULL) == 1);
}

static void test_subject_anything_but_and_and(void)
{
    CHECK(matches("{\"anything-but\": \"skip\"}", "keep", NULL) == 1);
    CHECK(matches("{\"anything-but\": \"skip\"}", "skip", NULL) == 0);
    CHECK(matches("{\"anything-but\": [\"a\", \"b\"]}", "b", NULL) == 0);
    CHECK(matches("{\"anything-but\": [\"a\", \"b\"]}", "c", NULL) == 1);
    /* all top-level keys must hold */
    const char *both = "{\"prefix\": \"img/\", \"suffix\": \".jpg\"}";
    CHECK(matches(both, "img/a.jpg", NULL) == 1);
    CHECK(matches(both, "img/a.png", NULL) == 0);
    CHECK(matches(both, "doc/a.jpg", NULL) == 0);
}

static void test_null_subject(void)
{
    CHECK(matches("{\"prefix\": \"\"}", NULL, NULL) == 0);
    CHECK(matches("{\"suffix\": \"x\"}", NULL, NULL) == 0);
    CHECK(matches("{\"equals\": \"x\"}", NULL, NULL) == 0);
    CHECK(matches("{\"anything-but\": \"x\"}", NULL, NULL) == 0);
    CHECK(matches("{\"event\": {\"k\": [1]}}", NULL, "{\"k\": 1}") == 1);
}

static void test_literals(void)
{
    CHECK(ev("{\"kind\": [\"image\"]}", "{\"kind\": \"image\"}") == 1);
    CHECK(ev("{\"kind\": [\"image\"]}", "{\"kind\": \"Image\"}") == 0);
    CHECK(ev("{\"kind\": [\"image\"]}", "{\"Kind\": \"image\"}") == 0);
    CHECK(ev("{\"n\": [5]}", "{\"n\": 5.0}") == 1);
    CHECK(ev("{\"n\": [5]}", "{\"n\": \"5\"}") == 0);
    CHECK(ev("{\"n\": [\"5\"]}", "{\"n\": 5}") == 0);
    CHECK(ev("{\"n\": [0.5]}", "{\"n\": 5e-1}") == 1);
    CHECK(ev("{\"b\": [true]}", "{\"b\": true}") == 1);
    CHECK(ev("{\"b\": [true]}", "{\"b\": false}") == 0);
    CHECK(ev("{\"b\": [false]}", "{\"b\": false}") == 1);
    CHECK(ev("{\"b\": [false]}", "{\"b\": 0}") == 0);
    CHECK(ev("{\"z\": [null]}", "{\"z\": null}") == 1);
    CHECK(ev("{\"z\": [null]}", "{\"z\": 0}") == 0);
    CHECK(ev("{\"z\": [null]}", "{}") == 0);
}

static void test_string_operators(void)
{
    CHECK(ev("{\"k\": [{\"prefix\": \"img/\"}]}", "{\"k\": \"img/a\"}") == 1);
    CHECK(ev("{\"k\": [{\"prefix\": \"img/\"}]}", "{\"k\": \"doc/a\"}") == 0);
    CHECK(ev("{\"k\": [{\"suffix\": \".png\"}]}", "{\"k\": \"a.png\"}") == 1);
    CHECK(ev("{\"k\": [{\"suffix\": \".png\"}]}", "{\"k\": \"a.PNG\"}") == 0);
    CHECK(ev("{\"k\": [{\"equals-ignore-case\": \"Alice\"}]}", "{\"k\": \"aLICE\"}") == 1);
    CHECK(ev("{\"k\": [{\"equals-ignore-case\": \"Alice\"}]}", "{\"k\": \"Alicia\"}") == 0);
    CHECK(ev("{\"k\": [{\"equals-ignore-case\": \"Alice\"}]}", "{\"k\": \"Alic\"}") == 0);
    /* string conditions never match non-strings */
    CHECK(ev("{\"k\": [{\"prefix\": \"1\"}]}", "{\"k\": 12}") == 0);
    CHECK(ev("{\"k\": [{\"suffix\": \"e\"}]}", "{\"k\": true}") == 0);
    CHECK(ev("{\"k\": [{\"equals-ignore-case\": \"null\"}]}", "{\"k\": null}") == 0);
}

static void test_anything_but(void)
{
    CHECK(ev("{\"s\": [{\"anything-but\": \"init\"}]}", "{\"s\": \"run\"}") == 1);
    CHECK(ev("{\"s\": [{\"anything-but\": \"init\"}]}", "{\"s\": \"init\"}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": \"init\"}]}", "{}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": [\"a\", \"b\"]}]}", "{\"s\": \"b\"}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": [\"a\", \"b\"]}]}", "{\"s\": \"c\"}") == 1);
    CHECK(ev("{\"n\": [{\"anything-but\": [1, 2]}]}", "{\"n\": 2}") == 0);
    CHECK(ev("{\"n\": [{\"anything-but\": [1, 2]}]}", "{\"n\": 3}") == 1);
    CHECK(ev("{\"n\": [{\"anything-but\": 1}]}", "{\"n\": {\"x\": 1}}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": {\"prefix\": \"tmp/\"}}]}", "{\"s\": \"tmp/x\"}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": {\"prefix\": \"tmp/\"}}]}", "{\"s\": \"var/x\"}") == 1);
    CHECK(ev("{\"s\": [{\"anything-but\": {\"prefix\": \"tmp/\"}}]}", "{\"s\": 7}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": {\"suffix\": \".part\"}}]}", "{\"s\": \"a.part\"}") == 0);
    CHECK(ev("{\"s\": [{\"anything-but\": {\"suffix\": \".part\"}}]}", "{\"s\": \"a.jpg\"}") == 1);
}

static void test_exists(void)
{
    CHECK(ev("{\"k\": [{\"exists\": true}]}", "{\"k\": 0}") == 1);
    CHECK(ev("{\"k\": [{\"exists\": true}]}", "{\"k\": null}") == 1);
    CHECK(ev("{\"k\": [{\"exists\": true}]}", "{\"j\": 0}") == 0);
    CHECK(ev("{\"k\": [{\"exists\": false}]}", "{\"j\": 0}") == 1);
    CHECK(ev("{\"k\": [{\"exists\": false}]}", "{\"k\": \"\"}") == 0);
    /* an empty array counts as absent */
    CHECK(ev("{\"k\": [{\"exists\": true}]}", "{\"k\": []}") == 0);
    CHECK(ev("{\"k\": [{\"exists\": false}]}", "{\"k\": []}") == 1);
    /* a missing parent makes the nested field absent */
    CHECK(ev("{\"a\": {\"b\": [{\"exists\": false}]}}", "{}") == 1);
    CHECK(ev("{\"a\": {\"b\": [{\"exists\": false}]}}", "{\"a\": 5}") == 1);
    CHECK(ev("{\"a\": {\"b\": [{\"exists\": true}]}}", "{\"a\": {\"b\": {}}}") == 1);
}

static void test_numeric(void)
{
    const char *range = "{\"size\": [{\"numeric\": [\">\", 0, \"<=\", 100]}]}";
    CHECK(ev(range, "{\"size\": 0}") == 0);
    CHECK(ev(range, "{\"size\": 0.001}") == 1);
    CHECK(ev(range, "{\"size\": 100}") == 1);
    CHECK(ev(range, "{\"size\": 100.5}") == 0);
    CHECK(ev(range, "{\"size\": \"50\"}") == 0);
    CHECK(ev(range, "{}") == 0);
    const char *half_open = "{\"t\": [{\"numeric\": [\">=\", -5, \"<\", 5]}]}";
    CHECK(ev(half_open, "{\"t\": -5}") == 1);
    CHECK(ev(half_open, "{\"t\": 5}") == 0);
    CHECK(ev(half_open, "{\"t\": 4.99}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\"=\", 3]}]}", "{\"n\": 3.0}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\"=\", 3]}]}", "{\"n\": 3.1}") == 0);
    CHECK(ev("{\"n\": [{\"numeric\": [\"<\", 3]}]}", "{\"n\": 2}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\"<\", 3]}]}", "{\"n\": 3}") == 0);
    CHECK(ev("{\"n\": [{\"numeric\": [\"<=\", 3]}]}", "{\"n\": 3}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\">\", 3]}]}", "{\"n\": 3}") == 0);
    CHECK(ev("{\"n\": [{\"numeric\": [\">=\", 3]}]}", "{\"n\": 3}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\">=\", 3]}]}", "{\"n\": true}") == 0);
}

static void test_and_or(void)
{
    /* OR inside a condition list */
    const char *any = "{\"k\": [\"a\", {\"prefix\": \"b\"}, {\"numeric\": [\">\", 10]}]}";
    CHECK(ev(any, "{\"k\": \"a\"}") == 1);
    CHECK(ev(any, "{\"k\": \"bcd\"}") == 1);
    CHECK(ev(any, "{\"k\": 11}") == 1);
    CHECK(ev(any, "{\"k\": \"c\"}") == 0);
    CHECK(ev(any, "{\"k\": 10}") == 0);
    /* AND across fields, nested */
    const char *all = "{\"kind\": [\"image\"], \"meta\": {\"w\": [{\"numeric\": [\">\", 100]}], "
                      "\"fmt\": [\"png\", \"jpg\"]}}";
    CHECK(ev(all, "{\"kind\": \"image\", \"meta\": {\"w\": 200, \"fmt\": \"jpg\"}}") == 1);
    CHECK(ev(all, "{\"kind\": \"image\", \"meta\": {\"w\": 50, \"fmt\": \"jpg\"}}") == 0);
    CHECK(ev(all, "{\"kind\": \"image\", \"meta\": {\"w\": 200, \"fmt\": \"gif\"}}") == 0);
    CHECK(ev(all, "{\"kind\": \"video\", \"meta\": {\"w\": 200, \"fmt\": \"jpg\"}}") == 0);
    CHECK(ev(all, "{\"kind\": \"image\"}") == 0);
    /* subject and event together */
    const char *mixed = "{\"suffix\": \".jpg\", \"event\": {\"n\": [1]}}";
    CHECK(matches(mixed, "a.jpg", "{\"n\": 1}") == 1);
    CHECK(matches(mixed, "a.png", "{\"n\": 1}") == 0);
    CHECK(matches(mixed, "a.jpg", "{\"n\": 2}") == 0);
}

static void test_array_values(void)
{
    const char *tags = "{\"tags\": [\"red\", {\"prefix\": \"x-\"}]}";
    CHECK(ev(tags, "{\"tags\": [\"blue\", \"red\"]}") == 1);
    CHECK(ev(tags, "{\"tags\": [\"blue\", \"x-y\"]}") == 1);
    CHECK(ev(tags, "{\"tags\": [\"blue\", \"green\"]}") == 0);
    CHECK(ev(tags, "{\"tags\": [[\"blue\"], [\"red\"]]}") == 1);
    CHECK(ev(tags, "{\"tags\": []}") == 0);
    CHECK(ev("{\"n\": [{\"numeric\": [\">\", 5]}]}", "{\"n\": [1, 2, 9]}") == 1);
    CHECK(ev("{\"n\": [{\"numeric\": [\">\", 5]}]}", "{\"n\": [1, 2, 3]}") == 0);
    /* an S3-shaped event: Records is an array of objects */
    const char *s3 = "{\"Records\": {\"eventName\": [{\"prefix\": \"ObjectCreated:\"}], "
                     "\"s3\": {\"object\": {\"size\": [{\"numeric\": [\">\", 0]}]}}}}";
    CHECK(ev(s3, "{\"Records\": [{\"eventName\": \"ObjectCreated:Put\", "
                 "\"s3\": {\"object\": {\"key\": \"a\", \"size\": 12}}}]}") == 1);
    CHECK(ev(s3, "{\"Records\": [{\"eventName\": \"ObjectCreated:Put\", "
                 "\"s3\": {\"object\": {\"key\": \"a\", \"size\": 0}}}]}") == 0);
    CHECK(ev(s3, "{\"Records\": [{\"eventName\": \"ObjectRemoved:Delete\", "
                 "\"s3\": {\"object\": {\"size\": 3}}}, {\"eventName\": \"ObjectCreated:Put\", "
                 "\"s3\": {\"object\": {\"size\": 5}}}]}") == 1);
    /* one element must satisfy the whole object pattern */
    CHECK(ev(s3, "{\"Records\": [{\"eventName\": \"ObjectRemoved:Delete\", "
                 "\"s3\": {\"object\": {\"size\": 3}}}, {\"eventName\": \"ObjectCreated:Put\", "
                 "\"s3\": {\"object\": {\"size\": 0}}}]}") == 0);
    CHECK(ev(s3, "{\"Records\": []}") == 0);
}

static void test_null_event(void)
{
    CHECK(matches("{\"event\": {\"k\": [{\"exists\": false}]}}", "s", NULL) == 1);
    CHECK(matches("{\"event\": {\"a\": {\"b\": [{\"exists\": false}]}}}", "s", NULL) == 1);
    CHECK(matches("{\"event\": {\"k\": [{\"exists\": true}]}}", "s", NULL) == 0);
    CHECK(matches("{\"event\": {\"k\": [{\"anything-but\": \"x\"}]}}", "s", NULL) == 0);
    CHECK(matches("{\"event\": {\"k\": [null]}}", "s", NULL) == 0);
    CHECK(matches("{\"event\": {\"k\": [{\"exists\": false}], \"j\": [1]}}", "s", NULL) == 0);
    CHECK(matches("{\"suffix\": \".jpg\"}", "a.jpg", NULL) == 1);
}

/* The compiled filter must outlive the cJSON pattern (ASan checks this). */
static void test_pattern_freed_before_use(void)
{
    cJSON *pattern = cJSON_Parse("{\"suffix\": [\".jpg\", \".png\"], \"event\": "
                                 "{\"k\": [\"v\", {\"anything-but\": [\"a\", 1]}], "
                                 "\"s\": [{\"equals-ignore-case\": \"X\"}]}}");
    struct match *m = NULL;
    struct err e = { "" };
    CHECK(pattern != NULL);
    CHECK(match_compile(pattern, &m, &e) == 0);
    cJSON_Delete(pattern);
    cJSON *event = cJSON_Parse("{\"k\": \"b\", \"s\": \"x\"}");
    CHECK(match_test(m, "a.png", event));
    CHECK(!match_test(m, "a.gif", event));
    cJSON_Delete(event);
    match_free(&m);
    CHECK(m == NULL);
}

static void test_errors_top_level(void)
{
    const char *msg = compile_error("{\"sufix\": \".jpg\"}");
    CHECK_CONTAINS(msg, "match.sufix: unknown key");
    CHECK_CONTAINS(msg, "prefix, suffix, equals, anything-but and event");
    CHECK_CONTAINS(compile_error("[1]"), "match: must be an object");
    CHECK_CONTAINS(compile_error("{\"prefix\": 5}"), "match.prefix: must be a string or a non-empty array");
    CHECK_CONTAINS(compile_error("{\"suffix\": []}"), "match.suffix: must be a string or a non-empty array");
    CHECK_CONTAINS(compile_error("{\"suffix\": [\".jpg\", 3]}"), "match.suffix[1]: must be a string");
    CHECK_CONTAINS(compile_error("{\"anything-but\": {\"prefix\": \"a\"}}"), "match.anything-but: must be a string");
    CHECK_CONTAINS(compile_error("{\"equals\": \"a\", \"equals\": \"b\"}"), "match.equals: given twice");
    CHECK_CONTAINS(compile_error("{\"event\": \"x\"}"), "match.event: must be an object");
    CHECK_CONTAINS(compile_error("{\"event\": {}}"), "match.event: an object pattern needs at least one field");
    /* a NULL err is allowed and *out still ends up NULL */
    cJSON *bad = cJSON_Parse("{\"nope\": 1}");
    struct match *m = NOT_NULL;
    CHECK(match_compile(bad, &m, NULL) == -1);
    CHECK(m == NULL);
    cJSON_Delete(bad);
}

static void test_errors_event_leaves(void)
{
    CHECK_STR(compile_error("{\"event\": {\"Records\": {\"s3\": {\"object\": {\"size\": 5}}}}}"),
              "match.event.Records.s3.object.size: a condition list must be an array, e.g. [5]");
    CHECK_CONTAINS(compile_error("{\"event\": {\"kind\": \"image\"}}"),
                   "match.event.kind: a condition list must be an array, e.g. [\"image\"]");
    CHECK_CONTAINS(compile_error("{\"event\": {\"kind\": []}}"), "match.event.kind: a condition list must not be empty");
    CHECK_CONTAINS(compile_error("{\"event\": {\"a\": {}}}"), "match.event.a: an object pattern needs at least one field");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [\"a\", [\"b\"]]}}"), "match.event.k[1]: a condition is a value or an object");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{}]}}"), "match.event.k[0]: a condition object must have exactly one operator");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"prefix\": \"a\", \"suffix\": \"b\"}]}}"),
                   "match.event.k[0]: a condition object must have exactly one operator");
    const char *msg = compile_error("{\"event\": {\"k\": [\"a\", {\"prefx\": \"a\"}]}}");
    CHECK_CONTAINS(msg, "match.event.k[1]: unknown operator \"prefx\"");
    CHECK_CONTAINS(msg, "prefix, suffix, equals-ignore-case, anything-but, exists, numeric");
}

static void test_errors_operators(void)
{
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"prefix\": 1}]}}"), "match.event.k[0].prefix: expects a string");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"suffix\": null}]}}"), "match.event.k[0].suffix: expects a string");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"equals-ignore-case\": [\"a\"]}]}}"),
                   "match.event.k[0].equals-ignore-case: expects a string");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"exists\": \"yes\"}]}}"),
                   "match.event.k[0].exists: expects true or false");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"anything-but\": []}]}}"),
                   "match.event.k[0].anything-but: expects a non-empty array");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"anything-but\": [\"a\", {\"x\": 1}]}]}}"),
                   "match.event.k[0].anything-but[1]: anything-but lists only");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"anything-but\": {\"equals\": \"a\"}}]}}"),
                   "match.event.k[0].anything-but: an anything-but object takes exactly one of prefix or suffix");
    CHECK_CONTAINS(compile_error("{\"event\": {\"k\": [{\"anything-but\": {\"prefix\": 3}}]}}"),
                   "match.event.k[0].anything-but.prefix: expects a string");
}

static void test_errors_numeric(void)
{
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": [\">\", 0, \"<\"]}]}}"),
                   "match.event.size[0].numeric: expects [op, number] or [op, number, op, number]");
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": []}]}}"),
                   "match.event.size[0].numeric: expects [op, number]");
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": \">\"}]}}"),
                   "match.event.size[0].numeric: expects [op, number]");
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": [\"!=\", 0]}]}}"),
                   "match.event.size[0].numeric[0]: unknown comparison");
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": [\">\", 0, \"<\", \"9\"]}]}}"),
                   "match.event.size[0].numeric[3]: expects a number after \"<\"");
    CHECK_CONTAINS(compile_error("{\"event\": {\"size\": [{\"numeric\": [0, \">\"]}]}}"),
                   "match.event.size[0].numeric[0]: unknown comparison");
}

int main(void)
{
    test_null_and_empty();
    test_subject_prefix_suffix_equals();
    test_subject_anything_but_and_and();
    test_null_subject();
    test_literals();
    test_string_operators();
    test_anything_but();
    test_exists();
    test_numeric();
    test_and_or();
    test_array_values();
    test_null_event();
    test_pattern_freed_before_use();
    test_errors_top_level();
    test_errors_event_leaves();
    test_errors_operators();
    test_errors_numeric();
    return test_summary();
}
