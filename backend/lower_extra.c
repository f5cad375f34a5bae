/*
 * The less common ops: loop nests for the data movement ones and calls into
 * runtime/extra.c for the rest, each matching the interpreter's op bit for
 * bit (the interpreter's file is named at each op).
 *
 *   GridSample       hone_rt_gridsample (geometry as a constant global)
 *   Einsum           the equation's contraction as a loop nest over its labels
 *                    (frontend/ops/einsum.c plans it): output labels outside,
 *                    summed labels inside, products and sums in double
 *                    (floats) or wrapping int64 (integers), in the
 *                    interpreter's order; transposes, traces, diagonals,
 *                    inner products and batch matmuls are all this nest
 *   OneHot           fill with the off value, then the on value at each index
 *   TopK             hone_rt_topk, a stable sort per slice in scratch
 *   ReverseSequence  per (batch, step) a block copy from the mirrored step;
 *                    lengths checked at run time
 *   MaxUnpool        zero fill, then a scatter at the checked indices
 *   Det              hone_rt_det, LU with partial pivoting in scratch
 *   MVN              hone_rt_mvn, group sums in scratch
 *   BatchNormalization (training mode), MaxPool over int8/uint8: kernels,
 *                    reached from lower_nn.c's lowering of those ops
 *   Dropout          with a mask or a training_mode input: a copy and an
 *                    all-true mask; a training-mode Dropout with a nonzero
 *                    ratio draws random numbers, which compiled code does
 *                    not (unsupported when known at compile time, status 1
 *                    at run time else, as the interpreter fails)
 *   Unique, NonZero, Compress: unsupported, their output shapes depend on
 *                    the input values
 */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "hone_rt.h"
#include "misc.h"
#include "nn.h"

static int norm_axis(int64_t a, int rank)
{
    return (int)(a < 0 ? a + rank : a);
}

static int64_t span(const int64_t *d, int a, int b)
{
    int64_t p = 1;
    for (int i = a; i < b; i++)
        p *= d[i];
    return p;
}

static bool is_unsigned(hone_dtype dt)
{
    return dt == HONE_DT_BOOL || (hone_dtype_is_int(dt) && !hone_dtype_is_signed(dt));
}

static LLVMValueRef load_at(bk_lower *L, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildLoad2(L->b, t, bk_gep(L, t, base, off), "");
}

/* The runtime element type of dt, or -1. */
static int rt_elem(hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_FLOAT: return HONE_RT_F32;
    case HONE_DT_DOUBLE: return HONE_RT_F64;
    case HONE_DT_INT8: return HONE_RT_I8;
    case HONE_DT_UINT8: return HONE_RT_U8;
    case HONE_DT_INT16: return HONE_RT_I16;
    case HONE_DT_UINT16: return HONE_RT_U16;
    case HONE_DT_INT32: return HONE_RT_I32;
    case HONE_DT_UINT32: return HONE_RT_U32;
    case HONE_DT_INT64: return HONE_RT_I64;
    case HONE_DT_UINT64: return HONE_RT_U64;
    default: return -1;
    }
}

/* Fails unless every present input in [0, n_in) is float32 or float64, all alike. */
static hone_status need_f32_f64(bk_lower *L, int n_in)
{
    hone_dtype dt = bk_in(L, 0)->dtype;
    for (int i = 0; i < n_in; i++) {
        const hone_value *v = bk_in(L, i);
        if (v && ((v->dtype != HONE_DT_FLOAT && v->dtype != HONE_DT_DOUBLE) || v->dtype != dt))
            return bk_unsupported(L, "only float32 and float64 are compiled (input %d is %s)", i,
                                  hone_dtype_onnx_name(v->dtype));
    }
    return HONE_OK;
}

/* ===================== GridSample (frontend/ops/gridsample.c) ===================== */

hone_status bk_lower_grid_sample(bk_lower *L)
{
    static const char *const modes[] = {"bilinear", "nearest", "bicubic"};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    const hone_value *x = bk_in(L, 0), *gr = bk_in(L, 1);
    hone_status st = need_f32_f64(L, 2);
    if (st)
        return st;
    int mode = bk_find_name(hone_attr_str(L->node, "mode", "bilinear"), modes, 3);
    int pad = bk_find_name(hone_attr_str(L->node, "padding_mode", "zeros"), pads, 3);
    if (x->rank != 4 || gr->rank != 4 || mode < 0 || pad < 0)
        return bk_unsupported(L, "rank %d input or mode '%s' / padding_mode '%s'", x->rank,
                              hone_attr_str(L->node, "mode", "bilinear"),
                              hone_attr_str(L->node, "padding_mode", "zeros"));
    hone_rt_gs_geo g = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], gr->dims[1], gr->dims[2],
                        mode, pad, hone_attr_int(L->node, "align_corners", 0) != 0,
                        x->dtype == HONE_DT_DOUBLE};
    LLVMTypeRef pt[4] = {L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[4] = {bk_global_bytes(L, &g, sizeof g, "gridsample"), L->in[0], L->in[1], L->out[0]};
    bk_call(L, "hone_rt_gridsample", L->vd, pt, 4, a);
    return HONE_OK;
}

/* ===================== Einsum (frontend/ops/einsum.c) ===================== */

typedef struct ein_body {
    const hone_einsum_nest *e;
    LLVMTypeRef t[HONE_EINSUM_MAX_IN], at;   /* operand types, accumulator type */
    bool fp, uns[HONE_EINSUM_MAX_IN];
    LLVMValueRef acc, base[HONE_EINSUM_MAX_IN];
} ein_body;

/* One step of the summed labels: acc += the product of the operands (offs relative to base). */
static void ein_term(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    ein_body *b = user;
    LLVMValueRef p = NULL;
    for (int k = 0; k < b->e->nin; k++) {
        LLVMValueRef v = load_at(L, b->t[k], L->in[k], LLVMBuildAdd(L->b, b->base[k], offs[k], ""));
        v = b->fp ? LLVMBuildFPCast(L->b, v, b->at, "") : LLVMBuildIntCast2(L->b, v, b->at, !b->uns[k], "");
        p = !p ? v : b->fp ? LLVMBuildFMul(L->b, p, v, "") : LLVMBuildMul(L->b, p, v, "");
    }
    LLVMValueRef cur = LLVMBuildLoad2(L->b, b->at, b->acc, "");
    LLVMBuildStore(L->b, b->fp ? LLVMBuildFAdd(L->b, cur, p, "") : LLVMBuildAdd(L->b, cur, p, ""), b->acc);
    (void)ivs;
}

/* One output element at offs[0]: the sum over the summed labels. */
static void ein_elem(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    ein_body *b = user;
    const hone_einsum_nest *e = b->e;
    LLVMBuildStore(L->b, LLVMConstNull(b->at), b->acc);
    bk_nest n = {.rank = e->n - e->nout, .n_ops = e->nin};
    for (int i = 0; i < n.rank; i++)
        n.dims[i] = e->dims[e->nout + i];
    for (int k = 0; k < e->nin; k++) {
        b->base[k] = offs[k + 1];
        for (int i = 0; i < n.rank; i++)
            n.strides[k][i] = e->str[k][e->nout + i];
    }
    bk_nest_emit(L, &n, ein_term, b);
    const hone_value *y = bk_out(L, 0);
    LLVMTypeRef yt = bk_type(L, y->dtype);
    LLVMValueRef s = LLVMBuildLoad2(L->b, b->at, b->acc, "");
    s = b->fp ? LLVMBuildFPCast(L->b, s, yt, "") : LLVMBuildIntCast2(L->b, s, yt, 1, "");
    LLVMBuildStore(L->b, s, bk_gep(L, yt, L->out[0], offs[0]));
    (void)ivs;
}

hone_status bk_lower_einsum(bk_lower *L)
{
    hone_tinfo ti[HONE_EINSUM_MAX_IN];
    const hone_tinfo *pi[HONE_EINSUM_MAX_IN];
    const hone_node *nd = L->node;
    const hone_value *y = bk_out(L, 0);
    if (nd->n_in > HONE_EINSUM_MAX_IN || nd->n_in + 1 > BK_MAX_OPERANDS)
        return bk_unsupported(L, "%d operands", nd->n_in);
    if (y->dtype != HONE_DT_FLOAT && y->dtype != HONE_DT_DOUBLE && !hone_dtype_is_int(y->dtype))
        return bk_unsupported(L, "element type %s", hone_dtype_onnx_name(y->dtype));
    for (int k = 0; k < nd->n_in; k++) {
        const hone_value *v = bk_in(L, k);
        ti[k] = (hone_tinfo){v->dtype, v->rank, {0}, NULL};
        memcpy(ti[k].dims, v->dims, sizeof(int64_t) * (size_t)v->rank);
        pi[k] = &ti[k];
    }
    hone_einsum_nest e;
    hone_status st = hone_einsum_nest_of(L->ctx, nd, nd->n_in, pi, &e);
    if (st)
        return st;
    if (e.n - e.nout > BK_MAX_AXES)
        return bk_unsupported(L, "%d summed labels (at most %d)", e.n - e.nout, BK_MAX_AXES);
    ein_body b = {&e, {0}, NULL, hone_dtype_is_float(y->dtype)};
    b.at = b.fp ? L->f64 : L->i64;
    for (int k = 0; k < nd->n_in; k++) {
        b.t[k] = bk_type(L, bk_in(L, k)->dtype);
        b.uns[k] = is_unsigned(bk_in(L, k)->dtype);
    }
    b.acc = LLVMBuildAlloca(L->b, b.at, "acc");
    bk_nest n = {.rank = e.nout, .n_ops = e.nin + 1};
    memcpy(n.dims, e.dims, sizeof(int64_t) * (size_t)e.nout);
    bk_strides(e.nout, e.dims, n.strides[0]);
    for (int k = 0; k < e.nin; k++)
        memcpy(n.strides[k + 1], e.str[k], sizeof(int64_t) * (size_t)e.nout);
    bk_nest_emit(L, &n, ein_elem, &b);
    return HONE_OK;
}

/* ===================== OneHot (frontend/ops/tensor_index.c) ===================== */

/* The index at k as double, then truncated toward zero unless |v| >= depth + 1 (then depth). */
static LLVMValueRef onehot_index(bk_lower *L, LLVMValueRef k, int64_t depth)
{
    const hone_value *ix = bk_in(L, 0);
    LLVMTypeRef it = bk_type(L, ix->dtype);
    LLVMValueRef v = load_at(L, it, L->in[0], k);
    if (!bk_is_float_type(it))
        v = is_unsigned(ix->dtype) ? LLVMBuildUIToFP(L->b, v, L->f64, "") : LLVMBuildSIToFP(L->b, v, L->f64, "");
    else
        v = LLVMBuildFPCast(L->b, v, L->f64, "");
    LLVMValueRef a = bk_intrinsic(L, "llvm.fabs", L->f64, &v, 1);
    LLVMValueRef small = LLVMBuildFCmp(L->b, LLVMRealOLT, a, LLVMConstReal(L->f64, (double)depth + 1), "");
    LLVMValueRef safe = LLVMBuildSelect(L->b, small, v, LLVMConstReal(L->f64, 0), "");
    return LLVMBuildSelect(L->b, small, LLVMBuildFPToSI(L->b, safe, L->i64, ""), bk_i64(L, depth), "");
}

/* *p = v when cond holds. */
static void store_if(bk_lower *L, LLVMValueRef cond, LLVMValueRef v, LLVMValueRef p)
{
    LLVMBasicBlockRef wr = LLVMAppendBasicBlockInContext(L->c, L->fn, "write");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(L->c, L->fn, "next");
    LLVMBuildCondBr(L->b, cond, wr, next);
    LLVMPositionBuilderAtEnd(L->b, wr);
    LLVMBuildStore(L->b, v, p);
    LLVMBuildBr(L->b, next);
    LLVMPositionBuilderAtEnd(L->b, next);
}

/* OneHot: indices[q..], depth, values[off, on] -> y with depth inserted at axis;
 * an index outside [-depth, depth) leaves its row all off. */
hone_status bk_lower_onehot(bk_lower *L)
{
    const hone_value *y = bk_out(L, 0);
    int axis = norm_axis(hone_attr_int(L->node, "axis", -1), y->rank);
    int64_t depth = y->dims[axis], inner = span(y->dims, axis + 1, y->rank), ni = bk_numel(bk_in(L, 0));
    LLVMTypeRef t = bk_type(L, y->dtype);
    if (!bk_numel(y))
        return HONE_OK;
    LLVMValueRef off = load_at(L, t, L->in[2], bk_i64(L, 0)), on = load_at(L, t, L->in[2], bk_i64(L, 1));
    bk_loop lf, lk;
    LLVMValueRef i = bk_loop_begin(L, bk_numel(y), &lf);
    LLVMBuildStore(L->b, off, bk_gep(L, t, L->out[0], i));
    bk_loop_end(L, &lf);
    if (!ni)
        return HONE_OK;
    LLVMValueRef k = bk_loop_begin(L, ni, &lk);
    LLVMValueRef j = onehot_index(L, k, depth);
    LLVMValueRef ok = LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntSGE, j, bk_i64(L, -depth), ""),
                                   LLVMBuildICmp(L->b, LLVMIntSLT, j, bk_i64(L, depth), ""), "");
    LLVMValueRef neg = LLVMBuildICmp(L->b, LLVMIntSLT, j, bk_i64(L, 0), "");
    j = LLVMBuildSelect(L->b, neg, LLVMBuildAdd(L->b, j, bk_i64(L, depth), ""), j, "");
    LLVMValueRef outer = LLVMBuildUDiv(L->b, k, bk_i64(L, inner), "");
    LLVMValueRef in = LLVMBuildURem(L->b, k, bk_i64(L, inner), "");
    LLVMValueRef row = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, outer, bk_i64(L, depth), ""), j, "");
    LLVMValueRef at = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, row, bk_i64(L, inner), ""), in, "");
    store_if(L, ok, on, bk_gep(L, t, L->out[0], at));
    bk_loop_end(L, &lk);
    return HONE_OK;
}

/* ===================== TopK (frontend/ops/reduce_axis.c) ===================== */

size_t bk_scratch_topk(const bk_model *m, const hone_node *n)
{
    const hone_value *x = n->in[0];
    int axis = norm_axis(hone_attr_int(n, "axis", -1), x->rank);
    (void)m;
    return x->rank > 0 ? 2 * (size_t)x->dims[axis] * sizeof(int64_t) : 0;
}

/* TopK: values and indices of the k first of each slice along axis in a stable sort. */
hone_status bk_lower_topk(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    int et = rt_elem(x->dtype);
    if (et < 0 || x->rank < 1)
        return bk_unsupported(L, "element type %s, rank %d", hone_dtype_onnx_name(x->dtype), x->rank);
    if (!bk_out(L, 1) || !bk_out(L, 0))
        return bk_unsupported(L, "an output is not asked for");
    int axis = norm_axis(hone_attr_int(L->node, "axis", -1), x->rank);
    int64_t outer = span(x->dims, 0, axis), inner = span(x->dims, axis + 1, x->rank);
    if (!bk_numel(y))
        return HONE_OK;
    LLVMTypeRef pt[10] = {L->i32, L->i64, L->i64, L->i64, L->i64, L->i32, L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[10] = {bk_i32(L, et), bk_i64(L, outer), bk_i64(L, x->dims[axis]), bk_i64(L, inner),
                          bk_i64(L, y->dims[axis]), bk_i32(L, hone_attr_int(L->node, "largest", 1) != 0),
                          L->in[0], L->out[0], L->out[1], L->scratch};
    bk_call(L, "hone_rt_topk", L->vd, pt, 10, a);
    return HONE_OK;
}

/* ===================== ReverseSequence (frontend/ops/tensor_layout.c) ===================== */

/* y[b, t] = x[b, t < len[b] ? len[b] - 1 - t : t] per block of the inner dims;
 * a length outside [0, T] fails the node. */
hone_status bk_lower_reverse_sequence(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *lv = bk_in(L, 1);
    int ta = (int)hone_attr_int(L->node, "time_axis", 0), ba = (int)hone_attr_int(L->node, "batch_axis", 1);
    int64_t T = x->dims[ta], B = x->dims[ba], inner = span(x->dims, 2, x->rank);
    int64_t ts = ta == 0 ? B * inner : inner, bs = ba == 0 ? T * inner : inner;
    int64_t es = (int64_t)hone_dtype_size(x->dtype);
    if (!T || !B || !inner)
        return HONE_OK;
    bk_loop lb, lt;
    LLVMValueRef b = bk_loop_begin(L, B, &lb);
    LLVMValueRef len = LLVMBuildIntCast2(L->b, load_at(L, bk_type(L, lv->dtype), L->in[1], b), L->i64,
                                         !is_unsigned(lv->dtype), "");
    bk_check_or_fail(L, LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntSGE, len, bk_i64(L, 0), ""),
                                     LLVMBuildICmp(L->b, LLVMIntSLE, len, bk_i64(L, T), ""), ""));
    LLVMValueRef t = bk_loop_begin(L, T, &lt);
    LLVMValueRef rev = LLVMBuildICmp(L->b, LLVMIntSLT, t, len, "");
    LLVMValueRef mirror = LLVMBuildSub(L->b, LLVMBuildSub(L->b, len, bk_i64(L, 1), ""), t, "");
    LLVMValueRef src_t = LLVMBuildSelect(L->b, rev, mirror, t, "");
    LLVMValueRef bo = LLVMBuildMul(L->b, b, bk_i64(L, bs * es), "");
    LLVMValueRef dst = LLVMBuildAdd(L->b, bo, LLVMBuildMul(L->b, t, bk_i64(L, ts * es), ""), "");
    LLVMValueRef src = LLVMBuildAdd(L->b, bo, LLVMBuildMul(L->b, src_t, bk_i64(L, ts * es), ""), "");
    bk_memcpy(L, bk_gep(L, L->i8, L->out[0], dst), bk_gep(L, L->i8, L->in[0], src), inner * es);
    bk_loop_end(L, &lt);
    bk_loop_end(L, &lb);
    return HONE_OK;
}

/* ===================== MaxUnpool (frontend/ops/nn_pool.c) ===================== */

/* Fails the node at run time unless the output_shape input holds y's extents. */
static void unpool_check_shape(bk_lower *L, const hone_value *y)
{
    const hone_value *os = bk_in(L, 2);
    LLVMTypeRef it = bk_type(L, os->dtype);
    LLVMValueRef ok = LLVMConstInt(L->i1, bk_numel(os) == y->rank, 0);
    for (int d = 0; d < y->rank && d < bk_numel(os); d++) {
        LLVMValueRef v = LLVMBuildIntCast2(L->b, load_at(L, it, L->in[2], bk_i64(L, d)), L->i64, 1, "");
        ok = LLVMBuildAnd(L->b, ok, LLVMBuildICmp(L->b, LLVMIntEQ, v, bk_i64(L, y->dims[d]), ""), "");
    }
    bk_check_or_fail(L, ok);
}

/* Moves flat index i of shape from[] to the same coordinates in to[]; the
 * node fails when they lie outside either (as the interpreter's reindex). */
static LLVMValueRef unpool_reindex(bk_lower *L, LLVMValueRef i, int rank, const int64_t *from,
                                   const int64_t *to)
{
    LLVMValueRef out = bk_i64(L, 0), ok = LLVMBuildICmp(L->b, LLVMIntSGE, i, bk_i64(L, 0), "");
    int64_t scale = 1;
    i = LLVMBuildSelect(L->b, ok, i, bk_i64(L, 0), "");
    for (int d = rank - 1; d >= 0; d--) {
        LLVMValueRef c = LLVMBuildURem(L->b, i, bk_i64(L, from[d]), "");
        i = LLVMBuildUDiv(L->b, i, bk_i64(L, from[d]), "");
        ok = LLVMBuildAnd(L->b, ok, LLVMBuildICmp(L->b, LLVMIntSLT, c, bk_i64(L, to[d]), ""), "");
        out = LLVMBuildAdd(L->b, out, LLVMBuildMul(L->b, c, bk_i64(L, scale), ""), "");
        scale *= to[d];
    }
    bk_check_or_fail(L, LLVMBuildAnd(L->b, ok, LLVMBuildICmp(L->b, LLVMIntEQ, i, bk_i64(L, 0), ""), ""));
    return out;
}

/* MaxUnpool: y zeroed, then y[reindex(I[i])] = X[i]. */
hone_status bk_lower_maxunpool(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *ix = bk_in(L, 1), *y = bk_out(L, 0);
    int64_t dflt[HONE_MAX_RANK];
    if (ix->dtype != HONE_DT_INT64 || x->rank < 3 || x->rank - 2 > HONE_RT_MAX_SPATIAL)
        return bk_unsupported(L, "indices of type %s, rank %d", hone_dtype_onnx_name(ix->dtype), x->rank);
    hone_tinfo xi = {x->dtype, x->rank, {0}, NULL};
    memcpy(xi.dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    hone_status st = nn_unpool_dims(L->ctx, L->node, &xi, dflt);
    if (st)
        return st;
    bk_memset(L, L->out[0], 0, (int64_t)bk_bytes(y));
    if (bk_in(L, 2) && !bk_in_known(L, 2))
        unpool_check_shape(L, y);
    if (!bk_numel(x))
        return HONE_OK;
    LLVMTypeRef t = bk_type(L, x->dtype);
    bk_loop li;
    LLVMValueRef i = bk_loop_begin(L, bk_numel(x), &li);
    LLVMValueRef at = unpool_reindex(L, load_at(L, L->i64, L->in[1], i), x->rank, dflt, y->dims);
    LLVMBuildStore(L->b, load_at(L, t, L->in[0], i), bk_gep(L, t, L->out[0], at));
    bk_loop_end(L, &li);
    return HONE_OK;
}

/* ===================== Det (frontend/ops/misc.c) ===================== */

size_t bk_scratch_det(const bk_model *m, const hone_node *n)
{
    const hone_value *x = n->in[0];
    int64_t k = x->rank >= 2 ? x->dims[x->rank - 1] : 0;
    (void)m;
    return (size_t)(k * k) * sizeof(double);
}

hone_status bk_lower_det(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    hone_status st = need_f32_f64(L, 1);
    if (st)
        return st;
    int64_t m = x->dims[x->rank - 1], batch = bk_numel(bk_out(L, 0));
    if (!batch)
        return HONE_OK;
    LLVMTypeRef pt[6] = {L->i64, L->i64, L->i32, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[6] = {bk_i64(L, batch), bk_i64(L, m), bk_i32(L, x->dtype == HONE_DT_DOUBLE), L->in[0],
                         L->out[0], m ? L->scratch : LLVMConstNull(L->ptr)};
    bk_call(L, "hone_rt_det", L->vd, pt, 6, a);
    return HONE_OK;
}

/* ===================== MeanVarianceNormalization (frontend/ops/nn_norm.c) ===================== */

/* The group geometry of node n's input (axes default [0, 2, 3]); false when an axis is out of range. */
static bool mvn_geo(const hone_node *n, hone_rt_mvn_geo *g)
{
    static const int64_t dflt[] = {0, 2, 3};
    const hone_value *x = n->in[0];
    const int64_t *ax = dflt;
    bool red[HONE_MAX_RANK] = {0};
    int cnt = hone_attr_ints(n, "axes", &ax);
    if (cnt < 0) {
        ax = dflt;
        cnt = 3;
    }
    for (int i = 0; i < cnt; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + x->rank : ax[i];
        if (a < 0 || a >= x->rank)
            return false;
        red[a] = true;
    }
    memset(g, 0, sizeof *g);
    g->rank = x->rank;
    g->numel = bk_numel(x);
    g->groups = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        g->dims[d] = x->dims[d];
        g->gstride[d] = red[d] ? 0 : g->groups;
        g->groups *= red[d] ? 1 : x->dims[d];
    }
    return true;
}

size_t bk_scratch_mvn(const bk_model *m, const hone_node *n)
{
    hone_rt_mvn_geo g;
    (void)m;
    return mvn_geo(n, &g) ? 2 * (size_t)g.groups * sizeof(double) : 0;
}

hone_status bk_lower_mvn(bk_lower *L)
{
    hone_rt_mvn_geo g;
    if (bk_in(L, 0)->dtype != HONE_DT_FLOAT || !mvn_geo(L->node, &g))
        return bk_unsupported(L, "input of type %s or axes out of range",
                              hone_dtype_onnx_name(bk_in(L, 0)->dtype));
    if (!g.numel)
        return HONE_OK;
    LLVMTypeRef pt[4] = {L->ptr, L->ptr, L->ptr, L->ptr};
    LLVMValueRef a[4] = {bk_global_bytes(L, &g, sizeof g, "mvn"), L->in[0], L->out[0], L->scratch};
    bk_call(L, "hone_rt_mvn", L->vd, pt, 4, a);
    return HONE_OK;
}

/* ===================== BatchNormalization, training mode (frontend/ops/nn_norm.c) ===================== */

size_t bk_scratch_batchnorm(const bk_model *m, const hone_node *n)
{
    (void)m;
    return n->in[0]->rank > 1 ? 2 * (size_t)n->in[0]->dims[1] * sizeof(float) : 0;
}

static LLVMValueRef out_or_null(bk_lower *L, int i)
{
    return bk_out(L, i) ? L->out[i] : LLVMConstNull(L->ptr);
}

/* Y with batch statistics; outputs 1, 2 the blended running statistics, 3, 4
 * (before opset 14) the batch mean and variance. */
hone_status bk_lower_batchnorm_train(bk_lower *L)
{
    const hone_node *n = L->node;
    const hone_value *x = bk_in(L, 0);
    for (int i = 0; i < 5; i++)
        if (!bk_in(L, i) || bk_in(L, i)->dtype != HONE_DT_FLOAT)
            return bk_unsupported(L, "training mode: only float32 is compiled (input %d)", i);
    if (x->rank < 2 || !bk_numel(x))
        return bk_unsupported(L, "training mode over an empty or rank-%d input", x->rank);
    LLVMTypeRef pt[16];
    for (int i = 0; i < 16; i++)
        pt[i] = i < 3 ? L->i64 : i == 8 || i == 9 ? L->f32 : L->ptr;
    LLVMValueRef a[16] = {bk_i64(L, x->dims[0]), bk_i64(L, x->dims[1]), bk_i64(L, nn_prod(x->dims, 2, x->rank)),
                          L->in[0], L->in[1], L->in[2], L->in[3], L->in[4],
                          bk_f32(L, hone_attr_float(n, "epsilon", 1e-5f)),
                          bk_f32(L, hone_attr_float(n, "momentum", 0.9f)), L->out[0], out_or_null(L, 1),
                          out_or_null(L, 2), out_or_null(L, 3), out_or_null(L, 4), L->scratch};
    bk_call(L, "hone_rt_bn_batch", L->vd, pt, 16, a);
    return HONE_OK;
}

/* ===================== MaxPool over int8 / uint8 (frontend/ops/nn_pool.c) ===================== */

size_t bk_scratch_pool(const bk_model *m, const hone_node *n)
{
    const hone_value *x = n->in[0], *y = n->out[0];
    (void)m;
    if (strcmp(n->op_type, "MaxPool") || (x->dtype != HONE_DT_INT8 && x->dtype != HONE_DT_UINT8))
        return 0;
    return (size_t)(bk_numel(x) + bk_numel(y)) * sizeof(float);
}

/* The float kernel over the image converted to float in scratch, converted back. */
hone_status bk_lower_maxpool_i8(bk_lower *L, const hone_rt_window *w)
{
    const hone_value *x = bk_in(L, 0);
    if (!bk_numel(x) || !bk_numel(bk_out(L, 0)))
        return HONE_OK;
    LLVMTypeRef pt[8] = {L->ptr, L->i64, L->i32, L->ptr, L->ptr, L->ptr, L->i32, L->ptr};
    LLVMValueRef a[8] = {bk_global_bytes(L, w, sizeof *w, "window"), bk_i64(L, x->dims[0] * x->dims[1]),
                         bk_i32(L, x->dtype == HONE_DT_INT8), L->in[0], L->out[0], out_or_null(L, 1),
                         bk_i32(L, hone_attr_int(L->node, "storage_order", 0) != 0), L->scratch};
    bk_call(L, "hone_rt_maxpool_i8", L->vd, pt, 8, a);
    return HONE_OK;
}

/* ===================== Dropout (frontend/ops/nn_softmax.c) ===================== */

/* Fails the node at run time when training_mode holds and the ratio is nonzero. */
static void dropout_check(bk_lower *L, const hone_value *r, const hone_tensor *rk, const hone_tensor *tk)
{
    LLVMValueRef train = tk ? LLVMConstInt(L->i1, hone_tensor_get_i64(tk, 0) != 0, 0)
                            : LLVMBuildICmp(L->b, LLVMIntNE, load_at(L, L->i8, L->in[2], bk_i64(L, 0)),
                                            LLVMConstInt(L->i8, 0, 0), "");
    LLVMValueRef pos = LLVMConstInt(L->i1, 1, 0);
    if (rk)
        pos = LLVMConstInt(L->i1, hone_tensor_get_f64(rk, 0) > 0, 0);
    else if (r && bk_numel(r)) {
        LLVMValueRef v = LLVMBuildFPCast(L->b, load_at(L, bk_type(L, r->dtype), L->in[1], bk_i64(L, 0)), L->f64, "");
        pos = LLVMBuildFCmp(L->b, LLVMRealOGT, v, LLVMConstReal(L->f64, 0), "");
    }
    bk_check_or_fail(L, LLVMBuildNot(L->b, LLVMBuildAnd(L->b, train, pos, ""), ""));
}

/* Dropout with a mask output or a training_mode input: the copy, an
 * all-true mask (1.0 before opset 10), and the run-time check above. */
hone_status bk_lower_dropout(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *m = bk_out(L, 1), *t = bk_in(L, 2);
    const hone_value *r = L->node->opset >= 12 ? bk_in(L, 1) : NULL;
    const hone_tensor *rk = r && bk_numel(r) ? bk_in_known(L, 1) : NULL;
    const hone_tensor *tk = t && bk_numel(t) ? bk_in_known(L, 2) : NULL;
    bool ratio_known = !r || !bk_numel(r) || rk;
    double ratio = rk ? hone_tensor_get_f64(rk, 0) : 0.5;
    int train = !t || !bk_numel(t) ? 0 : tk ? hone_tensor_get_i64(tk, 0) != 0 : -1; /* -1: run time */
    if (train == 1 && ratio_known && ratio > 0)
        return bk_unsupported(L, "training-mode Dropout with ratio %g draws random numbers", ratio);
    if (train)
        dropout_check(L, r, rk, tk);
    bk_memcpy(L, L->out[0], L->in[0], (int64_t)bk_bytes(x));
    if (m && bk_numel(m)) {
        LLVMTypeRef mt = bk_type(L, m->dtype);
        LLVMValueRef one = bk_is_float_type(mt) ? LLVMConstReal(mt, 1) : LLVMConstInt(mt, 1, 0);
        bk_loop lm;
        LLVMValueRef i = bk_loop_begin(L, bk_numel(m), &lm);
        LLVMBuildStore(L->b, one, bk_gep(L, mt, L->out[1], i));
        bk_loop_end(L, &lm);
    }
    return HONE_OK;
}

/* ===================== Unique, NonZero, Compress ===================== */

hone_status bk_lower_data_dependent(bk_lower *L)
{
    return bk_unsupported(L, "its output shape depends on the input values (data-dependent), "
                             "which static-shape compiled code cannot express");
}
