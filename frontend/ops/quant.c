/*
 * Linear quantisation: QuantizeLinear, DequantizeLinear (one scale and zero
 * point for the whole tensor, or from opset 13 one pair per index of an axis)
 * and DynamicQuantizeLinear.
 *
 *   q = saturate(round_half_even(x / scale) + zero_point)
 *   x = (q - zero_point) * scale
 *
 * A hone_qmap says which (scale, zero point) pair each element uses. The
 * division is rounded to float32 when x is float32, as a float32 reference
 * computes it, so ties round the same way; saturation to the output type is
 * done by hone_tensor_set_f64, which clamps.
 */
#include "misc.h"
#include "ops_util.h"
#include "reduce.h"

const hone_tinfo *hone_misc_tinfo(hone_tinfo *ti, const hone_tensor *t)
{
    if (!t)
        return NULL;
    ti->dtype = t->dtype;
    ti->rank = t->rank;
    memcpy(ti->dims, t->dims, sizeof ti->dims);
    ti->value = t;
    return ti;
}

double hone_misc_param(const hone_tensor *t, int64_t c)
{
    return t ? hone_tensor_get_f64(t, t->numel == 1 ? 0 : c) : 0;
}

hone_status hone_misc_check_qtype(hone_ctx *ctx, const hone_node *nd, hone_dtype dt,
                                  const char *what)
{
    switch (dt) {
    case HONE_DT_UNDEF: case HONE_DT_UINT8: case HONE_DT_INT8: case HONE_DT_UINT16:
    case HONE_DT_INT16:
        return HONE_OK;
    default:
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED,
                              "%s of type %s is not a supported quantised type (u8, i8, u16, i16)",
                              what, hone_dtype_name(dt));
    }
}

void hone_misc_quant_store(hone_tensor *y, int64_t i, double v, double zp)
{
    hone_tensor_set_f64(y, i, nearbyint(v) + zp);
}

/* Entry count of a scale or zero point, a scalar or 1-D tensor (-1 = unknown). */
static hone_status param_len(hone_ctx *ctx, const hone_node *nd, const hone_tinfo *p,
                             const char *what, int64_t *len)
{
    if (p->rank > 1)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "%s must be a scalar or a 1-D tensor, not rank %d", what, p->rank);
    *len = p->rank < 0 ? -1 : p->rank == 0 ? 1 : p->dims[0];
    return HONE_OK;
}

hone_status hone_misc_qmap(hone_ctx *ctx, const hone_node *nd, int opset, const hone_tinfo *x,
                           const hone_tinfo *scale, const hone_tinfo *zp, hone_qmap *m)
{
    int64_t sn = -1, zn = -1;
    int axis;
    m->n = m->inner = 1;
    hone_status st = param_len(ctx, nd, scale, "scale", &sn);
    if (st || (zp && (st = param_len(ctx, nd, zp, "zero point", &zn))))
        return st;
    if (sn >= 0 && zn >= 0 && sn != zn)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "scale has %lld entries but zero point has %lld", (long long)sn,
                              (long long)zn);
    if (sn == 1 || sn < 0 || x->rank < 0)
        return HONE_OK;
    if (opset < 13)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "a scale of %lld entries (per axis) needs opset 13, model has %d",
                              (long long)sn, opset);
    if ((st = hone_reduce_axis(ctx, nd, hone_attr_int(nd, "axis", 1), x->rank, &axis)))
        return st;
    if (x->dims[axis] >= 0 && x->dims[axis] != sn)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "scale has %lld entries but axis %d of the input has %lld",
                              (long long)sn, axis, (long long)x->dims[axis]);
    m->n = sn;
    for (int i = axis + 1; i < x->rank; i++)
        m->inner *= x->dims[i];
    return HONE_OK;
}

/* Channel of element i under m. */
static int64_t qchan(const hone_qmap *m, int64_t i)
{
    return m->n == 1 ? 0 : (i / m->inner) % m->n;
}

/* The qmap of a (De)QuantizeLinear execution: x, scale, zero point are inputs 0-2. */
static hone_status eval_qmap(hone_eval *ec, hone_qmap *m)
{
    hone_tinfo tx, ts, tz;
    const hone_tensor *zp = ec->n_in > 2 ? ec->in[2] : NULL;
    return hone_misc_qmap(ec->ctx, ec->node, ec->opset, hone_misc_tinfo(&tx, ec->in[0]),
                          hone_misc_tinfo(&ts, ec->in[1]), hone_misc_tinfo(&tz, zp), m);
}

hone_status infer_quantize(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *zp = ic->n_in > 2 ? ic->in[2] : NULL;
    hone_dtype out = zp ? zp->dtype : HONE_DT_UINT8;
    hone_qmap m;
    if (x->dtype && !hone_dtype_is_float(x->dtype) && x->dtype != HONE_DT_INT32)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "input of type %s cannot be quantised", hone_dtype_name(x->dtype));
    hone_status st = hone_misc_check_qtype(ic->ctx, ic->node, out, "zero point");
    if (st || (st = hone_misc_qmap(ic->ctx, ic->node, ic->opset, x, ic->in[1], zp, &m)))
        return st;
    hone_infer_set(ic, 0, out, x->rank, x->dims);
    return HONE_OK;
}

hone_status eval_quantize(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *s = ec->in[1], *zp = ec->n_in > 2 ? ec->in[2] : NULL;
    hone_qmap m;
    hone_status st = eval_qmap(ec, &m);
    if (st || (st = hone_eval_alloc(ec, 0, zp ? zp->dtype : HONE_DT_UINT8, x->rank, x->dims)))
        return st;
    bool f32 = x->dtype == HONE_DT_FLOAT;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = qchan(&m, i);
        double v = hone_tensor_get_f64(x, i) / hone_misc_param(s, c);
        hone_misc_quant_store(ec->out[0], i, f32 ? (double)(float)v : v, hone_misc_param(zp, c));
    }
    return HONE_OK;
}

hone_status infer_dequantize(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *s = ic->in[1], *zp = ic->n_in > 2 ? ic->in[2] : NULL;
    hone_qmap m;
    hone_status st = HONE_OK;
    if (x->dtype != HONE_DT_INT32)
        st = hone_misc_check_qtype(ic->ctx, ic->node, x->dtype, "input");
    if (st)
        return st;
    if (zp && zp->dtype && x->dtype && zp->dtype != x->dtype)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "zero point is %s but the input is %s", hone_dtype_name(zp->dtype),
                              hone_dtype_name(x->dtype));
    if (s->dtype && !hone_dtype_is_float(s->dtype))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "scale must be floating point");
    if ((st = hone_misc_qmap(ic->ctx, ic->node, ic->opset, x, s, zp, &m)))
        return st;
    hone_infer_set(ic, 0, s->dtype, x->rank, x->dims);
    return HONE_OK;
}

hone_status eval_dequantize(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *s = ec->in[1], *zp = ec->n_in > 2 ? ec->in[2] : NULL;
    hone_qmap m;
    hone_status st = eval_qmap(ec, &m);
    if (st || (st = hone_eval_alloc(ec, 0, s->dtype, x->rank, x->dims)))
        return st;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = qchan(&m, i);
        double q = hone_tensor_get_f64(x, i) - hone_misc_param(zp, c);
        hone_tensor_set_f64(ec->out[0], i, q * hone_misc_param(s, c));
    }
    return HONE_OK;
}

hone_status infer_dynamic_quantize(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    if (x->dtype && x->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be f32, not %s",
                              hone_dtype_name(x->dtype));
    hone_infer_set(ic, 0, HONE_DT_UINT8, x->rank, x->dims);
    hone_infer_set(ic, 1, HONE_DT_FLOAT, 0, NULL);
    hone_infer_set(ic, 2, HONE_DT_UINT8, 0, NULL);
    return HONE_OK;
}

/* Scale and zero point covering [min(x, 0), max(x, 0)] with uint8, in float32. */
static void dynamic_range(const hone_tensor *x, float *scale, float *zp)
{
    const float *v = x->data;
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    *scale = (hi - lo) / 255.0f;
    *zp = *scale > 0 ? nearbyintf(fminf(fmaxf(0.0f - lo / *scale, 0.0f), 255.0f)) : 0.0f;
}

hone_status eval_dynamic_quantize(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_UINT8, x->rank, x->dims);
    if (st || (st = hone_eval_alloc(ec, 1, HONE_DT_FLOAT, 0, NULL)) ||
        (st = hone_eval_alloc(ec, 2, HONE_DT_UINT8, 0, NULL)))
        return st;
    float scale, zp;
    dynamic_range(x, &scale, &zp);
    const float *v = x->data;
    for (int64_t i = 0; i < x->numel; i++)
        hone_misc_quant_store(ec->out[0], i, scale > 0 ? (double)(v[i] / scale) : 0, zp);
    *(float *)ec->out[1]->data = scale;
    *(uint8_t *)ec->out[2]->data = (uint8_t)zp;
    return HONE_OK;
}
