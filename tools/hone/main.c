/*
 * hone: entry point and subcommand dispatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "onnx.h"

static const command commands[] = {
    {"run", "run a model in the reference interpreter (or compiled, --jit)", cmd_run, help_run},
    {"dump", "print the text IR of a model", cmd_dump, help_dump},
    {"conformance", "run ONNX backend test folders", cmd_conformance, help_conformance},
    {"eval", "measure a model's top-1 accuracy or PSNR on a dataset", cmd_eval, help_eval},
    {"stats", "count parameters, MACs and FLOPs per op type", cmd_stats, help_stats},
    {"opt", "optimise a model with a pass pipeline", cmd_opt, help_opt},
    {"compare", "compare every value of a model before and after passes", cmd_compare, help_compare},
    {"passes", "list the graph passes and their options", cmd_passes, help_passes},
    {"compile", "compile a model to native code (shared library, object, header)", cmd_compile,
     help_compile},
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

/* "512M", "2G", "1000" -> bytes (or a plain count); -1 when malformed. */
static int64_t parse_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    int64_t mul = 1;
    if (end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': mul = (int64_t)1 << 10; end++; break;
    case 'm': case 'M': mul = (int64_t)1 << 20; end++; break;
    case 'g': case 'G': mul = (int64_t)1 << 30; end++; break;
    default: break;
    }
    if (*end || v > INT64_MAX / mul)
        return -1;
    return v * mul;
}

/* Strips the global --max-* limit flags from argv into the default limits;
 * returns the new argc, or -1 after printing a usage error. */
static int take_limit_flags(int argc, char **argv)
{
    static const struct {
        const char *flag;
        size_t off;
    } flags[] = {
        {"--max-memory", offsetof(hone_limits, max_memory)},
        {"--max-dim", offsetof(hone_limits, max_dim)},
        {"--max-numel", offsetof(hone_limits, max_numel)},
        {"--max-bytes", offsetof(hone_limits, max_bytes)},
        {"--max-nodes", offsetof(hone_limits, max_nodes)},
        {"--max-depth", offsetof(hone_limits, max_depth)},
    };
    hone_limits lim;
    hone_limits_get_defaults(&lim);
    int k = 1;
    for (int i = 1; i < argc; i++) {
        size_t f = 0;
        const char *v = NULL;
        for (; f < sizeof flags / sizeof *flags && !v; f++)
            v = cli_opt(argc, argv, &i, flags[f].flag);
        if (!v) {
            argv[k++] = argv[i];
            continue;
        }
        int64_t n = parse_size(v);
        if (n <= 0) {
            fprintf(stderr, "hone: %s needs a positive size (e.g. 512M), got '%s'\n",
                    flags[f - 1].flag, v);
            return -1;
        }
        *(int64_t *)((char *)&lim + flags[f - 1].off) = n;
    }
    hone_limits_set_defaults(&lim);
    return k;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hone <command> [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'hone <command> --help' describes each command. Exit codes: 0 ok, 1 failure, "
               "2 usage error.\n"
               "\nresource limits (any command; sizes take K/M/G suffixes):\n"
               "  --max-memory=SIZE   interpreter memory for intermediates (default: none)\n"
               "  --max-dim=N         largest dimension accepted (default 2^40)\n"
               "  --max-numel=N       largest element count of one tensor (default 2^40)\n"
               "  --max-bytes=SIZE    largest tensor or file read (default 4T)\n"
               "  --max-nodes=N       largest graph (default 1000000)\n"
               "  --max-depth=N       longest chain of dependent nodes (default 100000)\n");
}

int main(int argc, char **argv)
{
    argc = take_limit_flags(argc, argv);
    if (argc < 0)
        return EXIT_USAGE;
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
