/*
 * Datasets: files of samples turned into model inputs, and batch order.
 *
 * A dataset tensor is [N, ...]; "sample" means one slice along the first
 * dimension. Loading dispatches on the file extension to the npy, IDX and
 * TensorProto readers. Preparing samples for a model is two steps kept
 * separate so the training engine can reuse them: conversion to float with
 * (x*scale - mean)/std, and reshaping each sample to the model input's
 * per-sample shape when only the layout differs ([N,28,28] -> [N,1,28,28]).
 * Batches are built by gathering sample rows by index, so sequential
 * evaluation and shuffled training share one path; rows past the real
 * samples are zero padding for models whose batch size is fixed.
 */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "io.h"
#include "onnx.h"

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

hone_status hone_data_load(hone_ctx *ctx, const char *path, hone_tensor **out)
{
    if (ends_with(path, ".npy"))
        return hone_npy_read(ctx, path, out);
    if (ends_with(path, ".pb"))
        return hone_onnx_read_tensor_pb(ctx, path, out);
    if (ends_with(path, ".idx") || ends_with(path, ".gz") || ends_with(path, "ubyte"))
        return hone_idx_read(ctx, path, out);
    return hone_fail(ctx, HONE_ERR_ARG,
                     "%s: unknown data file type (expected .npy, .idx, .gz, *-ubyte or .pb)", path);
}

hone_status hone_data_count(hone_ctx *ctx, const hone_tensor *t, const char *what, int64_t *n)
{
    if (t->rank < 1)
        return hone_fail(ctx, HONE_ERR_SHAPE, "%s: a scalar is not a set of samples", what);
    *n = t->dims[0];
    return HONE_OK;
}

hone_status hone_data_to_float(hone_ctx *ctx, const hone_tensor *t, hone_norm nm, hone_tensor **out)
{
    if (t->dtype == HONE_DT_STRING || nm.std == 0)
        return hone_fail(ctx, HONE_ERR_ARG, "cannot normalise %s samples with std %g",
                         hone_dtype_onnx_name(t->dtype), nm.std);
    hone_tensor *f;
    hone_status st = hone_tensor_new(ctx, HONE_DT_FLOAT, t->rank, t->dims, &f);
    if (st)
        return st;
    float *d = f->data;
    for (int64_t i = 0; i < t->numel; i++)
        d[i] = (float)((hone_tensor_get_f64(t, i) * nm.scale - nm.mean) / nm.std);
    *out = f;
    return HONE_OK;
}

/* Elements per sample of t. */
static int64_t sample_numel(const hone_tensor *t)
{
    return t->dims[0] ? t->numel / t->dims[0] : 0;
}

hone_status hone_data_fit_shape(hone_ctx *ctx, hone_tensor *t, const hone_graph *g,
                                const hone_value *v)
{
    char want[256], got[256];
    if (t->rank < 1)
        return hone_fail(ctx, HONE_ERR_SHAPE, "samples must have a leading sample dimension");
    if (v->rank < 1)
        return HONE_OK; /* the model declares no shape: feed the samples as they are */
    int64_t per = 1;
    for (int i = 1; i < v->rank; i++)
        per = v->dims[i] >= 0 ? per * v->dims[i] : -1;
    if (per < 0 || per != sample_numel(t) || t->dims[0] == 0)
        return hone_fail(ctx, HONE_ERR_SHAPE, "samples %s do not fit model input '%s' %s",
                         hone_tensor_type_str(t, got, sizeof got), v->name,
                         hone_value_type_str(g, v, want, sizeof want));
    t->rank = v->rank;
    for (int i = 1; i < v->rank; i++)
        t->dims[i] = v->dims[i];
    return HONE_OK;
}

void hone_data_limit(hone_tensor *t, int64_t n)
{
    if (t->rank < 1 || n < 0 || n >= t->dims[0])
        return;
    t->numel = sample_numel(t) * n;
    t->dims[0] = n;
}

hone_status hone_data_gather(hone_ctx *ctx, const hone_tensor *t, const int64_t *idx, int64_t n,
                             int64_t rows, hone_tensor **out)
{
    HONE_ASSERT(t->rank >= 1 && n <= rows && t->dtype != HONE_DT_STRING);
    int64_t dims[HONE_MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[0] = rows;
    hone_tensor *b;
    hone_status st = hone_tensor_new(ctx, t->dtype, t->rank, dims, &b);
    if (st)
        return st;
    size_t row = (size_t)sample_numel(t) * hone_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        HONE_ASSERT(idx[i] >= 0 && idx[i] < t->dims[0]);
        memcpy((uint8_t *)b->data + (size_t)i * row, (const uint8_t *)t->data + (size_t)idx[i] * row, row);
    }
    *out = b;
    return HONE_OK;
}

/* ---- batch order ---- */

hone_status hone_batcher_init(hone_ctx *ctx, hone_batcher *b, int64_t n, int64_t batch)
{
    memset(b, 0, sizeof *b);
    if (n < 0 || batch < 1)
        return hone_fail(ctx, HONE_ERR_ARG, "batch size %lld for %lld samples", (long long)batch,
                         (long long)n);
    b->order = malloc(sizeof *b->order * (size_t)(n + 1));
    if (!b->order)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory for %lld sample indices", (long long)n);
    for (int64_t i = 0; i < n; i++)
        b->order[i] = i;
    b->n = n;
    b->batch = batch;
    return HONE_OK;
}

/* splitmix64: a small, well-mixed generator, enough for sample order. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fisher-Yates over the current order. */
void hone_batcher_shuffle(hone_batcher *b, uint64_t seed)
{
    for (int64_t i = b->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_random(&seed) % (uint64_t)(i + 1));
        int64_t x = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = x;
    }
    b->pos = 0;
}

int64_t hone_batcher_next(hone_batcher *b, const int64_t **idx)
{
    int64_t k = b->n - b->pos < b->batch ? b->n - b->pos : b->batch;
    *idx = b->order + b->pos;
    b->pos += k;
    return k;
}

void hone_batcher_rewind(hone_batcher *b)
{
    b->pos = 0;
}

void hone_batcher_free(hone_batcher *b)
{
    free(b->order);
    b->order = NULL;
}
