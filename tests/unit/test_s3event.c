/* test_s3event.c - unit tests for directory-trigger events (core/s3event.c):
 * the S3-notification shape read back with cJSON field by field, the key's
 * URL encoding (and that unquote_plus gives the bytes back), valid JSON for
 * names that are not UTF-8, the idempotency key, ignored file names, and
 * that the event and the id are byte for byte what the earlier cJSON-built
 * versions gave (kept below as the reference), for odd names and sizes. */
#include "s3event.h"

#include "clock.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
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

/* --- the reference: how the event and the id were built before (cJSON) --- */

static char *ref_utf8_clean(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1);
    char *o = out;
    const unsigned char *c = (const unsigned char *)s;
    while (out && *c) {
        size_t n = *c < 0x80 ? 1 : (*c & 0xe0) == 0xc0 ? 2 : (*c & 0xf0) == 0xe0 ? 3
                   : (*c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || (n == 2 && c[0] < 0xc2) || (n == 4 && c[0] > 0xf4))
            n = 0;
        for (size_t i = 1; i < n; i++)
            if ((c[i] & 0xc0) != 0x80)
                n = 0;
        if ((n == 3 && c[0] == 0xe0 && c[1] < 0xa0) || (n == 3 && c[0] == 0xed && c[1] >= 0xa0) ||
            (n == 4 && c[0] == 0xf0 && c[1] < 0x90) || (n == 4 && c[0] == 0xf4 && c[1] >= 0x90))
            n = 0;
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
    if (out)
        *o = '\0';
    return out;
}

static char *ref_json(const struct file_event *f)
{
    char when[32], seq[40], arn[4200];
    clock_iso8601(f->event_ms, when);
    char *key = s3event_url_encode(f->key);
    char *path = ref_utf8_clean(f->path);
    char *bucket = ref_utf8_clean(f->bucket);
    snprintf(seq, sizeof seq, "%016" PRIX64, (uint64_t)f->mtime_ns);
    snprintf(arn, sizeof arn, "arn:sluice:s3:::%s", bucket);
    cJSON *root = cJSON_CreateObject();
    cJSON *records = cJSON_AddArrayToObject(root, "Records");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "eventVersion", "2.1");
    cJSON_AddStringToObject(r, "eventSource", "sluice:directory");
    cJSON_AddStringToObject(r, "awsRegion", "local");
    cJSON_AddStringToObject(r, "eventTime", when);
    cJSON_AddStringToObject(r, "eventName", "ObjectCreated:Put");
    cJSON *s3 = cJSON_AddObjectToObject(r, "s3");
    cJSON *b = cJSON_AddObjectToObject(s3, "bucket");
    cJSON_AddStringToObject(s3, "s3SchemaVersion", "1.0");
    cJSON_AddStringToObject(s3, "configurationId", f->pipeline);
    cJSON_AddStringToObject(b, "name", bucket);
    cJSON_AddStringToObject(b, "arn", arn);
    cJSON *o = cJSON_AddObjectToObject(s3, "object");
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "size", (double)f->size);
    cJSON_AddStringToObject(o, "sequencer", seq);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddItemToArray(records, r);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(key);
    free(path);
    free(bucket);
    return text;
}

/* Valid UTF-8: cleaning changes nothing (an invalid byte grows to 3). */
static bool ref_utf8_valid(const char *s)
{
    char *clean = ref_utf8_clean(s);
    bool valid = clean && strcmp(clean, s) == 0;
    free(clean);
    return valid;
}

static char *ref_id(const struct file_event *f)
{
    char *encoded = ref_utf8_valid(f->path) ? NULL : s3event_url_encode(f->path);
    const char *path = encoded ? encoded : f->path;
    size_t len = strlen(path) + 80;
    char *id = malloc(len);
    if (id)
        snprintf(id, len, "file:%s@%" PRIu64 ":%" PRIu64 ":%" PRId64, path, f->inode, f->size,
                 f->mtime_ns);
    free(encoded);
    return id;
}

static int compared, differed;

static void compare(const struct file_event *f)
{
    char *want = ref_json(f), *got = s3event_json(f);
    char *want_id = ref_id(f), *got_id = s3event_id(f);
    compared++;
    CHECK(want && got && strcmp(want, got) == 0);
    CHECK(want_id && got_id && strcmp(want_id, got_id) == 0);
    if (!want || !got || strcmp(want, got) != 0 || !want_id || !got_id ||
        strcmp(want_id, got_id) != 0) {
        if (differed++ < 5)
            fprintf(stderr, "  want %s\n  got  %s\n  want id %s\n  got id  %s\n", want, got,
                    want_id, got_id);
    }
    cJSON *parsed = got ? cJSON_Parse(got) : NULL;
    CHECK(parsed != NULL);
    cJSON_Delete(parsed);
    free(want);
    free(got);
    free(want_id);
    free(got_id);
}

/* The event and the id are the same bytes as the cJSON-built ones. */
static void test_same_as_cjson(void)
{
    static const char *const names[] = {
        "a.txt", "holiday photo.jpg", "q\"uote", "back\\slash", "tab\there", "nl\nx",
        "cr\rx", "bs\bx", "ff\fx", "\x01\x02\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "bad\xff\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80\x80", "\xc3",
        "trail\xe2\x82", "fffd\xef\xbf\xbd", "per%cent+plus", "/slashes//x/", "</script>", "",
    };
    static const uint64_t sizes[] = {
        0, 1, 100, 2147483647ULL, 2147483648ULL, 4294967296ULL, 999999999999999ULL,
        1000000000000000ULL, 1234567890123456ULL, 9007199254740993ULL, 99999999999999999ULL,
        123456789012345678ULL, UINT64_MAX,
    };
    static const int64_t mtimes[] = {0, 1, -1, 1795426199000000001LL, INT64_MIN, INT64_MAX};
    static const char *const pipelines[] = {"p", "thumb nails", "q\"p\\", "caf\xc3\xa9", "x\xff"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1100], bucket[512];
        snprintf(bucket, sizeof bucket, "var/in%s", names[i]);
        snprintf(path, sizeof path, "/srv/%s/%s", bucket, names[i]);
        struct file_event f = {.pipeline = pipelines[i % 5], .bucket = bucket, .key = names[i],
                               .path = path, .size = sizes[i % 13], .inode = (uint64_t)i * 977,
                               .mtime_ns = mtimes[i % 6], .event_ms = 1795426200123 + (int64_t)i};
        compare(&f);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct file_event f = {.pipeline = "p", .bucket = "in", .key = "k", .path = "/in/k",
                               .size = sizes[i], .inode = sizes[i], .mtime_ns = mtimes[i % 6],
                               .event_ms = -1};
        compare(&f);
    }
    /* random names, every byte value (a fixed seed: the same every run) */
    uint32_t x = 2463534242u;
    for (int round = 0; round < 2000; round++) {
        char name[64];
        size_t n = (size_t)(round % 63);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            unsigned char c = (unsigned char)(x % 7 == 0 ? 0x80 + x % 0x80 : 1 + x % 255);
            name[k] = (char)c;
        }
        name[n] = '\0';
        char path[128];
        snprintf(path, sizeof path, "/in/%s", name);
        struct file_event f = {.pipeline = "p", .bucket = name, .key = name, .path = path,
                               .size = x, .inode = round, .mtime_ns = (int64_t)x * 1000003,
                               .event_ms = (int64_t)x * 7};
        compare(&f);
    }
    CHECK(compared > 2000 && differed == 0);
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
    test_same_as_cjson();
    return test_summary();
}
