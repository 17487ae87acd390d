/* fuzz_json.c - the strict JSON checker plugins get through the host
 * (core/json.c): any bytes are checked without reading out of bounds, what
 * it accepts cJSON parses, and the response writer turns any bytes into a
 * JSON string that the checker accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1); /* no NUL after it: the checker must not need one */
    if (!text)
        return 0;
    memcpy(text, data, size);
    size_t at;
    const char *what = NULL;
    cJSON *v = json_parse_strict(text, size, &at, &what);
    if (!v && !what)
        abort(); /* a refusal always says why */
    cJSON_Delete(v);
    struct json_writer w;
    jw_init(&w);
    jw_array(&w);
    jw_string(&w, text, size);
    jw_close(&w);
    size_t len = 0;
    char *out = jw_take(&w, &len);
    if (out && !json_check(out, len, &at, NULL))
        abort(); /* the writer wrote something that is not JSON */
    free(out);
    free(text);
    return 0;
}
