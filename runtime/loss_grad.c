/*
 * Losses of the training engine, with their gradients, and the softmax
 * backward.
 *
 * Every loss returns its value and writes d(loss)/d(input) in the same pass:
 * the gradient of a fused softmax + cross-entropy is (p - onehot) / rows, far
 * cheaper and more accurate than differentiating the two steps apart. Row
 * statistics (max, log-sum-exp) are computed in double; the per-element work
 * stays in float.
 *
 *   cross-entropy   L = -1/B sum_b log softmax(s_b)[label_b]
 *   soft-target KL  L = T^2/B sum_b sum_k p_t (log p_t - log p_s),
 *                   p = softmax(logits / T); dL/ds = T (p_s - p_t) / B
 *   MSE / L1        L = 1/n sum (x - t)^2 or |x - t|
 */
#include <math.h>

#include "hone_rt.h"

/* log(sum(exp(x[i] * s))) over a row of k floats, stable for any scale s > 0. */
static double row_lse(const float *x, int64_t k, double s)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < k; i++)
        mx = x[i] * s > mx ? x[i] * s : mx;
    for (int64_t i = 0; i < k; i++)
        sum += exp(x[i] * s - mx);
    return mx + log(sum);
}

double hone_rt_softmax_xent(int64_t rows, int64_t k, const float *logits, const int64_t *labels,
                            float *grad)
{
    double total = 0, inv = rows ? 1.0 / (double)rows : 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * k;
        float *g = grad + r * k;
        double lse = row_lse(x, k, 1.0);
        total -= x[labels[r]] - lse;
        for (int64_t i = 0; i < k; i++)
            g[i] = (float)(exp(x[i] - lse) * inv);
        g[labels[r]] -= (float)inv;
    }
    return total * inv;
}

double hone_rt_soft_kl(int64_t rows, int64_t k, const float *s, const float *t, float temp,
                       float *grad)
{
    double total = 0, it = 1.0 / (double)temp, scale = rows ? (double)temp / (double)rows : 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xs = s + r * k, *xt = t + r * k;
        double ls = row_lse(xs, k, it), lt = row_lse(xt, k, it), kl = 0;
        for (int64_t i = 0; i < k; i++) {
            double lps = xs[i] * it - ls, lpt = xt[i] * it - lt, pt = exp(lpt);
            kl += pt * (lpt - lps);
            grad[r * k + i] = (float)((exp(lps) - pt) * scale);
        }
        total += kl;
    }
    return rows ? total * (double)temp * (double)temp / (double)rows : 0.0;
}

double hone_rt_dist_loss(int l1, int64_t n, const float *x, const float *t, float *grad)
{
    double total = 0, inv = n ? 1.0 / (double)n : 0.0;
    float gs = (float)(l1 ? inv : 2.0 * inv);
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - t[i];
        total += l1 ? fabs((double)d) : (double)d * d;
        grad[i] = l1 ? (d > 0 ? gs : d < 0 ? -gs : 0.0f) : gs * d;
    }
    return total * inv;
}

/* One axis run of len elements at stride step. */
static void softmax_grad_run(int log_softmax, int64_t len, int64_t step, const float *y,
                             const float *dy, float *dx)
{
    double dot = 0;
    for (int64_t i = 0; i < len; i++)
        dot += log_softmax ? (double)dy[i * step] : (double)dy[i * step] * y[i * step];
    float d = (float)dot;
    for (int64_t i = 0; i < len; i++) {
        int64_t j = i * step;
        dx[j] = log_softmax ? dy[j] - expf(y[j]) * d : y[j] * (dy[j] - d);
    }
}

void hone_rt_softmax_grad(int log_softmax, int64_t outer, int64_t len, int64_t inner,
                          const float *y, const float *dy, float *dx)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            softmax_grad_run(log_softmax, len, inner, y + base, dy + base, dx + base);
        }
}
