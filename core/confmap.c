/* confmap.c - fills structs from JSON through declared tables (confmap.h). */
#include "confmap.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "null";
}

static const char *type_wanted(enum confmap_type t)
{
    switch (t) {
    case CONFMAP_STRING: return "a string";
    case CONFMAP_INT: return "an integer";
    case CONFMAP_NUMBER: return "a number";
    case CONFMAP_BOOL: return "true or false";
    case CONFMAP_STRINGS: return "a string or an array of strings";
    case CONFMAP_OBJECT: return "an object";
    case CONFMAP_ARRAY: return "an array";
    }
    return "?";
}

/* Levenshtein distance, capped; short keys only. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag_prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag_prev + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag_prev = up;
        }
    }
    return row[lb];
}

static const struct confmap *find_key(const struct confmap *map, const char *key)
{
    for (; map->key; map++)
        if (strcmp(map->key, key) == 0)
            return map;
    return NULL;
}

static void report_unknown(const struct confmap *map, const char *key, const char *file,
                           const char *where, struct diag *d)
{
    const char *best = NULL;
    size_t best_d = 3;
    char known[512] = "";
    size_t used = 0;
    for (const struct confmap *m = map; m->key; m++) {
        size_t dist = edit_distance(key, m->key);
        if (dist < best_d) {
            best_d = dist;
            best = m->key;
        }
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", m->key);
        if (w > 0 && (size_t)w < sizeof known - used)
            used += (size_t)w;
    }
    if (best)
        diag_error(d, file, "%s%sunknown key \"%s\" (did you mean \"%s\"?)", where,
                   *where ? ": " : "", key, best);
    else
        diag_error(d, file, "%s%sunknown key \"%s\" (known keys: %s)", where, *where ? ": " : "",
                   key, known);
}

static int fill_strings(const cJSON *v, struct strv *out)
{
    size_t n = cJSON_IsString(v) ? 1 : (size_t)cJSON_GetArraySize(v);
    char **arr = calloc(n + 1, sizeof *arr);
    if (!arr)
        return -1;
    if (cJSON_IsString(v)) {
        arr[0] = strdup(v->valuestring);
    } else {
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) arr[i++] = strdup(it->valuestring);
    }
    for (size_t i = 0; i < n; i++) {
        if (!arr[i]) {
            struct strv tmp = {arr, n};
            strv_free(&tmp);
            return -1;
        }
    }
    strv_free(out);
    out->v = arr;
    out->n = n;
    return 0;
}

static bool all_strings(const cJSON *v)
{
    if (cJSON_IsString(v))
        return true;
    if (!cJSON_IsArray(v))
        return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) if (!cJSON_IsString(it)) return false;
    return true;
}

static bool type_ok(enum confmap_type t, const cJSON *v)
{
    switch (t) {
    case CONFMAP_STRING: return cJSON_IsString(v);
    case CONFMAP_INT: return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    case CONFMAP_NUMBER: return cJSON_IsNumber(v);
    case CONFMAP_BOOL: return cJSON_IsBool(v);
    case CONFMAP_STRINGS: return all_strings(v);
    case CONFMAP_OBJECT: return cJSON_IsObject(v);
    case CONFMAP_ARRAY: return cJSON_IsArray(v);
    }
    return false;
}

static int apply_one(const struct confmap *m, const cJSON *v, char *base, const char *file,
                     const char *where, struct diag *d)
{
    const char *sep = *where ? "." : "";
    if (!type_ok(m->type, v)) {
        diag_error(d, file, "%s%s%s: expected %s, got %s", where, sep, m->key,
                   type_wanted(m->type), json_type_name(v));
        return 1;
    }
    void *field = base + m->offset;
    if ((m->type == CONFMAP_INT || m->type == CONFMAP_NUMBER) &&
        (v->valuedouble < m->min || v->valuedouble > m->max)) {
        diag_error(d, file, "%s%s%s: %g is out of range (allowed %g to %g)", where, sep, m->key,
                   v->valuedouble, m->min, m->max);
        return 1;
    }
    switch (m->type) {
    case CONFMAP_STRING: {
        char *s = strdup(v->valuestring);
        if (!s)
            goto oom;
        free(*(char **)field);
        *(char **)field = s;
        break;
    }
    case CONFMAP_INT: *(int *)field = (int)v->valuedouble; break;
    case CONFMAP_NUMBER: *(double *)field = v->valuedouble; break;
    case CONFMAP_BOOL: *(bool *)field = cJSON_IsTrue(v); break;
    case CONFMAP_STRINGS:
        if (fill_strings(v, field) < 0)
            goto oom;
        break;
    case CONFMAP_OBJECT:
    case CONFMAP_ARRAY: *(const cJSON **)field = v; break;
    }
    return 0;
oom:
    diag_error(d, file, "%s%s%s: out of memory", where, sep, m->key);
    return 1;
}

int confmap_apply(const struct confmap *map, const cJSON *obj, void *dst, const char *file,
                  const char *where, struct diag *d)
{
    if (!cJSON_IsObject(obj)) {
        diag_error(d, file, "%s%sexpected an object, got %s", where, *where ? ": " : "",
                   json_type_name(obj));
        return 1;
    }
    int errors = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        const struct confmap *m = find_key(map, v->string);
        if (!m) {
            report_unknown(map, v->string, file, where, d);
            errors++;
            continue;
        }
        errors += apply_one(m, v, dst, file, where, d);
    }
    return errors;
}

void strv_free(struct strv *s)
{
    if (!s->v)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void confmap_release(const struct confmap *map, void *dst)
{
    for (; map->key; map++) {
        void *field = (char *)dst + map->offset;
        if (map->type == CONFMAP_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (map->type == CONFMAP_STRINGS) {
            strv_free(field);
        }
    }
}
