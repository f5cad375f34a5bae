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

#define CMD(name) \
    int cmd_##name(int argc, char **argv); \
    void help_##name(FILE *f);
CMD(run)
CMD(dump)
CMD(conformance)
CMD(eval)
CMD(stats)
CMD(finetune)
#undef CMD

#endif
