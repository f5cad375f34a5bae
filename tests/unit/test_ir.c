/*
 * IR core: graph building, topological sort and cycle detection, verifier,
 * inference with broadcasting and symbolic dims, printer.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* x[N,3] + b[3] -> relu, built by hand. */
static hone_graph *small_graph(void)
{
    hone_graph *g = tu_graph_new();
    hone_value *x = hone_graph_new_value(g, "x");
    x->dtype = HONE_DT_FLOAT;
    x->rank = 2;
    x->dims[0] = HONE_DIM_SYM(hone_graph_sym(g, "N"));
    x->dims[1] = 3;
    hone_graph_add_input(g, x);
    int64_t d3[] = {3};
    float bv[] = {1, -2, 3};
    hone_value *b = hone_graph_new_value(g, "b");
    hone_value_set_data(b, tu_tensor_f32(1, d3, bv));
    hone_node *add = hone_graph_add_node(g, "Add", "", "add0", 2, 1);
    add->in[0] = x;
    add->in[1] = b;
    add->out[0] = hone_graph_new_value(g, "s");
    hone_node *relu = hone_graph_add_node(g, "Relu", "", "relu0", 1, 1);
    relu->in[0] = add->out[0];
    relu->out[0] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, relu->out[0]);
    return g;
}

static void test_infer_symbolic(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = small_graph();
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_OK);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_value *y = hone_graph_find(g, "y");
    assert_int_equal(y->dtype, HONE_DT_FLOAT);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], HONE_DIM_SYM(0));
    assert_int_equal(y->dims[1], 3);
    char buf[64];
    assert_string_equal(hone_value_type_str(g, y, buf, sizeof buf), "f32[N,3]");
    hone_graph_free(g);
}

/* Deployment names: inputs and outputs keep theirs, the others get base-36 counts in
 * graph order, skipping names an input or output holds ("1" here); lookup follows. */
static void test_strip_names(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = tu_graph_new();
    hone_value *x = hone_graph_new_value(g, "1");
    x->dtype = HONE_DT_FLOAT;
    x->rank = 1;
    x->dims[0] = 3;
    hone_graph_add_input(g, x);
    hone_value *v = x, *mid[3];
    for (int i = 0; i < 3; i++) {
        hone_node *n = hone_graph_add_node(g, "Relu", "", "relu", 1, 1);
        n->in[0] = v;
        v = n->out[0] = mid[i] = hone_graph_new_value(g, i == 2 ? "out" : "/block/Relu_output_0");
    }
    hone_graph_add_output(g, v);
    hone_graph_strip_names(g);
    assert_string_equal(x->name, "1");
    assert_string_equal(mid[0]->name, "0");
    assert_string_equal(mid[1]->name, "2");
    assert_string_equal(mid[2]->name, "out");
    assert_null(hone_graph_find(g, "/block/Relu_output_0"));
    assert_ptr_equal(hone_graph_find(g, "2"), mid[1]);
    assert_ptr_equal(hone_graph_find(g, "1"), x);
    assert_string_equal(g->nodes[0]->name, "");
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_OK);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_graph_free(g);
}

static void test_cycle_detected(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = small_graph();
    /* feed relu's output back into add: a cycle */
    g->nodes[0]->in[0] = g->nodes[1]->out[0];
    assert_int_equal(hone_graph_toposort(&ctx, g), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "cycle"));
    hone_graph_free(g);
}

static void test_toposort_reorders(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = small_graph();
    hone_node *t = g->nodes[0];
    g->nodes[0] = g->nodes[1];
    g->nodes[1] = t;
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_ERR_INVALID);
    assert_int_equal(hone_graph_toposort(&ctx, g), HONE_OK);
    assert_string_equal(g->nodes[0]->name, "add0");
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_OK);
    hone_graph_free(g);
}

static void test_broadcast_mismatch(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = small_graph();
    int64_t d4[] = {4};
    hone_value_set_data(hone_graph_find(g, "b"), tu_tensor_f32(1, d4, NULL));
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "add0"));
    assert_non_null(strstr(ctx.msg, "broadcast"));
    hone_graph_free(g);
}

static void test_numel_overflow(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dims[] = {(int64_t)1 << 62, 4};
    hone_tensor *t = NULL;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_FLOAT, 2, dims, &t), HONE_ERR_LIMIT);
    assert_null(t);
}

static void test_f16_roundtrip(void **state)
{
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        assert_float_equal(hone_f16_to_f32(hone_f32_to_f16(vals[i])), vals[i], 0);
    assert_int_equal(hone_f32_to_f16(1e6f), 0x7c00);
    assert_float_equal(hone_bf16_to_f32(hone_f32_to_bf16(3.0f)), 3.0f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_symbolic),   cmocka_unit_test(test_cycle_detected),
        cmocka_unit_test(test_toposort_reorders), cmocka_unit_test(test_broadcast_mismatch),
        cmocka_unit_test(test_numel_overflow),   cmocka_unit_test(test_f16_roundtrip),
        cmocka_unit_test(test_strip_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
