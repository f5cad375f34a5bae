/*
 * Reduce and misc op families: reductions over a middle axis (float fast path,
 * double reference path, exact int64), ArgMax tie rules, TopK ties, CumSum,
 * quantisation rounding and saturation, per-axis dequantisation, the
 * softmax cross-entropy loss with ignore_index, Einsum, Det, and the errors
 * bad input must produce. Expected values are computed by hand in comments.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A single node of op_type at the given opset, with placeholder values. */
static hone_node *mk_node(hone_graph *g, const char *op, int opset, int nin, int nout)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, nin, nout);
    n->opset = opset;
    for (int i = 0; i < nin; i++)
        n->in[i] = hone_graph_new_value(g, NULL);
    for (int i = 0; i < nout; i++)
        n->out[i] = hone_graph_new_value(g, NULL);
    return n;
}

/* A tensor of dtype dt filled from vals (through double). */
static hone_tensor *mk(hone_dtype dt, int rank, const int64_t *dims, const double *vals)
{
    hone_ctx ctx;
    hone_tensor *t;
    hone_ctx_init(&ctx);
    if (hone_tensor_new(&ctx, dt, rank, dims, &t))
        return NULL;
    for (int64_t i = 0; vals && i < t->numel; i++)
        hone_tensor_set_f64(t, i, vals[i]);
    return t;
}

/* x[2, 3, 4] = 0, 1, ..., 23 as dtype dt. */
static hone_tensor *iota234(hone_dtype dt)
{
    int64_t d[] = {2, 3, 4};
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    return mk(dt, 3, d, v);
}

static void assert_values(const hone_tensor *t, const double *want, int64_t n, double tol)
{
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++)
        assert_true(fabs(hone_tensor_get_f64(t, i) - want[i]) <= tol);
}

static void free_all(hone_tensor **ts, int n)
{
    for (int i = 0; i < n; i++)
        hone_tensor_free(ts[i]);
}

/* ReduceMean over axis 1 of iota[2,3,4], keepdims=1: out[a,0,c] = 12a + c + 4. */
static void test_reduce_mean_middle_keepdims(void **state)
{
    hone_dtype types[] = {HONE_DT_FLOAT, HONE_DT_DOUBLE}; /* fast path and reference path */
    for (int k = 0; k < 2; k++) {
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        hone_graph *g = hone_graph_new();
        hone_node *n = mk_node(g, "ReduceMean", 13, 1, 1);
        int64_t ax[] = {1};
        hone_node_set_attr_ints(g, n, "axes", ax, 1);
        hone_tensor *x = iota234(types[k]), *y[1];
        const hone_tensor *in[] = {x};
        assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
        assert_int_equal(y[0]->rank, 3);
        assert_int_equal(y[0]->dims[1], 1);
        assert_int_equal(y[0]->dtype, types[k]);
        double want[] = {4, 5, 6, 7, 16, 17, 18, 19};
        assert_values(y[0], want, 8, 1e-6);
        hone_tensor_free(x);
        free_all(y, 1);
        hone_graph_free(g);
    }
}

/* ReduceSum (opset 13: axes input) over axis -2, keepdims=0: out[a,c] = 36a + 3c + 12. */
static void test_reduce_sum_axes_input_no_keepdims(void **state)
{
    hone_dtype types[] = {HONE_DT_FLOAT, HONE_DT_INT32};
    for (int k = 0; k < 2; k++) {
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        hone_graph *g = hone_graph_new();
        hone_node *n = mk_node(g, "ReduceSum", 13, 2, 1);
        hone_node_set_attr_int(g, n, "keepdims", 0);
        int64_t d1[] = {1};
        double axv[] = {-2};
        hone_tensor *x = iota234(types[k]), *ax = mk(HONE_DT_INT64, 1, d1, axv), *y[1];
        const hone_tensor *in[] = {x, ax};
        assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
        assert_int_equal(y[0]->rank, 2);
        assert_int_equal(y[0]->dims[0], 2);
        assert_int_equal(y[0]->dims[1], 4);
        double want[] = {12, 15, 18, 21, 48, 51, 54, 57};
        assert_values(y[0], want, 8, 1e-6);
        hone_tensor *xs[] = {x, ax};
        free_all(xs, 2);
        free_all(y, 1);
        hone_graph_free(g);
    }
}

/* Empty axes with noop_with_empty_axes is the identity; int64 sums stay exact past 2^53. */
static void test_reduce_sum_noop_and_exact_int64(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "ReduceSum", 13, 1, 1);
    int64_t d[] = {2};
    hone_tensor *x = mk(HONE_DT_INT64, 1, d, NULL), *y[1];
    ((int64_t *)x->data)[0] = (1LL << 53) + 1;
    ((int64_t *)x->data)[1] = 2;
    const hone_tensor *in[] = {x};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    assert_int_equal(y[0]->rank, 1);
    assert_int_equal(((int64_t *)y[0]->data)[0], (1LL << 53) + 3);
    free_all(y, 1);
    hone_node_set_attr_int(g, n, "noop_with_empty_axes", 1);
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    assert_int_equal(y[0]->numel, 2);
    assert_int_equal(((int64_t *)y[0]->data)[0], (1LL << 53) + 1);
    free_all(y, 1);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ReduceLogSumExp stays finite for large inputs: log(e^1000 + e^1000) = 1000 + ln 2. */
static void test_reduce_log_sum_exp_stable(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "ReduceLogSumExp", 13, 1, 1);
    int64_t d[] = {2};
    double v[] = {1000, 1000};
    hone_tensor *x = mk(HONE_DT_DOUBLE, 1, d, v), *y[1];
    const hone_tensor *in[] = {x};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    double want[] = {1000 + log(2.0)};
    assert_values(y[0], want, 1, 1e-9);
    free_all(y, 1);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ArgMax of [[1,3,3],[2,2,1]] over axis 1: first maxima [1,0], last maxima [2,1]. */
static void test_argmax_select_last_index(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "ArgMax", 13, 1, 1);
    hone_node_set_attr_int(g, n, "axis", 1);
    hone_node_set_attr_int(g, n, "keepdims", 0);
    int64_t d[] = {2, 3};
    double v[] = {1, 3, 3, 2, 2, 1};
    hone_tensor *x = mk(HONE_DT_FLOAT, 2, d, v), *y[1];
    const hone_tensor *in[] = {x};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    assert_int_equal(y[0]->dtype, HONE_DT_INT64);
    double first[] = {1, 0};
    assert_values(y[0], first, 2, 0);
    free_all(y, 1);
    hone_node_set_attr_int(g, n, "select_last_index", 1);
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    double last[] = {2, 1};
    assert_values(y[0], last, 2, 0);
    free_all(y, 1);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* Runs TopK(k) on x; returns values and indices in y. */
static hone_status run_topk(hone_ctx *ctx, hone_graph *g, const hone_tensor *x, int64_t k,
                            int largest, hone_tensor **y)
{
    hone_node *n = mk_node(g, "TopK", 11, 2, 2);
    hone_node_set_attr_int(g, n, "largest", largest);
    int64_t d1[] = {1};
    double kv[] = {(double)k};
    hone_tensor *kt = mk(HONE_DT_INT64, 1, d1, kv);
    const hone_tensor *in[] = {x, kt};
    hone_status st = hone_node_run(ctx, n, in, y, NULL);
    hone_tensor_free(kt);
    return st;
}

/* TopK of [3,1,3,2,3]: largest 3 = 3,3,3 at 0,2,4 (lower index first); smallest 2 = 1,2 at 1,3. */
static void test_topk_ties(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    int64_t d[] = {5};
    double v[] = {3, 1, 3, 2, 3};
    hone_tensor *x = mk(HONE_DT_FLOAT, 1, d, v), *y[2];
    assert_int_equal(run_topk(&ctx, g, x, 3, 1, y), HONE_OK);
    double vals[] = {3, 3, 3}, idx[] = {0, 2, 4};
    assert_values(y[0], vals, 3, 0);
    assert_values(y[1], idx, 3, 0);
    free_all(y, 2);
    assert_int_equal(run_topk(&ctx, g, x, 2, 0, y), HONE_OK);
    double svals[] = {1, 2}, sidx[] = {1, 3};
    assert_values(y[0], svals, 2, 0);
    assert_values(y[1], sidx, 2, 0);
    free_all(y, 2);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* TopK with k = 6 on an axis of 5 is a shape error, not a read past the end. */
static void test_topk_k_too_large(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    int64_t d[] = {5};
    hone_tensor *x = mk(HONE_DT_FLOAT, 1, d, NULL), *y[2];
    assert_int_equal(run_topk(&ctx, g, x, 6, 1, y), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "larger than axis"));
    assert_null(y[0]);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ReduceSum with axes [3] on a rank-3 input names the bad axis. */
static void test_reduce_axis_out_of_range(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "ReduceMax", 13, 1, 1);
    int64_t ax[] = {3};
    hone_node_set_attr_ints(g, n, "axes", ax, 1);
    hone_tensor *x = iota234(HONE_DT_FLOAT), *y[1];
    const hone_tensor *in[] = {x};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "axis 3 is out of range for rank 3"));
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* CumSum of [1,2,3,4], exclusive and reversed: [9,7,4,0]. */
static void test_cumsum_exclusive_reverse(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "CumSum", 14, 2, 1);
    hone_node_set_attr_int(g, n, "exclusive", 1);
    hone_node_set_attr_int(g, n, "reverse", 1);
    int64_t d[] = {4};
    double v[] = {1, 2, 3, 4}, zero[] = {0};
    hone_tensor *x = mk(HONE_DT_INT32, 1, d, v), *ax = mk(HONE_DT_INT64, 0, NULL, zero), *y[1];
    const hone_tensor *in[] = {x, ax};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    double want[] = {9, 7, 4, 0};
    assert_values(y[0], want, 4, 0);
    hone_tensor *xs[] = {x, ax};
    free_all(xs, 2);
    free_all(y, 1);
    hone_graph_free(g);
}

/* Runs QuantizeLinear with a scalar scale and zero point. */
static hone_tensor *quantize(const double *x, int64_t n, double scale, hone_dtype zt, double zp)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *nd = mk_node(g, "QuantizeLinear", 13, 3, 1);
    double sv[] = {scale}, zv[] = {zp};
    hone_tensor *xt = mk(HONE_DT_FLOAT, 1, &n, x), *s = mk(HONE_DT_FLOAT, 0, NULL, sv);
    hone_tensor *z = mk(zt, 0, NULL, zv), *y[1];
    const hone_tensor *in[] = {xt, s, z};
    hone_status st = hone_node_run(&ctx, nd, in, y, NULL);
    hone_tensor *xs[] = {xt, s, z};
    free_all(xs, 3);
    hone_graph_free(g);
    return st ? NULL : y[0];
}

/* x / 2 = 0.5, 1.5, 2.5, -0.5 round half to even (0, 2, 2, -0); 255, 300 and -150 saturate. */
static void test_quantize_round_half_even_saturate(void **state)
{
    double x[] = {1, 3, 5, -1, 510, 600, -300};
    hone_tensor *y = quantize(x, 7, 2, HONE_DT_UINT8, 128);
    assert_non_null(y);
    assert_int_equal(y->dtype, HONE_DT_UINT8);
    double want[] = {128, 130, 130, 128, 255, 255, 0};
    assert_values(y, want, 7, 0);
    hone_tensor_free(y);
    /* int8, zp 0: 127, 128 -> 127, -128.5 -> -128 (even), -130 -> -128 */
    double xi[] = {254, 256, -257, -260};
    y = quantize(xi, 4, 2, HONE_DT_INT8, 0);
    assert_non_null(y);
    double wi[] = {127, 127, -128, -128};
    assert_values(y, wi, 4, 0);
    hone_tensor_free(y);
}

/* DequantizeLinear along axis 1 of u8[2,3], scale [1,2,4], zero point [0,1,2]. */
static void test_dequantize_per_axis(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "DequantizeLinear", 13, 3, 1);
    hone_node_set_attr_int(g, n, "axis", 1);
    int64_t d[] = {2, 3}, d3[] = {3};
    double xv[] = {0, 1, 2, 3, 4, 5}, sv[] = {1, 2, 4}, zv[] = {0, 1, 2};
    hone_tensor *x = mk(HONE_DT_UINT8, 2, d, xv), *s = mk(HONE_DT_FLOAT, 1, d3, sv);
    hone_tensor *z = mk(HONE_DT_UINT8, 1, d3, zv), *y[1];
    const hone_tensor *in[] = {x, s, z};
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_OK);
    assert_int_equal(y[0]->dtype, HONE_DT_FLOAT);
    /* (x - zp[c]) * scale[c]: row 0 = 0, 0, 0; row 1 = 3, 6, 12 */
    double want[] = {0, 0, 0, 3, 6, 12};
    assert_values(y[0], want, 6, 0);
    free_all(y, 1);
    /* a scale of 3 entries along axis 0 (size 2) is rejected */
    hone_node_set_attr_int(g, n, "axis", 0);
    assert_int_equal(hone_node_run(&ctx, n, in, y, NULL), HONE_ERR_SHAPE);
    hone_tensor *xs[] = {x, s, z};
    free_all(xs, 3);
    hone_graph_free(g);
}

/* Runs SoftmaxCrossEntropyLoss on scores [2,3] with the given labels and optional weights. */
static hone_status run_sce(hone_ctx *ctx, const char *red, const double *labels,
                           const double *weights, hone_tensor **y)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "SoftmaxCrossEntropyLoss", 13, weights ? 3 : 2, 2);
    hone_node_set_attr_string(g, n, "reduction", red);
    hone_node_set_attr_int(g, n, "ignore_index", 2);
    int64_t d[] = {2, 3}, d2[] = {2}, d3[] = {3};
    /* row 0 = [0, 0, 0]: log p = -ln 3 each; row 1 = [0, ln 2, 0]: log p = -ln 4, -ln 2, -ln 4 */
    double sv[] = {0, 0, 0, 0, log(2.0), 0};
    hone_tensor *s = mk(HONE_DT_FLOAT, 2, d, sv), *l = mk(HONE_DT_INT64, 1, d2, labels);
    hone_tensor *w = weights ? mk(HONE_DT_FLOAT, 1, d3, weights) : NULL;
    const hone_tensor *in[] = {s, l, w};
    hone_status st = hone_node_run(ctx, n, in, y, NULL);
    hone_tensor *xs[] = {s, l, w};
    free_all(xs, 3);
    hone_graph_free(g);
    return st;
}

static void test_sce_ignore_index(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *y[2];
    double ign[] = {2, 1}, both[] = {0, 1}, w[] = {1, 3, 1};
    /* labels [2 (ignored), 1]: mean = ln 2 / 1 */
    assert_int_equal(run_sce(&ctx, "mean", ign, NULL, y), HONE_OK);
    double m1[] = {log(2.0)};
    assert_values(y[0], m1, 1, 1e-6);
    double lp[] = {-log(3.0), -log(3.0), -log(3.0), -log(4.0), -log(2.0), -log(4.0)};
    assert_values(y[1], lp, 6, 1e-6);
    free_all(y, 2);
    /* reduction none keeps the per-sample losses, 0 where ignored */
    assert_int_equal(run_sce(&ctx, "none", ign, NULL, y), HONE_OK);
    double none[] = {0, log(2.0)};
    assert_values(y[0], none, 2, 1e-6);
    free_all(y, 2);
    /* weights [1,3,1], labels [0,1]: (1 ln 3 + 3 ln 2) / (1 + 3) */
    assert_int_equal(run_sce(&ctx, "mean", both, w, y), HONE_OK);
    double m2[] = {(log(3.0) + 3 * log(2.0)) / 4};
    assert_values(y[0], m2, 1, 1e-6);
    free_all(y, 2);
    /* a label outside [0, C) that is not ignore_index is an error */
    double bad[] = {0, 5};
    assert_int_equal(run_sce(&ctx, "sum", bad, NULL, y), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "outside [0, 3)"));
}

/* Runs a two-operand Einsum. */
static hone_status run_einsum(hone_ctx *ctx, const char *eq, const hone_tensor *a,
                              const hone_tensor *b, hone_tensor **y)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "Einsum", 12, b ? 2 : 1, 1);
    hone_node_set_attr_string(g, n, "equation", eq);
    const hone_tensor *in[] = {a, b};
    hone_status st = hone_node_run(ctx, n, in, y, NULL);
    hone_graph_free(g);
    return st;
}

/* Einsum: matmul, trace, implicit transpose-free output, and a malformed equation. */
static void test_einsum(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d22[] = {2, 2};
    double av[] = {1, 2, 3, 4}, bv[] = {5, 6, 7, 8};
    hone_tensor *a = mk(HONE_DT_FLOAT, 2, d22, av), *b = mk(HONE_DT_FLOAT, 2, d22, bv), *y[1];
    assert_int_equal(run_einsum(&ctx, "ij,jk->ik", a, b, y), HONE_OK);
    double mm[] = {19, 22, 43, 50};
    assert_values(y[0], mm, 4, 1e-6);
    free_all(y, 1);
    assert_int_equal(run_einsum(&ctx, "ii", a, NULL, y), HONE_OK); /* trace 1 + 4 */
    assert_int_equal(y[0]->rank, 0);
    double tr[] = {5};
    assert_values(y[0], tr, 1, 1e-6);
    free_all(y, 1);
    assert_int_equal(run_einsum(&ctx, "ji", a, NULL, y), HONE_OK); /* implicit: ij order */
    double tp[] = {1, 3, 2, 4};
    assert_values(y[0], tp, 4, 1e-6);
    free_all(y, 1);
    assert_int_equal(run_einsum(&ctx, "ij,j1->i", a, b, y), HONE_ERR_SHAPE);
    hone_tensor *xs[] = {a, b};
    free_all(xs, 2);
}

/* Det of [[2,0,1],[1,3,2],[1,1,1]] = 2(3-2) - 0 + 1(1-3) = 0; of [[0,1],[1,0]] = -1. */
static void test_det(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_node *n = mk_node(g, "Det", 11, 1, 1);
    int64_t d3[] = {3, 3}, d2[] = {2, 2};
    double v3[] = {2, 0, 1, 1, 3, 2, 1, 1, 1}, v2[] = {0, 1, 1, 0};
    hone_tensor *x3 = mk(HONE_DT_FLOAT, 2, d3, v3), *x2 = mk(HONE_DT_FLOAT, 2, d2, v2), *y[1];
    const hone_tensor *in3[] = {x3}, *in2[] = {x2};
    assert_int_equal(hone_node_run(&ctx, n, in3, y, NULL), HONE_OK);
    double w3[] = {0};
    assert_values(y[0], w3, 1, 1e-6);
    free_all(y, 1);
    assert_int_equal(hone_node_run(&ctx, n, in2, y, NULL), HONE_OK);
    double w2[] = {-1};
    assert_values(y[0], w2, 1, 1e-6);
    free_all(y, 1);
    hone_tensor *xs[] = {x3, x2};
    free_all(xs, 2);
    hone_graph_free(g);
}

/* Static inference: axes unknown keeps only the rank under keepdims. */
static void test_infer_unknown_axes(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = tu_graph_new();
    hone_node *n = mk_node(g, "ReduceSum", 13, 2, 1);
    hone_value *x = n->in[0], *ax = n->in[1];
    x->dtype = HONE_DT_FLOAT;
    x->rank = 3;
    x->dims[0] = 2;
    x->dims[1] = 3;
    x->dims[2] = 4;
    ax->dtype = HONE_DT_INT64;
    ax->rank = 1;
    ax->dims[0] = 1;
    hone_graph_add_input(g, x);
    hone_graph_add_input(g, ax);
    hone_graph_add_output(g, n->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    assert_int_equal(n->out[0]->rank, 3);
    assert_int_equal(n->out[0]->dims[0], HONE_DIM_UNKNOWN);
    assert_int_equal(n->out[0]->dtype, HONE_DT_FLOAT);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_mean_middle_keepdims),
        cmocka_unit_test(test_reduce_sum_axes_input_no_keepdims),
        cmocka_unit_test(test_reduce_sum_noop_and_exact_int64),
        cmocka_unit_test(test_reduce_log_sum_exp_stable),
        cmocka_unit_test(test_argmax_select_last_index),
        cmocka_unit_test(test_topk_ties),
        cmocka_unit_test(test_topk_k_too_large),
        cmocka_unit_test(test_reduce_axis_out_of_range),
        cmocka_unit_test(test_cumsum_exclusive_reverse),
        cmocka_unit_test(test_quantize_round_half_even_saturate),
        cmocka_unit_test(test_dequantize_per_axis),
        cmocka_unit_test(test_sce_ignore_index),
        cmocka_unit_test(test_einsum),
        cmocka_unit_test(test_det),
        cmocka_unit_test(test_infer_unknown_axes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
