/*
 * hone-domain ops of low-bit quantization (docs/CUSTOM_OPS.md).
 *
 * hone.FakeQuant(X, scale, zero_point) -> Y: quantize-dequantize in one op,
 * the training form of a QuantizeLinear -> DequantizeLinear pair (slb and
 * quantize-ste insert it before convolutions when activations are 8-bit).
 *   Y = (clamp(round(X / scale) + zp, qmin, qmax) - zp) * scale
 * scale and zero_point are float scalars; attributes qmin (default 0) and
 * qmax (default 255) bound the integer grid (uint8 by default). Rounding is
 * QuantizeLinear's: X / scale rounded to float, then half to even, so the op
 * equals the Q/DQ pair it is exported as. Its backward rule (autodiff.c) is
 * the straight-through estimator: dX = dY.
 *
 * hone.DequantizePacked(P, scale) -> W: weights stored as b-bit level
 * indices packed densely (element e's bit j is bit (e*b + j) % 8 of byte
 * (e*b + j) / 8, LSB first). Attributes bits (1..8), shape (ints, W's
 * shape), step and offset: W[e] = (step * index[e] - offset) * scale[c],
 * c = e's index along axis 0 (scale has shape[0] entries). slb's
 * format=packed writes it; a 2-bit weight costs a quarter byte.
 */
#include <math.h>

#include "hone_rt.h"
#include "ops_util.h"

static bool scalar_info(const hone_tinfo *t)
{
    return t->rank == 0 || (t->rank == 1 && t->dims[0] == 1);
}

hone_status infer_fake_quant(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    if (x->dtype && x->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be float32");
    for (int i = 1; i < 3; i++)
        if (ic->in[i]->rank >= 0 && !scalar_info(ic->in[i]))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "%s must be a scalar", i == 1 ? "scale" : "zero_point");
    if (hone_attr_int(ic->node, "qmin", 0) >= hone_attr_int(ic->node, "qmax", 255))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "qmin must be below qmax");
    hone_infer_set(ic, 0, HONE_DT_FLOAT, x->rank, x->dims);
    return HONE_OK;
}

hone_status eval_fake_quant(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    double s = hone_tensor_get_f64(ec->in[1], 0), zp = hone_tensor_get_f64(ec->in[2], 0);
    double lo = (double)hone_attr_int(ec->node, "qmin", 0);
    double hi = (double)hone_attr_int(ec->node, "qmax", 255);
    if (!(s > 0))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "scale must be positive");
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, x->rank, x->dims);
    if (st)
        return st;
    const float *px = x->data;
    float *py = ec->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        double q = nearbyint((double)(float)((double)px[i] / s)) + zp;
        q = q < lo ? lo : q > hi ? hi : q;
        py[i] = (float)((q - zp) * s);
    }
    return HONE_OK;
}

/* Reads the shape attribute into dims; its element count, or -1. */
static int64_t packed_shape(const hone_node *n, int64_t *dims, int *rank)
{
    const int64_t *v;
    int k = hone_attr_ints(n, "shape", &v);
    if (k < 1 || k > HONE_MAX_RANK)
        return -1;
    int64_t numel = 1;
    for (int i = 0; i < k; i++) {
        if (v[i] < 1 || v[i] > ((int64_t)1 << 40) / numel)
            return -1;
        dims[i] = v[i];
        numel *= v[i];
    }
    *rank = k;
    return numel;
}

hone_status infer_dequantize_packed(hone_infer *ic)
{
    int64_t dims[HONE_MAX_RANK], bits = hone_attr_int(ic->node, "bits", 0);
    int rank = 0;
    int64_t numel = packed_shape(ic->node, dims, &rank);
    const hone_tinfo *p = ic->in[0], *s = ic->in[1];
    if (numel < 0 || bits < 1 || bits > 8)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "needs bits in 1..8 and a positive shape");
    if (p->dtype && p->dtype != HONE_DT_UINT8)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "packed input must be uint8");
    if (s->dtype && s->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "scale must be float32");
    if (p->rank >= 0 && (p->rank != 1 || (p->dims[0] >= 0 && p->dims[0] * 8 < numel * bits)))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "packed input must be 1-D with at least %lld bytes",
                              (long long)((numel * bits + 7) / 8));
    if (s->rank >= 0 && (s->rank != 1 || (s->dims[0] >= 0 && s->dims[0] != dims[0])))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "scale must have %lld entries (shape[0])", (long long)dims[0]);
    hone_infer_set(ic, 0, HONE_DT_FLOAT, rank, dims);
    return HONE_OK;
}

hone_status eval_dequantize_packed(hone_eval *ec)
{
    int64_t dims[HONE_MAX_RANK];
    int rank = 0;
    int64_t numel = packed_shape(ec->node, dims, &rank);
    int bits = (int)hone_attr_int(ec->node, "bits", 0);
    int64_t step = hone_attr_int(ec->node, "step", 1), offset = hone_attr_int(ec->node, "offset", 0);
    const hone_tensor *p = ec->in[0], *s = ec->in[1];
    if (numel < 0 || bits < 1 || bits > 8 || p->numel * 8 < numel * bits || s->numel != dims[0] ||
        p->dtype != HONE_DT_UINT8 || s->dtype != HONE_DT_FLOAT)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "packed weights do not fit");
    hone_status st = hone_eval_alloc(ec, 0, HONE_DT_FLOAT, rank, dims);
    if (st)
        return st;
    /* the runtime's loop, the one compiled code runs */
    hone_rt_dequantize_packed(numel, numel / dims[0], bits, step, offset, p->data,
                              s->data, ec->out[0]->data);
    return HONE_OK;
}
