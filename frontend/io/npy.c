/*
 * NumPy .npy files: header dictionary parsing (descr, fortran_order, shape)
 * with every field validated before any allocation, and v1 writing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

static const struct {
    const char *descr;
    hone_dtype dt;
} npy_types[] = {
    {"f4", HONE_DT_FLOAT}, {"f8", HONE_DT_DOUBLE}, {"f2", HONE_DT_FLOAT16},
    {"u1", HONE_DT_UINT8}, {"i1", HONE_DT_INT8},   {"u2", HONE_DT_UINT16},
    {"i2", HONE_DT_INT16}, {"i4", HONE_DT_INT32},  {"i8", HONE_DT_INT64},
    {"u4", HONE_DT_UINT32}, {"u8", HONE_DT_UINT64}, {"b1", HONE_DT_BOOL},
};

static hone_dtype parse_descr(const char *d)
{
    if (*d == '<' || *d == '|' || *d == '=')
        d++;
    else if (*d == '>')
        return HONE_DT_UNDEF; /* big-endian data is not supported */
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (!strncmp(d, npy_types[i].descr, 2) && (d[2] == '\'' || d[2] == '"'))
            return npy_types[i].dt;
    return HONE_DT_UNDEF;
}

static const char *descr_of(hone_dtype dt)
{
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (npy_types[i].dt == dt)
            return npy_types[i].descr;
    return NULL;
}

/* Finds 'key': in the header dict and returns the text after the colon. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static hone_status parse_shape(hone_ctx *ctx, const char *p, int *rank, int64_t *dims)
{
    if (*p != '(')
        return hone_fail(ctx, HONE_ERR_PARSE, "npy header: shape is not a tuple");
    p++;
    int r = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p))
            return hone_fail(ctx, HONE_ERR_PARSE, "npy header: bad shape entry");
        if (r >= HONE_MAX_RANK)
            return hone_fail(ctx, HONE_ERR_LIMIT, "npy: rank above %d", HONE_MAX_RANK);
        char *end;
        unsigned long long d = strtoull(p, &end, 10);
        if (d > (unsigned long long)ctx->limits.max_dim)
            return hone_fail(ctx, HONE_ERR_LIMIT, "npy: dimension %llu above the limit", d);
        dims[r++] = (int64_t)d;
        p = end;
    }
    *rank = r;
    return HONE_OK;
}

hone_status hone_npy_parse(hone_ctx *ctx, const uint8_t *buf, size_t len, hone_tensor **out)
{
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
        return hone_fail(ctx, HONE_ERR_PARSE, "not a .npy file (bad magic)");
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if ((major == 2 || major == 3) && len >= 12) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return hone_fail(ctx, HONE_ERR_PARSE, "npy: unsupported version %d", major);
    }
    if (hlen > len - hoff)
        return hone_fail(ctx, HONE_ERR_PARSE, "npy: header is truncated");
    char *hdr = strndup((const char *)buf + hoff, hlen);
    HONE_ASSERT(hdr);
    const char *descr = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"),
               *shape = dict_value(hdr, "shape");
    hone_status st = HONE_OK;
    hone_dtype dt = descr && (*descr == '\'' || *descr == '"') ? parse_descr(descr + 1) : HONE_DT_UNDEF;
    int rank = 0;
    int64_t dims[HONE_MAX_RANK];
    if (!descr || !fo || !shape)
        st = hone_fail(ctx, HONE_ERR_PARSE, "npy: header lacks descr, fortran_order or shape");
    else if (dt == HONE_DT_UNDEF)
        st = hone_fail(ctx, HONE_ERR_UNSUPPORTED, "npy: unsupported dtype %.12s", descr);
    else if (!strncmp(fo, "True", 4))
        st = hone_fail(ctx, HONE_ERR_UNSUPPORTED, "npy: Fortran-order arrays are not supported");
    else
        st = parse_shape(ctx, shape, &rank, dims);
    free(hdr);
    hone_tensor *t = NULL;
    int64_t numel = 0;
    if (!st)
        st = hone_shape_numel(ctx, rank, dims, &numel);
    /* the size check comes before the allocation: a huge shape in a tiny file */
    if (!st && (uint64_t)numel > (len - hoff - hlen) / hone_dtype_size(dt))
        st = hone_fail(ctx, HONE_ERR_PARSE, "npy: data is truncated (%zu bytes, shape needs %llu)",
                       len - hoff - hlen, (unsigned long long)numel * hone_dtype_size(dt));
    if (!st)
        st = hone_tensor_new(ctx, dt, rank, dims, &t);
    if (st) {
        hone_tensor_free(t);
        return st;
    }
    memcpy(t->data, buf + hoff + hlen, hone_tensor_nbytes(t));
    *out = t;
    return HONE_OK;
}

hone_status hone_npy_read(hone_ctx *ctx, const char *path, hone_tensor **out)
{
    uint8_t *buf;
    size_t len;
    hone_status st = hone_read_file(ctx, path, &buf, &len);
    if (st)
        return st;
    st = hone_npy_parse(ctx, buf, len, out);
    free(buf);
    if (st)
        hone_fail_wrap(ctx, "%s", path);
    return st;
}

hone_status hone_npy_encode(hone_ctx *ctx, const hone_tensor *t, uint8_t **buf, size_t *len)
{
    const char *d = descr_of(t->dtype);
    if (!d)
        return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "npy: cannot write %s tensors",
                         hone_dtype_onnx_name(t->dtype));
    char hdr[512];
    int k = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     d[0] == 'b' || d[1] == '1' ? '|' : '<', d);
    for (int i = 0; i < t->rank; i++)
        k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%lld,%s", (long long)t->dims[i],
                      i + 1 < t->rank ? " " : "");
    k += snprintf(hdr + k, sizeof hdr - (size_t)k, "), }");
    size_t total = 10 + (size_t)k + 1, pad = (64 - total % 64) % 64;
    size_t hl = (size_t)k + pad + 1, nb = hone_tensor_nbytes(t);
    uint8_t *b = malloc(10 + hl + nb);
    HONE_ASSERT(b);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hl & 255);
    b[9] = (uint8_t)(hl >> 8);
    memcpy(b + 10, hdr, (size_t)k);
    memset(b + 10 + k, ' ', pad);
    b[10 + hl - 1] = '\n';
    memcpy(b + 10 + hl, t->data, nb);
    *buf = b;
    *len = 10 + hl + nb;
    return HONE_OK;
}

hone_status hone_npy_write(hone_ctx *ctx, const hone_tensor *t, const char *path)
{
    uint8_t *buf;
    size_t len;
    hone_status st = hone_npy_encode(ctx, t, &buf, &len);
    if (st)
        return hone_fail_wrap(ctx, "%s", path);
    st = hone_write_file_atomic(ctx, path, buf, len);
    free(buf);
    return st;
}
