/*
 * File and data I/O: .npy round trips for every supported dtype and clean
 * errors on truncated or oversized files; IDX files written byte by byte
 * (plain and gzip) with every element type; the dataset helpers
 * (normalisation, sample reshape, gather with padding, batch order) and the
 * metrics, against hand-computed values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "io.h"
#include "onnx.h"
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char tmpdir[64];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hone-io-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static hone_tensor *new_tensor(hone_dtype dt, int rank, const int64_t *dims)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, dt, rank, dims, &t), HONE_OK);
    return t;
}

/* ---- npy ---- */

static void test_npy_roundtrip_dtypes(void **state)
{
    static const hone_dtype dts[] = {HONE_DT_FLOAT, HONE_DT_DOUBLE, HONE_DT_FLOAT16, HONE_DT_UINT8,
                                     HONE_DT_INT8,  HONE_DT_UINT16, HONE_DT_INT16,   HONE_DT_INT32,
                                     HONE_DT_INT64, HONE_DT_UINT32, HONE_DT_UINT64,  HONE_DT_BOOL};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dims[] = {2, 3};
    for (size_t k = 0; k < sizeof dts / sizeof *dts; k++) {
        hone_tensor *t = new_tensor(dts[k], 2, dims), *r;
        for (int64_t i = 0; i < t->numel; i++)
            hone_tensor_set_f64(t, i, dts[k] == HONE_DT_BOOL ? (double)(i % 2) : (double)(i * 3 + 1));
        uint8_t *buf;
        size_t len;
        assert_int_equal(hone_npy_encode(&ctx, t, &buf, &len), HONE_OK);
        assert_int_equal(len % 64, hone_tensor_nbytes(t) % 64); /* header padded to 64 */
        assert_int_equal(hone_npy_parse(&ctx, buf, len, &r), HONE_OK);
        assert_int_equal(r->dtype, dts[k]);
        assert_int_equal(r->rank, 2);
        assert_int_equal(r->dims[1], 3);
        assert_memory_equal(r->data, t->data, hone_tensor_nbytes(t));
        assert_true(hone_tensor_get_f64(r, 5) == (dts[k] == HONE_DT_BOOL ? 1.0 : 16.0));
        free(buf);
        hone_tensor_free(r);
        hone_tensor_free(t);
    }
}

static void test_npy_file_and_scalar(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t = new_tensor(HONE_DT_INT64, 0, NULL), *r;
    ((int64_t *)t->data)[0] = -123456789012345;
    assert_int_equal(hone_npy_write(&ctx, t, tmp("s.npy")), HONE_OK);
    assert_int_equal(hone_npy_read(&ctx, tmp("s.npy"), &r), HONE_OK);
    assert_int_equal(r->rank, 0);
    assert_int_equal(((int64_t *)r->data)[0], -123456789012345);
    hone_tensor_free(r);
    hone_tensor_free(t);
}

/* .npy bytes with a v1 or v2 header as numpy writes it: dict, spaces, '\n', aligned to 64. */
static size_t numpy_file(uint8_t *buf, int version, const char *dict, const void *data, size_t n)
{
    size_t pre = version == 1 ? 10 : 12, hl = 64 * ((pre + strlen(dict) + 1 + 63) / 64) - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)version;
    buf[7] = 0;
    buf[8] = (uint8_t)(hl & 255);
    buf[9] = (uint8_t)(hl >> 8);
    if (version == 2)
        buf[10] = buf[11] = 0;
    memset(buf + pre, ' ', hl);
    memcpy(buf + pre, dict, strlen(dict));
    buf[pre + hl - 1] = '\n';
    memcpy(buf + pre + hl, data, n);
    return pre + hl + n;
}

static void test_npy_numpy_header(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    uint8_t buf[256];
    const uint8_t le[] = {0x02, 0x01, 0xfe, 0xff}; /* 258, -2 as little-endian int16 */
    for (int version = 1; version <= 2; version++) {
        size_t n = numpy_file(buf, version, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }",
                              le, 4);
        hone_tensor *t;
        assert_int_equal(hone_npy_parse(&ctx, buf, n, &t), HONE_OK);
        assert_int_equal(t->dtype, HONE_DT_INT16);
        assert_int_equal(t->rank, 1);
        assert_int_equal(hone_tensor_get_i64(t, 0), 258);
        assert_int_equal(hone_tensor_get_i64(t, 1), -2);
        hone_tensor_free(t);
    }
    /* Fortran order and big-endian data are refused, not misread */
    hone_tensor *t = NULL;
    size_t n = numpy_file(buf, 1, "{'descr': '<i2', 'fortran_order': True, 'shape': (2,), }", le, 4);
    assert_int_equal(hone_npy_parse(&ctx, buf, n, &t), HONE_ERR_UNSUPPORTED);
    n = numpy_file(buf, 1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", le, 4);
    assert_int_equal(hone_npy_parse(&ctx, buf, n, &t), HONE_ERR_UNSUPPORTED);
    assert_null(t);
}

static void test_npy_truncated(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dims[] = {2, 3};
    hone_tensor *t = new_tensor(HONE_DT_FLOAT, 2, dims), *r;
    uint8_t *buf;
    size_t len;
    assert_int_equal(hone_npy_encode(&ctx, t, &buf, &len), HONE_OK);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size, so ASan sees any overrun */
        memcpy(cut, buf, n);
        assert_int_not_equal(hone_npy_parse(&ctx, cut, n, &r), HONE_OK);
        free(cut);
    }
    assert_non_null(strstr(ctx.msg, "truncated"));
    free(buf);
    hone_tensor_free(t);
}

/* Shapes far beyond the file are refused before anything is allocated. */
static void test_npy_huge_shape(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    static const char *shapes[] = {"(1048576, 1048576)", "(4611686018427387904,)",
                                   "(4294967296, 4294967296, 4294967296)"};
    static const hone_status want[] = {HONE_ERR_PARSE, HONE_ERR_LIMIT, HONE_ERR_LIMIT};
    for (int k = 0; k < 3; k++) {
        char hdr[128];
        int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }\n",
                         shapes[k]);
        uint8_t buf[256] = "\x93NUMPY\x01\x00";
        buf[8] = (uint8_t)n;
        memcpy(buf + 10, hdr, (size_t)n);
        hone_tensor *t = NULL;
        assert_int_equal(hone_npy_parse(&ctx, buf, 10 + (size_t)n + 12, &t), want[k]);
        assert_null(t);
    }
}

/* ---- IDX ---- */

static const uint8_t idx_u8[] = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 250};

static void test_idx_types(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    static const uint8_t i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE};
    static const uint8_t i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 2, 0x3F, 0xC0, 0, 0, 0xC0, 0, 0, 0};
    static const uint8_t f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0};
    static const uint8_t s8[] = {0, 0, 0x09, 1, 0, 0, 0, 2, 0x7F, 0x80};
    static const struct { const uint8_t *b; size_t n; hone_dtype dt; double v0, v1; } cases[] = {
        {i16, sizeof i16, HONE_DT_INT16, 258, -2},  {i32, sizeof i32, HONE_DT_INT32, 256, -1},
        {f32, sizeof f32, HONE_DT_FLOAT, 1.5, -2},  {f64, sizeof f64, HONE_DT_DOUBLE, 1, 1},
        {s8, sizeof s8, HONE_DT_INT8, 127, -128},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        write_bytes(tmp("t.idx"), cases[k].b, cases[k].n);
        hone_tensor *t;
        assert_int_equal(hone_idx_read(&ctx, tmp("t.idx"), &t), HONE_OK);
        assert_int_equal(t->dtype, cases[k].dt);
        assert_true(hone_tensor_get_f64(t, 0) == cases[k].v0);
        assert_true(hone_tensor_get_f64(t, t->numel - 1) == cases[k].v1);
        hone_tensor_free(t);
    }
}

static void check_u8_tensor(const hone_tensor *t)
{
    assert_int_equal(t->dtype, HONE_DT_UINT8);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->dims[0], 2);
    assert_int_equal(t->dims[1], 3);
    assert_memory_equal(t->data, idx_u8 + 12, 6);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static void test_idx_plain_and_gzip(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    write_bytes(tmp("u8.idx"), idx_u8, sizeof idx_u8);
    assert_int_equal(hone_idx_read(&ctx, tmp("u8.idx"), &t), HONE_OK);
    check_u8_tensor(t);
    hone_tensor_free(t);
    write_gz(tmp("u8.idx.gz"), idx_u8, sizeof idx_u8);
    assert_int_equal(hone_idx_read(&ctx, tmp("u8.idx.gz"), &t), HONE_OK);
    check_u8_tensor(t);
    hone_tensor_free(t);
}

/* Every prefix of a plain and of a gzip file fails cleanly, as do extra bytes. */
static void test_idx_truncated(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t = NULL;
    for (size_t n = 0; n < sizeof idx_u8; n++) {
        write_bytes(tmp("cut.idx"), idx_u8, n);
        assert_int_equal(hone_idx_read(&ctx, tmp("cut.idx"), &t), HONE_ERR_PARSE);
        assert_non_null(strstr(ctx.msg, "cut.idx"));
    }
    uint8_t longer[sizeof idx_u8 + 1];
    memcpy(longer, idx_u8, sizeof idx_u8);
    longer[sizeof idx_u8] = 9;
    write_bytes(tmp("long.idx"), longer, sizeof longer);
    assert_int_equal(hone_idx_read(&ctx, tmp("long.idx"), &t), HONE_ERR_PARSE);
    write_gz(tmp("long.gz"), longer, sizeof longer);
    assert_int_equal(hone_idx_read(&ctx, tmp("long.gz"), &t), HONE_ERR_PARSE);
    uint8_t *gz;
    size_t len;
    write_gz(tmp("full.gz"), idx_u8, sizeof idx_u8);
    assert_int_equal(hone_read_file(&ctx, tmp("full.gz"), &gz, &len), HONE_OK);
    for (size_t n = 0; n < len; n++) {
        write_bytes(tmp("cut.gz"), gz, n);
        assert_int_not_equal(hone_idx_read(&ctx, tmp("cut.gz"), &t), HONE_OK);
    }
    free(gz);
    assert_null(t);
}

static void test_idx_bad_header(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t = NULL;
    uint8_t b[sizeof idx_u8];
    static const struct { int pos; uint8_t val; hone_status st; const char *msg; } cases[] = {
        {0, 1, HONE_ERR_PARSE, "bad magic"},    {2, 0x0A, HONE_ERR_PARSE, "type code 0x0a"},
        {3, 0, HONE_ERR_LIMIT, "rank 0"},       {3, 9, HONE_ERR_LIMIT, "rank 9"},
        {7, 3, HONE_ERR_PARSE, "implies 21"},   {4, 0x80, HONE_ERR_PARSE, "implies 6442450962"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        memcpy(b, idx_u8, sizeof b);
        b[cases[k].pos] = cases[k].val;
        write_bytes(tmp("bad.idx"), b, sizeof b);
        assert_int_equal(hone_idx_read(&ctx, tmp("bad.idx"), &t), cases[k].st);
        assert_non_null(strstr(ctx.msg, cases[k].msg));
    }
    assert_int_equal(hone_idx_read(&ctx, tmp("none.idx"), &t), HONE_ERR_IO);
    assert_null(t);
}

/* The Debian Fashion-MNIST test set (values checked with Python's gzip module). */
static void test_idx_fashion_mnist(void **state)
{
    if (access(FMNIST "t10k-labels-idx1-ubyte.gz", R_OK))
        skip();
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *y, *x;
    assert_int_equal(hone_idx_read(&ctx, FMNIST "t10k-labels-idx1-ubyte.gz", &y), HONE_OK);
    assert_int_equal(y->rank, 1);
    assert_int_equal(y->dims[0], 10000);
    static const uint8_t first[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    assert_memory_equal(y->data, first, 10);
    int64_t sum = 0;
    for (int64_t i = 0; i < y->numel; i++)
        sum += ((uint8_t *)y->data)[i];
    assert_int_equal(sum, 45000);
    assert_int_equal(hone_idx_read(&ctx, FMNIST "t10k-images-idx3-ubyte.gz", &x), HONE_OK);
    assert_int_equal(x->rank, 3);
    assert_int_equal(x->dims[2], 28);
    const uint8_t *p = x->data;
    sum = 0;
    for (int i = 0; i < 784; i++)
        sum += p[i];
    assert_int_equal(sum, 33456);
    assert_int_equal(p[14 * 28 + 14], 110);
    hone_tensor_free(x);
    hone_tensor_free(y);
}

/* ---- dataset ---- */

static void test_data_load_by_extension(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    write_bytes(tmp("a-ubyte"), idx_u8, sizeof idx_u8);
    write_gz(tmp("a.gz"), idx_u8, sizeof idx_u8);
    write_bytes(tmp("a.idx"), idx_u8, sizeof idx_u8);
    const char *names[] = {"a-ubyte", "a.gz", "a.idx", "a.npy", "a.pb"};
    for (int k = 0; k < 5; k++) {
        if (k == 3 || k == 4) { /* write the same samples as .npy and TensorProto */
            hone_tensor *src;
            assert_int_equal(hone_idx_read(&ctx, tmp("a.idx"), &src), HONE_OK);
            assert_int_equal(k == 3 ? hone_npy_write(&ctx, src, tmp(names[k]))
                                    : hone_onnx_write_tensor_pb(&ctx, src, "a", tmp(names[k])),
                             HONE_OK);
            hone_tensor_free(src);
        }
        assert_int_equal(hone_data_load(&ctx, tmp(names[k]), &t), HONE_OK);
        check_u8_tensor(t);
        hone_tensor_free(t);
    }
    write_bytes(tmp("a.csv"), "1,2\n", 4);
    assert_int_equal(hone_data_load(&ctx, tmp("a.csv"), &t), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "a.csv"));
}

static void test_data_normalise(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dims[] = {2, 2};
    hone_tensor *u = new_tensor(HONE_DT_UINT8, 2, dims), *f;
    memcpy(u->data, (uint8_t[]){0, 255, 51, 102}, 4);
    hone_norm nm = {1.0 / 255.0, 0.5, 0.25};
    assert_int_equal(hone_data_to_float(&ctx, u, nm, &f), HONE_OK);
    assert_int_equal(f->dtype, HONE_DT_FLOAT);
    const float want[] = {-2.0f, 2.0f, -1.2f, -0.4f}; /* (x/255 - 0.5) / 0.25 */
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)f->data)[i], want[i], 1e-6);
    hone_tensor_free(f);
    nm.std = 0;
    assert_int_equal(hone_data_to_float(&ctx, u, nm, &f), HONE_ERR_ARG);
    hone_tensor_free(u);
}

static void test_data_fit_shape(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_value *v = hone_graph_new_value(g, "img");
    v->dtype = HONE_DT_FLOAT;
    v->rank = 3;
    v->dims[0] = HONE_DIM_SYM(hone_graph_sym(g, "N"));
    v->dims[1] = 2;
    v->dims[2] = 3;
    int64_t dims[] = {4, 6};
    hone_tensor *t = new_tensor(HONE_DT_FLOAT, 2, dims);
    assert_int_equal(hone_data_fit_shape(&ctx, t, g, v), HONE_OK);
    assert_int_equal(t->rank, 3);
    assert_int_equal(t->dims[0], 4);
    assert_int_equal(t->dims[1], 2);
    assert_int_equal(t->dims[2], 3);
    v->dims[2] = 4; /* 8 elements per sample: does not fit */
    assert_int_equal(hone_data_fit_shape(&ctx, t, g, v), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "'img' f32[N,2,4]"));
    v->dims[2] = HONE_DIM_UNKNOWN; /* an unknown per-sample dim cannot be matched */
    assert_int_equal(hone_data_fit_shape(&ctx, t, g, v), HONE_ERR_SHAPE);
    hone_data_limit(t, 3);
    assert_int_equal(t->dims[0], 3);
    assert_int_equal(t->numel, 18);
    hone_data_limit(t, 10);
    assert_int_equal(t->dims[0], 3);
    hone_tensor_free(t);
    hone_graph_free(g);
}

static void test_data_gather_pads(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dims[] = {4, 2};
    hone_tensor *t = new_tensor(HONE_DT_INT32, 2, dims), *b;
    for (int i = 0; i < 8; i++)
        ((int32_t *)t->data)[i] = i;
    const int64_t idx[] = {3, 1};
    assert_int_equal(hone_data_gather(&ctx, t, idx, 2, 3, &b), HONE_OK);
    assert_int_equal(b->dims[0], 3);
    assert_int_equal(b->dims[1], 2);
    const int32_t want[] = {6, 7, 2, 3, 0, 0};
    assert_memory_equal(b->data, want, sizeof want);
    hone_tensor_free(b);
    hone_tensor_free(t);
}

static void test_batcher(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_batcher b;
    assert_int_equal(hone_batcher_init(&ctx, &b, 10, 4), HONE_OK);
    const int64_t *idx;
    const int64_t want_counts[] = {4, 4, 2, 0};
    int64_t seen = 0;
    for (int k = 0; k < 4; k++) {
        int64_t n = hone_batcher_next(&b, &idx);
        assert_int_equal(n, want_counts[k]);
        for (int64_t i = 0; i < n; i++)
            assert_int_equal(idx[i], seen++);
    }
    hone_batcher_shuffle(&b, 42);
    int64_t first[10], count[10] = {0}, moved = 0;
    for (int64_t n; (n = hone_batcher_next(&b, &idx)) > 0;)
        for (int64_t i = 0; i < n; i++) {
            first[idx - b.order + i] = idx[i];
            count[idx[i]]++;
        }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(count[i], 1); /* a permutation */
        moved += first[i] != i;
    }
    assert_true(moved > 0);
    hone_batcher_free(&b);
    /* the same seed gives the same order */
    assert_int_equal(hone_batcher_init(&ctx, &b, 10, 4), HONE_OK);
    hone_batcher_shuffle(&b, 42);
    assert_memory_equal(b.order, first, sizeof first);
    hone_batcher_free(&b);
    assert_int_equal(hone_batcher_init(&ctx, &b, 10, 0), HONE_ERR_ARG);
    hone_batcher_free(&b);
}

/* ---- metrics ---- */

static void test_metric_top1(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d33[] = {3, 3}, d3[] = {3};
    /* argmax per row: 1, 2, 0 (the first of two equal maxima) */
    const float lv[] = {0.1f, 0.9f, 0.0f, 2, 1, 3, 5, 5, 1};
    hone_tensor *logits = tu_tensor_f32(2, d33, lv);
    hone_tensor *labels = new_tensor(HONE_DT_INT64, 1, d3);
    memcpy(labels->data, (int64_t[]){0, 1, 2}, sizeof(int64_t) * 3);
    /* rows are samples 1, 2, 0: labels 1, 2, 0 -> every row right */
    int64_t hits = 0;
    assert_int_equal(hone_metric_top1(&ctx, logits, labels, (int64_t[]){1, 2, 0}, 3, &hits), HONE_OK);
    assert_int_equal(hits, 3);
    /* rows are samples 0, 1, 2: labels 0, 1, 2 -> none right; accumulates onto 3 */
    assert_int_equal(hone_metric_top1(&ctx, logits, labels, (int64_t[]){0, 1, 2}, 3, &hits), HONE_OK);
    assert_int_equal(hits, 3);
    assert_int_equal(hone_metric_top1(&ctx, logits, logits, (int64_t[]){0, 1, 2}, 3, &hits),
                     HONE_ERR_ARG);
    hone_tensor_free(logits);
    hone_tensor_free(labels);
}

static void test_metric_psnr(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d22[] = {2, 2}, d23[] = {2, 3};
    const float ov[] = {0.5f, 0.5f, 1.2f, -1.0f};
    hone_tensor *out = tu_tensor_f32(2, d22, ov);
    hone_tensor *tg = new_tensor(HONE_DT_UINT8, 2, d22);
    memcpy(tg->data, (uint8_t[]){0, 0, 255, 0}, 4);
    double sum = 0;
    /* image 0: MSE 0.25 -> 10 log10(4); image 1: clamped output is exact -> 100 dB floor */
    assert_int_equal(hone_metric_psnr(&ctx, out, tg, (int64_t[]){0, 1}, 2, 1.0 / 255.0, &sum), HONE_OK);
    assert_float_equal(sum, 10.0 * log10(4.0) + 100.0, 1e-9);
    hone_tensor *wrong = new_tensor(HONE_DT_UINT8, 2, d23);
    assert_int_equal(hone_metric_psnr(&ctx, out, wrong, (int64_t[]){0, 1}, 2, 1.0, &sum), HONE_ERR_SHAPE);
    hone_tensor_free(wrong);
    hone_tensor_free(tg);
    hone_tensor_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_roundtrip_dtypes), cmocka_unit_test(test_npy_file_and_scalar),
        cmocka_unit_test(test_npy_numpy_header),     cmocka_unit_test(test_npy_truncated),
        cmocka_unit_test(test_npy_huge_shape),       cmocka_unit_test(test_idx_types),
        cmocka_unit_test(test_idx_plain_and_gzip),   cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_bad_header),       cmocka_unit_test(test_idx_fashion_mnist),
        cmocka_unit_test(test_data_load_by_extension), cmocka_unit_test(test_data_normalise),
        cmocka_unit_test(test_data_fit_shape),       cmocka_unit_test(test_data_gather_pads),
        cmocka_unit_test(test_batcher),              cmocka_unit_test(test_metric_top1),
        cmocka_unit_test(test_metric_psnr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
