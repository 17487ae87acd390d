/* s3event.h - the event a directory trigger sends: shaped like an S3
 * notification, so handlers written against S3 events work unchanged.
 *
 *   {"Records":[{"eventVersion":"2.1","eventSource":"sluice:directory",
 *     "awsRegion":"local","eventTime":"...","eventName":"ObjectCreated:Put",
 *     "s3":{"s3SchemaVersion":"1.0","configurationId":PIPELINE,
 *       "bucket":{"name":DIR,"arn":"arn:sluice:s3:::DIR"},
 *       "object":{"key":KEY,"size":N,"sequencer":"...","path":"/abs/path"}}}]}
 *
 * bucket.name is the trigger folder as the pipeline names it; key is the
 * file's path below it, URL-encoded as S3 encodes keys (so unquote_plus
 * gives the name back, byte for byte); path is the absolute path.
 */
#ifndef SLUICE_S3EVENT_H
#define SLUICE_S3EVENT_H

#include <stdbool.h>
#include <stdint.h>

struct file_event {
    const char *pipeline;
    const char *bucket;         /* trigger folder as written */
    const char *key;            /* path relative to the folder, raw bytes */
    const char *path;           /* absolute path */
    uint64_t size;
    uint64_t inode;
    int64_t mtime_ns;
    int64_t event_ms;           /* when sluice saw it complete */
};

/* The event JSON, or NULL when out of memory. Free with free(). */
char *s3event_json(const struct file_event *f);
/* The idempotency key of a file version: path, inode, size and mtime. */
char *s3event_id(const struct file_event *f);
/* Hidden and temporary files are never events: ".x", "x~", "#x#", and
 * names ending in .tmp .temp .part .partial .swp .swx .crdownload .download
 * .filepart. Writers that drop files this way rename them when complete. */
bool s3event_ignored_name(const char *name);
/* Percent-encode a key as S3 notifications do (space as '+'). */
char *s3event_url_encode(const char *key);

#endif
