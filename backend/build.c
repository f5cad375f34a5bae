/*
 * IR building helpers shared by the lowering files: element types,
 * constants, globals, calls, and loop nests.
 *
 * Loops are bottom-tested (every trip count is a static positive number):
 * the preheader branches into the body, whose induction variable is a phi of
 * 0 and the latch's increment. A nest walks a static iteration space with a
 * few strided operands; before emitting it merges neighbouring axes along
 * which every operand is contiguous and drops axes of extent 1, so an
 * elementwise op over same-shaped tensors is a single flat loop and a
 * broadcast one a short nest whose innermost loop is unit-stride or
 * invariant: the shape LLVM's loop vectoriser handles best. Operand offsets
 * are accumulated per level (outer offset + iv * stride).
 */
#include <string.h>

#include "backend.h"

LLVMTypeRef bk_type(bk_lower *L, hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_FLOAT: return L->f32;
    case HONE_DT_FLOAT16: return L->f16;
    case HONE_DT_DOUBLE: return L->f64;
    case HONE_DT_BOOL: case HONE_DT_INT8: case HONE_DT_UINT8: return L->i8;
    case HONE_DT_INT16: case HONE_DT_UINT16: return L->i16;
    case HONE_DT_BFLOAT16: return L->i16; /* raw bits: only Cast/CastLike read them (lower.c) */
    case HONE_DT_INT32: case HONE_DT_UINT32: return L->i32;
    case HONE_DT_INT64: case HONE_DT_UINT64: return L->i64;
    default: return NULL;
    }
}

int bk_find_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

bool bk_is_float_type(LLVMTypeRef t)
{
    LLVMTypeKind k = LLVMGetTypeKind(t);
    return k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind || k == LLVMHalfTypeKind;
}

LLVMValueRef bk_i64(bk_lower *L, int64_t v)
{
    return LLVMConstInt(L->i64, (unsigned long long)v, 1);
}

LLVMValueRef bk_i32(bk_lower *L, int32_t v)
{
    return LLVMConstInt(L->i32, (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef bk_f32(bk_lower *L, double v)
{
    return LLVMConstReal(L->f32, v);
}

LLVMValueRef bk_gep(bk_lower *L, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(L->b, ty, base, &idx, 1, "");
}

LLVMValueRef bk_gep_c(bk_lower *L, LLVMTypeRef ty, LLVMValueRef base, int64_t idx)
{
    return idx ? bk_gep(L, ty, base, bk_i64(L, idx)) : base;
}

LLVMValueRef bk_global_bytes(bk_lower *L, const void *data, size_t n, const char *name)
{
    LLVMValueRef init = LLVMConstStringInContext(L->c, n ? data : "", (unsigned)n, 1);
    LLVMValueRef g = LLVMAddGlobal(L->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, BK_ALIGN);
    return g;
}

LLVMValueRef bk_call(bk_lower *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np,
                     LLVMValueRef *args)
{
    LLVMTypeRef ty = LLVMFunctionType(ret, params, (unsigned)np, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(L->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(L->mod, name, ty);
        unsigned k = LLVMGetEnumAttributeKindForName("nounwind", 8);
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->c, k, 0));
    }
    return LLVMBuildCall2(L->b, ty, fn, args, (unsigned)np, "");
}

LLVMValueRef bk_intrinsic_n(bk_lower *L, const char *name, LLVMTypeRef *tys, int nt,
                            LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    HONE_ASSERT(id);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(L->mod, id, tys, (size_t)nt);
    LLVMTypeRef fty = LLVMIntrinsicGetType(L->c, id, tys, (size_t)nt);
    return LLVMBuildCall2(L->b, fty, fn, args, (unsigned)n, "");
}

LLVMValueRef bk_intrinsic(bk_lower *L, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int n)
{
    return bk_intrinsic_n(L, name, &ty, 1, args, n);
}

void bk_memcpy(bk_lower *L, LLVMValueRef dst, LLVMValueRef src, int64_t n)
{
    if (n > 0)
        LLVMBuildMemCpy(L->b, dst, 1, src, 1, bk_i64(L, n));
}

void bk_memset(bk_lower *L, LLVMValueRef dst, int byte, int64_t n)
{
    if (n > 0)
        LLVMBuildMemSet(L->b, dst, LLVMConstInt(L->i8, (unsigned)byte, 0), bk_i64(L, n), 1);
}

LLVMValueRef bk_loop_begin(bk_lower *L, int64_t n, bk_loop *lp)
{
    HONE_ASSERT(n > 0);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(L->b);
    LLVMValueRef fn = LLVMGetBasicBlockParent(pre);
    lp->head = LLVMAppendBasicBlockInContext(L->c, fn, "loop");
    lp->n = n;
    LLVMBuildBr(L->b, lp->head);
    LLVMPositionBuilderAtEnd(L->b, lp->head);
    lp->iv = LLVMBuildPhi(L->b, L->i64, "i");
    LLVMValueRef zero = bk_i64(L, 0);
    LLVMAddIncoming(lp->iv, &zero, &pre, 1);
    return lp->iv;
}

void bk_loop_end(bk_lower *L, bk_loop *lp)
{
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(L->b);
    LLVMValueRef next = LLVMBuildNUWAdd(L->b, lp->iv, bk_i64(L, 1), "");
    LLVMValueRef more = LLVMBuildICmp(L->b, LLVMIntULT, next, bk_i64(L, lp->n), "");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(L->c, LLVMGetBasicBlockParent(latch), "done");
    LLVMBuildCondBr(L->b, more, lp->head, exit);
    LLVMAddIncoming(lp->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(L->b, exit);
}

void bk_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

void bk_bcast_strides(int r, const int64_t *d, int rank, const int64_t *dims, int64_t *st)
{
    int64_t own[HONE_MAX_RANK];
    bk_strides(r, d, own);
    for (int i = 0; i < rank; i++) {
        int k = i - (rank - r);
        st[i] = k < 0 || d[k] == 1 ? 0 : own[k];
    }
    (void)dims;
}

/* True when axes a and a+1 merge: every operand walks a's step as dims[a+1] steps of a+1. */
static bool mergeable(const bk_nest *n, int a)
{
    for (int k = 0; k < n->n_ops; k++)
        if (n->strides[k][a] != n->strides[k][a + 1] * n->dims[a + 1])
            return false;
    return true;
}

/* The nest with extent-1 axes dropped and contiguous neighbours merged;
 * map[i] is the original axis of kept axis i (-1 for merged ones). */
static void simplify(const bk_nest *in, bk_nest *out, int *map)
{
    *out = *in;
    out->rank = 0;
    for (int a = 0; a < in->rank; a++) {
        if (in->dims[a] == 1 && !in->keep_axes)
            continue;
        int r = out->rank++;
        out->dims[r] = in->dims[a];
        map[r] = a;
        for (int k = 0; k < in->n_ops; k++)
            out->strides[k][r] = in->strides[k][a];
        if (r > 0 && !in->keep_axes && mergeable(out, r - 1)) {
            out->dims[r - 1] *= out->dims[r];
            for (int k = 0; k < in->n_ops; k++)
                out->strides[k][r - 1] = out->strides[k][r];
            map[r - 1] = -1;
            out->rank--;
        }
    }
}

typedef struct nest_walk {
    const bk_nest *n;
    const int *map;
    bk_body_fn body;
    void *user;
    LLVMValueRef ivs[BK_MAX_AXES];
} nest_walk;

/* Emits the loops from axis a inward; offs holds the offsets at axis a. */
static void walk(bk_lower *L, nest_walk *w, int a, LLVMValueRef *offs)
{
    const bk_nest *n = w->n;
    if (a == n->rank) {
        w->body(L, w->user, offs, w->ivs);
        return;
    }
    bk_loop lp;
    LLVMValueRef iv = bk_loop_begin(L, n->dims[a], &lp), inner[BK_MAX_OPERANDS];
    if (w->map[a] >= 0)
        w->ivs[w->map[a]] = iv;
    for (int k = 0; k < n->n_ops; k++) {
        int64_t s = n->strides[k][a];
        inner[k] = s == 0 ? offs[k]
                          : LLVMBuildNSWAdd(L->b, offs[k],
                                            s == 1 ? iv : LLVMBuildNSWMul(L->b, iv, bk_i64(L, s), ""),
                                            "");
    }
    walk(L, w, a + 1, inner);
    bk_loop_end(L, &lp);
}

void bk_nest_emit(bk_lower *L, const bk_nest *n, bk_body_fn body, void *user)
{
    for (int a = 0; a < n->rank; a++)
        if (n->dims[a] == 0)
            return;
    bk_nest s;
    int map[BK_MAX_AXES];
    simplify(n, &s, map);
    nest_walk w = {&s, map, body, user, {0}};
    LLVMValueRef offs[BK_MAX_OPERANDS];
    for (int k = 0; k < n->n_ops; k++)
        offs[k] = bk_i64(L, 0);
    walk(L, &w, 0, offs);
}

void bk_check_or_fail(bk_lower *L, LLVMValueRef ok)
{
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(L->b));
    LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(L->c, fn, "inrange");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->c, fn, "outofrange");
    LLVMBuildCondBr(L->b, ok, good, bad);
    LLVMPositionBuilderAtEnd(L->b, bad);
    LLVMBuildRet(L->b, bk_i32(L, 1));
    LLVMPositionBuilderAtEnd(L->b, good);
}

LLVMValueRef bk_load_index(bk_lower *L, LLVMTypeRef it, LLVMValueRef base, LLVMValueRef off,
                           int64_t extent)
{
    LLVMValueRef k = LLVMBuildLoad2(L->b, it, bk_gep(L, it, base, off), "");
    k = LLVMBuildIntCast2(L->b, k, L->i64, 1, "");
    LLVMValueRef neg = LLVMBuildICmp(L->b, LLVMIntSLT, k, bk_i64(L, 0), "");
    k = LLVMBuildSelect(L->b, neg, LLVMBuildAdd(L->b, k, bk_i64(L, extent), ""), k, "");
    LLVMValueRef ok = LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntSGE, k, bk_i64(L, 0), ""),
                                   LLVMBuildICmp(L->b, LLVMIntSLT, k, bk_i64(L, extent), ""), "");
    bk_check_or_fail(L, ok);
    return k;
}
