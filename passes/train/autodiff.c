/*
 * Reverse-mode automatic differentiation over hone's IR.
 *
 * hone_autodiff appends to the graph the nodes computing d(loss)/d(wrt[i]).
 * A forward sweep marks the values that depend on some wrt ("needs"); then
 * the nodes are visited in reverse topological order, and each node that has
 * a gradient on an output and a needing input gets its backward nodes built
 * by one switch over hone_op (backward()). Gradient contributions to a value
 * with several consumers are summed with Add; a gradient flowing into a
 * broadcast operand is reduced to the operand's shape with hone.SumTo.
 * Branches that do not reach a wrt value are never differentiated.
 *
 * Backward nodes are appended in the order they are built, so the graph
 * stays topologically sorted: every backward node reads forward values and
 * gradients built before it. Forward tensors a backward node needs (X for a
 * conv, Y for a sigmoid) are simply its inputs; the interpreter keeps them
 * alive until their last reader. ONNX-domain nodes emitted here carry opset
 * 17 whatever the model's, so their semantics are fixed (hone-domain ops are
 * version 1). A backward rule for a hone-domain op added by a later pass
 * (straight-through estimators, AdderNet) is one more case in backward().
 *
 * The seed gradient is a constant 1 of the loss's shape; multiplying by it is
 * elided, so a plain loss costs no extra node.
 */
#include <stdlib.h>
#include <string.h>

#include "hone_rt.h"
#include "ops_util.h"
#include "train.h"

#define AD_ONNX_OPSET 17

typedef struct ad {
    hone_ctx *ctx;
    hone_graph *g;
    int n0;                /* forward value count: grad and needs index below it */
    hone_value **grad;     /* accumulated gradient of each forward value */
    bool *needs;           /* the value depends on some wrt value */
    hone_value *one;       /* the seed */
    const hone_node *node; /* forward node being differentiated */
} ad;

/* ===================== building nodes ===================== */

/* Appends dom.op(in...) with n_out fresh outputs (those with want[i] false, when
 * want is given, left absent), named after the forward node. */
static hone_node *emit_n(ad *a, const char *dom, const char *op, int n_in, hone_value *const *in,
                         int n_out, const bool *want)
{
    hone_graph *g = a->g;
    const char *base = a->node ? a->node->name : "loss";
    const char *name = hone_arena_printf(g->arena, "%s/grad/%s_%d", base, op, g->fresh++);
    hone_node *n = hone_graph_add_node(g, op, dom, name, n_in, n_out);
    n->opset = *dom ? 1 : AD_ONNX_OPSET;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    for (int i = 0; i < n_out; i++)
        if (!want || want[i])
            n->out[i] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_d", base));
    return n;
}

/* One-output node; returns its output. */
static hone_value *emit(ad *a, const char *dom, const char *op, int n_in, hone_value *const *in)
{
    return emit_n(a, dom, op, n_in, in, 1, NULL)->out[0];
}

#define ONNX(a, op, ...) \
    emit(a, "", op, sizeof((hone_value *[]){__VA_ARGS__}) / sizeof(hone_value *), \
         (hone_value *[]){__VA_ARGS__})
#define HONE(a, op, ...) \
    emit(a, "hone", op, sizeof((hone_value *[]){__VA_ARGS__}) / sizeof(hone_value *), \
         (hone_value *[]){__VA_ARGS__})

/* A float32 constant of the given shape filled with x. */
static hone_value *const_fill(ad *a, float x, int rank, const int64_t *dims)
{
    hone_tensor *t;
    if (hone_tensor_new(a->ctx, HONE_DT_FLOAT, rank, dims, &t))
        return NULL;
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = x;
    hone_value *v = hone_graph_new_value(a->g, "ad_const");
    hone_value_set_data(v, t);
    return v;
}

/* An int64 vector constant. */
static hone_value *const_i64(ad *a, int n, const int64_t *vals)
{
    hone_tensor *t;
    int64_t d = n;
    if (hone_tensor_new(a->ctx, HONE_DT_INT64, 1, &d, &t))
        return NULL;
    memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    hone_value *v = hone_graph_new_value(a->g, "ad_axes");
    hone_value_set_data(v, t);
    return v;
}

/* Copies attribute `name` of src onto dst when src has it. */
static void copy_attr(hone_graph *g, hone_node *dst, const hone_node *src, const char *name,
                      const char *as)
{
    const hone_attr *s = hone_attr_find(src, name);
    if (!s)
        return;
    switch (s->kind) {
    case HONE_ATTR_INT: hone_node_set_attr_int(g, dst, as, s->i); break;
    case HONE_ATTR_FLOAT: hone_node_set_attr_float(g, dst, as, s->f); break;
    case HONE_ATTR_INTS: hone_node_set_attr_ints(g, dst, as, s->ints, s->n); break;
    case HONE_ATTR_STRING: hone_node_set_attr_string(g, dst, as, s->s); break;
    default: break;
    }
}

/* Copies every attribute in the NULL-terminated list names. */
static void copy_attrs(ad *a, hone_node *dst, const char *const *names)
{
    for (; *names; names++)
        copy_attr(a->g, dst, a->node, *names, *names);
}

/* Copies every forward attribute (but `skip`) and names the forward op and
 * opset, for the hone ops that replay the forward node. */
static void replay_attrs(ad *a, hone_node *dst, const char *skip)
{
    const hone_node *n = a->node;
    for (int i = 0; i < n->n_attr; i++)
        if (!skip || strcmp(n->attrs[i].name, skip))
            copy_attr(a->g, dst, n, n->attrs[i].name, n->attrs[i].name);
    hone_node_set_attr_string(a->g, dst, "fwd_op", n->op_type);
    hone_node_set_attr_int(a->g, dst, "fwd_opset", n->opset);
}

static const char *const window_attrs[] = {"auto_pad", "kernel_shape", "strides", "pads",
                                           "dilations", "ceil_mode", "count_include_pad",
                                           "group", NULL};

/* ===================== gradient algebra ===================== */

/* Whether a and b have the same (possibly symbolic) known shape. */
static bool same_shape(const hone_value *a, const hone_value *b)
{
    if (a->rank < 0 || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i] || a->dims[i] == HONE_DIM_UNKNOWN)
            return false;
    return true;
}

/* g reduced to like's shape where like was broadcast (a no-op when shapes agree). */
static hone_value *sum_to(ad *a, hone_value *g, hone_value *like, hone_value *fwd_out)
{
    if (same_shape(like, fwd_out))
        return g;
    return HONE(a, "SumTo", g, like);
}

/* x * y, eliding multiplication by the seed. */
static hone_value *mul(ad *a, hone_value *x, hone_value *y)
{
    if (x == a->one)
        return y;
    if (y == a->one)
        return x;
    return ONNX(a, "Mul", x, y);
}

/* Adds contribution d to the gradient of forward value v. */
static void accumulate(ad *a, hone_value *v, hone_value *d)
{
    if (!v || !d || v->id >= a->n0 || !a->needs[v->id])
        return;
    hone_value *old = a->grad[v->id];
    a->grad[v->id] = old ? ONNX(a, "Add", old, d) : d;
}

/* Whether input i of the current node needs a gradient. */
static bool want_in(ad *a, int i)
{
    hone_value *v = i < a->node->n_in ? a->node->in[i] : NULL;
    return v && v->id < a->n0 && a->needs[v->id];
}

/* The gradient of output i of the current node (NULL: none reaches it). */
static hone_value *dout(ad *a, int i)
{
    hone_value *v = i < a->node->n_out ? a->node->out[i] : NULL;
    return v && v->id < a->n0 ? a->grad[v->id] : NULL;
}

static hone_status unsupported(ad *a, const char *why)
{
    return hone_node_fail(a->ctx, a->node, HONE_ERR_UNSUPPORTED, "cannot differentiate: %s", why);
}

/* ===================== backward rules ===================== */

/* Forward ops whose derivative is one UnaryGrad kernel. */
static int act_kind(hone_op op)
{
    switch (op) {
    case HONE_OP_RELU: return HONE_RT_ACT_RELU;
    case HONE_OP_LEAKYRELU: return HONE_RT_ACT_LEAKY_RELU;
    case HONE_OP_SIGMOID: return HONE_RT_ACT_SIGMOID;
    case HONE_OP_TANH: return HONE_RT_ACT_TANH;
    case HONE_OP_CLIP: return HONE_RT_ACT_CLIP;
    case HONE_OP_HARDSIGMOID: return HONE_RT_ACT_HARD_SIGMOID;
    case HONE_OP_HARDSWISH: return HONE_RT_ACT_HARD_SWISH;
    case HONE_OP_ELU: return HONE_RT_ACT_ELU;
    case HONE_OP_SOFTPLUS: return HONE_RT_ACT_SOFTPLUS;
    case HONE_OP_EXP: return HONE_RT_ACT_EXP;
    case HONE_OP_LOG: return HONE_RT_ACT_LOG;
    case HONE_OP_SQRT: return HONE_RT_ACT_SQRT;
    case HONE_OP_ABS: return HONE_RT_ACT_ABS;
    case HONE_OP_RECIPROCAL: return HONE_RT_ACT_RECIPROCAL;
    default: return -1;
    }
}

/* dX = UnaryGrad(dY, X or Y) with the forward's parameters. */
static hone_status rule_act(ad *a, hone_value *dy, int kind)
{
    const hone_node *n = a->node;
    bool clip_in = n->op == HONE_OP_CLIP && n->opset >= 11;
    hone_value *in[4] = {dy, hone_rt_act_uses_y(kind) ? n->out[0] : n->in[0]};
    in[2] = clip_in && n->n_in > 1 ? n->in[1] : NULL;
    in[3] = clip_in && n->n_in > 2 ? n->in[2] : NULL;
    hone_node *g = emit_n(a, "hone", "UnaryGrad", clip_in ? 2 + (n->n_in > 1) + (n->n_in > 2) : 2,
                          in, 1, NULL);
    hone_node_set_attr_string(a->g, g, "op", n->op_type);
    copy_attr(a->g, g, n, "alpha", "alpha");
    copy_attr(a->g, g, n, "beta", "beta");
    copy_attr(a->g, g, n, "min", "alpha");
    copy_attr(a->g, g, n, "max", "beta");
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Pow with a constant scalar exponent p: dX = dY * p * X^(p-1). */
static hone_status rule_pow(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    const hone_tensor *p = n->in[1]->data;
    if (want_in(a, 1) || !p || p->numel != 1)
        return unsupported(a, "Pow needs a constant scalar exponent");
    hone_node *g = emit_n(a, "hone", "UnaryGrad", 2, (hone_value *[]){dy, n->in[0]}, 1, NULL);
    hone_node_set_attr_string(a->g, g, "op", "Pow");
    hone_node_set_attr_float(a->g, g, "alpha", (float)hone_tensor_get_f64(p, 0));
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Add, Sub, Mul, Div with numpy broadcasting. */
static hone_status rule_binary(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    hone_value *x = n->in[0], *y = n->in[1], *out = n->out[0];
    if (n->opset < 7 && hone_attr_int(n, "broadcast", 0))
        return unsupported(a, "legacy (opset < 7) broadcasting");
    switch (n->op) {
    case HONE_OP_ADD:
        accumulate(a, x, want_in(a, 0) ? sum_to(a, dy, x, out) : NULL);
        accumulate(a, y, want_in(a, 1) ? sum_to(a, dy, y, out) : NULL);
        break;
    case HONE_OP_SUB:
        accumulate(a, x, want_in(a, 0) ? sum_to(a, dy, x, out) : NULL);
        accumulate(a, y, want_in(a, 1) ? ONNX(a, "Neg", sum_to(a, dy, y, out)) : NULL);
        break;
    case HONE_OP_MUL:
        accumulate(a, x, want_in(a, 0) ? sum_to(a, mul(a, dy, y), x, out) : NULL);
        accumulate(a, y, want_in(a, 1) ? sum_to(a, mul(a, dy, x), y, out) : NULL);
        break;
    default: { /* Div: dX = dY / Y, dY' = -(dY / Y) * out */
        hone_value *q = ONNX(a, "Div", dy, y);
        accumulate(a, x, want_in(a, 0) ? sum_to(a, q, x, out) : NULL);
        accumulate(a, y, want_in(a, 1) ? ONNX(a, "Neg", sum_to(a, ONNX(a, "Mul", q, out), y, out))
                                       : NULL);
    }
    }
    return HONE_OK;
}

/* Sum and Mean over any number of broadcasting inputs. */
static hone_status rule_variadic(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    if (n->op == HONE_OP_MEAN && n->n_in > 1)
        dy = mul(a, dy, const_fill(a, 1.0f / (float)n->n_in, 0, NULL));
    for (int i = 0; i < n->n_in; i++)
        if (want_in(a, i))
            accumulate(a, n->in[i], sum_to(a, dy, n->in[i], n->out[0]));
    return HONE_OK;
}

/* Gemm: Y = alpha op(A) op(B) + beta C. */
static hone_status rule_gemm(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    bool ta = hone_attr_int(n, "transA", 0), tb = hone_attr_int(n, "transB", 0);
    float alpha = hone_attr_float(n, "alpha", 1.0f), beta = hone_attr_float(n, "beta", 1.0f);
    hone_value *A = n->in[0], *B = n->in[1];
    /* dA = alpha dY op(B)^T (transposed back when transA); dB likewise. */
    hone_value *ia[2] = {ta ? B : dy, ta ? dy : B}, *ib[2] = {tb ? dy : A, tb ? A : dy};
    int fa[2] = {ta ? tb : 0, ta ? 1 : !tb}, fb[2] = {tb ? 1 : !ta, tb ? ta : 0};
    for (int side = 0; side < 2; side++) {
        if (!want_in(a, side))
            continue;
        hone_value *const *in = side ? ib : ia;
        const int *f = side ? fb : fa;
        hone_node *g = emit_n(a, "", "Gemm", 2, in, 1, NULL);
        hone_node_set_attr_int(a->g, g, "transA", f[0]);
        hone_node_set_attr_int(a->g, g, "transB", f[1]);
        if (alpha != 1.0f)
            hone_node_set_attr_float(a->g, g, "alpha", alpha);
        accumulate(a, n->in[side], g->out[0]);
    }
    if (n->n_in > 2 && want_in(a, 2)) {
        hone_value *d = beta == 1.0f ? dy : mul(a, dy, const_fill(a, beta, 0, NULL));
        accumulate(a, n->in[2], sum_to(a, d, n->in[2], n->out[0]));
    }
    return HONE_OK;
}

/* Conv: one ConvGrad node for dX, dW and dB (each only when needed). */
static hone_status rule_conv(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    if (n->in[0]->dtype != HONE_DT_FLOAT)
        return unsupported(a, "Conv backward runs in float32 only");
    bool want[3] = {want_in(a, 0), want_in(a, 1), want_in(a, 2)};
    hone_node *g = emit_n(a, "hone", "ConvGrad", 3, (hone_value *[]){dy, n->in[0], n->in[1]}, 3,
                          want);
    copy_attrs(a, g, window_attrs);
    for (int i = 0; i < 3; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    return HONE_OK;
}

/* BatchNormalization (inference form: running statistics are constants) and
 * hone.BatchNormTrain (batch statistics): one BatchNormGrad node. */
static hone_status rule_bn(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    bool train = n->op == HONE_OP_BATCH_NORM_TRAIN;
    hone_value *in[5] = {dy, n->in[0], n->in[1]};
    if (train && (n->n_out < 3 || !n->out[1] || !n->out[2]))
        return unsupported(a, "BatchNormTrain needs its mean and invstd outputs");
    if (!train && n->n_out > 1 && (n->opset < 14 || hone_attr_int(n, "training_mode", 0)))
        return unsupported(a, "training-mode BatchNormalization (the trainer converts it)");
    in[3] = train ? n->out[1] : n->in[3];
    in[4] = train ? n->out[2] : n->in[4];
    bool want[3] = {want_in(a, 0), want_in(a, 1), want_in(a, 2)};
    hone_node *g = emit_n(a, "hone", "BatchNormGrad", 5, in, 3, want);
    hone_node_set_attr_int(a->g, g, "batch_stats", train);
    copy_attr(a->g, g, n, "epsilon", "epsilon");
    for (int i = 0; i < 3; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    return HONE_OK;
}

/* Pools: MaxPool through its Indices output (added by prepare), the others
 * from their window attributes or plane sizes. */
static hone_status rule_pool(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    hone_node *g;
    if (n->op == HONE_OP_MAX_POOL) {
        if (n->n_out < 2 || !n->out[1] || hone_attr_int(n, "storage_order", 0))
            return unsupported(a, "MaxPool needs row-major Indices");
        g = emit_n(a, "hone", "MaxPoolGrad", 3, (hone_value *[]){dy, n->out[1], n->in[0]}, 1,
                   NULL);
    } else if (n->op == HONE_OP_AVERAGE_POOL) {
        g = emit_n(a, "hone", "AveragePoolGrad", 2, (hone_value *[]){dy, n->in[0]}, 1, NULL);
        copy_attrs(a, g, window_attrs);
    } else {
        g = emit_n(a, "hone", "GlobalPoolGrad", 2, (hone_value *[]){dy, n->in[0]}, 1, NULL);
        hone_node_set_attr_string(a->g, g, "mode",
                                  n->op == HONE_OP_GLOBAL_MAX_POOL ? "max" : "avg");
    }
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Softmax and LogSoftmax (axis normalised; opsets < 13 coerce to 2-D). */
static hone_status rule_softmax(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    int rank = n->out[0]->rank;
    bool legacy = n->opset < 13;
    int64_t axis = hone_attr_int(n, "axis", legacy ? 1 : -1);
    if (rank < 0)
        return unsupported(a, "the input rank is unknown");
    hone_node *g = emit_n(a, "hone", "SoftmaxGrad", 2, (hone_value *[]){dy, n->out[0]}, 1, NULL);
    hone_node_set_attr_int(a->g, g, "axis", axis < 0 ? axis + rank : axis);
    hone_node_set_attr_int(a->g, g, "log", n->op == HONE_OP_LOG_SOFTMAX);
    hone_node_set_attr_int(a->g, g, "legacy", legacy);
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Reads the reduced axes of a ReduceSum/ReduceMean node (normalised) into ax;
 * *all when every axis is reduced, *noop when the node is the identity. */
static hone_status reduce_axes(ad *a, int rank, int64_t *ax, int *na, bool *noop)
{
    const hone_node *n = a->node;
    bool input = n->opset >= 18 || (n->op == HONE_OP_REDUCE_SUM && n->opset >= 13);
    const int64_t *v = NULL;
    *na = 0;
    *noop = false;
    if (input && n->n_in > 1 && n->in[1]) {
        if (!n->in[1]->data)
            return unsupported(a, "reduction axes are not constant");
        *na = hone_tensor_ints(n->in[1]->data, ax, HONE_MAX_RANK);
    } else if (!input) {
        int k = hone_attr_ints(n, "axes", &v);
        for (int i = 0; i < k && i < HONE_MAX_RANK; i++)
            ax[(*na)++] = v[i];
    }
    if (*na == 0 && input && hone_attr_int(n, "noop_with_empty_axes", 0)) {
        *noop = true;
        return HONE_OK;
    }
    for (int i = 0; *na == 0 && i < rank; i++)
        ax[i] = i;
    *na = *na ? *na : rank;
    for (int i = 0; i < *na; i++)
        ax[i] = ax[i] < 0 ? ax[i] + rank : ax[i];
    return HONE_OK;
}

/* ReduceSum, ReduceMean: dY (axes restored) broadcast onto X, / count for the mean. */
static hone_status rule_reduce(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    int64_t ax[HONE_MAX_RANK];
    int na;
    bool noop;
    hone_status st = reduce_axes(a, n->in[0]->rank, ax, &na, &noop);
    if (st || noop) {
        accumulate(a, n->in[0], st ? NULL : dy);
        return st;
    }
    hone_node *g = emit_n(a, "hone", "ExpandLike", 2, (hone_value *[]){dy, n->in[0]}, 1, NULL);
    if (!hone_attr_int(n, "keepdims", 1))
        hone_node_set_attr_ints(a->g, g, "axes", ax, na);
    hone_node_set_attr_int(a->g, g, "mean", n->op == HONE_OP_REDUCE_MEAN);
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* hone-domain losses carry d(loss)/d(input 0) as output 1. */
static hone_status rule_loss(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    if (n->n_out < 2 || !n->out[1])
        return unsupported(a, "the loss node was built without its gradient output");
    hone_value *d = mul(a, dy, n->out[1]);
    accumulate(a, n->in[0], d);
    if (n->op == HONE_OP_DISTANCE_LOSS && want_in(a, 1))
        accumulate(a, n->in[1], ONNX(a, "Neg", d));
    return HONE_OK;
}

/* Element-moving ops: hone.MoveGrad replays the forward on element numbers. */
static hone_status rule_move(ad *a, hone_value *dy, int moved)
{
    const hone_node *n = a->node;
    hone_value **in = calloc((size_t)n->n_in + 2, sizeof *in);
    bool *want = calloc((size_t)moved + 1, sizeof *want);
    HONE_ASSERT(in && want);
    in[0] = dy;
    memcpy(in + 1, n->in, sizeof *in * (size_t)n->n_in);
    for (int i = 0; i < moved; i++)
        want[i] = want_in(a, i);
    hone_node *g = emit_n(a, "hone", "MoveGrad", n->n_in + 1, in, moved, want);
    replay_attrs(a, g, n->op == HONE_OP_PAD ? "value" : NULL);
    hone_node_set_attr_int(a->g, g, "fwd_moved", moved);
    for (int i = 0; i < moved; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    free(in);
    free(want);
    return HONE_OK;
}

/* Resize and Upsample (nearest, linear): hone.ResizeGrad probes the forward. */
static hone_status rule_resize(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    hone_value *in[5] = {dy};
    memcpy(in + 1, n->in, sizeof *in * (size_t)(n->n_in < 4 ? n->n_in : 4));
    hone_node *g = emit_n(a, "hone", "ResizeGrad", 1 + (n->n_in < 4 ? n->n_in : 4), in, 1, NULL);
    replay_attrs(a, g, NULL);
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Transpose: the inverse permutation (default: reversed dims). */
static hone_status rule_transpose(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    int r = n->in[0]->rank;
    const int64_t *p;
    int64_t inv[HONE_MAX_RANK];
    int k = hone_attr_ints(n, "perm", &p);
    if (r < 0 || (k >= 0 && k != r))
        return unsupported(a, "the permutation does not match the input rank");
    for (int i = 0; i < r; i++)
        inv[k >= 0 ? p[i] : r - 1 - i] = i;
    hone_node *g = emit_n(a, "", "Transpose", 1, &dy, 1, NULL);
    hone_node_set_attr_ints(a->g, g, "perm", inv, r);
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* Split: Concat of the output gradients (zeros for outputs without one). */
static hone_status rule_split(ad *a)
{
    const hone_node *n = a->node;
    hone_value **in = calloc((size_t)n->n_out + 1, sizeof *in);
    HONE_ASSERT(in);
    for (int i = 0; i < n->n_out; i++) {
        in[i] = dout(a, i);
        if (!in[i] && n->out[i])
            in[i] = HONE(a, "ZerosLike", n->out[i]);
        if (!in[i]) {
            free(in);
            return unsupported(a, "an omitted Split output hides its size");
        }
    }
    hone_node *g = emit_n(a, "", "Concat", n->n_out, in, 1, NULL);
    hone_node_set_attr_int(a->g, g, "axis", hone_attr_int(n, "axis", 0));
    accumulate(a, n->in[0], g->out[0]);
    free(in);
    return HONE_OK;
}

/* x with a size-1 axis inserted at each of axes (Unsqueeze at opset 17). */
static hone_value *unsqueeze(ad *a, hone_value *x, int n, const int64_t *axes)
{
    return ONNX(a, "Unsqueeze", x, const_i64(a, n, axes));
}

/* x with its last two axes swapped (rank r >= 2). */
static hone_value *swap_last(ad *a, hone_value *x, int r)
{
    int64_t perm[HONE_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    hone_node *g = emit_n(a, "", "Transpose", 1, &x, 1, NULL);
    hone_node_set_attr_ints(a->g, g, "perm", perm, r);
    return g->out[0];
}

/* MatMul with numpy semantics: 1-D operands are promoted to matrices (and dY
 * with them), broadcast batch dims are summed back with SumTo. */
static hone_status rule_matmul(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    hone_value *A = n->in[0], *B = n->in[1];
    int ra = A->rank, rb = B->rank;
    if (ra < 1 || rb < 1)
        return unsupported(a, "MatMul operand ranks are unknown");
    static const int64_t m2[1] = {-2}, m1[1] = {-1}, z0[1] = {0}, both[2] = {0, 1};
    hone_value *A2 = ra == 1 ? unsqueeze(a, A, 1, z0) : A;
    hone_value *B2 = rb == 1 ? unsqueeze(a, B, 1, m1) : B;
    hone_value *d2 = ra == 1 && rb == 1 ? unsqueeze(a, dy, 2, both)
                     : ra == 1          ? unsqueeze(a, dy, 1, m2)
                     : rb == 1          ? unsqueeze(a, dy, 1, m1)
                                        : dy;
    if (want_in(a, 0)) {
        hone_value *g = HONE(a, "SumTo", ONNX(a, "MatMul", d2, swap_last(a, B2, rb < 2 ? 2 : rb)), A2);
        accumulate(a, A, ra == 1 ? HONE(a, "ReshapeLike", g, A) : g);
    }
    if (want_in(a, 1)) {
        hone_value *g = HONE(a, "SumTo", ONNX(a, "MatMul", swap_last(a, A2, ra < 2 ? 2 : ra), d2), B2);
        accumulate(a, B, rb == 1 ? HONE(a, "ReshapeLike", g, B) : g);
    }
    return HONE_OK;
}

/* hone.FusedConv: activation(Conv(X, W, B) + Z), activation read from Y. */
static hone_status rule_fused_conv(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    const char *act = hone_attr_str(n, "activation", "");
    const float *ap;
    int na = hone_attr_floats(n, "activation_params", &ap);
    float alpha = na >= 1 ? ap[0] : 0.01f;
    hone_value *d = dy;
    if (!strcmp(act, "Clip") || (!strcmp(act, "LeakyRelu") && !(alpha > 0)))
        return unsupported(a, "this FusedConv activation needs its pre-activation");
    if (*act) {
        hone_node *g = emit_n(a, "hone", "UnaryGrad", 2, (hone_value *[]){dy, n->out[0]}, 1, NULL);
        hone_node_set_attr_string(a->g, g, "op", act);
        hone_node_set_attr_float(a->g, g, "alpha", alpha);
        d = g->out[0];
    }
    bool want[3] = {want_in(a, 0), want_in(a, 1), want_in(a, 2)};
    hone_node *g = emit_n(a, "hone", "ConvGrad", 3, (hone_value *[]){d, n->in[0], n->in[1]}, 3,
                          want);
    copy_attrs(a, g, window_attrs);
    for (int i = 0; i < 3; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    if (n->n_in > 3 && want_in(a, 3))
        accumulate(a, n->in[3], sum_to(a, d, n->in[3], n->out[0]));
    return HONE_OK;
}

/* hone.SignSTE: straight-through, dQ = dB where |Q| <= clip (hone.SignSTEGrad). */
static hone_status rule_sign_ste(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    hone_node *g = emit_n(a, "hone", "SignSTEGrad", 2, (hone_value *[]){dy, n->in[0]}, 1, NULL);
    copy_attr(a->g, g, n, "clip", "clip");
    accumulate(a, n->in[0], g->out[0]);
    return HONE_OK;
}

/* hone.Adder2d: AdderNet's rules in one AdderGrad node (full-precision dW,
 * HardTanh dX), each output only when needed. */
static hone_status rule_adder(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    bool want[2] = {want_in(a, 0), want_in(a, 1)};
    hone_node *g = emit_n(a, "hone", "AdderGrad", 3, (hone_value *[]){dy, n->in[0], n->in[1]}, 2,
                          want);
    copy_attrs(a, g, window_attrs);
    for (int i = 0; i < 2; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    return HONE_OK;
}

/* hone.SignedPower: dX and dalpha from one SignedPowerGrad node. */
static hone_status rule_signed_power(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    bool want[2] = {want_in(a, 0), want_in(a, 1)};
    hone_node *g = emit_n(a, "hone", "SignedPowerGrad", 3,
                          (hone_value *[]){dy, n->in[0], n->in[1]}, 2, want);
    for (int i = 0; i < 2; i++)
        if (want[i])
            accumulate(a, n->in[i], g->out[i]);
    return HONE_OK;
}

/* Builds the backward nodes of the current node from its output gradient(s). */
static hone_status backward(ad *a, hone_value *dy)
{
    const hone_node *n = a->node;
    int kind = act_kind(n->op);
    if (kind >= 0)
        return rule_act(a, dy, kind);
    switch (n->op) {
    case HONE_OP_IDENTITY: case HONE_OP_DROPOUT:
        accumulate(a, n->in[0], dy);
        return HONE_OK;
    case HONE_OP_NEG:
        accumulate(a, n->in[0], ONNX(a, "Neg", dy));
        return HONE_OK;
    case HONE_OP_RESHAPE_LIKE: case HONE_OP_RESHAPE: case HONE_OP_FLATTEN:
    case HONE_OP_SQUEEZE: case HONE_OP_UNSQUEEZE:
        accumulate(a, n->in[0], HONE(a, "ReshapeLike", dy, n->in[0]));
        return HONE_OK;
    case HONE_OP_EXPAND:
        accumulate(a, n->in[0], sum_to(a, dy, n->in[0], n->out[0]));
        return HONE_OK;
    case HONE_OP_TRANSPOSE: return rule_transpose(a, dy);
    case HONE_OP_CONCAT: return rule_move(a, dy, n->n_in);
    case HONE_OP_SLICE: case HONE_OP_PAD: case HONE_OP_GATHER: case HONE_OP_GATHER_ELEMENTS:
    case HONE_OP_GATHER_ND: case HONE_OP_TILE: case HONE_OP_DEPTH_TO_SPACE:
    case HONE_OP_SPACE_TO_DEPTH: case HONE_OP_REVERSE_SEQUENCE:
        return rule_move(a, dy, 1);
    case HONE_OP_RESIZE: case HONE_OP_UPSAMPLE: return rule_resize(a, dy);
    case HONE_OP_MATMUL: return rule_matmul(a, dy);
    case HONE_OP_FUSEDCONV: return rule_fused_conv(a, dy);
    case HONE_OP_ADD: case HONE_OP_SUB: case HONE_OP_MUL: case HONE_OP_DIV:
        return rule_binary(a, dy);
    case HONE_OP_POW: return rule_pow(a, dy);
    case HONE_OP_SUM: case HONE_OP_MEAN: return rule_variadic(a, dy);
    case HONE_OP_GEMM: return rule_gemm(a, dy);
    case HONE_OP_CONV: return rule_conv(a, dy);
    case HONE_OP_BATCH_NORMALIZATION: case HONE_OP_BATCH_NORM_TRAIN: return rule_bn(a, dy);
    case HONE_OP_MAX_POOL: case HONE_OP_AVERAGE_POOL: case HONE_OP_GLOBAL_AVERAGE_POOL:
    case HONE_OP_GLOBAL_MAX_POOL:
        return rule_pool(a, dy);
    case HONE_OP_SOFTMAX: case HONE_OP_LOG_SOFTMAX: return rule_softmax(a, dy);
    case HONE_OP_REDUCE_SUM: case HONE_OP_REDUCE_MEAN: return rule_reduce(a, dy);
    case HONE_OP_SOFTMAX_CROSS_ENTROPY: case HONE_OP_SOFT_TARGET_KL: case HONE_OP_DISTANCE_LOSS:
        return rule_loss(a, dy);
    case HONE_OP_SIGN_STE: return rule_sign_ste(a, dy);
    case HONE_OP_NOISY_LABEL_LOSS: return rule_loss(a, dy);
    case HONE_OP_ADDER2D: return rule_adder(a, dy);
    case HONE_OP_SIGNED_POWER: return rule_signed_power(a, dy);
    default:
        return unsupported(a, "the op has no backward rule");
    }
}

/* ===================== driver ===================== */

/* Gives MaxPool nodes on the gradient path an Indices output (replacing the node). */
static void prepare_maxpool(ad *a, int idx)
{
    hone_node *n = a->g->nodes[idx];
    if (n->n_out >= 2 && n->out[1])
        return;
    hone_node *m = hone_graph_add_node(a->g, n->op_type, n->domain, n->name, n->n_in, 2);
    m->opset = n->opset;
    memcpy(m->in, n->in, sizeof *m->in * (size_t)n->n_in);
    m->out[0] = n->out[0];
    m->out[1] = hone_graph_new_value(a->g, hone_arena_printf(a->g->arena, "%s_indices",
                                                             n->out[0]->name));
    m->n_attr = n->n_attr;
    m->attrs = n->attrs;
    a->g->nodes[idx] = m;
    a->g->n_nodes--;
    m->id = idx;
}

/* Forward sweep: marks float values depending on some wrt value. */
static void mark_needs(ad *a, int n_wrt, hone_value **wrt)
{
    for (int i = 0; i < n_wrt; i++)
        if (wrt[i] && hone_dtype_is_float(wrt[i]->dtype))
            a->needs[wrt[i]->id] = true;
    for (int i = 0; i < a->g->n_nodes; i++) {
        hone_node *n = a->g->nodes[i];
        bool any = false;
        for (int j = 0; j < n->n_in; j++)
            any = any || (n->in[j] && a->needs[n->in[j]->id]);
        for (int j = 0; any && j < n->n_out; j++)
            if (n->out[j] && hone_dtype_is_float(n->out[j]->dtype))
                a->needs[n->out[j]->id] = true;
        if (any && n->op == HONE_OP_MAX_POOL)
            prepare_maxpool(a, i);
    }
}

/* The first output gradient of a node, when any reaches it. */
static hone_value *first_dout(ad *a, const hone_node *n, bool *any)
{
    hone_value *dy = NULL;
    *any = false;
    for (int j = 0; j < n->n_out; j++) {
        hone_value *d = n->out[j] && n->out[j]->id < a->n0 ? a->grad[n->out[j]->id] : NULL;
        *any = *any || d;
        dy = j == 0 ? d : dy;
    }
    return dy;
}

/* Reverse sweep over the forward nodes (the first n_nodes of the graph). */
static hone_status reverse(ad *a, int n_nodes)
{
    for (int i = n_nodes - 1; i >= 0; i--) {
        hone_node *n = a->g->nodes[i];
        bool any, need = false;
        hone_value *dy = first_dout(a, n, &any);
        for (int j = 0; j < n->n_in; j++)
            need = need || (n->in[j] && a->needs[n->in[j]->id]);
        if (!any || !need)
            continue;
        a->node = n;
        if (n->op == HONE_OP_SPLIT) {
            hone_status st = rule_split(a);
            if (st)
                return st;
            continue;
        }
        for (int j = 1; j < n->n_out; j++)
            if (dout(a, j))
                return unsupported(a, "a gradient flows into a secondary output");
        hone_status st = backward(a, dy);
        if (st)
            return st;
    }
    a->node = NULL;
    return HONE_OK;
}

/* Fails unless loss is a float scalar (one element) of g. */
static hone_status check_loss(hone_ctx *ctx, const hone_value *loss)
{
    int64_t numel = 1;
    for (int i = 0; i < loss->rank; i++)
        numel *= loss->dims[i];
    if (loss->dtype != HONE_DT_FLOAT || loss->rank < 0 || numel != 1)
        return hone_fail(ctx, HONE_ERR_ARG, "loss '%s' must be a float32 scalar", loss->name);
    return HONE_OK;
}

hone_status hone_autodiff(hone_ctx *ctx, hone_graph *g, hone_value *loss, int n_wrt,
                          hone_value **wrt, hone_value **grads)
{
    hone_status st = hone_graph_infer(ctx, g);
    if (!st)
        st = check_loss(ctx, loss);
    if (st)
        return st;
    ad a = {ctx, g, g->n_values};
    a.grad = calloc((size_t)g->n_values + 1, sizeof *a.grad);
    a.needs = calloc((size_t)g->n_values + 1, sizeof *a.needs);
    HONE_ASSERT(a.grad && a.needs);
    int n_nodes = g->n_nodes;
    mark_needs(&a, n_wrt, wrt);
    a.one = const_fill(&a, 1.0f, loss->rank, loss->dims);
    a.grad[loss->id] = a.needs[loss->id] ? a.one : NULL;
    st = a.one ? reverse(&a, n_nodes) : ctx->status;
    for (int i = 0; i < n_wrt; i++)
        grads[i] = !st && wrt[i] && wrt[i]->id < a.n0 ? a.grad[wrt[i]->id] : NULL;
    free(a.grad);
    free(a.needs);
    if (!st)
        st = hone_graph_infer(ctx, g);
    hone_graph_update_uses(g);
    return st;
}
