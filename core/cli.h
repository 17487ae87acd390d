/* cli.h - the subcommands behind `sluice COMMAND`. Each parses its own
 * options and returns the process exit status. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_invoke(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_status(int argc, char **argv);
/* `sluice --version`: the version, the database schema and plugin ABI it
 * speaks, and where it looks for its files. */
int cmd_version(int argc, char **argv);

/* Ask a running daemon to load pending events from the journal. 0 if it
 * answered, -1 if none is running. */
int cli_poke_refill(const char *config, int timeout_ms);
/* Ask the running daemon to replay dead events (filter: JSON). 0 and its
 * answer ({"replayed": N}), 1 and its error answer, or -1 if no daemon
 * answered. *answer is the caller's to free. */
int cli_replay_request(const char *config, const char *filter_json, int timeout_ms,
                       char **answer);

/* Shared option parsing: -c FILE / --config FILE and -h / --help, anywhere
 * on the line. The other arguments are moved to argv[1..] in order; returns
 * how many argv then holds (so they are argv[1] to argv[n - 1]), or -1
 * after printing an error (or usage, with *help set). */
int cli_common(int argc, char **argv, const char *usage, const char **config, int *help);

#endif
