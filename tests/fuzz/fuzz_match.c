/* fuzz_match.c - match filters: pattern and event from the input (split at
 * the first NUL), tested against a subject. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    cJSON *pattern = cJSON_ParseWithLength((const char *)data, plen);
    cJSON *event = nul ? cJSON_ParseWithLength((const char *)nul + 1, size - plen - 1) : NULL;
    struct match *m = NULL;
    struct err e;
    if (match_compile(pattern, &m, &e) == 0) {
        match_test(m, "images/a.jpg", event);
        match_test(m, NULL, event);
        match_test(m, "", NULL);
    }
    match_free(&m);
    cJSON_Delete(pattern);
    cJSON_Delete(event);
    return 0;
}
