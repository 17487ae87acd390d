/* test_router.c - unit tests for core/router.c and core/event.c: zmq
 * topic prefixes with match filters, the event parsed at most once however
 * many filters ask, file keys under trigger folders (recursive or not),
 * HTTP routes with 404/405, and the age of an event read back from the
 * journal (a wall-clock step cannot make it older than the daemon's
 * uptime). */
#include "router.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "match.h"

static struct pipeline *zmq_pipeline(const char *name, const char *topic, const char *match)
{
    struct pipeline *p = calloc(1, sizeof *p);
    p->name = (char *)name;
    p->trigger = TRIGGER_ZMQ;
    p->zmq_topic = (char *)topic;
    if (match) {
        cJSON *pattern = cJSON_Parse(match);
        struct err e;
        CHECK(match_compile(pattern, &p->match, &e) == 0);
        cJSON_Delete(pattern);
    }
    return p;
}

struct seen {
    const char *names[8];
    int n;
};

static void each(void *arg, struct pipeline *p)
{
    struct seen *s = arg;
    if (s->n < 8)
        s->names[s->n++] = p->name;
}

static void count_each(void *arg, struct pipeline *p)
{
    (void)p;
    ++*(size_t *)arg;
}

static void test_zmq_topics_and_match(void)
{
    struct pipeline *v[3] = {zmq_pipeline("all", "orders.", NULL),
                             zmq_pipeline("big", "orders.", "{\"event\": {\"amount\": [{\"numeric\": [\">\", 100]}]}}"),
                             zmq_pipeline("users", "users.", NULL)};
    struct pipeline_set set = {.v = v, .n = 3};
    const char *json = "{\"amount\": 250}";
    struct event *ev = event_new("id-1", "zmq:orders.new", "orders.new", json, strlen(json), true);
    struct seen s = {0};
    CHECK(router_zmq(&set, ev, each, &s) == 2);
    CHECK(s.n == 2);
    CHECK_STR(s.names[0], "all");
    CHECK_STR(s.names[1], "big");
    const cJSON *first = event_parsed(ev);
    CHECK(first != NULL);
    CHECK(event_parsed(ev) == first); /* parsed once */
    event_unref(&ev);
    CHECK(ev == NULL);

    const char *small = "{\"amount\": 5}";
    ev = event_new("id-2", "zmq:orders.new", "orders.new", small, strlen(small), true);
    struct seen s2 = {0};
    CHECK(router_zmq(&set, ev, each, &s2) == 1);
    event_unref(&ev);

    /* no match filter: never parsed at all */
    ev = event_new("id-3", "zmq:users.x", "users.x", "not json", 8, true);
    struct seen s3 = {0};
    CHECK(router_zmq(&set, ev, each, &s3) == 1);
    CHECK(!ev->parse_tried);
    event_unref(&ev);
    for (int i = 0; i < 3; i++) {
        match_free(&v[i]->match);
        free(v[i]);
    }
}

/* The route index finds exactly what a scan finds, in the same order, for
 * topics of many lengths shared by several pipelines (and the empty topic),
 * and names by binary search; more matches than it gathers fall back to a
 * scan. */
static void test_route_index_agrees_with_a_scan(void)
{
    static const char *topics[] = {"", "a", "a.", "a.b", "b", "a.b", "abc", "a.", "zz", "a.b.c"};
    enum { N = 10 };
    struct pipeline *v[N];
    char names[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "p%d", N - i); /* names not in set order */
        v[i] = zmq_pipeline(names[i], topics[i], NULL);
        v[i]->index = (size_t)i;
    }
    struct pipeline_set scan = {.v = v, .n = N}, indexed = {.v = v, .n = N};
    CHECK(router_index_new(&indexed, &indexed.routes) == 0);
    static const char *subjects[] = {"", "a", "a.b", "a.b.c.d", "abcd", "b", "zz", "zy", "c"};
    for (size_t k = 0; k < sizeof subjects / sizeof *subjects; k++) {
        struct event *ev = event_new("id", "zmq", subjects[k], "{}", 2, true);
        struct seen a = {0}, b = {0};
        size_t na = router_zmq(&scan, ev, each, &a), nb = router_zmq(&indexed, ev, each, &b);
        CHECK(na == nb && a.n == b.n);
        for (int i = 0; i < a.n && i < b.n; i++)
            CHECK_STR(a.names[i], b.names[i]);
        event_unref(&ev);
    }
    for (int i = 0; i < N; i++)
        CHECK(router_named(&indexed, names[i]) == v[i]);
    CHECK(router_named(&indexed, "p0") == NULL);
    CHECK(router_named(&indexed, "zz") == NULL);
    router_index_free(&indexed.routes);
    CHECK(indexed.routes == NULL);
    for (int i = 0; i < N; i++)
        free(v[i]);
}

static void test_many_matches_fall_back_to_a_scan(void)
{
    enum { N = 40 };
    struct pipeline *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = zmq_pipeline("same", "t.", NULL);
        v[i]->index = (size_t)i;
    }
    struct pipeline_set set = {.v = v, .n = N};
    CHECK(router_index_new(&set, &set.routes) == 0);
    struct event *ev = event_new("id", "zmq", "t.x", "{}", 2, true);
    size_t count = 0;
    CHECK(router_zmq(&set, ev, count_each, &count) == N);
    CHECK(count == N);
    event_unref(&ev);
    router_index_free(&set.routes);
    for (int i = 0; i < N; i++)
        free(v[i]);
}

static void test_event_is_one_allocation_shared(void)
{
    struct event *ev = event_new("id", "src", NULL, "{}", 2, false);
    CHECK_STR(ev->subject, "src"); /* no subject: the source stands in */
    CHECK_STR(ev->json, "{}");
    struct event *again = event_ref(ev);
    CHECK(again == ev && ev->refs == 2);
    event_unref(&again);
    CHECK(ev->refs == 1);
    event_unref(&ev);
}

static void test_file_keys(void)
{
    struct pipeline flat = {.trigger = TRIGGER_DIRECTORY, .dir = "/data/in"};
    struct pipeline deep = {.trigger = TRIGGER_DIRECTORY, .dir = "/data/in", .recursive = true};
    CHECK_STR(router_file_key(&flat, "/data/in/a.txt"), "a.txt");
    CHECK(router_file_key(&flat, "/data/in/sub/a.txt") == NULL);
    CHECK_STR(router_file_key(&deep, "/data/in/sub/a.txt"), "sub/a.txt");
    CHECK(router_file_key(&flat, "/data/inbox/a.txt") == NULL); /* a prefix is not a folder */
    CHECK(router_file_key(&flat, "/data/in") == NULL);
    struct pipeline z = {.trigger = TRIGGER_ZMQ, .zmq_topic = "x"};
    CHECK(router_file_key(&z, "/data/in/a.txt") == NULL);
}

static void test_http_routes(void)
{
    struct pipeline get = {.name = "get", .trigger = TRIGGER_HTTP, .http_method = "GET",
                           .http_path = "/users/{id}"};
    struct pipeline post = {.name = "post", .trigger = TRIGGER_HTTP, .http_method = "POST",
                            .http_path = "/users/{id}"};
    struct pipeline *v[2] = {&get, &post};
    struct pipeline_set set = {.v = v, .n = 2};
    char allow[64];
    cJSON *params = cJSON_CreateObject();
    CHECK(router_http(&set, "GET", "/users/7", params, allow, sizeof allow) == &get);
    CHECK_STR(cJSON_GetObjectItem(params, "id")->valuestring, "7");
    CHECK(router_http(&set, "DELETE", "/users/7", params, allow, sizeof allow) == NULL);
    CHECK_STR(allow, "GET, POST"); /* a 405 with what the path does take */
    CHECK(router_http(&set, "GET", "/orders", params, allow, sizeof allow) == NULL);
    CHECK_STR(allow, ""); /* a 404 */
    cJSON_Delete(params);
    CHECK(router_named(&set, "post") == &post);
    CHECK(router_named(&set, "nope") == NULL);
}

static void test_journal_age_is_bounded_by_uptime(void)
{
    event_clock_start();
    int64_t now = clock_wall_ms();
    /* a row this process took in, its received_at two hours "ago" after a
     * wall-clock step: it cannot be older than the process */
    struct event *ev = event_from_journal("id", "src", "{}", now + 10);
    CHECK(event_age_ms(ev, clock_mono_ns()) < 1000);
    event_unref(&ev);
    /* a row from before this process started keeps its wall-clock age */
    ev = event_from_journal("id", "src", "{}", now - 7200000);
    int64_t age = event_age_ms(ev, clock_mono_ns());
    CHECK(age >= 7200000 && age < 7300000);
    event_unref(&ev);
}

/* issue 21 item 7: a +2 h wall-clock step while events wait in the journal
 * must not age them by 2 h; a step back must not make them younger than 0. */
static void test_a_wall_clock_step_does_not_age_queued_events(void)
{
    int64_t start_wall = 1800000000000, start_ns = 5000000000; /* any epoch, any boot */
    int64_t received = start_wall + 1000;                      /* 1 s after start */
    int64_t now_ns = start_ns + 3000000000;                    /* 3 s of uptime */
    int64_t stepped = start_wall + 3000 + 2 * 3600000;         /* the wall clock jumped 2 h */
    CHECK(event_journal_age_ms(received, start_wall, start_ns, stepped, now_ns) == 3000);
    CHECK(event_journal_age_ms(received, start_wall, start_ns, start_wall + 3000, now_ns) == 2000);
    CHECK(event_journal_age_ms(received, start_wall, start_ns, start_wall - 60000, now_ns) == 0);
    /* a row of an earlier run keeps its wall-clock age: nothing else is known */
    CHECK(event_journal_age_ms(start_wall - 7200000, start_wall, start_ns, start_wall + 3000,
                               now_ns) == 7203000);
}

int main(void)
{
    test_zmq_topics_and_match();
    test_route_index_agrees_with_a_scan();
    test_many_matches_fall_back_to_a_scan();
    test_event_is_one_allocation_shared();
    test_file_keys();
    test_http_routes();
    test_journal_age_is_bounded_by_uptime();
    test_a_wall_clock_step_does_not_age_queued_events();
    return test_summary();
}
