/* naive_zmq - the naive script of issue 15 item 1 written in C: the ceiling
 * for "ZeroMQ events -> no-op handler -> one SQLite row each". A PULL loop
 * that parses each payload with cJSON (as a user would), calls a no-op
 * handler and inserts one row per event through a prepared statement,
 * committing in batches (and whenever no message is waiting), WAL and
 * synchronous=NORMAL, no index besides the rowid. No journal, no log.
 *
 *   naive_zmq --endpoint tcp://127.0.0.1:P --db FILE --count N [--batch B]
 */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <zmq.h>

#include "common.h"

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "naive_zmq: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(db, sql);
}

static int handler(const cJSON *event)
{
    return event != NULL;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *path = NULL;
    long count = 100000, batch = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--endpoint")) endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--db")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atol(argv[i + 1]);
    }
    if (!endpoint || !path) {
        fprintf(stderr, "usage: naive_zmq --endpoint EP --db FILE --count N\n");
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die(db, "open");
    exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
             "CREATE TABLE IF NOT EXISTS invocations (id INTEGER PRIMARY KEY, topic TEXT,"
             " payload TEXT, received_at REAL)");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v3(db, "INSERT INTO invocations (topic, payload, received_at) VALUES (?1, ?2, ?3)",
                           -1, SQLITE_PREPARE_PERSISTENT, &ins, NULL) != SQLITE_OK)
        die(db, "prepare");
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 10000;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(s, endpoint) < 0) {
        fprintf(stderr, "naive_zmq: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char topic[256], payload[1 << 16];
    long done = 0, pending = 0;
    while (done < count) {
        int n = zmq_recv(s, topic, sizeof topic - 1, ZMQ_DONTWAIT);
        if (n < 0 && zmq_errno() == EAGAIN) {
            if (pending) {  /* nothing waiting: commit what we have */
                exec(db, "COMMIT");
                pending = 0;
            }
            n = zmq_recv(s, topic, sizeof topic - 1, 0);
        }
        if (n < 0)
            continue;
        int tlen = n < (int)sizeof topic - 1 ? n : (int)sizeof topic - 1;
        int plen = zmq_recv(s, payload, sizeof payload - 1, 0);
        if (plen < 0)
            continue;
        if (plen > (int)sizeof payload - 1)
            plen = (int)sizeof payload - 1;
        cJSON *event = cJSON_ParseWithLength(payload, (size_t)plen);
        handler(event);
        cJSON_Delete(event);
        if (pending == 0)
            exec(db, "BEGIN");
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, topic, tlen, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, payload, plen, SQLITE_STATIC);
        sqlite3_bind_double(ins, 3, (double)wall_ns() / 1e9);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        done++;
        if (++pending >= batch) {
            exec(db, "COMMIT");
            pending = 0;
        }
    }
    if (pending)
        exec(db, "COMMIT");
    sqlite3_finalize(ins);
    sqlite3_close(db);
    sleep(1);  /* let the harness read this process's CPU time before it goes */
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
