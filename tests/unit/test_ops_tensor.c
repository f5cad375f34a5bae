/*
 * Tensor-family ops checked against hand-computed values: Reshape's 0 and -1,
 * Slice with negative steps and clamping, Gather with negative indices, Pad
 * in reflect/edge/constant modes (with cropping), Resize nearest and linear,
 * DepthToSpace/SpaceToDepth, Split, Unique, scatters; graph-level inference
 * of PyTorch's Shape->Gather->Unsqueeze->Concat->Reshape chain and of
 * symbolic dims; and the error paths: bad indices name the node, element
 * counts that do not fit, huge requested sizes fail before any allocation.
 * Nodes run through hone_node_run, as in the interpreter.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A tensor of dtype dt with the given values (through double; NULL: zeros). */
static hone_tensor *tn(hone_dtype dt, int rank, const int64_t *dims, const double *vals)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t = NULL;
    assert_int_equal(hone_tensor_new(&ctx, dt, rank, dims, &t), HONE_OK);
    for (int64_t i = 0; vals && i < t->numel; i++)
        hone_tensor_set_f64(t, i, vals[i]);
    return t;
}

/* A 1-D int64 tensor of n values. */
static hone_tensor *ints(int n, const double *vals)
{
    int64_t d = n;
    return tn(HONE_DT_INT64, 1, &d, vals);
}

/* A float tensor holding 0, 1, 2, ... */
static hone_tensor *iota(int rank, const int64_t *dims)
{
    hone_tensor *t = tn(HONE_DT_FLOAT, rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        hone_tensor_set_f64(t, i, (double)i);
    return t;
}

/* Node op with n_in inputs and n_out outputs at opset, in graph g. */
static hone_node *node(hone_graph *g, const char *op, int n_in, int n_out, int opset)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, n_in, n_out);
    for (int i = 0; i < n_in; i++)
        n->in[i] = hone_graph_new_value(g, NULL);
    for (int i = 0; i < n_out; i++)
        n->out[i] = hone_graph_new_value(g, NULL);
    n->opset = opset;
    return n;
}

/* Runs n on ins (frees them); returns the status, outputs in out. */
static hone_status run(hone_ctx *ctx, const hone_node *n, hone_tensor **ins, hone_tensor **out)
{
    hone_ctx_init(ctx);
    hone_status st = hone_node_run(ctx, n, (const hone_tensor **)ins, out, NULL);
    for (int i = 0; i < n->n_in; i++)
        hone_tensor_free(ins[i]);
    return st;
}

/* Asserts t's shape and values (within 1e-5), then frees it. */
static void expect(hone_tensor *t, int rank, const int64_t *dims, const double *want)
{
    assert_non_null(t);
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->dims[i], dims[i]);
    for (int64_t i = 0; want && i < t->numel; i++)
        assert_float_equal(hone_tensor_get_f64(t, i), want[i], 1e-5);
    hone_tensor_free(t);
}

/* Runs n expecting success and one output of the given shape and values. */
static void run_expect(const hone_node *n, hone_tensor **ins, int rank, const int64_t *dims,
                       const double *want)
{
    hone_ctx ctx;
    hone_tensor *out[4] = {NULL};
    assert_int_equal(run(&ctx, n, ins, out), HONE_OK);
    expect(out[0], rank, dims, want);
}

/* Runs n expecting status st with the node's name in the message. */
static void run_fails(const hone_node *n, hone_tensor **ins, hone_status st)
{
    hone_ctx ctx;
    hone_tensor *out[4] = {NULL};
    assert_int_equal(run(&ctx, n, ins, out), st);
    assert_null(out[0]);
    assert_non_null(strstr(ctx.msg, n->name));
}

static void test_reshape_zero_and_neg(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = node(g, "Reshape", 2, 1, 13);
    int64_t xd[] = {2, 3, 4}, od[] = {2, 12}, od2[] = {4, 3, 2};
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    run_expect(n, (hone_tensor *[]){iota(3, xd), ints(2, (double[]){0, -1})}, 2, od, v);
    /* -1 with a copied 0: 24 / (3 * 2) = 4 */
    run_expect(n, (hone_tensor *[]){iota(3, xd), ints(3, (double[]){-1, 0, 2})}, 3, od2, v);
    run_fails(n, (hone_tensor *[]){iota(3, xd), ints(2, (double[]){5, 5})}, HONE_ERR_SHAPE);
    run_fails(n, (hone_tensor *[]){iota(3, xd), ints(2, (double[]){-1, -1})}, HONE_ERR_SHAPE);
    run_fails(n, (hone_tensor *[]){iota(3, xd), ints(2, (double[]){-1, 5})}, HONE_ERR_SHAPE);
    /* allowzero: 0 is a real zero, so 24 elements cannot become [0, 24] */
    hone_node *z = node(g, "Reshape", 2, 1, 14);
    hone_node_set_attr_int(g, z, "allowzero", 1);
    run_fails(z, (hone_tensor *[]){iota(3, xd), ints(2, (double[]){0, 24})}, HONE_ERR_SHAPE);
    hone_graph_free(g);
}

static void test_slice_negative_steps(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = node(g, "Slice", 5, 1, 13);
    int64_t d10[] = {10}, d3[] = {3}, m[] = {3, 4}, md[] = {3, 2};
    run_expect(n,
               (hone_tensor *[]){iota(1, d10), ints(1, (double[]){8}), ints(1, (double[]){1}),
                                 ints(1, (double[]){0}), ints(1, (double[]){-3})},
               1, d3, (double[]){8, 5, 2});
    /* rows reversed; columns from 10 (clamped to 3) down past the front, step -2 */
    run_expect(n,
               (hone_tensor *[]){iota(2, m), ints(2, (double[]){-1, 10}),
                                 ints(2, (double[]){-100, -100}), ints(2, (double[]){0, 1}),
                                 ints(2, (double[]){-1, -2})},
               2, md, (double[]){11, 9, 7, 5, 3, 1});
    run_fails(n,
              (hone_tensor *[]){iota(1, d10), ints(1, (double[]){0}), ints(1, (double[]){5}),
                                ints(1, (double[]){0}), ints(1, (double[]){0})},
              HONE_ERR_SHAPE);
    /* opset 1: attributes, ends past the end clamp */
    hone_node *a = node(g, "Slice", 1, 1, 1);
    hone_node_set_attr_ints(g, a, "starts", (int64_t[]){1}, 1);
    hone_node_set_attr_ints(g, a, "ends", (int64_t[]){1000}, 1);
    int64_t d9[] = {9};
    run_expect(a, (hone_tensor *[]){iota(1, d10)}, 1, d9, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    hone_graph_free(g);
}

static void test_gather_negative_and_bad(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = node(g, "Gather", 2, 1, 13);
    int64_t xd[] = {3, 2}, od[] = {2, 2}, id11[] = {1, 1}, od1[] = {3, 1, 1};
    double x[] = {1, 2, 3, 4, 5, 6};
    run_expect(n, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(2, (double[]){-1, 0})}, 2, od,
               (double[]){5, 6, 1, 2});
    hone_node *c = node(g, "Gather", 2, 1, 13);
    hone_node_set_attr_int(g, c, "axis", 1);
    run_expect(
        c,
        (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), tn(HONE_DT_INT64, 2, id11, (double[]){-1})},
        3, od1, (double[]){2, 4, 6});
    run_fails(n, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(2, (double[]){0, 3})},
              HONE_ERR_INVALID);
    run_fails(n, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(1, (double[]){-4})},
              HONE_ERR_INVALID);
    hone_graph_free(g);
}

static void test_pad_modes(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t xd[] = {2, 3}, od[] = {2, 6}, cd[] = {3, 2}, ad[] = {3, 3};
    double x[] = {1, 2, 3, 4, 5, 6};
    hone_node *r = node(g, "Pad", 2, 1, 13);
    hone_node_set_attr_string(g, r, "mode", "reflect");
    run_expect(r, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(4, (double[]){0, 2, 0, 1})},
               2, od, (double[]){3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5});
    hone_node *e = node(g, "Pad", 2, 1, 13);
    hone_node_set_attr_string(g, e, "mode", "edge");
    run_expect(e, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(4, (double[]){0, 2, 0, 1})},
               2, od, (double[]){1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6});
    /* constant 9: one row added on top, the first column cropped */
    hone_node *k = node(g, "Pad", 3, 1, 13);
    run_expect(k,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(4, (double[]){1, -1, 0, 0}),
                                 tn(HONE_DT_FLOAT, 0, NULL, (double[]){9})},
               2, cd, (double[]){9, 9, 2, 3, 5, 6});
    /* opset 2: pads attribute and value */
    hone_node *o = node(g, "Pad", 1, 1, 2);
    hone_node_set_attr_ints(g, o, "pads", (int64_t[]){0, 0, 1, 0}, 4);
    hone_node_set_attr_float(g, o, "value", -1);
    run_expect(o, (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x)}, 2, ad,
               (double[]){1, 2, 3, 4, 5, 6, -1, -1, -1});
    run_fails(k,
              (hone_tensor *[]){tn(HONE_DT_FLOAT, 2, xd, x), ints(4, (double[]){0, -4, 0, 0}),
                                tn(HONE_DT_FLOAT, 0, NULL, (double[]){0})},
              HONE_ERR_SHAPE);
    hone_graph_free(g);
}

/* Resize node at opset 13 with sizes (scales omitted) or scales. */
static hone_node *resize_node(hone_graph *g, const char *mode, const char *coord, bool sizes)
{
    hone_node *n = node(g, "Resize", sizes ? 4 : 3, 1, 13);
    n->in[1] = NULL;
    if (sizes)
        n->in[2] = NULL;
    hone_node_set_attr_string(g, n, "mode", mode);
    hone_node_set_attr_string(g, n, "coordinate_transformation_mode", coord);
    return n;
}

static void test_resize_nearest(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t d4[] = {4}, d3[] = {3};
    double x[] = {10, 20, 30, 40};
    /* half_pixel, scale 3/4: coordinates 1/6, 3/2, 17/6 */
    hone_node *f = resize_node(g, "nearest", "half_pixel", true);
    run_expect(f,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, d4, x), NULL, NULL, ints(1, (double[]){3})},
               1, d3, (double[]){10, 20, 40});
    hone_node *c = resize_node(g, "nearest", "half_pixel", true);
    hone_node_set_attr_string(g, c, "nearest_mode", "round_prefer_ceil");
    run_expect(c,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, d4, x), NULL, NULL, ints(1, (double[]){3})},
               1, d3, (double[]){10, 30, 40});
    /* asymmetric floor upsampling by 2 of an int tensor: plain repetition */
    hone_node *u = resize_node(g, "nearest", "asymmetric", false);
    hone_node_set_attr_string(g, u, "nearest_mode", "floor");
    int64_t xd[] = {1, 2}, od[] = {2, 4};
    run_expect(u,
               (hone_tensor *[]){tn(HONE_DT_INT32, 2, xd, (double[]){7, 8}), NULL,
                                 tn(HONE_DT_FLOAT, 1, (int64_t[]){2}, (double[]){2, 2})},
               2, od, (double[]){7, 7, 8, 8, 7, 7, 8, 8});
    hone_graph_free(g);
}

static void test_resize_linear(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t xd[] = {1, 1, 2, 2}, od[] = {1, 1, 4, 4}, d2[] = {2}, d4[] = {4};
    /* half_pixel: output coordinates -1/4, 1/4, 3/4, 5/4 on both axes */
    hone_node *n = resize_node(g, "linear", "half_pixel", false);
    run_expect(
        n,
        (hone_tensor *[]){tn(HONE_DT_FLOAT, 4, xd, (double[]){1, 2, 3, 4}), NULL,
                          tn(HONE_DT_FLOAT, 1, d4, (double[]){1, 1, 2, 2})},
        4, od,
        (double[]){1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
    /* align_corners maps the ends onto each other: 0, 1/3, 2/3, 1 */
    hone_node *a = resize_node(g, "linear", "align_corners", true);
    run_expect(a,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, d2, (double[]){0, 3}), NULL, NULL,
                                 ints(1, (double[]){4})},
               1, d4, (double[]){0, 1, 2, 3});
    hone_graph_free(g);
}

static void test_depth_space_roundtrip(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t xd[] = {1, 8, 1, 1}, od[] = {1, 2, 2, 2};
    hone_node *dcr = node(g, "DepthToSpace", 1, 1, 13);
    hone_node_set_attr_int(g, dcr, "blocksize", 2);
    run_expect(dcr, (hone_tensor *[]){iota(4, xd)}, 4, od, (double[]){0, 2, 4, 6, 1, 3, 5, 7});
    hone_node *crd = node(g, "DepthToSpace", 1, 1, 13);
    hone_node_set_attr_int(g, crd, "blocksize", 2);
    hone_node_set_attr_string(g, crd, "mode", "CRD");
    run_expect(crd, (hone_tensor *[]){iota(4, xd)}, 4, od, (double[]){0, 1, 2, 3, 4, 5, 6, 7});
    /* SpaceToDepth undoes DCR */
    hone_node *s2d = node(g, "SpaceToDepth", 1, 1, 13);
    hone_node_set_attr_int(g, s2d, "blocksize", 2);
    run_expect(s2d, (hone_tensor *[]){tn(HONE_DT_FLOAT, 4, od, (double[]){0, 2, 4, 6, 1, 3, 5, 7})},
               4, xd, (double[]){0, 1, 2, 3, 4, 5, 6, 7});
    hone_graph_free(g);
}

static void test_split_parts(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_ctx ctx;
    hone_tensor *out[3] = {NULL};
    int64_t xd[] = {2, 3}, p1[] = {2, 1}, p2[] = {2, 2};
    hone_node *n = node(g, "Split", 2, 2, 13);
    hone_node_set_attr_int(g, n, "axis", 1);
    assert_int_equal(run(&ctx, n, (hone_tensor *[]){iota(2, xd), ints(2, (double[]){1, 2})}, out),
                     HONE_OK);
    expect(out[0], 2, p1, (double[]){0, 3});
    expect(out[1], 2, p2, (double[]){1, 2, 4, 5});
    /* three columns do not split into two equal parts before opset 18 */
    hone_node *e = node(g, "Split", 1, 2, 13);
    hone_node_set_attr_int(g, e, "axis", 1);
    run_fails(e, (hone_tensor *[]){iota(2, xd)}, HONE_ERR_SHAPE);
    hone_graph_free(g);
}

static void test_unique_orders(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_ctx ctx;
    hone_tensor *out[4] = {NULL};
    int64_t xd[] = {6}, u[] = {4};
    double x[] = {2, 1, 1, 3, 4, 3};
    hone_node *n = node(g, "Unique", 1, 4, 11);
    hone_node_set_attr_int(g, n, "sorted", 0);
    assert_int_equal(run(&ctx, n, (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, xd, x)}, out), HONE_OK);
    expect(out[0], 1, u, (double[]){2, 1, 3, 4});
    expect(out[1], 1, u, (double[]){0, 1, 3, 4});
    expect(out[2], 1, xd, (double[]){0, 1, 1, 2, 3, 2});
    expect(out[3], 1, u, (double[]){1, 2, 2, 1});
    hone_node *s = node(g, "Unique", 1, 4, 11);
    assert_int_equal(run(&ctx, s, (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, xd, x)}, out), HONE_OK);
    expect(out[0], 1, u, (double[]){1, 2, 3, 4});
    expect(out[1], 1, u, (double[]){1, 0, 3, 4});
    expect(out[2], 1, xd, (double[]){1, 0, 0, 2, 3, 2});
    expect(out[3], 1, u, (double[]){2, 1, 2, 1});
    hone_graph_free(g);
}

static void test_scatter(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t xd[] = {4}, id[] = {2, 1}, ud[] = {2};
    hone_node *n = node(g, "ScatterND", 3, 1, 16);
    hone_node_set_attr_string(g, n, "reduction", "add");
    /* duplicate index 1 accumulates both updates */
    run_expect(n,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, xd, (double[]){1, 1, 1, 1}),
                                 tn(HONE_DT_INT64, 2, id, (double[]){1, 1}),
                                 tn(HONE_DT_FLOAT, 1, ud, (double[]){5, 7})},
               1, xd, (double[]){1, 13, 1, 1});
    hone_node *e = node(g, "ScatterElements", 3, 1, 13);
    run_expect(e,
               (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, xd, NULL), ints(2, (double[]){-1, 0}),
                                 tn(HONE_DT_FLOAT, 1, ud, (double[]){5, 7})},
               1, xd, (double[]){7, 0, 0, 5});
    /* updates of another type would be copied as raw bytes: rejected */
    run_fails(n,
              (hone_tensor *[]){tn(HONE_DT_STRING, 1, xd, NULL),
                                tn(HONE_DT_INT64, 2, id, (double[]){1, 1}),
                                tn(HONE_DT_FLOAT, 1, ud, (double[]){5, 7})},
              HONE_ERR_SHAPE);
    run_fails(e,
              (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, xd, NULL), ints(2, (double[]){0, 4}),
                                tn(HONE_DT_FLOAT, 1, ud, (double[]){5, 7})},
              HONE_ERR_INVALID);
    hone_graph_free(g);
}

static void test_strings_are_copied(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_ctx ctx;
    hone_tensor *out[1] = {NULL};
    int64_t xd[] = {2, 2};
    hone_tensor *x = tn(HONE_DT_STRING, 2, xd, NULL);
    const char *w[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        ((char **)x->data)[i] = strdup(w[i]);
    hone_node *n = node(g, "Transpose", 1, 1, 13);
    assert_int_equal(run(&ctx, n, (hone_tensor *[]){x}, out), HONE_OK);
    char **s = out[0]->data;
    assert_string_equal(s[0], "a");
    assert_string_equal(s[1], "c");
    assert_string_equal(s[2], "b");
    assert_string_equal(s[3], "d");
    hone_tensor_free(out[0]);
    hone_graph_free(g);
}

static void test_huge_sizes_fail_cleanly(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t d1[] = {1};
    double big = (double)((int64_t)1 << 40);
    hone_node *e = node(g, "Expand", 2, 1, 13);
    run_fails(e, (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, d1, NULL), ints(2, (double[]){big, big})},
              HONE_ERR_LIMIT);
    hone_node *c = node(g, "ConstantOfShape", 1, 1, 13);
    run_fails(c, (hone_tensor *[]){ints(3, (double[]){big, big, big})}, HONE_ERR_LIMIT);
    hone_node *t = node(g, "Tile", 2, 1, 13);
    run_fails(t, (hone_tensor *[]){tn(HONE_DT_FLOAT, 1, d1, NULL), ints(1, (double[]){9e18})},
              HONE_ERR_LIMIT);
    hone_node *r = node(g, "Range", 3, 1, 13);
    run_fails(r,
              (hone_tensor *[]){tn(HONE_DT_INT64, 0, NULL, (double[]){0}),
                                tn(HONE_DT_INT64, 0, NULL, (double[]){9e18}),
                                tn(HONE_DT_INT64, 0, NULL, (double[]){1})},
              HONE_ERR_LIMIT);
    run_fails(r,
              (hone_tensor *[]){tn(HONE_DT_INT64, 0, NULL, (double[]){0}),
                                tn(HONE_DT_INT64, 0, NULL, (double[]){5}),
                                tn(HONE_DT_INT64, 0, NULL, (double[]){0})},
              HONE_ERR_INVALID);
    hone_graph_free(g);
}

/* A constant value of g holding t. */
static hone_value *konst(hone_graph *g, hone_tensor *t)
{
    hone_value *v = hone_graph_new_value(g, NULL);
    hone_value_set_data(v, t);
    return v;
}

/* A graph at opset 13 with input x: f32[batch,3,4] (batch < 0: symbol N). */
static hone_graph *graph_with_x(int64_t batch, hone_value **x)
{
    hone_graph *g = tu_graph_new();
    *x = hone_graph_new_value(g, "x");
    (*x)->dtype = HONE_DT_FLOAT;
    (*x)->rank = 3;
    (*x)->dims[0] = batch >= 0 ? batch : HONE_DIM_SYM(hone_graph_sym(g, "N"));
    (*x)->dims[1] = 3;
    (*x)->dims[2] = 4;
    hone_graph_add_input(g, *x);
    return g;
}

/* x -> Shape -> Gather(0) -> Unsqueeze -> Concat(.., [-1]) -> Reshape(x, ..). */
static hone_graph *flatten_chain(int64_t batch)
{
    hone_value *x;
    hone_graph *g = graph_with_x(batch, &x);
    hone_node *sh = hone_graph_add_node(g, "Shape", "", "shape", 1, 1);
    sh->in[0] = x;
    sh->out[0] = hone_graph_new_value(g, NULL);
    hone_node *ga = hone_graph_add_node(g, "Gather", "", "gather", 2, 1);
    ga->in[0] = sh->out[0];
    ga->in[1] = konst(g, tn(HONE_DT_INT64, 0, NULL, (double[]){0}));
    ga->out[0] = hone_graph_new_value(g, NULL);
    hone_node *un = hone_graph_add_node(g, "Unsqueeze", "", "unsqueeze", 2, 1);
    un->in[0] = ga->out[0];
    un->in[1] = konst(g, ints(1, (double[]){0}));
    un->out[0] = hone_graph_new_value(g, NULL);
    hone_node *co = hone_graph_add_node(g, "Concat", "", "concat", 2, 1);
    hone_node_set_attr_int(g, co, "axis", 0);
    co->in[0] = un->out[0];
    co->in[1] = konst(g, ints(1, (double[]){-1}));
    co->out[0] = hone_graph_new_value(g, NULL);
    hone_node *re = hone_graph_add_node(g, "Reshape", "", "reshape", 2, 1);
    re->in[0] = x;
    re->in[1] = co->out[0];
    re->out[0] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, re->out[0]);
    return g;
}

static void test_infer_shape_chain(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = flatten_chain(2);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_value *y = hone_graph_find(g, "y");
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 12);
    hone_graph_free(g);
    /* with a symbolic batch the values are unknown: rank still known */
    g = flatten_chain(-1);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    y = hone_graph_find(g, "y");
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], HONE_DIM_UNKNOWN);
    hone_graph_free(g);
}

static void test_infer_symbolic_reshape(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_value *x;
    hone_graph *g = graph_with_x(-1, &x);
    hone_node *re = hone_graph_add_node(g, "Reshape", "", "reshape", 2, 1);
    re->in[0] = x;
    re->in[1] = konst(g, ints(2, (double[]){0, -1}));
    re->out[0] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, re->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    char buf[64];
    assert_string_equal(hone_value_type_str(g, re->out[0], buf, sizeof buf), "f32[N,12]");
    hone_graph_free(g);
}

/* Adds node op(ins...) -> one new value to g; returns that value. */
static hone_value *add1(hone_graph *g, const char *op, int n_in, hone_value **ins)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, n_in, 1);
    for (int i = 0; i < n_in; i++)
        n->in[i] = ins[i];
    n->out[0] = hone_graph_new_value(g, NULL);
    return n->out[0];
}

/* A graph input of int64 [len] whose contents are unknown. */
static hone_value *shape_input(hone_graph *g, const char *name, int64_t len)
{
    hone_value *v = hone_graph_new_value(g, name);
    v->dtype = HONE_DT_INT64;
    v->rank = 1;
    v->dims[0] = len;
    hone_graph_add_input(g, v);
    return v;
}

/* Asserts the printed type of v. */
static void type_is(const hone_graph *g, const hone_value *v, const char *want)
{
    char buf[128];
    assert_string_equal(hone_value_type_str(g, v, buf, sizeof buf), want);
}

static void test_infer_partial(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_value *x;
    hone_graph *g = graph_with_x(-1, &x);
    hone_value *s2 = shape_input(g, "s2", 2), *s1 = shape_input(g, "s1", 1);
    hone_value *ends = konst(g, ints(1, (double[]){10})), *ax2 = konst(g, ints(1, (double[]){2}));
    hone_value *rep = konst(g, ints(3, (double[]){1, 2, 1})),
               *idx = konst(g, ints(2, (double[]){0, 1}));
    hone_value *reshape = add1(g, "Reshape", 2, (hone_value *[]){x, s2});
    hone_value *slice = add1(g, "Slice", 4, (hone_value *[]){x, s1, ends, ax2});
    hone_value *cos = add1(g, "ConstantOfShape", 1, (hone_value *[]){s2});
    hone_value *squeeze = add1(g, "Squeeze", 2, (hone_value *[]){x, s1});
    hone_value *tile = add1(g, "Tile", 2, (hone_value *[]){x, rep});
    hone_value *flat = add1(g, "Flatten", 1, (hone_value *[]){x});
    hone_value *tr = add1(g, "Transpose", 1, (hone_value *[]){x});
    hone_value *scales = konst(g, tn(HONE_DT_FLOAT, 1, (int64_t[]){3}, (double[]){1, 1, 2}));
    hone_value *rs = add1(g, "Resize", 3, (hone_value *[]){x, NULL, scales});
    hone_node *ga = hone_graph_add_node(g, "Gather", "", NULL, 2, 1);
    ga->in[0] = x;
    ga->in[1] = idx;
    ga->out[0] = hone_graph_new_value(g, NULL);
    hone_node_set_attr_int(g, ga, "axis", 2);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    type_is(g, reshape, "f32[?,?]");
    type_is(g, slice, "f32[N,3,?]");
    type_is(g, cos, "f32[?,?]");
    type_is(g, squeeze, "f32[?,?]");
    type_is(g, tile, "f32[N,6,4]");
    type_is(g, flat, "f32[N,12]");
    type_is(g, tr, "f32[4,3,N]");
    type_is(g, ga->out[0], "f32[N,3,2]");
    type_is(g, rs, "f32[N,3,8]");
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape_zero_and_neg),
        cmocka_unit_test(test_slice_negative_steps),
        cmocka_unit_test(test_gather_negative_and_bad),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_resize_nearest),
        cmocka_unit_test(test_resize_linear),
        cmocka_unit_test(test_depth_space_roundtrip),
        cmocka_unit_test(test_split_parts),
        cmocka_unit_test(test_unique_orders),
        cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_strings_are_copied),
        cmocka_unit_test(test_huge_sizes_fail_cleanly),
        cmocka_unit_test(test_infer_shape_chain),
        cmocka_unit_test(test_infer_symbolic_reshape),
        cmocka_unit_test(test_infer_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
