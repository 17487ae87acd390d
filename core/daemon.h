/* daemon.h - `sluice run`: wires config, pipelines, plugins, the database
 * writer, the dispatcher and the sources onto one event loop, and runs until
 * SIGTERM/SIGINT (drain and exit 0). SIGHUP reloads the pipelines. */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

/* Returns the process exit status. */
int daemon_run(const char *config_file);

#endif
