/*
 * Metrics over one batch of model outputs. A batch's row i holds sample
 * idx[i] of the dataset, so the label or target is looked up by index and
 * shuffled batches need nothing special. Each function accumulates (hits, a
 * sum of per-image PSNR) so the caller averages over the whole set.
 */
#include <math.h>

#include "dataset.h"

#define MSE_FLOOR 1e-10

/* Elements per row of a batch tensor. */
static int64_t row_numel(const hone_tensor *t)
{
    return t->rank >= 1 && t->dims[0] ? t->numel / t->dims[0] : 0;
}

static int64_t argmax_row(const hone_tensor *t, int64_t row, int64_t k)
{
    int64_t best = 0;
    double bv = hone_tensor_get_f64(t, row * k);
    for (int64_t j = 1; j < k; j++) {
        double x = hone_tensor_get_f64(t, row * k + j);
        if (x > bv) {
            bv = x;
            best = j;
        }
    }
    return best;
}

hone_status hone_metric_top1(hone_ctx *ctx, const hone_tensor *logits, const hone_tensor *labels,
                             const int64_t *idx, int64_t n, int64_t *hits)
{
    int64_t k = row_numel(logits);
    if (k < 1 || logits->dims[0] < n)
        return hone_fail(ctx, HONE_ERR_SHAPE, "top1: model output has %lld rows of %lld scores, "
                         "%lld needed", (long long)(logits->rank ? logits->dims[0] : 0),
                         (long long)k, (long long)n);
    if (!hone_dtype_is_int(labels->dtype))
        return hone_fail(ctx, HONE_ERR_ARG, "top1: labels must be integers, not %s",
                         hone_dtype_onnx_name(labels->dtype));
    for (int64_t i = 0; i < n; i++) {
        HONE_ASSERT(idx[i] >= 0 && idx[i] < labels->numel);
        *hits += argmax_row(logits, i, k) == hone_tensor_get_i64(labels, idx[i]);
    }
    return HONE_OK;
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

hone_status hone_metric_psnr(hone_ctx *ctx, const hone_tensor *out, const hone_tensor *targets,
                             const int64_t *idx, int64_t n, double target_scale, double *sum)
{
    int64_t k = row_numel(out);
    if (k < 1 || out->dims[0] < n || k != row_numel(targets))
        return hone_fail(ctx, HONE_ERR_SHAPE, "psnr: output rows of %lld elements, targets of %lld",
                         (long long)k, (long long)row_numel(targets));
    for (int64_t i = 0; i < n; i++) {
        double se = 0;
        for (int64_t j = 0; j < k; j++) {
            double d = clamp01(hone_tensor_get_f64(out, i * k + j)) -
                       hone_tensor_get_f64(targets, idx[i] * k + j) * target_scale;
            se += d * d;
        }
        double mse = se / (double)k;
        *sum += 10.0 * log10(1.0 / (mse > MSE_FLOOR ? mse : MSE_FLOOR));
    }
    return HONE_OK;
}
