/*
 * GridSample (opset 16): X[N, C, H, W] sampled at grid[N, Ho, Wo, 2] -> Y[N, C, Ho, Wo].
 *
 * Grid values are normalised coordinates in [-1, 1] (x = width first). They
 * are mapped to pixel space (align_corners: -1 and 1 are the centres of the
 * corner pixels; otherwise their outer edges), then:
 *   - padding "border" clamps coordinates into the image, "reflection"
 *     mirrors them at the borders (about the centres or the edges, following
 *     align_corners) and then clamps, "zeros" leaves them, and any pixel read
 *     outside the image is 0;
 *   - "nearest" reads the pixel at the coordinate rounded half to even,
 *     "bilinear" blends the 4 surrounding pixels, "bicubic" the 16 around it
 *     with the cubic convolution kernel (A = -0.75), padding each of its 16
 *     reads separately.
 * This is the semantics of PyTorch's grid_sample, which the ONNX operator
 * was defined from. Everything is computed in double.
 */
#include "misc.h"
#include "ops_util.h"

typedef enum { GS_BILINEAR, GS_NEAREST, GS_BICUBIC } gs_mode;
typedef enum { GS_ZEROS, GS_BORDER, GS_REFLECTION } gs_pad;

typedef struct gsamp {
    gs_mode mode;
    gs_pad pad;
    bool align;
    const hone_tensor *x;
    int64_t h, w;
    int64_t plane; /* offset of the (n, c) plane being sampled */
} gsamp;

/* Reads mode, padding_mode and align_corners. */
static hone_status gs_attrs(hone_ctx *ctx, const hone_node *nd, gsamp *g)
{
    const char *m = hone_attr_str(nd, "mode", "bilinear");
    const char *p = hone_attr_str(nd, "padding_mode", "zeros");
    g->mode = !strcmp(m, "nearest") ? GS_NEAREST : !strcmp(m, "bicubic") ? GS_BICUBIC : GS_BILINEAR;
    g->pad = !strcmp(p, "border") ? GS_BORDER : !strcmp(p, "reflection") ? GS_REFLECTION : GS_ZEROS;
    g->align = hone_attr_int(nd, "align_corners", 0) != 0;
    if (g->mode == GS_BILINEAR && strcmp(m, "bilinear"))
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED, "mode '%s' is not supported", m);
    if (g->pad == GS_ZEROS && strcmp(p, "zeros"))
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED, "padding_mode '%s' is not supported",
                              p);
    return HONE_OK;
}

hone_status infer_grid_sample(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *gr = ic->in[1];
    gsamp g;
    hone_status st = gs_attrs(ic->ctx, ic->node, &g);
    if (st)
        return st;
    if ((x->dtype && !hone_dtype_is_float(x->dtype)) || (gr->dtype && !hone_dtype_is_float(gr->dtype)))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "X and grid must be floating point");
    if (x->rank < 0 || gr->rank < 0) {
        hone_infer_set(ic, 0, x->dtype, x->rank < 0 ? -1 : 4, NULL);
        return HONE_OK;
    }
    if (x->rank != 4 || gr->rank != 4 || (gr->dims[3] >= 0 && gr->dims[3] != 2) ||
        (x->dims[0] >= 0 && gr->dims[0] >= 0 && x->dims[0] != gr->dims[0]))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "expected X [N, C, H, W] and grid [N, Ho, Wo, 2]");
    int64_t d[4] = {x->dims[0], x->dims[1], gr->dims[1], gr->dims[2]};
    hone_infer_set(ic, 0, x->dtype, 4, d);
    return HONE_OK;
}

/* Normalised coordinate c in [-1, 1] to pixel space of an axis of n pixels. */
static double unnormalize(double c, int64_t n, bool align)
{
    return align ? (c + 1) / 2 * (double)(n - 1) : ((c + 1) * (double)n - 1) / 2;
}

/* Mirrors v into [lo2 / 2, hi2 / 2] (bounds given doubled). */
static double reflect(double v, double lo2, double hi2)
{
    if (lo2 == hi2)
        return 0;
    double lo = lo2 / 2, span = (hi2 - lo2) / 2;
    v = fabs(v - lo);
    double extra = fmod(v, span);
    return fmod(floor(v / span), 2) == 0 ? extra + lo : span - extra + lo;
}

/* Applies the border or reflection padding to a pixel coordinate. */
static double pad_coord(const gsamp *g, double v, int64_t n)
{
    if (g->pad == GS_ZEROS)
        return v;
    if (g->pad == GS_REFLECTION)
        v = g->align ? reflect(v, 0, 2 * (double)(n - 1)) : reflect(v, -1, 2 * (double)n - 1);
    double hi = (double)(n - 1);
    return v < 0 ? 0 : v > hi ? hi : v; /* also maps NaN to hi */
}

/* Pixel (iy, ix) of the current plane, 0 outside the image. */
static double pixel(const gsamp *g, double iy, double ix)
{
    if (!(iy >= 0 && ix >= 0 && iy < (double)g->h && ix < (double)g->w))
        return 0;
    return hone_tensor_get_f64(g->x, g->plane + (int64_t)iy * g->w + (int64_t)ix);
}

static double bilinear(const gsamp *g, double y, double x)
{
    double x0 = floor(x), y0 = floor(y), tx = x - x0, ty = y - y0;
    return pixel(g, y0, x0) * (1 - tx) * (1 - ty) + pixel(g, y0, x0 + 1) * tx * (1 - ty) +
           pixel(g, y0 + 1, x0) * (1 - tx) * ty + pixel(g, y0 + 1, x0 + 1) * tx * ty;
}

/* Cubic convolution weights of the 4 taps around fractional offset t (A = -0.75). */
static void cubic_weights(double t, double *w)
{
    const double a = -0.75;
    double s = t + 1, u = 1 - t, v = 2 - t;
    w[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
}

static double bicubic(const gsamp *g, double y, double x)
{
    double x0 = floor(x), y0 = floor(y), wx[4], wy[4], sum = 0;
    cubic_weights(x - x0, wx);
    cubic_weights(y - y0, wy);
    for (int i = 0; i < 4; i++) {
        double row = 0, py = pad_coord(g, y0 - 1 + i, g->h);
        for (int j = 0; j < 4; j++)
            row += wx[j] * pixel(g, floor(py), floor(pad_coord(g, x0 - 1 + j, g->w)));
        sum += wy[i] * row;
    }
    return sum;
}

/* Samples the current plane at normalised grid point (gx, gy). */
static double sample(const gsamp *g, double gx, double gy)
{
    double x = unnormalize(gx, g->w, g->align), y = unnormalize(gy, g->h, g->align);
    if (g->mode == GS_BICUBIC)
        return bicubic(g, y, x);
    x = pad_coord(g, x, g->w);
    y = pad_coord(g, y, g->h);
    if (g->mode == GS_NEAREST)
        return pixel(g, nearbyint(y), nearbyint(x));
    return bilinear(g, y, x);
}

hone_status eval_grid_sample(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *gr = ec->in[1];
    gsamp g;
    hone_status st = gs_attrs(ec->ctx, ec->node, &g);
    if (st)
        return st;
    int64_t d[4] = {x->dims[0], x->dims[1], gr->dims[1], gr->dims[2]};
    if ((st = hone_eval_alloc(ec, 0, x->dtype, 4, d)))
        return st;
    g.x = x;
    g.h = x->dims[2];
    g.w = x->dims[3];
    int64_t npix = d[2] * d[3];
    for (int64_t n = 0; n < d[0]; n++)
        for (int64_t c = 0; c < d[1]; c++) {
            g.plane = (n * d[1] + c) * g.h * g.w;
            for (int64_t p = 0; p < npix; p++) {
                int64_t gi = (n * npix + p) * 2;
                double v = sample(&g, hone_tensor_get_f64(gr, gi), hone_tensor_get_f64(gr, gi + 1));
                hone_tensor_set_f64(ec->out[0], (n * d[1] + c) * npix + p, v);
            }
        }
    return HONE_OK;
}
