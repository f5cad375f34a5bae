/*
 * Depthwise 2-D convolution (group == input channels == output channels),
 * computed directly. Going through im2col + GEMM, a depthwise conv spends
 * most of its time building one-row column matrices for GEMMs of a single
 * output row; here each output row accumulates one kernel tap at a time: every
 * tap whose input row exists adds w[ky,kx] times a run of that input row, over
 * the run of output columns whose input column exists, while the row stays in
 * L1 (tap by tap over whole planes, the earlier order, kept a 112x112 plane in
 * L2 for 9 passes). Strides 1 and 2 are loops with constant strides, cloned for
 * AVX-512 and AVX2, so they vectorise; no scratch.
 */
#include "gemm_micro.h"
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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DW_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define DW_CLONES
#endif

/* yr[o] += wv * xr[o * s], o in [lo, hi); s a constant in the common cases, so the loop
 * vectorises (stride 2 through the compiler's interleaved loads; O3, since -O2's cheap
 * cost model leaves loops of unknown trip count scalar). */
#define DW_RUN(yr, xr, wv, lo, hi, s)                                                          \
    do {                                                                                       \
        float *restrict y_ = (yr);                                                             \
        const float *restrict x_ = (xr);                                                       \
        for (int64_t o_ = (lo); o_ < (hi); o_++)                                               \
            y_[o_] += (wv) * x_[o_ * (s)];                                                     \
    } while (0)

/* One plane: y[oh, ow] = bias + sum over taps of k[ky, kx] * x[iy, ix], output row by
 * output row: every tap whose input row exists adds w[ky,kx] times a run of that row
 * over the output columns whose input column exists, while the output row is in L1. */
DW_CLONES
static void dw_plane(const hone_rt_window *w, const float *x, const float *k, float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1];
    for (int64_t oy = 0; oy < oh; oy++) {
        float *yr = y + oy * ow;
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = bias;
        for (int64_t ky = 0; ky < w->k[0]; ky++) {
            int64_t iy = oy * s0 + ky * w->dil[0] - w->pad[0];
            if (iy < 0 || iy >= ih)
                continue;
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                float wv = k[ky * w->k[1] + kx];
                int64_t sx = kx * w->dil[1] - w->pad[1], lo, hi;
                valid_range(ow, s1, sx, iw, &lo, &hi);
                const float *xr = x + iy * iw + sx;
                if (s1 == 1)
                    DW_RUN(yr, xr, wv, lo, hi, 1);
                else if (s1 == 2)
                    DW_RUN(yr, xr, wv, lo, hi, 2);
                else
                    DW_RUN(yr, xr, wv, lo, hi, s1);
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DW_AVX512 1

/* Lanes of a 16-lane mask spread to the even lanes of two 16-lane masks (stride 2). */
static inline void even_masks(__mmask16 m, __mmask16 *lo, __mmask16 *hi)
{
    unsigned l = 0, h = 0;
    for (int j = 0; j < 8; j++) {
        l |= ((m >> j) & 1u) << (2 * j);
        h |= ((m >> (j + 8)) & 1u) << (2 * j);
    }
    *lo = (__mmask16)l;
    *hi = (__mmask16)h;
}

/* One plane with AVX-512, 16 output columns at a time, every tap accumulated in a
 * register before one store: lanes whose input column is in the padding are masked off
 * (never read). Strides 1 and 2 (even lanes of two loads), kernels up to 16 wide. The
 * taps are added in the same order as in dw_plane. */
__attribute__((target("avx512f"))) static void dw_plane_avx512(const hone_rt_window *w,
                                                              const float *x, const float *k,
                                                              float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1], kw = w->k[1], lo[16], hi[16];
    for (int64_t kx = 0; kx < kw; kx++)
        valid_range(ow, s1, kx * w->dil[1] - w->pad[1], iw, &lo[kx], &hi[kx]);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t o = 0; o < ow; o += 16) {
            int64_t n = ow - o < 16 ? ow - o : 16;
            __m512 acc = _mm512_set1_ps(bias);
            for (int64_t ky = 0; ky < w->k[0]; ky++) {
                int64_t iy = oy * s0 + ky * w->dil[0] - w->pad[0];
                if (iy < 0 || iy >= ih)
                    continue;
                for (int64_t kx = 0; kx < kw; kx++) {
                    int64_t a = lo[kx] > o ? lo[kx] : o, b = hi[kx] < o + n ? hi[kx] : o + n;
                    if (a >= b)
                        continue;
                    __mmask16 m = (__mmask16)(((1u << (b - o)) - 1) & ~((1u << (a - o)) - 1));
                    /* lane j reads x row iy, column (o + j) * s1 + shift */
                    const float *base = x + iy * iw + kx * w->dil[1] - w->pad[1] + o * s1;
                    __m512 xv;
                    if (s1 == 1) {
                        xv = _mm512_maskz_loadu_ps(m, base);
                    } else {
                        __mmask16 ml, mh;
                        even_masks(m, &ml, &mh);
                        xv = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(ml, base), even,
                                                    _mm512_maskz_loadu_ps(mh, base + 16));
                    }
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(k[ky * kw + kx]), xv, acc);
                }
            }
            _mm512_mask_storeu_ps(y + oy * ow + o, (__mmask16)((1u << n) - 1), acc);
        }
}

#endif

void hone_rt_depthwise_conv(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                            const float *wt, const float *bias, float *y)
{
    int64_t xp = w->in[0] * w->in[1], yp = w->out[0] * w->out[1], kp = w->k[0] * w->k[1];
#ifdef DW_AVX512
    if (hone_rt_cpu_avx512f() && w->stride[1] <= 2 && w->k[1] <= 16) {
        for (int64_t b = 0; b < n; b++)
            for (int64_t ch = 0; ch < c; ch++)
                dw_plane_avx512(w, x + (b * c + ch) * xp, wt + ch * kp, bias ? bias[ch] : 0.0f,
                                y + (b * c + ch) * yp);
        return;
    }
#endif
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            dw_plane(w, x + (b * c + ch) * xp, wt + ch * kp, bias ? bias[ch] : 0.0f,
                     y + (b * c + ch) * yp);
}
