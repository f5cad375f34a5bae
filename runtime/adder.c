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
 * The |a - b| loops are register-blocked (4 output rows x 16 positions: each
 * loaded column vector meets 4 broadcast weights) and vectorised through GCC
 * vector types; on x86-64 the kernels are cloned for AVX2 and picked at load
 * time (target_clones). Tiles follow the caller's `cols`, as in
 * hone_rt_conv_tiled, and the rows of one tile are split over the runtime's
 * shared thread pool (hone_rt_shared_pool); the im2col of a tile is shared by
 * all its workers.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hone_rt.h"

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

/* ===================== forward ===================== */

/* acc[k] (16 positions) = sum_r |col[r, p..p+16) - w[k, r]| for 4 rows k. */
ADDER_CLONES
static void fwd_block4(const float *w, int64_t rows, const float *col, int64_t np, float *y,
                       int64_t ldy)
{
    v8 a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    for (int64_t r = 0; r < rows; r++) {
        v8 x0 = *(const v8 *)(col + r * np), x1 = *(const v8 *)(col + r * np + 8);
        v8 w0 = VSPLAT(w[r]), w1 = VSPLAT(w[rows + r]);
        v8 w2 = VSPLAT(w[2 * rows + r]), w3 = VSPLAT(w[3 * rows + r]);
        a00 += VABS(x0 - w0), a01 += VABS(x1 - w0);
        a10 += VABS(x0 - w1), a11 += VABS(x1 - w1);
        a20 += VABS(x0 - w2), a21 += VABS(x1 - w2);
        a30 += VABS(x0 - w3), a31 += VABS(x1 - w3);
    }
    v8 *o0 = (v8 *)y, *o1 = (v8 *)(y + ldy), *o2 = (v8 *)(y + 2 * ldy), *o3 = (v8 *)(y + 3 * ldy);
    o0[0] -= a00, ((v8 *)(y + 8))[0] -= a01;
    o1[0] -= a10, ((v8 *)(y + ldy + 8))[0] -= a11;
    o2[0] -= a20, ((v8 *)(y + 2 * ldy + 8))[0] -= a21;
    o3[0] -= a30, ((v8 *)(y + 3 * ldy + 8))[0] -= a31;
}

/* One row at a time over 16-position blocks (rows left over from blocks of 4). */
ADDER_CLONES
static void fwd_block1(const float *w, int64_t rows, const float *col, int64_t np, float *y)
{
    v8 a0 = {0}, a1 = {0};
    for (int64_t r = 0; r < rows; r++) {
        v8 wv = VSPLAT(w[r]);
        a0 += VABS(*(const v8 *)(col + r * np) - wv);
        a1 += VABS(*(const v8 *)(col + r * np + 8) - wv);
    }
    ((v8 *)y)[0] -= a0;
    ((v8 *)(y + 8))[0] -= a1;
}

/* One tile: w[m, rows], col[rows, np]; tails (np % block positions) run on
 * zero-padded copies colt[rows, 16] (and dyt[m, 16]) so every position is
 * vectorised. */
typedef struct tile_job {
    const float *w, *col, *dy, *colt, *dyt;
    float *y, *dcol;
    int64_t rows, np, ldy, m, full;
} tile_job;

/* Output rows [i0, i1) of a forward tile (i0 a multiple of 4 except at the tail). */
static void fwd_rows(void *ctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const tile_job *j = ctx;
    int64_t full = j->full;
    float yt[4 * 16];
    for (int64_t i = b0 * 4; i < b1 * 4 && i < j->m; i += 4) {
        int64_t k = j->m - i < 4 ? j->m - i : 4;
        const float *w = j->w + i * j->rows;
        float *y = j->y + i * j->ldy;
        for (int64_t p = 0; p < full; p += 16) {
            if (k == 4)
                fwd_block4(w, j->rows, j->col + p, j->np, y + p, j->ldy);
            else
                for (int64_t q = 0; q < k; q++)
                    fwd_block1(w + q * j->rows, j->rows, j->col + p, j->np, y + q * j->ldy + p);
        }
        if (full == j->np)
            continue;
        memset(yt, 0, sizeof yt);
        if (k == 4)
            fwd_block4(w, j->rows, j->colt, 16, yt, 16);
        else
            for (int64_t q = 0; q < k; q++)
                fwd_block1(w + q * j->rows, j->rows, j->colt, 16, yt + q * 16);
        for (int64_t q = 0; q < k; q++)
            for (int64_t p = full; p < j->np; p++)
                y[q * j->ldy + p] += yt[q * 16 + p - full];
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

/* Runs fn over the 4-row blocks of m rows of a tile. */
static void over_rows(hone_rt_range_fn fn, tile_job *j, int64_t m)
{
    int64_t blocks = (m + 3) / 4;
    int64_t work = j->rows * j->np * 4;
    hone_rt_parallel_for(work * blocks > 32768 ? hone_rt_shared_pool() : NULL, blocks, 1, fn, j);
}

void hone_rt_adder(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const float *x, const float *wt, float *y, float *scratch, int64_t cols)
{
    int64_t cg = c / groups, mg = m / groups, k = hone_rt_window_k_numel(w);
    int64_t xp = hone_rt_window_in_numel(w), yp = hone_rt_window_out_numel(w), rows = cg * k;
    cols = cols < 1 ? 1 : cols;
    for (int64_t b = 0; b < n; b++)
        for (int64_t g = 0; g < groups; g++) {
            float *yg = y + (b * m + g * mg) * yp;
            memset(yg, 0, sizeof *yg * (size_t)(mg * yp));
            for (int64_t p0 = 0; p0 < yp && mg > 0; p0 += cols) {
                int64_t p1 = p0 + cols < yp ? p0 + cols : yp;
                float *colt = scratch + rows * cols;
                hone_rt_im2col(w, cg, x + (b * c + g * cg) * xp, p0, p1, scratch);
                tile_job j = {.w = wt + g * mg * rows, .col = scratch, .colt = colt, .y = yg + p0,
                              .rows = rows, .np = p1 - p0, .ldy = yp, .m = mg,
                              .full = (p1 - p0) / 16 * 16};
                if (j.full < j.np)
                    pad_tail(scratch, rows, j.np, j.full, j.np, colt);
                over_rows(fwd_rows, &j, mg);
            }
        }
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

/* dcol rows [4*b0, 4*b1) of a tile. */
static void dx_rows(void *ctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const tile_job *j = ctx;
    int64_t full = j->full;
    float dt[4 * 16];
    for (int64_t r = b0 * 4; r < b1 * 4 && r < j->rows; r += 4) {
        int64_t k = j->rows - r < 4 ? j->rows - r : 4;
        for (int64_t p = 0; k == 4 && p < full; p += 8)
            dx_block4(j->w + r, j->rows, j->m, j->col + r * j->np + p, j->np, j->dy + p, j->ldy,
                      j->dcol + r * j->np + p);
        for (int64_t p = 0; k == 4 && full < j->np && p < 16; p += 8)
            dx_block4(j->w + r, j->rows, j->m, j->colt + r * 16 + p, 16, j->dyt + p, 16, dt + p);
        for (int64_t q = 0; q < k; q++)
            for (int64_t p = k == 4 ? full : 0; p < j->np; p++)
                j->dcol[(r + q) * j->np + p] =
                    k == 4 ? dt[q * 16 + p - full]
                           : dx_one(j->w + r + q, j->rows, j->m, j->col[(r + q) * j->np + p],
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

/* One image and group: dx_g (when wanted) and the dy col^T part of dw_g. */
static void grad_group_tile(const hone_rt_window *w, int64_t cg, int64_t mg, const float *xg,
                            const float *wg, const float *dyg, float *dxg, float *dwg,
                            float *gsum, float *scratch, int64_t cols)
{
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
            hone_rt_sgemm(0, 1, mg, rows, np, 1.0f, dyg + p0, yp, col, np, 1.0f, dwg, rows);
        if (!dxg)
            continue;
        tile_job j = {.w = wg, .col = col, .dy = dyg + p0, .colt = colt, .dyt = dyt, .dcol = dcol,
                      .rows = rows, .np = np, .ldy = yp, .m = mg, .full = np / 8 * 8};
        if (j.full < np) {
            pad_tail(col, rows, np, j.full, np, colt);
            pad_tail(dyg + p0, mg, yp, j.full, np, dyt);
        }
        over_rows(dx_rows, &j, rows);
        hone_rt_col2im(w, cg, dcol, p0, p1, dxg);
    }
}

void hone_rt_adder_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wt, const float *dy, float *dx, float *dw,
                        float *scratch, int64_t cols)
{
    int64_t cg = c / groups, mg = m / groups, k = hone_rt_window_k_numel(w), rows = cg * k;
    int64_t xp = hone_rt_window_in_numel(w), yp = hone_rt_window_out_numel(w);
    float *gsum = scratch + 2 * rows * (cols < 1 ? 1 : cols);
    cols = cols < 1 ? 1 : cols;
    if (dx)
        memset(dx, 0, sizeof *dx * (size_t)(n * c * xp));
    if (dw)
        memset(dw, 0, sizeof *dw * (size_t)(m * rows));
    for (int64_t g = 0; g < groups; g++) {
        memset(gsum, 0, sizeof *gsum * (size_t)mg);
        for (int64_t b = 0; b < n; b++)
            grad_group_tile(w, cg, mg, x + (b * c + g * cg) * xp, wt + g * mg * rows,
                            dy + (b * m + g * mg) * yp, dx ? dx + (b * c + g * cg) * xp : NULL,
                            dw ? dw + g * mg * rows : NULL, gsum, scratch, cols);
        if (dw)
            dw_finish(dw + g * mg * rows, wt + g * mg * rows, gsum, mg, rows);
    }
}

void hone_rt_signed_power(int64_t n, const float *x, const float *alpha, float *y)
{
    float a = alpha[0];
    for (int64_t i = 0; i < n; i++)
        y[i] = copysignf(powf(fabsf(x[i]), a), x[i]);
}
