/*
 * GEMM entry points over OpenBLAS (row-major CBLAS), and hone's own one-row product.
 *
 * One row (a classifier at batch 1) is a matrix-vector product: it reads B once, where
 * sgemm packed all of it first (MobileNetV2's 1280 x 1000 classifier: 3% of the model's
 * time). With AVX-512 it runs on the runtime's shared pool: OpenBLAS's own sgemv would
 * go multi-threaded from 2304 x 4 elements, and OpenBLAS's threads then poll (with
 * sched_yield) for tens of milliseconds after each call, taking CPU from the pool that
 * runs the next inference's convolutions (MobileNetV2, two threads: 7.3 CPU ms per run
 * with OPENBLAS_NUM_THREADS=2 against 5.9 with 1). Each output is summed by one thread
 * in a fixed order, so results do not depend on the thread count.
 */
#include <cblas.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_GEMV 1

/* y = alpha op(B) x + beta y for outputs [j0, j1) (beta == 0: y not read). */
typedef struct gemv_job {
    int trans_b;
    int64_t k, ldb;
    float alpha, beta;
    const float *b, *x;
    float *y;
} gemv_job;

static inline float finish(const gemv_job *g, float dot, int64_t j)
{
    return g->beta == 0.0f ? g->alpha * dot : g->alpha * dot + g->beta * g->y[j];
}

/* B is n x k (rows along k): four dot products at a time, 16 lanes each. */
__attribute__((target("avx512f"))) static void gemv_dots(void *ctx, int64_t j0, int64_t j1,
                                                        int worker)
{
    const gemv_job *g = ctx;
    (void)worker;
    int64_t k = g->k, k16 = k / 16 * 16;
    __mmask16 mt = (__mmask16)((1u << (k - k16)) - 1);
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *b0 = g->b + j * g->ldb, *b1 = b0 + g->ldb, *b2 = b1 + g->ldb,
                    *b3 = b2 + g->ldb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t i = 0; i < k16; i += 16) {
            __m512 xv = _mm512_loadu_ps(g->x + i);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(b0 + i), xv, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(b1 + i), xv, s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(b2 + i), xv, s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(b3 + i), xv, s3);
        }
        if (mt) {
            __m512 xv = _mm512_maskz_loadu_ps(mt, g->x + k16);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, b0 + k16), xv, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, b1 + k16), xv, s1);
            s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, b2 + k16), xv, s2);
            s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, b3 + k16), xv, s3);
        }
        g->y[j] = finish(g, _mm512_reduce_add_ps(s0), j);
        g->y[j + 1] = finish(g, _mm512_reduce_add_ps(s1), j + 1);
        g->y[j + 2] = finish(g, _mm512_reduce_add_ps(s2), j + 2);
        g->y[j + 3] = finish(g, _mm512_reduce_add_ps(s3), j + 3);
    }
    for (; j < j1; j++) {
        const float *br = g->b + j * g->ldb;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < k16; i += 16)
            s = _mm512_fmadd_ps(_mm512_loadu_ps(br + i), _mm512_loadu_ps(g->x + i), s);
        if (mt)
            s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, br + k16),
                                _mm512_maskz_loadu_ps(mt, g->x + k16), s);
        g->y[j] = finish(g, _mm512_reduce_add_ps(s), j);
    }
}

/* B is k x n (rows along the outputs): 16 outputs a vector, x[i] times row i added in
 * order of i. */
__attribute__((target("avx512f"))) static void gemv_axpy(void *ctx, int64_t j0, int64_t j1,
                                                        int worker)
{
    const gemv_job *g = ctx;
    (void)worker;
    for (int64_t j = j0; j < j1; j += 16) {
        __mmask16 m = (__mmask16)(j1 - j >= 16 ? 0xffff : (1u << (j1 - j)) - 1);
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < g->k; i++)
            s = _mm512_fmadd_ps(_mm512_set1_ps(g->x[i]),
                                _mm512_maskz_loadu_ps(m, g->b + i * g->ldb + j), s);
        s = _mm512_mul_ps(_mm512_set1_ps(g->alpha), s);
        if (g->beta != 0.0f)
            s = _mm512_fmadd_ps(_mm512_set1_ps(g->beta), _mm512_maskz_loadu_ps(m, g->y + j), s);
        _mm512_mask_storeu_ps(g->y + j, m, s);
    }
}
#endif

/* One row of C on hone's kernels; 0 when they do not apply (no AVX-512, x strided). */
static int sgemv_row(int trans_a, int trans_b, int64_t n, int64_t k, float alpha,
                     const float *a, const float *b, int64_t ldb, float beta, float *c)
{
#ifdef HAVE_AVX512_GEMV
    if (trans_a || !hone_rt_cpu_avx512f())
        return 0;
    gemv_job g = {trans_b, k, ldb, alpha, beta, b, a, c};
    hone_rt_pool *pool = n * k >= ((int64_t)1 << 18) ? hone_rt_shared_pool() : NULL;
    hone_rt_parallel_for(pool, n, 64, trans_b ? gemv_dots : gemv_axpy, &g);
    return 1;
#else
    (void)trans_a, (void)trans_b, (void)n, (void)k, (void)alpha, (void)a, (void)b, (void)ldb;
    (void)beta, (void)c;
    return 0;
#endif
}

void hone_rt_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc)
{
    if (m == 1 && n > 1 && k > 0) {
        /* one row (a classifier at batch 1): a matrix-vector product (top of the file) */
        if (sgemv_row(trans_a, trans_b, n, k, alpha, a, b, ldb, beta, c))
            return;
        if (beta == 0.0f) /* y is not read then, whatever it holds (NaN included) */
            memset(c, 0, sizeof(float) * (size_t)n);
        blasint incx = trans_a ? (blasint)lda : 1;
        if (trans_b) /* B is n x k: y = B a */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n, (blasint)k, alpha, b,
                        (blasint)ldb, a, incx, beta, c, 1);
        else /* B is k x n: y = B^T a */
            cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)k, (blasint)n, alpha, b,
                        (blasint)ldb, a, incx, beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

void hone_rt_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                   double *c, int64_t ldc)
{
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}
