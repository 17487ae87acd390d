/* schedule.c - EventBridge rate and cron expressions (see schedule.h).
 *
 * A cron field is a set of allowed values; the next firing is found by
 * walking days forward (skipping months and years not in their sets) and,
 * on a matching day, its hours and minutes in order. In UTC the calendar is
 * arithmetic; in a timezone the C library converts through the TZ database,
 * which it only reads through the process's TZ variable: the conversion
 * swaps TZ under a lock (nothing else in sluice uses local time).
 */
#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define YEAR_MIN 1970
#define N_YEARS (SCHEDULE_YEAR_MAX - YEAR_MIN + 1)
#define MAX_VALUES N_YEARS

enum dom_kind { DOM_SET, DOM_ANY, DOM_LAST, DOM_LAST_WEEKDAY, DOM_NEAREST_WEEKDAY };
enum dow_kind { DOW_SET, DOW_ANY, DOW_LAST_OF_MONTH, DOW_NTH };

struct field {
    int min, max;
    bool v[MAX_VALUES];         /* v[value - min] */
};

struct schedule {
    int64_t period_ms;          /* rate; 0: cron */
    struct field minutes, hours, dom, months, dow, years;
    enum dom_kind dom_kind;
    int dom_day;                /* DOM_NEAREST_WEEKDAY: the day */
    enum dow_kind dow_kind;
    int dow_day, dow_nth;       /* DOW_LAST_OF_MONTH, DOW_NTH: 1 = SUN; the week */
    char *timezone;             /* NULL: UTC */
};

/* -- the calendar ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : n[m - 1];
}

/* 1 = Sunday ... 7 = Saturday, as cron's day-of-week. */
static int weekday(int y, int m, int d)
{
    int64_t days = days_from_civil(y, m, d);
    return (int)(((days % 7) + 7 + 4) % 7) + 1; /* 1970-01-01 was a Thursday */
}

/* A wall-clock minute, in the schedule's zone. */
struct wall {
    int y, mo, d, h, mi;
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* Run the C library's local-time functions for zone tz: TZ is swapped under
 * tz_lock and put back. */
static void tz_enter(const char *tz, char **saved)
{
    pthread_mutex_lock(&tz_lock);
    const char *old = getenv("TZ");
    *saved = old ? strdup(old) : NULL;
    setenv("TZ", tz, 1);
    tzset();
}

static void tz_leave(char *saved)
{
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    pthread_mutex_unlock(&tz_lock);
}

static void to_wall(const struct schedule *s, int64_t t, struct wall *w)
{
    if (!s->timezone) {
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        int64_t sec = t - days * 86400;
        civil_from_days(days, &w->y, &w->mo, &w->d);
        w->h = (int)(sec / 3600);
        w->mi = (int)(sec % 3600 / 60);
        return;
    }
    char *saved;
    struct tm tm;
    time_t tt = (time_t)t;
    tz_enter(s->timezone, &saved);
    localtime_r(&tt, &tm);
    tz_leave(saved);
    *w = (struct wall){tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min};
}

/* The earliest instant whose wall time in the zone is w; -1 if there is
 * none (skipped when the clocks went forward). */
static int64_t from_wall(const struct schedule *s, const struct wall *w)
{
    if (!s->timezone)
        return days_from_civil(w->y, w->mo, w->d) * 86400 + w->h * 3600 + w->mi * 60;
    char *saved;
    int64_t best = -1;
    tz_enter(s->timezone, &saved);
    for (int dst = 0; dst <= 1; dst++) { /* a repeated hour has one of each */
        struct tm tm = {.tm_year = w->y - 1900, .tm_mon = w->mo - 1, .tm_mday = w->d,
                        .tm_hour = w->h, .tm_min = w->mi, .tm_isdst = dst};
        time_t t = mktime(&tm);
        struct tm back;
        if (t == (time_t)-1 || !localtime_r(&t, &back))
            continue;
        if (back.tm_year + 1900 == w->y && back.tm_mon + 1 == w->mo && back.tm_mday == w->d &&
            back.tm_hour == w->h && back.tm_min == w->mi && (best < 0 || t < best))
            best = t;
    }
    tz_leave(saved);
    return best;
}

/* -- parsing ----------------------------------------------------------------------------- */

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

struct field_spec {
    const char *name;
    int min, max;
    const char *const *names;   /* names[i] is min + i */
};

static const struct field_spec SPEC_MINUTES = {"minutes", 0, 59, NULL};
static const struct field_spec SPEC_HOURS = {"hours", 0, 23, NULL};
static const struct field_spec SPEC_DOM = {"day-of-month", 1, 31, NULL};
static const struct field_spec SPEC_MONTHS = {"month", 1, 12, month_names};
static const struct field_spec SPEC_DOW = {"day-of-week", 1, 7, day_names};
static const struct field_spec SPEC_YEARS = {"year", YEAR_MIN, SCHEDULE_YEAR_MAX, NULL};

/* A number or a name at *p; advances *p. */
static int parse_value(const struct field_spec *f, const char **p, int *out)
{
    const char *c = *p;
    if (isdigit((unsigned char)*c)) {
        long v = 0;
        while (isdigit((unsigned char)*c) && v < 100000)
            v = v * 10 + (*c++ - '0');
        *out = (int)v;
        *p = c;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(c, f->names[i], 3) == 0) {
            *out = f->min + i;
            *p = c + 3;
            return 0;
        }
    }
    return -1;
}

static int field_error(struct err *e, const char *expr, const struct field_spec *f,
                       const char *text, const char *why)
{
    return err_set(e, "%s: %s field \"%s\": %s", expr, f->name, text, why);
}

/* One comma-separated element: star, star-slash-N, A, A-B, A/N or A-B/N. */
static int parse_element(const struct field_spec *f, struct field *fl, const char *text,
                         const char *expr, struct err *e)
{
    const char *p = text;
    int lo = f->min, hi = f->max, step = 1;
    char why[160];
    if (*p == '*') {
        p++;
    } else {
        if (parse_value(f, &p, &lo) < 0)
            return field_error(e, expr, f, text, "not a number or name");
        hi = lo;
        if (*p == '-') {
            p++;
            if (parse_value(f, &p, &hi) < 0)
                return field_error(e, expr, f, text, "a range needs an end, e.g. 1-5");
        } else if (*p == '/') {
            hi = f->max;
        }
    }
    if (*p == '/') {
        p++;
        if (!isdigit((unsigned char)*p) || parse_value(f, &p, &step) < 0 || step < 1)
            return field_error(e, expr, f, text, "an increment needs a positive number, "
                               "e.g. 0/15");
    }
    if (*p)
        return field_error(e, expr, f, text, "unexpected characters");
    if (lo < f->min || hi > f->max || lo > f->max || hi < f->min) {
        snprintf(why, sizeof why, "out of range %d-%d", f->min, f->max);
        return field_error(e, expr, f, text, why);
    }
    if (lo > hi)
        return field_error(e, expr, f, text, "the range runs backwards");
    for (int v = lo; v <= hi; v += step)
        fl->v[v - f->min] = true;
    return 0;
}

static int parse_field(const struct field_spec *f, struct field *fl, const char *text,
                       const char *expr, struct err *e)
{
    fl->min = f->min;
    fl->max = f->max;
    char *copy = strdup(text), *save = NULL;
    if (!copy)
        return err_set(e, "out of memory");
    int rc = 0;
    if (!*text || text[strlen(text) - 1] == ',')
        rc = field_error(e, expr, f, text, "empty");
    for (char *el = strtok_r(copy, ",", &save); el && rc == 0; el = strtok_r(NULL, ",", &save))
        rc = parse_element(f, fl, el, expr, e);
    free(copy);
    return rc;
}

/* Day-of-month: ?, L, LW, NW, or a set. */
static int parse_dom(struct schedule *s, const char *text, const char *expr, struct err *e)
{
    s->dom.min = 1;
    s->dom.max = 31;
    if (strcmp(text, "?") == 0) {
        s->dom_kind = DOM_ANY;
        return 0;
    }
    if (strcasecmp(text, "L") == 0) {
        s->dom_kind = DOM_LAST;
        return 0;
    }
    if (strcasecmp(text, "LW") == 0) {
        s->dom_kind = DOM_LAST_WEEKDAY;
        return 0;
    }
    size_t n = strlen(text);
    if (n > 1 && toupper((unsigned char)text[n - 1]) == 'W') {
        char *end;
        long d = strtol(text, &end, 10);
        if (end != text + n - 1 || d < 1 || d > 31)
            return field_error(e, expr, &SPEC_DOM, text, "W takes one day, e.g. 15W");
        s->dom_kind = DOM_NEAREST_WEEKDAY;
        s->dom_day = (int)d;
        return 0;
    }
    s->dom_kind = DOM_SET;
    return parse_field(&SPEC_DOM, &s->dom, text, expr, e);
}

/* Day-of-week: ?, L (Saturday), NL, N#K, or a set. */
static int parse_dow(struct schedule *s, const char *text, const char *expr, struct err *e)
{
    s->dow.min = 1;
    s->dow.max = 7;
    if (strcmp(text, "?") == 0) {
        s->dow_kind = DOW_ANY;
        return 0;
    }
    if (strcasecmp(text, "L") == 0)
        text = "7";
    const char *hash = strchr(text, '#');
    size_t n = strlen(text);
    if (hash || (n > 1 && toupper((unsigned char)text[n - 1]) == 'L')) {
        const char *p = text;
        int day, nth = 0;
        if (parse_value(&SPEC_DOW, &p, &day) < 0 || day < 1 || day > 7)
            return field_error(e, expr, &SPEC_DOW, text, "needs a day 1-7 or SUN-SAT first");
        if (hash && (p != hash || sscanf(hash + 1, "%d", &nth) != 1 || nth < 1 || nth > 5 ||
                     strspn(hash + 1, "0123456789") != strlen(hash + 1)))
            return field_error(e, expr, &SPEC_DOW, text, "# takes a week 1-5, e.g. 2#1 (the "
                               "first Monday)");
        if (!hash && p != text + n - 1)
            return field_error(e, expr, &SPEC_DOW, text, "L follows one day, e.g. 6L (the last "
                               "Friday)");
        s->dow_kind = hash ? DOW_NTH : DOW_LAST_OF_MONTH;
        s->dow_day = day;
        s->dow_nth = nth;
        return 0;
    }
    s->dow_kind = DOW_SET;
    return parse_field(&SPEC_DOW, &s->dow, text, expr, e);
}

static int parse_cron(struct schedule *s, const char *expr, const char *body, struct err *e)
{
    char *copy = strdup(body), *save = NULL, *f[7];
    if (!copy)
        return err_set(e, "out of memory");
    int n = 0;
    for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        if (n < 7)
            f[n++] = t;
        else
            n = 8;
    int rc = 0;
    if (n != 6) {
        rc = err_set(e, "%s has %s%d fields; EventBridge's cron has 6: minutes hours "
                     "day-of-month month day-of-week year, e.g. cron(0 12 * * ? *)", expr,
                     n > 7 ? "more than " : "", n > 7 ? 7 : n);
    } else if (strcmp(f[2], "?") == 0 && strcmp(f[4], "?") == 0) {
        rc = err_set(e, "%s: day-of-month and day-of-week cannot both be ?; give one of them, "
                     "e.g. cron(0 12 * * ? *)", expr);
    } else if (strcmp(f[2], "?") != 0 && strcmp(f[4], "?") != 0) {
        bool both_star = strcmp(f[2], "*") == 0 && strcmp(f[4], "*") == 0;
        rc = err_set(e, "%s: day-of-month and day-of-week cannot both be %s; use ? in one of "
                     "them, e.g. cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *)", expr,
                     both_star ? "`*`" : "given");
    } else if (parse_field(&SPEC_MINUTES, &s->minutes, f[0], expr, e) < 0 ||
               parse_field(&SPEC_HOURS, &s->hours, f[1], expr, e) < 0 ||
               parse_dom(s, f[2], expr, e) < 0 ||
               parse_field(&SPEC_MONTHS, &s->months, f[3], expr, e) < 0 ||
               parse_dow(s, f[4], expr, e) < 0 ||
               parse_field(&SPEC_YEARS, &s->years, f[5], expr, e) < 0) {
        rc = -1;
    }
    free(copy);
    return rc;
}

static int parse_rate(struct schedule *s, const char *expr, const char *body, struct err *e)
{
    static const struct {
        const char *one, *many;
        int64_t ms;
    } units[] = {{"second", "seconds", 1000},
                 {"minute", "minutes", 60000},
                 {"hour", "hours", 3600000},
                 {"day", "days", 86400000}};
    char unit[32];
    long long value;
    int used = 0;
    if (sscanf(body, " %lld %31s %n", &value, unit, &used) != 2 || body[used] ||
        strspn(body + strspn(body, " "), "0123456789") == 0)
        return err_set(e, "%s: write rate(VALUE UNIT), e.g. rate(5 minutes)", expr);
    if (value < 1 || value > 1000000)
        return err_set(e, "%s: the value must be a whole number from 1, e.g. rate(5 minutes)",
                       expr);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        bool one = strcmp(unit, units[i].one) == 0, many = strcmp(unit, units[i].many) == 0;
        if (!one && !many)
            continue;
        if (value == 1 && many)
            return err_set(e, "%s: with 1 the unit is singular: rate(1 %s)", expr, units[i].one);
        if (value != 1 && one)
            return err_set(e, "%s: with %lld the unit is plural: rate(%lld %s)", expr, value,
                           value, units[i].many);
        s->period_ms = value * units[i].ms;
        return 0;
    }
    return err_set(e, "%s: unit \"%s\" is not minute(s), hour(s), day(s) or second(s)", expr,
                   unit);
}

/* A TZ database name: a file under TZDIR or /usr/share/zoneinfo. */
static int check_timezone(const char *tz, struct err *e)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    bool sane = *tz && *tz != '/' && !strstr(tz, "..") &&
                strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") ==
                    strlen(tz);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, tz);
    if (!sane || access(path, R_OK) < 0)
        return err_set(e, "timezone \"%s\" is not in the TZ database (%s): give a name such as "
                       "\"Europe/Paris\" or \"America/New_York\"", tz, dir);
    return 0;
}

int schedule_parse(const char *expr, const char *zone, struct schedule **out, struct err *e)
{
    *out = NULL;
    size_t n = strlen(expr);
    bool rate = strncmp(expr, "rate(", 5) == 0, cron = strncmp(expr, "cron(", 5) == 0;
    if ((!rate && !cron) || n < 6 || expr[n - 1] != ')')
        return err_set(e, "\"%s\" is not rate(...) or cron(...), e.g. \"rate(5 minutes)\" or "
                       "\"cron(0 12 * * ? *)\"", expr);
    if (zone && check_timezone(zone, e) < 0)
        return -1;
    struct schedule *s = calloc(1, sizeof *s);
    char *body = strndup(expr + 5, n - 6);
    if (!s || !body || (zone && !(s->timezone = strdup(zone)))) {
        free(body);
        schedule_free(&s);
        return err_set(e, "out of memory");
    }
    int rc = rate ? parse_rate(s, expr, body, e) : parse_cron(s, expr, body, e);
    free(body);
    if (rc < 0) {
        schedule_free(&s);
        return -1;
    }
    *out = s;
    return 0;
}

void schedule_free(struct schedule **s)
{
    if (!*s)
        return;
    free((*s)->timezone);
    free(*s);
    *s = NULL;
}

bool schedule_is_rate(const struct schedule *s)
{
    return s->period_ms > 0;
}

int64_t schedule_period_ms(const struct schedule *s)
{
    return s->period_ms;
}

/* -- the next firing --------------------------------------------------------------------- */

/* The weekday nearest to day d (Quartz's W), within its month. */
static int nearest_weekday(int y, int m, int d)
{
    int dim = days_in_month(y, m);
    if (d > dim)
        d = dim;
    int w = weekday(y, m, d);
    if (w == 7) /* Saturday: Friday, or Monday if Friday is last month */
        return d > 1 ? d - 1 : d + 2;
    if (w == 1) /* Sunday: Monday, or Friday if Monday is next month */
        return d < dim ? d + 1 : d - 2;
    return d;
}

static bool day_matches(const struct schedule *s, int y, int m, int d)
{
    int dim = days_in_month(y, m);
    switch (s->dom_kind) {
    case DOM_SET:
        return s->dom.v[d - 1];
    case DOM_LAST:
        return d == dim;
    case DOM_LAST_WEEKDAY:
        return d == nearest_weekday(y, m, dim);
    case DOM_NEAREST_WEEKDAY:
        return s->dom_day <= dim && d == nearest_weekday(y, m, s->dom_day);
    case DOM_ANY:
        break;
    }
    int w = weekday(y, m, d);
    switch (s->dow_kind) {
    case DOW_SET:
        return s->dow.v[w - 1];
    case DOW_LAST_OF_MONTH:
        return w == s->dow_day && d + 7 > dim;
    case DOW_NTH:
        return w == s->dow_day && (d - 1) / 7 + 1 == s->dow_nth;
    case DOW_ANY:
        break;
    }
    return true;
}

/* The first minute on day (y, m, d) after `from` (minutes into the day;
 * -1: any) that fires after after_s. */
static int64_t first_in_day(const struct schedule *s, int y, int m, int d, int from,
                            int64_t after_s)
{
    for (int h = 0; h < 24; h++) {
        if (!s->hours.v[h])
            continue;
        for (int mi = 0; mi < 60; mi++) {
            if (!s->minutes.v[mi] || h * 60 + mi <= from)
                continue;
            struct wall w = {y, m, d, h, mi};
            int64_t t = from_wall(s, &w);
            if (t > after_s)
                return t;
        }
    }
    return -1;
}

static int cron_next(const struct schedule *s, int64_t after_s, int64_t *out)
{
    struct wall now;
    to_wall(s, after_s, &now);
    int y = now.y, m = now.mo, d = now.d;
    int from = now.h * 60 + now.mi; /* that minute itself has begun: not after */
    if (y < YEAR_MIN) {
        y = YEAR_MIN, m = 1, d = 1;
        from = -1;
    }
    while (y <= SCHEDULE_YEAR_MAX) {
        if (!s->years.v[y - YEAR_MIN]) {
            y++, m = 1, d = 1, from = -1;
            continue;
        }
        if (!s->months.v[m - 1]) {
            if (++m > 12)
                y++, m = 1;
            d = 1, from = -1;
            continue;
        }
        if (day_matches(s, y, m, d)) {
            int64_t t = first_in_day(s, y, m, d, from, after_s);
            if (t >= 0) {
                *out = t;
                return 0;
            }
        }
        from = -1;
        if (++d > days_in_month(y, m)) {
            d = 1;
            if (++m > 12)
                y++, m = 1;
        }
    }
    return -1;
}

int schedule_next(const struct schedule *s, int64_t after_ms, int64_t anchor_ms,
                  int64_t *next_ms)
{
    if (s->period_ms) {
        int64_t k = after_ms < anchor_ms ? 0 : (after_ms - anchor_ms) / s->period_ms + 1;
        *next_ms = anchor_ms + k * s->period_ms;
        return 0;
    }
    int64_t after_s = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    int64_t t;
    if (cron_next(s, after_s, &t) < 0)
        return -1;
    *next_ms = t * 1000;
    return 0;
}

int64_t schedule_parse_iso(const char *text)
{
    int y, mo, d, h, mi, sec, ms = 0, used = 0;
    if (!text || sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6)
        return -1;
    const char *rest = text + used;
    if (*rest == '.') {
        int frac = 0;
        if (sscanf(rest, ".%3d%n", &ms, &frac) != 1 || frac != 4)
            return -1;
        rest += frac;
    }
    if (strcmp(rest, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + ms;
}
