/*
 * Convolution backward by im2col / col2im and GEMM.
 *
 * For one image and one group, with col = im2col(x_g) of shape [cg*K, P]
 * (K kernel offsets, P window positions), the forward is y_g = w_g col. So
 *   dw_g += dy_g col^T        (one sgemm, [mg, P] x [P, cg*K])
 *   dcol  = w_g^T dy_g        (one sgemm, [cg*K, mg] x [mg, P])
 *   dx_g  = col2im(dcol)      (the adjoint of im2col adds columns back)
 *   db    = sum of dy over images and positions.
 * Positions are processed in column tiles so the one scratch buffer (used
 * first for col, then for dcol) stays bounded for any image. A 1x1, stride-1,
 * unpadded window needs no im2col: x_g is the column matrix itself, and dx_g
 * comes out of the sgemm directly.
 */
#include "hone_rt.h"

/* Scratch budget of one column tile, in floats (8 MiB). */
#define GRAD_TILE_FLOATS ((int64_t)1 << 21)
#define GRAD_TILE_MIN 64

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

size_t hone_rt_conv_grad_scratch(const hone_rt_window *w, int64_t c, int64_t groups)
{
    int64_t rows = c / groups * hone_rt_window_k_numel(w);
    if (identity_window(w))
        return 0;
    return (size_t)(rows * grad_tile(rows, hone_rt_window_out_numel(w)));
}

/* Shapes of one group's backward: cg input and mg output channels. */
typedef struct grad_group {
    const hone_rt_window *w;
    int64_t cg, mg, rows, total;
} grad_group;

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

/* One group of one image through column tiles; dxg and dwg accumulate. */
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

void hone_rt_conv_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                       const float *x, const float *wt, const float *dy, float *dx, float *dw,
                       float *db, float *scratch)
{
    int64_t cg = c / groups, mg = m / groups, xp = hone_rt_window_in_numel(w);
    grad_group g = {w, cg, mg, cg * hone_rt_window_k_numel(w), hone_rt_window_out_numel(w)};
    int direct = identity_window(w);
    if (dx)
        for (int64_t i = 0; i < n * c * xp; i++)
            dx[i] = 0;
    if (dw)
        for (int64_t i = 0; i < m * g.rows; i++)
            dw[i] = 0;
    if (db)
        bias_grad(n, m, g.total, dy, db);
    for (int64_t b = 0; b < n && g.rows > 0 && mg > 0; b++)
        for (int64_t gi = 0; gi < groups; gi++) {
            const float *xg = x + (b * c + gi * cg) * xp, *wg = wt + gi * mg * g.rows;
            const float *dyg = dy + (b * m + gi * mg) * g.total;
            float *dxg = dx ? dx + (b * c + gi * cg) * xp : NULL;
            float *dwg = dw ? dw + gi * mg * g.rows : NULL;
            if (direct)
                group_direct(&g, xg, wg, dyg, dxg, dwg);
            else
                group_tiled(&g, xg, wg, dyg, dxg, dwg, scratch);
        }
}
