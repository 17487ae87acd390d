/* scheduler.h - shares the daemon's execution slots among pipelines, the
 * way Lambda shares an account's concurrency among functions.
 *
 * There are `max_concurrency` slots in all; an event holds one from the
 * start of its run to its end (a retry's wait on a timer holds none). A
 * lane (one per pipeline) runs at most `concurrency` events at once, and
 * `reserved` of the slots are its alone: the others can never take them,
 * and what it runs beyond them comes out of the unreserved rest. Lanes
 * with events ready take turns, one start each per round (round-robin), so
 * a flooded pipeline cannot starve a quiet one.
 *
 * Only lanes with events ready are visited: they form a ring of their own,
 * so the cost of a start does not grow with the number of pipelines.
 *
 * Pure bookkeeping on the loop thread: no locks, no threads, no I/O.
 */
#ifndef SLUICE_SCHEDULER_H
#define SLUICE_SCHEDULER_H

#include <stdbool.h>

struct sched_lane {
    int concurrency;            /* the most it runs at once */
    int reserved;               /* slots only it may use */
    int running;                /* slots it holds */
    int ready;                  /* events waiting for a slot (set with sched_set_ready) */
    bool held;                  /* starts nothing while set */
    bool linked;                /* taking part: its reservation counts */
    struct sched_lane *rnext;   /* in the ring of linked lanes with ready > 0 */
    struct sched_lane *rprev;
    bool in_ready;
};

struct sched {
    int slots;                  /* max_concurrency */
    int reserved;               /* sum of the linked lanes' reservations */
    int unreserved_used;        /* slots held beyond their lane's reservation */
    int reserved_used;          /* slots held inside it (by linked lanes) */
    struct sched_lane *turn;    /* the ring of lanes with ready > 0: whose turn it is */
    int n_turn;                 /* ... how many */
    bool pumping, again;
};

void sched_init(struct sched *s, int slots);
void sched_lane_init(struct sched_lane *l, int concurrency, int reserved);
/* Take part in scheduling (its reservation counts from now) / stop: it
 * starts nothing more; the slots it still holds are given back by
 * sched_done as its runs end. */
void sched_link(struct sched *s, struct sched_lane *l);
void sched_unlink(struct sched *s, struct sched_lane *l);
/* How many of l's events wait for a slot now. */
void sched_set_ready(struct sched *s, struct sched_lane *l, int ready);
/* May l start one more now? */
bool sched_can_start(const struct sched *s, const struct sched_lane *l);
/* Start what can start, fairly: start(arg, lane) is called once per slot
 * handed out (l->ready and the slot counts are updated before it) and must
 * start one of the lane's ready events. */
void sched_pump(struct sched *s, void (*start)(void *arg, struct sched_lane *l), void *arg);
/* One of l's runs ended: its slot is free. */
void sched_done(struct sched *s, struct sched_lane *l);

#endif
