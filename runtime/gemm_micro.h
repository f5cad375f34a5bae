/*
 * Internal to the runtime: the register-blocked GEMM micro-kernel of
 * sgemm_avx512.c, shared with the packed 2-D convolution (conv2d.c).
 *
 * Packed panels: A in MR-row panels (ap[kk * MR + r]), kc deep; B's kc rows of NR
 * columns are ldb floats apart (bp[kk * ldb + j]: ldb = NR for a packed panel, or a
 * row of a column matrix read in place; all NR columns are read). The kernel computes
 *   C[r][j] = sum_kk A[r][kk] B[kk][j]  (+ C[r][j] when accumulate)  (+ bias[r])
 * for r < mr, j < nr (then epi, when not NULL), with the k terms summed in order, so a result depends on
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

/* What the last store of an output tile does after the bias (a fused conv epilogue):
 * v += z (when z is not NULL: the residual, at the tile's offset with C's row stride),
 * then v = v < lo ? lo : v and v = v > hi ? hi : v (-inf / +inf: no bound), the same
 * operations in the same order as the backend's separate epilogue loop. */
typedef struct hone_rt_micro_epi {
    const float *z;
    float lo, hi;
} hone_rt_micro_epi;

void hone_rt_gemm_micro(int64_t kc, const float *ap, const float *bp, int64_t ldb, int accumulate,
                        const float *bias, const hone_rt_micro_epi *epi, float *c, int64_t ldc,
                        int64_t mr, int64_t nr);

#endif
