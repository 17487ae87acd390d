/* scheduler.c - slots, limits, reservations and turns (see scheduler.h). */
#include "scheduler.h"

#include <stddef.h>

void sched_init(struct sched *s, int slots)
{
    *s = (struct sched){.slots = slots > 0 ? slots : 1};
}

void sched_lane_init(struct sched_lane *l, int concurrency, int reserved)
{
    *l = (struct sched_lane){.concurrency = concurrency > 0 ? concurrency : 1,
                             .reserved = reserved > 0 ? reserved : 0};
}

/* The ring of lanes with work: joined at the end of the round (just
 * before whoever's turn it is), left when its work is taken. */
static void ready_join(struct sched *s, struct sched_lane *l)
{
    if (l->in_ready || !l->linked || l->ready <= 0)
        return;
    l->in_ready = true;
    s->n_turn++;
    if (!s->turn) {
        l->rnext = l->rprev = l;
        s->turn = l;
        return;
    }
    l->rnext = s->turn;
    l->rprev = s->turn->rprev;
    l->rprev->rnext = l;
    s->turn->rprev = l;
}

static void ready_leave(struct sched *s, struct sched_lane *l)
{
    if (!l->in_ready)
        return;
    l->in_ready = false;
    s->n_turn--;
    if (l->rnext == l) {
        s->turn = NULL;
    } else {
        l->rprev->rnext = l->rnext;
        l->rnext->rprev = l->rprev;
        if (s->turn == l)
            s->turn = l->rnext;
    }
    l->rnext = l->rprev = NULL;
}

void sched_set_ready(struct sched *s, struct sched_lane *l, int ready)
{
    l->ready = ready > 0 ? ready : 0;
    if (l->ready > 0)
        ready_join(s, l);
    else
        ready_leave(s, l);
}

void sched_link(struct sched *s, struct sched_lane *l)
{
    if (l->linked)
        return;
    l->linked = true;
    s->reserved += l->reserved;
    ready_join(s, l);
}

void sched_unlink(struct sched *s, struct sched_lane *l)
{
    if (!l->linked)
        return;
    ready_leave(s, l);
    l->linked = false;
    s->reserved -= l->reserved;
    /* the slots it holds inside its reservation now count as unreserved */
    int inside = l->running < l->reserved ? l->running : l->reserved;
    s->unreserved_used += inside;
    s->reserved_used -= inside;
}

/* Slots nobody reserved that are still free. A lane no longer linked keeps
 * the slots it holds until its runs end; its reservation is no longer
 * counted, so what it holds counts as unreserved. */
static int unreserved_free(const struct sched *s)
{
    return s->slots - s->reserved - s->unreserved_used;
}

bool sched_can_start(const struct sched *s, const struct sched_lane *l)
{
    if (l->held || l->running >= l->concurrency)
        return false;
    if (l->linked && l->running < l->reserved)
        return true;
    return unreserved_free(s) > 0;
}

/* Is any slot free? When none is, no lane can start however many wait:
 * a round stops there (1,000 pipelines with events ready would otherwise
 * be walked for every slot handed back). */
static bool slots_left(const struct sched *s)
{
    return unreserved_free(s) > 0 || s->reserved_used < s->reserved;
}

static bool beyond_reservation(const struct sched_lane *l)
{
    return !l->linked || l->running >= l->reserved;
}

void sched_pump(struct sched *s, void (*start)(void *arg, struct sched_lane *l), void *arg)
{
    if (s->pumping) { /* a start that ended at once asked again: the loop below sees it */
        s->again = true;
        return;
    }
    s->pumping = true;
    bool progress = true;
    while (progress && s->turn && slots_left(s)) {
        progress = false;
        /* one round: each lane with work once, from whoever's turn it is */
        int n = s->n_turn;
        for (struct sched_lane *l = s->turn; n-- > 0 && l && slots_left(s);) {
            struct sched_lane *next = l->rnext;
            if (sched_can_start(s, l)) {
                if (beyond_reservation(l))
                    s->unreserved_used++;
                else
                    s->reserved_used++;
                l->running++;
                s->turn = next; /* the next lane has the next turn */
                sched_set_ready(s, l, l->ready - 1);
                start(arg, l);
                progress = true;
                if (!next->in_ready)
                    break; /* the ring changed under this round: start another */
            }
            l = next;
        }
        progress = progress || s->again;
        s->again = false;
    }
    s->pumping = false;
}

void sched_done(struct sched *s, struct sched_lane *l)
{
    if (l->running <= 0)
        return;
    l->running--;
    if (beyond_reservation(l))
        s->unreserved_used--;
    else
        s->reserved_used--;
}
