/* statelock.h - one daemon per state folder.
 *
 * Two daemons on one state folder would both run the journal's pending
 * events. The first daemon holds an exclusive flock on STATE_DIR/sluice.lock
 * for its whole life (the kernel drops it when the process dies, so a
 * crash never leaves a stale lock); the file holds its pid, so a second
 * daemon can say which process holds the folder.
 */
#ifndef SLUICE_STATELOCK_H
#define SLUICE_STATELOCK_H

#include "err.h"

struct statelock;

/* Take the lock on state_dir (which must exist), or fail naming the
 * holder's pid. */
int statelock_take(const char *state_dir, struct statelock **out, struct err *e);
/* Release it (NULL is fine). */
void statelock_release(struct statelock **l);

#endif
