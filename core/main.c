/* main.c - `sluice COMMAND [OPTIONS]`: picks the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "worker.h"

static const char usage[] =
    "usage: sluice COMMAND [OPTIONS]\n"
    "\n"
    "Runs Lambda-style handler plugins on files dropped into folders and events\n"
    "published over ZeroMQ, and logs every invocation to SQLite.\n"
    "\n"
    "commands:\n"
    "  run     [-c FILE]                 run the daemon in the foreground\n"
    "  check   [-c FILE]                 validate config, pipelines and plugins\n"
    "  logs    [-c FILE] [--pipeline P] [--failed] [--limit N]\n"
    "                                    recent invocations, one line each\n"
    "  logs    ... --follow | --json     tail new invocations as they land; JSON lines\n"
    "  stats   [-c FILE]                 per pipeline and step: count, errors, latency\n"
    "  status  [-c FILE] [--json]        the running daemon: pipelines, in-flight, backlog\n"
    "  publish [-c FILE] [--lines] TOPIC [JSON|-]\n"
    "                                    publish an event to the daemon over ZeroMQ\n"
    "  invoke  [-c FILE] [--timeout MS] PIPELINE [JSON|-]\n"
    "                                    run a pipeline synchronously, print its response\n"
    "  replay  [-c FILE] [--pipeline P] [--id ID] [--since T]\n"
    "                                    re-run dead events\n"
    "  keygen                            print a CURVE key pair for remote clients\n"
    "  --version                         print the version\n"
    "\n"
    "Without -c, sluice reads ./sluice.json if present, else its embedded default\n"
    "(state in ./var, pipelines from ./pipelines). `sluice COMMAND --help` for more;\n"
    "man sluice and man sluice.json for the whole story.\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"run", cmd_run}, {"check", cmd_check}, {"logs", cmd_logs}, {"stats", cmd_stats},
                {"publish", cmd_publish}, {"invoke", cmd_invoke}, {"replay", cmd_replay},
                {"keygen", cmd_keygen}, {"status", cmd_status}, {"--version", cmd_version},
                {"version", cmd_version},
                {"worker", worker_main}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command \"%s\"\n\n%s", argv[1], usage);
    return 2;
}
