/* test_scheduler.c - unit tests for core/scheduler.c: a pipeline's
 * concurrency is a limit, max_concurrency bounds them all, reservations
 * are kept for their lane alone, lanes with work take turns (a flooded one
 * cannot starve a quiet one), and a lane that stops taking part gives its
 * reservation back. */
#include "scheduler.h"

#include "test.h"

#define MAX_STARTS 64

struct starts {
    struct sched_lane *who[MAX_STARTS];
    int n;
};

static void record(void *arg, struct sched_lane *l)
{
    struct starts *s = arg;
    if (s->n < MAX_STARTS)
        s->who[s->n++] = l;
}

static int count(const struct starts *s, const struct sched_lane *l)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->who[i] == l;
    return n;
}

static void test_concurrency_is_a_limit(void)
{
    struct sched s;
    struct sched_lane a;
    struct starts st = {0};
    sched_init(&s, 10);
    sched_lane_init(&a, 3, 0);
    sched_link(&s, &a);
    sched_set_ready(&s, &a, 8);
    sched_pump(&s, record, &st);
    CHECK(st.n == 3);
    CHECK(a.running == 3 && a.ready == 5);
    sched_done(&s, &a);
    sched_pump(&s, record, &st);
    CHECK(st.n == 4 && a.running == 3);
}

static void test_the_global_limit_bounds_all_lanes(void)
{
    struct sched s;
    struct sched_lane a, b;
    struct starts st = {0};
    sched_init(&s, 4);
    sched_lane_init(&a, 10, 0);
    sched_lane_init(&b, 10, 0);
    sched_link(&s, &a);
    sched_link(&s, &b);
    sched_set_ready(&s, &a, 10);
    sched_set_ready(&s, &b, 10);
    sched_pump(&s, record, &st);
    CHECK(st.n == 4);
    CHECK(a.running + b.running == 4);
    CHECK(!sched_can_start(&s, &a) && !sched_can_start(&s, &b));
}

static void test_lanes_take_turns(void)
{
    struct sched s;
    struct sched_lane flood, quiet;
    struct starts st = {0};
    sched_init(&s, 2);
    sched_lane_init(&flood, 8, 0);
    sched_lane_init(&quiet, 8, 0);
    sched_link(&s, &flood);
    sched_link(&s, &quiet);
    sched_set_ready(&s, &flood, 1000);
    sched_pump(&s, record, &st); /* the flood takes every free slot ... */
    CHECK(flood.running == 2);
    sched_set_ready(&s, &quiet, 3); /* ... then the quiet one has work */
    for (int i = 0; i < 6; i++) {
        struct sched_lane *ended = st.who[i];
        sched_done(&s, ended);
        sched_pump(&s, record, &st);
    }
    /* every freed slot went by turns: the quiet lane got one of each two */
    CHECK(count(&st, &quiet) == 3);
    CHECK(quiet.ready == 0);
}

static void test_reservations_are_kept(void)
{
    struct sched s;
    struct sched_lane big, small;
    struct starts st = {0};
    sched_init(&s, 4);
    sched_lane_init(&big, 10, 0);
    sched_lane_init(&small, 2, 2);
    sched_link(&s, &big);
    sched_link(&s, &small);
    sched_set_ready(&s, &big, 100);
    sched_pump(&s, record, &st);
    CHECK(big.running == 2); /* 4 slots, 2 reserved for small */
    sched_set_ready(&s, &small, 5);
    sched_pump(&s, record, &st);
    CHECK(small.running == 2); /* its reservation, even with big flooding */
    CHECK(!sched_can_start(&s, &small)); /* and no more: its concurrency is 2 */
    sched_done(&s, &small);
    CHECK(sched_can_start(&s, &small));
    CHECK(!sched_can_start(&s, &big)); /* a reserved slot free is not big's */
}

static void test_beyond_the_reservation_comes_from_the_rest(void)
{
    struct sched s;
    struct sched_lane a, b;
    struct starts st = {0};
    sched_init(&s, 3);
    sched_lane_init(&a, 5, 1);
    sched_lane_init(&b, 5, 0);
    sched_link(&s, &a);
    sched_link(&s, &b);
    sched_set_ready(&s, &a, 5);
    sched_pump(&s, record, &st);
    CHECK(a.running == 3); /* 1 reserved + the 2 unreserved */
    sched_set_ready(&s, &b, 1);
    CHECK(!sched_can_start(&s, &b));
    sched_done(&s, &a); /* a slot beyond a's reservation comes free */
    CHECK(sched_can_start(&s, &b));
}

static void test_unlinked_lanes_give_their_reservation_back(void)
{
    struct sched s;
    struct sched_lane old, next;
    struct starts st = {0};
    sched_init(&s, 2);
    sched_lane_init(&old, 2, 2);
    sched_lane_init(&next, 2, 0);
    sched_link(&s, &old);
    sched_link(&s, &next);
    sched_set_ready(&s, &old, 1);
    sched_pump(&s, record, &st);
    CHECK(old.running == 1);
    sched_set_ready(&s, &next, 2);
    sched_pump(&s, record, &st);
    CHECK(next.running == 0); /* both slots reserved for old */
    sched_unlink(&s, &old);   /* a reload retires it; its run still holds a slot */
    sched_pump(&s, record, &st);
    CHECK(next.running == 1);
    sched_done(&s, &old);
    sched_pump(&s, record, &st);
    CHECK(next.running == 2);
    CHECK(s.unreserved_used == 2 && s.reserved == 0);
}

static void test_held_lanes_start_nothing(void)
{
    struct sched s;
    struct sched_lane a;
    struct starts st = {0};
    sched_init(&s, 4);
    sched_lane_init(&a, 4, 0);
    a.held = true;
    sched_link(&s, &a);
    sched_set_ready(&s, &a, 2);
    sched_pump(&s, record, &st);
    CHECK(st.n == 0);
    a.held = false;
    sched_pump(&s, record, &st);
    CHECK(st.n == 2);
}

/* A start that ends at once (an event too old to run) asks for the next
 * start from inside the pump: it is served, not lost or recursed into. */
struct reentrant {
    struct sched *s;
    struct starts st;
};

static void start_and_end(void *arg, struct sched_lane *l)
{
    struct reentrant *r = arg;
    record(&r->st, l);
    sched_done(r->s, l);
    sched_pump(r->s, start_and_end, r);
}

static void test_a_start_that_ends_at_once(void)
{
    struct sched s;
    struct sched_lane a;
    struct reentrant r = {.s = &s};
    sched_init(&s, 1);
    sched_lane_init(&a, 1, 0);
    sched_link(&s, &a);
    sched_set_ready(&s, &a, 5);
    sched_pump(&s, start_and_end, &r);
    CHECK(r.st.n == 5);
    CHECK(a.running == 0 && a.ready == 0 && s.unreserved_used == 0);
}

/* Only lanes with events ready are in the round: a thousand idle
 * pipelines cost a start nothing. */
static void test_only_lanes_with_work_take_part_in_a_round(void)
{
    enum { N = 1000 };
    static struct sched_lane lanes[N];
    struct sched s;
    struct starts st = {0};
    sched_init(&s, 64);
    for (int i = 0; i < N; i++) {
        sched_lane_init(&lanes[i], 4, 0);
        sched_link(&s, &lanes[i]);
    }
    CHECK(s.n_turn == 0);
    sched_set_ready(&s, &lanes[500], 2);
    sched_set_ready(&s, &lanes[7], 1);
    CHECK(s.n_turn == 2);
    sched_pump(&s, record, &st);
    CHECK(st.n == 3 && count(&st, &lanes[500]) == 2 && count(&st, &lanes[7]) == 1);
    CHECK(s.n_turn == 0 && s.turn == NULL);
    struct sched_lane loose; /* not linked: it waits for its link */
    sched_lane_init(&loose, 1, 0);
    sched_set_ready(&s, &loose, 3);
    CHECK(s.n_turn == 0);
    sched_link(&s, &loose);
    CHECK(s.n_turn == 1);
    sched_unlink(&s, &loose);
    CHECK(s.n_turn == 0);
}

/* With every slot taken a round stops: nothing can start, and a thousand
 * waiting lanes are not walked for each slot handed back. Turns still go
 * round in order, and a free reserved slot still goes to its lane. */
static void test_a_round_stops_when_every_slot_is_taken(void)
{
    enum { N = 1000 };
    static struct sched_lane lanes[N];
    struct sched s;
    struct sched_lane r; /* one slot of three reserved for it */
    struct starts st = {0};
    sched_init(&s, 3);
    for (int i = 0; i < N; i++) {
        sched_lane_init(&lanes[i], 4, 0);
        sched_link(&s, &lanes[i]);
        sched_set_ready(&s, &lanes[i], 5);
    }
    sched_lane_init(&r, 2, 1);
    sched_link(&s, &r);
    sched_pump(&s, record, &st);
    CHECK(st.n == 2 && st.who[0] == &lanes[0] && st.who[1] == &lanes[1]);
    CHECK(s.unreserved_used == 2 && s.reserved_used == 0);
    sched_done(&s, &lanes[0]);
    sched_pump(&s, record, &st);
    CHECK(st.n == 3 && st.who[2] == &lanes[2]); /* the next in line, not lanes[0] again */
    sched_set_ready(&s, &r, 2);
    sched_pump(&s, record, &st);
    CHECK(st.n == 4 && st.who[3] == &r); /* its reserved slot */
    CHECK(s.reserved_used == 1 && r.running == 1);
    sched_pump(&s, record, &st);
    CHECK(st.n == 4); /* all three slots taken */
    sched_done(&s, &r);
    CHECK(s.reserved_used == 0 && s.unreserved_used == 2);
    sched_unlink(&s, &lanes[1]);
    sched_done(&s, &lanes[1]);
    CHECK(s.unreserved_used == 1);
}

int main(void)
{
    test_concurrency_is_a_limit();
    test_the_global_limit_bounds_all_lanes();
    test_lanes_take_turns();
    test_reservations_are_kept();
    test_beyond_the_reservation_comes_from_the_rest();
    test_unlinked_lanes_give_their_reservation_back();
    test_held_lanes_start_nothing();
    test_a_start_that_ends_at_once();
    test_only_lanes_with_work_take_part_in_a_round();
    test_a_round_stops_when_every_slot_is_taken();
    return test_summary();
}
