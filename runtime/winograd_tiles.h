/*
 * Internal to winograd.c, included once per instance: the Winograd F(WT_F x WT_F, 3x3)
 * transforms (WT_F = 4 or 2) of 16 tiles at a time (one tile per vector lane), with
 * AVX-512 loads, stores and permutes (WT_AVX512 1, under the avx512f target) or in
 * portable C (WT_AVX512 0). WT_NAME(f) names a function of the instance; WT_ATTR is
 * its attribute list. The arithmetic is the same GCC vector code in both.
 *
 * F(4x4, 3x3), 6x6 input tiles. Input transform B^T d B, each 1-D pass
 *   o0 = 4 d0 - 5 d2 + d4          o3 = 2 (d3 - d1) + d4 - d2
 *   o1 = d3 + d4 - 4 (d1 + d2)     o4 = 2 (d1 - d3) + d4 - d2
 *   o2 = d4 - d3 + 4 (d1 - d2)     o5 = 4 d1 - 5 d3 + d5
 * Output transform A^T s A (4x4), each 1-D pass
 *   y0 = s0 + s1 + s2 + s3 + s4    y2 = (s1 + s2) + 4 (s3 + s4)
 *   y1 = (s1 - s2) + 2 (s3 - s4)   y3 = (s1 - s2) + 8 (s3 - s4) + s5
 * F(2x2, 3x3), 4x4 input tiles: o0 = d0 - d2, o1 = d1 + d2, o2 = d2 - d1, o3 = d1 - d3;
 *   y0 = s0 + s1 + s2, y1 = s1 - s2 - s3.
 */

#define WT_A (WT_F + 2) /* input tile */

#if WT_F == 4
#define WT_BT(d, o) WT_BT4((d)[0], (d)[1], (d)[2], (d)[3], (d)[4], (d)[5], o)
#define WT_AT(s, o) WT_AT4((s)[0], (s)[1], (s)[2], (s)[3], (s)[4], (s)[5], o)
#else
#define WT_BT(d, o)                                                                          \
    do {                                                                                    \
        (o)[0] = (d)[0] - (d)[2];                                                           \
        (o)[1] = (d)[1] + (d)[2];                                                           \
        (o)[2] = (d)[2] - (d)[1];                                                           \
        (o)[3] = (d)[1] - (d)[3];                                                           \
    } while (0)
#define WT_AT(s, o)                                                                          \
    do {                                                                                    \
        (o)[0] = (s)[0] + (s)[1] + (s)[2];                                                  \
        (o)[1] = (s)[1] - (s)[2] - (s)[3];                                                  \
    } while (0)
#endif

#ifndef WT_BT4
#define WT_BT4(d0, d1, d2, d3, d4, d5, o)                                                     \
    do {                                                                                    \
        v16 a_ = (d4) - (d2), b_ = (d1) - (d3);                                             \
        (o)[0] = 4.0f * (d0) - 5.0f * (d2) + (d4);                                          \
        (o)[1] = (d3) + (d4) - 4.0f * ((d1) + (d2));                                        \
        (o)[2] = (d4) - (d3) + 4.0f * ((d1) - (d2));                                        \
        (o)[3] = a_ - 2.0f * b_;                                                            \
        (o)[4] = a_ + 2.0f * b_;                                                            \
        (o)[5] = 4.0f * (d1) - 5.0f * (d3) + (d5);                                          \
    } while (0)

#define WT_AT4(s0, s1, s2, s3, s4, s5, o)                                                     \
    do {                                                                                    \
        v16 p_ = (s1) + (s2), q_ = (s1) - (s2), r_ = (s3) + (s4), t_ = (s3) - (s4);           \
        (o)[0] = (s0) + p_ + r_;                                                            \
        (o)[1] = q_ + 2.0f * t_;                                                            \
        (o)[2] = p_ + 4.0f * r_;                                                            \
        (o)[3] = q_ + 8.0f * t_ + (s5);                                                     \
    } while (0)
#endif

#if WT_AVX512 && WT_F == 2
/* Lanes k = p[2 k + j], j in [0, 4): reads p[0, 34). */
WT_ATTR static inline v16 WT_NAME(gather)(const float *p, int j)
{
    const float *b = p + (j & 2);
    __m512i idx = _mm512_add_epi32(_mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                                   _mm512_set1_epi32(j & 1));
    return (v16)_mm512_permutex2var_ps(_mm512_loadu_ps(b), idx, _mm512_loadu_ps(b + 16));
}
#elif WT_AVX512
/* Lanes k = p[4 k + j], j in [0, 6): reads p[0, 68). */
WT_ATTR static inline v16 WT_NAME(gather)(const float *p, int j)
{
    const float *b = p + (j & 4);
    int jj = j & 3;
    __m512i idx = _mm512_add_epi32(_mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0),
                                   _mm512_set1_epi32(jj));
    __m512 lo = _mm512_permutex2var_ps(_mm512_loadu_ps(b), idx, _mm512_loadu_ps(b + 16));
    __m512 hi = _mm512_permutex2var_ps(_mm512_loadu_ps(b + 32), idx, _mm512_loadu_ps(b + 48));
    return (v16)_mm512_mask_blend_ps(0xff00, lo, hi);
}

#endif

#if WT_AVX512
WT_ATTR static inline v16 WT_NAME(load)(const float *p)
{
    return (v16)_mm512_loadu_ps(p);
}

WT_ATTR static inline void WT_NAME(store)(float *p, v16 v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}

/* out[WT_F k + j] = u[j] lane k for k < 16 (16 WT_F floats), then + z (has z) and the
 * bounds (has_epi), for the first n of them. */
WT_ATTR static inline void WT_NAME(store_row)(const v16 *u, float *out, int n, const float *z,
                                              float lo, float hi, int has_epi)
{
    __m512i ia = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i ib = _mm512_add_epi32(ia, _mm512_set1_epi32(8));
#if WT_F == 2
    __m512 o[2] = {_mm512_permutex2var_ps((__m512)u[0], ia, (__m512)u[1]),
                   _mm512_permutex2var_ps((__m512)u[0], ib, (__m512)u[1])};
#else
    __m512i ic = _mm512_set_epi32(23, 22, 7, 6, 21, 20, 5, 4, 19, 18, 3, 2, 17, 16, 1, 0);
    __m512i id = _mm512_add_epi32(ic, _mm512_set1_epi32(8));
    __m512 p01l = _mm512_permutex2var_ps((__m512)u[0], ia, (__m512)u[1]);
    __m512 p01h = _mm512_permutex2var_ps((__m512)u[0], ib, (__m512)u[1]);
    __m512 p23l = _mm512_permutex2var_ps((__m512)u[2], ia, (__m512)u[3]);
    __m512 p23h = _mm512_permutex2var_ps((__m512)u[2], ib, (__m512)u[3]);
    __m512 o[4] = {_mm512_permutex2var_ps(p01l, ic, p23l), _mm512_permutex2var_ps(p01l, id, p23l),
                   _mm512_permutex2var_ps(p01h, ic, p23h), _mm512_permutex2var_ps(p01h, id, p23h)};
#endif
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int q = 0; q < WT_F && q * 16 < n; q++) {
        int left = n - q * 16;
        __mmask16 mk = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
        __m512 v = o[q];
        if (has_epi) {
            if (z)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, z + q * 16));
            v = _mm512_max_ps(vlo, v); /* v < vlo ? vlo : v (epi_vec) */
            v = _mm512_min_ps(vhi, v);
        }
        _mm512_mask_storeu_ps(out + q * 16, mk, v);
    }
}
#else
WT_ATTR static inline v16 WT_NAME(gather)(const float *p, int j)
{
    v16 v;
    for (int k = 0; k < 16; k++)
        v[k] = p[WT_F * k + j];
    return v;
}

WT_ATTR static inline v16 WT_NAME(load)(const float *p)
{
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

WT_ATTR static inline void WT_NAME(store)(float *p, v16 v, int n)
{
    memcpy(p, &v, sizeof(float) * (size_t)n);
}

WT_ATTR static inline void WT_NAME(store_row)(const v16 *u, float *out, int n, const float *z,
                                              float lo, float hi, int has_epi)
{
    for (int e = 0; e < n; e++) {
        float v = u[e % WT_F][e / WT_F];
        if (has_epi) {
            v = z ? v + z[e] : v;
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
        }
        out[e] = v;
    }
}
#endif

/* B^T d B of the 16 tiles whose top-left input is p[0], p[WT_F], ... (rows pw floats
 * apart): transform point xi of the tile in lane k goes to v[xi * xs + k], k < n. */
WT_ATTR static void WT_NAME(input_tiles)(const float *p, int64_t pw, int n, float *v, int64_t xs)
{
    v16 t[WT_A][WT_A];
    for (int j = 0; j < WT_A; j++) {
        v16 d[WT_A], o[WT_A];
        for (int i = 0; i < WT_A; i++)
            d[i] = WT_NAME(gather)(p + i * pw, j);
        WT_BT(d, o);
        for (int i = 0; i < WT_A; i++)
            t[i][j] = o[i];
    }
    for (int i = 0; i < WT_A; i++) {
        v16 o[WT_A];
        WT_BT(t[i], o);
        for (int j = 0; j < WT_A; j++)
            WT_NAME(store)(v + (i * WT_A + j) * xs, o[j], n);
    }
}

/* A^T s A + bias of the 16 tiles whose products are s[xi * xs + k] (lane k), written to
 * the first `rows` of their WT_F output rows (y, rows ldy floats apart), `cols` outputs
 * of each, with the epilogue (z at y's offsets). */
WT_ATTR static void WT_NAME(output_tiles)(const float *s, int64_t xs, float bias, float *y,
                                          int64_t ldy, int rows, int cols, const float *z,
                                          float lo, float hi, int has_epi)
{
    v16 t[WT_F][WT_A];
    for (int j = 0; j < WT_A; j++) {
        v16 m[WT_A], o[WT_F];
        for (int i = 0; i < WT_A; i++)
            m[i] = WT_NAME(load)(s + (i * WT_A + j) * xs);
        WT_AT(m, o);
        for (int i = 0; i < WT_F; i++)
            t[i][j] = o[i];
    }
    for (int i = 0; i < rows; i++) {
        v16 u[WT_F];
        WT_AT(t[i], u);
        for (int j = 0; j < WT_F; j++)
            u[j] += bias;
        WT_NAME(store_row)(u, y + i * ldy, cols, z ? z + i * ldy : NULL, lo, hi, has_epi);
    }
}

#undef WT_A
#undef WT_BT
#undef WT_AT
