/* walbuf.c - a SQLite VFS that writes a transaction's WAL frames with one
 * write instead of two per page (see walbuf.h).
 *
 * SQLite appends each frame to the -wal file as two writes, its 24-byte
 * header and then its page. A commit of one event's rows dirties 7 to 10
 * pages (two tables, their indexes), so 14 to 20 pwrite calls; on the
 * virtual machines sluice is measured on, a system call costs microseconds
 * (docs/benchmarks.md), and these were most of a lone commit's time.
 *
 * This VFS is the default one, except for -wal files: a write that starts
 * exactly where the file's previous write ended joins a buffer; any other
 * write (the WAL header, a frame rewritten in place, a checksum fixed after
 * the fact) goes to the file at once, after the buffer. The buffer goes to
 * the file
 *  - right after the page of a commit frame (a frame header whose "database
 *    size after the commit" is not zero), before SQLite syncs the file or
 *    publishes the new frames in the wal-index, which is the only way
 *    another connection learns that they exist;
 *  - before any other operation on the file (read, sync, size, truncate,
 *    lock, file control, close), so that SQLite never finds the file
 *    without a write it made;
 *  - before the connection gives up the WAL's write lock (the database
 *    file's shared-memory unlock is wrapped for this): frames a rolled-back
 *    transaction spilled must not land after another connection has
 *    written at the same offsets;
 *  - when it would overflow.
 * So writes reach the file in the order SQLite made them, all of them
 * while the connection is still the WAL's only writer, and every frame a
 * reader can know of is in it; what a crash can find missing belongs to a
 * transaction that had not committed (SQLite ignores such frames).
 *
 * A database file without "powersafe overwrite" makes SQLite pad commits
 * to a sector with copies of the commit frame, written in pieces around a
 * sync: its -wal file is not buffered at all. Other files (temporary files,
 * the -shm file) are the default VFS's, untouched; the database file is the
 * default VFS's with only its shared-memory lock wrapped. Files are opened
 * straight into the file object SQLite gives, so the default VFS's methods
 * work on them as ever.
 *
 * One connection uses a file at a time (SQLite's rule); the list of open
 * -wal files that the lock wrapper searches has a mutex of its own.
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
#define FRAME_HEADER 24  /* a WAL frame's header; its bytes 4..7: db size if it commits */
#define WAL_WRITE_LOCK 0 /* the wal-index lock a writer holds (SQLite's wal.c) */
#define MAX_DB_METHODS 8 /* distinct io_methods tables the default VFS hands out */

struct walbuf_file {
    sqlite3_file base;         /* pMethods: wal_methods */
    sqlite3_file *real;        /* the default VFS's file, right after this struct */
    sqlite3_file *db;          /* its database file (whose write unlock flushes this) */
    struct walbuf_file *next;  /* in open_wals */
    unsigned char *buf;        /* sqlite3_malloc'd at the first write that can use it */
    int len;
    sqlite3_int64 at;          /* the file offset of buf[0] */
    sqlite3_int64 end;         /* where the last write ended; -1 before the first */
    bool commit_header;        /* the last write was a commit frame's header */
    bool direct;               /* never buffer (see the top of the file) */
};
_Static_assert(sizeof(struct walbuf_file) % 8 == 0, "the real file after it stays aligned");

/* A database file's methods: the default VFS's, with xShmLock wrapped. */
struct db_methods {
    const sqlite3_io_methods *real;
    sqlite3_io_methods ours;
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs walbuf_vfs;
static const sqlite3_io_methods wal_methods;
static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER; /* the two below */
static struct walbuf_file *open_wals;
static struct db_methods db_methods[MAX_DB_METHODS];
static int n_db_methods;

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
    bool follows = f->end >= 0 && at == f->end;
    f->end = at + amt;
    int rc = SQLITE_OK;
    if (!follows || f->len + amt > WALBUF_BYTES)
        rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (f->direct || !follows || amt > WALBUF_BYTES ||
        (!f->buf && !(f->buf = sqlite3_malloc(WALBUF_BYTES))))
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

static void unlist(struct walbuf_file *f)
{
    pthread_mutex_lock(&registry);
    for (struct walbuf_file **p = &open_wals; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    pthread_mutex_unlock(&registry);
}

static int wal_close(sqlite3_file *file)
{
    struct walbuf_file *f = as_wal(file);
    unlist(f);
    int rc = flush(f);
    int close_rc = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : close_rc;
}

/* The default VFS's file, once the buffer is in it; NULL (and *rc why) if
 * that write failed. Every operation but a write goes through here. */
static sqlite3_file *flushed(sqlite3_file *file, int *rc)
{
    *rc = flush(as_wal(file));
    return *rc == SQLITE_OK ? as_wal(file)->real : NULL;
}

static int wal_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 at)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xRead(real, data, amt, at) : rc;
}

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xTruncate(real, size) : rc;
}

static int wal_sync(sqlite3_file *file, int flags)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xSync(real, flags) : rc;
}

static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xFileSize(real, size) : rc;
}

static int wal_lock(sqlite3_file *file, int level)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xLock(real, level) : rc;
}

static int wal_unlock(sqlite3_file *file, int level)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xUnlock(real, level) : rc;
}

static int wal_check_reserved(sqlite3_file *file, int *out)
{
    return as_wal(file)->real->pMethods->xCheckReservedLock(as_wal(file)->real, out);
}

static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    int rc;
    sqlite3_file *real = flushed(file, &rc);
    return real ? real->pMethods->xFileControl(real, op, arg) : rc;
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

/* The database file's shared-memory lock: before the WAL's write lock is
 * given up, the frames of this connection still buffered go to the file. */
static int db_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    const struct db_methods *m =
        (const struct db_methods *)((const char *)file->pMethods - offsetof(struct db_methods, ours));
    int rc = SQLITE_OK;
    if (offset == WAL_WRITE_LOCK && (flags & SQLITE_SHM_UNLOCK) && (flags & SQLITE_SHM_EXCLUSIVE)) {
        pthread_mutex_lock(&registry);
        for (struct walbuf_file *f = open_wals; f; f = f->next)
            if (f->db == file && rc == SQLITE_OK)
                rc = flush(f);
        pthread_mutex_unlock(&registry);
    }
    int unlock_rc = m->real->xShmLock(file, offset, n, flags);
    return rc != SQLITE_OK ? rc : unlock_rc;
}

/* Registry held: the wrapped copy of real (one per distinct table). */
static const sqlite3_io_methods *wrapped(const sqlite3_io_methods *real)
{
    for (int i = 0; i < n_db_methods; i++)
        if (db_methods[i].real == real)
            return &db_methods[i].ours;
    if (n_db_methods == MAX_DB_METHODS)
        return NULL;
    struct db_methods *m = &db_methods[n_db_methods++];
    m->real = real;
    m->ours = *real;
    m->ours.xShmLock = db_shm_lock;
    return &m->ours;
}

static int open_db_file(sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    int rc = base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
    if (rc != SQLITE_OK || !file->pMethods || file->pMethods->iVersion < 2 ||
        !file->pMethods->xShmLock)
        return rc;
    pthread_mutex_lock(&registry);
    const sqlite3_io_methods *ours = wrapped(file->pMethods);
    pthread_mutex_unlock(&registry);
    if (ours) /* else its write lock is not guarded: its -wal file is not buffered */
        file->pMethods = ours;
    return SQLITE_OK;
}

static int open_wal_file(sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    struct walbuf_file *f = as_wal(file);
    memset(f, 0, sizeof *f);
    f->end = -1;
    f->real = (sqlite3_file *)(f + 1);
    f->real->pMethods = NULL;
    int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods) /* SQLite closes only what has methods: ours are unset */
            f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->db = sqlite3_database_file_object(name);
    f->direct = !f->db || !f->db->pMethods || f->db->pMethods->xShmLock != db_shm_lock ||
                !(f->db->pMethods->xDeviceCharacteristics(f->db) &
                  SQLITE_IOCAP_POWERSAFE_OVERWRITE);
    f->base.pMethods = &wal_methods;
    pthread_mutex_lock(&registry);
    f->next = open_wals;
    open_wals = f;
    pthread_mutex_unlock(&registry);
    return SQLITE_OK;
}

static int walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    if (flags & SQLITE_OPEN_WAL)
        return open_wal_file(name, file, flags, out_flags);
    if (flags & SQLITE_OPEN_MAIN_DB)
        return open_db_file(name, file, flags, out_flags);
    return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
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
