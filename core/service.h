/* service.h - telling systemd (Type=notify) how the daemon is doing:
 * READY=1 once it runs, RELOADING=1 / READY=1 around a SIGHUP reload,
 * STOPPING=1 when it begins to stop, and WATCHDOG=1 from a loop timer at half
 * the unit's WatchdogSec= (so a stuck loop gets the daemon restarted).
 * Outside systemd (no NOTIFY_SOCKET) every call does nothing.
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include <stdint.h>

#include "loop.h"

struct service {
    struct loop *loop;
    struct loop_timer watchdog;
    int64_t interval_ns;        /* 0: no watchdog */
    void *lib;                  /* libsystemd, opened only under systemd */
    int (*sd_notify)(int unset_environment, const char *state);
    int (*sd_watchdog_enabled)(int unset_environment, uint64_t *usec);
};

/* Start the watchdog pings if systemd asked for them. */
void service_start(struct service *s, struct loop *l);
void service_ready(struct service *s, const char *status);
void service_reloading(struct service *s);
void service_stopping(struct service *s);
/* Cancel the watchdog timer (before the loop goes). */
void service_stop(struct service *s);

#endif
