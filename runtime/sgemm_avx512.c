/*
 * hone's own single-threaded AVX-512 SGEMM for the training kernels
 * (hone_rt_train_sgemm), row-major like hone_rt_sgemm, and its micro-kernel
 * (hone_rt_gemm_micro, gemm_micro.h), which the packed 2-D convolution of
 * compiled models and the interpreter (conv2d.c) runs too.
 *
 * Why: the system OpenBLAS runs whatever kernels OPENBLAS_CORETYPE names, and
 * this environment pins the AVX2 "Haswell" ones on CPUs with full-width
 * AVX-512 units; the conv GEMMs of training are about two thirds of a step.
 * The kernel pool already splits a step over threads, so each call here runs
 * on its calling thread.
 *
 * Layout (the BLIS loop nest): for each NC-column block of C, each KC-deep
 * slice packs op(B) into NR-column panels; for each MC-row block, op(A) is
 * packed into MR-row panels; an MR x NR micro-kernel keeps C's tile in 16
 * zmm registers over the KC slice (A broadcast from the packed panel, B two
 * vector loads per k). Panels are zero-padded, so tails cost no branches in
 * the micro-kernel; partial tiles go through a register-to-memory copy.
 * beta applies on the first KC slice only; with beta == 0 C is never read.
 *
 * A B^T with at most 64 columns (the convs' dW^T) takes a dot-product kernel
 * instead (dot_gemm), and the implicit-im2col GEMMs of stride-1 convolutions
 * (hone_rt_gemm_implicit, hone_rt_gemm_implicit_dw) read B through row offsets
 * into padded images.
 *
 * Where AVX-512 is missing (or for non-x86 builds) the call goes to
 * hone_rt_sgemm (OpenBLAS). HONE_TRAIN_GEMM=openblas forces that too.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#define MR HONE_GEMM_MR
#define NR HONE_GEMM_NR
#define KC HONE_GEMM_KC
#define MC 128
#define NC 4096

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512_GEMM 1
#endif

#ifdef HAVE_AVX512_GEMM
/* Per-thread packing buffers, freed when the thread exits. */
typedef struct pack_bufs {
    float *a, *b;
} pack_bufs;

static pthread_key_t pb_key;
static pthread_once_t pb_once = PTHREAD_ONCE_INIT;

static void pb_free(void *p)
{
    pack_bufs *pb = p;
    free(pb->a);
    free(pb->b);
    free(pb);
}

static void pb_init(void)
{
    if (pthread_key_create(&pb_key, pb_free) != 0)
        abort();
}

static pack_bufs *pack_buffers(void)
{
    pthread_once(&pb_once, pb_init);
    pack_bufs *pb = pthread_getspecific(pb_key);
    if (pb)
        return pb;
    pb = calloc(1, sizeof *pb);
    if (!pb)
        return NULL;
    pb->a = aligned_alloc(64, sizeof(float) * MC * KC);
    pb->b = aligned_alloc(64, sizeof(float) * KC * NC);
    if (!pb->a || !pb->b || pthread_setspecific(pb_key, pb) != 0) {
        pb_free(pb);
        return NULL;
    }
    return pb;
}

/* Masks of the first nr (at most NR) of the two 16-float halves of a row. */
static inline void nr_masks(int64_t nr, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    *m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
}

/* dst[kk][r] = src[r * ld + kk] for the n rows r < n of a panel `width` wide (zeros past n),
 * kk < kc: a panel of rows that run along k in memory. */
static void pack_across(const float *src, int64_t ld, int64_t n, int64_t width, int64_t kc,
                        float *dst)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t kk = 0; kk < kc; kk++)
            dst[kk * width + r] = src[r * ld + kk];
    for (int64_t r = n; r < width; r++)
        for (int64_t kk = 0; kk < kc; kk++)
            dst[kk * width + r] = 0.0f;
}

/* op(A)[i0 .. i0+mc) x [p0 .. p0+kc) into MR-row panels: ap[panel][kk][r]. */
__attribute__((target("avx512f,avx512vl"))) static void pack_a(int trans, const float *a,
                                                              int64_t lda, int64_t i0,
                                                              int64_t mc, int64_t p0,
                                                              int64_t kc, float *ap)
{
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = ap + ir * kc;
        if (trans) { /* op(A) rows are A's columns: MR contiguous floats per k */
            __mmask8 mk = (__mmask8)((1u << mr) - 1);
            for (int64_t kk = 0; kk < kc; kk++)
                _mm256_store_ps(dst + kk * MR,
                                _mm256_maskz_loadu_ps(mk, a + (p0 + kk) * lda + i0 + ir));
            continue;
        }
        pack_across(a + (i0 + ir) * lda + p0, lda, mr, MR, kc, dst);
    }
}

/* op(B)[p0 .. p0+kc) x [j0 .. j0+nc) into NR-column panels: bp[panel][kk][c]. */
__attribute__((target("avx512f"))) static void pack_b(int trans, const float *b, int64_t ldb,
                                                     int64_t p0, int64_t kc, int64_t j0,
                                                     int64_t nc, float *bp)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        float *dst = bp + jr * kc;
        if (!trans) {
            __mmask16 m0, m1;
            nr_masks(nr, &m0, &m1);
            for (int64_t kk = 0; kk < kc; kk++) {
                const float *src = b + (p0 + kk) * ldb + j0 + jr;
                _mm512_store_ps(dst + kk * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(dst + kk * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            pack_across(b + (j0 + jr) * ldb + p0, ldb, nr, NR, kc, dst);
        }
    }
}

/* v with the micro-kernel epilogue: + the residual lanes z (under mask m; none when z is
 * NULL), then the bounds with the bits of the scalar v < lo ? lo : v and v > hi ? hi : v,
 * NaN and signed zeros included: MAXPS(a, b) is a > b ? a : b and MINPS(a, b) a < b ? a : b
 * (one instruction each; a compare and a blend before). */
__attribute__((target("avx512f"), always_inline)) static inline __m512
epi_vec(__m512 v, const hone_rt_micro_epi *epi, const float *z, __mmask16 m)
{
    if (z)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, z));
    __m512 lo = _mm512_set1_ps(epi->lo), hi = _mm512_set1_ps(epi->hi);
    v = _mm512_max_ps(lo, v); /* v < lo ? lo : v */
    return _mm512_min_ps(hi, v);
}

/* Floats ahead of the current k step of A that the micro-kernels prefetch: A (the packed
 * weights of compiled convs) is read once per run, mostly from memory (ResNet-50's 100 MB
 * of weights do not stay in a 32 MB L3), as one sequential stream across panels; 4 KB
 * ahead is about 128 k steps. Measured on compiled models, one thread: ResNet-50 about
 * 40 -> 36 ms, SqueezeNet 3.8 -> 3.2 ms (1 KB ahead: less; 2 KB and 4 KB: the same). */
#define A_PREFETCH 1024

/* C[0..mr) x [0..nr) = alpha * Ap Bp + beta * C (C not read when beta == 0), plus
 * bias[r] on row r when bias is not NULL; B's k rows are ldb floats apart (NR when
 * packed), and all NR columns of each are read. */
__attribute__((target("avx512f"), optimize("O3", "unroll-loops"))) static void micro(int64_t kc, const float *restrict ap,
                                                    const float *restrict bp, int64_t ldb, float alpha,
                                                    float beta, const float *bias,
                                                    const hone_rt_micro_epi *epi, float *c,
                                                    int64_t ldc, int64_t mr, int64_t nr)
{
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(bp + kk * ldb), b1 = _mm512_loadu_ps(bp + kk * ldb + 16);
        _mm_prefetch((const char *)(ap + kk * MR + A_PREFETCH), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(ap[kk * MR + r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m0, m1;
    nr_masks(nr, &m0, &m1);
    /* unrolled, so acc[r] stays in registers (a loop with a break kept acc on the stack:
     * spills and reloads of 16 registers per call, a tenth of a 16-deep call's time) */
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (r >= mr)
            continue;
        float *cr = c + r * ldc;
        __m512 v0 = _mm512_mul_ps(va, acc[r][0]), v1 = _mm512_mul_ps(va, acc[r][1]);
        if (beta != 0.0f) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        if (bias) {
            __m512 br = _mm512_set1_ps(bias[r]);
            v0 = _mm512_add_ps(v0, br);
            v1 = _mm512_add_ps(v1, br);
        }
        if (epi) {
            v0 = epi_vec(v0, epi, epi->z ? epi->z + r * ldc : NULL, m0);
            v1 = epi_vec(v1, epi, epi->z ? epi->z + r * ldc + 16 : NULL, m1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

/* micro for nr <= 16 (a partial last panel): one 16-lane half, half the FMAs; the same
 * sums in the same order as micro's first half (alpha = 1), so results do not depend on
 * which of the two ran. */
__attribute__((target("avx512f"), optimize("O3", "unroll-loops"))) static void
micro16(int64_t kc, const float *restrict ap, const float *restrict bp, int64_t ldb, float beta,
        const float *bias, const hone_rt_micro_epi *epi, float *c, int64_t ldc, int64_t mr,
        int64_t nr)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    for (int64_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(bp + kk * ldb);
        const float *a = ap + kk * MR;
        _mm_prefetch((const char *)(a + A_PREFETCH), _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), b0, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), b0, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), b0, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), b0, a3);
        a4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), b0, a4);
        a5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), b0, a5);
        a6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6]), b0, a6);
        a7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7]), b0, a7);
    }
    __m512 acc[MR] = {a0, a1, a2, a3, a4, a5, a6, a7}, vb = _mm512_set1_ps(beta);
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) { /* unrolled: acc[r] in registers, as in micro */
        if (r >= mr)
            continue;
        float *cr = c + r * ldc;
        __m512 v = acc[r];
        if (beta != 0.0f)
            v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v);
        if (bias)
            v = _mm512_add_ps(v, _mm512_set1_ps(bias[r]));
        if (epi)
            v = epi_vec(v, epi, epi->z ? epi->z + r * ldc : NULL, m0);
        _mm512_mask_storeu_ps(cr, m0, v);
    }
}

/* ---- C = alpha A B^T + beta C with few columns: dot products along k ----
 * For dW^T = col dY^T of a conv with few output channels (n = 16-48), packing would
 * cost as much as the product: each of A's m*k elements meets only n columns. Here
 * both operands are read in place, along k: a DOT_MI x DOT_NJ tile of C keeps one
 * 16-lane partial sum per element (24 zmm registers), each k step loading DOT_MI rows
 * of A and DOT_NJ rows of B for DOT_MI * DOT_NJ FMAs, and the lanes are added once at
 * the end. k is cut into DOT_KC slices so that the B rows of a slice stay in L1 while
 * every row tile passes over them; the slices' sums are added in order (the result
 * depends on k's slicing only). */
#define DOT_MI 3
#define DOT_NJ 8
#define DOT_KC 1024
/* up to this many columns (the 8x32 packed kernel was as fast at m = 576, n = 64, and
 * slower at n = 16-32 or m = 32) */
#define DOT_MAX_N 64

/* One k step of a dot-product tile: acc[i][j] += (row i of A) * (row j of B) over the 16
 * lanes from q (the lanes of m; m == 0xffff, a constant where it is inlined, loads plainly).
 * A's rows start at ar[i], B's at b + j * ldb. Each B vector is loaded once, not folded into
 * each of the mi FMAs (the asm keeps it in a register). */
__attribute__((target("avx512f"), always_inline)) static inline void
dot_step(const int mi, const int nj, __m512 (*acc)[DOT_NJ], const float *const *ar,
         const float *b, int64_t ldb, int64_t q, __mmask16 m)
{
    __m512 av[DOT_MI];
#pragma GCC unroll 8
    for (int i = 0; i < mi; i++)
        av[i] = m == 0xffff ? _mm512_loadu_ps(ar[i] + q) : _mm512_maskz_loadu_ps(m, ar[i] + q);
#pragma GCC unroll 8
    for (int j = 0; j < nj; j++) {
        __m512 bv = m == 0xffff ? _mm512_loadu_ps(b + j * ldb + q)
                                : _mm512_maskz_loadu_ps(m, b + j * ldb + q);
        __asm__("" : "+v"(bv));
#pragma GCC unroll 8
        for (int i = 0; i < mi; i++)
            acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
}

/* s[i * nj + j] = the lanes of acc[i][j] added (after zeroing: dot_zero). */
__attribute__((target("avx512f"), always_inline)) static inline void
dot_sums(const int mi, const int nj, __m512 (*acc)[DOT_NJ], float *s)
{
#pragma GCC unroll 8
    for (int i = 0; i < mi; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nj; j++)
            s[i * nj + j] = _mm512_reduce_add_ps(acc[i][j]);
}

__attribute__((target("avx512f"), always_inline)) static inline void
dot_zero(const int mi, const int nj, __m512 (*acc)[DOT_NJ])
{
#pragma GCC unroll 8
    for (int i = 0; i < mi; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nj; j++)
            acc[i][j] = _mm512_setzero_ps();
}

/* s[i * nj + j] = sum over kk < k of a[i * lda + kk] * b[j * ldb + kk], for i < mi, j < nj
 * (mi <= DOT_MI and nj <= DOT_NJ are constants where it is inlined). */
__attribute__((target("avx512f"), always_inline)) static inline void
dot_block(const int mi, const int nj, int64_t k, const float *a, int64_t lda, const float *b,
          int64_t ldb, float *s)
{
    __m512 acc[DOT_MI][DOT_NJ];
    const float *ar[DOT_MI];
    for (int i = 0; i < mi; i++)
        ar[i] = a + i * lda;
    dot_zero(mi, nj, acc);
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16)
        dot_step(mi, nj, acc, ar, b, ldb, kk, 0xffff);
    if (kk < k)
        dot_step(mi, nj, acc, ar, b, ldb, kk, (__mmask16)((1u << (k - kk)) - 1));
    dot_sums(mi, nj, acc, s);
}

__attribute__((target("avx512f"), optimize("O3"))) static void
dot_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
         const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    float s[DOT_MI * DOT_NJ];
    for (int64_t p0 = 0; p0 < k; p0 += DOT_KC) {
        int64_t kc = k - p0 < DOT_KC ? k - p0 : DOT_KC;
        float be = p0 == 0 ? beta : 1.0f;
        for (int64_t i0 = 0; i0 < m; i0 += DOT_MI) {
            int mi = m - i0 < DOT_MI ? (int)(m - i0) : DOT_MI;
            for (int64_t j0 = 0; j0 < n; j0 += DOT_NJ) {
                int nj = n - j0 < DOT_NJ ? (int)(n - j0) : DOT_NJ;
                const float *ai = a + i0 * lda + p0, *bj = b + j0 * ldb + p0;
                if (mi == DOT_MI && nj == DOT_NJ)
                    dot_block(DOT_MI, DOT_NJ, kc, ai, lda, bj, ldb, s);
                else
                    for (int i = 0; i < mi; i++)
                        for (int j = 0; j < nj; j++)
                            dot_block(1, 1, kc, ai + i * lda, lda, bj + j * ldb, ldb,
                                      s + i * nj + j);
                for (int i = 0; i < mi; i++)
                    for (int j = 0; j < nj; j++) {
                        float *cij = c + (i0 + i) * ldc + j0 + j;
                        float v = alpha * s[i * nj + j];
                        *cij = be == 0.0f ? v : v + be * *cij;
                    }
            }
        }
    }
}

static int avx512_ok(void);

/* ---- implicit im2col: B's rows read from shifted images ----
 * For a stride-1 2-D convolution over zero-padded images (each image `img` floats,
 * planes Hp x Wp), the column matrix row r = (channel, ky, kx) at output position
 * q = oy * Wp + ox is x[q + roff[r]], roff[r] = channel * Hp * Wp + ky * dil * Wp + kx *
 * dil: one shifted copy of the image, so B is read in place through roff, without an
 * im2col. Columns ox >= the output width are junk (computed, never used); each image's
 * columns are padded to ncol16, a multiple of 16, so every 16-lane vector of B lies in
 * one image (its address: the image + its first column + roff[kk]). */

/* micro with B's two 16-column halves at b0 + roff[kk] and b1 + roff[kk]. */
__attribute__((target("avx512f"), optimize("O3", "unroll-loops"))) static void
micro_rows(int64_t kc, const float *restrict ap, const int32_t *roff, const float *b0p,
           const float *b1p, float beta, float *c, int64_t ldc, int64_t mr, int64_t nr)
{
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(b0p + roff[kk]), b1 = _mm512_loadu_ps(b1p + roff[kk]);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(ap[kk * MR + r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    __mmask16 m0, m1;
    nr_masks(nr, &m0, &m1);
    for (int r = 0; r < MR && r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (beta != 0.0f) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

/* First float of B's 16-column vector v: image v / per, column (v % per) * 16. */
static inline const float *implicit_vec(const float *x, int64_t img, int64_t per, int64_t v)
{
    return x + v / per * img + v % per * 16;
}

int hone_rt_gemm_implicit(int64_t m, int64_t k, const float *a, int64_t lda, const float *x,
                          int64_t img, const int32_t *roff, int64_t nimg, int64_t ncol16,
                          float *c)
{
    if (!avx512_ok() || ncol16 % 16)
        return 0;
    pack_bufs *pb = pack_buffers();
    if (!pb)
        return 0;
    int64_t n = nimg * ncol16, per = ncol16 / 16;
    for (int64_t pc = 0; pc < k; pc += KC) {
        int64_t kc = k - pc < KC ? k - pc : KC;
        for (int64_t ic = 0; ic < m; ic += MC) {
            int64_t mc = m - ic < MC ? m - ic : MC;
            pack_a(0, a, lda, ic, mc, pc, kc, pb->a);
            for (int64_t jr = 0; jr < n; jr += NR) {
                int64_t nr = n - jr < NR ? n - jr : NR, v = jr / 16;
                const float *b0 = implicit_vec(x, img, per, v);
                const float *b1 = nr > 16 ? implicit_vec(x, img, per, v + 1) : b0;
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    int64_t mr = mc - ir < MR ? mc - ir : MR;
                    micro_rows(kc, pb->a + ir * kc, roff + pc, b0, b1, pc == 0 ? 0.0f : 1.0f,
                               c + (ic + ir) * n + jr, n, mr, nr);
                }
            }
        }
    }
    return 1;
}

/* dot_block's product for dW: s[i * nj + j] = sum over images b < nimg and q < ncol16 of
 * x[b * img + roff[i] + q] * dy[j * lddy + b * ncol16 + q]. */
__attribute__((target("avx512f"), always_inline)) static inline void
dot_block_rows(const int mi, const int nj, const float *x, int64_t img, const int32_t *roff,
               int64_t nimg, int64_t ncol16, const float *dy, int64_t lddy, float *s)
{
    __m512 acc[DOT_MI][DOT_NJ];
    const float *ar[DOT_MI];
    dot_zero(mi, nj, acc);
    for (int64_t b = 0; b < nimg; b++) {
        for (int i = 0; i < mi; i++)
            ar[i] = x + b * img + roff[i];
        for (int64_t q = 0; q < ncol16; q += 16)
            dot_step(mi, nj, acc, ar, dy + b * ncol16, lddy, q, 0xffff);
    }
    dot_sums(mi, nj, acc, s);
}

__attribute__((target("avx512f"), optimize("O3"))) static void
dot_rows(int64_t m, int64_t n, const float *x, int64_t img, const int32_t *roff, int64_t nimg,
         int64_t ncol16, const float *dy, int64_t lddy, float *c, int64_t ldc)
{
    float s[DOT_MI * DOT_NJ];
    for (int64_t i0 = 0; i0 < m; i0 += DOT_MI) {
        int mi = m - i0 < DOT_MI ? (int)(m - i0) : DOT_MI;
        for (int64_t j0 = 0; j0 < n; j0 += DOT_NJ) {
            int nj = n - j0 < DOT_NJ ? (int)(n - j0) : DOT_NJ;
            if (mi == DOT_MI && nj == DOT_NJ)
                dot_block_rows(DOT_MI, DOT_NJ, x, img, roff + i0, nimg, ncol16, dy + j0 * lddy,
                               lddy, s);
            else
                for (int i = 0; i < mi; i++)
                    for (int j = 0; j < nj; j++)
                        dot_block_rows(1, 1, x, img, roff + i0 + i, nimg, ncol16,
                                       dy + (j0 + j) * lddy, lddy, s + i * nj + j);
            for (int i = 0; i < mi; i++)
                for (int j = 0; j < nj; j++)
                    c[(i0 + i) * ldc + j0 + j] = s[i * nj + j];
        }
    }
}

int hone_rt_gemm_implicit_dw(int64_t m, int64_t n, const float *x, int64_t img,
                             const int32_t *roff, int64_t nimg, int64_t ncol16, const float *dy,
                             int64_t lddy, float *c, int64_t ldc)
{
    if (!avx512_ok() || ncol16 % 16)
        return 0;
    dot_rows(m, n, x, img, roff, nimg, ncol16, dy, lddy, c, ldc);
    return 1;
}

static pthread_once_t ok_once = PTHREAD_ONCE_INIT;
static int ok_avx512;

static void ok_init(void)
{
    const char *want = getenv("HONE_TRAIN_GEMM");
    __builtin_cpu_init();
    ok_avx512 = __builtin_cpu_supports("avx512f") && !(want && strcmp(want, "openblas") == 0);
}

static int avx512_ok(void)
{
    pthread_once(&ok_once, ok_init);
    return ok_avx512;
}

static int sgemm_avx512(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc)
{
    pack_bufs *pb = pack_buffers();
    if (!pb)
        return 0;
    for (int64_t jc = 0; jc < n; jc += NC) {
        int64_t nc = n - jc < NC ? n - jc : NC;
        for (int64_t pc = 0; pc < k; pc += KC) {
            int64_t kc = k - pc < KC ? k - pc : KC;
            float be = pc == 0 ? beta : 1.0f;
            /* op(B) = B: full panels are read in place (their k rows ldb apart, as the
             * inference conv kernel does), only the partial last panel is packed */
            int64_t full = trans_b ? 0 : nc / NR * NR;
            pack_b(trans_b, b, ldb, pc, kc, jc + full, nc - full, pb->b + full * kc);
            for (int64_t ic = 0; ic < m; ic += MC) {
                int64_t mc = m - ic < MC ? m - ic : MC;
                pack_a(trans_a, a, lda, ic, mc, pc, kc, pb->a);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = jr < full ? b + pc * ldb + jc + jr : pb->b + jr * kc;
                    int64_t lb = jr < full ? ldb : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        micro(kc, pb->a + ir * kc, bp, lb, alpha, be, NULL, NULL,
                              c + (ic + ir) * ldc + jc + jr, ldc, mr, nr);
                    }
                }
            }
        }
    }
    return 1;
}
#endif

void hone_rt_train_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                         float *c, int64_t ldc)
{
#ifdef HAVE_AVX512_GEMM
    /* A B^T with few columns (dW^T = col dY^T of a conv with few output channels): the
     * dot-product kernel, 133-155 GFLOP/s at n = 16-64 where OpenBLAS's Haswell kernels
     * ran 77-117 and the packed kernel 47-99 (the NR-wide panels mostly padding, the
     * packing a strided gather). Other B^T shapes with fewer than 64 columns: OpenBLAS. */
    if (m > 0 && n > 0 && k > 0 && !trans_a && trans_b && n <= DOT_MAX_N && avx512_ok()) {
        dot_gemm(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (m > 0 && n > 0 && k > 0 && !(trans_b && n < 64) && avx512_ok() &&
        sgemm_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        return;
#endif
    hone_rt_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char *hone_rt_train_gemm_name(void)
{
#ifdef HAVE_AVX512_GEMM
    if (avx512_ok())
        return "hone-avx512";
#endif
    return "openblas";
}

#ifdef HAVE_AVX512_GEMM
/* 1 / 0 once known, -1 before: read without pthread_once on every call (the conv kernels
 * ask once per micro-kernel call); racing first callers store the same value. */
static int cpu_avx512 = -1;
#endif

int hone_rt_cpu_avx512f(void)
{
#ifdef HAVE_AVX512_GEMM
    int v = __atomic_load_n(&cpu_avx512, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&cpu_avx512, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

/* The portable kernel: the AVX-512 one's contract in plain C (k terms in order). */
static void micro_c(int64_t kc, const float *ap, const float *bp, int64_t ldb, int accumulate,
                    const float *bias, const hone_rt_micro_epi *epi, float *c, int64_t ldc,
                    int64_t mr, int64_t nr)
{
    float acc[HONE_GEMM_MR][HONE_GEMM_NR] = {{0}};
    for (int64_t kk = 0; kk < kc; kk++)
        for (int r = 0; r < HONE_GEMM_MR; r++)
            for (int j = 0; j < HONE_GEMM_NR; j++)
                acc[r][j] += ap[kk * HONE_GEMM_MR + r] * bp[kk * ldb + j];
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            float v = acc[r][j];
            if (accumulate)
                v += c[r * ldc + j];
            if (bias)
                v += bias[r];
            if (epi) {
                if (epi->z)
                    v += epi->z[r * ldc + j];
                v = v < epi->lo ? epi->lo : v;
                v = v > epi->hi ? epi->hi : v;
            }
            c[r * ldc + j] = v;
        }
}

void hone_rt_gemm_micro(int64_t kc, const float *ap, const float *bp, int64_t ldb, int accumulate,
                        const float *bias, const hone_rt_micro_epi *epi, float *c, int64_t ldc,
                        int64_t mr, int64_t nr)
{
#ifdef HAVE_AVX512_GEMM
    if (hone_rt_cpu_avx512f()) {
        if (nr <= 16) /* a partial last panel of up to 16 columns */
            micro16(kc, ap, bp, ldb, accumulate ? 1.0f : 0.0f, bias, epi, c, ldc, mr, nr);
        else
            micro(kc, ap, bp, ldb, 1.0f, accumulate ? 1.0f : 0.0f, bias, epi, c, ldc, mr, nr);
        return;
    }
#endif
    micro_c(kc, ap, bp, ldb, accumulate, bias, epi, c, ldc, mr, nr);
}

#ifndef HAVE_AVX512_GEMM
int hone_rt_gemm_implicit(int64_t m, int64_t k, const float *a, int64_t lda, const float *x,
                          int64_t img, const int32_t *roff, int64_t nimg, int64_t ncol16,
                          float *c)
{
    (void)m, (void)k, (void)a, (void)lda, (void)x, (void)img, (void)roff, (void)nimg;
    (void)ncol16, (void)c;
    return 0;
}

int hone_rt_gemm_implicit_dw(int64_t m, int64_t n, const float *x, int64_t img,
                             const int32_t *roff, int64_t nimg, int64_t ncol16, const float *dy,
                             int64_t lddy, float *c, int64_t ldc)
{
    (void)m, (void)n, (void)x, (void)img, (void)roff, (void)nimg, (void)ncol16, (void)dy;
    (void)lddy, (void)c, (void)ldc;
    return 0;
}
#endif
