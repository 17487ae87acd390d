/* fuzz_s3event.c - directory events from odd file names (newlines, invalid
 * UTF-8, very long): the event must always be valid JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    char *path = malloc(size + 16);
    if (!name || !path) {
        free(name);
        free(path);
        return 0;
    }
    memcpy(name, data, size);
    name[size] = '\0';
    memcpy(path, "/inbox/", 7);
    memcpy(path + 7, name, size + 1);
    struct file_event fe = {.pipeline = "p", .bucket = name, .key = name, .path = path,
                            .size = size, .inode = 1, .mtime_ns = 2, .event_ms = 3};
    char *json = s3event_json(&fe);
    if (json) {
        cJSON *v = cJSON_Parse(json);
        if (!v)
            abort(); /* an event that is not JSON is a bug */
        cJSON_Delete(v);
    }
    s3event_ignored_name(name);
    free(json);
    free(name);
    free(path);
    return 0;
}
