/* source_nats.c - JetStream pull consumers as a source (see source_nats.h). */
#include "source_nats.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include "clock.h"
#include "dispatch.h"
#include "log.h"
#include "nats_publish.h"
#include "loop.h"
#include "nats_trigger.h"
#include "pipeline.h"

#define FETCH_WAIT_MS 500       /* a fetch waits this long for messages (and a stop) */
/* A stop joins the fetcher on the loop thread: each set-up step it may be
 * in is bounded, and it looks for the stop between steps. */
#define CONNECT_WAIT_MS 2000
#define JS_API_WAIT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Messages in hand: the runs in progress and the next ones, so a slot that
 * frees finds its next event already here rather than a fetch round trip and
 * a journal commit away, and never more than the node starts soon (the rest
 * stays in the stream for the other nodes). "Soon" is measured: the limit
 * follows what the node finished in the last window, so fast handlers get a
 * deep pipeline and slow ones hold little more than their slots. */
#define IN_HAND_PER_SLOT 8      /* the least, and the start */
#define IN_HAND_MAX 1024
#define SOON_MS 100             /* the work of this long is held in hand */

struct nats_link;

/* A fetched batch on its way to the loop. */
struct nats_batch {
    struct loop_task task;
    struct nats_link *ln;
    natsMsgList list;
    struct nats_batch *next, *prev;     /* posted and not yet taken (ln->mu) */
};

/* A message in hand, from its arrival on the loop until its answer. */
struct nats_held {
    struct nats_link *ln;
    natsMsg *msg;
    struct loop_timer progress;
    char *event_id;
};

/* One nats pipeline's connection and fetcher. The loop holds one
 * reference, each message in hand another. */
struct nats_link {
    struct source_nats *src;    /* NULL once the source is freed */
    struct loop *loop;
    sqlite3 *reader;
    char *pipeline;
    struct nats_trigger cfg;    /* borrowed strings: the generation's pipeline outlives it */
    int refs;                   /* loop thread */
    /* Set up and used by the fetcher, closed on the loop after the join. */
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    atomic_llong ack_wait_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int budget;                 /* mu: messages it may fetch (the limit less those in hand) */
    int limit;                  /* loop thread: messages it may hold at once */
    int least;                  /* the limit's floor: IN_HAND_PER_SLOT x concurrency */
    int64_t window_ns;          /* loop thread: when the current window began */
    int window_settled;         /* ... and how many were settled in it */
    bool stop;                  /* mu */
    struct nats_batch *posted;  /* mu */
};

struct source_nats {
    struct loop *loop;
    struct source_nats_hooks hooks;
    struct nats_link **links;
    size_t n;
};

/* --- the fetcher thread ---------------------------------------------------- */

static bool stopping(struct nats_link *ln)
{
    pthread_mutex_lock(&ln->mu);
    bool s = ln->stop;
    pthread_mutex_unlock(&ln->mu);
    return s;
}

/* Sleep ms, or less if stopped. */
static void pause_ms(struct nats_link *ln, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&ln->mu);
    while (!ln->stop && pthread_cond_timedwait(&ln->cv, &ln->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&ln->mu);
}

/* How many it may fetch: waits for a free slot; 0 when stopping. */
static int wait_budget(struct nats_link *ln)
{
    pthread_mutex_lock(&ln->mu);
    while (!ln->stop && ln->budget <= 0)
        pthread_cond_wait(&ln->cv, &ln->mu);
    int n = ln->stop ? 0 : ln->budget;
    pthread_mutex_unlock(&ln->mu);
    return n;
}

static int connect_to(struct nats_link *ln, struct err *e)
{
    const struct nats_trigger *c = &ln->cfg;
    char name[300];
    snprintf(name, sizeof name, "sluice %s", ln->pipeline);
    natsStatus s = (natsStatus)nats_options_new(c->url, CONNECT_WAIT_MS, c->creds, &ln->opts);
    if (s == NATS_OK)
        s = natsOptions_SetName(ln->opts, name);
    if (s == NATS_OK) /* many nodes reconnecting at once spread out */
        s = natsOptions_SetReconnectJitter(ln->opts, 250, 1000);
    if (s == NATS_OK && c->tls)
        s = natsOptions_SetSecure(ln->opts, true);
    if (s == NATS_OK && c->tls_ca)
        s = natsOptions_LoadCATrustedCertificates(ln->opts, c->tls_ca);
    if (s == NATS_OK && c->tls_cert)
        s = natsOptions_LoadCertificatesChain(ln->opts, c->tls_cert, c->tls_key);
    if (s != NATS_OK)
        return nats_fail(e, s, "the connection options (creds, tls)");
    s = natsConnection_Connect(&ln->nc, ln->opts);
    if (s != NATS_OK)
        return nats_fail(e, s, c->url);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    s = natsConnection_JetStream(&ln->js, ln->nc, &jo);
    return s == NATS_OK ? 0 : nats_fail(e, s, "JetStream");
}

static int ensure_stream(struct nats_link *ln, struct err *e)
{
    const struct nats_trigger *c = &ln->cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, ln->js, c->stream, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK)
        return 0;
    if (s == NATS_NO_RESPONDERS)
        return err_set(e, "looking up stream %s on %s: no JetStream answers (is the server "
                       "started with -js?)", c->stream, c->url);
    if (jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND) {
        char what[400];
        snprintf(what, sizeof what, "looking up stream %s on %s", c->stream, c->url);
        return nats_fail(e, s, what);
    }
    if (!c->create)
        return err_set(e, "stream %s does not exist on %s: create it with `nats stream add %s "
                       "--subjects '%s' --storage file --replicas %d --defaults` (the nats "
                       "CLI, against a `nats-server -js`), or set \"create\": true in the "
                       "trigger", c->stream, c->url, c->stream, c->subject, c->replicas);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {c->subject};
    sc.Name = c->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = c->replicas;
    s = js_AddStream(&si, ln->js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr != JSStreamNameExistErr)
        return nats_fail(e, s, "creating the stream");
    if (s == NATS_OK) /* else another node was quicker */
        log_msg(LOG_INFO, "pipeline %s: created stream %s (%s, %d replica%s) on %s",
                ln->pipeline, c->stream, c->subject, c->replicas, c->replicas == 1 ? "" : "s",
                c->url);
    return 0;
}

static int ensure_consumer(struct nats_link *ln, struct err *e)
{
    const struct nats_trigger *c = &ln->cfg;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, ln->js, c->stream, c->consumer, NULL, &jerr);
    if (s != NATS_OK && (jerr == JSConsumerNotFoundErr || s == NATS_NOT_FOUND) && c->create) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = c->consumer;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = (int64_t)c->ack_wait_ms * 1000000;
        cc.MaxDeliver = c->max_deliver;
        cc.FilterSubject = c->subject;
        cc.MaxAckPending = 65536;
        s = js_AddConsumer(&ci, ln->js, c->stream, &cc, NULL, &jerr);
        if (s == NATS_OK) {
            log_msg(LOG_INFO, "pipeline %s: created consumer %s on stream %s", ln->pipeline,
                    c->consumer, c->stream);
        } else { /* another node may have made it meanwhile */
            jsErrCode add_err = jerr;
            natsStatus add_s = s;
            s = js_GetConsumerInfo(&ci, ln->js, c->stream, c->consumer, NULL, &jerr);
            if (s != NATS_OK) {
                char what[400];
                snprintf(what, sizeof what, "creating consumer %s of stream %s (filter %s, "
                         "JetStream error %d)", c->consumer, c->stream, c->subject, (int)add_err);
                return nats_fail(e, add_s, what);
            }
        }
    }
    if (s != NATS_OK && (jerr == JSConsumerNotFoundErr || s == NATS_NOT_FOUND))
        return err_set(e, "consumer %s of stream %s does not exist: create it with `nats "
                       "consumer add %s %s --pull --filter '%s' --ack explicit --wait %ds "
                       "--max-deliver %d --defaults`, or set \"create\": true in the trigger",
                       c->consumer, c->stream, c->stream, c->consumer, c->subject,
                       c->ack_wait_ms / 1000, c->max_deliver);
    if (s != NATS_OK)
        return nats_fail(e, s, "looking up the consumer");
    int64_t wait_ns = ci->Config ? ci->Config->AckWait : 0;
    atomic_store(&ln->ack_wait_ms, wait_ns > 0 ? wait_ns / 1000000 : 30000);
    jsConsumerInfo_Destroy(ci);
    return 0;
}

static int bind_consumer(struct nats_link *ln, struct err *e)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = ln->cfg.stream;
    so.Consumer = ln->cfg.consumer;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&ln->sub, ln->js, ln->cfg.subject, ln->cfg.consumer, NULL,
                                    &so, &jerr);
    if (s == NATS_OK)
        return 0;
    char what[400];
    snprintf(what, sizeof what, "binding pull consumer %s of stream %s on %s", ln->cfg.consumer,
             ln->cfg.stream, ln->cfg.url);
    return nats_fail(e, s, what);
}

/* Fetcher-side teardown of a failed set-up (nothing was posted from it). */
static void disconnect(struct nats_link *ln)
{
    natsSubscription_Destroy(ln->sub);
    jsCtx_Destroy(ln->js);
    natsConnection_Destroy(ln->nc);
    natsOptions_Destroy(ln->opts);
    ln->sub = NULL;
    ln->js = NULL;
    ln->nc = NULL;
    ln->opts = NULL;
}

static int setup(struct nats_link *ln, struct err *e)
{
    int (*const steps[])(struct nats_link *, struct err *) = {connect_to, ensure_stream,
                                                               ensure_consumer, bind_consumer};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof steps / sizeof *steps; i++)
        rc = stopping(ln) ? err_set(e, "stopping") : steps[i](ln, e);
    if (rc < 0) {
        disconnect(ln);
        return -1;
    }
    return 0;
}

static void batch_taken(struct loop_task *t);

static void post_batch(struct nats_link *ln, natsMsgList *list)
{
    struct nats_batch *b = calloc(1, sizeof *b);
    if (!b) { /* they come back after AckWait */
        log_msg(LOG_ERROR, "pipeline %s: out of memory for %d messages", ln->pipeline,
                list->Count);
        natsMsgList_Destroy(list);
        return;
    }
    b->task.run = batch_taken;
    b->ln = ln;
    b->list = *list;
    pthread_mutex_lock(&ln->mu);
    ln->budget -= list->Count;
    b->next = ln->posted;
    if (ln->posted)
        ln->posted->prev = b;
    ln->posted = b;
    pthread_mutex_unlock(&ln->mu);
    loop_post(ln->loop, &b->task);
}

/* The fetcher's retries: each new problem logged once, then a back-off
 * doubling up to BACKOFF_MAX_MS. */
struct fetch_retry {
    struct nats_link *ln;
    char *last_error;
    size_t len;
    int *backoff;
};

static void retry_later(struct fetch_retry *r, enum log_level level, const struct err *e)
{
    if (strcmp(e->msg, r->last_error) != 0)
        log_msg(level, "pipeline %s: %s; retrying", r->ln->pipeline, e->msg);
    snprintf(r->last_error, r->len, "%s", e->msg);
    pause_ms(r->ln, *r->backoff);
    *r->backoff = *r->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *r->backoff * 2;
}

static void *fetcher(void *arg)
{
    struct nats_link *ln = arg;
    int backoff = BACKOFF_MIN_MS;
    struct err e;
    char last_error[sizeof e.msg] = "";
    struct fetch_retry r = {.ln = ln, .last_error = last_error, .len = sizeof last_error,
                            .backoff = &backoff};
    while (!stopping(ln)) {
        if (!ln->sub) {
            if (setup(ln, &e) < 0) {
                retry_later(&r, LOG_ERROR, &e);
                continue;
            }
            log_msg(LOG_INFO, "pipeline %s: bound consumer %s of stream %s on %s",
                    ln->pipeline, ln->cfg.consumer, ln->cfg.stream, ln->cfg.url);
            last_error[0] = '\0';
            backoff = BACKOFF_MIN_MS;
        }
        int n = wait_budget(ln);
        if (n <= 0)
            break;
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, ln->sub, n, FETCH_WAIT_MS, &jerr);
        if (list.Count > 0) {
            post_batch(ln, &list);
            backoff = BACKOFF_MIN_MS;
        } else if (s != NATS_OK && s != NATS_TIMEOUT) {
            /* libnats reconnects by itself; meanwhile fetches fail fast */
            nats_fail(&e, s, "fetching");
            natsMsgList_Destroy(&list);
            retry_later(&r, LOG_WARN, &e);
        }
    }
    return NULL;
}

/* --- messages on the loop thread ------------------------------------------- */

static void link_unref(struct nats_link *ln);

/* Once a window: the limit becomes what was settled in SOON_MS, within
 * [least, IN_HAND_MAX]. Returns the change. */
static int adapt_limit(struct nats_link *ln)
{
    int64_t now = clock_mono_ns(), span = now - ln->window_ns;
    ln->window_settled++;
    if (span < (int64_t)SOON_MS * 1000000)
        return 0;
    long soon = (long)((double)ln->window_settled * SOON_MS * 1e6 / (double)span);
    int limit = soon < ln->least ? ln->least : soon > IN_HAND_MAX ? IN_HAND_MAX : (int)soon;
    int delta = limit - ln->limit;
    ln->limit = limit;
    ln->window_ns = now;
    ln->window_settled = 0;
    return delta;
}

/* A free slot again: the fetcher may fetch one more (or more, or fewer,
 * as the limit adapts). */
static void give_back(struct nats_link *ln, int n)
{
    int delta = adapt_limit(ln);
    pthread_mutex_lock(&ln->mu);
    ln->budget += n + delta;
    if (ln->budget > 0)
        pthread_cond_signal(&ln->cv);
    pthread_mutex_unlock(&ln->mu);
}

enum settle { SETTLE_ACK, SETTLE_NAK, SETTLE_NAK_LATER, SETTLE_TERM };

static void settle(struct nats_held *h, enum settle how)
{
    struct nats_link *ln = h->ln;
    natsStatus s = NATS_OK;
    switch (how) {
    case SETTLE_ACK: s = natsMsg_Ack(h->msg, NULL); break;
    case SETTLE_NAK: s = natsMsg_Nak(h->msg, NULL); break;
    case SETTLE_NAK_LATER:
        s = natsMsg_NakWithDelay(h->msg, (int64_t)ln->cfg.nak_delay_ms, NULL);
        break;
    case SETTLE_TERM: s = natsMsg_Term(h->msg, NULL); break;
    }
    static const char *const names[] = {[SETTLE_ACK] = "ack", [SETTLE_NAK] = "nak",
                                        [SETTLE_NAK_LATER] = "nak", [SETTLE_TERM] = "term"};
    if (s != NATS_OK) /* the server redelivers it after AckWait; the journal dedups */
        log_msg(LOG_WARN, "pipeline %s: event %s: the %s did not reach the server (%s); it "
                "will be redelivered%s", ln->pipeline, h->event_id ? h->event_id : "?",
                names[how], natsStatus_GetText(s),
                how == SETTLE_TERM ? ", and refused again" : " and recognised");
    loop_timer_cancel(ln->loop, &h->progress);
    natsMsg_Destroy(h->msg);
    free(h->event_id);
    free(h);
    give_back(ln, 1);
    link_unref(ln);
}

/* Still working on it: tell the server before AckWait runs out. */
static void on_progress(struct loop_timer *t)
{
    struct nats_held *h = (struct nats_held *)((char *)t - offsetof(struct nats_held, progress));
    natsMsg_InProgress(h->msg, NULL);
    int64_t period = atomic_load(&h->ln->ack_wait_ms) / 3;
    loop_timer_arm(h->ln->loop, t, clock_mono_ns() + period * 1000000);
}

/* Is (pipeline, event id) finished in the journal? A redelivery of an
 * event done here (its ack was lost) is acknowledged, not run again. */
static bool finished_here(struct nats_link *ln, const char *event_id)
{
    sqlite3 *db = ln->reader;
    sqlite3_stmt *st = NULL;
    bool done = false;
    if (db && sqlite3_prepare_v2(db, "SELECT state FROM events WHERE pipeline = ?1 AND "
                                 "event_id = ?2", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ln->pipeline, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *state = (const char *)sqlite3_column_text(st, 0);
            done = state && strcmp(state, "pending") != 0;
        }
    }
    sqlite3_finalize(st);
    return done;
}

/* The pipeline's answer, after its outcome committed (reply.after_commit). */
static void on_answer(void *arg, enum run_outcome outcome, const char *response,
                      const char *request_id)
{
    struct nats_held *h = arg;
    (void)response;
    if (outcome == RUN_INTERRUPTED) /* stopping: another node takes it now */
        settle(h, SETTLE_NAK);
    else if (request_id && *request_id) /* it ran: done or dead, committed */
        settle(h, SETTLE_ACK);
    else if (finished_here(h->ln, h->event_id)) /* a redelivery of a finished one */
        settle(h, SETTLE_ACK);
    else /* a duplicate still running here, or not journaled: later */
        settle(h, SETTLE_NAK_LATER);
}

static void add_headers(cJSON *o, natsMsg *m)
{
    const char **keys = NULL;
    int n = 0;
    cJSON *headers = cJSON_AddObjectToObject(o, "headers");
    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return;
    for (int i = 0; i < n && headers; i++) {
        const char **values = NULL;
        int count = 0;
        if (natsMsgHeader_Values(m, keys[i], &values, &count) == NATS_OK)
            cJSON_AddItemToObject(headers, keys[i], cJSON_CreateStringArray(values, count));
        free((void *)values);
    }
    free((void *)keys);
}

/* The event: the message's JSON body as "data", with where it came from
 * (docs/events.md). NULL if the body is not JSON (or out of memory). */
static char *event_json(natsMsg *m, const jsMsgMetaData *meta, const char *msg_id,
                        bool *not_json)
{
    cJSON *data = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    *not_json = !data;
    if (!data)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(data);
        return NULL;
    }
    cJSON_AddStringToObject(o, "subject", natsMsg_GetSubject(m));
    cJSON_AddStringToObject(o, "stream", meta && meta->Stream ? meta->Stream : "");
    cJSON_AddNumberToObject(o, "sequence", meta ? (double)meta->Sequence.Stream : 0);
    cJSON_AddNumberToObject(o, "delivered", meta ? (double)meta->NumDelivered : 1);
    cJSON_AddNumberToObject(o, "timestamp_ms", meta ? (double)(meta->Timestamp / 1000000) : 0);
    if (msg_id)
        cJSON_AddStringToObject(o, "msg_id", msg_id);
    else
        cJSON_AddNullToObject(o, "msg_id");
    add_headers(o, m);
    cJSON_AddItemToObject(o, "data", data);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void take_one(struct nats_link *ln, natsMsg *m)
{
    struct source_nats *src = ln->src;
    struct nats_held *h = calloc(1, sizeof *h);
    jsMsgMetaData *meta = NULL;
    const char *msg_id = NULL;
    char id[300], source[300];
    if (!h) {
        natsMsg_Destroy(m); /* redelivered after AckWait */
        give_back(ln, 1);
        return;
    }
    *h = (struct nats_held){.ln = ln, .msg = m};
    h->progress.fire = on_progress;
    ln->refs++;
    natsMsg_GetMetaData(&meta, m);
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &msg_id) != NATS_OK)
        msg_id = NULL;
    if (msg_id && *msg_id)
        snprintf(id, sizeof id, "%.255s", msg_id);
    else
        snprintf(id, sizeof id, "%s:%llu", ln->cfg.stream,
                 meta ? (unsigned long long)meta->Sequence.Stream : 0ULL);
    snprintf(source, sizeof source, "nats:%.250s", natsMsg_GetSubject(m));
    h->event_id = strdup(id);
    bool not_json = false;
    char *json = event_json(m, meta, msg_id && *msg_id ? msg_id : NULL, &not_json);
    jsMsgMetaData_Destroy(meta);
    if (not_json) {
        src->hooks.reject(src->hooks.arg, source, "the message body is not JSON (terminated: "
                          "it is not redelivered)", natsMsg_GetData(m),
                          (size_t)natsMsg_GetDataLength(m));
        settle(h, SETTLE_TERM);
        return;
    }
    if (!json || !h->event_id) { /* out of memory: it comes back, here or elsewhere */
        log_msg(LOG_ERROR, "pipeline %s: out of memory for event %s; handed back", ln->pipeline,
                id);
        settle(h, SETTLE_NAK_LATER);
        free(json);
        return;
    }
    struct dispatch_reply reply = {.fn = on_answer, .arg = h, .after_commit = true};
    struct err e;
    int rc = src->hooks.accept(src->hooks.arg, ln->pipeline, id, source,
                               natsMsg_GetSubject(m), json, &reply, &e);
    free(json);
    if (rc == 1) { /* its match filter leaves it out */
        settle(h, SETTLE_ACK);
    } else if (rc < 0) {
        log_msg(LOG_DEBUG, "pipeline %s: event %s handed back: %s", ln->pipeline, id, e.msg);
        settle(h, SETTLE_NAK_LATER);
    } else {
        int64_t period = atomic_load(&ln->ack_wait_ms) / 3;
        loop_timer_arm(ln->loop, &h->progress, clock_mono_ns() + period * 1000000);
    }
}

static void batch_taken(struct loop_task *t)
{
    struct nats_batch *b = (struct nats_batch *)t;
    struct nats_link *ln = b->ln;
    pthread_mutex_lock(&ln->mu);
    if (b->prev)
        b->prev->next = b->next;
    else
        ln->posted = b->next;
    if (b->next)
        b->next->prev = b->prev;
    bool stopped = ln->stop;
    pthread_mutex_unlock(&ln->mu);
    for (int i = 0; i < b->list.Count; i++) {
        natsMsg *m = b->list.Msgs[i];
        b->list.Msgs[i] = NULL;
        if (stopped) { /* fetched as it stopped: another node takes it now */
            natsMsg_Nak(m, NULL);
            natsMsg_Destroy(m);
        } else {
            take_one(ln, m);
        }
    }
    natsMsgList_Destroy(&b->list);
    free(b);
}

/* --- life ------------------------------------------------------------------ */

static void link_close(struct nats_link *ln)
{
    natsSubscription_Destroy(ln->sub);
    jsCtx_Destroy(ln->js);
    if (ln->nc)
        natsConnection_Close(ln->nc);
    natsConnection_Destroy(ln->nc);
    natsOptions_Destroy(ln->opts);
    pthread_cond_destroy(&ln->cv);
    pthread_mutex_destroy(&ln->mu);
    free(ln->pipeline);
    free(ln);
}

static void link_unref(struct nats_link *ln)
{
    if (--ln->refs == 0)
        link_close(ln);
}

static struct nats_link *link_new(struct source_nats *src, const struct pipeline *p)
{
    struct nats_link *ln = calloc(1, sizeof *ln);
    if (!ln)
        return NULL;
    ln->src = src;
    ln->loop = src->loop;
    ln->reader = src->hooks.reader;
    ln->pipeline = strdup(p->name);
    ln->cfg = *p->nats;
    ln->refs = 1;
    atomic_store(&ln->ack_wait_ms, (long long)p->nats->ack_wait_ms);
    ln->least = ln->limit = ln->budget = (p->concurrency > 0 ? p->concurrency : 1) *
                                         IN_HAND_PER_SLOT;
    ln->window_ns = clock_mono_ns();
    pthread_mutex_init(&ln->mu, NULL);
    pthread_cond_init(&ln->cv, NULL);
    if (!ln->pipeline) {
        link_close(ln);
        return NULL;
    }
    return ln;
}

int source_nats_new(struct loop *l, const struct pipeline_set *set,
                    const struct source_nats_hooks *hooks, struct source_nats **out,
                    struct err *e)
{
    *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->v[i]->trigger == TRIGGER_NATS;
    if (n == 0)
        return 0;
    struct source_nats *src = calloc(1, sizeof *src);
    if (!src || !(src->links = calloc(n, sizeof *src->links))) {
        free(src);
        return err_set(e, "out of memory");
    }
    src->loop = l;
    src->hooks = *hooks;
    *out = src;
    for (size_t i = 0; i < set->n; i++) {
        const struct pipeline *p = set->v[i];
        if (p->trigger != TRIGGER_NATS)
            continue;
        if (hooks->runs && !hooks->runs(hooks->runs_arg, p)) {
            log_msg(LOG_WARN, "pipeline %s: not fetching from stream %s until its plugins "
                    "load; its messages stay in the stream", p->name, p->nats->stream);
            continue;
        }
        struct nats_link *ln = link_new(src, p);
        if (!ln)
            return err_set(e, "out of memory");
        src->links[src->n++] = ln;
        int rc = pthread_create(&ln->thread, NULL, fetcher, ln);
        if (rc != 0)
            return err_set(e, "pipeline %s: cannot start its NATS fetcher: %s", p->name,
                           strerror(rc));
        ln->started = true;
    }
    return 0;
}

void source_nats_stop(struct source_nats *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        struct nats_link *ln = src->links[i];
        pthread_mutex_lock(&ln->mu);
        ln->stop = true;
        pthread_cond_broadcast(&ln->cv);
        pthread_mutex_unlock(&ln->mu);
    }
}

void source_nats_free(struct source_nats **sp)
{
    struct source_nats *src = *sp;
    if (!src)
        return;
    source_nats_stop(src);
    for (size_t i = 0; i < src->n; i++) {
        struct nats_link *ln = src->links[i];
        if (ln->started)
            pthread_join(ln->thread, NULL);
        /* batches still in the loop's inbox: back to the server */
        for (struct nats_batch *b = ln->posted, *next; b; b = next) {
            next = b->next;
            loop_cancel(src->loop, &b->task);
            for (int k = 0; k < b->list.Count; k++)
                natsMsg_Nak(b->list.Msgs[k], NULL);
            natsMsgList_Destroy(&b->list);
            free(b);
        }
        ln->posted = NULL;
        ln->src = NULL; /* messages still in hand only need the connection */
        link_unref(ln);
    }
    free(src->links);
    free(src);
    *sp = NULL;
}

void source_nats_library_close(void)
{
    nats_Close(); /* nothing to do if libnats was never used */
}
