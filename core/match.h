/* match.h - the "match" filter of a pipeline trigger.
 *
 * A pattern is compiled once when a pipeline is loaded and then tested
 * against every event its trigger fires. Subject keys ("prefix", "suffix",
 * "equals", "anything-but") test a string the trigger supplies (a directory
 * trigger's path relative to the watched folder, a ZeroMQ topic); the "event"
 * key holds an EventBridge-style content pattern tested against the event's
 * JSON. The compiled filter owns all its memory.
 */
#ifndef SLUICE_MATCH_H
#define SLUICE_MATCH_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "err.h"

struct match;   /* opaque, compiled filter */

/* Compile a pipeline's "match" object into *out. On error return -1, set
 * *out to NULL and write into e where in the pattern the problem is (as a
 * path such as "match.event.Records.s3.object.size") and how to fix it.
 * A NULL pattern (no filter) returns 0 with *out NULL, which matches
 * everything. The result keeps no pointers into pattern. */
int match_compile(const cJSON *pattern, struct match **out, struct err *e);

/* True when subject and event satisfy every condition of m. subject may be
 * NULL (subject conditions then fail); event may be NULL (event patterns then
 * fail unless they only test {"exists": false}). A NULL m matches everything. */
bool match_test(const struct match *m, const char *subject, const cJSON *event);

/* Free *m and set it to NULL; accepts NULL and *m == NULL. */
void match_free(struct match **m);

#endif
