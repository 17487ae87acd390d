/* sqlite.c - the sqlite plugin: one configured, parametrized SQL statement
 * against a SQLite database, its rows answered as JSON, the analogue of
 * the "scan UsersTable" DynamoDB example.
 *
 * Design: parameters are values taken from the event by JSON pointer and
 * bound with sqlite3_bind_*, never pasted into the SQL text. The database
 * is opened read-only (SQLITE_OPEN_READONLY) unless the config says
 * "write": true, and a statement that would change it is refused at
 * prepare time. Each worker keeps a small pool of open connections with
 * their statement prepared, keyed by the step's config text, so a step
 * prepares once and then only binds, steps and resets; under "thread"
 * isolation several threads may run the same step at once, each with a
 * connection of its own. The statement's deadline is the step's: a progress
 * handler interrupts a long query and the busy timeout is the time left.
 * Rows are written as JSON text (sq_json.c); an integer a double cannot
 * hold exactly is written as a string of its digits rather than rounded.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <sluice/handler.h>

#include "sq_json.h"

#define MAX_PARAMS 256
#define MAX_CONNS 32            /* idle connections beyond this are closed, oldest first */
#define MAX_SCRIPT_BYTES (64 << 20)
#define MSG_MAX 2048

struct sq_config {
    const char *database;
    const char *sql;
    const char *create_from;
    const char *params[MAX_PARAMS];
    size_t n_params;
    int write;
    long max_rows;
};

static const char *const known_keys[] = {"database", "sql", "params", "write", "create_from",
                                         "max_rows", NULL};

struct sq_conn {
    struct sq_conn *next;
    char *key;                  /* the step's config text */
    size_t key_len;
    int busy;
    uint64_t last_used;
    dev_t dev;                  /* the database file this connection opened */
    ino_t ino;
    sqlite3 *db;
    sqlite3_stmt *stmt;
    sl_context *ctx;            /* during a call, for the progress handler */
};

struct sq_state {
    pthread_mutex_t lock;
    struct sq_conn *conns;
    size_t n;
    uint64_t clock;
};

struct failure {
    const char *type;
    char msg[MSG_MAX];
};

static int failf(struct failure *f, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct failure *f, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->type = type;
    return -1;
}

/* --- lifecycle --------------------------------------------------------- */

static void conn_free(struct sq_conn *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->stmt);
    sqlite3_close(c->db);
    free(c->key);
    free(c);
}

static int sq_init(const sl_host *host, void **state, char *err, size_t errlen)
{
    (void)host;
    struct sq_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        snprintf(err, errlen, "cannot create a mutex");
        return -1;
    }
    *state = st;
    return 0;
}

static void sq_destroy(void *state)
{
    struct sq_state *st = state;
    if (!st)
        return;
    for (struct sq_conn *c = st->conns, *next; c; c = next) {
        next = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* --- config ------------------------------------------------------------ */


static int read_config(const sl_host *h, sl_context *ctx, struct sq_config *c, struct failure *f)
{
    memset(c, 0, sizeof *c);
    c->max_rows = 1000;
    const sl_json *cfg = h->config(ctx);
    if (h->json_type(cfg) != SL_JSON_OBJECT)
        return failf(f, "ConfigError", "the step's config must be an object, e.g. "
                     "{\"database\": \"var/app.db\", \"sql\": \"SELECT * FROM users\"}");
    const char *bad = sl_config_unknown_key(ctx, known_keys);
    if (bad)
        return failf(f, "ConfigError", "config key \"%s\" is not known to sqlite.query; its keys "
                     "are database, sql, params, write, create_from and max_rows", bad);
    c->database = h->json_string(h->json_get(cfg, "/database"));
    if (!c->database || !*c->database)
        return failf(f, "ConfigError", "config.database must name the SQLite database file, e.g. "
                     "\"database\": \"var/app.db\" (a relative path starts from the daemon's "
                     "working folder)");
    c->sql = h->json_string(h->json_get(cfg, "/sql"));
    if (!c->sql || !*c->sql)
        return failf(f, "ConfigError", "config.sql must be one SQL statement, with ? (or ?1, "
                     ":name) where values from the event go, e.g. \"sql\": \"SELECT * FROM users "
                     "WHERE id = ?\", \"params\": [\"/id\"]");
    const sl_json *v = h->json_get(cfg, "/params");
    if (v) {
        if (h->json_type(v) != SL_JSON_ARRAY || h->json_size(v) > MAX_PARAMS)
            return failf(f, "ConfigError", "config.params must be an array of JSON pointers into "
                         "the event (at most %d), e.g. \"params\": [\"/id\"]", MAX_PARAMS);
        for (size_t i = 0; i < h->json_size(v); i++) {
            const char *p = h->json_string(h->json_at(v, i));
            if (!p || (*p && *p != '/'))
                return failf(f, "ConfigError", "config.params[%zu] must be a JSON pointer into "
                             "the event, such as \"/id\" or \"/Records/0/s3/object/key\"", i);
            c->params[c->n_params++] = p;
        }
    }
    v = h->json_get(cfg, "/write");
    if (v) {
        int t = h->json_type(v);
        if (t != SL_JSON_TRUE && t != SL_JSON_FALSE)
            return failf(f, "ConfigError", "config.write must be true or false");
        c->write = t == SL_JSON_TRUE;
    }
    v = h->json_get(cfg, "/create_from");
    if (v) {
        c->create_from = h->json_string(v);
        if (!c->create_from || !*c->create_from)
            return failf(f, "ConfigError", "config.create_from must name a .sql file that "
                         "creates the database when it does not exist");
    }
    v = h->json_get(cfg, "/max_rows");
    if (v) {
        double d = h->json_number(v, -1);
        if (h->json_type(v) != SL_JSON_NUMBER || !(d >= 1 && d <= 1000000) ||
            d != (double)(long)d)
            return failf(f, "ConfigError", "config.max_rows must be a whole number from 1 to "
                         "1000000");
        c->max_rows = (long)d;
    }
    return 0;
}

/* --- opening ----------------------------------------------------------- */

static const char *working_folder(char *buf, size_t len)
{
    return getcwd(buf, len) ? buf : "(unknown)";
}

static int read_script(const char *path, char **out, struct failure *f)
{
    char cwd[PATH_MAX];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return failf(f, "ConfigError", "config.create_from \"%s\": %s (a relative path starts "
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
                rc = failf(f, "ConfigError", "config.create_from \"%s\" is too large (at most "
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
                rc = failf(f, "ConfigError", "cannot read config.create_from \"%s\": %s", path,
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
static int create_database(sl_context *ctx, const struct sq_config *c, struct failure *f)
{
    char *script = NULL, tmp[PATH_MAX], msg[MSG_MAX];
    if (read_script(c->create_from, &script, f) < 0)
        return -1;
    const char *slash = strrchr(c->database, '/');
    int dlen = slash ? (int)(slash - c->database) + 1 : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.create-XXXXXX", dlen, c->database,
                 c->database + dlen) >= (int)sizeof tmp) {
        free(script);
        return failf(f, "ConfigError", "config.database \"%s\" is too long", c->database);
    }
    int fd = mkdirs_for(c->database) == 0 ? mkstemp(tmp) : -1;
    if (fd < 0) {
        free(script);
        return failf(f, "DatabaseError", "cannot create the database %s: %s (check the folder's "
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
        failf(f, "CreateError", "config.create_from \"%s\" failed on a new database: %s (fix "
              "the script; nothing was created at %s)", c->create_from,
              err ? err : db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), c->database);
    sqlite3_free(err);
    if (sqlite3_close(db) != SQLITE_OK && rc == SQLITE_OK)
        rc = failf(f, "CreateError", "cannot close the new database %s", tmp);
    free(script);
    if (rc == SQLITE_OK && link(tmp, c->database) < 0 && errno != EEXIST) {
        /* a file system without hard links: rename (a racing worker's
         * identical database may be replaced, which is harmless) */
        if ((errno != EPERM && errno != EOPNOTSUPP) || rename(tmp, c->database) < 0)
            rc = failf(f, "DatabaseError", "cannot create the database %s: %s", c->database,
                       strerror(errno));
    }
    unlink(tmp);
    if (rc != SQLITE_OK)
        return -1;
    snprintf(msg, sizeof msg, "created the database %s from %s", c->database, c->create_from);
    ctx->host->log(ctx, SL_LOG_INFO, msg);
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
static void set_busy_timeout(sqlite3 *db, sl_context *ctx)
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
static int conn_open(sl_context *ctx, const struct sq_config *c, struct sq_conn **out,
                     struct failure *f)
{
    char cwd[PATH_MAX];
    struct stat st;
    if (stat(c->database, &st) < 0) {
        if (errno != ENOENT)
            return failf(f, "DatabaseError", "cannot open the database %s: %s", c->database,
                         strerror(errno));
        if (!c->create_from)
            return failf(f, "DatabaseNotFound", "the database %s does not exist (a relative path "
                         "starts from the daemon's working folder, %s); create it, or set "
                         "config.create_from to a .sql file that builds it", c->database,
                         working_folder(cwd, sizeof cwd));
        if (create_database(ctx, c, f) < 0)
            return -1;
        if (stat(c->database, &st) < 0)
            return failf(f, "DatabaseError", "cannot open the database %s: %s", c->database,
                         strerror(errno));
    }
    struct sq_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return failf(f, "InternalError", "out of memory");
    conn->dev = st.st_dev;
    conn->ino = st.st_ino;
    int flags = c->write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    int rc = sqlite3_open_v2(c->database, &conn->db, flags, NULL);
    if (rc != SQLITE_OK) {
        failf(f, "DatabaseError", "cannot open the database %s%s: %s", c->database,
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
            failf(f, "DatabaseBusy", "the database %s stayed locked by another connection until "
                  "shortly before the step's deadline: %s (a retry may succeed)", c->database,
                  sqlite3_errmsg(conn->db));
        else if (database_trouble(rc))
            failf(f, "DatabaseError", "cannot read the database %s: %s", c->database,
                  sqlite3_errmsg(conn->db));
        else
            failf(f, "ConfigError", "config.sql does not compile against %s: %s", c->database,
                  sqlite3_errmsg(conn->db));
        conn_free(conn);
        return -1;
    }
    if (!conn->stmt) {
        conn_free(conn);
        return failf(f, "ConfigError", "config.sql holds no statement (only spaces or comments)");
    }
    sqlite3_stmt *more = NULL;
    if (tail && *tail && (sqlite3_prepare_v2(conn->db, tail, -1, &more, NULL) != SQLITE_OK ||
                          more)) {
        sqlite3_finalize(more);
        conn_free(conn);
        return failf(f, "ConfigError", "config.sql holds more than one statement (the rest "
                     "starts at \"%.60s\"); give each step one statement", tail);
    }
    if (!c->write && !sqlite3_stmt_readonly(conn->stmt)) {
        conn_free(conn);
        return failf(f, "ConfigError", "config.sql changes the database, and the step is "
                     "read-only; set \"write\": true in the step's config to allow it");
    }
    int want = sqlite3_bind_parameter_count(conn->stmt);
    if ((size_t)want != c->n_params) {
        conn_free(conn);
        return failf(f, "ConfigError", "config.sql has %d parameter%s but config.params lists "
                     "%zu JSON pointer%s; give one pointer per parameter, in order", want,
                     want == 1 ? "" : "s", c->n_params, c->n_params == 1 ? "" : "s");
    }
    int cols = sqlite3_column_count(conn->stmt);
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < i; j++) {
            const char *a = sqlite3_column_name(conn->stmt, i);
            const char *b = sqlite3_column_name(conn->stmt, j);
            if (a && b && strcmp(a, b) == 0) {
                failf(f, "ConfigError", "config.sql returns two columns named \"%s\" (columns %d "
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

/* An idle connection prepared for this step, or a new one. *cold is set
 * when the connection was opened by this call. */
static int acquire(struct sq_state *st, sl_context *ctx, const struct sq_config *c,
                   struct sq_conn **out, int *cold, struct failure *f)
{
    struct sq_conn *found = NULL, *stale = NULL;
    pthread_mutex_lock(&st->lock);
    for (struct sq_conn **pp = &st->conns; *pp; pp = &(*pp)->next) {
        struct sq_conn *k = *pp;
        if (!k->busy && k->key_len == ctx->config_len &&
            memcmp(k->key, ctx->config_json, k->key_len) == 0) {
            found = k;
            found->busy = 1;
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (found && !same_file(found, c->database)) {
        /* The file was replaced (or removed): this connection reads the old one. */
        stale = found;
        found = NULL;
        pthread_mutex_lock(&st->lock);
        for (struct sq_conn **pp = &st->conns; *pp; pp = &(*pp)->next) {
            if (*pp == stale) {
                *pp = stale->next;
                st->n--;
                break;
            }
        }
        pthread_mutex_unlock(&st->lock);
        conn_free(stale);
    }
    *cold = found == NULL;
    if (found) {
        *out = found;
        return 0;
    }
    struct sq_conn *conn = NULL;
    if (conn_open(ctx, c, &conn, f) < 0)
        return -1;
    conn->key = malloc(ctx->config_len + 1);
    if (!conn->key) {
        conn_free(conn);
        return failf(f, "InternalError", "out of memory");
    }
    memcpy(conn->key, ctx->config_json, ctx->config_len);
    conn->key[ctx->config_len] = '\0';
    conn->key_len = ctx->config_len;
    conn->busy = 1;
    struct sq_conn *evicted = NULL;
    pthread_mutex_lock(&st->lock);
    conn->next = st->conns;
    st->conns = conn;
    st->n++;
    while (st->n > MAX_CONNS) {
        struct sq_conn **oldest = NULL;
        for (struct sq_conn **pp = &st->conns; *pp; pp = &(*pp)->next)
            if (!(*pp)->busy && (!oldest || (*pp)->last_used < (*oldest)->last_used))
                oldest = pp;
        if (!oldest)
            break;
        struct sq_conn *k = *oldest;
        *oldest = k->next;
        st->n--;
        k->next = evicted;
        evicted = k;
    }
    pthread_mutex_unlock(&st->lock);
    while (evicted) {
        struct sq_conn *next = evicted->next;
        conn_free(evicted);
        evicted = next;
    }
    *out = conn;
    return 0;
}

/* Give conn back; a connection whose database misbehaved is closed. */
static void release(struct sq_state *st, struct sq_conn *conn, int broken)
{
    pthread_mutex_lock(&st->lock);
    if (broken) {
        for (struct sq_conn **pp = &st->conns; *pp; pp = &(*pp)->next) {
            if (*pp == conn) {
                *pp = conn->next;
                st->n--;
                break;
            }
        }
    } else {
        conn->busy = 0;
        conn->last_used = ++st->clock;
    }
    pthread_mutex_unlock(&st->lock);
    if (broken)
        conn_free(conn);
}

/* --- running ----------------------------------------------------------- */

static int bind_params(const sl_host *h, sl_context *ctx, const struct sq_config *c,
                       sqlite3_stmt *stmt, struct failure *f)
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
            return failf(f, "InvalidEvent", "config.params[%zu] \"%s\" points at an %s in the "
                         "event; only strings, numbers, booleans and null can be bound",
                         i, c->params[i], h->json_type(v) == SL_JSON_ARRAY ? "array" : "object");
        default: /* absent or null */
            rc = sqlite3_bind_null(stmt, idx);
            break;
        }
        if (rc != SQLITE_OK)
            return failf(f, "InternalError", "cannot bind config.params[%zu]: %s", i,
                         sqlite3_errstr(rc));
    }
    return 0;
}

static void write_value(struct jbuf *b, sqlite3_stmt *stmt, int col)
{
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
        jb_int_exact(b, sqlite3_column_int64(stmt, col));
        break;
    case SQLITE_FLOAT:
        jb_double(b, sqlite3_column_double(stmt, col));
        break;
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_column_text(stmt, col);
        jb_string(b, s ? s : "", (size_t)sqlite3_column_bytes(stmt, col));
        break;
    }
    case SQLITE_BLOB: {
        const unsigned char *s = sqlite3_column_blob(stmt, col);
        jb_base64(b, s, (size_t)sqlite3_column_bytes(stmt, col));
        break;
    }
    default:
        jb_raw(b, "null", 4);
        break;
    }
}

/* Run the prepared statement; the response text goes to b. *broken is set
 * when the connection should not be reused. */
static int execute(sl_context *ctx, const struct sq_config *c, struct sq_conn *conn,
                   struct jbuf *b, long *count, int *truncated, int *broken, struct failure *f)
{
    const sl_host *h = ctx->host;
    sqlite3_stmt *stmt = conn->stmt;
    set_busy_timeout(conn->db, ctx);
    if (bind_params(h, ctx, c, stmt, f) < 0) {
        sqlite3_clear_bindings(stmt);
        return -1;
    }
    conn->ctx = ctx;
    int cols = sqlite3_column_count(stmt);
    int rc;
    *count = 0;
    *truncated = 0;
    jb_str(b, "{\"rows\":[");
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*count >= c->max_rows) {
            *truncated = 1;
            rc = SQLITE_DONE;
            break;
        }
        jb_str(b, *count ? ",{" : "{");
        for (int i = 0; i < cols; i++) {
            const char *name = sqlite3_column_name(stmt, i);
            if (i)
                jb_raw(b, ",", 1);
            jb_string(b, name ? name : "", name ? strlen(name) : 0);
            jb_raw(b, ":", 1);
            write_value(b, stmt, i);
        }
        jb_raw(b, "}", 1);
        ++*count;
        if (b->oom)
            break;
    }
    conn->ctx = NULL;
    int ok = rc == SQLITE_DONE && !b->oom;
    if (!ok) {
        const char *why = sqlite3_errmsg(conn->db);
        int code = rc & 0xff;
        if (b->oom)
            failf(f, "InternalError", "out of memory writing %ld rows (lower config.max_rows)",
                  *count);
        else if (code == SQLITE_INTERRUPT)
            failf(f, "Sandbox.Timedout", "the statement did not finish before the step's "
                  "deadline (after "
                  "%ld rows); raise the step's timeout_ms or make the query cheaper (an index?)",
                  *count);
        else if (busy(code))
            failf(f, "DatabaseBusy", "the database %s stayed locked by another connection until "
                  "shortly before the step's deadline: %s (a retry may succeed)", c->database,
                  why);
        else if (code == SQLITE_CONSTRAINT)
            failf(f, "ConstraintError", "%s (database %s)", why, c->database);
        else if (database_trouble(rc))
            failf(f, "DatabaseError", "the database %s: %s", c->database, why);
        else
            failf(f, "SQLError", "%s (database %s)", why, c->database);
        *broken = database_trouble(rc);
    } else {
        jb_str(b, "],\"count\":");
        jb_int(b, *count);
        if (*truncated)
            jb_str(b, ",\"truncated\":true");
        if (c->write) {
            jb_str(b, ",\"changes\":");
            jb_int(b, sqlite3_changes(conn->db));
            jb_str(b, ",\"last_insert_rowid\":");
            jb_int_exact(b, sqlite3_last_insert_rowid(conn->db));
        }
        jb_raw(b, "}", 1);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (ok && b->oom)
        return failf(f, "InternalError", "out of memory");
    return ok ? 0 : -1;
}

static int sq_query(const sl_event *event, sl_context *ctx, sl_response *res)
{
    const sl_host *h = ctx->host;
    struct sq_state *st = ctx->plugin_state;
    struct failure f = {0};
    struct sq_config c;
    struct sq_conn *conn = NULL;
    struct jbuf b = {0};
    long count = 0;
    int cold = 0, truncated = 0, broken = 0;
    (void)event;
    if (!st) {
        h->fail(res, "InternalError", "sqlite.query ran without its init");
        return 1;
    }
    if (read_config(h, ctx, &c, &f) < 0 || acquire(st, ctx, &c, &conn, &cold, &f) < 0) {
        h->fail(res, f.type, f.msg);
        return 1;
    }
    if (cold) {
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "opened %s%s and prepared: %.200s", c.database,
                 c.write ? "" : " read-only", c.sql);
        h->log(ctx, SL_LOG_INFO, msg);
    }
    int rc = execute(ctx, &c, conn, &b, &count, &truncated, &broken, &f);
    release(st, conn, broken);
    if (rc == 0 && truncated) {
        char msg[256];
        snprintf(msg, sizeof msg, "stopped after config.max_rows (%ld) rows; the response says "
                 "\"truncated\": true", c.max_rows);
        h->log(ctx, SL_LOG_WARN, msg);
    }
    if (rc == 0 && h->respond(res, 200, b.p, b.len) != 0)
        rc = failf(&f, "InternalError", "the rows did not make valid JSON (a bug: please "
                   "report it)");
    jb_free(&b);
    if (rc < 0) {
        h->fail(res, f.type, f.msg);
        return 1;
    }
    return 0;
}

static const sl_handler_def handlers[] = {
    {"query", sq_query},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "sqlite",
    .version = "1.0",
    .handlers = handlers,
    .init = sq_init,
    .destroy = sq_destroy,
};
