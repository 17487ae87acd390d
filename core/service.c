/* service.c - sd_notify for sluice.service (see service.h). The watchdog
 * is pinged from the daemon's own loop, so it proves the loop still turns,
 * not merely that a thread is alive.
 *
 * libsystemd is opened only when systemd started the daemon (NOTIFY_SOCKET
 * is set): elsewhere its pages, and those of the compression libraries it
 * pulls in (about 0.6 MiB), stay out of the daemon's memory. */
#include "service.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

#define LIBSYSTEMD "libsystemd.so.0"

static void notify(const struct service *s, const char *state)
{
    if (s->sd_notify)
        s->sd_notify(0, state);
}

static void on_watchdog(struct loop_timer *t)
{
    struct service *s = (struct service *)((char *)t - offsetof(struct service, watchdog));
    notify(s, "WATCHDOG=1");
    loop_timer_arm(s->loop, &s->watchdog, clock_mono_ns() + s->interval_ns);
}

/* sd_notify and sd_watchdog_enabled from libsystemd, if systemd asks. */
static void open_libsystemd(struct service *s)
{
    if (!getenv("NOTIFY_SOCKET"))
        return;
    s->lib = dlopen(LIBSYSTEMD, RTLD_NOW | RTLD_LOCAL);
    if (s->lib) {
        *(void **)&s->sd_notify = dlsym(s->lib, "sd_notify");
        *(void **)&s->sd_watchdog_enabled = dlsym(s->lib, "sd_watchdog_enabled");
    }
    if (!s->sd_notify || !s->sd_watchdog_enabled) {
        log_msg(LOG_WARN, "NOTIFY_SOCKET is set but %s cannot be used (%s): systemd will not "
                "hear that sluice is ready (install libsystemd0)", LIBSYSTEMD,
                s->lib ? "a symbol is missing" : dlerror());
        s->sd_notify = NULL;
        s->sd_watchdog_enabled = NULL;
    }
}

void service_start(struct service *s, struct loop *l)
{
    uint64_t usec = 0;
    *s = (struct service){.loop = l};
    open_libsystemd(s);
    if (!s->sd_watchdog_enabled || s->sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    s->interval_ns = (int64_t)usec * 1000 / 2;
    s->watchdog.fire = on_watchdog;
    log_msg(LOG_INFO, "systemd watchdog: pinging every %.1f s", (double)s->interval_ns / 1e9);
    loop_timer_arm(l, &s->watchdog, clock_mono_ns() + s->interval_ns);
}

void service_ready(struct service *s, const char *status)
{
    char state[160];
    snprintf(state, sizeof state, "READY=1\nSTATUS=%.120s", status);
    notify(s, state);
}

void service_reloading(struct service *s)
{
    char state[80];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%lld",
             (long long)(clock_mono_ns() / 1000));
    notify(s, state);
}

void service_stopping(struct service *s)
{
    notify(s, "STOPPING=1");
}

void service_stop(struct service *s)
{
    if (s->loop && s->watchdog.armed)
        loop_timer_cancel(s->loop, &s->watchdog);
    if (s->lib)
        dlclose(s->lib);
    s->lib = NULL;
    s->sd_notify = NULL;
    s->sd_watchdog_enabled = NULL;
}
