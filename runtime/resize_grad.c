/*
 * Backward of separable resampling (Resize/Upsample in nearest and linear
 * modes). Along one axis every output position o reads at most two input
 * positions idx[2o], idx[2o+1] with weights w[2o], w[2o+1]; the adjoint adds
 * w * dy back into those positions. A multi-axis resize is the composition of
 * its axes, so its adjoint applies this kernel axis by axis.
 */
#include "hone_rt.h"

void hone_rt_resample_adjoint(int64_t outer, int64_t out_len, int64_t in_len, int64_t inner,
                              const int64_t *idx, const float *w, const float *dy, float *dx)
{
    for (int64_t i = 0; i < outer * in_len * inner; i++)
        dx[i] = 0;
    for (int64_t b = 0; b < outer; b++)
        for (int64_t o = 0; o < out_len; o++) {
            const float *src = dy + (b * out_len + o) * inner;
            for (int t = 0; t < 2; t++) {
                float wt = w[2 * o + t];
                float *dst = dx + (b * in_len + idx[2 * o + t]) * inner;
                if (wt == 0.0f)
                    continue;
                for (int64_t j = 0; j < inner; j++)
                    dst[j] += wt * src[j];
            }
        }
}
