/*
 * Integer ops as calls into the runtime: ConvInteger through
 * hone_rt_conv_integer (runtime/qconv.c: AVX-512 VNNI where the CPU has it,
 * portable loops otherwise). Geometry comes from the Conv window rules of
 * nn.h, as for Conv (lower_nn.c); zero points are read by the kernel from
 * their buffers, so they may be computed values.
 */
#include "backend.h"
#include "nn.h"

/* ConvInteger geometry (static shapes): window and group count. */
static hone_status qconv_window(hone_ctx *ctx, const hone_node *n, hone_rt_window *w, int64_t *g)
{
    const hone_value *x = n->in[0], *wt = n->in[1];
    int nsp = x->rank - 2;
    int64_t in[HONE_MAX_RANK], k[HONE_MAX_RANK];
    if (nsp < 1 || nsp > HONE_RT_MAX_SPATIAL)
        return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "ConvInteger of rank %d", x->rank);
    for (int d = 0; d < nsp; d++) {
        in[d] = x->dims[d + 2];
        k[d] = wt->dims[d + 2];
    }
    *g = hone_attr_int(n, "group", 1);
    return nn_window(ctx, n, nsp, in, k, (nn_window_opts){0}, w);
}

size_t bk_scratch_conv_integer(const bk_model *m, const hone_node *n)
{
    (void)m;
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    if (qconv_window(&ctx, n, &w, &g))
        return 0;
    return hone_rt_conv_integer_scratch(&w, n->in[0]->dims[1], n->out[0]->dims[1], g);
}

static bool int8_type(hone_dtype dt)
{
    return dt == HONE_DT_UINT8 || dt == HONE_DT_INT8;
}

/* ConvInteger(X, W, [x_zero_point], [w_zero_point]) -> int32 Y. */
hone_status bk_lower_conv_integer(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *wt = bk_in(L, 1), *wz = bk_in(L, 3), *y = bk_out(L, 0);
    if (!int8_type(x->dtype) || !int8_type(wt->dtype) || y->dtype != HONE_DT_INT32)
        return bk_unsupported(L, "ConvInteger of %s x %s", hone_dtype_onnx_name(x->dtype),
                              hone_dtype_onnx_name(wt->dtype));
    hone_rt_window w;
    int64_t g;
    if (qconv_window(L->ctx, L->node, &w, &g))
        return bk_unsupported(L, "%s", L->ctx->msg);
    int64_t n_wz = wz ? bk_numel(wz) : 0;
    LLVMValueRef none = LLVMConstNull(L->ptr);
    LLVMTypeRef pt[14] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->i32,
                          L->ptr, L->ptr, L->i32, L->ptr, L->i64, L->ptr, L->ptr};
    LLVMValueRef a[14] = {bk_global_bytes(L, &w, sizeof w, "window"), bk_i64(L, x->dims[0]),
                          bk_i64(L, x->dims[1]), bk_i64(L, y->dims[1]), bk_i64(L, g), L->in[0],
                          LLVMConstInt(L->i32, x->dtype == HONE_DT_INT8, 0),
                          bk_in(L, 2) ? L->in[2] : none, L->in[1],
                          LLVMConstInt(L->i32, wt->dtype == HONE_DT_INT8, 0),
                          wz ? L->in[3] : none, bk_i64(L, n_wz), L->out[0],
                          L->scratch ? L->scratch : none};
    bk_call(L, "hone_rt_conv_integer", L->vd, pt, 14, a);
    return HONE_OK;
}
