/* journal.h - the events table: every accepted event, per pipeline, with its
 * state ('pending' -> 'done' | 'dead').
 *
 * An event is accepted when its append has committed; only then is it
 * dispatched. (pipeline, event_id) is unique, so an event seen twice (a file
 * found again by a rescan or at start-up) is recognised, not run twice.
 * Pending events survive any crash and are resumed at start.
 */
#ifndef SLUICE_JOURNAL_H
#define SLUICE_JOURNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"
#include "writer.h"

struct journal_entry {
    int64_t id;                 /* journal sequence (events.id) */
    char *pipeline;
    char *event_id;
    char *source;
    char *payload;
    int attempts;               /* attempts made before */
    int64_t received_ms;        /* when it was accepted */
};

/* inserted is false when (pipeline, event_id) was already journaled. */
typedef void (*journal_appended_fn)(void *arg, int rc, bool inserted, int64_t id,
                                    const struct err *e);

/* Queue an append; cb runs on the writer thread after the commit. Strings
 * are copied. ticket (may be NULL) receives the append's writer ticket:
 * pass one only for an event already running, whose journal_finish is
 * expected soon (a quiet writer waits a moment for it, to commit once).
 * Returns -1 (and does not call cb) only when out of memory. */
int journal_append(struct writer *w, const char *pipeline, const char *event_id,
                   const char *source, const char *payload, journal_appended_fn cb, void *arg,
                   struct writer_ticket *ticket, struct err *e);

/* An append's outcome, delivered to the loop as a message: the writer
 * thread fills the fields and posts task; nothing of the caller's runs on
 * the writer thread. */
struct journal_receipt {
    struct loop_task task;      /* run: the caller's, on the loop thread */
    int rc;
    bool inserted;
    int64_t id;
    char error[256];
};

/* journal_append, answered with a posted receipt (owned by the caller,
 * which must keep it until its task runs). */
int journal_append_post(struct writer *w, struct loop *l, const char *pipeline,
                        const char *event_id, const char *source, const char *payload,
                        struct journal_receipt *receipt, struct writer_ticket *ticket,
                        struct err *e);

/* Which dead events a replay takes (NULL: any). */
struct journal_replay_filter {
    const char *pipeline, *event_id, *since;
};

/* Give each dead event that matches f (and was not replayed yet) a new
 * pending row (event id EVENT_ID#rN, replay_of = the dead row's id).
 * Directly on db (no daemon runs), returning how many, or -1 with e. */
int journal_replay_now(sqlite3 *db, const struct journal_replay_filter *f, struct err *e);
/* The same through the writer, while the daemon runs: the receipt's id is
 * how many, posted once committed. Strings are copied. */
int journal_replay(struct writer *w, struct loop *l, const struct journal_replay_filter *f,
                   struct journal_receipt *receipt, struct err *e);
/* The SQL of the dead events f takes: "SELECT <columns>" JOURNAL_DEAD_MATCHING,
 * filters bound by journal_bind_filter (parameters ?1..?3). */
#define JOURNAL_DEAD_MATCHING                                                              \
    " FROM events e WHERE e.state = 'dead'"                                                \
    " AND NOT EXISTS (SELECT 1 FROM events r WHERE r.replay_of = e.id)"                    \
    " AND (?1 IS NULL OR e.pipeline = ?1) AND (?2 IS NULL OR e.event_id = ?2)"             \
    " AND (?3 IS NULL OR e.received_at >= ?3)"
void journal_bind_filter(sqlite3_stmt *st, const struct journal_replay_filter *f);

/* Post task to l once everything submitted before it has committed (or
 * failed): after it, a reader sees every outcome written so far. */
int journal_barrier(struct writer *w, struct loop *l, struct loop_task *task, struct err *e);

/* Which journal row a run finishes: its id, or, for an event that started
 * before its append was known to have committed (id 0), its append's ticket
 * and (pipeline, event_id). */
struct journal_ref {
    int64_t id;
    struct writer_ticket append;
    const char *pipeline, *event_id;
    /* Optional: called on the writer thread once the outcome has committed
     * (or could not be written), or at once if journal_finish fails. */
    void (*finished)(void *arg);
    void *finished_arg;
    /* Or: posted to loop once the outcome has committed (or could not be
     * written, or at once if journal_finish fails). */
    struct loop *loop;
    struct loop_task *settled;
};

/* Record the outcome of a run: state "done" or "dead", attempts made. When
 * the append is still waiting in the same transaction, the row is written
 * finished at once instead of being inserted and then updated. */
int journal_finish(struct writer *w, const struct journal_ref *ref, const char *state,
                   int attempts, const char *error, struct err *e);

/* Pending events of a pipeline with id > after, oldest first, at most limit.
 * Calls cb for each (the entry is only valid during the call). Returns the
 * number of rows or -1. */
int journal_load_pending(sqlite3 *db, const char *pipeline, int64_t after, int limit,
                         void (*cb)(void *arg, const struct journal_entry *entry), void *arg,
                         struct err *e);
/* The pending row of (pipeline, event_id): 1 with its id and attempts, 0 if
 * there is none, -1 with e. */
int journal_find_pending(sqlite3 *db, const char *pipeline, const char *event_id, int64_t *id,
                         int *attempts, struct err *e);
/* The highest row id of pipeline's events (0: none): 0, or -1 with e. */
int journal_last_id(sqlite3 *db, const char *pipeline, int64_t *id, struct err *e);

/* A point read of the committed journal on a read connection, prepared
 * once: has a row of (pipeline, event_id) committed? The UNIQUE index
 * answers it. Same thread as db's other users. */
struct journal_probe;
int journal_probe_open(sqlite3 *db, struct journal_probe **out, struct err *e);
/* true: a committed row has it, or the read cannot tell (an error, or a
 * read transaction open on db whose snapshot may be older than a commit the
 * caller has been told of); false: no committed row has it. */
bool journal_probe_has(struct journal_probe *pr, const char *pipeline, const char *event_id);
void journal_probe_close(struct journal_probe **pr);

/* Pending events per pipeline, in one pass over the pending index: cb(arg,
 * pipeline, n) for each pipeline that has any. */
int journal_count_pending(sqlite3 *db, void (*cb)(void *arg, const char *pipeline, int64_t n),
                          void *arg, struct err *e);

/* Record a message refused before it became an event (bad frames, not
 * JSON, no pipeline for its topic...). payload may be NULL; at most 4 KiB of
 * it is kept. */
int journal_reject(struct writer *w, const char *source, const char *reason, const char *payload,
                   size_t len, struct err *e);

void journal_entry_release(struct journal_entry *entry);

#endif
