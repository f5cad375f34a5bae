/*
 * hone stats MODEL.onnx [--input-shape NAME=1x3x224x224]...: parameters, and
 * MACs and FLOPs per op type and in total (rules in frontend/ir/cost.c).
 * --input-shape fixes an input's dimensions and re-runs inference, so
 * symbolic batch sizes turn into exact counts.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "cost.h"
#include "onnx.h"

#define MAX_SHAPES 16

void help_stats(FILE *f)
{
    fprintf(f, "usage: hone stats MODEL.onnx [--input-shape NAME=DxDx...]... [--passes=... | -On]\n\n"
               "Prints the parameter count (elements of floating-point weights) and the MACs\n"
               "and FLOPs of each op type and of the whole model. Symbolic dimensions count as 1\n"
               "unless --input-shape fixes them (e.g. --input-shape input=8x1x28x28).\n"
               "With a pipeline, the statistics are those after it, followed by a per-pass table of\n"
               "nodes, parameters and MACs before and after each pass.\n\n");
    cli_passes_help(f);
}

typedef struct stats_args {
    const char *model;
    const char *shapes[MAX_SHAPES];
    int n_shapes;
    cli_passes cp;
} stats_args;

static int parse(int argc, char **argv, stats_args *a)
{
    cli_passes_init(&a->cp);
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = cli_pass_flag("stats", argc, argv, &i, &a->cp);
        if (r < 0)
            return EXIT_USAGE;
        if (r)
            continue;
        if ((v = cli_opt(argc, argv, &i, "--input-shape"))) {
            if (a->n_shapes == MAX_SHAPES)
                return cli_usage("stats", "more than %d --input-shape options", MAX_SHAPES);
            char name[256];
            int64_t dims[HONE_MAX_RANK];
            if (cli_parse_shape(v, name, sizeof name, dims) < 0)
                return cli_usage("stats", "bad --input-shape '%s' (want NAME=1x3x224x224)", v);
            a->shapes[a->n_shapes++] = v;
        } else if (argv[i][0] == '-') {
            return cli_usage("stats", "unknown or incomplete option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage("stats", "unexpected argument '%s'", argv[i]);
        }
    }
    return a->model ? EXIT_OK : cli_usage("stats", "no model given");
}

/* Sets one graph input's dims from "NAME=DxD..."; known dims must agree. */
static hone_status fix_input(hone_ctx *ctx, hone_graph *g, const char *spec)
{
    char name[256], buf[256];
    int64_t dims[HONE_MAX_RANK];
    int r = cli_parse_shape(spec, name, sizeof name, dims);
    hone_value *v = hone_graph_find(g, name);
    if (!v || !(v->flags & HONE_VAL_INPUT))
        return hone_fail(ctx, HONE_ERR_ARG, "--input-shape: the model has no input '%s'", name);
    if (v->rank >= 0 && v->rank != r)
        return hone_fail(ctx, HONE_ERR_ARG, "--input-shape: input '%s' is %s, rank %d given", name,
                         hone_value_type_str(g, v, buf, sizeof buf), r);
    for (int i = 0; v->rank >= 0 && i < r; i++)
        if (v->dims[i] >= 0 && v->dims[i] != dims[i])
            return hone_fail(ctx, HONE_ERR_ARG, "--input-shape: input '%s' is %s, dim %d cannot be %lld",
                             name, hone_value_type_str(g, v, buf, sizeof buf), i, (long long)dims[i]);
    v->rank = r;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)r);
    return HONE_OK;
}

typedef struct op_row {
    const char *op;
    int count;
    hone_cost cost;
} op_row;

/* Costs grouped by op type, in order of first appearance. */
static int group_by_op(const hone_graph *g, op_row *rows)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *nd = g->nodes[i];
        int k = 0;
        while (k < n && strcmp(rows[k].op, nd->op_type))
            k++;
        if (k == n)
            rows[n++] = (op_row){nd->op_type, 0, {0, 0, true, 0, 0}};
        hone_cost c = hone_node_cost(nd);
        rows[k].count++;
        rows[k].cost.macs += c.macs;
        rows[k].cost.flops += c.flops;
        rows[k].cost.exact &= c.exact;
        rows[k].cost.mults += c.mults;
        rows[k].cost.adds += c.adds;
    }
    return n;
}

/* 1234567 -> "1.23M". */
static const char *human(int64_t x, char *buf, size_t n)
{
    static const char *const unit[] = {"", "K", "M", "G", "T", "P"};
    double v = (double)x;
    int u = 0;
    while (v >= 1000 && u < 5) {
        v /= 1000;
        u++;
    }
    snprintf(buf, n, u ? "%.2f%s" : "%.0f%s", v, unit[u]);
    return buf;
}

static void print_row(const char *label, int count, hone_cost c, int64_t total_flops)
{
    char m[32], f[32];
    double share = total_flops ? 100.0 * (double)c.flops / (double)total_flops : 0;
    printf("%-22s %6d %12s %12s %7.1f%%\n", label, count, human(c.macs, m, sizeof m),
           human(c.flops, f, sizeof f), share);
}

/* Multiplications, additions and the 45 nm energy estimate per op type and in total. */
static void print_energy(const op_row *rows, int n, const hone_cost *total)
{
    char m[32], a[32];
    printf("\n%-22s %12s %12s %14s   (fp32 add %.1f pJ, mult %.1f pJ)\n", "op type", "mults",
           "adds", "energy uJ", HONE_PJ_FP32_ADD, HONE_PJ_FP32_MULT);
    for (int i = 0; i < n; i++)
        if (rows[i].cost.mults || rows[i].cost.adds)
            printf("%-22s %12s %12s %14.4f\n", rows[i].op, human(rows[i].cost.mults, m, sizeof m),
                   human(rows[i].cost.adds, a, sizeof a), hone_cost_energy_pj(&rows[i].cost) * 1e-6);
    printf("%-22s %12s %12s %14.4f\n", "total", human(total->mults, m, sizeof m),
           human(total->adds, a, sizeof a), hone_cost_energy_pj(total) * 1e-6);
    printf("\nmults %lld\nadds %lld\nenergy_pj %.0f\n", (long long)total->mults,
           (long long)total->adds, hone_cost_energy_pj(total));
}

static void print_stats(const char *path, const hone_graph *g)
{
    char buf[320];
    op_row *rows = calloc((size_t)g->n_nodes + 1, sizeof *rows);
    HONE_ASSERT(rows);
    int n = group_by_op(g, rows);
    hone_cost total = hone_graph_cost(g);
    int64_t params = hone_graph_params(g);
    printf("model %s: %d nodes, ir %lld, opset %lld\n", path, g->n_nodes, (long long)g->ir_version,
           (long long)hone_graph_opset(g, ""));
    for (int i = 0; i < g->n_inputs; i++)
        printf("input %s: %s\n", g->inputs[i]->name, hone_value_type_str(g, g->inputs[i], buf, sizeof buf));
    printf("parameters %lld (%s)\n\n", (long long)params, human(params, buf, sizeof buf));
    printf("%-22s %6s %12s %12s %8s\n", "op type", "nodes", "MACs", "FLOPs", "share");
    for (int i = 0; i < n; i++)
        print_row(rows[i].op, rows[i].count, rows[i].cost, total.flops);
    print_row("total", g->n_nodes, total, total.flops);
    printf("\nmacs %lld\nflops %lld\n", (long long)total.macs, (long long)total.flops);
    print_energy(rows, n, &total);
    if (!total.exact)
        printf("note: unknown or symbolic dimensions were counted as 1; fix them with "
               "--input-shape NAME=DxD...\n");
    free(rows);
}

/* The compiled model's workspace and its lower bound, when shapes are static. */
static void print_workspace(const hone_graph *g)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    size_t ws = 0, bound = 0;
    if (hone_backend_plan(&ctx, g, &o, &ws, &bound))
        printf("workspace n/a (%s)\n", ctx.msg);
    else
        printf("workspace %zu bytes, lower bound %zu bytes (peak of intermediates live at once), "
               "ratio %.3f\n", ws, bound, bound ? (double)ws / (double)bound : 1.0);
}

/* Per-pass before/after table: nodes, parameters, MACs. */
static void print_pass_table(const hone_pass_stats *ps, int n)
{
    printf("\n%-36s %17s %23s %25s\n", "pass", "nodes", "parameters", "MACs");
    for (int i = 0; i < n; i++) {
        const hone_pass_stats *s = &ps[i];
        if (s->disabled) {
            printf("%-36s (disabled)\n", s->text);
            continue;
        }
        printf("%-36s %7lld -> %-7lld %10lld -> %-10lld %11lld -> %-11lld\n", s->text,
               (long long)s->nodes_before, (long long)s->nodes_after,
               (long long)s->params_before, (long long)s->params_after,
               (long long)s->macs_before, (long long)s->macs_after);
    }
}

int cmd_stats(int argc, char **argv)
{
    stats_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (cli_load_model(&ctx, a.model, &g))
        return cli_fail(&ctx);
    hone_status st = HONE_OK;
    for (int i = 0; i < a.n_shapes && !st; i++)
        st = fix_input(&ctx, g, a.shapes[i]);
    if (!st && (a.n_shapes || a.cp.text || a.cp.level >= 0) && (st = hone_graph_infer(&ctx, g)))
        hone_fail_wrap(&ctx, "%s with the given input shapes", a.model);
    hone_pass_stats *ps = NULL;
    int n_ps = 0;
    if (!st)
        st = cli_run_passes_stats(&ctx, g, &a.cp, -1, &ps, &n_ps);
    if (!st)
        print_stats(a.model, g);
    if (!st)
        print_workspace(g);
    if (!st && n_ps)
        print_pass_table(ps, n_ps);
    hone_pass_stats_release(ps, n_ps);
    free(ps);
    hone_graph_free(g);
    cli_passes_free(&a.cp);
    return st ? cli_fail(&ctx) : EXIT_OK;
}
