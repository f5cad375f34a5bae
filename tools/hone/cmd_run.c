/*
 * hone run MODEL.onnx --input NAME=FILE ... [--output-dir DIR] [--jit]: runs
 * the model in the reference interpreter, or with --jit compiled to native
 * code in memory by the LLVM backend (shapes fixed to the given inputs');
 * inputs are .npy or TensorProto .pb files, outputs are written as .npy and
 * summarised on stdout.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cli.h"
#include "hone_rt.h"
#include "interp.h"
#include "onnx.h"

void help_run(FILE *f)
{
    fprintf(f, "usage: hone run MODEL.onnx --input NAME=FILE [--input ...] [--output-dir DIR] [--jit]\n"
               "                [--conv=auto|direct] [--repeat N] [--profile]\n\n"
               "Runs MODEL in the reference interpreter. FILE is .npy or an ONNX TensorProto .pb;\n"
               "a model with one input also takes --input FILE. Each output is summarised on\n"
               "stdout and, with --output-dir, written there as NAME.npy.\n"
               "--jit: compile the model to native code in memory (LLVM backend) and run that;\n"
               "symbolic input dims are fixed to the given inputs' shapes.\n"
               "--conv=direct (with --jit): every conv on the direct kernel, not Winograd's for\n"
               "3x3 stride-1 convs (as 'hone compile --conv'): results then equal the\n"
               "interpreter's bit for bit.\n"
               "--repeat N: run N more times and report the latency (compile time apart).\n"
               "--profile (with --jit): time every node and print each node's calls, total,\n"
               "mean and least time, slowest first, then per op type (stderr, or the file HONE_PROFILE\n"
               "names); with --repeat, over the timed runs only.\n");
}

static void summarise(const hone_value *v, const hone_tensor *t)
{
    char buf[256];
    double mn = DBL_MAX, mx = -DBL_MAX, sum = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double x = hone_tensor_get_f64(t, i);
        mn = fmin(mn, x);
        mx = fmax(mx, x);
        sum += x;
    }
    printf("%s: %s", v->name, hone_tensor_type_str(t, buf, sizeof buf));
    if (t->numel && t->dtype != HONE_DT_STRING)
        printf("  min %.6g  max %.6g  mean %.6g", mn, mx, sum / (double)t->numel);
    printf("\n");
}

typedef struct run_args {
    const char *model, *outdir;
    const char *in_names[64], *in_files[64];
    int n_in;
    bool jit, direct_conv, profile;
    int repeat;
} run_args;

static int parse(int argc, char **argv, run_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--input"))) {
            if (a->n_in == 64)
                return cli_usage("run", "too many inputs");
            const char *eq = strchr(v, '=');
            a->in_names[a->n_in] = eq ? strndup(v, (size_t)(eq - v)) : NULL;
            a->in_files[a->n_in++] = eq ? eq + 1 : v;
        } else if ((v = cli_opt(argc, argv, &i, "--output-dir"))) {
            a->outdir = v;
        } else if (!strcmp(argv[i], "--jit")) {
            a->jit = true;
        } else if (!strcmp(argv[i], "--profile")) {
            a->profile = true;
        } else if ((v = cli_opt(argc, argv, &i, "--conv"))) {
            if (strcmp(v, "auto") && strcmp(v, "direct"))
                return cli_usage("run", "unknown --conv '%s' (expected auto or direct)", v);
            a->direct_conv = !strcmp(v, "direct");
        } else if ((v = cli_opt(argc, argv, &i, "--repeat"))) {
            a->repeat = atoi(v);
            if (a->repeat < 1)
                return cli_usage("run", "--repeat takes a positive count");
        } else if (argv[i][0] == '-') {
            return cli_usage("run", "unknown or incomplete option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage("run", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage("run", "no model given");
    if (a->profile && !a->jit)
        return cli_usage("run", "--profile times compiled nodes: it needs --jit");
    return EXIT_OK;
}

/* Matches --input arguments to graph inputs and loads the tensors. */
static hone_status bind_inputs(hone_ctx *ctx, const hone_graph *g, const run_args *a,
                               hone_tensor **ins)
{
    for (int i = 0; i < g->n_inputs; i++) {
        int k = -1;
        for (int j = 0; j < a->n_in; j++)
            if ((a->in_names[j] && !strcmp(a->in_names[j], g->inputs[i]->name)) ||
                (!a->in_names[j] && g->inputs[i] && g->n_inputs == 1))
                k = j;
        if (k < 0)
            return hone_fail(ctx, HONE_ERR_ARG, "no --input given for model input '%s'",
                             g->inputs[i]->name);
        hone_status st = cli_load_tensor(ctx, a->in_files[k], &ins[i]);
        if (st)
            return st;
    }
    for (int j = 0; j < a->n_in; j++)
        if (a->in_names[j] && !hone_graph_find(g, a->in_names[j]))
            return hone_fail(ctx, HONE_ERR_ARG, "model has no input named '%s'", a->in_names[j]);
    return HONE_OK;
}

static hone_status write_outputs(hone_ctx *ctx, const hone_graph *g, hone_tensor **outs,
                                 const char *dir)
{
    for (int i = 0; i < g->n_outputs; i++) {
        summarise(g->outputs[i], outs[i]);
        if (!dir)
            continue;
        char path[4096], safe[256];
        snprintf(safe, sizeof safe, "%s", g->outputs[i]->name);
        for (char *p = safe; *p; p++)
            if (*p == '/' || *p == '\\')
                *p = '_';
        snprintf(path, sizeof path, "%s/%s.npy", dir, safe);
        hone_status st = hone_npy_write(ctx, outs[i], path);
        if (st)
            return st;
    }
    return HONE_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One run through the JIT-compiled model when there is one, else the interpreter. */
static hone_status run_once(hone_ctx *ctx, const hone_graph *g, hone_jit_t *j,
                            const hone_tensor **ins, hone_tensor **outs)
{
    return j ? hone_jit_run(ctx, j, ins, outs) : hone_interp_run(ctx, g, ins, outs, NULL);
}

/* --repeat N: N more runs, reporting the mean and best latency. */
static hone_status time_runs(hone_ctx *ctx, const hone_graph *g, hone_jit_t *j,
                             const hone_tensor **ins, int repeat)
{
    hone_tensor *outs[g->n_outputs + 1];
    double best = 1e30, total = 0;
    hone_status st = HONE_OK;
    for (int r = 0; r < repeat && !st; r++) {
        double t0 = now_s();
        st = run_once(ctx, g, j, ins, outs);
        double dt = now_s() - t0;
        total += dt;
        best = dt < best ? dt : best;
        for (int i = 0; !st && i < g->n_outputs; i++)
            hone_tensor_free(outs[i]);
    }
    if (!st)
        printf("latency (%s): mean %.3f ms, best %.3f ms over %d runs\n",
               j ? "jit" : "interpreter", 1e3 * total / repeat, 1e3 * best, repeat);
    return st;
}

/* Runs g on ins (compiled first with --jit, shapes fixed to the inputs'). */
static hone_status run_graph(hone_ctx *ctx, const hone_graph *g, const run_args *a,
                             const hone_tensor **ins, hone_tensor **outs)
{
    hone_jit_t *j = NULL;
    hone_status st = HONE_OK;
    for (int i = 0; a->jit && i < g->n_inputs && !st; i++)
        st = hone_interp_check_input(ctx, g, g->inputs[i], ins[i]);
    if (a->jit && !st) {
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        hone_backend_shapes_from(&o, g, ins);
        o.direct_conv = a->direct_conv;
        o.profile = a->profile;
        double t0 = now_s();
        st = hone_jit_compile(ctx, g, &o, &j, NULL);
        if (!st && a->repeat)
            printf("compiled in %.3f s\n", now_s() - t0);
    }
    if (!st)
        st = run_once(ctx, g, j, ins, outs);
    if (!st && a->profile && a->repeat)
        hone_rt_prof_reset(); /* the timed runs only, not the first (cold) one */
    if (!st && a->repeat)
        st = time_runs(ctx, g, j, ins, a->repeat);
    if (!st && a->profile)
        hone_rt_prof_report(NULL);
    hone_jit_free(j);
    return st;
}

/* Loads the model, runs it on the bound inputs and reports the outputs. */
static int run_model(const run_args *a)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (hone_onnx_load(&ctx, a->model, &g))
        return cli_fail(&ctx);
    hone_tensor *ins[g->n_inputs + 1], *outs[g->n_outputs + 1];
    memset(ins, 0, sizeof ins);
    memset(outs, 0, sizeof outs);
    hone_status st = bind_inputs(&ctx, g, a, ins);
    if (!st)
        st = run_graph(&ctx, g, a, (const hone_tensor **)ins, outs);
    if (!st)
        st = write_outputs(&ctx, g, outs, a->outdir);
    for (int i = 0; i < g->n_outputs; i++)
        hone_tensor_free(outs[i]);
    for (int i = 0; i < g->n_inputs; i++)
        hone_tensor_free(ins[i]);
    hone_graph_free(g);
    return st ? cli_fail(&ctx) : EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    int rc = parse(argc, argv, &a);
    if (!rc)
        rc = run_model(&a);
    for (int i = 0; i < a.n_in; i++)
        free((char *)a.in_names[i]);
    return rc;
}
