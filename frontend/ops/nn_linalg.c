/*
 * Gemm and MatMul.
 *
 * float32 and float64 go to OpenBLAS (hone_rt_sgemm / hone_rt_dgemm); other
 * element types (float16, bfloat16, integers) run a plain triple loop through
 * double. MatMul follows numpy: a 1-D A gains a leading 1 and a 1-D B a
 * trailing 1 that are dropped from the result, and the batch dims (all but
 * the last two) broadcast. When B has no batch dims A's batches are
 * contiguous rows of one matrix, so the whole product is a single GEMM.
 */
#include "nn.h"

/* Fails when A and B have different known element types. */
static hone_status same_types(hone_infer *ic)
{
    hone_dtype a = ic->in[0]->dtype, b = ic->in[1]->dtype;
    if (a && b && a != b)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "A is %s but B is %s",
                              hone_dtype_name(a), hone_dtype_name(b));
    if (a == HONE_DT_BOOL || a == HONE_DT_STRING || a == HONE_DT_COMPLEX64 ||
        a == HONE_DT_COMPLEX128)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "element type %s is not numeric",
                              hone_dtype_name(a));
    return HONE_OK;
}

/* Fails unless C (rank <= 2) broadcasts onto [m, n]. */
static hone_status check_gemm_c(hone_infer *ic, const hone_tinfo *c, int64_t m, int64_t n)
{
    if (c && c->dtype && ic->in[0]->dtype && c->dtype != ic->in[0]->dtype)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "C is %s but A is %s",
                              hone_dtype_name(c->dtype), hone_dtype_name(ic->in[0]->dtype));
    if (!c || c->rank < 0)
        return HONE_OK;
    int64_t want[2] = {m, n};
    bool ok = c->rank <= 2;
    for (int i = 0; ok && i < c->rank; i++) {
        int64_t d = c->dims[c->rank - 1 - i], t = want[1 - i];
        ok = d == 1 || d < 0 || t < 0 || d == t;
    }
    if (!ok)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "C of rank %d does not broadcast onto [%lld, %lld]", c->rank,
                              (long long)m, (long long)n);
    return HONE_OK;
}

/* Gemm: A[M,K] (or [K,M] with transA), B[K,N] (or [N,K]), C onto [M,N] -> Y[M,N]. */
hone_status infer_gemm(hone_infer *ic)
{
    const hone_tinfo *a = ic->in[0], *b = ic->in[1];
    bool ta = hone_attr_int(ic->node, "transA", 0), tb = hone_attr_int(ic->node, "transB", 0);
    hone_status st = same_types(ic);
    if (st)
        return st;
    if ((a->rank >= 0 && a->rank != 2) || (b->rank >= 0 && b->rank != 2))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "A and B must be matrices, got ranks %d and %d", a->rank, b->rank);
    int64_t y[2] = {nn_dim(a, ta ? 1 : 0), nn_dim(b, tb ? 0 : 1)};
    int64_t ka = nn_dim(a, ta ? 0 : 1), kb = nn_dim(b, tb ? 1 : 0);
    if (ka >= 0 && kb >= 0 && ka != kb)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "inner dimensions differ: op(A) has K=%lld, op(B) has K=%lld",
                              (long long)ka, (long long)kb);
    st = check_gemm_c(ic, ic->n_in > 2 ? ic->in[2] : NULL, y[0], y[1]);
    if (!st)
        hone_infer_set(ic, 0, a->dtype ? a->dtype : b->dtype, 2, y);
    return st;
}

/* y = beta * C broadcast onto y (zeros without C). */
static void fill_scaled(hone_tensor *y, const hone_tensor *c, double beta)
{
    hone_bcast b;
    if (!c) {
        memset(y->data, 0, hone_tensor_nbytes(y));
        return;
    }
    hone_bcast_init(&b, y->rank, y->dims, 1, &c);
    for (int64_t i = 0; i < y->numel; i++, hone_bcast_next(&b)) {
        if (y->dtype == HONE_DT_FLOAT)
            ((float *)y->data)[i] = (float)beta * ((const float *)c->data)[b.off[0]];
        else
            hone_tensor_set_f64(y, i, beta * hone_tensor_get_f64(c, b.off[0]));
    }
}

/* Shape of one GEMM call: element offsets of A, B, Y and leading dims. */
typedef struct mm_call {
    bool ta, tb;
    int64_t m, n, k, lda, ldb;
    int64_t ao, bo, yo;
    double alpha;
} mm_call;

/* Y[yo..] += alpha * op(A) op(B) in double for element types without BLAS. */
static void gemm_loop(const mm_call *g, const hone_tensor *a, const hone_tensor *b, hone_tensor *y)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double s = 0;
            for (int64_t p = 0; p < g->k; p++) {
                int64_t ai = g->ta ? p * g->lda + i : i * g->lda + p;
                int64_t bi = g->tb ? j * g->ldb + p : p * g->ldb + j;
                s += hone_tensor_get_f64(a, g->ao + ai) * hone_tensor_get_f64(b, g->bo + bi);
            }
            int64_t yi = g->yo + i * g->n + j;
            hone_tensor_set_f64(y, yi, hone_tensor_get_f64(y, yi) + g->alpha * s);
        }
}

/* Y[yo..] += alpha * op(A) op(B) for one GEMM, by element type. */
static void gemm_call(const mm_call *g, const hone_tensor *a, const hone_tensor *b, hone_tensor *y)
{
    if (g->m == 0 || g->n == 0 || g->k == 0)
        return;
    if (y->dtype == HONE_DT_FLOAT)
        hone_rt_sgemm(g->ta, g->tb, g->m, g->n, g->k, (float)g->alpha,
                      (const float *)a->data + g->ao, g->lda, (const float *)b->data + g->bo,
                      g->ldb, 1.0f, (float *)y->data + g->yo, g->n);
    else if (y->dtype == HONE_DT_DOUBLE)
        hone_rt_dgemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, (const double *)a->data + g->ao,
                      g->lda, (const double *)b->data + g->bo, g->ldb, 1.0,
                      (double *)y->data + g->yo, g->n);
    else
        gemm_loop(g, a, b, y);
}

hone_status eval_gemm(hone_eval *ec)
{
    const hone_tensor *a = ec->in[0], *b = ec->in[1];
    const hone_tensor *c = ec->n_in > 2 ? ec->in[2] : NULL;
    hone_tensor *y = ec->out[0];
    mm_call g = {hone_attr_int(ec->node, "transA", 0) != 0,
                 hone_attr_int(ec->node, "transB", 0) != 0};
    g.m = y->dims[0];
    g.n = y->dims[1];
    g.k = a->dims[g.ta ? 0 : 1];
    g.lda = a->dims[1];
    g.ldb = b->dims[1];
    g.alpha = hone_attr_float(ec->node, "alpha", 1.0f);
    fill_scaled(y, c, hone_attr_float(ec->node, "beta", 1.0f));
    gemm_call(&g, a, b, y);
    return HONE_OK;
}

/* MatMul: A[..., M, K] x B[..., K, N] -> Y[broadcast batch..., M, N], 1-D operands promoted. */
hone_status infer_matmul(hone_infer *ic)
{
    const hone_tinfo *a = ic->in[0], *b = ic->in[1];
    hone_status st = same_types(ic);
    if (st)
        return st;
    if (a->rank == 0 || b->rank == 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "MatMul operands cannot be scalars");
    hone_dtype dt = a->dtype ? a->dtype : b->dtype;
    if (a->rank < 0 || b->rank < 0) {
        hone_infer_set(ic, 0, dt, -1, NULL);
        return HONE_OK;
    }
    int64_t ka = a->dims[a->rank - 1], kb = b->dims[b->rank >= 2 ? b->rank - 2 : 0];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "inner dimensions differ: A has K=%lld, B has K=%lld", (long long)ka,
                              (long long)kb);
    int r, ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int64_t y[HONE_MAX_RANK + 2];
    st = hone_infer_broadcast(ic, ra, a->dims, rb, b->dims, &r, y);
    if (st)
        return st;
    if (a->rank >= 2)
        y[r++] = a->dims[a->rank - 2];
    if (b->rank >= 2)
        y[r++] = b->dims[b->rank - 1];
    if (r > HONE_MAX_RANK)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "result rank %d is too large", r);
    hone_infer_set(ic, 0, dt, r, y);
    return HONE_OK;
}

/* The batch part (all but the last two dims) of t as a shape-only tensor. */
static hone_tensor batch_view(const hone_tensor *t)
{
    hone_tensor v = {.rank = t->rank > 2 ? t->rank - 2 : 0};
    memcpy(v.dims, t->dims, sizeof(int64_t) * (size_t)v.rank);
    return v;
}

hone_status eval_matmul(hone_eval *ec)
{
    const hone_tensor *a = ec->in[0], *b = ec->in[1];
    hone_tensor *y = ec->out[0];
    mm_call g = {.alpha = 1.0};
    g.k = a->dims[a->rank - 1];
    g.m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    g.n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    g.lda = g.k;
    g.ldb = g.n;
    memset(y->data, 0, hone_tensor_nbytes(y));
    hone_tensor va = batch_view(a), vb = batch_view(b);
    if (vb.rank == 0) {
        g.m = g.k ? a->numel / g.k : 0;
        gemm_call(&g, a, b, y);
        return HONE_OK;
    }
    const hone_tensor *views[2] = {&va, &vb};
    int r = va.rank > vb.rank ? va.rank : vb.rank;
    int64_t batches = nn_prod(y->dims, 0, r);
    hone_bcast it;
    hone_bcast_init(&it, r, y->dims, 2, views);
    for (int64_t i = 0; i < batches; i++, hone_bcast_next(&it)) {
        g.ao = it.off[0] * g.m * g.k;
        g.bo = it.off[1] * g.k * g.n;
        g.yo = i * g.m * g.n;
        gemm_call(&g, a, b, y);
    }
    return HONE_OK;
}
