/*
 * Batch normalisation for training: the forward pass with batch statistics
 * and its backward pass, over x[n, c, plane].
 *
 * Forward, per channel over M = n * plane elements:
 *   mean = sum(x) / M, var = sum((x - mean)^2) / M (population),
 *   invstd = 1 / sqrt(var + eps), y = (x - mean) * invstd * scale + bias.
 * Backward, with xhat = (x - mean) * invstd:
 *   dbias = sum(dy), dscale = sum(dy * xhat),
 *   dx = scale * invstd * (dy - dbias / M - xhat * dscale / M).
 * When the statistics are constants (inference-form BN being fine-tuned, or
 * frozen statistics) the mean terms vanish: dx = scale * invstd * dy.
 * The optional var output is the unbiased variance (M / (M - 1) times the
 * population one), which is what running statistics accumulate.
 *
 * Each plane is summed by the runtime's row sum and the plane sums are
 * accumulated in double, so long batches lose no precision. The per-plane
 * sums of squares and of dy, dy * (x - m) run in 8 interleaved lanes (vector
 * code, no serial dependency chain), added in a fixed order.
 *
 * Channels are independent, so the _pool variants split them over a pool's
 * workers: each channel is computed exactly as the serial functions do.
 */
#include <math.h>

#include "hone_rt.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The 8 lanes added pairwise in a fixed order. */
static float lanes_total(const float *p)
{
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* Sum of (x - m)^2 over n contiguous floats. */
static float plane_sq_dev(const float *x, int64_t n, float m)
{
    float part[8] = {0};
    int64_t i = 0;
#ifdef __SSE2__
    __m128 mm = _mm_set1_ps(m), lo = _mm_setzero_ps(), hi = _mm_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m128 a = _mm_sub_ps(_mm_loadu_ps(x + i), mm), b = _mm_sub_ps(_mm_loadu_ps(x + i + 4), mm);
        lo = _mm_add_ps(lo, _mm_mul_ps(a, a));
        hi = _mm_add_ps(hi, _mm_mul_ps(b, b));
    }
    _mm_storeu_ps(part, lo);
    _mm_storeu_ps(part + 4, hi);
#else
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float d = x[i + k] - m;
            part[k] += d * d;
        }
#endif
    float s = lanes_total(part);
    for (; i < n; i++) {
        float d = x[i] - m;
        s += d * d;
    }
    return s;
}

/* sum(g) and sum(g * (x - m)) over n contiguous floats. */
static void plane_dsums(const float *g, const float *x, int64_t n, float m, float *ps, float *pq)
{
    float s8[8] = {0}, q8[8] = {0};
    int64_t i = 0;
#ifdef __SSE2__
    __m128 mm = _mm_set1_ps(m), s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128 q0 = _mm_setzero_ps(), q1 = _mm_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m128 g0 = _mm_loadu_ps(g + i), g1 = _mm_loadu_ps(g + i + 4);
        s0 = _mm_add_ps(s0, g0);
        s1 = _mm_add_ps(s1, g1);
        q0 = _mm_add_ps(q0, _mm_mul_ps(g0, _mm_sub_ps(_mm_loadu_ps(x + i), mm)));
        q1 = _mm_add_ps(q1, _mm_mul_ps(g1, _mm_sub_ps(_mm_loadu_ps(x + i + 4), mm)));
    }
    _mm_storeu_ps(s8, s0);
    _mm_storeu_ps(s8 + 4, s1);
    _mm_storeu_ps(q8, q0);
    _mm_storeu_ps(q8 + 4, q1);
#else
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            s8[k] += g[i + k];
            q8[k] += g[i + k] * (x[i + k] - m);
        }
#endif
    float s = lanes_total(s8), q = lanes_total(q8);
    for (; i < n; i++) {
        s += g[i];
        q += g[i] * (x[i] - m);
    }
    *ps = s;
    *pq = q;
}

/* Mean and population variance of channel ch. */
static void channel_stats(int64_t n, int64_t c, int64_t plane, const float *x, int64_t ch,
                          double *mean, double *var)
{
    double s = 0, q = 0, cnt = (double)(n * plane);
    for (int64_t b = 0; b < n; b++) {
        float ps;
        hone_rt_sum_f32(x + (b * c + ch) * plane, &ps, 1, plane, 1, 1.0);
        s += ps;
    }
    double m = cnt > 0 ? s / cnt : 0.0;
    for (int64_t b = 0; b < n; b++)
        q += plane_sq_dev(x + (b * c + ch) * plane, plane, (float)m);
    *mean = m;
    *var = cnt > 0 ? q / cnt : 0.0;
}

/* The BN-train arguments, for channel ranges. */
typedef struct bn_job {
    int64_t n, c, plane;
    const float *x, *dy, *scale, *bias, *mean, *invstd;
    float eps;
    int batch_stats;
    float *y, *mean_out, *invstd_out, *var, *dx, *dscale, *dbias;
} bn_job;

static void bn_train_channels(void *ctx, int64_t c0, int64_t c1, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    int64_t n = j->n, c = j->c, plane = j->plane;
    for (int64_t ch = c0; ch < c1; ch++) {
        double m, v;
        channel_stats(n, c, plane, j->x, ch, &m, &v);
        float is = (float)(1.0 / sqrt(v + (double)j->eps));
        float a = j->scale[ch] * is, sh = j->bias[ch] - (float)m * a;
        for (int64_t b = 0; b < n; b++) {
            const float *xp = j->x + (b * c + ch) * plane;
            float *yp = j->y + (b * c + ch) * plane;
            for (int64_t i = 0; i < plane; i++)
                yp[i] = xp[i] * a + sh;
        }
        j->mean_out[ch] = (float)m;
        j->invstd_out[ch] = is;
        if (j->var)
            j->var[ch] =
                (float)(n * plane > 1 ? v * (double)(n * plane) / (double)(n * plane - 1) : v);
    }
}

void hone_rt_bn_train_pool(hone_rt_pool *pool, int64_t n, int64_t c, int64_t plane,
                           const float *x, const float *scale, const float *bias, float eps,
                           float *y, float *mean, float *invstd, float *var)
{
    bn_job j = {n, c, plane, x, NULL, scale, bias, NULL, NULL, eps, 0, y, mean, invstd, var};
    hone_rt_parallel_for(pool, c, 1, bn_train_channels, &j);
}

void hone_rt_bn_train(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                      const float *bias, float eps, float *y, float *mean, float *invstd,
                      float *var)
{
    hone_rt_bn_train_pool(NULL, n, c, plane, x, scale, bias, eps, y, mean, invstd, var);
}

/* sum(dy) and sum(dy * (x - m)) of channel ch. */
static void channel_dsums(int64_t n, int64_t c, int64_t plane, const float *dy, const float *x,
                          int64_t ch, float m, double *sdy, double *sdyx)
{
    double s = 0, q = 0;
    for (int64_t b = 0; b < n; b++) {
        float ps, pq;
        plane_dsums(dy + (b * c + ch) * plane, x + (b * c + ch) * plane, plane, m, &ps, &pq);
        s += ps;
        q += pq;
    }
    *sdy = s;
    *sdyx = q;
}

static void bn_grad_channels(void *ctx, int64_t c0, int64_t c1, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    int64_t n = j->n, c = j->c, plane = j->plane;
    double cnt = (double)(n * plane);
    for (int64_t ch = c0; ch < c1; ch++) {
        double sdy, sdyx;
        float m = j->mean[ch], is = j->invstd[ch];
        channel_dsums(n, c, plane, j->dy, j->x, ch, m, &sdy, &sdyx);
        if (j->dscale)
            j->dscale[ch] = (float)(sdyx * is);
        if (j->dbias)
            j->dbias[ch] = (float)sdy;
        if (!j->dx)
            continue;
        float k = j->scale[ch] * is;
        /* dx = k * dy - k * sdy / M - (x - m) * k * is^2 * sdyx / M */
        float c0v = j->batch_stats && cnt > 0 ? (float)(k * sdy / cnt) : 0.0f;
        float c1v = j->batch_stats && cnt > 0 ? (float)(k * is * is * sdyx / cnt) : 0.0f;
        for (int64_t b = 0; b < n; b++) {
            const float *gp = j->dy + (b * c + ch) * plane, *xp = j->x + (b * c + ch) * plane;
            float *dp = j->dx + (b * c + ch) * plane;
            for (int64_t i = 0; i < plane; i++)
                dp[i] = k * gp[i] - c0v - (xp[i] - m) * c1v;
        }
    }
}

void hone_rt_bn_grad_pool(hone_rt_pool *pool, int64_t n, int64_t c, int64_t plane,
                          const float *dy, const float *x, const float *scale, const float *mean,
                          const float *invstd, int batch_stats, float *dx, float *dscale,
                          float *dbias)
{
    bn_job j = {n, c, plane, x, dy, scale, NULL, mean, invstd, 0, batch_stats};
    j.dx = dx;
    j.dscale = dscale;
    j.dbias = dbias;
    hone_rt_parallel_for(pool, c, 1, bn_grad_channels, &j);
}

void hone_rt_bn_grad(int64_t n, int64_t c, int64_t plane, const float *dy, const float *x,
                     const float *scale, const float *mean, const float *invstd, int batch_stats,
                     float *dx, float *dscale, float *dbias)
{
    hone_rt_bn_grad_pool(NULL, n, c, plane, dy, x, scale, mean, invstd, batch_stats, dx, dscale,
                         dbias);
}
