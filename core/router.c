/* router.c - triggers and match filters (see router.h). */
#include "router.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "http_event.h"
#include "match.h"

/* A zmq trigger's topic; the index sorts them by length, then bytes, then
 * place in the set, so the topics that can prefix a subject of length L are
 * found by one binary search per distinct length up to L. */
struct topic {
    const char *s;
    size_t len;
    struct pipeline *p;
};

struct route_index {
    struct topic *topics;
    size_t n_topics;
    size_t *lens;               /* distinct topic lengths, ascending */
    size_t *starts;             /* where each length's run of topics starts */
    size_t n_lens;
    struct pipeline **by_name;  /* every pipeline, sorted by name */
    size_t n_names;
};

static int topic_cmp(const void *a, const void *b)
{
    const struct topic *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->s, y->s, x->len);
    if (c)
        return c;
    return x->p->index < y->p->index ? -1 : x->p->index > y->p->index;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((*(struct pipeline *const *)a)->name, (*(struct pipeline *const *)b)->name);
}

static int index_topics(struct route_index *ri, const struct pipeline_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->trigger == TRIGGER_ZMQ)
            ri->n_topics++;
    ri->topics = calloc(ri->n_topics + 1, sizeof *ri->topics);
    ri->lens = calloc(ri->n_topics + 1, sizeof *ri->lens);
    ri->starts = calloc(ri->n_topics + 1, sizeof *ri->starts);
    if (!ri->topics || !ri->lens || !ri->starts)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->trigger == TRIGGER_ZMQ)
            ri->topics[n++] = (struct topic){set->v[i]->zmq_topic, strlen(set->v[i]->zmq_topic),
                                             set->v[i]};
    qsort(ri->topics, n, sizeof *ri->topics, topic_cmp);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ri->topics[i].len != ri->topics[i - 1].len) {
            ri->lens[ri->n_lens] = ri->topics[i].len;
            ri->starts[ri->n_lens++] = i;
        }
    ri->starts[ri->n_lens] = n;
    return 0;
}

int router_index_new(const struct pipeline_set *set, struct route_index **out)
{
    *out = NULL;
    struct route_index *ri = calloc(1, sizeof *ri);
    if (!ri)
        return -1;
    ri->by_name = calloc(set->n + 1, sizeof *ri->by_name);
    if (!ri->by_name || index_topics(ri, set) < 0) {
        router_index_free(&ri);
        return -1;
    }
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->name)
            ri->by_name[ri->n_names++] = set->v[i];
    qsort(ri->by_name, ri->n_names, sizeof *ri->by_name, name_cmp);
    *out = ri;
    return 0;
}

void router_index_free(struct route_index **pri)
{
    struct route_index *ri = *pri;
    if (!ri)
        return;
    free(ri->topics);
    free(ri->lens);
    free(ri->starts);
    free(ri->by_name);
    free(ri);
    *pri = NULL;
}

bool router_accepts(const struct pipeline *p, struct event *ev)
{
    if (!p->match)
        return true;
    return match_test(p->match, ev->subject, event_parsed(ev));
}

/* The first topic in [lo, hi) (all of length len) not below subject's first
 * len bytes. */
static size_t topic_lower(const struct topic *t, size_t lo, size_t hi, const char *subject,
                          size_t len)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(t[mid].s, subject, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The pipelines whose topic prefixes the subject, in their set's order (as a
 * scan would find them). Returns how many, or SIZE_MAX if more than cap. */
static size_t topics_prefixing(const struct route_index *ri, const char *subject,
                               struct pipeline **found, size_t cap)
{
    size_t n = 0, slen = strlen(subject);
    for (size_t k = 0; k < ri->n_lens && ri->lens[k] <= slen; k++) {
        size_t len = ri->lens[k], end = ri->starts[k + 1];
        for (size_t i = topic_lower(ri->topics, ri->starts[k], end, subject, len);
             i < end && memcmp(ri->topics[i].s, subject, len) == 0; i++) {
            if (n == cap)
                return SIZE_MAX;
            size_t j = n++; /* insertion by set order: there are few */
            for (; j > 0 && found[j - 1]->index > ri->topics[i].p->index; j--)
                found[j] = found[j - 1];
            found[j] = ri->topics[i].p;
        }
    }
    return n;
}

size_t router_zmq(const struct pipeline_set *set, struct event *ev,
                  void (*each)(void *arg, struct pipeline *p), void *arg)
{
    struct pipeline *found[32];
    size_t n_found = set->routes ? topics_prefixing(set->routes, ev->subject, found, 32)
                                 : SIZE_MAX;
    size_t n = 0;
    if (n_found != SIZE_MAX) {
        for (size_t i = 0; i < n_found; i++)
            if (router_accepts(found[i], ev)) {
                n++;
                each(arg, found[i]);
            }
        return n;
    }
    for (size_t i = 0; i < set->n; i++) {
        struct pipeline *p = set->v[i];
        if (p->trigger != TRIGGER_ZMQ ||
            strncmp(ev->subject, p->zmq_topic, strlen(p->zmq_topic)) != 0 ||
            !router_accepts(p, ev))
            continue;
        n++;
        each(arg, p);
    }
    return n;
}

const char *router_file_key(const struct pipeline *p, const char *path)
{
    if (p->trigger != TRIGGER_DIRECTORY)
        return NULL;
    size_t n = strlen(p->dir);
    if (strncmp(path, p->dir, n) != 0 || path[n] != '/')
        return NULL;
    const char *key = path + n + 1;
    if (!p->recursive && strchr(key, '/'))
        return NULL;
    return key;
}

struct pipeline *router_http(const struct pipeline_set *set, const char *method,
                             const char *path, cJSON *params, char *allow, size_t allow_len)
{
    allow[0] = '\0';
    for (size_t i = 0; i < set->n; i++) {
        struct pipeline *p = set->v[i];
        if (p->trigger != TRIGGER_HTTP || !http_route_match(p->http_path, path, NULL))
            continue;
        if (strcmp(p->http_method, "ANY") == 0 || strcmp(p->http_method, method) == 0) {
            http_route_match(p->http_path, path, params);
            return p;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", p->http_method);
    }
    return NULL;
}

struct pipeline *router_named(const struct pipeline_set *set, const char *name)
{
    const struct route_index *ri = set->routes;
    if (!ri || !name)
        return pipeline_set_find(set, name);
    size_t lo = 0, hi = ri->n_names;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ri->by_name[mid]->name, name);
        if (c == 0)
            return ri->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
