/* service.c - sd_notify for sluice.service (see service.h). The watchdog
 * is pinged from the daemon's own loop, so it proves the loop still turns,
 * not merely that a thread is alive. */
#include "service.h"

#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"

static void on_watchdog(struct loop_timer *t)
{
    struct service *s = (struct service *)((char *)t - offsetof(struct service, watchdog));
    sd_notify(0, "WATCHDOG=1");
    loop_timer_arm(s->loop, &s->watchdog, clock_mono_ns() + s->interval_ns);
}

void service_start(struct service *s, struct loop *l)
{
    uint64_t usec = 0;
    *s = (struct service){.loop = l};
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    s->interval_ns = (int64_t)usec * 1000 / 2;
    s->watchdog.fire = on_watchdog;
    log_msg(LOG_INFO, "systemd watchdog: pinging every %.1f s", (double)s->interval_ns / 1e9);
    loop_timer_arm(l, &s->watchdog, clock_mono_ns() + s->interval_ns);
}

void service_ready(struct service *s, const char *status)
{
    (void)s;
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void service_reloading(struct service *s)
{
    (void)s;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)(clock_mono_ns() / 1000));
}

void service_stopping(struct service *s)
{
    (void)s;
    sd_notify(0, "STOPPING=1");
}

void service_stop(struct service *s)
{
    if (s->loop && s->watchdog.armed)
        loop_timer_cancel(s->loop, &s->watchdog);
}
