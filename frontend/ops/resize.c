/*
 * Tensor family: Resize (opsets 10, 11, 13, 18) and Upsample (7, 9).
 *
 * Interpolation is separable: for every dim and every output coordinate we
 * precompute the input coordinate (coordinate_transformation_mode), then up
 * to four (input index, weight) terms: one for nearest, two for linear, four
 * for cubic. Following the ONNX reference, the fractional part of the input
 * coordinate is taken in (0, 1] (an integral coordinate counts as the right
 * end of the cell to its left), neighbours outside the input repeat the edge
 * (or are dropped with exclude_outside, the rest renormalised), and a
 * tf_crop_and_resize coordinate outside the input yields
 * extrapolation_value. An output element is then the weighted sum over the
 * product of its dims' terms, in double; nearest copies the element itself,
 * so it works for every dtype.
 *
 * Upsample and Resize-10 predate the attributes: asymmetric coordinates and
 * truncating nearest (rounding up when downscaling, as onnxruntime does).
 */
#include <stdlib.h>

#include "resize.h"
#include "tensor_ops.h"



/* Index of s in names (n entries), or -1. */
static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* Reads mode and the opset-11 attributes; older forms get their fixed rules. */
static hone_status resize_attrs(hone_infer *ic, bool legacy, hone_resize_plan *p)
{
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
    const hone_node *n = ic->node;
    const char *ms = hone_attr_str(n, "mode", "nearest");
    const char *cs = hone_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    const char *rs = hone_attr_str(n, "nearest_mode", "round_prefer_floor");
    int m = pick(ms, modes, legacy ? 2 : 3);
    int c = legacy ? HONE_RS_ASYMMETRIC : pick(cs, coords, 7);
    int r = legacy ? HONE_RS_SIMPLE : pick(rs, nearest, 4);
    if (m < 0 && legacy && !strcmp(ms, "bilinear"))
        m = HONE_RS_LINEAR;
    if (m < 0 || c < 0 || r < 0)
        return hone_node_fail(ic->ctx, n, HONE_ERR_INVALID, "unknown mode '%s'",
                              m < 0       ? ms
                                  : c < 0 ? cs
                                          : rs);
    if (hone_attr_int(n, "antialias", 0) ||
        strcmp(hone_attr_str(n, "keep_aspect_ratio_policy", "stretch"), "stretch"))
        return hone_node_fail(ic->ctx, n, HONE_ERR_UNSUPPORTED,
                              "antialias and keep_aspect_ratio_policy are not supported");
    p->mode = (hone_rs_mode)m;
    p->coord = (hone_rs_coord)c;
    p->nearest = (hone_rs_nearest)r;
    p->cubic_a = hone_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = hone_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = hone_attr_float(n, "extrapolation_value", 0);
    return HONE_OK;
}

/* Reads up to cap values of t as doubles; returns the count or TF_TOOLONG. */
static int read_doubles(const hone_tensor *t, double *v, int cap)
{
    if (t->numel > cap)
        return TF_TOOLONG;
    for (int64_t i = 0; i < t->numel; i++)
        v[i] = hone_tensor_get_f64(t, i);
    return (int)t->numel;
}

/* The dims scales/sizes/roi entries refer to: the axes attribute (opset 18), else all. */
static hone_status resize_axes(hone_infer *ic, int rank, int *axes, int *na)
{
    const int64_t *a;
    int n = ic->opset >= 18 ? hone_attr_ints(ic->node, "axes", &a) : -1;
    *na = n < 0 ? rank : n;
    if (n > rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "more axes than dims");
    for (int i = 0; i < *na; i++) {
        hone_status st = n < 0 ? HONE_OK : tf_axis(ic, a[i], rank, &axes[i]);
        if (st)
            return st;
        if (n < 0)
            axes[i] = i;
    }
    return HONE_OK;
}

/* Where the scales, sizes and roi come from for this op and opset (-1: none). */
static void resize_inputs(hone_infer *ic, bool upsample, int *iscales, int *isizes, int *iroi)
{
    bool v11 = !upsample && ic->opset >= 11;
    *iscales = upsample && ic->opset < 9 ? -1 : v11 ? 2 : 1;
    *isizes = v11 ? 3 : -1;
    *iroi = v11 ? 1 : -1;
}

/* Fills p->scale and p->out from given sizes (of the listed axes). */
static hone_status plan_from_sizes(hone_infer *ic, const hone_tinfo *x, const int *axes, int na,
                                   const hone_tensor *t, hone_resize_plan *p)
{
    int64_t v[HONE_MAX_RANK];
    if (t->numel != na)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "sizes has %lld entries, expected %d", (long long)t->numel, na);
    hone_tensor_ints(t, v, HONE_MAX_RANK);
    for (int k = 0; k < na; k++) {
        int64_t d = x->dims[axes[k]];
        if (v[k] < 0 || (d == 0 && v[k] > 0))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "cannot resize dim %d from %lld to %lld", axes[k], (long long)d,
                                  (long long)v[k]);
        p->out[axes[k]] = v[k];
        p->scale[axes[k]] = d > 0 ? (double)v[k] / (double)d : 1;
    }
    return HONE_OK;
}

/* Fills p->scale and p->out from given scales (of the listed axes). */
static hone_status plan_from_scales(hone_infer *ic, const hone_tinfo *x, const int *axes, int na,
                                    const hone_tensor *t, hone_resize_plan *p)
{
    double v[HONE_MAX_RANK];
    if (read_doubles(t, v, HONE_MAX_RANK) != na)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "scales has %lld entries, expected %d", (long long)t->numel, na);
    for (int k = 0; k < na; k++) {
        int a = axes[k];
        double roi = p->coord == HONE_RS_TF_CROP_AND_RESIZE ? p->roi[x->rank + a] - p->roi[a] : 1;
        double o = floor((double)x->dims[a] * roi * v[k]);
        if (!(v[k] > 0) || !(o < (double)((int64_t)1 << 52)))
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "invalid scale %g for dim %d",
                                  v[k], a);
        p->scale[a] = v[k];
        if (x->dims[a] >= 0)
            p->out[a] = (int64_t)o;
        else /* an unknown dim survives only an identity scale */
            p->out[a] = v[k] == 1 && roi == 1 ? x->dims[a] : HONE_DIM_UNKNOWN;
    }
    return HONE_OK;
}

/* Reads the roi input (tf_crop_and_resize only); defaults to the whole input. */
static hone_status plan_roi(hone_infer *ic, int rank, const int *axes, int na, int iroi,
                            hone_resize_plan *p)
{
    double v[4 * HONE_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        p->roi[i] = 0;
        p->roi[rank + i] = 1;
    }
    const hone_tensor *t = iroi >= 0 ? tf_ival(ic, iroi) : NULL;
    if (p->coord != HONE_RS_TF_CROP_AND_RESIZE || !t || t->numel == 0)
        return HONE_OK;
    if (read_doubles(t, v, 4 * HONE_MAX_RANK) != 2 * na)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "roi has %lld entries, expected %d", (long long)t->numel, 2 * na);
    for (int k = 0; k < na; k++) {
        p->roi[axes[k]] = v[k];
        p->roi[rank + axes[k]] = v[na + k];
    }
    return HONE_OK;
}

/* Scales given (non-empty), else sizes; NULL *t when neither is known. */
static hone_status pick_target(hone_infer *ic, int iscales, int isizes, const hone_tensor **t,
                               bool *sizes)
{
    const hone_tensor *s = iscales >= 0 ? tf_ival(ic, iscales) : NULL;
    bool has_s = iscales >= 0 && tf_has(ic, iscales) && !(s && s->numel == 0);
    bool has_z = isizes >= 0 && tf_has(ic, isizes);
    *t = NULL;
    *sizes = false;
    if (has_s && has_z && ic->in[iscales]->rank == 1 && ic->in[iscales]->dims[0] > 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "give scales or sizes, not both");
    if (!has_s && !has_z && iscales >= 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "needs scales or sizes");
    if (has_s && !(has_z && s == NULL))
        *t = s;
    else if (has_z) {
        *t = tf_ival(ic, isizes);
        *sizes = true;
    }
    return HONE_OK;
}

/* Upsample-7: the scales attribute, one per dim. */
static hone_status plan_from_attr(hone_infer *ic, const int *axes, int na, hone_resize_plan *p)
{
    const float *f;
    double v[HONE_MAX_RANK];
    int n = hone_attr_floats(ic->node, "scales", &f);
    if (n != ic->in[0]->rank)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "scales must have %d entries",
                              ic->in[0]->rank);
    for (int i = 0; i < n; i++)
        v[i] = f[i];
    hone_tensor t = {HONE_DT_DOUBLE, 1, {n}, n, v};
    p->known = true;
    return plan_from_scales(ic, ic->in[0], axes, na, &t, p);
}

/* Everything Resize/Upsample needs: attributes, roi, per-dim scale and size. */
static hone_status resize_prepare(hone_infer *ic, bool upsample, hone_resize_plan *p)
{
    const hone_tinfo *x = ic->in[0];
    int axes[HONE_MAX_RANK], na, iscales, isizes, iroi;
    const hone_tensor *t;
    bool sizes;
    hone_status st = resize_attrs(ic, upsample || ic->opset < 11, p);
    p->known = false;
    if (st || x->rank < 0)
        return st;
    resize_inputs(ic, upsample, &iscales, &isizes, &iroi);
    for (int i = 0; i < x->rank; i++) {
        p->scale[i] = 1;
        p->out[i] = x->dims[i];
    }
    if ((st = resize_axes(ic, x->rank, axes, &na)) ||
        (st = plan_roi(ic, x->rank, axes, na, iroi, p)))
        return st;
    if (iscales < 0)
        return plan_from_attr(ic, axes, na, p);
    if ((st = pick_target(ic, iscales, isizes, &t, &sizes)) || !t)
        return st;
    p->known = true;
    return sizes ? plan_from_sizes(ic, x, axes, na, t, p) : plan_from_scales(ic, x, axes, na, t, p);
}

hone_status hone_resize_plan_of(hone_infer *ic, bool upsample, hone_resize_plan *p)
{
    return resize_prepare(ic, upsample, p);
}

/* Resize: x, [roi,] scales | sizes -> x resized per dim. */
static hone_status infer_resample(hone_infer *ic, bool upsample)
{
    const hone_tinfo *x = ic->in[0];
    hone_resize_plan p;
    hone_status st = resize_prepare(ic, upsample, &p);
    if (!st && x->dtype == HONE_DT_STRING && p.mode != HONE_RS_NEAREST)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "cannot interpolate strings");
    if (st)
        return st;
    if (!p.known || x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, x->rank);
        return HONE_OK;
    }
    st = tf_check_size(ic, x->rank, p.out);
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, p.out);
    return st;
}

hone_status infer_resize(hone_infer *ic)
{
    return infer_resample(ic, false);
}

hone_status infer_upsample(hone_infer *ic)
{
    return infer_resample(ic, true);
}

/* ---- the kernel ---- */

/* Input coordinate of output coordinate j along a dim of extents in -> out. */
static double to_input(const hone_resize_plan *p, int d, int rank, double j, int64_t in, int64_t out)
{
    double s = p->scale[d], ow = s * (double)in, r0 = p->roi[d], r1 = p->roi[rank + d];
    switch (p->coord) {
    case HONE_RS_HALF_PIXEL: return (j + 0.5) / s - 0.5;
    case HONE_RS_HALF_PIXEL_SYMMETRIC:
        return (double)in / 2 * (1 - (double)out / ow) + (j + 0.5) / s - 0.5;
    case HONE_RS_PYTORCH_HALF_PIXEL: return out > 1 ? (j + 0.5) / s - 0.5 : 0;
    case HONE_RS_ALIGN_CORNERS: return ow == 1 ? 0 : j * (double)(in - 1) / (ow - 1);
    case HONE_RS_TF_HALF_PIXEL_FOR_NN: return (j + 0.5) / s;
    case HONE_RS_TF_CROP_AND_RESIZE:
        return r0 * (double)(in - 1) +
            (ow == 1 ? (r1 - r0) * (double)(in - 1) / 2
                     : j * (r1 - r0) * (double)(in - 1) / (ow - 1));
    default: return j / s;
    }
}

/* Nearest input index for coordinate x (unclamped). */
static int64_t nearest_index(const hone_resize_plan *p, double x, double scale)
{
    double f = floor(x), t = x - f;
    if (t == 0)
        return (int64_t)f;
    switch (p->nearest) {
    case HONE_RS_PREFER_FLOOR: return (int64_t)(t <= 0.5 ? f : f + 1);
    case HONE_RS_PREFER_CEIL: return (int64_t)(t < 0.5 ? f : f + 1);
    case HONE_RS_FLOOR: return (int64_t)f;
    case HONE_RS_CEIL: return (int64_t)f + 1;
    default: return (int64_t)(scale < 1 ? ceil(x) : x);
    }
}

/* Interpolation weights for fractional position t in (0, 1]: 2 (linear) or 4 (cubic). */
static int kernel_weights(const hone_resize_plan *p, double t, double *w)
{
    double a = p->cubic_a, u = 1 - t;
    if (p->mode == HONE_RS_LINEAR) {
        w[0] = 1 - t;
        w[1] = t;
        return 2;
    }
    w[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * (u + 1) - 5 * a) * (u + 1) + 8 * a) * (u + 1) - 4 * a;
    return 4;
}

/* The terms of one output coordinate: input indices (clamped to the edge)
 * and weights, zero weights dropped. Returns the count (0: extrapolate). */
static int coord_terms(const hone_resize_plan *p, double x, int64_t in, double scale, int64_t *idx,
                       double *w)
{
    if (p->coord == HONE_RS_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1)))
        return 0;
    if (!(fabs(x) < 1e15))
        x = 0;
    if (p->mode == HONE_RS_NEAREST) {
        int64_t i = nearest_index(p, x, scale);
        idx[0] = i < 0 ? 0 : i >= in ? in - 1 : i;
        w[0] = 1;
        return 1;
    }
    double f = floor(x), t = x - f, sum = 0, ww[4];
    if (t == 0) {
        f -= 1;
        t = 1;
    }
    int n = kernel_weights(p, t, ww), k = 0;
    int64_t base = (int64_t)f - (n / 2 - 1);
    for (int i = 0; i < n; i++)
        if (p->exclude_outside && (base + i < 0 || base + i >= in))
            ww[i] = 0;
    for (int i = 0; i < n; i++)
        sum += ww[i];
    for (int i = 0; i < n; i++)
        if (ww[i] != 0) {
            idx[k] = base + i < 0 ? 0 : base + i >= in ? in - 1 : base + i;
            w[k++] = p->exclude_outside && sum != 0 ? ww[i] / sum : ww[i];
        }
    return k;
}

int hone_resize_terms(const hone_resize_plan *p, int d, int rank, int64_t j, int64_t in,
                      int64_t out, int64_t *idx, double *w)
{
    double c = to_input(p, d, rank, (double)j, in, out);
    return coord_terms(p, c, in, p->scale[d], idx, w);
}

typedef struct dim_terms {
    int *n; /* per output coordinate: term count (0 = extrapolate) */
    int64_t *idx; /* [out * 4] element offsets (index * stride) */
    double *w; /* [out * 4] */
} dim_terms;

/* Weighted sum over the product of the dims' terms for output multi-index o. */
static double accumulate(const hone_tensor *x, const dim_terms *dt, const int64_t *o, int d,
                         int64_t off)
{
    if (d == x->rank)
        return hone_tensor_get_f64(x, off);
    double s = 0;
    for (int t = 0; t < dt[d].n[o[d]]; t++)
        s += dt[d].w[o[d] * 4 + t] * accumulate(x, dt, o, d + 1, off + dt[d].idx[o[d] * 4 + t]);
    return s;
}

/* Fills y from x with the precomputed terms. */
static void resample(const hone_resize_plan *p, const hone_tensor *x, hone_tensor *y,
                     const dim_terms *dt)
{
    int64_t o[HONE_MAX_RANK] = {0};
    for (int64_t k = 0; k < y->numel; k++, tf_next_index(y->rank, y->dims, o)) {
        bool outside = false;
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) {
            outside |= dt[d].n[o[d]] == 0;
            off += dt[d].idx[o[d] * 4];
        }
        if (outside)
            hone_tensor_set_f64(y, k, p->extrapolation);
        else if (p->mode == HONE_RS_NEAREST)
            tf_copy(y, k, x, off, 1);
        else
            hone_tensor_set_f64(y, k, accumulate(x, dt, o, 0, 0));
    }
}

/* Computes the per-dim terms into one allocation (*buf, freed by the caller). */
static hone_status build_terms(hone_eval *ec, const hone_resize_plan *p, const hone_tensor *x,
                               const hone_tensor *y, dim_terms *dt, void **buf)
{
    int64_t total = 0, xs[HONE_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        total += y->dims[d];
    char *m =
        malloc((size_t)(total + 1) * (sizeof(int) + 4 * sizeof(int64_t) + 4 * sizeof(double)));
    if (!(*buf = m))
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    hone_strides(x->rank, x->dims, xs);
    double *w = (double *)m;
    int64_t *idx = (int64_t *)(w + 4 * total);
    int *n = (int *)(idx + 4 * total);
    for (int d = 0; d < x->rank; d++) {
        dt[d] = (dim_terms){n, idx, w};
        for (int64_t j = 0; j < y->dims[d]; j++) {
            n[j] = hone_resize_terms(p, d, x->rank, j, x->dims[d], y->dims[d], idx + 4 * j,
                                     w + 4 * j);
            for (int t = 0; t < 4; t++)
                idx[4 * j + t] = t < n[j] ? idx[4 * j + t] * xs[d] : 0;
        }
        n += y->dims[d];
        idx += 4 * y->dims[d];
        w += 4 * y->dims[d];
    }
    return HONE_OK;
}

/* Shared kernel of Resize and Upsample. */
static hone_status eval_resample(hone_eval *ec, bool upsample)
{
    hone_tinfo ti[4];
    const hone_tinfo *pi[4];
    hone_infer ic;
    hone_resize_plan p;
    dim_terms dt[HONE_MAX_RANK];
    void *buf = NULL;
    tf_eval_view(ec, &ic, ti, pi);
    hone_status st = tf_need_out(ec);
    if (!st)
        st = resize_prepare(&ic, upsample, &p);
    if (!st)
        st = build_terms(ec, &p, ec->in[0], ec->out[0], dt, &buf);
    if (!st)
        resample(&p, ec->in[0], ec->out[0], dt);
    free(buf);
    return st;
}

hone_status eval_resize(hone_eval *ec)
{
    return eval_resample(ec, false);
}

hone_status eval_upsample(hone_eval *ec)
{
    return eval_resample(ec, true);
}
