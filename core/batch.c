/* batch.c - SQS-shaped batch records and Lambda's batchItemFailures rules
 * (see batch.h). */
#include "batch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *record(const struct batch_origin *o, const struct batch_item *it)
{
    char num[32], arn[400], handle[200];
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "messageId", it->message_id);
    snprintf(handle, sizeof handle, "%.120s#%d", it->message_id, it->receive_count);
    cJSON_AddStringToObject(r, "receiptHandle", handle);
    cJSON_AddStringToObject(r, "body", it->body ? it->body : "");
    cJSON *attrs = cJSON_AddObjectToObject(r, "attributes");
    snprintf(num, sizeof num, "%d", it->receive_count);
    cJSON_AddStringToObject(attrs, "ApproximateReceiveCount", num);
    snprintf(num, sizeof num, "%lld", (long long)it->sent_ms);
    cJSON_AddStringToObject(attrs, "SentTimestamp", num);
    cJSON_AddStringToObject(attrs, "SenderId", "sluice");
    cJSON_AddStringToObject(attrs, "ApproximateFirstReceiveTimestamp", num);
    cJSON *ma = cJSON_AddObjectToObject(r, "messageAttributes");
    cJSON *src = cJSON_AddObjectToObject(ma, "source");
    cJSON_AddStringToObject(src, "stringValue", it->source ? it->source : "");
    cJSON_AddStringToObject(src, "dataType", "String");
    cJSON_AddStringToObject(r, "eventSource", "aws:sqs");
    snprintf(arn, sizeof arn, "arn:sluice:sqs:%.60s:000000000000:%.300s", o->region,
             o->pipeline);
    cJSON_AddStringToObject(r, "eventSourceARN", arn);
    cJSON_AddStringToObject(r, "awsRegion", o->region);
    return r;
}

char *batch_event_json(const struct batch_origin *o, const struct batch_item *items, size_t n,
                       const bool *active)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *records = cJSON_AddArrayToObject(root, "Records");
    for (size_t i = 0; records && i < n; i++)
        if (!active || active[i])
            cJSON_AddItemToArray(records, record(o, &items[i]));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* The active item whose messageId is id, or n. */
static size_t find(const struct batch_item *items, size_t n, const bool *active, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if ((!active || active[i]) && strcmp(items[i].message_id, id) == 0)
            return i;
    return n;
}

static enum batch_verdict all_failed(size_t n, const bool *active, bool *failed)
{
    for (size_t i = 0; i < n; i++)
        failed[i] = !active || active[i];
    return BATCH_ALL_FAILED;
}

enum batch_verdict batch_read_failures(const char *answer, const struct batch_item *items,
                                       size_t n, const bool *active, bool *failed, char *why,
                                       size_t why_len)
{
    memset(failed, 0, n * sizeof *failed);
    cJSON *v = answer ? cJSON_Parse(answer) : NULL;
    const cJSON *list = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "batchItemFailures")
                                          : NULL;
    enum batch_verdict verdict = BATCH_ALL_OK;
    if (!list || cJSON_IsNull(list)) {
        cJSON_Delete(v);
        return verdict;
    }
    if (!cJSON_IsArray(list)) {
        snprintf(why, why_len, "batchItemFailures is not a list");
        cJSON_Delete(v);
        return all_failed(n, active, failed);
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "itemIdentifier");
        size_t at = cJSON_IsString(id) && id->valuestring[0]
                        ? find(items, n, active, id->valuestring) : n;
        if (at == n) {
            char *text = id ? cJSON_PrintUnformatted(id) : NULL;
            snprintf(why, why_len, "batchItemFailures names itemIdentifier %.200s, which is %s",
                     text ? text : "(none)",
                     cJSON_IsString(id) && id->valuestring[0] ? "not a messageId of this batch"
                                                              : "empty or not a string");
            free(text);
            cJSON_Delete(v);
            return all_failed(n, active, failed);
        }
        failed[at] = true;
        verdict = BATCH_SOME_FAILED;
    }
    cJSON_Delete(v);
    return verdict;
}
