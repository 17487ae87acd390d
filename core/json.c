/* json.c - strict parsing (see json.h). */
#include "json.h"

#include <string.h>

cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at)
{
    const char *nul = memchr(text, 0, len);
    if (nul) {
        *error_at = (size_t)(nul - text);
        return NULL;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        *error_at = end ? (size_t)(end - text) : 0;
        return NULL;
    }
    while (end < text + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != text + len) {
        *error_at = (size_t)(end - text);
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}
