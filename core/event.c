/* event.c - the event object (see event.h). */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

static int64_t started_wall_ms, started_ns;

void event_clock_start(void)
{
    started_wall_ms = clock_wall_ms();
    started_ns = clock_mono_ns();
}

static struct event *event_alloc(const char *id, const char *source, const char *subject,
                                 const char *json, size_t len)
{
    size_t nid = strlen(id) + 1, nsrc = strlen(source) + 1;
    size_t nsub = subject ? strlen(subject) + 1 : 0;
    struct event *ev = malloc(sizeof *ev + nid + nsrc + nsub + len + 1);
    if (!ev)
        return NULL;
    char *p = (char *)(ev + 1);
    *ev = (struct event){.refs = 1, .len = len};
    ev->id = memcpy(p, id, nid);
    p += nid;
    ev->source = memcpy(p, source, nsrc);
    p += nsrc;
    ev->subject = subject ? memcpy(p, subject, nsub) : ev->source;
    p += nsub;
    memcpy(p, json, len);
    p[len] = '\0';
    ev->json = p;
    return ev;
}

struct event *event_new(const char *id, const char *source, const char *subject,
                        const char *json, size_t len, bool new_id)
{
    struct event *ev = event_alloc(id, source, subject, json, len);
    if (ev) {
        ev->new_id = new_id;
        ev->received_ms = clock_wall_ms();
        ev->received_ns = clock_mono_ns();
    }
    return ev;
}

/* A row this process journaled itself (received after it started) cannot
 * have waited longer than the process has been up: a wall-clock step in
 * between must not make it look hours old. Older rows only have the wall
 * clock to go by. */
int64_t event_journal_age_ms(int64_t received_ms, int64_t started_wall, int64_t started_mono_ns,
                             int64_t now_wall_ms, int64_t now_ns)
{
    int64_t age_ms = now_wall_ms - received_ms;
    if (age_ms < 0)
        age_ms = 0;
    int64_t uptime_ms = (now_ns - started_mono_ns) / 1000000;
    if (started_mono_ns && received_ms >= started_wall && age_ms > uptime_ms)
        age_ms = uptime_ms;
    return age_ms;
}

struct event *event_from_journal(const char *id, const char *source, const char *json,
                                 int64_t received_ms)
{
    struct event *ev = event_alloc(id, source, NULL, json, strlen(json));
    if (!ev)
        return NULL;
    int64_t now_ns = clock_mono_ns();
    int64_t age_ms = event_journal_age_ms(received_ms, started_wall_ms, started_ns,
                                          clock_wall_ms(), now_ns);
    ev->received_ms = received_ms;
    ev->received_ns = now_ns - age_ms * 1000000;
    return ev;
}

struct event *event_ref(struct event *ev)
{
    if (ev)
        ev->refs++;
    return ev;
}

void event_unref(struct event **evp)
{
    struct event *ev = *evp;
    *evp = NULL;
    if (!ev || --ev->refs > 0)
        return;
    cJSON_Delete(ev->parsed);
    free(ev);
}

const cJSON *event_parsed(struct event *ev)
{
    if (!ev->parse_tried) {
        ev->parse_tried = true;
        ev->parsed = cJSON_ParseWithLength(ev->json, ev->len);
    }
    return ev->parsed;
}

int64_t event_age_ms(const struct event *ev, int64_t now_ns)
{
    return (now_ns - ev->received_ns) / 1000000;
}
