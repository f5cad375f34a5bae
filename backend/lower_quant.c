/*
 * Integer ops as calls into the runtime (runtime/qconv.c): ConvInteger
 * through hone_rt_conv_integer (AVX-512 VNNI where the CPU has it, portable
 * loops otherwise); QLinearConv as that conv into scratch then
 * hone_rt_requantize; MatMulInteger and QLinearMatMul through
 * hone_rt_matmul_integer (plus requantization); DynamicQuantizeLinear
 * through hone_rt_dynamic_quantize. Geometry comes from the Conv window rules of
 * nn.h, as for Conv (lower_nn.c); zero points are read by the kernel from
 * their buffers, so they may be computed values.
 */
#include <stdlib.h>
#include <string.h>

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

/* Bytes of the int32 accumulator a requantized op keeps at the start of its scratch. */
static size_t acc_bytes(const hone_node *n)
{
    return (bk_numel(n->out[0]) * 4 + 63) / 64 * 64;
}

size_t bk_scratch_conv_integer(const bk_model *m, const hone_node *n)
{
    (void)m;
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    bool qlinear = !strcmp(n->op_type, "QLinearConv");
    const hone_value *wt = n->in[qlinear ? 3 : 1];
    hone_node view = *n;
    hone_value *ins[2] = {n->in[0], (hone_value *)wt};
    view.in = ins;
    if (qconv_window(&ctx, &view, &w, &g))
        return 0;
    return hone_rt_conv_integer_scratch(&w, n->in[0]->dims[1], n->out[0]->dims[1], g) +
           (qlinear ? acc_bytes(n) : 0);
}

size_t bk_scratch_qlinear_matmul(const bk_model *m, const hone_node *n)
{
    (void)m;
    return acc_bytes(n);
}

static bool int8_type(hone_dtype dt)
{
    return dt == HONE_DT_UINT8 || dt == HONE_DT_INT8;
}

static LLVMValueRef opt_in(bk_lower *L, int i)
{
    return bk_in(L, i) ? L->in[i] : LLVMConstNull(L->ptr);
}

static LLVMValueRef flag(bk_lower *L, bool v)
{
    return LLVMConstInt(L->i32, v, 0);
}

/* True when a ConvInteger (iw 1, iwz 3), QLinearConv (iw 3, iwz 5) or hone.QConv (iw 1,
 * no weight zero point: iwz -1) runs on weights packed at compile time: uint8 x, constant
 * int8 weights without (or with all-zero) zero points, 2 spatial dims, weights embedded. */
static bool qconv_packs(const bk_model *m, const hone_node *n, int iw, int iwz)
{
    const hone_value *x = n->in[0], *wt = n->n_in > iw ? n->in[iw] : NULL;
    const hone_value *wz = iwz >= 0 && n->n_in > iwz ? n->in[iwz] : NULL;
    if (m->ext_weights || !wt || x->dtype != HONE_DT_UINT8 || wt->dtype != HONE_DT_INT8 ||
        x->rank != 4 || !bk_known(m, wt))
        return false;
    if (wz) {
        const hone_tensor *t = bk_known(m, wz);
        if (!t || t->dtype != HONE_DT_INT8)
            return false;
        for (int64_t i = 0; i < t->numel; i++)
            if (((const int8_t *)t->data)[i])
                return false;
    }
    return true;
}

int bk_qconv_packed_weight(const bk_model *m, const hone_node *n)
{
    if (!strcmp(n->op_type, "QConv") && !strcmp(n->domain, "hone"))
        return qconv_packs(m, n, 1, -1) ? 1 : -1;
    if (!strcmp(n->op_type, "ConvInteger") && !*n->domain)
        return qconv_packs(m, n, 1, 3) ? 1 : -1;
    if (!strcmp(n->op_type, "QLinearConv") && !*n->domain)
        return qconv_packs(m, n, 3, 5) ? 3 : -1;
    return -1;
}

/* Bytes of hone.QConv's weights packed at run time (weights not embedded), 64-aligned. */
static size_t qconv_runtime_pack_bytes(const bk_model *m, const hone_node *n, const hone_rt_window *w,
                                       int64_t g)
{
    if (qconv_packs(m, n, 1, -1))
        return 0;
    return (hone_rt_conv_integer_packed_size(w, n->in[0]->dims[1], n->out[0]->dims[1], g) + 63) /
           64 * 64;
}

size_t bk_scratch_qconv(const bk_model *m, const hone_node *n)
{
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    if (qconv_window(&ctx, n, &w, &g))
        return 0;
    return hone_rt_conv_integer_scratch(&w, n->in[0]->dims[1], n->out[0]->dims[1], g) +
           qconv_runtime_pack_bytes(m, n, &w, g);
}

/* The conv call: X (input ix), W (iw), zero points (ixz, iwz; -1: none) into y. */
static hone_status emit_qconv(bk_lower *L, int ix, int iw, int ixz, int iwz, LLVMValueRef y,
                              LLVMValueRef scratch)
{
    const hone_value *x = bk_in(L, ix), *wt = bk_in(L, iw), *out = bk_out(L, 0);
    const hone_value *wz = iwz >= 0 ? bk_in(L, iwz) : NULL;
    if (!int8_type(x->dtype) || !int8_type(wt->dtype))
        return bk_unsupported(L, "%s of %s x %s", L->node->op_type,
                              hone_dtype_onnx_name(x->dtype), hone_dtype_onnx_name(wt->dtype));
    hone_rt_window w;
    int64_t g;
    hone_node view = *L->node;
    hone_value *ins[2] = {(hone_value *)x, (hone_value *)wt};
    view.in = ins;
    if (qconv_window(L->ctx, &view, &w, &g))
        return bk_unsupported(L, "%s", L->ctx->msg);
    int64_t n_wz = wz ? bk_numel(wz) : 0;
    if (n_wz > 1 && n_wz != out->dims[1])
        return bk_unsupported(L, "%lld weight zero points for %lld channels", (long long)n_wz,
                              (long long)out->dims[1]);
    if (qconv_packs(L->m, L->node, iw, iwz)) {
        size_t nb = hone_rt_conv_integer_packed_size(&w, x->dims[1], out->dims[1], g);
        void *buf = malloc(nb ? nb : 1);
        HONE_ASSERT(buf);
        hone_rt_conv_integer_pack(&w, x->dims[1], out->dims[1], g, bk_known(L->m, wt)->data, buf);
        LLVMValueRef packed = bk_global_bytes(L, buf, nb, "wqpacked");
        free(buf);
        LLVMTypeRef qt[10] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr,
                              L->ptr, L->ptr, L->ptr};
        LLVMValueRef qa[10] = {bk_global_bytes(L, &w, sizeof w, "window"), bk_i64(L, x->dims[0]),
                               bk_i64(L, x->dims[1]), bk_i64(L, out->dims[1]), bk_i64(L, g),
                               L->in[ix], ixz >= 0 ? opt_in(L, ixz) : LLVMConstNull(L->ptr),
                               packed, y, scratch ? scratch : LLVMConstNull(L->ptr)};
        bk_call(L, "hone_rt_conv_integer_packed", L->vd, qt, 10, qa);
        return HONE_OK;
    }
    LLVMTypeRef pt[14] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->i32,
                          L->ptr, L->ptr, L->i32, L->ptr, L->i64, L->ptr, L->ptr};
    LLVMValueRef a[14] = {bk_global_bytes(L, &w, sizeof w, "window"), bk_i64(L, x->dims[0]),
                          bk_i64(L, x->dims[1]), bk_i64(L, out->dims[1]), bk_i64(L, g),
                          L->in[ix], flag(L, x->dtype == HONE_DT_INT8),
                          ixz >= 0 ? opt_in(L, ixz) : LLVMConstNull(L->ptr), L->in[iw],
                          flag(L, wt->dtype == HONE_DT_INT8),
                          wz ? L->in[iwz] : LLVMConstNull(L->ptr), bk_i64(L, n_wz), y,
                          scratch ? scratch : LLVMConstNull(L->ptr)};
    bk_call(L, "hone_rt_conv_integer", L->vd, pt, 14, a);
    return HONE_OK;
}

/* The requantization of the current node's int32 accumulator acc into output 0. */
static void emit_requant(bk_lower *L, LLVMValueRef acc, int64_t inner, int64_t m, int ib, int ixs,
                         int iws, int iys, int iyz)
{
    const hone_value *y = bk_out(L, 0);
    LLVMTypeRef pt[12] = {L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr,
                          L->ptr, L->i64, L->ptr, L->ptr, L->i32, L->ptr};
    LLVMValueRef a[12] = {bk_i64(L, bk_numel(y)), bk_i64(L, inner), bk_i64(L, m), acc,
                          ib >= 0 ? opt_in(L, ib) : LLVMConstNull(L->ptr), L->in[ixs], L->in[iws],
                          bk_i64(L, bk_numel(bk_in(L, iws))), L->in[iys], opt_in(L, iyz),
                          flag(L, y->dtype == HONE_DT_INT8), L->out[0]};
    bk_call(L, "hone_rt_requantize", L->vd, pt, 12, a);
}

static bool float_scalars(bk_lower *L, const int *idx, int n)
{
    for (int i = 0; i < n; i++)
        if (!bk_in(L, idx[i]) || bk_in(L, idx[i])->dtype != HONE_DT_FLOAT)
            return false;
    return true;
}

/* QLinearConv(x, xs, xz, w, ws, wz, ys, yz, [B int32]). */
hone_status bk_lower_qlinear_conv(bk_lower *L)
{
    const hone_value *y = bk_out(L, 0), *ys = bk_in(L, 6);
    if (!float_scalars(L, (int[]){1, 4, 6}, 3) || bk_numel(bk_in(L, 1)) != 1 || bk_numel(ys) != 1 ||
        !int8_type(y->dtype) || (bk_in(L, 8) && bk_in(L, 8)->dtype != HONE_DT_INT32))
        return bk_unsupported(L, "QLinearConv with these scales or types");
    int64_t n_ws = bk_numel(bk_in(L, 4));
    if (n_ws != 1 && n_ws != y->dims[1])
        return bk_unsupported(L, "%lld weight scales for %lld channels", (long long)n_ws,
                              (long long)y->dims[1]);
    LLVMValueRef acc = L->scratch;
    LLVMValueRef rest = bk_gep_c(L, L->i8, L->scratch, (int64_t)acc_bytes(L->node));
    hone_status st = emit_qconv(L, 0, 3, 2, 5, acc, rest);
    if (st)
        return st;
    int64_t inner = bk_numel(y) / (y->dims[0] * y->dims[1]);
    emit_requant(L, acc, inner, y->dims[1], 8, 1, 4, 6, 7);
    return HONE_OK;
}

/* ConvInteger(X, W, [x_zero_point], [w_zero_point]) -> int32 Y. */
hone_status bk_lower_conv_integer(bk_lower *L)
{
    if (bk_out(L, 0)->dtype != HONE_DT_INT32)
        return bk_unsupported(L, "ConvInteger to %s", hone_dtype_onnx_name(bk_out(L, 0)->dtype));
    return emit_qconv(L, 0, 1, 2, 3, L->out[0], L->scratch);
}

/* hone.QConv(X, W, x_zp, scale, [B], [Z], [y_scale], [y_zp]): hone_rt_qconv on weights
 * packed at compile time (or, with external weights, packed into scratch each run). */
hone_status bk_lower_qconv(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *wt = bk_in(L, 1), *out = bk_out(L, 0);
    hone_rt_window w;
    int64_t g;
    if (x->dtype != HONE_DT_UINT8 || wt->dtype != HONE_DT_INT8 || x->rank != 4 ||
        qconv_window(L->ctx, L->node, &w, &g))
        return bk_unsupported(L, "QConv of %s x %s, rank %d", hone_dtype_onnx_name(x->dtype),
                              hone_dtype_onnx_name(wt->dtype), x->rank);
    int64_t c = x->dims[1], m = out->dims[1];
    LLVMValueRef win = bk_global_bytes(L, &w, sizeof w, "window"), packed, scratch = L->scratch;
    size_t rt_bytes = qconv_runtime_pack_bytes(L->m, L->node, &w, g);
    if (!rt_bytes) {
        size_t nb = hone_rt_conv_integer_packed_size(&w, c, m, g);
        void *buf = malloc(nb ? nb : 1);
        HONE_ASSERT(buf);
        hone_rt_conv_integer_pack(&w, c, m, g, bk_known(L->m, wt)->data, buf);
        packed = bk_global_bytes(L, buf, nb, "wqpacked");
        free(buf);
    } else {
        packed = L->scratch;
        scratch = bk_gep_c(L, L->i8, L->scratch, (int64_t)rt_bytes);
        LLVMTypeRef pt[6] = {L->ptr, L->i64, L->i64, L->i64, L->ptr, L->ptr};
        LLVMValueRef pa[6] = {win, bk_i64(L, c), bk_i64(L, m), bk_i64(L, g), L->in[1], packed};
        bk_call(L, "hone_rt_conv_integer_pack", L->vd, pt, 6, pa);
    }
    LLVMTypeRef qt[16] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr,
                          L->ptr, L->ptr, L->ptr, L->i32, L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef qa[16] = {win, bk_i64(L, x->dims[0]), bk_i64(L, c), bk_i64(L, m), bk_i64(L, g),
                           L->in[0], opt_in(L, 2), packed, L->in[3], opt_in(L, 4), opt_in(L, 5),
                           flag(L, hone_attr_str(L->node, "activation", "")[0] != 0),
                           opt_in(L, 6), opt_in(L, 7), L->out[0], scratch};
    bk_call(L, "hone_rt_qconv", L->vd, qt, 16, qa);
    return HONE_OK;
}

/* hone.DequantizePacked(P, scale) -> float W: unpacked on the fly by
 * hone_rt_dequantize_packed (fold-constants leaves the node alone, so compiled code
 * carries the packed bits, not the float weights). */
hone_status bk_lower_dequantize_packed(bk_lower *L)
{
    const hone_value *p = bk_in(L, 0), *sc = bk_in(L, 1), *w = bk_out(L, 0);
    int64_t bits = hone_attr_int(L->node, "bits", 0), numel = bk_numel(w);
    if (p->dtype != HONE_DT_UINT8 || sc->dtype != HONE_DT_FLOAT || w->dtype != HONE_DT_FLOAT ||
        bits < 1 || bits > 8 || w->rank < 1 || w->dims[0] < 1 || bk_numel(sc) != w->dims[0] ||
        bk_numel(p) * 8 < numel * bits)
        return bk_unsupported(L, "DequantizePacked with these shapes or types");
    LLVMTypeRef pt[8] = {L->i64, L->i64, L->i32, L->i64, L->i64, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[8] = {bk_i64(L, numel), bk_i64(L, numel / w->dims[0]), bk_i32(L, (int32_t)bits),
                         bk_i64(L, hone_attr_int(L->node, "step", 1)),
                         bk_i64(L, hone_attr_int(L->node, "offset", 0)), L->in[0], L->in[1],
                         L->out[0]};
    bk_call(L, "hone_rt_dequantize_packed", L->vd, pt, 8, a);
    return HONE_OK;
}

/* The product geometry of A[..., M, K] x B[..., K, N]: batch count and
 * per-product strides (0: shared), or false when batches broadcast otherwise. */
static bool mm_shape(const hone_value *a, const hone_value *b, const hone_value *y,
                     int64_t g[6])
{
    if (a->rank < 2 || b->rank < 2 || y->rank < 2)
        return false;
    int64_t m = a->dims[a->rank - 2], k = a->dims[a->rank - 1], n = b->dims[b->rank - 1];
    int64_t batch = bk_numel(y) / (m * n > 0 ? m * n : 1);
    int64_t as = bk_numel(a) == m * k ? 0 : m * k, bs = bk_numel(b) == k * n ? 0 : k * n;
    if ((as && bk_numel(a) != batch * m * k) || (bs && bk_numel(b) != batch * k * n) ||
        b->dims[b->rank - 2] != k)
        return false;
    int64_t v[6] = {batch, m, n, k, as, bs};
    memcpy(g, v, sizeof v);
    return true;
}

/* hone_rt_matmul_integer of inputs (ia, iaz, ib, ibz) into y. */
static hone_status emit_qmatmul(bk_lower *L, int ia, int iaz, int ib, int ibz, LLVMValueRef y)
{
    const hone_value *a = bk_in(L, ia), *b = bk_in(L, ib), *az = bk_in(L, iaz), *bz = bk_in(L, ibz);
    int64_t g[6];
    if (!int8_type(a->dtype) || !int8_type(b->dtype) || !mm_shape(a, b, bk_out(L, 0), g))
        return bk_unsupported(L, "%s of these types or batch shapes", L->node->op_type);
    if ((az && bk_numel(az) != 1 && bk_numel(az) != g[1]) ||
        (bz && bk_numel(bz) != 1 && bk_numel(bz) != g[2]))
        return bk_unsupported(L, "%s zero points neither per tensor nor per row/column",
                              L->node->op_type);
    LLVMTypeRef pt[15] = {L->i64, L->i64, L->i64, L->i64, L->ptr, L->i32, L->i64, L->ptr,
                          L->i64, L->ptr, L->i32, L->i64, L->ptr, L->i64, L->ptr};
    LLVMValueRef v[15] = {bk_i64(L, g[0]), bk_i64(L, g[1]), bk_i64(L, g[2]), bk_i64(L, g[3]),
                          L->in[ia], flag(L, a->dtype == HONE_DT_INT8), bk_i64(L, g[4]),
                          opt_in(L, iaz), bk_i64(L, az ? bk_numel(az) : 0), L->in[ib],
                          flag(L, b->dtype == HONE_DT_INT8), bk_i64(L, g[5]), opt_in(L, ibz),
                          bk_i64(L, bz ? bk_numel(bz) : 0), y};
    bk_call(L, "hone_rt_matmul_integer", L->vd, pt, 15, v);
    return HONE_OK;
}

/* MatMulInteger(A, B, [a_zero_point], [b_zero_point]) -> int32. */
hone_status bk_lower_matmul_integer(bk_lower *L)
{
    if (bk_out(L, 0)->dtype != HONE_DT_INT32)
        return bk_unsupported(L, "MatMulInteger to %s", hone_dtype_onnx_name(bk_out(L, 0)->dtype));
    return emit_qmatmul(L, 0, 2, 1, 3, L->out[0]);
}

/* QLinearMatMul(a, as, az, b, bs, bz, ys, yz): per-tensor a and y scales, b per tensor or column. */
hone_status bk_lower_qlinear_matmul(bk_lower *L)
{
    const hone_value *y = bk_out(L, 0);
    if (!float_scalars(L, (int[]){1, 4, 6}, 3) || bk_numel(bk_in(L, 1)) != 1 ||
        bk_numel(bk_in(L, 6)) != 1 || !int8_type(y->dtype))
        return bk_unsupported(L, "QLinearMatMul with these scales or types");
    int64_t n_bs = bk_numel(bk_in(L, 4));
    if (n_bs != 1 && n_bs != y->dims[y->rank - 1])
        return bk_unsupported(L, "QLinearMatMul with %lld b scales", (long long)n_bs);
    hone_status st = emit_qmatmul(L, 0, 2, 3, 5, L->scratch);
    if (st)
        return st;
    emit_requant(L, L->scratch, 1, y->dims[y->rank - 1], -1, 1, 4, 6, 7);
    return HONE_OK;
}

/* DynamicQuantizeLinear(x float) -> (y uint8, scale, zero point). */
hone_status bk_lower_dynamic_quantize(bk_lower *L)
{
    if (bk_in(L, 0)->dtype != HONE_DT_FLOAT || !L->out[0] || !L->out[1] || !L->out[2])
        return bk_unsupported(L, "DynamicQuantizeLinear needs float input and all three outputs");
    LLVMTypeRef pt[5] = {L->i64, L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[5] = {bk_i64(L, bk_numel(bk_in(L, 0))), L->in[0], L->out[0], L->out[1],
                         L->out[2]};
    bk_call(L, "hone_rt_dynamic_quantize", L->vd, pt, 5, a);
    return HONE_OK;
}
