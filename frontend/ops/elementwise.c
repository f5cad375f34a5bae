/*
 * Elementwise ops, part one: unary math and activations, Clip, Identity, and
 * the dtype-class checks shared by the family (see elementwise.h).
 *
 * Every unary op is one entry of unary_defs, indexed by hone_op: the dtypes it
 * accepts, a kernel through double, an optional kernel through int64 for the
 * ops ONNX defines on integers, up to two attributes with their defaults, and
 * the output dtype when it is not the input's. One infer and one eval function
 * serve the whole table. float32 tensors run a loop over plain float arrays;
 * other dtypes go through the generic element accessors of tensor.c.
 */
#include <float.h>
#include <stdlib.h>

#include "elementwise.h"
#include "hone_rt.h"

/* ===================== dtype classes ===================== */

/* "FLOAT, DOUBLE, ..." for the dtypes in mask. */
static void mask_names(unsigned mask, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int dt = 1; dt < HONE_DT_COUNT && k < n; dt++)
        if (mask & EW_T(dt))
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "",
                                  hone_dtype_onnx_name((hone_dtype)dt));
}

hone_status hone_ew_check_type(hone_infer *ic, int i, unsigned mask)
{
    const hone_tinfo *t = i < ic->n_in ? ic->in[i] : NULL;
    if (!t || t->dtype == HONE_DT_UNDEF ||
        ((unsigned)t->dtype < HONE_DT_COUNT && (mask & EW_T(t->dtype))))
        return HONE_OK;
    char names[512];
    mask_names(mask, names, sizeof names);
    return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                          "input %d has type %s; this op accepts %s", i,
                          hone_dtype_onnx_name(t->dtype), names);
}

hone_status hone_ew_check_same(hone_infer *ic, int i, int j)
{
    const hone_tinfo *a = i < ic->n_in ? ic->in[i] : NULL;
    const hone_tinfo *b = j < ic->n_in ? ic->in[j] : NULL;
    if (!a || !b || !a->dtype || !b->dtype || a->dtype == b->dtype)
        return HONE_OK;
    return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                          "input types differ: input %d is %s, input %d is %s", i,
                          hone_dtype_onnx_name(a->dtype), j, hone_dtype_onnx_name(b->dtype));
}

ew_domain hone_ew_domain(hone_dtype dt)
{
    if (hone_dtype_is_float(dt))
        return EW_D_FLOAT;
    return hone_dtype_is_int(dt) && !hone_dtype_is_signed(dt) ? EW_D_UINT : EW_D_INT;
}

/* ===================== Identity ===================== */

hone_status infer_identity(hone_infer *ic)
{
    return hone_infer_same(ic);
}

/* Copies input 0 to output 0; strings are duplicated, never shared. */
hone_status eval_identity(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_status st = hone_eval_alloc(ec, 0, x->dtype, x->rank, x->dims);
    if (st)
        return st;
    if (x->dtype != HONE_DT_STRING) {
        memcpy(ec->out[0]->data, x->data, hone_tensor_nbytes(x));
        return HONE_OK;
    }
    char *const *src = x->data;
    char **dst = ec->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        dst[i] = src[i] ? strdup(src[i]) : NULL;
        if (src[i] && !dst[i])
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    }
    return HONE_OK;
}

/* ===================== unary kernels ===================== */

/* Attribute values of one node (a, b) and whether the dtype is unsigned. */
typedef struct uparam {
    double a, b;
    bool uns;
} uparam;

static double f_abs(double x, const uparam *p) { return fabs(x); }
static double f_neg(double x, const uparam *p) { return -x; }
static double f_exp(double x, const uparam *p) { return exp(x); }
static double f_log(double x, const uparam *p) { return log(x); }
static double f_sqrt(double x, const uparam *p) { return sqrt(x); }
static double f_recip(double x, const uparam *p) { return 1.0 / x; }
static double f_floor(double x, const uparam *p) { return floor(x); }
static double f_ceil(double x, const uparam *p) { return ceil(x); }
static double f_round(double x, const uparam *p) { return nearbyint(x); } /* ties to even */
static double f_sin(double x, const uparam *p) { return sin(x); }
static double f_cos(double x, const uparam *p) { return cos(x); }
static double f_tan(double x, const uparam *p) { return tan(x); }
static double f_asin(double x, const uparam *p) { return asin(x); }
static double f_acos(double x, const uparam *p) { return acos(x); }
static double f_atan(double x, const uparam *p) { return atan(x); }
static double f_sinh(double x, const uparam *p) { return sinh(x); }
static double f_cosh(double x, const uparam *p) { return cosh(x); }
static double f_asinh(double x, const uparam *p) { return asinh(x); }
static double f_acosh(double x, const uparam *p) { return acosh(x); }
static double f_atanh(double x, const uparam *p) { return atanh(x); }
static double f_erf(double x, const uparam *p) { return erf(x); }
static double f_tanh(double x, const uparam *p) { return tanh(x); }
static double f_not(double x, const uparam *p) { return x == 0; }
static double f_isnan(double x, const uparam *p) { return isnan(x) != 0; }
static double f_softsign(double x, const uparam *p) { return x / (1 + fabs(x)); }

/* Sign: -1, 0 or 1; NaN stays NaN. */
static double f_sign(double x, const uparam *p)
{
    return x > 0 ? 1 : x < 0 ? -1 : x;
}

/* IsInf: a = detect_negative, b = detect_positive. */
static double f_isinf(double x, const uparam *p)
{
    return isinf(x) && (x > 0 ? p->b != 0 : p->a != 0);
}

/* Relu: max(x, 0), keeping NaN as numpy's clip does. */
static double f_relu(double x, const uparam *p)
{
    return x < 0 ? 0 : x;
}

/* Sigmoid: 1 / (1 + e^-x), evaluated without overflow for either sign. */
static double f_sigmoid(double x, const uparam *p)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* Softplus: log(1 + e^x) without overflow for large x. */
static double f_softplus(double x, const uparam *p)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* Elu: x for x >= 0, a (e^x - 1) below. */
static double f_elu(double x, const uparam *p)
{
    return x >= 0 ? x : p->a * expm1(x);
}

/* Selu: b x for x > 0, b (a e^x - a) otherwise (a = alpha, b = gamma). */
static double f_selu(double x, const uparam *p)
{
    return x > 0 ? p->b * x : p->b * (p->a * exp(x) - p->a);
}

/* Celu: max(0, x) + min(0, a (e^(x/a) - 1)). */
static double f_celu(double x, const uparam *p)
{
    return x > 0 ? x : p->a * expm1(x / p->a);
}

/* LeakyRelu: x for x >= 0, a x below. */
static double f_leaky(double x, const uparam *p)
{
    return x >= 0 ? x : p->a * x;
}

/* ThresholdedRelu: x where x > a, else 0. */
static double f_thresh(double x, const uparam *p)
{
    return x > p->a ? x : 0;
}

/* HardSigmoid: max(0, min(1, a x + b)). */
static double f_hardsigmoid(double x, const uparam *p)
{
    return fmax(0, fmin(1, p->a * x + p->b));
}

/* HardSwish: x * max(0, min(1, x / 6 + 1/2)). */
static double f_hardswish(double x, const uparam *p)
{
    return x * fmax(0, fmin(1, x / 6 + 0.5));
}

/* Shrink: x + b below -a, x - b above a, 0 between (a = lambd, b = bias). */
static double f_shrink(double x, const uparam *p)
{
    return x < -p->a ? x + p->b : x > p->a ? x - p->b : 0;
}

/* Integer kernels; negation wraps like two's complement hardware. */
static int64_t i_neg(int64_t x, const uparam *p)
{
    return (int64_t)(0 - (uint64_t)x);
}

static int64_t i_abs(int64_t x, const uparam *p)
{
    return p->uns || x >= 0 ? x : i_neg(x, p);
}

static int64_t i_sign(int64_t x, const uparam *p)
{
    return p->uns ? x != 0 : (x > 0) - (x < 0);
}

static int64_t i_relu(int64_t x, const uparam *p)
{
    return x < 0 ? 0 : x;
}

/* One unary op: accepted dtypes, kernels, attributes, output dtype. */
typedef struct unary_def {
    unsigned types;
    double (*f)(double x, const uparam *p);
    int64_t (*fi)(int64_t x, const uparam *p); /* NULL: integers go through f */
    const char *a_name, *b_name;
    double a_dflt, b_dflt;
    hone_dtype out; /* UNDEF: the input's dtype */
} unary_def;

#define F EW_FLOAT
static const unary_def unary_defs[HONE_OP_COUNT] = {
    [HONE_OP_ABS] = {EW_NUM, f_abs, i_abs},
    [HONE_OP_NEG] = {F | EW_SINT, f_neg, i_neg},
    [HONE_OP_SIGN] = {EW_NUM, f_sign, i_sign},
    [HONE_OP_EXP] = {F, f_exp},
    [HONE_OP_LOG] = {F, f_log},
    [HONE_OP_SQRT] = {F, f_sqrt},
    [HONE_OP_RECIPROCAL] = {F, f_recip},
    [HONE_OP_FLOOR] = {F, f_floor},
    [HONE_OP_CEIL] = {F, f_ceil},
    [HONE_OP_ROUND] = {F, f_round},
    [HONE_OP_SIN] = {F, f_sin},
    [HONE_OP_COS] = {F, f_cos},
    [HONE_OP_TAN] = {F, f_tan},
    [HONE_OP_ASIN] = {F, f_asin},
    [HONE_OP_ACOS] = {F, f_acos},
    [HONE_OP_ATAN] = {F, f_atan},
    [HONE_OP_SINH] = {F, f_sinh},
    [HONE_OP_COSH] = {F, f_cosh},
    [HONE_OP_ASINH] = {F, f_asinh},
    [HONE_OP_ACOSH] = {F, f_acosh},
    [HONE_OP_ATANH] = {F, f_atanh},
    [HONE_OP_ERF] = {EW_NUM, f_erf},
    [HONE_OP_NOT] = {EW_BOOL, f_not},
    [HONE_OP_ISNAN] = {F, f_isnan, NULL, NULL, NULL, 0, 0, HONE_DT_BOOL},
    [HONE_OP_ISINF] = {F, f_isinf, NULL, "detect_negative", "detect_positive", 1, 1, HONE_DT_BOOL},
    [HONE_OP_RELU] = {F | EW_SINT, f_relu, i_relu},
    [HONE_OP_SIGMOID] = {F, f_sigmoid},
    [HONE_OP_TANH] = {F, f_tanh},
    [HONE_OP_SOFTPLUS] = {F, f_softplus},
    [HONE_OP_SOFTSIGN] = {F, f_softsign},
    [HONE_OP_ELU] = {F, f_elu, NULL, "alpha", NULL, 1.0},
    [HONE_OP_SELU] = {F, f_selu, NULL, "alpha", "gamma", 1.67326319217681884765625,
                      1.05070102214813232421875},
    [HONE_OP_CELU] = {F, f_celu, NULL, "alpha", NULL, 1.0},
    [HONE_OP_LEAKYRELU] = {F, f_leaky, NULL, "alpha", NULL, 0.00999999977648258209228515625},
    [HONE_OP_THRESHOLDEDRELU] = {F, f_thresh, NULL, "alpha", NULL, 1.0},
    [HONE_OP_HARDSIGMOID] = {F, f_hardsigmoid, NULL, "alpha", "beta",
                             0.20000000298023223876953125, 0.5},
    [HONE_OP_HARDSWISH] = {F, f_hardswish},
    [HONE_OP_SHRINK] = {EW_NUM, f_shrink, NULL, "lambd", "bias", 0.5, 0},
};
#undef F

/* Unary ops: output has the input's shape and the def's dtype. */
hone_status infer_unary(hone_infer *ic)
{
    const unary_def *d = &unary_defs[ic->node->op];
    HONE_ASSERT(d->f);
    hone_status st = hone_ew_check_type(ic, 0, d->types);
    if (st)
        return st;
    if (ic->node->op == HONE_OP_CELU && hone_attr_float(ic->node, "alpha", 1) == 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "alpha must not be 0");
    const hone_tinfo *x = ic->in[0];
    hone_infer_set(ic, 0, d->out ? d->out : x->dtype, x->rank, x->dims);
    return HONE_OK;
}

/* Reads the def's attributes of node n (defaults where absent). */
static uparam read_params(const hone_node *n, const unary_def *d, hone_dtype dt)
{
    uparam p = {d->a_dflt, d->b_dflt, hone_ew_domain(dt) == EW_D_UINT};
    if (d->a_name)
        p.a = hone_attr_float(n, d->a_name, (float)d->a_dflt);
    if (d->b_name)
        p.b = hone_attr_float(n, d->b_name, (float)d->b_dflt);
    return p;
}

/* Elements per chunk when an elementwise loop is split over the kernel pool. */
#define EW_GRAIN ((int64_t)1 << 16)

typedef struct relu_job {
    const float *x;
    float *y;
} relu_job;

static void relu_range(void *ctx, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const relu_job *j = ctx;
    hone_rt_relu(e - b, j->x + b, j->y + b);
}

/* float32 -> float32 through the def's kernel (Relu without a call, split over
 * the training engine's kernel pool while there is one). */
static void unary_f32(const unary_def *d, const uparam *p, const float *x, float *y, int64_t n)
{
    if (d->f == f_relu) {
        relu_job j = {x, y};
        hone_rt_parallel_for(hone_rt_kernel_pool(), n, EW_GRAIN, relu_range, &j);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)d->f(x[i], p);
}

hone_status eval_unary(hone_eval *ec)
{
    const unary_def *d = &unary_defs[ec->node->op];
    const hone_tensor *x = ec->in[0];
    hone_dtype odt = d->out ? d->out : x->dtype;
    hone_status st = hone_eval_alloc(ec, 0, odt, x->rank, x->dims);
    if (st)
        return st;
    uparam p = read_params(ec->node, d, x->dtype);
    hone_tensor *y = ec->out[0];
    if (x->dtype == HONE_DT_FLOAT && odt == HONE_DT_FLOAT)
        unary_f32(d, &p, x->data, y->data, x->numel);
    else if (d->fi && hone_dtype_is_int(x->dtype))
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_i64(y, i, d->fi(hone_tensor_get_i64(x, i), &p));
    else
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_f64(y, i, d->f(hone_tensor_get_f64(x, i), &p));
    return HONE_OK;
}

/* ===================== Clip ===================== */

/* Clip: y = min(max(x, min), max). Bounds are attributes before opset 11 and
 * optional scalar inputs 1 and 2 from opset 11 on. */
hone_status infer_clip(hone_infer *ic)
{
    hone_status st = hone_ew_check_type(ic, 0, EW_NUM);
    if (ic->opset < 11 && ic->n_in > 1 && !st)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                            "takes one input before opset 11 (bounds are attributes)");
    for (int i = 1; i < ic->n_in && !st; i++) {
        const hone_tinfo *b = ic->in[i];
        st = hone_ew_check_same(ic, 0, i);
        if (!st && b && b->value && b->value->numel > 1)
            st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                "bound input %d must be a scalar, has %lld elements", i,
                                (long long)b->value->numel);
    }
    return st ? st : hone_infer_same(ic);
}

/* Bound input i of a Clip node, or NULL when omitted or empty. */
static const hone_tensor *clip_bound(const hone_eval *ec, int i)
{
    return ec->opset >= 11 && i < ec->n_in && ec->in[i] && ec->in[i]->numel ? ec->in[i] : NULL;
}

/* Clip through double; bounds from attributes (old opsets) or inputs. */
static void clip_float(hone_eval *ec, const hone_tensor *x, hone_tensor *y)
{
    const hone_tensor *lt = clip_bound(ec, 1), *ht = clip_bound(ec, 2);
    double lo = lt ? hone_tensor_get_f64(lt, 0) : -INFINITY;
    double hi = ht ? hone_tensor_get_f64(ht, 0) : INFINITY;
    if (ec->opset < 11) {
        lo = hone_attr_float(ec->node, "min", -FLT_MAX);
        hi = hone_attr_float(ec->node, "max", FLT_MAX);
    }
    if (x->dtype == HONE_DT_FLOAT) {
        const float *a = x->data;
        float *o = y->data, l = (float)lo, h = (float)hi;
        for (int64_t i = 0; i < x->numel; i++) {
            float v = a[i] < l ? l : a[i];
            o[i] = v > h ? h : v;
        }
        return;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        double v = hone_tensor_get_f64(x, i);
        v = v < lo ? lo : v;
        hone_tensor_set_f64(y, i, v > hi ? hi : v);
    }
}

/* Order-preserving map of a domain integer onto int64: unsigned values
 * (carried bit-for-bit in int64) get their top bit flipped. */
static int64_t int_key(int64_t v, bool uns)
{
    return uns ? (int64_t)((uint64_t)v ^ ((uint64_t)1 << 63)) : v;
}

/* Clip in int64 (signed) or uint64 (unsigned) arithmetic. */
static void clip_int(hone_eval *ec, const hone_tensor *x, hone_tensor *y)
{
    const hone_tensor *lt = clip_bound(ec, 1), *ht = clip_bound(ec, 2);
    bool uns = hone_ew_domain(x->dtype) == EW_D_UINT;
    int64_t lo = lt ? hone_tensor_get_i64(lt, 0) : 0, hi = ht ? hone_tensor_get_i64(ht, 0) : 0;
    int64_t lo_k = lt ? int_key(lo, uns) : INT64_MIN, hi_k = ht ? int_key(hi, uns) : INT64_MAX;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t v = hone_tensor_get_i64(x, i);
        if (int_key(v, uns) < lo_k)
            v = lo;
        if (int_key(v, uns) > hi_k)
            v = hi;
        hone_tensor_set_i64(y, i, v);
    }
}

hone_status eval_clip(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_status st = hone_eval_alloc(ec, 0, x->dtype, x->rank, x->dims);
    if (st)
        return st;
    if (hone_ew_domain(x->dtype) == EW_D_FLOAT)
        clip_float(ec, x, ec->out[0]);
    else
        clip_int(ec, x, ec->out[0]);
    return HONE_OK;
}
