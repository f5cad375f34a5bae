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
 * accumulated in double, so long batches lose no precision.
 */
#include <math.h>

#include "hone_rt.h"

/* Sum of (x - m)^2 over n contiguous floats. */
static float plane_sq_dev(const float *x, int64_t n, float m)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - m;
        s += d * d;
    }
    return s;
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

void hone_rt_bn_train(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                      const float *bias, float eps, float *y, float *mean, float *invstd,
                      float *var)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double m, v;
        channel_stats(n, c, plane, x, ch, &m, &v);
        float is = (float)(1.0 / sqrt(v + (double)eps));
        float a = scale[ch] * is, sh = bias[ch] - (float)m * a;
        for (int64_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * plane;
            float *yp = y + (b * c + ch) * plane;
            for (int64_t i = 0; i < plane; i++)
                yp[i] = xp[i] * a + sh;
        }
        mean[ch] = (float)m;
        invstd[ch] = is;
        if (var)
            var[ch] = (float)(n * plane > 1 ? v * (double)(n * plane) / (double)(n * plane - 1) : v);
    }
}

/* sum(dy) and sum(dy * (x - m)) of channel ch. */
static void channel_dsums(int64_t n, int64_t c, int64_t plane, const float *dy, const float *x,
                          int64_t ch, float m, double *sdy, double *sdyx)
{
    double s = 0, q = 0;
    for (int64_t b = 0; b < n; b++) {
        const float *gp = dy + (b * c + ch) * plane, *xp = x + (b * c + ch) * plane;
        float ps = 0, pq = 0;
        for (int64_t i = 0; i < plane; i++) {
            ps += gp[i];
            pq += gp[i] * (xp[i] - m);
        }
        s += ps;
        q += pq;
    }
    *sdy = s;
    *sdyx = q;
}

void hone_rt_bn_grad(int64_t n, int64_t c, int64_t plane, const float *dy, const float *x,
                     const float *scale, const float *mean, const float *invstd, int batch_stats,
                     float *dx, float *dscale, float *dbias)
{
    double cnt = (double)(n * plane);
    for (int64_t ch = 0; ch < c; ch++) {
        double sdy, sdyx;
        float m = mean[ch], is = invstd[ch];
        channel_dsums(n, c, plane, dy, x, ch, m, &sdy, &sdyx);
        if (dscale)
            dscale[ch] = (float)(sdyx * is);
        if (dbias)
            dbias[ch] = (float)sdy;
        if (!dx)
            continue;
        float k = scale[ch] * is;
        /* dx = k * dy - k * sdy / M - (x - m) * k * is^2 * sdyx / M */
        float c0 = batch_stats && cnt > 0 ? (float)(k * sdy / cnt) : 0.0f;
        float c1 = batch_stats && cnt > 0 ? (float)(k * is * is * sdyx / cnt) : 0.0f;
        for (int64_t b = 0; b < n; b++) {
            const float *gp = dy + (b * c + ch) * plane, *xp = x + (b * c + ch) * plane;
            float *dp = dx + (b * c + ch) * plane;
            for (int64_t i = 0; i < plane; i++)
                dp[i] = k * gp[i] - c0 - (xp[i] - m) * c1;
        }
    }
}
