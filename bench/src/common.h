/* common.h - small helpers shared by the benchmark programs (header-only). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* q in [0,1]; sorts v in place. Nearest-rank. */
static inline double percentile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* UUIDv7 text, like sluice's (pooled randomness). */
static inline void uuid7(char out[37])
{
    static uint8_t pool[4096];
    static size_t left;
    uint8_t b[16];
    if (left < 10) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
            abort();
        left = sizeof pool;
    }
    memcpy(b + 6, pool + sizeof pool - left, 10);
    left -= 10;
    uint64_t ms = (uint64_t)(wall_ns() / 1000000);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (8 * (5 - i)));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* ISO-8601 UTC with milliseconds, like sluice's clock_iso8601. */
static inline void put_digits(char *at, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        at[i] = (char)('0' + v % 10);
}

/* The seconds part is cached: gmtime_r once per second, not per row. */
static inline void iso8601(int64_t wall_ms, char out[32])
{
    static int64_t cached_sec = -1;
    static char cached[32];
    int64_t sec = wall_ms / 1000;
    if (sec != cached_sec) {
        time_t secs = (time_t)sec;
        struct tm tm;
        gmtime_r(&secs, &tm);
        put_digits(cached, tm.tm_year + 1900, 4);
        cached[4] = '-';
        put_digits(cached + 5, tm.tm_mon + 1, 2);
        cached[7] = '-';
        put_digits(cached + 8, tm.tm_mday, 2);
        cached[10] = 'T';
        put_digits(cached + 11, tm.tm_hour, 2);
        cached[13] = ':';
        put_digits(cached + 14, tm.tm_min, 2);
        cached[16] = ':';
        put_digits(cached + 17, tm.tm_sec, 2);
        cached[19] = '.';
        cached_sec = sec;
    }
    memcpy(out, cached, 20);
    put_digits(out + 20, (int)(wall_ms % 1000), 3);
    out[23] = 'Z';
    out[24] = '\0';
}

/* The ~200-byte event payload every ZeroMQ benchmark sends (JSON). */
static inline int bench_payload(char *buf, size_t len, long i)
{
    return snprintf(buf, len,
                    "{\"id\":%ld,\"user\":\"user-%06ld\",\"action\":\"page_view\","
                    "\"path\":\"/catalog/items/%ld\",\"ts\":1764000000%03ld,"
                    "\"tags\":[\"a\",\"b\",\"c\"],\"amount\":%ld.25,"
                    "\"note\":\"the quick brown fox jumps over the lazy dog 0123456789\"}",
                    i, i % 1000000, i % 5000, i % 1000, i % 977);
}

/* --- /proc readings --- */

/* VmRSS (or another Vm* field) in kB, -1 if unknown. */
static inline long proc_status_kb(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* utime, stime, cutime, cstime (ticks) and ppid of a process. */
static inline int proc_stat(int pid, long long *ticks, long long *child_ticks, int *ppid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ") ": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) */
    char state;
    int pp;
    long long skip, ut, st, cut, cst;
    if (sscanf(p + 2, "%c %d %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
               &state, &pp, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &ut,
               &st, &cut, &cst) != 15)
        return -1;
    *ticks = ut + st;
    *child_ticks = cut + cst;
    *ppid = pp;
    return 0;
}

/* Run time (ns) of every thread of pid, from schedstat. */
static inline long long proc_sched_ns(int pid)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    long long total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", pid, de->d_name);
        FILE *f = fopen(p2, "r");
        if (!f)
            continue;
        long long ns = 0;
        if (fscanf(f, "%lld", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(d);
    return total;
}

/* CPU time (ms) of root and all its live descendants: the live threads'
 * run time (schedstat, ns precision) plus what reaped children left in
 * cutime/cstime (10 ms ticks). */
static inline double tree_cpu_ms(int root)
{
    enum { MAXP = 65536 };
    static int pids[MAXP], ppids[MAXP];
    static long long child[MAXP];
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) && n < MAXP) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        long long t, ct;
        int pp;
        if (proc_stat((int)pid, &t, &ct, &pp) == 0) {
            pids[n] = (int)pid;
            ppids[n] = pp;
            child[n] = ct;
            n++;
        }
    }
    closedir(d);
    static char in_tree[MAXP];
    memset(in_tree, 0, n);
    for (size_t i = 0; i < n; i++)
        if (pids[i] == root)
            in_tree[i] = 1;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (in_tree[i])
                continue;
            for (size_t k = 0; k < n; k++)
                if (in_tree[k] && pids[k] == ppids[i]) {
                    in_tree[i] = 1;
                    changed = 1;
                    break;
                }
        }
    }
    long hz = sysconf(_SC_CLK_TCK);
    double ms = 0;
    for (size_t i = 0; i < n; i++)
        if (in_tree[i])
            ms += (double)proc_sched_ns(pids[i]) / 1e6 + (double)child[i] * 1000.0 / (double)hz;
    return ms;
}

#endif
