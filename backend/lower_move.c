/*
 * Data movement as loop nests. Most layout ops are one strided copy: a nest
 * over the output (contiguous, innermost axis last) whose input operand has
 * per-axis strides and a base offset computed at compile time:
 *
 *   Transpose      input strides permuted
 *   Slice          base = sum start*stride, strides scaled by the steps
 *   Concat, Split  one copy per piece, into or out of an offset sub-block
 *   Expand         stride 0 along broadcast axes
 *   Tile           each axis split into (repeat, extent) with stride 0 on repeat
 *   DepthToSpace,  the output viewed as 6-D [N, C', H, b, W, b] (or the input
 *   SpaceToDepth   as such), which makes the channel shuffle affine
 *
 * Pad and nearest Resize need per-axis index tables (private constant
 * globals of element offsets, a negative sentinel marking padding); linear
 * Resize adds a weight table and sums the 2^k corners of its k interpolated
 * axes. Ops driven by run-time indices live in lower_index.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "resize.h"
#include "ops_util.h"

/* ===================== strided copies ===================== */

typedef struct copy_body {
    LLVMTypeRef t;
    LLVMValueRef out, in;
} copy_body;

static void copy_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    copy_body *c = user;
    LLVMValueRef v = LLVMBuildLoad2(L->b, c->t, bk_gep(L, c->t, c->in, offs[1]), "");
    LLVMBuildStore(L->b, v, bk_gep(L, c->t, c->out, offs[0]));
}

void bk_emit_copy(bk_lower *L, LLVMTypeRef ty, LLVMValueRef out, LLVMValueRef in, const bk_nest *n)
{
    copy_body c = {ty, out, in};
    bk_nest_emit(L, n, copy_emit_body, &c);
}

/* A nest over dims with contiguous output strides and input strides is. */
static bk_nest copy_nest(int rank, const int64_t *dims, const int64_t *is)
{
    bk_nest n = {.rank = rank, .n_ops = 2};
    memcpy(n.dims, dims, sizeof(int64_t) * (size_t)rank);
    bk_strides(rank, dims, n.strides[0]);
    memcpy(n.strides[1], is, sizeof(int64_t) * (size_t)rank);
    return n;
}

static LLVMTypeRef elem_type(bk_lower *L)
{
    return bk_type(L, bk_out(L, 0)->dtype);
}

/* Copies input 0 into output 0 through input strides is and base offset. */
static hone_status copy_view(bk_lower *L, const int64_t *is, int64_t base)
{
    const hone_value *y = bk_out(L, 0);
    bk_nest n = copy_nest(y->rank, y->dims, is);
    LLVMTypeRef t = elem_type(L);
    bk_emit_copy(L, t, L->out[0], bk_gep_c(L, t, L->in[0], base), &n);
    return HONE_OK;
}

/* Known integer input i into v (at most cap); -1 when not known at compile time. */
static int known_ints(bk_lower *L, int i, int64_t *v, int cap)
{
    const hone_tensor *t = bk_in_known(L, i);
    if (!t || t->numel > cap || !hone_dtype_is_int(t->dtype))
        return -1;
    return hone_tensor_ints(t, v, cap);
}

static int norm_axis(int64_t a, int rank)
{
    return (int)(a < 0 ? a + rank : a);
}

hone_status bk_lower_transpose(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    int64_t xs[HONE_MAX_RANK], is[HONE_MAX_RANK];
    const int64_t *perm;
    int np = hone_attr_ints(L->node, "perm", &perm);
    bk_strides(x->rank, x->dims, xs);
    for (int i = 0; i < x->rank; i++)
        is[i] = xs[np == x->rank ? perm[i] : x->rank - 1 - i];
    return copy_view(L, is, 0);
}

hone_status bk_lower_expand(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    int64_t is[HONE_MAX_RANK];
    bk_bcast_strides(x->rank, x->dims, y->rank, y->dims, is);
    return copy_view(L, is, 0);
}

/* Slice: per sliced axis the first index and the step; counts are the output's. */
hone_status bk_lower_slice(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    int64_t st[HONE_MAX_RANK], ax[HONE_MAX_RANK], sp[HONE_MAX_RANK], xs[HONE_MAX_RANK], is[HONE_MAX_RANK];
    int ns, na, nsp;
    if (L->node->opset < 10) {
        const int64_t *a;
        ns = hone_attr_ints(L->node, "starts", &a);
        memcpy(st, a, sizeof(int64_t) * (size_t)(ns > 0 ? ns : 0));
        na = hone_attr_ints(L->node, "axes", &a);
        memcpy(ax, a, sizeof(int64_t) * (size_t)(na > 0 ? na : 0));
        nsp = -1;
    } else {
        ns = known_ints(L, 1, st, HONE_MAX_RANK);
        na = bk_in(L, 3) ? known_ints(L, 3, ax, HONE_MAX_RANK) : -2;
        nsp = bk_in(L, 4) ? known_ints(L, 4, sp, HONE_MAX_RANK) : -2;
        if (ns < 0 || na == -1 || nsp == -1)
            return bk_unsupported(L, "starts, axes or steps computed at run time");
    }
    if (na < 0)
        for (na = 0; na < ns; na++)
            ax[na] = na;
    bk_strides(x->rank, x->dims, xs);
    memcpy(is, xs, sizeof is);
    int64_t base = 0;
    for (int k = 0; k < na && k < ns; k++) {
        int a = norm_axis(ax[k], x->rank);
        int64_t step = nsp > k ? sp[k] : 1, d = x->dims[a], s = st[k] < 0 ? st[k] + d : st[k];
        s = step > 0 ? (s < 0 ? 0 : s > d ? d : s) : (s < 0 ? 0 : s > d - 1 ? d - 1 : s);
        base += s * xs[a];
        is[a] = step * xs[a];
    }
    return copy_view(L, is, base);
}

hone_status bk_lower_tile(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    int64_t rep[HONE_MAX_RANK], xs[HONE_MAX_RANK], ys = 1;
    if (known_ints(L, 1, rep, HONE_MAX_RANK) != x->rank)
        return bk_unsupported(L, "repeats computed at run time");
    bk_strides(x->rank, x->dims, xs);
    bk_nest n = {.rank = 2 * x->rank, .n_ops = 2};
    for (int a = x->rank - 1; a >= 0; a--) {
        n.dims[2 * a] = rep[a];
        n.dims[2 * a + 1] = x->dims[a];
        n.strides[0][2 * a + 1] = ys;
        n.strides[0][2 * a] = ys * x->dims[a];
        ys *= x->dims[a] * rep[a];
        n.strides[1][2 * a] = 0;
        n.strides[1][2 * a + 1] = xs[a];
    }
    bk_emit_copy(L, elem_type(L), L->out[0], L->in[0], &n);
    return HONE_OK;
}

/* Copies piece (a slab of whole along axis, starting at index at) into
 * whole (into = true) or out of it; whole has row-major strides ws. */
static void slab_copy(bk_lower *L, LLVMTypeRef t, const hone_value *piece, LLVMValueRef pp,
                      LLVMValueRef whole, const int64_t *ws, int64_t at, int axis, bool into)
{
    bk_nest n = {.rank = piece->rank, .n_ops = 2};
    memcpy(n.dims, piece->dims, sizeof(int64_t) * (size_t)piece->rank);
    memcpy(n.strides[into ? 0 : 1], ws, sizeof(int64_t) * (size_t)piece->rank);
    bk_strides(piece->rank, piece->dims, n.strides[into ? 1 : 0]);
    LLVMValueRef wp = bk_gep_c(L, t, whole, at * ws[axis]);
    bk_emit_copy(L, t, into ? wp : pp, into ? pp : wp, &n);
}

/* Concat (into the output) and Split (out of the input): one slab per piece. */
static hone_status slabs(bk_lower *L, bool concat)
{
    const hone_value *whole = concat ? bk_out(L, 0) : bk_in(L, 0);
    int axis = norm_axis(hone_attr_int(L->node, "axis", 0), whole->rank);
    int64_t ws[HONE_MAX_RANK], at = 0;
    bk_strides(whole->rank, whole->dims, ws);
    LLVMTypeRef t = bk_type(L, whole->dtype);
    int n = concat ? L->node->n_in : L->node->n_out;
    for (int i = 0; i < n; i++) {
        const hone_value *piece = concat ? bk_in(L, i) : bk_out(L, i);
        if (!piece)
            continue;
        slab_copy(L, t, piece, concat ? L->in[i] : L->out[i], concat ? L->out[0] : L->in[0], ws, at,
                  axis, concat);
        at += piece->dims[axis];
    }
    return HONE_OK;
}

hone_status bk_lower_concat(bk_lower *L)
{
    return slabs(L, true);
}

hone_status bk_lower_split(bk_lower *L)
{
    return slabs(L, false);
}

/* DepthToSpace: Y[N, C', H*b, W*b] walked as [N, C', H, b, W, b]. */
hone_status bk_lower_depth_to_space(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    int64_t b = hone_attr_int(L->node, "blocksize", 1), c2 = y->dims[1];
    int64_t sC = x->dims[2] * x->dims[3], sH = x->dims[3], sN = x->dims[1] * sC;
    bool crd = !strcmp(hone_attr_str(L->node, "mode", "DCR"), "CRD");
    if (x->rank != 4)
        return bk_unsupported(L, "rank %d input", x->rank);
    int64_t dims[6] = {x->dims[0], c2, x->dims[2], b, x->dims[3], b};
    int64_t is[6] = {sN, crd ? b * b * sC : sC, sH, crd ? b * sC : b * c2 * sC, 1, crd ? sC : c2 * sC};
    bk_nest n = copy_nest(6, dims, is);
    bk_emit_copy(L, elem_type(L), L->out[0], L->in[0], &n);
    return HONE_OK;
}

/* SpaceToDepth: Y[N, b*b*C, H/b, W/b] walked as [N, b, b, C, H/b, W/b]. */
hone_status bk_lower_space_to_depth(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    int64_t b = hone_attr_int(L->node, "blocksize", 1);
    int64_t sH = x->dims[3], sC = x->dims[2] * sH, sN = x->dims[1] * sC;
    if (x->rank != 4)
        return bk_unsupported(L, "rank %d input", x->rank);
    int64_t dims[6] = {x->dims[0], b, b, x->dims[1], y->dims[2], y->dims[3]};
    int64_t is[6] = {sN, sH, 1, sC, b * sH, b};
    bk_nest n = copy_nest(6, dims, is);
    bk_emit_copy(L, elem_type(L), L->out[0], L->in[0], &n);
    return HONE_OK;
}

/* ===================== table-driven copies: Pad, Resize ===================== */

/* Marks an index table entry as padding; sums of up to 16 entries stay negative. */
#define PAD_MARK (INT64_MIN / 32)

typedef struct table_body {
    LLVMTypeRef t;
    int rank;
    LLVMValueRef tab[HONE_MAX_RANK];   /* per axis: i64 offsets, nterms[a] per entry */
    LLVMValueRef wts[HONE_MAX_RANK];   /* per axis f64 weights, NULL = one term of weight 1 */
    int nterms[HONE_MAX_RANK];
    LLVMValueRef pad;                  /* Pad, Resize extrapolation: value for marked entries */
} table_body;

/* Entry i, term k of a table with nt terms per entry. */
static LLVMValueRef table_at(bk_lower *L, LLVMTypeRef t, LLVMValueRef tab, LLVMValueRef i, int nt, int k)
{
    LLVMValueRef idx = nt > 1 ? LLVMBuildAdd(L->b, LLVMBuildMul(L->b, i, bk_i64(L, nt), ""), bk_i64(L, k), "") : i;
    return LLVMBuildLoad2(L->b, t, bk_gep(L, t, tab, idx), "");
}

/* Pad / nearest body: offset = sum of the axes' table entries; marked -> pad value. */
static void gather_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    table_body *b = user;
    LLVMValueRef off = bk_i64(L, 0);
    for (int a = 0; a < b->rank; a++)
        off = LLVMBuildAdd(L->b, off, table_at(L, L->i64, b->tab[a], ivs[a], 1, 0), "");
    if (!b->pad) {
        LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, b->t, bk_gep(L, b->t, L->in[0], off), ""),
                       bk_gep(L, b->t, L->out[0], offs[0]));
        return;
    }
    LLVMValueRef inside = LLVMBuildICmp(L->b, LLVMIntSGE, off, bk_i64(L, 0), "");
    LLVMValueRef safe = LLVMBuildSelect(L->b, inside, off, bk_i64(L, 0), "");
    LLVMValueRef v = LLVMBuildLoad2(L->b, b->t, bk_gep(L, b->t, L->in[0], safe), "");
    LLVMBuildStore(L->b, LLVMBuildSelect(L->b, inside, v, b->pad, ""), bk_gep(L, b->t, L->out[0], offs[0]));
}

/* Runs the table body over the output shape (axes kept for the tables). */
static void emit_table_nest(bk_lower *L, table_body *b, bk_body_fn body)
{
    const hone_value *y = bk_out(L, 0);
    bk_nest n = {.rank = y->rank, .n_ops = 1, .keep_axes = true};
    memcpy(n.dims, y->dims, sizeof(int64_t) * (size_t)y->rank);
    bk_strides(y->rank, y->dims, n.strides[0]);
    bk_nest_emit(L, &n, body, b);
}

/* Source index along a padded axis, or -1 for a constant-mode pad element. */
static int64_t pad_source(const char *mode, int64_t i, int64_t d)
{
    if (!strcmp(mode, "edge"))
        return i < 0 ? 0 : i >= d ? d - 1 : i;
    if (!strcmp(mode, "wrap"))
        return ((i % d) + d) % d;
    if (!strcmp(mode, "reflect")) {
        if (d == 1)
            return 0;
        int64_t p = 2 * (d - 1), r = ((i % p) + p) % p;
        return r < d ? r : p - r;
    }
    return i < 0 || i >= d ? -1 : i;
}

/* Pad's begin pads per axis (pads input or attribute, optional axes input). */
static hone_status pad_begins(bk_lower *L, int rank, int64_t *begin)
{
    int64_t pads[2 * HONE_MAX_RANK], ax[HONE_MAX_RANK];
    int np, na = rank;
    if (L->node->opset < 11) {
        const int64_t *a;
        np = hone_attr_ints(L->node, "pads", &a);
        memcpy(pads, a, sizeof(int64_t) * (size_t)(np > 0 ? np : 0));
    } else {
        np = known_ints(L, 1, pads, 2 * HONE_MAX_RANK);
    }
    if (bk_in(L, 3) && (na = known_ints(L, 3, ax, HONE_MAX_RANK)) < 0)
        return bk_unsupported(L, "axes computed at run time");
    if (np < 0 || np != 2 * na)
        return bk_unsupported(L, "pads computed at run time");
    memset(begin, 0, sizeof(int64_t) * (size_t)rank);
    for (int k = 0; k < na; k++)
        begin[bk_in(L, 3) ? norm_axis(ax[k], rank) : k] = pads[k];
    return HONE_OK;
}

/* The pad value: the attribute (old opsets), input 2 (loaded at run time), or 0. */
static LLVMValueRef pad_value(bk_lower *L, LLVMTypeRef t)
{
    bool fp = bk_is_float_type(t);
    if (L->node->opset < 11) {
        double v = hone_attr_float(L->node, "value", 0);
        return fp ? LLVMConstReal(t, v) : LLVMConstInt(t, (unsigned long long)(int64_t)v, 1);
    }
    const hone_value *c = bk_in(L, 2);
    if (c && bk_numel(c) > 0)
        return LLVMBuildLoad2(L->b, t, L->in[2], "");
    return LLVMConstNull(t);
}

hone_status bk_lower_pad(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    const char *mode = hone_attr_str(L->node, "mode", "constant");
    int64_t begin[HONE_MAX_RANK], xs[HONE_MAX_RANK];
    hone_status st = pad_begins(L, x->rank, begin);
    if (st)
        return st;
    bk_strides(x->rank, x->dims, xs);
    table_body b = {elem_type(L), x->rank};
    for (int a = 0; a < x->rank; a++) {
        if (x->dims[a] == 0 && y->dims[a] > 0 && strcmp(mode, "constant"))
            return bk_unsupported(L, "%s padding of an empty axis", mode);
        int64_t *tab = malloc(sizeof(int64_t) * (size_t)(y->dims[a] + 1));
        HONE_ASSERT(tab);
        for (int64_t i = 0; i < y->dims[a]; i++) {
            int64_t s = pad_source(mode, i - begin[a], x->dims[a]);
            tab[i] = s < 0 ? PAD_MARK : s * xs[a];
        }
        b.tab[a] = bk_global_bytes(L, tab, sizeof(int64_t) * (size_t)y->dims[a], "padtab");
        free(tab);
    }
    b.pad = pad_value(L, b.t);
    emit_table_nest(L, &b, gather_emit_body);
    return HONE_OK;
}

/* ---- Resize ---- */

/* The frontend's Resize plan, seen through the compiled model: input shapes
 * plus the scales/sizes/roi known at compile time. */
static hone_status rs_prepare(bk_lower *L, hone_resize_plan *p)
{
    const hone_node *n = L->node;
    hone_tinfo ti[HONE_MAX_RANK], to = {0};
    const hone_tinfo *pi[HONE_MAX_RANK];
    int nin = n->n_in < HONE_MAX_RANK ? n->n_in : HONE_MAX_RANK;
    for (int i = 0; i < nin; i++) {
        const hone_value *v = bk_in(L, i);
        pi[i] = v ? &ti[i] : NULL;
        if (!v)
            continue;
        ti[i] = (hone_tinfo){v->dtype, v->rank, {0}, bk_in_known(L, i)};
        memcpy(ti[i].dims, v->dims, sizeof ti[i].dims);
    }
    to.rank = -1;
    hone_infer ic = {L->ctx, n, n->opset, nin, pi, 1, &to, NULL};
    hone_status st = hone_resize_plan_of(&ic, !strcmp(n->op_type, "Upsample"), p);
    if (st == HONE_ERR_UNSUPPORTED)
        return bk_unsupported(L, "%s", L->ctx->msg);
    if (st)
        return st;
    if (p->known)
        return HONE_OK;
    /* sizes known only at run time: the compiled output shape gives them, and
     * with sizes ONNX defines each scale as out/in */
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0), *sc = n->n_in > 2 ? bk_in(L, 2) : NULL;
    bool by_sizes = strcmp(n->op_type, "Upsample") && n->opset >= 11 && (!sc || bk_numel(sc) == 0);
    if (!by_sizes || p->coord == HONE_RS_TF_CROP_AND_RESIZE)
        return bk_unsupported(L, "scales or roi computed at run time");
    for (int a = 0; a < x->rank; a++) {
        p->out[a] = y->dims[a];
        p->scale[a] = x->dims[a] ? (double)y->dims[a] / (double)x->dims[a] : 1;
    }
    p->known = true;
    return HONE_OK;
}

/* Emits the tables of axis a: per output entry nt terms (offsets, weights);
 * an axis whose entries are all one index of weight 1 gets one plain table,
 * entries outside the input (crop) the PAD_MARK sentinel. */
static void rs_axis_tables(bk_lower *L, const hone_resize_plan *p, int a, int64_t stride, table_body *b)
{
    const hone_value *x = bk_in(L, 0), *y = bk_out(L, 0);
    int64_t n = y->dims[a], in = x->dims[a], *tab = calloc((size_t)(4 * n + 1), sizeof *tab);
    double *wt = calloc((size_t)(4 * n + 1), sizeof *wt);
    HONE_ASSERT(tab && wt);
    int nt = 1;
    for (int64_t j = 0; j < n; j++) {
        int64_t idx[4];
        double w[4];
        int k = hone_resize_terms(p, a, x->rank, j, in, n, idx, w), nz = 0;
        bool unit = true;
        for (int t = 0; t < 4; t++) {
            tab[4 * j + t] = t < k ? idx[t] * stride : k ? 0 : PAD_MARK;
            wt[4 * j + t] = t < k ? w[t] : 0;
            nz += t < k && w[t] != 0;
            unit = unit && (t >= k || w[t] == 0 || w[t] == 1);
        }
        if (k && !(nz == 1 && unit))
            nt = k > nt ? k : nt;
    }
    for (int64_t j = 0; j < n * nt; j++) {
        int64_t e = j / nt, k = j % nt;
        while (nt == 1 && k < 3 && wt[4 * e + k] == 0 && tab[4 * e] != PAD_MARK)
            k++;
        tab[j] = tab[4 * e + (nt == 1 && wt[4 * e + k] == 0 ? 0 : k)];
        wt[j] = wt[4 * e + k];
    }
    b->nterms[a] = nt;
    b->tab[a] = bk_global_bytes(L, tab, sizeof(int64_t) * (size_t)(n * nt), "rstab");
    b->wts[a] = nt > 1 ? bk_global_bytes(L, wt, sizeof(double) * (size_t)(n * nt), "rswts") : NULL;
    free(tab);
    free(wt);
}

/* Interpolating body: the weighted sum over the product of the multi-term
 * axes' terms, in double; a marked (outside) entry gives the extrapolation value. */
static void interp_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    table_body *b = user;
    LLVMValueRef base = bk_i64(L, 0), o[HONE_MAX_RANK][4], w[HONE_MAX_RANK][4], sum = LLVMConstReal(L->f64, 0);
    int multi[HONE_MAX_RANK], k = 0, corners = 1;
    for (int a = 0; a < b->rank; a++) {
        if (b->nterms[a] == 1) {
            base = LLVMBuildAdd(L->b, base, table_at(L, L->i64, b->tab[a], ivs[a], 1, 0), "");
            continue;
        }
        multi[k++] = a;
        corners *= b->nterms[a];
        for (int t = 0; t < b->nterms[a]; t++) {
            o[a][t] = table_at(L, L->i64, b->tab[a], ivs[a], b->nterms[a], t);
            w[a][t] = table_at(L, L->f64, b->wts[a], ivs[a], b->nterms[a], t);
        }
    }
    LLVMValueRef outside = LLVMBuildICmp(L->b, LLVMIntSLT, base, bk_i64(L, 0), "");
    for (int q = 0; q < k; q++)
        outside = LLVMBuildOr(L->b, outside, LLVMBuildICmp(L->b, LLVMIntSLT, o[multi[q]][0], bk_i64(L, 0), ""), "");
    for (int corner = 0; corner < corners; corner++) {
        LLVMValueRef off = base, wt = LLVMConstReal(L->f64, 1);
        for (int q = 0, c = corner; q < k; q++) {
            int a = multi[q], t = c % b->nterms[a];
            c /= b->nterms[a];
            off = LLVMBuildAdd(L->b, off, o[a][t], "");
            wt = LLVMBuildFMul(L->b, wt, w[a][t], "");
        }
        off = LLVMBuildSelect(L->b, outside, bk_i64(L, 0), off, "");
        LLVMValueRef v = LLVMBuildLoad2(L->b, b->t, bk_gep(L, b->t, L->in[0], off), "");
        sum = LLVMBuildFAdd(L->b, sum, LLVMBuildFMul(L->b, wt, LLVMBuildFPCast(L->b, v, L->f64, ""), ""), "");
    }
    LLVMValueRef r = LLVMBuildFPCast(L->b, sum, b->t, "");
    LLVMBuildStore(L->b, LLVMBuildSelect(L->b, outside, b->pad, r, ""), bk_gep(L, b->t, L->out[0], offs[0]));
}

hone_status bk_lower_resize(bk_lower *L)
{
    const hone_value *x = bk_in(L, 0);
    hone_resize_plan p;
    hone_status st = rs_prepare(L, &p);
    if (st)
        return st;
    int64_t xs[HONE_MAX_RANK];
    bk_strides(x->rank, x->dims, xs);
    table_body b = {elem_type(L), x->rank};
    bool interp = p.mode != HONE_RS_NEAREST || p.coord == HONE_RS_TF_CROP_AND_RESIZE;
    if (interp && !hone_dtype_is_float(x->dtype))
        return bk_unsupported(L, "interpolation of %s", hone_dtype_onnx_name(x->dtype));
    for (int a = 0; a < x->rank; a++)
        rs_axis_tables(L, &p, a, xs[a], &b);
    if (interp)
        b.pad = LLVMConstReal(b.t, p.extrapolation);
    emit_table_nest(L, &b, interp ? interp_emit_body : gather_emit_body);
    return HONE_OK;
}

/* ===================== ConstantOfShape ===================== */

typedef struct fill_body {
    LLVMTypeRef t;
    LLVMValueRef v;
} fill_body;

static void fill_emit_body(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs)
{
    fill_body *f = user;
    LLVMBuildStore(L->b, f->v, bk_gep(L, f->t, L->out[0], offs[0]));
}

/* ConstantOfShape (a shape given at run time, or too large to embed): the
 * value attribute written everywhere, a memset when its bytes are all zero;
 * a run-time shape other than the compiled one fails the node. */
hone_status bk_lower_constant_of_shape(bk_lower *L)
{
    const hone_value *y = bk_out(L, 0);
    const hone_attr *a = hone_attr_find(L->node, "value");
    const hone_tensor *t = a && a->kind == HONE_ATTR_TENSOR ? a->t : NULL;
    size_t es = hone_dtype_size(y->dtype);
    static const char zero[16];
    const void *bytes = t && t->numel >= 1 ? t->data : zero;
    if (es > sizeof zero || (t && t->dtype != y->dtype))
        return bk_unsupported(L, "value of type %s", hone_dtype_onnx_name(y->dtype));
    for (int d = 0; !bk_in_known(L, 0) && d < y->rank; d++) {
        /* a shape given at run time must be the compiled one */
        LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, bk_gep_c(L, L->i64, L->in[0], d), "");
        bk_check_or_fail(L, LLVMBuildICmp(L->b, LLVMIntEQ, v, bk_i64(L, y->dims[d]), ""));
    }
    if (!memcmp(bytes, zero, es)) {
        bk_memset(L, L->out[0], 0, (int64_t)bk_bytes(y));
        return HONE_OK;
    }
    LLVMTypeRef ty = elem_type(L);
    fill_body f = {ty, LLVMBuildLoad2(L->b, ty, bk_global_bytes(L, bytes, es, "fill"), "")};
    bk_nest n = {.rank = 1, .n_ops = 1, .dims = {bk_numel(y)}, .strides = {{1}}};
    bk_nest_emit(L, &n, fill_emit_body, &f);
    return HONE_OK;
}
