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
 * this path only for convs with at least 16 input and output channels whose
 * transformed weights stay small enough (hone_rt_winograd_fits; F(2x2, 3x3), 16
 * points, where F(4x4)'s would be large or the plane is under 12 x 12), and keeps
 * the direct kernel (conv2d.c) elsewhere. Points 0, +-1, +-2 and infinity keep the transforms' constants
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
#define XI 36         /* transform points of F(4x4, 3x3), 6 x 6; F(2x2, 3x3) has 16 */
#define MB 16         /* output channels per unit of the GEMM phase */
/* Floats between the transform points' blocks of a worker's products: 16 more than the
 * block, so the 36 rows read for one tile do not all fall into the same L1 sets. */
#define SX (MB * NR + 16)
#define WORKERS 16    /* workers whose buffers the scratch holds: the shared pool's cap */
/* Winograd multiply-adds of a pass below which it runs on the calling thread only. */
#define PARALLEL_MIN_MACS ((int64_t)1 << 21)
/* The same while the pool's workers poll (compiled models, hone_rt_compiled_enter): a
 * parallel-for then costs about a microsecond, and a small model's convs (16 channels at
 * 28x28: 451k multiply-adds in the GEMMs) ran on one thread of two. */
#define PARALLEL_MIN_MACS_SPIN ((int64_t)1 << 17)

typedef float v16 __attribute__((vector_size(64)));
/* The portable instance passes v16 values between static functions of this file only. */
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define WT_AVX512 1
#define WT_ATTR __attribute__((target("avx512f"), optimize("O3")))
#define WT_F 4
#define WT_NAME(f) f##4_avx512
#include "winograd_tiles.h"
#undef WT_F
#undef WT_NAME
#define WT_F 2
#define WT_NAME(f) f##2_avx512
#include "winograd_tiles.h"
#undef WT_F
#undef WT_NAME
#undef WT_AVX512
#undef WT_ATTR
#define HAVE_WT_AVX512 1
#endif
#define WT_AVX512 0
#define WT_ATTR __attribute__((optimize("O3")))
#define WT_F 4
#define WT_NAME(f) f##4_c
#include "winograd_tiles.h"
#undef WT_F
#undef WT_NAME
#define WT_F 2
#define WT_NAME(f) f##2_c
#include "winograd_tiles.h"

typedef void (*input_fn)(const float *p, int64_t pw, int n, float *v, int64_t xs);
typedef void (*output_fn)(const float *s, int64_t xs, float bias, float *y, int64_t ldy,
                          int rows, int cols, const float *z, float lo, float hi, int has_epi);

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* Tile grid and padded plane of a window. */
typedef struct wgeom {
    int f, a, xi;          /* output tile f x f, input tile a x a, a * a transform points */
    int64_t th, tw, t;     /* tile rows, tile columns, tiles of one image */
    int64_t ng, tp;        /* images per group, a group's tiles rounded up to NR */
    int64_t ph, pw;        /* the padded plane: rows, row stride (room for the 68-float reads) */
    int64_t wsz;           /* floats of one worker's buffer */
} wgeom;

/* Transformed weights, in floats, above which F(2x2, 3x3) replaces F(4x4, 3x3): 36 / 9
 * times the weights are then too large for the caches, and a model streams them from
 * memory on every run (ResNet-18's 14x14 3x3 256 -> 256 convs, 9.4 MB each in F(4x4):
 * no faster than the direct kernel within the model, though 1.6x in isolation). */
#define F4_MAX_FLOATS ((int64_t)1 << 20)
/* Above this, in floats (16 / 9 times the weights), no Winograd at all. ResNet's 7x7 3x3
 * 512 -> 512 convs (16.8 MB each in F(2x2)) are below it: on two threads, ResNet-18
 * 7.67 -> 6.49 ms and ResNet-50 20.1 -> 19.1 ms against their direct kernel, which split
 * its 49 positions poorly over two workers (1.5x). */
#define F2_MAX_FLOATS ((int64_t)5 << 20)
/* Output planes from F(4x4)'s smallest (12 x 12: 9 tiles) and F(2x2)'s (7 x 7: 16 tiles);
 * fewer tiles leave the GEMMs too narrow. */
#define F4_MIN_OUT 12
#define F2_MIN_OUT 7

/* The output tile of the conv: 4 or 2, 0 when the weights are too large or the plane
 * too small. */
static int tile_of(const hone_rt_window *w, int64_t c, int64_t m)
{
    int64_t out = w->out[0] < w->out[1] ? w->out[0] : w->out[1];
    if (out >= F4_MIN_OUT && 36 * c * m <= F4_MAX_FLOATS)
        return 4;
    return out >= F2_MIN_OUT && 16 * c * m <= F2_MAX_FLOATS ? 2 : 0;
}

/* Floats of V (xi x c x tp) up to which the images of a batch share one pass: their tiles
 * side by side, so the GEMMs are n times wider and the phases run once, not once per
 * image (a video model's 8 frames of 28x28, 16 channels: 49 tiles an image, too few to
 * run on the pool at all; the shared mfmnist_tsn model, two threads: its 3x3 stride-1
 * convs 294-318 -> 141-149 us each, the model 2.3 -> 1.43 ms). */
#define V_GROUP_FLOATS ((int64_t)1 << 21)

static void geometry(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, wgeom *g)
{
    g->f = tile_of(w, c, m);
    g->a = g->f + 2;
    g->xi = g->a * g->a;
    g->th = (w->out[0] + g->f - 1) / g->f;
    g->tw = (w->out[1] + g->f - 1) / g->f;
    g->t = g->th * g->tw;
    g->ng = 1;
    while (g->ng < n && g->xi * c * round_up((g->ng + 1) * g->t, NR) <= V_GROUP_FLOATS)
        g->ng++;
    g->tp = round_up(g->ng * g->t, NR);
    g->ph = g->f * g->th + 2;
    g->pw = round_up(g->f * g->tw + 2, 16) + 80;
    int64_t plane = g->ph * g->pw, prod = g->xi * SX + 16;
    g->wsz = round_up(plane > prod ? plane : prod, 16);
}

int hone_rt_winograd_fits(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    if (w->nsp != 2 || groups != 1 || c < 16 || m < 16)
        return 0;
    for (int d = 0; d < 2; d++)
        if (w->k[d] != 3 || w->stride[d] != 1 || w->dil[d] != 1 || w->pad[d] < 0 ||
            w->pad_end[d] < 0 || w->out[d] != w->in[d] + w->pad[d] + w->pad_end[d] - 2)
            return 0;
    return tile_of(w, c, m) != 0;
}

int64_t hone_rt_winograd_packed_numel(const hone_rt_window *w, int64_t c, int64_t m)
{
    return (tile_of(w, c, m) == 2 ? 16 : XI) * round_up(m, MR) * c;
}

/* G of F(4x4, 3x3) = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 * 1/24 -1/12 1/6; 0 0 1]; of F(2x2, 3x3) = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G[6][3] = {{1.0 / 4, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};

void hone_rt_winograd_pack(const hone_rt_window *w, int64_t c, int64_t m, const float *wt,
                           float *up)
{
    int64_t mp = round_up(m, MR);
    int a = tile_of(w, c, m) == 2 ? 4 : 6;
    const double(*gm)[3] = a == 4 ? G2 : G;
    memset(up, 0, sizeof(float) * (size_t)hone_rt_winograd_packed_numel(w, c, m));
    for (int64_t o = 0; o < m; o++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *g = wt + (o * c + ci) * 9;
            double gg[6][3];
            for (int i = 0; i < a; i++)
                for (int b = 0; b < 3; b++)
                    gg[i][b] = gm[i][0] * g[b] + gm[i][1] * g[3 + b] + gm[i][2] * g[6 + b];
            int64_t pc = ci / KC * KC, kc = c - pc < KC ? c - pc : KC, ir = o / MR * MR;
            int64_t m0 = o / MB * MB, mbp = mp - m0 < MB ? mp - m0 : MB;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++) {
                    double u = gg[i][0] * gm[j][0] + gg[i][1] * gm[j][1] + gg[i][2] * gm[j][2];
                    up[m0 * a * a * c + (i * a + j) * mbp * c + pc * mbp + (ir - m0) * kc +
                       (ci - pc) * MR + o % MR] = (float)u;
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

size_t hone_rt_winograd_scratch(const hone_rt_window *w, int64_t n, int64_t c, int64_t m)
{
    wgeom g;
    geometry(w, n, c, m, &g);
    return (size_t)(g.xi * vstride(c, &g) + WORKERS * g.wsz + 16);
}

typedef struct wjob {
    const hone_rt_window *w;
    wgeom g;
    const float *x, *up, *bias, *z; /* x, z, y: the current group's first image */
    float *v, *y, *ws;              /* v: V[xi][c][tp]; ws: WORKERS buffers of g.wsz */
    int64_t c, m, mp, qpanels;
    int64_t ngc, tt;                /* images in the current group, their tiles */
    float lo, hi;
    int has_epi;
    input_fn input;
    output_fn output;
} wjob;

/* Phase 1, units [u0, u1): unit u is channel u % c of the group's image u / c: padded
 * plane, then its tiles into V (the image's tiles after those of the images before it). */
static void run_input(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const wjob *j = ctx;
    const hone_rt_window *w = j->w;
    const wgeom *g = &j->g;
    float *plane = j->ws + (int64_t)worker * g->wsz;
    int64_t ih = w->in[0], iw = w->in[1], xs = vstride(j->c, g);
    memset(plane, 0, sizeof(float) * (size_t)(g->ph * g->pw));
    for (int64_t u = u0; u < u1; u++) {
        int64_t img = u / j->c, c = u % j->c;
        const float *xc = j->x + (img * j->c + c) * ih * iw;
        for (int64_t r = 0; r < ih; r++)
            memcpy(plane + (r + w->pad[0]) * g->pw + w->pad[1], xc + r * iw, sizeof(float) * (size_t)iw);
        float *vc = j->v + c * g->tp + img * g->t;
        for (int64_t ty = 0; ty < g->th; ty++)
            for (int64_t tx = 0; tx < g->tw; tx += 16) {
                int n = g->tw - tx < 16 ? (int)(g->tw - tx) : 16;
                j->input(plane + g->f * (ty * g->pw + tx), g->pw, n, vc + ty * g->tw + tx, xs);
            }
        if (img == j->ngc - 1) /* the panels' columns past the group's last tile */
            for (int xi = 0; xi < g->xi; xi++)
                memset(j->v + c * g->tp + xi * xs + j->tt, 0, sizeof(float) * (size_t)(g->tp - j->tt));
    }
}

/* Phase 2, units [u0, u1): unit u is output channels [MB (u / qpanels), +MB) times tiles
 * [32 (u % qpanels), +32): a GEMM per transform point into the worker's buffer
 * s[xi][MB][32], then the output transform. */
static void run_gemm(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const wjob *j = ctx;
    const hone_rt_window *w = j->w;
    const wgeom *g = &j->g;
    float *s = j->ws + (int64_t)worker * g->wsz;
    int64_t oh = w->out[0], ow = w->out[1], xs = vstride(j->c, g);
    memset(s + g->xi * SX, 0, sizeof(float) * 16); /* read past the last row, never used */
    for (int64_t u = u0; u < u1; u++) {
        int64_t m0 = u / j->qpanels * MB, q = u % j->qpanels * NR;
        int64_t m1 = m0 + MB < j->m ? m0 + MB : j->m, nr = j->tt - q < NR ? j->tt - q : NR;
        int64_t mbp = j->mp - m0 < MB ? j->mp - m0 : MB;
        const float *ub = j->up + m0 * g->xi * j->c; /* the block's weights, in the order read */
        for (int xi = 0; xi < g->xi; xi++)
            for (int64_t pc = 0; pc < j->c; pc += KC) {
                int64_t kc = j->c - pc < KC ? j->c - pc : KC;
                for (int64_t ir = m0; ir < m1; ir += MR)
                    hone_rt_gemm_micro(kc, ub + xi * mbp * j->c + pc * mbp + (ir - m0) * kc,
                                       j->v + xi * xs + pc * g->tp + q, g->tp, pc > 0, NULL, NULL,
                                       s + xi * SX + (ir - m0) * NR, NR,
                                       j->m - ir < MR ? j->m - ir : MR, nr);
            }
        for (int64_t ch = m0; ch < m1; ch++) {
            float bias = j->bias ? j->bias[ch] : 0.0f;
            for (int64_t t = q; t < q + nr;) {
                int64_t img = t / g->t, tl = t % g->t; /* the tile's image, its tile there */
                int64_t ty = tl / g->tw, tx = tl % g->tw, n = g->tw - tx;
                n = n > q + nr - t ? q + nr - t : n;
                n = n > 16 ? 16 : n;
                int64_t f = g->f, rows = oh - f * ty < f ? oh - f * ty : f, cols = ow - f * tx;
                cols = cols > f * n ? f * n : cols;
                int64_t off = ((img * j->m + ch) * oh + f * ty) * ow + f * tx;
                j->output(s + (ch - m0) * NR + (t - q), SX, bias, j->y + off, ow, (int)rows,
                          (int)cols, j->z ? j->z + off : NULL, j->lo, j->hi, j->has_epi);
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
              .hi = hi, .has_epi = 1};
    geometry(w, n, c, m, &j.g);
    j.input = j.g.f == 4 ? input_tiles4_c : input_tiles2_c;
    j.output = j.g.f == 4 ? output_tiles4_c : output_tiles2_c;
#ifdef HAVE_WT_AVX512
    if (hone_rt_cpu_avx512f()) {
        j.input = j.g.f == 4 ? input_tiles4_avx512 : input_tiles2_avx512;
        j.output = j.g.f == 4 ? output_tiles4_avx512 : output_tiles2_avx512;
    }
#endif
    j.v = scratch;
    j.ws = (float *)(((uintptr_t)(scratch + j.g.xi * vstride(c, &j.g)) + 63) & ~(uintptr_t)63);
    int64_t in = w->in[0] * w->in[1], out = w->out[0] * w->out[1];
    for (int64_t b = 0; b < n; b += j.g.ng) {
        j.ngc = n - b < j.g.ng ? n - b : j.g.ng;
        j.tt = j.ngc * j.g.t;
        j.qpanels = (j.tt + NR - 1) / NR;
        int64_t units = (j.mp + MB - 1) / MB * j.qpanels;
        hone_rt_pool *pool = hone_rt_shared_pool();
        int64_t min_macs = hone_rt_pool_spin(pool) > 0 ? PARALLEL_MIN_MACS_SPIN : PARALLEL_MIN_MACS;
        pool = j.g.xi * m * c * j.tt >= min_macs ? pool : NULL;
        j.x = x + b * c * in;
        j.y = y + b * m * out;
        j.z = z ? z + b * m * out : NULL;
        hone_rt_parallel_for(pool, j.ngc * c, 1, run_input, &j);
        hone_rt_parallel_for(pool, units, 1, run_gemm, &j);
    }
}
