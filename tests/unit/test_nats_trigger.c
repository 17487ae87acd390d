/* test_nats_trigger.c - unit tests for the `nats` trigger's keys (core/nats_trigger.c,
 * through pipeline_load as `sluice check` reads them): a full trigger and its defaults, each
 * missing key, names JetStream refuses, tls, and a trigger with another kind. */
#include "pipeline.h"

#include "config.h"
#include "nats_trigger.h"
#include "test.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;
static struct config cfg;

static int load(const char *trigger, struct pipeline **p, struct diag *d)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"name\": \"orders\", \"isolation\": \"thread\", \"trigger\": "
             "%s, \"steps\": [{\"handler\": \"echo.handler\"}]}", trigger);
    char *file = tu_path(tmp, "orders.json");
    CHECK(tu_write(file, text) == 0);
    int rc = pipeline_load(file, &cfg, p, d);
    free(file);
    return rc;
}

/* The trigger must be refused with a message containing want. */
static void expect_error(const char *trigger, const char *want)
{
    struct pipeline *p = NULL;
    struct diag d = {0};
    CHECK(load(trigger, &p, &d) == -1);
    const char *hit = NULL;
    for (size_t i = 0; i < d.n; i++)
        if (strstr(d.items[i].text, want))
            hit = d.items[i].text;
    CHECK_CONTAINS(hit, want);
    if (!hit)
        tu_diag_dump(trigger, &d);
    pipeline_free(&p);
    diag_free(&d);
}

static void test_full_trigger_and_defaults(void)
{
    struct pipeline *p = NULL;
    struct diag d = {0};
    CHECK(load("{\"nats\": {\"url\": \"nats://127.0.0.1:4222\", \"stream\": \"ORDERS\", "
               "\"subject\": \"orders.>\", \"consumer\": \"sluice-orders\"}, "
               "\"match\": {\"prefix\": \"orders.eu\"}}", &p, &d) == 0);
    CHECK(d.errors == 0);
    CHECK(p && p->trigger == TRIGGER_NATS && p->nats && p->match);
    if (p && p->nats) {
        CHECK_STR(p->nats->url, "nats://127.0.0.1:4222");
        CHECK_STR(p->nats->stream, "ORDERS");
        CHECK_STR(p->nats->subject, "orders.>");
        CHECK_STR(p->nats->consumer, "sluice-orders");
        CHECK(!p->nats->create && !p->nats->tls && !p->nats->creds);
        CHECK(p->nats->ack_wait_ms == 30000 && p->nats->max_deliver == 10);
        CHECK(p->nats->replicas == 1 && p->nats->nak_delay_ms == 1000);
    }
    pipeline_free(&p);
    diag_free(&d);
    CHECK(load("{\"nats\": {\"url\": \"nats://a:4222,nats://b:4222\", \"stream\": \"S\", "
               "\"subject\": \"s.*\", \"consumer\": \"c\", \"create\": true, \"replicas\": 3, "
               "\"ack_wait_ms\": 5000, \"max_deliver\": -1, \"creds\": \"/etc/u.creds\", "
               "\"tls\": {\"ca\": \"/etc/ca.pem\"}}}", &p, &d) == 0);
    if (p && p->nats) {
        CHECK(p->nats->create && p->nats->replicas == 3 && p->nats->ack_wait_ms == 5000);
        CHECK(p->nats->max_deliver == -1 && p->nats->tls);
        CHECK_STR(p->nats->creds, "/etc/u.creds");
        CHECK_STR(p->nats->tls_ca, "/etc/ca.pem");
    }
    pipeline_free(&p);
    diag_free(&d);
}

static void test_errors(void)
{
    expect_error("{\"nats\": {\"stream\": \"S\", \"subject\": \"s\", \"consumer\": \"c\"}}",
                 "trigger.nats: missing \"url\", e.g. \"nats://127.0.0.1:4222\"");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"subject\": \"s\", \"consumer\": \"c\"}}",
                 "trigger.nats: missing \"stream\"");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"consumer\": \"c\"}}",
                 "trigger.nats: missing \"subject\"");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\"}}",
                 "trigger.nats: missing \"consumer\"");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"a.b\"}}", "trigger.nats.consumer: \"a.b\": a durable name");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S.1\", \"subject\": \"s\", "
                 "\"consumer\": \"c\"}}", "trigger.nats.stream: \"S.1\": a stream name");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"c\", \"max_deliver\": 0}}", "trigger.nats.max_deliver: 0");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"c\", \"replicas\": 7}}", "trigger.nats.replicas");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"c\", \"tls\": {\"cert\": \"c.pem\"}}}",
                 "trigger.nats.tls: \"cert\" needs its \"key\"");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"c\", \"creat\": true}}", "creat");
    expect_error("{\"nats\": {\"url\": \"nats://h\", \"stream\": \"S\", \"subject\": \"s\", "
                 "\"consumer\": \"c\"}, \"zmq\": {}}", "or \"nats\", not 2");
}

int main(void)
{
    tmp = tu_mkdtemp("nats-trigger");
    cfg.file = "sluice.json";
    cfg.base_dir = tmp;
    cfg.workers = 2;
    test_full_trigger_and_defaults();
    test_errors();
    tu_rm_rf(tmp);
    free(tmp);
    return test_summary();
}
