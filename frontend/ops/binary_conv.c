/*
 * Binary networks (hone domain, docs/CUSTOM_OPS.md): the deployed binary
 * convolution and the training ops of the binarize pass.
 *
 * hone.BinaryConv(X, Wbits, alpha, [B], [T]) -> Y
 *   X float [N,C,H,W]; Wbits uint8 [M, ceil(C*kh*kw/8)]: the signs of the
 *   weights in ONNX order (j = (c*kh + ky)*kw + kx), bit j at byte j>>3, bit
 *   j&7, 1 = +1, 0 = -1; alpha float [M]; B float [M]; T float [C].
 *   Attributes: kernel_shape (required, 2-D), strides, pads, dilations,
 *   auto_pad, group (1 only), binary_input (0: a = x; 1: a = +1 where
 *   x >= T[c] (T absent: 0), else -1).
 *   Y[n,m,p] = alpha[m] * dot + B[m] in float32, dot = sum over the window
 *   taps inside the image of sign(w) * a: padded positions contribute 0, so
 *   Y equals Conv(a(X), alpha * sign(W), B) with zero padding. With
 *   binary_input the dot is an integer and the result is exact.
 *
 * hone.SignSTE(Q) -> B = +1 where Q >= 0, else -1 (attribute clip, default 1)
 *   backward (hone.SignSTEGrad(dB, Q) -> dQ): straight-through, dQ = dB
 *   where |Q| <= clip, else 0.
 *
 * hone.NoisyLabelLoss(Q, W) -> (loss, dQ)
 *   the unbiased estimator of the squared loss under symmetric label noise
 *   of rate rho (attribute, in [0, 0.5)) with the noisy label y = sign(W)
 *   (+1 where W >= 0): mean over elements of
 *   [(1-rho)(q-y)^2 - rho(q+y)^2] / (1-2rho); dQ = (2(q-y) - 4 rho y/(1-2rho)) / numel.
 *   W gets no gradient (the label).
 *
 * The interpreter's BinaryConv unpacks the signs and runs the float conv
 * kernel on a(X): with +-1 activations every partial sum is a small integer,
 * exact in float32, so the compiled XNOR kernel must match it bit for bit
 * (and the W1 kernel up to summation order).
 */
#include <math.h>
#include <stdlib.h>

#include "grad.h"
#include "hone_rt.h"

/* ===================== SignSTE ===================== */

hone_status infer_sign_ste(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 1);
    if (!st)
        hone_infer_set(ic, 0, HONE_DT_FLOAT, ic->in[0]->rank, ic->in[0]->dims);
    return st;
}

hone_status eval_sign_ste(hone_eval *ec)
{
    const hone_tensor *q = ec->in[0];
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, q->rank, q->dims);
    const float *x = q->data;
    float *y = st ? NULL : ec->out[0]->data;
    for (int64_t i = 0; y && i < q->numel; i++)
        y[i] = x[i] >= 0 ? 1.0f : -1.0f;
    return st;
}

hone_status infer_sign_ste_grad(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 2);
    if (!st)
        st = grad_same_shape(ic, ic->in[0], ic->in[1], "dB and Q");
    if (!st)
        hone_infer_set(ic, 0, HONE_DT_FLOAT, ic->in[1]->rank, ic->in[1]->dims);
    return st;
}

hone_status eval_sign_ste_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *q = ec->in[1];
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, q->rank, q->dims);
    float clip = hone_attr_float(ec->node, "clip", 1.0f);
    const float *d = dy->data, *x = q->data;
    float *dx = st ? NULL : ec->out[0]->data;
    for (int64_t i = 0; dx && i < q->numel; i++)
        dx[i] = fabsf(x[i]) <= clip ? d[i] : 0.0f;
    return st;
}

/* ===================== NoisyLabelLoss ===================== */

hone_status infer_noisy_label_loss(hone_infer *ic)
{
    float rho = hone_attr_float(ic->node, "rho", 0.0f);
    hone_status st = grad_infer_f32(ic, 2);
    if (!st)
        st = grad_same_shape(ic, ic->in[0], ic->in[1], "Q and W");
    if (!st && !(rho >= 0 && rho < 0.5f))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "rho %g is not in [0, 0.5)",
                            rho);
    if (st)
        return st;
    hone_infer_set(ic, 0, HONE_DT_FLOAT, 0, NULL);
    grad_infer_as(ic, 1, ic->in[0]);
    return HONE_OK;
}

hone_status eval_noisy_label_loss(hone_eval *ec)
{
    const hone_tensor *q = ec->in[0], *w = ec->in[1];
    double rho = hone_attr_float(ec->node, "rho", 0.0f), den = 1.0 - 2.0 * rho, sum = 0;
    double inv = q->numel ? 1.0 / (double)q->numel : 0.0;
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, 0, NULL);
    if (!st && grad_wants(ec->node, 1))
        st = hone_eval_alloc(ec, 1, HONE_DT_FLOAT, q->rank, q->dims);
    if (st)
        return st;
    const float *qv = q->data, *wv = w->data;
    float *g = grad_wants(ec->node, 1) ? ec->out[1]->data : NULL;
    for (int64_t i = 0; i < q->numel; i++) {
        double y = wv[i] >= 0 ? 1.0 : -1.0, x = qv[i];
        sum += ((1 - rho) * (x - y) * (x - y) - rho * (x + y) * (x + y)) / den;
        if (g)
            g[i] = (float)((2 * (x - y) - 4 * rho * y / den) * inv);
    }
    *(float *)ec->out[0]->data = (float)(sum * inv);
    return HONE_OK;
}

/* ===================== BinaryConv ===================== */

/* Fails unless input i (when present) is a float vector of n elements. */
static hone_status check_vec(hone_infer *ic, int i, int64_t n, const char *what)
{
    const hone_tinfo *t = i < ic->n_in ? ic->in[i] : NULL;
    if (!t || t->rank < 0)
        return HONE_OK;
    if ((t->dtype && t->dtype != HONE_DT_FLOAT) || t->rank != 1 ||
        (n >= 0 && t->dims[0] >= 0 && t->dims[0] != n))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "%s must be a float vector of %lld elements", what, (long long)n);
    return HONE_OK;
}

/* Window of a BinaryConv over x's extents (kernel from kernel_shape). */
static hone_status window_of(hone_ctx *ctx, const hone_node *n, const int64_t *xdims,
                             hone_rt_window *w)
{
    const int64_t *k;
    if (hone_attr_ints(n, "kernel_shape", &k) != 2 || k[0] < 1 || k[1] < 1)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID,
                              "kernel_shape must hold two positive extents (2-D only)");
    if (hone_attr_int(n, "group", 1) != 1)
        return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "group must be 1");
    return nn_window(ctx, n, 2, xdims + 2, k, (nn_window_opts){0}, w);
}

/* Fails unless W's packed rows fit C*kh*kw signs. */
static hone_status check_bits(hone_infer *ic, int64_t c, const hone_rt_window *w)
{
    const hone_tinfo *b = ic->in[1];
    if (b->dtype && b->dtype != HONE_DT_UINT8)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "Wbits must be uint8, got %s",
                              hone_dtype_name(b->dtype));
    if (b->rank >= 0 && b->rank != 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "Wbits must be [M, bytes]");
    int64_t want = c >= 0 ? (int64_t)hone_rt_binconv_row_bytes(c * w->k[0] * w->k[1]) : -1;
    if (b->rank == 2 && want >= 0 && b->dims[1] >= 0 && b->dims[1] != want)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "Wbits rows have %lld bytes, %lld channels x %lldx%lld need %lld",
                              (long long)b->dims[1], (long long)c, (long long)w->k[0],
                              (long long)w->k[1], (long long)want);
    return HONE_OK;
}

hone_status infer_binary_conv(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *b = ic->in[1];
    hone_rt_window w;
    int64_t xd[4] = {-1, -1, -1, -1};
    if (x->dtype && x->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "X must be float32");
    if (x->rank >= 0 && x->rank != 4)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "X must be [N, C, H, W]");
    for (int i = 0; x->rank == 4 && i < 4; i++)
        xd[i] = x->dims[i] >= 0 ? x->dims[i] : -1;
    int64_t m = b->rank == 2 ? b->dims[0] : -1;
    hone_status st = window_of(ic->ctx, ic->node, xd, &w);
    if (!st)
        st = check_bits(ic, xd[1], &w);
    if (!st)
        st = check_vec(ic, 2, m, "alpha");
    if (!st)
        st = check_vec(ic, 3, m, "B");
    if (!st)
        st = check_vec(ic, 4, xd[1], "T");
    if (st)
        return st;
    int64_t y[4] = {x->rank == 4 ? x->dims[0] : HONE_DIM_UNKNOWN, m >= 0 ? m : HONE_DIM_UNKNOWN,
                    w.out[0] >= 0 ? w.out[0] : HONE_DIM_UNKNOWN,
                    w.out[1] >= 0 ? w.out[1] : HONE_DIM_UNKNOWN};
    hone_infer_set(ic, 0, HONE_DT_FLOAT, 4, y);
    return HONE_OK;
}

/* a(X): X itself, or +1 where X >= T[c] (T absent: 0) and -1 elsewhere, into a. */
static void activations(const hone_tensor *x, bool binary, const float *t, float *a)
{
    int64_t c = x->dims[1], hw = x->dims[2] * x->dims[3];
    const float *xv = x->data;
    for (int64_t i = 0; i < x->numel; i++) {
        float th = t ? t[(i / hw) % c] : 0.0f;
        a[i] = binary ? (xv[i] >= th ? 1.0f : -1.0f) : xv[i];
    }
}

/* The signs of the packed rows as +-1 floats [m, k]. */
static void unpack_signs(const uint8_t *bits, int64_t m, int64_t k, float *w)
{
    for (int64_t o = 0; o < m; o++)
        for (int64_t j = 0; j < k; j++)
            w[o * k + j] = hone_rt_binconv_bit(bits, k, o, j) ? 1.0f : -1.0f;
}

/* Y = alpha * Conv(a(X), sign W) + B: the dot through the float conv kernel
 * (with +-1 inputs every partial sum is a small integer, so it is exact). */
hone_status eval_binary_conv(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *b = ec->in[1];
    hone_rt_window w;
    hone_status st = window_of(ec->ctx, ec->node, x->dims, &w);
    int64_t n = x->dims[0], c = x->dims[1], m = b->dims[0], k = c * w.k[0] * w.k[1];
    int64_t yd[4] = {n, m, w.out[0], w.out[1]};
    if (!st)
        st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, 4, yd);
    float *a = NULL, *wf = NULL, *scratch = NULL;
    if (!st)
        st = nn_scratch(ec, (size_t)x->numel, &a);
    if (!st)
        st = nn_scratch(ec, (size_t)(m * k), &wf);
    if (!st)
        st = nn_scratch(ec, hone_rt_conv_scratch(&w, c, m, 1), &scratch);
    if (!st) {
        const float *alpha = ec->in[2]->data;
        const float *bias = ec->n_in > 3 && ec->in[3] ? ec->in[3]->data : NULL;
        const float *t = ec->n_in > 4 && ec->in[4] ? ec->in[4]->data : NULL;
        float *y = ec->out[0]->data;
        int64_t ohw = w.out[0] * w.out[1];
        activations(x, hone_attr_int(ec->node, "binary_input", 0) != 0, t, a);
        unpack_signs(b->data, m, k, wf);
        hone_rt_conv(&w, n, c, m, 1, a, wf, NULL, y, scratch);
        for (int64_t i = 0; i < n * m * ohw; i++) {
            int64_t o = (i / ohw) % m;
            y[i] = alpha[o] * y[i] + (bias ? bias[o] : 0.0f);
        }
    }
    free(a);
    free(wf);
    free(scratch);
    return st;
}
