/*
 * AdderNet ops as runtime calls: hone.Adder2d lowers to hone_rt_adder (the
 * vectorised |x - w| accumulation of runtime/adder.c) with the conv
 * lowering's geometry (bk_conv_window) over im2col tiles sized exactly as
 * compiled convs size theirs (bk_conv_tile_cols, about
 * 1 MiB of columns), so an adder layer takes the same workspace slot a conv
 * would; hone.SignedPower lowers to hone_rt_signed_power. Geometry is fixed
 * at compile time with the nn family's window rules, like every conv.
 */
#include "backend.h"
#include "nn.h"

size_t bk_scratch_adder(const bk_model *m, const hone_node *n)
{
    (void)m;
    hone_ctx ctx;
    hone_rt_window w;
    int64_t g;
    hone_ctx_init(&ctx);
    int64_t c = n->in[0]->dims[1];
    if (n->in[0]->dtype != HONE_DT_FLOAT || bk_conv_window(&ctx, n, &w, &g))
        return 0;
    return hone_rt_adder_scratch(&w, c, g, bk_conv_tile_cols(&w, c, g)) * sizeof(float);
}

hone_status bk_lower_adder(bk_lower *L)
{
    hone_rt_window w;
    int64_t g;
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    if (x->dtype != HONE_DT_FLOAT || bk_in(L, 1)->dtype != HONE_DT_FLOAT)
        return bk_unsupported(L, "Adder2d is compiled for float32 only");
    hone_status st = bk_conv_window(L->ctx, L->node, &w, &g);
    if (st)
        return st;
    LLVMTypeRef pt[10] = {L->ptr, L->i64, L->i64, L->i64, L->i64, L->ptr, L->ptr, L->ptr, L->ptr, L->i64};
    LLVMValueRef a[10] = {bk_global_bytes(L, &w, sizeof w, "window"), bk_i64(L, x->dims[0]),
                          bk_i64(L, x->dims[1]), bk_i64(L, y->dims[1]), bk_i64(L, g), L->in[0],
                          L->in[1], L->out[0], L->scratch,
                          bk_i64(L, bk_conv_tile_cols(&w, x->dims[1], g))};
    bk_call(L, "hone_rt_adder", L->vd, pt, 10, a);
    return HONE_OK;
}

hone_status bk_lower_signed_power(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    if (x->dtype != HONE_DT_FLOAT || bk_in(L, 1)->dtype != HONE_DT_FLOAT)
        return bk_unsupported(L, "SignedPower is compiled for float32 only");
    int64_t n = 1;
    for (int d = 0; d < x->rank; d++)
        n *= x->dims[d];
    LLVMTypeRef pt[4] = {L->i64, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[4] = {bk_i64(L, n), L->in[0], L->in[1], L->out[0]};
    bk_call(L, "hone_rt_signed_power", L->vd, pt, 4, a);
    return HONE_OK;
}
