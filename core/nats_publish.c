/* nats_publish.c - JetStream publish with its ack (see nats_publish.h). */
#include "nats_publish.h"

#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

struct nats_publisher {
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    int timeout_ms;
};

static int fail(struct err *e, natsStatus s, const char *what)
{
    const char *last = nats_GetLastError(NULL);
    return err_set(e, "%s: %s%s%s", what, natsStatus_GetText(s), last && *last ? ": " : "",
                   last && *last ? last : "");
}

int nats_publisher_open(const char *url, const char *creds, int timeout_ms,
                        struct nats_publisher **out, struct err *e)
{
    struct nats_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, "out of memory");
    p->timeout_ms = timeout_ms;
    natsStatus s = natsOptions_Create(&p->opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(p->opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(p->opts, timeout_ms);
    if (s == NATS_OK) /* through a server restart or a leader change */
        s = natsOptions_SetMaxReconnect(p->opts, -1);
    if (s == NATS_OK && creds)
        s = natsOptions_SetUserCredentialsFromFiles(p->opts, creds, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&p->nc, p->opts);
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = timeout_ms;
        s = natsConnection_JetStream(&p->js, p->nc, &jo);
    }
    if (s != NATS_OK) {
        fail(e, s, url);
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
    po.MaxWait = p->timeout_ms;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&ack, p->js, subject, data, (int)len, &po, &jerr);
    if (s != NATS_OK) {
        if (s == NATS_NO_RESPONDERS)
            return err_set(e, "no JetStream stream takes subject %s (create one: `nats stream "
                           "add`, or a nats trigger with \"create\": true)", subject);
        return fail(e, s, subject);
    }
    if (duplicate)
        *duplicate = ack->Duplicate;
    if (seq)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return 0;
}

void nats_publisher_close(struct nats_publisher **pp)
{
    struct nats_publisher *p = *pp;
    if (!p)
        return;
    jsCtx_Destroy(p->js);
    if (p->nc)
        natsConnection_Close(p->nc);
    natsConnection_Destroy(p->nc);
    natsOptions_Destroy(p->opts);
    free(p);
    *pp = NULL;
}
