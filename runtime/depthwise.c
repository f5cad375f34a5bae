/*
 * Depthwise 2-D convolution (group == input channels == output channels),
 * computed directly. Going through im2col + GEMM, a depthwise conv spends
 * most of its time building one-row column matrices for GEMMs of a single
 * output row; here each output row accumulates one kernel tap at a time: every
 * tap whose input row exists adds w[ky,kx] times a run of that input row, over
 * the run of output columns whose input column exists, while the row stays in
 * L1 (tap by tap over whole planes, the earlier order, kept a 112x112 plane in
 * L2 for 9 passes). Strides 1 and 2 are loops with constant strides, cloned for
 * AVX-512 and AVX2, so they vectorise; no scratch. With AVX-512, 16 output columns
 * per register, masked loads at the borders, and a dedicated 3x3 kernel. Planes
 * are split over the runtime's shared pool when the layer has at least 2^18 MACs.
 */
#include <stdbool.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

/* First and one-past-last output index o in [0, n) with 0 <= o*s + shift < len. */
static void valid_range(int64_t n, int64_t s, int64_t shift, int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t a = shift >= 0 ? 0 : (-shift + s - 1) / s;
    int64_t b = len - 1 - shift < 0 ? 0 : (len - 1 - shift) / s + 1;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo)
        *hi = *lo;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DW_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define DW_CLONES
#endif

/* yr[o] += wv * xr[o * s], o in [lo, hi); s a constant in the common cases, so the loop
 * vectorises (stride 2 through the compiler's interleaved loads; O3, since -O2's cheap
 * cost model leaves loops of unknown trip count scalar). */
#define DW_RUN(yr, xr, wv, lo, hi, s)                                                          \
    do {                                                                                       \
        float *restrict y_ = (yr);                                                             \
        const float *restrict x_ = (xr);                                                       \
        for (int64_t o_ = (lo); o_ < (hi); o_++)                                               \
            y_[o_] += (wv) * x_[o_ * (s)];                                                     \
    } while (0)

/* One plane: y[oh, ow] = bias + sum over taps of k[ky, kx] * x[iy, ix], output row by
 * output row: every tap whose input row exists adds w[ky,kx] times a run of that row
 * over the output columns whose input column exists, while the output row is in L1. */
DW_CLONES
static void dw_plane(const hone_rt_window *w, const float *x, const float *k, float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1];
    for (int64_t oy = 0; oy < oh; oy++) {
        float *yr = y + oy * ow;
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = bias;
        for (int64_t ky = 0; ky < w->k[0]; ky++) {
            int64_t iy = oy * s0 + ky * w->dil[0] - w->pad[0];
            if (iy < 0 || iy >= ih)
                continue;
            for (int64_t kx = 0; kx < w->k[1]; kx++) {
                float wv = k[ky * w->k[1] + kx];
                int64_t sx = kx * w->dil[1] - w->pad[1], lo, hi;
                valid_range(ow, s1, sx, iw, &lo, &hi);
                const float *xr = x + iy * iw + sx;
                if (s1 == 1)
                    DW_RUN(yr, xr, wv, lo, hi, 1);
                else if (s1 == 2)
                    DW_RUN(yr, xr, wv, lo, hi, 2);
                else
                    DW_RUN(yr, xr, wv, lo, hi, s1);
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DW_AVX512 1

/* Lanes of a 16-lane mask spread to the even lanes of two 16-lane masks (stride 2). */
static inline void even_masks(__mmask16 m, __mmask16 *lo, __mmask16 *hi)
{
    unsigned l = 0, h = 0;
    for (int j = 0; j < 8; j++) {
        l |= ((m >> j) & 1u) << (2 * j);
        h |= ((m >> (j + 8)) & 1u) << (2 * j);
    }
    *lo = (__mmask16)l;
    *hi = (__mmask16)h;
}

/* The masks of the kw taps for output columns [o, o + n): lanes whose input column
 * (valid for outputs [lo[kx], hi[kx])) exists, and their spread for stride 2. */
static inline __attribute__((always_inline)) void block_masks(const int64_t *lo, const int64_t *hi,
                                                             int64_t kw, int64_t o, int64_t n,
                                                             __mmask16 *m, __mmask16 *ml, __mmask16 *mh)
{
    for (int64_t kx = 0; kx < kw; kx++) {
        int64_t a = lo[kx] > o ? lo[kx] : o, b = hi[kx] < o + n ? hi[kx] : o + n;
        m[kx] = a >= b ? 0 : (__mmask16)(((1u << (b - o)) - 1) & ~((1u << (a - o)) - 1));
        even_masks(m[kx], &ml[kx], &mh[kx]);
    }
}

/* 16 lanes of input from p: lane j reads p[j * s1] (s1 1 or 2) where the masks allow;
 * even holds the indices 0, 2, .., 30. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
dw_load(const float *p, int64_t s1, __mmask16 m, __mmask16 ml, __mmask16 mh, __m512i even)
{
    if (s1 == 1)
        return _mm512_maskz_loadu_ps(m, p);
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(ml, p), even,
                                  _mm512_maskz_loadu_ps(mh, p + 16));
}

/* The 3x3 case (nearly every depthwise conv): output row by output row, so the three
 * input rows stay in L1 while all their column blocks are computed; per block, the taps'
 * masks come from a table made once per plane and the nine weights stay in registers;
 * each kernel row accumulates in its own register (three short FMA chains instead of
 * one of nine), then (row0 + row1) + row2 + bias. False (nothing done) for planes wider
 * than DW_MAX_BLOCKS blocks of 16. */
enum { DW_MAX_BLOCKS = 64 };
__attribute__((target("avx512f"))) static bool dw_plane3x3_avx512(const hone_rt_window *w,
                                                                 const float *x, const float *k,
                                                                 float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1], nb = (ow + 15) / 16, lo[3], hi[3], sh[3];
    if (nb > DW_MAX_BLOCKS)
        return false;
    __mmask16 m[DW_MAX_BLOCKS][3], ml[DW_MAX_BLOCKS][3], mh[DW_MAX_BLOCKS][3];
    for (int64_t kx = 0; kx < 3; kx++) {
        sh[kx] = kx * w->dil[1] - w->pad[1];
        valid_range(ow, s1, sh[kx], iw, &lo[kx], &hi[kx]);
    }
    for (int64_t bl = 0; bl < nb; bl++)
        block_masks(lo, hi, 3, bl * 16, ow - bl * 16 < 16 ? ow - bl * 16 : 16, m[bl], ml[bl],
                    mh[bl]);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    __m512 k0 = _mm512_set1_ps(k[0]), k1 = _mm512_set1_ps(k[1]), k2 = _mm512_set1_ps(k[2]);
    __m512 k3 = _mm512_set1_ps(k[3]), k4 = _mm512_set1_ps(k[4]), k5 = _mm512_set1_ps(k[5]);
    __m512 k6 = _mm512_set1_ps(k[6]), k7 = _mm512_set1_ps(k[7]), k8 = _mm512_set1_ps(k[8]);
/* lane j of tap kx reads column (o + j) * s1 + sh[kx] of row r */
#define DW_TAP(r, kx, kv)                                                                      \
    acc = _mm512_fmadd_ps(                                                                     \
        kv, dw_load((r) + o * s1 + sh[kx], s1, m[bl][kx], ml[bl][kx], mh[bl][kx], even), acc)
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r[3];
        for (int64_t ky = 0; ky < 3; ky++) {
            int64_t iy = oy * s0 + ky * w->dil[0] - w->pad[0];
            r[ky] = iy >= 0 && iy < ih ? x + iy * iw : NULL;
        }
        for (int64_t bl = 0; bl < nb; bl++) {
            int64_t o = bl * 16, n = ow - o < 16 ? ow - o : 16;
            __m512 acc, a0 = zero, a1 = zero, a2 = zero; /* one chain per kernel row */
            if (r[0]) {
                acc = a0;
                DW_TAP(r[0], 0, k0);
                DW_TAP(r[0], 1, k1);
                DW_TAP(r[0], 2, k2);
                a0 = acc;
            }
            if (r[1]) {
                acc = a1;
                DW_TAP(r[1], 0, k3);
                DW_TAP(r[1], 1, k4);
                DW_TAP(r[1], 2, k5);
                a1 = acc;
            }
            if (r[2]) {
                acc = a2;
                DW_TAP(r[2], 0, k6);
                DW_TAP(r[2], 1, k7);
                DW_TAP(r[2], 2, k8);
                a2 = acc;
            }
            acc = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), _mm512_set1_ps(bias));
            _mm512_mask_storeu_ps(y + oy * ow + o, (__mmask16)((1u << n) - 1), acc);
        }
    }
#undef DW_TAP
    return true;
}

/* Lanes t = src[b + t] where 0 <= b + t < n, else 0: read straight from the image,
 * never outside [0, n). */
__attribute__((target("avx512f"), always_inline)) static inline __m512
span16(const float *src, int64_t b, int64_t n)
{
    if (b >= 0 && b + 16 <= n)
        return _mm512_loadu_ps(src + b);
    if (b >= n || b + 16 <= 0)
        return _mm512_setzero_ps();
    if (b >= 0)
        return _mm512_maskz_loadu_ps((__mmask16)((1u << (n - b)) - 1), src + b);
    int64_t lead = -b, cnt = 16 - lead < n ? 16 - lead : n; /* lanes [lead, lead + cnt) */
    return _mm512_maskz_expandloadu_ps((__mmask16)(((1u << cnt) - 1) << lead), src);
}

/* Lanes t = v[t + s] of the 32 lanes lo:hi (s = 1, 2). */
#define DW_SHIFT(hi, lo, s)                                                                   \
    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), s))

/* FusedConv's epilogue on one output vector before its store: + the residual lanes (z
 * not NULL), then the bounds; the operations of plane_epilogue, so the same bits. */
typedef struct dw_epi {
    const float *z; /* the plane's residual, NULL: none */
    float lo, hi;
} dw_epi;

/* The 3x3 case on a zero-padded copy of the plane (undilated, strides 1 and 2): every
 * tap is a plain load, no masks, no tests for rows in the padding. The copy's rows are
 * 64-byte aligned and written as whole aligned vectors; the taps of 16 outputs are cut
 * from two aligned loads (valignd), so every load meets exactly one earlier store (a
 * load across two recent stores waits for them to retire: small planes, whose rows are
 * read right after they are written, ran 1.5x slower). For stride 2 each padded row is
 * stored de-interleaved, its even columns E then its odd ones O, so that the taps of 16
 * outputs o.. are E[o..], O[o..] and E[o+1..] (gathering the even lanes of two loads per
 * tap cost 9 permutes per 16 outputs; the split costs 2 per 32 input columns, once per
 * row). A padded zero adds k * 0 to a sum, which leaves it as it was, so the result has
 * the bits of dw_plane3x3_avx512 (finite weights). With epi, FusedConv's epilogue is
 * applied to each vector before its store. False (nothing done) when the padded plane
 * exceeds DW_PAD_FLOATS. */
enum { DW_PAD_FLOATS = 18432 }; /* 72 KiB of stack: MobileNetV2's 112x112 stride-2 plane fits */
__attribute__((target("avx512f"))) static bool
dw_plane3x3_padded(const hone_rt_window *w, const float *x, const float *k, float bias,
                   const dw_epi *epi, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1], py = w->pad[0], px = w->pad[1];
    /* stride 1: a row of wp floats; stride 2: E and O, we floats each */
    int64_t ow16 = (ow + 15) / 16 * 16, hp = (oh - 1) * s0 + 3, we = ow16 + 16;
    int64_t wp = s1 == 1 ? ow16 + 16 : 2 * we;
    if (w->dil[0] != 1 || w->dil[1] != 1 || py < 0 || px < 0 || hp * wp > DW_PAD_FLOATS ||
        oh < 1 || ow < 1)
        return false;
    float buf[DW_PAD_FLOATS] __attribute__((aligned(64)));
    const __m512 zero = _mm512_setzero_ps();
    if (s1 == 1) {
        for (int64_t r = 0; r < hp; r++) {
            int64_t iy = r - py;
            float *d = buf + r * wp;
            if (iy < 0 || iy >= ih)
                for (int64_t j = 0; j < wp; j += 16)
                    _mm512_store_ps(d + j, zero);
            else
                for (int64_t j = 0; j < wp; j += 16)
                    _mm512_store_ps(d + j, span16(x + iy * iw, j - px, iw));
        }
    } else {
        const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        for (int64_t r = 0; r < hp; r++) {
            int64_t iy = r - py;
            float *e = buf + r * wp, *o = e + we;
            if (iy < 0 || iy >= ih) {
                for (int64_t j = 0; j < wp; j += 16)
                    _mm512_store_ps(e + j, zero);
                continue;
            }
            /* padded columns 2j.. of the row are image columns 2j - px.. */
            const float *src = x + iy * iw;
            for (int64_t j = 0; j < we; j += 16) {
                __m512 v0 = span16(src, 2 * j - px, iw), v1 = span16(src, 2 * j + 16 - px, iw);
                _mm512_store_ps(e + j, _mm512_permutex2var_ps(v0, ev, v1));
                _mm512_store_ps(o + j, _mm512_permutex2var_ps(v0, od, v1));
            }
        }
    }
    __m512 k0 = _mm512_set1_ps(k[0]), k1 = _mm512_set1_ps(k[1]), k2 = _mm512_set1_ps(k[2]);
    __m512 k3 = _mm512_set1_ps(k[3]), k4 = _mm512_set1_ps(k[4]), k5 = _mm512_set1_ps(k[5]);
    __m512 k6 = _mm512_set1_ps(k[6]), k7 = _mm512_set1_ps(k[7]), k8 = _mm512_set1_ps(k[8]);
    __m512 vb = _mm512_set1_ps(bias);
    __m512 vlo = _mm512_set1_ps(epi ? epi->lo : 0.0f), vhi = _mm512_set1_ps(epi ? epi->hi : 0.0f);
    /* the taps t0, t1, t2 of one kernel row, in the order of dw_plane3x3_avx512 */
#define DW_ROW(t0, t1, t2, ka, kb, kc)                                                         \
    _mm512_fmadd_ps(kc, t2, _mm512_fmadd_ps(kb, t1, _mm512_fmadd_ps(ka, t0, zero)))
#define DW_ROW1(r, ka, kb, kc)                                                                 \
    __extension__({                                                                            \
        __m512 x0_ = _mm512_load_ps((r) + o), x1_ = _mm512_load_ps((r) + o + 16);              \
        DW_ROW(x0_, DW_SHIFT(x1_, x0_, 1), DW_SHIFT(x1_, x0_, 2), ka, kb, kc);                 \
    })
#define DW_ROW2(r, ka, kb, kc)                                                                 \
    __extension__({                                                                            \
        __m512 e0_ = _mm512_load_ps((r) + o), e1_ = _mm512_load_ps((r) + o + 16);              \
        DW_ROW(e0_, _mm512_load_ps((r) + we + o), DW_SHIFT(e1_, e0_, 1), ka, kb, kc);          \
    })
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = buf + oy * s0 * wp, *r1 = r0 + wp, *r2 = r1 + wp;
        float *yr = y + oy * ow;
        for (int64_t o = 0; o < ow; o += 16) {
            __m512 a0, a1, a2;
            if (s1 == 1) {
                a0 = DW_ROW1(r0, k0, k1, k2);
                a1 = DW_ROW1(r1, k3, k4, k5);
                a2 = DW_ROW1(r2, k6, k7, k8);
            } else {
                a0 = DW_ROW2(r0, k0, k1, k2);
                a1 = DW_ROW2(r1, k3, k4, k5);
                a2 = DW_ROW2(r2, k6, k7, k8);
            }
            __m512 acc = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), vb);
            __mmask16 m = (__mmask16)(ow - o >= 16 ? 0xffff : (1u << (ow - o)) - 1);
            if (epi) {
                if (epi->z)
                    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, epi->z + oy * ow + o));
                acc = _mm512_max_ps(vlo, acc); /* acc < vlo ? vlo : acc (epi_vec) */
                acc = _mm512_min_ps(vhi, acc);
            }
            _mm512_mask_storeu_ps(yr + o, m, acc);
        }
    }
#undef DW_ROW2
#undef DW_ROW1
#undef DW_ROW
    return true;
}

/* Small planes (at most DW_FLAT_MAX outputs), 3x3, stride 1, as wide as their input
 * (iw == ow): the plane is read flat, 16 consecutive outputs of any rows per register.
 * Output p = oy * ow + ox reads input p + (ky - py) * iw + (kx - px) for tap (ky, kx), a
 * shift that is the same for every output, so each tap is one load per register under a
 * mask (taps in the padding, lanes past the plane), the masks kept per window shape
 * (dw_flat_of). Row by row, a 7x7 plane used 7 of 16 lanes and built a padded copy first.
 * The same sums in the same order as dw_plane3x3_padded (masked lanes load zeros), so the
 * same bits. With the epilogue, alternating runs: 960 planes of 7x7 54-83 -> 37-40 us on
 * one thread, 30-54 -> 20-23 us on two; planes of 14x14 were slower flat (384 of them:
 * 40 -> 43-46 us on one thread), so 64 outputs at most. */
enum { DW_FLAT_MAX = 64, DW_FLAT_VECS = DW_FLAT_MAX / 16 };
typedef struct dw_flat {
    int nv;                          /* output registers per plane; 0: not this kernel */
    int64_t shift[9];                /* input offset of each tap */
    __mmask16 m[9][DW_FLAT_VECS];    /* lanes of register v whose tap is in the image */
    __mmask16 store[DW_FLAT_VECS];   /* lanes of register v in the plane */
} dw_flat;

static void dw_flat_init(const hone_rt_window *w, dw_flat *f)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1], n = oh * ow;
    f->nv = 0;
    if (w->k[0] != 3 || w->k[1] != 3 || w->stride[0] != 1 || w->stride[1] != 1 ||
        w->dil[0] != 1 || w->dil[1] != 1 || iw != ow || n < 1 || n > DW_FLAT_MAX)
        return;
    f->nv = (int)((n + 15) / 16);
    /* lanes of register v whose output row + dy (column + dx) is in the image, dy, dx in
     * -pad .. 2 - pad */
    unsigned rows[3][DW_FLAT_VECS] = {{0}}, cols[3][DW_FLAT_VECS] = {{0}};
    for (int64_t p = 0, oy = 0, ox = 0; p < n; p++) {
        for (int d = 0; d < 3; d++) {
            int64_t iy = oy + d - w->pad[0], ix = ox + d - w->pad[1];
            if (iy >= 0 && iy < ih)
                rows[d][p / 16] |= 1u << (p % 16);
            if (ix >= 0 && ix < iw)
                cols[d][p / 16] |= 1u << (p % 16);
        }
        if (++ox == ow)
            ox = 0, oy++;
    }
    for (int t = 0; t < 9; t++) {
        f->shift[t] = (t / 3 - w->pad[0]) * iw + (t % 3 - w->pad[1]);
        for (int v = 0; v < f->nv; v++)
            f->m[t][v] = (__mmask16)(rows[t / 3][v] & cols[t % 3][v]);
    }
    for (int v = 0; v < f->nv; v++)
        f->store[v] = (__mmask16)(n - v * 16 >= 16 ? 0xffff : (1u << (n - v * 16)) - 1);
}

/* dw_flat_init of the calling thread's last window shape, kept: MobileNetV2 runs six
 * 14x14 and three 7x7 layers in a row, and the masks took as long as a layer's work. */
static const dw_flat *dw_flat_of(const hone_rt_window *w)
{
    static _Thread_local struct {
        int valid;
        int64_t key[6];
        dw_flat f;
    } cache;
    int64_t key[6] = {w->in[0], w->in[1], w->out[0], w->out[1], w->pad[0], w->pad[1]};
    bool same = cache.valid && w->k[0] == 3 && w->k[1] == 3 && w->stride[0] == 1 &&
                w->stride[1] == 1 && w->dil[0] == 1 && w->dil[1] == 1;
    for (int i = 0; same && i < 6; i++)
        same = cache.key[i] == key[i];
    if (!same) {
        dw_flat_init(w, &cache.f);
        memcpy(cache.key, key, sizeof key);
        cache.valid = w->k[0] == 3 && w->k[1] == 3 && w->stride[0] == 1 && w->stride[1] == 1 &&
                      w->dil[0] == 1 && w->dil[1] == 1;
    }
    return &cache.f;
}

/* x + off floats, for masked loads whose address may lie outside the plane (the masked
 * lanes are never read). */
static inline const float *flat_at(const float *x, int64_t off)
{
    return (const float *)((uintptr_t)x + (uintptr_t)(off * (int64_t)sizeof(float)));
}

__attribute__((target("avx512f"))) static void dw_plane3x3_flat(const dw_flat *f, const float *x,
                                                               const float *k, float bias,
                                                               const dw_epi *epi, float *y)
{
    __m512 kv[9];
    for (int t = 0; t < 9; t++)
        kv[t] = _mm512_set1_ps(k[t]);
    const __m512 zero = _mm512_setzero_ps(), vb = _mm512_set1_ps(bias);
    __m512 vlo = _mm512_set1_ps(epi ? epi->lo : 0.0f), vhi = _mm512_set1_ps(epi ? epi->hi : 0.0f);
#define DW_FTAP(t, acc)                                                                       \
    _mm512_fmadd_ps(kv[t], _mm512_maskz_loadu_ps(f->m[t][v], flat_at(x, o + f->shift[t])), acc)
    for (int v = 0; v < f->nv; v++) {
        int64_t o = (int64_t)v * 16;
        __m512 a0 = DW_FTAP(2, DW_FTAP(1, DW_FTAP(0, zero)));
        __m512 a1 = DW_FTAP(5, DW_FTAP(4, DW_FTAP(3, zero)));
        __m512 a2 = DW_FTAP(8, DW_FTAP(7, DW_FTAP(6, zero)));
        __m512 acc = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), vb);
        if (epi) {
            if (epi->z)
                acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(f->store[v], epi->z + o));
            acc = _mm512_max_ps(vlo, acc); /* acc < vlo ? vlo : acc (epi_vec) */
            acc = _mm512_min_ps(vhi, acc);
        }
        _mm512_mask_storeu_ps(y + o, f->store[v], acc);
    }
#undef DW_FTAP
}

/* One plane with AVX-512, 16 output columns at a time, every tap accumulated in a
 * register before one store: lanes whose input column is in the padding are masked off
 * (never read). Strides 1 and 2 (even lanes of two loads), kernels up to 16 wide. Column
 * block by column block, so each tap's masks and column offset are worked out once per
 * block, not once per output row. The taps are added in the same order as in dw_plane. */
__attribute__((target("avx512f"))) static void dw_plane_avx512(const hone_rt_window *w,
                                                              const float *x, const float *k,
                                                              float bias, float *y)
{
    int64_t ih = w->in[0], iw = w->in[1], oh = w->out[0], ow = w->out[1];
    int64_t s0 = w->stride[0], s1 = w->stride[1], kh = w->k[0], kw = w->k[1], lo[16], hi[16];
    for (int64_t kx = 0; kx < kw; kx++)
        valid_range(ow, s1, kx * w->dil[1] - w->pad[1], iw, &lo[kx], &hi[kx]);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t o = 0; o < ow; o += 16) {
        int64_t n = ow - o < 16 ? ow - o : 16, off[16];
        __mmask16 m[16], ml[16], mh[16];
        block_masks(lo, hi, kw, o, n, m, ml, mh);
        for (int64_t kx = 0; kx < kw; kx++)
            off[kx] = kx * w->dil[1] - w->pad[1] + o * s1; /* lane j: column (o + j) * s1 + shift */
        __mmask16 store = (__mmask16)((1u << n) - 1);
        for (int64_t oy = 0; oy < oh; oy++) {
            __m512 acc = _mm512_set1_ps(bias);
            for (int64_t ky = 0; ky < kh; ky++) {
                int64_t iy = oy * s0 + ky * w->dil[0] - w->pad[0];
                if (iy < 0 || iy >= ih)
                    continue;
                const float *row = x + iy * iw, *kr = k + ky * kw;
                for (int64_t kx = 0; kx < kw; kx++) {
                    if (!m[kx])
                        continue;
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(kr[kx]),
                                          dw_load(row + off[kx], s1, m[kx], ml[kx], mh[kx], even), acc);
                }
            }
            _mm512_mask_storeu_ps(y + oy * ow + o, store, acc);
        }
    }
}

#endif

typedef struct dw_job {
    const hone_rt_window *w;
    int64_t c;
    const float *x, *wt, *bias;
    float *y;
    const float *z; /* epilogue (has_epi): residual (NULL: none), then the bounds */
    float lo, hi;
    int has_epi;
    const void *flat; /* the dw_flat of the window (AVX-512), set by depthwise() */
} dw_job;

/* FusedConv's epilogue on one finished plane, while it is in cache: y += z (when z), then
 * y < lo -> lo, y > hi -> hi; the operations of the backend's separate epilogue loop
 * (compare-and-select, as the conv micro-kernel's epilogue). */
static void plane_epilogue_c(float *y, const float *z, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float v = z ? y[i] + z[i] : y[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

#ifdef DW_AVX512
__attribute__((target("avx512f"))) static void plane_epilogue_avx512(float *y, const float *z,
                                                                    int64_t n, float lo, float hi)
{
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        if (z)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, z + i));
        v = _mm512_max_ps(vlo, v); /* v < vlo ? vlo : v (epi_vec) */
        v = _mm512_min_ps(vhi, v);
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}
#endif

static void plane_epilogue(float *y, const float *z, int64_t n, float lo, float hi)
{
#ifdef DW_AVX512
    if (hone_rt_cpu_avx512f()) {
        plane_epilogue_avx512(y, z, n, lo, hi);
        return;
    }
#endif
    plane_epilogue_c(y, z, n, lo, hi);
}

/* Planes [p0, p1) of the n*c planes. */
static void dw_planes(void *ctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const dw_job *j = ctx;
    const hone_rt_window *w = j->w;
    int64_t xp = w->in[0] * w->in[1], yp = w->out[0] * w->out[1], kp = w->k[0] * w->k[1];
#ifdef DW_AVX512
    const dw_flat *flat = j->flat;
#endif
    for (int64_t p = p0; p < p1; p++) {
        int64_t ch = p % j->c;
        const float *x = j->x + p * xp, *k = j->wt + ch * kp;
        float b = j->bias ? j->bias[ch] : 0.0f, *y = j->y + p * yp;
#ifdef DW_AVX512
        bool done = false; /* the epilogue applied */
        if (hone_rt_cpu_avx512f() && w->stride[1] <= 2 && w->k[1] <= 16) {
            bool k3 = w->k[0] == 3 && w->k[1] == 3;
            dw_epi e = {j->z ? j->z + p * yp : NULL, j->lo, j->hi};
            if (flat && flat->nv) {
                dw_plane3x3_flat(flat, x, k, b, j->has_epi ? &e : NULL, y);
                done = true;
            }
            done = done || (k3 && dw_plane3x3_padded(w, x, k, b, j->has_epi ? &e : NULL, y));
            if (!done && !(k3 && dw_plane3x3_avx512(w, x, k, b, y)))
                dw_plane_avx512(w, x, k, b, y);
        } else
#endif
            dw_plane(w, x, k, b, y);
        if (j->has_epi && !done)
            plane_epilogue(y, j->z ? j->z + p * yp : NULL, yp, j->lo, j->hi);
    }
}

/* Multiply-adds from which a depthwise conv runs on the pool: 2^18 when its workers
 * sleep at once (waking them costs 15-20 microseconds), 2^16 while they poll (compiled
 * models; MobileNetV2's 14x14 -> 7x7 stride-2 layer, 254k, ran on one thread). */
#define DW_PARALLEL_MIN_MACS ((int64_t)1 << 18)
#define DW_PARALLEL_MIN_MACS_SPIN ((int64_t)1 << 16)

/* Planes are independent: split over the shared pool when there is enough work to pay
 * for waking it (each plane is computed whole by one worker, so results do not depend on
 * the thread count). */
static void depthwise(dw_job *j, int64_t n)
{
    const hone_rt_window *w = j->w;
    int64_t macs = n * j->c * w->out[0] * w->out[1] * w->k[0] * w->k[1];
    hone_rt_pool *pool = hone_rt_shared_pool();
    int64_t min_macs = hone_rt_pool_spin(pool) > 0 ? DW_PARALLEL_MIN_MACS_SPIN : DW_PARALLEL_MIN_MACS;
#ifdef DW_AVX512
    j->flat = hone_rt_cpu_avx512f() ? dw_flat_of(w) : NULL;
#endif
    hone_rt_parallel_for(macs >= min_macs ? pool : NULL, n * j->c, 1, dw_planes, j);
}

void hone_rt_depthwise_conv(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                            const float *wt, const float *bias, float *y)
{
    dw_job j = {w, c, x, wt, bias, y, NULL, 0.0f, 0.0f, 0};
    depthwise(&j, n);
}

void hone_rt_depthwise_conv_epi(const hone_rt_window *w, int64_t n, int64_t c, const float *x,
                                const float *wt, const float *bias, const float *z, float lo,
                                float hi, float *y)
{
    dw_job j = {w, c, x, wt, bias, y, z, lo, hi, 1};
    depthwise(&j, n);
}
