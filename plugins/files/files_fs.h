/* files_fs.h - the file-system half of the files plugin: resolving a path
 * inside a set of allowed folders without following a symbolic link out of
 * them, and moving, copying and deleting through directory descriptors.
 *
 * Every path is resolved once (realpath of its folder, then a prefix check
 * against the allowed folders' own real paths) and then reached again by
 * walking from the allowed folder's descriptor one component at a time with
 * O_NOFOLLOW, so a folder swapped for a symbolic link between the check and
 * the action makes the action fail instead of escaping. The file itself is
 * never followed either: a symbolic link is refused, and copies open the
 * source with O_NOFOLLOW.
 */
#ifndef FILES_FS_H
#define FILES_FS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sluice/handler.h>

#define FS_MSG_MAX (2 * PATH_MAX + 512)
#define FS_FOLDERS_MAX 64

/* What went wrong: an error type for sl_host.fail and a message. */
struct fs_error {
    const char *type;
    char msg[FS_MSG_MAX];
};

/* Folders as a step's config names them (config.allow), copied. */
struct fs_folders {
    char *v[FS_FOLDERS_MAX];
    size_t n;
};

/* Copy value (a string or an array of strings: the host checked that
 * against SL_CONFIG_STRINGS) into f. -1 with a message in err for more than
 * FS_FOLDERS_MAX folders, an empty name, or no memory. */
int fs_folders_from_config(const sl_host *h, const sl_json *value, struct fs_folders *f,
                           char *err, size_t errlen);
void fs_folders_free(struct fs_folders *f);

/* The allowed folders, resolved. */
struct fs_allow {
    size_t n;
    char **real;                /* real paths, no trailing slash */
    char **given;               /* as the config wrote them, for messages */
    const char *named;          /* how messages name them; NULL: "the folders in config.allow" */
};

/* A source file resolved inside an allowed folder, its folder held open. */
struct fs_source {
    int dirfd;                  /* the file's folder */
    char dir[PATH_MAX];         /* its real path */
    char name[NAME_MAX + 1];    /* the file's name in it */
    char path[PATH_MAX];        /* dir/name */
    const char *subdir;         /* dir below the allowed folder ("" if none), into dir */
    uint64_t size;
    mode_t mode;
};

/* What to do when the destination name is taken. */
enum fs_exists { FS_EXISTS_RENAME, FS_EXISTS_OVERWRITE, FS_EXISTS_FAIL };

/* Resolve each folder of given (n of them) with realpath. -1 with e
 * filled ("ConfigError") if one cannot be resolved. */
int fs_allow_init(struct fs_allow *a, const char *const *given, size_t n, struct fs_error *e);
void fs_allow_release(struct fs_allow *a);

/* Resolve path (absolute, or relative to the working folder) to a regular
 * file inside one of a's folders; on success s->dirfd is open (close it
 * with fs_source_release). -1 with e filled otherwise. verb names the
 * action in messages ("move"). */
int fs_source_open(const struct fs_allow *a, const char *path, const char *verb,
                   struct fs_source *s, struct fs_error *e);
void fs_source_release(struct fs_source *s);

/* Open path for reading, confined as fs_source_open confines: inside the
 * trigger folder (NULL: none) or one of allow's. Returns the descriptor
 * (O_RDONLY, O_NOFOLLOW, O_NONBLOCK, close-on-exec), or -1 with e filled.
 * checksum and thumbnail read files named in events through this. */
int fs_read_open(const char *folder, const struct fs_folders *allow, const char *path,
                 struct fs_error *e);

/* Callback telling a long copy to stop: returns non-zero when the step's
 * deadline has passed. */
typedef int (*fs_expired_fn)(void *arg);

/* Move or copy s into folder to (created if missing), below s->subdir
 * there when keep_subfolders. The final path is written to dest. */
int fs_transfer(struct fs_source *s, const char *to, int keep_subfolders, int copy,
                enum fs_exists exists, fs_expired_fn expired, void *arg, char dest[PATH_MAX],
                struct fs_error *e);

/* Delete s. */
int fs_delete(struct fs_source *s, struct fs_error *e);

#endif
