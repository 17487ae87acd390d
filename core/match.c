/* match.c - the trigger "match" filter (see match.h): compiling a JSON
 * pattern into a tree that owns its memory, with error messages that name the
 * path of the offending part, and testing a subject and an event against it.
 *
 * Event patterns follow Amazon EventBridge: object keys AND, a leaf is an
 * array of conditions that OR, and an array in the event matches when any of
 * its elements does. An empty array in the event counts as an absent field.
 */
#include "match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the compiled form ------------------------------------------------ */

enum lit_kind { LIT_STRING, LIT_NUMBER, LIT_BOOL, LIT_NULL };

struct lit {                    /* a JSON scalar from the pattern */
    enum lit_kind kind;
    char *s;                    /* LIT_STRING */
    double n;                   /* LIT_NUMBER */
    bool b;                     /* LIT_BOOL */
};

enum cond_kind {
    COND_LITERAL,               /* lits[0] */
    COND_PREFIX,                /* s */
    COND_SUFFIX,                /* s */
    COND_EQUALS_ICASE,          /* s */
    COND_BUT_LITERALS,          /* lits[0..nlits) */
    COND_BUT_PREFIX,            /* s */
    COND_BUT_SUFFIX,            /* s */
    COND_EXISTS,                /* exists */
    COND_NUMERIC                /* cmp[0..ncmp) */
};

enum cmp_op { CMP_EQ, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct cmp {
    enum cmp_op op;
    double rhs;
};

struct cond {
    enum cond_kind kind;
    struct lit *lits;
    size_t nlits;
    char *s;
    bool exists;
    struct cmp cmp[2];
    size_t ncmp;
};

struct field;

/* An object pattern (fields, all must match) or a leaf (conds, any). */
struct node {
    struct field *fields;
    size_t nfields;
    struct cond *conds;
    size_t nconds;
};

struct field {
    char *key;
    struct node node;
};

struct strlist {
    char **v;
    size_t n;
};

struct match {
    struct strlist prefix, suffix, equals, anything_but;
    bool has_event;
    struct node event;
};

/* ---- freeing ------------------------------------------------------------ */

static void free_lits(struct lit *lits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lits[i].s);
    free(lits);
}

static void free_node(struct node *n);

static void free_conds(struct cond *conds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free_lits(conds[i].lits, conds[i].nlits);
        free(conds[i].s);
    }
    free(conds);
}

static void free_node(struct node *n)
{
    for (size_t i = 0; i < n->nfields; i++) {
        free(n->fields[i].key);
        free_node(&n->fields[i].node);
    }
    free(n->fields);
    free_conds(n->conds, n->nconds);
}

static void free_strlist(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

void match_free(struct match **m)
{
    if (!m || !*m)
        return;
    free_strlist(&(*m)->prefix);
    free_strlist(&(*m)->suffix);
    free_strlist(&(*m)->equals);
    free_strlist(&(*m)->anything_but);
    free_node(&(*m)->event);
    free(*m);
    *m = NULL;
}

/* ---- compile context: the error sink and the current path ------------- */

struct ctx {
    struct err *e;
    char path[512];             /* "match.event.Records.s3" */
    size_t len;
};

/* Append to the path; returns the old length for path_pop. A path too long
 * for the buffer is cut short, which only shortens the message. */
static size_t path_push(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t path_push(struct ctx *c, const char *fmt, ...)
{
    size_t old = c->len;
    size_t room = sizeof c->path - old;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + old, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        c->path[old] = '\0';
    else
        c->len = (size_t)n >= room ? sizeof c->path - 1 : old + (size_t)n;
    return old;
}

static void path_pop(struct ctx *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

/* Report a problem at the current path: "PATH: message". Returns -1. */
static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
    char msg[sizeof c->e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(c->e, "%s: %s", c->path, msg);
}

static int fail_oom(struct ctx *c)
{
    return fail(c, "out of memory while compiling the pattern");
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *key_of(const cJSON *item)
{
    return item->string ? item->string : "";
}

static bool is_scalar(const cJSON *v)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v) || cJSON_IsNull(v);
}

/* ---- compiling subject keys ------------------------------------------- */

static int strlist_add(struct ctx *c, struct strlist *l, const cJSON *s)
{
    if (!cJSON_IsString(s) || !s->valuestring)
        return fail(c, "must be a string, e.g. \"img/\"");
    l->v[l->n] = dup_str(s->valuestring);
    if (!l->v[l->n])
        return fail_oom(c);
    l->n++;
    return 0;
}

/* A string or a non-empty array of strings. */
static int compile_strlist(struct ctx *c, struct strlist *l, const cJSON *v)
{
    int count = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    if (count == 0 || !(cJSON_IsArray(v) || cJSON_IsString(v)))
        return fail(c, "must be a string or a non-empty array of strings, "
                       "e.g. [\".jpg\", \".png\"]");
    l->v = calloc((size_t)count, sizeof *l->v);
    if (!l->v)
        return fail_oom(c);
    if (!cJSON_IsArray(v))
        return strlist_add(c, l, v);
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        size_t mark = path_push(c, "[%d]", i++);
        int rc = strlist_add(c, l, s);
        path_pop(c, mark);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- compiling conditions ---------------------------------------------- */

static int lit_set(struct ctx *c, struct lit *l, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        l->kind = LIT_STRING;
        l->s = dup_str(v->valuestring ? v->valuestring : "");
        return l->s ? 0 : fail_oom(c);
    }
    if (cJSON_IsNumber(v)) {
        l->kind = LIT_NUMBER;
        l->n = v->valuedouble;
    } else if (cJSON_IsBool(v)) {
        l->kind = LIT_BOOL;
        l->b = cJSON_IsTrue(v);
    } else {
        l->kind = LIT_NULL;
    }
    return 0;
}

static int cond_set_literal(struct ctx *c, struct cond *cd, const cJSON *v)
{
    cd->lits = calloc(1, sizeof *cd->lits);
    if (!cd->lits)
        return fail_oom(c);
    cd->nlits = 1;
    return lit_set(c, cd->lits, v);
}

/* {"prefix": "s"}, {"suffix": "s"}, {"equals-ignore-case": "s"} and the
 * {"anything-but": {"prefix"|"suffix": "s"}} forms. */
static int compile_string_op(struct ctx *c, struct cond *cd, const cJSON *v)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(c, "expects a string, e.g. {\"%s\": \"abc\"}", key_of(v));
    cd->s = dup_str(v->valuestring);
    return cd->s ? 0 : fail_oom(c);
}

static int compile_exists(struct ctx *c, struct cond *cd, const cJSON *v)
{
    if (!cJSON_IsBool(v))
        return fail(c, "expects true or false, e.g. {\"exists\": true}");
    cd->exists = cJSON_IsTrue(v);
    return 0;
}

static int compile_but_list(struct ctx *c, struct cond *cd, const cJSON *v)
{
    int count = cJSON_GetArraySize(v);
    if (count == 0)
        return fail(c, "expects a non-empty array, e.g. {\"anything-but\": [\"a\", \"b\"]}");
    cd->lits = calloc((size_t)count, sizeof *cd->lits);
    if (!cd->lits)
        return fail_oom(c);
    int i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, v) {
        size_t mark = path_push(c, "[%d]", i++);
        int rc = is_scalar(el) ? lit_set(c, &cd->lits[cd->nlits++], el)
                               : fail(c, "anything-but lists only strings, numbers, "
                                         "true, false or null");
        path_pop(c, mark);
        if (rc)
            return rc;
    }
    return 0;
}

static int compile_but_object(struct ctx *c, struct cond *cd, const cJSON *v)
{
    const cJSON *op = v->child;
    if (cJSON_GetArraySize(v) != 1
        || (strcmp(key_of(op), "prefix") != 0 && strcmp(key_of(op), "suffix") != 0))
        return fail(c, "an anything-but object takes exactly one of prefix or suffix, "
                       "e.g. {\"anything-but\": {\"prefix\": \"tmp/\"}}");
    cd->kind = strcmp(key_of(op), "prefix") == 0 ? COND_BUT_PREFIX : COND_BUT_SUFFIX;
    size_t mark = path_push(c, ".%s", key_of(op));
    int rc = compile_string_op(c, cd, op);
    path_pop(c, mark);
    return rc;
}

static int compile_but(struct ctx *c, struct cond *cd, const cJSON *v)
{
    if (is_scalar(v))
        return cond_set_literal(c, cd, v);
    if (cJSON_IsArray(v))
        return compile_but_list(c, cd, v);
    if (cJSON_IsObject(v))
        return compile_but_object(c, cd, v);
    return fail(c, "expects a value, an array of values, {\"prefix\": \"s\"} or "
                   "{\"suffix\": \"s\"}");
}

static int parse_cmp_op(const char *s, enum cmp_op *op)
{
    static const char *const names[] = { "=", "<", "<=", ">", ">=" };
    static const enum cmp_op ops[] = { CMP_EQ, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *op = ops[i];
            return 0;
        }
    }
    return -1;
}

/* One (op, number) pair starting at array index i. */
static int compile_cmp(struct ctx *c, struct cmp *cmp, const cJSON *op, const cJSON *num, int i)
{
    size_t mark = path_push(c, "[%d]", i);
    int rc = 0;
    if (!cJSON_IsString(op) || parse_cmp_op(op->valuestring, &cmp->op) != 0)
        rc = fail(c, "unknown comparison; use one of \"=\", \"<\", \"<=\", \">\", \">=\"");
    path_pop(c, mark);
    if (rc)
        return rc;
    mark = path_push(c, "[%d]", i + 1);
    if (!cJSON_IsNumber(num))
        rc = fail(c, "expects a number after \"%s\", e.g. [\">\", 0]", op->valuestring);
    else
        cmp->rhs = num->valuedouble;
    path_pop(c, mark);
    return rc;
}

static int compile_numeric(struct ctx *c, struct cond *cd, const cJSON *v)
{
    int count = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (count != 2 && count != 4)
        return fail(c, "expects [op, number] or [op, number, op, number], "
                       "e.g. {\"numeric\": [\">\", 0, \"<=\", 100]}");
    for (int i = 0; i < count; i += 2) {
        const cJSON *op = cJSON_GetArrayItem(v, i);
        if (compile_cmp(c, &cd->cmp[cd->ncmp], op, cJSON_GetArrayItem(v, i + 1), i))
            return -1;
        cd->ncmp++;
    }
    return 0;
}

struct op_entry {
    const char *name;
    enum cond_kind kind;
    int (*compile)(struct ctx *c, struct cond *cd, const cJSON *v);
};

static const struct op_entry op_table[] = {
    { "prefix", COND_PREFIX, compile_string_op },
    { "suffix", COND_SUFFIX, compile_string_op },
    { "equals-ignore-case", COND_EQUALS_ICASE, compile_string_op },
    { "anything-but", COND_BUT_LITERALS, compile_but },
    { "exists", COND_EXISTS, compile_exists },
    { "numeric", COND_NUMERIC, compile_numeric },
};

/* A condition object: exactly one operator from op_table. */
static int compile_operator(struct ctx *c, struct cond *cd, const cJSON *obj)
{
    if (cJSON_GetArraySize(obj) != 1)
        return fail(c, "a condition object must have exactly one operator, "
                       "e.g. {\"prefix\": \"img/\"}; put alternatives side by side "
                       "in the array");
    const cJSON *v = obj->child;
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++) {
        if (strcmp(key_of(v), op_table[i].name) != 0)
            continue;
        cd->kind = op_table[i].kind;
        size_t mark = path_push(c, ".%s", op_table[i].name);
        int rc = op_table[i].compile(c, cd, v);
        path_pop(c, mark);
        return rc;
    }
    return fail(c, "unknown operator \"%s\"; use one of prefix, suffix, "
                   "equals-ignore-case, anything-but, exists, numeric", key_of(v));
}

static int compile_cond(struct ctx *c, struct cond *cd, const cJSON *v)
{
    if (is_scalar(v)) {
        cd->kind = COND_LITERAL;
        return cond_set_literal(c, cd, v);
    }
    if (cJSON_IsObject(v))
        return compile_operator(c, cd, v);
    return fail(c, "a condition is a value or an object such as {\"prefix\": \"img/\"}, "
                   "not an array; list alternatives directly in the condition list");
}

/* ---- compiling event patterns ------------------------------------------ */

static int compile_node(struct ctx *c, struct node *n, const cJSON *v);

/* A leaf: a non-empty array of conditions. */
static int compile_leaf(struct ctx *c, struct node *n, const cJSON *arr)
{
    int count = cJSON_GetArraySize(arr);
    if (count == 0)
        return fail(c, "a condition list must not be empty; to only require the field "
                       "use [{\"exists\": true}]");
    n->conds = calloc((size_t)count, sizeof *n->conds);
    if (!n->conds)
        return fail_oom(c);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        size_t mark = path_push(c, "[%d]", i++);
        int rc = compile_cond(c, &n->conds[n->nconds++], v);
        path_pop(c, mark);
        if (rc)
            return rc;
    }
    return 0;
}

static int compile_object(struct ctx *c, struct node *n, const cJSON *obj)
{
    int count = cJSON_GetArraySize(obj);
    if (count == 0)
        return fail(c, "an object pattern needs at least one field, "
                       "e.g. {\"kind\": [\"image\"]}");
    n->fields = calloc((size_t)count, sizeof *n->fields);
    if (!n->fields)
        return fail_oom(c);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        struct field *f = &n->fields[n->nfields++];
        size_t mark = path_push(c, ".%s", key_of(v));
        f->key = dup_str(key_of(v));
        int rc = f->key ? compile_node(c, &f->node, v) : fail_oom(c);
        path_pop(c, mark);
        if (rc)
            return rc;
    }
    return 0;
}

/* A leaf given as a bare value: suggest the same value wrapped in [ ]. */
static int fail_not_array(struct ctx *c, const cJSON *v)
{
    char *text = cJSON_PrintUnformatted(v);
    int rc = fail(c, "a condition list must be an array, e.g. [%s]",
                  text ? text : "{\"numeric\": [\">\", 0]}");
    cJSON_free(text);
    return rc;
}

/* {"numeric": [...]} where a list was meant: an object holding exactly one
 * operator name is a condition missing its [ ], not a field named so. */
static bool bare_condition(const cJSON *v)
{
    static const char *const ops[] = {"prefix", "suffix", "equals-ignore-case", "anything-but",
                                      "exists", "numeric", NULL};
    if (cJSON_GetArraySize(v) != 1)
        return false;
    for (const char *const *op = ops; *op; op++)
        if (strcmp(v->child->string, *op) == 0)
            return true;
    return false;
}

static int compile_node(struct ctx *c, struct node *n, const cJSON *v)
{
    if (cJSON_IsObject(v) && bare_condition(v))
        return fail_not_array(c, v);
    if (cJSON_IsObject(v))
        return compile_object(c, n, v);
    if (cJSON_IsArray(v))
        return compile_leaf(c, n, v);
    return fail_not_array(c, v);
}

/* ---- compiling the top level ------------------------------------------- */

static struct strlist *subject_list(struct match *m, const char *key)
{
    if (strcmp(key, "prefix") == 0)
        return &m->prefix;
    if (strcmp(key, "suffix") == 0)
        return &m->suffix;
    if (strcmp(key, "equals") == 0)
        return &m->equals;
    if (strcmp(key, "anything-but") == 0)
        return &m->anything_but;
    return NULL;
}

static int compile_event(struct ctx *c, struct match *m, const cJSON *v)
{
    if (m->has_event)
        return fail(c, "given twice; merge both into one object");
    m->has_event = true;
    if (!cJSON_IsObject(v))
        return fail(c, "must be an object of fields, e.g. {\"kind\": [\"image\"]}");
    return compile_object(c, &m->event, v);
}

static int compile_key(struct ctx *c, struct match *m, const cJSON *item)
{
    if (strcmp(key_of(item), "event") == 0)
        return compile_event(c, m, item);
    struct strlist *l = subject_list(m, key_of(item));
    if (!l)
        return fail(c, "unknown key; allowed keys are prefix, suffix, equals, "
                       "anything-but and event");
    if (l->v)
        return fail(c, "given twice; put all the strings in one array");
    return compile_strlist(c, l, item);
}

int match_compile(const cJSON *pattern, struct match **out, struct err *e)
{
    if (!out)
        return err_set(e, "match_compile: out must not be NULL");
    *out = NULL;
    if (!pattern)
        return 0;
    if (!cJSON_IsObject(pattern))
        return err_set(e, "match: must be an object, e.g. {\"suffix\": [\".jpg\", \".png\"]}");
    struct match *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, "match: out of memory while compiling the pattern");
    struct ctx c = { .e = e, .path = "match", .len = strlen("match") };
    const cJSON *item;
    cJSON_ArrayForEach(item, pattern) {
        size_t mark = path_push(&c, ".%s", key_of(item));
        int rc = compile_key(&c, m, item);
        path_pop(&c, mark);
        if (rc) {
            match_free(&m);
            return -1;
        }
    }
    *out = m;
    return 0;
}

/* ---- testing ------------------------------------------------------------ */

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t ls = strlen(s), lf = strlen(suf);
    return ls >= lf && memcmp(s + ls - lf, suf, lf) == 0;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    }
    return *a == *b;
}

static bool any_str(const struct strlist *l, const char *subject,
                    bool (*pred)(const char *s, const char *p))
{
    for (size_t i = 0; subject && i < l->n; i++) {
        if (pred(subject, l->v[i]))
            return true;
    }
    return false;
}

static bool subject_ok(const struct match *m, const char *subject)
{
    if (m->prefix.n && !any_str(&m->prefix, subject, has_prefix))
        return false;
    if (m->suffix.n && !any_str(&m->suffix, subject, has_suffix))
        return false;
    if (m->equals.n && !any_str(&m->equals, subject, str_eq))
        return false;
    if (m->anything_but.n && (!subject || any_str(&m->anything_but, subject, str_eq)))
        return false;
    return true;
}

static const char *str_of(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool lit_equal(const struct lit *l, const cJSON *v)
{
    switch (l->kind) {
    case LIT_STRING:
        return str_of(v) && strcmp(str_of(v), l->s) == 0;
    case LIT_NUMBER:
        return cJSON_IsNumber(v) && v->valuedouble == l->n;
    case LIT_BOOL:
        return cJSON_IsBool(v) && (cJSON_IsTrue(v) != 0) == l->b;
    case LIT_NULL:
        return cJSON_IsNull(v);
    }
    return false;
}

static bool any_lit(const struct cond *cd, const cJSON *v)
{
    for (size_t i = 0; i < cd->nlits; i++) {
        if (lit_equal(&cd->lits[i], v))
            return true;
    }
    return false;
}

static bool cmp_holds(const struct cmp *cmp, double x)
{
    switch (cmp->op) {
    case CMP_EQ: return x == cmp->rhs;
    case CMP_LT: return x < cmp->rhs;
    case CMP_LE: return x <= cmp->rhs;
    case CMP_GT: return x > cmp->rhs;
    case CMP_GE: return x >= cmp->rhs;
    }
    return false;
}

static bool numeric_holds(const struct cond *cd, const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return false;
    for (size_t i = 0; i < cd->ncmp; i++) {
        if (!cmp_holds(&cd->cmp[i], v->valuedouble))
            return false;
    }
    return true;
}

/* One condition against a present, non-array value, or NULL when absent. */
static bool cond_match(const struct cond *cd, const cJSON *v)
{
    const char *s = str_of(v);
    switch (cd->kind) {
    case COND_EXISTS:       return cd->exists == (v != NULL);
    case COND_LITERAL:      return v && lit_equal(&cd->lits[0], v);
    case COND_PREFIX:       return s && has_prefix(s, cd->s);
    case COND_SUFFIX:       return s && has_suffix(s, cd->s);
    case COND_EQUALS_ICASE: return s && str_ieq(s, cd->s);
    case COND_BUT_LITERALS: return is_scalar(v) && !any_lit(cd, v);
    case COND_BUT_PREFIX:   return s && !has_prefix(s, cd->s);
    case COND_BUT_SUFFIX:   return s && !has_suffix(s, cd->s);
    case COND_NUMERIC:      return numeric_holds(cd, v);
    }
    return false;
}

static bool any_cond(const struct node *n, const cJSON *v)
{
    for (size_t i = 0; i < n->nconds; i++) {
        if (cond_match(&n->conds[i], v))
            return true;
    }
    return false;
}

static bool is_absent(const cJSON *v)
{
    return !v || (cJSON_IsArray(v) && !v->child);
}

/* A present value; arrays (nested ones too) match when any element does. */
static bool leaf_any(const struct node *n, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return any_cond(n, v);
    const cJSON *el;
    cJSON_ArrayForEach(el, v) {
        if (leaf_any(n, el))
            return true;
    }
    return false;
}

static bool node_match(const struct node *n, const cJSON *v);

static bool object_match(const struct node *n, const cJSON *v)
{
    if (cJSON_IsArray(v) && v->child) {
        const cJSON *el;
        cJSON_ArrayForEach(el, v) {
            if (object_match(n, el))
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < n->nfields; i++) {
        const cJSON *child = cJSON_IsObject(v)
            ? cJSON_GetObjectItemCaseSensitive(v, n->fields[i].key) : NULL;
        if (!node_match(&n->fields[i].node, child))
            return false;
    }
    return true;
}

static bool node_match(const struct node *n, const cJSON *v)
{
    if (n->nconds == 0)
        return object_match(n, v);
    return is_absent(v) ? any_cond(n, NULL) : leaf_any(n, v);
}

bool match_test(const struct match *m, const char *subject, const cJSON *event)
{
    if (!m)
        return true;
    if (!subject_ok(m, subject))
        return false;
    return !m->has_event || object_match(&m->event, event);
}
