/*
 * Heavy ops as calls into the runtime kernels (runtime/hone_rt.h), the same
 * kernels the interpreter runs, so compiled and interpreted results agree
 * closely. Geometry is computed here at compile time (with the op family's
 * own window rules from nn.h, so shapes match inference exactly) and passed
 * as a private constant hone_rt_window global; sizes are constant arguments.
 * Kernel scratch (im2col columns, statistics) comes from the node's scratch
 * slot of the workspace, sized by the scratch rules below.
 *
 * Convolutions pick one of four kernels: 2-D depthwise ones run the direct
 * kernel (hone_rt_depthwise_conv, no scratch); other 2-D ones run
 * hone_rt_conv2d on weights packed here, at compile time, into the GEMM
 * micro-kernel's panels and embedded in place of the plain weights (which
 * are then not emitted unless another node reads them), with a panel buffer
 * per pool worker as scratch; 1-D and 3-D pointwise ones (1x1, stride 1, no
 * padding) are a plain GEMM (hone_rt_conv, no scratch), and the rest im2col +
 * GEMM with a planned tile of about 1 MiB (hone_rt_conv_tiled): the
 * interpreter's own tile can reach 8 MiB and would dominate the workspace.
 * FusedConv's residual and Relu/Clip ride on hone_rt_conv2d's last store
 * (hone_rt_conv2d_epi); other kernels and activations get an epilogue loop.
 *
 * Only float32 is lowered here (float64 Gemm/MatMul through dgemm); other
 * element types are reported as unsupported.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nn.h"

static LLVMValueRef ci64(bk_lower *L, int64_t v)
{
    return bk_i64(L, v);
}

/* Fails unless the listed inputs and output 0 are float32. */
static hone_status need_f32(bk_lower *L, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (bk_in(L, i) && bk_in(L, i)->dtype != HONE_DT_FLOAT)
            return bk_unsupported(L, "only float32 is compiled (input %d is %s)", i,
                                  hone_dtype_onnx_name(bk_in(L, i)->dtype));
    return HONE_OK;
}

static LLVMValueRef window_global(bk_lower *L, const hone_rt_window *w)
{
    return bk_global_bytes(L, w, sizeof *w, "window");
}

static LLVMValueRef maybe_in(bk_lower *L, int i)
{
    return bk_in(L, i) ? L->in[i] : LLVMConstNull(L->ptr);
}

/* ===================== Conv ===================== */

/* Conv geometry of node n (static shapes): its window and group count. */
static hone_status conv_window(hone_ctx *ctx, const hone_node *n, hone_rt_window *w, int64_t *g)
{
    const hone_value *x = n->in[0], *wt = n->in[1];
    int nsp = x->rank - 2;
    int64_t in[HONE_MAX_RANK], k[HONE_MAX_RANK];
    for (int d = 0; d < nsp; d++) {
        in[d] = x->dims[d + 2];
        k[d] = wt->dims[d + 2];
    }
    *g = hone_attr_int(n, "group", 1);
    return nn_window(ctx, n, nsp, in, k, (nn_window_opts){0}, w);
}

/* Scratch budget of one im2col tile: small enough to sit in L2 and near the
 * activations' size, large enough for efficient GEMMs. */
#define CONV_TILE_BYTES ((int64_t)1 << 20)

/* True when im2col is the identity (1x1, stride 1, no padding): no scratch. */
static bool pointwise(const hone_rt_window *w)
{
    for (int d = 0; d < w->nsp; d++)
        if (w->k[d] != 1 || w->stride[d] != 1 || w->pad[d] != 0 || w->out[d] != w->in[d])
            return false;
    return true;
}

/* True for a 2-D depthwise conv (one input and one output channel per group):
 * the runtime's direct kernel, no scratch. */
static bool depthwise(const hone_rt_window *w, int64_t c, int64_t m, int64_t g)
{
    return w->nsp == 2 && g == c && m == c && c > 1;
}

/* Window positions per im2col tile of a conv with c channels in groups. */
static int64_t conv_tile_cols(const hone_rt_window *w, int64_t c, int64_t g)
{
    int64_t rows = c / g * hone_rt_window_k_numel(w), total = hone_rt_window_out_numel(w);
    int64_t cols = CONV_TILE_BYTES / (int64_t)sizeof(float) / (rows > 0 ? rows : 1);
    cols = cols < 64 ? 64 : cols;
    return cols < total ? cols : total;
}

int64_t bk_conv_tile_cols(const hone_rt_window *w, int64_t c, int64_t g)
{
    return conv_tile_cols(w, c, g);
}

hone_status bk_conv_window(hone_ctx *ctx, const hone_node *n, hone_rt_window *w, int64_t *g)
{
    return conv_window(ctx, n, w, g);
}

/* True when the conv runs hone_rt_conv2d (2-D, not depthwise). */
static bool conv2d_kernel(const hone_rt_window *w, int64_t c, int64_t m, int64_t g)
{
    return w->nsp == 2 && !depthwise(w, c, m, g);
}

bool bk_conv_packs_weights(const bk_model *m, const hone_node *n)
{
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    if (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "FusedConv"))
        return false;
    if (m->ext_weights || n->in[0]->dtype != HONE_DT_FLOAT || !bk_known(m, n->in[1]) ||
        conv_window(&ctx, n, &w, &g))
        return false;
    return conv2d_kernel(&w, n->in[0]->dims[1], n->out[0]->dims[1], g);
}

/* True when the conv runs Winograd F(4x4, 3x3) (hone_rt_winograd_conv) on weights
 * transformed at compile time: packed weights, the model allows it, the window fits. */
static bool conv_winograd(const bk_model *m, const hone_node *n, const hone_rt_window *w,
                          int64_t g)
{
    return m->winograd && bk_conv_packs_weights(m, n) &&
           hone_rt_winograd_fits(w, n->in[0]->dims[1], n->out[0]->dims[1], g);
}

size_t bk_scratch_conv(const bk_model *m, const hone_node *n)
{
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    int64_t c = n->in[0]->dims[1], mo = n->out[0]->dims[1];
    if (n->in[0]->dtype != HONE_DT_FLOAT || conv_window(&ctx, n, &w, &g) || depthwise(&w, c, mo, g))
        return 0;
    if (conv_winograd(m, n, &w, g))
        return hone_rt_winograd_scratch(&w, n->in[0]->dims[0], c, mo) * sizeof(float);
    if (conv2d_kernel(&w, c, mo, g))
        return (bk_conv_packs_weights(m, n)
                    ? hone_rt_conv2d_batched_scratch(&w, n->in[0]->dims[0], c, mo, g)
                    : hone_rt_conv2d_unpacked_scratch(&w, c, mo, g)) *
               sizeof(float);
    if (pointwise(&w))
        return 0;
    return hone_rt_conv_tile_scratch(&w, c, g, conv_tile_cols(&w, c, g)) * sizeof(float);
}

/* The weights of the current conv packed for hone_rt_conv2d, as a constant global. */
static LLVMValueRef packed_weights(bk_lower *L, const hone_rt_window *w, int64_t g)
{
    const hone_value *wt = bk_in(L, 1);
    const hone_tensor *t = bk_known(L->m, wt);
    int64_t m = wt->dims[0], rows = m > 0 ? bk_numel(wt) / m : 0;
    size_t n = (size_t)hone_rt_conv2d_packed_numel(w, m, g, rows);
    float *p = malloc(sizeof(float) * (n ? n : 1));
    HONE_ASSERT(p);
    hone_rt_conv2d_pack(w, m, g, rows, t->data, p);
    LLVMValueRef gl = bk_global_bytes(L, p, sizeof(float) * n, "wpacked");
    free(p);
    return gl;
}

/* The weights of the current conv transformed and packed for hone_rt_winograd_conv. */
static LLVMValueRef winograd_weights(bk_lower *L, const hone_rt_window *w)
{
    const hone_value *wt = bk_in(L, 1);
    const hone_tensor *t = bk_known(L->m, wt);
    int64_t m = wt->dims[0], c = wt->dims[1];
    size_t n = (size_t)hone_rt_winograd_packed_numel(w, c, m);
    float *p = malloc(sizeof(float) * (n ? n : 1));
    HONE_ASSERT(p);
    hone_rt_winograd_pack(w, c, m, t->data, p);
    LLVMValueRef gl = bk_global_bytes(L, p, sizeof(float) * n, "wwinograd");
    free(p);
    return gl;
}

/* A FusedConv epilogue the packed conv kernel can apply in its last store (fused):
 * y += z with z of y's shape, then Relu or Clip (lo / hi, infinite when absent). */
typedef struct conv_epi {
    LLVMValueRef z;
    float lo, hi;
    bool fused;             /* set when the call took it */
} conv_epi;

/* The conv call of the current node (Conv or FusedConv): the direct kernel for
 * depthwise convs (with epi: hone_rt_depthwise_conv_epi, the epilogue per plane); hone_rt_winograd_conv (its epilogue always taken) on weights
 * transformed at compile time for 3x3 stride-1 ones that fit; hone_rt_conv2d_batched
 * (hone_rt_conv2d, the images of a batch sharing tiles where one image's is small) on
 * weights packed at compile time for other 2-D
 * ones (hone_rt_conv2d_unpacked, packing into the scratch per run, when the weights
 * are external or computed); hone_rt_conv for pointwise 1-D/3-D ones (no scratch),
 * hone_rt_conv_tiled with the planned tile else. With epi, the packed kernel takes the
 * epilogue (hone_rt_conv2d_batched's has_epi) and sets epi->fused; other kernels leave it
 * to the caller. */
static hone_status emit_conv_call(bk_lower *L, conv_epi *epi)
{
    hone_rt_window w;
    int64_t g;
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    hone_status st = need_f32(L, 3);
    if (!st)
        st = conv_window(L->ctx, L->node, &w, &g);
    if (st)
        return st;
    if (depthwise(&w, x->dims[1], y->dims[1], g)) {
        LLVMTypeRef pt[10] = {L->ptr, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->f32, L->f32, L->ptr};
        LLVMValueRef a[10] = {window_global(L, &w), ci64(L, x->dims[0]), ci64(L, x->dims[1]), L->in[0],
                              L->in[1], maybe_in(L, 2), L->out[0]};
        if (epi) { /* the residual and the bounds on each plane as it is finished */
            a[6] = epi->z ? epi->z : LLVMConstNull(L->ptr);
            a[7] = LLVMConstReal(L->f32, epi->lo);
            a[8] = LLVMConstReal(L->f32, epi->hi);
            a[9] = L->out[0];
            bk_call(L, "hone_rt_depthwise_conv_epi", L->vd, pt, 10, a);
            epi->fused = true;
            return HONE_OK;
        }
        bk_call(L, "hone_rt_depthwise_conv", L->vd, pt, 7, a);
        return HONE_OK;
    }
    if (conv_winograd(L->m, L->node, &w, g)) {
        LLVMTypeRef pe[12] = {L->ptr, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr,
                              L->ptr, L->f32, L->f32, L->ptr, L->ptr};
        LLVMValueRef ae[12] = {window_global(L, &w), ci64(L, x->dims[0]), ci64(L, x->dims[1]),
                               ci64(L, y->dims[1]), L->in[0], winograd_weights(L, &w), maybe_in(L, 2),
                               epi && epi->z ? epi->z : LLVMConstNull(L->ptr),
                               LLVMConstReal(L->f32, epi ? epi->lo : -INFINITY),
                               LLVMConstReal(L->f32, epi ? epi->hi : INFINITY), L->out[0],
                               L->scratch};
        bk_call(L, "hone_rt_winograd_conv", L->vd, pe, 12, ae);
        if (epi)
            epi->fused = true;
        return HONE_OK;
    }
    if (conv2d_kernel(&w, x->dims[1], y->dims[1], g)) {
        bool packed = bk_conv_packs_weights(L->m, L->node);
        LLVMTypeRef pt[10] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr};
        LLVMValueRef a[10] = {window_global(L, &w), ci64(L, x->dims[0]), ci64(L, x->dims[1]),
                              ci64(L, y->dims[1]), ci64(L, g), L->in[0],
                              packed ? packed_weights(L, &w, g) : L->in[1], maybe_in(L, 2), L->out[0],
                              L->scratch};
        if (packed) { /* batched: the scratch is hone_rt_conv2d_batched_scratch's */
            LLVMTypeRef pe[14] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr,
                                  L->ptr, L->ptr, L->f32, L->f32, L->i32, L->ptr, L->ptr};
            LLVMValueRef ae[14] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                   epi && epi->z ? epi->z : LLVMConstNull(L->ptr),
                                   LLVMConstReal(L->f32, epi ? epi->lo : 0.0),
                                   LLVMConstReal(L->f32, epi ? epi->hi : 0.0),
                                   bk_i32(L, epi ? 1 : 0), a[8], a[9]};
            bk_call(L, "hone_rt_conv2d_batched", L->vd, pe, 14, ae);
            if (epi)
                epi->fused = true;
            return HONE_OK;
        }
        bk_call(L, packed ? "hone_rt_conv2d" : "hone_rt_conv2d_unpacked", L->vd, pt, 10, a);
        return HONE_OK;
    }
    bool pw = pointwise(&w);
    LLVMTypeRef pt[11] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr, L->i64};
    LLVMValueRef a[11] = {window_global(L, &w), ci64(L, x->dims[0]), ci64(L, x->dims[1]),
                          ci64(L, y->dims[1]), ci64(L, g), L->in[0], L->in[1], maybe_in(L, 2),
                          L->out[0], L->scratch, ci64(L, pw ? 0 : conv_tile_cols(&w, x->dims[1], g))};
    bk_call(L, pw ? "hone_rt_conv" : "hone_rt_conv_tiled", L->vd, pt, pw ? 10 : 11, a);
    return HONE_OK;
}

hone_status bk_lower_conv(bk_lower *L)
{
    return emit_conv_call(L, NULL);
}

/* hone.FusedConv(X, W, [B], [Z]): the conv call, then y = act(y + Z) in place. */
hone_status bk_lower_fused_conv(bk_lower *L)
{
    const hone_value *y = bk_out(L, 0), *z = bk_in(L, 3);
    const char *act = hone_attr_str(L->node, "activation", "");
    const float *p;
    int np = hone_attr_floats(L->node, "activation_params", &p);
    if (*act && strcmp(act, "Relu") && strcmp(act, "LeakyRelu") && strcmp(act, "Clip") &&
        strcmp(act, "Sigmoid"))
        return bk_unsupported(L, "activation '%s'", act);
    if (z && z->dtype != HONE_DT_FLOAT)
        return bk_unsupported(L, "residual of type %s", hone_dtype_onnx_name(z->dtype));
    int64_t zs[HONE_MAX_RANK];
    if (z)
        bk_bcast_strides(z->rank, z->dims, y->rank, y->dims, zs);
    /* the packed kernel applies a residual of y's own shape and Relu / Clip itself */
    bool same = !z || (z->rank == y->rank &&
                       !memcmp(z->dims, y->dims, sizeof(int64_t) * (size_t)y->rank));
    bool clamp = !*act || !strcmp(act, "Relu") || !strcmp(act, "Clip");
    conv_epi e = {z ? L->in[3] : NULL, -INFINITY, INFINITY, false};
    if (!strcmp(act, "Relu"))
        e.lo = 0.0f;
    if (!strcmp(act, "Clip")) {
        e.lo = np > 0 ? p[0] : -INFINITY;
        e.hi = np > 1 ? p[1] : INFINITY;
    }
    hone_status st = emit_conv_call(L, (z || *act) && same && clamp ? &e : NULL);
    if (st)
        return st;
    if ((z || *act) && !e.fused)
        bk_emit_epilogue(L, L->out[0], y->rank, y->dims, z ? L->in[3] : NULL, zs, act, p,
                         np < 0 ? 0 : np);
    return HONE_OK;
}

/* ===================== ConvTranspose ===================== */

/* ConvTranspose window: the image is Y's spatial dims, the positions X's.
 * Begin pads are explicit, or derived from the output extent under
 * output_shape / auto_pad SAME_* (the larger half at the start unless SAME_UPPER). */
static hone_status transpose_window(hone_ctx *ctx, const hone_node *n, hone_rt_window *w)
{
    const hone_value *x = n->in[0], *wt = n->in[1], *y = n->out[0];
    int nsp = x->rank - 2;
    int64_t pads[2 * HONE_RT_MAX_SPATIAL], opad[HONE_RT_MAX_SPATIAL];
    const char *ap = hone_attr_str(n, "auto_pad", "NOTSET");
    bool derived = hone_attr_find(n, "output_shape") || !strncmp(ap, "SAME_", 5);
    memset(w, 0, sizeof *w);
    w->nsp = nsp;
    hone_status st = nn_window_attrs(ctx, n, nsp, w, pads);
    if (!st)
        st = nn_ints_attr(ctx, n, "output_padding", nsp, 0, 0, opad);
    for (int d = 0; d < nsp && !st; d++) {
        w->in[d] = y->dims[d + 2];
        w->out[d] = x->dims[d + 2];
        w->k[d] = wt->dims[d + 2];
        int64_t full = w->stride[d] * (w->out[d] - 1) + opad[d] + (w->k[d] - 1) * w->dil[d] + 1;
        int64_t total = full - w->in[d], half = total >= 0 ? total / 2 : -((-total + 1) / 2);
        w->pad[d] = !strcmp(ap, "VALID") ? 0 : pads[d];
        if (derived)
            w->pad[d] = !strcmp(ap, "SAME_UPPER") ? half : total - half;
        w->pad_end[d] = total - w->pad[d];
    }
    return st;
}

size_t bk_scratch_conv_transpose(const bk_model *m, const hone_node *n)
{
    hone_ctx ctx;
    hone_rt_window w;
    hone_ctx_init(&ctx);
    if (n->in[0]->dtype != HONE_DT_FLOAT || transpose_window(&ctx, n, &w))
        return 0;
    return hone_rt_conv_transpose_scratch(&w, n->out[0]->dims[1], hone_attr_int(n, "group", 1)) *
           sizeof(float);
}

hone_status bk_lower_conv_transpose(bk_lower *L)
{
    hone_rt_window w;
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    hone_status st = need_f32(L, 3);
    if (!st)
        st = transpose_window(L->ctx, L->node, &w);
    if (st)
        return st;
    LLVMTypeRef pt[10] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[10] = {window_global(L, &w), ci64(L, x->dims[0]), ci64(L, x->dims[1]),
                          ci64(L, y->dims[1]), ci64(L, hone_attr_int(L->node, "group", 1)),
                          L->in[0], L->in[1], maybe_in(L, 2), L->out[0], L->scratch};
    bk_call(L, "hone_rt_conv_transpose", L->vd, pt, 10, a);
    return HONE_OK;
}

/* ===================== Gemm / MatMul ===================== */

/* One sgemm (or dgemm) call: Y[m,n] = alpha op(A) op(B) + beta Y. */
static void emit_gemm(bk_lower *L, bool f64, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, LLVMValueRef a, int64_t lda, LLVMValueRef b, int64_t ldb,
                      double beta, LLVMValueRef y)
{
    LLVMTypeRef ft = f64 ? L->f64 : L->f32;
    LLVMTypeRef pt[13] = {L->i32, L->i32, L->i64, L->i64, L->i64, ft, L->ptr, L->i64, L->ptr, L->i64, ft, L->ptr, L->i64};
    LLVMValueRef args[13] = {bk_i32(L, ta), bk_i32(L, tb), ci64(L, m), ci64(L, n), ci64(L, k),
                             LLVMConstReal(ft, alpha), a, ci64(L, lda), b, ci64(L, ldb),
                             LLVMConstReal(ft, beta), y, ci64(L, n)};
    bk_call(L, f64 ? "hone_rt_dgemm" : "hone_rt_sgemm", L->vd, pt, 13, args);
}

/* Fails unless every input and the output share one element type, float32 or float64. */
static hone_status need_blas_type(bk_lower *L)
{
    hone_dtype dt = bk_out(L, 0)->dtype;
    if (dt != HONE_DT_FLOAT && dt != HONE_DT_DOUBLE)
        return bk_unsupported(L, "element type %s (float32 and float64 are compiled)",
                              hone_dtype_onnx_name(dt));
    return HONE_OK;
}

typedef struct scale_body {
    LLVMTypeRef t;
    LLVMValueRef y, c, beta;
} scale_body;

static void scale_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    scale_body *s = user;
    LLVMValueRef v = LLVMBuildLoad2(L->b, s->t, bk_gep(L, s->t, s->c, offs[1]), "");
    LLVMBuildStore(L->b, LLVMBuildFMul(L->b, v, s->beta, ""), bk_gep(L, s->t, s->y, offs[0]));
}

/* Gemm: Y = beta * C (broadcast) first, then one GEMM accumulating into it. */
hone_status bk_lower_gemm(bk_lower *L)
{
    const hone_value *a = bk_in(L, 0), *b = bk_in(L, 1), *c = bk_in(L, 2), *y = bk_out(L, 0);
    hone_status st = need_blas_type(L);
    if (st)
        return st;
    bool f64 = y->dtype == HONE_DT_DOUBLE;
    bool ta = hone_attr_int(L->node, "transA", 0), tb = hone_attr_int(L->node, "transB", 0);
    double alpha = hone_attr_float(L->node, "alpha", 1.0f), beta = hone_attr_float(L->node, "beta", 1.0f);
    if (c) {
        bk_nest n = {.rank = 2, .n_ops = 2, .dims = {y->dims[0], y->dims[1]}};
        bk_strides(2, y->dims, n.strides[0]);
        bk_bcast_strides(c->rank, c->dims, 2, y->dims, n.strides[1]);
        LLVMTypeRef t = f64 ? L->f64 : L->f32;
        scale_body s = {t, L->out[0], L->in[2], LLVMConstReal(t, beta)};
        bk_nest_emit(L, &n, scale_emit_body, &s);
    }
    int64_t k = a->dims[ta ? 0 : 1];
    if (y->dims[0] && y->dims[1] && k)
        emit_gemm(L, f64, ta, tb, y->dims[0], y->dims[1], k, alpha, L->in[0], a->dims[1], L->in[1],
                  b->dims[1], c ? 1.0 : 0.0, L->out[0]);
    else if (!c)
        bk_memset(L, L->out[0], 0, (int64_t)bk_bytes(y));
    return HONE_OK;
}

/* One MatMul batch: element offsets of A, B and Y come from the nest. */
typedef struct mm_body {
    bool f64;
    int64_t m, n, k;
} mm_body;

static void mm_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    mm_body *s = user;
    LLVMTypeRef t = s->f64 ? L->f64 : L->f32;
    emit_gemm(L, s->f64, false, false, s->m, s->n, s->k, 1.0, bk_gep(L, t, L->in[0], offs[1]), s->k,
              bk_gep(L, t, L->in[1], offs[2]), s->n, 0.0, bk_gep(L, t, L->out[0], offs[0]));
}

/* MatMul: numpy semantics; a batch loop of GEMMs over the broadcast batch
 * dims, or one GEMM when B has no batch dims (A's batches are rows). */
hone_status bk_lower_matmul(bk_lower *L)
{
    const hone_value *a = bk_in(L, 0), *b = bk_in(L, 1), *y = bk_out(L, 0);
    hone_status st = need_blas_type(L);
    if (st)
        return st;
    mm_body s = {y->dtype == HONE_DT_DOUBLE, a->rank >= 2 ? a->dims[a->rank - 2] : 1,
                 b->rank >= 2 ? b->dims[b->rank - 1] : 1, a->dims[a->rank - 1]};
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int ry = ra > rb ? ra : rb;
    if (!s.k || !bk_numel(y)) {
        bk_memset(L, L->out[0], 0, (int64_t)bk_bytes(y));
        return HONE_OK;
    }
    if (rb == 0 && b->rank >= 1) {
        s.m *= bk_numel(y) / (s.m * s.n);
        mm_emit_body(L, &s, (LLVMValueRef[]){ci64(L, 0), ci64(L, 0), ci64(L, 0)}, NULL);
        return HONE_OK;
    }
    bk_nest n = {.rank = ry, .n_ops = 3};
    memcpy(n.dims, y->dims, sizeof(int64_t) * (size_t)ry);
    bk_strides(ry, n.dims, n.strides[0]);
    bk_bcast_strides(ra, a->dims, ry, n.dims, n.strides[1]);
    bk_bcast_strides(rb, b->dims, ry, n.dims, n.strides[2]);
    for (int i = 0; i < ry; i++) {
        n.strides[0][i] *= s.m * s.n;
        n.strides[1][i] *= s.m * s.k;
        n.strides[2][i] *= s.k * s.n;
    }
    bk_nest_emit(L, &n, mm_emit_body, &s);
    return HONE_OK;
}

/* ===================== pools ===================== */

/* The pool window of the current node (kernel_shape, strides, pads, ceil_mode). */
static hone_status pool_window(bk_lower *L, hone_rt_window *w)
{
    const hone_node *n = L->node;
    const hone_value *x = bk_in(L, 0);
    int nsp = x->rank - 2;
    int64_t in[HONE_MAX_RANK], k[HONE_MAX_RANK];
    const int64_t *ks;
    if (hone_attr_ints(n, "kernel_shape", &ks) != nsp)
        return hone_node_fail(L->ctx, n, HONE_ERR_INVALID, "kernel_shape must have %d values", nsp);
    for (int d = 0; d < nsp; d++) {
        in[d] = x->dims[d + 2];
        k[d] = ks[d];
    }
    nn_window_opts o = {hone_attr_int(n, "ceil_mode", 0) != 0, true};
    return nn_window(L->ctx, n, nsp, in, k, o, w);
}

/* MaxPool (with optional Indices), AveragePool, LpPool: one runtime call. */
hone_status bk_lower_pool(bk_lower *L)
{
    const hone_node *n = L->node;
    const hone_value *x = bk_in(L, 0);
    hone_rt_window w;
    bool i8 = x->dtype == HONE_DT_INT8 || x->dtype == HONE_DT_UINT8;
    hone_status st = i8 && !strcmp(n->op_type, "MaxPool") ? HONE_OK : need_f32(L, 1);
    if (st || (st = pool_window(L, &w)))
        return st;
    if (i8)
        return bk_lower_maxpool_i8(L, &w);
    LLVMValueRef planes = ci64(L, x->dims[0] * x->dims[1]), wg = window_global(L, &w);
    if (!strcmp(n->op_type, "MaxPool")) {
        LLVMTypeRef pt[6] = {L->ptr, L->i64, L->ptr, L->ptr, L->ptr, L->i32};
        LLVMValueRef a[6] = {wg, planes, L->in[0], L->out[0],
                             bk_out(L, 1) ? L->out[1] : LLVMConstNull(L->ptr),
                             bk_i32(L, hone_attr_int(n, "storage_order", 0) != 0)};
        bk_call(L, "hone_rt_maxpool", L->vd, pt, 6, a);
        return HONE_OK;
    }
    bool avg = !strcmp(n->op_type, "AveragePool");
    LLVMTypeRef pt[5] = {L->ptr, L->i64, L->ptr, L->ptr, avg ? L->i32 : L->f32};
    LLVMValueRef a[5] = {wg, planes, L->in[0], L->out[0],
                         avg ? bk_i32(L, hone_attr_int(n, "count_include_pad", 0) != 0)
                             : bk_f32(L, hone_attr_float(n, "p", 2.0f))};
    bk_call(L, avg ? "hone_rt_avgpool" : "hone_rt_lppool", L->vd, pt, 5, a);
    return HONE_OK;
}

hone_status bk_lower_global_pool(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    hone_status st = need_f32(L, 1);
    if (st)
        return st;
    const char *op = L->node->op_type;
    int kind = !strcmp(op, "GlobalMaxPool") ? HONE_RT_GPOOL_MAX
               : !strcmp(op, "GlobalLpPool") ? HONE_RT_GPOOL_LP : HONE_RT_GPOOL_AVG;
    LLVMTypeRef pt[6] = {L->i32, L->i64, L->i64, L->ptr, L->ptr, L->f32};
    LLVMValueRef a[6] = {bk_i32(L, kind), ci64(L, x->dims[0] * x->dims[1]),
                         ci64(L, nn_prod(x->dims, 2, x->rank)), L->in[0], L->out[0],
                         bk_f32(L, hone_attr_float(L->node, "p", 2.0f))};
    bk_call(L, "hone_rt_global_pool", L->vd, pt, 6, a);
    return HONE_OK;
}

/* ===================== normalisations ===================== */

hone_status bk_lower_batchnorm(bk_lower *L)
{
    const hone_node *n = L->node;
    const hone_value *x = bk_in(L, 0);
    bool training = n->opset >= 14 ? hone_attr_int(n, "training_mode", 0) != 0 : false;
    for (int i = 1; i < n->n_out && !training; i++)
        training = n->out[i] != NULL;
    if (training)
        return bk_lower_batchnorm_train(L);
    hone_status st = need_f32(L, 5);
    if (st)
        return st;
    LLVMTypeRef pt[10] = {L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr, L->f32, L->ptr};
    LLVMValueRef a[10] = {ci64(L, x->dims[0]), ci64(L, x->rank > 1 ? x->dims[1] : 1),
                          ci64(L, nn_prod(x->dims, 2, x->rank)), L->in[0], L->in[1], L->in[2],
                          L->in[3], L->in[4], bk_f32(L, hone_attr_float(n, "epsilon", 1e-5f)),
                          L->out[0]};
    bk_call(L, "hone_rt_batchnorm", L->vd, pt, 10, a);
    return HONE_OK;
}

size_t bk_scratch_instancenorm(const bk_model *m, const hone_node *n)
{
    const hone_value *x = n->in[0];
    return 2 * (size_t)(x->dims[0] * x->dims[1]) * sizeof(float);
}

/* InstanceNormalization: per (n, c) moments into scratch, then batchnorm per image. */
hone_status bk_lower_instancenorm(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    hone_status st = need_f32(L, 3);
    if (st)
        return st;
    int64_t nb = x->dims[0], c = x->dims[1], plane = nn_prod(x->dims, 2, x->rank);
    LLVMValueRef mean = L->scratch, var = bk_gep_c(L, L->f32, L->scratch, nb * c);
    LLVMTypeRef mt[5] = {L->i64, L->i64, L->ptr, L->ptr, L->ptr};
    LLVMValueRef ma[5] = {ci64(L, nb * c), ci64(L, plane), L->in[0], mean, var};
    bk_call(L, "hone_rt_row_moments", L->vd, mt, 5, ma);
    for (int64_t b = 0; b < nb; b++) {
        LLVMTypeRef pt[10] = {L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr, L->f32, L->ptr};
        LLVMValueRef a[10] = {ci64(L, 1), ci64(L, c), ci64(L, plane),
                              bk_gep_c(L, L->f32, L->in[0], b * c * plane), L->in[1], L->in[2],
                              bk_gep_c(L, L->f32, mean, b * c), bk_gep_c(L, L->f32, var, b * c),
                              bk_f32(L, hone_attr_float(L->node, "epsilon", 1e-5f)),
                              bk_gep_c(L, L->f32, L->out[0], b * c * plane)};
        bk_call(L, "hone_rt_batchnorm", L->vd, pt, 10, a);
    }
    return HONE_OK;
}

/* LayerNormalization's [rows, len] split at axis. */
static void ln_split(const hone_node *n, int64_t *rows, int64_t *len)
{
    const hone_value *x = n->in[0];
    int64_t a = hone_attr_int(n, "axis", -1);
    int axis = (int)(a < 0 ? a + x->rank : a);
    *rows = nn_prod(x->dims, 0, axis);
    *len = nn_prod(x->dims, axis, x->rank);
}

size_t bk_scratch_layernorm(const bk_model *m, const hone_node *n)
{
    int64_t rows, len;
    ln_split(n, &rows, &len);
    return (size_t)(2 * len + 2 * rows) * sizeof(float);
}

/* Copies parameter input i broadcast onto the last dims of X into dst (len floats). */
static void ln_param(bk_lower *L, int i, int64_t len, LLVMValueRef dst)
{
    const hone_value *x = bk_in(L, 0), *p = bk_in(L, i);
    int axis = x->rank;
    for (int64_t l = 1; axis > 0 && l < len;)
        l *= x->dims[--axis];
    bk_nest n = {.rank = x->rank - axis, .n_ops = 2};
    memcpy(n.dims, x->dims + axis, sizeof(int64_t) * (size_t)n.rank);
    bk_strides(n.rank, n.dims, n.strides[0]);
    bk_bcast_strides(p->rank, p->dims, n.rank, n.dims, n.strides[1]);
    bk_emit_copy(L, L->f32, dst, L->in[i], &n);
}

/* LayerNormalization: parameters expanded to [len] in scratch, the runtime kernel,
 * and the optional Mean / InvStdDev outputs written straight from it. */
hone_status bk_lower_layernorm(bk_lower *L)
{
    int64_t rows, len;
    hone_status st = need_f32(L, 3);
    if (st)
        return st;
    for (int i = 1; i < L->node->n_out; i++)
        if (bk_out(L, i) && bk_out(L, i)->dtype != HONE_DT_FLOAT)
            return bk_unsupported(L, "statistics output %d of type %s", i,
                                  hone_dtype_onnx_name(bk_out(L, i)->dtype));
    ln_split(L->node, &rows, &len);
    LLVMValueRef sc = L->scratch, bias = bk_gep_c(L, L->f32, sc, len);
    ln_param(L, 1, len, sc);
    if (bk_in(L, 2))
        ln_param(L, 2, len, bias);
    LLVMValueRef mean = bk_out(L, 1) ? L->out[1] : bk_gep_c(L, L->f32, sc, 2 * len);
    LLVMValueRef inv = bk_out(L, 2) ? L->out[2] : bk_gep_c(L, L->f32, sc, 2 * len + rows);
    LLVMTypeRef pt[9] = {L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->f32, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[9] = {ci64(L, rows), ci64(L, len), L->in[0], sc,
                         bk_in(L, 2) ? bias : LLVMConstNull(L->ptr),
                         bk_f32(L, hone_attr_float(L->node, "epsilon", 1e-5f)), L->out[0], mean, inv};
    bk_call(L, "hone_rt_layernorm", L->vd, pt, 9, a);
    return HONE_OK;
}

hone_status bk_lower_lpnorm(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    hone_status st = need_f32(L, 1);
    if (st)
        return st;
    int64_t a = hone_attr_int(L->node, "axis", -1), outer, len, inner;
    nn_split_axis(x->rank, x->dims, (int)(a < 0 ? a + x->rank : a), &outer, &len, &inner);
    LLVMTypeRef pt[6] = {L->i64, L->i64, L->i64, L->ptr, L->ptr, L->i32};
    LLVMValueRef args[6] = {ci64(L, outer), ci64(L, len), ci64(L, inner), L->in[0], L->out[0],
                            bk_i32(L, (int)hone_attr_int(L->node, "p", 2))};
    bk_call(L, "hone_rt_lpnorm", L->vd, pt, 6, args);
    return HONE_OK;
}

hone_status bk_lower_lrn(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    const hone_node *n = L->node;
    hone_status st = need_f32(L, 1);
    if (st)
        return st;
    LLVMTypeRef pt[9] = {L->i64, L->i64, L->i64, L->ptr, L->ptr, L->i64, L->f32, L->f32, L->f32};
    LLVMValueRef a[9] = {ci64(L, x->dims[0]), ci64(L, x->dims[1]), ci64(L, nn_prod(x->dims, 2, x->rank)),
                         L->in[0], L->out[0], ci64(L, hone_attr_int(n, "size", 1)),
                         bk_f32(L, hone_attr_float(n, "alpha", 1e-4f)),
                         bk_f32(L, hone_attr_float(n, "beta", 0.75f)),
                         bk_f32(L, hone_attr_float(n, "bias", 1.0f))};
    bk_call(L, "hone_rt_lrn", L->vd, pt, 9, a);
    return HONE_OK;
}

/* Softmax, LogSoftmax, Hardmax: one axis from opset 13, the flattened
 * trailing dims [axis..) before. */
hone_status bk_lower_softmax(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    const hone_node *n = L->node;
    hone_status st = need_f32(L, 1);
    if (st)
        return st;
    bool old = n->opset < 13;
    int64_t a = hone_attr_int(n, "axis", old ? 1 : -1), outer, len, inner;
    int axis = (int)(a < 0 ? a + x->rank : a);
    nn_split_axis(x->rank, x->dims, axis, &outer, &len, &inner);
    if (old) {
        len = nn_prod(x->dims, axis, x->rank);
        inner = 1;
    }
    int kind = !strcmp(n->op_type, "LogSoftmax") ? HONE_RT_LOGSOFTMAX
               : !strcmp(n->op_type, "Hardmax") ? HONE_RT_HARDMAX : HONE_RT_SOFTMAX;
    LLVMTypeRef pt[6] = {L->i32, L->i64, L->i64, L->i64, L->ptr, L->ptr};
    LLVMValueRef args[6] = {bk_i32(L, kind), ci64(L, outer), ci64(L, len), ci64(L, inner), L->in[0], L->out[0]};
    bk_call(L, "hone_rt_softmax", L->vd, pt, 6, args);
    return HONE_OK;
}
