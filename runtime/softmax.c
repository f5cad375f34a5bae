/*
 * Reductions along one axis that write a same-shaped result: softmax,
 * log-softmax, hardmax and Lp normalisation.
 *
 * A tensor is viewed as [outer, len, inner]: the axis has len elements at
 * stride inner. Softmax subtracts the axis maximum before exponentiating so
 * large inputs do not overflow, and log-softmax is computed as x - max -
 * log(sum exp(x - max)) rather than as the log of a softmax that may underflow.
 */
#include <math.h>

#include "hone_rt.h"

/* One axis run of len elements at stride step. */
static void softmax_run(hone_rt_softmax_kind kind, int64_t len, int64_t step, const float *x,
                        float *y)
{
    int64_t arg = 0;
    for (int64_t i = 1; i < len; i++)
        if (x[i * step] > x[arg * step])
            arg = i;
    double mx = len ? x[arg * step] : 0.0, sum = 0;
    if (kind == HONE_RT_HARDMAX) {
        for (int64_t i = 0; i < len; i++)
            y[i * step] = i == arg ? 1.0f : 0.0f;
        return;
    }
    for (int64_t i = 0; i < len; i++)
        sum += exp(x[i * step] - mx);
    double lse = log(sum);
    for (int64_t i = 0; i < len; i++) {
        double z = x[i * step] - mx;
        y[i * step] = (float)(kind == HONE_RT_LOGSOFTMAX ? z - lse : exp(z) / sum);
    }
}

void hone_rt_softmax(hone_rt_softmax_kind kind, int64_t outer, int64_t len, int64_t inner,
                     const float *x, float *y)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            softmax_run(kind, len, inner, x + o * len * inner + i, y + o * len * inner + i);
}

void hone_rt_lpnorm(int64_t outer, int64_t len, int64_t inner, const float *x, float *y, int p)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xr = x + o * len * inner + i;
            float *yr = y + o * len * inner + i;
            double norm = 0;
            for (int64_t k = 0; k < len; k++)
                norm += p == 1 ? fabs((double)xr[k * inner]) : (double)xr[k * inner] * xr[k * inner];
            norm = p == 1 ? norm : sqrt(norm);
            for (int64_t k = 0; k < len; k++)
                yr[k * inner] = (float)(xr[k * inner] / norm);
        }
}
