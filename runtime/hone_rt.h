/*
 * hone runtime: the kernels compiled models and the interpreter call. Plain C
 * over raw buffers: this module never includes the IR or protobuf, and its
 * kernels never allocate (scratch comes from the caller's workspace).
 */
#ifndef HONE_RT_H
#define HONE_RT_H

#include <stddef.h>
#include <stdint.h>

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major (OpenBLAS sgemm). */
void hone_rt_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);
/* Same in double precision. */
void hone_rt_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                   double *c, int64_t ldc);

/* reduce.c: y[o, i] = scale * sum_r x[o, r, i] for x viewed as [outer, red, inner]. */
void hone_rt_sum_f32(const float *x, float *y, int64_t outer, int64_t red, int64_t inner,
                     double scale);

#endif
