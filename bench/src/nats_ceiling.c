/* nats_ceiling.c - the ceiling for sluice's nats trigger (bench/nats.sh): a
 * plain libnats JetStream pull consumer that writes one SQLite row per
 * message (WAL, synchronous=FULL, one transaction per fetched batch, as
 * sluice's writer groups commits) and then acknowledges each message.
 *
 *   nats_ceiling URL STREAM CONSUMER COUNT DB ack|acksync
 *   nats_ceiling URL STREAM CONSUMER SUBJECT create
 *
 * ack: natsMsg_Ack (sent, not waited for: what sluice does); acksync:
 * natsMsg_AckSync (a round trip per message): the difference is the cost of
 * the ack round trip. Prints "messages seconds rate". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>
#include <sqlite3.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The stream (file storage) and the durable consumer sluice's trigger would make. */
static int create(const char *url, const char *stream, const char *consumer,
                  const char *subject)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamConfig sc;
    jsConsumerConfig cc;
    jsStreamInfo *si = NULL;
    jsConsumerInfo *ci = NULL;
    jsStreamConfig_Init(&sc);
    jsConsumerConfig_Init(&cc);
    sc.Name = stream;
    sc.Subjects = &subject;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    cc.Durable = consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = 30LL * 1000000000;
    cc.MaxAckPending = 65536;
    int ok = natsConnection_ConnectTo(&nc, url) == NATS_OK &&
             natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
             js_AddStream(&si, js, &sc, NULL, NULL) == NATS_OK &&
             js_AddConsumer(&ci, js, stream, &cc, NULL, NULL) == NATS_OK;
    if (!ok)
        fprintf(stderr, "nats_ceiling: create: %s\n", nats_GetLastError(NULL));
    jsStreamInfo_Destroy(si);
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[5], "create") == 0)
        return create(argv[1], argv[2], argv[3], argv[4]);
    if (argc != 7) {
        fprintf(stderr, "usage: nats_ceiling URL STREAM CONSUMER COUNT DB ack|acksync\n");
        return 2;
    }
    int count = atoi(argv[4]), sync = strcmp(argv[6], "acksync") == 0;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = argv[2];
    so.Consumer = argv[3];
    if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
        js_PullSubscribe(&sub, js, ">", argv[3], NULL, &so, NULL) != NATS_OK) {
        fprintf(stderr, "nats_ceiling: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    sqlite3 *db;
    sqlite3_stmt *ins;
    sqlite3_open(argv[5], &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, event_id TEXT UNIQUE,"
                 " payload TEXT, received_at TEXT)", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO events (event_id, payload, received_at) VALUES"
                       " (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ'))", -1, &ins, NULL);
    int done = 0;
    double start = 0;
    while (done < count) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, 256, 5000, NULL);
        if (s != NATS_OK && list.Count == 0) {
            fprintf(stderr, "nats_ceiling: fetch: %s after %d\n", natsStatus_GetText(s), done);
            return 1;
        }
        if (start == 0)
            start = now_s();
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < list.Count; i++) {
            jsMsgMetaData *meta = NULL;
            char id[64];
            natsMsg_GetMetaData(&meta, list.Msgs[i]);
            snprintf(id, sizeof id, "%s:%llu", argv[2],
                     meta ? (unsigned long long)meta->Sequence.Stream : 0ULL);
            jsMsgMetaData_Destroy(meta);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, natsMsg_GetData(list.Msgs[i]),
                              natsMsg_GetDataLength(list.Msgs[i]), SQLITE_STATIC);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        for (int i = 0; i < list.Count; i++)
            sync ? natsMsg_AckSync(list.Msgs[i], NULL, NULL) : natsMsg_Ack(list.Msgs[i], NULL);
        done += list.Count;
        natsMsgList_Destroy(&list);
    }
    double secs = now_s() - start;
    printf("%d %.3f %.0f\n", done, secs, done / secs);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
