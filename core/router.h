/* router.h - the one place that decides which pipelines an event starts:
 * each trigger kind's test (topic prefix, folder, HTTP route, a name) and
 * the pipeline's match filter. Every source and `sluice replay` route
 * through here; nothing else compares triggers.
 *
 * Pure functions over a pipeline set; the event's parsed view is made at
 * most once, by the first match filter that needs it. A loaded set carries
 * a route index (topics by length, then bytes; names sorted), so the cost of
 * routing an event does not grow with the number of pipelines; a set built
 * by hand (tests) has none and is scanned.
 */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

struct event;

/* Build and free a set's route index (set->routes). The index points into
 * the set's pipelines: free it before them. */
int router_index_new(const struct pipeline_set *set, struct route_index **out);
void router_index_free(struct route_index **ri);

/* Does p's match filter (if any) take ev? */
bool router_accepts(const struct pipeline *p, struct event *ev);
/* Call each(arg, p) for every pipeline whose zmq topic prefix and match
 * take ev (ev->subject is the topic). Returns how many. */
size_t router_zmq(const struct pipeline_set *set, struct event *ev,
                  void (*each)(void *arg, struct pipeline *p), void *arg);
/* The key of path under p's trigger folder (the part after the folder;
 * NULL if p does not watch that path: another folder, or a subfolder of a
 * folder not watched recursively). */
const char *router_file_key(const struct pipeline *p, const char *path);
/* The pipeline whose HTTP route takes METHOD PATH, its path parameters
 * added to params; NULL with allow listing the methods the path does take
 * (a 405), or allow empty (a 404). */
struct pipeline *router_http(const struct pipeline_set *set, const char *method,
                             const char *path, cJSON *params, char *allow, size_t allow_len);
/* By name: invoke, replay and pipeline destinations. */
struct pipeline *router_named(const struct pipeline_set *set, const char *name);

#endif
