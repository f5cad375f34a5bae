/*
 * Integer convolution (ONNX ConvInteger) for compiled models:
 *   y[n,m,p] = sum_{c,k} (x[n,c,p+k] - x_zp) * (w[m,c,k] - w_zp[m])   (int32)
 * Padding reads x_zp, so padded taps contribute nothing.
 *
 * Fast path (uint8 x, int8 w with zero w_zp, 2 spatial dims, a CPU with
 * AVX-512 VNNI): per image and group, the image is copied once into a
 * buffer padded with x_zp (so no tap needs a bounds check); each tile of 32
 * positions is then gathered, by the worker that multiplies it, into its
 * stripe of a uint8 column buffer laid out for vpdpbusd, [K/4][P][4] (4
 * consecutive reduction taps of one output position per 32-bit lane), the weights into
 * [M][K] rows padded to multiples of 4 taps and 8 rows, and an 8-row x
 * 32-position register tile accumulates u8 x s8 products four at a time;
 * the x_zp * rowsum(w) term is subtracted when storing. Positions are split
 * over the runtime's shared pool (hone_rt_shared_pool). Every other case
 * runs the portable direct loops. The backend packs constant weights (and
 * their row sums) at compile time (hone_rt_conv_integer_pack), so a run of
 * hone_rt_conv_integer_packed only gathers and multiplies.
 *
 * hone_rt_qconv (hone.QConv, the fused form qdq-to-integer writes) runs the
 * same kernel but applies its epilogue in the tile's store, while the sums
 * are in registers: v = sum * scale[o] (+ bias[o]) (+ res) (relu), in
 * float, written as float or quantized to uint8. No int32 tensor, and no
 * separate Cast / Mul / Add / Relu / QuantizeLinear passes over memory.
 * This file is compiled with -ffp-contract=off, so the vector and scalar
 * epilogues round each operation alone, exactly as the unfused ops do.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hone_rt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QCONV_X86 1
#endif

enum { MB = 8, PB = 32 };

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

static int32_t elem(const void *p, int is_signed, int64_t i)
{
    return is_signed ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/* The epilogue of one image and group: rows o of [mg][P] (NULL in a job: int32 y). */
typedef struct qepi {
    const float *scale, *bias, *res; /* [mg], [mg] or NULL, [mg][P] or NULL */
    float ys, yz;                    /* the output quantization (when u8) */
    int relu;
    int u8;                          /* uint8 output (y_scale given), else float */
    void *y;                         /* float or uint8 [mg][P] */
} qepi;

static void epi_scalar(const qepi *e, int64_t o, int64_t i, int32_t acc)
{
    float v = (float)acc * e->scale[o];
    if (e->bias)
        v += e->bias[o];
    if (e->res)
        v += e->res[i];
    if (e->relu)
        v = v > 0 ? v : 0;
    if (e->u8) {
        float q = nearbyintf(v / e->ys) + e->yz;
        ((uint8_t *)e->y)[i] = (uint8_t)(q > 0 ? (q < 255 ? q : 255) : 0);
    } else {
        ((float *)e->y)[i] = v;
    }
}

/* ep restricted to rows row0.. of [n*m][P] (scale and bias from channel ch0). */
static qepi epi_part(const qepi *ep, int64_t row0, int64_t ch0, int64_t P)
{
    qepi e = *ep;
    e.scale += ch0;
    e.bias = e.bias ? e.bias + ch0 : NULL;
    e.res = e.res ? e.res + row0 * P : NULL;
    e.y = (char *)e.y + row0 * P * (e.u8 ? 1 : (int64_t)sizeof(float));
    return e;
}

/* ===================== portable ===================== */

/* Image offset of window position p and kernel offset kk, or -1 in the padding. */
static int64_t tap(const hone_rt_window *w, int64_t p, int64_t kk)
{
    int64_t off = 0;
    int64_t pos[HONE_RT_MAX_SPATIAL], ko[HONE_RT_MAX_SPATIAL];
    for (int d = w->nsp - 1; d >= 0; d--) {
        pos[d] = p % w->out[d];
        p /= w->out[d];
        ko[d] = kk % w->k[d];
        kk /= w->k[d];
    }
    for (int d = 0; d < w->nsp; d++) {
        int64_t i = pos[d] * w->stride[d] - w->pad[d] + ko[d] * w->dil[d];
        if (i < 0 || i >= w->in[d])
            return -1;
        off = off * w->in[d] + i;
    }
    return off;
}

static void conv_portable(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          int64_t groups, const void *x, int xs, int32_t xzp, const void *wt,
                          int ws, const void *wzp, int64_t n_wzp, int32_t *y)
{
    int64_t cg = c / groups, mg = m / groups, kn = hone_rt_window_k_numel(w);
    int64_t in = hone_rt_window_in_numel(w), P = hone_rt_window_out_numel(w);
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < m; o++) {
            int64_t g = o / mg;
            int32_t wz = n_wzp ? elem(wzp, ws, n_wzp == 1 ? 0 : o) : 0;
            for (int64_t p = 0; p < P; p++) {
                int32_t acc = 0;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t kk = 0; kk < kn; kk++) {
                        int64_t t = tap(w, p, kk);
                        int32_t xv = t < 0 ? xzp : elem(x, xs, (b * c + g * cg + ci) * in + t);
                        acc += (xv - xzp) * (elem(wt, ws, (o * cg + ci) * kn + kk) - wz);
                    }
                y[(b * m + o) * P + p] = acc;
            }
        }
}

/* ===================== VNNI ===================== */

#ifdef QCONV_X86

typedef struct vnni_job {
    uint8_t *col;          /* [K4/4][P32][4], each worker gathering its own stripes */
    const int8_t *wp;      /* [M8][K4] */
    const int32_t *rowsum; /* [M8] */
    int64_t k4, p32, P, mg;
    int32_t xzp;
    int32_t *y;            /* [mg][P] (when ep is NULL) */
    const hone_rt_window *w;
    const uint8_t *xp;     /* the padded image [cg, H, W] */
    const int64_t *tap_off; /* [K4]: offset of tap k in the padded image (k >= K: tap 0) */
    const qepi *ep;        /* NULL: int32 sums into y */
} vnni_job;

/* The epilogue of 16 sums of row o at positions i..i+15 (lanes in mask k). */
__attribute__((target("avx512f,avx512bw")))
static void epi16(const qepi *e, int64_t o, int64_t i, __m512i acc, __mmask16 k)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(e->scale[o]));
    if (e->bias)
        v = _mm512_add_ps(v, _mm512_set1_ps(e->bias[o]));
    if (e->res)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, e->res + i));
    if (e->relu)
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    if (e->u8) {
        __m512 q = _mm512_roundscale_ps(_mm512_div_ps(v, _mm512_set1_ps(e->ys)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_add_ps(q, _mm512_set1_ps(e->yz));
        q = _mm512_min_ps(_mm512_max_ps(q, _mm512_setzero_ps()), _mm512_set1_ps(255));
        _mm512_mask_cvtusepi32_storeu_epi8((uint8_t *)e->y + i, k, _mm512_cvtps_epi32(q));
    } else {
        _mm512_mask_storeu_ps((float *)e->y + i, k, v);
    }
}

static void gather_stripe(const vnni_job *j, int64_t p0, int64_t p1);

/* y tile rows m0..m0+7, positions p0..p0+31. */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void vnni_tile(const vnni_job *j, int64_t m0, int64_t p0)
{
    /* the 16 accumulators are named registers: an array indexed in a loop was kept on
     * the stack, a load and a store around every vpdpbusd */
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00;
    __m512i c61 = c00, c70 = c00, c71 = c00;
    const uint8_t *a = j->col + p0 * 4;
    const int8_t *wr = j->wp + m0 * j->k4;
    int64_t k4 = j->k4;
    for (int64_t kb = 0; kb < k4 / 4; kb++, a += j->p32 * 4) {
        __m512i a0 = _mm512_loadu_si512(a), a1 = _mm512_loadu_si512(a + 64);
        const int8_t *wk = wr + kb * 4;
#define VNNI_ROW(i)                                                                            \
    do {                                                                                       \
        int32_t wv;                                                                            \
        memcpy(&wv, wk + (i) * k4, 4);                                                         \
        __m512i bw = _mm512_set1_epi32(wv);                                                    \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, a0, bw);                                        \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, a1, bw);                                        \
    } while (0)
        VNNI_ROW(0);
        VNNI_ROW(1);
        VNNI_ROW(2);
        VNNI_ROW(3);
        VNNI_ROW(4);
        VNNI_ROW(5);
        VNNI_ROW(6);
        VNNI_ROW(7);
#undef VNNI_ROW
    }
    __m512i acc[MB][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                          {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    int64_t n = j->P - p0 < PB ? j->P - p0 : PB;
    if (j->ep) {
        __mmask16 k0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 k1 = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
        for (int i = 0; i < MB && m0 + i < j->mg; i++) {
            __m512i z = _mm512_set1_epi32(j->xzp * j->rowsum[m0 + i]);
            int64_t at = (m0 + i) * j->P + p0;
            epi16(j->ep, m0 + i, at, _mm512_sub_epi32(acc[i][0], z), k0);
            if (k1)
                epi16(j->ep, m0 + i, at + 16, _mm512_sub_epi32(acc[i][1], z), k1);
        }
        return;
    }
    int32_t tmp[PB];
    for (int i = 0; i < MB && m0 + i < j->mg; i++) {
        __m512i z = _mm512_set1_epi32(j->xzp * j->rowsum[m0 + i]);
        _mm512_storeu_si512(tmp, _mm512_sub_epi32(acc[i][0], z));
        _mm512_storeu_si512(tmp + 16, _mm512_sub_epi32(acc[i][1], z));
        memcpy(j->y + (m0 + i) * j->P + p0, tmp, sizeof(int32_t) * (size_t)n);
    }
}

/* Position tiles [begin, end): each tile's stripe of columns gathered, then multiplied
 * by every 8-row block of weights while it is in L1. */
static void vnni_range(void *ctx, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const vnni_job *j = ctx;
    for (int64_t pb = begin; pb < end; pb++) {
        int64_t p1 = (pb + 1) * PB < j->P ? (pb + 1) * PB : j->P;
        gather_stripe(j, pb * PB, p1);
        for (int64_t m0 = 0; m0 < j->mg; m0 += MB)
            vnni_tile(j, m0, pb * PB);
    }
}

static int has_vnni(void)
{
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    }
    return v;
}

#endif

/* Extent of the padded image along spatial dim d: every tap of every position. */
static int64_t padded_extent(const hone_rt_window *w, int d)
{
    return (w->out[d] - 1) * w->stride[d] + (w->k[d] - 1) * w->dil[d] + 1;
}

size_t hone_rt_conv_integer_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    int64_t k4 = round_up(c / groups * hone_rt_window_k_numel(w), 4);
    int64_t p32 = round_up(hone_rt_window_out_numel(w), PB), m8 = round_up(m / groups, MB);
    int64_t pad = w->nsp == 2 ? c / groups * padded_extent(w, 0) * padded_extent(w, 1) : 0;
    return (size_t)(k4 * p32 + m8 * k4 + m8 * 4 + k4 * 8 + pad + 128);
}

/* xg [cg, ih, iw] into xp [cg, H, W] (the padded extents) with x_zp around it. */
static void pad_image(const hone_rt_window *w, int64_t cg, const uint8_t *xg, uint8_t xzp,
                      uint8_t *xp)
{
    int64_t H = padded_extent(w, 0), W = padded_extent(w, 1), ih = w->in[0], iw = w->in[1];
    memset(xp, xzp, (size_t)(cg * H * W));
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t iy = 0; iy < ih; iy++) {
            int64_t py = iy + w->pad[0], x0 = w->pad[1] < 0 ? -w->pad[1] : 0;
            int64_t n = iw - x0 < W - (x0 + w->pad[1]) ? iw - x0 : W - (x0 + w->pad[1]);
            if (py >= 0 && py < H && n > 0)
                memcpy(xp + (ci * H + py) * W + x0 + w->pad[1], xg + (ci * ih + iy) * iw + x0,
                       (size_t)n);
        }
}

/* Gathers positions [p0, p1) of the padded image into their stripe of col
 * [K4/4][P32][4]: each 32-bit lane holds 4 consecutive taps of one position (taps
 * past K read tap 0: their weights are 0). */
static void gather_stripe(const vnni_job *j, int64_t p0, int64_t p1)
{
    const hone_rt_window *w = j->w;
    int64_t ow = w->out[1], W = padded_extent(w, 1), sx = w->stride[1];
    for (int64_t kb = 0; kb < j->k4 / 4; kb++) {
        const int64_t *t = j->tap_off + kb * 4;
        uint32_t *dst = (uint32_t *)(void *)(j->col + kb * j->p32 * 4);
        for (int64_t p = p0; p < p1;) {
            int64_t y = p / ow, x0 = p % ow, len = ow - x0 < p1 - p ? ow - x0 : p1 - p;
            const uint8_t *row = j->xp + y * w->stride[0] * W + x0 * sx;
            const uint8_t *a = row + t[0], *b = row + t[1], *c = row + t[2], *d = row + t[3];
            uint32_t *o = dst + p;
            if (sx == 1) /* the common case, kept apart so the compiler vectorizes it */
                for (int64_t x = 0; x < len; x++)
                    o[x] = (uint32_t)a[x] | (uint32_t)b[x] << 8 | (uint32_t)c[x] << 16 |
                           (uint32_t)d[x] << 24;
            else
                for (int64_t x = 0; x < len; x++)
                    o[x] = (uint32_t)a[x * sx] | (uint32_t)b[x * sx] << 8 |
                           (uint32_t)c[x * sx] << 16 | (uint32_t)d[x * sx] << 24;
            p += len;
        }
    }
}

/* Offsets of the K4 taps in the padded image [cg, H, W] (taps past K: tap 0). */
static void tap_offsets(const hone_rt_window *w, int64_t cg, int64_t k4, int64_t *off)
{
    int64_t kh = w->k[0], kw = w->k[1], K = cg * kh * kw;
    int64_t H = padded_extent(w, 0), W = padded_extent(w, 1);
    for (int64_t k = 0; k < k4; k++) {
        int64_t kk = k < K ? k : 0, ci = kk / (kh * kw), r = kk / kw % kh, q = kk % kw;
        off[k] = (ci * H + r * w->dil[0]) * W + q * w->dil[1];
    }
}

/* Weights wg [mg, K] (int8) into wp [M8][K4] and their row sums. */
static void pack_weights(const int8_t *wg, int64_t mg, int64_t K, int64_t k4, int8_t *wp,
                         int32_t *rowsum)
{
    int64_t m8 = round_up(mg, MB);
    memset(wp, 0, (size_t)(m8 * k4));
    for (int64_t o = 0; o < m8; o++) {
        int32_t s = 0;
        if (o < mg) {
            memcpy(wp + o * k4, wg + o * K, (size_t)K);
            for (int64_t k = 0; k < K; k++)
                s += wg[o * K + k];
        }
        rowsum[o] = s;
    }
}

static int zero_wzp(const void *wzp, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (((const int8_t *)wzp)[i])
            return 0;
    return 1;
}

/* Bytes of one group's packed weights and row sums. */
static int64_t packed_group_bytes(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    int64_t k4 = round_up(c / groups * hone_rt_window_k_numel(w), 4), m8 = round_up(m / groups, MB);
    return m8 * k4 + m8 * (int64_t)sizeof(int32_t);
}

size_t hone_rt_conv_integer_packed_size(const hone_rt_window *w, int64_t c, int64_t m,
                                        int64_t groups)
{
    return (size_t)(groups * packed_group_bytes(w, c, m, groups));
}

void hone_rt_conv_integer_pack(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups,
                               const int8_t *wt, void *packed)
{
    int64_t mg = m / groups, K = c / groups * hone_rt_window_k_numel(w), k4 = round_up(K, 4);
    int64_t m8 = round_up(mg, MB), gb = packed_group_bytes(w, c, m, groups);
    for (int64_t g = 0; g < groups; g++) {
        int8_t *wp = (int8_t *)packed + g * gb;
        int32_t rowsum[MB];
        for (int64_t o0 = 0; o0 < m8; o0 += MB) {
            pack_weights(wt + (g * mg + o0) * K, mg - o0 < MB ? mg - o0 : MB, K, k4,
                         wp + o0 * k4, rowsum);
            memcpy(wp + m8 * k4 + o0 * (int64_t)sizeof(int32_t), rowsum, sizeof rowsum);
        }
    }
}

/* The VNNI convolution of uint8 x with a group's packed int8 weights: from `packed`
 * when given, else packed from wt into the scratch per group. */
#ifdef QCONV_X86
static void conv_vnni(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                      const uint8_t *x, int32_t xz, const int8_t *wt, const void *packed,
                      int32_t *y, const qepi *ep, void *scratch)
{
    int64_t cg = c / groups, mg = m / groups, K = cg * hone_rt_window_k_numel(w);
    int64_t k4 = round_up(K, 4), P = hone_rt_window_out_numel(w), p32 = round_up(P, PB);
    int64_t in = hone_rt_window_in_numel(w), m8 = round_up(mg, MB);
    int64_t gb = packed_group_bytes(w, c, m, groups);
    uint8_t *col = scratch;
    int8_t *wp = (int8_t *)(col + k4 * p32);
    int32_t *rowsum = (int32_t *)(((uintptr_t)(wp + m8 * k4) + 63) & ~(uintptr_t)63);
    int64_t *taps = (int64_t *)(void *)(rowsum + m8);
    uint8_t *xp = (uint8_t *)(taps + k4);
    tap_offsets(w, cg, k4, taps);
    for (int64_t g = 0; g < groups; g++) {
        const int8_t *wg = wp;
        const int32_t *rs = rowsum;
        if (packed) {
            wg = (const int8_t *)packed + g * gb;
            rs = (const int32_t *)(const void *)(wg + m8 * k4);
        } else {
            pack_weights(wt + g * mg * K, mg, K, k4, wp, rowsum);
        }
        for (int64_t b = 0; b < n; b++) {
            pad_image(w, cg, x + (b * c + g * cg) * in, (uint8_t)xz, xp);
            qepi e;
            if (ep)
                e = epi_part(ep, b * m + g * mg, g * mg, P);
            vnni_job j = {col, wg, rs, k4, p32, P, mg, xz, ep ? NULL : y + (b * m + g * mg) * P,
                          w, xp, taps, ep ? &e : NULL};
            int64_t macs = mg * k4 * P;
            hone_rt_parallel_for(macs >= ((int64_t)1 << 22) ? hone_rt_shared_pool() : NULL,
                                 p32 / PB, 1, vnni_range, &j);
        }
    }
}
#endif

void hone_rt_conv_integer(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                          int64_t groups, const void *x, int x_signed, const void *xzp,
                          const void *wt, int w_signed, const void *wzp, int64_t n_wzp,
                          int32_t *y, void *scratch)
{
    int32_t xz = xzp ? elem(xzp, x_signed, 0) : 0;
#ifdef QCONV_X86
    if (!x_signed && w_signed && w->nsp == 2 && (!n_wzp || zero_wzp(wzp, n_wzp)) && has_vnni()) {
        conv_vnni(w, n, c, m, groups, x, xz, wt, NULL, y, NULL, scratch);
        return;
    }
#endif
    conv_portable(w, n, c, m, groups, x, x_signed, xz, wt, w_signed, wzp, n_wzp, y);
}

/* The packed conv, sums into y (ep NULL) or through epilogue ep. */
static void conv_packed(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const uint8_t *x, int32_t xz, const void *packed, int32_t *y,
                        const qepi *ep, void *scratch)
{
#ifdef QCONV_X86
    if (has_vnni()) {
        conv_vnni(w, n, c, m, groups, x, xz, NULL, packed, y, ep, scratch);
        return;
    }
#endif
    /* no VNNI: the direct loops on the packed rows (row o of group g: K taps, k4 apart) */
    (void)scratch;
    int64_t cg = c / groups, mg = m / groups, kn = hone_rt_window_k_numel(w), K = cg * kn;
    int64_t k4 = round_up(K, 4), in = hone_rt_window_in_numel(w), P = hone_rt_window_out_numel(w);
    int64_t gb = packed_group_bytes(w, c, m, groups);
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < m; o++) {
            int64_t g = o / mg;
            const int8_t *row = (const int8_t *)packed + g * gb + (o - g * mg) * k4;
            for (int64_t p = 0; p < P; p++) {
                int32_t acc = 0;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t kk = 0; kk < kn; kk++) {
                        int64_t t = tap(w, p, kk);
                        int32_t xv = t < 0 ? xz : x[(b * c + g * cg + ci) * in + t];
                        acc += (xv - xz) * row[ci * kn + kk];
                    }
                if (ep)
                    epi_scalar(ep, o, (b * m + o) * P + p, acc);
                else
                    y[(b * m + o) * P + p] = acc;
            }
        }
}

void hone_rt_conv_integer_packed(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                                 int64_t groups, const uint8_t *x, const void *xzp,
                                 const void *packed, int32_t *y, void *scratch)
{
    conv_packed(w, n, c, m, groups, x, xzp ? *(const uint8_t *)xzp : 0, packed, y, NULL, scratch);
}

void hone_rt_qconv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const uint8_t *x, const uint8_t *xzp, const void *packed, const float *scale,
                   const float *bias, const float *res, int32_t relu, const float *y_scale,
                   const uint8_t *y_zp, void *y, void *scratch)
{
    qepi e = {scale, bias, res, y_scale ? *y_scale : 0, y_zp ? (float)*y_zp : 0, relu != 0,
              y_scale != NULL, y};
    conv_packed(w, n, c, m, groups, x, xzp ? *xzp : 0, packed, NULL, &e, scratch);
}

/* ===================== the other integer ops ===================== */

void hone_rt_dequantize_packed(int64_t numel, int64_t per, int bits, int64_t step, int64_t offset,
                               const uint8_t *p, const float *scale, float *w)
{
    uint32_t mask = (1u << bits) - 1;
    float lut[256];
    for (int64_t e0 = 0; e0 < numel; e0 += per) {
        /* the channel's 2^bits levels, each computed once as the rule says */
        for (uint32_t v = 0; v <= mask; v++)
            lut[v] = (float)(((double)step * v - (double)offset) * scale[e0 / per]);
        int64_t e1 = e0 + per < numel ? e0 + per : numel;
        for (int64_t e = e0; e < e1; e++) {
            int64_t bit = e * bits;
            /* the field spans at most two bytes (bits <= 8) */
            uint32_t two = p[bit / 8] | (bit % 8 + bits > 8 ? (uint32_t)p[bit / 8 + 1] << 8 : 0u);
            w[e] = lut[two >> (bit % 8) & mask];
        }
    }
}

static float param_f(const float *p, int64_t n, int64_t i)
{
    return p[n == 1 ? 0 : i];
}

void hone_rt_requantize(int64_t numel, int64_t inner, int64_t m, const int32_t *acc,
                        const int32_t *bias, const float *xs, const float *ws, int64_t n_ws,
                        const float *ys, const void *yzp, int y_signed, void *y)
{
    double yz = yzp ? elem(yzp, y_signed, 0) : 0, lo = y_signed ? -128 : 0, hi = y_signed ? 127 : 255;
    for (int64_t i = 0; i < numel; i++) {
        int64_t c = (i / inner) % m;
        double v = (double)((int64_t)acc[i] + (bias ? bias[c] : 0));
        double q = nearbyint(v * ((double)xs[0] * (double)param_f(ws, n_ws, c) / (double)ys[0])) + yz;
        q = q < lo ? lo : q > hi ? hi : q;
        if (y_signed)
            ((int8_t *)y)[i] = (int8_t)q;
        else
            ((uint8_t *)y)[i] = (uint8_t)q;
    }
}

void hone_rt_matmul_integer(int64_t batch, int64_t m, int64_t n, int64_t k, const void *a,
                            int a_signed, int64_t a_stride, const void *azp, int64_t n_azp,
                            const void *b, int b_signed, int64_t b_stride, const void *bzp,
                            int64_t n_bzp, int32_t *y)
{
    for (int64_t t = 0; t < batch; t++)
        for (int64_t i = 0; i < m; i++) {
            int32_t za = n_azp ? elem(azp, a_signed, n_azp == 1 ? 0 : i) : 0;
            for (int64_t j = 0; j < n; j++) {
                int32_t zb = n_bzp ? elem(bzp, b_signed, n_bzp == 1 ? 0 : j) : 0, acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += (elem(a, a_signed, t * a_stride + i * k + p) - za) *
                           (elem(b, b_signed, t * b_stride + p * n + j) - zb);
                y[(t * m + i) * n + j] = acc;
            }
        }
}

void hone_rt_dynamic_quantize(int64_t n, const float *x, uint8_t *y, float *scale, uint8_t *zp)
{
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float s = (hi - lo) / 255.0f;
    float z = s > 0 ? nearbyintf(fminf(fmaxf(0.0f - lo / s, 0.0f), 255.0f)) : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        double q = s > 0 ? nearbyint((double)(x[i] / s)) + z : z;
        y[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
    *scale = s;
    *zp = (uint8_t)z;
}
