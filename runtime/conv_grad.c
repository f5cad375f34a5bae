/*
 * Convolution backward by im2col / col2im and GEMM.
 *
 * For one image and one group, with col = im2col(x_g) of shape [cg*K, P]
 * (K kernel offsets, P window positions), the forward is y_g = w_g col. So
 *   dw_g += dy_g col^T        (one sgemm, [mg, P] x [P, cg*K])
 *   dcol  = w_g^T dy_g        (one sgemm, [cg*K, mg] x [mg, P])
 *   dx_g  = col2im(dcol)      (the adjoint of im2col adds columns back)
 *   db    = sum of dy over images and positions.
 *
 * 2-D convolutions (the common case) take a fast path: several images are
 * laid side by side in one column matrix [cg*K, k*P] (dy packed likewise), so
 * each sgemm covers k images; for small feature maps (7x7: P = 49) that is
 * the difference between a GEMM-bound and an overhead-bound backward. The
 * 2-D im2col/col2im here walk rows with clipped contiguous copies. Other
 * ranks go image by image through the runtime's generic im2col/col2im, in
 * column tiles. Either way the one scratch buffer the caller provides stays
 * bounded for any image. A 1x1, stride-1, unpadded window needs no im2col:
 * x_g is the column matrix itself.
 */
#include <string.h>

#include "hone_rt.h"

/* Scratch budget of the column matrix, in floats (8 MiB). */
#define GRAD_TILE_FLOATS ((int64_t)1 << 21)
#define GRAD_TILE_MIN 64
/* Columns the 2-D path aims for per GEMM (images are added until reached). */
#define GRAD_BATCH_COLS 4096

/* True when im2col is the identity: every dim 1x1, stride 1, unpadded. */
static int identity_window(const hone_rt_window *w)
{
    int ok = 1;
    for (int d = 0; d < w->nsp; d++)
        ok &= w->k[d] == 1 && w->stride[d] == 1 && w->pad[d] == 0 && w->in[d] == w->out[d];
    return ok;
}

/* Window positions per tile for a column matrix of `rows` rows. */
static int64_t grad_tile(int64_t rows, int64_t positions)
{
    int64_t t = GRAD_TILE_FLOATS / (rows > 0 ? rows : 1);
    t = t < GRAD_TILE_MIN ? GRAD_TILE_MIN : t;
    return t < positions ? t : positions;
}

/* Images per column matrix on the 2-D path: enough for GRAD_BATCH_COLS
 * columns, within the scratch budget for rows + mg rows, between 1 and n. */
static int64_t batch_images(int64_t rows, int64_t mg, int64_t positions, int64_t n)
{
    int64_t k = (GRAD_BATCH_COLS + positions - 1) / positions;
    int64_t cap = GRAD_TILE_FLOATS / ((rows + mg) * positions);
    k = k > cap ? cap : k;
    k = k < 1 ? 1 : k;
    return k < n ? k : n;
}

/* Output rows per tile when one image's column matrix is too large. */
static int64_t tile_rows(const hone_rt_window *w, int64_t rows)
{
    int64_t t = GRAD_TILE_FLOATS / (rows * w->out[1] > 0 ? rows * w->out[1] : 1);
    t = t < 1 ? 1 : t;
    return t < w->out[0] ? t : w->out[0];
}

static int fast_2d(const hone_rt_window *w)
{
    return w->nsp == 2 && !identity_window(w);
}

size_t hone_rt_conv_grad_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    int64_t rows = c / groups * hone_rt_window_k_numel(w), p = hone_rt_window_out_numel(w);
    int64_t mg = m / groups;
    if (identity_window(w))
        return 0;
    if (!fast_2d(w))
        return (size_t)(rows * grad_tile(rows, p));
    int64_t k = batch_images(rows, mg, p, GRAD_BATCH_COLS), batched = k * p * (rows + mg);
    if (batched <= GRAD_TILE_FLOATS)
        return (size_t)batched;
    return (size_t)(rows * tile_rows(w, rows) * w->out[1]);
}

/* ===================== 2-D im2col / col2im with a leading dimension ===================== */

/* Column range [lo, hi) of output positions ox whose input column ox*s + ix0 is
 * inside [0, width), for stride 1. */
static void clip_unit(int64_t ix0, int64_t ow, int64_t width, int64_t *lo, int64_t *hi)
{
    *lo = ix0 < 0 ? -ix0 : 0;
    *hi = width - ix0 < ow ? width - ix0 : ow;
    *lo = *lo > ow ? ow : *lo;
    *hi = *hi < *lo ? *lo : *hi;
}

/* col[(ch*KH+ky)*KW+kx][(oy-oy0)*OW+ox] (row stride ld) = x[ch][iy][ix] for output
 * rows oy in [oy0, oy1), 0 in padding. */
static void im2col_2d(const hone_rt_window *w, int64_t c, const float *x, int64_t oy0,
                      int64_t oy1, float *col, int64_t ld)
{
    int64_t h = w->in[0], wd = w->in[1], ow = w->out[1];
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < w->k[0]; ky++)
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                float *dst = col + ((ch * w->k[0] + ky) * w->k[1] + kx) * ld;
                int64_t ix0 = kx * w->dil[1] - w->pad[1], lo = 0, hi = ow;
                if (w->stride[1] == 1)
                    clip_unit(ix0, ow, wd, &lo, &hi);
                for (int64_t oy = oy0; oy < oy1; oy++, dst += ow) {
                    int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
                    const float *src = x + (ch * h + iy) * wd;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, sizeof(float) * (size_t)ow);
                    } else if (w->stride[1] == 1) {
                        memset(dst, 0, sizeof(float) * (size_t)lo);
                        memcpy(dst + lo, src + ix0 + lo, sizeof(float) * (size_t)(hi - lo));
                        memset(dst + hi, 0, sizeof(float) * (size_t)(ow - hi));
                    } else {
                        for (int64_t ox = 0; ox < ow; ox++) {
                            int64_t ix = ox * w->stride[1] + ix0;
                            dst[ox] = ix >= 0 && ix < wd ? src[ix] : 0.0f;
                        }
                    }
                }
            }
}

/* The adjoint of im2col_2d: adds every column entry into its image element. */
static void col2im_2d(const hone_rt_window *w, int64_t c, const float *col, int64_t oy0,
                      int64_t oy1, int64_t ld, float *x)
{
    int64_t h = w->in[0], wd = w->in[1], ow = w->out[1];
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < w->k[0]; ky++)
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                const float *src = col + ((ch * w->k[0] + ky) * w->k[1] + kx) * ld;
                int64_t ix0 = kx * w->dil[1] - w->pad[1], lo = 0, hi = ow;
                if (w->stride[1] == 1)
                    clip_unit(ix0, ow, wd, &lo, &hi);
                for (int64_t oy = oy0; oy < oy1; oy++, src += ow) {
                    int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
                    float *dst = x + (ch * h + iy) * wd;
                    if (iy < 0 || iy >= h)
                        continue;
                    if (w->stride[1] == 1) {
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox + ix0] += src[ox];
                        continue;
                    }
                    for (int64_t ox = 0; ox < ow; ox++) {
                        int64_t ix = ox * w->stride[1] + ix0;
                        if (ix >= 0 && ix < wd)
                            dst[ix] += src[ox];
                    }
                }
            }
}

/* ===================== per-group backward ===================== */

/* Shapes of one group's backward: cg input and mg output channels, n images. */
typedef struct grad_group {
    const hone_rt_window *w;
    int64_t n, c, m, cg, mg, rows, total, xp;
} grad_group;

/* Pointers of group gi of image b. */
static const float *x_at(const grad_group *g, const float *x, int64_t b, int64_t gi)
{
    return x + (b * g->c + gi * g->cg) * g->xp;
}

static const float *dy_at(const grad_group *g, const float *dy, int64_t b, int64_t gi)
{
    return dy + (b * g->m + gi * g->mg) * g->total;
}

/* The pointwise case: x_g is already the column matrix. */
static void group_direct(const grad_group *g, const float *xg, const float *wg,
                         const float *dyg, float *dxg, float *dwg)
{
    if (dwg)
        hone_rt_sgemm(0, 1, g->mg, g->rows, g->total, 1.0f, dyg, g->total, xg, g->total, 1.0f,
                      dwg, g->rows);
    if (dxg)
        hone_rt_sgemm(1, 0, g->rows, g->total, g->mg, 1.0f, wg, g->rows, dyg, g->total, 0.0f,
                      dxg, g->total);
}

/* One group of one image through generic column tiles; dxg and dwg accumulate. */
static void group_tiled(const grad_group *g, const float *xg, const float *wg,
                        const float *dyg, float *dxg, float *dwg, float *col)
{
    int64_t tile = grad_tile(g->rows, g->total);
    for (int64_t p0 = 0; p0 < g->total; p0 += tile) {
        int64_t p1 = p0 + tile < g->total ? p0 + tile : g->total, np = p1 - p0;
        if (dwg) {
            hone_rt_im2col(g->w, g->cg, xg, p0, p1, col);
            hone_rt_sgemm(0, 1, g->mg, g->rows, np, 1.0f, dyg + p0, g->total, col, np, 1.0f,
                          dwg, g->rows);
        }
        if (dxg) {
            hone_rt_sgemm(1, 0, g->rows, np, g->mg, 1.0f, wg, g->rows, dyg + p0, g->total, 0.0f,
                          col, np);
            hone_rt_col2im(g->w, g->cg, col, p0, p1, dxg);
        }
    }
}

/* Images [b0, b0+k) of group gi on the 2-D path: dy packed to [mg, k*P] (or
 * used in place for one image), one sgemm each for dw and dcol. */
static void group_batch_2d(const grad_group *g, int64_t b0, int64_t k, int64_t gi,
                           const float *x, const float *wg, const float *dy, float *dx,
                           float *dwg, float *col)
{
    int64_t cols = k * g->total, p = g->total;
    const float *dyk = dy_at(g, dy, b0, gi);
    float *pack = col + g->rows * cols;
    if (k > 1) {
        for (int64_t i = 0; i < k; i++)
            for (int64_t r = 0; r < g->mg; r++)
                memcpy(pack + r * cols + i * p, dy_at(g, dy, b0 + i, gi) + r * p,
                       sizeof(float) * (size_t)p);
        dyk = pack;
    }
    if (dwg) {
        for (int64_t i = 0; i < k; i++)
            im2col_2d(g->w, g->cg, x_at(g, x, b0 + i, gi), 0, g->w->out[0], col + i * p, cols);
        hone_rt_sgemm(0, 1, g->mg, g->rows, cols, 1.0f, dyk, cols, col, cols, 1.0f, dwg, g->rows);
    }
    if (dx) {
        hone_rt_sgemm(1, 0, g->rows, cols, g->mg, 1.0f, wg, g->rows, dyk, cols, 0.0f, col, cols);
        for (int64_t i = 0; i < k; i++)
            col2im_2d(g->w, g->cg, col + i * p, 0, g->w->out[0], cols,
                      (float *)x_at(g, dx, b0 + i, gi));
    }
}

/* One image of group gi on the 2-D path in tiles of output rows (for images
 * whose column matrix exceeds the scratch budget); dy is read in place. */
static void group_rows_2d(const grad_group *g, int64_t b, int64_t gi, const float *x,
                          const float *wg, const float *dy, float *dx, float *dwg, float *col)
{
    int64_t ow = g->w->out[1], step = tile_rows(g->w, g->rows);
    const float *xg = x_at(g, x, b, gi), *dyg = dy_at(g, dy, b, gi);
    for (int64_t oy = 0; oy < g->w->out[0]; oy += step) {
        int64_t oy1 = oy + step < g->w->out[0] ? oy + step : g->w->out[0], np = (oy1 - oy) * ow;
        if (dwg) {
            im2col_2d(g->w, g->cg, xg, oy, oy1, col, np);
            hone_rt_sgemm(0, 1, g->mg, g->rows, np, 1.0f, dyg + oy * ow, g->total, col, np, 1.0f,
                          dwg, g->rows);
        }
        if (dx) {
            hone_rt_sgemm(1, 0, g->rows, np, g->mg, 1.0f, wg, g->rows, dyg + oy * ow, g->total,
                          0.0f, col, np);
            col2im_2d(g->w, g->cg, col, oy, oy1, np, (float *)x_at(g, dx, b, gi));
        }
    }
}

/* db[ch] = sum of dy over images and positions. */
static void bias_grad(int64_t n, int64_t m, int64_t plane, const float *dy, float *db)
{
    for (int64_t ch = 0; ch < m; ch++)
        db[ch] = 0;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < m; ch++) {
            const float *p = dy + (b * m + ch) * plane;
            float s = 0;
            for (int64_t i = 0; i < plane; i++)
                s += p[i];
            db[ch] += s;
        }
}

/* Group gi over all images, by the path its window takes. */
static void grad_one_group(const grad_group *g, int64_t gi, const float *x, const float *wt,
                           const float *dy, float *dx, float *dw, float *scratch)
{
    const float *wg = wt + gi * g->mg * g->rows;
    float *dwg = dw ? dw + gi * g->mg * g->rows : NULL;
    int64_t k = batch_images(g->rows, g->mg, g->total, g->n);
    if (fast_2d(g->w) && (g->rows + g->mg) * g->total * k <= GRAD_TILE_FLOATS) {
        for (int64_t b = 0; b < g->n; b += k)
            group_batch_2d(g, b, b + k <= g->n ? k : g->n - b, gi, x, wg, dy, dx, dwg, scratch);
        return;
    }
    if (fast_2d(g->w)) {
        for (int64_t b = 0; b < g->n; b++)
            group_rows_2d(g, b, gi, x, wg, dy, dx, dwg, scratch);
        return;
    }
    for (int64_t b = 0; b < g->n; b++) {
        const float *xg = x_at(g, x, b, gi), *dyg = dy_at(g, dy, b, gi);
        float *dxg = dx ? (float *)x_at(g, dx, b, gi) : NULL;
        if (identity_window(g->w))
            group_direct(g, xg, wg, dyg, dxg, dwg);
        else
            group_tiled(g, xg, wg, dyg, dxg, dwg, scratch);
    }
}

void hone_rt_conv_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                       const float *x, const float *wt, const float *dy, float *dx, float *dw,
                       float *db, float *scratch)
{
    grad_group g = {w, n, c, m, c / groups, m / groups, c / groups * hone_rt_window_k_numel(w),
                    hone_rt_window_out_numel(w), hone_rt_window_in_numel(w)};
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)(n * c * g.xp));
    if (dw)
        memset(dw, 0, sizeof(float) * (size_t)(m * g.rows));
    if (db)
        bias_grad(n, m, g.total, dy, db);
    for (int64_t gi = 0; gi < groups && g.rows > 0 && g.mg > 0; gi++)
        grad_one_group(&g, gi, x, wt, dy, dx, dw, scratch);
}
