/* test_source_dir.c - unit tests for folder watching (core/source_dir.c) on
 * a real loop and real inotify: a scan reports complete files and skips one
 * still open for writing (its close is reported later), files closed after
 * writing and files moved in are reported once each with their stat, hidden
 * and temporary names never, a temporary file renamed to its final name is,
 * moved-in symlinks are not, new subfolders are followed, and a flood larger
 * than one read of the inotify queue loses nothing. Scans run in slices
 * between loop turns and wait while paused; a watched folder deleted or
 * moved away and then recreated is watched and scanned again. */
#include "source_dir.h"

#include "loop.h"
#include "test.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 8192

struct seen {
    char *path[MAX_SEEN];
    off_t size[MAX_SEEN];
    int n;
    int live;                   /* how many an inotify event reported (not a scan) */
};

static void on_file(void *arg, const char *path, const struct stat *st, bool live)
{
    struct seen *s = arg;
    if (s->n < MAX_SEEN) {
        s->path[s->n] = strdup(path);
        s->size[s->n] = st->st_size;
    }
    s->n++;
    s->live += live;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the loop until `want` files were seen (or 5 s), then for `settle` ms
 * more, so that a duplicate or an unexpected report would show. */
static void pump(struct loop *l, struct seen *s, int want, int settle)
{
    struct err e;
    int64_t deadline = now_ms() + 5000;
    while (s->n < want && now_ms() < deadline)
        loop_run_once(l, 50, &e);
    int64_t until = now_ms() + settle;
    while (now_ms() < until)
        loop_run_once(l, 10, &e);
}

/* How often path (dir + "/" + name) was reported. */
static int count(const struct seen *s, const char *dir, const char *name)
{
    char *p = tu_path(dir, "%s", name);
    int n = 0;
    for (int i = 0; p && i < s->n && i < MAX_SEEN; i++)
        if (strcmp(s->path[i], p) == 0)
            n++;
    free(p);
    return n;
}

static off_t size_of(const struct seen *s, const char *dir, const char *name)
{
    char *p = tu_path(dir, "%s", name);
    off_t size = -1;
    for (int i = 0; p && i < s->n && i < MAX_SEEN; i++)
        if (strcmp(s->path[i], p) == 0)
            size = s->size[i];
    free(p);
    return size;
}

static void forget(struct seen *s)
{
    for (int i = 0; i < s->n && i < MAX_SEEN; i++)
        free(s->path[i]);
    s->n = 0;
    s->live = 0;
}

/* Write text into dir/name elsewhere (stage) first, then rename it in. */
static int move_in(const char *stage, const char *dir, const char *name, const char *text)
{
    char *from = tu_path(stage, "%s", name), *to = tu_path(dir, "%s", name);
    int rc = from && to && tu_write(from, text) == 0 && rename(from, to) == 0 ? 0 : -1;
    free(from);
    free(to);
    return rc;
}

/* Does this file system refuse a read lease while a writer has the file
 * open (what a scan relies on)? Some (network, FUSE) do not support leases:
 * there every file counts as complete. */
static bool leases_work(const char *dir)
{
    char *p = tu_path(dir, "lease-probe");
    int w = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = open(p, O_RDONLY | O_CLOEXEC);
    bool refused = w >= 0 && r >= 0 && fcntl(r, F_SETLEASE, F_RDLCK) < 0 && errno == EAGAIN;
    if (w >= 0)
        close(w);
    if (r >= 0)
        close(r);
    unlink(p);
    free(p);
    return refused;
}

/* A loop and a source watching dir, reporting into a new struct seen. */
static struct seen *watch(const char *dir, bool recursive, struct loop **l,
                          struct source_dir **sd)
{
    struct seen *s = calloc(1, sizeof *s);
    struct err e;
    *l = NULL;
    *sd = NULL;
    CHECK(loop_new(l, &e) == 0);
    CHECK(source_dir_new(*l, on_file, s, sd, &e) == 0);
    CHECK(source_dir_add(*sd, dir, recursive, &e) == 0);
    return s;
}

static void test_scan_and_events(void)
{
    char *root = tu_mkdtemp("srcdir");
    char *dir = tu_path(root, "inbox"), *stage = tu_path(root, "stage");
    CHECK(mkdir(stage, 0700) == 0);
    bool leases = leases_work(stage);
    if (!leases)
        fprintf(stderr, "  (no leases on this file system: half-written files not checked)\n");
    /* there before sluice: a complete file, one still being written,
     * ignored names, a subfolder, a symlink */
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(tu_write_in(dir, "done.txt", "12345") == 0);
    char *open_path = tu_path(dir, "writing.txt");
    int wfd = open(open_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(wfd >= 0);
    CHECK(write(wfd, "half", 4) == 4);
    CHECK(tu_write_in(dir, ".hidden", "x") == 0);
    CHECK(tu_write_in(dir, "upload.part", "x") == 0);
    CHECK(tu_write_in(dir, "notes.txt~", "x") == 0);
    char *sub = tu_path(dir, "old");
    CHECK(mkdir(sub, 0700) == 0);
    CHECK(tu_write_in(sub, "deep.txt", "abc") == 0);
    char *link = tu_path(dir, "link.txt");
    CHECK(symlink("done.txt", link) == 0);

    struct loop *l;
    struct source_dir *sd;
    struct seen *s = watch(dir, true, &l, &sd);
    struct err e;
    source_dir_scan(sd);
    CHECK(s->n == 0); /* on the loop's turns, not inside the call */
    while (source_dir_scanning(sd))
        loop_run_once(l, 0, &e);
    CHECK(count(s, dir, "done.txt") == 1);
    CHECK(size_of(s, dir, "done.txt") == 5);
    CHECK(count(s, sub, "deep.txt") == 1);
    if (leases) {
        CHECK(s->n == 2);
        CHECK(count(s, dir, "writing.txt") == 0); /* still open for writing */
    }
    int scanned = s->n;
    pump(l, s, scanned, 50); /* the scan's own files make no events */
    CHECK(s->n == scanned);
    CHECK(s->live == 0); /* a scan's reports are not live: they may be repeats */
    forget(s);

    /* its close is the event that reports it, with its final size */
    CHECK(write(wfd, "-done", 5) == 5);
    CHECK(close(wfd) == 0);
    pump(l, s, 1, 50);
    CHECK(s->n == 1 && count(s, dir, "writing.txt") == 1);
    CHECK(size_of(s, dir, "writing.txt") == 9);
    forget(s);

    /* closed after writing, moved in, a temporary name renamed when complete */
    CHECK(tu_write_in(dir, "written.txt", "w") == 0);
    CHECK(move_in(stage, dir, "moved.txt", "moved") == 0);
    CHECK(tu_write_in(dir, "big.bin.part", "partial") == 0);
    char *part = tu_path(dir, "big.bin.part"), *final = tu_path(dir, "big.bin");
    CHECK(rename(part, final) == 0);
    CHECK(tu_write_in(dir, ".x.swp", "x") == 0);
    CHECK(tu_write_in(dir, "#autosave#", "x") == 0);
    char *staged_link = tu_path(stage, "moved-link.txt"), *moved_link = tu_path(dir, "moved-link.txt");
    CHECK(symlink("/etc/hostname", staged_link) == 0);
    CHECK(rename(staged_link, moved_link) == 0);
    pump(l, s, 3, 100);
    CHECK(s->n == 3);
    CHECK(count(s, dir, "written.txt") == 1);
    CHECK(count(s, dir, "moved.txt") == 1);
    CHECK(size_of(s, dir, "moved.txt") == 5);
    CHECK(count(s, dir, "big.bin") == 1);
    CHECK(count(s, dir, "big.bin.part") == 0);
    CHECK(count(s, dir, "moved-link.txt") == 0);
    CHECK(s->live == 3);
    forget(s);

    /* a new subfolder is followed: files in it are reported */
    char *fresh = tu_path(dir, "new");
    CHECK(mkdir(fresh, 0700) == 0);
    pump(l, s, 0, 50);
    CHECK(tu_write_in(fresh, "inside.txt", "in") == 0);
    pump(l, s, 1, 50);
    CHECK(s->n == 1 && count(s, fresh, "inside.txt") == 1);
    forget(s);

    source_dir_free(&sd);
    CHECK(sd == NULL);
    loop_free(&l);
    tu_rm_rf(root);
    free(fresh);
    free(staged_link);
    free(moved_link);
    free(part);
    free(final);
    free(link);
    free(sub);
    free(open_path);
    free(s);
    free(dir);
    free(stage);
    free(root);
}

/* More events than one read of the queue takes (64 KiB): every file once. */
static void test_flood(void)
{
    enum { N = 1500 }; /* 80-byte events: about 820 fill one read */
    char *root = tu_mkdtemp("srcflood");
    char *dir = tu_path(root, "inbox"), *stage = tu_path(root, "stage");
    CHECK(mkdir(stage, 0700) == 0);
    struct loop *l;
    struct source_dir *sd;
    struct seen *s = watch(dir, false, &l, &sd);
    char name[64];
    for (int i = 0; i < N; i++) { /* nothing reads the queue meanwhile */
        snprintf(name, sizeof name, "a-file-with-a-name-long-enough-for-80-byte-events-%05d.txt", i);
        CHECK(move_in(stage, dir, name, "x") == 0);
    }
    pump(l, s, N, 100);
    CHECK(s->n == N);
    int missing = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a-file-with-a-name-long-enough-for-80-byte-events-%05d.txt", i);
        if (count(s, dir, name) != 1)
            missing++;
    }
    CHECK(missing == 0);
    forget(s);
    source_dir_free(&sd);
    loop_free(&l);
    tu_rm_rf(root);
    free(s);
    free(dir);
    free(stage);
    free(root);
}

/* Ends what watch() began, and removes root (freed too). */
static void unwatch(struct seen *s, struct source_dir **sd, struct loop **l, char *root)
{
    forget(s);
    source_dir_free(sd);
    loop_free(l);
    tu_rm_rf(root);
    free(s);
    free(root);
}

/* A big folder is scanned a slice per loop turn, not at once; a paused
 * source reports nothing, and resumes where it stopped. */
static void test_scan_in_slices(void)
{
    enum { N = 3000 };
    char *root = tu_mkdtemp("srcslice");
    char *dir = tu_path(root, "inbox");
    CHECK(mkdir(dir, 0700) == 0);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "f-%05d.txt", i);
        CHECK(tu_write_in(dir, name, "x") == 0);
    }
    struct loop *l;
    struct source_dir *sd;
    struct seen *s = watch(dir, false, &l, &sd);
    struct err e;
    source_dir_scan(sd);
    int turns = 0;
    loop_run_once(l, 0, &e);
    turns++;
    CHECK(s->n > 0 && s->n < N);
    source_dir_pause(sd, true);
    int before = s->n;
    for (int i = 0; i < 5; i++)
        loop_run_once(l, 0, &e);
    CHECK(s->n == before);
    CHECK(source_dir_scanning(sd));
    source_dir_pause(sd, false);
    while (source_dir_scanning(sd) && turns < 10 * N) {
        loop_run_once(l, 0, &e);
        turns++;
    }
    CHECK(turns > 2);
    CHECK(s->n == N);
    unwatch(s, &sd, &l, root);
    free(dir);
}

/* While paused, the kernel queues the events; once more than
 * SOURCE_DIR_DEEP_BYTES wait, the queue is deep. On resume every file is
 * reported, a read of at most a few hundred per loop turn. */
static void test_queue_deep(void)
{
    enum { N = 2500 };          /* of 16 + 128 bytes each: deep, far from an overflow */
    char *root = tu_mkdtemp("srcdeep");
    char *dir = tu_path(root, "inbox");
    CHECK(mkdir(dir, 0700) == 0);
    struct loop *l;
    struct source_dir *sd;
    struct seen *s = watch(dir, false, &l, &sd);
    struct err e;
    source_dir_pause(sd, true);
    CHECK(!source_dir_queue_deep(sd));
    char name[128];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "%0100d.txt", i);
        CHECK(tu_write_in(dir, name, "x") == 0);
    }
    CHECK(source_dir_queue_deep(sd));
    source_dir_pause(sd, false);
    loop_run_once(l, 0, &e);
    CHECK(s->n > 0 && s->n < N);
    pump(l, s, N, 100);
    CHECK(s->n == N && s->live == N);
    CHECK(!source_dir_queue_deep(sd));
    unwatch(s, &sd, &l, root);
    free(dir);
}

/* A watched folder deleted (or renamed) and recreated is watched again,
 * and files dropped into the new one meanwhile are found by a scan. */
static void test_root_comes_back(void)
{
    char *root = tu_mkdtemp("srcback");
    char *dir = tu_path(root, "inbox"), *aside = tu_path(root, "aside");
    CHECK(mkdir(dir, 0700) == 0);
    struct loop *l;
    struct source_dir *sd;
    struct seen *s = watch(dir, true, &l, &sd);

    CHECK(rmdir(dir) == 0);                    /* deleted */
    pump(l, s, 0, 100);
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(tu_write_in(dir, "early.txt", "e") == 0); /* maybe before the watch is back */
    pump(l, s, 1, 0);
    CHECK(count(s, dir, "early.txt") == 1);
    CHECK(tu_write_in(dir, "late.txt", "l") == 0);
    pump(l, s, 2, 50);
    CHECK(count(s, dir, "late.txt") == 1);
    forget(s);

    CHECK(rename(dir, aside) == 0);            /* moved away */
    pump(l, s, 0, 100);
    CHECK(tu_write_in(aside, "elsewhere.txt", "x") == 0); /* not ours any more */
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(tu_write_in(dir, "again.txt", "a") == 0); /* found by the rescan or by its event */
    pump(l, s, 1, 50);
    CHECK(count(s, dir, "again.txt") == 1);
    CHECK(count(s, aside, "elsewhere.txt") == 0);
    forget(s);

    source_dir_free(&sd);
    loop_free(&l);
    tu_rm_rf(root);
    free(s);
    free(dir);
    free(aside);
    free(root);
}

int main(void)
{
    test_scan_in_slices();
    test_root_comes_back();
    test_queue_deep();
    test_scan_and_events();
    test_flood();
    return test_summary();
}
