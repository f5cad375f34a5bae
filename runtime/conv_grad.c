/*
 * Convolution backward by im2col / col2im and GEMM.
 *
 * For one image and one group, with col = im2col(x_g) of shape [cg*K, P]
 * (K kernel offsets, P window positions), the forward is y_g = w_g col. So
 *   dw_g += dy_g col^T        (one sgemm, [mg, P] x [P, cg*K])
 *   dcol  = w_g^T dy_g        (one sgemm, [cg*K, mg] x [mg, P])
 *   dx_g  = col2im(dcol)      (the adjoint of im2col adds columns back)
 *   db    = sum of dy over images and positions.
 *
 * 2-D convolutions (the common case) take a fast path: several images are
 * laid side by side in one column matrix [cg*K, k*P] (dy packed likewise), so
 * each sgemm covers k images; for small feature maps (7x7: P = 49) that is
 * the difference between a GEMM-bound and an overhead-bound backward. The
 * 2-D im2col/col2im here walk rows with clipped contiguous copies. Other
 * ranks go image by image through the runtime's generic im2col/col2im, in
 * column tiles. Either way the one scratch buffer the caller provides stays
 * bounded for any image. A 1x1, stride-1, unpadded window needs no im2col:
 * x_g is the column matrix itself.
 *
 * hone_rt_conv_grad_pool (the training engine's entry) splits the 2-D
 * path's image batches over a pool: dX of different images is disjoint,
 * and dW is accumulated in a fixed number of partial sums (slabs of
 * consecutive batches, independent of the worker count) added in order.
 * dW of a batch is formed transposed, dW^T = col dy^T, which the GEMM
 * libraries run faster for the few output channels of small CNNs.
 *
 * Stride-1 2-D windows skip the column matrices where the training GEMM is
 * hone's AVX-512 one (the implicit im2col of hone_rt.h): dX is the forward
 * correlation of dy, padded once, with the flipped weights (hone_rt_gemm_implicit),
 * and dW the dot products of the padded images' shifted rows with dy laid out on
 * the padded columns (hone_rt_gemm_implicit_dw). Copying an image once instead of
 * once per tap took a training step from 139 to 125 ms of CPU.
 */
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define IMPLICIT_X86 1
#endif

/* Scratch budget of the column matrix, in floats (8 MiB). */
#define GRAD_TILE_FLOATS ((int64_t)1 << 21)
#define GRAD_TILE_MIN 64
/* Columns the 2-D path aims for per GEMM (images are added until reached). */
#define GRAD_BATCH_COLS 4096

static int unit_stride(const hone_rt_window *w);

/* True when im2col is the identity: every dim 1x1, stride 1, unpadded. */
static int identity_window(const hone_rt_window *w)
{
    int ok = 1;
    for (int d = 0; d < w->nsp; d++)
        ok &= w->k[d] == 1 && w->stride[d] == 1 && w->pad[d] == 0 && w->in[d] == w->out[d];
    return ok;
}

/* Shapes of one group's backward: cg input and mg output channels, n images. */
typedef struct grad_group {
    const hone_rt_window *w;
    int64_t n, c, m, cg, mg, rows, total, xp;
} grad_group;

/* Window positions per tile for a column matrix of `rows` rows. */
static int64_t grad_tile(int64_t rows, int64_t positions)
{
    int64_t t = GRAD_TILE_FLOATS / (rows > 0 ? rows : 1);
    t = t < GRAD_TILE_MIN ? GRAD_TILE_MIN : t;
    return t < positions ? t : positions;
}

/* Output rows per tile when one image's column matrix is too large. */
static int64_t tile_rows(const hone_rt_window *w, int64_t rows)
{
    int64_t t = GRAD_TILE_FLOATS / (rows * w->out[1] > 0 ? rows * w->out[1] : 1);
    t = t < 1 ? 1 : t;
    return t < w->out[0] ? t : w->out[0];
}

static int fast_2d(const hone_rt_window *w)
{
    return w->nsp == 2 && !identity_window(w);
}

/* ===================== 2-D im2col / col2im with a leading dimension ===================== */

/* Column range [lo, hi) of output positions ox whose input column ox*s + ix0 is
 * inside [0, width), for stride 1. */
static void clip_unit(int64_t ix0, int64_t ow, int64_t width, int64_t *lo, int64_t *hi)
{
    *lo = ix0 < 0 ? -ix0 : 0;
    *hi = width - ix0 < ow ? width - ix0 : ow;
    *lo = *lo > ow ? ow : *lo;
    *hi = *hi < *lo ? *lo : *hi;
}

/* Zeroes columns [0, lo) and [hi, wd) of `rows` rows of wd floats: the
 * elements a shifted copy wrapped around line ends. The one-column cases of
 * a 3-wide window with padding 1 are straight strided stores. */
static void zero_columns(float *d, int64_t rows, int64_t wd, int64_t lo, int64_t hi)
{
    if (lo == 0 && hi == wd)
        return;
    if (lo == 1 && hi == wd) {
        for (int64_t r = 0; r < rows; r++)
            d[r * wd] = 0.0f;
        return;
    }
    if (lo == 0 && hi == wd - 1) {
        for (int64_t r = 0; r < rows; r++)
            d[r * wd + wd - 1] = 0.0f;
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t ox = 0; ox < lo; ox++)
            d[r * wd + ox] = 0.0f;
        for (int64_t ox = hi; ox < wd; ox++)
            d[r * wd + ox] = 0.0f;
    }
}

/* Output positions [lo, hi) whose input column ox*s + ix0 lies in [0, width). */
static void clip_strided(int64_t ix0, int64_t s, int64_t ow, int64_t width, int64_t *lo,
                         int64_t *hi)
{
    *lo = ix0 < 0 ? (-ix0 + s - 1) / s : 0;
    *hi = ix0 >= width ? 0 : (width - 1 - ix0) / s + 1;
    *lo = *lo > ow ? ow : *lo;
    *hi = *hi > ow ? ow : *hi < *lo ? *lo : *hi;
}

/* One im2col row of a stride-1 window whose output width equals the input
 * width: the plane shifted by (iy0, ix0) is one contiguous copy; the rows
 * outside the image are zeroed, and then the copied elements that wrapped
 * around a line. dst covers output rows [oy0, oy1). */
static void shifted_row(const hone_rt_window *w, const float *plane, int64_t iy0, int64_t ix0,
                        int64_t oy0, int64_t oy1, float *dst)
{
    int64_t h = w->in[0], wd = w->in[1], lo, hi;
    int64_t ya = -iy0 > oy0 ? -iy0 : oy0, yb = h - iy0 < oy1 ? h - iy0 : oy1;
    ya = ya > oy1 ? oy1 : ya;
    yb = yb < ya ? ya : yb;
    int64_t s0 = (ya + iy0) * wd + ix0, s1 = (yb + iy0) * wd + ix0;
    int64_t a = s0 < 0 ? 0 : s0, b = s1 > h * wd ? h * wd : s1;
    b = b < a ? a : b;
    /* the copy lands in [c0, c1); only the rest is zeroed first */
    float *d = dst - oy0 * wd, *c0 = b > a ? d + ya * wd + (a - s0) : dst, *c1 = c0 + (b - a);
    memset(dst, 0, sizeof(float) * (size_t)(c0 - dst));
    memcpy(c0, plane + a, sizeof(float) * (size_t)(b - a));
    memset(c1, 0, sizeof(float) * (size_t)(dst + (oy1 - oy0) * wd - c1));
    clip_unit(ix0, wd, wd, &lo, &hi);
    zero_columns(d + ya * wd, yb - ya, wd, lo, hi);
}

/* dst[ox] = src[2 * ox] for ox in [lo, hi): the even lanes of two loads per 16 outputs;
 * the last block loads only the elements it needs (masked), so nothing past
 * src[2 * (hi - 1)] is read. */
#ifdef IMPLICIT_X86
__attribute__((target("avx512f"))) static void gather_stride2(const float *src, float *dst,
                                                              int64_t lo, int64_t hi)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    int64_t ox = lo;
    for (; ox + 16 < hi; ox += 16) { /* reads src[2 ox .. 2 ox + 31], 2 ox + 31 < 2 hi - 1 */
        __m512 a = _mm512_loadu_ps(src + 2 * ox), b = _mm512_loadu_ps(src + 2 * ox + 16);
        _mm512_storeu_ps(dst + ox, _mm512_permutex2var_ps(a, even, b));
    }
    if (ox < hi) {
        int64_t n = hi - ox, cnt = 2 * n - 1; /* elements src[2 ox .. 2 hi - 2] */
        __mmask16 ma = (__mmask16)(cnt >= 16 ? 0xffff : (1u << cnt) - 1);
        __mmask16 mb = (__mmask16)(cnt > 16 ? (1u << (cnt - 16)) - 1 : 0);
        __m512 a = _mm512_maskz_loadu_ps(ma, src + 2 * ox);
        __m512 b = _mm512_maskz_loadu_ps(mb, src + 2 * ox + 16);
        _mm512_mask_storeu_ps(dst + ox, (__mmask16)((1u << n) - 1),
                              _mm512_permutex2var_ps(a, even, b));
    }
}
#endif

/* col[(ch*KH+ky)*KW+kx][(oy-oy0)*OW+ox] (row stride ld) = x[ch][iy][ix] for output
 * rows oy in [oy0, oy1), 0 in padding. */
static void im2col_2d(const hone_rt_window *w, int64_t c, const float *x, int64_t oy0,
                      int64_t oy1, float *col, int64_t ld)
{
    int64_t h = w->in[0], wd = w->in[1], ow = w->out[1];
#ifdef IMPLICIT_X86
    int s2_avx512 = w->stride[1] == 2 && hone_rt_cpu_avx512f();
#endif
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < w->k[0]; ky++)
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                float *dst = col + ((ch * w->k[0] + ky) * w->k[1] + kx) * ld;
                int64_t ix0 = kx * w->dil[1] - w->pad[1], lo = 0, hi = ow;
                if (w->stride[0] == 1 && w->stride[1] == 1 && ow == wd) {
                    shifted_row(w, x + ch * h * wd, ky * w->dil[0] - w->pad[0], ix0, oy0, oy1,
                                dst);
                    continue;
                }
                int64_t sx = w->stride[1];
                if (sx == 1)
                    clip_unit(ix0, ow, wd, &lo, &hi);
                else
                    clip_strided(ix0, sx, ow, wd, &lo, &hi);
                for (int64_t oy = oy0; oy < oy1; oy++, dst += ow) {
                    int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
                    const float *src = x + (ch * h + iy) * wd;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, sizeof(float) * (size_t)ow);
                        continue;
                    }
                    for (int64_t ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    if (sx == 1)
                        memcpy(dst + lo, src + ix0 + lo, sizeof(float) * (size_t)(hi - lo));
#ifdef IMPLICIT_X86
                    else if (sx == 2 && s2_avx512)
                        gather_stride2(src + ix0, dst, lo, hi);
#endif
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox * sx + ix0];
                    for (int64_t ox = hi; ox < ow; ox++)
                        dst[ox] = 0.0f;
                }
            }
}

void hone_rt_im2col_2d(const hone_rt_window *w, int64_t c, const float *x, int64_t oy0,
                       int64_t oy1, float *col, int64_t ld)
{
    im2col_2d(w, c, x, oy0, oy1, col, ld);
}

/* The adjoint of im2col_2d: adds every column entry into its image element. */
static void col2im_2d(const hone_rt_window *w, int64_t c, const float *col, int64_t oy0,
                      int64_t oy1, int64_t ld, float *x)
{
    int64_t h = w->in[0], wd = w->in[1], ow = w->out[1];
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < w->k[0]; ky++)
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                const float *src = col + ((ch * w->k[0] + ky) * w->k[1] + kx) * ld;
                int64_t ix0 = kx * w->dil[1] - w->pad[1], lo = 0, hi = ow;
                if (w->stride[1] == 1)
                    clip_unit(ix0, ow, wd, &lo, &hi);
                for (int64_t oy = oy0; oy < oy1; oy++, src += ow) {
                    int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
                    float *dst = x + (ch * h + iy) * wd;
                    if (iy < 0 || iy >= h)
                        continue;
                    if (w->stride[1] == 1) {
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox + ix0] += src[ox];
                        continue;
                    }
                    for (int64_t ox = 0; ox < ow; ox++) {
                        int64_t ix = ox * w->stride[1] + ix0;
                        if (ix >= 0 && ix < wd)
                            dst[ix] += src[ox];
                    }
                }
            }
}

/* ===================== implicit im2col (hone_rt.h) ===================== */

int hone_rt_implicit_of(const hone_rt_window *w, hone_rt_implicit *g)
{
    /* the implicit GEMMs are those of the training GEMM's AVX-512 kernels */
#ifndef IMPLICIT_X86
    (void)w, (void)g;
    return 0;
#else
    if (w->nsp != 2 || !unit_stride(w) || w->pad[0] < 0 || w->pad[1] < 0 ||
        strcmp(hone_rt_train_gemm_name(), "hone-avx512") != 0)
        return 0;
    g->hp = w->out[0] + (w->k[0] - 1) * w->dil[0];
    g->wp = w->out[1] + (w->k[1] - 1) * w->dil[1];
    g->plane = g->hp * g->wp;
    g->ncol16 = (w->out[0] * g->wp + 15) / 16 * 16;
    g->slack = (w->k[1] - 1) * w->dil[1] + 16;
    return g->hp > 0 && g->wp > 0;
#endif
}

size_t hone_rt_implicit_floats(const hone_rt_implicit *g, int64_t c, int64_t k)
{
    return (size_t)(k * c * g->plane + g->slack);
}

#ifdef IMPLICIT_X86
/* dst[0, wd) = src[j - px] for j in [px, px + cw), zeros elsewhere; whole 16-float
 * vectors, so up to 15 floats past wd get zeros too (rows are written in order). Where
 * a vector lies within [lo, hi) (memory that may be read), a plain load and a zeroing
 * blend: with masked loads (lanes sticking out of the row) most of the copy's samples
 * sat on the load in perf on this AMD CPU, and a training step took 135 ms of CPU
 * against 125 with the blend. */
__attribute__((target("avx512f"))) static void padded_row(float *dst, int64_t wd,
                                                          const float *src, int64_t px,
                                                          int64_t cw, const float *lo_p,
                                                          const float *hi_p)
{
    for (int64_t j = 0; j < wd; j += 16) {
        int64_t lo = px - j, hi = px + cw - j;
        lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
        hi = hi < lo ? lo : hi > 16 ? 16 : hi;
        __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
        const float *a = src + (j - px);
        __m512 v = _mm512_setzero_ps();
        if (m != 0 && a >= lo_p && a + 16 <= hi_p) {
            v = _mm512_loadu_ps(a);
            __asm__("" : "+v"(v)); /* a plain load: not folded into a masked one */
            v = _mm512_maskz_mov_ps(m, v);
        } else if (m != 0) {
            v = _mm512_maskz_loadu_ps(m, a);
        }
        _mm512_storeu_ps(dst + j, v);
    }
}

__attribute__((target("avx512f"))) void hone_rt_implicit_unpad(const hone_rt_implicit *g,
                                                              int64_t oh, int64_t ow,
                                                              const float *src, float bias,
                                                              float *dst)
{
    __m512 b = _mm512_set1_ps(bias);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t j = 0; j < ow; j += 16) {
            __mmask16 m = (__mmask16)(ow - j >= 16 ? 0xffff : (1u << (ow - j)) - 1);
            const float *a = src + oy * g->wp + j;
            __m512 v;
            if (oy * g->wp + j + 16 <= g->ncol16) { /* inside the image's columns */
                v = _mm512_loadu_ps(a);
                __asm__("" : "+v"(v)); /* a plain load (see padded_row) */
            } else {
                v = _mm512_maskz_loadu_ps(m, a);
            }
            _mm512_mask_storeu_ps(dst + oy * ow + j, m, _mm512_add_ps(v, b));
        }
}

__attribute__((target("avx512f"))) void hone_rt_implicit_pad(const hone_rt_window *w,
                                                            const hone_rt_implicit *g,
                                                            int64_t c, const float *x,
                                                            int64_t xstride, int64_t k,
                                                            float *dst)
{
    int64_t h = w->in[0], wd = w->in[1], py = w->pad[0], px = w->pad[1];
    int64_t cw = wd < g->wp - px ? wd : g->wp - px; /* image columns inside the plane */
    cw = cw < 0 ? 0 : cw;
    const float *lo_p = x, *hi_p = x + (k - 1) * xstride + c * h * wd;
    /* planes up to 256 wide: each vector's mask worked out once */
    enum { PAD_V = 16 };
    int64_t nv = (g->wp + 15) / 16;
    __mmask16 mv[PAD_V];
    for (int64_t v = 0; v < nv && nv <= PAD_V; v++) {
        int64_t a = px - v * 16, b = px + cw - v * 16;
        a = a < 0 ? 0 : a > 16 ? 16 : a;
        b = b < a ? a : b > 16 ? 16 : b;
        mv[v] = (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *src = x + i * xstride + ch * h * wd;
            float *p = dst + (i * c + ch) * g->plane;
            for (int64_t r = 0; r < g->hp; r++, p += g->wp) {
                int64_t iy = r - py;
                bool in = iy >= 0 && iy < h;
                if (nv > PAD_V) {
                    padded_row(p, g->wp, in ? src + iy * wd : src, px, in ? cw : 0, lo_p, hi_p);
                    continue;
                }
                for (int64_t v = 0; v < nv; v++) {
                    __m512 val = _mm512_setzero_ps();
                    const float *a = in ? src + iy * wd + v * 16 - px : NULL;
                    if (a && mv[v] && a >= lo_p && a + 16 <= hi_p) {
                        val = _mm512_loadu_ps(a);
                        __asm__("" : "+v"(val)); /* a plain load (see padded_row) */
                        val = _mm512_maskz_mov_ps(mv[v], val);
                    } else if (a && mv[v]) {
                        val = _mm512_maskz_loadu_ps(mv[v], a);
                    }
                    _mm512_storeu_ps(p + v * 16, val);
                }
            }
        }
    /* after the rows: the last one's overhang lands here */
    memset(dst + k * c * g->plane, 0, sizeof(float) * (size_t)g->slack);
}

/* The dy rows of dw_implicit: rows oy of width ow at columns oy * wp, zeros elsewhere up
 * to ncol16 (and up to 15 floats beyond, which the next row of dyp overwrites). */
__attribute__((target("avx512f"))) static void implicit_dy(const hone_rt_implicit *g,
                                                          int64_t oh, int64_t ow,
                                                          const float *src, float *dst)
{
    for (int64_t oy = 0; oy < oh; oy++)
        padded_row(dst + oy * g->wp, g->wp, src + oy * ow, 0, ow, src, src + oh * ow);
    for (int64_t q = oh * g->wp; q < g->ncol16; q += 16)
        _mm512_storeu_ps(dst + q, _mm512_setzero_ps());
}
#else
void hone_rt_implicit_unpad(const hone_rt_implicit *g, int64_t oh, int64_t ow, const float *src,
                            float bias, float *dst)
{
    (void)g, (void)oh, (void)ow, (void)src, (void)bias, (void)dst;
}

void hone_rt_implicit_pad(const hone_rt_window *w, const hone_rt_implicit *g, int64_t c,
                          const float *x, int64_t xstride, int64_t k, float *dst)
{
    (void)w, (void)g, (void)c, (void)x, (void)xstride, (void)k, (void)dst;
}

static void implicit_dy(const hone_rt_implicit *g, int64_t oh, int64_t ow, const float *src,
                        float *dst)
{
    (void)g, (void)oh, (void)ow, (void)src, (void)dst;
}
#endif

void hone_rt_implicit_offsets(const hone_rt_window *w, const hone_rt_implicit *g, int64_t c,
                              int32_t *roff)
{
    for (int64_t ch = 0, r = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < w->k[0]; ky++)
            for (int64_t kx = 0; kx < w->k[1]; kx++)
                roff[r++] = (int32_t)(ch * g->plane + ky * w->dil[0] * g->wp + kx * w->dil[1]);
}

/* ===================== per-group backward ===================== */

/* Pointers of group gi of image b. */
static const float *x_at(const grad_group *g, const float *x, int64_t b, int64_t gi)
{
    return x + (b * g->c + gi * g->cg) * g->xp;
}

static const float *dy_at(const grad_group *g, const float *dy, int64_t b, int64_t gi)
{
    return dy + (b * g->m + gi * g->mg) * g->total;
}

/* The pointwise case: x_g is already the column matrix. */
static void group_direct(const grad_group *g, const float *xg, const float *wg,
                         const float *dyg, float *dxg, float *dwg)
{
    if (dwg)
        hone_rt_train_sgemm(0, 1, g->mg, g->rows, g->total, 1.0f, dyg, g->total, xg, g->total, 1.0f,
                      dwg, g->rows);
    if (dxg)
        hone_rt_train_sgemm(1, 0, g->rows, g->total, g->mg, 1.0f, wg, g->rows, dyg, g->total, 0.0f,
                      dxg, g->total);
}

/* One group of one image through generic column tiles; dxg and dwg accumulate. */
static void group_tiled(const grad_group *g, const float *xg, const float *wg,
                        const float *dyg, float *dxg, float *dwg, float *col)
{
    int64_t tile = grad_tile(g->rows, g->total);
    for (int64_t p0 = 0; p0 < g->total; p0 += tile) {
        int64_t p1 = p0 + tile < g->total ? p0 + tile : g->total, np = p1 - p0;
        if (dwg) {
            hone_rt_im2col(g->w, g->cg, xg, p0, p1, col);
            hone_rt_train_sgemm(0, 1, g->mg, g->rows, np, 1.0f, dyg + p0, g->total, col, np, 1.0f,
                          dwg, g->rows);
        }
        if (dxg) {
            hone_rt_train_sgemm(1, 0, g->rows, np, g->mg, 1.0f, wg, g->rows, dyg + p0, g->total, 0.0f,
                          col, np);
            hone_rt_col2im(g->w, g->cg, col, p0, p1, dxg);
        }
    }
}

/* dy of images [b0, b0+k) of group gi as one [mg, k*P] matrix: packed into
 * pack, or in place for one image. */
static const float *pack_dy(const grad_group *g, const float *dy, int64_t b0, int64_t k,
                            int64_t gi, float *pack)
{
    int64_t p = g->total, cols = k * p;
    if (k == 1)
        return dy_at(g, dy, b0, gi);
    for (int64_t i = 0; i < k; i++)
        for (int64_t r = 0; r < g->mg; r++)
            memcpy(pack + r * cols + i * p, dy_at(g, dy, b0 + i, gi) + r * p,
                   sizeof(float) * (size_t)p);
    return pack;
}

/* Floats of column scratch every 2-D batch of k images gets (pooled or not). */
static int64_t batch_floats_per_image(const grad_group *g);

static size_t col_budget(const grad_group *g, int64_t k)
{
    return (size_t)(k * batch_floats_per_image(g) + g->rows * g->mg);
}

/* Whether an implicit batch of `need` floats fits, its offsets (planes of c channels) in
 * an int32. */
static int implicit_fits(const grad_group *g, const hone_rt_implicit *ig, int64_t c, int64_t k,
                         size_t need)
{
    return c * ig->plane + ig->ncol16 + ig->slack <= INT32_MAX && need <= col_budget(g, k);
}

/* dw_batch_2d through the implicit im2col: the images' group channels padded, dy laid out
 * on the padded columns (zero in the junk ones), one dot-product GEMM. Returns 0 (nothing
 * written to dwg) where it does not apply. */
static int dw_implicit(const grad_group *g, int64_t b0, int64_t k, int64_t gi, const float *x,
                       const float *dy, float *dwg, float *col)
{
    hone_rt_implicit ig;
    if (!hone_rt_implicit_of(g->w, &ig))
        return 0;
    size_t xf = hone_rt_implicit_floats(&ig, g->cg, k);
    int64_t ld = k * ig.ncol16, ow = g->w->out[1];
    /* + 16: the last dy row's overhang (implicit_dy) */
    if (!implicit_fits(g, &ig, g->cg, k,
                       (size_t)g->rows + xf + (size_t)(g->mg * ld + g->rows * g->mg + 16)))
        return 0;
    int32_t *roff = (int32_t *)(void *)col;
    float *xp = col + g->rows, *dyp = xp + xf, *dwt = dyp + g->mg * ld;
    hone_rt_implicit_offsets(g->w, &ig, g->cg, roff);
    hone_rt_implicit_pad(g->w, &ig, g->cg, x_at(g, x, b0, gi), g->c * g->xp, k, xp);
    for (int64_t j = 0; j < g->mg; j++)
        for (int64_t i = 0; i < k; i++)
            implicit_dy(&ig, g->w->out[0], ow, dy_at(g, dy, b0 + i, gi) + j * g->total,
                        dyp + j * ld + i * ig.ncol16);
    if (!hone_rt_gemm_implicit_dw(g->rows, g->mg, xp, g->cg * ig.plane, roff, k, ig.ncol16, dyp,
                                  ld, dwt, g->mg))
        return 0;
    for (int64_t m = 0; m < g->mg; m++)
        for (int64_t r = 0; r < g->rows; r++)
            dwg[m * g->rows + r] += dwt[r * g->mg + m];
    return 1;
}

/* dW of group gi from images [b0, b0+k): one sgemm over their columns. */
/* The product is formed transposed, dW^T[rows, mg] = col dy^T, into the
 * rows*mg floats after the columns and packed dy, then added into dwg: with
 * the long dimension (k*P positions) as K either way, the GEMM libraries run
 * this orientation 1.5x-3x faster for the few output channels of small CNNs. */
static void dw_batch_2d(const grad_group *g, int64_t b0, int64_t k, int64_t gi, const float *x,
                        const float *dy, float *dwg, float *col)
{
    if (dw_implicit(g, b0, k, gi, x, dy, dwg, col))
        return;
    int64_t cols = k * g->total;
    const float *dyk = pack_dy(g, dy, b0, k, gi, col + g->rows * cols);
    float *dwt = col + (g->rows + g->mg) * cols;
    for (int64_t i = 0; i < k; i++)
        im2col_2d(g->w, g->cg, x_at(g, x, b0 + i, gi), 0, g->w->out[0], col + i * g->total, cols);
    hone_rt_train_sgemm(0, 1, g->rows, g->mg, cols, 1.0f, col, cols, dyk, cols, 0.0f, dwt, g->mg);
    for (int64_t m = 0; m < g->mg; m++)
        for (int64_t r = 0; r < g->rows; r++)
            dwg[m * g->rows + r] += dwt[r * g->mg + m];
}

/* dX of images [b0, b0+k) of group gi: w_g^T dy, added back by col2im. */
static void dx_batch_2d(const grad_group *g, int64_t b0, int64_t k, int64_t gi, const float *wg,
                        const float *dy, float *dx, float *col)
{
    int64_t cols = k * g->total;
    const float *dyk = pack_dy(g, dy, b0, k, gi, col + g->rows * cols);
    hone_rt_train_sgemm(1, 0, g->rows, cols, g->mg, 1.0f, wg, g->rows, dyk, cols, 0.0f, col, cols);
    for (int64_t i = 0; i < k; i++)
        col2im_2d(g->w, g->cg, col + i * g->total, 0, g->w->out[0], cols,
                  (float *)x_at(g, dx, b0 + i, gi));
}

/* The window that slides the flipped kernel over dy to give dx, for a
 * stride-1 window w: dx[iy] = sum over j of dy[iy - ((k-1)*dil - pad) + j*dil]
 * * w[k-1-j], a forward correlation with pads (k-1)*dil - pad. */
static hone_rt_window transposed_window(const hone_rt_window *w)
{
    hone_rt_window t = *w;
    for (int d = 0; d < w->nsp; d++) {
        t.in[d] = w->out[d];
        t.out[d] = w->in[d];
        t.pad[d] = (w->k[d] - 1) * w->dil[d] - w->pad[d];
    }
    return t;
}

static int unit_stride(const hone_rt_window *w)
{
    return w->stride[0] == 1 && w->stride[1] == 1;
}

/* wf[g][c][(m*KH + jy)*KW + jx] = wt[g*mg + m][c][KH-1-jy][KW-1-jx]. */
static void flip_weights(const grad_group *g, int64_t groups, const float *wt, float *wf)
{
    int64_t kk = hone_rt_window_k_numel(g->w), mk = g->mg * kk;
    for (int64_t gi = 0; gi < groups; gi++)
        for (int64_t m = 0; m < g->mg; m++)
            for (int64_t c = 0; c < g->cg; c++)
                for (int64_t j = 0; j < kk; j++)
                    wf[(gi * g->cg + c) * mk + m * kk + j] =
                        wt[((gi * g->mg + m) * g->cg + c) * kk + kk - 1 - j];
}

/* dx_unit_2d through the implicit im2col: dy's group channels padded under the
 * transposed window, one GEMM with the flipped weights reading them in place, the valid
 * columns copied to dx. Returns 0 (nothing written) where it does not apply. */
static int dx_implicit(const grad_group *g, const hone_rt_window *tw, int64_t b0, int64_t k,
                       int64_t gi, const float *wf, const float *dy, float *dx, float *col)
{
    hone_rt_implicit ig;
    int64_t ry = g->mg * hone_rt_window_k_numel(g->w);
    if (!hone_rt_implicit_of(tw, &ig))
        return 0;
    size_t yf = hone_rt_implicit_floats(&ig, g->mg, k);
    int64_t ld = k * ig.ncol16, oh = tw->out[0], ow = tw->out[1];
    if (!implicit_fits(g, &ig, g->mg, k, (size_t)ry + yf + (size_t)(g->cg * ld)))
        return 0;
    int32_t *roff = (int32_t *)(void *)col;
    float *yp = col + ry, *out = yp + yf;
    hone_rt_implicit_offsets(tw, &ig, g->mg, roff);
    hone_rt_implicit_pad(tw, &ig, g->mg, dy_at(g, dy, b0, gi), g->m * g->total, k, yp);
    if (!hone_rt_gemm_implicit(g->cg, ry, wf + gi * g->cg * ry, ry, yp, g->mg * ig.plane, roff,
                               k, ig.ncol16, out))
        return 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t c = 0; c < g->cg; c++)
            hone_rt_implicit_unpad(&ig, oh, ow, out + c * ld + i * ig.ncol16, 0.0f,
                                   (float *)x_at(g, dx, b0 + i, gi) + c * g->xp);
    return 1;
}

/* dX of images [b0, b0+k) of group gi for a stride-1 window: im2col of dy
 * under the transposed window, one sgemm with the flipped weights, then each
 * image's rows copied to their place. */
static void dx_unit_2d(const grad_group *g, const hone_rt_window *tw, int64_t b0, int64_t k,
                       int64_t gi, const float *wf, const float *dy, float *dx, float *col)
{
    if (dx_implicit(g, tw, b0, k, gi, wf, dy, dx, col))
        return;
    int64_t hw = g->xp, cols = k * hw, ry = g->mg * hone_rt_window_k_numel(g->w);
    float *out = col + ry * cols;
    for (int64_t i = 0; i < k; i++)
        im2col_2d(tw, g->mg, dy_at(g, dy, b0 + i, gi), 0, tw->out[0], col + i * hw, cols);
    hone_rt_train_sgemm(0, 0, g->cg, cols, ry, 1.0f, wf + gi * g->cg * ry, ry, col, cols, 0.0f, out,
                  cols);
    for (int64_t i = 0; i < k; i++)
        for (int64_t c = 0; c < g->cg; c++)
            memcpy((float *)x_at(g, dx, b0 + i, gi) + c * hw, out + c * cols + i * hw,
                   sizeof(float) * (size_t)hw);
}

/* One image of group gi on the 2-D path in tiles of output rows (for images
 * whose column matrix exceeds the scratch budget); dy is read in place. */
static void group_rows_2d(const grad_group *g, int64_t b, int64_t gi, const float *x,
                          const float *wg, const float *dy, float *dx, float *dwg, float *col)
{
    int64_t ow = g->w->out[1], step = tile_rows(g->w, g->rows);
    const float *xg = x_at(g, x, b, gi), *dyg = dy_at(g, dy, b, gi);
    for (int64_t oy = 0; oy < g->w->out[0]; oy += step) {
        int64_t oy1 = oy + step < g->w->out[0] ? oy + step : g->w->out[0], np = (oy1 - oy) * ow;
        if (dwg) {
            im2col_2d(g->w, g->cg, xg, oy, oy1, col, np);
            hone_rt_train_sgemm(0, 1, g->mg, g->rows, np, 1.0f, dyg + oy * ow, g->total, col, np, 1.0f,
                          dwg, g->rows);
        }
        if (dx) {
            hone_rt_train_sgemm(1, 0, g->rows, np, g->mg, 1.0f, wg, g->rows, dyg + oy * ow, g->total,
                          0.0f, col, np);
            col2im_2d(g->w, g->cg, col, oy, oy1, np, (float *)x_at(g, dx, b, gi));
        }
    }
}

/* db[ch] = sum of dy over images and positions. */
static void bias_grad(int64_t n, int64_t m, int64_t plane, const float *dy, float *db)
{
    for (int64_t ch = 0; ch < m; ch++)
        db[ch] = 0;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < m; ch++) {
            const float *p = dy + (b * m + ch) * plane;
            float s = 0;
            for (int64_t i = 0; i < plane; i++)
                s += p[i];
            db[ch] += s;
        }
}

/* Rows and columns per image a 2-D batch needs: the larger of the dW pass
 * (im2col of x + packed dy) and the dX pass (col2im: the same; stride 1:
 * im2col of dy + the product). */
static int64_t batch_floats_per_image(const grad_group *g)
{
    int64_t a = (g->rows + g->mg) * g->total;
    int64_t b = unit_stride(g->w) ? (g->mg * hone_rt_window_k_numel(g->w) + g->cg) * g->xp : a;
    return a > b ? a : b;
}

/* Images per 2-D batch (0: one image does not fit, use row tiles). */
static int64_t batch_size(const grad_group *g)
{
    int64_t per = batch_floats_per_image(g);
    if (per > GRAD_TILE_FLOATS)
        return 0;
    int64_t k = (GRAD_BATCH_COLS + g->total - 1) / g->total, cap = GRAD_TILE_FLOATS / per;
    k = k > cap ? cap : k;
    return k < g->n ? k : g->n;
}

/* Group gi over all images, by the path its window takes; wf: flipped weights
 * (stride-1 2-D windows, when dx is wanted). */
static void grad_one_group(const grad_group *g, int64_t gi, const float *x, const float *wt,
                           const float *wf, const float *dy, float *dx, float *dw, float *scratch)
{
    const float *wg = wt + gi * g->mg * g->rows;
    float *dwg = dw ? dw + gi * g->mg * g->rows : NULL;
    int64_t k = fast_2d(g->w) ? batch_size(g) : 0;
    hone_rt_window tw = transposed_window(g->w);
    for (int64_t b = 0; k > 0 && b < g->n; b += k) {
        int64_t kb = b + k <= g->n ? k : g->n - b;
        if (dwg)
            dw_batch_2d(g, b, kb, gi, x, dy, dwg, scratch);
        if (dx && wf)
            dx_unit_2d(g, &tw, b, kb, gi, wf, dy, dx, scratch);
        else if (dx)
            dx_batch_2d(g, b, kb, gi, wg, dy, dx, scratch);
    }
    for (int64_t b = 0; k == 0 && b < g->n; b++) {
        const float *xg = x_at(g, x, b, gi), *dyg = dy_at(g, dy, b, gi);
        float *dxg = dx ? (float *)x_at(g, dx, b, gi) : NULL;
        if (fast_2d(g->w))
            group_rows_2d(g, b, gi, x, wg, dy, dx, dwg, scratch);
        else if (identity_window(g->w))
            group_direct(g, xg, wg, dyg, dxg, dwg);
        else
            group_tiled(g, xg, wg, dyg, dxg, dwg, scratch);
    }
}

size_t hone_rt_conv_grad_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    grad_group g = {w, GRAD_BATCH_COLS, c, m, c / groups, m / groups,
                    c / groups * hone_rt_window_k_numel(w), hone_rt_window_out_numel(w),
                    hone_rt_window_in_numel(w)};
    if (identity_window(w))
        return 0;
    if (!fast_2d(w))
        return (size_t)(g.rows * grad_tile(g.rows, g.total));
    int64_t k = batch_size(&g);
    if (k == 0)
        return (size_t)(g.rows * tile_rows(w, g.rows) * w->out[1]);
    /* flipped weights, k images' columns, dW^T of one group (dw_batch_2d) */
    return (size_t)(k * batch_floats_per_image(&g) + m * g.rows + g.rows * g.mg);
}

void hone_rt_conv_grad(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                       const float *x, const float *wt, const float *dy, float *dx, float *dw,
                       float *db, float *scratch)
{
    grad_group g = {w, n, c, m, c / groups, m / groups, c / groups * hone_rt_window_k_numel(w),
                    hone_rt_window_out_numel(w), hone_rt_window_in_numel(w)};
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)(n * c * g.xp));
    if (dw)
        memset(dw, 0, sizeof(float) * (size_t)(m * g.rows));
    if (db)
        bias_grad(n, m, g.total, dy, db);
    float *wf = NULL;
    if (dx && fast_2d(w) && unit_stride(w) && batch_size(&g) > 0) {
        wf = scratch;
        scratch += m * g.rows;
        flip_weights(&g, groups, wt, wf);
    }
    for (int64_t gi = 0; gi < groups && g.rows > 0 && g.mg > 0; gi++)
        grad_one_group(&g, gi, x, wt, wf, dy, dx, dw, scratch);
}

/* ===================== image batches over a pool ===================== */

/* Most dW partial sums, and their budget in floats (16 MiB). */
#define GRAD_MAX_SLABS 8
#define GRAD_SLAB_FLOATS ((int64_t)1 << 22)

/* A pooled backward: batches of k images, grouped in `slabs` consecutive runs,
 * each run accumulating its own dW partial (slab s's in parts + s*m*rows). */
typedef struct grad_job {
    grad_group g;
    int64_t groups, k, batches, slabs;
    const float *x, *wt, *wf, *dy;
    float *dx, *dw, *parts, *scratch;
    size_t per_worker;
} grad_job;

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

static grad_job grad_job_of(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                            int64_t groups)
{
    grad_job j = {{w, n, c, m, c / groups, m / groups, c / groups * hone_rt_window_k_numel(w),
                   hone_rt_window_out_numel(w), hone_rt_window_in_numel(w)},
                  groups};
    j.k = fast_2d(w) && j.g.rows > 0 && j.g.mg > 0 ? batch_size(&j.g) : 0;
    if (j.k == 0)
        return j;
    j.per_worker = (size_t)(j.k * batch_floats_per_image(&j.g) + j.g.rows * j.g.mg);
    j.batches = balance_batches(n, &j.k);
    int64_t wfl = m * j.g.rows;
    j.slabs = GRAD_SLAB_FLOATS / (wfl > 0 ? wfl : 1);
    j.slabs = j.slabs > GRAD_MAX_SLABS ? GRAD_MAX_SLABS : j.slabs < 1 ? 1 : j.slabs;
    j.slabs = j.slabs > j.batches ? j.batches : j.slabs;
    return j;
}

/* Batches [t0, t1) of slab-local accumulation into dwp (NULL: no dW). */
static void grad_batches(const grad_job *j, int64_t t0, int64_t t1, float *dwp, float *col)
{
    const grad_group *g = &j->g;
    hone_rt_window tw = transposed_window(g->w);
    for (int64_t t = t0; t < t1; t++) {
        int64_t b = t * j->k, kb = b + j->k <= g->n ? j->k : g->n - b;
        if (j->dx && !j->wf)
            memset(j->dx + b * g->c * g->xp, 0, sizeof(float) * (size_t)(kb * g->c * g->xp));
        for (int64_t gi = 0; gi < j->groups; gi++) {
            if (dwp)
                dw_batch_2d(g, b, kb, gi, j->x, j->dy, dwp + gi * g->mg * g->rows, col);
            if (j->dx && j->wf)
                dx_unit_2d(g, &tw, b, kb, gi, j->wf, j->dy, j->dx, col);
            else if (j->dx)
                dx_batch_2d(g, b, kb, gi, j->wt + gi * g->mg * g->rows, j->dy, j->dx, col);
        }
    }
}

/* Slabs [s0, s1) on worker `worker`. */
static void grad_slabs(void *ctx, int64_t s0, int64_t s1, int worker)
{
    const grad_job *j = ctx;
    float *col = j->scratch + (size_t)worker * j->per_worker;
    size_t wfl = (size_t)(j->g.m * j->g.rows);
    for (int64_t s = s0; s < s1; s++) {
        float *dwp = !j->dw ? NULL : s == 0 ? j->dw : j->parts + (size_t)(s - 1) * wfl;
        if (dwp)
            memset(dwp, 0, sizeof(float) * wfl);
        grad_batches(j, s * j->batches / j->slabs, (s + 1) * j->batches / j->slabs, dwp, col);
    }
}

/* Sum of p[0..len) in 8 interleaved partial sums (lane k sums elements
 * 8i + k), added pairwise in a fixed order, then the tail: vector code
 * without a serial dependency chain, the same result with or without SSE. */
static float plane_sum(const float *p, int64_t len)
{
    float part[8] = {0};
    int64_t i = 0;
#ifdef __SSE2__
    __m128 lo = _mm_setzero_ps(), hi = _mm_setzero_ps();
    for (; i + 8 <= len; i += 8) {
        lo = _mm_add_ps(lo, _mm_loadu_ps(p + i));
        hi = _mm_add_ps(hi, _mm_loadu_ps(p + i + 4));
    }
    _mm_storeu_ps(part, lo);
    _mm_storeu_ps(part + 4, hi);
#else
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++)
            part[k] += p[i + k];
#endif
    float s = ((part[0] + part[1]) + (part[2] + part[3])) +
              ((part[4] + part[5]) + (part[6] + part[7]));
    for (; i < len; i++)
        s += p[i];
    return s;
}

/* db over channels [c0, c1): per channel, the images in order. */
typedef struct bias_job {
    int64_t n, m, plane;
    const float *dy;
    float *db;
} bias_job;

static void bias_range(void *ctx, int64_t c0, int64_t c1, int worker)
{
    (void)worker;
    const bias_job *j = ctx;
    for (int64_t ch = c0; ch < c1; ch++) {
        float acc = 0;
        for (int64_t b = 0; b < j->n; b++)
            acc += plane_sum(j->dy + (b * j->m + ch) * j->plane, j->plane);
        j->db[ch] = acc;
    }
}

size_t hone_rt_conv_grad_pool_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                      int64_t groups, int workers)
{
    grad_job j = grad_job_of(w, GRAD_BATCH_COLS, c, m, groups);
    if (j.k == 0)
        return hone_rt_conv_grad_scratch(w, c, m, groups);
    /* flipped weights, the partial sums past the first (which is dW itself), workers */
    return (size_t)(m * j.g.rows * GRAD_MAX_SLABS) +
           j.per_worker * (size_t)(workers > 0 ? workers : 1);
}

void hone_rt_conv_grad_pool(hone_rt_pool *pool, const hone_rt_window *w, int64_t n, int64_t c,
                            int64_t m, int64_t groups, const float *x, const float *wt,
                            const float *dy, float *dx, float *dw, float *db, float *scratch)
{
    grad_job j = grad_job_of(w, n, c, m, groups);
    if (j.k == 0 || n <= 0) {
        hone_rt_conv_grad(w, n, c, m, groups, x, wt, dy, dx, dw, db, scratch);
        return;
    }
    size_t wfl = (size_t)(m * j.g.rows);
    j.x = x;
    j.wt = wt;
    j.dy = dy;
    j.dx = dx;
    j.dw = dw;
    j.parts = scratch + wfl;
    j.scratch = scratch + wfl * GRAD_MAX_SLABS;
    if (dx && unit_stride(w)) {
        flip_weights(&j.g, groups, wt, scratch);
        j.wf = scratch;
    }
    if (db) {
        bias_job bj = {n, m, j.g.total, dy, db};
        hone_rt_parallel_for(pool, m, 1, bias_range, &bj);
    }
    hone_rt_parallel_for(pool, j.slabs, 1, grad_slabs, &j);
    for (int64_t s = 1; dw && s < j.slabs; s++) {
        const float *p = j.parts + (size_t)(s - 1) * wfl;
        for (size_t i = 0; i < wfl; i++)
            dw[i] += p[i];
    }
}
