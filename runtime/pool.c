/*
 * Pooling over sliding windows of any spatial rank.
 *
 * Each output position's window is clipped to the image once, per dim, so the
 * inner walk visits only real elements and never tests bounds: a window
 * iterator steps an odometer over the clipped kernel ranges and keeps the
 * element offset up to date incrementally. Padding therefore never takes part
 * in a max, and average pooling counts it only when asked to. Global pooling
 * is a plain reduction over each contiguous plane.
 */
#include <math.h>

#include <stdbool.h>
#include <string.h>

#include "gemm_micro.h"

#include "hone_rt.h"

/* Walks the image elements one window covers, padding excluded. */
typedef struct win_iter {
    int nsp;
    int64_t j[HONE_RT_MAX_SPATIAL], lo[HONE_RT_MAX_SPATIAL], hi[HONE_RT_MAX_SPATIAL];
    int64_t step[HONE_RT_MAX_SPATIAL]; /* plane offset of one kernel step */
    int64_t off;                       /* plane offset of the current element */
} win_iter;

/* Row-major strides of the image plane. */
static void plane_strides(const hone_rt_window *w, int64_t *st)
{
    int64_t s = 1;
    for (int d = w->nsp - 1; d >= 0; d--) {
        st[d] = s;
        s *= w->in[d];
    }
}

/* Kernel indices [lo, hi) of dim d whose image coordinate lies in [a, b). */
static void clip_dim(const hone_rt_window *w, int d, int64_t start, int64_t a, int64_t b,
                     int64_t *lo, int64_t *hi)
{
    int64_t dil = w->dil[d];
    *lo = start >= a ? 0 : (a - start + dil - 1) / dil;
    *hi = start >= b ? 0 : (b - start + dil - 1) / dil;
    if (*hi > w->k[d])
        *hi = w->k[d];
    if (*hi < *lo)
        *hi = *lo;
}

/* Starts it on the window at output position o; returns its element count. */
static int64_t win_begin(const hone_rt_window *w, const int64_t *o, const int64_t *st,
                         win_iter *it)
{
    int64_t count = 1;
    it->nsp = w->nsp;
    it->off = 0;
    for (int d = 0; d < w->nsp; d++) {
        int64_t start = o[d] * w->stride[d] - w->pad[d];
        clip_dim(w, d, start, 0, w->in[d], &it->lo[d], &it->hi[d]);
        it->j[d] = it->lo[d];
        it->step[d] = w->dil[d] * st[d];
        it->off += (start + it->lo[d] * w->dil[d]) * st[d];
        count *= it->hi[d] - it->lo[d];
    }
    return count;
}

/* Advances to the next element; 0 when the window is done. */
static int win_next(win_iter *it)
{
    for (int d = it->nsp - 1; d >= 0; d--) {
        if (++it->j[d] < it->hi[d]) {
            it->off += it->step[d];
            return 1;
        }
        it->off -= (it->j[d] - 1 - it->lo[d]) * it->step[d];
        it->j[d] = it->lo[d];
    }
    return 0;
}

/* Window size counting padding too (AveragePool count_include_pad). */
static int64_t padded_count(const hone_rt_window *w, const int64_t *o)
{
    int64_t count = 1, lo, hi;
    for (int d = 0; d < w->nsp; d++) {
        int64_t start = o[d] * w->stride[d] - w->pad[d];
        clip_dim(w, d, start, -w->pad[d], w->in[d] + w->pad_end[d], &lo, &hi);
        count *= hi - lo;
    }
    return count;
}

/* Steps the output position odometer o. */
static void next_pos(const hone_rt_window *w, int64_t *o)
{
    for (int d = w->nsp - 1; d >= 0; d--) {
        if (++o[d] < w->out[d])
            return;
        o[d] = 0;
    }
}

/* Column-major plane index of the element at row-major plane offset off. */
static int64_t col_major_index(const hone_rt_window *w, int64_t off)
{
    int64_t idx = 0, cs = 1, coord[HONE_RT_MAX_SPATIAL];
    for (int d = w->nsp - 1; d >= 0; d--) {
        coord[d] = off % w->in[d];
        off /= w->in[d];
    }
    for (int d = 0; d < w->nsp; d++) {
        idx += coord[d] * cs;
        cs *= w->in[d];
    }
    return idx;
}

typedef enum { POOL_MAX, POOL_AVG, POOL_AVG_PADDED, POOL_LP } pool_kind;

/* Reduces the window at output position o of plane xp; *at receives the
 * plane offset of the max (POOL_MAX, -1 for an empty window). */
static float pool_window(pool_kind kind, const hone_rt_window *w, const int64_t *o,
                         const int64_t *st, const float *xp, float p, int64_t *at)
{
    win_iter it;
    double acc = kind == POOL_MAX ? -INFINITY : 0.0;
    int64_t count = win_begin(w, o, st, &it);
    *at = -1;
    for (int more = count > 0; more; more = win_next(&it)) {
        double v = xp[it.off];
        if (kind == POOL_MAX && (*at < 0 || v > acc)) {
            acc = v;
            *at = it.off;
        } else if (kind == POOL_LP) {
            acc += pow(fabs(v), p);
        } else if (kind != POOL_MAX) {
            acc += v;
        }
    }
    if (kind == POOL_AVG_PADDED)
        count = padded_count(w, o);
    if (kind == POOL_LP)
        return (float)pow(acc, 1.0 / p);
    if (kind == POOL_MAX)
        return (float)acc;
    return count ? (float)(acc / (double)count) : 0.0f;
}

/* Applies pool_window at every output position of every plane. */
static void pool_planes(pool_kind kind, const hone_rt_window *w, int64_t planes, const float *x,
                        float *y, int64_t *idx, int col_major, float p)
{
    int64_t in = hone_rt_window_in_numel(w), out = hone_rt_window_out_numel(w);
    int64_t st[HONE_RT_MAX_SPATIAL];
    plane_strides(w, st);
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t o[HONE_RT_MAX_SPATIAL] = {0}, at;
        for (int64_t q = 0; q < out; q++, next_pos(w, o)) {
            y[pl * out + q] = pool_window(kind, w, o, st, x + pl * in, p, &at);
            if (idx)
                idx[pl * out + q] =
                    pl * in + (at < 0 ? 0 : col_major ? col_major_index(w, at) : at);
        }
    }
}

/* hr[o] = src[o * s] (seed) or the greater of the two, o in [lo, hi); s a constant in
 * the common cases, so the loop vectorises (maxpool_2d is built at O3, cloned for
 * AVX-512 and AVX2: -O2's cheap cost model leaves loops of unknown trip count scalar). */
#define ROW_MAX(hr, src, lo, hi, s, seed)                                                     \
    do {                                                                                      \
        if (seed)                                                                             \
            for (int64_t o_ = (lo); o_ < (hi); o_++)                                          \
                (hr)[o_] = (src)[o_ * (s)];                                                   \
        else                                                                                  \
            for (int64_t o_ = (lo); o_ < (hi); o_++) {                                        \
                float v_ = (src)[o_ * (s)];                                                   \
                (hr)[o_] = v_ > (hr)[o_] ? v_ : (hr)[o_];                                     \
            }                                                                                 \
    } while (0)

/* Floats of the per-row buffer of the separable 2-D max pool (64 KiB on the stack). */
#define MAXPOOL_ROW_FLOATS 16384
/* Most window rows of the AVX-512 max pool. */
#define MAXPOOL_MAX_KH 64

/* 2-D max pool without indices, separably: per output row, each window row's maximum
 * over the window's columns at every output column (hm), then the maximum of those
 * along contiguous rows. The first element seeds a maximum and a later one replaces it
 * only when greater, as in pool_window, so without NaNs the result is the same (a NaN
 * can win here within its window row where pool_window would skip it). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#endif
static void maxpool_2d(const hone_rt_window *w, int64_t planes, const float *x, float *y)
{
    int64_t h = w->in[0], wd = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t sy = w->stride[0], sx = w->stride[1], dy = w->dil[0], dx = w->dil[1];
    float hm[MAXPOOL_ROW_FLOATS];
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * wd;
        for (int64_t oy = 0; oy < oh; oy++) {
            float *yr = y + (pl * oh + oy) * ow;
            int rows = 0;
            for (int64_t ky = 0; ky < w->k[0]; ky++) {
                int64_t iy = oy * sy - w->pad[0] + ky * dy;
                if (iy < 0 || iy >= h)
                    continue;
                const float *row = xp + iy * wd;
                float *hr = hm + rows++ * ow;
                /* interior columns [lo, hi): every tap inside the row */
                int64_t span = (w->k[1] - 1) * dx, lo = (w->pad[1] + sx - 1) / sx;
                int64_t hi = wd - 1 - span + w->pad[1] >= 0 ? (wd - 1 - span + w->pad[1]) / sx + 1 : 0;
                lo = lo < ow ? lo : ow;
                hi = hi < lo ? lo : hi > ow ? ow : hi;
                for (int64_t ox = 0; ox < ow; ox++) {
                    if (ox == lo && hi > lo) {
                        ox = hi - 1;
                        continue;
                    }
                    int64_t ix0 = ox * sx - w->pad[1];
                    float acc = -INFINITY;
                    int first = 1;
                    for (int64_t kx = 0; kx < w->k[1]; kx++) {
                        int64_t ix = ix0 + kx * dx;
                        if (ix >= 0 && ix < wd && (first || row[ix] > acc)) {
                            acc = row[ix];
                            first = 0;
                        }
                    }
                    hr[ox] = acc;
                }
                for (int64_t kx = 0; kx < w->k[1]; kx++) {
                    const float *src = row - w->pad[1] + kx * dx;
                    if (sx == 1)
                        ROW_MAX(hr, src, lo, hi, 1, kx == 0);
                    else if (sx == 2)
                        ROW_MAX(hr, src, lo, hi, 2, kx == 0);
                    else
                        ROW_MAX(hr, src, lo, hi, sx, kx == 0);
                }
            }
            if (!rows) {
                for (int64_t ox = 0; ox < ow; ox++)
                    yr[ox] = -INFINITY;
                continue;
            }
            memcpy(yr, hm, sizeof(float) * (size_t)ow);
            for (int r = 1; r < rows; r++)
                for (int64_t ox = 0; ox < ow; ox++)
                    yr[ox] = hm[r * ow + ox] > yr[ox] ? hm[r * ow + ox] : yr[ox];
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MAXPOOL_X86 1

/* Whether maxpool_2d_avx512 takes window w: 2-D, undilated, horizontal stride 1 or 2,
 * at most 16 columns wide, non-negative pads, and its row buffer fits. */
static bool maxpool_avx512_fits(const hone_rt_window *w)
{
    int64_t len = w->pad[1] + w->in[1], ow16 = (w->out[1] + 15) / 16 * 16;
    int64_t need = ow16 * w->stride[1] + w->k[1] + 16;
    return w->nsp == 2 && w->dil[0] == 1 && w->dil[1] == 1 && w->k[1] <= 16 &&
           (w->stride[1] == 1 || w->stride[1] == 2) && w->pad[0] >= 0 && w->pad[1] >= 0 &&
           (len > need ? len : need) <= MAXPOOL_ROW_FLOATS && hone_rt_cpu_avx512f();
}

/* The separable max pool in AVX-512 registers, planes [p0, p1): per output row, the
 * column maxima over the window's rows go into a row buffer with -inf on both sides
 * (so no tap needs a bounds test), then each block of 16 outputs takes the maximum of
 * its kw taps, the even lanes of two loads for stride 2. Without NaNs the same values as
 * maxpool_2d (a maximum is a maximum); a NaN propagates here. */
__attribute__((target("avx512f"))) static void maxpool_2d_avx512(const hone_rt_window *w,
                                                                int64_t p0, int64_t p1,
                                                                const float *x, float *y)
{
    int64_t h = w->in[0], wd = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t sy = w->stride[0], sx = w->stride[1], kw = w->k[1], px = w->pad[1];
    int64_t ow16 = (ow + 15) / 16 * 16, len = px + wd, need = ow16 * sx + kw + 16;
    len = len > need ? len : need;
    float vb[MAXPOOL_ROW_FLOATS];
    for (int64_t i = 0; i < len; i++)
        vb[i] = -INFINITY;
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *xp = x + pl * h * wd;
        for (int64_t oy = 0; oy < oh; oy++) {
            float *yr = y + (pl * oh + oy) * ow;
            const float *rows[MAXPOOL_MAX_KH];
            int nr = 0;
            for (int64_t ky = 0; ky < w->k[0]; ky++) {
                int64_t iy = oy * sy - w->pad[0] + ky;
                if (iy >= 0 && iy < h)
                    rows[nr++] = xp + iy * wd;
            }
            for (int64_t ix = 0; ix < wd; ix += 16) {
                __mmask16 m = (__mmask16)(wd - ix >= 16 ? 0xffff : (1u << (wd - ix)) - 1);
                __m512 v = ninf;
                for (int r = 0; r < nr; r++)
                    v = _mm512_max_ps(v, _mm512_mask_loadu_ps(ninf, m, rows[r] + ix));
                _mm512_mask_storeu_ps(vb + px + ix, m, v);
            }
            for (int64_t o = 0; o < ow; o += 16) {
                __m512 acc = ninf;
                for (int64_t kx = 0; kx < kw; kx++) {
                    const float *b = vb + o * sx + kx;
                    __m512 v = sx == 1 ? _mm512_loadu_ps(b)
                                       : _mm512_permutex2var_ps(_mm512_loadu_ps(b), even,
                                                                _mm512_loadu_ps(b + 16));
                    acc = _mm512_max_ps(acc, v);
                }
                __mmask16 m = (__mmask16)(ow - o >= 16 ? 0xffff : (1u << (ow - o)) - 1);
                _mm512_mask_storeu_ps(yr + o, m, acc);
            }
        }
    }
}

typedef struct maxpool_job {
    const hone_rt_window *w;
    const float *x;
    float *y;
} maxpool_job;

static void maxpool_planes(void *ctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const maxpool_job *j = ctx;
    maxpool_2d_avx512(j->w, p0, p1, j->x, j->y);
}
#endif

void hone_rt_maxpool(const hone_rt_window *w, int64_t planes, const float *x, float *y,
                     int64_t *idx, int col_major)
{
#ifdef MAXPOOL_X86
    if (!idx && w->k[0] <= MAXPOOL_MAX_KH && maxpool_avx512_fits(w)) {
        /* planes over the shared pool from 2^20 window taps (its wake-up costs ~20 us) */
        maxpool_job j = {w, x, y};
        int64_t taps = planes * w->out[0] * w->out[1] * w->k[0] * w->k[1];
        hone_rt_parallel_for(taps >= ((int64_t)1 << 20) ? hone_rt_shared_pool() : NULL, planes,
                             1, maxpool_planes, &j);
        return;
    }
#endif
    if (!idx && w->nsp == 2 && w->k[0] * w->out[1] <= MAXPOOL_ROW_FLOATS)
        maxpool_2d(w, planes, x, y);
    else
        pool_planes(POOL_MAX, w, planes, x, y, idx, col_major, 0.0f);
}

void hone_rt_avgpool(const hone_rt_window *w, int64_t planes, const float *x, float *y,
                     int count_include_pad)
{
    pool_planes(count_include_pad ? POOL_AVG_PADDED : POOL_AVG, w, planes, x, y, NULL, 0, 0.0f);
}

void hone_rt_lppool(const hone_rt_window *w, int64_t planes, const float *x, float *y, float p)
{
    pool_planes(POOL_LP, w, planes, x, y, NULL, 0, p);
}

/* One plane's reduction for global pooling. The average sums in double over 8 lanes
 * (element i into lane i % 8), then the lanes in order: one long dependent chain of
 * double adds was 42 us of MobileNetV2's 1280 planes of 49. */
static float reduce_plane(hone_rt_gpool kind, int64_t len, const float *x, float p)
{
    if (kind == HONE_RT_GPOOL_AVG) {
        double lane[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= len; i += 8)
            for (int l = 0; l < 8; l++)
                lane[l] += x[i + l];
        for (int l = 0; i < len; i++, l++)
            lane[l] += x[i];
        double acc = 0.0;
        for (int l = 0; l < 8; l++)
            acc += lane[l];
        return len ? (float)(acc / (double)len) : 0.0f;
    }
    double acc = kind == HONE_RT_GPOOL_MAX ? -INFINITY : 0.0;
    for (int64_t i = 0; i < len; i++) {
        if (kind == HONE_RT_GPOOL_MAX)
            acc = x[i] > acc || i == 0 ? x[i] : acc;
        else if (kind == HONE_RT_GPOOL_AVG)
            acc += x[i];
        else
            acc += pow(fabs((double)x[i]), p);
    }
    if (kind == HONE_RT_GPOOL_AVG)
        return len ? (float)(acc / (double)len) : 0.0f;
    return (float)(kind == HONE_RT_GPOOL_LP ? pow(acc, 1.0 / p) : acc);
}

void hone_rt_global_pool(hone_rt_gpool kind, int64_t planes, int64_t len, const float *x,
                         float *y, float p)
{
    for (int64_t i = 0; i < planes; i++)
        y[i] = reduce_plane(kind, len, x + i * len, p);
}
