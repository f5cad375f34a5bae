/*
 * Depthwise 2-D convolution (group == input channels == output channels),
 * computed directly. Going through im2col + GEMM, a depthwise conv spends
 * most of its time building one-row column matrices for GEMMs of a single
 * output row; here each plane accumulates one kernel tap at a time: for tap
 * (ky, kx) every output row whose input row exists adds w[ky,kx] times a run
 * of that input row, over the run of output columns whose input column
 * exists. With stride 1 the run is contiguous, so it vectorises; no scratch.
 */
#include "hone_rt.h"

/* First and one-past-last output index o in [0, n) with 0 <= o*s + shift < len. */
static void valid_range(int64_t n, int64_t s, int64_t shift, int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t a = shift >= 0 ? 0 : (-shift + s - 1) / s;
    int64_t b = len - 1 - shift < 0 ? 0 : (len - 1 - shift) / s + 1;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo)
        *hi = *lo;
}

/* One plane: y[oh, ow] = bias + sum over taps of k[ky, kx] * x[iy, ix]. */
static void dw_plane(const hone_rt_window *w, const float *x, const float *k, float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    for (int64_t i = 0; i < oh * ow; i++)
        y[i] = bias;
    for (int64_t ky = 0; ky < w->k[0]; ky++)
        for (int64_t kx = 0; kx < w->k[1]; kx++) {
            float wv = k[ky * w->k[1] + kx];
            int64_t sx = kx * w->dil[1] - w->pad[1], sy = ky * w->dil[0] - w->pad[0], lo, hi, r0, r1;
            valid_range(ow, w->stride[1], sx, iw, &lo, &hi);
            valid_range(oh, w->stride[0], sy, ih, &r0, &r1);
            for (int64_t oy = r0; oy < r1; oy++) {
                const float *xr = x + (oy * w->stride[0] + sy) * iw + sx;
                float *yr = y + oy * ow;
                if (w->stride[1] == 1)
                    for (int64_t ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox];
                else
                    for (int64_t ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox * w->stride[1]];
            }
        }
}

void hone_rt_depthwise_conv(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                            const float *wt, const float *bias, float *y)
{
    int64_t xp = w->in[0] * w->in[1], yp = w->out[0] * w->out[1], kp = w->k[0] * w->k[1];
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            dw_plane(w, x + (b * c + ch) * xp, wt + ch * kp, bias ? bias[ch] : 0.0f,
                     y + (b * c + ch) * yp);
}
