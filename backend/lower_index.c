/*
 * Ops driven by run-time indices, and ops with a run-time scalar parameter.
 *
 * Index inputs are read at run time (a constant index tensor is just an
 * embedded global): every index is widened to int64, counted from the end
 * when negative, and checked against its axis extent; a bad one makes the
 * node function return status 1 (PREFIX_run returns it) instead of touching
 * memory out of bounds.
 *
 *   Gather           Y[outer, j, inner] = X[outer, idx[j], inner]
 *   GatherElements   a nest over the indices: the data offset is the nest's
 *                    offset with the axis term replaced by idx * stride
 *   ScatterElements  the data copied, then the same walk writing (or
 *                    reducing: add, mul, max, min) the updates
 *   GatherND,        per index tuple of length k, a slice of data (its last
 *   ScatterND        rank - batch_dims - k dims) copied out or updated
 *   Trilu            a select on (column - row) against k, k known or loaded
 *   CumSum           a running sum per (outer, inner) slice in double (floats)
 *                    or wrapping int64; a run-time axis becomes a switch over
 *                    the rank's possible axes
 */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "ops_util.h"

static int norm_axis(int64_t a, int rank)
{
    return (int)(a < 0 ? a + rank : a);
}

static LLVMValueRef load_at(bk_lower *L, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildLoad2(L->b, t, bk_gep(L, t, base, off), "");
}

/* ===================== Gather ===================== */

/* Gather(data, indices) along axis: Y[outer, j, inner] = X[outer, idx[j], inner]. */
hone_status bk_lower_gather(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *ix = bk_in(L, 1);
    int axis = norm_axis(hone_attr_int(L->node, "axis", 0), x->rank);
    int64_t outer = 1, inner = 1, d = x->dims[axis], ni = bk_numel(ix);
    for (int i = 0; i < x->rank; i++)
        *(i < axis ? &outer : &inner) *= i == axis ? 1 : x->dims[i];
    if (!ni || !outer || !inner)
        return HONE_OK;
    LLVMTypeRef t = bk_type(L, x->dtype);
    bk_loop lo, lj, li;
    LLVMValueRef o = bk_loop_begin(L, outer, &lo), j = bk_loop_begin(L, ni, &lj);
    LLVMValueRef k = bk_load_index(L, bk_type(L, ix->dtype), L->in[1], j, d);
    LLVMValueRef src = LLVMBuildMul(L->b, LLVMBuildAdd(L->b, LLVMBuildMul(L->b, o, bk_i64(L, d), ""), k, ""),
                                    bk_i64(L, inner), "");
    LLVMValueRef dst = LLVMBuildMul(L->b, LLVMBuildAdd(L->b, LLVMBuildMul(L->b, o, bk_i64(L, ni), ""), j, ""),
                                    bk_i64(L, inner), "");
    LLVMValueRef i = bk_loop_begin(L, inner, &li);
    LLVMValueRef v = load_at(L, t, L->in[0], LLVMBuildAdd(L->b, src, i, ""));
    LLVMBuildStore(L->b, v, bk_gep(L, t, L->out[0], LLVMBuildAdd(L->b, dst, i, "")));
    bk_loop_end(L, &li);
    bk_loop_end(L, &lj);
    bk_loop_end(L, &lo);
    return HONE_OK;
}

/* ===================== scatter reductions ===================== */

typedef enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } reduction;

static int scatter_reduction(const hone_node *n)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    return bk_find_name(hone_attr_str(n, "reduction", "none"), names, 5);
}

/* Writes u into *p, or combines it with the old value under reduction r. */
static void scatter_store(bk_lower *L, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef u, int r, bool uns)
{
    if (r == RED_NONE) {
        LLVMBuildStore(L->b, u, p);
        return;
    }
    LLVMValueRef a = LLVMBuildLoad2(L->b, t, p, ""), v;
    if (bk_is_float_type(t)) {
        LLVMValueRef args[2] = {a, u};
        v = r == RED_ADD   ? LLVMBuildFAdd(L->b, a, u, "")
            : r == RED_MUL ? LLVMBuildFMul(L->b, a, u, "")
                           : bk_intrinsic(L, r == RED_MAX ? "llvm.maxnum" : "llvm.minnum", t, args, 2);
    } else {
        LLVMIntPredicate gt = uns ? LLVMIntUGT : LLVMIntSGT, lt = uns ? LLVMIntULT : LLVMIntSLT;
        v = r == RED_ADD   ? LLVMBuildAdd(L->b, a, u, "")
            : r == RED_MUL ? LLVMBuildMul(L->b, a, u, "")
                           : LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, r == RED_MAX ? gt : lt, a, u, ""), a, u, "");
    }
    LLVMBuildStore(L->b, v, p);
}

static bool unsigned_dt(hone_dtype dt)
{
    return dt == HONE_DT_BOOL || (hone_dtype_is_int(dt) && !hone_dtype_is_signed(dt));
}

/* ===================== GatherElements / ScatterElements ===================== */

typedef struct elem_body {
    LLVMTypeRef t, it;
    int64_t extent, stride;     /* along the axis of data */
    bool scatter;
    int red;
    bool uns;
} elem_body;

/* offs: [0] the written tensor, [1] indices, [2] the read tensor. Gathers
 * read data at offs[2] + idx * stride; scatters write there. */
static void elem_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    elem_body *b = user;
    LLVMValueRef k = bk_load_index(L, b->it, L->in[1], offs[1], b->extent);
    LLVMValueRef moved = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, k, bk_i64(L, b->stride), ""),
                                      b->scatter ? offs[0] : offs[2], "");
    if (!b->scatter) {
        LLVMBuildStore(L->b, load_at(L, b->t, L->in[0], moved), bk_gep(L, b->t, L->out[0], offs[0]));
        return;
    }
    LLVMValueRef u = load_at(L, b->t, L->in[2], offs[2]);
    scatter_store(L, b->t, bk_gep(L, b->t, L->out[0], moved), u, b->red, b->uns);
}

/* The nest over the indices: data-shaped operand strided with the axis term
 * dropped, indices and the index-shaped operand contiguous. */
static void elem_walk(bk_lower *L, bool scatter, int red)
{
    const hone_value *x = bk_in(L, 0), *ix = bk_in(L, 1);
    int axis = norm_axis(hone_attr_int(L->node, "axis", 0), x->rank);
    int64_t xs[HONE_MAX_RANK];
    bk_strides(x->rank, x->dims, xs);
    bk_nest n = {.rank = ix->rank, .n_ops = 3};
    memcpy(n.dims, ix->dims, sizeof(int64_t) * (size_t)ix->rank);
    bk_strides(ix->rank, ix->dims, n.strides[1]);
    int data_op = scatter ? 0 : 2;
    memcpy(n.strides[2 - data_op], n.strides[1], sizeof n.strides[1]);
    memcpy(n.strides[data_op], xs, sizeof xs);
    n.strides[data_op][axis] = 0;
    elem_body b = {bk_type(L, x->dtype), bk_type(L, ix->dtype), x->dims[axis], xs[axis], scatter, red,
                   unsigned_dt(x->dtype)};
    bk_nest_emit(L, &n, elem_emit_body, &b);
}

hone_status bk_lower_gather_elements(bk_lower *L)
{
    elem_walk(L, false, RED_NONE);
    return HONE_OK;
}

hone_status bk_lower_scatter_elements(bk_lower *L)
{
    int red = scatter_reduction(L->node);
    if (red < 0)
        return bk_unsupported(L, "reduction '%s'", hone_attr_str(L->node, "reduction", ""));
    bk_memcpy(L, L->out[0], L->in[0], (int64_t)bk_bytes(bk_in(L, 0)));
    elem_walk(L, true, red);
    return HONE_OK;
}

/* ===================== GatherND / ScatterND ===================== */

static int64_t span(const int64_t *d, int a, int b)
{
    int64_t p = 1;
    for (int i = a; i < b; i++)
        p *= d[i];
    return p;
}

/* Per index tuple t: the data offset (checked indices, plus its batch's
 * base), then the slice copied out (gather) or applied (scatter). */
static void nd_walk(bk_lower *L, int batch, bool scatter, int red)
{
    const hone_value *x = bk_in(L, 0), *ix = bk_in(L, 1);
    int k = (int)ix->dims[ix->rank - 1];
    int64_t xs[HONE_MAX_RANK], nb = span(x->dims, 0, batch), per = span(x->dims, batch, x->rank);
    int64_t slice = span(x->dims, batch + k, x->rank), tuples = bk_numel(ix) / (k ? k : 1);
    int64_t m = nb ? tuples / nb : 0;
    if (!tuples || !slice)
        return;
    bk_strides(x->rank, x->dims, xs);
    LLVMTypeRef t = bk_type(L, x->dtype), it = bk_type(L, ix->dtype);
    bk_loop lt, ls;
    LLVMValueRef tv = bk_loop_begin(L, tuples, &lt);
    LLVMValueRef off = LLVMBuildMul(L->b, LLVMBuildUDiv(L->b, tv, bk_i64(L, m ? m : 1), ""), bk_i64(L, per), "");
    for (int j = 0; j < k; j++) {
        LLVMValueRef at = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, tv, bk_i64(L, k), ""), bk_i64(L, j), "");
        LLVMValueRef v = bk_load_index(L, it, L->in[1], at, x->dims[batch + j]);
        off = LLVMBuildAdd(L->b, off, LLVMBuildMul(L->b, v, bk_i64(L, xs[batch + j]), ""), "");
    }
    LLVMValueRef so = LLVMBuildMul(L->b, tv, bk_i64(L, slice), "");
    LLVMValueRef i = bk_loop_begin(L, slice, &ls);
    LLVMValueRef src = LLVMBuildAdd(L->b, scatter ? so : off, i, "");
    LLVMValueRef dst = LLVMBuildAdd(L->b, scatter ? off : so, i, "");
    LLVMValueRef v = load_at(L, t, scatter ? L->in[2] : L->in[0], src);
    scatter_store(L, t, bk_gep(L, t, L->out[0], dst), v, scatter ? red : RED_NONE, unsigned_dt(x->dtype));
    bk_loop_end(L, &ls);
    bk_loop_end(L, &lt);
}

hone_status bk_lower_gather_nd(bk_lower *L)
{
    nd_walk(L, (int)hone_attr_int(L->node, "batch_dims", 0), false, RED_NONE);
    return HONE_OK;
}

hone_status bk_lower_scatter_nd(bk_lower *L)
{
    int red = scatter_reduction(L->node);
    if (red < 0)
        return bk_unsupported(L, "reduction '%s'", hone_attr_str(L->node, "reduction", ""));
    bk_memcpy(L, L->out[0], L->in[0], (int64_t)bk_bytes(bk_in(L, 0)));
    nd_walk(L, 0, true, red);
    return HONE_OK;
}

/* ===================== Trilu ===================== */

typedef struct trilu_body {
    LLVMTypeRef t;
    LLVMValueRef k;
    int rank;
    bool upper;
} trilu_body;

static void trilu_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    trilu_body *b = user;
    LLVMValueRef d = LLVMBuildSub(L->b, ivs[b->rank - 1], ivs[b->rank - 2], "");
    LLVMValueRef keep = LLVMBuildICmp(L->b, b->upper ? LLVMIntSGE : LLVMIntSLE, d, b->k, "");
    LLVMValueRef v = load_at(L, b->t, L->in[0], offs[0]);
    LLVMBuildStore(L->b, LLVMBuildSelect(L->b, keep, v, LLVMConstNull(b->t), ""),
                   bk_gep(L, b->t, L->out[0], offs[0]));
}

/* Trilu: keeps the upper (col - row >= k) or lower (col - row <= k) triangle. */
hone_status bk_lower_trilu(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *kv = bk_in(L, 1);
    trilu_body b = {bk_type(L, x->dtype), bk_i64(L, 0), x->rank, hone_attr_int(L->node, "upper", 1) != 0};
    if (x->rank < 2)
        return bk_unsupported(L, "rank %d input", x->rank);
    if (kv && bk_numel(kv) > 0)
        b.k = LLVMBuildIntCast2(L->b, LLVMBuildLoad2(L->b, bk_type(L, kv->dtype), L->in[1], ""), L->i64, 1, "");
    bk_nest n = {.rank = x->rank, .n_ops = 1, .keep_axes = true};
    memcpy(n.dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    bk_strides(x->rank, x->dims, n.strides[0]);
    bk_nest_emit(L, &n, trilu_emit_body, &b);
    return HONE_OK;
}

/* ===================== CumSum ===================== */

/* The running sums along axis a: accumulator in an alloca (double or int64). */
static void cumsum_axis(bk_lower *L, int a, LLVMValueRef acc)
{
    const hone_value *x = bk_in(L, 0);
    bool excl = hone_attr_int(L->node, "exclusive", 0), rev = hone_attr_int(L->node, "reverse", 0);
    bool fp = hone_dtype_is_float(x->dtype);
    int64_t outer = span(x->dims, 0, a), n = x->dims[a], inner = span(x->dims, a + 1, x->rank);
    if (!outer || !n || !inner)
        return;
    LLVMTypeRef t = bk_type(L, x->dtype), at = fp ? L->f64 : L->i64;
    bk_loop lo, li, lj;
    LLVMValueRef o = bk_loop_begin(L, outer, &lo), i = bk_loop_begin(L, inner, &li);
    LLVMValueRef base = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, o, bk_i64(L, n * inner), ""), i, "");
    LLVMBuildStore(L->b, LLVMConstNull(at), acc);
    LLVMValueRef jj = bk_loop_begin(L, n, &lj);
    LLVMValueRef j = rev ? LLVMBuildSub(L->b, bk_i64(L, n - 1), jj, "") : jj;
    LLVMValueRef off = LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, j, bk_i64(L, inner), ""), "");
    LLVMValueRef v = load_at(L, t, L->in[0], off), cur = LLVMBuildLoad2(L->b, at, acc, "");
    v = fp ? LLVMBuildFPCast(L->b, v, at, "") : LLVMBuildIntCast2(L->b, v, at, !unsigned_dt(x->dtype), "");
    LLVMValueRef next = fp ? LLVMBuildFAdd(L->b, cur, v, "") : LLVMBuildAdd(L->b, cur, v, "");
    LLVMValueRef out = excl ? cur : next;
    out = fp ? LLVMBuildFPCast(L->b, out, t, "") : LLVMBuildIntCast2(L->b, out, t, 1, "");
    LLVMBuildStore(L->b, out, bk_gep(L, t, L->out[0], off));
    LLVMBuildStore(L->b, next, acc);
    bk_loop_end(L, &lj);
    bk_loop_end(L, &li);
    bk_loop_end(L, &lo);
}

/* CumSum: a known axis is lowered directly; a run-time one switches over the
 * rank's axes (status 1 when out of range). */
hone_status bk_lower_cumsum(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *av = bk_in(L, 1);
    const hone_tensor *ak = bk_in_known(L, 1);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, hone_dtype_is_float(x->dtype) ? L->f64 : L->i64, "acc");
    if (ak) {
        int64_t a = hone_tensor_get_i64(ak, 0);
        if (a < -x->rank || a >= x->rank)
            return hone_node_fail(L->ctx, L->node, HONE_ERR_SHAPE, "axis %lld is out of range", (long long)a);
        cumsum_axis(L, norm_axis(a, x->rank), acc);
        return HONE_OK;
    }
    LLVMValueRef a = LLVMBuildIntCast2(L->b, LLVMBuildLoad2(L->b, bk_type(L, av->dtype), L->in[1], ""), L->i64, 1, "");
    LLVMValueRef neg = LLVMBuildICmp(L->b, LLVMIntSLT, a, bk_i64(L, 0), "");
    a = LLVMBuildSelect(L->b, neg, LLVMBuildAdd(L->b, a, bk_i64(L, x->rank), ""), a, "");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->c, L->fn, "badaxis");
    LLVMBasicBlockRef end = LLVMAppendBasicBlockInContext(L->c, L->fn, "end");
    LLVMValueRef sw = LLVMBuildSwitch(L->b, a, bad, (unsigned)x->rank);
    for (int k = 0; k < x->rank; k++) {
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(L->c, L->fn, "axis");
        LLVMAddCase(sw, bk_i64(L, k), bb);
        LLVMPositionBuilderAtEnd(L->b, bb);
        cumsum_axis(L, k, acc);
        LLVMBuildBr(L->b, end);
    }
    LLVMPositionBuilderAtEnd(L->b, bad);
    LLVMBuildRet(L->b, bk_i32(L, 1));
    LLVMPositionBuilderAtEnd(L->b, end);
    return HONE_OK;
}

/* ===================== NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss ===================== */

/* The loss geometry: input [N, C, D...] seen as [N, C, D], labels [N, D]. */
typedef struct loss_geo {
    int64_t n, c, d;
    LLVMTypeRef t;
    bool sce;
    LLVMValueRef sl, sw;    /* allocas: running loss and weight sums (double) */
} loss_geo;

static LLVMValueRef x_at(bk_lower *L, const loss_geo *g, LLVMValueRef off)
{
    return LLVMBuildFPCast(L->b, load_at(L, g->t, L->in[0], off), L->f64, "");
}

/* log-sum-exp over C at base (stride D); writes log-probabilities to output 1 when asked. */
static LLVMValueRef log_sum_exp(bk_lower *L, const loss_geo *g, LLVMValueRef base, LLVMValueRef acc)
{
    bk_loop lc;
    LLVMBuildStore(L->b, LLVMConstReal(L->f64, -INFINITY), acc);
    LLVMValueRef c = bk_loop_begin(L, g->c, &lc);
    LLVMValueRef v = x_at(L, g, LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, c, bk_i64(L, g->d), ""), ""));
    LLVMValueRef cur = LLVMBuildLoad2(L->b, L->f64, acc, "");
    LLVMBuildStore(L->b, LLVMBuildSelect(L->b, LLVMBuildFCmp(L->b, LLVMRealOGT, v, cur, ""), v, cur, ""), acc);
    bk_loop_end(L, &lc);
    LLVMValueRef mx = LLVMBuildLoad2(L->b, L->f64, acc, "");
    LLVMBuildStore(L->b, LLVMConstReal(L->f64, 0), acc);
    c = bk_loop_begin(L, g->c, &lc);
    v = x_at(L, g, LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, c, bk_i64(L, g->d), ""), ""));
    LLVMValueRef e = bk_intrinsic(L, "llvm.exp", L->f64, (LLVMValueRef[]){LLVMBuildFSub(L->b, v, mx, "")}, 1);
    LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, acc, ""), e, ""), acc);
    bk_loop_end(L, &lc);
    LLVMValueRef s = LLVMBuildLoad2(L->b, L->f64, acc, "");
    LLVMValueRef lse = LLVMBuildFAdd(L->b, mx, bk_intrinsic(L, "llvm.log", L->f64, &s, 1), "");
    if (bk_out(L, 1)) {
        c = bk_loop_begin(L, g->c, &lc);
        LLVMValueRef off = LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, c, bk_i64(L, g->d), ""), "");
        LLVMValueRef lp = LLVMBuildFSub(L->b, x_at(L, g, off), lse, "");
        LLVMBuildStore(L->b, LLVMBuildFPCast(L->b, lp, g->t, ""), bk_gep(L, g->t, L->out[1], off));
        bk_loop_end(L, &lc);
    }
    return lse;
}

/* One position (n, j): its loss and weight; a label outside [0, C) that is
 * not ignore_index fails the node. */
static void loss_position(bk_lower *L, const loss_geo *g, LLVMValueRef n, LLVMValueRef j, LLVMValueRef acc,
                          bool none)
{
    const hone_node *nd = L->node;
    LLVMValueRef base = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, n, bk_i64(L, g->c * g->d), ""), j, "");
    LLVMValueRef lse = g->sce ? log_sum_exp(L, g, base, acc) : NULL;
    LLVMValueRef pos = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, n, bk_i64(L, g->d), ""), j, "");
    LLVMValueRef lab = LLVMBuildIntCast2(L->b, load_at(L, bk_type(L, bk_in(L, 1)->dtype), L->in[1], pos),
                                         L->i64, 1, "");
    LLVMValueRef ign = hone_attr_find(nd, "ignore_index")
                           ? LLVMBuildICmp(L->b, LLVMIntEQ, lab, bk_i64(L, hone_attr_int(nd, "ignore_index", 0)), "")
                           : LLVMConstInt(L->i1, 0, 0);
    LLVMValueRef in = LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntSGE, lab, bk_i64(L, 0), ""),
                                   LLVMBuildICmp(L->b, LLVMIntSLT, lab, bk_i64(L, g->c), ""), "");
    bk_check_or_fail(L, LLVMBuildOr(L->b, ign, in, ""));
    LLVMValueRef safe = LLVMBuildSelect(L->b, ign, bk_i64(L, 0), lab, "");
    LLVMValueRef lp = x_at(L, g, LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, safe, bk_i64(L, g->d), ""), ""));
    if (lse)
        lp = LLVMBuildFSub(L->b, lp, lse, "");
    LLVMValueRef w = LLVMConstReal(L->f64, 1);
    if (bk_in(L, 2))
        w = LLVMBuildFPCast(L->b, load_at(L, bk_type(L, bk_in(L, 2)->dtype), L->in[2], safe), L->f64, "");
    w = LLVMBuildSelect(L->b, ign, LLVMConstReal(L->f64, 0), w, "");
    LLVMValueRef loss = LLVMBuildFNeg(L->b, LLVMBuildFMul(L->b, lp, w, ""), "");
    loss = LLVMBuildSelect(L->b, ign, LLVMConstReal(L->f64, 0), loss, "");
    if (none) {
        LLVMBuildStore(L->b, LLVMBuildFPCast(L->b, loss, g->t, ""), bk_gep(L, g->t, L->out[0], pos));
        return;
    }
    LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, g->sl, ""), loss, ""), g->sl);
    LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, g->sw, ""), w, ""), g->sw);
}

/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (log-softmax over C
 * first), in double: reduction none, sum, or mean = sum(loss) / sum(weight). */
hone_status bk_lower_loss(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    const char *red = hone_attr_str(L->node, "reduction", "mean");
    bool none = !strcmp(red, "none"), sum = !strcmp(red, "sum");
    if (!hone_dtype_is_float(x->dtype) || x->rank < 2)
        return bk_unsupported(L, "input of type %s, rank %d", hone_dtype_onnx_name(x->dtype), x->rank);
    loss_geo g = {x->dims[0], x->dims[1], span(x->dims, 2, x->rank), bk_type(L, x->dtype),
                  !strcmp(L->node->op_type, "SoftmaxCrossEntropyLoss")};
    g.sl = LLVMBuildAlloca(L->b, L->f64, "sl");
    g.sw = LLVMBuildAlloca(L->b, L->f64, "sw");
    LLVMValueRef acc = LLVMBuildAlloca(L->b, L->f64, "acc");
    LLVMBuildStore(L->b, LLVMConstReal(L->f64, 0), g.sl);
    LLVMBuildStore(L->b, LLVMConstReal(L->f64, 0), g.sw);
    if (g.n && g.d) {
        bk_loop ln, lj;
        LLVMValueRef n = bk_loop_begin(L, g.n, &ln), j = bk_loop_begin(L, g.d, &lj);
        loss_position(L, &g, n, j, acc, none);
        bk_loop_end(L, &lj);
        bk_loop_end(L, &ln);
    }
    if (!none) {
        LLVMValueRef sl = LLVMBuildLoad2(L->b, L->f64, g.sl, "");
        LLVMValueRef v = sum ? sl : LLVMBuildFDiv(L->b, sl, LLVMBuildLoad2(L->b, L->f64, g.sw, ""), "");
        LLVMBuildStore(L->b, LLVMBuildFPCast(L->b, v, g.t, ""), L->out[0]);
    }
    return HONE_OK;
}
