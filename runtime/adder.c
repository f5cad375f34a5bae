/*
 * AdderNet layers (hone.Adder2d): the L1 "convolution" and its training
 * backward, on the conv kernels' im2col tiles.
 *
 * With col = im2col(x_g) of shape [cg*K, P] (a tile of window positions;
 * padded taps are 0) and w_g of shape [mg, cg*K], the forward is
 *   y[i, p] = -sum_r |col[r, p] - w[i, r]|          (a padded 0 adds -|w|)
 * and AdderNet's backward rules (arXiv 1912.13200) are
 *   dw[i, r] = sum_p (col[r, p] - w[i, r]) dy[i, p]   full precision, not sign:
 *            = (dy col^T)[i, r] - w[i, r] sum_p dy[i, p]   (one sgemm per tile)
 *   dcol[r, p] = sum_i clamp(w[i, r] - col[r, p], -1, 1) dy[i, p]   (HardTanh)
 *   dx = col2im(dcol).
 * The |a - b| loops are register-blocked: with AVX-512, 8 output rows x 32
 * positions (forward) and 8 rows x 16 positions (dX); elsewhere 4 rows x 16
 * positions through GCC vector types, cloned for AVX2 (target_clones). Tiles
 * follow the caller's `cols`, as in hone_rt_conv_tiled, and the rows of one
 * tile are split over the runtime's shared thread pool (hone_rt_shared_pool);
 * the im2col of a tile is shared by all its workers. The training engine's
 * entries (hone_rt_adder_pool, hone_rt_adder_grad_pool) split images over its
 * kernel pool instead, each worker with its own scratch.
 */
#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ADDER_X86 1
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ADDER_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ADDER_CLONES
#endif

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32), aligned(4)));

/* |d|, a splat, and d clamped to [-1, 1], as macros (no vector-typed calls). */
#define VABS(d) ((v8)((v8i)(d) & 0x7fffffff))
#define VSPLAT(a) ((v8){(a), (a), (a), (a), (a), (a), (a), (a)})
#define VSEL(m, a, b) ((v8)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))
#define VCLAMP1(d) VSEL((d) < -1.0f, VSPLAT(-1.0f), VSEL((d) > 1.0f, VSPLAT(1.0f), (d)))
#define VMIN(a, b) VSEL((a) < (b), (a), (b))

/* ===================== forward ===================== */

/* The forward computes sum_r |a - b| as sum_r a + sum_r b - 2 sum_r min(a, b): the
 * weight row sums ws[i] are computed once per call (hone_rt_adder) and the column sums
 * cs[p] ride along in one more accumulator per 16 positions, so the inner loop is a min
 * and an add per tap instead of a subtraction, an absolute value and an add:
 *   y[i, p] = 2 sum_r min(col[r, p], w[i, r]) - cs[p] - ws[i]
 * Every path below (AVX-512 8 rows, vector 4 rows, 1 row) accumulates each position
 * in its own lane in the order of r and finishes with the same two subtractions, so
 * they give the same bits. */

/* y[k, p..p+16) for 4 rows k. */
ADDER_CLONES
static void fwd_block4(const float *w, int64_t rows, const float *col, int64_t np, float *y,
                       int64_t ldy, const float *ws)
{
    v8 a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    v8 c0 = {0}, c1 = {0};
    for (int64_t r = 0; r < rows; r++) {
        v8 x0 = *(const v8 *)(col + r * np), x1 = *(const v8 *)(col + r * np + 8);
        c0 += x0, c1 += x1;
        v8 w0 = VSPLAT(w[r]), w1 = VSPLAT(w[rows + r]);
        v8 w2 = VSPLAT(w[2 * rows + r]), w3 = VSPLAT(w[3 * rows + r]);
        a00 += VMIN(x0, w0), a01 += VMIN(x1, w0);
        a10 += VMIN(x0, w1), a11 += VMIN(x1, w1);
        a20 += VMIN(x0, w2), a21 += VMIN(x1, w2);
        a30 += VMIN(x0, w3), a31 += VMIN(x1, w3);
    }
    *(v8 *)y = (a00 + a00 - c0) - VSPLAT(ws[0]), *(v8 *)(y + 8) = (a01 + a01 - c1) - VSPLAT(ws[0]);
    y += ldy;
    *(v8 *)y = (a10 + a10 - c0) - VSPLAT(ws[1]), *(v8 *)(y + 8) = (a11 + a11 - c1) - VSPLAT(ws[1]);
    y += ldy;
    *(v8 *)y = (a20 + a20 - c0) - VSPLAT(ws[2]), *(v8 *)(y + 8) = (a21 + a21 - c1) - VSPLAT(ws[2]);
    y += ldy;
    *(v8 *)y = (a30 + a30 - c0) - VSPLAT(ws[3]), *(v8 *)(y + 8) = (a31 + a31 - c1) - VSPLAT(ws[3]);
}

/* One row (rows left over from blocks of 4). */
ADDER_CLONES
static void fwd_block1(const float *w, int64_t rows, const float *col, int64_t np, float *y,
                       float ws)
{
    v8 a0 = {0}, a1 = {0}, c0 = {0}, c1 = {0};
    for (int64_t r = 0; r < rows; r++) {
        v8 wv = VSPLAT(w[r]), x0 = *(const v8 *)(col + r * np), x1 = *(const v8 *)(col + r * np + 8);
        c0 += x0, c1 += x1;
        a0 += VMIN(x0, wv);
        a1 += VMIN(x1, wv);
    }
    *(v8 *)y = (a0 + a0 - c0) - VSPLAT(ws);
    *(v8 *)(y + 8) = (a1 + a1 - c1) - VSPLAT(ws);
}

#ifdef ADDER_X86
/* 8 rows x 32 positions in AVX-512 registers, the first n <= 32 of them (a tile's last
 * block: masked loads and stores, no padding copy). Two column vectors share each weight
 * broadcast. Each position is summed in the order of r, as on the other paths. The 16
 * accumulators are named variables: as an indexed array GCC kept them in memory and
 * stored all 16 every tap (the same trap as the VNNI tile in qconv.c). */
#define ADDER_TAP(q, aq0, aq1)                                                                 \
    do {                                                                                       \
        __m512 wv = _mm512_set1_ps(w[(q) * rows + r]);                                         \
        aq0 = _mm512_add_ps(aq0, _mm512_min_ps(x0, wv));                                       \
        aq1 = _mm512_add_ps(aq1, _mm512_min_ps(x1, wv));                                       \
    } while (0)
#define ADDER_PUT(q, aq0, aq1)                                                                 \
    do {                                                                                       \
        __m512 wq = _mm512_set1_ps(ws[q]);                                                     \
        _mm512_mask_storeu_ps(y + (q) * ldy, m0,                                               \
                              _mm512_sub_ps(_mm512_sub_ps(_mm512_add_ps(aq0, aq0), c0), wq));  \
        _mm512_mask_storeu_ps(y + (q) * ldy + 16, m1,                                          \
                              _mm512_sub_ps(_mm512_sub_ps(_mm512_add_ps(aq1, aq1), c1), wq));  \
    } while (0)
__attribute__((target("avx512f")))
static void fwd_block8x32_avx512(const float *w, int64_t rows, const float *col, int64_t np,
                                 float *y, int64_t ldy, const float *ws, int64_t n)
{
    __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
    __mmask16 m1 = (__mmask16)(n >= 32 ? 0xffff : n > 16 ? (1u << (n - 16)) - 1 : 0);
    __m512 c0 = _mm512_setzero_ps(), c1 = c0;
    __m512 a00 = c0, a01 = c0, a10 = c0, a11 = c0, a20 = c0, a21 = c0, a30 = c0, a31 = c0;
    __m512 a40 = c0, a41 = c0, a50 = c0, a51 = c0, a60 = c0, a61 = c0, a70 = c0, a71 = c0;
    for (int64_t r = 0; r < rows; r++) {
        __m512 x0, x1;
        if (n == 32) {
            x0 = _mm512_loadu_ps(col + r * np);
            x1 = _mm512_loadu_ps(col + r * np + 16);
        } else {
            x0 = _mm512_maskz_loadu_ps(m0, col + r * np);
            x1 = _mm512_maskz_loadu_ps(m1, col + r * np + 16);
        }
        c0 = _mm512_add_ps(c0, x0);
        c1 = _mm512_add_ps(c1, x1);
        ADDER_TAP(0, a00, a01);
        ADDER_TAP(1, a10, a11);
        ADDER_TAP(2, a20, a21);
        ADDER_TAP(3, a30, a31);
        ADDER_TAP(4, a40, a41);
        ADDER_TAP(5, a50, a51);
        ADDER_TAP(6, a60, a61);
        ADDER_TAP(7, a70, a71);
    }
    ADDER_PUT(0, a00, a01);
    ADDER_PUT(1, a10, a11);
    ADDER_PUT(2, a20, a21);
    ADDER_PUT(3, a30, a31);
    ADDER_PUT(4, a40, a41);
    ADDER_PUT(5, a50, a51);
    ADDER_PUT(6, a60, a61);
    ADDER_PUT(7, a70, a71);
}
#undef ADDER_TAP
#undef ADDER_PUT
#endif

/* One tile: w[m, rows], col[rows, np]; tails (np % 16 positions) run on zero-padded
 * copies colt[rows, 16] (and dyt[m, 16]) so every position is vectorised. */
typedef struct tile_job {
    const float *w, *col, *dy, *colt, *dyt;
    const float *ws; /* forward: the rows' weight sums, or NULL (summed per block) */
    float *y, *dcol;
    int64_t rows, np, ldy, m, full;
} tile_job;

/* sum_r w[r] over n entries: four 8-lane partial sums (32 entries a step: no serial
 * chain of adds; this ran a quarter of a 7x7 layer's time with one), added pairwise, then
 * the tail; the only place the sums are made, so every path uses the same values. */
static float row_sum(const float *w, int64_t n)
{
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t r = 0;
    for (; r + 32 <= n; r += 32) {
        a0 += *(const v8 *)(w + r);
        a1 += *(const v8 *)(w + r + 8);
        a2 += *(const v8 *)(w + r + 16);
        a3 += *(const v8 *)(w + r + 24);
    }
    for (; r + 8 <= n; r += 8)
        a0 += *(const v8 *)(w + r);
    v8 a = (a0 + a1) + (a2 + a3);
    float t = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; r < n; r++)
        t += w[r];
    return t;
}

/* Rows i..i+k-1 (k <= 8) of positions [p, p+16) of col (leading dimension np). */
static void fwd_rows_at(const tile_job *j, int64_t i, int64_t k, const float *ws,
                        const float *col, int64_t np, float *y, int64_t ldy)
{
    const float *w = j->w + i * j->rows;
    int64_t q = 0;
    for (; q + 4 <= k; q += 4)
        fwd_block4(w + q * j->rows, j->rows, col, np, y + q * ldy, ldy, ws + q);
    for (; q < k; q++)
        fwd_block1(w + q * j->rows, j->rows, col, np, y + q * ldy, ws[q]);
}

/* Output rows of blocks [b0, b1) of 8 rows of a forward tile. */
static void fwd_rows(void *ctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const tile_job *j = ctx;
    float yt[8 * 16], ws[8];
    for (int64_t i = b0 * 8; i < b1 * 8 && i < j->m; i += 8) {
        int64_t k = j->m - i < 8 ? j->m - i : 8;
        float *y = j->y + i * j->ldy;
        const float *wsb = j->ws ? j->ws + i : ws;
        for (int64_t q = 0; q < k && !j->ws; q++)
            ws[q] = row_sum(j->w + (i + q) * j->rows, j->rows);
#ifdef ADDER_X86
        if (k == 8 && hone_rt_cpu_avx512f()) {
            for (int64_t p = 0; p < j->np; p += 32)
                fwd_block8x32_avx512(j->w + i * j->rows, j->rows, j->col + p, j->np, y + p,
                                     j->ldy, wsb, j->np - p < 32 ? j->np - p : 32);
            continue;
        }
#endif
        for (int64_t p = 0; p < j->full; p += 16)
            fwd_rows_at(j, i, k, wsb, j->col + p, j->np, y + p, j->ldy);
        if (j->full == j->np)
            continue;
        fwd_rows_at(j, i, k, wsb, j->colt, 16, yt, 16);
        for (int64_t q = 0; q < k; q++)
            memcpy(y + q * j->ldy + j->full, yt + q * 16, sizeof *yt * (size_t)(j->np - j->full));
    }
}

size_t hone_rt_adder_scratch(const hone_rt_window *w, int64_t c, int64_t groups, int64_t cols)
{
    return hone_rt_conv_tile_scratch(w, c, groups, cols) +
           (size_t)(c / groups * hone_rt_window_k_numel(w) * 16);
}


/* dst[r, 0..16) = src[r, full..np) zero-padded, for `rows` rows of stride ld. */
static void pad_tail(const float *src, int64_t rows, int64_t ld, int64_t full, int64_t np,
                     float *dst)
{
    for (int64_t r = 0; r < rows; r++) {
        memset(dst + r * 16, 0, 16 * sizeof *dst);
        memcpy(dst + r * 16, src + r * ld + full, sizeof *dst * (size_t)(np - full));
    }
}

/* Runs fn over the blocks of bs rows of m rows of a tile, on pool (NULL: serially)
 * from 2^22 multiply-adds a tile, as for convs (runtime/conv2d.c). */
static void over_rows(hone_rt_pool *pool, hone_rt_range_fn fn, tile_job *j, int64_t m,
                      int64_t bs)
{
    int64_t blocks = (m + bs - 1) / bs;
    int64_t work = j->rows * j->np * bs;
    hone_rt_parallel_for(work * blocks >= ((int64_t)1 << 22) ? pool : NULL, blocks, 1, fn, j);
}

/* The weight row sums once per call (on the stack: compiled code never allocates); more
 * than ADDER_MAX_WS rows: once per tile and row block instead (ws NULL). */
enum { ADDER_MAX_WS = 4096 };

static const float *weight_sums(int64_t m, int64_t rows, const float *wt, float *ws)
{
    for (int64_t i = 0; i < m && m <= ADDER_MAX_WS; i++)
        ws[i] = row_sum(wt + i * rows, rows);
    return m <= ADDER_MAX_WS ? ws : NULL;
}

/* The forward of images [b0, b1), row blocks of each tile on pool (NULL: serially). */
typedef struct fwd_call {
    const hone_rt_window *w;
    int64_t c, m, groups, cols;
    const float *x, *wt, *wsum;
    float *y;
} fwd_call;

static void fwd_images(hone_rt_pool *pool, const fwd_call *f, int64_t b0, int64_t b1,
                       float *scratch)
{
    const hone_rt_window *w = f->w;
    int64_t cg = f->c / f->groups, mg = f->m / f->groups, cols = f->cols;
    int64_t xp = hone_rt_window_in_numel(w), yp = hone_rt_window_out_numel(w);
    int64_t rows = cg * hone_rt_window_k_numel(w);
    /* 2-D: tiles of whole output rows, gathered plane row by plane row */
    int64_t ow = w->nsp == 2 ? w->out[1] : 0;
    bool rows2d = ow > 0 && ow <= cols;
    int64_t step = rows2d ? cols / ow * ow : cols;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t g = 0; g < f->groups; g++) {
            const float *xg = f->x + (b * f->c + g * cg) * xp;
            float *yg = f->y + (b * f->m + g * mg) * yp;
            for (int64_t p0 = 0; p0 < yp && mg > 0; p0 += step) {
                int64_t p1 = p0 + step < yp ? p0 + step : yp;
                float *colt = scratch + rows * cols;
                if (rows2d)
                    hone_rt_im2col_2d(w, cg, xg, p0 / ow, p1 / ow, scratch, p1 - p0);
                else
                    hone_rt_im2col(w, cg, xg, p0, p1, scratch);
                tile_job j = {.w = f->wt + g * mg * rows, .col = scratch, .colt = colt,
                              .y = yg + p0, .ws = f->wsum ? f->wsum + g * mg : NULL,
                              .rows = rows, .np = p1 - p0, .ldy = yp, .m = mg,
                              .full = (p1 - p0) / 16 * 16};
                /* the padded tail copy: for the vector paths (the AVX-512 one masks) */
                if (j.full < j.np && (mg % 8 || !hone_rt_cpu_avx512f()))
                    pad_tail(scratch, rows, j.np, j.full, j.np, colt);
                over_rows(pool, fwd_rows, &j, mg, 8);
            }
        }
}

void hone_rt_adder(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const float *x, const float *wt, float *y, float *scratch, int64_t cols)
{
    float ws[ADDER_MAX_WS];
    fwd_call f = {w, c, m, groups, cols < 1 ? 1 : cols, x, wt, NULL, y};
    f.wsum = weight_sums(m, c / groups * hone_rt_window_k_numel(w), wt, ws);
    fwd_images(hone_rt_shared_pool(), &f, 0, n, scratch);
}

/* ---- images split over a pool (the training engine's batches) ---- */

typedef struct fwd_pool_job {
    fwd_call f;
    float *scratch;
    size_t per_worker;
} fwd_pool_job;

static void fwd_pool_images(void *ctx, int64_t b0, int64_t b1, int worker)
{
    const fwd_pool_job *j = ctx;
    fwd_images(NULL, &j->f, b0, b1, j->scratch + (size_t)worker * j->per_worker);
}

size_t hone_rt_adder_pool_scratch(const hone_rt_window *w, int64_t c, int64_t groups,
                                  int64_t cols, int workers)
{
    return hone_rt_adder_scratch(w, c, groups, cols) * (size_t)(workers > 1 ? workers : 1);
}

void hone_rt_adder_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                        int64_t m, int64_t groups, const float *x, const float *wt, float *y,
                        float *scratch, int64_t cols)
{
    if (hone_rt_pool_size(pool) < 2 || n < 2) {
        hone_rt_adder(w, n, c, m, groups, x, wt, y, scratch, cols);
        return;
    }
    float ws[ADDER_MAX_WS];
    fwd_pool_job j = {{w, c, m, groups, cols < 1 ? 1 : cols, x, wt, NULL, y}, scratch,
                      hone_rt_adder_scratch(w, c, groups, cols)};
    j.f.wsum = weight_sums(m, c / groups * hone_rt_window_k_numel(w), wt, ws);
    hone_rt_parallel_for(pool, n, 1, fwd_pool_images, &j);
}

/* ===================== backward ===================== */

/* dcol[r, p..p+8) for 4 rows r = sum_i clamp(w[i, r] - col[r, p], -1, 1) dy[i, p]. */
ADDER_CLONES
static void dx_block4(const float *w, int64_t rows, int64_t m, const float *col, int64_t np,
                      const float *dy, int64_t ldy, float *dcol)
{
    v8 x0 = *(const v8 *)col, x1 = *(const v8 *)(col + np);
    v8 x2 = *(const v8 *)(col + 2 * np), x3 = *(const v8 *)(col + 3 * np);
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t i = 0; i < m; i++) {
        v8 g = *(const v8 *)(dy + i * ldy), d;
        const float *wi = w + i * rows;
        d = VSPLAT(wi[0]) - x0, a0 += VCLAMP1(d) * g;
        d = VSPLAT(wi[1]) - x1, a1 += VCLAMP1(d) * g;
        d = VSPLAT(wi[2]) - x2, a2 += VCLAMP1(d) * g;
        d = VSPLAT(wi[3]) - x3, a3 += VCLAMP1(d) * g;
    }
    *(v8 *)dcol = a0, *(v8 *)(dcol + np) = a1, *(v8 *)(dcol + 2 * np) = a2;
    *(v8 *)(dcol + 3 * np) = a3;
}

/* The scalar form of dx_block4 for one row r and one position p. */
static float dx_one(const float *w, int64_t rows, int64_t m, float x, const float *dy,
                    int64_t ldy)
{
    float s = 0;
    for (int64_t i = 0; i < m; i++) {
        float d = w[i * rows] - x;
        d = d < -1 ? -1 : d > 1 ? 1 : d;
        s += d * dy[i * ldy];
    }
    return s;
}

#ifdef ADDER_X86
/* dcol[r, p..p+16) for 8 rows r, the first `lanes` positions (masked loads and stores), in
 * AVX-512 registers: the same operations in the same order as dx_one, so the same bits. */
__attribute__((target("avx512f")))
static void dx_block8_avx512(const float *w, int64_t rows, int64_t m, const float *col,
                             int64_t np, const float *dy, int64_t ldy, float *dcol, int lanes)
{
    __mmask16 k = (__mmask16)((1u << lanes) - 1);
    __m512 one = _mm512_set1_ps(1.0f), mone = _mm512_set1_ps(-1.0f);
    __m512 x[8], a[8];
    for (int q = 0; q < 8; q++)
        x[q] = _mm512_maskz_loadu_ps(k, col + q * np), a[q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < m; i++) {
        __m512 g = _mm512_maskz_loadu_ps(k, dy + i * ldy);
        const float *wi = w + i * rows;
        for (int q = 0; q < 8; q++) {
            __m512 d = _mm512_sub_ps(_mm512_set1_ps(wi[q]), x[q]);
            d = _mm512_min_ps(_mm512_max_ps(d, mone), one);
            a[q] = _mm512_add_ps(a[q], _mm512_mul_ps(d, g));
        }
    }
    for (int q = 0; q < 8; q++)
        _mm512_mask_storeu_ps(dcol + q * np, k, a[q]);
}
#endif

/* dcol rows [8*b0, 8*b1) of a tile. */
static void dx_rows(void *ctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const tile_job *j = ctx;
    int64_t full = j->full, np = j->np;
    float dt[4 * 16];
    for (int64_t r = b0 * 8; r < b1 * 8 && r < j->rows; r += 4) {
        int64_t k = j->rows - r < 4 ? j->rows - r : 4;
#ifdef ADDER_X86
        if (j->rows - r >= 8 && r % 8 == 0 && hone_rt_cpu_avx512f()) {
            for (int64_t p = 0; p < np; p += 16)
                dx_block8_avx512(j->w + r, j->rows, j->m, j->col + r * np + p, np, j->dy + p,
                                 j->ldy, j->dcol + r * np + p, np - p < 16 ? (int)(np - p) : 16);
            r += 4;
            continue;
        }
#endif
        for (int64_t p = 0; k == 4 && p < full; p += 8)
            dx_block4(j->w + r, j->rows, j->m, j->col + r * np + p, np, j->dy + p, j->ldy,
                      j->dcol + r * np + p);
        for (int64_t p = 0; k == 4 && full < np && p < 16; p += 8)
            dx_block4(j->w + r, j->rows, j->m, j->colt + r * 16 + p, 16, j->dyt + p, 16, dt + p);
        for (int64_t q = 0; q < k; q++)
            for (int64_t p = k == 4 ? full : 0; p < np; p++)
                j->dcol[(r + q) * np + p] =
                    k == 4 ? dt[q * 16 + p - full]
                           : dx_one(j->w + r + q, j->rows, j->m, j->col[(r + q) * np + p],
                                    j->dy + p, j->ldy);
    }
}

size_t hone_rt_adder_grad_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                                  int64_t cols)
{
    int64_t rows = c / groups * hone_rt_window_k_numel(w);
    return 2 * hone_rt_conv_tile_scratch(w, c, groups, cols) + (size_t)(m / groups) +
           (size_t)((rows + m / groups) * 16);
}

/* dw_g -= w_g * sum_p dy (the second half of the full-precision weight gradient). */
static void dw_finish(float *dw, const float *w, const float *gsum, int64_t mg, int64_t rows)
{
    for (int64_t i = 0; i < mg; i++)
        for (int64_t r = 0; r < rows; r++)
            dw[i * rows + r] -= w[i * rows + r] * gsum[i];
}

/* The backward of images [b0, b1): dx of those images (when wanted) and their whole
 * contribution to dw (when wanted; overwritten). Row blocks of dcol on pool (NULL:
 * serially); `gemm` computes the dy col^T products (hone_rt_sgemm's contract). */
typedef void (*gemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);

typedef struct grad_call {
    const hone_rt_window *w;
    int64_t c, m, groups, cols;
    const float *x, *wt, *dy;
    float *dx;
    gemm_fn gemm;
} grad_call;

/* One image and group: dx_g (when wanted) and the dy col^T part of dw_g. */
static void grad_group_tile(hone_rt_pool *pool, const grad_call *f, const float *xg,
                            const float *wg, const float *dyg, float *dxg, float *dwg,
                            float *gsum, float *scratch)
{
    const hone_rt_window *w = f->w;
    int64_t cg = f->c / f->groups, mg = f->m / f->groups, cols = f->cols;
    int64_t rows = cg * hone_rt_window_k_numel(w), yp = hone_rt_window_out_numel(w);
    float *col = scratch, *dcol = scratch + rows * cols, *colt = dcol + rows * cols + mg;
    float *dyt = colt + rows * 16;
    for (int64_t i = 0; dwg && i < mg; i++)
        for (int64_t p = 0; p < yp; p++)
            gsum[i] += dyg[i * yp + p];
    for (int64_t p0 = 0; p0 < yp; p0 += cols) {
        int64_t p1 = p0 + cols < yp ? p0 + cols : yp, np = p1 - p0;
        hone_rt_im2col(w, cg, xg, p0, p1, col);
        if (dwg)
            f->gemm(0, 1, mg, rows, np, 1.0f, dyg + p0, yp, col, np, 1.0f, dwg, rows);
        if (!dxg)
            continue;
        tile_job j = {.w = wg, .col = col, .dy = dyg + p0, .colt = colt, .dyt = dyt, .dcol = dcol,
                      .rows = rows, .np = np, .ldy = yp, .m = mg, .full = np / 8 * 8};
        if (j.full < np) {
            pad_tail(col, rows, np, j.full, np, colt);
            pad_tail(dyg + p0, mg, yp, j.full, np, dyt);
        }
        over_rows(pool, dx_rows, &j, rows, 8);
        hone_rt_col2im(w, cg, dcol, p0, p1, dxg);
    }
}

static void grad_images(hone_rt_pool *pool, const grad_call *f, int64_t b0, int64_t b1,
                        float *dw, float *scratch)
{
    const hone_rt_window *w = f->w;
    int64_t cg = f->c / f->groups, mg = f->m / f->groups, rows = cg * hone_rt_window_k_numel(w);
    int64_t xp = hone_rt_window_in_numel(w), yp = hone_rt_window_out_numel(w);
    float *gsum = scratch + 2 * rows * f->cols;
    if (f->dx)
        memset(f->dx + b0 * f->c * xp, 0, sizeof *f->dx * (size_t)((b1 - b0) * f->c * xp));
    if (dw)
        memset(dw, 0, sizeof *dw * (size_t)(f->m * rows));
    for (int64_t g = 0; g < f->groups; g++) {
        memset(gsum, 0, sizeof *gsum * (size_t)mg);
        for (int64_t b = b0; b < b1; b++)
            grad_group_tile(pool, f, f->x + (b * f->c + g * cg) * xp, f->wt + g * mg * rows,
                            f->dy + (b * f->m + g * mg) * yp,
                            f->dx ? f->dx + (b * f->c + g * cg) * xp : NULL,
                            dw ? dw + g * mg * rows : NULL, gsum, scratch);
        if (dw)
            dw_finish(dw + g * mg * rows, f->wt + g * mg * rows, gsum, mg, rows);
    }
}

void hone_rt_adder_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wt, const float *dy, float *dx, float *dw,
                        float *scratch, int64_t cols)
{
    grad_call f = {w, c, m, groups, cols < 1 ? 1 : cols, x, wt, dy, dx, hone_rt_sgemm};
    grad_images(hone_rt_shared_pool(), &f, 0, n, dw, scratch);
}

/* ---- images split over a pool: a fixed number of slabs of images, each with its own
 * partial dw (the first is dw itself), added in order: results do not depend on the
 * number of workers ---- */

#define GRAD_SLABS 8

typedef struct grad_pool_job {
    grad_call f;
    int64_t n, slabs;
    float *dw, *parts, *scratch;
    size_t per_worker;
} grad_pool_job;

static void grad_pool_slabs(void *ctx, int64_t s0, int64_t s1, int worker)
{
    const grad_pool_job *j = ctx;
    size_t wfl = (size_t)(j->f.m * (j->f.c / j->f.groups) * hone_rt_window_k_numel(j->f.w));
    for (int64_t s = s0; s < s1; s++) {
        float *dwp = !j->dw ? NULL : s == 0 ? j->dw : j->parts + (size_t)(s - 1) * wfl;
        grad_images(NULL, &j->f, s * j->n / j->slabs, (s + 1) * j->n / j->slabs, dwp,
                    j->scratch + (size_t)worker * j->per_worker);
    }
}

size_t hone_rt_adder_grad_pool_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                       int64_t groups, int64_t cols, int workers)
{
    size_t wfl = (size_t)(m * (c / groups) * hone_rt_window_k_numel(w));
    return wfl * (GRAD_SLABS - 1) +
           hone_rt_adder_grad_scratch(w, c, m, groups, cols) * (size_t)(workers > 1 ? workers : 1);
}

void hone_rt_adder_grad_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                             int64_t m, int64_t groups, const float *x, const float *wt,
                             const float *dy, float *dx, float *dw, float *scratch, int64_t cols)
{
    size_t wfl = (size_t)(m * (c / groups) * hone_rt_window_k_numel(w));
    if (hone_rt_pool_size(pool) < 2 || n < 2) {
        hone_rt_adder_grad(w, n, c, m, groups, x, wt, dy, dx, dw, scratch + wfl * (GRAD_SLABS - 1),
                           cols);
        return;
    }
    grad_pool_job j = {{w, c, m, groups, cols < 1 ? 1 : cols, x, wt, dy, dx, hone_rt_train_sgemm},
                       n, n < GRAD_SLABS ? n : GRAD_SLABS, dw, scratch,
                       scratch + wfl * (GRAD_SLABS - 1),
                       hone_rt_adder_grad_scratch(w, c, m, groups, cols)};
    hone_rt_parallel_for(pool, j.slabs, 1, grad_pool_slabs, &j);
    for (int64_t s = 1; dw && s < j.slabs; s++) {
        const float *p = j.parts + (size_t)(s - 1) * wfl;
        for (size_t i = 0; i < wfl; i++)
            dw[i] += p[i];
    }
}

void hone_rt_signed_power(int64_t n, const float *x, const float *alpha, float *y)
{
    float a = alpha[0];
    for (int64_t i = 0; i < n; i++)
        y[i] = copysignf(powf(fabsf(x[i]), a), x[i]);
}
