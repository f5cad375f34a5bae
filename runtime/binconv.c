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
 * W1 (a = x): im2col tiles of the input, and each output row accumulates
 * +-1 times the tile rows, the sign read straight from the bits.
 *
 * Only 2-D windows, group 1.
 */
#include <string.h>

#include "hone_rt.h"

#define W1_TILE 256

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
    return sizeof(uint64_t) * (size_t)(w->in[0] * w->in[1] * words(c) + m);
}

/* Packs image x[c, ih, iw] into xb[pixel][word]: bit ci set when x >= thresh[ci]. */
static void pack_image(const hone_rt_window *w, int64_t c, const float *x, const float *thresh,
                       uint64_t *xb)
{
    int64_t hw = w->in[0] * w->in[1], cw = words(c);
    memset(xb, 0, sizeof *xb * (size_t)(hw * cw));
    for (int64_t ci = 0; ci < c; ci++) {
        float t = thresh ? thresh[ci] : 0.0f;
        uint64_t bit = (uint64_t)1 << (ci & 63);
        uint64_t *col = xb + ci / 64;
        for (int64_t p = 0; p < hw; p++)
            if (x[ci * hw + p] >= t)
                col[p * cw] |= bit;
    }
}

/* acc[o] += popcount(xv ^ wr[o]) for o in [0, m): the hot loop, one copy per target. */
#define MISMATCH_BODY                                          \
    for (int64_t o = 0; o < m; o++)                            \
        acc[o] += (uint64_t)__builtin_popcountll(xv ^ wr[o]);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86_CLONES 1
__attribute__((target("avx512f,avx512vl,avx512vpopcntdq"))) static void
mismatch_vpopcnt(uint64_t xv, const uint64_t *restrict wr, int64_t m, uint64_t *restrict acc)
{
    MISMATCH_BODY
}

__attribute__((target("popcnt"))) static void mismatch_popcnt(uint64_t xv,
                                                              const uint64_t *restrict wr,
                                                              int64_t m, uint64_t *restrict acc)
{
    MISMATCH_BODY
}
#endif

static void mismatch_plain(uint64_t xv, const uint64_t *restrict wr, int64_t m,
                           uint64_t *restrict acc)
{
    MISMATCH_BODY
}

typedef void (*mismatch_fn)(uint64_t, const uint64_t *restrict, int64_t, uint64_t *restrict);

/* The widest popcount this CPU runs. */
static mismatch_fn pick_mismatch(void)
{
#ifdef HAVE_X86_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vl"))
        return mismatch_vpopcnt;
    if (__builtin_cpu_supports("popcnt"))
        return mismatch_popcnt;
#endif
    return mismatch_plain;
}

const char *hone_rt_binconv_popcount_kind(void)
{
    mismatch_fn f = pick_mismatch();
#ifdef HAVE_X86_CLONES
    if (f == mismatch_vpopcnt)
        return "avx512-vpopcntdq";
    if (f == mismatch_popcnt)
        return "popcnt";
#endif
    return f == mismatch_plain ? "portable" : "?";
}

/* One output pixel (oy, ox) of all m channels into y (stride between channels ys). */
static void xnor_pixel(const hone_rt_window *w, int64_t c, int64_t m, const uint64_t *wp,
                       const uint64_t *xb, int64_t oy, int64_t ox, mismatch_fn f, uint64_t *acc,
                       const float *alpha, const float *bias, float *y, int64_t ys)
{
    int64_t cw = words(c), nv = 0;
    memset(acc, 0, sizeof *acc * (size_t)m);
    for (int64_t ky = 0; ky < w->k[0]; ky++) {
        int64_t iy = oy * w->stride[0] - w->pad[0] + ky * w->dil[0];
        if (iy < 0 || iy >= w->in[0])
            continue;
        for (int64_t kx = 0; kx < w->k[1]; kx++) {
            int64_t ix = ox * w->stride[1] - w->pad[1] + kx * w->dil[1];
            if (ix < 0 || ix >= w->in[1])
                continue;
            const uint64_t *xp = xb + (iy * w->in[1] + ix) * cw;
            const uint64_t *wt = wp + (ky * w->k[1] + kx) * cw * m;
            for (int64_t j = 0; j < cw; j++)
                f(xp[j], wt + j * m, m, acc);
            nv++;
        }
    }
    for (int64_t o = 0; o < m; o++) {
        float dot = (float)(c * nv - 2 * (int64_t)acc[o]);
        y[o * ys] = alpha[o] * dot + (bias ? bias[o] : 0.0f);
    }
}

void hone_rt_binconv_xnor(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          const uint64_t *wp, const float *alpha, const float *bias,
                          const float *thresh, const float *x, float *y, void *scratch)
{
    int64_t hw = w->in[0] * w->in[1], ohw = w->out[0] * w->out[1];
    uint64_t *xb = scratch, *acc = xb + hw * words(c);
    mismatch_fn f = pick_mismatch();
    for (int64_t b = 0; b < n; b++) {
        pack_image(w, c, x + b * c * hw, thresh, xb);
        float *yb = y + b * m * ohw;
        for (int64_t oy = 0; oy < w->out[0]; oy++)
            for (int64_t ox = 0; ox < w->out[1]; ox++)
                xnor_pixel(w, c, m, wp, xb, oy, ox, f, acc, alpha, bias,
                           yb + oy * w->out[1] + ox, ohw);
    }
}

size_t hone_rt_binconv_w1_scratch(const hone_rt_window *w, int64_t c)
{
    return sizeof(float) * (size_t)(c * hone_rt_window_k_numel(w) + 1) * W1_TILE;
}

/* acc[p] = sum_j s_j * col[j][p] for one output channel, s_j read from its bit row. */
static void w1_row(const uint8_t *row, int64_t k, const float *col, int64_t np, float *acc)
{
    for (int64_t p = 0; p < np; p++)
        acc[p] = 0.0f;
    for (int64_t j = 0; j < k; j++) {
        float s = (row[j >> 3] >> (j & 7)) & 1 ? 1.0f : -1.0f;
        const float *cr = col + j * np;
        for (int64_t p = 0; p < np; p++)
            acc[p] += s * cr[p];
    }
}

void hone_rt_binconv_w1(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                        const uint8_t *bits, const float *alpha, const float *bias, const float *x,
                        float *y, void *scratch)
{
    int64_t hw = w->in[0] * w->in[1], ohw = w->out[0] * w->out[1];
    int64_t k = c * hone_rt_window_k_numel(w);
    size_t rb = hone_rt_binconv_row_bytes(k);
    float *col = scratch, *acc = col + k * W1_TILE;
    for (int64_t b = 0; b < n; b++)
        for (int64_t p0 = 0; p0 < ohw; p0 += W1_TILE) {
            int64_t p1 = p0 + W1_TILE < ohw ? p0 + W1_TILE : ohw, np = p1 - p0;
            hone_rt_im2col(w, c, x + b * c * hw, p0, p1, col);
            for (int64_t o = 0; o < m; o++) {
                w1_row(bits + (size_t)o * rb, k, col, np, acc);
                float *yo = y + (b * m + o) * ohw + p0;
                for (int64_t p = 0; p < np; p++)
                    yo[p] = alpha[o] * acc[p] + (bias ? bias[o] : 0.0f);
            }
        }
}
