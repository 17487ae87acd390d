/* test_s3event.c - unit tests for directory-trigger events (core/s3event.c):
 * the S3-notification shape read back with cJSON field by field, the key's
 * URL encoding (and that unquote_plus gives the bytes back), valid JSON for
 * names that are not UTF-8, the idempotency key, and ignored file names. */
#include "s3event.h"

#include "clock.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *at(const cJSON *v, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(v, key);
}

static const char *str_at(const cJSON *v, const char *key)
{
    return cJSON_GetStringValue(at(v, key));
}

/* Python's unquote_plus: '+' is a space, %XX a byte. */
static char *unquote_plus(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static void test_shape(void)
{
    const int64_t when = 1795426200123; /* 2026-11-23T09:30:00.123Z */
    struct file_event f = {
        .pipeline = "thumbnails",
        .bucket = "var/inbox/images",
        .key = "2026/holiday photo.jpg",
        .path = "/srv/sluice/var/inbox/images/2026/holiday photo.jpg",
        .size = 123456789,
        .inode = 42,
        .mtime_ns = 1795426199000000001,
        .event_ms = when,
    };
    char *json = s3event_json(&f);
    CHECK(json != NULL);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root != NULL);
    const cJSON *records = at(root, "Records");
    CHECK(cJSON_IsArray(records) && cJSON_GetArraySize(records) == 1);
    const cJSON *r = cJSON_GetArrayItem(records, 0);
    CHECK_STR(str_at(r, "eventVersion"), "2.1");
    CHECK_STR(str_at(r, "eventSource"), "sluice:directory");
    CHECK_STR(str_at(r, "eventName"), "ObjectCreated:Put");
    CHECK_STR(str_at(r, "awsRegion"), "local");
    char iso[32];
    clock_iso8601(when, iso);
    CHECK_STR(str_at(r, "eventTime"), iso);
    CHECK_STR(str_at(r, "eventTime"), "2026-11-23T09:30:00.123Z");
    const cJSON *s3 = at(r, "s3");
    CHECK(cJSON_IsObject(s3));
    CHECK_STR(str_at(s3, "s3SchemaVersion"), "1.0");
    CHECK_STR(str_at(s3, "configurationId"), "thumbnails");
    const cJSON *bucket = at(s3, "bucket");
    CHECK_STR(str_at(bucket, "name"), "var/inbox/images");
    CHECK_STR(str_at(bucket, "arn"), "arn:sluice:s3:::var/inbox/images");
    const cJSON *obj = at(s3, "object");
    CHECK(cJSON_IsObject(obj));
    CHECK_STR(str_at(obj, "key"), "2026/holiday+photo.jpg"); /* '/' kept, space '+' */
    CHECK(cJSON_IsNumber(at(obj, "size")));
    CHECK(cJSON_GetNumberValue(at(obj, "size")) == 123456789.0);
    CHECK_STR(str_at(obj, "path"), "/srv/sluice/var/inbox/images/2026/holiday photo.jpg");
    /* the sequencer is hex and orders versions of a key by mtime */
    const char *seq = str_at(obj, "sequencer");
    CHECK(seq && strlen(seq) >= 16 && strspn(seq, "0123456789ABCDEF") == strlen(seq));
    f.mtime_ns += 1000;
    char *json2 = s3event_json(&f);
    cJSON *root2 = json2 ? cJSON_Parse(json2) : NULL;
    const char *seq2 = str_at(at(at(cJSON_GetArrayItem(at(root2, "Records"), 0), "s3"), "object"),
                              "sequencer");
    CHECK(seq && seq2 && strlen(seq) == strlen(seq2) && strcmp(seq, seq2) < 0);
    cJSON_Delete(root2);
    free(json2);
    cJSON_Delete(root);
    free(json);
}

static void test_key_encoding(void)
{
    static const struct {
        const char *raw, *encoded;
    } cases[] = {
        {"plain.txt", "plain.txt"},
        {"a b", "a+b"},
        {"dir/sub dir/x", "dir/sub+dir/x"},
        {"a+b", "a%2Bb"},
        {"100%", "100%25"},
        {"caf\xc3\xa9.png", "caf%C3%A9.png"},
        {"q?x=1&y=#2", "q%3Fx%3D1%26y%3D%232"},
        {"keep-_.~", "keep-_.~"},
        {"tab\there", "tab%09here"},
        {"\xff\xfe", "%FF%FE"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *enc = s3event_url_encode(cases[i].raw);
        CHECK_STR(enc, cases[i].encoded);
        char *back = enc ? unquote_plus(enc) : NULL;
        CHECK_STR(back, cases[i].raw); /* byte for byte */
        free(back);
        free(enc);
    }
}

/* Names that are not UTF-8 still give valid JSON: the key keeps the exact
 * bytes (percent-encoded), the path and bucket use U+FFFD. */
static void test_invalid_utf8(void)
{
    struct file_event f = {
        .pipeline = "p",
        .bucket = "in\xc3",
        .key = "bad\xff\xfe name\xc0\xaf.txt",
        .path = "/in\xc3/bad\xff\xfe name\xc0\xaf.txt",
        .size = 1,
        .inode = 2,
        .mtime_ns = 3,
        .event_ms = 0,
    };
    char *json = s3event_json(&f);
    CHECK(json != NULL);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root != NULL);
    const cJSON *s3 = at(cJSON_GetArrayItem(at(root, "Records"), 0), "s3");
    const cJSON *obj = at(s3, "object");
    CHECK_STR(str_at(obj, "key"), "bad%FF%FE+name%C0%AF.txt");
    const char *path = str_at(obj, "path");
    CHECK_STR(path, "/in\xef\xbf\xbd/bad\xef\xbf\xbd\xef\xbf\xbd name\xef\xbf\xbd\xef\xbf\xbd.txt");
    CHECK_STR(str_at(at(s3, "bucket"), "name"), "in\xef\xbf\xbd");
    CHECK_STR(str_at(cJSON_GetArrayItem(at(root, "Records"), 0), "eventTime"),
              "1970-01-01T00:00:00.000Z");
    /* every byte of the output is valid UTF-8 (a strict reader accepts it) */
    int valid = 1;
    for (const unsigned char *c = (const unsigned char *)(json ? json : ""); *c;) {
        size_t n = *c < 0x80 ? 1 : (*c & 0xe0) == 0xc0 ? 2 : (*c & 0xf0) == 0xe0 ? 3
                                  : (*c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || (n == 2 && *c < 0xc2)) {
            valid = 0;
            break;
        }
        for (size_t k = 1; k < n; k++)
            if ((c[k] & 0xc0) != 0x80)
                valid = 0;
        if (!valid)
            break;
        c += n;
    }
    CHECK(valid);
    /* valid multi-byte UTF-8 in the path is kept as it is */
    f.path = "/in/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    char *json2 = s3event_json(&f);
    cJSON *root2 = json2 ? cJSON_Parse(json2) : NULL;
    CHECK_STR(str_at(at(at(cJSON_GetArrayItem(at(root2, "Records"), 0), "s3"), "object"), "path"),
              "/in/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    cJSON_Delete(root2);
    free(json2);
    cJSON_Delete(root);
    free(json);
}

static void test_event_id(void)
{
    struct file_event base = {.pipeline = "p", .bucket = "in", .key = "a.txt",
                              .path = "/in/a.txt", .size = 10, .inode = 7,
                              .mtime_ns = 1000, .event_ms = 5};
    char *id = s3event_id(&base);
    CHECK(id != NULL);
    CHECK_CONTAINS(id, "/in/a.txt");
    /* same file version: same id, whenever it was seen */
    struct file_event f = base;
    f.event_ms = 999999;
    char *same = s3event_id(&f);
    CHECK_STR(same, id);
    free(same);
    /* a change in size, mtime, inode or path: a new id */
    f = base;
    f.size = 11;
    char *by_size = s3event_id(&f);
    f = base;
    f.mtime_ns = 1001;
    char *by_mtime = s3event_id(&f);
    f = base;
    f.inode = 8;
    char *by_inode = s3event_id(&f);
    f = base;
    f.path = "/in/b.txt";
    char *by_path = s3event_id(&f);
    const char *ids[] = {id, by_size, by_mtime, by_inode, by_path};
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < i; j++)
            CHECK(ids[i] && ids[j] && strcmp(ids[i], ids[j]) != 0);
    /* numbers do not run into each other: size 1 + mtime 23 vs size 12 + mtime 3 */
    f = base;
    f.size = 1;
    f.mtime_ns = 23;
    char *x = s3event_id(&f);
    f.size = 12;
    f.mtime_ns = 3;
    char *y = s3event_id(&f);
    CHECK(x && y && strcmp(x, y) != 0);
    free(x);
    free(y);
    free(by_size);
    free(by_mtime);
    free(by_inode);
    free(by_path);
    free(id);
}

static void test_ignored_names(void)
{
    static const char *const ignored[] = {
        ".hidden", ".x.jpg", "notes.txt~", "#autosave#", "#x#", "upload.tmp", "a.temp",
        "movie.mkv.part", "big.partial", ".file.swp", "file.swp", "file.swx",
        "setup.exe.crdownload", "x.download", "y.filepart", "",
    };
    static const char *const kept[] = {
        "photo.jpg", "report.tmp.csv", "data.part1", "readme", "a~b", "#hash", "x#", "tmp",
        "part", "swp.txt", "file.SWPx", "holiday photo.png", "caf\xc3\xa9.txt",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        CHECK(s3event_ignored_name(ignored[i]));
        if (!s3event_ignored_name(ignored[i]))
            fprintf(stderr, "  should be ignored: \"%s\"\n", ignored[i]);
    }
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        CHECK(!s3event_ignored_name(kept[i]));
        if (s3event_ignored_name(kept[i]))
            fprintf(stderr, "  should not be ignored: \"%s\"\n", kept[i]);
    }
}

int main(void)
{
    test_shape();
    test_key_encoding();
    test_invalid_utf8();
    test_event_id();
    test_ignored_names();
    return test_summary();
}
