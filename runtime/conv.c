/*
 * Convolution by im2col + GEMM, and transposed convolution by GEMM + col2im.
 * 2-D convolutions go to conv2d.c (packed weights, im2col fused into the GEMM's
 * packing), the kernel compiled models run; the code here serves 1-D and 3-D.
 *
 * im2col lays the receptive field of every window position out as one column,
 * so a group's convolution becomes W_g[m/g, c/g*K] x col[c/g*K, positions], one
 * sgemm. The transposed convolution runs the same geometry backwards: one sgemm
 * gives the columns, col2im adds them into the output image. 1x1 stride-1
 * unpadded convolutions skip im2col: the input already is the column matrix.
 *
 * Both walks work over any number of spatial dims: the image is traversed one
 * line (the last spatial dim) at a time, so the inner loops are contiguous
 * copies for stride 1. Window positions are processed in column tiles of
 * bounded size, so the scratch the caller provides stays bounded for any image.
 */
#include <string.h>

#include "hone_rt.h"

/* Scratch budget of one im2col tile, in floats (8 MiB). */
#define CONV_TILE_FLOATS ((int64_t)1 << 21)
/* Fewest columns per tile, so GEMMs stay efficient when rows are many. */
#define CONV_TILE_MIN_COLS 64

static int64_t prod(int n, const int64_t *v)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= v[i];
    return p;
}

int64_t hone_rt_window_in_numel(const hone_rt_window *w)
{
    return prod(w->nsp, w->in);
}

int64_t hone_rt_window_out_numel(const hone_rt_window *w)
{
    return prod(w->nsp, w->out);
}

int64_t hone_rt_window_k_numel(const hone_rt_window *w)
{
    return prod(w->nsp, w->k);
}

/* One run of window positions along the last spatial dim, as im2col sees it. */
typedef struct line_run {
    int64_t col;   /* offset of the run in the column matrix */
    int64_t img;   /* offset of the image line it reads, -1 when in padding */
    int64_t ox, n; /* first position along the last dim, run length */
    int64_t shift; /* image coordinate of position ox is ox*stride + shift */
} line_run;

/* Enumerates the runs of every (channel, kernel offset) row over [p0, p1).
 * The output line and the position in it advance incrementally, so a run
 * costs no division for 1-D and 2-D windows. */
typedef struct line_iter {
    const hone_rt_window *w;
    int64_t c, k_numel, in_numel, p0, p1;
    int64_t ch, kk, p, line, ox;
    int64_t kj[HONE_RT_MAX_SPATIAL];
} line_iter;

static line_iter line_start(const hone_rt_window *w, int64_t c, int64_t p0, int64_t p1)
{
    line_iter it = {w, c, hone_rt_window_k_numel(w), hone_rt_window_in_numel(w), p0, p1};
    it.kk = -1;
    it.p = p1;
    return it;
}

/* Offset of the image line kernel offset kj reads for output line `line` (the
 * index over all dims but the last), or -1 when that line is padding. */
static int64_t line_offset(const hone_rt_window *w, int64_t line, const int64_t *kj)
{
    int last = w->nsp - 1;
    int64_t off = 0, scale = w->in[last];
    for (int d = last - 1; d >= 0; d--) {
        int64_t o = d ? line % w->out[d] : line;
        line = d ? line / w->out[d] : 0;
        int64_t i = o * w->stride[d] - w->pad[d] + kj[d] * w->dil[d];
        if (i < 0 || i >= w->in[d])
            return -1;
        off += i * scale;
        scale *= w->in[d];
    }
    return off;
}

/* Moves to the next row when the current one is done; false at the end. */
static int line_advance_row(line_iter *it)
{
    const hone_rt_window *w = it->w;
    if (++it->kk == it->k_numel) {
        it->kk = 0;
        it->ch++;
    }
    if (it->ch >= it->c)
        return 0;
    it->p = it->p0;
    it->line = it->p0 / w->out[w->nsp - 1];
    it->ox = it->p0 % w->out[w->nsp - 1];
    int64_t r = it->kk;
    for (int d = w->nsp - 1; d >= 0; d--) {
        it->kj[d] = r % w->k[d];
        r /= w->k[d];
    }
    return 1;
}

static int line_next(line_iter *it, line_run *r)
{
    const hone_rt_window *w = it->w;
    int last = w->nsp - 1;
    while (it->p >= it->p1)
        if (!line_advance_row(it))
            return 0;
    int64_t ol = w->out[last];
    r->n = ol - it->ox < it->p1 - it->p ? ol - it->ox : it->p1 - it->p;
    r->ox = it->ox;
    r->col = (it->ch * it->k_numel + it->kk) * (it->p1 - it->p0) + (it->p - it->p0);
    r->img = line_offset(w, it->line, it->kj);
    if (r->img >= 0)
        r->img += it->ch * it->in_numel;
    r->shift = it->kj[last] * w->dil[last] - w->pad[last];
    it->p += r->n;
    it->ox = 0;
    it->line++;
    return 1;
}

/* Range [lo, hi) of i in [0, n) with 0 <= (ox+i) + shift < len (stride 1). */
static void unit_range(int64_t ox, int64_t n, int64_t shift, int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t a = -shift - ox, b = len - shift - ox;
    *lo = a < 0 ? 0 : (a > n ? n : a);
    *hi = b < *lo ? *lo : (b > n ? n : b);
}

static void run_gather(float *dst, const float *line, const line_run *r, int64_t len, int64_t s)
{
    if (!line) {
        memset(dst, 0, sizeof(float) * (size_t)r->n);
        return;
    }
    if (s == 1) {
        int64_t lo, hi;
        unit_range(r->ox, r->n, r->shift, len, &lo, &hi);
        memset(dst, 0, sizeof(float) * (size_t)lo);
        memcpy(dst + lo, line + r->ox + lo + r->shift, sizeof(float) * (size_t)(hi - lo));
        memset(dst + hi, 0, sizeof(float) * (size_t)(r->n - hi));
        return;
    }
    for (int64_t i = 0; i < r->n; i++) {
        int64_t ix = (r->ox + i) * s + r->shift;
        dst[i] = ix >= 0 && ix < len ? line[ix] : 0.0f;
    }
}

static void run_scatter(const float *src, float *line, const line_run *r, int64_t len, int64_t s)
{
    for (int64_t i = 0; line && i < r->n; i++) {
        int64_t ix = (r->ox + i) * s + r->shift;
        if (ix >= 0 && ix < len)
            line[ix] += src[i];
    }
}

void hone_rt_im2col(const hone_rt_window *w, int64_t c, const float *x, int64_t p0, int64_t p1,
                    float *col)
{
    int last = w->nsp - 1;
    line_iter it = line_start(w, c, p0, p1);
    line_run r;
    while (line_next(&it, &r))
        run_gather(col + r.col, r.img < 0 ? NULL : x + r.img, &r, w->in[last], w->stride[last]);
}

void hone_rt_col2im(const hone_rt_window *w, int64_t c, const float *col, int64_t p0, int64_t p1,
                    float *x)
{
    int last = w->nsp - 1;
    line_iter it = line_start(w, c, p0, p1);
    line_run r;
    while (line_next(&it, &r))
        run_scatter(col + r.col, r.img < 0 ? NULL : x + r.img, &r, w->in[last], w->stride[last]);
}

/* True when im2col would copy the image unchanged (1x1, stride 1, no padding). */
static int is_pointwise(const hone_rt_window *w)
{
    for (int d = 0; d < w->nsp; d++)
        if (w->k[d] != 1 || w->stride[d] != 1 || w->pad[d] != 0 || w->out[d] != w->in[d])
            return 0;
    return 1;
}

/* Columns per tile for a column matrix of `rows` rows and `total` columns. */
static int64_t tile_cols(int64_t rows, int64_t total)
{
    int64_t t = CONV_TILE_FLOATS / (rows > 0 ? rows : 1);
    if (t < CONV_TILE_MIN_COLS)
        t = CONV_TILE_MIN_COLS;
    return t < total ? t : total;
}

/* Sets each of m rows of len elements to bias[row], or to zero without bias. */
static void fill_rows(float *y, int64_t m, int64_t len, const float *bias)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < len; j++)
            y[i * len + j] = bias ? bias[i] : 0.0f;
}

size_t hone_rt_conv_scratch(const hone_rt_window *w, int64_t c, int64_t m, int64_t groups)
{
    int64_t rows = c / groups * hone_rt_window_k_numel(w);
    if (w->nsp == 2)
        return hone_rt_conv2d_unpacked_scratch(w, c, m, groups);
    if (is_pointwise(w))
        return 0;
    return (size_t)(rows * tile_cols(rows, hone_rt_window_out_numel(w)));
}

/* One group of one image: y_g[mg, P] = w_g[mg, rows] x im2col(x_g) (+ y_g). */
static void conv_group(const hone_rt_window *w, int64_t cg, int64_t mg, const float *xg,
                       const float *wg, float *yg, float *scratch)
{
    int64_t rows = cg * hone_rt_window_k_numel(w), total = hone_rt_window_out_numel(w);
    int direct = is_pointwise(w);
    int64_t tile = direct ? total : tile_cols(rows, total);
    for (int64_t p0 = 0; p0 < total && rows > 0; p0 += tile) {
        int64_t p1 = p0 + tile < total ? p0 + tile : total;
        const float *b = xg + p0;
        int64_t ldb = total;
        if (!direct) {
            hone_rt_im2col(w, cg, xg, p0, p1, scratch);
            b = scratch;
            ldb = p1 - p0;
        }
        hone_rt_sgemm(0, 0, mg, p1 - p0, rows, 1.0f, wg, rows, b, ldb, 1.0f, yg + p0, total);
    }
}

/* The per-group work of a convolution direction. */
typedef void (*group_fn)(const hone_rt_window *w, int64_t cg, int64_t mg, const float *xg,
                         const float *wg, float *yg, float *scratch);

/* Runs fn over every (image, group): x planes of xp floats, y planes of yp
 * floats, wg floats of weights per group; y starts as bias (or zero). */
static void per_group(group_fn fn, const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                      int64_t groups, int64_t xp, int64_t yp, int64_t wg, const float *x,
                      const float *wt, const float *bias, float *y, float *scratch)
{
    int64_t cg = c / groups, mg = m / groups;
    for (int64_t b = 0; b < n; b++)
        for (int64_t g = 0; g < groups; g++) {
            float *yg = y + (b * m + g * mg) * yp;
            fill_rows(yg, mg, yp, bias ? bias + g * mg : NULL);
            if (mg > 0 && cg > 0)
                fn(w, cg, mg, x + (b * c + g * cg) * xp, wt + g * wg, yg, scratch);
        }
}

void hone_rt_conv(const hone_rt_window *w, int64_t n, int64_t c, int64_t m, int64_t groups,
                  const float *x, const float *wt, const float *bias, float *y, float *scratch)
{
    int64_t rows = c / groups * hone_rt_window_k_numel(w);
    if (w->nsp == 2) {
        /* The compiled models' kernel, so interpreter and compiled code agree bit for bit. */
        hone_rt_conv2d_unpacked(w, n, c, m, groups, x, wt, bias, y, scratch);
        return;
    }
    per_group(conv_group, w, n, c, m, groups, hone_rt_window_in_numel(w),
              hone_rt_window_out_numel(w), m / groups * rows, x, wt, bias, y, scratch);
}

size_t hone_rt_conv_transpose_scratch(const hone_rt_window *w, int64_t m, int64_t groups)
{
    int64_t rows = m / groups * hone_rt_window_k_numel(w);
    return (size_t)(rows * tile_cols(rows, hone_rt_window_out_numel(w)));
}

/* One group of one image: col = w_g^T x_g tile by tile, added into y_g by col2im. */
static void conv_transpose_group(const hone_rt_window *w, int64_t cg, int64_t mg,
                                 const float *xg, const float *wg, float *yg, float *scratch)
{
    int64_t rows = mg * hone_rt_window_k_numel(w), total = hone_rt_window_out_numel(w);
    int64_t tile = tile_cols(rows, total);
    for (int64_t p0 = 0; p0 < total && rows > 0; p0 += tile) {
        int64_t p1 = p0 + tile < total ? p0 + tile : total;
        hone_rt_sgemm(1, 0, rows, p1 - p0, cg, 1.0f, wg, rows, xg + p0, total, 0.0f, scratch,
                      p1 - p0);
        hone_rt_col2im(w, mg, scratch, p0, p1, yg);
    }
}

void hone_rt_conv_transpose(const hone_rt_window *w, int64_t n, int64_t c, int64_t m,
                            int64_t groups, const float *x, const float *wt, const float *bias,
                            float *y, float *scratch)
{
    int64_t rows = m / groups * hone_rt_window_k_numel(w);
    per_group(conv_transpose_group, w, n, c, m, groups, hone_rt_window_out_numel(w),
              hone_rt_window_in_numel(w), c / groups * rows, x, wt, bias, y, scratch);
}
