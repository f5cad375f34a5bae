/*
 * Elementwise ops checked against hand-computed values: broadcasting of
 * binary and variadic ops, integer Div/Mod sign rules, Cast conversions
 * (truncation, saturation, wrap-around, strings), activations, Clip in both
 * opset forms, PRelu with a channel slope, and type errors naming the node.
 * Each test runs one node through hone_node_run, as the interpreter does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A tensor of dtype dt filled from vals (through double). */
static hone_tensor *mk(hone_dtype dt, int rank, const int64_t *dims, const double *vals)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t = NULL;
    assert_int_equal(hone_tensor_new(&ctx, dt, rank, dims, &t), HONE_OK);
    for (int64_t i = 0; vals && i < t->numel; i++)
        hone_tensor_set_f64(t, i, vals[i]);
    return t;
}

/* A node of op in a fresh graph at the given opset, with fresh values wired. */
static hone_node *mknode(hone_graph *g, const char *op, const char *name, int n_in, int opset)
{
    hone_node *n = hone_graph_add_node(g, op, "", name, n_in, 1);
    for (int i = 0; i < n_in; i++)
        n->in[i] = hone_graph_new_value(g, NULL);
    n->out[0] = hone_graph_new_value(g, NULL);
    n->opset = opset;
    return n;
}

/* Runs node n on ins; returns the status and the output in *out. */
static hone_status run(hone_ctx *ctx, const hone_node *n, const hone_tensor **ins,
                       hone_tensor **out)
{
    hone_ctx_init(ctx);
    *out = NULL;
    return hone_node_run(ctx, n, ins, out, NULL);
}

/* Asserts t has dtype dt, shape dims and values want (exact, NaN = NaN). */
static void expect(const hone_tensor *t, hone_dtype dt, int rank, const int64_t *dims,
                   const double *want)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->dims[i], dims[i]);
    for (int64_t i = 0; i < t->numel; i++) {
        double got = hone_tensor_get_f64(t, i);
        if (isnan(want[i]))
            assert_true(isnan(got));
        else
            assert_float_equal(got, want[i], 1e-6 * (1 + fabs(want[i])));
    }
}

/* Runs node n on ins, expecting success and the given result (freed here). */
static void run_check(const hone_node *n, const hone_tensor **ins, hone_dtype dt, int rank,
                      const int64_t *dims, const double *want)
{
    hone_ctx ctx;
    hone_tensor *y;
    assert_int_equal(run(&ctx, n, ins, &y), HONE_OK);
    expect(y, dt, rank, dims, want);
    hone_tensor_free(y);
}

/* Sets attribute "name=value" (NULL: none) on n: an int for an integer
 * value, a float for another number, a string otherwise. */
static void set_attr(hone_graph *g, hone_node *n, const char *attr)
{
    if (!attr)
        return;
    char name[32], *end;
    const char *eq = strchr(attr, '='), *v = eq + 1;
    snprintf(name, sizeof name, "%.*s", (int)(eq - attr), attr);
    long long i = strtoll(v, &end, 10);
    if (!*end)
        hone_node_set_attr_int(g, n, name, i);
    else if (strtod(v, &end), !*end)
        hone_node_set_attr_float(g, n, name, strtof(v, NULL));
    else
        hone_node_set_attr_string(g, n, name, v);
}

/* Runs a two-input node and checks the result; frees everything. */
static void check_binary(const char *op, hone_tensor *a, hone_tensor *b, hone_dtype dt, int rank,
                         const int64_t *dims, const double *want, const char *attr)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, op, "bin", 2, 13);
    set_attr(g, n, attr);
    const hone_tensor *ins[] = {a, b};
    run_check(n, ins, dt, rank, dims, want);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_graph_free(g);
}

static const int64_t d23[] = {2, 3}, d3[] = {3}, d21[] = {2, 1};
static const double m23[] = {1, 2, 3, 4, 5, 6};

/* [2,3] + [3] repeats the row; [2,3] - [2,1] repeats the column. */
static void test_broadcast(void **state)
{
    double r3[] = {10, 20, 30}, c2[] = {1, 2};
    double sum[] = {11, 22, 33, 14, 25, 36}, diff[] = {0, 1, 2, 2, 3, 4};
    check_binary("Add", mk(HONE_DT_FLOAT, 2, d23, m23), mk(HONE_DT_FLOAT, 1, d3, r3),
                 HONE_DT_FLOAT, 2, d23, sum, NULL);
    check_binary("Sub", mk(HONE_DT_FLOAT, 2, d23, m23), mk(HONE_DT_FLOAT, 2, d21, c2),
                 HONE_DT_FLOAT, 2, d23, diff, NULL);
    /* [2,1] * [3] broadcasts both ways to [2,3]; int64 goes through the int path */
    double prod[] = {10, 20, 30, 20, 40, 60};
    check_binary("Mul", mk(HONE_DT_INT64, 2, d21, c2), mk(HONE_DT_INT64, 1, d3, r3),
                 HONE_DT_INT64, 2, d23, prod, NULL);
    /* float16 through double, and a comparison giving bool */
    double half[] = {0.5, 1, 1.5, 2, 2.5, 3}, two[] = {2};
    int64_t d1[] = {1};
    check_binary("Div", mk(HONE_DT_FLOAT16, 2, d23, m23), mk(HONE_DT_FLOAT16, 1, d1, two),
                 HONE_DT_FLOAT16, 2, d23, half, NULL);
    double gt[] = {0, 1, 1, 1, 1, 1};
    check_binary("Greater", mk(HONE_DT_INT32, 2, d23, m23), mk(HONE_DT_INT32, 2, d21, c2),
                 HONE_DT_BOOL, 2, d23, gt, NULL);
}

/* Integer Div truncates toward zero; Mod takes the divisor's sign unless
 * fmod=1, which takes the dividend's. */
static void test_int_div_mod(void **state)
{
    int64_t d4[] = {4};
    double x[] = {7, -7, 7, -7}, y[] = {2, 2, -2, -2};
    double q[] = {3, -3, -3, 3}, m0[] = {1, 1, -1, -1}, m1[] = {1, -1, 1, -1};
    check_binary("Div", mk(HONE_DT_INT32, 1, d4, x), mk(HONE_DT_INT32, 1, d4, y), HONE_DT_INT32, 1,
                 d4, q, NULL);
    check_binary("Mod", mk(HONE_DT_INT8, 1, d4, x), mk(HONE_DT_INT8, 1, d4, y), HONE_DT_INT8, 1, d4,
                 m0, "fmod=0");
    check_binary("Mod", mk(HONE_DT_INT64, 1, d4, x), mk(HONE_DT_INT64, 1, d4, y), HONE_DT_INT64, 1,
                 d4, m1, "fmod=1");
    double fx[] = {5.5, -5.5, 5.5, -5.5}, fm[] = {1.5, -1.5, 1.5, -1.5};
    check_binary("Mod", mk(HONE_DT_FLOAT, 1, d4, fx), mk(HONE_DT_FLOAT, 1, d4, y), HONE_DT_FLOAT, 1,
                 d4, fm, "fmod=1");

    /* integer division by zero is an error, not a trap */
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Div", "div0", 2, 13);
    double zero[] = {0, 1, 1, 1};
    hone_tensor *a = mk(HONE_DT_INT32, 1, d4, x), *b = mk(HONE_DT_INT32, 1, d4, zero), *out;
    const hone_tensor *ins[] = {a, b};
    assert_int_equal(run(&ctx, n, ins, &out), HONE_ERR_INVALID);
    assert_null(out);
    assert_non_null(strstr(ctx.msg, "div0"));
    assert_non_null(strstr(ctx.msg, "division by zero"));
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_graph_free(g);
}

/* Pow keeps the base type; BitShift shifts unsigned values, dropping bits. */
static void test_pow_bitshift(void **state)
{
    int64_t d2[] = {2};
    double base[] = {2, 3}, ex[] = {0.5, 2}, pw[] = {1, 9};
    check_binary("Pow", mk(HONE_DT_INT32, 1, d2, base), mk(HONE_DT_FLOAT, 1, d2, ex), HONE_DT_INT32,
                 1, d2, pw, NULL);
    double fb[] = {4, -2}, ie[] = {-1, 3}, fpw[] = {0.25, -8};
    check_binary("Pow", mk(HONE_DT_FLOAT, 1, d2, fb), mk(HONE_DT_INT64, 1, d2, ie), HONE_DT_FLOAT,
                 1, d2, fpw, NULL);
    double v[] = {1, 255}, s[] = {7, 1}, want[] = {128, 254}, right[] = {0, 127};
    check_binary("BitShift", mk(HONE_DT_UINT8, 1, d2, v), mk(HONE_DT_UINT8, 1, d2, s),
                 HONE_DT_UINT8, 1, d2, want, "direction=LEFT");
    check_binary("BitShift", mk(HONE_DT_UINT8, 1, d2, v), mk(HONE_DT_UINT8, 1, d2, s),
                 HONE_DT_UINT8, 1, d2, right, "direction=RIGHT");
}

/* uint64 values above 2^63 compare and take Max as unsigned numbers. */
static void test_uint64_order(void **state)
{
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Max", "max", 2, 13);
    int64_t d2[] = {2};
    hone_tensor *a = mk(HONE_DT_UINT64, 1, d2, NULL), *b = mk(HONE_DT_UINT64, 1, d2, NULL), *y;
    uint64_t *pa = a->data, *pb = b->data;
    pa[0] = ((uint64_t)1 << 63) + 5, pa[1] = 1;
    pb[0] = 7, pb[1] = UINT64_MAX;
    const hone_tensor *ins[] = {a, b};
    assert_int_equal(run(&ctx, n, ins, &y), HONE_OK);
    assert_true(((uint64_t *)y->data)[0] == ((uint64_t)1 << 63) + 5);
    assert_true(((uint64_t *)y->data)[1] == UINT64_MAX);
    hone_tensor_free(y);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_graph_free(g);
}

/* Runs a one-input node (attr as for set_attr) on x; returns the result, x freed. */
static hone_tensor *unary(const char *op, const char *attr, hone_tensor *x)
{
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, op, "u", 1, 13);
    set_attr(g, n, attr);
    const hone_tensor *ins[] = {x};
    hone_tensor *y;
    assert_int_equal(run(&ctx, n, ins, &y), HONE_OK);
    hone_tensor_free(x);
    hone_graph_free(g);
    return y;
}

/* Runs Cast to dt on x and returns the result (x freed). */
static hone_tensor *cast(hone_tensor *x, hone_dtype dt)
{
    char attr[16];
    snprintf(attr, sizeof attr, "to=%d", (int)dt);
    return unary("Cast", attr, x);
}

/* float -> int8 truncates toward zero and saturates out of range (NaN -> 0);
 * int16 -> int8 keeps the low bits; float -> bool is "nonzero". */
static void test_cast_numeric(void **state)
{
    int64_t d7[] = {7};
    double x[] = {1.7, -1.7, 300, -300, NAN, 127.9, -0.5};
    double want[] = {1, -1, 127, -128, 0, 127, 0};
    hone_tensor *y = cast(mk(HONE_DT_FLOAT, 1, d7, x), HONE_DT_INT8);
    expect(y, HONE_DT_INT8, 1, d7, want);
    hone_tensor_free(y);

    int64_t d3v[] = {3};
    double w[] = {200, -129, 127}, wrapped[] = {-56, 127, 127};
    y = cast(mk(HONE_DT_INT16, 1, d3v, w), HONE_DT_INT8);
    expect(y, HONE_DT_INT8, 1, d3v, wrapped);
    hone_tensor_free(y);

    double b[] = {0, -0.25, NAN}, bw[] = {0, 1, 1};
    y = cast(mk(HONE_DT_DOUBLE, 1, d3v, b), HONE_DT_BOOL);
    expect(y, HONE_DT_BOOL, 1, d3v, bw);
    hone_tensor_free(y);
}

/* Numbers print as numpy's str() does and strings parse back. */
static void test_cast_strings(void **state)
{
    int64_t d6[] = {6};
    double x[] = {0.5, 1, 1e-5, -2.25, 0.1, INFINITY};
    const char *want[] = {"0.5", "1.0", "1e-05", "-2.25", "0.1", "inf"};
    hone_tensor *s = cast(mk(HONE_DT_FLOAT, 1, d6, x), HONE_DT_STRING);
    for (int i = 0; i < 6; i++)
        assert_string_equal(((char **)s->data)[i], want[i]);
    hone_tensor *back = cast(s, HONE_DT_DOUBLE);
    double exact[] = {0.5, 1, 1e-5, -2.25, 0.1, INFINITY};
    expect(back, HONE_DT_DOUBLE, 1, d6, exact);
    hone_tensor_free(back);

    /* a string that is no number is an error naming the node */
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Cast", "parse", 1, 13);
    hone_node_set_attr_int(g, n, "to", HONE_DT_INT32);
    int64_t d1[] = {1};
    hone_tensor *bad = mk(HONE_DT_STRING, 1, d1, NULL), *y;
    ((char **)bad->data)[0] = strdup("12abc");
    const hone_tensor *ins[] = {bad};
    assert_int_equal(run(&ctx, n, ins, &y), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "parse"));
    assert_non_null(strstr(ctx.msg, "12abc"));
    hone_tensor_free(bad);
    hone_graph_free(g);
}

static void test_unary(void **state)
{
    int64_t d5[] = {5};
    double x[] = {0.5, 1.5, 2.5, -0.5, -1.5};
    struct {
        const char *op, *attr;
        double want[5];
    } cases[] = {
        {"Round", NULL, {0, 2, 2, -0.0, -2}},
        {"Relu", NULL, {0.5, 1.5, 2.5, 0, 0}},
        {"LeakyRelu", "alpha=0.1", {0.5, 1.5, 2.5, -0.05, -0.15}},
        {"Neg", NULL, {-0.5, -1.5, -2.5, 0.5, 1.5}},
        {"Floor", NULL, {0, 1, 2, -1, -2}},
        {"Sign", NULL, {1, 1, 1, -1, -1}},
        {"ThresholdedRelu", "alpha=1.0", {0, 1.5, 2.5, 0, 0}},
        {"HardSigmoid", NULL, {0.6, 0.8, 1, 0.4, 0.2}},
        {"Shrink", "lambd=1.0", {0, 1.5, 2.5, 0, -1.5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hone_tensor *y = unary(cases[c].op, cases[c].attr, mk(HONE_DT_FLOAT, 1, d5, x));
        expect(y, HONE_DT_FLOAT, 1, d5, cases[c].want);
        hone_tensor_free(y);
    }
    /* Sigmoid(0) = 1/2, Elu(-1) = e^-1 - 1, Softplus(0) = ln 2 in double */
    int64_t d3v[] = {3};
    double z[] = {0, -1, 0};
    hone_tensor *s = unary("Sigmoid", NULL, mk(HONE_DT_DOUBLE, 1, d3v, z));
    double sw[] = {0.5, 1 / (1 + exp(1)), 0.5};
    expect(s, HONE_DT_DOUBLE, 1, d3v, sw);
    hone_tensor_free(s);
    s = unary("Elu", NULL, mk(HONE_DT_DOUBLE, 1, d3v, z));
    double ew[] = {0, exp(-1) - 1, 0};
    expect(s, HONE_DT_DOUBLE, 1, d3v, ew);
    hone_tensor_free(s);
    /* Abs of int8 -128 wraps as two's complement does; IsNaN gives bool */
    double iv[] = {-128, -3, 5}, aw[] = {-128, 3, 5};
    s = unary("Abs", NULL, mk(HONE_DT_INT8, 1, d3v, iv));
    expect(s, HONE_DT_INT8, 1, d3v, aw);
    hone_tensor_free(s);
    double nv[] = {NAN, 1, INFINITY}, nw[] = {1, 0, 0};
    s = unary("IsNaN", NULL, mk(HONE_DT_FLOAT, 1, d3v, nv));
    expect(s, HONE_DT_BOOL, 1, d3v, nw);
    hone_tensor_free(s);
}

/* Clip: bounds as inputs (opset 13, int8, max omitted) and as attributes (opset 6). */
static void test_clip(void **state)
{
    int64_t d4[] = {4};
    double x[] = {-100, -2, 3, 100}, lo[] = {-5}, w13[] = {-5, -2, 3, 100};
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Clip", "clip13", 3, 13);
    n->in[2] = NULL;
    hone_tensor *a = mk(HONE_DT_INT8, 1, d4, x), *l = mk(HONE_DT_INT8, 0, NULL, lo);
    const hone_tensor *ins[] = {a, l, NULL};
    run_check(n, ins, HONE_DT_INT8, 1, d4, w13);

    hone_node *old = mknode(g, "Clip", "clip6", 1, 6);
    hone_node_set_attr_float(g, old, "min", -1);
    hone_node_set_attr_float(g, old, "max", 2.5f);
    hone_tensor *f = mk(HONE_DT_FLOAT, 1, d4, x);
    const hone_tensor *fin[] = {f};
    double w6[] = {-1, -1, 2.5, 2.5};
    run_check(old, fin, HONE_DT_FLOAT, 1, d4, w6);
    hone_tensor_free(f);
    hone_tensor_free(a);
    hone_tensor_free(l);
    hone_graph_free(g);
}

/* Where broadcasts cond [2,1], X [3] and a scalar Y; Mean of three inputs. */
static void test_where_mean(void **state)
{
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Where", "where", 3, 16);
    double cv[] = {1, 0}, xv[] = {1, 2, 3}, yv[] = {-1};
    hone_tensor *c = mk(HONE_DT_BOOL, 2, d21, cv), *x = mk(HONE_DT_INT64, 1, d3, xv);
    hone_tensor *yy = mk(HONE_DT_INT64, 0, NULL, yv), *out;
    const hone_tensor *ins[] = {c, x, yy};
    assert_int_equal(run(&ctx, n, ins, &out), HONE_OK);
    double want[] = {1, 2, 3, -1, -1, -1};
    expect(out, HONE_DT_INT64, 2, d23, want);
    hone_tensor_free(out);

    hone_node *m = mknode(g, "Mean", "mean", 3, 13);
    int64_t d1[] = {1};
    double r3[] = {3, 0, -3}, one[] = {6};
    hone_tensor *a = mk(HONE_DT_FLOAT, 2, d23, m23), *b = mk(HONE_DT_FLOAT, 1, d3, r3);
    hone_tensor *s = mk(HONE_DT_FLOAT, 1, d1, one);
    const hone_tensor *mins[] = {a, b, s};
    assert_int_equal(run(&ctx, m, mins, &out), HONE_OK);
    double mw[] = {10.0 / 3, 8.0 / 3, 2, 13.0 / 3, 11.0 / 3, 3};
    expect(out, HONE_DT_FLOAT, 2, d23, mw);
    hone_tensor_free(out);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(s);
    hone_tensor_free(c);
    hone_tensor_free(x);
    hone_tensor_free(yy);
    hone_graph_free(g);
}

/* PRelu with a PyTorch-style [C,1] slope on [N,C,L]: per-channel slopes. */
static void test_prelu_channels(void **state)
{
    int64_t dx[] = {1, 2, 2}, ds[] = {2, 1};
    double x[] = {-1, 2, -3, 4}, s[] = {0.5, 0.25}, want[] = {-0.5, 2, -0.75, 4};
    check_binary("PRelu", mk(HONE_DT_FLOAT, 3, dx, x), mk(HONE_DT_FLOAT, 2, ds, s), HONE_DT_FLOAT, 3,
                 dx, want, NULL);
}

/* Opset-6 Add with broadcast=1, axis=1 aligns B [3] with A's dim 1. */
static void test_legacy_broadcast(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Add", "old_add", 2, 6);
    hone_node_set_attr_int(g, n, "broadcast", 1);
    hone_node_set_attr_int(g, n, "axis", 1);
    int64_t da[] = {1, 3, 2};
    double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {10, 20, 30}, want[] = {11, 12, 23, 24, 35, 36};
    hone_tensor *a = mk(HONE_DT_FLOAT, 3, da, av), *b = mk(HONE_DT_FLOAT, 1, d3, bv);
    const hone_tensor *ins[] = {a, b};
    run_check(n, ins, HONE_DT_FLOAT, 3, da, want);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_graph_free(g);
}

/* Where picks strings by copy: the output owns its own strings. */
static void test_where_strings(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Where", "wstr", 3, 16);
    int64_t d2[] = {2}, d1[] = {1};
    double cv[] = {0, 1};
    hone_tensor *c = mk(HONE_DT_BOOL, 1, d2, cv), *x = mk(HONE_DT_STRING, 1, d2, NULL);
    hone_tensor *y = mk(HONE_DT_STRING, 1, d1, NULL), *out;
    ((char **)x->data)[0] = strdup("a");
    ((char **)x->data)[1] = strdup("b");
    ((char **)y->data)[0] = strdup("z");
    const hone_tensor *ins[] = {c, x, y};
    hone_ctx ctx;
    assert_int_equal(run(&ctx, n, ins, &out), HONE_OK);
    char **o = out->data;
    assert_string_equal(o[0], "z");
    assert_string_equal(o[1], "b");
    assert_ptr_not_equal(o[1], ((char **)x->data)[1]);
    hone_tensor_free(out);
    hone_tensor_free(c);
    hone_tensor_free(x);
    hone_tensor_free(y);
    hone_graph_free(g);
}

/* Mismatched input types are a shape/type error that names the node. */
static void test_type_errors(void **state)
{
    hone_ctx ctx;
    hone_graph *g = hone_graph_new();
    hone_node *n = mknode(g, "Add", "add_bad", 2, 13);
    hone_tensor *a = mk(HONE_DT_FLOAT, 1, d3, NULL), *b = mk(HONE_DT_INT64, 1, d3, NULL), *y;
    const hone_tensor *ins[] = {a, b};
    assert_int_equal(run(&ctx, n, ins, &y), HONE_ERR_SHAPE);
    assert_null(y);
    assert_non_null(strstr(ctx.msg, "add_bad"));
    assert_non_null(strstr(ctx.msg, "INT64"));

    hone_node *e = mknode(g, "Exp", "exp_int", 1, 13);
    const hone_tensor *ein[] = {b};
    assert_int_equal(run(&ctx, e, ein, &y), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "exp_int"));

    hone_node *m = mknode(g, "Mul", "mul_shape", 2, 13);
    int64_t d4[] = {4};
    hone_tensor *c = mk(HONE_DT_FLOAT, 1, d4, NULL);
    const hone_tensor *min[] = {a, c};
    assert_int_equal(run(&ctx, m, min, &y), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "mul_shape"));
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(c);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast),      cmocka_unit_test(test_int_div_mod),
        cmocka_unit_test(test_pow_bitshift),   cmocka_unit_test(test_uint64_order),
        cmocka_unit_test(test_cast_numeric),   cmocka_unit_test(test_cast_strings),
        cmocka_unit_test(test_unary),          cmocka_unit_test(test_clip),
        cmocka_unit_test(test_where_mean),     cmocka_unit_test(test_prelu_channels),
        cmocka_unit_test(test_legacy_broadcast), cmocka_unit_test(test_where_strings),
        cmocka_unit_test(test_type_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
