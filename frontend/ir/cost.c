/*
 * Node cost from inferred shapes. The rules, by op type:
 *   Conv           Y[N,M,oh,ow] from W[M,C/g,kh,kw]: MACs = |Y| * (C/g)*kh*kw
 *                  (any spatial rank: |Y| times the product of W's dims after 0)
 *   ConvTranspose  X[N,C,h,w], W[C,M/g,kh,kw]: MACs = |X| * (M/g)*kh*kw
 *   Gemm, MatMul   Y[..,M,N] with inner size K: MACs = |Y| * K
 *   pools          one FLOP per window element per output: |Y| * prod(kernel)
 *   global pools, reductions   one FLOP per input element
 *   data movement (Reshape, Transpose, Concat, Gather...)   free
 *   everything else (elementwise, activations, normalisation)   one FLOP
 *                  per output element
 * A MAC counts as two FLOPs; a bias adds one FLOP per output element.
 *
 * Multiplications and additions (the energy model of the AdderNet papers:
 * fp32 add 0.9 pJ, fp32 mult 3.7 pJ at 45 nm) are counted separately:
 *   Conv, FusedConv, ConvTranspose, Gemm, MatMul   one mult and one add per
 *                  MAC, plus one add per output element for a bias
 *   hone.Adder2d   |Y| * (C/g)*kh*kw taps, each a subtraction and an
 *                  accumulation: 2 adds, no mults (|.| flips a sign bit)
 *   BatchNormalization (inference)   y = a x + b: one mult, one add per element
 *   Add, Sub, Sum; Mul, Div   one add; one mult per output element
 *   AveragePool    window-1 adds and one mult per output; global average
 *                  pool: one add per input element and one mult per output
 *   hone.SignedPower   one mult per element (|y|^alpha is not counted as a
 *                  transcendental)
 * Comparisons (Relu, MaxPool, Clip), data movement and transcendental
 * functions (Exp, Sigmoid, Softmax) count as neither.
 * Ops are matched by name, not by op-table entry, so the rules cover ops
 * whether or not this build implements them. Dimensions that are unknown or
 * symbolic count as 1 and mark the cost inexact: fix the inputs' shapes and
 * re-infer for exact numbers.
 */
#include <stdlib.h>
#include <string.h>

#include "cost.h"

static const char *const free_ops[] = {
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
    "Gather", "GatherElements", "GatherND", "Shape", "Size", "Identity", "Constant",
    "ConstantOfShape", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Cast",
    "CastLike", "Dropout", "Range", "NonZero", "ScatterND", "ScatterElements", "EyeLike",
};

/* Elements of v; unknown dims count as 1 and clear *exact. */
static int64_t numel_from(const hone_value *v, int from, bool *exact)
{
    if (!v || v->rank < 0) {
        *exact = false;
        return v ? 1 : 0;
    }
    int64_t n = 1;
    for (int i = from; i < v->rank; i++) {
        if (v->dims[i] < 0)
            *exact = false;
        else
            n *= v->dims[i];
    }
    return n;
}

static const hone_value *input(const hone_node *n, int i)
{
    return i < n->n_in ? n->in[i] : NULL;
}

/* Size of the dimension a matrix product sums over. */
static int64_t inner_dim(const hone_node *n, bool *exact)
{
    const hone_value *a = input(n, 0);
    if (!a || a->rank < 1) {
        *exact = false;
        return 1;
    }
    int k = a->rank - 1;
    if (!strcmp(n->op_type, "Gemm") && hone_attr_int(n, "transA", 0))
        k = 0;
    if (a->dims[k] < 0) {
        *exact = false;
        return 1;
    }
    return a->dims[k];
}

static bool is_free(const char *op)
{
    for (size_t i = 0; i < sizeof free_ops / sizeof *free_ops; i++)
        if (!strcmp(op, free_ops[i]))
            return true;
    return false;
}

static int64_t window_size(const hone_node *n)
{
    const int64_t *k;
    int r = hone_attr_ints(n, "kernel_shape", &k);
    int64_t s = 1;
    for (int i = 0; i < r; i++)
        s *= k[i];
    return s;
}

/* MACs of Conv (and hone.FusedConv), ConvTranspose, Gemm and MatMul; -1 for other ops. */
static int64_t product_macs(const hone_node *n, bool *exact)
{
    const char *op = n->op_type;
    const hone_value *y = n->n_out ? n->out[0] : NULL;
    if (!strcmp(op, "Conv") || (!strcmp(n->domain, "hone") && !strcmp(op, "FusedConv")))
        return numel_from(y, 0, exact) * numel_from(input(n, 1), 1, exact);
    if (!strcmp(op, "ConvTranspose"))
        return numel_from(input(n, 0), 0, exact) * numel_from(input(n, 1), 1, exact);
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        return numel_from(y, 0, exact) * inner_dim(n, exact);
    return -1;
}

/* Multiplications and additions of n given its MACs (-1: none) (rules above). */
static void arith(const hone_node *n, int64_t macs, hone_cost *c)
{
    const char *op = n->op_type;
    bool hone = !strcmp(n->domain, "hone");
    int64_t y = n->n_out ? numel_from(n->out[0], 0, &c->exact) : 0;
    if (hone && !strcmp(op, "Adder2d")) {
        c->adds = 2 * y * numel_from(input(n, 1), 1, &c->exact);
    } else if (macs >= 0) {
        c->mults = macs;
        c->adds = macs + (input(n, 2) ? y : 0);
    } else if (!strcmp(op, "BatchNormalization") || !strcmp(op, "InstanceNormalization")) {
        c->mults = c->adds = y;
    } else if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Sum")) {
        c->adds = y;
    } else if (!strcmp(op, "Mul") || !strcmp(op, "Div") || (hone && !strcmp(op, "SignedPower"))) {
        c->mults = y;
    } else if (!strcmp(op, "AveragePool")) {
        c->adds = y * (window_size(n) - 1);
        c->mults = y;
    } else if (!strcmp(op, "GlobalAveragePool")) {
        c->adds = numel_from(input(n, 0), 0, &c->exact);
        c->mults = y;
    }
}

double hone_cost_energy_pj(const hone_cost *c)
{
    return HONE_PJ_FP32_ADD * (double)c->adds + HONE_PJ_FP32_MULT * (double)c->mults;
}

hone_cost hone_node_cost(const hone_node *n)
{
    hone_cost c = {0, 0, true, 0, 0};
    const char *op = n->op_type;
    const hone_value *y = n->n_out ? n->out[0] : NULL;
    if (*n->domain == 0 && is_free(op))
        return c;
    int64_t macs = product_macs(n, &c.exact);
    arith(n, macs, &c);
    if (macs >= 0) {
        c.macs = macs;
        c.flops = 2 * macs + (input(n, 2) ? numel_from(y, 0, &c.exact) : 0);
    } else if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") || !strcmp(op, "LpPool")) {
        c.flops = numel_from(y, 0, &c.exact) * window_size(n);
    } else if (!strncmp(op, "Global", 6) || !strncmp(op, "Reduce", 6) || !strncmp(op, "Arg", 3)) {
        c.flops = numel_from(input(n, 0), 0, &c.exact);
    } else if (!strcmp(n->domain, "hone") && !strcmp(op, "Adder2d")) {
        c.flops = c.adds;
    } else {
        c.flops = numel_from(y, 0, &c.exact);
    }
    return c;
}

int64_t hone_node_macs(const hone_node *n)
{
    return hone_node_cost(n).macs;
}

hone_cost hone_graph_cost(const hone_graph *g)
{
    hone_cost total = {0, 0, true, 0, 0};
    for (int i = 0; i < g->n_nodes; i++) {
        hone_cost c = hone_node_cost(g->nodes[i]);
        total.macs += c.macs;
        total.flops += c.flops;
        total.exact &= c.exact;
        total.mults += c.mults;
        total.adds += c.adds;
    }
    return total;
}

int64_t hone_graph_params(const hone_graph *g)
{
    char *read = calloc((size_t)g->n_values + 1, 1);
    HONE_ASSERT(read);
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                read[g->nodes[i]->in[j]->id] = 1;
    int64_t p = 0;
    for (int i = 0; i < g->n_values; i++) {
        const hone_value *v = g->values[i];
        if (read[i] && v->data && hone_dtype_is_float(v->dtype))
            p += v->data->numel;
    }
    free(read);
    return p;
}
