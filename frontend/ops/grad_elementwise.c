/*
 * Elementwise training ops: gradient plumbing and activation derivatives.
 *
 *   SumTo(dY, X)        sums dY over the axes along which X was broadcast
 *                       (the adjoint of numpy broadcasting): result has X's
 *                       shape; X's dims must be 1 or dY's, aligned right.
 *   ExpandLike(dY, X)   the adjoint of a reduction: dY, with size-1 axes put
 *                       back at `axes` (reductions without keepdims), is
 *                       broadcast onto X's shape and multiplied by `scale`
 *                       (and, with mean = 1, divided by the reduced count).
 *   ReshapeLike(dY, X)  dY's elements in X's shape.
 *   ZerosLike(X)        zeros of X's shape (gradients of unused outputs).
 *   UnaryGrad(dY, T[, lo, hi])  dY * f'(.) for the forward op named by attribute
 *                       `op`; T is the forward output for ops whose derivative
 *                       reads it (hone_rt_act_uses_y), else the forward input.
 *                       alpha and beta carry the forward's parameters; Clip's
 *                       bounds are alpha/beta or the scalar inputs lo, hi.
 *
 * SumTo and ExpandLike walk the larger tensor row by row (a row is a run
 * along the innermost axis), where the smaller one either advances with the
 * row or stays on one element, so the inner loops are plain float loops.
 */
#include <float.h>

#include "grad.h"
#include "hone_rt.h"

hone_status grad_infer_f32(hone_infer *ic, int n)
{
    for (int i = 0; i < n && i < ic->n_in; i++) {
        const hone_tinfo *t = ic->in[i];
        if (t && t->dtype != HONE_DT_UNDEF && t->dtype != HONE_DT_FLOAT)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                                  "input %d is %s; training ops take float32 only", i,
                                  hone_dtype_name(t->dtype));
    }
    return HONE_OK;
}

hone_status grad_same_shape(hone_infer *ic, const hone_tinfo *a, const hone_tinfo *b,
                            const char *what)
{
    bool same = a->rank < 0 || b->rank < 0 || a->rank == b->rank;
    for (int i = 0; same && i < a->rank && b->rank >= 0; i++)
        same = a->dims[i] < 0 || b->dims[i] < 0 || a->dims[i] == b->dims[i];
    if (!same)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "%s differ in shape", what);
    return HONE_OK;
}

bool grad_wants(const hone_node *n, int i)
{
    return i < n->n_out && n->out[i] != NULL;
}

void grad_infer_as(hone_infer *ic, int i, const hone_tinfo *t)
{
    if (grad_wants(ic->node, i))
        hone_infer_set(ic, i, HONE_DT_FLOAT, t->rank, t->dims);
}

hone_status infer_like(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, ic->n_in);
    if (!st)
        grad_infer_as(ic, 0, ic->in[1]);
    return st;
}

/* A shape-only tensor (for broadcast walks) of rank r and dims d. */
static hone_tensor shape_view(int r, const int64_t *d)
{
    hone_tensor v = {.rank = r};
    memcpy(v.dims, d, sizeof(int64_t) * (size_t)r);
    return v;
}

/* Fails unless small (rank rs, dims ds) broadcasts onto big, aligned right. */
static hone_status check_onto(hone_infer *ic, int rs, const int64_t *ds, int rb,
                              const int64_t *db)
{
    bool ok = rs <= rb;
    for (int i = 0; ok && i < rs; i++) {
        int64_t s = ds[rs - 1 - i], b = db[rb - 1 - i];
        ok = s == 1 || s == b || s < 0 || b < 0;
    }
    if (!ok)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "a rank-%d shape does not broadcast onto the rank-%d gradient", rs,
                              rb);
    return HONE_OK;
}

/* Row callback over the big tensor: element offset of the row in big and in small. */
typedef void (*pair_row)(void *st, int64_t big, int64_t small, int64_t step, int64_t len);

/* Visits the rows of big (rank r, dims d) with the matching offset in small,
 * which broadcasts onto big. */
static void pair_rows(int r, const int64_t *d, const hone_tensor *small, pair_row fn, void *st)
{
    int64_t total = nn_prod(d, 0, r);
    if (total == 0)
        return;
    if (r == 0) {
        fn(st, 0, 0, 0, 1);
        return;
    }
    hone_bcast b;
    hone_bcast_init(&b, r, d, 1, &small);
    int64_t len = d[r - 1], step = b.strides[0][r - 1];
    b.dims[r - 1] = 1;
    for (int64_t o = 0; o < total; o += len, hone_bcast_next(&b))
        fn(st, o, b.off[0], step, len);
}

typedef struct row_io {
    const float *src;
    float *dst;
    float scale;
} row_io;

/* SumTo row: dst[small..] += src[big..] (summed when small stays put). */
static void sum_row(void *st, int64_t big, int64_t small, int64_t step, int64_t len)
{
    row_io *io = st;
    const float *s = io->src + big;
    if (step == 0) {
        double acc = 0;
        for (int64_t j = 0; j < len; j++)
            acc += s[j];
        io->dst[small] += (float)acc;
        return;
    }
    float *o = io->dst + small;
    for (int64_t j = 0; j < len; j++)
        o[j] += s[j];
}

/* SumTo: dY[..] -> X's shape (X broadcast onto dY). */
hone_status infer_sum_to(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *x = ic->in[1];
    hone_status st = grad_infer_f32(ic, 1);
    if (!st && dy->rank >= 0 && x->rank >= 0)
        st = check_onto(ic, x->rank, x->dims, dy->rank, dy->dims);
    if (!st)
        grad_infer_as(ic, 0, x);
    return st;
}

hone_status eval_sum_to(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0];
    hone_tensor *y = ec->out[0];
    if (y->numel == dy->numel) {
        memcpy(y->data, dy->data, hone_tensor_nbytes(dy));
        return HONE_OK;
    }
    memset(y->data, 0, hone_tensor_nbytes(y));
    hone_tensor view = shape_view(y->rank, y->dims);
    row_io io = {dy->data, y->data, 1.0f};
    pair_rows(dy->rank, dy->dims, &view, sum_row, &io);
    return HONE_OK;
}

/* ExpandLike row: dst[big..] = scale * src[small..] (one value when it stays put). */
static void expand_row(void *st, int64_t big, int64_t small, int64_t step, int64_t len)
{
    row_io *io = st;
    float *o = io->dst + big;
    const float *s = io->src + small;
    if (step == 0)
        for (int64_t j = 0; j < len; j++)
            o[j] = s[0] * io->scale;
    else
        for (int64_t j = 0; j < len; j++)
            o[j] = s[j] * io->scale;
}

/* dY's shape with size-1 axes inserted at the node's `axes` (out rank r). */
static hone_status expand_dims(hone_ctx *ctx, const hone_node *n, int rdy, const int64_t *ddy,
                               int r, int64_t *d)
{
    const int64_t *ax;
    int na = hone_attr_ints(n, "axes", &ax);
    bool ins[HONE_MAX_RANK] = {false};
    na = na < 0 ? 0 : na;
    if (rdy + na != r)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "gradient of rank %d plus %d axes does not give rank %d", rdy, na, r);
    for (int i = 0; i < na; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r || ins[a])
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "axes[%d] = %lld is invalid", i,
                                  (long long)ax[i]);
        ins[a] = true;
    }
    for (int i = 0, k = 0; i < r; i++)
        d[i] = ins[i] ? 1 : ddy[k++];
    return HONE_OK;
}

hone_status eval_expand_like(hone_eval *ec)
{
    const hone_tensor *dy = ec->in[0];
    hone_tensor *y = ec->out[0];
    int64_t d[HONE_MAX_RANK];
    hone_status st = expand_dims(ec->ctx, ec->node, dy->rank, dy->dims, y->rank, d);
    if (st)
        return st;
    hone_tensor view = shape_view(y->rank, d);
    for (int i = 0; i < y->rank; i++)
        if (d[i] != 1 && d[i] != y->dims[i])
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                                  "gradient dim %d (%lld) does not broadcast onto %lld", i,
                                  (long long)d[i], (long long)y->dims[i]);
    row_io io = {dy->data, y->data, hone_attr_float(ec->node, "scale", 1.0f)};
    if (hone_attr_int(ec->node, "mean", 0) && y->numel)
        io.scale *= (float)((double)dy->numel / (double)y->numel);
    pair_rows(y->rank, y->dims, &view, expand_row, &io);
    return HONE_OK;
}

/* ReshapeLike: dY's elements in X's shape; the element counts must agree. */
hone_status infer_reshape_like(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *x = ic->in[1];
    hone_status st = grad_infer_f32(ic, 1);
    if (!st && hone_tinfo_static(dy) && hone_tinfo_static(x) &&
        nn_prod(dy->dims, 0, dy->rank) != nn_prod(x->dims, 0, x->rank))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                            "gradient has %lld elements, the target shape %lld",
                            (long long)nn_prod(dy->dims, 0, dy->rank),
                            (long long)nn_prod(x->dims, 0, x->rank));
    if (!st)
        grad_infer_as(ic, 0, x);
    return st;
}

hone_status eval_reshape_like(hone_eval *ec)
{
    memcpy(ec->out[0]->data, ec->in[0]->data, hone_tensor_nbytes(ec->in[0]));
    return HONE_OK;
}

hone_status infer_zeros_like(hone_infer *ic)
{
    grad_infer_as(ic, 0, ic->in[0]);
    return HONE_OK;
}

hone_status eval_zeros_like(hone_eval *ec)
{
    memset(ec->out[0]->data, 0, hone_tensor_nbytes(ec->out[0]));
    return HONE_OK;
}

/* ===================== UnaryGrad ===================== */

/* One forward op UnaryGrad knows: its name, kernel and default parameters. */
typedef struct act_def {
    const char *name;
    hone_rt_act kind;
    float alpha, beta;
} act_def;

static const act_def act_defs[] = {
    {"Relu", HONE_RT_ACT_RELU, 0, 0},
    {"LeakyRelu", HONE_RT_ACT_LEAKY_RELU, 0.01f, 0},
    {"Sigmoid", HONE_RT_ACT_SIGMOID, 0, 0},
    {"Tanh", HONE_RT_ACT_TANH, 0, 0},
    {"Clip", HONE_RT_ACT_CLIP, -INFINITY, INFINITY},
    {"HardSigmoid", HONE_RT_ACT_HARD_SIGMOID, 0.2f, 0.5f},
    {"HardSwish", HONE_RT_ACT_HARD_SWISH, 0, 0},
    {"Elu", HONE_RT_ACT_ELU, 1.0f, 0},
    {"Softplus", HONE_RT_ACT_SOFTPLUS, 0, 0},
    {"Exp", HONE_RT_ACT_EXP, 0, 0},
    {"Log", HONE_RT_ACT_LOG, 0, 0},
    {"Sqrt", HONE_RT_ACT_SQRT, 0, 0},
    {"Abs", HONE_RT_ACT_ABS, 0, 0},
    {"Reciprocal", HONE_RT_ACT_RECIPROCAL, 0, 0},
    {"Pow", HONE_RT_ACT_POW, 1.0f, 0},
};

/* The def named by the node's `op` attribute, or NULL. */
static const act_def *find_act(const hone_node *n)
{
    const char *op = hone_attr_str(n, "op", "");
    for (size_t i = 0; i < sizeof act_defs / sizeof act_defs[0]; i++)
        if (!strcmp(act_defs[i].name, op))
            return &act_defs[i];
    return NULL;
}

/* UnaryGrad: dY and T of one shape -> dX; lo and hi (Clip) scalars. */
hone_status infer_unary_grad(hone_infer *ic)
{
    const hone_tinfo *dy = ic->in[0], *t = ic->in[1];
    hone_status st = grad_infer_f32(ic, ic->n_in);
    if (st)
        return st;
    if (!find_act(ic->node))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                              "no derivative for op '%s'", hone_attr_str(ic->node, "op", ""));
    st = grad_same_shape(ic, dy, t, "the gradient and the forward tensor");
    for (int i = 2; i < ic->n_in && !st; i++)
        if (ic->in[i] && ic->in[i]->value && ic->in[i]->value->numel != 1)
            st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "bound %d is not a scalar", i);
    if (st)
        return st;
    hone_infer_set(ic, 0, HONE_DT_FLOAT, dy->rank, dy->dims);
    return HONE_OK;
}

/* Scalar input i when present, else dflt. */
static float scalar_in(const hone_eval *ec, int i, float dflt)
{
    const hone_tensor *t = i < ec->n_in ? ec->in[i] : NULL;
    return t && t->numel ? ((const float *)t->data)[0] : dflt;
}

typedef struct act_job {
    hone_rt_act kind;
    const float *dy, *t;
    float a, b, *dx;
} act_job;

static void act_range(void *ctx, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const act_job *j = ctx;
    hone_rt_act_grad(j->kind, e - b, j->dy + b, j->t + b, j->a, j->b, j->dx + b);
}

hone_status eval_unary_grad(hone_eval *ec)
{
    const act_def *d = find_act(ec->node);
    float a = hone_attr_float(ec->node, "alpha", d->alpha);
    float b = hone_attr_float(ec->node, "beta", d->beta);
    if (d->kind == HONE_RT_ACT_CLIP) {
        a = scalar_in(ec, 2, a);
        b = scalar_in(ec, 3, b);
    }
    act_job j = {d->kind, ec->in[0]->data, ec->in[1]->data, a, b, ec->out[0]->data};
    /* elementwise, so chunks on the training engine's kernel pool give the same result */
    hone_rt_parallel_for(hone_rt_kernel_pool(), ec->in[0]->numel, (int64_t)1 << 16, act_range,
                         &j);
    return HONE_OK;
}
