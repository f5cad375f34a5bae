/*
 * hone: entry point and subcommand dispatch.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "onnx.h"

static const command commands[] = {
    {"run", "run a model in the reference interpreter", cmd_run, help_run},
    {"dump", "print the text IR of a model", cmd_dump, help_dump},
    {"conformance", "run ONNX backend test folders", cmd_conformance, help_conformance},
    {"eval", "measure a model's top-1 accuracy or PSNR on a dataset", cmd_eval, help_eval},
    {"stats", "count parameters, MACs and FLOPs per op type", cmd_stats, help_stats},
    {"finetune", "train a model's weights on a dataset (SGD/Adam, schedules, distillation)", cmd_finetune,
     help_finetune},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

int cli_fail(const hone_ctx *ctx)
{
    fprintf(stderr, "hone: error: %s\n", ctx->msg[0] ? ctx->msg : hone_status_name(ctx->status));
    return EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hone %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'hone %s --help')\n", cmd);
    return EXIT_USAGE;
}

const char *cli_opt(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

bool cli_is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int cli_parse_shape(const char *s, char *name, size_t name_cap, int64_t *dims)
{
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= name_cap)
        return -1;
    memcpy(name, s, (size_t)(eq - s));
    name[eq - s] = 0;
    int r = 0;
    const char *p = eq + 1;
    while (*p) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 0 || r >= HONE_MAX_RANK)
            return -1;
        dims[r++] = d;
        p = end;
        if (*p == 'x' || *p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return r;
}

hone_status cli_load_tensor(hone_ctx *ctx, const char *path, hone_tensor **out)
{
    return hone_data_load(ctx, path, out);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hone <command> [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'hone <command> --help' describes each command. Exit codes: 0 ok, 1 failure, "
               "2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("hone %s\n", hone_version_string());
        return EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            for (int a = 2; a < argc; a++)
                if (cli_is_help(argv[a])) {
                    commands[i].help(stdout);
                    return EXIT_OK;
                }
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "hone: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
