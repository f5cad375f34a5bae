/*
 * Tensor family, indexing ops: Gather, GatherElements, GatherND, Scatter,
 * ScatterElements, ScatterND, OneHot, Compress, NonZero.
 *
 * Index tensors come from the model's user, so every kernel checks every
 * index against its dim before reading or writing anything and reports the
 * first bad one (HONE_ERR_INVALID naming the node); negative indices count
 * from the end where the op allows it. The gathers copy contiguous inner
 * blocks; the scatters start from a copy of data and apply updates in order,
 * so with duplicate indices the last write (or the reduction) wins.
 * Compress and NonZero size their outputs from the data when inference could
 * not.
 */
#include "tensor_ops.h"

/* Reads index k of t normalised against dim; reports a bad index. */
static hone_status read_index(hone_eval *ec, const hone_tensor *t, int64_t k, int64_t dim,
                              int64_t *out)
{
    int64_t v = hone_tensor_get_i64(t, k);
    if (!tf_norm_index(&v, dim))
        return tf_bad_index(ec->ctx, ec->node, v, dim, "index");
    *out = v;
    return HONE_OK;
}

/* Product of dims[a..b). */
static int64_t span(const int64_t *dims, int a, int b)
{
    int64_t p = 1;
    for (int i = a; i < b; i++)
        p *= dims[i];
    return p;
}

/* Checks an input is an integer index tensor and returns its infer view. */
static hone_status index_input(hone_infer *ic, int i, const hone_tinfo **t)
{
    *t = ic->in[i];
    return tf_check_int_input(ic, i, "indices");
}

/* ---- Gather ---- */

/* Gather: data[a.., d, b..], indices[q..] (axis at d) -> [a.., q.., b..]. */
hone_status infer_gather(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ix;
    int64_t d[HONE_MAX_RANK];
    int axis;
    hone_status st = index_input(ic, 1, &ix);
    if (st || x->rank < 0 || ix->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return st;
    }
    if (x->rank == 0 || x->rank + ix->rank - 1 > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "cannot gather from rank %d with rank %d indices", x->rank, ix->rank);
    if ((st = tf_axis(ic, hone_attr_int(ic->node, "axis", 0), x->rank, &axis)))
        return st;
    int r = 0;
    for (int i = 0; i < axis; i++)
        d[r++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++)
        d[r++] = ix->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        d[r++] = x->dims[i];
    hone_infer_set(ic, 0, x->dtype, r, d);
    return HONE_OK;
}

/* Validates each index, then copies its inner block for every outer position. */
hone_status eval_gather(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *ix = ec->in[1];
    int axis = (int)hone_attr_int(ec->node, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int64_t outer = span(x->dims, 0, axis), dim = x->dims[axis];
    int64_t inner = span(x->dims, axis + 1, x->rank), n = ix->numel;
    hone_status st = tf_need_out(ec);
    for (int64_t k = 0; !st && k < n; k++) {
        int64_t j;
        if ((st = read_index(ec, ix, k, dim, &j)))
            break;
        for (int64_t o = 0; o < outer; o++)
            tf_copy(ec->out[0], (o * n + k) * inner, x, (o * dim + j) * inner, inner);
    }
    return st;
}

/* ---- GatherElements, ScatterElements, Scatter ---- */

/* Shared checks of GatherElements/ScatterElements: indices of data's rank,
 * no larger than data off the axis; returns the axis. */
static hone_status elements_check(hone_infer *ic, const hone_tinfo *x, const hone_tinfo *ix,
                                  int *axis)
{
    hone_status st = tf_check_int_input(ic, 1, "indices");
    if (st || x->rank < 0)
        return st;
    if ((st = tf_axis(ic, hone_attr_int(ic->node, "axis", 0), x->rank, axis)))
        return st;
    if (ix->rank >= 0 && ix->rank != x->rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "indices rank %d differs from data rank %d", ix->rank, x->rank);
    for (int i = 0; ix->rank >= 0 && i < x->rank; i++)
        if (i != *axis && x->dims[i] >= 0 && ix->dims[i] > x->dims[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "indices dim %d (%lld) exceeds data dim (%lld)", i,
                                  (long long)ix->dims[i], (long long)x->dims[i]);
    return HONE_OK;
}

/* GatherElements: data, indices (same rank) -> indices' shape, out[i] = data[i with axis -> idx].
 */
hone_status infer_gatherelements(hone_infer *ic)
{
    int axis;
    hone_status st = elements_check(ic, ic->in[0], ic->in[1], &axis);
    if (!st)
        hone_infer_set(ic, 0, ic->in[0]->dtype, ic->in[1]->rank, ic->in[1]->dims);
    return st;
}

/* Flat offset into data for element k of indices (multi-index idx): the axis
 * coordinate comes from the index value. */
static hone_status elements_offset(hone_eval *ec, const hone_tensor *x, const hone_tensor *ix,
                                   int axis, const int64_t *idx, int64_t k, int64_t *off)
{
    int64_t s[HONE_MAX_RANK], j;
    hone_status st = read_index(ec, ix, k, x->dims[axis], &j);
    if (st)
        return st;
    hone_strides(x->rank, x->dims, s);
    *off = 0;
    for (int i = 0; i < x->rank; i++)
        *off += (i == axis ? j : idx[i]) * s[i];
    return HONE_OK;
}

/* Walks indices, reading data at the index with the axis coordinate replaced. */
hone_status eval_gatherelements(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *ix = ec->in[1];
    int axis = (int)hone_attr_int(ec->node, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int64_t idx[HONE_MAX_RANK] = {0}, off;
    hone_status st = tf_need_out(ec);
    for (int64_t k = 0; !st && k < ix->numel; k++, tf_next_index(ix->rank, ix->dims, idx))
        if (!(st = elements_offset(ec, x, ix, axis, idx, k, &off)))
            tf_copy(ec->out[0], k, x, off, 1);
    return st;
}

typedef enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } reduction;

/* The reduction attribute of the scatters (opset 16 on). */
static hone_status scatter_reduction(hone_ctx *ctx, const hone_node *n, reduction *r)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *s = hone_attr_str(n, "reduction", "none");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *r = (reduction)i;
            return HONE_OK;
        }
    return hone_node_fail(ctx, n, HONE_ERR_INVALID, "unknown reduction '%s'", s);
}

/* Combines n update elements u[ui..] into o[oi..] under reduction r. */
static void scatter_apply(hone_tensor *o, int64_t oi, const hone_tensor *u, int64_t ui, int64_t n,
                          reduction r)
{
    if (r == RED_NONE) {
        tf_copy(o, oi, u, ui, n);
        return;
    }
    bool isint = hone_dtype_is_int(o->dtype);
    for (int64_t k = 0; k < n; k++) {
        double a = hone_tensor_get_f64(o, oi + k), b = hone_tensor_get_f64(u, ui + k);
        int64_t ia = hone_tensor_get_i64(o, oi + k), ib = hone_tensor_get_i64(u, ui + k);
        double v = r == RED_ADD ? a + b
            : r == RED_MUL      ? a * b
            : r == RED_MAX      ? fmax(a, b)
                                : fmin(a, b);
        int64_t iv = r == RED_ADD ? (int64_t)((uint64_t)ia + (uint64_t)ib)
            : r == RED_MUL        ? (int64_t)((uint64_t)ia * (uint64_t)ib)
            : r == RED_MAX        ? (ia > ib ? ia : ib)
                                  : (ia < ib ? ia : ib);
        if (isint)
            hone_tensor_set_i64(o, oi + k, iv);
        else
            hone_tensor_set_f64(o, oi + k, v);
    }
}

/* ScatterElements/Scatter: data, indices, updates (indices' shape) -> data with updates written. */
hone_status infer_scatterelements(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ix = ic->in[1], *u = ic->in[2];
    int axis;
    reduction r;
    hone_status st = elements_check(ic, x, ix, &axis);
    if (!st)
        st = scatter_reduction(ic->ctx, ic->node, &r);
    if (!st && u->dtype && x->dtype && u->dtype != x->dtype)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "updates type differs from data");
    bool same = u->rank == ix->rank;
    for (int i = 0; same && u->rank >= 0 && i < u->rank; i++)
        same = u->dims[i] < 0 || ix->dims[i] < 0 || u->dims[i] == ix->dims[i];
    if (!st && u->rank >= 0 && ix->rank >= 0 && !same)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                            "updates and indices differ in shape");
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    return st;
}

/* Common start of the scatter kernels: output sized, reduction read, data copied. */
static hone_status scatter_start(hone_eval *ec, reduction *r)
{
    hone_status st = tf_need_out(ec);
    if (!st)
        st = scatter_reduction(ec->ctx, ec->node, r);
    if (!st)
        tf_copy(ec->out[0], 0, ec->in[0], 0, ec->in[0]->numel);
    return st;
}

/* Copies data, then writes (or reduces) each update at its index. */
hone_status eval_scatterelements(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *ix = ec->in[1], *u = ec->in[2];
    int axis = (int)hone_attr_int(ec->node, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int64_t idx[HONE_MAX_RANK] = {0}, off;
    reduction r;
    hone_status st = scatter_start(ec, &r);
    for (int64_t k = 0; !st && k < ix->numel; k++, tf_next_index(ix->rank, ix->dims, idx))
        if (!(st = elements_offset(ec, x, ix, axis, idx, k, &off)))
            scatter_apply(ec->out[0], off, u, k, 1, r);
    return st;
}

hone_status infer_scatter(hone_infer *ic)
{
    return infer_scatterelements(ic);
}

hone_status eval_scatter(hone_eval *ec)
{
    return eval_scatterelements(ec);
}

/* ---- GatherND, ScatterND ---- */

/* Shapes of the ND ops: data rank r, indices [b.., m.., k] with k <= r - b. */
static hone_status nd_check(hone_infer *ic, int batch, int *k)
{
    const hone_tinfo *x = ic->in[0], *ix = ic->in[1];
    hone_status st = tf_check_int_input(ic, 1, "indices");
    *k = -1;
    if (st || x->rank < 0 || ix->rank < 0)
        return st;
    if (ix->rank < 1 || batch < 0 || batch >= ix->rank || batch >= x->rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "bad ranks or batch_dims");
    for (int i = 0; i < batch; i++)
        if (x->dims[i] >= 0 && ix->dims[i] >= 0 && x->dims[i] != ix->dims[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "batch dim %d differs", i);
    int64_t kk = ix->dims[ix->rank - 1];
    if (kk >= 0 && (kk < 1 || kk > x->rank - batch))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "index tuples of length %lld for data rank %d", (long long)kk,
                              x->rank);
    *k = (int)kk;
    return HONE_OK;
}

/* GatherND: data, indices[b.., m.., k] -> [b.., m.., data dims after b+k]. */
hone_status infer_gathernd(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ix = ic->in[1];
    int batch = (int)hone_attr_int(ic->node, "batch_dims", 0), k, r = 0;
    int64_t d[HONE_MAX_RANK];
    hone_status st = nd_check(ic, batch, &k);
    if (st || k < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return st;
    }
    if (ix->rank - 1 + x->rank - batch - k > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "output rank too large");
    for (int i = 0; i < ix->rank - 1; i++)
        d[r++] = i < batch && ix->dims[i] < 0 ? x->dims[i] : ix->dims[i];
    for (int i = batch + k; i < x->rank; i++)
        d[r++] = x->dims[i];
    hone_infer_set(ic, 0, x->dtype, r, d);
    return HONE_OK;
}

/* Offset (within one batch of data) of index tuple t of indices, checked. */
static hone_status nd_offset(hone_eval *ec, const hone_tensor *x, const hone_tensor *ix, int batch,
                             int64_t t, int64_t *off)
{
    int k = (int)ix->dims[ix->rank - 1];
    int64_t s[HONE_MAX_RANK];
    hone_strides(x->rank, x->dims, s);
    *off = 0;
    for (int j = 0; j < k; j++) {
        int64_t v;
        hone_status st = read_index(ec, ix, t * k + j, x->dims[batch + j], &v);
        if (st)
            return st;
        *off += v * s[batch + j];
    }
    return HONE_OK;
}

/* Walks the index tuples of an ND op: per tuple, the data offset and the
 * slice size; gathers copy data -> out, scatters apply updates -> out. */
static hone_status nd_walk(hone_eval *ec, int batch, bool scatter, reduction r)
{
    const hone_tensor *x = ec->in[0], *ix = ec->in[1];
    int k = (int)ix->dims[ix->rank - 1];
    int64_t nb = span(x->dims, 0, batch), per = span(x->dims, batch, x->rank);
    int64_t slice = span(x->dims, batch + k, x->rank);
    int64_t tuples = ix->numel / (k ? k : 1), m = nb ? tuples / nb : 0, off;
    hone_status st = HONE_OK;
    for (int64_t t = 0; !st && t < tuples; t++) {
        if ((st = nd_offset(ec, x, ix, batch, t, &off)))
            break;
        off += (t / (m ? m : 1)) * per;
        if (scatter)
            scatter_apply(ec->out[0], off, ec->in[2], t * slice, slice, r);
        else
            tf_copy(ec->out[0], t * slice, x, off, slice);
    }
    return st;
}

/* Copies the data slice each index tuple selects, batch by batch. */
hone_status eval_gathernd(hone_eval *ec)
{
    hone_status st = tf_need_out(ec);
    if (!st)
        st = nd_walk(ec, (int)hone_attr_int(ec->node, "batch_dims", 0), false, RED_NONE);
    return st;
}

/* ScatterND: data, indices[m.., k], updates[m.., data dims after k] -> data updated. */
hone_status infer_scatternd(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *ix = ic->in[1], *u = ic->in[2];
    int k;
    reduction r;
    hone_status st = nd_check(ic, 0, &k);
    if (!st)
        st = scatter_reduction(ic->ctx, ic->node, &r);
    if (!st && u->dtype && x->dtype && u->dtype != x->dtype)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "updates type differs from data");
    if (!st && k >= 0 && u->rank >= 0 && u->rank != ix->rank - 1 + x->rank - k)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "updates rank %d, expected %d",
                            u->rank, ix->rank - 1 + x->rank - k);
    for (int i = 0; !st && k >= 0 && u->rank >= 0 && i < u->rank; i++) {
        int64_t want = i < ix->rank - 1 ? ix->dims[i] : x->dims[k + i - (ix->rank - 1)];
        if (want >= 0 && u->dims[i] >= 0 && want != u->dims[i])
            st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                "updates dim %d is %lld, expected %lld", i, (long long)u->dims[i],
                                (long long)want);
    }
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    return st;
}

/* Copies data, then writes (or reduces) each update slice at its index tuple. */
hone_status eval_scatternd(hone_eval *ec)
{
    reduction r;
    hone_status st = scatter_start(ec, &r);
    return st ? st : nd_walk(ec, 0, true, r);
}

/* ---- OneHot ---- */

/* Depth of OneHot from its scalar input; must be positive. */
static hone_status onehot_depth(hone_ctx *ctx, const hone_node *n, const hone_tensor *t, int64_t *d)
{
    if (t->numel != 1)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "depth must hold one value");
    double v = hone_tensor_get_f64(t, 0);
    if (!(v >= 1) || v > (double)((int64_t)1 << 40))
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "depth %g is not a positive size", v);
    *d = (int64_t)v;
    return HONE_OK;
}

/* OneHot: indices[q..], depth, values[off, on] -> [q.. with depth inserted at axis]. */
hone_status infer_onehot(hone_infer *ic)
{
    const hone_tinfo *ix = ic->in[0], *v = ic->in[2];
    int64_t d[HONE_MAX_RANK], depth = HONE_DIM_UNKNOWN;
    int axis;
    if (v->rank >= 0 && tf_dims_prod(v->rank, v->dims) >= 0 && tf_dims_prod(v->rank, v->dims) != 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "values must hold [off, on]");
    if (ix->rank + 1 > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "output rank above %d",
                              HONE_MAX_RANK);
    if (ix->rank < 0) {
        tf_infer_rank(ic, 0, v->dtype, -1);
        return HONE_OK;
    }
    hone_status st = hone_infer_axis(ic, hone_attr_int(ic->node, "axis", -1), ix->rank + 1, &axis);
    if (!st && tf_ival(ic, 1))
        st = onehot_depth(ic->ctx, ic->node, tf_ival(ic, 1), &depth);
    if (st)
        return st;
    for (int i = 0, j = 0; i <= ix->rank; i++)
        d[i] = i == axis ? depth : ix->dims[j++];
    st = tf_check_size(ic, ix->rank + 1, d);
    if (!st)
        hone_infer_set(ic, 0, v->dtype, ix->rank + 1, d);
    return st;
}

/* Fills with the off value, then writes the on value at each valid index. */
hone_status eval_onehot(hone_eval *ec)
{
    const hone_tensor *ix = ec->in[0], *v = ec->in[2];
    hone_tensor *o = ec->out[0];
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    int axis = (int)hone_attr_int(ec->node, "axis", -1);
    axis = axis < 0 ? axis + o->rank : axis;
    int64_t depth = o->dims[axis], inner = span(o->dims, axis + 1, o->rank);
    tf_fill(o, 0, o->numel, v, 0);
    for (int64_t k = 0; k < ix->numel; k++) {
        double jv = hone_tensor_get_f64(ix, k);
        int64_t j = fabs(jv) < (double)depth + 1 ? (int64_t)jv : depth;
        int64_t outer = k / inner, in = k % inner;
        if (tf_norm_index(&j, depth)) /* out-of-range indices give all-off rows */
            tf_copy(o, (outer * depth + j) * inner + in, v, 1, 1);
    }
    return HONE_OK;
}

/* ---- Compress, NonZero ---- */

/* Compress: x, condition[c] (bool), axis? -> the slices (or flat elements) where condition holds.
 */
hone_status infer_compress(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *c = ic->in[1];
    const hone_attr *a = hone_attr_find(ic->node, "axis");
    int64_t d[HONE_MAX_RANK], kept = HONE_DIM_UNKNOWN;
    int axis = 0;
    if (c->rank >= 0 && c->rank != 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "condition must be 1-D");
    if (c->value) {
        kept = 0;
        for (int64_t i = 0; i < c->value->numel; i++)
            kept += hone_tensor_get_f64(c->value, i) != 0;
    }
    if (!a) {
        hone_infer_set(ic, 0, x->dtype, 1, &kept);
        return HONE_OK;
    }
    if (x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return HONE_OK;
    }
    hone_status st = tf_axis(ic, a->i, x->rank, &axis);
    memcpy(d, x->dims, sizeof d);
    d[axis] = kept;
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, d);
    return st;
}

/* Counts the selected slices, allocates, and copies them in order. */
hone_status eval_compress(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *c = ec->in[1];
    const hone_attr *a = hone_attr_find(ec->node, "axis");
    int axis = a ? (int)(a->i < 0 ? a->i + x->rank : a->i) : 0;
    int64_t dim = a ? x->dims[axis] : x->numel, outer = a ? span(x->dims, 0, axis) : 1;
    int64_t inner = a ? span(x->dims, axis + 1, x->rank) : 1, kept = 0, d[HONE_MAX_RANK];
    for (int64_t i = 0; i < c->numel; i++) {
        bool on = hone_tensor_get_f64(c, i) != 0;
        if (on && i >= dim)
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID,
                                  "condition selects index %lld beyond the extent %lld",
                                  (long long)i, (long long)dim);
        kept += on;
    }
    memcpy(d, x->dims, sizeof d);
    d[axis] = kept;
    hone_status st = hone_eval_alloc(ec, 0, x->dtype, a ? x->rank : 1, a ? d : &kept);
    for (int64_t o = 0, k = 0; !st && o < outer; o++)
        for (int64_t i = 0; i < c->numel; i++)
            if (hone_tensor_get_f64(c, i) != 0)
                tf_copy(ec->out[0], k++ * inner, x, (o * dim + i) * inner, inner);
    return st;
}

/* NonZero: x[d..] -> i64[rank, nnz], the coordinates of nonzero elements in order. */
hone_status infer_nonzero(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t d[2] = {x->rank > 0 ? x->rank : x->rank == 0 ? 1 : HONE_DIM_UNKNOWN, HONE_DIM_UNKNOWN};
    hone_infer_set(ic, 0, HONE_DT_INT64, 2, d);
    return HONE_OK;
}

/* Counts nonzero elements, allocates [rank, nnz] and writes their coordinates. */
hone_status eval_nonzero(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t nnz = 0, idx[HONE_MAX_RANK] = {0}, d[2];
    for (int64_t i = 0; i < x->numel; i++)
        nnz += hone_tensor_get_f64(x, i) != 0;
    d[0] = x->rank ? x->rank : 1;
    d[1] = nnz;
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_INT64, 2, d);
    int64_t *o = st ? NULL : ec->out[0]->data, k = 0;
    for (int64_t i = 0; o && i < x->numel; i++, tf_next_index(x->rank, x->dims, idx)) {
        if (hone_tensor_get_f64(x, i) == 0)
            continue;
        for (int r = 0; r < x->rank; r++)
            o[r * nnz + k] = idx[r];
        k++;
    }
    return st;
}
