/*
 * Neural-network training ops: backward of Conv, BatchNormalization, the
 * pools and softmax, and BatchNormalization's training-mode forward.
 *
 *   ConvGrad(dY, X, W) -> dX, dW, dB        Conv's attributes; absent outputs
 *                                           are skipped (frozen or input side)
 *   BatchNormTrain(X, scale, B) -> Y, mean, invstd[, var]   batch statistics
 *       (invstd from the population variance; var is the unbiased variance
 *       that running statistics accumulate)
 *   BatchNormGrad(dY, X, scale, mean, s) -> dX, dscale, dB
 *       batch_stats = 1: s is BatchNormTrain's invstd and the statistics
 *       depend on X; batch_stats = 0: mean and s are running mean and var
 *       (inference-form BN, constants; epsilon as in the forward)
 *   MaxPoolGrad(dY, I, X) -> dX             I: the forward's Indices output
 *   AveragePoolGrad(dY, X) -> dX            AveragePool's attributes
 *   GlobalPoolGrad(dY, X) -> dX             mode "avg" or "max"
 *   SoftmaxGrad(dY, Y) -> dX                axis (normalised), log = 1 for
 *                                           LogSoftmax, legacy = 1 for the
 *                                           2-D coercion of opsets < 13
 *
 * Window geometry is recomputed from the copied forward attributes with the
 * nn family's nn_window, so forward and backward can never disagree on it.
 */
#include <stdlib.h>

#include "grad.h"

/* Fails unless dY has shape [N, M, out...] for the window w. */
static hone_status check_dy(hone_ctx *ctx, const hone_node *n, const hone_tinfo *dy, int64_t b,
                            int64_t m, const hone_rt_window *w)
{
    bool ok = dy->rank < 0 || dy->rank == w->nsp + 2;
    int64_t want[HONE_MAX_RANK] = {b, m};
    for (int d = 0; d < w->nsp; d++)
        want[d + 2] = w->out[d];
    for (int i = 0; ok && i < dy->rank; i++)
        ok = dy->dims[i] < 0 || want[i] < 0 || dy->dims[i] == want[i];
    if (!ok)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "gradient shape does not match the forward output");
    return HONE_OK;
}

/* ===================== ConvGrad ===================== */

/* The conv window of X[N,C,in...] under W[M,C/g,k...] and the node's attributes. */
static hone_status conv_grad_window(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                                    const hone_tinfo *wt, hone_rt_window *w)
{
    int64_t in[HONE_RT_MAX_SPATIAL], k[HONE_RT_MAX_SPATIAL];
    int64_t g = hone_attr_int(n, "group", 1);
    if (x->rank < 3 || x->rank != wt->rank)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "X (rank %d) and W (rank %d) do not fit",
                              x->rank, wt->rank);
    if (g < 1 || (x->dims[1] >= 0 && (x->dims[1] % g || (wt->dims[1] >= 0 &&
                                                          x->dims[1] / g != wt->dims[1]))) ||
        (wt->dims[0] >= 0 && wt->dims[0] % g))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "channels do not fit group %lld",
                              (long long)g);
    for (int d = 0; d + 2 < x->rank; d++) {
        in[d] = x->dims[d + 2];
        k[d] = wt->dims[d + 2];
    }
    return nn_window(ctx, n, x->rank - 2, in, k, (nn_window_opts){0}, w);
}

hone_status infer_conv_grad(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *x = ic->in[1], *wt = ic->in[2];
    hone_rt_window w;
    hone_status st = grad_infer_f32(ic, 3);
    if (!st && x->rank >= 0 && wt->rank >= 0)
        st = conv_grad_window(ic->ctx, ic->node, x, wt, &w);
    if (!st && x->rank >= 0 && wt->rank >= 0)
        st = check_dy(ic->ctx, ic->node, dy, x->dims[0], wt->dims[0], &w);
    if (st)
        return st;
    int64_t m = nn_dim(wt, 0);
    grad_infer_as(ic, 0, x);
    grad_infer_as(ic, 1, wt);
    if (grad_wants(ic->node, 2))
        hone_infer_set(ic, 2, HONE_DT_FLOAT, 1, &m);
    return HONE_OK;
}

/* Data of output i, or NULL when the node does not produce it. */
static float *out_f32(hone_eval *ec, int i)
{
    return grad_wants(ec->node, i) ? ec->out[i]->data : NULL;
}

hone_status eval_conv_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *x = ec->in[1], *wt = ec->in[2];
    hone_tinfo xi, wi;
    hone_rt_window w;
    nn_tinfo_of(x, &xi);
    nn_tinfo_of(wt, &wi);
    hone_status st = conv_grad_window(ec->ctx, ec->node, &xi, &wi, &w);
    if (st)
        return st;
    int64_t g = hone_attr_int(ec->node, "group", 1);
    float *scratch;
    hone_rt_pool *pool = hone_rt_kernel_pool();
    st = nn_scratch(ec,
                    hone_rt_conv_grad_pool_scratch(&w, x->dims[1], wt->dims[0], g,
                                                   hone_rt_pool_size(pool)),
                    &scratch);
    if (st)
        return st;
    hone_rt_conv_grad_pool(pool, &w, x->dims[0], x->dims[1], wt->dims[0], g, x->data, wt->data,
                           dy->data, out_f32(ec, 0), out_f32(ec, 1), out_f32(ec, 2), scratch);
    free(scratch);
    return HONE_OK;
}

/* ===================== BatchNormTrain / BatchNormGrad ===================== */

/* Fails unless X has rank >= 2 and inputs [first, last] are vectors of X's channel count. */
static hone_status check_channels(hone_infer *ic, int xi, int first, int last)
{
    const hone_tinfo *x = ic->in[xi];
    if (x->rank >= 0 && x->rank < 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "X must have rank >= 2 ([N, C, ...]), got %d", x->rank);
    int64_t c = nn_dim(x, 1);
    for (int i = first; i <= last; i++) {
        const hone_tinfo *t = ic->in[i];
        if (t->rank >= 0 && (t->rank != 1 || (c >= 0 && t->dims[0] >= 0 && t->dims[0] != c)))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "input %d must have shape [%lld] (one value per channel)", i,
                                  (long long)c);
    }
    return HONE_OK;
}

hone_status infer_bn_train(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_status st = grad_infer_f32(ic, 3);
    if (!st)
        st = check_channels(ic, 0, 1, 2);
    if (st)
        return st;
    int64_t c = nn_dim(x, 1);
    grad_infer_as(ic, 0, x);
    for (int i = 1; i < ic->n_out; i++)
        if (grad_wants(ic->node, i))
            hone_infer_set(ic, i, HONE_DT_FLOAT, 1, &c);
    return HONE_OK;
}

hone_status eval_bn_train(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t n = x->dims[0], c = x->dims[1], plane = nn_prod(x->dims, 2, x->rank);
    float *stats;
    hone_status st = nn_scratch(ec, 2 * (size_t)c, &stats);
    if (st)
        return st;
    float *mean = out_f32(ec, 1), *invstd = out_f32(ec, 2);
    hone_rt_bn_train(n, c, plane, x->data, ec->in[1]->data, ec->in[2]->data,
                     hone_attr_float(ec->node, "epsilon", 1e-5f), out_f32(ec, 0),
                     mean ? mean : stats, invstd ? invstd : stats + c, out_f32(ec, 3));
    free(stats);
    return HONE_OK;
}

hone_status infer_bn_grad(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *x = ic->in[1];
    hone_status st = grad_infer_f32(ic, 5);
    if (!st)
        st = check_channels(ic, 1, 2, 4);
    if (!st)
        st = grad_same_shape(ic, dy, x, "dY and X");
    if (st)
        return st;
    grad_infer_as(ic, 0, x);
    grad_infer_as(ic, 1, ic->in[2]);
    grad_infer_as(ic, 2, ic->in[2]);
    return HONE_OK;
}

hone_status eval_bn_grad(hone_eval *ec)
{
    const hone_tensor *x = ec->in[1];
    int64_t n = x->dims[0], c = x->dims[1], plane = nn_prod(x->dims, 2, x->rank);
    bool batch = hone_attr_int(ec->node, "batch_stats", 1) != 0;
    const float *s = ec->in[4]->data;
    float *invstd = NULL;
    if (!batch) {
        float eps = hone_attr_float(ec->node, "epsilon", 1e-5f);
        hone_status st = nn_scratch(ec, (size_t)c, &invstd);
        if (st)
            return st;
        for (int64_t i = 0; i < c; i++)
            invstd[i] = 1.0f / sqrtf(s[i] + eps);
    }
    hone_rt_bn_grad(n, c, plane, ec->in[0]->data, x->data, ec->in[2]->data, ec->in[3]->data,
                    batch ? s : invstd, batch, out_f32(ec, 0), out_f32(ec, 1), out_f32(ec, 2));
    free(invstd);
    return HONE_OK;
}

/* ===================== pools ===================== */

/* MaxPoolGrad: dY and int64 indices I of one shape, X the forward input. */
hone_status infer_maxpool_grad(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *ix = ic->in[1];
    hone_status st = grad_infer_f32(ic, 1);
    if (!st && ix->dtype != HONE_DT_UNDEF && ix->dtype != HONE_DT_INT64)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "I must be int64, got %s",
                            hone_dtype_name(ix->dtype));
    if (!st && hone_tinfo_static(dy) && hone_tinfo_static(ix) &&
        nn_prod(dy->dims, 0, dy->rank) != nn_prod(ix->dims, 0, ix->rank))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "dY and I differ in size");
    if (!st)
        grad_infer_as(ic, 0, ic->in[2]);
    return st;
}

hone_status eval_maxpool_grad(hone_eval *ec)
{
    hone_tensor *dx = ec->out[0];
    if (!hone_rt_maxpool_grad(ec->in[0]->numel, ec->in[0]->data, ec->in[1]->data, dx->numel,
                              dx->data))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                              "an index in I is outside X (%lld elements)", (long long)dx->numel);
    return HONE_OK;
}

/* The AveragePool window over X[N,C,in...] from the node's attributes. */
static hone_status avg_window(hone_ctx *ctx, const hone_node *n, const hone_tensor *x,
                              hone_rt_window *w)
{
    int64_t k[HONE_RT_MAX_SPATIAL];
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > HONE_RT_MAX_SPATIAL)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "X must have rank 3..%d, got %d",
                              HONE_RT_MAX_SPATIAL + 2, x->rank);
    const int64_t *ks;
    if (hone_attr_ints(n, "kernel_shape", &ks) < 0)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute 'kernel_shape' is required");
    hone_status st = nn_ints_attr(ctx, n, "kernel_shape", nsp, 1, 1, k);
    nn_window_opts o = {hone_attr_int(n, "ceil_mode", 0) != 0, true};
    return st ? st : nn_window(ctx, n, nsp, x->dims + 2, k, o, w);
}

hone_status eval_avgpool_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *x = ec->in[1];
    hone_rt_window w;
    hone_tinfo dyi;
    float *scratch;
    hone_status st = avg_window(ec->ctx, ec->node, x, &w);
    nn_tinfo_of(dy, &dyi);
    if (!st)
        st = check_dy(ec->ctx, ec->node, &dyi, x->dims[0], x->dims[1], &w);
    if (!st)
        st = nn_scratch(ec, hone_rt_avgpool_grad_scratch(&w), &scratch);
    if (st)
        return st;
    hone_rt_avgpool_grad(&w, x->dims[0] * x->dims[1], dy->data,
                         hone_attr_int(ec->node, "count_include_pad", 0) != 0, ec->out[0]->data,
                         scratch);
    free(scratch);
    return HONE_OK;
}

hone_status eval_global_pool_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *x = ec->in[1];
    const char *mode = hone_attr_str(ec->node, "mode", "avg");
    bool max = !strcmp(mode, "max");
    if (!max && strcmp(mode, "avg"))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID, "unknown mode '%s'", mode);
    if (x->rank < 2 || dy->numel != x->dims[0] * x->dims[1])
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                              "dY must hold one value per (image, channel) of X");
    int64_t planes = x->dims[0] * x->dims[1];
    hone_rt_global_pool_grad(max ? HONE_RT_GPOOL_MAX : HONE_RT_GPOOL_AVG, planes,
                             nn_prod(x->dims, 2, x->rank), x->data, dy->data, ec->out[0]->data);
    return HONE_OK;
}

/* ===================== SoftmaxGrad ===================== */

hone_status infer_softmax_grad(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *y = ic->in[1];
    hone_status st = grad_infer_f32(ic, 2);
    int64_t axis = hone_attr_int(ic->node, "axis", -1);
    int limit = hone_attr_int(ic->node, "legacy", 0) ? y->rank : y->rank - 1;
    if (!st && y->rank >= 0 && (axis < 0 || axis > limit))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                            "axis %lld is out of range for rank %d", (long long)axis, y->rank);
    if (!st)
        st = grad_same_shape(ic, dy, y, "dY and Y");
    if (!st)
        grad_infer_as(ic, 0, y);
    return st;
}

hone_status eval_softmax_grad(hone_eval *ec)
{
    const hone_tensor *y = ec->in[1];
    int axis = (int)hone_attr_int(ec->node, "axis", -1);
    int64_t outer, len, inner;
    nn_split_axis(y->rank, y->dims, axis, &outer, &len, &inner);
    if (hone_attr_int(ec->node, "legacy", 0)) {
        len = nn_prod(y->dims, axis, y->rank);
        inner = 1;
    }
    hone_rt_softmax_grad(hone_attr_int(ec->node, "log", 0) != 0, outer, len, inner, y->data,
                         ec->in[0]->data, ec->out[0]->data);
    return HONE_OK;
}
