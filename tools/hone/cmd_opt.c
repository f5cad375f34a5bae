/*
 * hone opt MODEL [--passes=...|-O2] -o OUT: runs a pass pipeline over a model
 * and writes the result (ONNX, or the text IR when OUT ends in .txt).
 *
 * Also home of what opt, dump and compare share: the pass-manager flags
 * (--passes, -O0..-O3, --print-after, --print-dir, --disable-pass,
 * --time-passes, --report) and model loading, which reads the text IR dump
 * back when the file ends in .txt.
 *
 * Under mpirun (an MPI-enabled build, passes/train/dist.h) every rank runs
 * the pipeline, so training phases run data-parallel; rank 0 alone prints
 * pass progress and writes the model, the report and IR dumps.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cost.h"
#include "onnx.h"
#include "train/dist.h"

void cli_passes_init(cli_passes *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->level = -1;
    cp->opts.disabled = cp->disabled;
    cp->opts.macs = hone_node_macs;
    cli_data_init(&cp->data);
}

void cli_passes_free(cli_passes *cp)
{
    cli_data_free(&cp->data);
}

void cli_passes_help(FILE *f)
{
    fprintf(f, "pass flags:\n"
               "  --passes=PIPELINE     e.g. 'fold-constants,dce,fuse-conv{residual=false}'\n"
               "  -O0 .. -O3            default pipelines ('hone passes' lists them)\n"
               "  --print-after=NAME    dump the IR after passes named NAME (comma list, or all)\n"
               "  --print-dir=DIR       write those dumps as DIR/NN-pass.txt instead of stderr\n"
               "  --disable-pass=NAME   skip every run of pass NAME (repeatable), to bisect\n"
               "  --time-passes         table of wall time and peak RSS growth per pass on stderr\n"
               "  --report=FILE.json    nodes, params and changes before/after each pass\n");
    cli_data_help(f);
}

/* -O<digit>: the level, or -2 when arg is not a level flag. */
static int level_flag(const char *a)
{
    if (strncmp(a, "-O", 2))
        return -2;
    return a[2] >= '0' && a[2] <= '9' && !a[3] ? a[2] - '0' : 99;
}

int cli_pass_flag(const char *cmd, int argc, char **argv, int *i, cli_passes *cp)
{
    const char *v;
    int level = level_flag(argv[*i]);
    if (level >= 0) {
        if (!hone_pipeline_level(level))
            return cli_usage(cmd, "'%s': optimisation levels are -O0 to -O3", argv[*i]), -1;
        cp->level = level;
    } else if ((v = cli_opt(argc, argv, i, "--passes"))) {
        hone_ctx ctx;
        hone_pipeline p;
        hone_ctx_init(&ctx);
        if (hone_pipeline_parse(&ctx, v, &p))
            return cli_usage(cmd, "%s", ctx.msg), -1;
        hone_pipeline_free(&p);
        cp->text = v;
    } else if ((v = cli_opt(argc, argv, i, "--print-after"))) {
        cp->opts.print_after = v;
    } else if ((v = cli_opt(argc, argv, i, "--print-dir"))) {
        cp->opts.print_dir = v;
    } else if ((v = cli_opt(argc, argv, i, "--disable-pass"))) {
        char list[1024];
        if (!hone_pass_find(v))
            return cli_usage(cmd, "cannot disable unknown pass '%s' (valid passes: %s)", v,
                             hone_pass_names(list, sizeof list)), -1;
        if (cp->opts.n_disabled == 64)
            return cli_usage(cmd, "too many --disable-pass flags"), -1;
        cp->disabled[cp->opts.n_disabled++] = v;
    } else if ((v = cli_opt(argc, argv, i, "--report"))) {
        cp->opts.report_path = v;
    } else if (!strcmp(argv[*i], "--time-passes")) {
        cp->opts.time_passes = true;
    } else {
        return cli_data_flag(cmd, argc, argv, i, &cp->data);
    }
    if (cp->text && cp->level >= 0)
        return cli_usage(cmd, "give either --passes or -O<level>, not both"), -1;
    return 1;
}

hone_status cli_run_passes(hone_ctx *ctx, hone_graph *g, cli_passes *cp, int dflt)
{
    return cli_run_passes_stats(ctx, g, cp, dflt, NULL, NULL);
}

/* Loads the data flags' files for g once and hands them to the passes. */
static hone_status attach_data(hone_ctx *ctx, const hone_graph *g, cli_passes *cp)
{
    if (!cp->data.data || cp->data.x)
        return cp->data.labels || cp->data.targets
                   ? cli_data_load(ctx, &cp->data, g) : HONE_OK;
    hone_status st = cli_data_load(ctx, &cp->data, g);
    if (st)
        return st;
    cp->pd = (hone_pass_data){cp->data.x, cp->data.labels_t, cp->data.targets_t,
                              cp->data.val_split, cp->data.data};
    cp->opts.data = &cp->pd;
    return HONE_OK;
}

/* Ranks other than 0 of a data-parallel run keep quiet and write nothing. */
static void quiet_other_ranks(cli_passes *cp)
{
    static FILE *null_stream;
    if (hone_dist_rank() == 0)
        return;
    if (!null_stream)
        null_stream = fopen("/dev/null", "w");
    cp->opts.log_stream = null_stream;
    cp->opts.print_stream = null_stream;
    cp->opts.time_stream = null_stream;
    cp->opts.print_dir = NULL;
    cp->opts.report_path = NULL;
}

hone_status cli_run_passes_stats(hone_ctx *ctx, hone_graph *g, cli_passes *cp, int dflt,
                                 hone_pass_stats **stats, int *n_stats)
{
    int level = cp->level >= 0 ? cp->level : dflt;
    const char *text = cp->text ? cp->text : level >= 0 ? hone_pipeline_level(level) : NULL;
    if (stats) {
        *stats = NULL;
        *n_stats = 0;
    }
    if (!text)
        return HONE_OK;
    hone_pipeline p;
    quiet_other_ranks(cp);
    hone_status st = attach_data(ctx, g, cp);
    if (st)
        return st;
    st = hone_pipeline_parse(ctx, text, &p);
    if (st)
        return st;
    hone_pass_stats *s = stats ? calloc((size_t)p.n + 1, sizeof *s) : NULL;
    st = hone_passes_run(ctx, g, &p, &cp->opts, s);
    if (stats) {
        *stats = s;
        *n_stats = p.n;
    }
    hone_pipeline_free(&p);
    return st;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Text IR: parse, check every op is supported, infer. */
static hone_status load_text(hone_ctx *ctx, const char *path, hone_graph **out)
{
    uint8_t *buf;
    size_t len;
    *out = NULL;
    hone_status st = hone_read_file(ctx, path, &buf, &len);
    if (st)
        return st;
    char *text = realloc(buf, len + 1);
    HONE_ASSERT(text);
    text[len] = 0;
    st = hone_graph_parse(ctx, text, out);
    free(text);
    if (!st)
        st = hone_graph_check_supported(ctx, *out);
    if (!st)
        st = hone_graph_infer(ctx, *out);
    if (st) {
        hone_graph_free(*out);
        *out = NULL;
        hone_fail_wrap(ctx, "%s", path);
    }
    return st;
}

hone_status cli_load_model(hone_ctx *ctx, const char *path, hone_graph **out)
{
    return has_suffix(path, ".txt") ? load_text(ctx, path, out) : hone_onnx_load(ctx, path, out);
}

static hone_status save_model(hone_ctx *ctx, const hone_graph *g, const char *path, bool strip)
{
    if (!has_suffix(path, ".txt"))
        return hone_onnx_save_flags(ctx, g, path, strip ? HONE_ONNX_NO_VALUE_INFO : 0);
    FILE *f = fopen(path, "w");
    if (!f)
        return hone_fail(ctx, HONE_ERR_IO, "cannot write '%s'", path);
    hone_graph_print(f, g);
    return fclose(f) ? hone_fail(ctx, HONE_ERR_IO, "cannot write '%s'", path) : HONE_OK;
}

/* --portable: hone.BinaryConv to standard ONNX; drops the hone opset when no
 * hone-domain node is left. */
static hone_status portable_form(hone_ctx *ctx, hone_graph *g)
{
    int n = 0;
    hone_status st = hone_binary_to_onnx(ctx, g, &n);
    bool hone_left = false;
    for (int i = 0; i < g->n_nodes; i++)
        hone_left = hone_left || !strcmp(g->nodes[i]->domain, "hone");
    for (int i = 0; !st && !hone_left && i < g->n_opsets; i++)
        if (!strcmp(g->opsets[i].domain, "hone"))
            g->opsets[i--] = g->opsets[--g->n_opsets];
    if (!st)
        fprintf(stderr, "portable: %d hone.BinaryConv rewritten as Conv\n", n);
    return st;
}

void help_opt(FILE *f)
{
    fprintf(f, "usage: hone opt MODEL [--passes=PIPELINE | -O0..-O3] -o OUT [pass flags]\n\n"
               "Runs a pass pipeline (default -O2) over MODEL (.onnx, or a .txt text IR dump) and\n"
               "writes OUT (ONNX; the text IR when OUT ends in .txt). Prints node and parameter\n"
               "counts before and after.\n\n"
               "  --portable            write standard ONNX only: hone.BinaryConv becomes a float\n"
               "                        Conv with +-alpha weights (Where(X < T, -1, 1) on binary\n"
               "                        inputs), so ONNX Runtime can run and cross-check it\n"
               "  --strip               deployment form: short generated names for every value but\n"
               "                        the graph's inputs and outputs, no node names, no doc string\n"
               "                        and no value_info for intermediates (readers infer them)\n");
    cli_passes_help(f);
}

int cmd_opt(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    bool portable = false, strip = false;
    cli_passes cp;
    cli_passes_init(&cp);
    for (int i = 1; i < argc; i++) {
        int r = cli_pass_flag("opt", argc, argv, &i, &cp);
        const char *v;
        if (r < 0)
            return EXIT_USAGE;
        if (r)
            continue;
        if ((v = cli_opt(argc, argv, &i, "-o")) || (v = cli_opt(argc, argv, &i, "--output")))
            out = v;
        else if (!strcmp(argv[i], "--portable"))
            portable = true;
        else if (!strcmp(argv[i], "--strip"))
            strip = true;
        else if (argv[i][0] == '-')
            return cli_usage("opt", "unknown or incomplete option '%s'", argv[i]);
        else if (model)
            return cli_usage("opt", "more than one model given");
        else
            model = argv[i];
    }
    if (!model || !out)
        return cli_usage("opt", !model ? "no model given" : "no output given (-o OUT)");
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (cli_load_model(&ctx, model, &g))
        return cli_fail(&ctx);
    int nodes = g->n_nodes;
    int64_t params = hone_graph_params(g);
    hone_status st = cli_run_passes(&ctx, g, &cp, 2);
    bool writer = hone_dist_rank() == 0;
    if (!st && portable)
        st = portable_form(&ctx, g);
    if (!st && strip)
        hone_graph_strip_names(g);
    if (!st && writer)
        st = save_model(&ctx, g, out, strip);
    if (!st && writer)
        printf("%s: %d -> %d nodes, %lld -> %lld parameters\n", out, nodes, g->n_nodes,
               (long long)params, (long long)hone_graph_params(g));
    hone_graph_free(g);
    cli_passes_free(&cp);
    return st ? cli_fail(&ctx) : EXIT_OK;
}
