/* test_walbuf.c - the VFS that gathers a commit's WAL frames into one write:
 * another connection (the default VFS, as `sqlite3` or `sluice logs` would
 * be) sees every commit as soon as it returns, a transaction larger than the
 * buffer, spilled mid-way or rolled back leaves a consistent database
 * (also for another connection that writes after the rollback), a commit
 * takes fewer write calls than without it, and kill -9 of a writer loses no
 * commit it reported, including one whose frames SQLite rewrote after the
 * commit frame (a spilled page changed again). */
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "test.h"
#include "testutil.h"
#include "walbuf.h"

static char *dir;
static char path[256];

static void fresh_db(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static sqlite3 *open_db(const char *vfs)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) != SQLITE_OK) {
        fprintf(stderr, "open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        _exit(1); /* also in a forked child: the parent sees it end */
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return rc;
}

static int integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    return ok;
}

static sqlite3 *open_writer(void)
{
    const char *vfs = walbuf_vfs_name();
    CHECK(vfs != NULL);
    sqlite3 *w = open_db(vfs);
    CHECK(exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                  "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k TEXT, v BLOB);"
                  "CREATE INDEX IF NOT EXISTS t_k ON t (k);") == SQLITE_OK);
    return w;
}

/* n rows of size bytes each, in one transaction */
static int add_rows(sqlite3 *db, int n, int size)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)"
             " INSERT INTO t (k, v) SELECT hex(randomblob(8)), zeroblob(%d) FROM c", n, size);
    return exec(db, sql);
}

static void test_a_reader_sees_every_commit_at_once(void)
{
    fresh_db("readers.db");
    sqlite3 *w = open_writer();
    sqlite3 *r = open_db(NULL); /* the default VFS, like the sqlite3 shell */
    sqlite3_int64 expect = 0;
    /* one row; a commit of ~40 pages; one larger than the buffer (120 KiB) */
    static const int rows[] = {1, 1, 10, 1, 40, 300, 1, 2, 700, 1};
    static const int sizes[] = {10, 200, 3000, 10, 3000, 1000, 5, 4000, 900, 1};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK(add_rows(w, rows[i], sizes[i]) == SQLITE_OK);
        expect += rows[i];
        CHECK(db_int(r, "SELECT count(*) FROM t", -1) == expect);
    }
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

/* A transaction that spills pages into the WAL before its commit (a tiny
 * page cache), rolled back, then one committed: SQLite reads back what it
 * spilled, and the rolled-back frames never count. */
static void test_a_spilled_transaction_rolled_back_or_committed(void)
{
    fresh_db("spill.db");
    sqlite3 *w = open_writer();
    CHECK(exec(w, "PRAGMA cache_size = 8") == SQLITE_OK);
    CHECK(add_rows(w, 5, 100) == SQLITE_OK);
    CHECK(exec(w, "BEGIN") == SQLITE_OK);
    CHECK(add_rows(w, 2000, 500) == SQLITE_OK);
    CHECK(db_int(w, "SELECT count(*) FROM t", -1) == 2005);
    CHECK(exec(w, "ROLLBACK") == SQLITE_OK);
    CHECK(exec(w, "BEGIN") == SQLITE_OK);
    CHECK(add_rows(w, 1500, 700) == SQLITE_OK);
    CHECK(exec(w, "UPDATE t SET k = 'x' WHERE id % 7 = 0") == SQLITE_OK);
    CHECK(exec(w, "COMMIT") == SQLITE_OK);
    sqlite3 *r = open_db(NULL);
    CHECK(db_int(r, "SELECT count(*) FROM t", -1) == 1505);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    CHECK(exec(w, "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK);
    CHECK(db_int(w, "SELECT count(*) FROM t", -1) == 1505);
    sqlite3_close(w);
}

/* A spills part of a transaction and rolls it back; B, another connection,
 * then commits at the same WAL offsets; A closes. B's rows must be intact:
 * what A had buffered must never reach the file after A gave up the lock. */
static void test_a_rolled_back_spill_never_lands_on_another_writers_frames(void)
{
    fresh_db("rollback.db");
    sqlite3 *a = open_writer();
    CHECK(exec(a, "PRAGMA cache_size = 10; PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK);
    sqlite3 *b = open_db(NULL);
    sqlite3_busy_timeout(b, 5000);
    CHECK(exec(a, "BEGIN") == SQLITE_OK);
    CHECK(add_rows(a, 300, 500) == SQLITE_OK);
    CHECK(exec(a, "ROLLBACK") == SQLITE_OK);
    CHECK(exec(b, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400)"
                  " INSERT INTO t (k, v) SELECT 'b', zeroblob(500) FROM c") == SQLITE_OK);
    sqlite3_close(a);
    sqlite3_close(b);
    sqlite3 *r = open_db(NULL);
    CHECK(db_int(r, "SELECT count(*) FROM t WHERE k = 'b' AND length(v) = 500", -1) == 400);
    CHECK(db_int(r, "SELECT count(*) FROM t", -1) == 400);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
}

/* A database file without "powersafe overwrite" (URI psow=0) with FULL
 * sync: SQLite pads each commit to a sector with copies of the commit frame,
 * written in pieces around a sync. Its -wal file is written unbuffered, so a
 * reader still sees every commit at once. */
static void test_padded_commits_without_powersafe_overwrite(void)
{
    fresh_db("psow.db");
    char uri[300];
    snprintf(uri, sizeof uri, "file:%s?psow=0", path);
    sqlite3 *w = NULL, *r = NULL;
    CHECK(sqlite3_open_v2(uri, &w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                          walbuf_vfs_name()) == SQLITE_OK);
    CHECK(exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                  "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);") == SQLITE_OK);
    CHECK(sqlite3_open_v2(uri, &r, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) == SQLITE_OK);
    int unseen = 0;
    for (int i = 1; i <= 60; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO t (v) VALUES (randomblob(%d))", 50 + i * 37 % 3000);
        CHECK(exec(w, sql) == SQLITE_OK);
        unseen += db_int(r, "SELECT count(*) FROM t", -1) != i;
    }
    CHECK(unseen == 0);
    sqlite3_close(r);
    sqlite3_close(w);
}

/* write system calls this process made so far (/proc/self/io: syscw) */
static long write_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static long calls_per_commit(sqlite3 *db)
{
    CHECK(add_rows(db, 1, 100) == SQLITE_OK); /* the WAL header, the first frames */
    long before = write_calls();
    for (int i = 0; i < 20; i++)
        add_rows(db, 1, 100);
    return (write_calls() - before) / 20;
}

static void test_a_commit_takes_fewer_writes(void)
{
    if (write_calls() < 0) {
        printf("skip: no /proc/self/io\n");
        return;
    }
    fresh_db("plain.db");
    sqlite3 *plain = open_db(NULL);
    CHECK(exec(plain, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB);"
                      "CREATE INDEX t_k ON t (k);") == SQLITE_OK);
    long without = calls_per_commit(plain);
    sqlite3_close(plain);
    fresh_db("buffered.db");
    sqlite3 *w = open_writer();
    long with = calls_per_commit(w);
    sqlite3_close(w);
    printf("write calls per commit of a row and its index entry: %ld without, %ld with\n",
           without, with);
    CHECK(without >= 4); /* a header and a page for the table and for its index */
    CHECK(with == 1);
}

/* A child commits in a loop and reports each commit on a pipe; kill -9 it
 * mid-flight: every reported commit is in the database, which is sound.
 * With spill, each commit also spills pages and changes them again, so
 * SQLite rewrites frame checksums after the commit frame, and the child is
 * killed right after its last reported commit, before it touches the file
 * again. The child ends itself on any failure, so the parent never waits on
 * a dead pipe. */
static void kill9_loses_no_reported_commit(const char *name, bool spill)
{
    fresh_db(name);
    sqlite3 *w = open_writer(); /* the schema, before the child forks */
    sqlite3_close(w);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        sqlite3 *c = open_writer();
        if (spill && exec(c, "PRAGMA cache_size = 8") != SQLITE_OK)
            _exit(2);
        long total = 0; /* counted, not read back: a read would flush the -wal file */
        for (long n = 1;; n++) {
            int rows = spill ? 300 : (int)(n % 13) + 1;
            bool ok = spill ? exec(c, "BEGIN") == SQLITE_OK && add_rows(c, rows, 700) == SQLITE_OK &&
                                  exec(c, "UPDATE t SET k = 'x' WHERE id % 7 = 0") == SQLITE_OK &&
                                  exec(c, "COMMIT") == SQLITE_OK
                            : add_rows(c, rows, (int)(n % 5) * 900) == SQLITE_OK;
            if (!ok)
                _exit(3);
            total += rows;
            if (write(fds[1], &total, sizeof total) != (ssize_t)sizeof total)
                _exit(4);
            while (spill && total >= 1500) /* killed right after a commit, not in the next */
                pause();
        }
    }
    close(fds[1]);
    long reported = 0, v, enough = spill ? 1500 : 3000;
    while (reported < enough && read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        reported = v;
    kill(pid, SIGKILL);
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        reported = v;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(reported >= enough);
    sqlite3 *r = open_db(NULL);
    sqlite3_int64 rows = db_int(r, "SELECT count(*) FROM t", -1);
    CHECK(rows >= reported && rows <= reported + (spill ? 300 : 13));
    CHECK(integrity_ok(r));
    sqlite3_close(r);
}

static void test_kill9_loses_no_reported_commit(void)
{
    kill9_loses_no_reported_commit("kill9.db", false);
}

static void test_kill9_after_checksums_rewritten_loses_no_reported_commit(void)
{
    kill9_loses_no_reported_commit("kill9-spill.db", true);
}

int main(void)
{
    dir = tu_mkdtemp("walbuf");
    test_a_reader_sees_every_commit_at_once();
    test_a_spilled_transaction_rolled_back_or_committed();
    test_a_rolled_back_spill_never_lands_on_another_writers_frames();
    test_padded_commits_without_powersafe_overwrite();
    test_a_commit_takes_fewer_writes();
    test_kill9_loses_no_reported_commit();
    test_kill9_after_checksums_rewritten_loses_no_reported_commit();
    tu_rm_rf(dir);
    free(dir);
    return test_summary();
}
