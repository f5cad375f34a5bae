/*
 * Conv and ConvTranspose: shape rules and the interpreter kernels.
 *
 * One shape function per op serves both inference (dims may be unknown or
 * symbolic) and evaluation (all dims known), so the interpreter runs the
 * kernel on exactly the geometry inference validated. The float kernels are
 * hone_rt_conv (im2col + sgemm per group) and hone_rt_conv_transpose (sgemm +
 * col2im); this file only checks shapes, resolves padding and stages data.
 *
 * ConvTranspose output extent per dim (ek = (k-1)*dilation + 1):
 *   out = s*(in-1) + output_padding + ek - pb - pe
 * With output_shape (or auto_pad SAME_*, where output_shape = in*s), the
 * pads are derived instead: total = s*(in-1) + output_padding + ek - out, split
 * with floor division, the larger half at the end for SAME_UPPER and at the
 * start otherwise. A negative total widens the output with bias-only borders.
 */
#include <stdlib.h>

#include "nn.h"

/* Fails unless channels fit groups: in_c == per_group * g and g divides split_c. */
static hone_status check_groups(hone_ctx *ctx, const hone_node *n, int64_t g, int64_t in_c,
                                int64_t per_group, int64_t split_c, const char *split_name)
{
    if (g < 1 || g > ctx->limits.max_dim)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "group %lld is out of range",
                              (long long)g);
    if (in_c >= 0 && per_group >= 0 && (in_c % g || in_c / g != per_group))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "X has %lld channels but W expects %lld per group x group %lld",
                              (long long)in_c, (long long)per_group, (long long)g);
    if (split_c >= 0 && split_c % g)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "%s %lld is not divisible by group %lld",
                              split_name, (long long)split_c, (long long)g);
    return HONE_OK;
}

/* Kernel extents: W's spatial dims, checked against the kernel_shape attribute
 * (which also fills in dims W leaves unknown). */
static hone_status kernel_dims(hone_ctx *ctx, const hone_node *n, const hone_tinfo *wt, int nsp,
                               int64_t *k)
{
    const int64_t *a;
    int cnt = hone_attr_ints(n, "kernel_shape", &a);
    if (cnt >= 0 && cnt != nsp)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "kernel_shape has %d values, expected %d",
                              cnt, nsp);
    for (int d = 0; d < nsp; d++) {
        k[d] = nn_dim(wt, d + 2);
        if (cnt < 0)
            continue;
        if (k[d] >= 0 && a[d] != k[d])
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                                  "kernel_shape[%d] = %lld but W has kernel extent %lld", d,
                                  (long long)a[d], (long long)k[d]);
        if (a[d] < 1 || a[d] > ctx->limits.max_dim)
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "kernel_shape[%d] = %lld is invalid",
                                  d, (long long)a[d]);
        k[d] = a[d];
    }
    return HONE_OK;
}

/* Rank shared by X and W (W first, as X may be unknown); *r = -1 when neither is known. */
static hone_status conv_rank(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                             const hone_tinfo *wt, int *r)
{
    *r = wt->rank >= 0 ? wt->rank : x->rank;
    if (*r < 0)
        return HONE_OK;
    if (*r < 3)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "X and W need rank >= 3 ([N, C, spatial...]), got rank %d", *r);
    if (x->rank >= 0 && x->rank != *r)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "X has rank %d but W has rank %d", x->rank,
                              wt->rank);
    return HONE_OK;
}

/* Fails unless the optional bias B is a vector of m elements. */
static hone_status check_bias(hone_ctx *ctx, const hone_node *n, const hone_tinfo *b, int64_t m)
{
    if (!b || b->rank < 0)
        return HONE_OK;
    if (b->rank != 1 || (b->dims[0] >= 0 && m >= 0 && b->dims[0] != m))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "B must have shape [%lld], got rank %d%s",
                              (long long)m, b->rank, b->rank == 1 ? " with another length" : "");
    return HONE_OK;
}

/* Conv: X[N,C,D1..Dn] * W[M,C/group,k1..kn] (+ B[M]) -> Y[N,M,o1..on]. */
static hone_status conv_shape(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                              const hone_tinfo *wt, hone_rt_window *w, int *rank, int64_t *y)
{
    int64_t k[HONE_MAX_RANK], in[HONE_MAX_RANK];
    hone_status st = conv_rank(ctx, n, x, wt, rank);
    if (st || *rank < 0)
        return st;
    int nsp = *rank - 2;
    int64_t g = hone_attr_int(n, "group", 1), m = nn_dim(wt, 0);
    st = check_groups(ctx, n, g, nn_dim(x, 1), nn_dim(wt, 1), m, "output channel count M");
    if (!st)
        st = kernel_dims(ctx, n, wt, nsp, k);
    for (int d = 0; d < nsp; d++)
        in[d] = nn_dim(x, d + 2);
    if (!st)
        st = nn_window(ctx, n, nsp, in, k, (nn_window_opts){0}, w);
    y[0] = nn_dim(x, 0);
    y[1] = m;
    for (int d = 0; d < nsp && !st; d++)
        y[d + 2] = w->out[d];
    return st;
}

/* Shape rule of Conv or ConvTranspose, usable by infer and eval alike. */
typedef hone_status (*conv_shape_fn)(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                                     const hone_tinfo *wt, hone_rt_window *w, int *rank,
                                     int64_t *y);

/* Infers Y of Conv or ConvTranspose through its shape rule, checking B. */
static hone_status infer_with(hone_infer *ic, conv_shape_fn shape)
{
    hone_rt_window w;
    int64_t y[HONE_MAX_RANK];
    int rank;
    hone_status st = nn_infer_floats(ic, 3, true);
    if (!st)
        st = shape(ic->ctx, ic->node, ic->in[0], ic->in[1], &w, &rank, y);
    if (!st)
        st = check_bias(ic->ctx, ic->node, ic->n_in > 2 ? ic->in[2] : NULL, rank > 1 ? y[1] : -1);
    if (!st)
        hone_infer_set(ic, 0, ic->in[0]->dtype, rank, y);
    return st;
}

/* Runs a staged float kernel for Conv (transpose = false) or ConvTranspose. */
static hone_status run_conv(hone_eval *ec, const hone_rt_window *w, bool transpose)
{
    const hone_tensor *x = ec->in[0], *y = ec->out[0];
    int64_t g = hone_attr_int(ec->node, "group", 1);
    hone_rt_pool *pool = hone_rt_kernel_pool();
    bool batch = !transpose && hone_rt_kernel_pool_active();
    size_t need = transpose ? hone_rt_conv_transpose_scratch(w, y->dims[1], g)
                  : batch   ? hone_rt_conv_batch_scratch(w, x->dims[1], y->dims[1], g,
                                                         hone_rt_pool_size(pool))
                            : hone_rt_conv_scratch(w, x->dims[1], y->dims[1], g);
    nn_stage s;
    float *scratch;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    st = nn_scratch(ec, need, &scratch);
    if (!st && transpose)
        hone_rt_conv_transpose(w, x->dims[0], x->dims[1], y->dims[1], g, s.in[0], s.in[1],
                               s.in[2], s.out[0], scratch);
    else if (!st && batch)
        hone_rt_conv_batch(pool, w, x->dims[0], x->dims[1], y->dims[1], g, s.in[0], s.in[1],
                           s.in[2], s.out[0], scratch);
    else if (!st)
        hone_rt_conv(w, x->dims[0], x->dims[1], y->dims[1], g, s.in[0], s.in[1], s.in[2],
                     s.out[0], scratch);
    free(scratch);
    nn_stage_end(ec, &s);
    return st;
}

/* Evaluates Conv or ConvTranspose on the geometry its shape rule gives. */
static hone_status eval_with(hone_eval *ec, conv_shape_fn shape, bool transpose)
{
    hone_tinfo x, wt;
    hone_rt_window w;
    int64_t y[HONE_MAX_RANK];
    int rank;
    nn_tinfo_of(ec->in[0], &x);
    nn_tinfo_of(ec->in[1], &wt);
    hone_status st = shape(ec->ctx, ec->node, &x, &wt, &w, &rank, y);
    return st ? st : run_conv(ec, &w, transpose);
}

hone_status infer_conv(hone_infer *ic)
{
    return infer_with(ic, conv_shape);
}

hone_status eval_conv(hone_eval *ec)
{
    return eval_with(ec, conv_shape, false);
}

/* Python-style floor division (the pad split rule uses it on negative totals). */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The requested output extents: the output_shape attribute (its last nsp
 * values), in*stride under auto_pad SAME_*, or none (returns false). */
static hone_status transpose_target(hone_ctx *ctx, const hone_node *n, int nsp,
                                    const hone_rt_window *w, int64_t *os, bool *have)
{
    const int64_t *a;
    int cnt = hone_attr_ints(n, "output_shape", &a);
    const char *ap = hone_attr_str(n, "auto_pad", "NOTSET");
    *have = cnt >= 0 || !strncmp(ap, "SAME_", 5);
    if (cnt >= 0 && cnt != nsp && cnt != nsp + 2)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "output_shape has %d values, expected %d",
                              cnt, nsp);
    for (int d = 0; d < nsp && *have; d++) {
        os[d] = cnt >= 0 ? a[cnt - nsp + d] : w->out[d] < 0 ? -1 : w->out[d] * w->stride[d];
        if (cnt >= 0 && (os[d] < 1 || os[d] > ctx->limits.max_dim))
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "output_shape[%d] = %lld is invalid",
                                  d, (long long)os[d]);
    }
    return HONE_OK;
}

/* Output extents and pads of a ConvTranspose window whose positions (w->out)
 * are X's spatial dims: fills w->in (the output image) and w->pad. */
static hone_status transpose_dims(hone_ctx *ctx, const hone_node *n, hone_rt_window *w,
                                  const int64_t *opad)
{
    int64_t os[HONE_RT_MAX_SPATIAL];
    bool have, upper = !strcmp(hone_attr_str(n, "auto_pad", "NOTSET"), "SAME_UPPER");
    hone_status st = transpose_target(ctx, n, w->nsp, w, os, &have);
    for (int d = 0; d < w->nsp && !st; d++) {
        int64_t full, ek = (w->k[d] - 1) * w->dil[d] + 1;
        if (w->out[d] < 0 || w->k[d] < 0) {
            w->in[d] = have ? os[d] : HONE_DIM_UNKNOWN;
            continue;
        }
        if (__builtin_mul_overflow(w->stride[d], w->out[d] - 1, &full) || full > INT64_MAX / 4)
            return hone_node_fail(ctx, n, HONE_ERR_LIMIT, "output extent overflows");
        full += opad[d] + ek;
        if (have) {
            int64_t total = full - os[d], half = floor_div(total, 2);
            w->pad[d] = upper ? half : total - half;
            w->pad_end[d] = total - w->pad[d];
        }
        w->in[d] = full - w->pad[d] - w->pad_end[d];
        if (w->in[d] < 1)
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                                  "output extent along spatial dim %d is %lld (pads too large)", d,
                                  (long long)w->in[d]);
    }
    return st;
}

/* Reads strides, dilations, pads (zero under auto_pad VALID) and kernel into w. */
static hone_status transpose_attrs(hone_ctx *ctx, const hone_node *n, int nsp, const int64_t *k,
                                   hone_rt_window *w, int64_t *opad)
{
    int64_t pads[2 * HONE_RT_MAX_SPATIAL];
    hone_status st = nn_window_attrs(ctx, n, nsp, w, pads);
    if (!st)
        st = nn_ints_attr(ctx, n, "output_padding", nsp, 0, 0, opad);
    bool valid = !strcmp(hone_attr_str(n, "auto_pad", "NOTSET"), "VALID");
    for (int d = 0; d < nsp && !st; d++) {
        w->k[d] = k[d];
        w->pad[d] = valid ? 0 : pads[d];
        w->pad_end[d] = valid ? 0 : pads[nsp + d];
        if (k[d] == 0 || (k[d] > 0 && (k[d] - 1) > INT64_MAX / 4 / w->dil[d]))
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "kernel extent %lld is invalid",
                                  (long long)k[d]);
    }
    return st;
}

/* ConvTranspose: X[N,C,D1..Dn] and W[C,M/group,k1..kn] (+ B[M]) -> Y[N,M,o1..on]. */
static hone_status transpose_shape(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x,
                                   const hone_tinfo *wt, hone_rt_window *w, int *rank, int64_t *y)
{
    int64_t k[HONE_MAX_RANK], opad[HONE_RT_MAX_SPATIAL];
    memset(w, 0, sizeof *w);
    hone_status st = conv_rank(ctx, n, x, wt, rank);
    if (st || *rank < 0)
        return st;
    int nsp = w->nsp = *rank - 2;
    int64_t g = hone_attr_int(n, "group", 1), mg = nn_dim(wt, 1);
    if (nsp > HONE_RT_MAX_SPATIAL)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "too many spatial dims (%d)", nsp);
    int64_t c = nn_dim(x, 1), wc = nn_dim(wt, 0);
    st = check_groups(ctx, n, g, -1, -1, wc, "W's input channel count");
    if (!st && c >= 0 && wc >= 0 && c != wc)
        st = hone_node_fail(ctx, n, HONE_ERR_SHAPE, "X has %lld channels but W has %lld",
                            (long long)c, (long long)wc);
    if (!st)
        st = kernel_dims(ctx, n, wt, nsp, k);
    if (!st)
        st = transpose_attrs(ctx, n, nsp, k, w, opad);
    for (int d = 0; d < nsp; d++)
        w->out[d] = nn_dim(x, d + 2) < 0 ? -1 : nn_dim(x, d + 2);
    if (!st)
        st = transpose_dims(ctx, n, w, opad);
    y[0] = nn_dim(x, 0);
    y[1] = -1;
    if (!st && mg >= 0 && __builtin_mul_overflow(mg, g, &y[1]))
        st = hone_node_fail(ctx, n, HONE_ERR_LIMIT, "output channel count overflows");
    for (int d = 0; d < nsp; d++)
        y[d + 2] = w->in[d];
    return st;
}

hone_status infer_conv_transpose(hone_infer *ic)
{
    return infer_with(ic, transpose_shape);
}

hone_status eval_conv_transpose(hone_eval *ec)
{
    return eval_with(ec, transpose_shape, true);
}
