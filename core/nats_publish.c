/* nats_publish.c - JetStream publish with its ack (see nats_publish.h). */
#include "nats_publish.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "log.h"

#define PUBLISH_WAIT_MS 2000     /* the longest wait for one publish ack */

struct nats_publisher {
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    int timeout_ms;
    char *url;
    atomic_bool connected;      /* once, ever: set by libnats' thread (on_connected) */
};

int nats_fail(struct err *e, int status, const char *what)
{
    natsStatus s = (natsStatus)status;
    const char *last = nats_GetLastError(NULL);
    return err_set(e, "%s: %s%s%s", what, natsStatus_GetText(s), last && *last ? ": " : "",
                   last && *last ? last : "");
}

static natsStatus set_servers(natsOptions *opts, const char *urls)
{
    char *copy = strdup(urls), *save = NULL;
    const char *v[32];
    int n = 0;
    if (!copy)
        return NATS_NO_MEMORY;
    for (char *t = strtok_r(copy, ", ", &save); t && n < 32; t = strtok_r(NULL, ", ", &save))
        v[n++] = t;
    natsStatus s = n ? natsOptions_SetServers(opts, v, n) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

int nats_options_new(const char *urls, int timeout_ms, const char *creds, natsOptions **out)
{
    natsStatus s = natsOptions_Create(out);
    if (s == NATS_OK)
        s = set_servers(*out, urls);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(*out, timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(*out, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(*out, 500);
    if (s == NATS_OK && creds)
        s = natsOptions_SetUserCredentialsFromFiles(*out, creds, NULL);
    return s;
}

/* On a libnats thread: log only (the engine's state is the loop's). */
static void publish_failed(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    const char *id = NULL;
    (void)js;
    (void)closure;
    if (natsMsgHeader_Get(pae->Msg, "Nats-Msg-Id", &id) != NATS_OK)
        id = "?";
    log_msg(LOG_ERROR, "nats destination %s: the record of event %s was not stored: %s%s%s",
            natsMsg_GetSubject(pae->Msg), id, natsStatus_GetText(pae->Err),
            pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
}

/* With a callback, a connect that cannot be made now returns at once and
 * goes on in libnats' own thread; without one it would block until the
 * server is there (the loop with it). */
static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    atomic_store(&((struct nats_publisher *)closure)->connected, true);
}

int nats_publisher_open(const char *url, const char *creds, int timeout_ms, bool background,
                        struct nats_publisher **out, struct err *e)
{
    struct nats_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, "out of memory");
    p->timeout_ms = timeout_ms;
    if (!(p->url = strdup(url))) {
        free(p);
        return err_set(e, "out of memory");
    }
    natsStatus s = (natsStatus)nats_options_new(url, timeout_ms, creds, &p->opts);
    if (s == NATS_OK && background)
        s = natsOptions_SetRetryOnFailedConnect(p->opts, true, on_connected, p);
    if (s == NATS_OK)
        s = natsConnection_Connect(&p->nc, p->opts);
    if (s == NATS_OK)
        atomic_store(&p->connected, true);
    if (s == NATS_NOT_YET_CONNECTED && background)
        s = NATS_OK;
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = timeout_ms;
        jo.PublishAsync.ErrHandler = publish_failed;
        jo.PublishAsync.MaxPending = 65536;
        s = natsConnection_JetStream(&p->js, p->nc, &jo);
    }
    if (s != NATS_OK) {
        nats_fail(e, s, url);
        nats_publisher_close(&p);
        return -1;
    }
    *out = p;
    return 0;
}

int nats_publisher_send(struct nats_publisher *p, const char *subject, const char *data,
                        size_t len, const char *msg_id, bool *duplicate, uint64_t *seq,
                        struct err *e)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    /* a request sent just as its server went away is never answered: the
     * caller retries sooner than its whole timeout */
    po.MaxWait = p->timeout_ms < PUBLISH_WAIT_MS ? p->timeout_ms : PUBLISH_WAIT_MS;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&ack, p->js, subject, data, (int)len, &po, &jerr);
    if (s != NATS_OK) {
        if (s == NATS_NO_RESPONDERS)
            return err_set(e, "no JetStream stream takes subject %s (create one: `nats stream "
                           "add`, or a nats trigger with \"create\": true)", subject);
        return nats_fail(e, s, subject);
    }
    if (duplicate)
        *duplicate = ack->Duplicate;
    if (seq)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return 0;
}

int nats_publisher_post(struct nats_publisher *p, const char *subject, const char *data,
                        size_t len, const char *msg_id, struct err *e)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = PUBLISH_WAIT_MS; /* an ack that never comes fails (and is logged) then */
    /* before its first connect libnats knows nothing of the server and
     * refuses ("Not Supported By Server"): say what is going on instead */
    if (!atomic_load(&p->connected))
        return err_set(e, "%s: no connection to %s yet (sluice tries again every 0.5 s; is "
                       "nats-server running there?)", subject, p->url);
    natsStatus s = js_PublishAsync(p->js, subject, data, (int)len, &po);
    return s == NATS_OK ? 0 : nats_fail(e, s, subject);
}

void nats_publisher_close(struct nats_publisher **pp)
{
    struct nats_publisher *p = *pp;
    if (!p)
        return;
    if (p->js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = p->timeout_ms;
        if (js_PublishAsyncComplete(p->js, &po) == NATS_TIMEOUT)
            log_msg(LOG_WARN, "nats: publish acks still missing after %d ms; those records may "
                    "be lost", p->timeout_ms);
    }
    jsCtx_Destroy(p->js);
    if (p->nc)
        natsConnection_Close(p->nc);
    natsConnection_Destroy(p->nc);
    natsOptions_Destroy(p->opts);
    free(p->url);
    free(p);
    *pp = NULL;
}
