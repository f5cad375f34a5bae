/*
 * Convolution with a caller-chosen im2col tile, for compiled models.
 *
 * hone_rt_conv sizes its column tile itself (up to 8 MiB of scratch), which
 * would dominate a compiled model's workspace: the memory planner gives
 * every conv's scratch its own slot, live only at that step, and a slot far
 * larger than the activations makes consecutive residual blocks impossible to
 * pack tightly. Here the caller states how many window positions one tile
 * holds, so the backend can keep scratch near the activations' size at the
 * cost of a few more (still large) GEMM calls. Built on the public im2col and
 * sgemm entry points; as in hone_rt_conv, each output element gets its whole
 * reduction from one GEMM call.
 */
#include "hone_rt.h"

size_t hone_rt_conv_tile_scratch(const hone_rt_window *w, int64_t c, int64_t groups, int64_t cols)
{
    return (size_t)(c / groups * hone_rt_window_k_numel(w) * cols);
}

/* y_g[mg, P] = bias (or 0), then += w_g x im2col(x_g), `cols` positions at a time. */
static void conv_group_tiled(const hone_rt_window *w, int64_t cg, int64_t mg, const float *xg,
                             const float *wg, const float *bias, float *yg, float *scratch,
                             int64_t cols)
{
    int64_t rows = cg * hone_rt_window_k_numel(w), total = hone_rt_window_out_numel(w);
    for (int64_t i = 0; i < mg; i++)
        for (int64_t j = 0; j < total; j++)
            yg[i * total + j] = bias ? bias[i] : 0.0f;
    for (int64_t p0 = 0; p0 < total && rows > 0 && mg > 0; p0 += cols) {
        int64_t p1 = p0 + cols < total ? p0 + cols : total;
        hone_rt_im2col(w, cg, xg, p0, p1, scratch);
        hone_rt_sgemm(0, 0, mg, p1 - p0, rows, 1.0f, wg, rows, scratch, p1 - p0, 1.0f, yg + p0,
                      total);
    }
}

void hone_rt_conv_tiled(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wt, const float *bias, float *y,
                        float *scratch, int64_t cols)
{
    int64_t cg = c / groups, mg = m / groups, k = hone_rt_window_k_numel(w);
    int64_t xp = hone_rt_window_in_numel(w), yp = hone_rt_window_out_numel(w);
    for (int64_t b = 0; b < n; b++)
        for (int64_t g = 0; g < groups; g++)
            conv_group_tiled(w, cg, mg, x + (b * c + g * cg) * xp, wt + g * mg * cg * k,
                             bias ? bias + g * mg : NULL, y + (b * m + g * mg) * yp, scratch,
                             cols < 1 ? 1 : cols);
}
