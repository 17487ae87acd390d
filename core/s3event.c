/* s3event.c - builds S3-notification-shaped events (see s3event.h). */
#include "s3event.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

bool s3event_ignored_name(const char *name)
{
    static const char *const suffixes[] = {".tmp", ".temp", ".part", ".partial", ".swp", ".swx",
                                           ".crdownload", ".download", ".filepart", "~"};
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.' || (name[0] == '#' && name[n - 1] == '#'))
        return true;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
            return true;
    }
    return false;
}

char *s3event_url_encode(const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(key) * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-_.~/", *c)) {
            *o++ = (char)*c;
        } else if (*c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* A copy with invalid UTF-8 bytes replaced by U+FFFD, so the JSON stays
 * valid; the URL-encoded key keeps the exact bytes. */
static char *utf8_clean(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    const unsigned char *c = (const unsigned char *)s;
    while (*c) {
        size_t n = utf8_seq(c);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            c++;
            continue;
        }
        memcpy(o, c, n);
        o += n;
        c += n;
    }
    *o = '\0';
    return out;
}

static cJSON *object_part(const struct file_event *f)
{
    char *key = s3event_url_encode(f->key);
    char *path = utf8_clean(f->path);
    char seq[40];
    snprintf(seq, sizeof seq, "%016" PRIX64, (uint64_t)f->mtime_ns);
    cJSON *o = cJSON_CreateObject();
    if (!key || !path || !o || !cJSON_AddStringToObject(o, "key", key) ||
        !cJSON_AddNumberToObject(o, "size", (double)f->size) ||
        !cJSON_AddStringToObject(o, "sequencer", seq) ||
        !cJSON_AddStringToObject(o, "path", path)) {
        cJSON_Delete(o);
        o = NULL;
    }
    free(key);
    free(path);
    return o;
}

static cJSON *s3_part(const struct file_event *f)
{
    char *bucket = utf8_clean(f->bucket);
    char arn[4200];
    cJSON *s3 = cJSON_CreateObject();
    cJSON *b = cJSON_AddObjectToObject(s3, "bucket");
    cJSON *o = object_part(f);
    if (bucket)
        snprintf(arn, sizeof arn, "arn:sluice:s3:::%s", bucket);
    if (!bucket || !s3 || !b || !o || !cJSON_AddStringToObject(s3, "s3SchemaVersion", "1.0") ||
        !cJSON_AddStringToObject(s3, "configurationId", f->pipeline) ||
        !cJSON_AddStringToObject(b, "name", bucket) || !cJSON_AddStringToObject(b, "arn", arn) ||
        !cJSON_AddItemToObject(s3, "object", o)) {
        cJSON_Delete(o);
        cJSON_Delete(s3);
        s3 = NULL;
    }
    free(bucket);
    return s3;
}

char *s3event_json(const struct file_event *f)
{
    char when[32];
    clock_iso8601(f->event_ms, when);
    cJSON *root = cJSON_CreateObject();
    cJSON *records = cJSON_AddArrayToObject(root, "Records");
    cJSON *r = cJSON_CreateObject();
    cJSON *s3 = s3_part(f);
    char *text = NULL;
    if (root && records && r && s3 && cJSON_AddStringToObject(r, "eventVersion", "2.1") &&
        cJSON_AddStringToObject(r, "eventSource", "sluice:directory") &&
        cJSON_AddStringToObject(r, "awsRegion", "local") &&
        cJSON_AddStringToObject(r, "eventTime", when) &&
        cJSON_AddStringToObject(r, "eventName", "ObjectCreated:Put") &&
        cJSON_AddItemToObject(r, "s3", s3)) {
        s3 = NULL;
        if (cJSON_AddItemToArray(records, r)) {
            r = NULL;
            text = cJSON_PrintUnformatted(root);
        }
    }
    cJSON_Delete(s3);
    cJSON_Delete(r);
    cJSON_Delete(root);
    return text;
}

static bool utf8_valid(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_seq(c);
        if (n == 0)
            return false;
        c += n;
    }
    return true;
}

char *s3event_id(const struct file_event *f)
{
    /* the id goes into TEXT columns: a name that is not UTF-8 is kept
     * exactly, percent-encoded, rather than made invalid or lossy */
    char *encoded = utf8_valid(f->path) ? NULL : s3event_url_encode(f->path);
    const char *path = encoded ? encoded : f->path;
    size_t len = strlen(path) + 80;
    char *id = malloc(len);
    if (id)
        snprintf(id, len, "file:%s@%" PRIu64 ":%" PRIu64 ":%" PRId64, path, f->inode, f->size,
                 f->mtime_ns);
    free(encoded);
    return id;
}
