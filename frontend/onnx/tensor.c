/*
 * TensorProto <-> hone_tensor. Decoding accepts raw_data (little-endian),
 * every typed field, and external data files next to the model; every length
 * is checked against the shape before a byte is copied, and external paths
 * may not leave the model's folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"

static bool dtype_supported(int32_t dt)
{
    return dt > HONE_DT_UNDEF && dt < HONE_DT_COUNT && dt != HONE_DT_COMPLEX64 &&
           dt != HONE_DT_COMPLEX128;
}

/* Copies typed-field values into t, converting to its element type. */
static hone_status decode_typed(hone_ctx *ctx, const Onnx__TensorProto *p, hone_tensor *t)
{
    size_t n = (size_t)t->numel, have;
    switch (t->dtype) {
    case HONE_DT_FLOAT: have = p->n_float_data; break;
    case HONE_DT_DOUBLE: have = p->n_double_data; break;
    case HONE_DT_INT64: have = p->n_int64_data; break;
    case HONE_DT_UINT32: case HONE_DT_UINT64: have = p->n_uint64_data; break;
    case HONE_DT_STRING: have = p->n_string_data; break;
    default: have = p->n_int32_data; break;
    }
    if (have != n)
        return hone_fail(ctx, HONE_ERR_PARSE, "tensor '%s' holds %zu values, its shape needs %zu",
                         p->name ? p->name : "", have, n);
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case HONE_DT_FLOAT: ((float *)t->data)[i] = p->float_data[i]; break;
        case HONE_DT_DOUBLE: ((double *)t->data)[i] = p->double_data[i]; break;
        case HONE_DT_INT64: ((int64_t *)t->data)[i] = p->int64_data[i]; break;
        case HONE_DT_UINT64: ((uint64_t *)t->data)[i] = p->uint64_data[i]; break;
        case HONE_DT_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)p->uint64_data[i]; break;
        case HONE_DT_FLOAT16: case HONE_DT_BFLOAT16: case HONE_DT_UINT16: case HONE_DT_INT16:
            ((uint16_t *)t->data)[i] = (uint16_t)p->int32_data[i];
            break;
        case HONE_DT_STRING:
            ((char **)t->data)[i] = p->string_data[i].len
                                        ? strndup((const char *)p->string_data[i].data,
                                                  p->string_data[i].len)
                                        : strdup("");
            break;
        default: hone_tensor_set_i64(t, (int64_t)i, p->int32_data[i]); break;
        }
    }
    return HONE_OK;
}

/* An external data path must be relative and stay inside base_dir. */
static hone_status check_external_path(hone_ctx *ctx, const char *loc)
{
    if (!*loc || loc[0] == '/' || strstr(loc, "..") || strchr(loc, '\\'))
        return hone_fail(ctx, HONE_ERR_INVALID,
                         "external data path '%s' escapes the model's folder", loc);
    return HONE_OK;
}

static hone_status read_external(hone_ctx *ctx, const Onnx__TensorProto *p, const char *base_dir,
                                 hone_tensor *t)
{
    const char *loc = NULL;
    long long off = 0, len = -1;
    for (size_t i = 0; i < p->n_external_data; i++) {
        const char *k = p->external_data[i]->key, *v = p->external_data[i]->value;
        if (!k || !v)
            continue;
        if (!strcmp(k, "location"))
            loc = v;
        else if (!strcmp(k, "offset"))
            off = atoll(v);
        else if (!strcmp(k, "length"))
            len = atoll(v);
    }
    if (!loc)
        return hone_fail(ctx, HONE_ERR_PARSE, "tensor '%s': external data without a location", p->name);
    if (!base_dir)
        return hone_fail(ctx, HONE_ERR_INVALID, "tensor '%s': external data is not allowed here", p->name);
    hone_status st = check_external_path(ctx, loc);
    if (st)
        return st;
    size_t need = hone_tensor_nbytes(t);
    if (off < 0 || (len >= 0 && (size_t)len != need))
        return hone_fail(ctx, HONE_ERR_PARSE, "tensor '%s': external length %lld, shape needs %zu",
                         p->name, len, need);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", base_dir, loc);
    FILE *f = fopen(path, "rb");
    if (!f)
        return hone_fail(ctx, HONE_ERR_IO, "tensor '%s': cannot open external data '%s'", p->name, path);
    int ok = fseek(f, off, SEEK_SET) == 0 && fread(t->data, 1, need, f) == need;
    fclose(f);
    if (!ok)
        return hone_fail(ctx, HONE_ERR_PARSE, "tensor '%s': external data '%s' is too short", p->name, path);
    return HONE_OK;
}

hone_status hone_onnx_tensor_decode(hone_ctx *ctx, const Onnx__TensorProto *p,
                                    const char *base_dir, hone_tensor **out)
{
    const char *nm = p->name ? p->name : "";
    if (!dtype_supported(p->data_type))
        return hone_fail(ctx, p->data_type == 14 || p->data_type == 15 ? HONE_ERR_UNSUPPORTED : HONE_ERR_PARSE,
                         "tensor '%s' has unsupported data type %d", nm, (int)p->data_type);
    if (p->segment)
        return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "tensor '%s' is segmented", nm);
    if (p->n_dims > HONE_MAX_RANK)
        return hone_fail(ctx, HONE_ERR_LIMIT, "tensor '%s' has rank %zu (hone allows %d)", nm,
                         p->n_dims, HONE_MAX_RANK);
    hone_tensor *t;
    hone_status st = hone_tensor_new(ctx, (hone_dtype)p->data_type, (int)p->n_dims, p->dims, &t);
    if (st)
        return hone_fail_wrap(ctx, "tensor '%s'", nm);
    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = read_external(ctx, p, base_dir, t);
    } else if (p->has_raw_data && t->dtype != HONE_DT_STRING) {
        if (p->raw_data.len != hone_tensor_nbytes(t))
            st = hone_fail(ctx, HONE_ERR_PARSE, "tensor '%s' has %zu raw bytes, its shape needs %zu",
                           nm, p->raw_data.len, hone_tensor_nbytes(t));
        else if (p->raw_data.len)
            memcpy(t->data, p->raw_data.data, p->raw_data.len);
    } else {
        st = decode_typed(ctx, p, t);
    }
    if (st) {
        hone_tensor_free(t);
        return st;
    }
    *out = t;
    return HONE_OK;
}

Onnx__TensorProto *hone_onnx_tensor_encode(const hone_tensor *t, const char *name)
{
    Onnx__TensorProto *p = malloc(sizeof *p);
    HONE_ASSERT(p);
    onnx__tensor_proto__init(p);
    p->name = strdup(name ? name : "");
    p->has_data_type = 1;
    p->data_type = t->dtype;
    p->n_dims = (size_t)t->rank;
    p->dims = malloc(sizeof(int64_t) * (size_t)(t->rank + 1));
    HONE_ASSERT(p->name && p->dims);
    memcpy(p->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    if (t->dtype == HONE_DT_STRING) {
        p->n_string_data = (size_t)t->numel;
        p->string_data = calloc((size_t)t->numel + 1, sizeof *p->string_data);
        for (int64_t i = 0; i < t->numel; i++) {
            const char *s = ((char **)t->data)[i];
            p->string_data[i].data = (uint8_t *)strdup(s ? s : "");
            p->string_data[i].len = strlen(s ? s : "");
        }
        return p;
    }
    size_t nb = hone_tensor_nbytes(t);
    p->has_raw_data = 1;
    p->raw_data.len = nb;
    p->raw_data.data = malloc(nb ? nb : 1);
    HONE_ASSERT(p->raw_data.data);
    memcpy(p->raw_data.data, t->data, nb);
    return p;
}

void hone_onnx_tensor_proto_free(Onnx__TensorProto *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_string_data; i++)
        free(p->string_data[i].data);
    free(p->string_data);
    free(p->name);
    free(p->dims);
    free(p->raw_data.data);
    free(p);
}

hone_status hone_onnx_read_tensor_pb(hone_ctx *ctx, const char *path, hone_tensor **out)
{
    uint8_t *buf;
    size_t len;
    hone_status st = hone_read_file(ctx, path, &buf, &len);
    if (st)
        return st;
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!p)
        return hone_fail(ctx, HONE_ERR_PARSE, "%s: not a serialized ONNX TensorProto", path);
    char *dir = hone_path_dir(path);
    st = hone_onnx_tensor_decode(ctx, p, dir, out);
    free(dir);
    onnx__tensor_proto__free_unpacked(p, NULL);
    if (st)
        hone_fail_wrap(ctx, "%s", path);
    return st;
}

hone_status hone_onnx_write_tensor_pb(hone_ctx *ctx, const hone_tensor *t, const char *name,
                                      const char *path)
{
    Onnx__TensorProto *p = hone_onnx_tensor_encode(t, name);
    size_t len = onnx__tensor_proto__get_packed_size(p);
    uint8_t *buf = malloc(len ? len : 1);
    HONE_ASSERT(buf);
    onnx__tensor_proto__pack(p, buf);
    hone_status st = hone_write_file_atomic(ctx, path, buf, len);
    free(buf);
    hone_onnx_tensor_proto_free(p);
    return st;
}
