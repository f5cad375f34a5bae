/*
 * hone.BinaryConv (docs/CUSTOM_OPS.md) as calls into runtime/binconv.c.
 *
 * W1A1 (binary_input = 1): the compiler repacks the constant sign bits once
 * (hone_rt_binconv_xnor_weights: per tap and 64-channel word, output channels
 * innermost) into a private global, and the node calls the XNOR + popcount
 * kernel, which packs each image's signs against the thresholds into its
 * scratch and picks the widest popcount of the CPU it runs on (AVX-512
 * VPOPCNTDQ, POPCNT, or portable C). W1 (binary_input = 0): the node calls
 * the kernel that reads signs straight from the packed bits, so no fp32
 * weight tensor exists in the compiled model either. Both kernels compute
 * alpha * dot + bias in float32 like the interpreter, so W1A1 results match
 * it exactly and W1 ones up to summation order.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nn.h"

/* The node's 2-D window over X (kernel from kernel_shape, as inference does). */
static hone_status binary_window(hone_ctx *ctx, const hone_node *n, hone_rt_window *w)
{
    const int64_t *k;
    if (hone_attr_ints(n, "kernel_shape", &k) != 2 || hone_attr_int(n, "group", 1) != 1)
        return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "2-D kernel_shape and group 1 only");
    return nn_window(ctx, n, 2, n->in[0]->dims + 2, k, (nn_window_opts){0}, w);
}

size_t bk_scratch_binary_conv(const bk_model *m, const hone_node *n)
{
    (void)m;
    hone_ctx ctx;
    hone_rt_window w;
    hone_ctx_init(&ctx);
    if (n->in[0]->rank != 4 || binary_window(&ctx, n, &w))
        return 0;
    int64_t c = n->in[0]->dims[1], mo = n->out[0]->dims[1];
    return hone_attr_int(n, "binary_input", 0) ? hone_rt_binconv_xnor_scratch(&w, c, mo)
                                               : hone_rt_binconv_w1_scratch(&w, c);
}

/* The XNOR kernel's weight layout of the constant bits, as a private global. */
static LLVMValueRef xnor_weights(bk_lower *L, const hone_tensor *bits, int64_t c, int64_t m,
                                 int64_t taps)
{
    size_t cnt = hone_rt_binconv_xnor_weights_count(c, m, taps);
    uint64_t *wp = malloc(sizeof *wp * (cnt ? cnt : 1));
    HONE_ASSERT(wp);
    hone_rt_binconv_xnor_weights(c, m, taps, bits->data, wp);
    LLVMValueRef g = bk_global_bytes(L, wp, sizeof *wp * cnt, "xnor_weights");
    free(wp);
    return g;
}

hone_status bk_lower_binary_conv(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    const hone_tensor *bits = bk_in_known(L, 1);
    hone_rt_window w;
    if (x->dtype != HONE_DT_FLOAT || x->rank != 4)
        return bk_unsupported(L, "X must be float32 [N, C, H, W]");
    hone_status st = binary_window(L->ctx, L->node, &w);
    if (st)
        return bk_unsupported(L, "%s", L->ctx->msg);
    int64_t c = x->dims[1], m = y->dims[1];
    bool xnor = hone_attr_int(L->node, "binary_input", 0) != 0;
    if (xnor && !bits)
        return bk_unsupported(L, "W1A1 needs constant weight bits");
    LLVMValueRef none = LLVMConstNull(L->ptr);
    LLVMValueRef wv = xnor ? xnor_weights(L, bits, c, m, w.k[0] * w.k[1]) : L->in[1];
    LLVMValueRef thresh = xnor && bk_in(L, 4) ? L->in[4] : none;
    LLVMTypeRef pt[11] = {L->ptr, L->i64, L->i64, L->i64, L->ptr, L->ptr,
                          L->ptr, L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[11] = {bk_global_bytes(L, &w, sizeof w, "window"), bk_i64(L, x->dims[0]),
                          bk_i64(L, c), bk_i64(L, m), wv, L->in[2], bk_in(L, 3) ? L->in[3] : none,
                          thresh, L->in[0], L->out[0], L->scratch ? L->scratch : none};
    if (xnor) {
        bk_call(L, "hone_rt_binconv_xnor", L->vd, pt, 11, a);
        return HONE_OK;
    }
    memmove(a + 7, a + 8, sizeof *a * 3);
    bk_call(L, "hone_rt_binconv_w1", L->vd, pt, 10, a);
    return HONE_OK;
}
