/*
 * Elementwise ops, part two: everything with numpy broadcasting. Binary
 * arithmetic (Add Sub Mul Div Mod Pow BitShift), logic (And Or Xor),
 * comparisons (Equal Less Greater LessOrEqual GreaterOrEqual), PRelu, Where,
 * and the variadic Max Min Sum Mean, which fold their inputs pairwise into
 * the output.
 *
 * One walker (for_rows) visits the output row by row: a row is a run along
 * the innermost axis, where each input either advances by one element or
 * stays put (stride 0); inputs of the output's full size or of one element
 * make the whole tensor a single row. A row kernel then runs a plain loop:
 * float32 has loops over raw float arrays for the arithmetic CNNs use, every
 * other dtype computes in its domain (double, int64 or uint64, see
 * elementwise.h) through the generic element accessors.
 *
 * Integer Div truncates toward zero; integer Mod follows the divisor's sign
 * unless fmod=1, which follows the dividend's (C's %); an integer division by
 * zero is reported as an error rather than trapping.
 */
#include <stdlib.h>

#include "elementwise.h"
#include "hone_rt.h"

/* Row callback: off[k] and step[k] locate input k along the row; the row's
 * output elements are o .. o+len-1. */
typedef void (*row_fn)(void *state, const int64_t *off, const int64_t *step, int64_t o,
                       int64_t len);

/* Visits the rows of the broadcast of ins[0..n) onto the shape (rank, dims). */
static void for_rows(int rank, const int64_t *dims, int n, const hone_tensor **ins, row_fn fn,
                     void *state)
{
    int64_t total = 1, off[HONE_BCAST_MAX_IN] = {0}, step[HONE_BCAST_MAX_IN];
    bool flat = true;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    for (int k = 0; k < n; k++) {
        step[k] = ins[k]->numel == 1 ? 0 : 1;
        flat = flat && (ins[k]->numel == 1 || ins[k]->numel == total);
    }
    if (total == 0)
        return;
    if (flat) {
        fn(state, off, step, 0, total);
        return;
    }
    hone_bcast b;
    hone_bcast_init(&b, rank, dims, n, ins);
    int64_t len = dims[rank - 1];
    for (int k = 0; k < n; k++)
        step[k] = b.strides[k][rank - 1];
    b.dims[rank - 1] = 1; /* step over whole rows: the innermost index stays 0 */
    for (int64_t o = 0; o < total; o += len, hone_bcast_next(&b))
        fn(state, b.off, step, o, len);
}

/* ===================== scalar kernels ===================== */

/* The per-node settings of a binary kernel. */
typedef struct binop {
    hone_op op;
    bool fmod; /* Mod: sign of the dividend (C fmod / %) instead of the divisor */
    bool left; /* BitShift direction */
    bool div0; /* set when an integer division by zero was met */
} binop;

/* Mod through double: fmod, or numpy's mod (sign of the divisor). */
static double mod_f(double x, double y, bool cmod)
{
    double r = fmod(x, y);
    if (!cmod && r != 0 && (r < 0) != (y < 0))
        r += y;
    return r;
}

static double op_f(binop *b, double x, double y)
{
    switch (b->op) {
    case HONE_OP_ADD: case HONE_OP_SUM: case HONE_OP_MEAN: return x + y;
    case HONE_OP_SUB: return x - y;
    case HONE_OP_MUL: return x * y;
    case HONE_OP_DIV: return x / y;
    case HONE_OP_POW: return pow(x, y);
    case HONE_OP_MOD: return mod_f(x, y, b->fmod);
    case HONE_OP_MAX: return isnan(x) || x > y ? x : y;
    case HONE_OP_MIN: return isnan(x) || x < y ? x : y;
    case HONE_OP_PRELU: return x < 0 ? x * y : x;
    case HONE_OP_EQUAL: return x == y;
    case HONE_OP_LESS: return x < y;
    case HONE_OP_LESSOREQUAL: return x <= y;
    case HONE_OP_GREATER: return x > y;
    case HONE_OP_GREATEROREQUAL: return x >= y;
    default: HONE_ASSERT(!"binary op without a float kernel");
    }
}

/* Integer power by squaring (wrapping); negative exponents truncate 1/x^-y. */
static int64_t pow_i(int64_t x, int64_t y)
{
    if (y < 0)
        return x == 1 ? 1 : x == -1 ? (y % 2 ? -1 : 1) : 0;
    uint64_t r = 1, base = (uint64_t)x;
    for (; y; y >>= 1, base *= base)
        if (y & 1)
            r *= base;
    return (int64_t)r;
}

/* Signed Div/Mod: truncating division; Mod takes the divisor's sign unless
 * fmod is set. INT64_MIN / -1 wraps instead of trapping. */
static int64_t divmod_i(binop *b, int64_t x, int64_t y)
{
    if (y == 0) {
        b->div0 = true;
        return 0;
    }
    if (y == -1)
        return b->op == HONE_OP_DIV ? (int64_t)(0 - (uint64_t)x) : 0;
    if (b->op == HONE_OP_DIV)
        return x / y;
    int64_t r = x % y;
    return !b->fmod && r != 0 && (r < 0) != (y < 0) ? r + y : r;
}

static int64_t op_i(binop *b, int64_t x, int64_t y)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (b->op) {
    case HONE_OP_ADD: case HONE_OP_SUM: return (int64_t)(ux + uy);
    case HONE_OP_SUB: return (int64_t)(ux - uy);
    case HONE_OP_MUL: return (int64_t)(ux * uy);
    case HONE_OP_DIV: case HONE_OP_MOD: return divmod_i(b, x, y);
    case HONE_OP_POW: return pow_i(x, y);
    case HONE_OP_MAX: return x > y ? x : y;
    case HONE_OP_MIN: return x < y ? x : y;
    case HONE_OP_PRELU: return x < 0 ? (int64_t)(ux * uy) : x;
    case HONE_OP_EQUAL: return x == y;
    case HONE_OP_LESS: return x < y;
    case HONE_OP_LESSOREQUAL: return x <= y;
    case HONE_OP_GREATER: return x > y;
    case HONE_OP_GREATEROREQUAL: return x >= y;
    case HONE_OP_AND: return x && y;
    case HONE_OP_OR: return x || y;
    case HONE_OP_XOR: return !x != !y;
    default: HONE_ASSERT(!"binary op without an int kernel");
    }
}

static uint64_t op_u(binop *b, uint64_t x, uint64_t y)
{
    if ((b->op == HONE_OP_DIV || b->op == HONE_OP_MOD) && y == 0) {
        b->div0 = true;
        return 0;
    }
    switch (b->op) {
    case HONE_OP_ADD: case HONE_OP_SUM: return x + y;
    case HONE_OP_SUB: return x - y;
    case HONE_OP_MUL: return x * y;
    case HONE_OP_DIV: return x / y;
    case HONE_OP_MOD: return x % y;
    case HONE_OP_BITSHIFT: return y >= 64 ? 0 : b->left ? x << y : x >> y;
    case HONE_OP_MAX: return x > y ? x : y;
    case HONE_OP_MIN: return x < y ? x : y;
    case HONE_OP_PRELU: return x;
    case HONE_OP_EQUAL: return x == y;
    case HONE_OP_LESS: return x < y;
    case HONE_OP_LESSOREQUAL: return x <= y;
    case HONE_OP_GREATER: return x > y;
    case HONE_OP_GREATEROREQUAL: return x >= y;
    default: return (uint64_t)op_i(b, (int64_t)x, (int64_t)y);
    }
}

/* ===================== binary rows ===================== */

typedef struct bin_state {
    binop *op;
    const hone_tensor *a, *b;
    hone_tensor *o;
    ew_domain dom;
    bool f32; /* a, b and o are float32 and op has a raw-array loop */
} bin_state;

/* The loop body EXPR over x (from a) and y (from b), specialised for the
 * common stride patterns so the compiler can vectorise them. */
#define F32_ROW(EXPR)                                       \
    do {                                                    \
        if (sa == 1 && sb == 1) {                           \
            for (int64_t j = 0; j < n; j++) {               \
                float x = a[j], y = b[j];                   \
                o[j] = (EXPR);                              \
            }                                               \
        } else if (sa == 1 && sb == 0) {                    \
            const float y = b[0];                           \
            for (int64_t j = 0; j < n; j++) {               \
                float x = a[j];                             \
                o[j] = (EXPR);                              \
            }                                               \
        } else {                                            \
            for (int64_t j = 0; j < n; j++) {               \
                float x = a[j * sa], y = b[j * sb];         \
                o[j] = (EXPR);                              \
            }                                               \
        }                                                   \
    } while (0)

/* A float32 row of an op that has_f32_loop accepts. */
static void row_f32(hone_op op, const float *a, int64_t sa, const float *b, int64_t sb, float *o,
                    int64_t n)
{
    switch (op) {
    case HONE_OP_ADD: case HONE_OP_SUM: case HONE_OP_MEAN: F32_ROW(x + y); break;
    case HONE_OP_SUB: F32_ROW(x - y); break;
    case HONE_OP_MUL: F32_ROW(x * y); break;
    case HONE_OP_DIV: F32_ROW(x / y); break;
    case HONE_OP_MAX: F32_ROW(isnan(x) || x > y ? x : y); break;
    case HONE_OP_MIN: F32_ROW(isnan(x) || x < y ? x : y); break;
    case HONE_OP_PRELU: F32_ROW(x < 0 ? x * y : x); break;
    case HONE_OP_POW: F32_ROW(y == 2 ? x * x : (float)pow(x, y)); break;
    default: HONE_ASSERT(!"no float32 loop for this op");
    }
}

static bool has_f32_loop(hone_op op)
{
    switch (op) {
    case HONE_OP_ADD: case HONE_OP_SUM: case HONE_OP_MEAN: case HONE_OP_SUB: case HONE_OP_MUL:
    case HONE_OP_DIV: case HONE_OP_MAX: case HONE_OP_MIN: case HONE_OP_PRELU: case HONE_OP_POW:
        return true;
    default:
        return false;
    }
}

/* One row of a binary op, in the state's domain. */
static void row_binary(void *state, const int64_t *off, const int64_t *step, int64_t o,
                       int64_t n)
{
    bin_state *s = state;
    const hone_tensor *a = s->a, *b = s->b;
    int64_t ia = off[0], ib = off[1], sa = step[0], sb = step[1];
    if (s->f32) {
        row_f32(s->op->op, (const float *)a->data + ia, sa, (const float *)b->data + ib, sb,
                (float *)s->o->data + o, n);
        return;
    }
    for (int64_t j = 0; j < n; j++, ia += sa, ib += sb) {
        if (s->dom == EW_D_FLOAT) {
            double x = hone_tensor_get_f64(a, ia), y = hone_tensor_get_f64(b, ib);
            hone_tensor_set_f64(s->o, o + j, op_f(s->op, x, y));
        } else if (s->dom == EW_D_INT) {
            int64_t x = hone_tensor_get_i64(a, ia), y = hone_tensor_get_i64(b, ib);
            hone_tensor_set_i64(s->o, o + j, op_i(s->op, x, y));
        } else {
            uint64_t x = (uint64_t)hone_tensor_get_i64(a, ia);
            uint64_t y = (uint64_t)hone_tensor_get_i64(b, ib);
            hone_tensor_set_i64(s->o, o + j, (int64_t)op_u(s->op, x, y));
        }
    }
}

/* Elements per chunk of a same-shape float32 op split over the kernel pool. */
#define BIN_GRAIN ((int64_t)1 << 16)

static void same_shape_range(void *ctx, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const bin_state *s = ctx;
    row_f32(s->op->op, (const float *)s->a->data + b, 1, (const float *)s->b->data + b, 1,
            (float *)s->o->data + b, e - b);
}

static bool same_shape(const hone_tensor *a, const hone_tensor *b)
{
    bool ok = a->rank == b->rank;
    for (int i = 0; ok && i < a->rank; i++)
        ok = a->dims[i] == b->dims[i];
    return ok;
}

/* o = a (op) b with broadcasting; o may be a itself (same shape). */
static hone_status run_binary(hone_eval *ec, binop *op, const hone_tensor *a,
                              const hone_tensor *b, hone_tensor *o)
{
    bin_state s = {op, a, b, o, hone_ew_domain(a->dtype), false};
    if (op->op == HONE_OP_POW && hone_dtype_is_float(b->dtype))
        s.dom = EW_D_FLOAT;
    else if (op->op == HONE_OP_POW && s.dom == EW_D_UINT)
        s.dom = EW_D_INT;
    s.f32 = a->dtype == HONE_DT_FLOAT && b->dtype == HONE_DT_FLOAT &&
            o->dtype == HONE_DT_FLOAT && has_f32_loop(op->op);
    const hone_tensor *ins[2] = {a, b};
    hone_rt_pool *pool = hone_rt_kernel_pool();
    if (pool && s.f32 && same_shape(a, b) && same_shape(a, o))
        hone_rt_parallel_for(pool, o->numel, BIN_GRAIN, same_shape_range, &s);
    else
        for_rows(o->rank, o->dims, 2, ins, row_binary, &s);
    if (op->div0)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID, "integer division by zero");
    return HONE_OK;
}

/* ===================== binary ops ===================== */

static bool is_compare(hone_op op)
{
    return op == HONE_OP_EQUAL || op == HONE_OP_LESS || op == HONE_OP_LESSOREQUAL ||
           op == HONE_OP_GREATER || op == HONE_OP_GREATEROREQUAL;
}

static bool is_logic(hone_op op)
{
    return op == HONE_OP_AND || op == HONE_OP_OR || op == HONE_OP_XOR;
}

/* Before opset 7, Add & co broadcast only with broadcast=1, aligning B's
 * shape with A's dims starting at `axis` (default: A's trailing dims), and
 * PRelu's 1-D slope runs along the channel axis 1. This gives B's dims padded
 * with 1s to A's rank; false when B broadcasts the numpy way. */
static bool legacy_dims(const hone_node *n, int opset, int ra, int rb, const int64_t *db,
                        int64_t *out, bool *bad)
{
    bool prelu = n->op == HONE_OP_PRELU && rb == 1 && ra >= 2;
    if (opset >= 7 || !(prelu || hone_attr_int(n, "broadcast", 0)) || rb > ra || rb < 0)
        return false;
    int64_t axis = hone_attr_int(n, "axis", prelu ? 1 : ra - rb);
    axis = axis < 0 ? axis + ra : axis;
    *bad = axis < 0 || axis + rb > ra;
    for (int i = 0; i < ra && !*bad; i++)
        out[i] = i >= axis && i < axis + rb ? db[i - axis] : 1;
    return true;
}

/* Shared infer of the binary ops: dtype masks for A and B, whether they
 * must match, and the output dtype (UNDEF: A's). */
static hone_status infer_bin(hone_infer *ic, unsigned ma, unsigned mb, bool same, hone_dtype out)
{
    hone_status st = hone_ew_check_type(ic, 0, ma);
    if (!st)
        st = hone_ew_check_type(ic, 1, mb);
    if (!st && same)
        st = hone_ew_check_same(ic, 0, 1);
    if (st)
        return st;
    const hone_tinfo *a = ic->in[0], *b = ic->in[1];
    int64_t ld[HONE_MAX_RANK], d[HONE_MAX_RANK];
    int r;
    bool bad = false;
    const int64_t *db = b->dims;
    if (legacy_dims(ic->node, ic->opset, a->rank, b->rank, b->dims, ld, &bad))
        db = ld;
    if (bad)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "legacy broadcast axis does not fit input ranks %d and %d", a->rank,
                              b->rank);
    st = hone_infer_broadcast(ic, a->rank, a->dims, db == ld ? a->rank : b->rank, db, &r, d);
    if (!st)
        hone_infer_set(ic, 0, out ? out : a->dtype, r, r >= 0 ? d : NULL);
    return st;
}

/* Add, Sub, Mul, Div, Mod: two numeric inputs of one dtype. */
hone_status infer_binary_arith(hone_infer *ic)
{
    int64_t fm = hone_attr_int(ic->node, "fmod", 0);
    if (ic->node->op == HONE_OP_MOD && fm != 0 && fm != 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "fmod must be 0 or 1, is %lld",
                              (long long)fm);
    return infer_bin(ic, EW_NUM, EW_NUM, true, HONE_DT_UNDEF);
}

/* Pow: base and exponent may differ in type; the output has the base's. */
hone_status infer_pow(hone_infer *ic)
{
    return infer_bin(ic, EW_NUM, EW_NUM, false, HONE_DT_UNDEF);
}

/* BitShift: unsigned integers, direction "LEFT" or "RIGHT". */
hone_status infer_bitshift(hone_infer *ic)
{
    const char *dir = hone_attr_str(ic->node, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "direction must be \"LEFT\" or \"RIGHT\", is \"%s\"", dir);
    return infer_bin(ic, EW_UINT, EW_UINT, true, HONE_DT_UNDEF);
}

/* And, Or, Xor: bool inputs. Comparisons: numeric (Equal: bool too). Both
 * give bool outputs. */
hone_status infer_compare(hone_infer *ic)
{
    hone_op op = ic->node->op;
    unsigned m = is_logic(op) ? EW_BOOL : op == HONE_OP_EQUAL ? EW_NUM | EW_BOOL : EW_NUM;
    return infer_bin(ic, m, m, true, HONE_DT_BOOL);
}

/* PRelu: y = x < 0 ? slope * x : x, slope broadcasting onto x. */
hone_status infer_prelu(hone_infer *ic)
{
    return infer_bin(ic, EW_FLOAT | EW_INT, EW_FLOAT | EW_INT, true, HONE_DT_UNDEF);
}

/* B viewed with legacy-broadcast dims (shares B's data), or B itself. */
static const hone_tensor *legacy_view(const hone_eval *ec, hone_tensor *view)
{
    const hone_tensor *a = ec->in[0], *b = ec->in[1];
    bool bad = false;
    if (!legacy_dims(ec->node, ec->opset, a->rank, b->rank, b->dims, view->dims, &bad) || bad)
        return b;
    view->dtype = b->dtype;
    view->rank = a->rank;
    view->numel = b->numel;
    view->data = b->data;
    return view;
}

/* Every two-input broadcasting op of this file. */
hone_status eval_binary(hone_eval *ec)
{
    hone_op op = ec->node->op;
    hone_tensor view;
    const hone_tensor *ins[2] = {ec->in[0], legacy_view(ec, &view)};
    hone_dtype odt = is_compare(op) || is_logic(op) ? HONE_DT_BOOL : ins[0]->dtype;
    int rank;
    int64_t dims[HONE_MAX_RANK];
    hone_bcast_shape(2, ins, &rank, dims);
    hone_status st = hone_eval_alloc(ec, 0, odt, rank, dims);
    if (st)
        return st;
    binop b = {op, hone_attr_int(ec->node, "fmod", 0) != 0,
               !strcmp(hone_attr_str(ec->node, "direction", ""), "LEFT"), false};
    return run_binary(ec, &b, ins[0], ins[1], ec->out[0]);
}

/* ===================== Where and copies ===================== */

/* Row state of Where (cond set) or of a broadcast copy (cond NULL). */
typedef struct sel_state {
    const hone_tensor *cond, *x, *y;
    hone_tensor *o;
    bool nomem;
} sel_state;

/* Copies elements si.. of s into oi.. of o, cnt of them (strings duplicated). */
static bool copy_elems(hone_tensor *o, int64_t oi, const hone_tensor *s, int64_t si, int64_t cnt)
{
    size_t es = hone_dtype_size(o->dtype);
    if (o->dtype != HONE_DT_STRING) {
        memcpy((char *)o->data + oi * (int64_t)es, (const char *)s->data + si * (int64_t)es,
               (size_t)cnt * es);
        return true;
    }
    bool ok = true;
    for (int64_t j = 0; j < cnt; j++) {
        const char *src = ((char *const *)s->data)[si + j];
        char **dst = (char **)o->data + oi + j;
        free(*dst);
        *dst = src ? strdup(src) : NULL;
        ok = ok && (!src || *dst);
    }
    return ok;
}

static void row_select(void *state, const int64_t *off, const int64_t *step, int64_t o,
                       int64_t n)
{
    sel_state *s = state;
    int k = s->cond ? 1 : 0;
    if (!s->cond && step[0] == 1) {
        s->nomem = s->nomem || !copy_elems(s->o, o, s->x, off[0], n);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        bool pick_x = !s->cond || ((const uint8_t *)s->cond->data)[off[0] + j * step[0]];
        int64_t src = pick_x ? off[k] + j * step[k] : off[k + 1] + j * step[k + 1];
        if (!copy_elems(s->o, o + j, pick_x ? s->x : s->y, src, 1))
            s->nomem = true;
    }
}

/* Where: cond bool, X and Y of one dtype; all three broadcast together. */
hone_status infer_where(hone_infer *ic)
{
    hone_status st = hone_ew_check_type(ic, 0, EW_BOOL);
    if (!st)
        st = hone_ew_check_type(ic, 1, EW_ANY);
    if (!st)
        st = hone_ew_check_same(ic, 1, 2);
    if (!st)
        st = hone_infer_bcast_all(ic, HONE_DT_UNDEF);
    if (!st)
        ic->out[0].dtype = ic->in[1]->dtype ? ic->in[1]->dtype : ic->in[2]->dtype;
    return st;
}

hone_status eval_where(hone_eval *ec)
{
    int rank;
    int64_t dims[HONE_MAX_RANK];
    hone_bcast_shape(3, ec->in, &rank, dims);
    hone_status st = hone_eval_alloc(ec, 0, ec->in[1]->dtype, rank, dims);
    if (st)
        return st;
    sel_state s = {ec->in[0], ec->in[1], ec->in[2], ec->out[0], false};
    for_rows(rank, dims, 3, ec->in, row_select, &s);
    return s.nomem ? hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory") : HONE_OK;
}

/* ===================== variadic Max Min Sum Mean ===================== */

/* Max, Min, Sum: numeric; Mean: floating. All inputs of one dtype. */
hone_status infer_variadic(hone_infer *ic)
{
    unsigned m = ic->node->op == HONE_OP_MEAN ? EW_FLOAT : EW_NUM;
    for (int i = 0; i < ic->n_in; i++) {
        if (!ic->in[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "input %d is missing", i);
        hone_status st = hone_ew_check_type(ic, i, m);
        if (!st)
            st = hone_ew_check_same(ic, 0, i);
        if (st)
            return st;
    }
    return hone_infer_bcast_all(ic, HONE_DT_UNDEF);
}

/* Divides every element of o by n (Mean). */
static void divide_all(hone_tensor *o, int n)
{
    if (o->dtype == HONE_DT_FLOAT) {
        float *p = o->data;
        for (int64_t i = 0; i < o->numel; i++)
            p[i] /= (float)n;
        return;
    }
    for (int64_t i = 0; i < o->numel; i++)
        hone_tensor_set_f64(o, i, hone_tensor_get_f64(o, i) / n);
}

/* out = in0 broadcast, then out = out (op) in_k for each further input. */
hone_status eval_variadic(hone_eval *ec)
{
    int rank;
    int64_t dims[HONE_MAX_RANK];
    hone_bcast_shape(ec->n_in, ec->in, &rank, dims);
    hone_status st = hone_eval_alloc(ec, 0, ec->in[0]->dtype, rank, dims);
    if (st)
        return st;
    hone_tensor *o = ec->out[0];
    sel_state s = {NULL, ec->in[0], NULL, o, false};
    for_rows(rank, dims, 1, ec->in, row_select, &s);
    binop b = {ec->node->op, false, false, false};
    for (int k = 1; k < ec->n_in && !st; k++)
        st = run_binary(ec, &b, o, ec->in[k], o);
    if (!st && b.op == HONE_OP_MEAN)
        divide_all(o, ec->n_in);
    return st;
}
