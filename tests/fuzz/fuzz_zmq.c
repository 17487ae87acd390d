/* fuzz_zmq.c - the ZeroMQ message check: the input is cut into frames at
 * each 0xFF byte (so frames may hold NULs), as a hostile producer sends. */
#include <stdint.h>
#include <string.h>

#include "source_zmq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zmq_frame f[8];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < 8; i++) {
        if (i == size || data[i] == 0xff) {
            f[n++] = (struct zmq_frame){.data = data + start, .size = i - start};
            start = i + 1;
        }
    }
    char reason[200];
    source_zmq_check_event(f, n, reason, sizeof reason);
    return 0;
}
