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
 * was defined from. Everything is computed in double, by the runtime's
 * hone_rt_gridsample (runtime/extra.c), which compiled models call too: this
 * file checks attributes and shapes and widens the tensors to double.
 */
#include <stdlib.h>

#include "hone_rt.h"
#include "misc.h"
#include "ops_util.h"

/* Reads mode, padding_mode and align_corners. */
static hone_status gs_attrs(hone_ctx *ctx, const hone_node *nd, hone_rt_gs_geo *g)
{
    const char *m = hone_attr_str(nd, "mode", "bilinear");
    const char *p = hone_attr_str(nd, "padding_mode", "zeros");
    g->mode = !strcmp(m, "nearest") ? HONE_RT_GS_NEAREST
              : !strcmp(m, "bicubic") ? HONE_RT_GS_BICUBIC
                                      : HONE_RT_GS_BILINEAR;
    g->pad = !strcmp(p, "border") ? HONE_RT_GS_BORDER
             : !strcmp(p, "reflection") ? HONE_RT_GS_REFLECTION
                                        : HONE_RT_GS_ZEROS;
    g->align = hone_attr_int(nd, "align_corners", 0) != 0;
    if (g->mode == HONE_RT_GS_BILINEAR && strcmp(m, "bilinear"))
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED, "mode '%s' is not supported", m);
    if (g->pad == HONE_RT_GS_ZEROS && strcmp(p, "zeros"))
        return hone_node_fail(ctx, nd, HONE_ERR_UNSUPPORTED, "padding_mode '%s' is not supported",
                              p);
    return HONE_OK;
}

hone_status infer_grid_sample(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *gr = ic->in[1];
    hone_rt_gs_geo g;
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

/* X and grid widened to double, sampled by the runtime kernel, stored back. */
hone_status eval_grid_sample(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *gr = ec->in[1];
    hone_rt_gs_geo g;
    hone_status st = gs_attrs(ec->ctx, ec->node, &g);
    if (st)
        return st;
    int64_t d[4] = {x->dims[0], x->dims[1], gr->dims[1], gr->dims[2]};
    if ((st = hone_eval_alloc(ec, 0, x->dtype, 4, d)))
        return st;
    hone_tensor *y = ec->out[0];
    g.n = d[0], g.c = d[1], g.h = x->dims[2], g.w = x->dims[3], g.ho = d[2], g.wo = d[3], g.f64 = 1;
    double *buf = malloc(sizeof *buf * (size_t)(x->numel + gr->numel + y->numel + 1));
    if (!buf)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    double *xd = buf, *gd = buf + x->numel, *yd = gd + gr->numel;
    for (int64_t i = 0; i < x->numel; i++)
        xd[i] = hone_tensor_get_f64(x, i);
    for (int64_t i = 0; i < gr->numel; i++)
        gd[i] = hone_tensor_get_f64(gr, i);
    hone_rt_gridsample(&g, xd, gd, yd);
    for (int64_t i = 0; i < y->numel; i++)
        hone_tensor_set_f64(y, i, yd[i]);
    free(buf);
    return HONE_OK;
}
