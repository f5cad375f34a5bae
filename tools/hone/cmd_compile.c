/*
 * hone compile MODEL.onnx -o OUT: compiles a model to native code through
 * the LLVM backend (backend/backend.h) and writes a shared library (with its
 * C header next to it), an object, assembly, LLVM IR, bitcode or only the
 * header. Shapes must be static: symbolic input dims are fixed with
 * --input-shape NAME=DIMS.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "onnx.h"

void help_compile(FILE *f)
{
    fprintf(f,
            "usage: hone compile MODEL.onnx -o OUT [--emit=lib|obj|asm|llvm-ir|bc|header]\n"
            "                    [--name PREFIX] [--weights=embed|FILE]\n"
            "                    [--input-shape NAME=DIMS]... [--bind NAME=FILE]... [--mcpu=CPU]\n"
            "                    [--mattr=FEATURES] [-O0|-O1|-O2|-O3] [--conv=auto|direct]\n"
            "                    [--profile]\n\n"
            "Compiles MODEL to native code. lib (default) writes a self-contained shared\n"
            "library and its C header (OUT with .h); header writes only the header.\n"
            "The generated code exports PREFIX_run, PREFIX_run_v and PREFIX_info (PREFIX\n"
            "defaults to OUT's base name); the caller passes input, output and workspace\n"
            "buffers (PREFIX_WORKSPACE_SIZE bytes).\n"
            "  --weights=embed   weights inside the generated code (default)\n"
            "  --weights=FILE    weights written to FILE instead; the program loads them and\n"
            "                    calls PREFIX_set_weights (see the header) before running\n"
            "  --input-shape NAME=1x3x224x224  fixes a symbolic input shape (repeatable)\n"
            "  --bind NAME=FILE  fixes input NAME to the tensor in FILE (.npy or .pb) at compile\n"
            "                  time: it becomes a constant and leaves the compiled inputs, so the\n"
            "                  shapes it decides (sizes, axes, scales, k) are specialised\n"
            "  --mcpu=CPU      target CPU (default: native, the host's)\n"
            "  --mattr=LIST    target features, e.g. +avx2,-avx512f\n"
            "  --conv=auto     3x3 stride-1 convs with 16+ channels on planes of 12x12+ run\n"
            "                  Winograd F(4x4,3x3) (about 4x fewer multiply-adds; rounding\n"
            "                  differs from the direct sum by about 1e-6 of sum |x w|) (default)\n"
            "  --conv=direct   every conv on the direct (im2col + GEMM) kernel\n"
            "  --profile       time every node: the program prints each node's calls, total,\n"
            "                  mean and least time at exit (stderr, or the file HONE_PROFILE names);\n"
            "                  for measuring, not for deployment\n"
            "  -O0..-O3        optimisation level of both the graph pipeline and LLVM (default\n"
            "                  -O3: the -O3 graph pipeline, which fuses conv+bias+activation)\n"
            "  --passes=...    run this graph pipeline first, then the level's (so a pruned\n"
            "                  model is still folded and fused); with -O0 only this one.\n"
            "                  e.g. --passes='scop{flops=0.5}' --data X --labels Y prunes\n"
            "                  half the FLOPs, then -O3 folds BN and fuses conv+bias+relu\n\n");
    cli_passes_help(f);
}

typedef struct compile_args {
    const char *model, *out;
    hone_tensor *bound[HONE_BACKEND_MAX_SHAPES];
    int kind;
    char name[256];
    hone_backend_opts o;
    cli_passes cp;
} compile_args;

/* PREFIX from OUT's base name: extension dropped, made a C identifier. */
static void default_name(const char *out, char *name, size_t n)
{
    const char *b = strrchr(out, '/');
    b = b ? b + 1 : out;
    size_t k = 0;
    if (isdigit((unsigned char)*b))
        name[k++] = '_';
    for (; *b && *b != '.' && k + 1 < n; b++)
        name[k++] = isalnum((unsigned char)*b) ? *b : '_';
    name[k] = 0;
    if (!k)
        snprintf(name, n, "model");
}

/* Options that take a value; returns 1 when argv[*i] was one of them. */
static int parse_valued(int argc, char **argv, int *i, compile_args *a, int *rc)
{
    const char *v;
    if ((v = cli_opt(argc, argv, i, "-o")) || (v = cli_opt(argc, argv, i, "--output")))
        a->out = v;
    else if ((v = cli_opt(argc, argv, i, "--emit"))) {
        if ((a->kind = hone_backend_emit_kind(v)) < 0)
            *rc = cli_usage("compile", "unknown --emit kind '%s'", v);
    } else if ((v = cli_opt(argc, argv, i, "--name")))
        snprintf(a->name, sizeof a->name, "%s", v);
    else if ((v = cli_opt(argc, argv, i, "--mcpu")))
        a->o.mcpu = v;
    else if ((v = cli_opt(argc, argv, i, "--mattr")))
        a->o.mattr = v;
    else if ((v = cli_opt(argc, argv, i, "--input-shape"))) {
        hone_backend_shape *s = &a->o.shapes[a->o.n_shapes];
        if (a->o.n_shapes == HONE_BACKEND_MAX_SHAPES ||
            (s->rank = cli_parse_shape(v, s->name, sizeof s->name, s->dims)) < 0)
            *rc = cli_usage("compile", "bad --input-shape '%s' (expected NAME=1x3x224x224)", v);
        else
            a->o.n_shapes++;
    } else if ((v = cli_opt(argc, argv, i, "--bind"))) {
        const char *eq = strchr(v, '=');
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        int k = a->o.n_bind;
        if (!eq || eq == v || !eq[1] || k == HONE_BACKEND_MAX_SHAPES)
            *rc = cli_usage("compile", "bad --bind '%s' (expected NAME=FILE.npy)", v);
        else if (cli_load_tensor(&ctx, eq + 1, &a->bound[k]))
            *rc = cli_fail(&ctx);
        else {
            a->o.bind[k].name = strndup(v, (size_t)(eq - v));
            a->o.bind[k].t = a->bound[k];
            a->o.n_bind++;
        }
    } else if ((v = cli_opt(argc, argv, i, "--weights")))
        a->o.weights_path = strcmp(v, "embed") ? v : NULL;
    else if ((v = cli_opt(argc, argv, i, "--conv"))) {
        if (strcmp(v, "auto") && strcmp(v, "direct"))
            *rc = cli_usage("compile", "unknown --conv '%s' (expected auto or direct)", v);
        a->o.direct_conv = !strcmp(v, "direct");
    } else
        return 0;
    return 1;
}

static int parse(int argc, char **argv, compile_args *a)
{
    hone_backend_opts_init(&a->o);
    cli_passes_init(&a->cp);
    a->kind = HONE_EMIT_LIB;
    for (int i = 1; i < argc; i++) {
        int rc = EXIT_OK, r = cli_pass_flag("compile", argc, argv, &i, &a->cp);
        if (r < 0)
            return EXIT_USAGE;
        if (r) {
            if (a->cp.level >= 0) /* -On sets both the graph pipeline and LLVM's level */
                a->o.opt_level = a->cp.level;
        } else if (parse_valued(argc, argv, &i, a, &rc)) {
            if (rc)
                return rc;
        } else if (!strcmp(argv[i], "--profile")) {
            a->o.profile = true;
        } else if (argv[i][0] == '-') {
            return cli_usage("compile", "unknown or incomplete option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage("compile", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage("compile", "no model given");
    if (!a->out)
        return cli_usage("compile", "no output given (-o OUT)");
    if (!a->name[0])
        default_name(a->out, a->name, sizeof a->name);
    a->o.name = a->name;
    return EXIT_OK;
}

static void release(compile_args *a)
{
    cli_passes_free(&a->cp);
    for (int i = 0; i < a->o.n_bind; i++) {
        free((char *)a->o.bind[i].name);
        hone_tensor_free(a->bound[i]);
    }
}

static int compile(compile_args *a)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (cli_load_model(&ctx, a->model, &g))
        return cli_fail(&ctx);
    hone_backend_report r;
    const char *level = hone_pipeline_level(a->cp.level >= 0 ? a->cp.level : a->o.opt_level);
    char *text = NULL;
    const char *user = a->cp.text;
    if (a->cp.text && level && *level) { /* the user's pipeline, then the level's */
        size_t n = strlen(a->cp.text) + strlen(level) + 2;
        text = malloc(n);
        if (!text) {
            hone_graph_free(g);
            return cli_fail(&ctx);
        }
        snprintf(text, n, "%s,%s", a->cp.text, level);
        a->cp.text = text;
    }
    hone_status st = cli_run_passes(&ctx, g, &a->cp, a->o.opt_level);
    a->cp.text = user;
    free(text);
    if (!st)
        st = hone_backend_compile(&ctx, g, &a->o, (hone_emit_kind)a->kind, a->out, &r);
    hone_graph_free(g);
    if (st)
        return cli_fail(&ctx);
    printf("wrote %s: %s_run, %d nodes (%d views, %d folded), workspace %zu bytes "
           "(lower bound %zu), weights %zu bytes%s%s\n", a->out, a->name, r.n_nodes, r.n_views,
           r.n_folded, r.workspace, r.workspace_bound, r.weight_bytes,
           a->o.weights_path ? " in " : "", a->o.weights_path ? a->o.weights_path : "");
    printf("time: prepare %.3f s, lower %.3f s, optimise %.3f s, emit %.3f s\n", r.t_prepare,
           r.t_lower, r.t_optimize, r.t_emit);
    return EXIT_OK;
}

int cmd_compile(int argc, char **argv)
{
    compile_args a = {0};
    int rc = parse(argc, argv, &a);
    if (!rc)
        rc = compile(&a);
    release(&a);
    return rc;
}
