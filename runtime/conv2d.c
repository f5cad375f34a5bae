/*
 * 2-D convolution on packed weights: the conv kernel of compiled models and of
 * the interpreter.
 *
 * Per group, y_g[mg, P] = W_g[mg, rows] x col[rows, P] + bias, rows = cg*KH*KW,
 * P = OH*OW window positions, as in im2col + GEMM (conv.c), but:
 *  - W_g is packed once into the micro-kernel's MR-row panels, KC-deep slice by
 *    slice (hone_rt_conv2d_pack). The backend does this at compile time and
 *    embeds the packed weights, so a run never repacks them; the interpreter
 *    packs into its scratch per call.
 *  - col is built a tile of whole output rows at a time by the plane-row
 *    im2col of the training kernels (hone_rt_im2col_2d: one shifted copy per
 *    tap and input row, mostly memcpy), within a 1 MiB budget; pointwise
 *    windows (1x1, stride 1, unpadded) skip it and read the image in place.
 *  - the micro-kernel reads full NR-column panels of col in place (row stride
 *    = the tile's width); only a partial last panel is copied into a zero-
 *    padded buffer, so no lane reads past the matrix.
 *  - the first KC slice's store adds the bias, so y is written once, not filled
 *    and then accumulated into; the last one can apply FusedConv's residual and
 *    Relu/Clip (hone_rt_conv2d_epi).
 *  - (a transposed layout for small planes, positions in the micro-kernel's rows,
 *    was removed on 2026-11-26: with Winograd taking the 3x3 stride-1 convs, it
 *    only ran 1x1 and stride-2 convs on 7x7 and 14x14 planes, and split poorly over
 *    two threads: MobileNetV2 2.85-3.05 -> 2.67-2.81 ms without it, ResNet-50 within
 *    noise, two threads, alternating runs.)
 *  - KC slices are the outermost loop of a worker's range, so a slice of the
 *    weights stays in cache while it meets every panel of the range (the deep
 *    layers' weights, 2-9 MB in ResNet-18's last stages, were streamed from L3
 *    once per panel before: 5% of ResNet-18's time at one thread).
 * The panels of a tile are split over the runtime's shared pool when the tile
 * holds at least 2^22 multiply-adds (waking the pool costs tens of microseconds);
 * when a tile has fewer than 4 panels per worker, the weights' row panels are cut
 * into blocks too, so every worker has work and reads only its block of the
 * weights. Each worker has its own panel buffer in the scratch. Every output
 * element is summed by one micro-kernel sequence in slice order (the layout,
 * depends on the shape only), so results do not depend on the
 * thread count or the tile size, and compiled code and the interpreter agree bit
 * for bit. A fused gather straight from the image into packed panels
 * was tried and measured slower here (one masked copy per panel, tap and output
 * row against one memcpy per tap and input row).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_micro.h"
#include "hone_rt.h"

#define MR HONE_GEMM_MR
#define NR HONE_GEMM_NR
#define KC HONE_GEMM_KC

/* Multiply-adds of a tile below which it runs on the calling thread only: waking a
 * sleeping pool costs 15-20 microseconds. 2^22 measured best when the workers sleep at
 * once (the interpreter: bench/perf_vs_ort.sh models at 2^18, 2^20, 2^22 and 2^24,
 * alternating: ResNet-18 12% and MobileNetV2 25% faster than at 2^24, 2^20 no better).
 * Where the workers poll for the next job (compiled models, hone_rt_compiled_enter) a
 * parallel-for costs about half a microsecond, and 2^19 measured best: two threads,
 * SqueezeNet 2.13 -> 1.86-1.91 ms and MobileNetV2 2.77 -> 2.58-2.66 ms against 2^22
 * (2^17-2^20 within noise of each other; ResNet-50 unchanged). */
#define PARALLEL_MIN_MACS ((int64_t)1 << 22)
#define PARALLEL_MIN_MACS_SPIN ((int64_t)1 << 19)

/* A positive integer from the environment variable `name` (for measuring trade-offs),
 * else dflt; read once into *cache. */
static int64_t env_threshold(const char *name, int64_t dflt, int64_t *cache)
{
    int64_t v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *s = getenv(name);
        long long e = s ? atoll(s) : 0;
        v = e > 0 ? (int64_t)e : dflt;
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Tiles of at least this many multiply-adds run on the shared pool: HONE_PARALLEL_MIN_MACS
 * from the environment, else PARALLEL_MIN_MACS_SPIN while the pool's workers poll and
 * PARALLEL_MIN_MACS when they sleep at once. */
static int64_t parallel_min_macs(void)
{
    static int64_t cached = -1;
    int64_t env = env_threshold("HONE_PARALLEL_MIN_MACS", 0, &cached);
    if (env > 0)
        return env;
    return hone_rt_pool_spin(hone_rt_shared_pool()) > 0 ? PARALLEL_MIN_MACS_SPIN
                                                        : PARALLEL_MIN_MACS;
}

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

int64_t hone_rt_conv2d_packed_numel(const hone_rt_window *w, int64_t m, int64_t groups,
                                    int64_t rows)
{
    int64_t mg = m / groups;
    (void)w;
    return groups * round_up(mg, MR) * rows;
}

void hone_rt_conv2d_pack(const hone_rt_window *w, int64_t m, int64_t groups, int64_t rows,
                         const float *wt, float *wp)
{
    int64_t mg = m / groups, ph = MR, mp = round_up(mg, ph);
    (void)w;
    for (int64_t g = 0; g < groups; g++) {
        const float *wg = wt + g * mg * rows;
        float *dst = wp + g * mp * rows;
        for (int64_t pc = 0; pc < rows; pc += KC) {
            int64_t kc = rows - pc < KC ? rows - pc : KC;
            for (int64_t ir = 0; ir < mp; ir += ph) {
                float *d = dst + pc * mp + ir * kc;
                for (int64_t kk = 0; kk < kc; kk++)
                    for (int64_t r = 0; r < ph; r++)
                        d[kk * ph + r] = ir + r < mg ? wg[(ir + r) * rows + pc + kk] : 0.0f;
            }
        }
    }
}

/* Work units a tile aims for per pool worker (the pool balances them 4 chunks a worker). */
#define UNITS_PER_WORKER 4

/* Workers whose panel buffers the scratch holds: the shared pool's cap. */
#define WORKERS 16
/* Budget of one tile's column matrix, in floats (4 MiB): whole output rows, one at least.
 * Each tile costs two parallel-fors (im2col, then the GEMM) and ends in a partial column
 * panel; at 1 MiB ResNet's stride-2 convs ran in 2-4 tiles of 98-196 positions. Two
 * threads, least of five alternating runs (bench/conv2d_bench ... --epi --poll): 128 -> 128
 * at 56x56 stride 2 1.65 -> 1.35 ms, 256 -> 256 at 28x28 stride 2 1.59 -> 1.35 ms,
 * ResNet's 7x7 stride-2 conv1 1.79 -> 1.57 ms; ResNet-50 38.0-58.6 -> 36.6-56.5 ms. */
#define TILE_FLOATS ((int64_t)1 << 20)

/* Output rows per tile of a conv whose column matrix has `rows` rows: the fewest tiles
 * within the budget, of equal heights (a short last tile would fall below the pool's
 * threshold and run on one thread: MobileNetV2's first conv, 86 + 26 rows before). */
static int64_t tile_rows(const hone_rt_window *w, int64_t rows)
{
    int64_t r = TILE_FLOATS / ((rows > 0 ? rows : 1) * w->out[1]);
    r = r < 1 ? 1 : r > w->out[0] ? w->out[0] : r;
    int64_t tiles = (w->out[0] + r - 1) / r;
    return (w->out[0] + tiles - 1) / tiles;
}

/* True for 1x1, stride 1, unpadded windows: the image is its own column matrix. */
static bool pointwise(const hone_rt_window *w)
{
    return w->k[0] == 1 && w->k[1] == 1 && w->stride[0] == 1 && w->stride[1] == 1 &&
           w->pad[0] == 0 && w->pad[1] == 0 && w->out[0] == w->in[0] && w->out[1] == w->in[1];
}

size_t hone_rt_conv2d_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    int64_t rows = c / groups * w->k[0] * w->k[1], kc = rows < KC ? rows : KC;
    (void)m;
    int64_t col = pointwise(w) ? 0 : rows * tile_rows(w, rows) * w->out[1];
    /* the tile's column matrix, then the workers' panel buffers (+ 16: to align them) */
    return (size_t)(col + WORKERS * kc * NR + 16);
}

/* Images per tile of hone_rt_conv2d_batched: where one image's whole plane is one tile
 * of a column matrix (im2col, one group), as many images as the tile budget holds, each
 * one's columns padded to whole panels; else 1. */
static int64_t batch_images(const hone_rt_window *w, int64_t n, int64_t rows, int64_t groups)
{
    int64_t pp = round_up(w->out[0] * w->out[1], NR);
    if (n <= 1 || groups != 1 || pointwise(w) || rows < 1 || rows * pp > TILE_FLOATS)
        return 1;
    int64_t k = TILE_FLOATS / (rows * pp);
    return k < n ? k : n;
}

size_t hone_rt_conv2d_batched_scratch(const hone_rt_window *w, int64_t n, int64_t c,
                                      int64_t m, int64_t groups)
{
    int64_t rows = c / groups * w->k[0] * w->k[1], k = batch_images(w, n, rows, groups);
    size_t one = hone_rt_conv2d_scratch(w, c, m, groups);
    if (k <= 1)
        return one;
    int64_t kc = rows < KC ? rows : KC;
    size_t many = (size_t)(k * rows * round_up(w->out[0] * w->out[1], NR) + WORKERS * kc * NR + 16);
    return many > one ? many : one;
}

size_t hone_rt_conv2d_unpacked_scratch(const hone_rt_window *w, int64_t c, int64_t m,
                                       int64_t groups)
{
    int64_t rows = c / groups * w->k[0] * w->k[1];
    return (size_t)hone_rt_conv2d_packed_numel(w, m, groups, rows) +
           hone_rt_conv2d_scratch(w, c, m, groups);
}

/* The tile being multiplied: output rows [oy0, oy0 + n / OW) of one image and group,
 * their column matrix col[rows][n] already gathered. */
typedef struct tile_job {
    const float *col, *wp, *bias;
    float *y, *bp;         /* y: the tile's first output; bp: WORKERS panel buffers */
    int64_t ld;            /* col's row stride: n, or the plane size when col is x itself */
    int64_t rows, n, mg, mp, total, kcmax;
    int64_t panels, blk_rp; /* column panels; row panels per weight block */
    const float *z;        /* fused epilogue (has_epi): residual at the tile's first output */
    float lo, hi;
    int has_epi;
    int avx512;            /* pack with AVX-512 */
    /* batched tiles (hone_rt_conv2d_batched): nimg images, each ppan panels of col wide
     * (its n columns, then zeros to a whole panel, so no panel is packed), their outputs
     * ystride floats apart in y and z; else nimg = 1 and ppan = panels */
    int64_t nimg, ppan, ystride;
} tile_job;

/* Panel of columns [q, q + nr) of col rows [pc, pc + kc): bp[kk * NR + lane], lanes
 * past nr zeroed. */
static void pack_panel_c(const float *col, int64_t ld, int64_t kc, int64_t nr, float *bp)
{
    for (int64_t kk = 0; kk < kc; kk++) {
        for (int64_t i = 0; i < nr; i++)
            bp[kk * NR + i] = col[kk * ld + i];
        for (int64_t i = nr; i < NR; i++)
            bp[kk * NR + i] = 0.0f;
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512_PACK 1
__attribute__((target("avx512f"))) static void pack_panel_avx512(const float *col, int64_t ld,
                                                                int64_t kc, int64_t nr,
                                                                float *bp)
{
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *src = col + kk * ld;
        _mm512_store_ps(bp + kk * NR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(bp + kk * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
}
#endif

/* Column panels a worker runs together: each row panel of the weights meets all of them
 * before the next one, so its output rows are written as PANEL_GROUP * NR long runs (a
 * few streams at a time) and its slice of the weights stays in L1; the group's slice of
 * the column matrix (kc x 512 floats, 512 KB at most) stays in L2. Panel by panel, each
 * meeting every row panel, a pointwise conv wrote all its output rows at once, 128 bytes
 * each (one thread, cold caches: 16 -> 96 channels at 112x112 1.24-1.38 -> 0.70-0.74 ms,
 * 24 -> 144 at 56x56 0.47-0.65 -> 0.31-0.40 ms, 256 -> 256 at 56x56 4.9-8.4 -> 4.25-4.3). */
#define PANEL_GROUP 16

/* One KC slice [pc, pc + kc) of column panels [p0, p1) times the weights' row panels
 * [r0, r1) (bias added on the first slice); a partial panel (only a tile's last) is
 * packed first, so no lane reads past the matrix. */
static void group_slice(const tile_job *j, float *bp, int64_t p0, int64_t p1, int64_t pc,
                        int64_t r0, int64_t r1)
{
    int64_t kc = j->rows - pc < KC ? j->rows - pc : KC;
    const float *b0 = j->col + pc * j->ld;
    int64_t ql = (p1 - 1) * NR, nrl = j->n - ql;
    if (j->nimg == 1 && nrl < NR) {
#ifdef HAVE_AVX512_PACK
        if (j->avx512)
            pack_panel_avx512(b0 + ql, j->ld, kc, nrl, bp);
        else
#endif
            pack_panel_c(b0 + ql, j->ld, kc, nrl, bp);
    }
    bool last = pc + kc >= j->rows;
    for (int64_t ir = r0 * MR; ir < r1 * MR && ir < j->mg; ir += MR) {
        const float *a = j->wp + pc * j->mp + ir * kc;
        int64_t mr = j->mg - ir < MR ? j->mg - ir : MR;
        for (int64_t p = p0; p < p1; p++) {
            int64_t img = p / j->ppan, q = (p - img * j->ppan) * NR; /* image, its column */
            int64_t nr = j->n - q < NR ? j->n - q : NR, yo = img * j->ystride + ir * j->total + q;
            const float *b = b0 + img * j->ppan * NR + q;
            bool packed = j->nimg == 1 && nr < NR;
            hone_rt_micro_epi e = {j->z ? j->z + yo : NULL, j->lo, j->hi};
            hone_rt_gemm_micro(kc, a, packed ? bp : b, packed ? NR : j->ld, pc > 0,
                               pc == 0 && j->bias ? j->bias + ir : NULL,
                               last && j->has_epi ? &e : NULL, j->y + yo, j->total, mr, nr);
        }
    }
}

/* Units [u0, u1) of the tile: unit u is panel u % panels times the weights' row-panel
 * block u / panels. KC slices outermost, so a slice of the weights stays in cache while
 * it meets every panel of the range; within a slice, runs of up to PANEL_GROUP panels of
 * one block. */
static void run_units(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const tile_job *j = ctx;
    float *bp = j->bp + (int64_t)worker * j->kcmax * NR;
    for (int64_t pc = 0; pc < j->rows; pc += KC)
        for (int64_t u = u0; u < u1;) {
            int64_t blk = u / j->panels, p0 = u % j->panels;
            int64_t cnt = j->panels - p0 < PANEL_GROUP ? j->panels - p0 : PANEL_GROUP;
            cnt = u1 - u < cnt ? u1 - u : cnt;
            group_slice(j, bp, p0, p0 + cnt, pc, blk * j->blk_rp, (blk + 1) * j->blk_rp);
            u += cnt;
        }
}

/* im2col of one tile, channels split over the pool when the column matrix has at least
 * IM2COL_PARALLEL_MIN floats (HONE_IM2COL_PARALLEL_MIN overrides, for measuring). */
#define IM2COL_PARALLEL_MIN ((int64_t)1 << 16)

static int64_t im2col_parallel_min(void)
{
    static int64_t cached = -1;
    return env_threshold("HONE_IM2COL_PARALLEL_MIN", IM2COL_PARALLEL_MIN, &cached);
}

typedef struct im2col_job {
    const hone_rt_window *w;
    const float *x;
    float *col;
    int64_t oy0, oy1, ld, xp, taps, rchunks, rstep;
} im2col_job;

/* Units [u0, u1): unit u is channel u / rchunks, output rows chunk u % rchunks. */
static void run_im2col(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const im2col_job *j = ctx;
    (void)worker;
    for (int64_t u = u0; u < u1; u++) {
        int64_t ch = u / j->rchunks, a = j->oy0 + u % j->rchunks * j->rstep;
        int64_t b = a + j->rstep < j->oy1 ? a + j->rstep : j->oy1;
        if (a < b)
            hone_rt_im2col_2d(j->w, 1, j->x + ch * j->xp, a, b,
                              j->col + ch * j->taps * j->ld + (a - j->oy0) * j->w->out[1], j->ld);
    }
}

/* im2col of output rows [oy0, oy1) of one image and group (cg channels at xg) into col
 * (row stride ld), on the pool when it is given and the column matrix is large enough:
 * channels split, and their output rows too when the channels are fewer than
 * UNITS_PER_WORKER per worker (a 3-channel image split 2 : 1 before). */
static void tile_im2col(hone_rt_pool *pool, const hone_rt_window *w, int64_t cg,
                        const float *xg, int64_t oy0, int64_t oy1, float *col, int64_t ld)
{
    im2col_job ij = {w, xg, col, oy0, oy1, ld, w->in[0] * w->in[1], w->k[0] * w->k[1], 1,
                     oy1 - oy0};
    int64_t floats = cg * ij.taps * (oy1 - oy0) * w->out[1];
    pool = pool && floats >= im2col_parallel_min() ? pool : NULL;
    int64_t want = UNITS_PER_WORKER * hone_rt_pool_size(pool);
    if (pool && cg < want) {
        ij.rchunks = (want + cg - 1) / cg;
        ij.rchunks = ij.rchunks > oy1 - oy0 ? oy1 - oy0 : ij.rchunks;
        ij.rstep = (oy1 - oy0 + ij.rchunks - 1) / ij.rchunks;
    }
    hone_rt_parallel_for(pool, cg * ij.rchunks, 1, run_im2col, &ij);
}

/* Work units of a tile on the pool: its `along` panels, and when they are fewer than
 * UNITS_PER_WORKER per worker, also blocks of the `across` panels of the other operand
 * (a worker then reads only its block of the weights). Sets *blk (panels per block);
 * returns the unit count (along x blocks). */
static int64_t split_units(hone_rt_pool *pool, int64_t along, int64_t across, int64_t *blk)
{
    int64_t want = pool ? UNITS_PER_WORKER * hone_rt_pool_size(pool) : 1;
    int64_t blocks = along >= want ? 1 : (want + along - 1) / along;
    blocks = blocks > across ? across : blocks;
    *blk = (across + blocks - 1) / blocks;
    return along * ((across + *blk - 1) / *blk);
}

/* v with FusedConv's epilogue: + the residual r (when has_z), then the bounds. */
static inline float epilogue(float v, int has_z, float r, float lo, float hi)
{
    v = has_z ? v + r : v;
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* im2col of images [b, b + k) (one group) into a batched tile: image i's columns at
 * i * pp of each row of ld floats, the pp - total past its plane zeroed; units are
 * (image, channel) pairs. */
typedef struct bim2col_job {
    const hone_rt_window *w;
    const float *x;
    float *col;
    int64_t c, xp, taps, total, pp, ld;
} bim2col_job;

static void run_bim2col(void *ctx, int64_t u0, int64_t u1, int worker)
{
    const bim2col_job *j = ctx;
    (void)worker;
    for (int64_t u = u0; u < u1; u++) {
        int64_t img = u / j->c, ch = u % j->c;
        float *dst = j->col + ch * j->taps * j->ld + img * j->pp;
        hone_rt_im2col_2d(j->w, 1, j->x + (img * j->c + ch) * j->xp, 0, j->w->out[0], dst, j->ld);
        for (int64_t t = 0; t < j->taps; t++)
            memset(dst + t * j->ld + j->total, 0, sizeof(float) * (size_t)(j->pp - j->total));
    }
}

/* Images [0, n) in tiles of k (batch_images), one group: each tile one im2col and one
 * GEMM over all its images' panels, where image by image the tiles were too narrow to
 * share out (a video model's 8 frames of 14x14: 7 panels each). */
static void conv2d_batched(const hone_rt_window *w, int64_t n, int64_t k, int64_t c, int64_t m,
                           const float *x, const float *wp, const float *bias, const float *z,
                           float lo, float hi, int has_epi, float *y, float *scratch)
{
    int64_t rows = c * w->k[0] * w->k[1], total = w->out[0] * w->out[1];
    int64_t pp = round_up(total, NR), xp = w->in[0] * w->in[1];
    tile_job j = {.wp = wp, .bias = bias, .rows = rows, .n = total, .mg = m,
                  .mp = round_up(m, MR), .total = total, .kcmax = rows < KC ? rows : KC,
                  .avx512 = hone_rt_cpu_avx512f(), .lo = lo, .hi = hi, .has_epi = has_epi,
                  .ppan = pp / NR, .ystride = m * total};
    j.bp = (float *)(((uintptr_t)(scratch + k * rows * pp) + 63) & ~(uintptr_t)63);
    for (int64_t b = 0; b < n; b += k) {
        int64_t ki = n - b < k ? n - b : k;
        hone_rt_pool *pool = m * rows * ki * total >= parallel_min_macs() ? hone_rt_shared_pool()
                                                                          : NULL;
        bim2col_job ij = {w, x + b * c * xp, scratch, c, xp, w->k[0] * w->k[1], total, pp, ki * pp};
        hone_rt_parallel_for(pool, ki * c, 1, run_bim2col, &ij);
        j.col = scratch;
        j.ld = ki * pp;
        j.nimg = ki;
        j.y = y + b * m * total;
        j.z = z ? z + b * m * total : NULL;
        j.panels = ki * j.ppan;
        int64_t units = split_units(pool, j.panels, j.mp / MR, &j.blk_rp);
        hone_rt_parallel_for(pool, units, 1, run_units, &j);
    }
}

static void conv2d(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                   const float *x, const float *wp, const float *bias, const float *z, float lo,
                   float hi, int has_epi, float *y, float *scratch)
{
    int64_t cg = c / groups, mg = m / groups, rows = cg * w->k[0] * w->k[1];
    int64_t total = w->out[0] * w->out[1], xp = w->in[0] * w->in[1], ow = w->out[1];
    int64_t step = tile_rows(w, rows);
    bool direct = pointwise(w);
    if (n <= 0 || mg <= 0 || total <= 0)
        return;
    if (rows == 0) { /* no input channels: the bias alone (then the epilogue) */
        for (int64_t i = 0; i < n * m * total; i++) {
            float v = bias ? bias[i / total % m] : 0.0f;
            y[i] = has_epi ? epilogue(v, z != NULL, z ? z[i] : 0.0f, lo, hi) : v;
        }
        return;
    }
    float *col = scratch;
    tile_job j = {.col = col, .rows = rows, .mg = mg, .mp = round_up(mg, MR), .total = total,
                  .kcmax = rows < KC ? rows : KC, .avx512 = hone_rt_cpu_avx512f(),
                  .lo = lo, .hi = hi, .has_epi = has_epi, .nimg = 1};
    j.bp = (float *)(((uintptr_t)(col + (direct ? 0 : rows * step * ow)) + 63) & ~(uintptr_t)63);
    for (int64_t b = 0; b < n; b++)
        for (int64_t g = 0; g < groups; g++) {
            const float *xg = x + (b * c + g * cg) * xp;
            j.wp = wp + g * j.mp * rows;
            j.bias = bias ? bias + g * mg : NULL;
            for (int64_t oy0 = 0; oy0 < w->out[0]; oy0 += step) {
                int64_t oy1 = oy0 + step < w->out[0] ? oy0 + step : w->out[0];
                j.n = (oy1 - oy0) * ow;
                j.y = y + (b * m + g * mg) * total + oy0 * ow;
                j.z = z ? z + (b * m + g * mg) * total + oy0 * ow : NULL;
                hone_rt_pool *pool = mg * rows * j.n >= parallel_min_macs() ? hone_rt_shared_pool()
                                                                           : NULL;
                if (direct) { /* the image is its own column matrix */
                    j.col = xg + oy0 * ow;
                    j.ld = total;
                } else {
                    tile_im2col(pool, w, cg, xg, oy0, oy1, col, j.n);
                    j.col = col;
                    j.ld = j.n;
                }
                j.panels = (j.n + NR - 1) / NR;
                j.ppan = j.panels;
                int64_t units = split_units(pool, j.panels, j.mp / MR, &j.blk_rp);
                hone_rt_parallel_for(pool, units, 1, run_units, &j);
            }
        }
}

void hone_rt_conv2d(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                    const float *x, const float *wp, const float *bias, float *y, float *scratch)
{
    conv2d(w, n, c, m, groups, x, wp, bias, NULL, 0.0f, 0.0f, 0, y, scratch);
}

void hone_rt_conv2d_batched(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                            int64_t groups, const float *x, const float *wp, const float *bias,
                            const float *z, float lo, float hi, int has_epi, float *y,
                            float *scratch)
{
    int64_t rows = c / groups * w->k[0] * w->k[1], k = batch_images(w, n, rows, groups);
    if (k > 1 && m > 0 && w->out[0] * w->out[1] > 0)
        conv2d_batched(w, n, k, c, m, x, wp, bias, z, lo, hi, has_epi, y, scratch);
    else
        conv2d(w, n, c, m, groups, x, wp, bias, z, lo, hi, has_epi, y, scratch);
}

void hone_rt_conv2d_epi(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                        const float *x, const float *wp, const float *bias, const float *z,
                        float lo, float hi, float *y, float *scratch)
{
    conv2d(w, n, c, m, groups, x, wp, bias, z, lo, hi, 1, y, scratch);
}

void hone_rt_conv2d_unpacked(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                             int64_t groups, const float *x, const float *wt, const float *bias,
                             float *y, float *scratch)
{
    int64_t rows = c / groups * w->k[0] * w->k[1];
    hone_rt_conv2d_pack(w, m, groups, rows, wt, scratch);
    hone_rt_conv2d(w, n, c, m, groups, x, scratch, bias, y,
                   scratch + hone_rt_conv2d_packed_numel(w, m, groups, rows));
}
