/* walbuf.c - a SQLite VFS that writes a transaction's WAL frames with one
 * write instead of two per page (see walbuf.h).
 *
 * SQLite appends each frame to the -wal file as two writes, its 24-byte
 * header and then its page. A commit of one event's rows dirties 7 to 10
 * pages (two tables, their indexes), so 14 to 20 pwrite calls; on the
 * virtual machines sluice is measured on, a system call costs microseconds
 * (docs/benchmarks.md), and these were most of a lone commit's time.
 *
 * This VFS is the default one, except for -wal files: their writes gather
 * in a buffer while each follows the last, and the buffer goes to the file
 *  - right after the page of a commit frame (a frame header whose "database
 *    size after the commit" is not zero), before SQLite syncs the file or
 *    publishes the new frames in the wal-index, which is the only way
 *    another connection learns that they exist;
 *  - before any other operation on the file (read, sync, size, truncate,
 *    lock, file control, close), so that SQLite never finds the file
 *    without a write it made;
 *  - when a write does not follow the buffered ones or would not fit.
 * So writes reach the file in the order SQLite made them, every frame a
 * reader can know of is in it, and what a crash can find missing belongs to
 * a transaction that had not committed (SQLite ignores such frames). The
 * database file, the -shm file and temporary files are the default VFS's,
 * untouched (they are opened straight into the file object SQLite gives).
 *
 * One connection uses a file at a time (SQLite's rule), so no lock here.
 */
#include "walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define WALBUF_VFS "sluice-walbuf"
/* The unix VFS writes at most 128 KiB - 1 bytes per call (it masks larger
 * sizes), so a flush stays below that. */
#define WALBUF_BYTES (120 * 1024)
#define FRAME_HEADER 24 /* a WAL frame's header; its bytes 4..7: db size if it commits */

struct walbuf_file {
    sqlite3_file base;   /* pMethods: wal_methods */
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
    unsigned char *buf;  /* sqlite3_malloc'd at the first write that can use it */
    int len;
    sqlite3_int64 at;    /* the file offset of buf[0] */
    bool commit_header;  /* the last write was a commit frame's header */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs walbuf_vfs;
static const sqlite3_io_methods wal_methods;

static struct walbuf_file *as_wal(sqlite3_file *file)
{
    return (struct walbuf_file *)file;
}

static int flush(struct walbuf_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int n = f->len;
    f->len = 0;
    return f->real->pMethods->xWrite(f->real, f->buf, n, f->at);
}

static bool is_commit_header(const void *data, int amt)
{
    const unsigned char *h = data;
    return amt == FRAME_HEADER && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int buffer_write(struct walbuf_file *f, const void *data, int amt, sqlite3_int64 at)
{
    if (f->len > 0 && (at != f->at + f->len || f->len + amt > WALBUF_BYTES)) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (amt > WALBUF_BYTES || (!f->buf && !(f->buf = sqlite3_malloc(WALBUF_BYTES))))
        return f->real->pMethods->xWrite(f->real, data, amt, at); /* nothing buffered */
    if (f->len == 0)
        f->at = at;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += amt;
    return SQLITE_OK;
}

static int wal_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 at)
{
    struct walbuf_file *f = as_wal(file);
    bool ends_commit = f->commit_header; /* this is the commit frame's page */
    f->commit_header = is_commit_header(data, amt);
    int rc = buffer_write(f, data, amt, at);
    if (rc == SQLITE_OK && ends_commit)
        rc = flush(f);
    return rc;
}

static int wal_close(sqlite3_file *file)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    int close_rc = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : close_rc;
}

static int wal_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 at)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, data, amt, at);
}

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *file, int flags)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wal_lock(sqlite3_file *file, int level)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int wal_unlock(sqlite3_file *file, int level)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int wal_check_reserved(sqlite3_file *file, int *out)
{
    return as_wal(file)->real->pMethods->xCheckReservedLock(as_wal(file)->real, out);
}

static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    struct walbuf_file *f = as_wal(file);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wal_sector_size(sqlite3_file *file)
{
    return as_wal(file)->real->pMethods->xSectorSize(as_wal(file)->real);
}

static int wal_device_characteristics(sqlite3_file *file)
{
    return as_wal(file)->real->pMethods->xDeviceCharacteristics(as_wal(file)->real);
}

/* Version 1: SQLite maps no -wal file into memory and keeps no shared
 * memory on it (that is the -shm file, through the database file). */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device_characteristics,
};

static int walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
    struct walbuf_file *f = as_wal(file);
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    f->real->pMethods = NULL;
    int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods) /* SQLite closes only what has methods: ours are unset */
            f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

/* The copy keeps the default VFS's other methods and its pAppData (the
 * unix VFS's methods read nothing else of the VFS they are given). */
static void walbuf_register(void)
{
    base_vfs = sqlite3_vfs_find(NULL);
    if (!base_vfs)
        return;
    walbuf_vfs = *base_vfs;
    walbuf_vfs.pNext = NULL;
    walbuf_vfs.zName = WALBUF_VFS;
    walbuf_vfs.szOsFile = (int)sizeof(struct walbuf_file) + base_vfs->szOsFile;
    walbuf_vfs.xOpen = walbuf_open;
    if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK)
        base_vfs = NULL;
}

const char *walbuf_vfs_name(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, walbuf_register);
    return base_vfs ? WALBUF_VFS : NULL;
}
