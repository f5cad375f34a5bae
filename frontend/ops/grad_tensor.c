/*
 * Backward of the tensor-manipulation ops by replaying their forward.
 *
 * Both ops here re-run the forward node (op fwd_op at opset fwd_opset with
 * the forward's own attributes, copied onto this node) through the op table,
 * so every attribute form, opset rule and edge case of the forward is
 * honoured by construction instead of being re-implemented:
 *
 *   MoveGrad(dY, fwd inputs...) -> dX_0 .. dX_{moved-1}
 *       for ops that only move elements (Slice, Pad in every mode, Gather*,
 *       Concat, Tile, DepthToSpace, SpaceToDepth, ReverseSequence). The first
 *       fwd_moved forward inputs are replaced by int64 tensors numbering
 *       their elements 1, 2, ... consecutively across inputs; the replay's
 *       output then names, for every output element, the input element it
 *       came from (0: none, e.g. a Pad constant), and dY is scatter-added
 *       there. Repeated sources (Tile, Gather duplicates) accumulate.
 *   ResizeGrad(dY, fwd inputs...) -> dX
 *       for Resize and Upsample in nearest and linear modes. Interpolation
 *       is separable and reproduces linear functions exactly, so replaying
 *       the forward on a float64 probe holding each element's coordinate
 *       along axis d yields, per output position, the real-valued source
 *       coordinate along d: its integer part and fraction are the two taps
 *       and weights of that axis. The adjoint then applies
 *       hone_rt_resample_adjoint axis by axis (identity axes skipped).
 */
#include <stdlib.h>

#include "grad.h"

/* The forward node a replaying node n re-runs, built in *r (out: one slot). */
static hone_status replay_node(hone_ctx *ctx, const hone_node *n, hone_node *r,
                               hone_value **out)
{
    const char *op = hone_attr_str(n, "fwd_op", "");
    *r = *n;
    r->op = hone_op_lookup("", op);
    r->op_type = op;
    r->domain = "";
    r->opset = (int)hone_attr_int(n, "fwd_opset", 17);
    r->n_in = n->n_in - 1;
    r->in = n->in + 1;
    r->n_out = 1;
    out[0] = n->in[0];
    r->out = out;
    if (r->op == HONE_OP_UNKNOWN)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "fwd_op '%s' is not an ONNX op", op);
    return HONE_OK;
}

/* Outputs i < fwd_moved (when present) are float32 shaped like forward input i. */
hone_status infer_move_grad(hone_infer *ic)
{
    int64_t moved = hone_attr_int(ic->node, "fwd_moved", 1);
    hone_status st = grad_infer_f32(ic, 1);
    if (!st && (moved < 1 || moved > ic->n_in - 1 || moved != ic->n_out))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                            "fwd_moved %lld does not fit %d inputs and %d outputs",
                            (long long)moved, ic->n_in, ic->n_out);
    for (int i = 0; !st && i < moved; i++)
        grad_infer_as(ic, i, ic->in[1 + i]);
    return st;
}

/* int64 tensors numbering the elements of the moved inputs from 1 across all
 * of them; off[m] is the count before input m (off[moved] the total). */
static hone_status number_inputs(hone_eval *ec, int moved, hone_tensor **ids, int64_t *off)
{
    off[0] = 0;
    for (int m = 0; m < moved; m++) {
        const hone_tensor *x = ec->in[1 + m];
        hone_status st = hone_tensor_new(ec->ctx, HONE_DT_INT64, x->rank, x->dims, &ids[m]);
        if (st)
            return st;
        int64_t *p = ids[m]->data;
        for (int64_t i = 0; i < x->numel; i++)
            p[i] = off[m] + i + 1;
        off[m + 1] = off[m] + x->numel;
    }
    return HONE_OK;
}

/* The moved input whose numbering holds k (1-based), by binary search. */
static int owner(const int64_t *off, int moved, int64_t k)
{
    int lo = 0, hi = moved - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (off[mid] < k)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* dX_m[k - 1 - off[m]] += dY[j] for every element j whose source is k > 0. */
static hone_status scatter(hone_eval *ec, const hone_tensor *src, int moved, const int64_t *off)
{
    const hone_tensor *dy = ec->in[0];
    if (src->dtype != HONE_DT_INT64 || src->numel != dy->numel)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                              "the replayed forward gives %lld elements, dY has %lld",
                              (long long)src->numel, (long long)dy->numel);
    for (int m = 0; m < moved; m++)
        if (grad_wants(ec->node, m))
            memset(ec->out[m]->data, 0, hone_tensor_nbytes(ec->out[m]));
    const int64_t *k = src->data;
    const float *g = dy->data;
    for (int64_t j = 0; j < src->numel; j++) {
        if (k[j] <= 0 || k[j] > off[moved])
            continue;
        int m = owner(off, moved, k[j]);
        if (grad_wants(ec->node, m))
            ((float *)ec->out[m]->data)[k[j] - 1 - off[m]] += g[j];
    }
    return HONE_OK;
}

hone_status eval_move_grad(hone_eval *ec)
{
    int moved = (int)hone_attr_int(ec->node, "fwd_moved", 1), nf = ec->n_in - 1;
    hone_node r;
    hone_value *slot[1];
    hone_tensor **ids = calloc((size_t)nf + 1, sizeof *ids), *src = NULL;
    int64_t *off = calloc((size_t)moved + 1, sizeof *off);
    const hone_tensor **in = calloc((size_t)nf + 1, sizeof *in);
    HONE_ASSERT(ids && off && in);
    hone_status st = replay_node(ec->ctx, ec->node, &r, slot);
    if (!st)
        st = number_inputs(ec, moved, ids, off);
    for (int i = 0; i < nf; i++)
        in[i] = i < moved ? ids[i] : ec->in[1 + i];
    if (!st && r.op == HONE_OP_PAD && nf > 2)
        in[2] = NULL; /* the pad constant becomes 0: "no source" */
    if (!st)
        st = hone_node_run(ec->ctx, &r, in, &src, NULL);
    if (!st)
        st = scatter(ec, src, moved, off);
    hone_tensor_free(src);
    for (int i = 0; i < moved; i++)
        hone_tensor_free(ids[i]);
    free(ids);
    free(off);
    free(in);
    return st;
}

/* ===================== ResizeGrad ===================== */

/* Fails for modes whose taps a coordinate probe cannot recover. */
static hone_status check_resize_mode(hone_eval *ec)
{
    const hone_node *n = ec->node;
    const char *mode = hone_attr_str(n, "mode", "nearest");
    const char *ct = hone_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "bilinear"))
        return hone_node_fail(ec->ctx, n, HONE_ERR_UNSUPPORTED,
                              "backward of %s interpolation is not supported", mode);
    if (!strcmp(ct, "tf_crop_and_resize") || hone_attr_int(n, "antialias", 0))
        return hone_node_fail(ec->ctx, n, HONE_ERR_UNSUPPORTED,
                              "backward of tf_crop_and_resize or antialias is not supported");
    return HONE_OK;
}

/* Source coordinate of every output position along axis d: the replay on a
 * float64 probe of X's shape holding each element's index along d. */
static hone_status axis_coords(hone_eval *ec, const hone_node *r, int d, double *c)
{
    const hone_tensor *x = ec->in[1], *dy = ec->in[0];
    hone_tensor *probe, *out = NULL;
    hone_status st = hone_tensor_new(ec->ctx, HONE_DT_DOUBLE, x->rank, x->dims, &probe);
    if (st)
        return st;
    int64_t inner = nn_prod(x->dims, d + 1, x->rank), len = x->dims[d];
    for (int64_t i = 0; i < x->numel; i++)
        ((double *)probe->data)[i] = (double)(i / inner % len);
    const hone_tensor *in[8] = {probe};
    for (int i = 2; i < ec->n_in && i < 8; i++)
        in[i - 1] = ec->in[i];
    st = hone_node_run(ec->ctx, r, in, &out, NULL);
    if (!st && (out->rank != dy->rank || memcmp(out->dims, dy->dims, sizeof(int64_t) * (size_t)dy->rank)))
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "dY does not match the resize output");
    int64_t step = nn_prod(dy->dims, d + 1, dy->rank);
    for (int64_t o = 0; !st && o < dy->dims[d]; o++)
        c[o] = ((double *)out->data)[o * step];
    hone_tensor_free(out);
    hone_tensor_free(probe);
    return st;
}

/* Two taps per output position from source coordinates; false when the axis is the identity. */
static bool axis_taps(const double *c, int64_t out_len, int64_t in_len, int64_t *idx, float *w)
{
    bool ident = out_len == in_len;
    for (int64_t o = 0; o < out_len; o++) {
        double f = c[o] - floor(c[o]);
        int64_t i0 = (int64_t)floor(c[o]);
        if (i0 < 0 || in_len == 1)
            i0 = 0, f = 0;
        if (i0 >= in_len - 1)
            i0 = in_len - 1, f = 0;
        idx[2 * o] = i0;
        idx[2 * o + 1] = i0 + (f > 0);
        w[2 * o] = (float)(1 - f);
        w[2 * o + 1] = (float)f;
        ident = ident && i0 == o && f == 0;
    }
    return !ident;
}

/* Applies the adjoint of axis d to cur (dims: the current shape, updated). */
static hone_status adjoint_axis(hone_eval *ec, const hone_node *r, int d, int64_t *dims,
                                float **cur)
{
    const hone_tensor *x = ec->in[1];
    int64_t out_len = dims[d], in_len = x->dims[d];
    double *c = malloc(sizeof *c * (size_t)(out_len + 1));
    int64_t *idx = malloc(sizeof *idx * (size_t)(2 * out_len + 1));
    float *w = malloc(sizeof *w * (size_t)(2 * out_len + 1)), *next = NULL;
    hone_status st = c && idx && w ? axis_coords(ec, r, d, c)
                                   : hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    if (!st && axis_taps(c, out_len, in_len, idx, w)) {
        int64_t outer = nn_prod(dims, 0, d), inner = nn_prod(dims, d + 1, x->rank);
        st = nn_scratch(ec, (size_t)(outer * in_len * inner), &next);
        if (!st) {
            hone_rt_resample_adjoint(outer, out_len, in_len, inner, idx, w, *cur, next);
            free(*cur);
            *cur = next;
            dims[d] = in_len;
        }
    }
    free(c);
    free(idx);
    free(w);
    return st;
}

hone_status eval_resize_grad(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0], *x = ec->in[1];
    hone_node r;
    hone_value *slot[1];
    int64_t dims[HONE_MAX_RANK];
    float *cur;
    hone_status st = replay_node(ec->ctx, ec->node, &r, slot);
    if (!st)
        st = check_resize_mode(ec);
    if (!st && dy->rank != x->rank)
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "dY and X differ in rank");
    if (!st)
        st = nn_scratch(ec, (size_t)dy->numel, &cur);
    if (st)
        return st;
    memcpy(cur, dy->data, hone_tensor_nbytes(dy));
    memcpy(dims, dy->dims, sizeof(int64_t) * (size_t)dy->rank);
    for (int d = 0; d < x->rank && !st; d++)
        if (dims[d] > 1 || x->dims[d] > 1)
            st = adjoint_axis(ec, &r, d, dims, &cur);
    if (!st)
        memcpy(ec->out[0]->data, cur, hone_tensor_nbytes(ec->out[0]));
    free(cur);
    return st;
}
