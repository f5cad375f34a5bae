/*
 * Node cost rules (frontend/ir/cost.c) on hand-built nodes whose shapes are
 * set directly, so the expected MACs and FLOPs are worked out from the
 * formulas by hand: Conv (plain and grouped), Gemm (with transA), MatMul,
 * pools, reductions, free data movement, elementwise ops, symbolic dims.
 */
#include <string.h>

#include "cost.h"
#include "testutil.h"

static hone_value *val(hone_graph *g, const char *name, int rank, const int64_t *dims)
{
    hone_value *v = hone_graph_new_value(g, name);
    v->dtype = HONE_DT_FLOAT;
    v->rank = rank;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)rank);
    return v;
}

static hone_node *node(hone_graph *g, const char *op, hone_value *a, hone_value *b, hone_value *c,
                       hone_value *y)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, c ? 3 : b ? 2 : 1, 1);
    n->in[0] = a;
    if (b)
        n->in[1] = b;
    if (c)
        n->in[2] = c;
    n->out[0] = y;
    return n;
}

static void test_conv(void **state)
{
    hone_graph *g = hone_graph_new();
    /* X[2,3,8,8] * W[4,3,3,3] + B[4] -> Y[2,4,6,6]: 288 outputs x 27 MACs */
    hone_node *n = node(g, "Conv", val(g, "x", 4, (int64_t[]){2, 3, 8, 8}),
                        val(g, "w", 4, (int64_t[]){4, 3, 3, 3}), val(g, "b", 1, (int64_t[]){4}),
                        val(g, "y", 4, (int64_t[]){2, 4, 6, 6}));
    hone_cost c = hone_node_cost(n);
    assert_int_equal(c.macs, 7776);
    assert_int_equal(c.flops, 2 * 7776 + 288);
    assert_true(c.exact);
    /* depthwise: X[1,4,5,5], W[4,1,3,3], group 4 -> Y[1,4,5,5]: 100 outputs x 9 */
    n = node(g, "Conv", val(g, "x2", 4, (int64_t[]){1, 4, 5, 5}),
             val(g, "w2", 4, (int64_t[]){4, 1, 3, 3}), NULL, val(g, "y2", 4, (int64_t[]){1, 4, 5, 5}));
    hone_node_set_attr_int(g, n, "group", 4);
    assert_int_equal(hone_node_macs(n), 900);
    assert_int_equal(hone_node_cost(n).flops, 1800);
    /* ConvTranspose: X[1,2,3,3], W[2,5,2,2] -> every input element feeds 5*2*2 outputs */
    n = node(g, "ConvTranspose", val(g, "x3", 4, (int64_t[]){1, 2, 3, 3}),
             val(g, "w3", 4, (int64_t[]){2, 5, 2, 2}), NULL, val(g, "y3", 4, (int64_t[]){1, 5, 6, 6}));
    assert_int_equal(hone_node_macs(n), 18 * 20);
    hone_graph_free(g);
}

static void test_matrix_products(void **state)
{
    hone_graph *g = hone_graph_new();
    /* Gemm A[5,7] B[7,3] C[3] -> Y[5,3]: 15 x 7 MACs, + 15 bias adds */
    hone_node *n = node(g, "Gemm", val(g, "a", 2, (int64_t[]){5, 7}), val(g, "b", 2, (int64_t[]){7, 3}),
                        val(g, "c", 1, (int64_t[]){3}), val(g, "y", 2, (int64_t[]){5, 3}));
    hone_cost c = hone_node_cost(n);
    assert_int_equal(c.macs, 105);
    assert_int_equal(c.flops, 225);
    /* transA: A is [K,M] = [7,5] */
    n = node(g, "Gemm", val(g, "at", 2, (int64_t[]){7, 5}), g->values[1], NULL, val(g, "y2", 2, (int64_t[]){5, 3}));
    hone_node_set_attr_int(g, n, "transA", 1);
    assert_int_equal(hone_node_macs(n), 105);
    assert_int_equal(hone_node_cost(n).flops, 210);
    /* batched MatMul A[2,5,7] B[7,3] -> Y[2,5,3] */
    n = node(g, "MatMul", val(g, "ba", 3, (int64_t[]){2, 5, 7}), g->values[1], NULL,
             val(g, "by", 3, (int64_t[]){2, 5, 3}));
    assert_int_equal(hone_node_macs(n), 210);
    hone_graph_free(g);
}

static void test_pools_and_elementwise(void **state)
{
    hone_graph *g = hone_graph_new();
    hone_value *x = val(g, "x", 4, (int64_t[]){1, 4, 5, 5});
    hone_node *n = node(g, "MaxPool", x, NULL, NULL, val(g, "p", 4, (int64_t[]){1, 4, 2, 2}));
    hone_node_set_attr_ints(g, n, "kernel_shape", (int64_t[]){3, 3}, 2);
    hone_cost c = hone_node_cost(n);
    assert_int_equal(c.macs, 0);
    assert_int_equal(c.flops, 16 * 9);
    n = node(g, "GlobalAveragePool", x, NULL, NULL, val(g, "gp", 4, (int64_t[]){1, 4, 1, 1}));
    assert_int_equal(hone_node_cost(n).flops, 100);
    n = node(g, "ReduceMean", x, NULL, NULL, val(g, "rm", 1, (int64_t[]){1}));
    assert_int_equal(hone_node_cost(n).flops, 100);
    n = node(g, "Reshape", x, NULL, NULL, val(g, "r", 2, (int64_t[]){4, 25}));
    assert_int_equal(hone_node_cost(n).flops, 0);
    n = node(g, "Sigmoid", x, NULL, NULL, val(g, "s", 4, (int64_t[]){1, 4, 5, 5}));
    assert_int_equal(hone_node_cost(n).flops, 100);
    hone_graph_free(g);
}

static void test_symbolic_and_totals(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t nsym = HONE_DIM_SYM(hone_graph_sym(g, "N"));
    hone_value *x = val(g, "x", 2, (int64_t[]){nsym, 3});
    hone_value *w = val(g, "w", 2, (int64_t[]){3, 4});
    hone_value_set_data(w, tu_tensor_f32(2, (int64_t[]){3, 4}, NULL));
    hone_value *unused = val(g, "unused", 1, (int64_t[]){5});
    hone_value_set_data(unused, tu_tensor_f32(1, (int64_t[]){5}, NULL));
    hone_node *mm = node(g, "MatMul", x, w, NULL, val(g, "h", 2, (int64_t[]){nsym, 4}));
    hone_node *relu = node(g, "Relu", mm->out[0], NULL, NULL, val(g, "y", 2, (int64_t[]){nsym, 4}));
    hone_cost c = hone_node_cost(relu);
    assert_int_equal(c.flops, 4); /* N counted as 1 */
    assert_false(c.exact);
    hone_cost t = hone_graph_cost(g);
    assert_int_equal(t.macs, 12);
    assert_int_equal(t.flops, 24 + 4);
    assert_false(t.exact);
    assert_int_equal(hone_graph_params(g), 12); /* "unused" is read by no node */
    x->dims[0] = mm->out[0]->dims[0] = relu->out[0]->dims[0] = 8;
    t = hone_graph_cost(g);
    assert_int_equal(t.macs, 96);
    assert_true(t.exact);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_matrix_products),
        cmocka_unit_test(test_pools_and_elementwise),
        cmocka_unit_test(test_symbolic_and_totals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
