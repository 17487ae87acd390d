/* admin.h - the admin listener (admin.listen, loopback by default): GET
 * /metrics (Prometheus text format), GET /healthz and GET /status (JSON,
 * what `sluice status` shows). libmicrohttpd driven by the daemon's loop,
 * so the engine snapshot is taken on the loop thread without locks.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include "err.h"
#include "metrics.h"

struct loop;
struct admin;

struct admin_settings {
    const char *listen;         /* HOST:PORT (IPv4) */
    const char *database;       /* its size is reported */
    const char *config_file;    /* named in /status */
};

int admin_new(struct loop *l, const struct admin_settings *set, const struct admin_source *src,
              struct admin **out, struct err *e);
void admin_free(struct admin **a);

/* The /status document (for tests and the listener); NULL if out of memory. */
char *admin_status_json(const struct admin_settings *set, const struct engine_snapshot *snap,
                        int64_t started_ms);
int64_t admin_database_bytes(const char *database);

#endif
