/* files_fs.c - confined moves, copies and deletes (see files_fs.h). */
#include "files_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MAX_RENAMES 10000       /* name-1 ... name-9999, then give up */

static int fail(struct fs_error *e, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct fs_error *e, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->type = type;
    return -1;
}

/* --- allowed folders --------------------------------------------------- */

void fs_allow_release(struct fs_allow *a)
{
    for (size_t i = 0; a->real && i < a->n; i++)
        free(a->real[i]);
    free(a->real);
    free(a->given);
    memset(a, 0, sizeof *a);
}

int fs_allow_init(struct fs_allow *a, const char *const *given, size_t n, struct fs_error *e)
{
    memset(a, 0, sizeof *a);
    a->real = calloc(n ? n : 1, sizeof *a->real);
    a->given = calloc(n ? n : 1, sizeof *a->given);
    if (!a->real || !a->given) {
        fs_allow_release(a);
        return fail(e, "InternalError", "out of memory");
    }
    a->n = n;
    for (size_t i = 0; i < n; i++) {
        a->given[i] = (char *)given[i];
        a->real[i] = realpath(given[i], NULL);
        struct stat st;
        if (!a->real[i] || stat(a->real[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
            int saved = a->real[i] ? ENOTDIR : errno;
            fs_allow_release(a);
            return fail(e, "ConfigError", "config.allow[%zu] \"%s\": %s (it must be an existing "
                        "folder; a relative path starts from the daemon's working folder)", i,
                        given[i], strerror(saved));
        }
    }
    return 0;
}

/* Length of the allowed folder root that contains dir, or 0 if none. */
static size_t under(const char *root, const char *dir)
{
    size_t len = strlen(root);
    if (len == 1 && root[0] == '/')
        return dir[0] == '/' ? 1 : 0;
    if (strncmp(root, dir, len) != 0 || (dir[len] != '\0' && dir[len] != '/'))
        return 0;
    return len;
}

/* The folders of a, as "a", "b" and "c", for messages. */
static void allow_list(const struct fs_allow *a, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < a->n && o < len; i++) {
        int w = snprintf(out + o, len - o, "%s\"%s\"", i == 0 ? "" : i + 1 == a->n ? " and " : ", ",
                         a->given[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* Open dir below the folder fd, one component at a time, never following a
 * symbolic link. Consumes fd. Returns the new descriptor or -1 (errno). */
static int walk(int fd, const char *rel, int create)
{
    char part[NAME_MAX + 1];
    while (fd >= 0 && *rel) {
        size_t len = strcspn(rel, "/");
        if (len > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, rel, len);
        part[len] = '\0';
        rel += len;
        while (*rel == '/')
            rel++;
        if (len == 0)
            continue;
        if (create && mkdirat(fd, part, 0755) < 0 && errno != EEXIST) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        int next = openat(fd, part, DIR_FLAGS);
        int saved = errno;
        struct stat st;
        /* O_DIRECTORY on a symbolic link says ENOTDIR: name the real cause */
        if (next < 0 && saved == ENOTDIR && fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            saved = ELOOP;
        close(fd);
        errno = saved;
        fd = next;
    }
    return fd;
}

/* --- sources ----------------------------------------------------------- */

void fs_source_release(struct fs_source *s)
{
    if (s->dirfd >= 0)
        close(s->dirfd);
    s->dirfd = -1;
}

int fs_source_open(const struct fs_allow *a, const char *path, const char *verb,
                   struct fs_source *s, struct fs_error *e)
{
    memset(s, 0, sizeof *s);
    s->dirfd = -1;
    size_t plen = strlen(path);
    if (plen == 0 || plen >= PATH_MAX)
        return fail(e, "InvalidEvent", "the file path is %s", plen ? "too long" : "empty");
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return fail(e, "InvalidEvent", "\"%s\" does not name a file", path);
    if (strlen(name) > NAME_MAX)
        return fail(e, "InvalidEvent", "the file name in %s is too long", path);
    snprintf(s->name, sizeof s->name, "%s", name);

    if (!realpath(dir, s->dir)) {
        if (errno == ENOENT)
            return fail(e, "FileNotFound", "cannot %s %s: its folder no longer exists", verb,
                        path);
        return fail(e, "FileError", "cannot %s %s: %s", verb, path, strerror(errno));
    }
    size_t best = 0, root = 0;
    int found = 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t len = under(a->real[i], s->dir);
        if (len > 0 && (!found || len > best)) {
            best = len;
            root = i;
            found = 1;
        }
    }
    if (!found) {
        char list[1024];
        allow_list(a, list, sizeof list);
        return fail(e, "PathNotAllowed", "refusing to %s %s: its folder %s is outside %s (%s)",
                    verb, path, s->dir, a->named ? a->named : "the folders in config.allow",
                    list);
    }
    s->subdir = s->dir + best;
    while (*s->subdir == '/')
        s->subdir++;
    if (snprintf(s->path, sizeof s->path, "%s%s%s", s->dir, strcmp(s->dir, "/") ? "/" : "",
                 s->name) >= (int)sizeof s->path)
        return fail(e, "InvalidEvent", "the path %s is too long", path);

    int fd = open(a->real[root], DIR_FLAGS);
    if (fd >= 0)
        fd = walk(fd, s->subdir, 0);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return fail(e, "PathNotAllowed", "refusing to %s %s: its folder changed while it "
                        "was checked (replaced by a symbolic link?)", verb, path);
        return fail(e, "FileError", "cannot open the folder %s: %s", s->dir, strerror(errno));
    }
    s->dirfd = fd;
    struct stat st;
    if (fstatat(fd, s->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int saved = errno;
        fs_source_release(s);
        if (saved == ENOENT)
            return fail(e, "FileNotFound", "cannot %s %s: it no longer exists (moved or deleted "
                        "before the step ran)", verb, s->path);
        return fail(e, "FileError", "cannot %s %s: %s", verb, s->path, strerror(saved));
    }
    if (S_ISLNK(st.st_mode)) {
        fs_source_release(s);
        if (a->named)
            return fail(e, "PathNotAllowed", "refusing to %s %s: it is a symbolic link (a link "
                        "can point outside the allowed folders)", verb, s->path);
        return fail(e, "PathNotAllowed", "refusing to %s %s: it is a symbolic link, and files.%s "
                    "acts on regular files only (a link can point outside the allowed folders)",
                    verb, s->path, verb);
    }
    if (!S_ISREG(st.st_mode)) {
        fs_source_release(s);
        return fail(e, "FileError", "refusing to %s %s: it is not a regular file", verb,
                    s->path);
    }
    s->size = (uint64_t)st.st_size;
    s->mode = st.st_mode;
    return 0;
}

int fs_folders_from_config(const sl_host *h, const sl_json *value, struct fs_folders *f,
                           char *err, size_t errlen)
{
    int one = h->json_type(value) == SL_JSON_STRING;
    size_t n = one ? 1 : h->json_size(value);
    memset(f, 0, sizeof *f);
    if (n > FS_FOLDERS_MAX) {
        snprintf(err, errlen, "config.allow lists %zu folders, at most %d", n, FS_FOLDERS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = h->json_string(one ? value : h->json_at(value, i));
        if (!s || !*s) {
            snprintf(err, errlen, "config.allow[%zu] must be a folder name", i);
            return -1;
        }
        if (!(f->v[f->n] = strdup(s))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        f->n++;
    }
    return 0;
}

void fs_folders_free(struct fs_folders *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    f->n = 0;
}

int fs_read_open(const char *folder, const struct fs_folders *allow, const char *path,
                 struct fs_error *e)
{
    const char *given[FS_FOLDERS_MAX + 1];
    size_t k = 0;
    if (folder)
        given[k++] = folder;
    for (size_t i = 0; i < allow->n; i++)
        given[k++] = allow->v[i];
    if (k == 0)
        return fail(e, "PathNotAllowed", "refusing to read %s: the pipeline has no trigger "
                    "folder and config.allow names none", path);
    struct fs_allow a;
    if (fs_allow_init(&a, given, k, e) < 0)
        return -1;
    a.named = "the trigger folder and config.allow";
    struct fs_source s;
    int fd = -1;
    if (fs_source_open(&a, path, "read", &s, e) == 0) {
        fd = openat(s.dirfd, s.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            fail(e, "FileError", "cannot open %s: %s", s.path, strerror(errno));
        fs_source_release(&s);
    }
    fs_allow_release(&a);
    if (fd < 0 && strcmp(e->type, "FileNotFound") == 0)
        e->type = "FileError"; /* what checksum and thumbnail have always called it */
    return fd;
}

/* --- transfers --------------------------------------------------------- */

/* The index-th candidate name: name itself, then "stem-1.ext", ... */
static int candidate(const char *name, unsigned index, char out[NAME_MAX + 1])
{
    if (index == 0)
        return snprintf(out, NAME_MAX + 1, "%s", name) <= NAME_MAX ? 0 : -1;
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        dot = name + strlen(name);
    int n = snprintf(out, NAME_MAX + 1, "%.*s-%u%s", (int)(dot - name), name, index, dot);
    return n >= 0 && n <= NAME_MAX ? 0 : -1;
}

/* Give tmp (in dstfd) its final name: the first free candidate, or name
 * itself replacing what is there. Returns 0 with the name in final, or -1
 * with errno (EEXIST when taken and not renaming). */
static int place(int srcfd, const char *src, int dstfd, const char *name, enum fs_exists exists,
                 int link_then_unlink, char final[NAME_MAX + 1])
{
    for (unsigned i = 0; i < MAX_RENAMES; i++) {
        if (candidate(name, i, final) < 0) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int rc;
        if (exists == FS_EXISTS_OVERWRITE) {
            rc = renameat(srcfd, src, dstfd, final);
        } else if (!link_then_unlink) {
            rc = renameat2(srcfd, src, dstfd, final, RENAME_NOREPLACE);
            if (rc < 0 && errno == EINVAL)
                return -2; /* the file system cannot: retry with links */
        } else {
            rc = linkat(srcfd, src, dstfd, final, 0);
            if (rc == 0)
                unlinkat(srcfd, src, 0);
        }
        if (rc == 0)
            return 0;
        if (errno != EEXIST || exists != FS_EXISTS_RENAME)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

static int place_any(int srcfd, const char *src, int dstfd, const char *name,
                     enum fs_exists exists, char final[NAME_MAX + 1])
{
    int rc = place(srcfd, src, dstfd, name, exists, 0, final);
    if (rc == -2)
        rc = place(srcfd, src, dstfd, name, exists, 1, final);
    return rc;
}

/* Copy the open file in to out; -1 with errno, or ETIME when expired. */
static int copy_data(int in, int out, fs_expired_fn expired, void *arg)
{
    int use_range = 1;
    char buf[1 << 16];
    for (;;) {
        if (expired && expired(arg)) {
            errno = ETIME;
            return -1;
        }
        ssize_t n;
        if (use_range) {
            n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP || errno == EPERM)) {
                use_range = 0;
                continue;
            }
        } else {
            n = read(in, buf, sizeof buf);
            for (ssize_t done = 0; n > 0 && done < n;) {
                ssize_t w = write(out, buf + done, (size_t)(n - done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return -1;
                done += w;
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
    }
}

/* A hidden temporary file in dstfd: ".NAME.sluice-XXXXXX". */
static int make_temp(int dstfd, const char *name, char tmp[NAME_MAX + 1])
{
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned salt = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16) ^
                        __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 2654435761u;
        int keep = NAME_MAX - 16;
        snprintf(tmp, NAME_MAX + 1, ".%.*s.sluice-%06x", keep, name, salt & 0xffffff);
        int fd = openat(dstfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Copy s to a temporary file in dstfd and give it its final name. */
static int copy_into(struct fs_source *s, int dstfd, const char *dstdir, enum fs_exists exists,
                     fs_expired_fn expired, void *arg, char final[NAME_MAX + 1],
                     struct fs_error *e)
{
    int in = openat(s->dirfd, s->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (in < 0) {
        if (errno == ELOOP)
            return fail(e, "PathNotAllowed", "refusing to copy %s: it became a symbolic link",
                        s->path);
        return fail(e, errno == ENOENT ? "FileNotFound" : "FileError", "cannot read %s: %s",
                    s->path, strerror(errno));
    }
    struct stat st;
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return fail(e, "FileError", "refusing to copy %s: it is no longer a regular file",
                    s->path);
    }
    char tmp[NAME_MAX + 1];
    int out = make_temp(dstfd, s->name, tmp);
    if (out < 0) {
        int saved = errno;
        close(in);
        return fail(e, "DestinationError", "cannot create a file in %s: %s (check config.to "
                    "and its permissions)", dstdir, strerror(saved));
    }
    int rc = copy_data(in, out, expired, arg);
    int saved = errno;
    if (rc == 0) {
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (fchmod(out, st.st_mode & 0777) < 0 || futimens(out, times) < 0 || fsync(out) < 0) {
            rc = -1;
            saved = errno;
        }
    }
    if (close(out) < 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    close(in);
    if (rc < 0) {
        unlinkat(dstfd, tmp, 0);
        if (saved == ETIME)
            return fail(e, "Sandbox.Timedout", "copying %s to %s did not finish before the step's "
                        "deadline; raise the step's timeout_ms", s->path, dstdir);
        return fail(e, "DestinationError", "cannot copy %s to %s: %s", s->path, dstdir,
                    strerror(saved));
    }
    s->size = (uint64_t)st.st_size;
    if (place_any(dstfd, tmp, dstfd, s->name, exists, final) < 0) {
        saved = errno;
        unlinkat(dstfd, tmp, 0);
        if (saved == EEXIST)
            return fail(e, "DestinationExists", "%s/%s already exists and config.if_exists is "
                        "\"fail\"", dstdir, s->name);
        return fail(e, "DestinationError", "cannot create %s/%s: %s", dstdir, s->name,
                    strerror(saved));
    }
    return 0;
}

int fs_transfer(struct fs_source *s, const char *to, int keep_subfolders, int copy,
                enum fs_exists exists, fs_expired_fn expired, void *arg, char dest[PATH_MAX],
                struct fs_error *e)
{
    const char *verb = copy ? "copy" : "move";
    char to_real[PATH_MAX], dstdir[PATH_MAX];
    if (mkdir(to, 0755) < 0 && errno == ENOENT) {
        /* mkdir -p */
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", to);
        for (char *p = buf + 1; *p; p++) {
            if (*p == '/') {
                *p = '\0';
                mkdir(buf, 0755);
                *p = '/';
            }
        }
        mkdir(buf, 0755);
    }
    if (!realpath(to, to_real))
        return fail(e, "DestinationError", "cannot create or open the destination folder "
                    "config.to \"%s\": %s", to, strerror(errno));
    int fd = open(to_real, DIR_FLAGS);
    const char *sub = keep_subfolders ? s->subdir : "";
    if (fd >= 0)
        fd = walk(fd, sub, 1);
    if (fd < 0) {
        if (errno == ELOOP)
            return fail(e, "PathNotAllowed", "refusing to %s into %s/%s: a folder there is a "
                        "symbolic link", verb, to_real, sub);
        return fail(e, "DestinationError", "cannot open the destination folder %s%s%s: %s",
                    to_real, *sub ? "/" : "", sub, strerror(errno));
    }
    if (snprintf(dstdir, sizeof dstdir, "%s%s%s", to_real, *sub ? "/" : "", sub) >=
        (int)sizeof dstdir) {
        close(fd);
        return fail(e, "DestinationError", "the destination path %s/%s is too long", to_real,
                    sub);
    }

    struct stat a, b;
    if (fstat(fd, &a) == 0 && fstat(s->dirfd, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino && (!copy || exists == FS_EXISTS_OVERWRITE)) {
        close(fd);
        return fail(e, "ConfigError", "refusing to %s %s onto itself: it is already in the "
                    "destination folder %s (config.to)", verb, s->path, dstdir);
    }

    char final[NAME_MAX + 1];
    int rc = 0;
    if (copy) {
        rc = copy_into(s, fd, dstdir, exists, expired, arg, final, e);
    } else if (place_any(s->dirfd, s->name, fd, s->name, exists, final) < 0) {
        if (errno == EXDEV || errno == EPERM) {
            /* another file system (or no hard links): copy, then remove */
            rc = copy_into(s, fd, dstdir, exists, expired, arg, final, e);
            if (rc == 0 && unlinkat(s->dirfd, s->name, 0) < 0)
                rc = fail(e, "FileError", "copied %s to %s/%s but cannot remove the source: %s",
                          s->path, dstdir, final, strerror(errno));
        } else if (errno == EEXIST) {
            rc = fail(e, "DestinationExists", "%s/%s already exists and config.if_exists is "
                      "\"fail\"", dstdir, s->name);
        } else if (errno == ENOENT) {
            rc = fail(e, "FileNotFound", "cannot move %s: it no longer exists", s->path);
        } else {
            rc = fail(e, "DestinationError", "cannot move %s to %s: %s", s->path, dstdir,
                      strerror(errno));
        }
    }
    if (rc == 0) {
        fsync(fd); /* the new name is durable before the step reports it */
        if (snprintf(dest, PATH_MAX, "%s/%s", dstdir, final) >= PATH_MAX)
            dest[0] = '\0';
    }
    close(fd);
    return rc;
}

int fs_delete(struct fs_source *s, struct fs_error *e)
{
    if (unlinkat(s->dirfd, s->name, 0) < 0) {
        if (errno == ENOENT)
            return fail(e, "FileNotFound", "cannot delete %s: it no longer exists", s->path);
        return fail(e, "FileError", "cannot delete %s: %s", s->path, strerror(errno));
    }
    fsync(s->dirfd);
    return 0;
}
