/*
 * Kernels for the less common ops compiled models call (backend/lower_extra.c):
 * GridSample, TopK, Det, MeanVarianceNormalization, training-mode
 * BatchNormalization and MaxPool over 8-bit integers.
 *
 * Compiled and interpreted results agree bit for bit: the interpreter runs
 * the same GridSample sampler, Det factorisation and TopK / Unique stable
 * sort (frontend/ops/gridsample.c, misc.c, reduce_axis.c, tensor_unique.c),
 * and the MVN, BatchNormalization and MaxPool kernels repeat its arithmetic
 * in the same precision and order (frontend/ops/nn_norm.c, nn_pool.c):
 * GridSample and Det in double, TopK ties keeping the lower index with NaN
 * above every number, MVN with double sums in element order. Float kernels
 * take float32 or float64 buffers (f64 flag); none allocates: scratch comes
 * from the caller.
 */
#include <math.h>
#include <string.h>

#include "hone_rt.h"

/* Element i of a float32 (f64 = 0) or float64 buffer, as double. */
static double ld(const void *p, int64_t i, int f64)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void st(void *p, int64_t i, double v, int f64)
{
    if (f64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* ===================== GridSample ===================== */

/* The plane being sampled. */
typedef struct gs_plane {
    const hone_rt_gs_geo *g;
    const void *x;
    int64_t base;
} gs_plane;

/* Normalised coordinate c in [-1, 1] to pixel space of an axis of n pixels. */
static double gs_unnormalize(double c, int64_t n, int align)
{
    return align ? (c + 1) / 2 * (double)(n - 1) : ((c + 1) * (double)n - 1) / 2;
}

/* Mirrors v into [lo2 / 2, hi2 / 2] (bounds given doubled). */
static double gs_reflect(double v, double lo2, double hi2)
{
    if (lo2 == hi2)
        return 0;
    double lo = lo2 / 2, span = (hi2 - lo2) / 2;
    v = fabs(v - lo);
    double extra = fmod(v, span);
    return fmod(floor(v / span), 2) == 0 ? extra + lo : span - extra + lo;
}

/* Border or reflection padding of a pixel coordinate (zeros: unchanged). */
static double gs_pad(const hone_rt_gs_geo *g, double v, int64_t n)
{
    if (g->pad == HONE_RT_GS_ZEROS)
        return v;
    if (g->pad == HONE_RT_GS_REFLECTION)
        v = g->align ? gs_reflect(v, 0, 2 * (double)(n - 1)) : gs_reflect(v, -1, 2 * (double)n - 1);
    double hi = (double)(n - 1);
    return v < 0 ? 0 : v > hi ? hi : v; /* NaN goes to hi */
}

/* Pixel (iy, ix) of the plane, 0 outside the image. */
static double gs_pixel(const gs_plane *p, double iy, double ix)
{
    const hone_rt_gs_geo *g = p->g;
    if (!(iy >= 0 && ix >= 0 && iy < (double)g->h && ix < (double)g->w))
        return 0;
    return ld(p->x, p->base + (int64_t)iy * g->w + (int64_t)ix, g->f64);
}

static double gs_bilinear(const gs_plane *p, double y, double x)
{
    double x0 = floor(x), y0 = floor(y), tx = x - x0, ty = y - y0;
    return gs_pixel(p, y0, x0) * (1 - tx) * (1 - ty) + gs_pixel(p, y0, x0 + 1) * tx * (1 - ty) +
           gs_pixel(p, y0 + 1, x0) * (1 - tx) * ty + gs_pixel(p, y0 + 1, x0 + 1) * tx * ty;
}

/* Cubic convolution weights of the 4 taps around fractional offset t (A = -0.75). */
static void gs_cubic(double t, double *w)
{
    const double a = -0.75;
    double s = t + 1, u = 1 - t, v = 2 - t;
    w[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
}

/* 16 taps, each read padded separately. */
static double gs_bicubic(const gs_plane *p, double y, double x)
{
    const hone_rt_gs_geo *g = p->g;
    double x0 = floor(x), y0 = floor(y), wx[4], wy[4], sum = 0;
    gs_cubic(x - x0, wx);
    gs_cubic(y - y0, wy);
    for (int i = 0; i < 4; i++) {
        double row = 0, py = gs_pad(g, y0 - 1 + i, g->h);
        for (int j = 0; j < 4; j++)
            row += wx[j] * gs_pixel(p, floor(py), floor(gs_pad(g, x0 - 1 + j, g->w)));
        sum += wy[i] * row;
    }
    return sum;
}

/* The plane sampled at normalised grid point (gx, gy). */
static double gs_sample(const gs_plane *p, double gx, double gy)
{
    const hone_rt_gs_geo *g = p->g;
    double x = gs_unnormalize(gx, g->w, g->align), y = gs_unnormalize(gy, g->h, g->align);
    if (g->mode == HONE_RT_GS_BICUBIC)
        return gs_bicubic(p, y, x);
    x = gs_pad(g, x, g->w);
    y = gs_pad(g, y, g->h);
    if (g->mode == HONE_RT_GS_NEAREST)
        return gs_pixel(p, nearbyint(y), nearbyint(x));
    return gs_bilinear(p, y, x);
}

void hone_rt_gridsample(const hone_rt_gs_geo *g, const void *x, const void *grid, void *y)
{
    int64_t npix = g->ho * g->wo;
    gs_plane p = {g, x, 0};
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t c = 0; c < g->c; c++) {
            p.base = (n * g->c + c) * g->h * g->w;
            for (int64_t i = 0; i < npix; i++) {
                int64_t gi = (n * npix + i) * 2;
                double v = gs_sample(&p, ld(grid, gi, g->f64), ld(grid, gi + 1, g->f64));
                st(y, (n * g->c + c) * npix + i, v, g->f64);
            }
        }
}

/* ===================== TopK ===================== */

void hone_rt_stable_sort(int64_t *idx, int64_t *tmp, int64_t n, hone_rt_cmp_fn cmp,
                         const void *user)
{
    if (n < 2)
        return;
    int64_t h = n / 2, i = 0, j = h, o = 0;
    hone_rt_stable_sort(idx, tmp, h, cmp, user);
    hone_rt_stable_sort(idx + h, tmp, n - h, cmp, user);
    while (i < h && j < n)
        tmp[o++] = cmp(user, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h)
        tmp[o++] = idx[i++];
    while (j < n)
        tmp[o++] = idx[j++];
    memcpy(idx, tmp, sizeof *idx * (size_t)n);
}

/* The slice being sorted: item j is element base + j * stride of x. */
typedef struct tk_slice {
    hone_rt_cmp_fn cmp;
    const void *user;
    int64_t base, stride;
    int sign; /* -1 sorts descending */
} tk_slice;

static int slice_cmp(const void *user, int64_t a, int64_t b)
{
    const tk_slice *s = user;
    return s->sign * s->cmp(s->user, s->base + a * s->stride, s->base + b * s->stride);
}

/* The first k items of the stable order of [0, n) into best[0, k) by one
 * pass of insertion: an item enters only when strictly before the current
 * k-th (it comes later, so it loses ties), and moves up past the items it
 * strictly precedes. O(n) on typical data for small k. */
static void select_first(int64_t *best, int64_t n, int64_t k, const tk_slice *s)
{
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++) {
        if (m == k && slice_cmp(s, j, best[k - 1]) >= 0)
            continue;
        int64_t p = m < k ? m++ : k - 1;
        for (; p > 0 && slice_cmp(s, j, best[p - 1]) < 0; p--)
            best[p] = best[p - 1];
        best[p] = j;
    }
}

void hone_rt_topk_by(hone_rt_cmp_fn cmp, const void *user, size_t es, int64_t outer, int64_t n,
                     int64_t inner, int64_t k, int largest, const void *x, void *y, int64_t *yi,
                     int64_t *scratch)
{
    tk_slice s = {cmp, user, 0, inner, largest ? -1 : 1};
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            s.base = o * n * inner + i;
            if (k > 0 && k * 16 <= n) {
                select_first(scratch, n, k, &s);
            } else {
                for (int64_t j = 0; j < n; j++)
                    scratch[j] = j;
                hone_rt_stable_sort(scratch, scratch + n, n, slice_cmp, &s);
            }
            for (int64_t j = 0; j < k; j++) {
                int64_t dst = (o * k + j) * inner + i;
                memcpy((char *)y + (size_t)dst * es,
                       (const char *)x + (size_t)(s.base + scratch[j] * inner) * es, es);
                yi[dst] = scratch[j];
            }
        }
}

/* A typed buffer for elem_cmp. */
typedef struct typed {
    hone_rt_elem et;
    const void *x;
} typed;

/* Three-way comparison of elements i and j: integers exactly, floats with
 * NaN above every number (the interpreter's hone_reduce_cmp). */
static int elem_cmp(const void *user, int64_t i, int64_t j)
{
    const typed *t = user;
    const void *x = t->x;
    switch (t->et) {
#define INT_CMP(E, T)                                                                              \
    case E: {                                                                                      \
        T a = ((const T *)x)[i], b = ((const T *)x)[j];                                            \
        return (a > b) - (a < b);                                                                  \
    }
        INT_CMP(HONE_RT_I8, int8_t)
        INT_CMP(HONE_RT_U8, uint8_t)
        INT_CMP(HONE_RT_I16, int16_t)
        INT_CMP(HONE_RT_U16, uint16_t)
        INT_CMP(HONE_RT_I32, int32_t)
        INT_CMP(HONE_RT_U32, uint32_t)
        INT_CMP(HONE_RT_I64, int64_t)
        INT_CMP(HONE_RT_U64, uint64_t)
#undef INT_CMP
    default: {
        double a = ld(x, i, t->et == HONE_RT_F64), b = ld(x, j, t->et == HONE_RT_F64);
        if (isnan(a) || isnan(b))
            return (int)isnan(a) - (int)isnan(b);
        return (a > b) - (a < b);
    }
    }
}

size_t hone_rt_elem_size(hone_rt_elem et)
{
    static const size_t sz[] = {4, 8, 1, 1, 2, 2, 4, 4, 8, 8};
    return sz[et];
}

void hone_rt_topk(hone_rt_elem et, int64_t outer, int64_t n, int64_t inner, int64_t k,
                  int largest, const void *x, void *y, int64_t *yi, int64_t *scratch)
{
    typed t = {et, x};
    hone_rt_topk_by(elem_cmp, &t, hone_rt_elem_size(et), outer, n, inner, k, largest, x, y, yi,
                    scratch);
}

/* ===================== Det ===================== */

double hone_rt_det_lu(double *a, int64_t m)
{
    double det = 1;
    for (int64_t c = 0; c < m; c++) {
        int64_t p = c;
        for (int64_t r = c + 1; r < m; r++)
            if (fabs(a[r * m + c]) > fabs(a[p * m + c]))
                p = r;
        if (a[p * m + c] == 0)
            return 0;
        if (p != c) {
            for (int64_t j = 0; j < m; j++) {
                double t = a[c * m + j];
                a[c * m + j] = a[p * m + j];
                a[p * m + j] = t;
            }
            det = -det;
        }
        det *= a[c * m + c];
        for (int64_t r = c + 1; r < m; r++) {
            double f = a[r * m + c] / a[c * m + c];
            for (int64_t j = c; j < m; j++)
                a[r * m + j] -= f * a[c * m + j];
        }
    }
    return det;
}

void hone_rt_det(int64_t batch, int64_t m, int f64, const void *x, void *y, double *scratch)
{
    int64_t mm = m * m;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t i = 0; i < mm; i++)
            scratch[i] = ld(x, b * mm + i, f64);
        st(y, b, hone_rt_det_lu(scratch, m), f64);
    }
}

/* ===================== MeanVarianceNormalization ===================== */

/* Advances the odometer idx over m->dims and the group g of the element. */
static void mvn_next(const hone_rt_mvn_geo *m, int64_t *idx, int64_t *g)
{
    for (int d = m->rank - 1; d >= 0; d--) {
        *g += m->gstride[d];
        if (++idx[d] < m->dims[d])
            return;
        *g -= m->gstride[d] * m->dims[d];
        idx[d] = 0;
    }
}

void hone_rt_mvn(const hone_rt_mvn_geo *m, const float *x, float *y, double *scratch)
{
    double cnt = m->groups ? (double)m->numel / (double)m->groups : 1;
    memset(scratch, 0, sizeof *scratch * 2 * (size_t)m->groups);
    int64_t idx[HONE_RT_MAX_RANK] = {0}, g = 0;
    for (int64_t i = 0; i < m->numel; i++, mvn_next(m, idx, &g)) {
        scratch[2 * g] += x[i];
        scratch[2 * g + 1] += (double)x[i] * x[i];
    }
    memset(idx, 0, sizeof idx);
    g = 0;
    for (int64_t i = 0; i < m->numel; i++, mvn_next(m, idx, &g)) {
        double mean = scratch[2 * g] / cnt, var = scratch[2 * g + 1] / cnt - mean * mean;
        y[i] = (float)((x[i] - mean) / (sqrt(var > 0 ? var : 0) + 1e-9));
    }
}

/* ===================== BatchNormalization, training mode ===================== */

void hone_rt_bn_batch(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                      const float *bias, const float *mean_in, const float *var_in, float eps,
                      float momentum, float *y, float *run_mean, float *run_var,
                      float *batch_mean, float *batch_var, float *scratch)
{
    float *bm = scratch, *bv = scratch + c;
    hone_rt_channel_moments(n, c, plane, x, bm, bv);
    hone_rt_batchnorm(n, c, plane, x, scale, bias, bm, bv, eps, y);
    for (int64_t i = 0; i < c; i++) {
        if (run_mean)
            run_mean[i] = mean_in[i] * momentum + bm[i] * (1 - momentum);
        if (run_var)
            run_var[i] = var_in[i] * momentum + bv[i] * (1 - momentum);
        if (batch_mean)
            batch_mean[i] = bm[i];
        if (batch_var)
            batch_var[i] = bv[i];
    }
}

/* ===================== MaxPool over 8-bit integers ===================== */

void hone_rt_maxpool_i8(const hone_rt_window *w, int64_t planes, int is_signed, const void *x,
                        void *y, int64_t *idx, int col_major, float *scratch)
{
    int64_t nin = planes * hone_rt_window_in_numel(w), nout = planes * hone_rt_window_out_numel(w);
    float *xf = scratch, *yf = scratch + nin;
    for (int64_t i = 0; i < nin; i++)
        xf[i] = is_signed ? (float)((const int8_t *)x)[i] : (float)((const uint8_t *)x)[i];
    hone_rt_maxpool(w, planes, xf, yf, idx, col_major);
    double lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    for (int64_t i = 0; i < nout; i++) { /* saturating, as the interpreter stores */
        double v = yf[i] <= lo ? lo : yf[i] >= hi ? hi : yf[i];
        if (is_signed)
            ((int8_t *)y)[i] = (int8_t)v;
        else
            ((uint8_t *)y)[i] = (uint8_t)v;
    }
}
