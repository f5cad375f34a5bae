/*
 * 2-D convolution with several images per GEMM, image batches over a pool.
 *
 * hone_rt_conv runs one GEMM per image and group; for the small feature maps
 * of CNN training (7x7 to 28x28 positions) those GEMMs are too small to run
 * near peak. Here the columns of k images are laid side by side (im2col with
 * a leading dimension, as the backward does), one GEMM gives their outputs
 * [mg, k*P], and each image's rows are copied to their place with the bias
 * added. Batches of images are independent, so they are split over the
 * pool's workers, each with its own slice of the scratch; every output
 * element is computed by the same GEMM call shape whatever the worker count.
 * A 1x1, stride-1, unpadded window needs no columns: one GEMM per image reads
 * the image in place. Other stride-1 2-D windows build no column matrix either
 * where the training GEMM is hone's AVX-512 one: the batch's images are copied
 * once into zero-padded planes and the GEMM reads its B rows from them through
 * per-row offsets (the implicit im2col of hone_rt.h). Other ranks, and images
 * whose columns alone exceed the budget, go through hone_rt_conv.
 */
#include <stdint.h>
#include <string.h>

#include "hone_rt.h"

/* Scratch budget of one worker's batch, in floats (8 MiB). */
#define BATCH_FLOATS ((int64_t)1 << 21)
/* Columns a batch aims for (images are added until reached). */
#define BATCH_COLS 4096

typedef struct conv_job {
    const hone_rt_window *w;
    int64_t n, c, m, groups, cg, mg, rows, p, xp, k, batches;
    int direct, implicit;
    hone_rt_implicit ig; /* the implicit im2col's planes, when implicit */
    const float *x, *wt, *bias;
    float *y, *scratch;
    size_t per_worker;
} conv_job;

static int pointwise(const hone_rt_window *w)
{
    int ok = 1;
    for (int d = 0; d < w->nsp; d++)
        ok &= w->k[d] == 1 && w->stride[d] == 1 && w->pad[d] == 0 && w->in[d] == w->out[d];
    return ok;
}

/* Evens out batches of at most *k of n images: fewer than 8 batches are made a
 * multiple of 4 (when n allows), so that 2 or 4 workers get equal shares; *k
 * shrinks accordingly. Returns the batch count. */
static int64_t balance_batches(int64_t n, int64_t *k)
{
    int64_t batches = (n + *k - 1) / *k;
    if (batches < 8) {
        batches = (batches + 3) / 4 * 4;
        batches = batches > n ? n : batches;
    }
    *k = (n + batches - 1) / batches;
    return (n + *k - 1) / *k;
}

/* Floats of a worker's implicit batch of k images: the row offsets (int32, one float
 * each), the padded images, and the GEMM's output (junk columns included); 0 when an
 * image's offsets would not fit in an int32. */
static size_t implicit_floats(const conv_job *j, int64_t k)
{
    if (j->c * j->ig.plane + j->ig.ncol16 + j->ig.slack > INT32_MAX)
        return 0;
    return (size_t)j->rows + hone_rt_implicit_floats(&j->ig, j->c, k) +
           (size_t)(j->mg * k * j->ig.ncol16);
}

static conv_job job_of(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups)
{
    conv_job j = {w, n, c, m, groups, c / groups, m / groups};
    j.rows = j.cg * hone_rt_window_k_numel(w);
    j.p = hone_rt_window_out_numel(w);
    j.xp = hone_rt_window_in_numel(w);
    j.direct = pointwise(w);
    int64_t per = (j.rows + j.mg) * j.p, k = (BATCH_COLS + j.p - 1) / (j.p > 0 ? j.p : 1);
    if (j.direct)
        k = 1;
    else if (per > BATCH_FLOATS)
        k = 0;
    else if (k > BATCH_FLOATS / per)
        k = BATCH_FLOATS / per;
    j.k = k < n ? k : n;
    j.per_worker = j.direct || j.k == 0 ? 0 : (size_t)(j.k * per);
    j.batches = j.k > 0 ? balance_batches(n, &j.k) : 0;
    j.implicit = !j.direct && j.k > 0 && hone_rt_implicit_of(w, &j.ig) &&
                 implicit_floats(&j, j.k) > 0 && implicit_floats(&j, j.k) <= j.per_worker;
    return j;
}

/* Output plane rows of image b, group gi: bias (or 0) plus the GEMM result. */
static void put_rows(const conv_job *j, int64_t b, int64_t gi, const float *out, int64_t ld)
{
    for (int64_t r = 0; r < j->mg; r++) {
        float *dst = j->y + (b * j->m + gi * j->mg + r) * j->p;
        float bv = j->bias ? j->bias[gi * j->mg + r] : 0.0f;
        const float *src = out + r * ld;
        for (int64_t i = 0; i < j->p; i++)
            dst[i] = src[i] + bv;
    }
}

/* Images [b0, b0+kb) of group gi through one GEMM over their columns. */
static void batch_group(const conv_job *j, int64_t b0, int64_t kb, int64_t gi, float *col)
{
    int64_t cols = kb * j->p;
    float *out = col + j->rows * cols;
    for (int64_t i = 0; i < kb; i++)
        hone_rt_im2col_2d(j->w, j->cg, j->x + ((b0 + i) * j->c + gi * j->cg) * j->xp, 0,
                          j->w->out[0], col + i * j->p, cols);
    hone_rt_train_sgemm(0, 0, j->mg, cols, j->rows, 1.0f, j->wt + gi * j->mg * j->rows, j->rows, col,
                  cols, 0.0f, out, cols);
    for (int64_t i = 0; i < kb; i++)
        put_rows(j, b0 + i, gi, out + i * j->p, cols);
}

/* One image of group gi of a pointwise window: the image is the column matrix. */
static void direct_group(const conv_job *j, int64_t b, int64_t gi)
{
    float *yg = j->y + (b * j->m + gi * j->mg) * j->p;
    for (int64_t r = 0; r < j->mg; r++) {
        float bv = j->bias ? j->bias[gi * j->mg + r] : 0.0f;
        for (int64_t i = 0; i < j->p; i++)
            yg[r * j->p + i] = bv;
    }
    hone_rt_train_sgemm(0, 0, j->mg, j->p, j->rows, 1.0f, j->wt + gi * j->mg * j->rows, j->rows,
                  j->x + (b * j->c + gi * j->cg) * j->xp, j->p, 1.0f, yg, j->p);
}

/* Images [b0, b0+kb), all groups, through the implicit im2col: the images padded once,
 * one GEMM per group reading them in place, the valid columns copied out with the bias.
 * Returns 0 when the GEMM is unavailable (its packing buffer could not be allocated); the
 * caller then computes the whole batch again through the column matrix. */
static int implicit_batch(const conv_job *j, int64_t b0, int64_t kb, float *col)
{
    const hone_rt_implicit *g = &j->ig;
    int32_t *roff = (int32_t *)(void *)col;
    int64_t oh = j->w->out[0], ow = j->w->out[1];
    float *xp = col + j->rows, *out = xp + hone_rt_implicit_floats(g, j->c, kb);
    int64_t ld = kb * g->ncol16;
    hone_rt_implicit_offsets(j->w, g, j->cg, roff);
    hone_rt_implicit_pad(j->w, g, j->c, j->x + b0 * j->c * j->xp, j->c * j->xp, kb, xp);
    for (int64_t gi = 0; gi < j->groups; gi++) {
        if (!hone_rt_gemm_implicit(j->mg, j->rows, j->wt + gi * j->mg * j->rows, j->rows,
                                   xp + gi * j->cg * g->plane, j->c * g->plane, roff, kb,
                                   g->ncol16, out))
            return 0;
        for (int64_t i = 0; i < kb; i++)
            for (int64_t r = 0; r < j->mg; r++)
                hone_rt_implicit_unpad(g, oh, ow, out + r * ld + i * g->ncol16,
                                       j->bias ? j->bias[gi * j->mg + r] : 0.0f,
                                       j->y + ((b0 + i) * j->m + gi * j->mg + r) * j->p);
    }
    return 1;
}

/* Batches [t0, t1) of k images each, on worker `worker`. */
static void run_batches(void *ctx, int64_t t0, int64_t t1, int worker)
{
    const conv_job *j = ctx;
    float *col = j->scratch + (size_t)worker * j->per_worker;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b0 = t * j->k, kb = b0 + j->k <= j->n ? j->k : j->n - b0;
        if (j->implicit && implicit_batch(j, b0, kb, col))
            continue;
        for (int64_t gi = 0; gi < j->groups; gi++) {
            if (j->direct)
                direct_group(j, b0, gi);
            else
                batch_group(j, b0, kb, gi, col);
        }
    }
}

size_t hone_rt_conv_batch_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                                  int workers)
{
    if (w->nsp != 2 || groups < 1)
        return hone_rt_conv_scratch(w, c, m, groups > 0 ? groups : 1);
    conv_job j = job_of(w, BATCH_COLS, c, m, groups);
    if (j.k == 0 && !j.direct)
        return hone_rt_conv_scratch(w, c, m, groups);
    return j.per_worker * (size_t)(workers > 0 ? workers : 1);
}

void hone_rt_conv_batch(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                        int64_t m, int64_t groups, const float *x, const float *wt,
                        const float *bias, float *y, float *scratch)
{
    conv_job j = job_of(w, n, c, m, groups);
    if (w->nsp != 2 || (j.k == 0 && !j.direct)) {
        hone_rt_conv(w, n, c, m, groups, x, wt, bias, y, scratch);
        return;
    }
    if (n <= 0 || j.mg <= 0)
        return;
    if (j.rows == 0) {
        hone_rt_conv(w, n, c, m, groups, x, wt, bias, y, scratch);
        return;
    }
    j.x = x;
    j.wt = wt;
    j.bias = bias;
    j.y = y;
    j.scratch = scratch;
    hone_rt_parallel_for(pool, j.batches, 1, run_batches, &j);
}
