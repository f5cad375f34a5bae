/*
 * The hone command line: one binary, one file per subcommand. Commands only
 * parse flags and call library modules. Exit codes: 0 success, 1 failure of
 * the work (bad model, failed check), 2 usage error (bad flags).
 */
#ifndef HONE_CLI_H
#define HONE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "dataset.h"
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

/* Data flags (cli_data.c): --data, --labels, --targets, normalisation, --limit,
 * --val-split; shared by finetune and the commands that run passes. */
typedef struct cli_data {
    const char *data, *labels, *targets;
    hone_norm norm;
    double target_scale;       /* < 0: 1/255 for uint8 targets, else 1 */
    int64_t limit;             /* -1: all samples */
    double val_split;          /* default 0.1 */
    hone_tensor *x, *labels_t, *targets_t;   /* after cli_data_load */
} cli_data;
void cli_data_init(cli_data *d);
void cli_data_free(cli_data *d);
void cli_data_help(FILE *f);
/* Consumes the data flag at argv[*i]: 1 consumed, 0 not one, -1 usage error (printed). */
int cli_data_flag(const char *cmd, int argc, char **argv, int *i, cli_data *d);
/* Loads the files named in d for model g (nothing when no --data). */
hone_status cli_data_load(hone_ctx *ctx, cli_data *d, const hone_graph *g);

/* Pass-manager flags shared by opt, dump, compare, stats and compile (cmd_opt.c),
 * with the data flags for passes that calibrate or train. */
typedef struct cli_passes {
    const char *text;          /* --passes */
    int level;                 /* -O<level>; -1 when not given */
    hone_passes_opts opts;
    const char *disabled[64];
    cli_data data;
    hone_pass_data pd;
} cli_passes;
void cli_passes_init(cli_passes *cp);
/* Frees the loaded data. */
void cli_passes_free(cli_passes *cp);
/* Consumes the pass flag at argv[*i]: 1 consumed, 0 not a pass flag, -1 usage error (printed). */
int cli_pass_flag(const char *cmd, int argc, char **argv, int *i, cli_passes *cp);
/* Runs the chosen pipeline on g (loading the data flags' files first); when
 * none was chosen, level dflt (-1: nothing). */
hone_status cli_run_passes(hone_ctx *ctx, hone_graph *g, cli_passes *cp, int dflt);
/* Same, also returning the per-pass statistics (malloc'd array of *n_stats
 * rows; release with hone_pass_stats_release and free). */
hone_status cli_run_passes_stats(hone_ctx *ctx, hone_graph *g, cli_passes *cp, int dflt,
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
