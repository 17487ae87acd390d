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

/* Shared option parsing: -c FILE / --config FILE and -h / --help. Returns
 * the index of the first unparsed argument, or -1 after printing an error
 * (or usage, with *help set). */
int cli_common(int argc, char **argv, const char *usage, const char **config, int *help);

#endif
