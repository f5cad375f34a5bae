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

/* ===================== reduce.c ===================== */

/* reduce.c: y[o, i] = scale * sum_r x[o, r, i] for x viewed as [outer, red, inner]. */
void hone_rt_sum_f32(const float *x, float *y, int64_t outer, int64_t red, int64_t inner,
                     double scale);

/* ===================== conv.c: convolution by im2col + GEMM ===================== */

#define HONE_RT_MAX_SPATIAL 6

/* Sliding-window geometry over an image with nsp spatial dims, shared by
 * convolution, transposed convolution and pooling. Window position o of dim d
 * covers image coordinates o*stride[d] - pad[d] + j*dil[d] for j in [0, k[d]). */
typedef struct hone_rt_window {
    int nsp;
    int64_t in[HONE_RT_MAX_SPATIAL];      /* image extent */
    int64_t out[HONE_RT_MAX_SPATIAL];     /* window positions */
    int64_t k[HONE_RT_MAX_SPATIAL];
    int64_t stride[HONE_RT_MAX_SPATIAL];
    int64_t dil[HONE_RT_MAX_SPATIAL];
    int64_t pad[HONE_RT_MAX_SPATIAL];     /* before; negative crops (ConvTranspose) */
    int64_t pad_end[HONE_RT_MAX_SPATIAL]; /* after; counted by AveragePool count_include_pad */
} hone_rt_window;

int64_t hone_rt_window_in_numel(const hone_rt_window *w);
int64_t hone_rt_window_out_numel(const hone_rt_window *w);
int64_t hone_rt_window_k_numel(const hone_rt_window *w);

/* col[c*K + kk][p - p0] = x[c][image coord of kernel offset kk at position p] (0 in the
 * padding), for window positions p in [p0, p1); K = k_numel. */
void hone_rt_im2col(const hone_rt_window *w, int64_t c, const float *x, int64_t p0, int64_t p1,
                    float *col);
/* The adjoint of im2col: adds every col entry into its image element of x. */
void hone_rt_col2im(const hone_rt_window *w, int64_t c, const float *col, int64_t p0, int64_t p1,
                    float *x);

/* Floats of scratch hone_rt_conv needs for c input and m output channels in `groups`
 * groups. */
size_t hone_rt_conv_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups);
/* Conv: x[n,c,in...] * wt[m,c/groups,k...] (+ bias[m], may be NULL) -> y[n,m,out...]. */
void hone_rt_conv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                  const float *x, const float *wt, const float *bias, float *y, float *scratch);
/* Floats of scratch hone_rt_conv_transpose needs for m output channels. */
size_t hone_rt_conv_transpose_scratch(const hone_rt_window *w, int64_t m, int64_t groups);
/* ConvTranspose: x[n,c,out...] and wt[c,m/groups,k...] (+ bias[m]) -> y[n,m,in...]. The
 * window's image is the output y and its positions are the input x. */
void hone_rt_conv_transpose(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                            int64_t groups, const float *x, const float *wt, const float *bias,
                            float *y, float *scratch);

/* ===================== conv_tiled.c: convolution with a caller-sized tile ===================== */

/* Floats of scratch hone_rt_conv_tiled needs for tiles of `cols` window positions. */
size_t hone_rt_conv_tile_scratch(const hone_rt_window *w, int64_t c, int64_t groups, int64_t cols);
/* hone_rt_conv with im2col tiles of at most `cols` window positions. */
void hone_rt_conv_tiled(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wt, const float *bias, float *y,
                        float *scratch, int64_t cols);

/* ===================== conv2d.c: 2-D convolution on packed weights ===================== */

/* Floats of conv2d-packed weights: groups * round_up(m / groups, 8) * rows, where rows =
 * c / groups * KH * KW. */
int64_t hone_rt_conv2d_packed_numel(const hone_rt_window *w, int64_t m, int64_t groups,
                                    int64_t rows);
/* Packs wt[m, rows] (per group) into the GEMM micro-kernel's 8-channel panels, KC-deep
 * slices, wp (w: the window, for the layout's sake; today every window packs alike). */
void hone_rt_conv2d_pack(const hone_rt_window *w, int64_t m, int64_t groups, int64_t rows,
                         const float *wt, float *wp);
/* Floats of scratch hone_rt_conv2d needs (a panel buffer per pool worker). */
size_t hone_rt_conv2d_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups);
/* 2-D Conv x[n,c,H,W] * packed weights (+ bias[m] or NULL) -> y[n,m,OH,OW]; threads from
 * hone_rt_shared_pool for large convs; results independent of the thread count. */
void hone_rt_conv2d(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                    const float *x, const float *wp, const float *bias, float *y, float *scratch);
/* hone_rt_conv2d with a fused epilogue on every output: y = conv + bias, then y += z (the
 * residual, y's shape; NULL: none), then y = y < lo ? lo : y, y = y > hi ? hi : y
 * (-INFINITY / INFINITY for no bound): FusedConv's Relu and Clip, written once instead
 * of a second pass over y. */
void hone_rt_conv2d_epi(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wp, const float *bias, const float *z,
                        float lo, float hi, float *y, float *scratch);
/* hone_rt_conv2d (has_epi 0) or _epi (1) for compiled models, whose scratch comes from
 * hone_rt_conv2d_batched_scratch with the batch size: several images of a batch then
 * share one im2col and one GEMM where one image's plane is a small tile. */
size_t hone_rt_conv2d_batched_scratch(const hone_rt_window *w, int64_t n, int64_t c,
                                      int64_t m, int64_t groups);
void hone_rt_conv2d_batched(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                            int64_t groups, const float *x, const float *wp, const float *bias,
                            const float *z, float lo, float hi, int has_epi, float *y,
                            float *scratch);
/* Same from unpacked weights wt[m, c/groups, KH, KW], packed into the scratch first. */
size_t hone_rt_conv2d_unpacked_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                       int64_t groups);
void hone_rt_conv2d_unpacked(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                             int64_t groups, const float *x, const float *wt, const float *bias,
                             float *y, float *scratch);

/* ===================== winograd.c: Winograd F(4x4, 3x3) convolution ===================== */

/* True for the convs hone_rt_winograd_conv runs: 3x3, stride 1, dilation 1, one group,
 * padding of at least 0, at least 16 input and output channels; F(4x4, 3x3) on planes of
 * at least 12 x 12 outputs while its transformed weights stay under 4 MB, else F(2x2,
 * 3x3) on planes of at least 7 x 7 while its stay under 20 MB. */
int hone_rt_winograd_fits(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups);
/* Floats of the transformed, packed weights: points * round_up(m, 8) * c. */
int64_t hone_rt_winograd_packed_numel(const hone_rt_window *w, int64_t c, int64_t m);
/* wt[m, c, 3, 3] -> G wt G^T for each transform point (36 in F(4x4, 3x3), 16 in
 * F(2x2, 3x3), chosen as hone_rt_winograd_fits says), packed into the GEMM micro-kernel's
 * 8-row panels (KC-deep slices), blocks of 16 output channels each holding all points:
 * up. */
void hone_rt_winograd_pack(const hone_rt_window *w, int64_t c, int64_t m, const float *wt,
                           float *up);
/* Floats of scratch hone_rt_winograd_conv needs for a batch of n images (up to a bound,
 * the images of a batch share one pass, their tiles side by side). */
size_t hone_rt_winograd_scratch(const hone_rt_window *w, int64_t n, int64_t c, int64_t m);
/* x[n,c,H,W] * the packed weights up (+ bias[m] or NULL) -> y[n,m,OH,OW], then y += z
 * (y's shape; NULL: none) and the bounds lo / hi, as hone_rt_conv2d_epi; threads from
 * hone_rt_shared_pool; results independent of the thread count. */
void hone_rt_winograd_conv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                           const float *x, const float *up, const float *bias, const float *z,
                           float lo, float hi, float *y, float *scratch);

/* ===================== depthwise.c: direct depthwise convolution ===================== */

/* Conv with group == c == m over 2 spatial dims: x[n,c,h,w] * wt[c,1,kh,kw]
 * (+ bias[c], may be NULL) -> y[n,c,oh,ow]; no scratch. */
void hone_rt_depthwise_conv(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                            const float *wt, const float *bias, float *y);
/* hone_rt_depthwise_conv, then on each plane while it is in cache y += z (z of y's shape;
 * NULL: none) and the bounds lo / hi, as hone_rt_conv2d_epi. */
void hone_rt_depthwise_conv_epi(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                                const float *wt, const float *bias, const float *z, float lo,
                                float hi, float *y);

/* ===================== pool.c: pooling over windows ===================== */

/* Max over each window of each of `planes` images. idx (may be NULL) receives the
 * flat index of the max in the whole tensor, spatial part row-major or, with
 * col_major, column-major. */
void hone_rt_maxpool(const hone_rt_window *w, int64_t planes, const float *x, float *y,
                     int64_t *idx, int col_major);
/* Mean over each window; the divisor counts padding (up to pad_end) when
 * count_include_pad, else only image elements. */
void hone_rt_avgpool(const hone_rt_window *w, int64_t planes, const float *x, float *y,
                     int count_include_pad);
/* (sum |x|^p)^(1/p) over each window. */
void hone_rt_lppool(const hone_rt_window *w, int64_t planes, const float *x, float *y, float p);

typedef enum { HONE_RT_GPOOL_AVG, HONE_RT_GPOOL_MAX, HONE_RT_GPOOL_LP } hone_rt_gpool;
/* Reduces each of `planes` contiguous runs of len elements to one value. */
void hone_rt_global_pool(hone_rt_gpool kind, int64_t planes, int64_t len, const float *x,
                         float *y, float p);

/* ===================== norm.c: normalisations ===================== */

/* Mean and population variance of each of rows contiguous runs of len elements. */
void hone_rt_row_moments(int64_t rows, int64_t len, const float *x, float *mean, float *var);
/* Mean and population variance of each channel of x[n,c,plane] over n and plane. */
void hone_rt_channel_moments(int64_t n, int64_t c, int64_t plane, const float *x, float *mean,
                             float *var);
/* y = scale[c] * (x - mean[c]) / sqrt(var[c] + eps) + bias[c] over x[n,c,plane]. */
void hone_rt_batchnorm(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                       const float *bias, const float *mean, const float *var, float eps,
                       float *y);
/* Normalises each row of x[rows,len]: y = (x - mean) * invstd * scale[j] + bias[j]
 * (bias may be NULL); mean and invstd (may be NULL) receive the row statistics. */
void hone_rt_layernorm(int64_t rows, int64_t len, const float *x, const float *scale,
                       const float *bias, float eps, float *y, float *mean, float *invstd);
/* Local response normalisation across channels of x[n,c,plane]. */
void hone_rt_lrn(int64_t n, int64_t c, int64_t plane, const float *x, float *y, int64_t size,
                 float alpha, float beta, float bias);

/* ===================== softmax.c: reductions along one axis ===================== */

/* The axis has len elements at stride inner; outer blocks of len*inner elements. */
typedef enum { HONE_RT_SOFTMAX, HONE_RT_LOGSOFTMAX, HONE_RT_HARDMAX } hone_rt_softmax_kind;
void hone_rt_softmax(hone_rt_softmax_kind kind, int64_t outer, int64_t len, int64_t inner,
                     const float *x, float *y);
/* y = x / (L1 or L2 norm along the axis), p in {1, 2}. */
void hone_rt_lpnorm(int64_t outer, int64_t len, int64_t inner, const float *x, float *y, int p);

/* ===================== threadpool.c: a fixed pool and parallel-for ===================== */

#define HONE_RT_POOL_MAX_THREADS 256

/* Opaque: size-1 spawned workers plus the calling thread. */
typedef struct hone_rt_pool hone_rt_pool;
/* Called on the half-open chunk [begin, end) by worker `worker` in [0, pool size). */
typedef void (*hone_rt_range_fn)(void *ctx, int64_t begin, int64_t end, int worker);

/* A pool of n_threads workers (the caller counts as one); NULL when n_threads is
 * outside [1, HONE_RT_POOL_MAX_THREADS] or threads cannot be started. */
hone_rt_pool *hone_rt_pool_create(int n_threads);
/* Workers poll up to `polls` times (a pause each) for the next job, and the caller for
 * the workers, before sleeping: quick back-to-back calls at the cost of busy CPU. */
void hone_rt_pool_set_spin(hone_rt_pool *pool, int polls);
/* The polls set by hone_rt_pool_set_spin (0 for a NULL pool). */
int hone_rt_pool_spin(const hone_rt_pool *pool);
/* Stops and joins the workers; NULL is a no-op. Not while a parallel-for runs. */
void hone_rt_pool_destroy(hone_rt_pool *pool);
/* Workers including the caller; 1 for a NULL pool. */
int hone_rt_pool_size(const hone_rt_pool *pool);
/* Calls fn over disjoint chunks covering [0, n), each at least grain long (bar the
 * last), and returns when all are done. Never allocates. Runs inline as one chunk
 * when pool is NULL, n <= grain, or when called from inside one of pool's chunks. */
void hone_rt_parallel_for(hone_rt_pool *pool, int64_t n, int64_t grain, hone_rt_range_fn fn,
                          void *ctx);
/* The pool of the compiled models' kernels (conv2d, Adder2d), created on first use with
 * HONE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the online CPUs (at most 16)
 * workers, like OpenBLAS's own pool; NULL when that is one. */
hone_rt_pool *hone_rt_shared_pool(void);
/* Called by compiled models at the start of every run: the first call lets the shared
 * pool's workers poll for the next job before sleeping (2000 pauses; HONE_SPIN=N sets
 * N, 0 turns it off), as a compiled model issues its parallel kernels back to back. */
void hone_rt_compiled_enter(void);

/* prof.c: per-node time of models compiled with --profile. The generated run function
 * calls hone_rt_prof_add(hone_rt_prof_now() taken before the node, its schedule step,
 * its name, its op) after each node. The table is printed at exit to stderr, or to the
 * file HONE_PROFILE names; hone_rt_prof_report prints it now (path NULL: the same
 * place) and clears it, hone_rt_prof_reset clears it (after warm-up runs, say). */
int64_t hone_rt_prof_now(void);
void hone_rt_prof_add(int64_t t0, int32_t step, const char *name, const char *op);
void hone_rt_prof_report(const char *path);
void hone_rt_prof_reset(void);

/* ===================== *_grad.c: backward kernels of the training engine ===================== */

/* act_grad.c: dx = dy * f'(.) of an activation or unary math op. */
typedef enum {
    HONE_RT_ACT_RELU, HONE_RT_ACT_LEAKY_RELU, HONE_RT_ACT_SIGMOID, HONE_RT_ACT_TANH,
    HONE_RT_ACT_CLIP, HONE_RT_ACT_HARD_SIGMOID, HONE_RT_ACT_HARD_SWISH, HONE_RT_ACT_ELU,
    HONE_RT_ACT_SOFTPLUS, HONE_RT_ACT_EXP, HONE_RT_ACT_LOG, HONE_RT_ACT_SQRT, HONE_RT_ACT_ABS,
    HONE_RT_ACT_RECIPROCAL, HONE_RT_ACT_POW, HONE_RT_ACT_COUNT
} hone_rt_act;
/* Whether kind k's derivative is read from the forward output y (else the input x). */
int hone_rt_act_uses_y(hone_rt_act k);
/* dx[i] = dy[i] * f'(t[i]) for n elements; t is x or y (see above). Parameters: LeakyRelu
 * a = alpha; Clip [a, b]; HardSigmoid a = alpha, b = beta; Elu a = alpha; Pow a = exponent. */
void hone_rt_act_grad(hone_rt_act k, int64_t n, const float *dy, const float *t, float a,
                      float b, float *dx);

/* conv_grad.c: Conv backward; any of dx, dw, db may be NULL (not wanted). */
size_t hone_rt_conv_grad_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups);
void hone_rt_conv_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                       const float *x, const float *wt, const float *dy, float *dx, float *dw,
                       float *db, float *scratch);

/* norm_grad.c: BatchNormalization with batch statistics over x[n,c,plane]: y, and per
 * channel mean, invstd = 1/sqrt(var + eps) of the population variance, and the unbiased
 * variance for running statistics (var, may be NULL). */
void hone_rt_bn_train(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                      const float *bias, float eps, float *y, float *mean, float *invstd,
                      float *var);
/* Its backward; batch_stats = 0 treats mean/invstd as constants (inference-form BN).
 * dx, dscale, dbias may each be NULL. */
void hone_rt_bn_grad(int64_t n, int64_t c, int64_t plane, const float *dy, const float *x,
                     const float *scale, const float *mean, const float *invstd, int batch_stats,
                     float *dx, float *dscale, float *dbias);

/* pool_grad.c: MaxPool backward from the forward's flat indices: dx[idx[i]] += dy[i] over a
 * zeroed dx of n_in elements; returns 0 (dx partly written) when an index is out of range. */
int hone_rt_maxpool_grad(int64_t n_out, const float *dy, const int64_t *idx, int64_t n_in,
                         float *dx);
/* Floats of scratch hone_rt_avgpool_grad needs. */
size_t hone_rt_avgpool_grad_scratch(const hone_rt_window *w);
/* AveragePool backward over `planes` images (count_include_pad as in the forward). */
void hone_rt_avgpool_grad(const hone_rt_window *w, int64_t planes, const float *dy,
                          int count_include_pad, float *dx, float *scratch);
/* Global average / max pool backward over planes of len elements (x: the forward input). */
void hone_rt_global_pool_grad(hone_rt_gpool kind, int64_t planes, int64_t len, const float *x,
                              const float *dy, float *dx);

/* loss_grad.c: losses returning their value and writing d(loss)/d(input) into grad. */
/* Mean softmax cross-entropy of logits[rows,k] against labels in [0, k) (caller-checked). */
double hone_rt_softmax_xent(int64_t rows, int64_t k, const float *logits, const int64_t *labels,
                            float *grad);
/* T^2 * mean over rows of KL(softmax(t/T) || softmax(s/T)); grad is d/ds. */
double hone_rt_soft_kl(int64_t rows, int64_t k, const float *s, const float *t, float temp,
                       float *grad);
/* Mean of (x-t)^2 (l1 = 0) or |x-t| (l1 = 1) over n elements; grad is d/dx. */
double hone_rt_dist_loss(int l1, int64_t n, const float *x, const float *t, float *grad);
/* Softmax (log_softmax = 0) or LogSoftmax backward from the forward output y, on the
 * [outer, len, inner] view. */
void hone_rt_softmax_grad(int log_softmax, int64_t outer, int64_t len, int64_t inner,
                          const float *y, const float *dy, float *dx);

/* resize_grad.c: one axis of the adjoint of a separable resampling of x[outer, in_len, inner]
 * into y[outer, out_len, inner]: output o read input idx[2o], idx[2o+1] (in [0, in_len)) with
 * weights w[2o], w[2o+1]; dx (overwritten) gets the weighted sums of dy. */
void hone_rt_resample_adjoint(int64_t outer, int64_t out_len, int64_t in_len, int64_t inner,
                              const int64_t *idx, const float *w, const float *dy, float *dx);

/* ===================== kernel_pool.c, conv_batch.c: the interpreter's parallel kernels ===================== */

/* The pool the training engine's kernels (Conv forward and backward through the reference
 * interpreter) split images over. The first acquire creates it with as many workers as
 * OpenBLAS would use threads and makes OpenBLAS run each GEMM on its calling thread (the
 * workers call it concurrently on their own images); the last release destroys it and
 * restores OpenBLAS's thread count. Acquire/release nest (a counter under a lock). */
void hone_rt_kernel_pool_acquire(void);
void hone_rt_kernel_pool_release(void);
/* The pool while acquired, else NULL (kernels then run serially, OpenBLAS threads GEMMs). */
hone_rt_pool *hone_rt_kernel_pool(void);
/* Whether it is acquired (the pool is NULL, though acquired, for one thread). Interpreted
 * kernels take their batched training paths only then, and otherwise compute exactly what
 * the compiled code computes. */
int hone_rt_kernel_pool_active(void);

/* The GEMM of the training conv kernels (row-major, as hone_rt_sgemm): hone's own
 * single-threaded AVX-512 SGEMM (sgemm_avx512.c) where the CPU has AVX-512F, else (or with
 * HONE_TRAIN_GEMM=openblas) hone_rt_sgemm. Its name: "hone-avx512" or "openblas". */
void hone_rt_train_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                         float *c, int64_t ldc);
const char *hone_rt_train_gemm_name(void);

/* Implicit im2col for stride-1 2-D convolutions (conv_grad.c, sgemm_avx512.c): images are
 * copied into zero-padded planes hp x wp (the image at (pad[0], pad[1])), where the column
 * matrix row r = (ch, ky, kx) at output column q = oy * wp + ox is plane[q + roff[r]],
 * roff[r] = ch * hp * wp + ky * dil[0] * wp + kx * dil[1]: the GEMMs read B in place
 * through roff. Columns ox >= out[1] are junk; each image has ncol16 columns (out[0] * wp
 * rounded up to 16), and `slack` zeros follow the last image for the junk reads. */
typedef struct hone_rt_implicit {
    int64_t hp, wp, plane, ncol16, slack;
} hone_rt_implicit;
/* Fills g; 0 (no implicit path) unless w is 2-D, stride 1, unpadded or zero-padded, and the
 * CPU has AVX-512F. */
int hone_rt_implicit_of(const hone_rt_window *w, hone_rt_implicit *g);
/* Floats of k padded images of c channels, slack included. */
size_t hone_rt_implicit_floats(const hone_rt_implicit *g, int64_t c, int64_t k);
/* k images of c channels (x: image i at x + i * xstride, planes in[0] x in[1]) into dst. */
void hone_rt_implicit_pad(const hone_rt_window *w, const hone_rt_implicit *g, int64_t c,
                          const float *x, int64_t xstride, int64_t k, float *dst);
/* dst[oy * ow + ox] = src[oy * wp + ox] + bias for oy < oh, ox < ow: the valid columns of
 * one output plane of the implicit GEMM. */
void hone_rt_implicit_unpad(const hone_rt_implicit *g, int64_t oh, int64_t ow, const float *src,
                            float bias, float *dst);
/* roff of the c * k[0] * k[1] rows of channels [0, c). */
void hone_rt_implicit_offsets(const hone_rt_window *w, const hone_rt_implicit *g, int64_t c,
                              int32_t *roff);
/* C[m][nimg * ncol16] = A[m][k] B, B[r][i * ncol16 + q] = x[i * img + roff[r] + q]. */
int hone_rt_gemm_implicit(int64_t m, int64_t k, const float *a, int64_t lda, const float *x,
                          int64_t img, const int32_t *roff, int64_t nimg, int64_t ncol16,
                          float *c);
/* C[r][j] = sum over i < nimg, q < ncol16 of x[i * img + roff[r] + q] dy[j * lddy + i *
 * ncol16 + q], r < m, j < n (dy zero in junk columns). Both return 0 where the CPU lacks
 * AVX-512F (nothing written). */
int hone_rt_gemm_implicit_dw(int64_t m, int64_t n, const float *x, int64_t img,
                             const int32_t *roff, int64_t nimg, int64_t ncol16, const float *dy,
                             int64_t lddy, float *c, int64_t ldc);


/* 2-D im2col of output rows [oy0, oy1) into col with row stride ld (see conv_grad.c). */
void hone_rt_im2col_2d(const hone_rt_window *w, int64_t c, const float *x, int64_t oy0,
                       int64_t oy1, float *col, int64_t ld);

/* 2-D Conv with several images per GEMM (their columns side by side), image batches split
 * over pool's workers (pool may be NULL); other ranks, and images whose columns exceed the
 * scratch budget, take hone_rt_conv's path. Same contract as hone_rt_conv otherwise. */
size_t hone_rt_conv_batch_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                                  int workers);
void hone_rt_conv_batch(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                        int64_t m, int64_t groups, const float *x, const float *wt,
                        const float *bias, float *y, float *scratch);
/* hone_rt_conv_grad with image batches split over pool's workers (pool may be NULL). dW is
 * accumulated in a fixed number of partial sums added in a fixed order, so results do not
 * depend on the number of workers. */
size_t hone_rt_conv_grad_pool_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                      int64_t groups, int workers);
void hone_rt_conv_grad_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                            int64_t m, int64_t groups, const float *x, const float *wt,
                            const float *dy, float *dx, float *dw, float *db, float *scratch);
/* act_grad.c: y = x < 0 ? 0 : x over n elements (NaN and -0 pass through), branch-free. */
void hone_rt_relu(int64_t n, const float *x, float *y);
/* norm_grad.c: hone_rt_bn_train / hone_rt_bn_grad with channels split over pool's workers
 * (pool may be NULL); each channel is computed exactly as the serial functions do. */
void hone_rt_bn_train_pool(hone_rt_pool *pool, int64_t n, int64_t c, int64_t plane,
                           const float *x, const float *scale, const float *bias, float eps,
                           float *y, float *mean, float *invstd, float *var);
void hone_rt_bn_grad_pool(hone_rt_pool *pool, int64_t n, int64_t c, int64_t plane,
                          const float *dy, const float *x, const float *scale, const float *mean,
                          const float *invstd, int batch_stats, float *dx, float *dscale,
                          float *dbias);

/* ===================== extra.c: less common ops of compiled models ===================== */

#define HONE_RT_MAX_RANK 8

/* Element types of the type-generic kernels below. */
typedef enum {
    HONE_RT_F32, HONE_RT_F64, HONE_RT_I8, HONE_RT_U8, HONE_RT_I16, HONE_RT_U16, HONE_RT_I32,
    HONE_RT_U32, HONE_RT_I64, HONE_RT_U64
} hone_rt_elem;
size_t hone_rt_elem_size(hone_rt_elem et);

typedef enum { HONE_RT_GS_BILINEAR, HONE_RT_GS_NEAREST, HONE_RT_GS_BICUBIC } hone_rt_gs_mode;
typedef enum { HONE_RT_GS_ZEROS, HONE_RT_GS_BORDER, HONE_RT_GS_REFLECTION } hone_rt_gs_pad;
/* GridSample geometry: x[n, c, h, w] sampled at grid[n, ho, wo, 2] -> y[n, c, ho, wo]. */
typedef struct hone_rt_gs_geo {
    int64_t n, c, h, w, ho, wo;
    int32_t mode, pad, align, f64; /* hone_rt_gs_mode, hone_rt_gs_pad, align_corners, float64 */
} hone_rt_gs_geo;
/* GridSample in double (PyTorch's grid_sample semantics), float32 or float64 buffers. */
void hone_rt_gridsample(const hone_rt_gs_geo *g, const void *x, const void *grid, void *y);

/* Three-way comparison of items a and b for hone_rt_stable_sort. */
typedef int (*hone_rt_cmp_fn)(const void *user, int64_t a, int64_t b);
/* Stable merge sort of the item numbers idx[0, n) by cmp; tmp holds n entries. */
void hone_rt_stable_sort(int64_t *idx, int64_t *tmp, int64_t n, hone_rt_cmp_fn cmp,
                         const void *user);

/* TopK along the middle axis of x[outer, n, inner] (elements of es bytes)
 * under cmp, which compares flat elements of x: the first k of each slice in
 * a stable sort (largest first when largest; ties keep the lower index),
 * values into y[outer, k, inner], indices into yi; scratch holds 2n int64.
 * A one-pass selection when k <= n / 16, a merge sort of the slice else. */
void hone_rt_topk_by(hone_rt_cmp_fn cmp, const void *user, size_t es, int64_t outer, int64_t n,
                     int64_t inner, int64_t k, int largest, const void *x, void *y, int64_t *yi,
                     int64_t *scratch);
/* hone_rt_topk_by over an element type: integers exactly, floats with NaN
 * above every number. */
void hone_rt_topk(hone_rt_elem et, int64_t outer, int64_t n, int64_t inner, int64_t k,
                  int largest, const void *x, void *y, int64_t *yi, int64_t *scratch);

/* Determinant of the m x m matrix a (row-major, destroyed) by LU with partial pivoting. */
double hone_rt_det_lu(double *a, int64_t m);
/* Det of batch m x m matrices (float32 or float64) by LU with partial pivoting
 * in double; scratch holds m * m doubles. */
void hone_rt_det(int64_t batch, int64_t m, int f64, const void *x, void *y, double *scratch);

/* MeanVarianceNormalization geometry: the group of an element is the sum of
 * its coordinates times gstride (0 on the normalised axes). */
typedef struct hone_rt_mvn_geo {
    int32_t rank;
    int64_t numel, groups;
    int64_t dims[HONE_RT_MAX_RANK], gstride[HONE_RT_MAX_RANK];
} hone_rt_mvn_geo;
/* y = (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) per group, double sums in
 * element order; scratch holds 2 * groups doubles. */
void hone_rt_mvn(const hone_rt_mvn_geo *m, const float *x, float *y, double *scratch);

/* BatchNormalization with batch statistics over x[n, c, plane] (2c floats of
 * scratch); each statistic output may be NULL: the running mean and variance
 * blended with momentum (input * momentum + batch * (1 - momentum)), the
 * batch mean and population variance. */
void hone_rt_bn_batch(int64_t n, int64_t c, int64_t plane, const float *x, const float *scale,
                      const float *bias, const float *mean_in, const float *var_in, float eps,
                      float momentum, float *y, float *run_mean, float *run_var,
                      float *batch_mean, float *batch_var, float *scratch);

/* MaxPool over int8 (is_signed) or uint8 images through the float kernel;
 * scratch holds the input and output as floats. */
void hone_rt_maxpool_i8(const hone_rt_window *w, int64_t planes, int is_signed, const void *x,
                        void *y, int64_t *idx, int col_major, float *scratch);
/* ===================== binconv.c: binary convolution (hone.BinaryConv) ===================== */

/* Bytes of one packed sign row of k weights. */
size_t hone_rt_binconv_row_bytes(int64_t k);
/* bits[r] = signs of w[r, 0..k) (bit j at byte j>>3, bit j&7; 1 for w >= 0, i.e. +1). */
void hone_rt_binconv_pack_signs(const float *w, int64_t rows, int64_t k, uint8_t *bits);
/* Bit j of packed row `row` of a matrix of k-bit rows. */
int hone_rt_binconv_bit(const uint8_t *bits, int64_t k, int64_t row, int64_t j);
/* uint64 words of the XNOR kernel's weight layout for m filters of c channels and taps taps. */
size_t hone_rt_binconv_xnor_weights_count(int64_t c, int64_t m, int64_t taps);
/* Repacks packed sign rows (k = c*taps bits, ONNX weight order) into that layout. */
void hone_rt_binconv_xnor_weights(int64_t c, int64_t m, int64_t taps, const uint8_t *bits,
                                  uint64_t *wp);
/* Scratch bytes of hone_rt_binconv_xnor (2-D window). */
size_t hone_rt_binconv_xnor_scratch(const hone_rt_window *w, int64_t c, int64_t m);
/* W1A1: y[n,m,oh,ow] = alpha * sum over in-image taps of sign(w) * (x >= thresh ? 1 : -1)
 * + bias, by XNOR and popcount; thresh and bias may be NULL (0). */
void hone_rt_binconv_xnor(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          const uint64_t *wp, const float *alpha, const float *bias,
                          const float *thresh, const float *x, float *y, void *scratch);
/* "avx512-vpopcntdq", "popcnt" or "portable": the popcount the XNOR kernel uses here. */
const char *hone_rt_binconv_popcount_kind(void);
/* Scratch bytes of hone_rt_binconv_w1 (2-D window). */
size_t hone_rt_binconv_w1_scratch(const hone_rt_window *w, int64_t c);
/* W1: y = alpha * sum over taps of sign(w) * x + bias from the packed bits, no fp32 weights. */
void hone_rt_binconv_w1(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                        const uint8_t *bits, const float *alpha, const float *bias, const float *x,
                        float *y, void *scratch);
/* ===================== adder.c: AdderNet layers (hone.Adder2d) ===================== */

/* Floats of scratch hone_rt_adder needs for tiles of `cols` window positions. */
size_t hone_rt_adder_scratch(const hone_rt_window *w, int64_t c, int64_t groups, int64_t cols);
/* Adder2d: y[n,m,out...] = -sum over (c/groups, k...) of |x patch - wt[m]| (padding counts as
 * 0), im2col tiles of at most `cols` window positions; the threads of its own pool. */
void hone_rt_adder(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const float *x, const float *wt, float *y, float *scratch, int64_t cols);
/* Floats of scratch hone_rt_adder_grad needs. */
size_t hone_rt_adder_grad_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                                  int64_t cols);
/* AdderNet's backward: dw = sum (x - w) dy (full precision), dx = sum clamp(w - x, -1, 1) dy
 * (HardTanh); dx or dw may be NULL (not wanted). */
void hone_rt_adder_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wt, const float *dy, float *dx, float *dw,
                        float *scratch, int64_t cols);
/* hone_rt_adder and hone_rt_adder_grad with the images split over pool's workers (pool may
 * be NULL; one image or one worker: the functions above). The backward adds dw from a fixed
 * number of partial sums in a fixed order: results do not depend on the worker count. */
size_t hone_rt_adder_pool_scratch(const hone_rt_window *w, int64_t c, int64_t groups,
                                  int64_t cols, int workers);
void hone_rt_adder_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                        int64_t m, int64_t groups, const float *x, const float *wt, float *y,
                        float *scratch, int64_t cols);
size_t hone_rt_adder_grad_pool_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                       int64_t groups, int64_t cols, int workers);
void hone_rt_adder_grad_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                             int64_t m, int64_t groups, const float *x, const float *wt,
                             const float *dy, float *dx, float *dw, float *scratch, int64_t cols);
/* AdderSR's power activation: y = sign(x) |x|^alpha[0] over n elements. */
void hone_rt_signed_power(int64_t n, const float *x, const float *alpha, float *y);
/* ===================== qconv.c: integer convolution (ConvInteger) ===================== */

/* Bytes of scratch hone_rt_conv_integer may use for c input and m output channels. */
size_t hone_rt_conv_integer_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups);
/* ConvInteger: x[n,c,in...] (uint8, or int8 when x_signed) with zero point *xzp (NULL: 0)
 * and wt[m,c/groups,k...] (int8 when w_signed, else uint8) with zero points wzp[n_wzp]
 * (n_wzp 0: none, 1: per tensor, m: per output channel) -> y[n,m,out...] int32, the exact
 * sum of (x - xzp) * (w - wzp) (padding reads xzp). uint8 x, int8 w without weight zero
 * points and 2 spatial dims take an AVX-512 VNNI kernel where the CPU has one. */
void hone_rt_conv_integer(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          int64_t groups, const void *x, int x_signed, const void *xzp,
                          const void *wt, int w_signed, const void *wzp, int64_t n_wzp,
                          int32_t *y, void *scratch);
/* The same for uint8 x and int8 weights without zero points, the weights packed ahead of
 * time (by the backend, at compile time) with hone_rt_conv_integer_pack into
 * hone_rt_conv_integer_packed_size bytes; scratch as hone_rt_conv_integer_scratch. */
size_t hone_rt_conv_integer_packed_size(const hone_rt_window *w, int64_t c, int64_t m,
                                        int64_t groups);
void hone_rt_conv_integer_pack(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                               const int8_t *wt, void *packed);
void hone_rt_conv_integer_packed(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                                 int64_t groups, const uint8_t *x, const void *xzp,
                                 const void *packed, int32_t *y, void *scratch);

/* hone.DequantizePacked: w[e] = (step * index[e] - offset) * scale[e / per] for numel
 * entries, index[e] the bits-wide field at bit e * bits of p (LSB first); the code times
 * the scale in double, rounded once to float (the interpreter's rule). */
void hone_rt_dequantize_packed(int64_t numel, int64_t per, int bits, int64_t step, int64_t offset,
                               const uint8_t *p, const float *scale, float *w);

/* hone.QConv: the packed conv above, its sums s of output channel o passed through
 *   v = s * scale[o] (+ bias[o]) (+ res[i]) (then max(v, 0) when relu), in float,
 * into y as float, or, when y_scale is given, as uint8
 *   clamp(round_half_even(v / *y_scale) + *y_zp, 0, 255)   (y_zp NULL: 0).
 * bias and res (a tensor of y's shape) may be NULL. Each operation rounds as the unfused
 * Cast / Mul / Add / Relu / QuantizeLinear ops do, so results equal theirs bit for bit. */
void hone_rt_qconv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const uint8_t *x, const uint8_t *xzp, const void *packed, const float *scale,
                   const float *bias, const float *res, int32_t relu, const float *y_scale,
                   const uint8_t *y_zp, void *y, void *scratch);

/* y[i] = saturate(round((acc[i] + bias[c]) * xs * ws[c] / ys) + yzp), c = (i / inner) % m,
 * as uint8 (int8 when y_signed); bias and yzp may be NULL, ws has n_ws (1 or m) entries.
 * The requantization of QLinearConv and QLinearMatMul, in double as the interpreter does. */
void hone_rt_requantize(int64_t numel, int64_t inner, int64_t m, const int32_t *acc,
                        const int32_t *bias, const float *xs, const float *ws, int64_t n_ws,
                        const float *ys, const void *yzp, int y_signed, void *y);
/* MatMulInteger over `batch` products [m,k] x [k,n] -> int32 [m,n]; a and b advance by
 * a_stride and b_stride elements per product (0: shared); zero points: n_azp 0, 1 or m
 * (per row), n_bzp 0, 1 or n (per column); int8 where *_signed, else uint8. */
void hone_rt_matmul_integer(int64_t batch, int64_t m, int64_t n, int64_t k, const void *a,
                            int a_signed, int64_t a_stride, const void *azp, int64_t n_azp,
                            const void *b, int b_signed, int64_t b_stride, const void *bzp,
                            int64_t n_bzp, int32_t *y);
/* DynamicQuantizeLinear of x[n]: uint8 y, scale (max(x,0) - min(x,0)) / 255, zero point. */
void hone_rt_dynamic_quantize(int64_t n, const float *x, uint8_t *y, float *scale, uint8_t *zp);

#endif
