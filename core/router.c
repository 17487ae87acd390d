/* router.c - triggers and match filters (see router.h). */
#include "router.h"

#include <stdio.h>
#include <string.h>

#include "event.h"
#include "http_event.h"
#include "match.h"

bool router_accepts(const struct pipeline *p, struct event *ev)
{
    if (!p->match)
        return true;
    return match_test(p->match, ev->subject, event_parsed(ev));
}

size_t router_zmq(const struct pipeline_set *set, struct event *ev,
                  void (*each)(void *arg, struct pipeline *p), void *arg)
{
    size_t n = 0;
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
    return pipeline_set_find(set, name);
}
