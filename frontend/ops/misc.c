/*
 * Small stand-alone ops: Det, the window generators HannWindow,
 * HammingWindow and BlackmanWindow, and MelWeightMatrix.
 *
 * Det factors each trailing [M, M] matrix by Gaussian elimination with
 * partial pivoting in double; the determinant is the signed product of the
 * pivots. The windows are sums of cosines a0 - a1 cos(2 pi n / L) +
 * a2 cos(4 pi n / L) with L = size (periodic) or size - 1 (symmetric).
 * MelWeightMatrix follows the ONNX reference construction: num_mel_bins + 2
 * points evenly spaced in mel, mapped back to hertz and then to spectrogram
 * bins, with a triangular filter rising from each point to the next and
 * falling to the one after. The generators take their sizes from input
 * values, so their output shapes are known only once those values are.
 */
#include <stdlib.h>

#include "hone_rt.h"
#include "misc.h"
#include "ops_util.h"

/* ---------------------------------- Det ---------------------------------- */

hone_status infer_det(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    if (x->dtype && !hone_dtype_is_float(x->dtype))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be floating point");
    if (x->rank < 0) {
        hone_infer_set(ic, 0, x->dtype, -1, NULL);
        return HONE_OK;
    }
    int64_t m = x->rank >= 2 ? x->dims[x->rank - 1] : 0, m2 = x->rank >= 2 ? x->dims[x->rank - 2] : 0;
    if (x->rank < 2 || (m >= 0 && m2 >= 0 && m != m2))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "input must be [..., M, M] (square matrices)");
    hone_infer_set(ic, 0, x->dtype, x->rank - 2, x->dims);
    return HONE_OK;
}

hone_status eval_det(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_status st = hone_eval_alloc(ec, 0, x->dtype, x->rank - 2, x->dims);
    if (st)
        return st;
    int64_t m = x->dims[x->rank - 1], mm = m * m;
    double *a = malloc(sizeof *a * (size_t)(mm + 1));
    if (!a)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < ec->out[0]->numel; b++) {
        for (int64_t i = 0; i < mm; i++)
            a[i] = hone_tensor_get_f64(x, b * mm + i);
        hone_tensor_set_f64(ec->out[0], b, hone_rt_det_lu(a, m));
    }
    free(a);
    return HONE_OK;
}

/* -------------------------------- windows -------------------------------- */

/* The output_datatype attribute (default f32); numeric types only. */
static hone_status out_dtype(hone_ctx *ctx, const hone_node *nd, hone_dtype *dt)
{
    int64_t v = hone_attr_int(nd, "output_datatype", HONE_DT_FLOAT);
    *dt = (hone_dtype)v;
    if (v <= 0 || v >= HONE_DT_COUNT || !(hone_dtype_is_float(*dt) || hone_dtype_is_int(*dt)))
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED,
                              "output_datatype %lld is not a numeric type", (long long)v);
    return HONE_OK;
}

/* A scalar integer input's value, range-checked into [lo, hi]. */
static hone_status scalar_int(hone_ctx *ctx, const hone_node *nd, const hone_tensor *t,
                              const char *what, int64_t lo, int64_t hi, int64_t *v)
{
    if (t->numel != 1 || t->rank > 1 || !hone_dtype_is_int(t->dtype))
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "%s must be an integer scalar", what);
    *v = hone_tensor_get_i64(t, 0);
    if (*v < lo || *v > hi)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "%s is %lld, outside [%lld, %lld]", what,
                              (long long)*v, (long long)lo, (long long)hi);
    return HONE_OK;
}

hone_status infer_window(hone_infer *ic)
{
    hone_dtype dt;
    int64_t n = HONE_DIM_UNKNOWN;
    hone_status st = out_dtype(ic->ctx, ic->node, &dt);
    if (!st && ic->in[0]->value)
        st = scalar_int(ic->ctx, ic->node, ic->in[0]->value, "size", 0, INT64_MAX, &n);
    if (!st)
        hone_infer_set(ic, 0, dt, 1, &n);
    return st;
}

/* Cosine-sum coefficients a0, a1, a2 of the node's window. */
static void window_coefs(hone_op op, double *a)
{
    a[2] = 0;
    if (op == HONE_OP_HANN_WINDOW) {
        a[0] = a[1] = 0.5;
    } else if (op == HONE_OP_HAMMING_WINDOW) {
        a[0] = 25.0 / 46.0;
        a[1] = 21.0 / 46.0;
    } else {
        a[0] = 0.42;
        a[1] = 0.5;
        a[2] = 0.08;
    }
}

hone_status eval_window(hone_eval *ec)
{
    hone_dtype dt;
    int64_t n;
    double a[3];
    hone_status st = out_dtype(ec->ctx, ec->node, &dt);
    if (st || (st = scalar_int(ec->ctx, ec->node, ec->in[0], "size", 0, INT64_MAX, &n)) ||
        (st = hone_eval_alloc(ec, 0, dt, 1, &n)))
        return st;
    window_coefs(ec->node->op, a);
    /* a one-point symmetric window would divide by zero: it is the peak, 1 */
    double len = hone_attr_int(ec->node, "periodic", 1) ? (double)n : (double)(n - 1);
    for (int64_t i = 0; i < n; i++) {
        double t = len > 0 ? 2 * M_PI * (double)i / len : 0;
        hone_tensor_set_f64(ec->out[0], i, len > 0 ? a[0] - a[1] * cos(t) + a[2] * cos(2 * t) : 1);
    }
    return HONE_OK;
}

/* ---------------------------- MelWeightMatrix ---------------------------- */

/* Output [dft_length / 2 + 1, num_mel_bins] when both inputs are known. */
hone_status infer_mel_weight(hone_infer *ic)
{
    hone_dtype dt;
    int64_t d[2] = {HONE_DIM_UNKNOWN, HONE_DIM_UNKNOWN}, v;
    hone_status st = out_dtype(ic->ctx, ic->node, &dt);
    if (!st && ic->in[0]->value &&
        !(st = scalar_int(ic->ctx, ic->node, ic->in[0]->value, "num_mel_bins", 1, INT32_MAX, &v)))
        d[1] = v;
    if (!st && ic->in[1]->value &&
        !(st = scalar_int(ic->ctx, ic->node, ic->in[1]->value, "dft_length", 1, INT32_MAX, &v)))
        d[0] = v / 2 + 1;
    if (!st)
        hone_infer_set(ic, 0, dt, 2, d);
    return st;
}

/* Mel parameters read from the five inputs. */
typedef struct melp {
    int64_t bins, dft, rate;
    double lo, hi;
} melp;

static hone_status mel_params(hone_eval *ec, melp *p)
{
    const hone_tensor *const *in = ec->in;
    hone_status st = scalar_int(ec->ctx, ec->node, in[0], "num_mel_bins", 1, INT32_MAX, &p->bins);
    if (st || (st = scalar_int(ec->ctx, ec->node, in[1], "dft_length", 1, INT32_MAX, &p->dft)) ||
        (st = scalar_int(ec->ctx, ec->node, in[2], "sample_rate", 1, INT32_MAX, &p->rate)))
        return st;
    if (in[3]->numel != 1 || in[4]->numel != 1)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE, "edge frequencies must be scalars");
    p->lo = hone_tensor_get_f64(in[3], 0);
    p->hi = hone_tensor_get_f64(in[4], 0);
    if (!(p->lo >= 0 && p->lo <= p->hi && isfinite(p->hi)))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                              "edge frequencies must satisfy 0 <= lower <= upper (finite)");
    return HONE_OK;
}

/* Spectrogram bin of each of the bins + 2 points evenly spaced in mel. */
static void mel_points(const melp *p, int64_t *pt)
{
    double mlo = 2595 * log10(1 + p->lo / 700), mhi = 2595 * log10(1 + p->hi / 700);
    double step = (mhi - mlo) / (double)(p->bins + 2);
    for (int64_t i = 0; i < p->bins + 2; i++) {
        double hz = 700 * (pow(10, ((double)i * step + mlo) / 2595) - 1);
        pt[i] = (int64_t)floor((double)(p->dft + 1) * hz / (double)p->rate);
    }
}

/* Triangle i of the filter bank into column i of y[nspec, bins]. */
static void mel_triangle(hone_tensor *y, const int64_t *pt, int64_t i, int64_t bins)
{
    int64_t l = pt[i], c = pt[i + 1], r = pt[i + 2];
    if (c == l)
        hone_tensor_set_f64(y, c * bins + i, 1);
    for (int64_t j = l; c > l && j <= c; j++)
        hone_tensor_set_f64(y, j * bins + i, (double)(j - l) / (double)(c - l));
    for (int64_t j = c; r > c && j < r; j++)
        hone_tensor_set_f64(y, j * bins + i, (double)(r - j) / (double)(r - c));
}

hone_status eval_mel_weight(hone_eval *ec)
{
    hone_dtype dt;
    melp p;
    hone_status st = out_dtype(ec->ctx, ec->node, &dt);
    if (st || (st = mel_params(ec, &p)))
        return st;
    int64_t d[2] = {p.dft / 2 + 1, p.bins};
    if ((st = hone_eval_alloc(ec, 0, dt, 2, d)))
        return st;
    int64_t *pt = malloc(sizeof *pt * (size_t)(p.bins + 2));
    if (!pt)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    mel_points(&p, pt);
    /* an upper edge above Nyquist (or an odd dft_length) can map past the last bin */
    for (int64_t i = 0; i < p.bins + 2 && !st; i++)
        if (pt[i] < 0 || pt[i] >= d[0])
            st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_SHAPE,
                                "mel point %lld maps to bin %lld outside [0, %lld)", (long long)i,
                                (long long)pt[i], (long long)d[0]);
    for (int64_t i = 0; i < p.bins && !st; i++)
        mel_triangle(ec->out[0], pt, i, p.bins);
    free(pt);
    return st;
}
