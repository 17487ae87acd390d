/* confmap.h - declared configuration: a table of {key, type, offset, limits,
 * help} that fills a struct from a JSON object in one call.
 *
 * Both sluice.json and pipeline files are read through tables like this, so
 * every key is typed, range-checked and documented in one place, and unknown
 * keys are reported (with a "did you mean" when one is close).
 */
#ifndef SLUICE_CONFMAP_H
#define SLUICE_CONFMAP_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "diag.h"

enum confmap_type {
    CONFMAP_STRING,     /* char * (owned copy) */
    CONFMAP_INT,        /* int, within [min, max] */
    CONFMAP_NUMBER,     /* double, within [min, max] */
    CONFMAP_BOOL,       /* bool */
    CONFMAP_STRINGS,    /* struct strv: a string or an array of strings */
    CONFMAP_OBJECT,     /* const cJSON * (borrowed from the document) */
    CONFMAP_ARRAY,      /* const cJSON * (borrowed from the document) */
};

struct strv {
    char **v;
    size_t n;
};

struct confmap {
    const char *key;
    enum confmap_type type;
    size_t offset;
    double min, max;    /* for CONFMAP_INT and CONFMAP_NUMBER */
    const char *help;
};

/* Fill dst from obj. `where` prefixes messages ("steps[1]"), `file` names the
 * file. Every problem is added to d; returns the number of errors added. Keys
 * absent from obj leave dst's defaults untouched. map ends with key == NULL. */
int confmap_apply(const struct confmap *map, const cJSON *obj, void *dst,
                  const char *file, const char *where, struct diag *d);

/* Free the strings a table filled in dst. */
void confmap_release(const struct confmap *map, void *dst);

void strv_free(struct strv *s);

#endif
