/*
 * Tensor family, shape ops: Constant, ConstantOfShape, Shape, Size, Reshape,
 * Flatten, Squeeze, Unsqueeze, and the generators Range, EyeLike, Trilu.
 *
 * These are the ops of PyTorch's Shape->Gather->Unsqueeze->Concat->Reshape
 * chains, so their inference works hard: Shape and Size publish their value
 * whenever the input dims are known, and Reshape, ConstantOfShape and Range
 * take their output shape from input contents when those are known (the
 * driver's data propagation supplies them), keeping symbolic dims where a rule
 * copies a dim unchanged. Kernels that only relabel the shape (Reshape,
 * Flatten, Squeeze, Unsqueeze) are one copy of the data.
 */
#include "tensor_ops.h"

/* ---- Constant ---- */

static const char *const constant_attrs[] = {
    "value",      "value_float",  "value_floats",  "value_int",
    "value_ints", "value_string", "value_strings", "sparse_value",
};

/* The one attribute that defines a Constant's value; reports an error otherwise. */
static hone_status constant_attr(hone_ctx *ctx, const hone_node *n, const hone_attr **out)
{
    const hone_attr *found = NULL;
    for (size_t i = 0; i < sizeof constant_attrs / sizeof *constant_attrs; i++) {
        const hone_attr *a = hone_attr_find(n, constant_attrs[i]);
        if (a && found)
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "has both '%s' and '%s'", found->name,
                                  a->name);
        if (a)
            found = a;
    }
    if (!found)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "has no value attribute");
    if (!strcmp(found->name, "sparse_value"))
        return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "sparse constants are not supported");
    *out = found;
    return HONE_OK;
}

/* dtype and shape of the tensor a Constant attribute defines. */
static hone_status constant_type(hone_infer *ic, const hone_attr *a, hone_dtype *dt, int *rank,
                                 int64_t *dims)
{
    *rank = 0;
    switch (a->kind) {
    case HONE_ATTR_TENSOR:
        *dt = a->t->dtype;
        *rank = a->t->rank;
        memcpy(dims, a->t->dims, sizeof(int64_t) * (size_t)a->t->rank);
        return HONE_OK;
    case HONE_ATTR_FLOATS: *rank = 1; /* fall through */
    case HONE_ATTR_FLOAT: *dt = HONE_DT_FLOAT; break;
    case HONE_ATTR_INTS: *rank = 1; /* fall through */
    case HONE_ATTR_INT: *dt = HONE_DT_INT64; break;
    case HONE_ATTR_STRINGS: *rank = 1; /* fall through */
    case HONE_ATTR_STRING: *dt = HONE_DT_STRING; break;
    default:
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "attribute '%s' has the wrong kind", a->name);
    }
    dims[0] = a->n;
    return HONE_OK;
}

/* Writes a Constant attribute's contents into t, shaped by constant_type. */
static void constant_fill(hone_tensor *t, const hone_attr *a)
{
    char **s = t->data;
    switch (a->kind) {
    case HONE_ATTR_TENSOR: tf_copy(t, 0, a->t, 0, t->numel); break;
    case HONE_ATTR_FLOAT: hone_tensor_set_f64(t, 0, a->f); break;
    case HONE_ATTR_INT: hone_tensor_set_i64(t, 0, a->i); break;
    case HONE_ATTR_STRING: s[0] = strdup(a->s); break;
    case HONE_ATTR_FLOATS:
        for (int i = 0; i < a->n; i++)
            hone_tensor_set_f64(t, i, a->floats[i]);
        break;
    case HONE_ATTR_INTS:
        for (int i = 0; i < a->n; i++)
            hone_tensor_set_i64(t, i, a->ints[i]);
        break;
    case HONE_ATTR_STRINGS:
        for (int i = 0; i < a->n; i++)
            s[i] = strdup(a->strings[i]);
        break;
    default: break;
    }
}

/* Constant: () -> the attribute's tensor; its value is published for inference. */
hone_status infer_constant(hone_infer *ic)
{
    const hone_attr *a;
    hone_dtype dt = HONE_DT_UNDEF;
    int rank = 0;
    int64_t dims[HONE_MAX_RANK];
    hone_status st = constant_attr(ic->ctx, ic->node, &a);
    if (!st)
        st = constant_type(ic, a, &dt, &rank, dims);
    if (st)
        return st;
    hone_infer_set(ic, 0, dt, rank, dims);
    if (a->kind == HONE_ATTR_TENSOR) {
        ic->out[0].value = a->t;
        return HONE_OK;
    }
    hone_tensor *t = hone_infer_new_value(ic, dt, rank, dims);
    if (t)
        constant_fill(t, a);
    ic->out[0].value = t;
    return HONE_OK;
}

hone_status eval_constant(hone_eval *ec)
{
    const hone_attr *a;
    hone_status st = constant_attr(ec->ctx, ec->node, &a);
    if (!st)
        st = tf_need_out(ec);
    if (!st)
        constant_fill(ec->out[0], a);
    return st;
}

/* ---- ConstantOfShape ---- */

/* The fill value of ConstantOfShape (one element), or NULL for float 0. */
static hone_status cos_value(hone_ctx *ctx, const hone_node *n, const hone_tensor **v)
{
    const hone_attr *a = hone_attr_find(n, "value");
    *v = NULL;
    if (!a)
        return HONE_OK;
    if (a->kind != HONE_ATTR_TENSOR || a->t->numel != 1)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "'value' must be a one-element tensor");
    *v = a->t;
    return HONE_OK;
}

/* Reads the 1-D integer shape input i: *rank is its length (-1 when
 * unknown) and v its contents, or all HONE_DIM_UNKNOWN when not known. */
static hone_status shape_input(hone_infer *ic, int i, int *rank, int64_t *v)
{
    const hone_tinfo *s = ic->in[i];
    hone_status st = tf_check_int_input(ic, i, "the shape input");
    *rank = -1;
    if (st)
        return st;
    if (s->rank >= 0 && s->rank != 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "the shape input must be 1-D");
    if (s->rank == 1 && s->dims[0] > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "requested rank %lld is above %d",
                              (long long)s->dims[0], HONE_MAX_RANK);
    if (s->value && s->value->numel > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "requested rank %lld is above %d",
                              (long long)s->value->numel, HONE_MAX_RANK);
    if (s->value)
        *rank = hone_tensor_ints(s->value, v, HONE_MAX_RANK);
    else if (s->rank == 1 && s->dims[0] >= 0)
        *rank = (int)s->dims[0];
    for (int k = 0; !s->value && k < *rank; k++)
        v[k] = HONE_DIM_UNKNOWN;
    return HONE_OK;
}

/* Fails when a requested size is negative, or too big once all are known. */
static hone_status check_sizes(hone_infer *ic, int rank, const int64_t *dims, bool known)
{
    for (int k = 0; known && k < rank; k++)
        if (dims[k] < 0)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "requested dimension %d is negative (%lld)", k,
                                  (long long)dims[k]);
    return known ? tf_check_size(ic, rank, dims) : HONE_OK;
}

/* ConstantOfShape: shape[k] -> value dtype, dims = contents of shape. */
hone_status infer_constantofshape(hone_infer *ic)
{
    const hone_tensor *v;
    int rank;
    int64_t dims[HONE_MAX_RANK];
    hone_status st = cos_value(ic->ctx, ic->node, &v);
    if (!st)
        st = shape_input(ic, 0, &rank, dims);
    if (!st)
        st = check_sizes(ic, rank, dims, tf_ival(ic, 0) != NULL);
    if (!st)
        hone_infer_set(ic, 0, v ? v->dtype : HONE_DT_FLOAT, rank, dims);
    return st;
}

hone_status eval_constantofshape(hone_eval *ec)
{
    const hone_tensor *v;
    hone_status st = cos_value(ec->ctx, ec->node, &v);
    if (!st)
        st = tf_need_out(ec);
    if (!st && v)
        tf_fill(ec->out[0], 0, ec->out[0]->numel, v, 0);
    return st;
}

/* ---- Shape, Size ---- */

/* The [start, end) dim range Shape reports for a rank (opset 15 attributes, clamped). */
static void shape_range(const hone_node *n, int opset, int rank, int *s, int *e)
{
    int64_t a = opset >= 15 ? hone_attr_int(n, "start", 0) : 0;
    int64_t b = opset >= 15 ? hone_attr_int(n, "end", rank) : rank;
    a = a < 0 ? a + rank : a;
    b = b < 0 ? b + rank : b;
    *s = (int)(a < 0 ? 0 : a > rank ? rank : a);
    *e = (int)(b < 0 ? 0 : b > rank ? rank : b);
    if (*e < *s)
        *e = *s;
}

/* Shape: x[d0..dr) -> i64[e-s] holding d[s..e); the value is published when known. */
hone_status infer_shape(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    if (x->rank < 0) {
        tf_infer_rank(ic, 0, HONE_DT_INT64, 1);
        return HONE_OK;
    }
    int s, e;
    shape_range(ic->node, ic->opset, x->rank, &s, &e);
    int64_t n = e - s;
    hone_infer_set(ic, 0, HONE_DT_INT64, 1, &n);
    for (int i = s; i < e; i++)
        if (x->dims[i] < 0)
            return HONE_OK;
    hone_tensor *t = hone_infer_new_value(ic, HONE_DT_INT64, 1, &n);
    if (t)
        memcpy(t->data, x->dims + s, sizeof(int64_t) * (size_t)n);
    ic->out[0].value = t;
    return HONE_OK;
}

hone_status eval_shape(hone_eval *ec)
{
    int s, e;
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    shape_range(ec->node, ec->opset, ec->in[0]->rank, &s, &e);
    memcpy(ec->out[0]->data, ec->in[0]->dims + s, sizeof(int64_t) * (size_t)(e - s));
    return HONE_OK;
}

/* Size: x -> i64 scalar numel(x); the value is published when known. */
hone_status infer_size(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_infer_set(ic, 0, HONE_DT_INT64, 0, NULL);
    int64_t n = x->rank >= 0 ? tf_dims_prod(x->rank, x->dims) : HONE_DIM_UNKNOWN;
    if (n < 0)
        return HONE_OK;
    hone_tensor *t = hone_infer_new_value(ic, HONE_DT_INT64, 0, NULL);
    if (t)
        *(int64_t *)t->data = n;
    ic->out[0].value = t;
    return HONE_OK;
}

hone_status eval_size(hone_eval *ec)
{
    hone_status st = tf_need_out(ec);
    if (!st)
        *(int64_t *)ec->out[0]->data = ec->in[0]->numel;
    return st;
}

/* Kernel of every op that only relabels the shape: one copy of the data. */
static hone_status eval_relabel(hone_eval *ec)
{
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    if (ec->out[0]->numel != ec->in[0]->numel)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INTERNAL, "element count changed");
    tf_copy(ec->out[0], 0, ec->in[0], 0, ec->in[0]->numel);
    return HONE_OK;
}

/* ---- Reshape ---- */

/* Product of the dims of a and b left after cancelling equal symbolic dims
 * pairwise (skipping index skip_b of b); HONE_DIM_UNKNOWN when a factor is unknown. */
static void cancel_symbols(int ra, const int64_t *a, int rb, const int64_t *b, int skip_b,
                           int64_t *pa, int64_t *pb)
{
    bool used[HONE_MAX_RANK] = {false};
    int64_t xa[HONE_MAX_RANK], xb[HONE_MAX_RANK];
    int na = 0, nb = 0;
    for (int j = 0; j < rb; j++) {
        if (j == skip_b)
            continue;
        int hit = -1;
        for (int i = 0; b[j] < HONE_DIM_UNKNOWN && i < ra && hit < 0; i++)
            if (!used[i] && a[i] == b[j])
                hit = i;
        if (hit >= 0)
            used[hit] = true;
        else
            xb[nb++] = b[j];
    }
    for (int i = 0; i < ra; i++)
        if (!used[i])
            xa[na++] = a[i];
    *pa = tf_dims_prod(na, xa);
    *pb = tf_dims_prod(nb, xb);
}

/* Resolves the one -1 of a Reshape request against the input dims. */
static hone_status reshape_infer_neg(hone_infer *ic, int rank, int64_t *out, int neg)
{
    const hone_tinfo *x = ic->in[0];
    int64_t pin, pout;
    if (x->rank < 0)
        return HONE_OK;
    cancel_symbols(x->rank, x->dims, rank, out, neg, &pin, &pout);
    if (pin < 0 || pout < 0)
        return HONE_OK;
    if (pout == 0 || pin % pout)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "cannot reshape %lld elements: the other dims multiply to %lld",
                              (long long)pin, (long long)pout);
    out[neg] = pin / pout;
    return HONE_OK;
}

/* Checks that a fully resolved Reshape keeps the element count. */
static hone_status reshape_check_count(hone_infer *ic, int rank, const int64_t *out)
{
    const hone_tinfo *x = ic->in[0];
    int64_t pin, pout;
    if (x->rank < 0)
        return HONE_OK;
    cancel_symbols(x->rank, x->dims, rank, out, -1, &pin, &pout);
    if (pin >= 0 && pout >= 0 && pin != pout)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "cannot reshape %lld elements into %lld", (long long)pin,
                              (long long)pout);
    return HONE_OK;
}

/* Applies Reshape's rules for 0 (copy, unless allowzero) and -1 (infer) to req. */
static hone_status reshape_resolve(hone_infer *ic, const int64_t *req, int rank, int64_t *out)
{
    const hone_tinfo *x = ic->in[0];
    bool allowzero = ic->opset >= 14 && hone_attr_int(ic->node, "allowzero", 0);
    int neg = -1;
    bool zero = false;
    for (int i = 0; i < rank; i++) {
        out[i] = req[i];
        if (req[i] < -1)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "invalid dimension %lld",
                                  (long long)req[i]);
        if (req[i] == -1 && neg >= 0)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "more than one -1 in the shape");
        if (req[i] == -1)
            neg = i;
        zero |= req[i] == 0;
        if (req[i] == 0 && !allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                      "0 at position %d copies a dim the rank-%d input lacks", i,
                                      x->rank);
            out[i] = x->rank >= 0 ? x->dims[i] : HONE_DIM_UNKNOWN;
        }
    }
    if (allowzero && zero && neg >= 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "allowzero forbids 0 with -1");
    return neg >= 0 ? reshape_infer_neg(ic, rank, out, neg) : reshape_check_count(ic, rank, out);
}

/* The requested Reshape shape: attribute before opset 5, input 1 after.
 * *known is false when the input's contents are not known. */
static hone_status reshape_request(hone_infer *ic, int64_t *req, int *rank, bool *known)
{
    *known = true;
    if (ic->opset >= 5) {
        if (!tf_has(ic, 1))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "missing shape input");
        *known = tf_ival(ic, 1) != NULL;
        return shape_input(ic, 1, rank, req);
    }
    *rank = tf_ints_arg(ic->node, ic->opset, 0, "shape", false, NULL, req, HONE_MAX_RANK);
    if (*rank == TF_ABSENT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "missing 'shape' attribute");
    if (*rank == TF_TOOLONG)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "rank above %d", HONE_MAX_RANK);
    return HONE_OK;
}

/* Reshape: x, shape[k] -> x's elements with dims from shape (opset < 5: attribute). */
hone_status infer_reshape(hone_infer *ic)
{
    int64_t req[HONE_MAX_RANK], out[HONE_MAX_RANK];
    int rank = -1;
    bool known;
    hone_status st = reshape_request(ic, req, &rank, &known);
    if (!st && !known) {
        hone_infer_set(ic, 0, ic->in[0]->dtype, rank, NULL);
        return HONE_OK;
    }
    if (!st)
        st = reshape_resolve(ic, req, rank, out);
    if (!st)
        st = tf_check_size(ic, rank, out);
    if (!st)
        hone_infer_set(ic, 0, ic->in[0]->dtype, rank, out);
    return st;
}

hone_status eval_reshape(hone_eval *ec)
{
    return eval_relabel(ec);
}

/* ---- Flatten ---- */

/* Product of dims[a..b); a single dim (even symbolic) is kept as is. */
static int64_t dims_span(const int64_t *dims, int a, int b)
{
    return b - a == 1 ? dims[a] : tf_dims_prod(b - a, dims + a);
}

/* Flatten: x[d0..dr), axis a -> [d0*..*d(a-1), da*..*d(r-1)]. */
hone_status infer_flatten(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t axis = hone_attr_int(ic->node, "axis", 1);
    int64_t d[2];
    if (x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, 2);
        return HONE_OK;
    }
    if (axis < 0 && ic->opset >= 11)
        axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "axis %lld is out of range for rank %d",
                              (long long)hone_attr_int(ic->node, "axis", 1), x->rank);
    d[0] = dims_span(x->dims, 0, (int)axis);
    d[1] = dims_span(x->dims, (int)axis, x->rank);
    hone_infer_set(ic, 0, x->dtype, 2, d);
    return HONE_OK;
}

hone_status eval_flatten(hone_eval *ec)
{
    return eval_relabel(ec);
}

/* ---- Squeeze, Unsqueeze ---- */

/* Reads the axes of Squeeze/Unsqueeze (attribute before opset 13, input after). */
static int axes_arg(hone_infer *ic, int64_t *axes)
{
    return tf_ints_arg(ic->node, ic->opset, 13, "axes", tf_has(ic, 1), tf_ival(ic, 1), axes,
                       HONE_MAX_RANK * 2);
}

/* Marks which dims Squeeze removes; the axes must name dims of extent 1. */
static hone_status squeeze_mask(hone_infer *ic, const int64_t *axes, int n, bool *drop)
{
    const hone_tinfo *x = ic->in[0];
    for (int i = 0; i < x->rank; i++)
        drop[i] = n < 0 && x->dims[i] == 1;
    for (int k = 0; k < n; k++) {
        int a;
        hone_status st = tf_axis(ic, axes[k], x->rank, &a);
        if (st)
            return st;
        if (drop[a])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "axis %d repeated", a);
        if (x->dims[a] >= 0 && x->dims[a] != 1)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "cannot squeeze axis %d of extent %lld", a,
                                  (long long)x->dims[a]);
        drop[a] = true;
    }
    return HONE_OK;
}

/* Squeeze: x with the extent-1 dims listed in axes (all of them by default) removed. */
hone_status infer_squeeze(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t axes[HONE_MAX_RANK * 2], d[HONE_MAX_RANK];
    bool drop[HONE_MAX_RANK];
    int n = axes_arg(ic, axes), r = 0;
    if (n == TF_TOOLONG)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "too many axes");
    bool unknown_ones = n == TF_ABSENT && x->rank >= 0 && tf_dims_prod(x->rank, x->dims) < 0;
    if (x->rank < 0 || n == TF_UNKNOWN || unknown_ones) {
        int rr = x->rank >= 0 && n == TF_UNKNOWN && ic->in[1]->rank == 1 && ic->in[1]->dims[0] >= 0
            ? x->rank - (int)ic->in[1]->dims[0]
            : -1;
        tf_infer_rank(ic, 0, x->dtype, rr >= 0 ? rr : -1);
        return HONE_OK;
    }
    hone_status st = squeeze_mask(ic, axes, n, drop);
    if (st)
        return st;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            d[r++] = x->dims[i];
    hone_infer_set(ic, 0, x->dtype, r, d);
    return HONE_OK;
}

hone_status eval_squeeze(hone_eval *ec)
{
    return eval_relabel(ec);
}

/* Unsqueeze: x with extent-1 dims inserted at axes (positions in the output). */
hone_status infer_unsqueeze(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t axes[HONE_MAX_RANK * 2], d[HONE_MAX_RANK];
    bool ins[HONE_MAX_RANK] = {false};
    int n = axes_arg(ic, axes);
    if (n == TF_ABSENT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "axes are required");
    if (n == TF_TOOLONG || (n >= 0 && x->rank + n > HONE_MAX_RANK))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "output rank above %d",
                              HONE_MAX_RANK);
    if (x->rank < 0 || n < 0) {
        tf_infer_rank(ic, 0, x->dtype, -1);
        return HONE_OK;
    }
    int r = x->rank + n;
    for (int k = 0; k < n; k++) {
        int a;
        hone_status st = hone_infer_axis(ic, axes[k], r, &a);
        if (st)
            return st;
        if (ins[a])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "axis %d repeated", a);
        ins[a] = true;
    }
    for (int i = 0, j = 0; i < r; i++)
        d[i] = ins[i] ? 1 : x->dims[j++];
    hone_infer_set(ic, 0, x->dtype, r, d);
    return HONE_OK;
}

hone_status eval_unsqueeze(hone_eval *ec)
{
    return eval_relabel(ec);
}

/* ---- Range ---- */

/* Element count of Range(start, limit, delta); errors for delta 0 or a count past the limits. */
static hone_status range_count(hone_ctx *ctx, const hone_node *n, const hone_tensor *s,
                               const hone_tensor *l, const hone_tensor *d, int64_t *count)
{
    if (s->numel != 1 || l->numel != 1 || d->numel != 1)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "start, limit and delta must be scalars");
    double c;
    if (hone_dtype_is_int(s->dtype)) {
        int64_t a = hone_tensor_get_i64(s, 0), b = hone_tensor_get_i64(l, 0);
        int64_t k = hone_tensor_get_i64(d, 0);
        int64_t diff;
        c = k == 0 ? NAN : ceil(((double)b - (double)a) / (double)k);
        if (k != 0 && !__builtin_sub_overflow(b, a, &diff) && fabs(c) < 9e15)
            c = (double)(diff / k + (diff % k != 0 && (diff < 0) == (k < 0)));
    } else {
        double a = hone_tensor_get_f64(s, 0), b = hone_tensor_get_f64(l, 0);
        double k = hone_tensor_get_f64(d, 0);
        c = ceil((b - a) / k);
    }
    if (isnan(c) || isinf(c))
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "delta is zero or the range is not finite");
    if (c > (double)ctx->limits.max_numel)
        return hone_node_fail(ctx, n, HONE_ERR_LIMIT, "range of %.0f elements exceeds the limit",
                              c);
    *count = c < 0 ? 0 : (int64_t)c;
    return HONE_OK;
}

/* Range: start, limit, delta (scalars of one type) -> [ceil((limit-start)/delta)]. */
hone_status infer_range(hone_infer *ic)
{
    hone_dtype dt = ic->in[0]->dtype;
    for (int i = 1; i < 3; i++)
        if (ic->in[i]->dtype != dt && dt && ic->in[i]->dtype)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "inputs differ in type");
    if (dt == HONE_DT_STRING || dt == HONE_DT_BOOL)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "Range needs a numeric type");
    if (!tf_ival(ic, 0) || !tf_ival(ic, 1) || !tf_ival(ic, 2)) {
        tf_infer_rank(ic, 0, dt, 1);
        return HONE_OK;
    }
    int64_t n;
    hone_status st =
        range_count(ic->ctx, ic->node, tf_ival(ic, 0), tf_ival(ic, 1), tf_ival(ic, 2), &n);
    if (!st)
        st = tf_check_size(ic, 1, &n);
    if (!st)
        hone_infer_set(ic, 0, dt, 1, &n);
    return st;
}

/* Writes start + i*delta, in int64 for integer types and double otherwise. */
hone_status eval_range(hone_eval *ec)
{
    hone_tensor *o = ec->out[0];
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    if (hone_dtype_is_int(o->dtype)) {
        int64_t a = hone_tensor_get_i64(ec->in[0], 0), k = hone_tensor_get_i64(ec->in[2], 0);
        for (int64_t i = 0; i < o->numel; i++)
            hone_tensor_set_i64(o, i, (int64_t)((uint64_t)a + (uint64_t)i * (uint64_t)k));
    } else {
        double a = hone_tensor_get_f64(ec->in[0], 0), k = hone_tensor_get_f64(ec->in[2], 0);
        for (int64_t i = 0; i < o->numel; i++)
            hone_tensor_set_f64(o, i, a + (double)i * k);
    }
    return HONE_OK;
}

/* ---- EyeLike, Trilu ---- */

/* Clamps a diagonal offset into [-rows-1, cols+1], where it acts the same and
 * index arithmetic cannot overflow. */
static int64_t clamp_diag(int64_t k, int64_t rows, int64_t cols)
{
    return k < -rows - 1 ? -rows - 1 : k > cols + 1 ? cols + 1 : k;
}

/* EyeLike: x[n,m] -> [n,m] of dtype (default x's) with ones on diagonal k. */
hone_status infer_eyelike(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_dtype dt = (hone_dtype)hone_attr_int(ic->node, "dtype", x->dtype);
    if (x->rank >= 0 && x->rank != 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be 2-D, got rank %d",
                              x->rank);
    if (dt <= HONE_DT_UNDEF || dt >= HONE_DT_COUNT || dt == HONE_DT_STRING || !hone_dtype_size(dt))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED, "dtype %d", (int)dt);
    hone_infer_set(ic, 0, dt, 2, x->rank == 2 ? x->dims : NULL);
    return HONE_OK;
}

/* Sets ones on diagonal k of the zeroed output. */
hone_status eval_eyelike(hone_eval *ec)
{
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    hone_tensor *o = ec->out[0];
    int64_t rows = o->dims[0], cols = o->dims[1];
    int64_t k = clamp_diag(hone_attr_int(ec->node, "k", 0), rows, cols);
    for (int64_t i = 0; i < rows; i++)
        if (i + k >= 0 && i + k < cols)
            hone_tensor_set_f64(o, i * cols + i + k, 1);
    return HONE_OK;
}

/* Trilu: x[..., n, m], k -> x with the part below (upper=1) or above (upper=0) diagonal k zeroed.
 */
hone_status infer_trilu(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    if (x->rank >= 0 && x->rank < 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input rank must be >= 2");
    if (tf_has(ic, 1) && ic->in[1]->rank > 0 && tf_dims_prod(ic->in[1]->rank, ic->in[1]->dims) != 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "k must be a scalar");
    hone_status st = tf_check_int_input(ic, 1, "k");
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    return st;
}

/* Copies, row by row, the run of columns the triangle keeps; the rest stays zero. */
hone_status eval_trilu(hone_eval *ec)
{
    hone_status st = tf_need_out(ec);
    if (st)
        return st;
    const hone_tensor *x = ec->in[0];
    bool upper = hone_attr_int(ec->node, "upper", 1) != 0;
    if (tf_ein(ec, 1) && ec->in[1]->numel != 1)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "k must hold one value");
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    int64_t k = clamp_diag(tf_ein(ec, 1) ? hone_tensor_get_i64(ec->in[1], 0) : 0, rows, cols);
    int64_t mats = rows * cols != 0 ? x->numel / (rows * cols) : 0;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            /* kept columns: j - i >= k (upper) or j - i <= k (lower) */
            int64_t lo = upper ? i + k : 0, hi = upper ? cols : i + k + 1;
            lo = lo < 0 ? 0 : lo;
            hi = hi > cols ? cols : hi;
            if (lo < hi)
                tf_copy(ec->out[0], (m * rows + i) * cols + lo, x, (m * rows + i) * cols + lo,
                        hi - lo);
        }
    return HONE_OK;
}
