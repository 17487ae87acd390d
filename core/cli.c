/* cli.c - option parsing shared by the subcommands, and `sluice run`. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "db.h"
#include "paths.h"
#include "sluice/handler.h"

int cli_common(int argc, char **argv, const char *usage, const char **config, int *help)
{
    *help = 0;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            *help = 1;
            return -1;
        }
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sluice %s: %s needs a file name\n\n%s", argv[0], argv[i], usage);
                return -1;
            }
            *config = argv[++i];
            continue;
        }
        argv[kept++] = argv[i]; /* the command's own arguments, in order */
    }
    return kept;
}

static const char run_usage[] =
    "usage: sluice run [-c FILE]\n"
    "\n"
    "Runs the daemon in the foreground, logging to stderr. Watches the folders the\n"
    "pipelines name, runs their steps, and records every invocation in the database.\n"
    "SIGTERM or SIGINT: running handlers finish, queued events stay journaled for the\n"
    "next start, exit 0. SIGHUP: reload the pipeline files (kept as they were if the\n"
    "new ones have problems).\n";

int cmd_run(int argc, char **argv)
{
    const char *config = NULL;
    int help;
    argc = cli_common(argc, argv, run_usage, &config, &help);
    if (argc < 0)
        return help ? 0 : 2;
    int i = 1;
    if (i < argc) {
        fprintf(stderr, "sluice run: unexpected argument \"%s\"\n\n%s", argv[i], run_usage);
        return 2;
    }
    return daemon_run(config);
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("sluice %s\n", SLUICE_VERSION);
    printf("database schema %d, plugin ABI %u\n", DB_SCHEMA_VERSION, (unsigned)SL_ABI_VERSION);
    printf("%s: plugins %s, runtimes %s\n", paths_installed() ? "installed" : "build tree",
           paths_plugin_dir(), paths_runtime_dir());
    return 0;
}
