/*
 * AdderNet ops (hone domain, documented in docs/CUSTOM_OPS.md):
 *
 *   Adder2d(X, W) -> Y            Y[n,o,p] = -sum_{c,k} |X[n,c,p+k] - W[o,c,k]|
 *       Conv's attributes (auto_pad, dilations, group, kernel_shape, pads,
 *       strides) and shape rule; a padded tap is 0 and adds -|w|.
 *   AdderGrad(dY, X, W) -> dX, dW AdderNet's backward (runtime/adder.c): dW
 *       the full-precision sum (X - W) dY, dX the HardTanh sum
 *       clamp(W - X, -1, 1) dY; an absent output is not computed.
 *   SignedPower(X, alpha) -> Y    Y = sign(X) |X|^alpha, alpha a float
 *       scalar (AdderSR's learnable power activation; alpha = 1 is identity).
 *   SignedPowerGrad(dY, X, alpha) -> dX, dalpha
 *       dX = dY alpha |X|^(alpha-1) (|X| floored at 1e-6), dalpha =
 *       sum dY sign(X) |X|^alpha ln|X| (0 where X = 0).
 *
 * Shapes come from the Conv row of the op table (through a view without a
 * bias), so an Adder2d always has the shape of the Conv it replaced. All
 * four ops compute in float32, like the training family.
 */
#include <math.h>
#include <stdlib.h>

#include "grad.h"

/* ===================== Adder2d ===================== */

/* Window of X[N,C,in...] under W[M,C/g,k...] and the node's conv attributes. */
static hone_status adder_window(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                                const hone_tinfo *wt, hone_rt_window *w)
{
    int64_t in[HONE_RT_MAX_SPATIAL], k[HONE_RT_MAX_SPATIAL];
    int64_t g = hone_attr_int(n, "group", 1);
    if (x->rank < 3 || x->rank != wt->rank || x->rank - 2 > HONE_RT_MAX_SPATIAL)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "X (rank %d) and W (rank %d) do not fit",
                              x->rank, wt->rank);
    if (g < 1 || x->dims[1] % g || x->dims[1] / g != wt->dims[1] || wt->dims[0] % g)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "channels do not fit group %lld",
                              (long long)g);
    for (int d = 0; d + 2 < x->rank; d++) {
        in[d] = x->dims[d + 2];
        k[d] = wt->dims[d + 2];
    }
    return nn_window(ctx, n, x->rank - 2, in, k, (nn_window_opts){0}, w);
}

/* Window positions per im2col tile: about 1 MiB of columns, as compiled convs use. */
static int64_t adder_cols(const hone_rt_window *w, int64_t rows)
{
    int64_t cols = ((int64_t)1 << 18) / (rows > 0 ? rows : 1), total = hone_rt_window_out_numel(w);
    cols = cols < 64 ? 64 : cols;
    return cols < total ? cols : total;
}

hone_status infer_adder2d(hone_infer *ic)
{
    hone_op c = hone_op_lookup("", "Conv");
    hone_status st = grad_infer_f32(ic, 2);
    if (!st && c == HONE_OP_UNKNOWN)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                            "Adder2d takes Conv's shape rule, which this build lacks");
    return st ? st : hone_op_table[c].infer(ic);
}

hone_status eval_adder2d(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *wt = ec->in[1];
    hone_tinfo xi, wi;
    hone_rt_window w;
    if (x->dtype != HONE_DT_FLOAT || wt->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_UNSUPPORTED, "Adder2d is float32 only");
    nn_tinfo_of(x, &xi);
    nn_tinfo_of(wt, &wi);
    hone_status st = adder_window(ec->ctx, ec->node, &xi, &wi, &w);
    if (st)
        return st;
    int64_t g = hone_attr_int(ec->node, "group", 1);
    int64_t cols = adder_cols(&w, x->dims[1] / g * hone_rt_window_k_numel(&w));
    float *scratch;
    /* training: images over the kernel pool; otherwise what compiled code computes */
    hone_rt_pool *pool = hone_rt_kernel_pool_active() ? hone_rt_kernel_pool() : NULL;
    st = nn_scratch(ec, hone_rt_adder_pool_scratch(&w, x->dims[1], g, cols, hone_rt_pool_size(pool)),
                    &scratch);
    if (st)
        return st;
    if (pool)
        hone_rt_adder_pool(pool, &w, x->dims[0], x->dims[1], wt->dims[0], g, x->data, wt->data,
                           ec->out[0]->data, scratch, cols);
    else
        hone_rt_adder(&w, x->dims[0], x->dims[1], wt->dims[0], g, x->data, wt->data,
                      ec->out[0]->data, scratch, cols);
    free(scratch);
    return HONE_OK;
}

/* ===================== AdderGrad ===================== */

hone_status infer_adder_grad(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 3);
    if (st)
        return st;
    grad_infer_as(ic, 0, ic->in[1]);
    grad_infer_as(ic, 1, ic->in[2]);
    return HONE_OK;
}

hone_status eval_adder_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *x = ec->in[1], *wt = ec->in[2];
    hone_tinfo xi, wi;
    hone_rt_window w;
    nn_tinfo_of(x, &xi);
    nn_tinfo_of(wt, &wi);
    hone_status st = adder_window(ec->ctx, ec->node, &xi, &wi, &w);
    int64_t g = hone_attr_int(ec->node, "group", 1);
    if (!st && (dy->rank != x->rank || dy->dims[0] != x->dims[0] || dy->dims[1] != wt->dims[0] ||
                dy->numel != x->dims[0] * wt->dims[0] * hone_rt_window_out_numel(&w)))
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                            "dY does not have the forward output's shape");
    if (st)
        return st;
    int64_t cols = adder_cols(&w, x->dims[1] / g * hone_rt_window_k_numel(&w));
    float *scratch;
    hone_rt_pool *pool = hone_rt_kernel_pool();
    st = nn_scratch(ec,
                    hone_rt_adder_grad_pool_scratch(&w, x->dims[1], wt->dims[0], g, cols,
                                                    hone_rt_pool_size(pool)),
                    &scratch);
    if (st)
        return st;
    hone_rt_adder_grad_pool(pool, &w, x->dims[0], x->dims[1], wt->dims[0], g, x->data, wt->data,
                            dy->data, grad_wants(ec->node, 0) ? ec->out[0]->data : NULL,
                            grad_wants(ec->node, 1) ? ec->out[1]->data : NULL, scratch, cols);
    free(scratch);
    return HONE_OK;
}

/* ===================== SignedPower ===================== */

/* Fails unless input i is a one-element float tensor. */
static hone_status check_alpha(hone_infer *ic, int i)
{
    const hone_tinfo *a = ic->in[i];
    int64_t numel = 1;
    for (int d = 0; d < a->rank; d++)
        numel *= a->dims[d] < 0 ? 1 : a->dims[d];
    if (a->rank > 1 || numel != 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "alpha must be a scalar (one float)");
    return HONE_OK;
}

hone_status infer_signed_power(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 2);
    if (!st)
        st = check_alpha(ic, 1);
    if (!st)
        grad_infer_as(ic, 0, ic->in[0]);
    return st;
}

hone_status eval_signed_power(hone_eval *ec)
{
    const float *x = ec->in[0]->data;
    float a = ((const float *)ec->in[1]->data)[0], *y = ec->out[0]->data;
    for (int64_t i = 0; i < ec->in[0]->numel; i++)
        y[i] = copysignf(powf(fabsf(x[i]), a), x[i]);
    return HONE_OK;
}

hone_status infer_signed_power_grad(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 3);
    if (!st)
        st = check_alpha(ic, 2);
    if (st)
        return st;
    grad_infer_as(ic, 0, ic->in[1]);
    grad_infer_as(ic, 1, ic->in[2]);
    return HONE_OK;
}

hone_status eval_signed_power_grad(hone_eval *ec)
{
    const float *dy = ec->in[0]->data, *x = ec->in[1]->data;
    float a = ((const float *)ec->in[2]->data)[0];
    float *dx = grad_wants(ec->node, 0) ? ec->out[0]->data : NULL;
    double da = 0;
    for (int64_t i = 0; i < ec->in[1]->numel; i++) {
        float ax = fabsf(x[i]), p = powf(ax > 1e-6f ? ax : 1e-6f, a - 1.0f);
        if (dx)
            dx[i] = dy[i] * a * p;
        if (ax > 0)
            da += (double)dy[i] * copysignf(powf(ax, a), x[i]) * logf(ax);
    }
    if (grad_wants(ec->node, 1))
        ((float *)ec->out[1]->data)[0] = (float)da;
    return HONE_OK;
}
