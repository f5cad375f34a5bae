/*
 * Pooling ops: MaxPool (with optional Indices), AveragePool, LpPool, their
 * Global forms, and MaxUnpool.
 *
 * Windowed pools share one shape rule (nn_window with ceil_mode, padding
 * smaller than the window) and one eval path that picks the runtime kernel.
 * Global pools reduce each [n, c] plane to one value; the output keeps the
 * rank with every spatial extent 1. MaxUnpool scatters X into a zero tensor at
 * the flat positions I names (as MaxPool's Indices produce them), checking
 * every index against the output size first.
 */
#include "nn.h"

typedef enum { POOL_MAX, POOL_AVG, POOL_LP } pool_op;

/* Kernel extents from the required kernel_shape attribute. */
static hone_status pool_kernel(hone_ctx *ctx, const hone_node *n, int nsp, int64_t *k)
{
    const int64_t *a;
    if (hone_attr_ints(n, "kernel_shape", &a) < 0)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute 'kernel_shape' is required");
    return nn_ints_attr(ctx, n, "kernel_shape", nsp, 1, 1, k);
}

/* Fails unless X has rank >= min ([N, C, spatial...]). */
static hone_status pool_rank(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x, int min)
{
    if (x->rank >= 0 && (x->rank < min || x->rank - 2 > HONE_RT_MAX_SPATIAL))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "X must have rank %d..%d ([N, C, spatial...]), got %d", min,
                              HONE_RT_MAX_SPATIAL + 2, x->rank);
    return HONE_OK;
}

/* Pool: X[N,C,D1..Dn] -> Y[N,C,o1..on] under the node's window attributes. */
static hone_status pool_shape(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                              hone_rt_window *w, int64_t *y)
{
    int64_t k[HONE_RT_MAX_SPATIAL], in[HONE_RT_MAX_SPATIAL];
    hone_status st = pool_rank(ctx, n, x, 3);
    if (st || x->rank < 0)
        return st;
    int nsp = x->rank - 2;
    nn_window_opts o = {hone_attr_int(n, "ceil_mode", 0) != 0, true};
    for (int d = 0; d < nsp; d++)
        in[d] = x->dims[d + 2] < 0 ? -1 : x->dims[d + 2];
    st = pool_kernel(ctx, n, nsp, k);
    if (!st)
        st = nn_window(ctx, n, nsp, in, k, o, w);
    y[0] = x->dims[0];
    y[1] = x->dims[1];
    for (int d = 0; d < nsp && !st; d++)
        y[d + 2] = w->out[d];
    return st;
}

/* Shared infer of the windowed pools; MaxPool also types its Indices output. */
static hone_status infer_pool(hone_infer *ic, bool small_ints)
{
    hone_rt_window w;
    int64_t y[HONE_MAX_RANK];
    const hone_tinfo *x = ic->in[0];
    hone_status st = nn_infer_float(ic, 0, small_ints);
    if (!st)
        st = pool_shape(ic->ctx, ic->node, x, &w, y);
    if (st)
        return st;
    for (int i = 0; i < ic->n_out; i++)
        hone_infer_set(ic, i, i ? HONE_DT_INT64 : x->dtype, x->rank, x->rank < 0 ? NULL : y);
    return HONE_OK;
}

/* Evaluates a windowed pool through the float runtime kernels. */
static hone_status eval_pool(hone_eval *ec, pool_op op)
{
    hone_tinfo x;
    hone_rt_window w;
    int64_t y[HONE_MAX_RANK];
    nn_stage s;
    nn_tinfo_of(ec->in[0], &x);
    hone_status st = pool_shape(ec->ctx, ec->node, &x, &w, y);
    if (!st)
        st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    int64_t planes = x.dims[0] * x.dims[1];
    const hone_node *n = ec->node;
    if (op == POOL_MAX) {
        int64_t *idx = ec->n_out > 1 && ec->out[1] ? ec->out[1]->data : NULL;
        hone_rt_maxpool(&w, planes, s.in[0], s.out[0], idx,
                        hone_attr_int(n, "storage_order", 0) != 0);
    } else if (op == POOL_AVG) {
        hone_rt_avgpool(&w, planes, s.in[0], s.out[0],
                        hone_attr_int(n, "count_include_pad", 0) != 0);
    } else {
        hone_rt_lppool(&w, planes, s.in[0], s.out[0], hone_attr_float(n, "p", 2.0f));
    }
    nn_stage_end(ec, &s);
    return HONE_OK;
}

hone_status infer_maxpool(hone_infer *ic)
{
    return infer_pool(ic, true);
}

hone_status eval_maxpool(hone_eval *ec)
{
    return eval_pool(ec, POOL_MAX);
}

hone_status infer_avgpool(hone_infer *ic)
{
    return infer_pool(ic, false);
}

hone_status eval_avgpool(hone_eval *ec)
{
    return eval_pool(ec, POOL_AVG);
}

hone_status infer_lppool(hone_infer *ic)
{
    if (hone_attr_float(ic->node, "p", 2.0f) <= 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "p must be positive");
    return infer_pool(ic, false);
}

hone_status eval_lppool(hone_eval *ec)
{
    return eval_pool(ec, POOL_LP);
}

/* Global pools: X[N,C,D1..Dn] -> Y[N,C,1..1]. */
hone_status infer_global_pool(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t y[HONE_MAX_RANK];
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st)
        st = pool_rank(ic->ctx, ic->node, x, 2);
    if (st)
        return st;
    if (!strcmp(ic->node->op_type, "GlobalLpPool") && hone_attr_float(ic->node, "p", 2.0f) <= 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "p must be positive");
    for (int d = 0; d < x->rank; d++)
        y[d] = d < 2 ? x->dims[d] : 1;
    hone_infer_set(ic, 0, x->dtype, x->rank, x->rank < 0 ? NULL : y);
    return HONE_OK;
}

/* Evaluates GlobalAveragePool, GlobalMaxPool or GlobalLpPool (by op). */
hone_status eval_global_pool(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_rt_gpool kind = ec->node->op == HONE_OP_GLOBAL_MAX_POOL  ? HONE_RT_GPOOL_MAX
                         : ec->node->op == HONE_OP_GLOBAL_LP_POOL ? HONE_RT_GPOOL_LP
                                                                  : HONE_RT_GPOOL_AVG;
    nn_stage s;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    hone_rt_global_pool(kind, x->dims[0] * x->dims[1], nn_prod(x->dims, 2, x->rank), s.in[0],
                        s.out[0], hone_attr_float(ec->node, "p", 2.0f));
    nn_stage_end(ec, &s);
    return HONE_OK;
}

hone_status nn_unpool_dims(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x, int64_t *y)
{
    int nsp = x->rank - 2;
    int64_t k[HONE_RT_MAX_SPATIAL], s[HONE_RT_MAX_SPATIAL], pads[2 * HONE_RT_MAX_SPATIAL];
    hone_status st = pool_kernel(ctx, n, nsp, k);
    if (!st)
        st = nn_ints_attr(ctx, n, "strides", nsp, 1, 1, s);
    if (!st)
        st = nn_ints_attr(ctx, n, "pads", 2 * nsp, 0, 0, pads);
    y[0] = x->dims[0];
    y[1] = x->dims[1];
    for (int d = 0; d < nsp && !st; d++) {
        int64_t in = x->dims[d + 2];
        y[d + 2] = in < 0 ? -1 : (in - 1) * s[d] + k[d] - pads[d] - pads[nsp + d];
        if (in >= 0 && y[d + 2] < 1)
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                                  "output extent along spatial dim %d is %lld", d,
                                  (long long)y[d + 2]);
    }
    return st;
}

/* Reads MaxUnpool's output_shape input: rank values, each a valid extent. */
static hone_status read_output_shape(hone_infer *ic, const hone_tensor *v, int rank, int64_t *y)
{
    if (v->numel != rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "output_shape has %lld values, expected %d", (long long)v->numel,
                              rank);
    hone_tensor_ints(v, y, rank);
    for (int d = 0; d < rank; d++)
        if (y[d] < 0 || y[d] > ic->ctx->limits.max_dim)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "output_shape[%d] = %lld is invalid", d, (long long)y[d]);
    return HONE_OK;
}

/* MaxUnpool: X[N,C,D...], I (int64, X's shape), optional output_shape -> Y. */
hone_status infer_maxunpool(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ix = ic->in[1];
    int64_t y[HONE_MAX_RANK];
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st)
        st = pool_rank(ic->ctx, ic->node, x, 3);
    if (st)
        return st;
    if (ix->dtype != HONE_DT_UNDEF && ix->dtype != HONE_DT_INT64)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "I must be int64, got %s",
                              hone_dtype_name(ix->dtype));
    if (x->rank >= 0 && ix->rank >= 0 && ix->rank != x->rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "I must have X's shape");
    if (x->rank < 0) {
        hone_infer_set(ic, 0, x->dtype, -1, NULL);
        return HONE_OK;
    }
    const hone_tinfo *os = ic->n_in > 2 ? ic->in[2] : NULL;
    if (!os)
        st = nn_unpool_dims(ic->ctx, ic->node, x, y);
    else if (os->value)
        st = read_output_shape(ic, os->value, x->rank, y);
    hone_infer_set(ic, 0, x->dtype, x->rank, os && !os->value ? NULL : y);
    return st;
}

/* Moves flat index i of shape from[] to the same coordinates in shape to[];
 * -1 when it lies outside either. */
static int64_t reindex(int64_t i, int rank, const int64_t *from, const int64_t *to)
{
    int64_t out = 0, scale = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int64_t c = i % from[d];
        i /= from[d];
        if (c >= to[d])
            return -1;
        out += c * scale;
        scale *= to[d];
    }
    return i ? -1 : out;
}

/* Indices refer to the default unpooled shape; with output_shape each value
 * keeps its coordinates in the (differently sized) output. */
hone_status eval_maxunpool(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *ix = ec->in[1];
    hone_tensor *y = ec->out[0];
    hone_tinfo xi;
    int64_t dflt[HONE_MAX_RANK];
    nn_tinfo_of(x, &xi);
    hone_status st = nn_unpool_dims(ec->ctx, ec->node, &xi, dflt);
    if (st)
        return st;
    if (ix->numel != x->numel || memcmp(ix->dims, x->dims, sizeof(int64_t) * (size_t)x->rank))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "I must have X's shape");
    const int64_t *idx = ix->data;
    size_t es = hone_dtype_size(x->dtype);
    memset(y->data, 0, hone_tensor_nbytes(y));
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t at = idx[i] < 0 ? -1 : reindex(idx[i], x->rank, dflt, y->dims);
        if (at < 0)
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                                  "index %lld at I[%lld] is outside the output", (long long)idx[i],
                                  (long long)i);
        memcpy((char *)y->data + (size_t)at * es, (const char *)x->data + (size_t)i * es, es);
    }
    return HONE_OK;
}
