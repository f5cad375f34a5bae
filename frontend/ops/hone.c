/*
 * hone-domain ops: nodes that hone's own passes create and its interpreter
 * runs (documented in docs/CUSTOM_OPS.md).
 *
 * hone.FusedConv(X, W, [B], [Z]) -> Y = act(Conv(X, W, B) + Z)
 *   Conv attributes as Conv (auto_pad, dilations, group, kernel_shape, pads,
 *   strides); activation: "" (none), "Relu", "LeakyRelu", "Clip", "Sigmoid";
 *   activation_params: [alpha] for LeakyRelu (default 0.01), [min, max] for
 *   Clip (defaults -inf, +inf). Z broadcasts onto Y and may not enlarge it.
 *
 * Both infer and eval delegate the convolution to the Conv row of the op
 * table (through a hone_infer/hone_eval view restricted to X, W, B), so a
 * FusedConv always agrees with the Conv it replaced; the residual add and the
 * activation then run in double like the Add and activation kernels.
 */
#include "ops_util.h"

typedef enum { ACT_NONE, ACT_RELU, ACT_LEAKY, ACT_CLIP, ACT_SIGMOID, ACT_BAD } act_kind;

static act_kind act_of(const hone_node *n)
{
    static const char *const names[] = {"", "Relu", "LeakyRelu", "Clip", "Sigmoid"};
    const char *a = hone_attr_str(n, "activation", "");
    for (int k = 0; k < ACT_BAD; k++)
        if (!strcmp(a, names[k]))
            return (act_kind)k;
    return ACT_BAD;
}

static hone_op conv_op(const hone_node *n, hone_ctx *ctx, hone_status *st)
{
    hone_op c = hone_op_lookup("", "Conv");
    if (c == HONE_OP_UNKNOWN)
        *st = hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED,
                             "FusedConv runs through the Conv op, which this build lacks");
    return c;
}

static hone_status check_activation(hone_infer *ic)
{
    const float *p;
    int k = hone_attr_floats(ic->node, "activation_params", &p);
    act_kind a = act_of(ic->node);
    if (a == ACT_BAD)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "activation '%s' is not one of Relu, LeakyRelu, Clip, Sigmoid",
                              hone_attr_str(ic->node, "activation", ""));
    int want = a == ACT_LEAKY ? 1 : a == ACT_CLIP ? 2 : 0;
    if (k >= 0 && k != want)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "activation_params has %d values, %s takes %d", k,
                              hone_attr_str(ic->node, "activation", ""), want);
    return HONE_OK;
}

/* Z must broadcast onto Y without changing Y's shape. */
static hone_status check_residual(hone_infer *ic)
{
    const hone_tinfo *y = &ic->out[0], *z = ic->in[3];
    int r;
    int64_t d[HONE_MAX_RANK];
    if (z->dtype && y->dtype && z->dtype != y->dtype)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "Z is %s, the output is %s",
                              hone_dtype_name(z->dtype), hone_dtype_name(y->dtype));
    hone_status st = hone_infer_broadcast(ic, y->rank, y->dims, z->rank, z->dims, &r, d);
    if (st || y->rank < 0 || z->rank < 0)
        return st;
    bool grows = r != y->rank;
    for (int i = 0; !grows && i < r; i++)
        grows = d[i] >= 0 && y->dims[i] >= 0 && d[i] != y->dims[i];
    if (grows)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "Z (rank %d) would enlarge the conv output (rank %d)", z->rank,
                              y->rank);
    return HONE_OK;
}

hone_status infer_fused_conv(hone_infer *ic)
{
    hone_status st = check_activation(ic);
    hone_op c = st ? HONE_OP_UNKNOWN : conv_op(ic->node, ic->ctx, &st);
    if (st)
        return st;
    hone_infer sub = *ic;
    sub.n_in = ic->n_in < 3 ? ic->n_in : 3;
    st = hone_op_table[c].infer(&sub);
    if (!st && ic->n_in > 3 && ic->in[3])
        st = check_residual(ic);
    return st;
}

static double activate(act_kind a, double x, const float *p, int np)
{
    switch (a) {
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_LEAKY: return x >= 0 ? x : (np > 0 ? p[0] : 0.01f) * x;
    case ACT_CLIP: {
        double lo = np > 0 ? p[0] : -INFINITY, hi = np > 1 ? p[1] : INFINITY;
        return x < lo ? lo : x > hi ? hi : x;
    }
    case ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return x;
    }
}

/* Y += Z (broadcast), then Y = act(Y), in place. */
static void epilogue(hone_eval *ec, hone_tensor *y)
{
    const hone_tensor *z = ec->n_in > 3 ? ec->in[3] : NULL;
    const float *p = NULL;
    int np = hone_attr_floats(ec->node, "activation_params", &p);
    act_kind a = act_of(ec->node);
    hone_bcast b;
    const hone_tensor *ops[2] = {y, z};
    if (z)
        hone_bcast_init(&b, y->rank, y->dims, 2, ops);
    for (int64_t i = 0; i < y->numel; i++) {
        double v = hone_tensor_get_f64(y, i);
        if (z) {
            v += hone_tensor_get_f64(z, b.off[1]);
            hone_bcast_next(&b);
        }
        hone_tensor_set_f64(y, i, activate(a, v, p, np));
    }
}

hone_status eval_fused_conv(hone_eval *ec)
{
    hone_status st = HONE_OK;
    hone_op c = conv_op(ec->node, ec->ctx, &st);
    if (st)
        return st;
    hone_eval sub = *ec;
    sub.n_in = ec->n_in < 3 ? ec->n_in : 3;
    if ((st = hone_op_table[c].eval(&sub)))
        return st;
    epilogue(ec, ec->out[0]);
    return HONE_OK;
}
