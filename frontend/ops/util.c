/*
 * Op helpers: broadcasting iteration and the infer rules many ops share.
 */
#include "ops_util.h"

void hone_bcast_init(hone_bcast *b, int rank, const int64_t *dims, int n, const hone_tensor **ins)
{
    HONE_ASSERT(n <= HONE_BCAST_MAX_IN);
    memset(b, 0, sizeof *b);
    b->rank = rank;
    b->n = n;
    memcpy(b->dims, dims, sizeof(int64_t) * (size_t)rank);
    for (int k = 0; k < n; k++) {
        const hone_tensor *t = ins[k];
        int64_t s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            int ti = i - (rank - t->rank);
            if (ti < 0 || t->dims[ti] == 1) {
                b->strides[k][i] = 0;
            } else {
                b->strides[k][i] = s;
            }
            if (ti >= 0)
                s *= t->dims[ti];
        }
    }
}

void hone_bcast_next(hone_bcast *b)
{
    for (int i = b->rank - 1; i >= 0; i--) {
        b->idx[i]++;
        for (int k = 0; k < b->n; k++)
            b->off[k] += b->strides[k][i];
        if (b->idx[i] < b->dims[i])
            return;
        for (int k = 0; k < b->n; k++)
            b->off[k] -= b->strides[k][i] * b->idx[i];
        b->idx[i] = 0;
    }
}

void hone_bcast_shape(int n, const hone_tensor **ins, int *rank, int64_t *dims)
{
    int r = 0;
    for (int k = 0; k < n; k++)
        if (ins[k] && ins[k]->rank > r)
            r = ins[k]->rank;
    for (int i = 0; i < r; i++)
        dims[i] = 1;
    for (int k = 0; k < n; k++) {
        if (!ins[k])
            continue;
        for (int i = 0; i < ins[k]->rank; i++) {
            int64_t d = ins[k]->dims[i];
            int o = i + r - ins[k]->rank;
            if (d != 1)
                dims[o] = d;
        }
    }
    *rank = r;
}

hone_status hone_infer_same(hone_infer *ic)
{
    const hone_tinfo *a = ic->in[0];
    hone_infer_set(ic, 0, a->dtype, a->rank, a->dims);
    return HONE_OK;
}

hone_status hone_infer_bcast_all(hone_infer *ic, hone_dtype out_dt)
{
    int r = ic->in[0]->rank;
    int64_t d[HONE_MAX_RANK];
    memcpy(d, ic->in[0]->dims, sizeof d);
    for (int k = 1; k < ic->n_in; k++) {
        if (!ic->in[k])
            continue;
        if (ic->in[k]->rank > HONE_MAX_RANK)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_LIMIT, "rank too large");
        hone_status st = hone_infer_broadcast(ic, r, d, ic->in[k]->rank, ic->in[k]->dims, &r, d);
        if (st)
            return st;
    }
    hone_infer_set(ic, 0, out_dt != HONE_DT_UNDEF ? out_dt : ic->in[0]->dtype, r, d);
    return HONE_OK;
}

int hone_tensor_ints(const hone_tensor *t, int64_t *v, int cap)
{
    int n = (int)(t->numel < cap ? t->numel : cap);
    for (int i = 0; i < n; i++)
        v[i] = hone_tensor_get_i64(t, i);
    return n;
}
