/* plugin_config.h - a step's "config" checked against the keys its plugin
 * declares (sl_plugin.config_keys): unknown keys (with "did you mean"), wrong
 * types and missing required keys are reported exactly as pipeline keys are
 * (through confmap), and absent keys get their declared defaults. The loader
 * runs it when it binds a step, so `sluice check` and `sluice run` both
 * refuse a misspelt plugin key before any event arrives. */
#ifndef SLUICE_PLUGIN_CONFIG_H
#define SLUICE_PLUGIN_CONFIG_H

#include "diag.h"
#include "sluice/handler.h"

/* keys: the declared keys (NULL: anything goes, config is copied). config:
 * the step's config as JSON text. file and where ("steps[1] (name).config")
 * place the messages. Returns the number of errors added to d; on 0,
 * *merged is the config with defaults filled in (owned by the caller). */
int plugin_config_check(const sl_config_key *keys, const char *config, const char *file,
                        const char *where, struct diag *d, char **merged);

#endif
