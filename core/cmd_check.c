/* cmd_check.c - `sluice check`: validates the config, every pipeline file,
 * every plugin a step names and each step's config against the keys its
 * plugin declares (the loader's binding does that), printing each problem as
 * "file: message". */
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "diag.h"
#include "loader.h"
#include "pipeline.h"

static const char check_usage[] =
    "usage: sluice check [-c FILE]\n"
    "\n"
    "Validates sluice.json (or the embedded default), every pipeline file and every\n"
    "plugin the steps name (found, loadable, a handler ABI it speaks, handler exported,\n"
    "step config matching the keys the plugin declares).\n"
    "Prints each problem as `file: message`; exits 1 if there is any error.\n";

int cmd_check(int argc, char **argv)
{
    const char *config = NULL;
    int help;
    argc = cli_common(argc, argv, check_usage, &config, &help);
    if (argc < 0)
        return help ? 0 : 2;
    int i = 1;
    if (i < argc) {
        fprintf(stderr, "sluice check: unexpected argument \"%s\"\n\n%s", argv[i], check_usage);
        return 2;
    }
    struct diag d = {0};
    struct config *cfg = NULL;
    struct pipeline_set set = {0};
    struct loader *loader = NULL;
    struct err e;
    if (config_load(config, &cfg, &d) == 0) {
        pipeline_set_load(cfg, &set, &d);
        if (loader_new(&cfg->plugin_path, &loader, &e) < 0)
            diag_error(&d, cfg->file, "%s", e.msg);
        else
            loader_bind_set(loader, &set, &d);
    }
    diag_print(&d, stderr);
    int status = d.errors ? 1 : 0;
    if (status == 0)
        printf("ok: %s, %zu pipeline%s%s%d warning%s\n", cfg->file, set.n, set.n == 1 ? "" : "s",
               ", ", d.warnings, d.warnings == 1 ? "" : "s");
    else
        fprintf(stderr, "%d error%s\n", d.errors, d.errors == 1 ? "" : "s");
    loader_free(&loader);
    pipeline_set_free(&set);
    config_free(&cfg);
    diag_free(&d);
    return status;
}
