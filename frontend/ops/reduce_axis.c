/*
 * Ops that work along one axis: ArgMax/ArgMin, CumSum and TopK.
 *
 * Each views its input as [outer, n, inner] around the axis and handles the
 * n elements of every (outer, inner) slice, spaced inner apart. Elements are
 * ordered by hone_reduce_cmp: integers compared exactly, NaN above every
 * number. ArgMax/ArgMin keep the first extreme unless select_last_index asks
 * for the last; TopK sorts each slice with a stable merge sort of indices, so
 * equal values come out lower index first, as ONNX requires.
 */
#include <stdlib.h>

#include "hone_rt.h"
#include "ops_util.h"
#include "reduce.h"

void hone_reduce_split(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *n,
                       int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= dims[i];
    for (int i = axis + 1; i < rank; i++)
        *inner *= dims[i];
    *n = dims[axis];
}

int hone_reduce_cmp(const hone_tensor *t, int64_t i, int64_t j)
{
    if (t->dtype == HONE_DT_UINT64) {
        uint64_t a = ((const uint64_t *)t->data)[i], b = ((const uint64_t *)t->data)[j];
        return (a > b) - (a < b);
    }
    if (hone_dtype_is_int(t->dtype)) {
        int64_t a = hone_tensor_get_i64(t, i), b = hone_tensor_get_i64(t, j);
        return (a > b) - (a < b);
    }
    double a = hone_tensor_get_f64(t, i), b = hone_tensor_get_f64(t, j);
    if (isnan(a) || isnan(b))
        return (int)isnan(a) - (int)isnan(b);
    return (a > b) - (a < b);
}

/* ---------------------------- ArgMax / ArgMin ---------------------------- */

/* Axis and output dims of ArgMax/ArgMin for an input of the given shape. */
static hone_status arg_shape(hone_ctx *ctx, const hone_node *n, int rank, const int64_t *dims,
                             int *axis, int64_t *out, int *out_rank)
{
    hone_status st = hone_reduce_axis(ctx, n, hone_attr_int(n, "axis", 0), rank, axis);
    if (st)
        return st;
    if (dims[*axis] == 0)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "axis %d is empty: no element to select",
                              *axis);
    bool keep = hone_attr_int(n, "keepdims", 1) != 0;
    int r = 0;
    for (int i = 0; i < rank; i++)
        if (i != *axis || keep)
            out[r++] = i == *axis ? 1 : dims[i];
    *out_rank = r;
    return HONE_OK;
}

hone_status infer_argminmax(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_status st = hone_reduce_check_numeric(ic->ctx, ic->node, x->dtype);
    if (st)
        return st;
    if (x->rank < 0) {
        hone_infer_set(ic, 0, HONE_DT_INT64, -1, NULL);
        return HONE_OK;
    }
    int axis, r;
    int64_t d[HONE_MAX_RANK];
    if ((st = arg_shape(ic->ctx, ic->node, x->rank, x->dims, &axis, d, &r)))
        return st;
    hone_infer_set(ic, 0, HONE_DT_INT64, r, d);
    return HONE_OK;
}

hone_status eval_argminmax(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int axis, r;
    int64_t d[HONE_MAX_RANK], outer, n, inner;
    hone_status st = arg_shape(ec->ctx, ec->node, x->rank, x->dims, &axis, d, &r);
    if (st || (st = hone_eval_alloc(ec, 0, HONE_DT_INT64, r, d)))
        return st;
    int sign = ec->node->op == HONE_OP_ARGMAX ? 1 : -1;
    bool last = hone_attr_int(ec->node, "select_last_index", 0) != 0;
    hone_reduce_split(x->rank, x->dims, axis, &outer, &n, &inner);
    int64_t *y = ec->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i, best = 0;
            for (int64_t j = 1; j < n; j++) {
                int c = sign * hone_reduce_cmp(x, base + j * inner, base + best * inner);
                if (c > 0 || (c == 0 && last))
                    best = j;
            }
            y[o * inner + i] = best;
        }
    return HONE_OK;
}

/* -------------------------------- CumSum -------------------------------- */

/* Reads CumSum's axis input (a 0-D or 1-element integer tensor). */
static hone_status cumsum_axis(hone_ctx *ctx, const hone_node *n, const hone_tensor *ax, int rank,
                               int *axis)
{
    if (ax->numel != 1 || ax->rank > 1 || !hone_dtype_is_int(ax->dtype))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "axis must be a 0-D or 1-element integer tensor");
    return hone_reduce_axis(ctx, n, hone_tensor_get_i64(ax, 0), rank, axis);
}

hone_status infer_cumsum(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ax = ic->in[1];
    hone_status st = hone_reduce_check_numeric(ic->ctx, ic->node, x->dtype);
    if (st)
        return st;
    if (ax->rank > 1 || (ax->dtype && !hone_dtype_is_int(ax->dtype)))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "axis must be a 0-D or 1-element integer tensor");
    int axis;
    if (ax->value && x->rank >= 0 &&
        (st = cumsum_axis(ic->ctx, ic->node, ax->value, x->rank, &axis)))
        return st;
    return hone_infer_same(ic);
}

/* Running sum of the n elements at base, base + stride, ... (wrapping for integers). */
static void cumsum_slice(const hone_tensor *x, hone_tensor *y, int64_t base, int64_t n,
                         int64_t stride, bool excl, bool rev)
{
    bool isint = hone_dtype_is_int(x->dtype);
    uint64_t ai = 0;
    double af = 0;
    for (int64_t jj = 0; jj < n; jj++) {
        int64_t off = base + (rev ? n - 1 - jj : jj) * stride;
        if (excl && isint)
            hone_tensor_set_i64(y, off, (int64_t)ai);
        else if (excl)
            hone_tensor_set_f64(y, off, af);
        if (isint)
            ai += (uint64_t)hone_tensor_get_i64(x, off);
        else
            af += hone_tensor_get_f64(x, off);
        if (!excl && isint)
            hone_tensor_set_i64(y, off, (int64_t)ai);
        else if (!excl)
            hone_tensor_set_f64(y, off, af);
    }
}

hone_status eval_cumsum(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int axis;
    hone_status st = cumsum_axis(ec->ctx, ec->node, ec->in[1], x->rank, &axis);
    if (st || (st = hone_eval_alloc(ec, 0, x->dtype, x->rank, x->dims)))
        return st;
    bool excl = hone_attr_int(ec->node, "exclusive", 0) != 0;
    bool rev = hone_attr_int(ec->node, "reverse", 0) != 0;
    int64_t outer, n, inner;
    hone_reduce_split(x->rank, x->dims, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            cumsum_slice(x, ec->out[0], o * n * inner + i, n, inner, excl, rev);
    return HONE_OK;
}

/* --------------------------------- TopK --------------------------------- */

/* k of TopK: the attribute before opset 10, then input 1 (value NULL = unknown: k -1). */
static hone_status topk_k(hone_ctx *ctx, const hone_node *n, int opset, bool has_input,
                          const hone_tensor *kt, int64_t *k)
{
    *k = -1;
    if (opset < 10) {
        *k = hone_attr_int(n, "k", -1);
        if (*k < 0)
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute k is missing or negative");
        return HONE_OK;
    }
    if (!has_input)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "input K is required from opset 10");
    if (!kt)
        return HONE_OK;
    if (kt->numel != 1 || kt->rank > 1 || !hone_dtype_is_int(kt->dtype))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "K must be a 1-element integer tensor");
    *k = hone_tensor_get_i64(kt, 0);
    if (*k < 0)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "K is %lld; it must be non-negative",
                              (long long)*k);
    return HONE_OK;
}

/* Axis and output dims of TopK (k -1: that dim unknown). */
static hone_status topk_shape(hone_ctx *ctx, const hone_node *n, int rank, const int64_t *dims,
                              int64_t k, int *axis, int64_t *out)
{
    hone_status st = hone_reduce_axis(ctx, n, hone_attr_int(n, "axis", -1), rank, axis);
    if (st)
        return st;
    if (k >= 0 && dims[*axis] >= 0 && k > dims[*axis])
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "K = %lld is larger than axis %d of size %lld",
                              (long long)k, *axis, (long long)dims[*axis]);
    memcpy(out, dims, sizeof(int64_t) * (size_t)rank);
    out[*axis] = k >= 0 ? k : HONE_DIM_UNKNOWN;
    return HONE_OK;
}

hone_status infer_topk(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    bool has_k = ic->n_in > 1 && ic->in[1];
    int64_t k, d[HONE_MAX_RANK];
    int axis;
    hone_status st = hone_reduce_check_numeric(ic->ctx, ic->node, x->dtype);
    if (st || (st = topk_k(ic->ctx, ic->node, ic->opset, has_k, has_k ? ic->in[1]->value : NULL,
                           &k)))
        return st;
    if (x->rank < 0) {
        hone_infer_set(ic, 0, x->dtype, -1, NULL);
        hone_infer_set(ic, 1, HONE_DT_INT64, -1, NULL);
        return HONE_OK;
    }
    if ((st = topk_shape(ic->ctx, ic->node, x->rank, x->dims, k, &axis, d)))
        return st;
    hone_infer_set(ic, 0, x->dtype, x->rank, d);
    hone_infer_set(ic, 1, HONE_DT_INT64, x->rank, d);
    return HONE_OK;
}

/* hone_reduce_cmp over flat elements of a tensor, for the runtime's TopK. */
static int tensor_cmp(const void *t, int64_t i, int64_t j)
{
    return hone_reduce_cmp(t, i, j);
}

hone_status eval_topk(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    bool has_k = ec->n_in > 1 && ec->in[1];
    int64_t k, d[HONE_MAX_RANK];
    int axis;
    hone_status st = topk_k(ec->ctx, ec->node, ec->opset, has_k, has_k ? ec->in[1] : NULL, &k);
    if (st || (st = topk_shape(ec->ctx, ec->node, x->rank, x->dims, k, &axis, d)) ||
        (st = hone_eval_alloc(ec, 0, x->dtype, x->rank, d)) ||
        (st = hone_eval_alloc(ec, 1, HONE_DT_INT64, x->rank, d)))
        return st;
    int64_t n = x->dims[axis];
    int64_t *idx = malloc(sizeof *idx * (size_t)(2 * n + 1));
    if (!idx)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory sorting %lld values",
                              (long long)n);
    int64_t outer, inner;
    hone_reduce_split(x->rank, x->dims, axis, &outer, &n, &inner);
    hone_rt_topk_by(tensor_cmp, x, hone_dtype_size(x->dtype), outer, n, inner, k,
                    hone_attr_int(ec->node, "largest", 1) != 0, x->data, ec->out[0]->data,
                    ec->out[1]->data, idx);
    free(idx);
    return HONE_OK;
}
