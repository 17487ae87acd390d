/* test_batch.c - unit tests for core/batch.c: the SQS record shape and
 * Lambda's batchItemFailures rules (a named item fails alone; an empty,
 * null, non-string or unknown itemIdentifier, or a batchItemFailures that is
 * not a list, fails every active item; nothing named is a success). */
#include "batch.h"

#include "test.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const struct batch_item items[] = {
    {.message_id = "m-0", .source = "zmq:a", .body = "{\"i\":0}", .receive_count = 1,
     .sent_ms = 1700000000000},
    {.message_id = "m-1", .source = "zmq:a", .body = "not json", .receive_count = 1,
     .sent_ms = 1700000000001},
    {.message_id = "m-2", .source = "zmq:a", .body = "", .receive_count = 1, .sent_ms = 2},
};
#define N 3

static void test_records_have_the_sqs_shape(void)
{
    struct batch_origin o = {.pipeline = "orders", .region = "eu-test-1"};
    bool active[N] = {true, false, true};
    char *text = batch_event_json(&o, items, N, active);
    cJSON *v = cJSON_Parse(text);
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(v, "Records");
    CHECK(cJSON_GetArraySize(records) == 2);
    const cJSON *r = cJSON_GetArrayItem(records, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "messageId")), "m-0");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "body")), "{\"i\":0}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "eventSource")), "aws:sqs");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "eventSourceARN")),
              "arn:sluice:sqs:eu-test-1:000000000000:orders");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "awsRegion")), "eu-test-1");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(r, "attributes");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(attrs, "ApproximateReceiveCount")), "1");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(attrs, "SentTimestamp")),
              "1700000000000");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r, "messageAttributes"), "source");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "stringValue")), "zmq:a");
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "receiptHandle")));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(records, 1),
                                                                    "body")), "");
    cJSON_Delete(v);
    free(text);
}

static enum batch_verdict read(const char *answer, const bool *active, bool *failed, char *why)
{
    why[0] = '\0';
    return batch_read_failures(answer, items, N, active, failed, why, 300);
}

static void test_rules(void)
{
    bool all[N] = {true, true, true}, some[N] = {true, false, true}, failed[N];
    char why[300];
    /* nothing named: every item succeeded */
    const char *ok[] = {NULL, "null", "{}", "[1,2]", "{\"batchItemFailures\": []}",
                        "{\"batchItemFailures\": null}", "\"text\""};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        CHECK(read(ok[i], all, failed, why) == BATCH_ALL_OK);
        CHECK(!failed[0] && !failed[1] && !failed[2]);
    }
    /* named items fail alone */
    CHECK(read("{\"batchItemFailures\": [{\"itemIdentifier\": \"m-2\"}]}", all, failed, why) ==
          BATCH_SOME_FAILED);
    CHECK(!failed[0] && !failed[1] && failed[2]);
    /* an id not in the batch, or of an item not in this round, fails everything active */
    const char *bad[] = {"{\"batchItemFailures\": [{\"itemIdentifier\": \"m-9\"}]}",
                         "{\"batchItemFailures\": [{\"itemIdentifier\": \"m-1\"}]}",
                         "{\"batchItemFailures\": [{\"itemIdentifier\": \"\"}]}",
                         "{\"batchItemFailures\": [{\"itemIdentifier\": null}]}",
                         "{\"batchItemFailures\": [{\"itemIdentifier\": 0}]}",
                         "{\"batchItemFailures\": [{}]}",
                         "{\"batchItemFailures\": [\"m-0\"]}",
                         "{\"batchItemFailures\": {\"itemIdentifier\": \"m-0\"}}",
                         ("{\"batchItemFailures\": [{\"itemIdentifier\": \"m-0\"}, "
                          "{\"itemIdentifier\": \"nope\"}]}")};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(read(bad[i], some, failed, why) == BATCH_ALL_FAILED);
        CHECK(failed[0] && !failed[1] && failed[2]);
        CHECK(why[0] != '\0');
    }
    read("{\"batchItemFailures\": [{\"itemIdentifier\": \"m-9\"}]}", all, failed, why);
    CHECK_CONTAINS(why, "not a messageId of this batch");
    read("{\"batchItemFailures\": [{\"itemIdentifier\": \"\"}]}", all, failed, why);
    CHECK_CONTAINS(why, "empty or not a string");
}

int main(void)
{
    test_records_have_the_sqs_shape();
    test_rules();
    return test_summary();
}
