/*
 * ONNX import details: model-local functions are inlined (formals bound to
 * actuals, internal names prefixed by the call, attribute references resolved
 * against the call node), and unsupported ops are reported all at once.
 */
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "onnx.h"
#include "testutil.h"

static Onnx__NodeProto *node(const char *op, const char *dom, const char *name, int n_in,
                             char **in, int n_out, char **out)
{
    Onnx__NodeProto *n = calloc(1, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->domain = (char *)dom;
    n->name = (char *)name;
    n->n_input = (size_t)n_in;
    n->input = in;
    n->n_output = (size_t)n_out;
    n->output = out;
    return n;
}

static Onnx__ValueInfoProto *float_vec(const char *name, int64_t len)
{
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    Onnx__TypeProto *tp = calloc(1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension *d = calloc(1, sizeof *d), **dims = calloc(1, sizeof *dims);
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    onnx__tensor_shape_proto__dimension__init(d);
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d->dim_value = len;
    dims[0] = d;
    sh->n_dim = 1;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = HONE_DT_FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = (char *)name;
    v->type = tp;
    return v;
}

static void free_vinfo(Onnx__ValueInfoProto *v)
{
    free(v->type->tensor_type->shape->dim[0]);
    free(v->type->tensor_type->shape->dim);
    free(v->type->tensor_type->shape);
    free(v->type->tensor_type);
    free(v->type);
    free(v);
}

/* custom.Twice(X) {alpha} := Add(LeakyRelu(X, alpha=@alpha), LeakyRelu(...)); the graph
 * calls it as node "call" with alpha = 0.5. Serialised into *buf. */
static size_t build_model(uint8_t **buf, const char *caller_op)
{
    static char *fx[] = {"x"}, *ft[] = {"t"}, *ftt[] = {"t", "t"}, *fy[] = {"y"};
    static char *gx[] = {"X"}, *gy[] = {"Y"}, *fattr[] = {"alpha"};
    Onnx__AttributeProto ref, alpha;
    onnx__attribute_proto__init(&ref);
    ref.name = "alpha";
    ref.ref_attr_name = "alpha";
    ref.has_type = 1;
    ref.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    Onnx__AttributeProto *refs[] = {&ref};
    Onnx__NodeProto *body[] = {node("LeakyRelu", "", "lr", 1, fx, 1, ft), node("Add", "", "add", 2, ftt, 1, fy)};
    body[0]->n_attribute = 1;
    body[0]->attribute = refs;
    Onnx__OperatorSetIdProto os_main, os_custom;
    onnx__operator_set_id_proto__init(&os_main);
    onnx__operator_set_id_proto__init(&os_custom);
    os_main.domain = "";
    os_main.has_version = 1;
    os_main.version = 13;
    os_custom.domain = "custom";
    os_custom.has_version = 1;
    os_custom.version = 1;
    Onnx__OperatorSetIdProto *opsets[] = {&os_main, &os_custom};
    Onnx__FunctionProto fn;
    onnx__function_proto__init(&fn);
    fn.name = "Twice";
    fn.domain = "custom";
    fn.n_input = 1;
    fn.input = fx;
    fn.n_output = 1;
    fn.output = fy;
    fn.n_attribute = 1;
    fn.attribute = fattr;
    fn.n_node = 2;
    fn.node = body;
    fn.n_opset_import = 1;
    fn.opset_import = opsets;
    Onnx__FunctionProto *fns[] = {&fn};
    onnx__attribute_proto__init(&alpha);
    alpha.name = "alpha";
    alpha.has_type = 1;
    alpha.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    alpha.has_f = 1;
    alpha.f = 0.5f;
    Onnx__AttributeProto *alphas[] = {&alpha};
    Onnx__NodeProto *call = node(caller_op, "custom", "call", 1, gx, 1, gy);
    call->n_attribute = 1;
    call->attribute = alphas;
    Onnx__NodeProto *gnodes[] = {call};
    Onnx__ValueInfoProto *in = float_vec("X", 2), *out = float_vec("Y", 2);
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = "g";
    g.n_node = 1;
    g.node = gnodes;
    g.n_input = 1;
    g.input = &in;
    g.n_output = 1;
    g.output = &out;
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.graph = &g;
    m.n_opset_import = 2;
    m.opset_import = opsets;
    m.n_functions = 1;
    m.functions = fns;
    size_t len = onnx__model_proto__get_packed_size(&m);
    *buf = malloc(len);
    onnx__model_proto__pack(&m, *buf);
    free(body[0]);
    free(body[1]);
    free(call);
    free_vinfo(in);
    free_vinfo(out);
    return len;
}

static void test_function_inlined(void **state)
{
    uint8_t *buf;
    size_t len = build_model(&buf, "Twice");
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    assert_int_equal(hone_onnx_load_buffer(&ctx, buf, len, NULL, &g), HONE_OK);
    free(buf);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(g->nodes[0]->op_type, "LeakyRelu");
    assert_string_equal(g->nodes[0]->name, "call/lr");
    assert_float_equal(hone_attr_float(g->nodes[0], "alpha", 0), 0.5f, 0);
    assert_string_equal(g->nodes[1]->op_type, "Add");
    assert_non_null(hone_graph_find(g, "call/t"));
    int64_t d2[] = {2};
    float xv[] = {-2.0f, 3.0f};
    hone_tensor *x = tu_tensor_f32(1, d2, xv), *y = NULL;
    assert_int_equal(hone_interp_run(&ctx, g, (const hone_tensor **)&x, &y, NULL), HONE_OK);
    assert_float_equal(((float *)y->data)[0], -2.0f, 1e-6); /* 2 * leaky(-2, 0.5) */
    assert_float_equal(((float *)y->data)[1], 6.0f, 1e-6);
    hone_tensor_free(x);
    hone_tensor_free(y);
    hone_graph_free(g);
}

static void test_unsupported_listed_at_once(void **state)
{
    uint8_t *buf;
    size_t len = build_model(&buf, "NoSuchFunction");
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    assert_int_equal(hone_onnx_load_buffer(&ctx, buf, len, NULL, &g), HONE_ERR_UNSUPPORTED);
    free(buf);
    assert_null(g);
    assert_non_null(strstr(ctx.msg, "custom.NoSuchFunction (node 'call')"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_inlined),
        cmocka_unit_test(test_unsupported_listed_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
