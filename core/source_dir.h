/* source_dir.h - the directory trigger source: inotify watches over one or
 * more folder trees, reporting each file once it is complete.
 *
 * Complete means closed after writing (IN_CLOSE_WRITE) or moved in
 * (IN_MOVED_TO); hidden and temporary names are never reported. Subfolders
 * are followed, including ones created later. A scan (at start, for a new
 * subfolder, after an inotify queue overflow) reports files already there,
 * skipping any still open for writing: their close will be reported. The
 * same file may be reported more than once; the journal recognises it.
 * Scans run in bounded slices on the loop's turns (memory does not grow
 * with the number of files). A watched folder that is deleted or moved
 * away is watched (and scanned) again once it is back.
 */
#ifndef SLUICE_SOURCE_DIR_H
#define SLUICE_SOURCE_DIR_H

#include <stdbool.h>
#include <sys/stat.h>

#include "err.h"

struct loop;
struct source_dir;

/* path is absolute-or-as-configured folder + "/" + relative name. live: an
 * inotify event named it (false: a scan found it, maybe again). */
typedef void (*source_dir_fn)(void *arg, const char *path, const struct stat *st, bool live);

int source_dir_new(struct loop *l, source_dir_fn fn, void *arg, struct source_dir **out,
                   struct err *e);
/* Watch a folder (created if missing). No files are reported until a scan. */
int source_dir_add(struct source_dir *s, const char *dir, bool recursive, struct err *e);
/* Report every complete file under every watched folder: starts a scan
 * that runs in slices on the following loop turns. */
void source_dir_scan(struct source_dir *s);
/* Is a scan still going? */
bool source_dir_scanning(const struct source_dir *s);
/* Stop (true) or resume reading events and scanning: while the database
 * cannot keep up, files wait in the folder (and inotify's queue; an
 * overflow is followed by a rescan), not in memory. Call it from the loop
 * thread between turns, not from a loop callback. */
void source_dir_pause(struct source_dir *s, bool pause);
/* Is the kernel's queue of unread events deep (SOURCE_DIR_DEEP_BYTES; an
 * overflow, at fs.inotify.max_queued_events, costs a rescan)? Then a pause
 * that only keeps a burst on the fast path should end. */
#define SOURCE_DIR_DEEP_BYTES (256 * 1024)
bool source_dir_queue_deep(const struct source_dir *s);
void source_dir_free(struct source_dir **s);

#endif
