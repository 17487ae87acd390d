/* walbuf.h - the SQLite VFS sluice's writable connections open their
 * database with: the default VFS, except that a transaction's WAL frames
 * reach the -wal file in one write instead of two per page (walbuf.c says
 * why and when a write reaches the file).
 */
#ifndef SLUICE_WALBUF_H
#define SLUICE_WALBUF_H

/* Register the VFS (once per process; later calls return its name again).
 * Returns the name to pass to sqlite3_open_v2, or NULL if SQLite has no
 * default VFS to wrap or the registration failed (open with the default
 * VFS then: only slower). */
const char *walbuf_vfs_name(void);

#endif
