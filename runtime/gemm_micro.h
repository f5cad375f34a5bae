/*
 * Internal to the runtime: the register-blocked GEMM micro-kernel of
 * sgemm_avx512.c, shared with the packed 2-D convolution (conv2d.c).
 *
 * Packed panels: A in MR-row panels (ap[kk * MR + r]), kc deep; B's kc rows of NR
 * columns are ldb floats apart (bp[kk * ldb + j]: ldb = NR for a packed panel, or a
 * row of a column matrix read in place; all NR columns are read). The kernel computes
 *   C[r][j] = sum_kk A[r][kk] B[kk][j]  (+ C[r][j] when accumulate)  (+ bias[r])
 * for r < mr, j < nr, with the k terms summed in order, so a result depends on
 * the packing and the KC slicing only, never on the thread or tile that ran it.
 * The AVX-512 kernel runs where the CPU has AVX-512F; elsewhere a portable C
 * kernel with the same contract.
 */
#ifndef HONE_GEMM_MICRO_H
#define HONE_GEMM_MICRO_H

#include <stdint.h>

#define HONE_GEMM_MR 8
#define HONE_GEMM_NR 32
#define HONE_GEMM_KC 256

/* True where the CPU has AVX-512F (x86-64 builds; checked once). */
int hone_rt_cpu_avx512f(void);

void hone_rt_gemm_micro(int64_t kc, const float *ap, const float *bp, int64_t ldb, int accumulate,
                        const float *bias, float *c, int64_t ldc, int64_t mr, int64_t nr);

#endif
