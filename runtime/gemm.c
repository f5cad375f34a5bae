/*
 * GEMM entry points over OpenBLAS (row-major CBLAS).
 */
#include <cblas.h>
#include <string.h>

#include "hone_rt.h"

void hone_rt_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc)
{
    if (m == 1 && n > 1 && k > 0) {
        /* one row (a classifier at batch 1): GEMV reads B once, where sgemm first packs
         * all of it (MobileNetV2's 1280 x 1000 classifier: 3% of the model's time) */
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
