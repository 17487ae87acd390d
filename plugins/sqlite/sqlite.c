/* sqlite.c - the sqlite plugin: one configured, parametrized SQL statement
 * against a SQLite database, its rows answered as JSON, the analogue of
 * the "scan UsersTable" DynamoDB example.
 *
 * Design: parameters are values taken from the event by JSON pointer and
 * bound with sqlite3_bind_*, never pasted into the SQL text. The database
 * is opened read-only (SQLITE_OPEN_READONLY) unless the config says
 * "write": true, and a statement that would change it is refused at
 * prepare time. Each step's instance (create, from its config) keeps a
 * small pool of open connections with the statement prepared, so a step
 * prepares once and then only binds, steps and resets; under "thread"
 * isolation several threads may run the same step at once, each with a
 * connection of its own. The statement's deadline is the step's: a progress
 * handler interrupts a long query and the busy timeout is the time left.
 * Rows go straight into the response through the host's JSON writer (no
 * tree); an integer a double cannot hold exactly is written as a string of
 * its digits rather than rounded.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <sluice/handler.h>


#define MAX_PARAMS 256
#define MAX_CONNS 32            /* idle connections beyond this are closed, oldest first */
#define MAX_SCRIPT_BYTES (64 << 20)
#define MSG_MAX 2048

struct sq_config {
    char *database;
    char *sql;
    char *create_from;          /* NULL if absent */
    char *params[MAX_PARAMS];
    size_t n_params;
    int write;
    long max_rows;
};

struct sq_conn {
    struct sq_conn *next;
    int busy;
    uint64_t last_used;
    dev_t dev;                  /* the database file this connection opened */
    ino_t ino;
    sqlite3 *db;
    sqlite3_stmt *stmt;
    const sl_context *ctx;      /* during a call, for the progress handler */
};

/* One step: its config and its connections. */
struct sq_instance {
    struct sq_config c;
    pthread_mutex_t lock;
    struct sq_conn *conns;
    size_t n;
    uint64_t clock;
};

/* --- lifecycle --------------------------------------------------------- */

static void conn_free(struct sq_conn *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->stmt);
    sqlite3_close(c->db);
    free(c);
}

static void sq_destroy(void *instance)
{
    struct sq_instance *in = instance;
    if (!in)
        return;
    for (struct sq_conn *c = in->conns, *next; c; c = next) {
        next = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&in->lock);
    free(in->c.database);
    free(in->c.sql);
    free(in->c.create_from);
    for (size_t i = 0; i < in->c.n_params; i++)
        free(in->c.params[i]);
    free(in);
}

/* --- config ------------------------------------------------------------ */

static char *copy_of(const char *s, int *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

/* The step's config; the host checked its keys and their types. */
static int read_config(const sl_host *h, const sl_json *cfg, struct sq_config *c, char *err,
                       size_t errlen)
{
    int oom = 0;
    const char *database = h->json_string(h->json_get(cfg, "/database"));
    if (!*database)
        return snprintf(err, errlen, "config.database must name the SQLite database file, e.g. "
                        "\"database\": \"var/app.db\" (a relative path starts from the "
                        "daemon's working folder)"), -1;
    const char *sql = h->json_string(h->json_get(cfg, "/sql"));
    if (!*sql)
        return snprintf(err, errlen, "config.sql must be one SQL statement, with ? (or ?1, "
                        ":name) where values from the event go, e.g. \"sql\": \"SELECT * FROM "
                        "users WHERE id = ?\", \"params\": [\"/id\"]"), -1;
    c->database = copy_of(database, &oom);
    c->sql = copy_of(sql, &oom);
    const sl_json *v = h->json_get(cfg, "/params");
    if (h->json_size(v) > MAX_PARAMS)
        return snprintf(err, errlen, "config.params must be an array of JSON pointers into the "
                        "event (at most %d), e.g. \"params\": [\"/id\"]", MAX_PARAMS), -1;
    for (size_t i = 0; i < h->json_size(v); i++) {
        const char *p = h->json_string(h->json_at(v, i));
        if (!p || (*p && *p != '/'))
            return snprintf(err, errlen, "config.params[%zu] must be a JSON pointer into the "
                            "event, such as \"/id\" or \"/Records/0/s3/object/key\"", i), -1;
        c->params[c->n_params++] = copy_of(p, &oom);
    }
    c->write = h->json_type(h->json_get(cfg, "/write")) == SL_JSON_TRUE;
    const char *create_from = h->json_string(h->json_get(cfg, "/create_from"));
    if (create_from && !*create_from)
        return snprintf(err, errlen, "config.create_from must name a .sql file that creates the "
                        "database when it does not exist"), -1;
    c->create_from = copy_of(create_from, &oom);
    double d = h->json_number(h->json_get(cfg, "/max_rows"), 1000);
    if (!(d >= 1 && d <= 1000000))
        return snprintf(err, errlen, "config.max_rows must be a whole number from 1 to 1000000"),
               -1;
    c->max_rows = (long)d;
    return oom ? snprintf(err, errlen, "out of memory"), -1 : 0;
}

static int sq_create(const sl_host *h, const sl_json *cfg, void **instance, char *err,
                     size_t errlen)
{
    struct sq_instance *in = calloc(1, sizeof *in);
    if (!in)
        return snprintf(err, errlen, "out of memory"), -1;
    pthread_mutex_init(&in->lock, NULL);
    if (read_config(h, cfg, &in->c, err, errlen) < 0) {
        sq_destroy(in);
        return -1;
    }
    *instance = in;
    return 0;
}

/* --- opening ----------------------------------------------------------- */

static const char *working_folder(char *buf, size_t len)
{
    return getcwd(buf, len) ? buf : "(unknown)";
}

static int read_script(const sl_host *h, const char *path, char **out, sl_response *res)
{
    char cwd[PATH_MAX];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return h->failf(res, "ConfigError", "config.create_from \"%s\": %s (a relative path starts "
                     "from the daemon's working folder, %s)", path, strerror(errno),
                     working_folder(cwd, sizeof cwd));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = ncap <= MAX_SCRIPT_BYTES + 65536 * 2 ? realloc(buf, ncap) : NULL;
            if (!nb) {
                rc = h->failf(res, "ConfigError", "config.create_from \"%s\" is too large (at most "
                           "%d MB)", path, MAX_SCRIPT_BYTES >> 20);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, 65536, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp))
                rc = h->failf(res, "ConfigError", "cannot read config.create_from \"%s\": %s", path,
                           strerror(errno));
            break;
        }
    }
    fclose(fp);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

static int mkdirs_for(const char *file)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", file) >= (int)sizeof buf)
        return -1;
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Build the missing database from config.create_from: the script runs on
 * a temporary file beside it, which is then linked into place, so that a
 * half-built database is never seen and two workers racing to create it
 * agree on one. */
static int create_database(const sl_context *ctx, const struct sq_config *c, sl_response *res)
{
    const sl_host *h = ctx->host;
    char *script = NULL, tmp[PATH_MAX];
    if (read_script(h, c->create_from, &script, res) < 0)
        return -1;
    const char *slash = strrchr(c->database, '/');
    int dlen = slash ? (int)(slash - c->database) + 1 : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.create-XXXXXX", dlen, c->database,
                 c->database + dlen) >= (int)sizeof tmp) {
        free(script);
        return h->failf(res, "ConfigError", "config.database \"%s\" is too long", c->database);
    }
    int fd = mkdirs_for(c->database) == 0 ? mkstemp(tmp) : -1;
    if (fd < 0) {
        free(script);
        return h->failf(res, "DatabaseError", "cannot create the database %s: %s (check the folder's "
                     "permissions)", c->database, strerror(errno));
    }
    fchmod(fd, 0644);
    close(fd);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL);
    char *err = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, script, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        h->failf(res, "CreateError", "config.create_from \"%s\" failed on a new database: %s (fix "
              "the script; nothing was created at %s)", c->create_from,
              err ? err : db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), c->database);
    sqlite3_free(err);
    if (sqlite3_close(db) != SQLITE_OK && rc == SQLITE_OK)
        rc = h->failf(res, "CreateError", "cannot close the new database %s", tmp);
    free(script);
    if (rc == SQLITE_OK && link(tmp, c->database) < 0 && errno != EEXIST) {
        /* a file system without hard links: rename (a racing worker's
         * identical database may be replaced, which is harmless) */
        if ((errno != EPERM && errno != EOPNOTSUPP) || rename(tmp, c->database) < 0)
            rc = h->failf(res, "DatabaseError", "cannot create the database %s: %s", c->database,
                       strerror(errno));
    }
    unlink(tmp);
    if (rc != SQLITE_OK)
        return -1;
    h->logf(ctx, SL_LOG_INFO, "created the database %s from %s", c->database, c->create_from);
    return 0;
}

/* Interrupt a statement a little before the deadline, so that the answer
 * (a timeout) still reaches sluice before it gives up on the worker. */
#define DEADLINE_MARGIN_MS 10

static int progress(void *arg)
{
    struct sq_conn *c = arg;
    return c->ctx && c->ctx->host->remaining_ms(c->ctx) <= DEADLINE_MARGIN_MS;
}

/* Wait for another connection's lock until shortly before the deadline,
 * then fail as busy rather than be killed as hung. */
static void set_busy_timeout(sqlite3 *db, const sl_context *ctx)
{
    int64_t left = ctx->host->remaining_ms(ctx);
    left = left > 200 ? left - 100 : left / 2;
    sqlite3_busy_timeout(db, left > INT_MAX ? INT_MAX : (int)left);
}

static int busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Errors that mean the file, not the statement, is the problem. */
static int database_trouble(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT || rc == SQLITE_CANTOPEN ||
           rc == SQLITE_IOERR || rc == SQLITE_PERM || rc == SQLITE_AUTH;
}

/* Open the database and prepare the statement; checks what can be checked
 * before the first row: one statement, read-only unless allowed, as many
 * parameters as config.params, distinct column names. */
static int conn_open(const sl_context *ctx, const struct sq_config *c, struct sq_conn **out,
                     sl_response *res)
{
    const sl_host *h = ctx->host;
    char cwd[PATH_MAX];
    struct stat st;
    if (stat(c->database, &st) < 0) {
        if (errno != ENOENT)
            return h->failf(res, "DatabaseError", "cannot open the database %s: %s", c->database,
                         strerror(errno));
        if (!c->create_from)
            return h->failf(res, "DatabaseNotFound", "the database %s does not exist (a relative path "
                         "starts from the daemon's working folder, %s); create it, or set "
                         "config.create_from to a .sql file that builds it", c->database,
                         working_folder(cwd, sizeof cwd));
        if (create_database(ctx, c, res) < 0)
            return -1;
        if (stat(c->database, &st) < 0)
            return h->failf(res, "DatabaseError", "cannot open the database %s: %s", c->database,
                         strerror(errno));
    }
    struct sq_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return h->failf(res, "InternalError", "out of memory");
    conn->dev = st.st_dev;
    conn->ino = st.st_ino;
    int flags = c->write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    int rc = sqlite3_open_v2(c->database, &conn->db, flags, NULL);
    if (rc != SQLITE_OK) {
        h->failf(res, "DatabaseError", "cannot open the database %s%s: %s", c->database,
              c->write ? "" : " read-only", conn->db ? sqlite3_errmsg(conn->db)
                                                     : sqlite3_errstr(rc));
        conn_free(conn);
        return -1;
    }
    sqlite3_db_config(conn->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    set_busy_timeout(conn->db, ctx); /* preparing reads the schema */
    const char *tail = NULL;
    rc = sqlite3_prepare_v3(conn->db, c->sql, -1, SQLITE_PREPARE_PERSISTENT, &conn->stmt, &tail);
    if (rc != SQLITE_OK) {
        if (busy(rc))
            h->failf(res, "DatabaseBusy", "the database %s stayed locked by another connection until "
                  "shortly before the step's deadline: %s (a retry may succeed)", c->database,
                  sqlite3_errmsg(conn->db));
        else if (database_trouble(rc))
            h->failf(res, "DatabaseError", "cannot read the database %s: %s", c->database,
                  sqlite3_errmsg(conn->db));
        else
            h->failf(res, "ConfigError", "config.sql does not compile against %s: %s", c->database,
                  sqlite3_errmsg(conn->db));
        conn_free(conn);
        return -1;
    }
    if (!conn->stmt) {
        conn_free(conn);
        return h->failf(res, "ConfigError", "config.sql holds no statement (only spaces or comments)");
    }
    sqlite3_stmt *more = NULL;
    if (tail && *tail && (sqlite3_prepare_v2(conn->db, tail, -1, &more, NULL) != SQLITE_OK ||
                          more)) {
        sqlite3_finalize(more);
        conn_free(conn);
        return h->failf(res, "ConfigError", "config.sql holds more than one statement (the rest "
                     "starts at \"%.60s\"); give each step one statement", tail);
    }
    if (!c->write && !sqlite3_stmt_readonly(conn->stmt)) {
        conn_free(conn);
        return h->failf(res, "ConfigError", "config.sql changes the database, and the step is "
                     "read-only; set \"write\": true in the step's config to allow it");
    }
    int want = sqlite3_bind_parameter_count(conn->stmt);
    if ((size_t)want != c->n_params) {
        conn_free(conn);
        return h->failf(res, "ConfigError", "config.sql has %d parameter%s but config.params lists "
                     "%zu JSON pointer%s; give one pointer per parameter, in order", want,
                     want == 1 ? "" : "s", c->n_params, c->n_params == 1 ? "" : "s");
    }
    int cols = sqlite3_column_count(conn->stmt);
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < i; j++) {
            const char *a = sqlite3_column_name(conn->stmt, i);
            const char *b = sqlite3_column_name(conn->stmt, j);
            if (a && b && strcmp(a, b) == 0) {
                h->failf(res, "ConfigError", "config.sql returns two columns named \"%s\" (columns %d "
                      "and %d); give one an alias with AS so that each row is a JSON object "
                      "with distinct keys", a, j + 1, i + 1);
                conn_free(conn);
                return -1;
            }
        }
    }
    sqlite3_progress_handler(conn->db, 1000, progress, conn);
    *out = conn;
    return 0;
}

/* --- the pool ---------------------------------------------------------- */

static int same_file(const struct sq_conn *c, const char *database)
{
    struct stat st;
    return stat(database, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
}

/* An idle connection of this step, or a new one. *cold is set when the
 * connection was opened by this call. */
static int acquire(struct sq_instance *in, const sl_context *ctx, struct sq_conn **out,
                   int *cold, sl_response *res)
{
    struct sq_conn *found = NULL;
    pthread_mutex_lock(&in->lock);
    for (struct sq_conn *k = in->conns; k && !found; k = k->next) {
        if (!k->busy) {
            found = k;
            found->busy = 1;
        }
    }
    pthread_mutex_unlock(&in->lock);
    if (found && !same_file(found, in->c.database)) {
        /* The file was replaced (or removed): this connection reads the old one. */
        pthread_mutex_lock(&in->lock);
        for (struct sq_conn **pp = &in->conns; *pp; pp = &(*pp)->next) {
            if (*pp == found) {
                *pp = found->next;
                in->n--;
                break;
            }
        }
        pthread_mutex_unlock(&in->lock);
        conn_free(found);
        found = NULL;
    }
    *cold = found == NULL;
    if (found) {
        *out = found;
        return 0;
    }
    struct sq_conn *conn = NULL;
    if (conn_open(ctx, &in->c, &conn, res) < 0)
        return -1;
    conn->busy = 1;
    struct sq_conn *evicted = NULL;
    pthread_mutex_lock(&in->lock);
    conn->next = in->conns;
    in->conns = conn;
    in->n++;
    while (in->n > MAX_CONNS) {
        struct sq_conn **oldest = NULL;
        for (struct sq_conn **pp = &in->conns; *pp; pp = &(*pp)->next)
            if (!(*pp)->busy && (!oldest || (*pp)->last_used < (*oldest)->last_used))
                oldest = pp;
        if (!oldest)
            break;
        struct sq_conn *k = *oldest;
        *oldest = k->next;
        in->n--;
        k->next = evicted;
        evicted = k;
    }
    pthread_mutex_unlock(&in->lock);
    while (evicted) {
        struct sq_conn *next = evicted->next;
        conn_free(evicted);
        evicted = next;
    }
    *out = conn;
    return 0;
}

/* Give conn back; a connection whose database misbehaved is closed. */
static void release(struct sq_instance *in, struct sq_conn *conn, int broken)
{
    pthread_mutex_lock(&in->lock);
    if (broken) {
        for (struct sq_conn **pp = &in->conns; *pp; pp = &(*pp)->next) {
            if (*pp == conn) {
                *pp = conn->next;
                in->n--;
                break;
            }
        }
    } else {
        conn->busy = 0;
        conn->last_used = ++in->clock;
    }
    pthread_mutex_unlock(&in->lock);
    if (broken)
        conn_free(conn);
}

/* --- running ----------------------------------------------------------- */

static int bind_params(const sl_host *h, const sl_context *ctx, const struct sq_config *c,
                       sqlite3_stmt *stmt, sl_response *res)
{
    const sl_json *ev = h->event(ctx);
    for (size_t i = 0; i < c->n_params; i++) {
        const sl_json *v = h->json_get(ev, c->params[i]);
        int idx = (int)i + 1, rc;
        switch (h->json_type(v)) {
        case SL_JSON_STRING:
            rc = sqlite3_bind_text(stmt, idx, h->json_string(v), -1, SQLITE_TRANSIENT);
            break;
        case SL_JSON_NUMBER: {
            double d = h->json_number(v, 0);
            if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
                d == (double)(sqlite3_int64)d)
                rc = sqlite3_bind_int64(stmt, idx, (sqlite3_int64)d);
            else
                rc = sqlite3_bind_double(stmt, idx, d);
            break;
        }
        case SL_JSON_TRUE:
            rc = sqlite3_bind_int(stmt, idx, 1);
            break;
        case SL_JSON_FALSE:
            rc = sqlite3_bind_int(stmt, idx, 0);
            break;
        case SL_JSON_ARRAY:
        case SL_JSON_OBJECT:
            return h->failf(res, "InvalidEvent", "config.params[%zu] \"%s\" points at an %s in the "
                         "event; only strings, numbers, booleans and null can be bound",
                         i, c->params[i], h->json_type(v) == SL_JSON_ARRAY ? "array" : "object");
        default: /* absent or null */
            rc = sqlite3_bind_null(stmt, idx);
            break;
        }
        if (rc != SQLITE_OK)
            return h->failf(res, "InternalError", "cannot bind config.params[%zu]: %s", i,
                         sqlite3_errstr(rc));
    }
    return 0;
}

/* A blob as a base64 JSON string. */
static int write_base64(const sl_host *h, sl_writer *w, const unsigned char *s, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return h->write_string(w, NULL, 0); /* fails the writer */
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? digits[v & 63] : '=';
    }
    int rc = h->write_string(w, out, o);
    free(out);
    return rc;
}

static int write_value(const sl_host *h, sl_writer *w, sqlite3_stmt *stmt, int col)
{
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
        return h->write_int(w, sqlite3_column_int64(stmt, col));
    case SQLITE_FLOAT:
        return h->write_number(w, sqlite3_column_double(stmt, col));
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_column_text(stmt, col);
        return h->write_string(w, s ? s : "", (size_t)sqlite3_column_bytes(stmt, col));
    }
    case SQLITE_BLOB:
        return write_base64(h, w, sqlite3_column_blob(stmt, col),
                            (size_t)sqlite3_column_bytes(stmt, col));
    default:
        return h->write_null(w);
    }
}

/* One row as an object. */
static int write_row(const sl_host *h, sl_writer *w, sqlite3_stmt *stmt, int cols)
{
    h->write_object(w);
    for (int i = 0; i < cols; i++) {
        const char *name = sqlite3_column_name(stmt, i);
        h->write_key(w, name ? name : "", name ? strlen(name) : 0);
        write_value(h, w, stmt, i);
    }
    return h->write_close(w);
}

/* Why the statement stopped, as the failure. */
static int step_failed(const sl_context *ctx, const struct sq_config *c, struct sq_conn *conn,
                       int rc, long count, int oom, sl_response *res)
{
    const sl_host *h = ctx->host;
    const char *why = sqlite3_errmsg(conn->db);
    int code = rc & 0xff;
    if (oom)
        return h->failf(res, "InternalError", "out of memory writing %ld rows (lower "
                        "config.max_rows)", count);
    if (code == SQLITE_INTERRUPT)
        return h->failf(res, "Sandbox.Timedout", "the statement did not finish before the "
                        "step's deadline (after %ld rows); raise the step's timeout_ms or make "
                        "the query cheaper (an index?)", count);
    if (busy(code))
        return h->failf(res, "DatabaseBusy", "the database %s stayed locked by another "
                        "connection until shortly before the step's deadline: %s (a retry may "
                        "succeed)", c->database, why);
    if (code == SQLITE_CONSTRAINT)
        return h->failf(res, "ConstraintError", "%s (database %s)", why, c->database);
    if (database_trouble(rc))
        return h->failf(res, "DatabaseError", "the database %s: %s", c->database, why);
    return h->failf(res, "SQLError", "%s (database %s)", why, c->database);
}

/* Run the prepared statement, its rows written into the response as they
 * come. *broken is set when the connection should not be reused. */
static int execute(const sl_context *ctx, const struct sq_config *c, struct sq_conn *conn,
                   long *count, int *truncated, int *broken, sl_response *res)
{
    const sl_host *h = ctx->host;
    sqlite3_stmt *stmt = conn->stmt;
    set_busy_timeout(conn->db, ctx);
    if (bind_params(h, ctx, c, stmt, res) < 0) {
        sqlite3_clear_bindings(stmt);
        return -1;
    }
    conn->ctx = ctx;
    int cols = sqlite3_column_count(stmt);
    int rc, oom = 0;
    *count = 0;
    *truncated = 0;
    sl_writer *w = h->writer_begin(res);
    h->write_object(w);
    h->write_key(w, "rows", 4);
    h->write_array(w);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*count >= c->max_rows) {
            *truncated = 1;
            rc = SQLITE_DONE;
            break;
        }
        ++*count;
        if ((oom = write_row(h, w, stmt, cols) < 0))
            break;
    }
    conn->ctx = NULL;
    int ok = rc == SQLITE_DONE && !oom;
    if (ok) {
        h->write_close(w);
        h->write_key(w, "count", 5);
        h->write_int(w, *count);
        if (*truncated) {
            h->write_key(w, "truncated", 9);
            h->write_bool(w, 1);
        }
        if (c->write) {
            h->write_key(w, "changes", 7);
            h->write_int(w, sqlite3_changes(conn->db));
            h->write_key(w, "last_insert_rowid", 17);
            h->write_int(w, sqlite3_last_insert_rowid(conn->db));
        }
        h->write_close(w);
        if (h->writer_end(w, 200) < 0)
            ok = 0, oom = 1;
        w = NULL;
    }
    if (!ok) {
        if (w)
            h->writer_end(w, 200); /* incomplete: discarded */
        step_failed(ctx, c, conn, rc, *count, oom, res);
        *broken = database_trouble(rc);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return ok ? 0 : -1;
}

static int sq_query(const sl_event *event, const sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct sq_instance *in = ctx->instance;
    const struct sq_config *c = &in->c;
    struct sq_conn *conn = NULL;
    long count = 0;
    int cold = 0, truncated = 0, broken = 0;
    (void)event;
    if (acquire(in, ctx, &conn, &cold, res) < 0)
        return 1;
    if (cold)
        h->logf(ctx, SL_LOG_INFO, "opened %s%s and prepared: %.200s", c->database,
                c->write ? "" : " read-only", c->sql);
    int rc = execute(ctx, c, conn, &count, &truncated, &broken, res);
    release(in, conn, broken);
    if (rc == 0 && truncated)
        h->logf(ctx, SL_LOG_WARN, "stopped after config.max_rows (%ld) rows; the response says "
                "\"truncated\": true", c->max_rows);
    return rc < 0 ? 1 : 0;
}

static const sl_handler_def handlers[] = {
    {"query", sq_query},
    {NULL, NULL},
};

static const sl_config_key config_keys[] = {
    {"database", SL_CONFIG_STRING, 1, NULL, "the SQLite database file, e.g. \"var/app.db\""},
    {"sql", SL_CONFIG_STRING, 1, NULL, "one SQL statement, ? where event values go"},
    {"params", SL_CONFIG_ARRAY, 0, NULL, "JSON pointers into the event, one per ?"},
    {"write", SL_CONFIG_BOOL, 0, "false", "allow a statement that changes the database"},
    {"create_from", SL_CONFIG_STRING, 0, NULL, "a .sql file that creates a missing database"},
    {"max_rows", SL_CONFIG_INTEGER, 0, "1000", "the most rows answered (1 to 1000000)"},
    {NULL, 0, 0, NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "sqlite",
    .version = "2.0",
    .handlers = handlers,
    .destroy = sq_destroy,
    .create = sq_create,
    .config_keys = config_keys,
};
