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

void sched_link(struct sched *s, struct sched_lane *l)
{
    if (l->linked)
        return;
    l->linked = true;
    s->reserved += l->reserved;
    if (!s->cursor) {
        l->next = l->prev = l;
        s->cursor = l;
        return;
    }
    l->next = s->cursor;
    l->prev = s->cursor->prev;
    l->prev->next = l;
    s->cursor->prev = l;
}

void sched_unlink(struct sched *s, struct sched_lane *l)
{
    if (!l->linked)
        return;
    l->linked = false;
    s->reserved -= l->reserved;
    /* the slots it holds inside its reservation now count as unreserved */
    s->unreserved_used += l->running < l->reserved ? l->running : l->reserved;
    if (l->next == l) {
        s->cursor = NULL;
    } else {
        l->prev->next = l->next;
        l->next->prev = l->prev;
        if (s->cursor == l)
            s->cursor = l->next;
    }
    l->next = l->prev = NULL;
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
    while (progress && s->cursor) {
        progress = false;
        struct sched_lane *first = s->cursor, *l = first;
        do {
            struct sched_lane *next = l->next;
            if (l->ready > 0 && sched_can_start(s, l)) {
                if (beyond_reservation(l))
                    s->unreserved_used++;
                l->running++;
                l->ready--;
                s->cursor = next; /* the next lane has the next turn */
                start(arg, l);
                progress = true;
            }
            l = next;
        } while (s->cursor && l != first && l->linked);
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
}
