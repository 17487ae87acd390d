/* fuzz_pipeline.c - pipeline files and sluice.json: any bytes must parse or
 * be refused with messages, never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "diag.h"
#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d = {0};
    struct config *cfg = NULL;
    /* the first half as sluice.json, all of it as a pipeline file */
    config_parse("fuzz/sluice.json", (const char *)data, size / 2, &cfg, &d);
    struct config *def = NULL;
    if (!cfg)
        config_parse("fuzz/sluice.json", "{}", 2, &def, &d);
    struct pipeline *p = NULL;
    pipeline_parse("fuzz/p.json", (const char *)data, size, cfg ? cfg : def, &p, &d);
    pipeline_free(&p);
    config_free(&cfg);
    config_free(&def);
    diag_free(&d);
    return 0;
}
