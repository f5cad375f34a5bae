/*
 * Dense tensors: allocation with overflow and limit checks, cloning, and
 * dtype-generic element access through double and int64 (used by the
 * reference interpreter, where correctness beats speed).
 */
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

hone_status hone_shape_numel(hone_ctx *ctx, int rank, const int64_t *dims, int64_t *numel)
{
    int64_t n = 1;
    if (rank < 0 || rank > HONE_MAX_RANK)
        return hone_fail(ctx, HONE_ERR_LIMIT, "rank %d is outside [0, %d]", rank, HONE_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return hone_fail(ctx, HONE_ERR_SHAPE, "dimension %d is %lld (not a concrete size)", i,
                             (long long)dims[i]);
        if (dims[i] > ctx->limits.max_dim)
            return hone_fail(ctx, HONE_ERR_LIMIT, "dimension %d is %lld, above the limit %lld", i,
                             (long long)dims[i], (long long)ctx->limits.max_dim);
        if (dims[i] && n > ctx->limits.max_numel / dims[i])
            return hone_fail(ctx, HONE_ERR_LIMIT, "element count of shape overflows the limit %lld",
                             (long long)ctx->limits.max_numel);
        n *= dims[i];
    }
    *numel = n;
    return HONE_OK;
}

static hone_status tensor_alloc(hone_ctx *ctx, hone_dtype dt, int rank, const int64_t *dims,
                                bool zero, hone_tensor **out)
{
    int64_t n;
    hone_status st = hone_shape_numel(ctx, rank, dims, &n);
    if (st)
        return st;
    size_t es = hone_dtype_size(dt);
    if (!es)
        return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "tensor of type %s", hone_dtype_onnx_name(dt));
    if ((uint64_t)n > (uint64_t)ctx->limits.max_bytes / es)
        return hone_fail(ctx, HONE_ERR_LIMIT, "tensor of %lld x %zu bytes exceeds the limit %lld",
                         (long long)n, es, (long long)ctx->limits.max_bytes);
    hone_tensor *t = calloc(1, sizeof *t);
    void *data = zero ? calloc((size_t)(n ? n : 1), es) : malloc((size_t)(n ? n : 1) * es);
    if (!t || !data) {
        free(t);
        free(data);
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory allocating %lld elements", (long long)n);
    }
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->numel = n;
    t->data = data;
    *out = t;
    return HONE_OK;
}

hone_status hone_tensor_new(hone_ctx *ctx, hone_dtype dt, int rank, const int64_t *dims,
                            hone_tensor **out)
{
    return tensor_alloc(ctx, dt, rank, dims, true, out);
}

hone_status hone_tensor_new_uninit(hone_ctx *ctx, hone_dtype dt, int rank, const int64_t *dims,
                                   hone_tensor **out)
{
    return tensor_alloc(ctx, dt, rank, dims, false, out);
}

size_t hone_tensor_nbytes(const hone_tensor *t)
{
    return (size_t)t->numel * hone_dtype_size(t->dtype);
}

hone_tensor *hone_tensor_clone(const hone_tensor *t)
{
    hone_tensor *c = malloc(sizeof *c);
    HONE_ASSERT(c);
    *c = *t;
    size_t nb = hone_tensor_nbytes(t);
    c->data = malloc(nb ? nb : 1);
    HONE_ASSERT(c->data);
    memcpy(c->data, t->data, nb);
    if (t->dtype == HONE_DT_STRING) {
        char **s = c->data;
        for (int64_t i = 0; i < t->numel; i++)
            s[i] = s[i] ? strdup(s[i]) : NULL;
    }
    return c;
}

void hone_tensor_free(hone_tensor *t)
{
    if (!t)
        return;
    if (t->dtype == HONE_DT_STRING && t->data) {
        char **s = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            free(s[i]);
    }
    free(t->data);
    free(t);
}

double hone_tensor_get_f64(const hone_tensor *t, int64_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case HONE_DT_FLOAT: return ((const float *)p)[i];
    case HONE_DT_DOUBLE: return ((const double *)p)[i];
    case HONE_DT_UINT8: return ((const uint8_t *)p)[i];
    case HONE_DT_INT8: return ((const int8_t *)p)[i];
    case HONE_DT_UINT16: return ((const uint16_t *)p)[i];
    case HONE_DT_INT16: return ((const int16_t *)p)[i];
    case HONE_DT_INT32: return ((const int32_t *)p)[i];
    case HONE_DT_INT64: return (double)((const int64_t *)p)[i];
    case HONE_DT_UINT32: return ((const uint32_t *)p)[i];
    case HONE_DT_UINT64: return (double)((const uint64_t *)p)[i];
    case HONE_DT_BOOL: return ((const uint8_t *)p)[i] != 0;
    case HONE_DT_FLOAT16: return hone_f16_to_f32(((const uint16_t *)p)[i]);
    case HONE_DT_BFLOAT16: return hone_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return 0;
    }
}

/* Saturating conversion of a double to an integer range (NaN -> 0). */
static int64_t clamp_i64(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    if (v <= lo)
        return (int64_t)lo;
    if (v >= hi)
        return (int64_t)hi;
    return (int64_t)v;
}

void hone_tensor_set_f64(hone_tensor *t, int64_t i, double v)
{
    void *p = t->data;
    switch (t->dtype) {
    case HONE_DT_FLOAT: ((float *)p)[i] = (float)v; break;
    case HONE_DT_DOUBLE: ((double *)p)[i] = v; break;
    case HONE_DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)clamp_i64(v, 0, 255); break;
    case HONE_DT_INT8: ((int8_t *)p)[i] = (int8_t)clamp_i64(v, -128, 127); break;
    case HONE_DT_UINT16: ((uint16_t *)p)[i] = (uint16_t)clamp_i64(v, 0, 65535); break;
    case HONE_DT_INT16: ((int16_t *)p)[i] = (int16_t)clamp_i64(v, -32768, 32767); break;
    case HONE_DT_INT32: ((int32_t *)p)[i] = (int32_t)clamp_i64(v, -2147483648.0, 2147483647.0); break;
    case HONE_DT_INT64: ((int64_t *)p)[i] = clamp_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
    case HONE_DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)clamp_i64(v, 0, 4294967295.0); break;
    case HONE_DT_UINT64: ((uint64_t *)p)[i] = v <= 0 || isnan(v) ? 0 : v >= 1.8446744073709552e19 ? UINT64_MAX : (uint64_t)v; break;
    case HONE_DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case HONE_DT_FLOAT16: ((uint16_t *)p)[i] = hone_f32_to_f16((float)v); break;
    case HONE_DT_BFLOAT16: ((uint16_t *)p)[i] = hone_f32_to_bf16((float)v); break;
    default: break;
    }
}

int64_t hone_tensor_get_i64(const hone_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case HONE_DT_INT64: return ((const int64_t *)t->data)[i];
    case HONE_DT_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    default: /* saturating: a float out of int64's range must not be cast (undefined) */
        return clamp_i64(hone_tensor_get_f64(t, i), -9.2233720368547758e18, 9.2233720368547748e18);
    }
}

void hone_tensor_set_i64(hone_tensor *t, int64_t i, int64_t v)
{
    switch (t->dtype) {
    case HONE_DT_INT64: ((int64_t *)t->data)[i] = v; break;
    case HONE_DT_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case HONE_DT_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case HONE_DT_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case HONE_DT_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case HONE_DT_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case HONE_DT_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case HONE_DT_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    default: hone_tensor_set_f64(t, i, (double)v); break;
    }
}

void hone_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

const char *hone_tensor_type_str(const hone_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "%s[", hone_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}
