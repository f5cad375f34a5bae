/*
 * Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare.
 *
 * Each reduction is described by an rspec (which axes are reduced, whether
 * they stay as 1s, whether the op is a no-op) that inference and the kernel
 * both derive from the node with reduce_spec, so the two always agree. Axes
 * come from the "axes" attribute until the opset where each op switched to an
 * input (ReduceSum at 13, the others at 18); empty axes mean "all axes"
 * unless noop_with_empty_axes (input form only) makes the op the identity.
 *
 * The reference kernel walks, for each output element, the sub-box of reduced
 * input elements with an odometer and accumulates in double; integer sums,
 * products and extrema accumulate in int64 (wrapping) so large integers stay
 * exact. float32 Sum/Mean over one contiguous block of axes use the runtime's
 * vectorisable kernel. ArgMax/ArgMin, CumSum and TopK live in reduce_axis.c.
 */
#include "hone_rt.h"
#include "ops_util.h"
#include "reduce.h"

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ } rkind;

typedef struct rspec {
    int rank;
    bool red[HONE_MAX_RANK]; /* axis i is reduced */
    bool keep;               /* reduced axes stay as size-1 dims */
    bool noop;               /* empty axes with noop_with_empty_axes: identity */
} rspec;

static rkind reduce_kind(hone_op op)
{
    switch (op) {
    case HONE_OP_REDUCE_MEAN: return R_MEAN;
    case HONE_OP_REDUCE_MAX: return R_MAX;
    case HONE_OP_REDUCE_MIN: return R_MIN;
    case HONE_OP_REDUCE_PROD: return R_PROD;
    case HONE_OP_REDUCE_L1: return R_L1;
    case HONE_OP_REDUCE_L2: return R_L2;
    case HONE_OP_REDUCE_LOG_SUM: return R_LOGSUM;
    case HONE_OP_REDUCE_LOG_SUM_EXP: return R_LOGSUMEXP;
    case HONE_OP_REDUCE_SUM_SQUARE: return R_SUMSQ;
    default: return R_SUM;
    }
}

/* True when the node reads its axes from input 1 instead of an attribute. */
static bool axes_from_input(const hone_node *n, int opset)
{
    return opset >= 18 || (n->op == HONE_OP_REDUCE_SUM && opset >= 13);
}

hone_status hone_reduce_axis(hone_ctx *ctx, const hone_node *n, int64_t a, int rank, int *out)
{
    if (a < -rank || a >= rank)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "axis %lld is out of range for rank %d",
                              (long long)a, rank);
    *out = (int)(a < 0 ? a + rank : a);
    return HONE_OK;
}

/* Reads the requested axes (attribute or input tensor) into ax; returns the count. */
static hone_status read_axes(hone_ctx *ctx, const hone_node *n, int opset, const hone_tensor *t,
                             int64_t *ax, int *na)
{
    *na = 0;
    if (axes_from_input(n, opset)) {
        if (!t)
            return HONE_OK;
        if (t->rank > 1 || !hone_dtype_is_int(t->dtype) || t->numel > HONE_MAX_RANK)
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                                  "axes must be a 1-D integer tensor of at most %d entries",
                                  HONE_MAX_RANK);
        *na = hone_tensor_ints(t, ax, HONE_MAX_RANK);
        return HONE_OK;
    }
    const int64_t *v;
    int k = hone_attr_ints(n, "axes", &v);
    if (k > HONE_MAX_RANK)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "%d axes given, at most %d allowed", k,
                              HONE_MAX_RANK);
    for (int i = 0; i < k; i++)
        ax[i] = v[i];
    *na = k > 0 ? k : 0;
    return HONE_OK;
}

/* Fills s for an input of the given rank; axes_in is input 1 (NULL when absent). */
static hone_status reduce_spec(hone_ctx *ctx, const hone_node *n, int opset, int rank,
                               const hone_tensor *axes_in, rspec *s)
{
    int64_t ax[HONE_MAX_RANK];
    int na;
    memset(s, 0, sizeof *s);
    s->rank = rank;
    s->keep = hone_attr_int(n, "keepdims", 1) != 0;
    hone_status st = read_axes(ctx, n, opset, axes_in, ax, &na);
    if (st)
        return st;
    if (na == 0) {
        s->noop = axes_from_input(n, opset) && hone_attr_int(n, "noop_with_empty_axes", 0);
        for (int i = 0; i < rank; i++)
            s->red[i] = !s->noop;
        return HONE_OK;
    }
    for (int i = 0; i < na; i++) {
        int a;
        if ((st = hone_reduce_axis(ctx, n, ax[i], rank, &a)))
            return st;
        s->red[a] = true;
    }
    return HONE_OK;
}

/* Output dims of the reduction of dims under s; returns the output rank. */
static int reduce_shape(const rspec *s, const int64_t *dims, int64_t *out)
{
    int r = 0;
    for (int i = 0; i < s->rank; i++) {
        if (!s->red[i])
            out[r++] = dims[i];
        else if (s->keep)
            out[r++] = 1;
    }
    return r;
}

hone_status hone_reduce_check_numeric(hone_ctx *ctx, const hone_node *n, hone_dtype dt)
{
    if (dt == HONE_DT_UNDEF || hone_dtype_is_float(dt) || hone_dtype_is_int(dt))
        return HONE_OK;
    return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "input of type %s is not numeric",
                          hone_dtype_name(dt));
}

hone_status infer_reduce(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    const hone_tinfo *ax = ic->n_in > 1 ? ic->in[1] : NULL;
    hone_status st = hone_reduce_check_numeric(ic->ctx, ic->node, x->dtype);
    if (st)
        return st;
    bool keep = hone_attr_int(ic->node, "keepdims", 1) != 0;
    if (x->rank < 0 || (ax && !ax->value && axes_from_input(ic->node, ic->opset))) {
        /* axes unknown: with keepdims the rank survives, the dims do not */
        hone_infer_set(ic, 0, x->dtype, keep ? x->rank : -1, NULL);
        return HONE_OK;
    }
    rspec s;
    if ((st = reduce_spec(ic->ctx, ic->node, ic->opset, x->rank, ax ? ax->value : NULL, &s)))
        return st;
    int64_t d[HONE_MAX_RANK];
    int r = s.noop ? x->rank : reduce_shape(&s, x->dims, d);
    hone_infer_set(ic, 0, x->dtype, r, s.noop ? x->dims : d);
    return HONE_OK;
}

/* Odometer over a subset of a tensor's dims, tracking the flat offset. */
typedef struct walk {
    int n;
    int64_t dims[HONE_MAX_RANK], strides[HONE_MAX_RANK], idx[HONE_MAX_RANK];
    int64_t off;
} walk;

/* Walk over the dims of x whose reduced flag equals `reduced`. */
static void walk_init(walk *w, const hone_tensor *x, const rspec *s, bool reduced)
{
    int64_t st[HONE_MAX_RANK];
    hone_strides(x->rank, x->dims, st);
    memset(w, 0, sizeof *w);
    for (int i = 0; i < x->rank; i++)
        if (s->red[i] == reduced) {
            w->dims[w->n] = x->dims[i];
            w->strides[w->n++] = st[i];
        }
}

/* Steps to the next position; after the last one it wraps to offset 0. */
static void walk_next(walk *w)
{
    for (int i = w->n - 1; i >= 0; i--) {
        w->off += w->strides[i];
        if (++w->idx[i] < w->dims[i])
            return;
        w->off -= w->strides[i] * w->dims[i];
        w->idx[i] = 0;
    }
}

/* Largest element of one reduced sub-box (for the stable LogSumExp). */
static double box_max(const hone_tensor *x, walk *in, int64_t base, int64_t cnt)
{
    double m = -INFINITY;
    for (int64_t j = 0; j < cnt; j++, walk_next(in)) {
        double v = hone_tensor_get_f64(x, base + in->off);
        if (v > m || isnan(v))
            m = v;
    }
    return m;
}

/* Reduces the sub-box of cnt elements at base in double. */
static double reduce_box_f64(const hone_tensor *x, walk *in, int64_t base, int64_t cnt, rkind k)
{
    double shift = k == R_LOGSUMEXP ? box_max(x, in, base, cnt) : 0;
    if (k == R_LOGSUMEXP && !isfinite(shift))
        return shift;
    double acc = k == R_PROD ? 1 : k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : 0;
    for (int64_t j = 0; j < cnt; j++, walk_next(in)) {
        double v = hone_tensor_get_f64(x, base + in->off);
        switch (k) {
        case R_MAX: acc = v > acc || isnan(v) ? v : acc; break;
        case R_MIN: acc = v < acc || isnan(v) ? v : acc; break;
        case R_PROD: acc *= v; break;
        case R_L1: acc += fabs(v); break;
        case R_L2: case R_SUMSQ: acc += v * v; break;
        case R_LOGSUMEXP: acc += exp(v - shift); break;
        default: acc += v; break;
        }
    }
    switch (k) {
    case R_MEAN: return acc / (double)cnt;
    case R_L2: return sqrt(acc);
    case R_LOGSUM: return log(acc);
    case R_LOGSUMEXP: return log(acc) + shift;
    default: return acc;
    }
}

/* Kinds the int64 path computes exactly. */
static bool int_kind(rkind k)
{
    return k != R_L2 && k != R_LOGSUM && k != R_LOGSUMEXP;
}

/* Reduces a non-empty sub-box in int64 (sums and products wrap). */
static int64_t reduce_box_i64(const hone_tensor *x, walk *in, int64_t base, int64_t cnt, rkind k)
{
    int64_t first = hone_tensor_get_i64(x, base + in->off);
    uint64_t acc = k == R_PROD ? 1 : 0;
    int64_t ext = first;
    for (int64_t j = 0; j < cnt; j++, walk_next(in)) {
        int64_t v = hone_tensor_get_i64(x, base + in->off);
        switch (k) {
        case R_MAX: ext = v > ext ? v : ext; break;
        case R_MIN: ext = v < ext ? v : ext; break;
        case R_PROD: acc *= (uint64_t)v; break;
        case R_L1: acc += v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; break;
        case R_SUMSQ: acc += (uint64_t)v * (uint64_t)v; break;
        default: acc += (uint64_t)v; break;
        }
    }
    if (k == R_MAX || k == R_MIN)
        return ext;
    return k == R_MEAN ? (int64_t)acc / cnt : (int64_t)acc;
}

/* Reference reduction of x into y for any numeric dtype. */
static void reduce_generic(const hone_tensor *x, hone_tensor *y, const rspec *s, rkind k)
{
    walk out, in;
    walk_init(&out, x, s, false);
    walk_init(&in, x, s, true);
    int64_t cnt = 1;
    for (int i = 0; i < in.n; i++)
        cnt *= in.dims[i];
    bool exact = hone_dtype_is_int(x->dtype) && cnt > 0 && int_kind(k);
    for (int64_t o = 0; o < y->numel; o++, walk_next(&out)) {
        if (exact)
            hone_tensor_set_i64(y, o, reduce_box_i64(x, &in, out.off, cnt, k));
        else
            hone_tensor_set_f64(y, o, reduce_box_f64(x, &in, out.off, cnt, k));
    }
}

/* When the reduced axes of s form one contiguous block, x is [outer, red, inner]. */
static bool contiguous_block(const rspec *s, const int64_t *dims, int64_t *outer, int64_t *red,
                             int64_t *inner)
{
    int a = 0, b = s->rank - 1;
    while (a < s->rank && !s->red[a])
        a++;
    while (b >= 0 && !s->red[b])
        b--;
    if (a > b)
        return false;
    *outer = *red = *inner = 1;
    for (int i = 0; i < s->rank; i++) {
        if (i >= a && i <= b && !s->red[i])
            return false;
        int64_t *p = i < a ? outer : i > b ? inner : red;
        *p *= dims[i];
    }
    return true;
}

hone_status eval_reduce(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    rspec s;
    hone_status st =
        reduce_spec(ec->ctx, ec->node, ec->opset, x->rank, ec->n_in > 1 ? ec->in[1] : NULL, &s);
    if (st)
        return st;
    int64_t d[HONE_MAX_RANK];
    int r = s.noop ? x->rank : reduce_shape(&s, x->dims, d);
    if ((st = hone_eval_alloc(ec, 0, x->dtype, r, s.noop ? x->dims : d)))
        return st;
    if (s.noop) {
        memcpy(ec->out[0]->data, x->data, hone_tensor_nbytes(x));
        return HONE_OK;
    }
    rkind k = reduce_kind(ec->node->op);
    int64_t outer, red, inner;
    if (x->dtype == HONE_DT_FLOAT && (k == R_SUM || k == R_MEAN) &&
        contiguous_block(&s, x->dims, &outer, &red, &inner)) {
        hone_rt_sum_f32(x->data, ec->out[0]->data, outer, red, inner,
                        k == R_MEAN ? 1.0 / (double)red : 1.0);
        return HONE_OK;
    }
    reduce_generic(x, ec->out[0], &s, k);
    return HONE_OK;
}
