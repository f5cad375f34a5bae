/*
 * binconv_bench: compiled binary convolution against hone's compiled fp32
 * convolution on the same shapes. For each shape it builds three one-node
 * models (Conv with fp32 weights, hone.BinaryConv W1A1 and W1), compiles
 * each with the LLVM backend in memory (hone_jit_compile, the code `hone
 * compile` emits), and times hone_model_run: median of repeated runs after a
 * warm-up, all in this one process so the ratios compare like with like. It
 * also reports the weight storage of each form (fp32 weights vs packed bits
 * plus the per-channel scale) and which popcount the XNOR kernel used.
 *
 * usage: binconv_bench [--quick]    (run with OPENBLAS_NUM_THREADS=1: one thread each side)
 * Output: one Markdown table row per shape on stdout.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "hone_rt.h"

typedef struct shape {
    int64_t n, c, m, h, w;
} shape;

static uint32_t rng = 12345;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((double)(rng >> 8) / 8388608.0 - 1.0);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static hone_tensor *tensor(hone_dtype dt, int rank, const int64_t *dims, bool random)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    if (hone_tensor_new(&ctx, dt, rank, dims, &t))
        abort();
    for (int64_t i = 0; random && dt == HONE_DT_FLOAT && i < t->numel; i++)
        ((float *)t->data)[i] = frand();
    return t;
}

static hone_value *cst(hone_graph *g, const char *name, hone_tensor *t)
{
    hone_value *v = hone_graph_new_value(g, name);
    hone_value_set_data(v, t);
    return v;
}

/* kind 0: Conv fp32; 1: BinaryConv W1A1; 2: BinaryConv W1. 3x3, padding 1, stride 1. */
static hone_graph *model(const shape *s, int kind, size_t *weight_bytes)
{
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, 2 * sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->opsets[1] = (hone_opset){"hone", 1};
    g->n_opsets = 2;
    hone_value *x = hone_graph_new_value(g, "x");
    int64_t xd[4] = {s->n, s->c, s->h, s->w}, wd[4] = {s->m, s->c, 3, 3}, k = s->c * 9;
    x->dtype = HONE_DT_FLOAT;
    x->rank = 4;
    memcpy(x->dims, xd, sizeof xd);
    hone_graph_add_input(g, x);
    hone_tensor *wf = tensor(HONE_DT_FLOAT, 4, wd, true);
    hone_node *n;
    if (kind == 0) {
        n = hone_graph_add_node(g, "Conv", "", "conv", 3, 1);
        n->in[1] = cst(g, "w", wf);
        *weight_bytes = hone_tensor_nbytes(wf);
    } else {
        int64_t bd[2] = {s->m, (int64_t)hone_rt_binconv_row_bytes(k)};
        hone_tensor *bits = tensor(HONE_DT_UINT8, 2, bd, false);
        hone_rt_binconv_pack_signs(wf->data, s->m, k, bits->data);
        hone_tensor_free(wf);
        n = hone_graph_add_node(g, "BinaryConv", "hone", "bconv", kind == 1 ? 5 : 4, 1);
        n->in[1] = cst(g, "bits", bits);
        n->in[3] = cst(g, "alpha", tensor(HONE_DT_FLOAT, 1, &s->m, true));
        if (kind == 1)
            n->in[4] = cst(g, "thresh", tensor(HONE_DT_FLOAT, 1, &s->c, true));
        hone_node_set_attr_int(g, n, "binary_input", kind == 1);
        *weight_bytes = hone_tensor_nbytes(bits) + sizeof(float) * (size_t)s->m;
    }
    n->opset = kind ? 1 : 13;
    n->in[0] = x;
    n->in[2] = cst(g, "b", tensor(HONE_DT_FLOAT, 1, &s->m, true));
    if (kind) { /* BinaryConv: X, bits, alpha, B, T */
        hone_value *b = n->in[2];
        n->in[2] = n->in[3];
        n->in[3] = b;
    }
    int64_t ks[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    hone_node_set_attr_ints(g, n, "kernel_shape", ks, 2);
    hone_node_set_attr_ints(g, n, "pads", pads, 4);
    n->out[0] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, n->out[0]);
    return g;
}

/* Median seconds of one run of the compiled model (warm-up first). */
static double time_model(hone_graph *g, const hone_tensor *x, bool quick)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    const hone_tensor *ins[1] = {x};
    hone_backend_shapes_from(&o, g, ins);
    hone_jit_t *j;
    if (hone_graph_infer(&ctx, g) || hone_jit_compile(&ctx, g, &o, &j, NULL)) {
        fprintf(stderr, "binconv_bench: %s\n", ctx.msg);
        exit(1);
    }
    const hone_model_info *mi = hone_jit_info(j);
    void *ws = hone_model_workspace(mi);
    hone_tensor *out[1];
    double t[201];
    int reps = 0;
    double start = now_s(), budget = quick ? 0.2 : 1.0;
    for (int i = 0; i < 3; i++) {
        hone_model_run(&ctx, mi, ins, out, ws);
        hone_tensor_free(out[0]);
    }
    while (reps < 201 && (reps < 5 || now_s() - start < budget)) {
        double t0 = now_s();
        if (hone_model_run(&ctx, mi, ins, out, ws))
            exit(1);
        t[reps++] = now_s() - t0;
        hone_tensor_free(out[0]);
    }
    for (int a = 1; a < reps; a++) /* insertion sort for the median */
        for (int b = a; b > 0 && t[b] < t[b - 1]; b--) {
            double tmp = t[b];
            t[b] = t[b - 1];
            t[b - 1] = tmp;
        }
    free(ws);
    hone_jit_free(j);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    static const shape shapes[] = {{1, 64, 64, 28, 28},  {1, 64, 64, 14, 14}, {1, 128, 128, 14, 14},
                                   {1, 256, 256, 7, 7},  {8, 64, 64, 14, 14}};
    printf("popcount: %s; one thread each side (run with OPENBLAS_NUM_THREADS=1)\n\n",
           hone_rt_binconv_popcount_kind());
    printf("| N,C,M,HxW (3x3, pad 1) | fp32 Conv ms | W1A1 ms | W1A1 speed-up | W1 ms | "
           "W1 speed-up | fp32 weight bytes | binary bytes (bits + scale) | ratio |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        int64_t xd[4] = {s->n, s->c, s->h, s->w};
        hone_tensor *x = tensor(HONE_DT_FLOAT, 4, xd, true);
        double ms[3];
        size_t bytes[3];
        for (int kind = 0; kind < 3; kind++) {
            hone_graph *g = model(s, kind, &bytes[kind]);
            ms[kind] = 1e3 * time_model(g, x, quick);
            hone_graph_free(g);
        }
        printf("| %lld,%lld,%lld,%lldx%lld | %.3f | %.3f | %.1fx | %.3f | %.2fx | %zu | %zu | "
               "%.1fx |\n",
               (long long)s->n, (long long)s->c, (long long)s->m, (long long)s->h,
               (long long)s->w, ms[0], ms[1], ms[0] / ms[1], ms[2], ms[0] / ms[2], bytes[0],
               bytes[1], (double)bytes[0] / (double)bytes[1]);
        hone_tensor_free(x);
    }
    return 0;
}
