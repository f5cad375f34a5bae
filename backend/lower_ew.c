/*
 * Elementwise ops and reductions as LLVM loop nests.
 *
 * An elementwise node is one nest over the output shape with one operand per
 * input, each strided the numpy way (stride 0 along broadcast axes); the
 * body loads every input, computes one element and stores it. build.c
 * collapses the nest, so same-shape operands give one flat loop LLVM
 * vectorises. Element semantics follow the interpreter: floats compute in
 * their own type (transcendentals through libm; Mod and Pow through double,
 * as the reference does), integers in their own width with wrapping
 * arithmetic, comparisons and logic give bool (i8 0/1). Where the reference
 * reports an integer division by zero, compiled code yields 0.
 *
 * Reductions accumulate in double (floats) or int64 (integers) in scratch,
 * one accumulator per output element: one nest walks the input contiguously
 * and folds each element into its accumulator (stride 0 along reduced axes),
 * a final loop converts. float32 Sum/Mean over one contiguous block of axes
 * calls the runtime's kernel instead, as the interpreter does.
 */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "ops_util.h"

/* ===================== element helpers ===================== */

/* From an X-macro list of (enumerator, ONNX name): the enum and fn(name),
 * the enumerator of an op name or -1. */
#define KIND_ENUM(e, s) e,
#define KIND_NAME(e, s) s,
#define KIND_TABLE(LIST, fn)                                                                    \
    enum { LIST(KIND_ENUM) fn##_count };                                                        \
    static int fn(const char *name)                                                             \
    {                                                                                           \
        static const char *const names[] = {LIST(KIND_NAME)};                                   \
        return bk_find_name(name, names, fn##_count);                                           \
    }

static bool is_fp(LLVMTypeRef t)
{
    return bk_is_float_type(t);
}

static bool is_unsigned(hone_dtype dt)
{
    return dt == HONE_DT_BOOL || (hone_dtype_is_int(dt) && !hone_dtype_is_signed(dt));
}

static LLVMValueRef cf(LLVMTypeRef t, double v)
{
    return LLVMConstReal(t, v);
}

/* The libm function `name` (double) or `name`f (float) on x. */
static LLVMValueRef libm(bk_lower *L, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    char fname[32];
    snprintf(fname, sizeof fname, "%s%s", name, t == L->f32 ? "f" : "");
    return bk_call(L, fname, t, &t, 1, &x);
}

static LLVMValueRef intr1(bk_lower *L, const char *name, LLVMValueRef x)
{
    return bk_intrinsic(L, name, LLVMTypeOf(x), &x, 1);
}

static LLVMValueRef intr2(bk_lower *L, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef a[2] = {x, y};
    return bk_intrinsic(L, name, LLVMTypeOf(x), a, 2);
}

static LLVMValueRef sel(bk_lower *L, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(L->b, c, a, b, "");
}

static LLVMValueRef fcmp(bk_lower *L, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(L->b, p, a, b, "");
}

static LLVMValueRef icmp(bk_lower *L, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildICmp(L->b, p, a, b, "");
}

/* bool i1 -> stored bool (i8 0/1). */
static LLVMValueRef to_bool(bk_lower *L, LLVMValueRef c)
{
    return LLVMBuildZExt(L->b, c, L->i8, "");
}

/* Converts x (of dtype from) to dtype to, with the Cast rules of the
 * reference: float to integer truncates and saturates (NaN gives 0),
 * integers wrap, anything to bool is "nonzero". */
/* bfloat16 bits to float32: the high half of its bits. */
static LLVMValueRef bf16_to_f32(bk_lower *L, LLVMValueRef x)
{
    LLVMValueRef u = LLVMBuildShl(L->b, LLVMBuildZExt(L->b, x, L->i32, ""), LLVMConstInt(L->i32, 16, 0), "");
    return LLVMBuildBitCast(L->b, u, L->f32, "");
}

/* float32 to bfloat16 bits by truncation, NaN kept quiet (the interpreter's Cast). */
static LLVMValueRef f32_to_bf16(bk_lower *L, LLVMValueRef f)
{
    LLVMValueRef hi = LLVMBuildLShr(L->b, LLVMBuildBitCast(L->b, f, L->i32, ""), LLVMConstInt(L->i32, 16, 0), "");
    LLVMValueRef nan = LLVMBuildFCmp(L->b, LLVMRealUNO, f, f, "");
    hi = LLVMBuildSelect(L->b, nan, LLVMBuildOr(L->b, hi, LLVMConstInt(L->i32, 0x40, 0), ""), hi, "");
    return LLVMBuildTrunc(L->b, hi, L->i16, "");
}

static LLVMValueRef convert(bk_lower *L, LLVMValueRef x, hone_dtype from, hone_dtype to)
{
    if (from == HONE_DT_BFLOAT16)
        return from == to ? x : convert(L, bf16_to_f32(L, x), HONE_DT_FLOAT, to);
    if (to == HONE_DT_BFLOAT16) /* through double then float, as the interpreter rounds */
        return f32_to_bf16(L, LLVMBuildFPTrunc(L->b, convert(L, x, from, HONE_DT_DOUBLE), L->f32, ""));
    LLVMTypeRef ft = LLVMTypeOf(x), tt = bk_type(L, to);
    bool ff = is_fp(ft), tf = is_fp(tt);
    if (to == HONE_DT_BOOL)
        return to_bool(L, ff ? fcmp(L, LLVMRealUNE, x, cf(ft, 0))
                             : icmp(L, LLVMIntNE, x, LLVMConstInt(ft, 0, 0)));
    if (ff && tf)
        return ft == tt ? x : LLVMBuildFPCast(L->b, x, tt, "");
    if (ff) {
        LLVMTypeRef tys[2] = {tt, ft};
        return bk_intrinsic_n(L, is_unsigned(to) ? "llvm.fptoui.sat" : "llvm.fptosi.sat", tys, 2,
                              &x, 1);
    }
    if (tf)
        return is_unsigned(from) ? LLVMBuildUIToFP(L->b, x, tt, "") : LLVMBuildSIToFP(L->b, x, tt, "");
    return ft == tt ? x : LLVMBuildIntCast2(L->b, x, tt, !is_unsigned(from), "");
}

/* ===================== the nest driver ===================== */

/* Per-node settings of an elementwise kernel. */
typedef struct ew_ctx {
    int kind;               /* op code of the family (unary / binary enums) */
    hone_dtype in_dt, out_dt;
    double a, b;            /* attribute parameters */
    bool flag;              /* Mod: fmod; BitShift: left; IsInf... */
    int n_in;
} ew_ctx;

typedef LLVMValueRef (*elem_fn)(bk_lower *L, const ew_ctx *e, LLVMValueRef *v);

typedef struct ew_body {
    const ew_ctx *e;
    elem_fn elem;
    int n_in;
    LLVMValueRef out, in[BK_MAX_OPERANDS];
    LLVMTypeRef out_ty, in_ty[BK_MAX_OPERANDS];
} ew_body;

/* float16 elements compute in float32: widened on load, rounded on store. */
static void ew_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    ew_body *b = user;
    LLVMValueRef v[BK_MAX_OPERANDS];
    for (int k = 0; k < b->n_in; k++) {
        v[k] = LLVMBuildLoad2(L->b, b->in_ty[k], bk_gep(L, b->in_ty[k], b->in[k], offs[k + 1]), "");
        if (b->in_ty[k] == L->f16)
            v[k] = LLVMBuildFPExt(L->b, v[k], L->f32, "");
    }
    LLVMValueRef r = b->elem(L, b->e, v);
    if (b->out_ty == L->f16)
        r = LLVMBuildFPTrunc(L->b, r, L->f16, "");
    LLVMBuildStore(L->b, r, bk_gep(L, b->out_ty, b->out, offs[0]));
}

static hone_dtype compute_dt(hone_dtype dt)
{
    return dt == HONE_DT_FLOAT16 ? HONE_DT_FLOAT : dt;
}

/* Legacy (opset < 7) broadcast of B onto A: B's dims placed at `axis`
 * (broadcast=1), or PRelu's 1-D slope along the channel axis 1. */
static bool legacy_dims(bk_lower *L, int ra, int rb, const int64_t *db, int64_t *out)
{
    const hone_node *n = L->node;
    bool prelu = !strcmp(n->op_type, "PRelu") && rb == 1 && ra >= 2;
    if (n->opset >= 7 || !(prelu || hone_attr_int(n, "broadcast", 0)) || rb > ra)
        return false;
    int64_t axis = hone_attr_int(n, "axis", prelu ? 1 : ra - rb);
    axis = axis < 0 ? axis + ra : axis;
    if (axis < 0 || axis + rb > ra)
        return false;
    for (int i = 0; i < ra; i++)
        out[i] = i >= axis && i < axis + rb ? db[i - axis] : 1;
    return true;
}

/* One nest over output 0 reading inputs idx[0..n), computing elem; input k
 * is broadcast the numpy way unless over[k] gives its strides. */
static hone_status emit_ew_over(bk_lower *L, const ew_ctx *e, const int *idx, int n, elem_fn elem,
                                int64_t (*over)[HONE_MAX_RANK])
{
    const hone_value *y = bk_out(L, 0);
    if (n + 1 > BK_MAX_OPERANDS)
        return bk_unsupported(L, "more than %d inputs", BK_MAX_OPERANDS - 1);
    bk_nest nest = {.rank = y->rank, .n_ops = n + 1};
    memcpy(nest.dims, y->dims, sizeof(int64_t) * (size_t)y->rank);
    bk_strides(y->rank, y->dims, nest.strides[0]);
    ew_ctx ce = *e;
    ce.in_dt = compute_dt(e->in_dt);
    ce.out_dt = compute_dt(e->out_dt);
    ew_body b = {&ce, elem, n, L->out[0], {0}, bk_type(L, y->dtype), {0}};
    for (int k = 0; k < n; k++) {
        const hone_value *x = bk_in(L, idx[k]);
        int64_t ld[HONE_MAX_RANK];
        bool legacy = k == 1 && legacy_dims(L, bk_in(L, idx[0])->rank, x->rank, x->dims, ld);
        bk_bcast_strides(legacy ? y->rank : x->rank, legacy ? ld : x->dims, y->rank, y->dims,
                         nest.strides[k + 1]);
        if (over && over[k][0] >= 0)
            memcpy(nest.strides[k + 1], over[k], sizeof(int64_t) * (size_t)y->rank);
        b.in[k] = L->in[idx[k]];
        b.in_ty[k] = bk_type(L, x->dtype);
    }
    bk_nest_emit(L, &nest, ew_emit_body, &b);
    return HONE_OK;
}

static hone_status emit_ew(bk_lower *L, const ew_ctx *e, const int *idx, int n, elem_fn elem)
{
    return emit_ew_over(L, e, idx, n, elem, NULL);
}

/* ===================== QuantizeLinear / DequantizeLinear ===================== */

/* q = saturate(round_half_even(x / s) + zp), the division rounded to float32
 * for float32 x (flag), or x = (q - zp) * s; in double. v: x, s[, zp]. */
static LLVMValueRef quant_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    bool quant = e->kind == 0;
    hone_dtype qdt = quant ? e->out_dt : e->in_dt;
    LLVMValueRef x = convert(L, v[0], e->in_dt, HONE_DT_DOUBLE), s = LLVMBuildFPCast(L->b, v[1], L->f64, "");
    LLVMValueRef zp = e->n_in > 2 ? convert(L, v[2], qdt, HONE_DT_DOUBLE) : cf(L->f64, 0);
    if (!quant)
        return convert(L, LLVMBuildFMul(L->b, LLVMBuildFSub(L->b, x, zp, ""), s, ""), HONE_DT_DOUBLE, e->out_dt);
    LLVMValueRef q = LLVMBuildFDiv(L->b, x, s, "");
    if (e->flag)
        q = LLVMBuildFPExt(L->b, LLVMBuildFPTrunc(L->b, q, L->f32, ""), L->f64, "");
    q = LLVMBuildFAdd(L->b, intr1(L, "llvm.roundeven", q), zp, "");
    return convert(L, q, HONE_DT_DOUBLE, e->out_dt);
}

/* Scale and zero point: scalars, or (opset 13) one entry per index of axis. */
hone_status bk_lower_quant(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *sc = bk_in(L, 1);
    bool quant = !strcmp(L->node->op_type, "QuantizeLinear");
    ew_ctx e = {quant ? 0 : 1, x->dtype, bk_out(L, 0)->dtype};
    e.flag = x->dtype == HONE_DT_FLOAT;
    int idx[3] = {0, 1, 2}, n = bk_in(L, 2) ? 3 : 2;
    e.n_in = n;
    int64_t over[3][HONE_MAX_RANK];
    memset(over, 0, sizeof over);
    over[0][0] = -1;
    int64_t a = hone_attr_int(L->node, "axis", 1);
    a = a < 0 ? a + x->rank : a;
    for (int k = 1; k < n; k++) {
        if (bk_numel(sc) == 1)
            over[k][0] = -1;
        else if (a >= 0 && a < x->rank)
            over[k][a] = 1;
    }
    return emit_ew_over(L, &e, idx, n, quant_elem, over);
}

/* ===================== unary ===================== */

#define UNARY_OPS(X)                                                                              \
    X(U_ABS, "Abs") X(U_NEG, "Neg") X(U_SIGN, "Sign") X(U_EXP, "Exp") X(U_LOG, "Log")             \
    X(U_SQRT, "Sqrt") X(U_RECIP, "Reciprocal") X(U_FLOOR, "Floor") X(U_CEIL, "Ceil")              \
    X(U_ROUND, "Round") X(U_SIN, "Sin") X(U_COS, "Cos") X(U_TAN, "Tan") X(U_ASIN, "Asin")         \
    X(U_ACOS, "Acos") X(U_ATAN, "Atan") X(U_SINH, "Sinh") X(U_COSH, "Cosh") X(U_ASINH, "Asinh")   \
    X(U_ACOSH, "Acosh") X(U_ATANH, "Atanh") X(U_ERF, "Erf") X(U_NOT, "Not") X(U_ISNAN, "IsNaN")   \
    X(U_ISINF, "IsInf") X(U_RELU, "Relu") X(U_SIGMOID, "Sigmoid") X(U_TANH, "Tanh")               \
    X(U_SOFTPLUS, "Softplus") X(U_SOFTSIGN, "Softsign") X(U_ELU, "Elu") X(U_SELU, "Selu")         \
    X(U_CELU, "Celu") X(U_LEAKY, "LeakyRelu") X(U_THRESH, "ThresholdedRelu")                      \
    X(U_HSIGMOID, "HardSigmoid") X(U_HSWISH, "HardSwish") X(U_SHRINK, "Shrink")

KIND_TABLE(UNARY_OPS, unary_kind)

/* Sigmoid without overflow: e = exp(-|x|), r = 1/(1+e); x >= 0 ? r : e r. */
static LLVMValueRef sigmoid(bk_lower *L, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef e = intr1(L, "llvm.exp", LLVMBuildFNeg(L->b, intr1(L, "llvm.fabs", x), ""));
    LLVMValueRef r = LLVMBuildFDiv(L->b, cf(t, 1), LLVMBuildFAdd(L->b, cf(t, 1), e, ""), "");
    return sel(L, fcmp(L, LLVMRealOGE, x, cf(t, 0)), r, LLVMBuildFMul(L->b, e, r, ""));
}

/* min(1, max(0, v)) as fmin/fmax do (NaN-ignoring). */
static LLVMValueRef unit_clamp(bk_lower *L, LLVMValueRef v)
{
    LLVMTypeRef t = LLVMTypeOf(v);
    return intr2(L, "llvm.maxnum", cf(t, 0), intr2(L, "llvm.minnum", cf(t, 1), v));
}

/* The activations with attributes, on a float x. */
static LLVMValueRef unary_act(bk_lower *L, const ew_ctx *e, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef z = cf(t, 0), a = cf(t, e->a), b = cf(t, e->b);
    switch (e->kind) {
    case U_ELU:
        return sel(L, fcmp(L, LLVMRealOGE, x, z), x, LLVMBuildFMul(L->b, a, libm(L, "expm1", x), ""));
    case U_SELU: {
        LLVMValueRef neg = LLVMBuildFSub(L->b, LLVMBuildFMul(L->b, a, intr1(L, "llvm.exp", x), ""), a, "");
        return LLVMBuildFMul(L->b, b, sel(L, fcmp(L, LLVMRealOGT, x, z), x, neg), "");
    }
    case U_CELU:
        return sel(L, fcmp(L, LLVMRealOGT, x, z), x,
                   LLVMBuildFMul(L->b, a, libm(L, "expm1", LLVMBuildFDiv(L->b, x, a, "")), ""));
    case U_LEAKY: return sel(L, fcmp(L, LLVMRealOGE, x, z), x, LLVMBuildFMul(L->b, a, x, ""));
    case U_THRESH: return sel(L, fcmp(L, LLVMRealOGT, x, a), x, z);
    case U_HSIGMOID: return unit_clamp(L, LLVMBuildFAdd(L->b, LLVMBuildFMul(L->b, a, x, ""), b, ""));
    case U_HSWISH: {
        LLVMValueRef v = LLVMBuildFAdd(L->b, LLVMBuildFDiv(L->b, x, cf(t, 6), ""), cf(t, 0.5), "");
        return LLVMBuildFMul(L->b, x, unit_clamp(L, v), "");
    }
    case U_SHRINK: {
        LLVMValueRef hi = sel(L, fcmp(L, LLVMRealOGT, x, a), LLVMBuildFSub(L->b, x, b, ""), z);
        return sel(L, fcmp(L, LLVMRealOLT, x, LLVMBuildFNeg(L->b, a, "")),
                   LLVMBuildFAdd(L->b, x, b, ""), hi);
    }
    default: HONE_ASSERT(!"not an activation");
    }
}

/* A unary op on a float x of the output's type. */
static LLVMValueRef unary_fp(bk_lower *L, const ew_ctx *e, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef z = cf(t, 0), one = cf(t, 1);
    switch (e->kind) {
    case U_ABS: return intr1(L, "llvm.fabs", x);
    case U_NEG: return LLVMBuildFNeg(L->b, x, "");
    case U_SIGN:
        return sel(L, fcmp(L, LLVMRealOGT, x, z), one,
                   sel(L, fcmp(L, LLVMRealOLT, x, z), cf(t, -1), x));
    case U_EXP: return intr1(L, "llvm.exp", x);
    case U_LOG: return intr1(L, "llvm.log", x);
    case U_SQRT: return intr1(L, "llvm.sqrt", x);
    case U_RECIP: return LLVMBuildFDiv(L->b, one, x, "");
    case U_FLOOR: return intr1(L, "llvm.floor", x);
    case U_CEIL: return intr1(L, "llvm.ceil", x);
    case U_ROUND: return intr1(L, "llvm.roundeven", x);
    case U_SIN: return intr1(L, "llvm.sin", x);
    case U_COS: return intr1(L, "llvm.cos", x);
    case U_TAN: return libm(L, "tan", x);
    case U_ASIN: return libm(L, "asin", x);
    case U_ACOS: return libm(L, "acos", x);
    case U_ATAN: return libm(L, "atan", x);
    case U_SINH: return libm(L, "sinh", x);
    case U_COSH: return libm(L, "cosh", x);
    case U_ASINH: return libm(L, "asinh", x);
    case U_ACOSH: return libm(L, "acosh", x);
    case U_ATANH: return libm(L, "atanh", x);
    case U_ERF: return libm(L, "erf", x);
    case U_TANH: return libm(L, "tanh", x);
    case U_RELU: return sel(L, fcmp(L, LLVMRealOLT, x, z), z, x);
    case U_SIGMOID: return sigmoid(L, x);
    case U_SOFTPLUS: {
        LLVMValueRef e1 = intr1(L, "llvm.exp", LLVMBuildFNeg(L->b, intr1(L, "llvm.fabs", x), ""));
        return LLVMBuildFAdd(L->b, intr2(L, "llvm.maxnum", x, z), libm(L, "log1p", e1), "");
    }
    case U_SOFTSIGN:
        return LLVMBuildFDiv(L->b, x, LLVMBuildFAdd(L->b, one, intr1(L, "llvm.fabs", x), ""), "");
    default: return unary_act(L, e, x);
    }
}

/* Integer forms: Abs, Neg, Sign, Relu in the integer's width. */
static LLVMValueRef unary_int(bk_lower *L, const ew_ctx *e, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef z = LLVMConstInt(t, 0, 0), neg = LLVMBuildNeg(L->b, x, "");
    bool uns = is_unsigned(e->in_dt);
    switch (e->kind) {
    case U_ABS: return uns ? x : sel(L, icmp(L, LLVMIntSLT, x, z), neg, x);
    case U_NEG: return neg;
    case U_SIGN:
        if (uns)
            return LLVMBuildZExt(L->b, icmp(L, LLVMIntNE, x, z), t, "");
        return LLVMBuildSub(L->b, LLVMBuildZExt(L->b, icmp(L, LLVMIntSGT, x, z), t, ""),
                            LLVMBuildZExt(L->b, icmp(L, LLVMIntSLT, x, z), t, ""), "");
    case U_RELU: return sel(L, icmp(L, LLVMIntSLT, x, z), z, x);
    default: return NULL;
    }
}

static LLVMValueRef unary_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    LLVMValueRef x = v[0];
    LLVMTypeRef t = LLVMTypeOf(x);
    if (e->kind == U_NOT)
        return to_bool(L, icmp(L, LLVMIntEQ, x, LLVMConstInt(t, 0, 0)));
    if (e->kind == U_ISNAN)
        return to_bool(L, fcmp(L, LLVMRealUNO, x, x));
    if (e->kind == U_ISINF) {
        LLVMValueRef inf = cf(t, INFINITY);
        LLVMValueRef pos = e->b != 0 ? fcmp(L, LLVMRealOEQ, x, inf) : LLVMConstInt(L->i1, 0, 0);
        LLVMValueRef neg = e->a != 0 ? fcmp(L, LLVMRealOEQ, x, cf(t, -INFINITY)) : LLVMConstInt(L->i1, 0, 0);
        return to_bool(L, LLVMBuildOr(L->b, pos, neg, ""));
    }
    if (is_fp(t))
        return unary_fp(L, e, x);
    LLVMValueRef r = unary_int(L, e, x);
    if (r)
        return r;
    /* other ops on integers go through double, as the reference does */
    return convert(L, unary_fp(L, e, convert(L, x, e->in_dt, HONE_DT_DOUBLE)), HONE_DT_DOUBLE,
                   e->out_dt);
}

/* Attribute parameters (a, b) of unary op kind, with ONNX defaults. */
static void unary_params(const hone_node *n, int kind, ew_ctx *e)
{
    switch (kind) {
    case U_ELU: case U_CELU: case U_THRESH: e->a = hone_attr_float(n, "alpha", 1.0f); break;
    case U_LEAKY: e->a = hone_attr_float(n, "alpha", 0.01f); break;
    case U_SELU:
        e->a = hone_attr_float(n, "alpha", 1.67326319217681884765625f);
        e->b = hone_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case U_HSIGMOID:
        e->a = hone_attr_float(n, "alpha", 0.2f);
        e->b = hone_attr_float(n, "beta", 0.5f);
        break;
    case U_SHRINK:
        e->a = hone_attr_float(n, "lambd", 0.5f);
        e->b = hone_attr_float(n, "bias", 0.0f);
        break;
    case U_ISINF:
        e->a = (double)hone_attr_int(n, "detect_negative", 1);
        e->b = (double)hone_attr_int(n, "detect_positive", 1);
        break;
    default: break;
    }
}

hone_status bk_lower_unary(bk_lower *L)
{
    int kind = unary_kind(L->node->op_type);
    HONE_ASSERT(kind >= 0);
    ew_ctx e = {kind, bk_in(L, 0)->dtype, bk_out(L, 0)->dtype};
    unary_params(L->node, kind, &e);
    int idx[1] = {0};
    return emit_ew(L, &e, idx, 1, unary_elem);
}

/* ===================== binary ===================== */

#define BINARY_OPS(X)                                                                             \
    X(B_ADD, "Add") X(B_SUB, "Sub") X(B_MUL, "Mul") X(B_DIV, "Div") X(B_MOD, "Mod")               \
    X(B_POW, "Pow") X(B_SHIFT, "BitShift") X(B_AND, "And") X(B_OR, "Or") X(B_XOR, "Xor")          \
    X(B_EQ, "Equal") X(B_LT, "Less") X(B_LE, "LessOrEqual") X(B_GT, "Greater")                    \
    X(B_GE, "GreaterOrEqual") X(B_PRELU, "PRelu") X(B_MAX, "Max") X(B_MIN, "Min")                 \
    X(B_SUM, "Sum") X(B_MEAN, "Mean")

KIND_TABLE(BINARY_OPS, binary_kind)

/* numpy / C remainder of doubles x, y (fmod keeps the dividend's sign). */
static LLVMValueRef mod_f64(bk_lower *L, LLVMValueRef x, LLVMValueRef y, bool cmod)
{
    LLVMValueRef r = LLVMBuildFRem(L->b, x, y, ""), z = cf(L->f64, 0);
    if (cmod)
        return r;
    LLVMValueRef fix = LLVMBuildAnd(L->b, fcmp(L, LLVMRealONE, r, z),
                                    LLVMBuildXor(L->b, fcmp(L, LLVMRealOLT, r, z),
                                                 fcmp(L, LLVMRealOLT, y, z), ""), "");
    return sel(L, fix, LLVMBuildFAdd(L->b, r, y, ""), r);
}

/* Float binary arithmetic and comparisons. */
static LLVMValueRef binary_fp(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    switch (e->kind) {
    case B_ADD: case B_SUM: case B_MEAN: return LLVMBuildFAdd(L->b, x, y, "");
    case B_SUB: return LLVMBuildFSub(L->b, x, y, "");
    case B_MUL: return LLVMBuildFMul(L->b, x, y, "");
    case B_DIV: return LLVMBuildFDiv(L->b, x, y, "");
    case B_MOD:
        return LLVMBuildFPCast(L->b, mod_f64(L, LLVMBuildFPCast(L->b, x, L->f64, ""),
                                             LLVMBuildFPCast(L->b, y, L->f64, ""), e->flag),
                               t, "");
    case B_MAX: return sel(L, LLVMBuildOr(L->b, fcmp(L, LLVMRealUNO, x, x), fcmp(L, LLVMRealOGT, x, y), ""), x, y);
    case B_MIN: return sel(L, LLVMBuildOr(L->b, fcmp(L, LLVMRealUNO, x, x), fcmp(L, LLVMRealOLT, x, y), ""), x, y);
    case B_PRELU: return sel(L, fcmp(L, LLVMRealOLT, x, cf(t, 0)), LLVMBuildFMul(L->b, x, y, ""), x);
    case B_EQ: return to_bool(L, fcmp(L, LLVMRealOEQ, x, y));
    case B_LT: return to_bool(L, fcmp(L, LLVMRealOLT, x, y));
    case B_LE: return to_bool(L, fcmp(L, LLVMRealOLE, x, y));
    case B_GT: return to_bool(L, fcmp(L, LLVMRealOGT, x, y));
    case B_GE: return to_bool(L, fcmp(L, LLVMRealOGE, x, y));
    default: HONE_ASSERT(!"binary op without a float form");
    }
}

/* Integer Div and Mod: a zero divisor gives 0, -1 negates (no trap). */
static LLVMValueRef divmod_int(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef z = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
    bool uns = is_unsigned(e->in_dt), div = e->kind == B_DIV;
    LLVMValueRef y0 = icmp(L, LLVMIntEQ, y, z);
    LLVMValueRef m1 = uns ? LLVMConstInt(L->i1, 0, 0) : icmp(L, LLVMIntEQ, y, LLVMConstAllOnes(t));
    LLVMValueRef safe = sel(L, LLVMBuildOr(L->b, y0, m1, ""), one, y);
    LLVMValueRef r;
    if (div)
        r = uns ? LLVMBuildUDiv(L->b, x, safe, "") : LLVMBuildSDiv(L->b, x, safe, "");
    else if (uns)
        r = LLVMBuildURem(L->b, x, safe, "");
    else {
        r = LLVMBuildSRem(L->b, x, safe, "");
        if (!e->flag) {
            LLVMValueRef fix = LLVMBuildAnd(L->b, icmp(L, LLVMIntNE, r, z),
                                            LLVMBuildXor(L->b, icmp(L, LLVMIntSLT, r, z),
                                                         icmp(L, LLVMIntSLT, y, z), ""), "");
            r = sel(L, fix, LLVMBuildAdd(L->b, r, y, ""), r);
        }
    }
    r = sel(L, m1, div ? LLVMBuildNeg(L->b, x, "") : z, r);
    return sel(L, y0, z, r);
}

/* BitShift in 64 bits: shifts of 64 or more give 0. */
static LLVMValueRef shift_int(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef x64 = LLVMBuildZExt(L->b, x, L->i64, ""), y64 = LLVMBuildZExt(L->b, y, L->i64, "");
    if (t == L->i64) {
        x64 = x;
        y64 = y;
    }
    LLVMValueRef big = icmp(L, LLVMIntUGE, y64, bk_i64(L, 64));
    LLVMValueRef s = sel(L, big, bk_i64(L, 0), y64);
    LLVMValueRef r = e->flag ? LLVMBuildShl(L->b, x64, s, "") : LLVMBuildLShr(L->b, x64, s, "");
    r = sel(L, big, bk_i64(L, 0), r);
    return t == L->i64 ? r : LLVMBuildTrunc(L->b, r, t, "");
}

/* Integer (and bool) binary ops in the inputs' width. */
static LLVMValueRef binary_int(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef y)
{
    bool uns = is_unsigned(e->in_dt);
    LLVMValueRef z = LLVMConstInt(LLVMTypeOf(x), 0, 0);
    switch (e->kind) {
    case B_ADD: case B_SUM: case B_MEAN: return LLVMBuildAdd(L->b, x, y, "");
    case B_SUB: return LLVMBuildSub(L->b, x, y, "");
    case B_MUL: return LLVMBuildMul(L->b, x, y, "");
    case B_DIV: case B_MOD: return divmod_int(L, e, x, y);
    case B_SHIFT: return shift_int(L, e, x, y);
    case B_MAX: return sel(L, icmp(L, uns ? LLVMIntUGT : LLVMIntSGT, x, y), x, y);
    case B_MIN: return sel(L, icmp(L, uns ? LLVMIntULT : LLVMIntSLT, x, y), x, y);
    case B_PRELU: return sel(L, icmp(L, LLVMIntSLT, x, z), LLVMBuildMul(L->b, x, y, ""), x);
    case B_EQ: return to_bool(L, icmp(L, LLVMIntEQ, x, y));
    case B_LT: return to_bool(L, icmp(L, uns ? LLVMIntULT : LLVMIntSLT, x, y));
    case B_LE: return to_bool(L, icmp(L, uns ? LLVMIntULE : LLVMIntSLE, x, y));
    case B_GT: return to_bool(L, icmp(L, uns ? LLVMIntUGT : LLVMIntSGT, x, y));
    case B_GE: return to_bool(L, icmp(L, uns ? LLVMIntUGE : LLVMIntSGE, x, y));
    case B_AND: return to_bool(L, LLVMBuildAnd(L->b, icmp(L, LLVMIntNE, x, z), icmp(L, LLVMIntNE, y, z), ""));
    case B_OR: return to_bool(L, LLVMBuildOr(L->b, icmp(L, LLVMIntNE, x, z), icmp(L, LLVMIntNE, y, z), ""));
    case B_XOR: return to_bool(L, LLVMBuildXor(L->b, icmp(L, LLVMIntNE, x, z), icmp(L, LLVMIntNE, y, z), ""));
    default: HONE_ASSERT(!"binary op without an integer form");
    }
}

/* Pow through double (the base's type out), x*x for an exponent of 2 in float32. */
static LLVMValueRef pow_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef y)
{
    hone_dtype yt = is_fp(LLVMTypeOf(y)) ? (LLVMTypeOf(y) == L->f32 ? HONE_DT_FLOAT : HONE_DT_DOUBLE)
                                         : e->flag ? HONE_DT_UINT64 : HONE_DT_INT64;
    LLVMValueRef xd = convert(L, x, e->in_dt, HONE_DT_DOUBLE), yd = convert(L, y, yt, HONE_DT_DOUBLE);
    LLVMValueRef r = convert(L, intr2(L, "llvm.pow", xd, yd), HONE_DT_DOUBLE, e->out_dt);
    if (e->out_dt == HONE_DT_FLOAT && LLVMTypeOf(y) == L->f32)
        r = sel(L, fcmp(L, LLVMRealOEQ, y, cf(L->f32, 2)), LLVMBuildFMul(L->b, x, x, ""), r);
    return r;
}

static LLVMValueRef binary_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    if (e->kind == B_POW)
        return pow_elem(L, e, v[0], v[1]);
    return is_fp(LLVMTypeOf(v[0])) ? binary_fp(L, e, v[0], v[1]) : binary_int(L, e, v[0], v[1]);
}

hone_status bk_lower_binary(bk_lower *L)
{
    ew_ctx e = {binary_kind(L->node->op_type), bk_in(L, 0)->dtype, bk_out(L, 0)->dtype};
    HONE_ASSERT(e.kind >= 0);
    if (e.kind == B_MOD)
        e.flag = hone_attr_int(L->node, "fmod", 0) != 0;
    if (e.kind == B_SHIFT)
        e.flag = !strcmp(hone_attr_str(L->node, "direction", ""), "LEFT");
    if (e.kind == B_POW)
        e.flag = is_unsigned(bk_in(L, 1)->dtype);
    int idx[2] = {0, 1};
    return emit_ew(L, &e, idx, 2, binary_elem);
}

/* Variadic Max/Min/Sum/Mean: a pairwise fold over every input. */
static LLVMValueRef variadic_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    LLVMValueRef acc = v[0];
    for (int k = 1; k < e->n_in; k++)
        acc = is_fp(LLVMTypeOf(acc)) ? binary_fp(L, e, acc, v[k]) : binary_int(L, e, acc, v[k]);
    if (e->kind != B_MEAN || e->n_in == 1)
        return acc;
    LLVMTypeRef t = LLVMTypeOf(acc);
    if (is_fp(t))
        return LLVMBuildFDiv(L->b, acc, cf(t, e->n_in), "");
    return LLVMBuildSDiv(L->b, acc, LLVMConstInt(t, (unsigned long long)e->n_in, 0), "");
}

hone_status bk_lower_variadic(bk_lower *L)
{
    int n = L->node->n_in, idx[BK_MAX_OPERANDS];
    ew_ctx e = {binary_kind(L->node->op_type), bk_in(L, 0)->dtype, bk_out(L, 0)->dtype};
    e.n_in = n;
    if (n >= BK_MAX_OPERANDS)
        return bk_unsupported(L, "%d inputs (at most %d compiled)", n, BK_MAX_OPERANDS - 1);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    return emit_ew(L, &e, idx, n, variadic_elem);
}

/* ===================== Where, Clip, Cast ===================== */

static LLVMValueRef where_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    return sel(L, icmp(L, LLVMIntNE, v[0], LLVMConstInt(L->i8, 0, 0)), v[1], v[2]);
}

hone_status bk_lower_where(bk_lower *L)
{
    ew_ctx e = {0, bk_in(L, 1)->dtype, bk_out(L, 0)->dtype};
    int idx[3] = {0, 1, 2};
    return emit_ew(L, &e, idx, 3, where_elem);
}

/* Clip: bounds in v[1] (low) and v[2] (high) when e->flag says they exist. */
static LLVMValueRef clip_bounds(bk_lower *L, const ew_ctx *e, LLVMValueRef x, LLVMValueRef lo,
                                LLVMValueRef hi)
{
    bool fp = is_fp(LLVMTypeOf(x)), uns = is_unsigned(e->in_dt);
    if (lo)
        x = sel(L, fp ? fcmp(L, LLVMRealOLT, x, lo) : icmp(L, uns ? LLVMIntULT : LLVMIntSLT, x, lo), lo, x);
    if (hi)
        x = sel(L, fp ? fcmp(L, LLVMRealOGT, x, hi) : icmp(L, uns ? LLVMIntUGT : LLVMIntSGT, x, hi), hi, x);
    return x;
}

/* e->a / e->b: which of v[1], v[2] are the low / high bound (0 = absent);
 * before opset 11 the bounds are the attributes min and max. */
static LLVMValueRef clip_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    LLVMTypeRef t = LLVMTypeOf(v[0]);
    if (e->flag)
        return clip_bounds(L, e, v[0], cf(t, e->a), cf(t, e->b));
    return clip_bounds(L, e, v[0], e->a > 0 ? v[(int)e->a] : NULL, e->b > 0 ? v[(int)e->b] : NULL);
}

/* A Clip bound input i that is present and not empty. */
static bool clip_has(bk_lower *L, int i)
{
    const hone_value *v = bk_in(L, i);
    return v && bk_numel(v) > 0;
}

hone_status bk_lower_clip(bk_lower *L)
{
    ew_ctx e = {0, bk_in(L, 0)->dtype, bk_out(L, 0)->dtype};
    int idx[3] = {0}, n = 1;
    if (L->node->opset < 11) {
        if (!hone_dtype_is_float(e.in_dt))
            return bk_unsupported(L, "integer Clip before opset 11");
        e.flag = true;
        e.a = hone_attr_float(L->node, "min", -3.402823466e38f);
        e.b = hone_attr_float(L->node, "max", 3.402823466e38f);
        return emit_ew(L, &e, idx, 1, clip_elem);
    }
    for (int i = 1; i <= 2; i++)
        if (clip_has(L, i)) {
            *(i == 1 ? &e.a : &e.b) = n;
            idx[n++] = i;
        }
    return emit_ew(L, &e, idx, n, clip_elem);
}

static LLVMValueRef cast_elem(bk_lower *L, const ew_ctx *e, LLVMValueRef *v)
{
    return convert(L, v[0], e->in_dt, e->out_dt);
}

hone_status bk_lower_cast(bk_lower *L)
{
    ew_ctx e = {0, bk_in(L, 0)->dtype, bk_out(L, 0)->dtype};
    int idx[1] = {0};
    return emit_ew(L, &e, idx, 1, cast_elem);
}

/* ===================== FusedConv epilogue ===================== */

typedef struct epi_body {
    LLVMValueRef y, z;
    const char *act;
    const float *params;
    int n_params;
} epi_body;

/* act(v) for FusedConv's activations. */
static LLVMValueRef activation(bk_lower *L, const epi_body *b, LLVMValueRef v)
{
    LLVMValueRef z = cf(L->f32, 0);
    if (!strcmp(b->act, "Relu"))
        return sel(L, fcmp(L, LLVMRealOLT, v, z), z, v);
    if (!strcmp(b->act, "LeakyRelu")) {
        LLVMValueRef a = cf(L->f32, b->n_params > 0 ? b->params[0] : 0.01f);
        return sel(L, fcmp(L, LLVMRealOGE, v, z), v, LLVMBuildFMul(L->b, a, v, ""));
    }
    if (!strcmp(b->act, "Clip")) {
        ew_ctx e = {0, HONE_DT_FLOAT, HONE_DT_FLOAT};
        return clip_bounds(L, &e, v, b->n_params > 0 ? cf(L->f32, b->params[0]) : NULL,
                           b->n_params > 1 ? cf(L->f32, b->params[1]) : NULL);
    }
    if (!strcmp(b->act, "Sigmoid"))
        return sigmoid(L, v);
    return v;
}

static void epi_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    epi_body *b = user;
    LLVMValueRef p = bk_gep(L, L->f32, b->y, offs[0]);
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->f32, p, "");
    if (b->z)
        v = LLVMBuildFAdd(L->b, v, LLVMBuildLoad2(L->b, L->f32, bk_gep(L, L->f32, b->z, offs[1]), ""), "");
    LLVMBuildStore(L->b, activation(L, b, v), p);
}

void bk_emit_epilogue(bk_lower *L, LLVMValueRef y, int rank, const int64_t *dims, LLVMValueRef z,
                      const int64_t *zs, const char *act, const float *params, int n_params)
{
    bk_nest n = {.rank = rank, .n_ops = z ? 2 : 1};
    memcpy(n.dims, dims, sizeof(int64_t) * (size_t)rank);
    bk_strides(rank, dims, n.strides[0]);
    if (z)
        memcpy(n.strides[1], zs, sizeof(int64_t) * (size_t)rank);
    epi_body b = {y, z, act, params, n_params};
    bk_nest_emit(L, &n, epi_emit_body, &b);
}

/* ===================== reductions ===================== */

#define REDUCE_OPS(X)                                                                             \
    X(R_SUM, "ReduceSum") X(R_MEAN, "ReduceMean") X(R_MAX, "ReduceMax") X(R_MIN, "ReduceMin")     \
    X(R_PROD, "ReduceProd") X(R_L1, "ReduceL1") X(R_L2, "ReduceL2") X(R_LOGSUM, "ReduceLogSum")   \
    X(R_LSE, "ReduceLogSumExp") X(R_SUMSQ, "ReduceSumSquare")

KIND_TABLE(REDUCE_OPS, reduce_kind)

/* What one reduction does. */
typedef struct red_spec {
    int kind;
    bool red[HONE_MAX_RANK];
    bool noop;
    bool fp;                /* accumulate in double, else int64 */
    int64_t count;          /* elements folded into each output */
} red_spec;

/* True when the node takes its axes from input 1. */
static bool axes_input(const hone_node *n)
{
    return n->opset >= 18 || (!strcmp(n->op_type, "ReduceSum") && n->opset >= 13);
}

/* Reads the reduced axes (attribute or known input); unsupported when unknown. */
static hone_status red_axes(bk_lower *L, red_spec *s)
{
    const hone_value *x = bk_in(L, 0);
    int64_t ax[HONE_MAX_RANK];
    int na = 0;
    if (axes_input(L->node)) {
        const hone_tensor *t = bk_in_known(L, 1);
        if (bk_in(L, 1) && !t)
            return bk_unsupported(L, "axes computed at run time");
        na = t ? hone_tensor_ints(t, ax, HONE_MAX_RANK) : 0;
    } else {
        const int64_t *v;
        na = hone_attr_ints(L->node, "axes", &v);
        for (int i = 0; i < na && i < HONE_MAX_RANK; i++)
            ax[i] = v[i];
        na = na < 0 ? 0 : na;
    }
    s->noop = !na && axes_input(L->node) && hone_attr_int(L->node, "noop_with_empty_axes", 0);
    for (int i = 0; i < x->rank; i++)
        s->red[i] = !na && !s->noop;
    for (int i = 0; i < na; i++)
        s->red[ax[i] < 0 ? ax[i] + x->rank : ax[i]] = true;
    s->count = 1;
    for (int i = 0; i < x->rank; i++)
        s->count *= s->red[i] ? x->dims[i] : 1;
    return HONE_OK;
}

size_t bk_scratch_reduce(const bk_model *m, const hone_node *n)
{
    bool lse = !strcmp(n->op_type, "ReduceLogSumExp");
    return (size_t)bk_numel(n->out[0]) * 8 * (lse ? 2 : 1);
}

/* Accumulator start value of a kind. */
static LLVMValueRef red_init(bk_lower *L, const red_spec *s)
{
    bool mx = s->kind == R_MAX, mn = s->kind == R_MIN;
    if (s->fp)
        return cf(L->f64, s->kind == R_PROD ? 1 : mx ? -INFINITY : mn ? INFINITY : 0);
    return bk_i64(L, s->kind == R_PROD ? 1 : mx ? INT64_MIN : mn ? INT64_MAX : 0);
}

/* acc (op) v in the accumulator's domain; shift is the LogSumExp max. */
static LLVMValueRef red_fold(bk_lower *L, const red_spec *s, LLVMValueRef acc, LLVMValueRef v,
                             LLVMValueRef shift)
{
    if (!s->fp) {
        switch (s->kind) {
        case R_MAX: return sel(L, icmp(L, LLVMIntSGT, v, acc), v, acc);
        case R_MIN: return sel(L, icmp(L, LLVMIntSLT, v, acc), v, acc);
        case R_PROD: return LLVMBuildMul(L->b, acc, v, "");
        case R_L1: return LLVMBuildAdd(L->b, acc, sel(L, icmp(L, LLVMIntSLT, v, bk_i64(L, 0)), LLVMBuildNeg(L->b, v, ""), v), "");
        case R_SUMSQ: return LLVMBuildAdd(L->b, acc, LLVMBuildMul(L->b, v, v, ""), "");
        default: return LLVMBuildAdd(L->b, acc, v, "");
        }
    }
    LLVMValueRef nan = fcmp(L, LLVMRealUNO, v, v);
    switch (s->kind) {
    case R_MAX: return sel(L, LLVMBuildOr(L->b, nan, fcmp(L, LLVMRealOGT, v, acc), ""), v, acc);
    case R_MIN: return sel(L, LLVMBuildOr(L->b, nan, fcmp(L, LLVMRealOLT, v, acc), ""), v, acc);
    case R_PROD: return LLVMBuildFMul(L->b, acc, v, "");
    case R_L1: return LLVMBuildFAdd(L->b, acc, intr1(L, "llvm.fabs", v), "");
    case R_L2: case R_SUMSQ: return LLVMBuildFAdd(L->b, acc, LLVMBuildFMul(L->b, v, v, ""), "");
    case R_LSE: return LLVMBuildFAdd(L->b, acc, intr1(L, "llvm.exp", LLVMBuildFSub(L->b, v, shift, "")), "");
    default: return LLVMBuildFAdd(L->b, acc, v, "");
    }
}

typedef struct red_body {
    const red_spec *s;
    LLVMValueRef acc, x, shift;
    hone_dtype xdt;
    bool max_pass;          /* LogSumExp: the first pass finds the max */
} red_body;

static void red_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    red_body *b = user;
    LLVMTypeRef xt = bk_type(L, b->xdt), at = b->s->fp ? L->f64 : L->i64;
    LLVMValueRef v = LLVMBuildLoad2(L->b, xt, bk_gep(L, xt, b->x, offs[1]), "");
    v = convert(L, v, b->xdt, b->s->fp ? HONE_DT_DOUBLE : HONE_DT_INT64);
    LLVMValueRef ap = bk_gep(L, at, b->max_pass ? b->shift : b->acc, offs[0]);
    LLVMValueRef acc = LLVMBuildLoad2(L->b, at, ap, ""), shift = NULL;
    if (b->s->kind == R_LSE && !b->max_pass)
        shift = LLVMBuildLoad2(L->b, at, bk_gep(L, at, b->shift, offs[0]), "");
    red_spec mx = *b->s;
    mx.kind = R_MAX;
    LLVMBuildStore(L->b, red_fold(L, b->max_pass ? &mx : b->s, acc, v, shift), ap);
}

/* The final value of output element o from its accumulator(s). */
static LLVMValueRef red_finish(bk_lower *L, const red_spec *s, LLVMValueRef acc, LLVMValueRef shift)
{
    if (!s->fp)
        return s->kind == R_MEAN && s->count ? LLVMBuildSDiv(L->b, acc, bk_i64(L, s->count), "") : acc;
    switch (s->kind) {
    case R_MEAN: return LLVMBuildFDiv(L->b, acc, cf(L->f64, (double)s->count), "");
    case R_L2: return intr1(L, "llvm.sqrt", acc);
    case R_LOGSUM: return intr1(L, "llvm.log", acc);
    case R_LSE: {
        LLVMValueRef r = LLVMBuildFAdd(L->b, intr1(L, "llvm.log", acc), shift, "");
        LLVMValueRef fin = fcmp(L, LLVMRealONE, intr1(L, "llvm.fabs", shift), cf(L->f64, INFINITY));
        return sel(L, LLVMBuildAnd(L->b, fin, fcmp(L, LLVMRealORD, shift, shift), ""), r, shift);
    }
    default: return acc;
    }
}

/* Loop over the n outputs: init (finish = false) or convert (finish = true). */
static void red_outputs(bk_lower *L, const red_spec *s, LLVMValueRef acc, LLVMValueRef shift,
                        int64_t n, bool finish)
{
    LLVMTypeRef at = s->fp ? L->f64 : L->i64, yt = bk_type(L, bk_out(L, 0)->dtype);
    bk_loop lp;
    LLVMValueRef i = bk_loop_begin(L, n, &lp);
    LLVMValueRef ap = bk_gep(L, at, acc, i), sp = shift ? bk_gep(L, at, shift, i) : NULL;
    if (!finish) {
        LLVMBuildStore(L->b, red_init(L, s), ap);
        if (sp)
            LLVMBuildStore(L->b, cf(L->f64, -INFINITY), sp);
    } else {
        LLVMValueRef v = red_finish(L, s, LLVMBuildLoad2(L->b, at, ap, ""),
                                    sp ? LLVMBuildLoad2(L->b, at, sp, "") : NULL);
        LLVMBuildStore(L->b, convert(L, v, s->fp ? HONE_DT_DOUBLE : HONE_DT_INT64, bk_out(L, 0)->dtype),
                       bk_gep(L, yt, L->out[0], i));
    }
    bk_loop_end(L, &lp);
}

/* The reduced axes form one block: x viewed as [outer, red, inner]. */
static bool red_block(const red_spec *s, const hone_value *x, int64_t *o, int64_t *r, int64_t *in)
{
    int a = 0, b = x->rank - 1;
    while (a < x->rank && !s->red[a])
        a++;
    while (b >= 0 && !s->red[b])
        b--;
    if (a > b)
        return false;
    *o = *r = *in = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i >= a && i <= b && !s->red[i])
            return false;
        *(i < a ? o : i > b ? in : r) *= x->dims[i];
    }
    return true;
}

/* float32 Sum/Mean over one block of axes: the runtime kernel. */
static bool red_runtime(bk_lower *L, const red_spec *s)
{
    int64_t o, r, in;
    const hone_value *x = bk_in(L, 0);
    if (x->dtype != HONE_DT_FLOAT || (s->kind != R_SUM && s->kind != R_MEAN) || !red_block(s, x, &o, &r, &in))
        return false;
    LLVMTypeRef pt[6] = {L->ptr, L->ptr, L->i64, L->i64, L->i64, L->f64};
    LLVMValueRef a[6] = {L->in[0], L->out[0], bk_i64(L, o), bk_i64(L, r), bk_i64(L, in),
                         cf(L->f64, s->kind == R_MEAN ? 1.0 / (double)r : 1.0)};
    bk_call(L, "hone_rt_sum_f32", L->vd, pt, 6, a);
    return true;
}

hone_status bk_lower_reduce(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    red_spec s = {reduce_kind(L->node->op_type)};
    hone_status st = red_axes(L, &s);
    if (st)
        return st;
    if (s.noop) {
        bk_memcpy(L, L->out[0], L->in[0], (int64_t)bk_bytes(x));
        return HONE_OK;
    }
    s.fp = hone_dtype_is_float(x->dtype) || s.kind == R_L2 || s.kind == R_LOGSUM || s.kind == R_LSE;
    if (red_runtime(L, &s))
        return HONE_OK;
    LLVMValueRef acc = L->scratch, shift = NULL;
    if (s.kind == R_LSE)
        shift = bk_gep_c(L, L->i8, L->scratch, bk_numel(y) * 8);
    red_outputs(L, &s, acc, shift, bk_numel(y), false);
    bk_nest n = {.rank = x->rank, .n_ops = 2};
    memcpy(n.dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    bk_strides(x->rank, x->dims, n.strides[1]);
    int64_t os = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        n.strides[0][i] = s.red[i] ? 0 : os;
        os *= s.red[i] ? 1 : x->dims[i];
    }
    red_body b = {&s, acc, L->in[0], shift, x->dtype, s.kind == R_LSE};
    if (s.kind == R_LSE)
        bk_nest_emit(L, &n, red_emit_body, &b);
    b.max_pass = false;
    bk_nest_emit(L, &n, red_emit_body, &b);
    red_outputs(L, &s, acc, shift, bk_numel(y), true);
    return HONE_OK;
}

/* ===================== ArgMax / ArgMin ===================== */

/* v beats the running best cur: greater (ArgMax) or smaller, ties going to
 * the later index under select_last_index. */
static LLVMValueRef arg_better(bk_lower *L, LLVMValueRef v, LLVMValueRef cur, bool mx, bool last,
                               bool uns)
{
    if (is_fp(LLVMTypeOf(v)))
        return fcmp(L, mx ? (last ? LLVMRealOGE : LLVMRealOGT) : (last ? LLVMRealOLE : LLVMRealOLT), v, cur);
    LLVMIntPredicate gt = last ? (uns ? LLVMIntUGE : LLVMIntSGE) : (uns ? LLVMIntUGT : LLVMIntSGT);
    LLVMIntPredicate lt = last ? (uns ? LLVMIntULE : LLVMIntSLE) : (uns ? LLVMIntULT : LLVMIntSLT);
    return icmp(L, mx ? gt : lt, v, cur);
}

/* The scan along the axis from element base (len elements, inner apart);
 * best value and index live in allocas; returns the final index. */
static LLVMValueRef arg_scan(bk_lower *L, LLVMValueRef base, int64_t len, int64_t inner, bool mx,
                             bool last, LLVMValueRef best, LLVMValueRef bi)
{
    const hone_value *x = bk_in(L, 0);
    LLVMTypeRef xt = bk_type(L, x->dtype);
    bk_loop lj;
    LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, xt, bk_gep(L, xt, L->in[0], base), ""), best);
    LLVMBuildStore(L->b, bk_i64(L, 0), bi);
    LLVMValueRef j = bk_loop_begin(L, len, &lj);
    LLVMValueRef off = LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, j, bk_i64(L, inner), ""), "");
    LLVMValueRef v = LLVMBuildLoad2(L->b, xt, bk_gep(L, xt, L->in[0], off), "");
    LLVMValueRef cur = LLVMBuildLoad2(L->b, xt, best, "");
    LLVMValueRef better = arg_better(L, v, cur, mx, last, is_unsigned(x->dtype));
    LLVMBuildStore(L->b, sel(L, better, v, cur), best);
    LLVMBuildStore(L->b, sel(L, better, j, LLVMBuildLoad2(L->b, L->i64, bi, "")), bi);
    bk_loop_end(L, &lj);
    return LLVMBuildLoad2(L->b, L->i64, bi, "");
}

/* ArgMax / ArgMin: for each (outer, inner) position the index of the extreme
 * along the axis, the first one unless select_last_index asks for the last. */
hone_status bk_lower_argminmax(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    bool mx = !strcmp(L->node->op_type, "ArgMax"), last = hone_attr_int(L->node, "select_last_index", 0);
    int64_t axis = hone_attr_int(L->node, "axis", 0), outer = 1, len, inner = 1;
    axis = axis < 0 ? axis + x->rank : axis;
    len = x->dims[axis];
    for (int i = 0; i < x->rank; i++)
        *(i < axis ? &outer : &inner) *= i == axis ? 1 : x->dims[i];
    if (len == 0)
        return bk_unsupported(L, "reduction over an empty axis");
    LLVMValueRef best = LLVMBuildAlloca(L->b, bk_type(L, x->dtype), ""), bi = LLVMBuildAlloca(L->b, L->i64, "");
    bk_loop lo, li;
    LLVMValueRef o = bk_loop_begin(L, outer, &lo), i = bk_loop_begin(L, inner, &li);
    LLVMValueRef base = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, o, bk_i64(L, len * inner), ""), i, "");
    LLVMValueRef k = arg_scan(L, base, len, inner, mx, last, best, bi);
    LLVMValueRef yo = LLVMBuildAdd(L->b, LLVMBuildMul(L->b, o, bk_i64(L, inner), ""), i, "");
    LLVMBuildStore(L->b, k, bk_gep(L, L->i64, L->out[0], yo));
    bk_loop_end(L, &li);
    bk_loop_end(L, &lo);
    return HONE_OK;
}
