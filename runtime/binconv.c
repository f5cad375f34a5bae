/*
 * Binary convolution kernels (hone.BinaryConv, docs/CUSTOM_OPS.md).
 *
 * Weights are signs packed as bits: row o of the packed matrix holds the
 * c*kh*kw signs of output filter o in ONNX weight order (j = (ci*kh + ky)*kw
 * + kx), bit j at byte j >> 3, bit j & 7; 1 means +1 and 0 means -1, so no
 * fp32 weight is ever stored. Every kernel computes
 *     y[n,o,p] = alpha[o] * dot(o, p) + bias[o]        (float32 mul, then add)
 * where dot sums sign(w) * a over the window taps that fall inside the image
 * (zero padding contributes nothing, exactly as a float Conv of a(x) does).
 *
 * W1A1 (a = +1 when x >= thresh[c], else -1): the activations of one image
 * are packed per pixel into ceil(c/64) words, the weights (repacked once by
 * the compiler, hone_rt_binconv_xnor_weights) per tap and word with the
 * output channels innermost, and dot = c*taps_in_image - 2*popcount(x ^ w),
 * an exact integer. The popcount loop over output channels is compiled
 * twice: for AVX-512 VPOPCNTDQ (eight 64-bit popcounts per instruction) and
 * for the scalar POPCNT instruction, chosen at run time; plain C otherwise.
 *
 * W1 (a = x): im2col tiles of the input; blocks of 8 output channels expand
 * their signs into a +-1 tile (k x 8 floats of scratch, the only unpacked
 * form: no fp32 weight tensor exists) and accumulate 8 channels x 16
 * positions in registers over the whole reduction.
 *
 * Only 2-D windows, group 1.
 */
#include <stdbool.h>
#include <string.h>
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#include "hone_rt.h"

#define W1_TILE 256
#define W1_BLOCK 8

/* The hot loops need GCC's full vectoriser (-O2 only vectorises loops of known trip counts). */
#if defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((optimize("O3")))
/* ... and alpha * dot + bias stays two roundings (no FMA), as the interpreter computes it. */
#define HOT_EXACT __attribute__((optimize("O3", "fp-contract=off")))
#else
#define HOT
#define HOT_EXACT
#endif

size_t hone_rt_binconv_row_bytes(int64_t k)
{
    return (size_t)((k + 7) / 8);
}

void hone_rt_binconv_pack_signs(const float *w, int64_t rows, int64_t k, uint8_t *bits)
{
    size_t rb = hone_rt_binconv_row_bytes(k);
    memset(bits, 0, rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++)
            if (w[r * k + j] >= 0)
                bits[(size_t)r * rb + (size_t)(j >> 3)] |= (uint8_t)(1u << (j & 7));
}

int hone_rt_binconv_bit(const uint8_t *bits, int64_t k, int64_t row, int64_t j)
{
    return (bits[(size_t)row * hone_rt_binconv_row_bytes(k) + (size_t)(j >> 3)] >> (j & 7)) & 1;
}

/* Words per pixel of c packed channels. */
static int64_t words(int64_t c)
{
    return (c + 63) / 64;
}

size_t hone_rt_binconv_xnor_weights_count(int64_t c, int64_t m, int64_t taps)
{
    return (size_t)(taps * words(c) * m);
}

void hone_rt_binconv_xnor_weights(int64_t c, int64_t m, int64_t taps, const uint8_t *bits,
                                  uint64_t *wp)
{
    int64_t cw = words(c), k = c * taps;
    memset(wp, 0, sizeof *wp * hone_rt_binconv_xnor_weights_count(c, m, taps));
    for (int64_t o = 0; o < m; o++)
        for (int64_t ci = 0; ci < c; ci++)
            for (int64_t t = 0; t < taps; t++)
                if (hone_rt_binconv_bit(bits, k, o, ci * taps + t))
                    wp[(t * cw + ci / 64) * m + o] |= (uint64_t)1 << (ci & 63);
}

size_t hone_rt_binconv_xnor_scratch(const hone_rt_window *w, int64_t c, int64_t m)
{
    /* the packed image, then a row's counts [ow][m] and its in-image tap counts [ow] */
    return sizeof(uint64_t) * (size_t)(w->in[0] * w->in[1] * words(c) + w->out[1] * (m + 1));
}

/* Packs image x[c, ih, iw] into xb[pixel][word]: bit ci set when x >= thresh[ci]. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
/* pack_image with AVX-512: 16 pixels of a channel per compare, their bits or-ed into two
 * registers of 8 words, one 64-channel word at a time. Same bits as the loop below. */
__attribute__((target("avx512f"))) static void pack_image_avx512(const hone_rt_window *w,
                                                                int64_t c, const float *x,
                                                                const float *thresh, uint64_t *xb)
{
    int64_t hw = w->in[0] * w->in[1], cw = words(c);
    for (int64_t p = 0; p < hw; p += 16) {
        int64_t n = hw - p < 16 ? hw - p : 16;
        __mmask16 ld = n == 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        for (int64_t j = 0; j < cw; j++) {
            __m512i lo = _mm512_setzero_si512(), hi = lo;
            for (int64_t ci = j * 64; ci < c && ci < (j + 1) * 64; ci++) {
                __m512 v = _mm512_maskz_loadu_ps(ld, x + ci * hw + p);
                __m512 t = _mm512_set1_ps(thresh ? thresh[ci] : 0.0f);
                __mmask16 ge = _mm512_mask_cmp_ps_mask(ld, v, t, _CMP_GE_OQ);
                __m512i bit = _mm512_set1_epi64((long long)((uint64_t)1 << (ci & 63)));
                lo = _mm512_mask_or_epi64(lo, (__mmask8)ge, lo, bit);
                hi = _mm512_mask_or_epi64(hi, (__mmask8)(ge >> 8), hi, bit);
            }
            uint64_t words16[16];
            _mm512_storeu_si512(words16, lo);
            _mm512_storeu_si512(words16 + 8, hi);
            for (int64_t i = 0; i < n; i++)
                xb[(p + i) * cw + j] = words16[i];
        }
    }
}
#endif

HOT static void pack_image(const hone_rt_window *w, int64_t c, const float *x, const float *thresh,
                       uint64_t *xb)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (__builtin_cpu_supports("avx512f")) {
        pack_image_avx512(w, c, x, thresh, xb);
        return;
    }
#endif
    int64_t hw = w->in[0] * w->in[1], cw = words(c);
    memset(xb, 0, sizeof *xb * (size_t)(hw * cw));
    for (int64_t ci = 0; ci < c; ci++) {
        float t = thresh ? thresh[ci] : 0.0f;
        int sh = (int)(ci & 63);
        uint64_t *restrict col = xb + ci / 64;
        const float *restrict xr = x + ci * hw;
        for (int64_t p = 0; p < hw; p++)
            col[p * cw] |= (uint64_t)(xr[p] >= t) << sh;
    }
}

/* What one output row of the XNOR kernel reads. */
typedef struct xnor_args {
    const hone_rt_window *w;
    int64_t c, m, cw, ys;
    const uint64_t *wp, *xb;
    const float *alpha, *bias;
} xnor_args;

/* Output row oy of all m channels into y (channel stride a->ys): per pixel, the
 * mismatch counts acc[o] = sum over in-image taps and words of popcount(x ^ w[o])
 * (the output channels innermost, so the popcount loop vectorises), then
 * y = alpha * (c * taps - 2 * acc) + bias. One copy per target below. */
/* Runs the statements after it for every in-image tap of output pixel (oy, ox), with xp
 * (the pixel's input words) and wt (the tap's weight words of channel 0), counting the
 * taps in nv. */
#define XNOR_FOR_TAPS(...)                                                              \
    for (int64_t ky = 0; ky < w->k[0]; ky++) {                                          \
        int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];                    \
        if (iy < 0 || iy >= w->in[0])                                                   \
            continue;                                                                   \
        for (int64_t kx = 0; kx < w->k[1]; kx++) {                                      \
            int64_t ix = ox * w->stride[1] - w->pad[1] + kx * w->dil[1];                \
            if (ix < 0 || ix >= w->in[1])                                               \
                continue;                                                               \
            const uint64_t *xp = a->xb + (iy * w->in[1] + ix) * cw;                     \
            const uint64_t *wt = a->wp + (ky * w->k[1] + kx) * cw * m;                  \
            __VA_ARGS__                                                                 \
            nv++;                                                                       \
        }                                                                               \
    }

/* Pixel ox's counts are in acc[ox * m ...] and its in-image taps in nvs[ox]; once the
 * row is done, y of all m channels, channel by channel, so the stores run along each
 * output plane's row instead of jumping between m planes for every pixel. */
#define XNOR_STORE_ROW()                                                                \
    do {                                                                                \
        const int64_t *nvs = (const int64_t *)(acc + w->out[1] * m);                    \
        for (int64_t o = 0; o < m; o++) {                                               \
            float al = a->alpha[o], bi = a->bias ? a->bias[o] : 0.0f;                   \
            float *yo = y + o * a->ys;                                                  \
            for (int64_t ox = 0; ox < w->out[1]; ox++)                                  \
                yo[ox] = al * (float)(a->c * nvs[ox] - 2 * (int64_t)acc[ox * m + o]) + bi; \
        }                                                                               \
    } while (0)
#define XNOR_PIXEL_TAPS(ox, nv) (((int64_t *)(acc + w->out[1] * m))[ox] = (nv))

#define XNOR_ROW_BODY                                                                   \
    const hone_rt_window *w = a->w;                                                     \
    int64_t m = a->m, cw = a->cw;                                                       \
    for (int64_t ox = 0; ox < w->out[1]; ox++) {                                        \
        int64_t nv = 0;                                                                 \
        uint64_t *restrict pa = acc + ox * m;                                           \
        for (int64_t o = 0; o < m; o++)                                                 \
            pa[o] = 0;                                                                  \
        XNOR_FOR_TAPS(for (int64_t j = 0; j < cw; j++) {                                \
            uint64_t xv = xp[j];                                                        \
            const uint64_t *restrict wr = wt + j * m;                                   \
            for (int64_t o = 0; o < m; o++)                                             \
                pa[o] += (uint64_t)__builtin_popcountll(xv ^ wr[o]);                    \
        })                                                                              \
        XNOR_PIXEL_TAPS(ox, nv);                                                        \
    }                                                                                   \
    XNOR_STORE_ROW();

typedef void (*xnor_row_fn)(const xnor_args *a, int64_t oy, uint64_t *restrict acc, float *y);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86_CLONES 1
/* AVX-512 mismatch counts of output channels [o0, o0 + 8 * NV) at pixel (oy, ox) into
 * acc, the NV accumulators in registers for every tap and word (the generic body reloads
 * and stores acc[] for each); nv counts the in-image taps. */
#define XNOR_VP_BLOCK(NV)                                                                  \
    do {                                                                                   \
        __m512i s_[NV];                                                                    \
        for (int v_ = 0; v_ < (NV); v_++)                                                  \
            s_[v_] = _mm512_setzero_si512();                                               \
        nv = 0;                                                                            \
        XNOR_FOR_TAPS(for (int64_t j = 0; j < cw; j++) {                                   \
            __m512i xv = _mm512_set1_epi64((long long)xp[j]);                              \
            for (int v_ = 0; v_ < (NV); v_++)                                              \
                s_[v_] = _mm512_add_epi64(                                                 \
                    s_[v_], _mm512_popcnt_epi64(_mm512_xor_si512(                          \
                                xv, _mm512_loadu_si512(wt + j * m + o0 + 8 * v_))));       \
        })                                                                                 \
        for (int v_ = 0; v_ < (NV); v_++)                                                  \
            _mm512_storeu_si512(acc + ox * m + o0 + 8 * v_, s_[v_]);                       \
    } while (0)

/* One word per pixel (c <= 64), stride 1 along x, m a multiple of 8: 8 output pixels
 * of a row per register instead of 8 channels, so a tap is one load of 8 pixels' words
 * (lanes in the padding masked off: not read, not counted), each channel's weight word
 * broadcast against it, and the results go to y as 8 contiguous floats per channel (the
 * channel-major layout of the generic path needs a gather per 8 outputs). Same integers,
 * conversion, product and sum as XNOR_STORE_ROW. False: not this case. */
HOT_EXACT __attribute__((target("avx512f,avx512vl,avx512dq,avx512vpopcntdq"))) static bool
xnor_row_pixels(const xnor_args *a, int64_t oy, float *y)
{
    const hone_rt_window *w = a->w;
    int64_t ow = w->out[1], iw = w->in[1], m = a->m, kh = w->k[0], kw = w->k[1];
    enum { MAXT = 64 };
    if (a->cw != 1 || w->stride[1] != 1 || m % 8 != 0 || kh * kw > MAXT)
        return false;
    const __m512i one = _mm512_set1_epi64(1), cc = _mm512_set1_epi64(a->c);
    for (int64_t ox = 0; ox < ow; ox += 8) {
        int64_t n = ow - ox < 8 ? ow - ox : 8, nt = 0;
        __mmask8 km[MAXT];
        const uint64_t *xs[MAXT], *wts[MAXT];
        __m512i nvv = _mm512_setzero_si512();
        for (int64_t ky = 0; ky < kh; ky++) {
            int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
            if (iy < 0 || iy >= w->in[0])
                continue;
            for (int64_t kx = 0; kx < kw; kx++) {
                int64_t ix0 = ox - w->pad[1] + kx * w->dil[1];
                int64_t lo = ix0 < 0 ? -ix0 : 0, hi = iw - ix0 < n ? iw - ix0 : n;
                if (lo >= hi)
                    continue;
                km[nt] = (__mmask8)(((1u << hi) - 1) & ~((1u << lo) - 1));
                xs[nt] = a->xb + iy * iw + ix0;
                wts[nt] = a->wp + (ky * kw + kx) * m;
                nvv = _mm512_mask_add_epi64(nvv, km[nt], nvv, one);
                nt++;
            }
        }
        __m512i full = _mm512_mullo_epi64(cc, nvv);
        __mmask8 st = (__mmask8)((1u << n) - 1);
        for (int64_t o0 = 0; o0 < m; o0 += 8) {
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0,
                    s6 = s0, s7 = s0;
            for (int64_t t = 0; t < nt; t++) {
                __mmask8 k = km[t];
                __m512i xv = _mm512_maskz_loadu_epi64(k, xs[t]);
                const uint64_t *wt = wts[t] + o0;
#define XNOR_PX(sv, i)                                                                         \
    sv = _mm512_mask_add_epi64(                                                                \
        sv, k, sv, _mm512_popcnt_epi64(_mm512_xor_si512(xv, _mm512_set1_epi64((long long)wt[i]))))
                XNOR_PX(s0, 0);
                XNOR_PX(s1, 1);
                XNOR_PX(s2, 2);
                XNOR_PX(s3, 3);
                XNOR_PX(s4, 4);
                XNOR_PX(s5, 5);
                XNOR_PX(s6, 6);
                XNOR_PX(s7, 7);
#undef XNOR_PX
            }
#define XNOR_PX_STORE(sv, i)                                                                   \
    do {                                                                                       \
        int64_t o_ = o0 + (i);                                                                 \
        __m512i d_ = _mm512_sub_epi64(full, _mm512_add_epi64(sv, sv));                         \
        __m256 v_ = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(a->alpha[o_]),                  \
                                                _mm512_cvtepi64_ps(d_)),                       \
                                  _mm256_set1_ps(a->bias ? a->bias[o_] : 0.0f));               \
        _mm256_mask_storeu_ps(y + o_ * a->ys + ox, st, v_);                                    \
    } while (0)
            XNOR_PX_STORE(s0, 0);
            XNOR_PX_STORE(s1, 1);
            XNOR_PX_STORE(s2, 2);
            XNOR_PX_STORE(s3, 3);
            XNOR_PX_STORE(s4, 4);
            XNOR_PX_STORE(s5, 5);
            XNOR_PX_STORE(s6, 6);
            XNOR_PX_STORE(s7, 7);
#undef XNOR_PX_STORE
        }
    }
    return true;
}

HOT_EXACT __attribute__((target("avx512f,avx512vl,avx512dq,avx512vpopcntdq"))) static void
xnor_row_vpopcnt(const xnor_args *a, int64_t oy, uint64_t *restrict acc, float *y)
{
    if (xnor_row_pixels(a, oy, y))
        return;
    if (a->m % 8 != 0) {
        XNOR_ROW_BODY
        return;
    }
    const hone_rt_window *w = a->w;
    int64_t m = a->m, cw = a->cw;
    for (int64_t ox = 0; ox < w->out[1]; ox++) {
        int64_t nv = 0, o0 = 0;
        for (; o0 + 64 <= m; o0 += 64)
            XNOR_VP_BLOCK(8);
        for (; o0 + 32 <= m; o0 += 32)
            XNOR_VP_BLOCK(4);
        for (; o0 < m; o0 += 8)
            XNOR_VP_BLOCK(1);
        XNOR_PIXEL_TAPS(ox, nv);
    }
    /* XNOR_STORE_ROW, 8 pixels of a channel at a time: their counts gathered (stride m),
     * the same integer, conversion, product and sum as the scalar form */
    const int64_t *nvs = (const int64_t *)(acc + w->out[1] * m);
    int64_t ow = w->out[1];
    __m512i cc = _mm512_set1_epi64(a->c);
    for (int64_t o = 0; o < m; o++) {
        __m256 al = _mm256_set1_ps(a->alpha[o]), bi = _mm256_set1_ps(a->bias ? a->bias[o] : 0.0f);
        float *yo = y + o * a->ys;
        for (int64_t ox = 0; ox < ow; ox += 8) {
            __mmask8 k = ow - ox >= 8 ? 0xff : (__mmask8)((1u << (ow - ox)) - 1);
            __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(ox * m + o),
                                           _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                                              _mm512_set1_epi64(m)));
            __m512i cnt = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), k, idx,
                                                      (const long long *)acc, 8);
            __m512i nvv = _mm512_maskz_loadu_epi64(k, nvs + ox);
            __m512i d = _mm512_sub_epi64(_mm512_mullo_epi64(cc, nvv), _mm512_add_epi64(cnt, cnt));
            __m256 v = _mm256_add_ps(_mm256_mul_ps(al, _mm512_cvtepi64_ps(d)), bi);
            _mm256_mask_storeu_ps(yo + ox, k, v);
        }
    }
}

HOT_EXACT __attribute__((target("popcnt"))) static void
xnor_row_popcnt(const xnor_args *a, int64_t oy, uint64_t *restrict acc, float *y)
{
    XNOR_ROW_BODY
}
#endif

HOT_EXACT static void xnor_row_plain(const xnor_args *a, int64_t oy, uint64_t *restrict acc, float *y)
{
    XNOR_ROW_BODY
}

/* The widest popcount this CPU runs. */
static xnor_row_fn pick_xnor(void)
{
#ifdef HAVE_X86_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return xnor_row_vpopcnt;
    if (__builtin_cpu_supports("popcnt"))
        return xnor_row_popcnt;
#endif
    return xnor_row_plain;
}

const char *hone_rt_binconv_popcount_kind(void)
{
    xnor_row_fn f = pick_xnor();
#ifdef HAVE_X86_CLONES
    if (f == xnor_row_vpopcnt)
        return "avx512-vpopcntdq";
    if (f == xnor_row_popcnt)
        return "popcnt";
#endif
    return f == xnor_row_plain ? "portable" : "?";
}

void hone_rt_binconv_xnor(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          const uint64_t *wp, const float *alpha, const float *bias,
                          const float *thresh, const float *x, float *y, void *scratch)
{
    int64_t hw = w->in[0] * w->in[1], ohw = w->out[0] * w->out[1];
    uint64_t *xb = scratch, *acc = xb + hw * words(c);
    xnor_row_fn f = pick_xnor();
    xnor_args a = {w, c, m, words(c), ohw, wp, xb, alpha, bias};
    for (int64_t b = 0; b < n; b++) {
        pack_image(w, c, x + b * c * hw, thresh, xb);
        for (int64_t oy = 0; oy < w->out[0]; oy++)
            f(&a, oy, acc, y + b * m * ohw + oy * w->out[1]);
    }
}

/* sg[j][b] = +-1 for the nb <= W1_BLOCK output channels of a block (0 past nb): the
 * only expansion of the bits, one block's signs at a time. */
static void sign_tile(const uint8_t *bits, size_t rb, int nb, int64_t k, float *sg)
{
    for (int64_t j = 0; j < k; j++)
        for (int b = 0; b < W1_BLOCK; b++)
            sg[j * W1_BLOCK + b] = b >= nb ? 0.0f
                                   : (bits[(size_t)b * rb + (size_t)(j >> 3)] >> (j & 7)) & 1
                                       ? 1.0f
                                       : -1.0f;
}

/* acc[b][p] = sum_j sg[j][b] * col[j][p]: W1_BLOCK (8) channels x 16 positions held in
 * vector registers over the whole reduction, each column element loaded once per block. */
typedef float v16f __attribute__((vector_size(64)));

#define W1_BODY                                                                      \
    int64_t full = np / 16 * 16;                                                     \
    for (int64_t p0 = 0; p0 < full; p0 += 16) {                                      \
        v16f r0 = {0}, r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0}, r5 = {0}, r6 = {0},   \
             r7 = {0};                                                               \
        for (int64_t j = 0; j < k; j++) {                                            \
            v16f c;                                                                  \
            memcpy(&c, col + j * np + p0, sizeof c);                                 \
            const float *sj = sg + j * W1_BLOCK;                                     \
            r0 += sj[0] * c;                                                         \
            r1 += sj[1] * c;                                                         \
            r2 += sj[2] * c;                                                         \
            r3 += sj[3] * c;                                                         \
            r4 += sj[4] * c;                                                         \
            r5 += sj[5] * c;                                                         \
            r6 += sj[6] * c;                                                         \
            r7 += sj[7] * c;                                                         \
        }                                                                            \
        v16f rs[W1_BLOCK] = {r0, r1, r2, r3, r4, r5, r6, r7};                        \
        for (int b = 0; b < W1_BLOCK; b++)                                           \
            memcpy(acc + b * np + p0, &rs[b], sizeof rs[b]);                         \
    }                                                                                \
    for (int64_t p = full; p < np; p++)                                              \
        for (int b = 0; b < W1_BLOCK; b++) {                                         \
            float t = 0.0f;                                                          \
            for (int64_t j = 0; j < k; j++)                                          \
                t += sg[j * W1_BLOCK + b] * col[j * np + p];                         \
            acc[b * np + p] = t;                                                     \
        }

typedef void (*w1_fn)(const float *restrict, int64_t, const float *restrict, int64_t,
                      float *restrict);

#ifdef HAVE_X86_CLONES
HOT __attribute__((target("avx512f"))) static void
w1_block_avx512(const float *restrict sg, int64_t k, const float *restrict col, int64_t np,
                float *restrict acc)
{
    W1_BODY
}

HOT __attribute__((target("avx2,fma"))) static void
w1_block_avx2(const float *restrict sg, int64_t k, const float *restrict col, int64_t np,
              float *restrict acc)
{
    W1_BODY
}
#endif

HOT static void w1_block_plain(const float *restrict sg, int64_t k, const float *restrict col,
                               int64_t np, float *restrict acc)
{
    W1_BODY
}

static w1_fn pick_w1(void)
{
#ifdef HAVE_X86_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return w1_block_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return w1_block_avx2;
#endif
    return w1_block_plain;
}

size_t hone_rt_binconv_w1_scratch(const hone_rt_window *w, int64_t c)
{
    int64_t k = c * hone_rt_window_k_numel(w);
    return sizeof(float) * (size_t)((k + W1_BLOCK) * W1_TILE + k * W1_BLOCK);
}

void hone_rt_binconv_w1(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                        const uint8_t *bits, const float *alpha, const float *bias, const float *x,
                        float *y, void *scratch)
{
    int64_t hw = w->in[0] * w->in[1], ohw = w->out[0] * w->out[1];
    int64_t k = c * hone_rt_window_k_numel(w);
    size_t rb = hone_rt_binconv_row_bytes(k);
    float *col = scratch, *acc = col + k * W1_TILE, *sg = acc + W1_BLOCK * W1_TILE;
    w1_fn f = pick_w1();
    for (int64_t b = 0; b < n; b++)
        for (int64_t p0 = 0; p0 < ohw; p0 += W1_TILE) {
            int64_t p1 = p0 + W1_TILE < ohw ? p0 + W1_TILE : ohw, np = p1 - p0;
            hone_rt_im2col(w, c, x + b * c * hw, p0, p1, col);
            for (int64_t o0 = 0; o0 < m; o0 += W1_BLOCK) {
                int nb = (int)(m - o0 < W1_BLOCK ? m - o0 : W1_BLOCK);
                sign_tile(bits + (size_t)o0 * rb, rb, nb, k, sg);
                f(sg, k, col, np, acc);
                for (int q = 0; q < nb; q++) {
                    float *yo = y + (b * m + o0 + q) * ohw + p0;
                    for (int64_t p = 0; p < np; p++)
                        yo[p] = alpha[o0 + q] * acc[q * np + p] + (bias ? bias[o0 + q] : 0.0f);
                }
            }
        }
}
