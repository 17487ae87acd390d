/* plugin_config.c - declared plugin config keys (see plugin_config.h). The
 * checking itself is confmap's: the declared keys become a confmap table
 * over a scratch buffer, so the messages match pipeline keys word for word. */
#include "plugin_config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "confmap.h"
#include "json.h"

/* One confmap field per declared key. */
union scratch {
    char *s;
    int i;
    double d;
    bool b;
    struct strv v;
    const cJSON *j;
};

static enum confmap_type confmap_type_of(int t)
{
    switch (t) {
    case SL_CONFIG_STRING: return CONFMAP_STRING;
    case SL_CONFIG_INTEGER: return CONFMAP_INT;
    case SL_CONFIG_NUMBER: return CONFMAP_NUMBER;
    case SL_CONFIG_BOOL: return CONFMAP_BOOL;
    case SL_CONFIG_STRINGS: return CONFMAP_STRINGS;
    case SL_CONFIG_ARRAY: return CONFMAP_ARRAY;
    default: return CONFMAP_OBJECT;
    }
}

/* Type-check and look for unknown keys. Keys of type ANY take any value, so
 * confmap sees the config without them (their names stay known). */
static int check_types(const sl_config_key *keys, size_t n, const cJSON *cfg, const char *file,
                       const char *where, struct diag *d)
{
    struct confmap *map = calloc(n + 1, sizeof *map);
    union scratch *dst = calloc(n + 1, sizeof *dst);
    cJSON *typed = cJSON_Duplicate(cfg, 1);
    if (!map || !dst || !typed) {
        free(map);
        free(dst);
        cJSON_Delete(typed);
        diag_error(d, file, "%s: out of memory", where);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        map[i] = (struct confmap){.key = keys[i].name, .type = confmap_type_of(keys[i].type),
                                  .offset = i * sizeof *dst, .min = INT_MIN, .max = INT_MAX,
                                  .help = keys[i].help};
        if (map[i].type == CONFMAP_NUMBER) {
            map[i].min = -1e308;
            map[i].max = 1e308;
        }
        if (keys[i].type == SL_CONFIG_ANY)
            cJSON_DeleteItemFromObjectCaseSensitive(typed, keys[i].name);
    }
    int errors = confmap_apply(map, typed, dst, file, where, d);
    confmap_release(map, dst);
    cJSON_Delete(typed);
    free(dst);
    free(map);
    return errors;
}

/* Required keys present, defaults filled in. */
static int complete(const sl_config_key *keys, size_t n, cJSON *cfg, const char *file,
                    const char *where, struct diag *d)
{
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        if (cJSON_GetObjectItemCaseSensitive(cfg, keys[i].name))
            continue;
        if (keys[i].required) {
            diag_error(d, file, "%s: missing required key \"%s\"%s%s", where, keys[i].name,
                       keys[i].help ? ": " : "", keys[i].help ? keys[i].help : "");
            errors++;
            continue;
        }
        if (!keys[i].default_json)
            continue;
        size_t at;
        cJSON *v = json_parse_strict(keys[i].default_json, strlen(keys[i].default_json), &at, NULL);
        if (!v || !cJSON_AddItemToObject(cfg, keys[i].name, v)) {
            cJSON_Delete(v);
            diag_error(d, file, "%s.%s: the plugin declares a default that is not JSON (%s): "
                       "fix the plugin's config_keys", where, keys[i].name, keys[i].default_json);
            errors++;
        }
    }
    return errors;
}

int plugin_config_check(const sl_config_key *keys, const char *config, const char *file,
                        const char *where, struct diag *d, char **merged)
{
    *merged = NULL;
    size_t at;
    cJSON *cfg = json_parse_strict(config, strlen(config), &at, NULL);
    if (!cfg) {
        diag_error(d, file, "%s: not valid JSON (at byte %zu)", where, at);
        return 1;
    }
    int errors = 0;
    if (keys) {
        size_t n = 0;
        while (keys[n].name)
            n++;
        errors = check_types(keys, n, cfg, file, where, d);
        if (cJSON_IsObject(cfg)) /* a missing key is worth saying beside a wrong one */
            errors += complete(keys, n, cfg, file, where, d);
    }
    if (errors == 0 && !(*merged = cJSON_PrintUnformatted(cfg))) {
        diag_error(d, file, "%s: out of memory", where);
        errors = 1;
    }
    cJSON_Delete(cfg);
    return errors;
}
