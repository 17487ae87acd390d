/* filedrop - the file-drop harness. Writes COUNT files into a staging
 * folder and renames each into the watched folder (a burst, or one every
 * --interval-ms), waits until the watcher under test has handled them all
 * (or stops making progress), and reports: time to create the files, time
 * until the last handler started, files handled/missed/duplicated, CPU of
 * the watcher's whole process tree per file (--pid), and the latency from
 * each rename to its handler's start.
 *
 * Where the handler's start time comes from:
 *   --db FILE   sluice: the bench.stamp handler's log line in the logs table
 *               ("t=<ns> key=<name>"), and invocations.started_at (ms)
 *   --log FILE  the peers: one line per file, "<epoch seconds.us> <path>"
 *
 *   filedrop --watch DIR --stage DIR --count N [--interval-ms MS] --name PREFIX
 *            (--db FILE | --log FILE) [--pid PID] [--timeout S] [--idle S]
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "common.h"

struct result {
    double handler_s;           /* handler start, wall clock, seconds since epoch; 0: none */
    double started_ms;          /* sluice: invocations.started_at as epoch ms; -1 none */
    int seen;
};

static long n_files;
static struct result *res;
static const char *prefix;

/* "PREFIX-00012.txt" anywhere at the end of s -> 12, else -1 */
static long index_of(const char *s)
{
    const char *base = strrchr(s, '/');
    base = base ? base + 1 : s;
    size_t pl = strlen(prefix);
    if (strncmp(base, prefix, pl) != 0 || base[pl] != '-')
        return -1;
    long i = strtol(base + pl + 1, NULL, 10);
    return i >= 0 && i < n_files ? i : -1;
}

static long dups;

static void mark(long i, double handler_s, double started_ms)
{
    if (i < 0)
        return;
    if (res[i].seen++) {
        dups++;
        return;
    }
    res[i].handler_s = handler_s;
    res[i].started_ms = started_ms;
}

/* --- log peers --- */
static long log_off;
static char *log_pending;
static size_t log_pending_len;

static long log_poll(const char *path)
{
    static long lines;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lines;
    char buf[65536];
    ssize_t n;
    lseek(fd, log_off, SEEK_SET);
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        log_off += n;
        log_pending = realloc(log_pending, log_pending_len + (size_t)n + 1);
        memcpy(log_pending + log_pending_len, buf, (size_t)n);
        log_pending_len += (size_t)n;
    }
    close(fd);
    /* parse complete lines */
    size_t start = 0;
    for (size_t k = 0; k < log_pending_len; k++) {
        if (log_pending[k] != '\n')
            continue;
        log_pending[k] = '\0';
        char *line = log_pending + start;
        char *sp = strchr(line, ' ');
        if (sp) {
            double t = strtod(line, NULL);
            mark(index_of(sp + 1), t, -1);
        }
        lines++;
        start = k + 1;
    }
    memmove(log_pending, log_pending + start, log_pending_len - start);
    log_pending_len -= start;
    return lines;
}

/* --- sluice --- */
static sqlite3 *db;

static long db_count(const char *path)
{
    if (!db && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
        return 0;
    }
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM logs", -1, &st, NULL) != SQLITE_OK)
        return 0;
    long v = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static long db_collect(void)
{
    sqlite3_stmt *st;
    long invocations = 0;
    if (sqlite3_prepare_v2(db, "SELECT l.message, strftime('%s', i.started_at) * 1000 + "
                           "CAST(substr(i.started_at, 21, 3) AS INTEGER) FROM logs l JOIN "
                           "invocations i ON i.request_id = l.request_id WHERE l.message LIKE "
                           "'t=%'", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "filedrop: %s\n", sqlite3_errmsg(db));
        return 0;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *msg = (const char *)sqlite3_column_text(st, 0);
        double started = sqlite3_column_double(st, 1);
        long long ns = strtoll(msg + 2, NULL, 10);
        const char *key = strstr(msg, "key=");
        if (key)
            mark(index_of(key + 4), (double)ns / 1e9, started);
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM invocations", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        invocations = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return invocations;
}

int main(int argc, char **argv)
{
    const char *watch = NULL, *stage = NULL, *dbpath = NULL, *logpath = NULL;
    long interval_ms = 0;
    int pid = 0;
    double timeout = 120, idle = 10;
    prefix = "f";
    n_files = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--watch")) watch = argv[i + 1];
        else if (!strcmp(argv[i], "--stage")) stage = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) n_files = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--interval-ms")) interval_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--name")) prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--db")) dbpath = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) logpath = argv[i + 1];
        else if (!strcmp(argv[i], "--pid")) pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout")) timeout = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--idle")) idle = atof(argv[i + 1]);
        else { fprintf(stderr, "filedrop: unknown option %s\n", argv[i]); return 2; }
    }
    if (!watch || !stage || (!dbpath == !logpath)) {
        fprintf(stderr, "usage: filedrop --watch DIR --stage DIR --count N --name P (--db F|--log F)\n");
        return 2;
    }
    res = calloc((size_t)n_files, sizeof *res);
    double *rename_s = calloc((size_t)n_files, sizeof *rename_s);
    char content[101];
    memset(content, 'x', 99);
    content[99] = '\n';
    double cpu0 = pid ? tree_cpu_ms(pid) : 0;
    int64_t t0 = now_ns();
    double t0_wall = (double)wall_ns() / 1e9;
    for (long i = 0; i < n_files; i++) {
        if (interval_ms > 0)
            sleep_ns(t0 + i * interval_ms * 1000000 - now_ns());
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s-%05ld.txt", stage, prefix, i);
        snprintf(to, sizeof to, "%s/%s-%05ld.txt", watch, prefix, i);
        int fd = open(from, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, content, 100) != 100 || close(fd) < 0) {
            perror(from);
            return 1;
        }
        rename_s[i] = (double)wall_ns() / 1e9;
        if (rename(from, to) < 0) {
            perror(to);
            return 1;
        }
    }
    int64_t t_created = now_ns();
    /* wait until all are handled, or no progress for `idle` seconds */
    long got = 0, last = -1;
    int64_t last_progress = now_ns(), deadline = t0 + (int64_t)(timeout * 1e9);
    while (now_ns() < deadline) {
        got = logpath ? log_poll(logpath) : db_count(dbpath);
        if (got >= n_files)
            break;
        if (got != last) {
            last = got;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > (int64_t)(idle * 1e9)) {
            break;
        }
        sleep_ns(2000000);
    }
    int64_t t_detected = now_ns();
    sleep_ns(100000000); /* late duplicates, and the tree's CPU settles */
    double cpu1 = pid ? tree_cpu_ms(pid) : 0;
    long invocations = -1;
    if (logpath)
        log_poll(logpath);
    else
        invocations = db_collect();
    long handled = 0;
    double last_handler = 0;
    double *lat = calloc((size_t)n_files, sizeof *lat), *lat_db = calloc((size_t)n_files, sizeof *lat);
    size_t nl = 0, nd = 0;
    double sum_db = 0;
    for (long i = 0; i < n_files; i++) {
        if (!res[i].seen)
            continue;
        handled++;
        if (res[i].handler_s > last_handler)
            last_handler = res[i].handler_s;
        lat[nl++] = (res[i].handler_s - rename_s[i]) * 1e3;
        if (res[i].started_ms >= 0 && dbpath) {
            /* started_at has ms resolution: the difference of two truncated
             * ms clocks is an unbiased estimate of the mean, not of single
             * values */
            double d = res[i].started_ms - (double)(long long)(rename_s[i] * 1e3);
            lat_db[nd++] = d;
            sum_db += d;
        }
    }
    double created = (double)(t_created - t0) / 1e9;
    double done = last_handler > 0 ? last_handler - t0_wall : 0;
    printf("count=%ld\nhandled=%ld\nmissed=%ld\nduplicates=%ld\n", n_files, handled,
           n_files - handled, dups);
    if (invocations >= 0)
        printf("invocations=%ld\n", invocations);
    printf("create_s=%.4f\nlast_handler_s=%.4f\ndetected_s=%.4f\nbacklog_ratio=%.3f\n", created,
           done, (double)(t_detected - t0) / 1e9, created > 0 ? done / created : 0);
    printf("files_per_s=%.0f\n", done > 0 ? (double)handled / done : 0);
    if (pid)
        printf("cpu_ms=%.1f\ncpu_per_file_us=%.1f\n", cpu1 - cpu0,
               handled ? (cpu1 - cpu0) * 1e3 / (double)handled : 0);
    if (nl) {
        double p50 = percentile(lat, nl, 0.5), p90 = percentile(lat, nl, 0.9),
               p99 = percentile(lat, nl, 0.99), mx = percentile(lat, nl, 1.0);
        printf("lat_p50_ms=%.3f\nlat_p90_ms=%.3f\nlat_p99_ms=%.3f\nlat_max_ms=%.3f\n", p50, p90,
               p99, mx);
    }
    if (nd)
        printf("lat_db_mean_ms=%.3f\nlat_db_p50_ms=%.0f\n", sum_db / (double)nd,
               percentile(lat_db, nd, 0.5));
    sqlite3_close(db);
    return handled == n_files ? 0 : 3;
}
