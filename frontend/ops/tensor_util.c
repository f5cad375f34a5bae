/*
 * Tensor family helpers: dtype-blind element copies and a strided block
 * copier that Transpose, Slice, Expand, Tile, Concat, DepthToSpace and
 * friends all reduce to, plus readers for the attribute-or-input arguments
 * whose form changed across opsets.
 *
 * Copies go through bytes (hone_dtype_size), except strings, whose char*
 * elements are duplicated so every tensor owns its own.
 */
#include <stdlib.h>

#include "tensor_ops.h"

/* Duplicates n strings (NULL stays NULL). */
static void copy_strings(char **d, char *const *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        free(d[i]);
        d[i] = s[i] ? strdup(s[i]) : NULL;
        HONE_ASSERT(!s[i] || d[i]);
    }
}

void tf_copy(hone_tensor *dst, int64_t di, const hone_tensor *src, int64_t si, int64_t n)
{
    HONE_ASSERT(dst->dtype == src->dtype);
    if (n <= 0)
        return;
    if (src->dtype == HONE_DT_STRING) {
        copy_strings((char **)dst->data + di, (char *const *)src->data + si, n);
        return;
    }
    size_t es = hone_dtype_size(src->dtype);
    memmove((char *)dst->data + (size_t)di * es, (const char *)src->data + (size_t)si * es,
            (size_t)n * es);
}

void tf_fill(hone_tensor *dst, int64_t di, int64_t n, const hone_tensor *src, int64_t si)
{
    HONE_ASSERT(dst->dtype == src->dtype);
    if (src->dtype == HONE_DT_STRING) {
        for (int64_t i = 0; i < n; i++)
            copy_strings((char **)dst->data + di + i, (char *const *)src->data + si, 1);
        return;
    }
    size_t es = hone_dtype_size(src->dtype);
    const char *v = (const char *)src->data + (size_t)si * es;
    char *d = (char *)dst->data + (size_t)di * es;
    for (int64_t i = 0; i < n; i++)
        memcpy(d + (size_t)i * es, v, es);
}

bool tf_next_index(int rank, const int64_t *dims, int64_t *idx)
{
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return true;
        idx[i] = 0;
    }
    return false;
}

/* Strided copy of n elements of es bytes (1, 2, 4 or 8: typed loads and stores). */
#define STRIDED(T)                                                                                 \
    for (int64_t i = 0; i < n; i++)                                                                \
        ((T *)d)[i * ds] = ((const T *)s)[i * ss];

/* Copies one innermost row of the block: contiguous runs in one call,
 * strided rows of plain types with typed moves, strings one by one. */
static void copy_row(hone_tensor *dst, int64_t di, int64_t ds, const hone_tensor *src, int64_t si,
                     int64_t ss, int64_t n)
{
    size_t es = hone_dtype_size(src->dtype);
    if (ds == 1 && ss == 1) {
        tf_copy(dst, di, src, si, n);
        return;
    }
    if (src->dtype == HONE_DT_STRING || (es != 1 && es != 2 && es != 4 && es != 8)) {
        for (int64_t i = 0; i < n; i++)
            tf_copy(dst, di + i * ds, src, si + i * ss, 1);
        return;
    }
    char *d = (char *)dst->data + di * (int64_t)es;
    const char *s = (const char *)src->data + si * (int64_t)es;
    switch (es) {
    case 1: STRIDED(uint8_t) break;
    case 2: STRIDED(uint16_t) break;
    case 4: STRIDED(uint32_t) break;
    default: STRIDED(uint64_t) break;
    }
}
#undef STRIDED

void tf_copy_block(hone_tensor *dst, int64_t doff, const int64_t *dstr, const hone_tensor *src,
                   int64_t soff, const int64_t *sstr, int rank, const int64_t *dims)
{
    HONE_ASSERT(rank <= TF_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0)
            return;
    if (rank == 0) {
        tf_copy(dst, doff, src, soff, 1);
        return;
    }
    int64_t idx[TF_MAX_RANK] = {0};
    int outer = rank - 1;
    do {
        int64_t d = doff, s = soff;
        for (int i = 0; i < outer; i++) {
            d += idx[i] * dstr[i];
            s += idx[i] * sstr[i];
        }
        copy_row(dst, d, dstr[outer], src, s, sstr[outer], dims[outer]);
    } while (tf_next_index(outer, dims, idx));
}

void tf_copy_view(hone_tensor *dst, const hone_tensor *src, int64_t soff, const int64_t *sstr,
                  int rank, const int64_t *dims)
{
    int64_t dstr[TF_MAX_RANK], s = 1;
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0)
            return; /* empty: nothing to copy (and the strides of the other dims may overflow) */
    for (int i = rank - 1; i >= 0; i--) {
        dstr[i] = s;
        s *= dims[i];
    }
    tf_copy_block(dst, 0, dstr, src, soff, sstr, rank, dims);
}

hone_status tf_need_out(hone_eval *ec)
{
    for (int i = 0; i < ec->n_out; i++)
        if (!ec->out[i] && ec->node->out[i])
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INTERNAL,
                                  "output %d was not sized by inference", i);
    return HONE_OK;
}

const hone_tensor *tf_ival(const hone_infer *ic, int i)
{
    return i < ic->n_in && ic->in[i] ? ic->in[i]->value : NULL;
}

bool tf_has(const hone_infer *ic, int i)
{
    return i < ic->n_in && ic->in[i];
}

const hone_tensor *tf_ein(const hone_eval *ec, int i)
{
    return i < ec->n_in ? ec->in[i] : NULL;
}

int tf_ints_arg(const hone_node *nd, int opset, int from, const char *attr, bool present,
                const hone_tensor *t, int64_t *v, int cap)
{
    if (from == 0 || opset < from) {
        const int64_t *a;
        int n = hone_attr_ints(nd, attr, &a);
        if (n < 0)
            return TF_ABSENT;
        if (n > cap)
            return TF_TOOLONG;
        memcpy(v, a, sizeof *v * (size_t)n);
        return n;
    }
    if (!present)
        return TF_ABSENT;
    if (!t)
        return TF_UNKNOWN;
    if (t->numel > cap)
        return TF_TOOLONG;
    for (int64_t i = 0; i < t->numel; i++)
        v[i] = hone_tensor_get_i64(t, i);
    return (int)t->numel;
}

bool tf_norm_index(int64_t *i, int64_t dim)
{
    if (*i < -dim || *i >= dim)
        return false;
    if (*i < 0)
        *i += dim;
    return true;
}

int64_t tf_dims_prod(int rank, const int64_t *dims)
{
    int64_t p = 1;
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0)
            return 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return HONE_DIM_UNKNOWN;
        if (dims[i] && p > INT64_MAX / dims[i])
            return HONE_DIM_UNKNOWN;
        p *= dims[i];
    }
    return p;
}

void tf_infer_rank(hone_infer *ic, int i, hone_dtype dt, int rank)
{
    hone_infer_set(ic, i, dt, rank, NULL);
}

hone_status tf_check_int_input(hone_infer *ic, int i, const char *what)
{
    if (!tf_has(ic, i))
        return HONE_OK;
    hone_dtype dt = ic->in[i]->dtype;
    if (dt != HONE_DT_UNDEF && !hone_dtype_is_int(dt))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "%s must be an integer tensor, got %s", what, hone_dtype_name(dt));
    return HONE_OK;
}

hone_status tf_bad_index(hone_ctx *ctx, const hone_node *n, int64_t idx, int64_t dim,
                         const char *what)
{
    return hone_node_fail(ctx, n, HONE_ERR_INVALID, "%s %lld is out of range [-%lld, %lld)", what,
                          (long long)idx, (long long)dim, (long long)dim);
}

hone_status tf_check_size(hone_infer *ic, int rank, const int64_t *dims)
{
    int64_t n;
    if (rank < 0)
        return HONE_OK;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return HONE_OK;
    return hone_shape_numel(ic->ctx, rank, dims, &n);
}

void tf_eval_view(const hone_eval *ec, hone_infer *ic, hone_tinfo *ti, const hone_tinfo **pi)
{
    for (int i = 0; i < ec->n_in; i++) {
        pi[i] = ec->in[i] ? &ti[i] : NULL;
        if (!ec->in[i])
            continue;
        ti[i].dtype = ec->in[i]->dtype;
        ti[i].rank = ec->in[i]->rank;
        memcpy(ti[i].dims, ec->in[i]->dims, sizeof ti[i].dims);
        ti[i].value = ec->in[i];
    }
    memset(ic, 0, sizeof *ic);
    ic->ctx = ec->ctx;
    ic->node = ec->node;
    ic->opset = ec->opset;
    ic->n_in = ec->n_in;
    ic->in = pi;
}

hone_status tf_axis(hone_infer *ic, int64_t a, int rank, int *out)
{
    if (rank == 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "a scalar has no axis %lld",
                              (long long)a);
    return hone_infer_axis(ic, a, rank, out);
}
