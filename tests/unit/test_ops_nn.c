/*
 * nn op family: Conv and ConvTranspose against naive direct loops written
 * here (random data, many geometries, including a conv large enough to be
 * tiled), pooling and normalisation against hand-computed values, Gemm and
 * MatMul against hand values and a naive product, the opset-dependent softmax
 * axis rule, Einsum, static shape inference with symbolic batch, and the
 * shape errors (each must name the node).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---------- building and running one node ---------- */

static hone_graph *graph_opset(int version)
{
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, sizeof *g->opsets);
    g->opsets[0].domain = "";
    g->opsets[0].version = version;
    g->n_opsets = 1;
    return g;
}

/* A node named "nn_node" with fresh values on every input and output. */
static hone_node *make_node(hone_graph *g, const char *op, int n_in, int n_out)
{
    hone_node *n = hone_graph_add_node(g, op, "", "nn_node", n_in, n_out);
    for (int i = 0; i < n_in; i++)
        n->in[i] = hone_graph_new_value(g, NULL);
    for (int i = 0; i < n_out; i++)
        n->out[i] = hone_graph_new_value(g, NULL);
    return n;
}

static void set_ints(hone_graph *g, hone_node *n, const char *name, int cnt, const int64_t *v)
{
    hone_node_set_attr_ints(g, n, name, v, cnt);
}

static uint32_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static hone_tensor *rand_tensor(int rank, const int64_t *dims)
{
    hone_tensor *t = tu_tensor_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = frand();
    return t;
}

static void assert_close(const hone_tensor *got, const float *want, int64_t n, double tol)
{
    assert_int_equal(got->numel, n);
    for (int64_t i = 0; i < n; i++) {
        double g = ((const float *)got->data)[i];
        if (fabs(g - want[i]) > tol * (1 + fabs(want[i])))
            fail_msg("element %lld: got %.7g, want %.7g", (long long)i, g, (double)want[i]);
    }
}

/* ---------- Conv against a naive direct loop ---------- */

typedef struct conv_cfg {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    bool bias;
} conv_cfg;

/* Pads a config's spatial arrays to 3 dims with unit extents. */
static conv_cfg as_3d(conv_cfg c)
{
    for (int i = c.nsp; i < 3; i++) {
        c.in[i] = c.k[i] = c.s[i] = c.d[i] = 1;
        c.pb[i] = c.pe[i] = 0;
    }
    for (int i = 0; i < c.nsp; i++) {
        c.s[i] = c.s[i] ? c.s[i] : 1;
        c.d[i] = c.d[i] ? c.d[i] : 1;
    }
    return c;
}

static int64_t conv_out(const conv_cfg *c, int i)
{
    return (c->in[i] + c->pb[i] + c->pe[i] - (c->k[i] - 1) * c->d[i] - 1) / c->s[i] + 1;
}

/* Y[n,m,o] = B[m] + sum over the group's channels and kernel of X * W. */
static float naive_conv_at(const conv_cfg *c, const float *x, const float *w, const float *b,
                           int64_t n, int64_t m, const int64_t *o)
{
    int64_t cg = c->c / c->group, g = m / (c->m / c->group);
    double acc = b ? b[m] : 0;
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t a = 0; a < c->k[0]; a++)
            for (int64_t e = 0; e < c->k[1]; e++)
                for (int64_t f = 0; f < c->k[2]; f++) {
                    int64_t i0 = o[0] * c->s[0] - c->pb[0] + a * c->d[0];
                    int64_t i1 = o[1] * c->s[1] - c->pb[1] + e * c->d[1];
                    int64_t i2 = o[2] * c->s[2] - c->pb[2] + f * c->d[2];
                    if (i0 < 0 || i0 >= c->in[0] || i1 < 0 || i1 >= c->in[1] || i2 < 0 ||
                        i2 >= c->in[2])
                        continue;
                    int64_t xc = n * c->c + g * cg + ci;
                    double xv = x[((xc * c->in[0] + i0) * c->in[1] + i1) * c->in[2] + i2];
                    double wv = w[(((m * cg + ci) * c->k[0] + a) * c->k[1] + e) * c->k[2] + f];
                    acc += xv * wv;
                }
    return (float)acc;
}

static float *naive_conv(const conv_cfg *c, const float *x, const float *w, const float *b)
{
    int64_t o0 = conv_out(c, 0), o1 = conv_out(c, 1), o2 = conv_out(c, 2), k = 0;
    float *y = malloc(sizeof(float) * (size_t)(c->n * c->m * o0 * o1 * o2));
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t m = 0; m < c->m; m++)
            for (int64_t a = 0; a < o0; a++)
                for (int64_t e = 0; e < o1; e++)
                    for (int64_t f = 0; f < o2; f++) {
                        int64_t o[3] = {a, e, f};
                        y[k++] = naive_conv_at(c, x, w, b, n, m, o);
                    }
    return y;
}

/* Runs Conv on random data for cfg and compares with the naive loop. */
static void check_conv(conv_cfg cfg)
{
    conv_cfg c3 = as_3d(cfg);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Conv", cfg.bias ? 3 : 2, 1);
    int64_t xd[5] = {cfg.n, cfg.c}, wd[5] = {cfg.m, cfg.c / cfg.group}, bd[1] = {cfg.m};
    int64_t pads[6];
    for (int i = 0; i < cfg.nsp; i++) {
        xd[i + 2] = cfg.in[i];
        wd[i + 2] = cfg.k[i];
        pads[i] = cfg.pb[i];
        pads[cfg.nsp + i] = cfg.pe[i];
    }
    set_ints(g, n, "strides", cfg.nsp, c3.s);
    set_ints(g, n, "dilations", cfg.nsp, c3.d);
    set_ints(g, n, "pads", 2 * cfg.nsp, pads);
    hone_node_set_attr_int(g, n, "group", cfg.group);
    hone_tensor *x = rand_tensor(cfg.nsp + 2, xd), *w = rand_tensor(cfg.nsp + 2, wd);
    hone_tensor *b = rand_tensor(1, bd), *y = NULL;
    const hone_tensor *in[3] = {x, w, b};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    float *want = naive_conv(&c3, x->data, w->data, cfg.bias ? b->data : NULL);
    assert_int_equal(y->rank, cfg.nsp + 2);
    for (int i = 0; i < cfg.nsp; i++)
        assert_int_equal(y->dims[i + 2], conv_out(&c3, i));
    assert_close(y, want, y->numel, 1e-4);
    free(want);
    hone_tensor_free(x);
    hone_tensor_free(w);
    hone_tensor_free(b);
    hone_tensor_free(y);
    hone_graph_free(g);
}

static void test_conv_2d_vs_naive(void **state)
{
    /* nsp n c m group in k s d pb pe bias */
    conv_cfg cases[] = {
        {2, 1, 3, 4, 1, {7, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true},
        {2, 2, 4, 6, 2, {9, 8}, {3, 2}, {2, 1}, {1, 1}, {1, 0}, {2, 1}, true},
        {2, 1, 6, 6, 6, {8, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, false},
        {2, 1, 4, 8, 4, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true},
        {2, 1, 3, 2, 1, {10, 9}, {3, 3}, {1, 2}, {2, 3}, {2, 0}, {2, 3}, true},
        {2, 2, 5, 3, 1, {6, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, true},
        {2, 1, 4, 4, 1, {6, 6}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, false},
        {2, 1, 2, 3, 1, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {3, 3}, {3, 3}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_conv(cases[i]);
}

static void test_conv_1d_3d_vs_naive(void **state)
{
    conv_cfg cases[] = {
        {1, 2, 4, 6, 2, {11}, {3}, {2}, {2}, {1}, {2}, true},
        {1, 1, 3, 3, 3, {5}, {2}, {1}, {1}, {0}, {1}, false},
        {3, 1, 2, 4, 2, {5, 4, 6}, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1}, {0, 1, 1}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_conv(cases[i]);
}

/* Big enough (576 rows x 4096 columns) that im2col is done in several tiles. */
static void test_conv_tiled_vs_naive(void **state)
{
    conv_cfg c = {2, 1, 64, 3, 1, {64, 64}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true};
    check_conv(c);
}

/* ---------- ConvTranspose against a naive scatter ---------- */

static void test_conv_transpose_vs_naive(void **state)
{
    /* X[1,2,3,4], W[2,3/1... ] group 1, M = 3, stride (2,3), pads (1,0,0,1), dilation (1,2) */
    int64_t xd[] = {1, 2, 3, 4}, wd[] = {2, 3, 3, 2}, s[] = {2, 3}, dl[] = {1, 2},
            pads[] = {1, 0, 0, 1};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "ConvTranspose", 2, 1);
    set_ints(g, n, "strides", 2, s);
    set_ints(g, n, "dilations", 2, dl);
    set_ints(g, n, "pads", 4, pads);
    hone_tensor *x = rand_tensor(4, xd), *w = rand_tensor(4, wd), *y = NULL;
    const hone_tensor *in[2] = {x, w};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    /* out = s*(in-1) + (k-1)*d + 1 - pads */
    int64_t oh = 2 * 2 + 3 - 1, ow = 3 * 3 + 3 - 1;
    assert_int_equal(y->dims[1], 3);
    assert_int_equal(y->dims[2], oh);
    assert_int_equal(y->dims[3], ow);
    float *want = calloc((size_t)(3 * oh * ow), sizeof(float));
    const float *xv = x->data, *wv = w->data;
    for (int c = 0; c < 2; c++)
        for (int m = 0; m < 3; m++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++)
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 2; b++) {
                            int64_t r = i * 2 - 1 + a, q = j * 3 - 0 + b * 2;
                            if (r >= 0 && r < oh && q >= 0 && q < ow)
                                want[(m * oh + r) * ow + q] +=
                                    xv[(c * 3 + i) * 4 + j] * wv[((c * 3 + m) * 3 + a) * 2 + b];
                        }
    assert_close(y, want, 3 * oh * ow, 1e-4);
    free(want);
    hone_tensor_free(x);
    hone_tensor_free(w);
    hone_tensor_free(y);
    hone_graph_free(g);
}

/* ---------- pooling against hand values ---------- */

/* Runs a one-input op on x (4x4 counting 1..16 by default); returns output 0. */
static hone_tensor *run_unary(hone_graph *g, hone_node *n, hone_tensor *x, hone_tensor **extra)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *out[2] = {NULL, NULL};
    const hone_tensor *in[1] = {x};
    assert_int_equal(hone_node_run(&ctx, n, in, out, NULL), HONE_OK);
    if (extra)
        *extra = out[1];
    else
        hone_tensor_free(out[1]);
    return out[0];
}

static hone_tensor *count_4x4(void)
{
    int64_t d[] = {1, 1, 4, 4};
    hone_tensor *x = tu_tensor_f32(4, d, NULL);
    for (int i = 0; i < 16; i++)
        ((float *)x->data)[i] = (float)(i + 1);
    return x;
}

/* A pooling node with kernel_shape k and strides s over nsp dims. */
static hone_node *pool_node(hone_graph *g, const char *op, int nsp, const int64_t *k,
                            const int64_t *s, int n_out)
{
    hone_node *n = make_node(g, op, 1, n_out);
    set_ints(g, n, "kernel_shape", nsp, k);
    set_ints(g, n, "strides", nsp, s);
    return n;
}

static void test_maxpool_hand(void **state)
{
    int64_t k[] = {2, 2}, s[] = {2, 2};
    hone_graph *g = graph_opset(12);
    hone_node *n = pool_node(g, "MaxPool", 2, k, s, 2);
    hone_tensor *x = count_4x4(), *idx;
    ((float *)x->data)[4] = 100; /* row 1, col 0 */
    hone_tensor *y = run_unary(g, n, x, &idx);
    float want[] = {100, 8, 14, 16};
    assert_close(y, want, 4, 0);
    int64_t want_idx[] = {4, 7, 13, 15};
    assert_int_equal(idx->dtype, HONE_DT_INT64);
    assert_memory_equal(idx->data, want_idx, sizeof want_idx);
    hone_tensor_free(y);
    hone_tensor_free(idx);
    /* column-major indices: element (1, 0) is 0*4 + 1 = 1 */
    hone_node_set_attr_int(g, n, "storage_order", 1);
    y = run_unary(g, n, x, &idx);
    int64_t want_cm[] = {1, 13, 7, 15};
    assert_memory_equal(idx->data, want_cm, sizeof want_cm);
    hone_tensor_free(y);
    hone_tensor_free(idx);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_maxpool_ceil_mode(void **state)
{
    /* k3 s2 on 4x4: floor mode gives 1x1, ceil mode 2x2 with partial last windows */
    int64_t k[] = {3, 3}, s[] = {2, 2};
    hone_graph *g = graph_opset(12);
    hone_node *n = pool_node(g, "MaxPool", 2, k, s, 1);
    hone_tensor *x = count_4x4(), *y = run_unary(g, n, x, NULL);
    float want1[] = {11};
    assert_close(y, want1, 1, 0);
    hone_tensor_free(y);
    hone_node_set_attr_int(g, n, "ceil_mode", 1);
    y = run_unary(g, n, x, NULL);
    float want[] = {11, 12, 15, 16};
    assert_close(y, want, 4, 0);
    hone_tensor_free(y);
    hone_tensor_free(x);
    /* k2 s2 pads 1 on 5: ceil would give 4 windows, but the last would start in
     * the end padding, so it is dropped: 3 */
    int64_t k2[] = {2}, s2[] = {2}, p2[] = {1, 1}, xd[] = {1, 1, 5};
    n = pool_node(g, "MaxPool", 1, k2, s2, 1);
    set_ints(g, n, "pads", 2, p2);
    hone_node_set_attr_int(g, n, "ceil_mode", 1);
    x = rand_tensor(3, xd);
    y = run_unary(g, n, x, NULL);
    assert_int_equal(y->dims[2], 3);
    hone_tensor_free(y);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_avgpool_hand(void **state)
{
    int64_t k[] = {3, 3}, pads[] = {1, 1, 1, 1}, s[] = {2, 2};
    hone_graph *g = graph_opset(11);
    hone_node *n = pool_node(g, "AveragePool", 2, k, s, 1);
    set_ints(g, n, "pads", 4, pads);
    hone_tensor *x = count_4x4(), *y = run_unary(g, n, x, NULL);
    /* windows: rows/cols {-1,0,1} and {1,2,3}; padding excluded from the count */
    float want[] = {(1 + 2 + 5 + 6) / 4.0f, (2 + 3 + 4 + 6 + 7 + 8) / 6.0f,
                    (5 + 6 + 9 + 10 + 13 + 14) / 6.0f, (6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9.0f};
    assert_close(y, want, 4, 1e-6);
    hone_tensor_free(y);
    hone_node_set_attr_int(g, n, "count_include_pad", 1);
    y = run_unary(g, n, x, NULL);
    float want_pad[] = {14 / 9.0f, 30 / 9.0f, 57 / 9.0f, 99 / 9.0f};
    assert_close(y, want_pad, 4, 1e-6);
    hone_tensor_free(y);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_global_pools(void **state)
{
    const char *ops[] = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"};
    float want[] = {8.5f, 16.0f, sqrtf(1496.0f)}; /* sum of squares 1..16 = 1496 */
    for (int i = 0; i < 3; i++) {
        hone_graph *g = graph_opset(13);
        hone_node *n = make_node(g, ops[i], 1, 1);
        hone_tensor *x = count_4x4(), *y = run_unary(g, n, x, NULL);
        assert_int_equal(y->rank, 4);
        assert_int_equal(y->dims[2], 1);
        assert_close(y, &want[i], 1, 1e-6);
        hone_tensor_free(y);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

/* ---------- Gemm and MatMul ---------- */

static void test_gemm_transposes(void **state)
{
    /* A^T with A = [[1,2],[3,4],[5,6]] (3x2 -> op(A) 2x3), B^T with B = [[1,0,1],[0,1,1]]
     * (2x3 -> op(B) 3x2), C = [10, 20] row broadcast, alpha 2, beta 0.5 */
    float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {1, 0, 1, 0, 1, 1}, cv[] = {10, 20};
    int64_t ad[] = {3, 2}, bd[] = {2, 3}, cd[] = {2};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Gemm", 3, 1);
    hone_node_set_attr_int(g, n, "transA", 1);
    hone_node_set_attr_int(g, n, "transB", 1);
    hone_node_set_attr_float(g, n, "alpha", 2.0f);
    hone_node_set_attr_float(g, n, "beta", 0.5f);
    hone_tensor *a = tu_tensor_f32(2, ad, av), *b = tu_tensor_f32(2, bd, bv);
    hone_tensor *c = tu_tensor_f32(1, cd, cv), *y = NULL;
    const hone_tensor *in[3] = {a, b, c};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    /* op(A) = [[1,3,5],[2,4,6]], op(B) = [[1,0],[0,1],[1,1]]: product [[6,8],[8,10]] */
    float want[] = {2 * 6 + 5, 2 * 8 + 10, 2 * 8 + 5, 2 * 10 + 10};
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 2);
    assert_close(y, want, 4, 1e-6);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(c);
    hone_tensor_free(y);
    hone_graph_free(g);
}

static void test_matmul_broadcast(void **state)
{
    /* A[2,1,2,3] x B[3,3,4] -> Y[2,3,2,4] */
    int64_t ad[] = {2, 1, 2, 3}, bd[] = {3, 3, 4};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "MatMul", 2, 1);
    hone_tensor *a = rand_tensor(4, ad), *b = rand_tensor(3, bd), *y = NULL;
    const hone_tensor *in[2] = {a, b};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    assert_int_equal(y->rank, 4);
    assert_int_equal(y->dims[1], 3);
    float want[2 * 3 * 2 * 4];
    const float *av = a->data, *bv = b->data;
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 3; q++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++) {
                    double s = 0;
                    for (int k = 0; k < 3; k++)
                        s += av[(p * 2 + i) * 3 + k] * bv[(q * 3 + k) * 4 + j];
                    want[((p * 3 + q) * 2 + i) * 4 + j] = (float)s;
                }
    assert_close(y, want, 48, 1e-5);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(y);
    hone_graph_free(g);
}

/* ---------- normalisation ---------- */

static void test_batchnorm_hand(void **state)
{
    /* X[1,2,1,2] = [[1,3],[2,6]] per channel; scale [2,1], B [1,0], mean [2,4], var [1,4] */
    float xv[] = {1, 3, 2, 6}, sc[] = {2, 1}, bi[] = {1, 0}, mu[] = {2, 4}, va[] = {1, 4};
    int64_t xd[] = {1, 2, 1, 2}, cd[] = {2};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(15);
    hone_node *n = make_node(g, "BatchNormalization", 5, 1);
    hone_node_set_attr_float(g, n, "epsilon", 0.0f);
    hone_tensor *t[5] = {tu_tensor_f32(4, xd, xv), tu_tensor_f32(1, cd, sc),
                         tu_tensor_f32(1, cd, bi), tu_tensor_f32(1, cd, mu),
                         tu_tensor_f32(1, cd, va)};
    hone_tensor *y = NULL;
    assert_int_equal(hone_node_run(&ctx, n, (const hone_tensor **)t, &y, NULL), HONE_OK);
    /* ch0: 2*(x-2)/1 + 1 -> -1, 3; ch1: (x-4)/2 -> -1, 1 */
    float want[] = {-1, 3, -1, 1};
    assert_close(y, want, 4, 1e-6);
    hone_tensor_free(y);
    for (int i = 0; i < 5; i++)
        hone_tensor_free(t[i]);
    hone_graph_free(g);
}

static void test_batchnorm_training(void **state)
{
    /* one channel, batch values {1, 3}: batch mean 2, population var 1 */
    float xv[] = {1, 3}, one[] = {1}, zero[] = {0}, mu[] = {10}, va[] = {5};
    int64_t xd[] = {2, 1}, cd[] = {1};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(15);
    hone_node *n = make_node(g, "BatchNormalization", 5, 3);
    hone_node_set_attr_int(g, n, "training_mode", 1);
    hone_node_set_attr_float(g, n, "epsilon", 0.0f);
    hone_node_set_attr_float(g, n, "momentum", 0.75f);
    hone_tensor *t[5] = {tu_tensor_f32(2, xd, xv), tu_tensor_f32(1, cd, one),
                         tu_tensor_f32(1, cd, zero), tu_tensor_f32(1, cd, mu),
                         tu_tensor_f32(1, cd, va)};
    hone_tensor *out[3] = {NULL};
    assert_int_equal(hone_node_run(&ctx, n, (const hone_tensor **)t, out, NULL), HONE_OK);
    float want_y[] = {-1, 1}, want_m[] = {10 * 0.75f + 2 * 0.25f}, want_v[] = {5 * 0.75f + 0.25f};
    assert_close(out[0], want_y, 2, 1e-6);
    assert_close(out[1], want_m, 1, 1e-6);
    assert_close(out[2], want_v, 1, 1e-6);
    for (int i = 0; i < 5; i++)
        hone_tensor_free(t[i]);
    for (int i = 0; i < 3; i++)
        hone_tensor_free(out[i]);
    hone_graph_free(g);
}

static void test_layernorm_stats(void **state)
{
    float xv[] = {1, 2, 3, 4, 0, 0, 0, 8}, sc[] = {1, 1, 1, 2};
    int64_t xd[] = {2, 4}, sd[] = {4};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(17);
    hone_node *n = make_node(g, "LayerNormalization", 2, 3);
    hone_node_set_attr_float(g, n, "epsilon", 0.0f);
    hone_tensor *x = tu_tensor_f32(2, xd, xv), *s = tu_tensor_f32(1, sd, sc);
    const hone_tensor *in[2] = {x, s};
    hone_tensor *out[3] = {NULL};
    assert_int_equal(hone_node_run(&ctx, n, in, out, NULL), HONE_OK);
    /* row 0: mean 2.5, var 1.25; row 1: mean 2, var 12 */
    float is0 = 1 / sqrtf(1.25f), is1 = 1 / sqrtf(12.0f);
    float want[] = {-1.5f * is0, -0.5f * is0, 0.5f * is0, 2 * 1.5f * is0,
                    -2 * is1,    -2 * is1,    -2 * is1,   2 * 6 * is1};
    float want_mean[] = {2.5f, 2}, want_is[] = {is0, is1};
    assert_close(out[0], want, 8, 1e-5);
    assert_int_equal(out[1]->dims[1], 1);
    assert_close(out[1], want_mean, 2, 1e-6);
    assert_close(out[2], want_is, 2, 1e-5);
    hone_tensor_free(x);
    hone_tensor_free(s);
    for (int i = 0; i < 3; i++)
        hone_tensor_free(out[i]);
    hone_graph_free(g);
}

/* ---------- softmax family: the opset 13 axis change ---------- */

static void test_softmax_opsets(void **state)
{
    float xv[] = {0, 0, 0, 0};
    int64_t xd[] = {2, 2};
    hone_tensor *x = tu_tensor_f32(2, xd, xv);
    /* axis 0 of zeros[2,2]: opset 11 coerces to one row of 4 (0.25 each), opset 13
     * normalises each column of 2 (0.5 each) */
    struct { int opset; float want; } cases[] = {{11, 0.25f}, {13, 0.5f}};
    for (int c = 0; c < 2; c++) {
        hone_graph *g = graph_opset(cases[c].opset);
        hone_node *n = make_node(g, "Softmax", 1, 1);
        hone_node_set_attr_int(g, n, "axis", 0);
        hone_tensor *y = run_unary(g, n, x, NULL);
        float want[] = {cases[c].want, cases[c].want, cases[c].want, cases[c].want};
        assert_close(y, want, 4, 1e-6);
        hone_tensor_free(y);
        hone_graph_free(g);
    }
    hone_tensor_free(x);
}

static void test_logsoftmax_hardmax(void **state)
{
    float xv[] = {1000, 1001, 3, 3};
    int64_t xd[] = {2, 2};
    hone_tensor *x = tu_tensor_f32(2, xd, xv);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "LogSoftmax", 1, 1);
    hone_tensor *y = run_unary(g, n, x, NULL);
    float l1 = -log1pf(expf(-1)), want[] = {-1 + l1, l1, -logf(2), -logf(2)};
    assert_close(y, want, 4, 1e-5);
    hone_tensor_free(y);
    n = make_node(g, "Hardmax", 1, 1);
    y = run_unary(g, n, x, NULL);
    float hm[] = {0, 1, 1, 0}; /* ties: the first one wins */
    assert_close(y, hm, 4, 0);
    hone_tensor_free(y);
    hone_graph_free(g);
    hone_tensor_free(x);
}

/* ---------- Einsum ---------- */

static void test_einsum_matmul_trace(void **state)
{
    float av[] = {1, 2, 3, 4}, bv[] = {5, 6, 7, 8};
    int64_t d[] = {2, 2};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Einsum", 2, 1);
    hone_node_set_attr_string(g, n, "equation", "ij,jk");
    hone_tensor *a = tu_tensor_f32(2, d, av), *b = tu_tensor_f32(2, d, bv), *y = NULL;
    const hone_tensor *in[2] = {a, b};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    float want[] = {19, 22, 43, 50};
    assert_close(y, want, 4, 0);
    hone_tensor_free(y);
    n = make_node(g, "Einsum", 1, 1);
    hone_node_set_attr_string(g, n, "equation", "ii->");
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    float tr = 5;
    assert_int_equal(y->rank, 0);
    assert_close(y, &tr, 1, 0);
    hone_tensor_free(y);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_graph_free(g);
}

/* ---------- element types other than float32 ---------- */

/* A copy of t converted to dt. */
static hone_tensor *convert(const hone_tensor *t, hone_dtype dt)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *c;
    assert_int_equal(hone_tensor_new(&ctx, dt, t->rank, t->dims, &c), HONE_OK);
    for (int64_t i = 0; i < t->numel; i++)
        hone_tensor_set_f64(c, i, hone_tensor_get_f64(t, i));
    return c;
}

/* Conv in float16 is staged through float32: results match to f16 precision. */
static void test_conv_f16_staged(void **state)
{
    int64_t xd[] = {1, 2, 5, 5}, wd[] = {3, 2, 3, 3};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Conv", 2, 1);
    hone_tensor *x = rand_tensor(4, xd), *w = rand_tensor(4, wd), *y32 = NULL, *y16 = NULL;
    hone_tensor *x16 = convert(x, HONE_DT_FLOAT16), *w16 = convert(w, HONE_DT_FLOAT16);
    const hone_tensor *in32[2] = {x, w}, *in16[2] = {x16, w16};
    assert_int_equal(hone_node_run(&ctx, n, in32, &y32, NULL), HONE_OK);
    assert_int_equal(hone_node_run(&ctx, n, in16, &y16, NULL), HONE_OK);
    assert_int_equal(y16->dtype, HONE_DT_FLOAT16);
    for (int64_t i = 0; i < y32->numel; i++)
        assert_float_equal(hone_tensor_get_f64(y16, i), ((float *)y32->data)[i], 2e-2);
    hone_tensor *tv[] = {x, w, y32, y16, x16, w16};
    for (int i = 0; i < 6; i++)
        hone_tensor_free(tv[i]);
    hone_graph_free(g);
}

/* MatMul in float64 goes through dgemm; float64 softmax is reported unsupported. */
static void test_f64_paths(void **state)
{
    float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {1, 1, 1};
    int64_t ad[] = {2, 3}, bd[] = {3};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "MatMul", 2, 1);
    hone_tensor *a32 = tu_tensor_f32(2, ad, av), *b32 = tu_tensor_f32(1, bd, bv);
    hone_tensor *a = convert(a32, HONE_DT_DOUBLE), *b = convert(b32, HONE_DT_DOUBLE), *y = NULL;
    const hone_tensor *in[2] = {a, b};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_OK);
    assert_int_equal(y->dtype, HONE_DT_DOUBLE);
    assert_int_equal(y->rank, 1);
    assert_float_equal(((double *)y->data)[0], 6, 0);
    assert_float_equal(((double *)y->data)[1], 15, 0);
    hone_tensor_free(y);
    n = make_node(g, "Softmax", 1, 1);
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.msg, "f64"));
    hone_tensor *tv[] = {a32, b32, a, b};
    for (int i = 0; i < 4; i++)
        hone_tensor_free(tv[i]);
    hone_graph_free(g);
}

/* ---------- static inference and errors ---------- */

/* x[N,3,28,28] -> Conv(8, 3x3, stride 2, SAME_UPPER) -> y: [N,8,14,14]. */
static void test_infer_symbolic_same(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Conv", 2, 1);
    int64_t s[] = {2, 2}, wd[] = {8, 3, 3, 3};
    set_ints(g, n, "strides", 2, s);
    hone_node_set_attr_string(g, n, "auto_pad", "SAME_UPPER");
    hone_value *x = n->in[0];
    x->dtype = HONE_DT_FLOAT;
    x->rank = 4;
    x->dims[0] = HONE_DIM_SYM(hone_graph_sym(g, "N"));
    x->dims[1] = 3;
    x->dims[2] = x->dims[3] = 28;
    hone_graph_add_input(g, x);
    hone_value_set_data(n->in[1], tu_tensor_f32(4, wd, NULL));
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    char buf[64];
    assert_string_equal(hone_value_type_str(g, n->out[0], buf, sizeof buf), "f32[N,8,14,14]");
    hone_graph_free(g);
}

/* Runs Conv with X[1,xc,5,5] and W[4,wc,k,k] under group; returns the status. */
static hone_status conv_error(int64_t xc, int64_t wc, int64_t k, int64_t group, hone_ctx *ctx)
{
    hone_ctx_init(ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Conv", 2, 1);
    hone_node_set_attr_int(g, n, "group", group);
    int64_t xd[] = {1, xc, 5, 5}, wd[] = {4, wc, k, k};
    hone_tensor *x = tu_tensor_f32(4, xd, NULL), *w = tu_tensor_f32(4, wd, NULL), *y = NULL;
    const hone_tensor *in[2] = {x, w};
    hone_status st = hone_node_run(ctx, n, in, &y, NULL);
    assert_null(y);
    hone_tensor_free(x);
    hone_tensor_free(w);
    hone_graph_free(g);
    return st;
}

static void test_conv_shape_errors(void **state)
{
    hone_ctx ctx;
    assert_int_equal(conv_error(3, 2, 3, 1, &ctx), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "nn_node"));
    assert_non_null(strstr(ctx.msg, "channels"));
    assert_int_equal(conv_error(4, 1, 7, 4, &ctx), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "larger than the padded input"));
    assert_int_equal(conv_error(6, 2, 3, 3, &ctx), HONE_ERR_SHAPE); /* 4 outputs, 3 groups */
    assert_non_null(strstr(ctx.msg, "divisible by group"));
    assert_int_equal(conv_error(3, 3, 3, 0, &ctx), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "nn_node"));
}

static void test_gemm_and_maxunpool_errors(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = graph_opset(13);
    hone_node *n = make_node(g, "Gemm", 2, 1);
    int64_t ad[] = {2, 3}, bd[] = {2, 3};
    hone_tensor *a = tu_tensor_f32(2, ad, NULL), *b = tu_tensor_f32(2, bd, NULL), *y = NULL;
    const hone_tensor *in[2] = {a, b};
    assert_int_equal(hone_node_run(&ctx, n, in, &y, NULL), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "inner dimensions"));
    /* MaxUnpool with an index past the output */
    n = make_node(g, "MaxUnpool", 2, 1);
    int64_t k[] = {2, 2}, xd[] = {1, 1, 1, 1};
    set_ints(g, n, "kernel_shape", 2, k);
    hone_tensor *x = tu_tensor_f32(4, xd, NULL), *ix;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 4, xd, &ix), HONE_OK);
    ((int64_t *)ix->data)[0] = 4;
    const hone_tensor *uin[2] = {x, ix};
    assert_int_equal(hone_node_run(&ctx, n, uin, &y, NULL), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "outside the output"));
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(x);
    hone_tensor_free(ix);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_2d_vs_naive),
        cmocka_unit_test(test_conv_1d_3d_vs_naive),
        cmocka_unit_test(test_conv_tiled_vs_naive),
        cmocka_unit_test(test_conv_transpose_vs_naive),
        cmocka_unit_test(test_maxpool_hand),
        cmocka_unit_test(test_maxpool_ceil_mode),
        cmocka_unit_test(test_avgpool_hand),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_gemm_transposes),
        cmocka_unit_test(test_matmul_broadcast),
        cmocka_unit_test(test_batchnorm_hand),
        cmocka_unit_test(test_batchnorm_training),
        cmocka_unit_test(test_layernorm_stats),
        cmocka_unit_test(test_softmax_opsets),
        cmocka_unit_test(test_logsoftmax_hardmax),
        cmocka_unit_test(test_einsum_matmul_trace),
        cmocka_unit_test(test_conv_f16_staged),
        cmocka_unit_test(test_f64_paths),
        cmocka_unit_test(test_infer_symbolic_same),
        cmocka_unit_test(test_conv_shape_errors),
        cmocka_unit_test(test_gemm_and_maxunpool_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
