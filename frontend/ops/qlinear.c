/*
 * Integer matrix products and convolutions: MatMulInteger, QLinearMatMul,
 * ConvInteger and QLinearConv.
 *
 * Operands are first widened to int32 with their zero points subtracted (per
 * tensor, per row of A, per column of B, or per output channel of W); this
 * also makes padding exact, since a padded input position contributes 0.
 * Products accumulate in int64 and are stored as int32 (the *Integer ops) or
 * requantised as saturate(round_half_even(acc * sa * sb / sy) + zy) (the
 * QLinear ops). Matmul batch dims broadcast as in numpy's matmul, 1-D
 * operands included. The convolution is a direct N-D loop written here, so
 * this family does not depend on the float Conv of the nn family.
 *
 *   MatMul: A[..., M, K] * B[..., K, N] -> Y[..., M, N]
 *   Conv:   X[N, C, D...] * W[M, C/group, k...] -> Y[N, M, O...]
 */
#include <stdlib.h>

#include "misc.h"
#include "ops_util.h"

/* ------------------------------ shared parts ------------------------------ */

/* A scale or zero point must have 1 entry or `n` (n < 0: not checked). */
static hone_status check_param(hone_ctx *ctx, const hone_node *nd, const hone_tinfo *p, int64_t n,
                               const char *what)
{
    if (!p || p->rank < 0)
        return HONE_OK;
    int64_t len = p->rank == 0 ? 1 : p->rank == 1 ? p->dims[0] : -2;
    if (len == -2 || (len >= 0 && n >= 0 && len != 1 && len != n))
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "%s must have 1 entry or %lld, got shape of rank %d (%lld entries)",
                              what, (long long)n, p->rank, (long long)len);
    return HONE_OK;
}

/* int32 copy of t minus zp, where element i uses zero point (i / div) % period. */
static int32_t *widen(const hone_tensor *t, const hone_tensor *zp, int64_t period, int64_t div)
{
    int32_t *v = malloc(sizeof *v * (size_t)(t->numel + 1));
    if (!v)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t c = period > 1 && div > 0 ? (i / div) % period : 0;
        v[i] = (int32_t)(hone_tensor_get_i64(t, i) - (int64_t)hone_misc_param(zp, c));
    }
    return v;
}

/* Fails unless an operand has an 8- or 16-bit integer type. */
static hone_status check_operand(hone_ctx *ctx, const hone_node *nd, const hone_tinfo *t,
                                 const char *what)
{
    return t ? hone_misc_check_qtype(ctx, nd, t->dtype, what) : HONE_OK;
}

static hone_status oom(hone_eval *ec)
{
    return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
}

/* Output 0 (int32) from the accumulators, which it frees; NULL means allocation failed. */
static hone_status store_i32(hone_eval *ec, int64_t *acc)
{
    if (!acc)
        return oom(ec);
    int32_t *y = ec->out[0]->data;
    for (int64_t i = 0; i < ec->out[0]->numel; i++)
        y[i] = (int32_t)acc[i];
    free(acc);
    return HONE_OK;
}

/* ------------------------------ matrix product ------------------------------ */

/* Geometry of a numpy matmul (unknown dims stay negative; strides valid when all known). */
typedef struct mmgeo {
    int64_t m, k, n, batch;
    int rank, nb;                   /* output rank, batch rank */
    int64_t dims[HONE_MAX_RANK];    /* output dims, batch dims first */
    int64_t astr[HONE_MAX_RANK], bstr[HONE_MAX_RANK]; /* matrix stride per batch dim, 0 = broadcast */
} mmgeo;

/* One broadcast batch dim; sets *bad when both are known and incompatible. */
static int64_t bcast1(int64_t x, int64_t y, bool *bad)
{
    if (x == y || y == 1)
        return x;
    if (x == 1)
        return y;
    if (x >= 0 && y >= 0)
        *bad = true;
    return x >= 0 ? x : y >= 0 ? y : HONE_DIM_UNKNOWN;
}

/* Fills the batch part of g from A's and B's batch dims (ba and bb of them). */
static bool mm_batch(mmgeo *g, int ba, const int64_t *da, int bb, const int64_t *db)
{
    bool bad = false;
    int64_t pa = g->m * g->k, pb = g->k * g->n;
    g->nb = ba > bb ? ba : bb;
    g->batch = 1;
    for (int i = g->nb - 1; i >= 0; i--) {
        int ia = i - (g->nb - ba), ib = i - (g->nb - bb);
        int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
        g->dims[i] = bcast1(x, y, &bad);
        g->astr[i] = x == 1 ? 0 : pa;
        g->bstr[i] = y == 1 ? 0 : pb;
        pa *= x;
        pb *= y;
        g->batch *= g->dims[i];
    }
    return !bad;
}

static hone_status mm_geo(hone_ctx *ctx, const hone_node *nd, const hone_tinfo *a,
                          const hone_tinfo *b, mmgeo *g)
{
    int ra = a->rank, rb = b->rank;
    if (ra < 1 || rb < 1)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "operands must have rank >= 1, got %d and %d",
                              ra, rb);
    int64_t ka = a->dims[ra - 1], kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "inner dimensions differ: A has %lld, B %lld",
                              (long long)ka, (long long)kb);
    g->m = ra >= 2 ? a->dims[ra - 2] : 1;
    g->k = ka;
    g->n = rb >= 2 ? b->dims[rb - 1] : 1;
    if (!mm_batch(g, ra > 2 ? ra - 2 : 0, a->dims, rb > 2 ? rb - 2 : 0, b->dims))
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "batch dimensions do not broadcast");
    g->rank = g->nb;
    if (ra >= 2)
        g->dims[g->rank++] = g->m;
    if (rb >= 2)
        g->dims[g->rank++] = g->n;
    return HONE_OK;
}

/* c[m, n] = sum_k a[m, k] * b[k, n]. */
static void igemm(const int32_t *a, const int32_t *b, int64_t *c, int64_t m, int64_t k, int64_t n)
{
    for (int64_t i = 0; i < m; i++) {
        int64_t *ci = c + i * n;
        for (int64_t j = 0; j < n; j++)
            ci[j] = 0;
        for (int64_t p = 0; p < k; p++) {
            int64_t av = a[i * k + p];
            const int32_t *bp = b + p * n;
            for (int64_t j = 0; j < n; j++)
                ci[j] += av * bp[j];
        }
    }
}

/* acc[batch, m, n] for every (broadcast) batch of g. */
static void imatmul(const int32_t *a, const int32_t *b, int64_t *acc, const mmgeo *g)
{
    for (int64_t t = 0; t < g->batch; t++) {
        int64_t oa = 0, ob = 0, rem = t;
        for (int i = g->nb - 1; i >= 0; i--) {
            int64_t ix = rem % g->dims[i];
            rem /= g->dims[i];
            oa += ix * g->astr[i];
            ob += ix * g->bstr[i];
        }
        igemm(a + oa, b + ob, acc + t * g->m * g->n, g->m, g->k, g->n);
    }
}

/* Integer product of a and b with zero points subtracted (a's per row, b's per column). */
static int64_t *mm_accumulate(const hone_tensor *a, const hone_tensor *azp, const hone_tensor *b,
                              const hone_tensor *bzp, const mmgeo *g)
{
    int32_t *wa = widen(a, azp, g->m, g->k), *wb = widen(b, bzp, g->n, 1);
    int64_t *acc = malloc(sizeof *acc * (size_t)(g->batch * g->m * g->n + 1));
    if (wa && wb && acc)
        imatmul(wa, wb, acc, g);
    free(wa);
    free(wb);
    if (!wa || !wb) {
        free(acc);
        return NULL;
    }
    return acc;
}

/* Shape checks shared by MatMulInteger (ia, ib, zero points at iza, izb) and QLinearMatMul. */
static hone_status mm_check(hone_infer *ic, int ia, int ib, int iza, int izb, mmgeo *g)
{
    const hone_tinfo *a = ic->in[ia], *b = ic->in[ib];
    const hone_tinfo *za = iza < ic->n_in ? ic->in[iza] : NULL;
    const hone_tinfo *zb = izb < ic->n_in ? ic->in[izb] : NULL;
    hone_status st = check_operand(ic->ctx, ic->node, a, "A");
    if (st || (st = check_operand(ic->ctx, ic->node, b, "B")))
        return st;
    if (a->rank < 0 || b->rank < 0) {
        g->rank = -1;
        return HONE_OK;
    }
    if ((st = mm_geo(ic->ctx, ic->node, a, b, g)) ||
        (st = check_param(ic->ctx, ic->node, za, g->m, "A's zero point")))
        return st;
    return check_param(ic->ctx, ic->node, zb, g->n, "B's zero point");
}

hone_status infer_matmul_integer(hone_infer *ic)
{
    mmgeo g;
    hone_status st = mm_check(ic, 0, 1, 2, 3, &g);
    if (!st)
        hone_infer_set(ic, 0, HONE_DT_INT32, g.rank, g.dims);
    return st;
}

hone_status eval_matmul_integer(hone_eval *ec)
{
    const hone_tensor *a = ec->in[0], *b = ec->in[1];
    const hone_tensor *za = ec->n_in > 2 ? ec->in[2] : NULL, *zb = ec->n_in > 3 ? ec->in[3] : NULL;
    hone_tinfo ta, tb;
    mmgeo g;
    hone_status st = mm_geo(ec->ctx, ec->node, hone_misc_tinfo(&ta, a), hone_misc_tinfo(&tb, b), &g);
    if (st || (st = hone_eval_alloc(ec, 0, HONE_DT_INT32, g.rank, g.dims)))
        return st;
    return store_i32(ec, mm_accumulate(a, za, b, zb, &g));
}

/* QLinearMatMul inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp. */
hone_status infer_qlinear_matmul(hone_infer *ic)
{
    mmgeo g;
    hone_status st = mm_check(ic, 0, 3, 2, 5, &g);
    if (st || (st = check_param(ic->ctx, ic->node, ic->in[1], g.rank < 0 ? -1 : g.m, "a_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[4], g.rank < 0 ? -1 : g.n, "b_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[6], 1, "y_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[7], 1, "y_zero_point")) ||
        (st = hone_misc_check_qtype(ic->ctx, ic->node, ic->in[7]->dtype, "y_zero_point")))
        return st;
    hone_infer_set(ic, 0, ic->in[7]->dtype, g.rank, g.rank < 0 ? NULL : g.dims);
    return HONE_OK;
}

hone_status eval_qlinear_matmul(hone_eval *ec)
{
    const hone_tensor *a = ec->in[0], *b = ec->in[3], *const *in = ec->in;
    hone_tinfo ta, tb;
    mmgeo g;
    hone_status st = mm_geo(ec->ctx, ec->node, hone_misc_tinfo(&ta, a), hone_misc_tinfo(&tb, b), &g);
    if (st || (st = hone_eval_alloc(ec, 0, in[7]->dtype, g.rank, g.dims)))
        return st;
    int64_t *acc = mm_accumulate(a, in[2], b, in[5], &g);
    if (!acc)
        return oom(ec);
    double ys = hone_misc_param(in[6], 0), yz = hone_misc_param(in[7], 0);
    for (int64_t i = 0; i < ec->out[0]->numel; i++) {
        int64_t row = (i / g.n) % g.m, col = i % g.n;
        double mult = hone_misc_param(in[1], row) * hone_misc_param(in[4], col) / ys;
        hone_misc_quant_store(ec->out[0], i, (double)acc[i] * mult, yz);
    }
    free(acc);
    return HONE_OK;
}

/* ------------------------------ convolution ------------------------------ */

/* Geometry of an N-D grouped convolution (begin pads in pad). */
typedef struct cgeo {
    int ns;                               /* spatial rank */
    int64_t n, c, m, group, cg;           /* batch, in/out channels, groups, channels per group */
    int64_t in[HONE_MAX_RANK], k[HONE_MAX_RANK], out[HONE_MAX_RANK];
    int64_t stride[HONE_MAX_RANK], dil[HONE_MAX_RANK], pad[HONE_MAX_RANK];
} cgeo;

/* An optional ints attribute of exactly `want` entries (default dflt each). */
static hone_status conv_ints(hone_ctx *ctx, const hone_node *nd, const char *name, int want,
                             int64_t dflt, int64_t *v)
{
    const int64_t *a;
    int n = hone_attr_ints(nd, name, &a);
    for (int i = 0; i < want; i++)
        v[i] = n < 0 ? dflt : i < n ? a[i] : 0;
    if (n >= 0 && n != want)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "attribute %s has %d entries, expected %d",
                              name, n, want);
    return HONE_OK;
}

/* Output size and begin pad of spatial dim i from the auto_pad mode and pads. */
static hone_status conv_dim(hone_ctx *ctx, const hone_node *nd, cgeo *g, int i, const char *ap,
                            const int64_t *pads)
{
    int64_t in = g->in[i], s = g->stride[i], ek = g->dil[i] * (g->k[i] - 1) + 1;
    if (in < 0) {
        g->out[i] = HONE_DIM_UNKNOWN;
        return HONE_OK;
    }
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        g->out[i] = (in + s - 1) / s;
        int64_t total = (g->out[i] - 1) * s + ek - in;
        total = total > 0 ? total : 0;
        g->pad[i] = ap[5] == 'U' ? total / 2 : total - total / 2;
        return HONE_OK;
    }
    bool valid = !strcmp(ap, "VALID");
    g->pad[i] = valid ? 0 : pads[i];
    int64_t span = in + (valid ? 0 : pads[i] + pads[i + g->ns]) - ek;
    if (span < 0)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "kernel extent %lld exceeds padded input %lld in spatial dim %d",
                              (long long)ek, (long long)(span + ek), i);
    g->out[i] = span / s + 1;
    return HONE_OK;
}

/* Reads strides, dilations and pads (all positive / non-negative). */
static hone_status conv_attrs(hone_ctx *ctx, const hone_node *nd, cgeo *g, int64_t *pads)
{
    hone_status st = conv_ints(ctx, nd, "strides", g->ns, 1, g->stride);
    if (st || (st = conv_ints(ctx, nd, "dilations", g->ns, 1, g->dil)) ||
        (st = conv_ints(ctx, nd, "pads", 2 * g->ns, 0, pads)))
        return st;
    for (int i = 0; i < g->ns; i++)
        if (g->stride[i] < 1 || g->dil[i] < 1 || pads[i] < 0 || pads[i + g->ns] < 0)
            return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                  "strides and dilations must be >= 1 and pads >= 0");
    const int64_t *ks;
    int nk = hone_attr_ints(nd, "kernel_shape", &ks);
    for (int i = 0; i < nk && nk == g->ns; i++)
        if (g->k[i] >= 0 && ks[i] != g->k[i])
            return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                  "kernel_shape does not match the weight's spatial dims");
    return nk < 0 || nk == g->ns ? HONE_OK
                                 : hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                                  "kernel_shape has %d entries, expected %d", nk,
                                                  g->ns);
}

/* Checks channel counts against group. */
static hone_status conv_channels(hone_ctx *ctx, const hone_node *nd, cgeo *g, int64_t wc)
{
    g->group = hone_attr_int(nd, "group", 1);
    if (g->group < 1)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "group must be >= 1");
    if (g->c >= 0 && wc >= 0 && g->c != wc * g->group)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "input has %lld channels but weight expects %lld x group %lld",
                              (long long)g->c, (long long)wc, (long long)g->group);
    if (g->m >= 0 && g->m % g->group)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "%lld output channels do not split into %lld groups",
                              (long long)g->m, (long long)g->group);
    g->cg = wc;
    return HONE_OK;
}

/* Fills g and the output dims y from X[N, C, D...] and W[M, C/group, k...]. */
static hone_status conv_geo(hone_ctx *ctx, const hone_node *nd, const hone_tinfo *x,
                            const hone_tinfo *w, cgeo *g, int64_t *y)
{
    int64_t pads[2 * HONE_MAX_RANK];
    if (x->rank < 3 || w->rank != x->rank)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "input must be [N, C, D...] and weight [M, C/group, k...] of the same "
                              "rank, got ranks %d and %d", x->rank, w->rank);
    memset(g, 0, sizeof *g);
    g->ns = x->rank - 2;
    g->n = x->dims[0];
    g->c = x->dims[1];
    g->m = w->dims[0];
    for (int i = 0; i < g->ns; i++) {
        g->in[i] = x->dims[i + 2];
        g->k[i] = w->dims[i + 2];
    }
    hone_status st = conv_channels(ctx, nd, g, w->dims[1]);
    if (st || (st = conv_attrs(ctx, nd, g, pads)))
        return st;
    const char *ap = hone_attr_str(nd, "auto_pad", "NOTSET");
    for (int i = 0; i < g->ns && !st; i++)
        st = conv_dim(ctx, nd, g, i, ap, pads);
    y[0] = g->n;
    y[1] = g->m;
    memcpy(y + 2, g->out, sizeof(int64_t) * (size_t)g->ns);
    return st;
}

/* Sum over one channel's kernel window of x * w for output position o. */
static int64_t window_sum(const int32_t *x, const int32_t *w, const cgeo *g, const int64_t *o)
{
    int64_t ki[HONE_MAX_RANK] = {0}, sum = 0, ksz = 1;
    for (int d = 0; d < g->ns; d++)
        ksz *= g->k[d];
    for (int64_t kk = 0; kk < ksz; kk++) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < g->ns && inside; d++) {
            int64_t p = o[d] * g->stride[d] - g->pad[d] + ki[d] * g->dil[d];
            inside = p >= 0 && p < g->in[d];
            off = off * g->in[d] + p;
        }
        if (inside)
            sum += (int64_t)x[off] * w[kk];
        for (int d = g->ns - 1; d >= 0 && ++ki[d] == g->k[d]; d--)
            ki[d] = 0;
    }
    return sum;
}

/* acc[n, m, O...] of the grouped convolution of widened x and w. */
static void iconv(const int32_t *x, const int32_t *w, int64_t *acc, const cgeo *g)
{
    int64_t isz = 1, ksz = 1, osz = 1, mg = g->m / g->group;
    for (int d = 0; d < g->ns; d++) {
        isz *= g->in[d];
        ksz *= g->k[d];
        osz *= g->out[d];
    }
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t m = 0; m < g->m; m++) {
            int64_t oi[HONE_MAX_RANK] = {0}, *out = acc + (n * g->m + m) * osz;
            const int32_t *xg = x + (n * g->c + (m / mg) * g->cg) * isz;
            for (int64_t o = 0; o < osz; o++) {
                int64_t s = 0;
                for (int64_t c = 0; c < g->cg; c++)
                    s += window_sum(xg + c * isz, w + (m * g->cg + c) * ksz, g, oi);
                out[o] = s;
                for (int d = g->ns - 1; d >= 0 && ++oi[d] == g->out[d]; d--)
                    oi[d] = 0;
            }
        }
}

/* Integer convolution with zero points subtracted (w's per output channel). */
static int64_t *conv_accumulate(const hone_tensor *x, const hone_tensor *xzp, const hone_tensor *w,
                                const hone_tensor *wzp, const cgeo *g, int64_t ny)
{
    int64_t per_m = w->numel / (g->m ? g->m : 1);
    int32_t *wx = widen(x, xzp, 1, 1), *ww = widen(w, wzp, g->m, per_m);
    int64_t *acc = malloc(sizeof *acc * (size_t)(ny + 1));
    if (wx && ww && acc)
        iconv(wx, ww, acc, g);
    free(wx);
    free(ww);
    if (!wx || !ww) {
        free(acc);
        return NULL;
    }
    return acc;
}

/* Shape checks shared by ConvInteger (x 0, w 1, zps 2, 3) and QLinearConv (x 0, w 3, zps 2, 5). */
static hone_status conv_check(hone_infer *ic, int ix, int iw, int izx, int izw, cgeo *g,
                              int64_t *y)
{
    const hone_tinfo *x = ic->in[ix], *w = ic->in[iw];
    hone_status st = check_operand(ic->ctx, ic->node, x, "X");
    if (st || (st = check_operand(ic->ctx, ic->node, w, "W")))
        return st;
    if (x->rank < 0 || w->rank < 0) {
        g->ns = -3;
        return HONE_OK;
    }
    if ((st = conv_geo(ic->ctx, ic->node, x, w, g, y)) ||
        (st = check_param(ic->ctx, ic->node, izx < ic->n_in ? ic->in[izx] : NULL, 1, "x_zero_point")))
        return st;
    return check_param(ic->ctx, ic->node, izw < ic->n_in ? ic->in[izw] : NULL, g->m, "w_zero_point");
}

hone_status infer_conv_integer(hone_infer *ic)
{
    cgeo g;
    int64_t y[HONE_MAX_RANK];
    hone_status st = conv_check(ic, 0, 1, 2, 3, &g, y);
    if (!st)
        hone_infer_set(ic, 0, HONE_DT_INT32, g.ns + 2, y);
    return st;
}

hone_status eval_conv_integer(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *w = ec->in[1];
    const hone_tensor *zx = ec->n_in > 2 ? ec->in[2] : NULL, *zw = ec->n_in > 3 ? ec->in[3] : NULL;
    hone_tinfo tx, tw;
    cgeo g;
    int64_t y[HONE_MAX_RANK];
    hone_status st = conv_geo(ec->ctx, ec->node, hone_misc_tinfo(&tx, x), hone_misc_tinfo(&tw, w),
                              &g, y);
    if (st || (st = hone_eval_alloc(ec, 0, HONE_DT_INT32, g.ns + 2, y)))
        return st;
    return store_i32(ec, conv_accumulate(x, zx, w, zw, &g, ec->out[0]->numel));
}

/* QLinearConv inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B. */
hone_status infer_qlinear_conv(hone_infer *ic)
{
    cgeo g;
    int64_t y[HONE_MAX_RANK];
    hone_status st = conv_check(ic, 0, 3, 2, 5, &g, y);
    int64_t m = g.ns < 0 ? -1 : g.m;
    const hone_tinfo *b = ic->n_in > 8 ? ic->in[8] : NULL;
    if (st || (st = check_param(ic->ctx, ic->node, ic->in[1], 1, "x_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[4], m, "w_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[6], 1, "y_scale")) ||
        (st = check_param(ic->ctx, ic->node, ic->in[7], 1, "y_zero_point")) ||
        (st = hone_misc_check_qtype(ic->ctx, ic->node, ic->in[7]->dtype, "y_zero_point")))
        return st;
    if (b && b->rank >= 0 && (b->rank != 1 || (b->dims[0] >= 0 && m >= 0 && b->dims[0] != m)))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "bias must be 1-D with one entry per output channel");
    hone_infer_set(ic, 0, ic->in[7]->dtype, g.ns < 0 ? -1 : g.ns + 2, g.ns < 0 ? NULL : y);
    return HONE_OK;
}

hone_status eval_qlinear_conv(hone_eval *ec)
{
    const hone_tensor *const *in = ec->in, *b = ec->n_in > 8 ? ec->in[8] : NULL;
    hone_tinfo tx, tw;
    cgeo g;
    int64_t y[HONE_MAX_RANK];
    hone_status st = conv_geo(ec->ctx, ec->node, hone_misc_tinfo(&tx, in[0]),
                              hone_misc_tinfo(&tw, in[3]), &g, y);
    if (st || (st = hone_eval_alloc(ec, 0, in[7]->dtype, g.ns + 2, y)))
        return st;
    hone_tensor *out = ec->out[0];
    int64_t *acc = conv_accumulate(in[0], in[2], in[3], in[5], &g, out->numel);
    if (!acc)
        return oom(ec);
    int64_t osz = 1;
    for (int d = 0; d < g.ns; d++)
        osz *= g.out[d];
    double xs = hone_misc_param(in[1], 0), ys = hone_misc_param(in[6], 0);
    double yz = hone_misc_param(in[7], 0);
    for (int64_t i = 0; i < out->numel; i++) {
        int64_t m = (i / osz) % g.m;
        double v = (double)(acc[i] + (int64_t)hone_misc_param(b, m));
        hone_misc_quant_store(out, i, v * (xs * hone_misc_param(in[4], m) / ys), yz);
    }
    free(acc);
    return HONE_OK;
}
