/* retention.h - pruning the database while the daemon runs (retention in
 * sluice.json).
 *
 * A loop timer submits one small prune operation at a time to the database
 * writer: at most RETENTION_BATCH rows per table, deleted inside one of the
 * writer's ordinary group commits, then a few pages given back with
 * incremental vacuum. While rows remain it comes back soon, else after a
 * while (a tenth of the shortest retention, from 0.2 s to a minute), so
 * pruning a large backlog is spread over many short transactions and never
 * holds the writer (and with it event traffic) for long. Dead-lettered
 * events are kept until replayed (then they age like finished ones) or until
 * events_dead_days.
 */
#ifndef SLUICE_RETENTION_H
#define SLUICE_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define RETENTION_BATCH 500

struct loop;
struct writer;
struct retention;

/* Is any pruning configured? */
bool retention_wanted(const struct config_retention *cfg);
/* Start pruning (cfg is copied). */
int retention_new(struct loop *l, struct writer *w, const struct config_retention *cfg,
                  struct retention **out, struct err *e);
/* Rows pruned so far (any thread). */
uint64_t retention_pruned(const struct retention *r);
/* Stop the timer and wait for an operation still in the writer's hands. */
void retention_free(struct retention **r);

#endif
