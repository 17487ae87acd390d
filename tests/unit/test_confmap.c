/* test_confmap.c - unit tests for declared configuration (core/confmap.c):
 * every value type, ranges, type errors, unknown keys with and without a
 * "did you mean", a string or an array of strings, the "where" prefix, that
 * every problem is reported, and that release frees what apply filled. */
#include "confmap.h"

#include "test.h"
#include "testutil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

struct sample {
    char *label;
    int count;
    double ratio;
    bool enabled;
    struct strv tags;
    const cJSON *extra;
    const cJSON *list;
};

static const struct confmap sample_map[] = {
    {"label", CONFMAP_STRING, offsetof(struct sample, label), 0, 0, "a label"},
    {"count", CONFMAP_INT, offsetof(struct sample, count), 1, 10, "1 to 10"},
    {"ratio", CONFMAP_NUMBER, offsetof(struct sample, ratio), 0.5, 2.0, "0.5 to 2"},
    {"enabled", CONFMAP_BOOL, offsetof(struct sample, enabled), 0, 0, "on or off"},
    {"tags", CONFMAP_STRINGS, offsetof(struct sample, tags), 0, 0, "one tag or several"},
    {"extra", CONFMAP_OBJECT, offsetof(struct sample, extra), 0, 0, "anything"},
    {"list", CONFMAP_ARRAY, offsetof(struct sample, list), 0, 0, "a list"},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Apply json to s (which keeps its defaults for absent keys) at `where`.
 * The document is returned through doc (borrowed fields point into it). */
static int apply(const char *json, struct sample *s, const char *where, struct diag *d,
                 cJSON **doc)
{
    *doc = cJSON_Parse(json);
    if (!*doc) {
        fprintf(stderr, "test JSON does not parse: %s\n", json);
        return -100;
    }
    return confmap_apply(sample_map, *doc, s, "f.json", where, d);
}

static void test_all_types(void)
{
    struct sample s = {.count = 7, .ratio = 1.0};
    struct diag d = {0};
    cJSON *doc;
    int errors = apply("{\"label\": \"hello\", \"count\": 3, \"ratio\": 1.25, \"enabled\": true,"
                       " \"tags\": [\"a\", \"b\"], \"extra\": {\"k\": 1}, \"list\": [1, 2, 3]}",
                       &s, "", &d, &doc);
    CHECK(errors == 0);
    CHECK(d.errors == 0 && d.warnings == 0 && d.n == 0);
    CHECK_STR(s.label, "hello");
    CHECK(s.count == 3);
    CHECK(s.ratio == 1.25);
    CHECK(s.enabled == true);
    CHECK(s.tags.n == 2);
    CHECK(s.tags.v && s.tags.v[2] == NULL); /* NULL-terminated as well as counted */
    CHECK_STR(s.tags.n == 2 ? s.tags.v[0] : NULL, "a");
    CHECK_STR(s.tags.n == 2 ? s.tags.v[1] : NULL, "b");
    CHECK(cJSON_IsObject(s.extra) && s.extra == cJSON_GetObjectItem(doc, "extra"));
    CHECK(cJSON_IsArray(s.list) && cJSON_GetArraySize(s.list) == 3);
    confmap_release(sample_map, &s);
    CHECK(s.label == NULL);
    CHECK(s.tags.v == NULL && s.tags.n == 0);
    cJSON_Delete(doc);
    diag_free(&d);
}

static void test_defaults_kept(void)
{
    struct sample s = {.count = 7, .ratio = 1.5, .enabled = true};
    struct diag d = {0};
    cJSON *doc;
    CHECK(apply("{}", &s, "", &d, &doc) == 0);
    CHECK(s.count == 7 && s.ratio == 1.5 && s.enabled && !s.label && !s.tags.v && !s.extra);
    CHECK(d.n == 0);
    cJSON_Delete(doc);
    /* false overrides a true default */
    CHECK(apply("{\"enabled\": false}", &s, "", &d, &doc) == 0);
    CHECK(s.enabled == false);
    cJSON_Delete(doc);
    confmap_release(sample_map, &s);
    diag_free(&d);
}

static void test_wrong_types(void)
{
    struct sample s = {.count = 7};
    struct diag d = {0};
    cJSON *doc;
    int errors = apply("{\"label\": 5, \"count\": \"3\", \"ratio\": true, \"enabled\": 1,"
                       " \"tags\": {}, \"extra\": [], \"list\": \"x\"}",
                       &s, "", &d, &doc);
    CHECK(errors == 7);
    CHECK(d.errors == 7);
    CHECK(d.n == 7);
    CHECK_STR(tu_diag_find(&d, "label:"), "f.json: label: expected a string, got a number");
    CHECK_STR(tu_diag_find(&d, "count:"), "f.json: count: expected an integer, got a string");
    CHECK_STR(tu_diag_find(&d, "ratio:"), "f.json: ratio: expected a number, got a boolean");
    CHECK_STR(tu_diag_find(&d, "enabled:"), "f.json: enabled: expected true or false, got a number");
    CHECK_STR(tu_diag_find(&d, "tags:"),
              "f.json: tags: expected a string or an array of strings, got an object");
    CHECK_STR(tu_diag_find(&d, "extra:"), "f.json: extra: expected an object, got an array");
    CHECK_STR(tu_diag_find(&d, "list:"), "f.json: list: expected an array, got a string");
    /* nothing was stored */
    CHECK(s.label == NULL && s.count == 7 && s.extra == NULL && s.list == NULL);
    confmap_release(sample_map, &s);
    cJSON_Delete(doc);
    diag_free(&d);

    /* an integer key refuses a fraction; null is named as null */
    errors = apply("{\"count\": 2.5, \"label\": null}", &s, "", &d, &doc);
    CHECK(errors == 2);
    CHECK_STR(tu_diag_find(&d, "count:"), "f.json: count: expected an integer, got a number");
    CHECK_STR(tu_diag_find(&d, "label:"), "f.json: label: expected a string, got null");
    CHECK(s.count == 7);
    confmap_release(sample_map, &s);
    cJSON_Delete(doc);
    diag_free(&d);

    /* 2.0 is an integer */
    CHECK(apply("{\"count\": 2.0}", &s, "", &d, &doc) == 0);
    CHECK(s.count == 2);
    cJSON_Delete(doc);
    diag_free(&d);
}

static void test_ranges(void)
{
    struct sample s = {.count = 7, .ratio = 1.0};
    struct diag d = {0};
    cJSON *doc;
    /* the bounds themselves are allowed */
    CHECK(apply("{\"count\": 1, \"ratio\": 2.0}", &s, "", &d, &doc) == 0);
    CHECK(s.count == 1 && s.ratio == 2.0);
    cJSON_Delete(doc);
    CHECK(apply("{\"count\": 10, \"ratio\": 0.5}", &s, "", &d, &doc) == 0);
    CHECK(s.count == 10 && s.ratio == 0.5);
    cJSON_Delete(doc);
    CHECK(d.n == 0);

    s.count = 7;
    s.ratio = 1.0;
    int errors = apply("{\"count\": 11, \"ratio\": 0.25}", &s, "", &d, &doc);
    CHECK(errors == 2);
    CHECK_STR(tu_diag_find(&d, "count:"), "f.json: count: 11 is out of range (allowed 1 to 10)");
    CHECK_STR(tu_diag_find(&d, "ratio:"),
              "f.json: ratio: 0.25 is out of range (allowed 0.5 to 2)");
    CHECK(s.count == 7 && s.ratio == 1.0);
    cJSON_Delete(doc);
    diag_free(&d);

    errors = apply("{\"count\": 0}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "count: 0 is out of range (allowed 1 to 10)");
    cJSON_Delete(doc);
    diag_free(&d);
    /* far beyond int: refused, not converted */
    errors = apply("{\"count\": -1e300}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "count: -1e+300 is out of range");
    cJSON_Delete(doc);
    CHECK(s.count == 7);
    diag_free(&d);
}

static void test_unknown_keys(void)
{
    struct sample s = {0};
    struct diag d = {0};
    cJSON *doc;
    /* close to a known key: a suggestion */
    int errors = apply("{\"lable\": \"x\", \"count\": 2}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK(d.errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL,
              "f.json: unknown key \"lable\" (did you mean \"label\"?)");
    CHECK(s.count == 2); /* the known key next to it is still applied */
    cJSON_Delete(doc);
    diag_free(&d);

    /* far from every key: the list of known keys instead */
    errors = apply("{\"zzzzzzzz\": 1}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL,
              "f.json: unknown key \"zzzzzzzz\" (known keys: label, count, ratio, enabled, tags, "
              "extra, list)");
    cJSON_Delete(doc);
    diag_free(&d);

    /* case matters, and one edit away suggests */
    errors = apply("{\"Tags\": \"a\"}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK_CONTAINS(d.n ? d.items[0].text : NULL, "unknown key \"Tags\" (did you mean \"tags\"?)");
    CHECK(s.tags.v == NULL);
    cJSON_Delete(doc);
    diag_free(&d);
    confmap_release(sample_map, &s);
}

static void test_where_prefix(void)
{
    struct sample s = {.count = 7};
    struct diag d = {0};
    cJSON *doc;
    int errors = apply("{\"cont\": 1, \"count\": \"x\"}", &s, "steps[1]", &d, &doc);
    CHECK(errors == 2);
    CHECK_STR(tu_diag_find(&d, "unknown"),
              "f.json: steps[1]: unknown key \"cont\" (did you mean \"count\"?)");
    CHECK_STR(tu_diag_find(&d, "expected"),
              "f.json: steps[1].count: expected an integer, got a string");
    cJSON_Delete(doc);
    diag_free(&d);

    /* not an object at all */
    cJSON *arr = cJSON_Parse("[1]");
    errors = confmap_apply(sample_map, arr, &s, "f.json", "trigger", &d);
    CHECK(errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL, "f.json: trigger: expected an object, got an array");
    diag_free(&d);
    errors = confmap_apply(sample_map, arr, &s, "f.json", "", &d);
    CHECK(errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL, "f.json: expected an object, got an array");
    diag_free(&d);
    errors = confmap_apply(sample_map, NULL, &s, "f.json", "", &d);
    CHECK(errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL, "f.json: expected an object, got null");
    cJSON_Delete(arr);
    diag_free(&d);
    confmap_release(sample_map, &s);
}

static void test_strings_or_array(void)
{
    struct sample s = {0};
    struct diag d = {0};
    cJSON *doc;
    CHECK(apply("{\"tags\": \"solo\"}", &s, "", &d, &doc) == 0);
    CHECK(s.tags.n == 1);
    CHECK_STR(s.tags.n >= 1 ? s.tags.v[0] : NULL, "solo");
    CHECK(s.tags.v && s.tags.v[1] == NULL);
    cJSON_Delete(doc);

    /* applying again replaces (and frees) the earlier list */
    CHECK(apply("{\"tags\": [\"x\", \"y\", \"z\"]}", &s, "", &d, &doc) == 0);
    CHECK(s.tags.n == 3);
    CHECK_STR(s.tags.n == 3 ? s.tags.v[2] : NULL, "z");
    cJSON_Delete(doc);

    CHECK(apply("{\"tags\": []}", &s, "", &d, &doc) == 0);
    CHECK(s.tags.n == 0);
    cJSON_Delete(doc);
    CHECK(d.n == 0);

    /* an array holding something else than strings is refused as a whole */
    int errors = apply("{\"tags\": [\"ok\", 2]}", &s, "", &d, &doc);
    CHECK(errors == 1);
    CHECK_STR(d.n ? d.items[0].text : NULL,
              "f.json: tags: expected a string or an array of strings, got an array");
    CHECK(s.tags.n == 0);
    cJSON_Delete(doc);
    diag_free(&d);

    /* a string applied twice replaces (and frees) the first copy */
    CHECK(apply("{\"label\": \"one\"}", &s, "", &d, &doc) == 0);
    cJSON_Delete(doc);
    CHECK(apply("{\"label\": \"two\"}", &s, "", &d, &doc) == 0);
    cJSON_Delete(doc);
    CHECK_STR(s.label, "two");
    confmap_release(sample_map, &s);
    CHECK(s.label == NULL && s.tags.v == NULL);
    /* release twice is harmless */
    confmap_release(sample_map, &s);
    diag_free(&d);
}

static void test_strv_free(void)
{
    struct strv empty = {0};
    strv_free(&empty); /* NULL list: no crash */
    CHECK(empty.v == NULL && empty.n == 0);
    struct strv s = {calloc(3, sizeof(char *)), 2};
    if (s.v) {
        s.v[0] = strdup("a");
        s.v[1] = strdup("b");
    }
    strv_free(&s);
    CHECK(s.v == NULL && s.n == 0);
}

int main(void)
{
    test_all_types();
    test_defaults_kept();
    test_wrong_types();
    test_ranges();
    test_unknown_keys();
    test_where_prefix();
    test_strings_or_array();
    test_strv_free();
    return test_summary();
}
