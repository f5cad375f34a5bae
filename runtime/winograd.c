/*
 * Winograd F(4x4, 3x3) convolution: the 3x3 stride-1 convs of compiled models.
 *
 * A 3x3 conv computes each 4x4 block of outputs (a tile) from a 6x6 block of
 * input; in the Winograd domain (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016) that is 36 products per input and output
 * channel instead of 144 multiply-adds:
 *   y_tile = A^T [ sum_c (G g_mc G^T) .* (B^T d_c B) ] A
 * so the conv becomes 36 independent GEMMs, one per transform point xi:
 *   Y[xi][m][t] = sum_c U[xi][m][c] V[xi][c][t]
 * with U = G g G^T (the weights, transformed and packed once: at compile time,
 * hone_rt_winograd_pack) and V = B^T d B (the input tiles, per run). The
 * multiply-adds drop by 4x (fewer where the plane is not a whole number of
 * tiles); the transforms cost adds and memory traffic, so the backend takes
 * this path only for planes of at least 12x12 with at least 16 input and output
 * channels (hone_rt_winograd_fits), and keeps the direct kernel (conv2d.c)
 * elsewhere. Points 0, +-1, +-2 and infinity keep the transforms' constants
 * small; in float32 the result differs from the direct sum by rounding only
 * (tests/test_winograd.c bounds it against the direct conv).
 *
 * A run, per image:
 *  1. input transform, channels split over the shared pool: each worker copies a
 *     channel into a zero-padded plane (its borders stay zero across channels)
 *     and transforms 16 tiles of a tile row at a time, one tile per vector lane,
 *     into V[xi][c][t] (rows of round_up(T, 32) tiles: the micro-kernel reads
 *     whole 32-column panels in place).
 *  2. GEMMs and output transform, units of 32 output channels x 32 tiles split
 *     over the pool: the micro-kernel of conv2d.c (gemm_micro.h) multiplies the
 *     unit's U panels by V's panels for all 36 points into a per-worker buffer
 *     (36 x 32 x 32 floats, in L2), then A^T s A + bias and FusedConv's epilogue
 *     (residual, Relu/Clip) write the unit's outputs to y.
 * Each output is summed in a fixed order (channel slices of the micro-kernel, then
 * the transform), so results do not depend on the thread count.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#define MR HONE_GEMM_MR
#define NR HONE_GEMM_NR
#define KC HONE_GEMM_KC
#define XI 36         /* transform points: 6 x 6 */
#define MB 16         /* output channels per unit of the GEMM phase */
/* Floats between the transform points' blocks of a worker's products: 16 more than the
 * block, so the 36 rows read for one tile do not all fall into the same L1 sets. */
#define SX (MB * NR + 16)
#define WORKERS 16    /* workers whose buffers the scratch holds: the shared pool's cap */
/* Winograd multiply-adds of an image below which it runs on the calling thread only. */
#define PARALLEL_MIN_MACS ((int64_t)1 << 21)

typedef float v16 __attribute__((vector_size(64)));
/* The portable instance passes v16 values between static functions of this file only. */
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define WT_AVX512 1
#define WT_NAME(f) f##_avx512
#define WT_ATTR __attribute__((target("avx512f"), optimize("O3")))
#include "winograd_tiles.h"
#undef WT_AVX512
#undef WT_NAME
#undef WT_ATTR
#define HAVE_WT_AVX512 1
#endif
#define WT_AVX512 0
#define WT_NAME(f) f##_c
#define WT_ATTR __attribute__((optimize("O3")))
#include "winograd_tiles.h"

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* Tile grid and padded plane of a window. */
typedef struct wgeom {
    int64_t th, tw, t, tp; /* tile rows, tile columns, tiles, tiles rounded up to NR */
    int64_t ph, pw;        /* the padded plane: rows, row stride (room for the 68-float reads) */
    int64_t wsz;           /* floats of one worker's buffer */
} wgeom;

static void geometry(const hone_rt_window *w, wgeom *g)
{
    g->th = (w->out[0] + 3) / 4;
    g->tw = (w->out[1] + 3) / 4;
    g->t = g->th * g->tw;
    g->tp = round_up(g->t, NR);
    g->ph = 4 * g->th + 2;
    g->pw = round_up(4 * g->tw + 2, 16) + 80;
    int64_t plane = g->ph * g->pw, prod = XI * SX + 16;
    g->wsz = round_up(plane > prod ? plane : prod, 16);
}

int hone_rt_winograd_fits(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    if (w->nsp != 2 || groups != 1 || c < 16 || m < 16)
        return 0;
    for (int d = 0; d < 2; d++)
        if (w->k[d] != 3 || w->stride[d] != 1 || w->dil[d] != 1 || w->pad[d] < 0 ||
            w->pad_end[d] < 0 || w->out[d] != w->in[d] + w->pad[d] + w->pad_end[d] - 2 ||
            w->out[d] < 12)
            return 0;
    return 1;
}

int64_t hone_rt_winograd_packed_numel(int64_t c, int64_t m)
{
    return XI * round_up(m, MR) * c;
}

/* G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]. */
static const double G[6][3] = {{1.0 / 4, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};

void hone_rt_winograd_pack(int64_t c, int64_t m, const float *wt, float *up)
{
    int64_t mp = round_up(m, MR);
    memset(up, 0, sizeof(float) * (size_t)hone_rt_winograd_packed_numel(c, m));
    for (int64_t o = 0; o < m; o++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *g = wt + (o * c + ci) * 9;
            double gg[6][3];
            for (int i = 0; i < 6; i++)
                for (int b = 0; b < 3; b++)
                    gg[i][b] = G[i][0] * g[b] + G[i][1] * g[3 + b] + G[i][2] * g[6 + b];
            int64_t pc = ci / KC * KC, kc = c - pc < KC ? c - pc : KC, ir = o / MR * MR;
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double u = gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2];
                    up[(i * 6 + j) * mp * c + pc * mp + ir * kc + (ci - pc) * MR + o % MR] = (float)u;
                }
        }
}

/* Floats between V's transform points: the channels' rows plus one cache line (a
 * multiple of 4 KiB otherwise for many shapes: the 36 stores of a tile then hit the same
 * L1 sets). */
static int64_t vstride(int64_t c, const wgeom *g)
{
    return c * g->tp + 16;
}

size_t hone_rt_winograd_scratch(const hone_rt_window *w, int64_t c, int64_t m)
{
    wgeom g;
    (void)m;
    geometry(w, &g);
    return (size_t)(XI * vstride(c, &g) + WORKERS * g.wsz + 16);
}

typedef struct wjob {
    const hone_rt_window *w;
    wgeom g;
    const float *x, *up, *bias, *z; /* x, z, y: the current image */
    float *v, *y, *ws;              /* v: V[xi][c][tp]; ws: WORKERS buffers of g.wsz */
    int64_t c, m, mp, qpanels;
    float lo, hi;
    int has_epi, avx512;
} wjob;

/* Phase 1, channels [c0, c1): padded plane, then its tiles into V. */
static void run_input(void *ctx, int64_t c0, int64_t c1, int worker)
{
    const wjob *j = ctx;
    const hone_rt_window *w = j->w;
    const wgeom *g = &j->g;
    float *plane = j->ws + (int64_t)worker * g->wsz;
    int64_t ih = w->in[0], iw = w->in[1], xs = vstride(j->c, g);
    memset(plane, 0, sizeof(float) * (size_t)(g->ph * g->pw));
    for (int64_t c = c0; c < c1; c++) {
        const float *xc = j->x + c * ih * iw;
        for (int64_t r = 0; r < ih; r++)
            memcpy(plane + (r + w->pad[0]) * g->pw + w->pad[1], xc + r * iw, sizeof(float) * (size_t)iw);
        float *vc = j->v + c * g->tp;
        for (int64_t ty = 0; ty < g->th; ty++)
            for (int64_t tx = 0; tx < g->tw; tx += 16) {
                int n = g->tw - tx < 16 ? (int)(g->tw - tx) : 16;
                const float *p = plane + 4 * ty * g->pw + 4 * tx;
                float *dst = vc + ty * g->tw + tx;
#ifdef HAVE_WT_AVX512
                if (j->avx512)
                    input_tiles_avx512(p, g->pw, n, dst, xs);
                else
#endif
                    input_tiles_c(p, g->pw, n, dst, xs);
            }
        for (int xi = 0; xi < XI; xi++) /* the panels' columns past the last tile */
            memset(vc + xi * xs + g->t, 0, sizeof(float) * (size_t)(g->tp - g->t));
    }
}

/* Phase 2, units [u0, u1): unit u is output channels [32 (u / qpanels), +32) times tiles
 * [32 (u % qpanels), +32): 36 GEMMs into the worker's buffer s[xi][32][32], then the
 * output transform. */
static void run_gemm(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const wjob *j = ctx;
    const hone_rt_window *w = j->w;
    const wgeom *g = &j->g;
    float *s = j->ws + (int64_t)worker * g->wsz;
    int64_t oh = w->out[0], ow = w->out[1], xs = vstride(j->c, g), us = j->mp * j->c;
    memset(s + XI * SX, 0, sizeof(float) * 16); /* read past the last row, never used */
    for (int64_t u = u0; u < u1; u++) {
        int64_t m0 = u / j->qpanels * MB, q = u % j->qpanels * NR;
        int64_t m1 = m0 + MB < j->m ? m0 + MB : j->m, nr = g->t - q < NR ? g->t - q : NR;
        for (int xi = 0; xi < XI; xi++)
            for (int64_t pc = 0; pc < j->c; pc += KC) {
                int64_t kc = j->c - pc < KC ? j->c - pc : KC;
                for (int64_t ir = m0; ir < m1; ir += MR)
                    hone_rt_gemm_micro(kc, j->up + xi * us + pc * j->mp + ir * kc,
                                       j->v + xi * xs + pc * g->tp + q, g->tp, pc > 0, NULL, NULL,
                                       s + xi * SX + (ir - m0) * NR, NR,
                                       j->m - ir < MR ? j->m - ir : MR, nr);
            }
        for (int64_t ch = m0; ch < m1; ch++) {
            float bias = j->bias ? j->bias[ch] : 0.0f;
            for (int64_t t = q; t < q + nr;) {
                int64_t ty = t / g->tw, tx = t % g->tw, n = g->tw - tx;
                n = n > q + nr - t ? q + nr - t : n;
                n = n > 16 ? 16 : n;
                int64_t rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4, cols = ow - 4 * tx;
                cols = cols > 4 * n ? 4 * n : cols;
                int64_t off = (ch * oh + 4 * ty) * ow + 4 * tx;
                const float *src = s + (ch - m0) * NR + (t - q);
                const float *z = j->z ? j->z + off : NULL;
#ifdef HAVE_WT_AVX512
                if (j->avx512)
                    output_tiles_avx512(src, SX, bias, j->y + off, ow, (int)rows, (int)cols, z,
                                        j->lo, j->hi, j->has_epi);
                else
#endif
                    output_tiles_c(src, SX, bias, j->y + off, ow, (int)rows, (int)cols, z,
                                   j->lo, j->hi, j->has_epi);
                t += n;
            }
        }
    }
}

void hone_rt_winograd_conv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                           const float *x, const float *up, const float *bias, const float *z,
                           float lo, float hi, float *y, float *scratch)
{
    wjob j = {.w = w, .up = up, .bias = bias, .c = c, .m = m, .mp = round_up(m, MR), .lo = lo,
              .hi = hi, .has_epi = 1, .avx512 = hone_rt_cpu_avx512f()};
    geometry(w, &j.g);
    j.v = scratch;
    j.ws = (float *)(((uintptr_t)(scratch + XI * vstride(c, &j.g)) + 63) & ~(uintptr_t)63);
    j.qpanels = j.g.tp / NR;
    int64_t units = (j.mp + MB - 1) / MB * j.qpanels, in = w->in[0] * w->in[1];
    int64_t out = w->out[0] * w->out[1];
    hone_rt_pool *pool = XI * m * c * j.g.t >= PARALLEL_MIN_MACS ? hone_rt_shared_pool() : NULL;
    for (int64_t b = 0; b < n; b++) {
        j.x = x + b * c * in;
        j.y = y + b * m * out;
        j.z = z ? z + b * m * out : NULL;
        hone_rt_parallel_for(pool, c, 1, run_input, &j);
        hone_rt_parallel_for(pool, units, 1, run_gemm, &j);
    }
}
