/*
 * Pooling backward.
 *
 * MaxPool routes each output gradient to the element the forward pass chose:
 * the forward's Indices output holds flat indices into the whole input, so
 * the backward is one scatter-add. AveragePool spreads dy / count evenly over
 * its window, which is exactly col2im of a column matrix whose every kernel
 * row holds dy / count: padding entries fall outside the image and are
 * dropped by col2im, as the forward never read them. Global pools reduce a
 * whole plane: the average spreads dy / len, the max sends dy to the first
 * maximum (the element the forward's strict comparison kept).
 */
#include "hone_rt.h"

int hone_rt_maxpool_grad(int64_t n_out, const float *dy, const int64_t *idx, int64_t n_in,
                         float *dx)
{
    for (int64_t i = 0; i < n_in; i++)
        dx[i] = 0;
    for (int64_t i = 0; i < n_out; i++) {
        if (idx[i] < 0 || idx[i] >= n_in)
            return 0;
        dx[idx[i]] += dy[i];
    }
    return 1;
}

/* Kernel offsets j in [0, k) whose coordinate start + j*dil lies in [a, b). */
static int64_t dim_count(const hone_rt_window *w, int d, int64_t start, int64_t a, int64_t b)
{
    int64_t n = 0;
    for (int64_t j = 0; j < w->k[d]; j++) {
        int64_t i = start + j * w->dil[d];
        n += i >= a && i < b;
    }
    return n;
}

/* inv[p] = 1 / (elements averaged at window position p). */
static void inverse_counts(const hone_rt_window *w, int count_include_pad, float *inv)
{
    int64_t o[HONE_RT_MAX_SPATIAL] = {0}, total = hone_rt_window_out_numel(w);
    for (int64_t p = 0; p < total; p++) {
        int64_t cnt = 1;
        for (int d = 0; d < w->nsp; d++) {
            int64_t start = o[d] * w->stride[d] - w->pad[d];
            cnt *= count_include_pad ? dim_count(w, d, start, -w->pad[d], w->in[d] + w->pad_end[d])
                                     : dim_count(w, d, start, 0, w->in[d]);
        }
        inv[p] = cnt ? 1.0f / (float)cnt : 0.0f;
        for (int d = w->nsp - 1; d >= 0 && ++o[d] == w->out[d]; d--)
            o[d] = 0;
    }
}

size_t hone_rt_avgpool_grad_scratch(const hone_rt_window *w)
{
    return (size_t)(hone_rt_window_out_numel(w) * (hone_rt_window_k_numel(w) + 1));
}

void hone_rt_avgpool_grad(const hone_rt_window *w, int64_t planes, const float *dy,
                          int count_include_pad, float *dx, float *scratch)
{
    int64_t in = hone_rt_window_in_numel(w), out = hone_rt_window_out_numel(w);
    int64_t k = hone_rt_window_k_numel(w);
    float *inv = scratch, *col = scratch + out;
    inverse_counts(w, count_include_pad, inv);
    for (int64_t i = 0; i < planes * in; i++)
        dx[i] = 0;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *g = dy + pl * out;
        for (int64_t p = 0; p < out; p++)
            col[p] = g[p] * inv[p];
        for (int64_t kk = 1; kk < k; kk++)
            for (int64_t p = 0; p < out; p++)
                col[kk * out + p] = col[p];
        hone_rt_col2im(w, 1, col, 0, out, dx + pl * in);
    }
}

void hone_rt_global_pool_grad(hone_rt_gpool kind, int64_t planes, int64_t len, const float *x,
                              const float *dy, float *dx)
{
    for (int64_t pl = 0; pl < planes; pl++) {
        float *d = dx + pl * len;
        if (kind == HONE_RT_GPOOL_AVG) {
            float v = len ? dy[pl] / (float)len : 0.0f;
            for (int64_t i = 0; i < len; i++)
                d[i] = v;
            continue;
        }
        const float *xp = x + pl * len;
        int64_t arg = 0;
        for (int64_t i = 0; i < len; i++) {
            d[i] = 0;
            if (xp[i] > xp[arg])
                arg = i;
        }
        if (len)
            d[arg] = dy[pl];
    }
}
