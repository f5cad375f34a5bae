/*
 * Tensor family, layout ops: Transpose, Concat, Split, Slice, Expand, Tile,
 * DepthToSpace, SpaceToDepth, ReverseSequence.
 *
 * Each kernel describes its output as a strided view of the input (offset
 * plus per-dim source strides, which may be 0 for broadcast or negative for
 * reversed slices) and hands it to tf_copy_view; the op-specific work is
 * only the stride arithmetic. Tile views a rank-r input as 2r dims
 * [rep0, d0, rep1, d1, ...] with zero strides on the repeats, and
 * DepthToSpace/SpaceToDepth as the 6-D transposes their definitions use.
 */
#include "tensor_ops.h"

/* ---- Transpose ---- */

/* The permutation of Transpose (default: reversed dims), validated. */
static hone_status transpose_perm(hone_ctx *ctx, const hone_node *n, int rank, int64_t *perm)
{
    const int64_t *p;
    int k = hone_attr_ints(n, "perm", &p);
    bool seen[HONE_MAX_RANK] = {false};
    if (k < 0) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return HONE_OK;
    }
    if (k != rank)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "perm has %d entries for rank %d", k, rank);
    for (int i = 0; i < k; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "perm is not a permutation of 0..%d",
                                  rank - 1);
        seen[p[i]] = true;
        perm[i] = p[i];
    }
    return HONE_OK;
}

/* Transpose: x[d0..] -> [d(perm0), d(perm1), ...]. */
hone_status infer_transpose(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t perm[HONE_MAX_RANK], d[HONE_MAX_RANK];
    const int64_t *p;
    if (x->rank < 0) {
        int n = hone_attr_ints(ic->node, "perm", &p);
        tf_infer_rank(ic, 0, x->dtype, n <= HONE_MAX_RANK ? n : -1);
        return HONE_OK;
    }
    hone_status st = transpose_perm(ic->ctx, ic->node, x->rank, perm);
    if (st)
        return st;
    for (int i = 0; i < x->rank; i++)
        d[i] = x->dims[perm[i]];
    hone_infer_set(ic, 0, x->dtype, x->rank, d);
    return HONE_OK;
}

/* A view of x with permuted strides. */
hone_status eval_transpose(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t perm[HONE_MAX_RANK], s[HONE_MAX_RANK], vs[HONE_MAX_RANK];
    hone_status st = tf_need_out(ec);
    if (!st)
        st = transpose_perm(ec->ctx, ec->node, x->rank, perm);
    if (st)
        return st;
    hone_strides(x->rank, x->dims, s);
    for (int i = 0; i < x->rank; i++)
        vs[i] = s[perm[i]];
    tf_copy_view(ec->out[0], x, 0, vs, x->rank, ec->out[0]->dims);
    return HONE_OK;
}

/* ---- Concat, Split ---- */

/* Merges known dim b into the running dim *a; false when both are known and differ. */
static bool merge_dim(int64_t *a, int64_t b)
{
    if (*a >= 0 && b >= 0)
        return *a == b;
    if (b >= 0 || (*a == HONE_DIM_UNKNOWN && b < HONE_DIM_UNKNOWN))
        *a = b;
    return true;
}

/* Concat axis (attribute; opset 1 defaults to 1), normalised against rank. */
static hone_status concat_axis(hone_infer *ic, int rank, int *axis)
{
    const hone_attr *a = hone_attr_find(ic->node, "axis");
    if (!a && ic->opset >= 4)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "missing 'axis' attribute");
    return tf_axis(ic, a ? a->i : 1, rank, axis);
}

/* The common rank (-1 if none known) and dtype of Concat's inputs. */
static hone_status concat_rank_type(hone_infer *ic, int *rank, hone_dtype *dt)
{
    *rank = -1;
    *dt = HONE_DT_UNDEF;
    for (int k = 0; k < ic->n_in; k++) {
        const hone_tinfo *x = ic->in[k];
        if (!x)
            continue;
        if (x->rank >= 0 && *rank >= 0 && x->rank != *rank)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "inputs differ in rank");
        if (x->dtype && *dt && x->dtype != *dt)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "inputs differ in type");
        *rank = x->rank >= 0 ? x->rank : *rank;
        *dt = x->dtype ? x->dtype : *dt;
    }
    return HONE_OK;
}

/* Concat: x_k[.., a_k, ..] (same dims except at axis) -> [.., sum a_k, ..]. */
hone_status infer_concat(hone_infer *ic)
{
    int rank, axis;
    int64_t d[HONE_MAX_RANK], sum = 0;
    hone_dtype dt;
    hone_status st = concat_rank_type(ic, &rank, &dt);
    if (st || rank < 0) {
        tf_infer_rank(ic, 0, dt, -1);
        return st;
    }
    if ((st = concat_axis(ic, rank, &axis)))
        return st;
    for (int i = 0; i < rank; i++)
        d[i] = HONE_DIM_UNKNOWN;
    for (int k = 0; !st && k < ic->n_in; k++) {
        const hone_tinfo *x = ic->in[k];
        if (!x || x->rank < 0) {
            sum = HONE_DIM_UNKNOWN;
            continue;
        }
        for (int i = 0; i < rank; i++)
            if (i != axis && !merge_dim(&d[i], x->dims[i]))
                st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                    "input %d has extent %lld at dim %d, expected %lld", k,
                                    (long long)x->dims[i], i, (long long)d[i]);
        sum = sum < 0 || x->dims[axis] < 0 ? HONE_DIM_UNKNOWN : sum + x->dims[axis];
    }
    d[axis] = ic->n_in == 1 ? ic->in[0]->dims[axis] : sum;
    if (!st)
        hone_infer_set(ic, 0, dt, rank, d);
    return st;
}

/* Splits dims at axis into outer (before), the axis extent and inner (after). */
static void around_axis(const hone_tensor *t, int axis, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        *inner *= t->dims[i];
}

/* Copies the [outer, len*inner] block between a part and the whole at offset
 * off along the axis (to_whole: part -> whole, else whole -> part). */
static void move_part(hone_tensor *whole, hone_tensor *part, int axis, int64_t off, bool to_whole)
{
    int64_t outer, inner, dims[2], ws[2], ps[2];
    around_axis(whole, axis, &outer, &inner);
    dims[0] = outer;
    dims[1] = part->dims[axis] * inner;
    ws[0] = whole->dims[axis] * inner;
    ps[0] = dims[1];
    ws[1] = ps[1] = 1;
    if (to_whole)
        tf_copy_block(whole, off * inner, ws, part, 0, ps, 2, dims);
    else
        tf_copy_block(part, 0, ps, whole, off * inner, ws, 2, dims);
}

/* Copies each input into its band of the output along the axis. */
hone_status eval_concat(hone_eval *ec)
{
    hone_tensor *o = ec->out[0];
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    int axis = (int)hone_attr_int(ec->node, "axis", 1);
    axis = axis < 0 ? axis + o->rank : axis;
    int64_t off = 0;
    for (int k = 0; k < ec->n_in; k++) {
        if (!ec->in[k])
            continue;
        move_part(o, (hone_tensor *)ec->in[k], axis, off, true);
        off += ec->in[k]->dims[axis];
    }
    return HONE_OK;
}

/* Split sizes: given (checked to sum to dim), or equal parts (opset 18:
 * the last part may be smaller). Unknown sizes are HONE_DIM_UNKNOWN. */
static hone_status split_sizes(hone_infer *ic, int64_t dim, int64_t *sz)
{
    int n = ic->n_out;
    int k = tf_ints_arg(ic->node, ic->opset, ic->opset == 1 ? 0 : 13, "split", tf_has(ic, 1),
                        tf_ival(ic, 1), sz, TF_MAX_INTS);
    if (ic->opset == 1 && k == TF_ABSENT && tf_has(ic, 1))
        k = tf_ints_arg(ic->node, 13, 13, "split", true, tf_ival(ic, 1), sz, TF_MAX_INTS);
    if (k == TF_TOOLONG || (k >= 0 && k != n))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "split has %d entries for %d outputs", k, n);
    if (k >= 0) {
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (sz[i] < 0 || sz[i] > INT64_MAX - sum)
                return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "invalid split size %lld",
                                      (long long)sz[i]);
            sum += sz[i];
        }
        if (dim >= 0 && sum != dim)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "split sizes sum to %lld, the axis has %lld", (long long)sum,
                                  (long long)dim);
        return HONE_OK;
    }
    int64_t part = dim >= 0 && k == TF_ABSENT ? (dim + n - 1) / n : HONE_DIM_UNKNOWN;
    int64_t last = part >= 0 ? dim - part * (n - 1) : HONE_DIM_UNKNOWN;
    if (part >= 0 && (last < 0 || (dim % n && ic->opset < 18)))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "axis extent %lld does not split into %d equal parts", (long long)dim,
                              n);
    for (int i = 0; i < n; i++)
        sz[i] = i < n - 1 ? part : last;
    return HONE_OK;
}

/* Split: x[.., d, ..] -> n outputs [.., s_i, ..] with sum s_i = d. */
hone_status infer_split(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t sz[TF_MAX_INTS], d[HONE_MAX_RANK];
    int axis;
    if (ic->n_out > TF_MAX_INTS)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "too many outputs");
    if (x->rank < 0) {
        for (int i = 0; i < ic->n_out; i++)
            tf_infer_rank(ic, i, x->dtype, -1);
        return HONE_OK;
    }
    hone_status st = tf_axis(ic, hone_attr_int(ic->node, "axis", 0), x->rank, &axis);
    if (!st)
        st = split_sizes(ic, x->dims[axis], sz);
    for (int i = 0; !st && i < ic->n_out; i++) {
        memcpy(d, x->dims, sizeof d);
        d[axis] = sz[i];
        hone_infer_set(ic, i, x->dtype, x->rank, d);
    }
    return st;
}

/* Copies each band of the input along the axis into its output. */
hone_status eval_split(hone_eval *ec)
{
    hone_tensor *x = (hone_tensor *)ec->in[0];
    int axis = (int)hone_attr_int(ec->node, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int64_t off = 0;
    hone_status st = tf_need_out(ec);
    for (int k = 0; !st && k < ec->n_out; k++) {
        if (!ec->out[k])
            continue;
        move_part(x, ec->out[k], axis, off, false);
        off += ec->out[k]->dims[axis];
    }
    return st;
}

/* ---- Slice ---- */

typedef struct slice_args {
    int n; /* entries in starts/ends/axes/steps */
    int64_t starts[HONE_MAX_RANK], ends[HONE_MAX_RANK];
    int64_t axes[HONE_MAX_RANK], steps[HONE_MAX_RANK];
    bool known; /* all contents known */
    bool axes_known; /* which axes are sliced is known */
} slice_args;

/* Reads one Slice argument list (attribute before opset 10, else input i). */
static int slice_arg(const hone_node *nd, int opset, const char *attr, bool present,
                     const hone_tensor *t, int64_t *v)
{
    return tf_ints_arg(nd, opset, 10, attr, present, t, v, HONE_MAX_RANK);
}

/* Gathers starts/ends/axes/steps for a rank-r input from either form; an
 * unknown input leaves known (or axes_known) false. */
static hone_status slice_args_read(hone_infer *ic, int rank, slice_args *a)
{
    const hone_node *nd = ic->node;
    int ns = slice_arg(nd, ic->opset, "starts", tf_has(ic, 1), tf_ival(ic, 1), a->starts);
    int ne = slice_arg(nd, ic->opset, "ends", tf_has(ic, 2), tf_ival(ic, 2), a->ends);
    int na = slice_arg(nd, ic->opset, "axes", tf_has(ic, 3), tf_ival(ic, 3), a->axes);
    int nt = ic->opset >= 10 ? slice_arg(nd, ic->opset, "", tf_has(ic, 4), tf_ival(ic, 4), a->steps)
                             : TF_ABSENT;
    if (ns == TF_ABSENT || ne == TF_ABSENT)
        return hone_node_fail(ic->ctx, nd, HONE_ERR_INVALID, "starts and ends are required");
    if (ns == TF_TOOLONG || ne == TF_TOOLONG || na == TF_TOOLONG || nt == TF_TOOLONG)
        return hone_node_fail(ic->ctx, nd, HONE_ERR_SHAPE, "more slice entries than dims");
    a->known = ns >= 0 && ne >= 0 && na != TF_UNKNOWN && nt != TF_UNKNOWN;
    a->axes_known = na >= 0 ||
        (na == TF_ABSENT &&
         (ns >= 0 || (ic->in[1] && ic->in[1]->rank == 1 && ic->in[1]->dims[0] >= 0)));
    a->n = ns >= 0 ? ns : ne >= 0 ? ne : na >= 0 ? na : nt >= 0 ? nt : -1;
    if (a->n < 0 && a->axes_known)
        a->n = ic->in[1]->dims[0] > HONE_MAX_RANK ? HONE_MAX_RANK + 1 : (int)ic->in[1]->dims[0];
    if (a->n > HONE_MAX_RANK || a->n > (rank >= 0 ? rank : HONE_MAX_RANK))
        return hone_node_fail(ic->ctx, nd, HONE_ERR_SHAPE, "more slice entries than dims");
    if ((ns >= 0 && ns != a->n) || (ne >= 0 && ne != a->n) || (na >= 0 && na != a->n) ||
        (nt >= 0 && nt != a->n))
        return hone_node_fail(ic->ctx, nd, HONE_ERR_SHAPE,
                              "starts, ends, axes, steps differ in length");
    for (int i = 0; i < a->n && na == TF_ABSENT; i++)
        a->axes[i] = i;
    for (int i = 0; i < a->n && nt == TF_ABSENT; i++)
        a->steps[i] = 1;
    return HONE_OK;
}

/* Clamped start and element count of one sliced dim of extent dim. */
static void slice_dim(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *s,
                      int64_t *cnt)
{
    start = start < 0 ? start + dim : start;
    end = end < 0 ? end + dim : end;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *cnt = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *cnt = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    *s = dim ? start : 0;
    if (!dim)
        *cnt = 0;
}

/* Per-dim start, step and count of a slice of dims (unknown dims give
 * unknown counts, except the whole-dim slice [0, end) with step 1). */
static hone_status slice_plan(hone_infer *ic, int rank, const int64_t *dims, const slice_args *a,
                              int64_t *start, int64_t *step, int64_t *cnt)
{
    bool seen[HONE_MAX_RANK] = {false};
    for (int i = 0; i < rank; i++) {
        start[i] = 0;
        step[i] = 1;
        cnt[i] = dims[i];
    }
    for (int k = 0; k < a->n; k++) {
        int ax;
        hone_status st = tf_axis(ic, a->axes[k], rank, &ax);
        if (st)
            return st;
        if (seen[ax] || a->steps[k] == 0)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  seen[ax] ? "axis %d repeated" : "step 0 on axis %d", ax);
        seen[ax] = true;
        /* a step longer than the dim takes at most one element: clamp it so
         * stride arithmetic cannot overflow */
        int64_t lim = dims[ax] >= 0 ? dims[ax] + 1 : INT64_MAX;
        step[ax] = a->steps[k] > lim ? lim : a->steps[k] < -lim ? -lim : a->steps[k];
        if (dims[ax] >= 0)
            slice_dim(dims[ax], a->starts[k], a->ends[k], step[ax], &start[ax], &cnt[ax]);
        else if (!(a->starts[k] == 0 && a->steps[k] == 1 && a->ends[k] >= INT32_MAX))
            cnt[ax] = HONE_DIM_UNKNOWN;
    }
    return HONE_OK;
}

/* Output dims of a slice whose arguments are not all known. */
static void slice_partial(hone_infer *ic, const hone_tinfo *x, const slice_args *a)
{
    int64_t d[HONE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        d[i] = a->axes_known ? x->dims[i] : HONE_DIM_UNKNOWN;
    for (int k = 0; a->axes_known && a->n >= 0 && k < a->n; k++) {
        int64_t ax = a->axes[k] < 0 ? a->axes[k] + x->rank : a->axes[k];
        if (ax >= 0 && ax < x->rank)
            d[ax] = HONE_DIM_UNKNOWN;
    }
    hone_infer_set(ic, 0, x->dtype, x->rank, d);
}

/* Slice: x, starts, ends[, axes, steps] -> x[start:end:step] per listed axis. */
hone_status infer_slice(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    slice_args a;
    int64_t start[HONE_MAX_RANK], step[HONE_MAX_RANK], cnt[HONE_MAX_RANK];
    if (x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return HONE_OK;
    }
    hone_status st = slice_args_read(ic, x->rank, &a);
    if (st)
        return st;
    if (!a.known) {
        slice_partial(ic, x, &a);
        return HONE_OK;
    }
    st = slice_plan(ic, x->rank, x->dims, &a, start, step, cnt);
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, cnt);
    return st;
}

/* A view of x: offset at the starts, strides scaled by the steps. */
hone_status eval_slice(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_tinfo ti[5];
    const hone_tinfo *pi[5];
    hone_infer ic;
    slice_args a;
    int64_t start[HONE_MAX_RANK], step[HONE_MAX_RANK], cnt[HONE_MAX_RANK], s[HONE_MAX_RANK];
    tf_eval_view(ec, &ic, ti, pi);
    hone_status st = tf_need_out(ec);
    if (!st)
        st = slice_args_read(&ic, x->rank, &a);
    if (!st)
        st = slice_plan(&ic, x->rank, x->dims, &a, start, step, cnt);
    if (st)
        return st;
    int64_t off = 0;
    hone_strides(x->rank, x->dims, s);
    for (int i = 0; i < x->rank; i++) {
        off += start[i] * s[i];
        s[i] *= step[i];
    }
    tf_copy_view(ec->out[0], x, off, s, x->rank, cnt);
    return HONE_OK;
}

/* ---- Expand, Tile ---- */

/* Expand: x, shape -> broadcast(x.shape, shape) (either side may hold the 1s). */
hone_status infer_expand(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *s = ic->in[1];
    int64_t req[HONE_MAX_RANK], d[HONE_MAX_RANK];
    int r;
    hone_status st = tf_check_int_input(ic, 1, "shape");
    if (st)
        return st;
    if (s->rank >= 0 && (s->rank != 1 || s->dims[0] > HONE_MAX_RANK))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "shape must be 1-D of length <= %d", HONE_MAX_RANK);
    if (!s->value) {
        int n = s->rank == 1 && s->dims[0] >= 0 ? (int)s->dims[0] : -1;
        tf_infer_rank(ic, 0, x->dtype, n >= 0 && x->rank >= 0 ? (n > x->rank ? n : x->rank) : -1);
        return HONE_OK;
    }
    int n = hone_tensor_ints(s->value, req, HONE_MAX_RANK);
    for (int i = 0; i < n; i++)
        if (req[i] < 0)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "negative dimension %lld in shape", (long long)req[i]);
    st = hone_infer_broadcast(ic, x->rank, x->dims, n, req, &r, d);
    if (!st)
        st = tf_check_size(ic, r, d);
    if (!st)
        hone_infer_set(ic, 0, x->dtype, r, d);
    return st;
}

/* A view of x with stride 0 on the broadcast dims. */
hone_status eval_expand(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_tensor *o = ec->out[0];
    int64_t s[HONE_MAX_RANK], vs[HONE_MAX_RANK];
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    hone_strides(x->rank, x->dims, s);
    for (int i = 0; i < o->rank; i++) {
        int xi = i - (o->rank - x->rank);
        vs[i] = xi < 0 || x->dims[xi] == 1 ? 0 : s[xi];
    }
    tf_copy_view(o, x, 0, vs, o->rank, o->dims);
    return HONE_OK;
}

/* Per-dim repeat counts of Tile (opset 1: tiles and axis inputs). *known false
 * when the counts are not known. */
static hone_status tile_repeats(hone_infer *ic, int rank, int64_t *rep, bool *known)
{
    *known = false;
    if (ic->opset < 6) {
        const hone_tensor *t = tf_ival(ic, 1), *a = tf_ival(ic, 2);
        if (!tf_has(ic, 2))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                                  "Tile-1 needs tiles and axis");
        if (!t || !a)
            return HONE_OK;
        int ax;
        hone_status st = tf_axis(ic, hone_tensor_get_i64(a, 0), rank, &ax);
        for (int i = 0; i < rank; i++)
            rep[i] = i == ax ? hone_tensor_get_i64(t, 0) : 1;
        *known = !st;
        return st;
    }
    int n = tf_ints_arg(ic->node, ic->opset, 6, "", true, tf_ival(ic, 1), rep, HONE_MAX_RANK);
    if (n == TF_UNKNOWN)
        return HONE_OK;
    if (n != rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "repeats must have %d entries",
                              rank);
    *known = true;
    return HONE_OK;
}

/* Tile: x[d_i], repeats[r_i] -> [d_i * r_i]. */
hone_status infer_tile(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t rep[HONE_MAX_RANK], d[HONE_MAX_RANK];
    bool known;
    if (x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return HONE_OK;
    }
    hone_status st = tile_repeats(ic, x->rank, rep, &known);
    for (int i = 0; !st && i < x->rank; i++) {
        if (known && rep[i] < 0)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "negative repeat %lld",
                                  (long long)rep[i]);
        if (!known || (x->dims[i] < 0 && rep[i] != 1))
            d[i] = HONE_DIM_UNKNOWN;
        else if (rep[i] && x->dims[i] > INT64_MAX / rep[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "tiled dim %d overflows", i);
        else
            d[i] = x->dims[i] * rep[i];
    }
    if (!st)
        st = tf_check_size(ic, x->rank, d);
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, d);
    return st;
}

/* A 2r-dim view [rep0, d0, rep1, d1, ...] of x with stride 0 on the repeats. */
hone_status eval_tile(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t s[HONE_MAX_RANK], vd[TF_MAX_RANK], vs[TF_MAX_RANK];
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    hone_strides(x->rank, x->dims, s);
    for (int i = 0; i < x->rank; i++) {
        vd[2 * i] = x->dims[i] ? ec->out[0]->dims[i] / x->dims[i] : 0;
        vd[2 * i + 1] = x->dims[i];
        vs[2 * i] = 0;
        vs[2 * i + 1] = s[i];
    }
    tf_copy_view(ec->out[0], x, 0, vs, 2 * x->rank, vd);
    return HONE_OK;
}

/* ---- DepthToSpace, SpaceToDepth ---- */

/* Block size of DepthToSpace/SpaceToDepth, validated. */
static hone_status block_size(hone_ctx *ctx, const hone_node *n, int64_t *b)
{
    *b = hone_attr_int(n, "blocksize", 0);
    if (*b <= 0 || *b > (int64_t)1 << 20)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "blocksize must be positive, got %lld",
                              (long long)*b);
    return HONE_OK;
}

/* Shared rule of DepthToSpace (to_space) and SpaceToDepth on x[N, C, H, W]:
 * dims 1..3 are multiplied by mul and divided by div, which must divide them. */
static hone_status infer_blocks(hone_infer *ic, bool to_space)
{
    const hone_tinfo *x = ic->in[0];
    int64_t b, d[4];
    hone_status st = block_size(ic->ctx, ic->node, &b);
    if (!st && x->rank >= 0 && x->rank != 4)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be 4-D");
    if (st || x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, 4);
        return st;
    }
    int64_t mul[4] = {1, to_space ? 1 : b * b, to_space ? b : 1, to_space ? b : 1};
    int64_t div[4] = {1, to_space ? b * b : 1, to_space ? 1 : b, to_space ? 1 : b};
    for (int i = 0; i < 4; i++) {
        if (x->dims[i] >= 0 && x->dims[i] % div[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "dim %d (%lld) is not a multiple of %lld", i,
                                  (long long)x->dims[i], (long long)div[i]);
        d[i] = x->dims[i] < 0 ? (i ? HONE_DIM_UNKNOWN : x->dims[i]) : x->dims[i] / div[i] * mul[i];
    }
    hone_infer_set(ic, 0, x->dtype, 4, d);
    return HONE_OK;
}

/* Common start of the block kernels: outputs sized, blocksize, x's strides. */
static hone_status eval_blocks_start(hone_eval *ec, int64_t *b, int64_t *s)
{
    hone_status st = tf_need_out(ec);
    if (!st)
        st = block_size(ec->ctx, ec->node, b);
    if (!st)
        hone_strides(4, ec->in[0]->dims, s);
    return st;
}

/* DepthToSpace: x[N, C*b*b, H, W] -> [N, C, H*b, W*b] (modes DCR, CRD). */
hone_status infer_depthtospace(hone_infer *ic)
{
    const char *mode = hone_attr_str(ic->node, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "unknown mode '%s'", mode);
    return infer_blocks(ic, true);
}

/* Output viewed as [N, C, H, b, W, b]; x[n, src channel, h, w] per mode:
 * DCR reads channel (i*b + j)*C + c, CRD reads c*b*b + i*b + j. */
hone_status eval_depthtospace(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t b, s[4];
    hone_status st = eval_blocks_start(ec, &b, s);
    if (st)
        return st;
    int64_t c = x->dims[1] / (b * b);
    bool crd = !strcmp(hone_attr_str(ec->node, "mode", "DCR"), "CRD");
    int64_t vd[6] = {x->dims[0], c, x->dims[2], b, x->dims[3], b};
    int64_t vs[6] = {s[0], crd ? s[1] * b * b : s[1], s[2], crd ? s[1] * b : s[1] * b * c,
                     s[3], crd ? s[1] : s[1] * c};
    tf_copy_view(ec->out[0], x, 0, vs, 6, vd);
    return HONE_OK;
}

/* SpaceToDepth: x[N, C, H*b, W*b] -> [N, C*b*b, H, W]. */
hone_status infer_spacetodepth(hone_infer *ic)
{
    return infer_blocks(ic, false);
}

/* Output viewed as [N, b(i), b(j), C, H, W] reading x[n, c, h*b + i, w*b + j]. */
hone_status eval_spacetodepth(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t b, s[4];
    hone_status st = eval_blocks_start(ec, &b, s);
    if (st)
        return st;
    int64_t vd[6] = {x->dims[0], b, b, x->dims[1], x->dims[2] / b, x->dims[3] / b};
    int64_t vs[6] = {s[0], s[2], s[3], s[1], s[2] * b, s[3] * b};
    tf_copy_view(ec->out[0], x, 0, vs, 6, vd);
    return HONE_OK;
}

/* ---- ReverseSequence ---- */

/* The time and batch axes of ReverseSequence (0 and 1, distinct). */
static hone_status revseq_axes(hone_ctx *ctx, const hone_node *n, int *t, int *b)
{
    *t = (int)hone_attr_int(n, "time_axis", 0);
    *b = (int)hone_attr_int(n, "batch_axis", 1);
    if ((*t != 0 && *t != 1) || (*b != 0 && *b != 1) || *t == *b)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "time_axis and batch_axis must be 0 and 1");
    return HONE_OK;
}

/* ReverseSequence: x[T,B,..] or [B,T,..], lens[B] -> x with the first lens[b] steps reversed. */
hone_status infer_reversesequence(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *l = ic->in[1];
    int t, b;
    hone_status st = revseq_axes(ic->ctx, ic->node, &t, &b);
    if (!st)
        st = tf_check_int_input(ic, 1, "sequence_lens");
    if (!st && x->rank >= 0 && x->rank < 2)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input rank must be >= 2");
    if (!st && l->rank >= 0 &&
        (l->rank != 1 ||
         (x->rank >= 2 && l->dims[0] >= 0 && x->dims[b] >= 0 && l->dims[0] != x->dims[b])))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "sequence_lens must be [batch]");
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    return st;
}

/* Copies each (batch, time) block from its mirrored time step within the sequence length. */
hone_status eval_reversesequence(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *l = ec->in[1];
    int ta, ba;
    hone_status st = tf_need_out(ec);
    if (!st)
        st = revseq_axes(ec->ctx, ec->node, &ta, &ba);
    if (st)
        return st;
    int64_t T = x->dims[ta], B = x->dims[ba], inner = T * B != 0 ? x->numel / (T * B) : 0;
    int64_t ts = ta == 0 ? B * inner : inner, bs = ba == 0 ? T * inner : inner;
    if (l->numel != B)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                              "sequence_lens has %lld entries, batch is %lld", (long long)l->numel,
                              (long long)B);
    for (int64_t b = 0; b < B; b++) {
        int64_t len = hone_tensor_get_i64(l, b);
        if (len < 0 || len > T)
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID,
                                  "sequence length %lld of batch %lld is outside [0, %lld]",
                                  (long long)len, (long long)b, (long long)T);
        for (int64_t t = 0; t < T; t++)
            tf_copy(ec->out[0], b * bs + t * ts, x, b * bs + (t < len ? len - 1 - t : t) * ts,
                    inner);
    }
    return HONE_OK;
}
