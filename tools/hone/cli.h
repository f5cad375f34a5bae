/*
 * The hone command line: one binary, one file per subcommand. Commands only
 * parse flags and call library modules. Exit codes: 0 success, 1 failure of
 * the work (bad model, failed check), 2 usage error (bad flags).
 */
#ifndef HONE_CLI_H
#define HONE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "ir.h"
#include "passes.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
} command;

/* Prints "hone: error: <ctx message>" and returns EXIT_FAIL. */
int cli_fail(const hone_ctx *ctx);
/* Prints a usage error and returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Matches "--name=value" or "--name value"; advances *i. Returns the value or NULL. */
const char *cli_opt(int argc, char **argv, int *i, const char *name);
/* True when argv[i] is "--help" or "-h". */
bool cli_is_help(const char *a);
/* Parses "NAME=1x3x224x224" into name and dims; returns rank or -1. */
int cli_parse_shape(const char *s, char *name, size_t name_cap, int64_t *dims);
/* Loads a tensor from .npy or .pb (by extension). */
hone_status cli_load_tensor(hone_ctx *ctx, const char *path, hone_tensor **out);

/* Pass-manager flags shared by opt, dump and compare (cmd_opt.c). */
typedef struct cli_passes {
    const char *text;          /* --passes */
    int level;                 /* -O<level>; -1 when not given */
    hone_passes_opts opts;
    const char *disabled[64];
} cli_passes;
void cli_passes_init(cli_passes *cp);
/* Consumes the pass flag at argv[*i]: 1 consumed, 0 not a pass flag, -1 usage error (printed). */
int cli_pass_flag(const char *cmd, int argc, char **argv, int *i, cli_passes *cp);
/* Runs the chosen pipeline on g; when none was chosen, level dflt (-1: nothing). */
hone_status cli_run_passes(hone_ctx *ctx, hone_graph *g, const cli_passes *cp, int dflt);
/* Same, also returning the per-pass statistics (malloc'd array of *n_stats rows). */
hone_status cli_run_passes_stats(hone_ctx *ctx, hone_graph *g, const cli_passes *cp, int dflt,
                                 hone_pass_stats **stats, int *n_stats);
/* Help text of the pass flags. */
void cli_passes_help(FILE *f);
/* Loads MODEL.onnx, or a text IR dump (.txt); verified and inferred. */
hone_status cli_load_model(hone_ctx *ctx, const char *path, hone_graph **out);

#define CMD(name) \
    int cmd_##name(int argc, char **argv); \
    void help_##name(FILE *f);
CMD(run)
CMD(dump)
CMD(conformance)
CMD(eval)
CMD(stats)
CMD(opt)
CMD(compare)
CMD(passes)
CMD(compile)
CMD(finetune)
#undef CMD

#endif
