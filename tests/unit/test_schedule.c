/* test_schedule.c - rate and cron expressions against a table of instants
 * and their next firings (the "clock" is the after time each row gives),
 * in UTC and across daylight-saving changes; and the parse errors users see. */
#include <stdlib.h>

#include "clock.h"
#include "schedule.h"
#include "source_schedule.h"
#include "test.h"

struct next_case {
    const char *expr, *tz, *after, *anchor, *want; /* want NULL: no next firing */
};

static const struct next_case next_cases[] = {
    {"cron(0 12 * * ? *)", NULL, "2026-12-06T01:40:00Z", NULL, "2026-12-06T12:00:00.000Z"},
    {"cron(0 12 * * ? *)", NULL, "2026-12-06T12:00:00Z", NULL, "2026-12-07T12:00:00.000Z"},
    {"cron(0 12 * * ? *)", NULL, "2026-12-06T11:59:59.999Z", NULL, "2026-12-06T12:00:00.000Z"},
    {"cron(0/15 * * * ? *)", NULL, "2026-12-06T01:40:10Z", NULL, "2026-12-06T01:45:00.000Z"},
    {"cron(*/20 * * * ? *)", NULL, "2026-12-31T23:50:00Z", NULL, "2027-01-01T00:00:00.000Z"},
    {"cron(0 10 ? * MON-FRI *)", NULL, "2026-12-05T11:00:00Z", NULL, "2026-12-07T10:00:00.000Z"},
    {"cron(0 10 ? * 2-6 *)", NULL, "2026-12-05T11:00:00Z", NULL, "2026-12-07T10:00:00.000Z"},
    {"cron(0 0 L * ? *)", NULL, "2027-02-10T00:00:00Z", NULL, "2027-02-28T00:00:00.000Z"},
    {"cron(0 0 L * ? *)", NULL, "2028-02-10T00:00:00Z", NULL, "2028-02-29T00:00:00.000Z"},
    {"cron(0 9 LW * ? *)", NULL, "2027-01-10T00:00:00Z", NULL, "2027-01-29T09:00:00.000Z"},
    {"cron(0 9 15W * ? *)", NULL, "2027-05-01T00:00:00Z", NULL, "2027-05-14T09:00:00.000Z"},
    {"cron(0 9 15W * ? *)", NULL, "2027-02-01T00:00:00Z", NULL, "2027-02-15T09:00:00.000Z"},
    {"cron(0 8 ? * 6L *)", NULL, "2026-12-06T00:00:00Z", NULL, "2026-12-25T08:00:00.000Z"},
    {"cron(30 8 ? * 2#1 *)", NULL, "2026-12-31T00:00:00Z", NULL, "2027-01-04T08:30:00.000Z"},
    {"cron(0 0 1 1 ? 2030)", NULL, "2026-12-06T00:00:00Z", NULL, "2030-01-01T00:00:00.000Z"},
    {"cron(0 0 1 1 ? 2030)", NULL, "2030-01-01T00:00:00Z", NULL, NULL},
    {"cron(0 12 29 2 ? *)", NULL, "2026-03-01T00:00:00Z", NULL, "2028-02-29T12:00:00.000Z"},
    {"cron(0 12 31 * ? *)", NULL, "2026-04-01T00:00:00Z", NULL, "2026-05-31T12:00:00.000Z"},
    {"cron(5,10 1-3/2 * JAN,MAR ? *)", NULL, "2027-01-31T03:10:00Z", NULL,
     "2027-03-01T01:05:00.000Z"},
    {"cron(0 18 ? * MON-FRI *)", "America/New_York", "2026-12-06T00:00:00Z", NULL,
     "2026-12-07T23:00:00.000Z"},
    {"cron(0 12 * * ? *)", "Europe/Paris", "2026-07-01T00:00:00Z", NULL,
     "2026-07-01T10:00:00.000Z"},
    /* 02:30 does not exist on 2027-03-14 in New York: skipped */
    {"cron(30 2 * * ? *)", "America/New_York", "2027-03-13T12:00:00Z", NULL,
     "2027-03-15T06:30:00.000Z"},
    /* 01:30 happens twice on 2027-11-07: the first one fires, once */
    {"cron(30 1 * * ? *)", "America/New_York", "2027-11-07T00:00:00Z", NULL,
     "2027-11-07T05:30:00.000Z"},
    {"cron(30 1 * * ? *)", "America/New_York", "2027-11-07T05:30:00Z", NULL,
     "2027-11-08T06:30:00.000Z"},
    {"rate(5 minutes)", NULL, "2026-12-06T01:12:00Z", "2026-12-06T01:00:00Z",
     "2026-12-06T01:15:00.000Z"},
    {"rate(5 minutes)", NULL, "2026-12-06T01:00:00Z", "2026-12-06T01:00:00Z",
     "2026-12-06T01:05:00.000Z"},
    {"rate(1 second)", NULL, "2026-12-06T01:00:00.500Z", "2026-12-06T01:00:00Z",
     "2026-12-06T01:00:01.000Z"},
    {"rate(2 hours)", "Europe/Paris", "2026-12-06T05:00:00Z", "2026-12-06T01:00:00Z",
     "2026-12-06T07:00:00.000Z"},
    {"rate(1 day)", NULL, "2026-12-06T01:00:00Z", "2026-12-05T03:00:00Z",
     "2026-12-06T03:00:00.000Z"},
};

static void test_next_firings(void)
{
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        const struct next_case *c = &next_cases[i];
        struct schedule *s = NULL;
        struct err e = {{0}};
        CHECK(schedule_parse(c->expr, c->tz, &s, &e) == 0);
        if (!s) {
            fprintf(stderr, "  %s: %s\n", c->expr, e.msg);
            continue;
        }
        int64_t after = schedule_parse_iso(c->after), next = 0;
        int64_t anchor = c->anchor ? schedule_parse_iso(c->anchor) : 0;
        CHECK(after > 0);
        int rc = schedule_next(s, after, anchor, &next);
        if (!c->want) {
            CHECK(rc < 0);
        } else {
            char got[32] = "(none)";
            if (rc == 0)
                clock_iso8601(next, got);
            if (!got[0] || strcmp(got, c->want) != 0)
                fprintf(stderr, "  %s (%s) after %s\n", c->expr, c->tz ? c->tz : "UTC",
                        c->after);
            CHECK_STR(got, c->want);
        }
        schedule_free(&s);
    }
}

struct error_case {
    const char *expr, *tz, *message;
};

static const struct error_case error_cases[] = {
    {"cron(0 12 * * * *)", NULL, "day-of-month and day-of-week cannot both be `*`"},
    {"cron(0 12 1 * 2 *)", NULL, "day-of-month and day-of-week cannot both be given"},
    {"cron(0 12 ? * ? *)", NULL, "day-of-month and day-of-week cannot both be ?"},
    {"cron(0 12 * *)", NULL, "cron(0 12 * *) has 4 fields; EventBridge's cron has 6"},
    {"cron(60 12 * * ? *)", NULL, "minutes field \"60\": out of range 0-59"},
    {"cron(0 24 * * ? *)", NULL, "hours field \"24\": out of range 0-23"},
    {"cron(0 12 1-40 * ? *)", NULL, "day-of-month field \"1-40\": out of range 1-31"},
    {"cron(0 12 5-1 * ? *)", NULL, "day-of-month field \"5-1\": the range runs backwards"},
    {"cron(0 12 * FOO ? *)", NULL, "month field \"FOO\": not a number or name"},
    {"cron(0 12 ? * 9L *)", NULL, "day-of-week field \"9L\""},
    {"cron(0 12 ? * 2#6 *)", NULL, "# takes a week 1-5"},
    {"cron(0 12 * * ? 2300)", NULL, "year field \"2300\": out of range 1970-2199"},
    {"cron(0/0 12 * * ? *)", NULL, "an increment needs a positive number"},
    {"rate(1 minutes)", NULL, "with 1 the unit is singular: rate(1 minute)"},
    {"rate(5 minute)", NULL, "with 5 the unit is plural: rate(5 minutes)"},
    {"rate(0 minutes)", NULL, "the value must be a whole number from 1"},
    {"rate(5 weeks)", NULL, "unit \"weeks\" is not minute(s), hour(s), day(s) or second(s)"},
    {"rate(minutes)", NULL, "write rate(VALUE UNIT)"},
    {"every 5 minutes", NULL, "is not rate(...) or cron(...)"},
    {"cron(0 12 * * ? *)", "Mars/Olympus", "timezone \"Mars/Olympus\" is not in the TZ database"},
    {"cron(0 12 * * ? *)", "../etc/passwd", "is not in the TZ database"},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct error_case *c = &error_cases[i];
        struct schedule *s = NULL;
        struct err e = {{0}};
        CHECK(schedule_parse(c->expr, c->tz, &s, &e) < 0);
        CHECK(s == NULL);
        CHECK_CONTAINS(e.msg, c->message);
        schedule_free(&s);
    }
}

static void test_iso(void)
{
    CHECK(schedule_parse_iso("1970-01-01T00:00:00Z") == 0);
    CHECK(schedule_parse_iso("2026-12-06T01:40:00.250Z") == 1796521200250LL);
    CHECK(schedule_parse_iso("2026-02-30T00:00:00Z") < 0);
    CHECK(schedule_parse_iso("2026-12-06 01:40:00") < 0);
    CHECK(schedule_parse_iso(NULL) < 0);
    char text[32];
    clock_iso8601(1796521200250LL, text);
    CHECK_STR(text, "2026-12-06T01:40:00.250Z");
}

/* The Scheduled Event: EventBridge's fields; the id is the same for the same
 * pipeline and time (so the journal runs a firing once), different else. */
static void test_event(void)
{
    char id[UUID_STR_LEN], again[UUID_STR_LEN], other[UUID_STR_LEN], later[UUID_STR_LEN];
    int64_t at = schedule_parse_iso("2026-12-06T01:40:00Z");
    char *json = schedule_event_json("nightly", at, id);
    char *json2 = schedule_event_json("nightly", at, again);
    char *json3 = schedule_event_json("hourly", at, other);
    char *json4 = schedule_event_json("nightly", at + 1000, later);
    char want[512];
    snprintf(want, sizeof want, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"Scheduled "
             "Event\",\"source\":\"aws.events\",\"account\":\"000000000000\",\"time\":"
             "\"2026-12-06T01:40:00Z\",\"region\":\"local\",\"resources\":[\"arn:sluice:events:"
             "local:000000000000:rule/nightly\"],\"detail\":{}}", id);
    CHECK_STR(json, want);
    CHECK_STR(json, json2);
    CHECK_STR(id, again);
    CHECK(strcmp(id, other) != 0);
    CHECK(strcmp(id, later) != 0);
    CHECK(strlen(id) == 36 && id[14] == '8' && strchr("89ab", id[19]));
    free(json);
    free(json2);
    free(json3);
    free(json4);
}

int main(void)
{
    test_event();
    test_next_firings();
    test_errors();
    test_iso();
    return test_summary();
}
