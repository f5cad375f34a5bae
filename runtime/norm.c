/*
 * Normalisations: batch, instance and layer normalisation and LRN.
 *
 * Statistics are accumulated in double and in two passes (mean, then the
 * mean of squared deviations), so variance stays accurate for inputs with a
 * large mean. Instance normalisation needs no kernel of its own: it is
 * hone_rt_row_moments over each (n, c) plane followed by hone_rt_batchnorm
 * with those per-plane statistics.
 */
#include <math.h>

#include "hone_rt.h"

/* Mean and population variance of len elements at stride step. */
static void moments(int64_t len, int64_t step, const float *x, double *mean, double *var)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < len; i++)
        s += x[i * step];
    double m = len ? s / (double)len : 0.0;
    for (int64_t i = 0; i < len; i++) {
        double d = x[i * step] - m;
        q += d * d;
    }
    *mean = m;
    *var = len ? q / (double)len : 0.0;
}

void hone_rt_row_moments(int64_t rows, int64_t len, const float *x, float *mean, float *var)
{
    for (int64_t r = 0; r < rows; r++) {
        double m, v;
        moments(len, 1, x + r * len, &m, &v);
        mean[r] = (float)m;
        var[r] = (float)v;
    }
}

void hone_rt_channel_moments(int64_t n, int64_t c, int64_t plane, const float *x, float *mean,
                             float *var)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, q = 0, cnt = (double)(n * plane);
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < plane; i++)
                s += x[(b * c + ch) * plane + i];
        double m = cnt > 0 ? s / cnt : 0.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < plane; i++) {
                double d = x[(b * c + ch) * plane + i] - m;
                q += d * d;
            }
        mean[ch] = (float)m;
        var[ch] = (float)(cnt > 0 ? q / cnt : 0.0);
    }
}

void hone_rt_batchnorm(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                       const float *bias, const float *mean, const float *var, float eps,
                       float *y)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            float a = scale[ch] / sqrtf(var[ch] + eps);
            float s = bias[ch] - mean[ch] * a;
            const float *xp = x + (b * c + ch) * plane;
            float *yp = y + (b * c + ch) * plane;
            for (int64_t i = 0; i < plane; i++)
                yp[i] = xp[i] * a + s;
        }
}

void hone_rt_layernorm(int64_t rows, int64_t len, const float *x, const float *scale,
                       const float *bias, float eps, float *y, float *mean, float *invstd)
{
    for (int64_t r = 0; r < rows; r++) {
        double m, v;
        moments(len, 1, x + r * len, &m, &v);
        double is = 1.0 / sqrt(v + (double)eps);
        for (int64_t j = 0; j < len; j++) {
            double z = (x[r * len + j] - m) * is * scale[j];
            y[r * len + j] = (float)(bias ? z + bias[j] : z);
        }
        if (mean)
            mean[r] = (float)m;
        if (invstd)
            invstd[r] = (float)is;
    }
}

/* y = x / (bias + alpha/size * sum of x^2 over the channel window)^beta at one point. */
void hone_rt_lrn(int64_t n, int64_t c, int64_t plane, const float *x, float *y, int64_t size,
                 float alpha, float beta, float bias)
{
    int64_t before = (size - 1) / 2, after = size - 1 - before;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t lo = ch - before < 0 ? 0 : ch - before;
            int64_t hi = ch + after >= c ? c - 1 : ch + after;
            for (int64_t i = 0; i < plane; i++) {
                double sq = 0;
                for (int64_t k = lo; k <= hi; k++) {
                    double v = x[(b * c + k) * plane + i];
                    sq += v * v;
                }
                double d = pow((double)bias + (double)alpha / (double)size * sq, (double)beta);
                y[(b * c + ch) * plane + i] = (float)(x[(b * c + ch) * plane + i] / d);
            }
        }
}
