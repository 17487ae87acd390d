/* paths.h - where sluice finds its own files: the bundled plugins, the
 * Python/Node.js runtimes and sluice-worker.
 *
 * Installed (the runtimes folder exists at its install place relative to the
 * running binary), everything is found relative to the binary's folder, so a
 * copy of the install tree moved elsewhere still works. Otherwise sluice runs
 * from its build tree, which keeps the build's own folders (./dev.sh run).
 */
#ifndef SLUICE_PATHS_H
#define SLUICE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* True when running from an install tree (see above). */
bool paths_installed(void);
/* The default plugin folder (an absolute path, valid for the process). */
const char *paths_plugin_dir(void);
/* The folder holding python/bootstrap.py and node/bootstrap.js. */
const char *paths_runtime_dir(void);
/* The Python and Node.js bootstrap scripts in that folder (stable strings). */
const char *paths_python_bootstrap(void);
const char *paths_node_bootstrap(void);
/* Where sluice-worker should be: installed, in libexec/sluice; in the build
 * tree, beside the binary. Returns buf, or NULL if it does not fit. */
const char *paths_worker_exe(char *buf, size_t len);
/* The same for sluice-runtime-api ("runtime": "provided" workers), beside it. */
const char *paths_runtime_api_exe(char *buf, size_t len);

#endif
