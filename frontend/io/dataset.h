/*
 * Datasets: the module map.
 *
 * A dataset is a tensor whose first dimension counts samples ([N, ...]);
 * labels or targets are a second tensor with the same N. Evaluation and
 * training share this module: load the files, turn samples into what the
 * model's input expects, then walk them in batches.
 *
 * dataset.c  loading by extension (.npy, IDX plain or gzip, TensorProto .pb),
 *            normalisation to float, reshaping samples to a model input,
 *            gathering samples into batches, batch order (sequential or
 *            shuffled).
 * metric.c   metrics over one batch of model outputs: top-1 hits, per-image
 *            PSNR.
 */
#ifndef HONE_DATASET_H
#define HONE_DATASET_H

#include "ir.h"

/* ===================== dataset.c ===================== */

/* Sample normalisation: x -> (x * scale - mean) / std. */
typedef struct hone_norm {
    double scale, mean, std;
} hone_norm;
#define HONE_NORM_NONE ((hone_norm){1.0, 0.0, 1.0})

/* Loads a data file; the format follows the extension: .npy; .idx, .gz or a
 * name ending in "ubyte" (IDX); .pb (ONNX TensorProto). */
hone_status hone_data_load(hone_ctx *ctx, const char *path, hone_tensor **out);
/* Number of samples of a dataset tensor (its first dimension); error for scalars. */
hone_status hone_data_count(hone_ctx *ctx, const hone_tensor *t, const char *what, int64_t *n);
/* Float copy of t with every element normalised by nm. */
hone_status hone_data_to_float(hone_ctx *ctx, const hone_tensor *t, hone_norm nm, hone_tensor **out);
/* Reshapes t's samples, in place, to the per-sample shape of graph input v
 * (v's dims after the first) when the element counts match. */
hone_status hone_data_fit_shape(hone_ctx *ctx, hone_tensor *t, const hone_graph *g,
                                const hone_value *v);
/* Keeps only the first n samples of t (no-op when t has fewer). */
void hone_data_limit(hone_tensor *t, int64_t n);
/* New tensor of `rows` samples: sample idx[i] of t in row i for i < n, zeros
 * after (padding for models with a fixed batch size). */
hone_status hone_data_gather(hone_ctx *ctx, const hone_tensor *t, const int64_t *idx, int64_t n,
                             int64_t rows, hone_tensor **out);

/* Batch order over n samples: sequential, or shuffled for training. */
typedef struct hone_batcher {
    int64_t n, batch, pos;
    int64_t *order;
} hone_batcher;

hone_status hone_batcher_init(hone_ctx *ctx, hone_batcher *b, int64_t n, int64_t batch);
/* Reorders the samples with a permutation drawn from seed; restarts the epoch. */
void hone_batcher_shuffle(hone_batcher *b, uint64_t seed);
/* Sample indices of the next batch in *idx; returns their count, 0 at the end. */
int64_t hone_batcher_next(hone_batcher *b, const int64_t **idx);
void hone_batcher_rewind(hone_batcher *b);
void hone_batcher_free(hone_batcher *b);

/* ===================== metric.c ===================== */

/* Counts the rows of logits (row i = sample idx[i], first n rows) whose
 * argmax equals the sample's label. Labels: any integer tensor, one per sample. */
hone_status hone_metric_top1(hone_ctx *ctx, const hone_tensor *logits, const hone_tensor *labels,
                             const int64_t *idx, int64_t n, int64_t *hits);
/* Sums over the first n rows the PSNR 10*log10(1/MSE) of the output, clamped
 * to [0,1], against target idx[i] times target_scale. MSE is floored at 1e-10
 * (100 dB) so a perfect image keeps the mean finite. */
hone_status hone_metric_psnr(hone_ctx *ctx, const hone_tensor *out, const hone_tensor *targets,
                             const int64_t *idx, int64_t n, double target_scale, double *sum);

#endif
