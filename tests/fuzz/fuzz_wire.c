/* fuzz_wire.c - the worker protocol decoders: a compromised worker may send
 * any bytes; decoding must refuse them, never read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_frame f = {.len = (uint32_t)size, .data = malloc(size + 1)};
    if (!f.data)
        return 0;
    memcpy(f.data, data, size);
    f.data[size] = '\0';
    struct err e;
    struct wire_result r;
    struct wire_invoke in;
    int level;
    const char *msg;
    f.type = WIRE_RESULT;
    wire_decode_result(&f, &r, &e);
    f.type = WIRE_INVOKE;
    wire_decode_invoke(&f, &in, &e);
    f.type = WIRE_INVOKE_IDS; /* ids decoded in place: they must end inside the frame */
    if (wire_decode_invoke(&f, &in, &e) == 0) {
        volatile size_t n = (in.event_id ? strlen(in.event_id) : 0) +
                            (in.source ? strlen(in.source) : 0);
        (void)n;
    }
    f.type = WIRE_LOG;
    wire_decode_log(&f, &level, &msg, &e);
    free(f.data);
    return 0;
}
