/*
 * ONNX export: the serialized proto carries what the graph holds (checked on
 * the decoded protobuf), and import -> export -> import is the identity: the
 * same nodes, op types, attributes, value types and constants (a field-by-field
 * graph comparison), byte-identical re-serialisation, and bit-identical
 * interpreter outputs. The reference models are checked the same way when
 * this build implements their ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp.h"
#include "onnx.h"
#include "testutil.h"

/* ---- graph equality ---- */

static void assert_tensors_equal(const hone_tensor *a, const hone_tensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++)
        assert_int_equal(a->dims[i], b->dims[i]);
    if (a->dtype != HONE_DT_STRING) {
        assert_memory_equal(a->data, b->data, hone_tensor_nbytes(a) ? hone_tensor_nbytes(a) : 1);
        return;
    }
    for (int64_t i = 0; i < a->numel; i++)
        assert_string_equal(((char **)a->data)[i], ((char **)b->data)[i]);
}

static void assert_attrs_equal(const hone_attr *a, const hone_attr *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n, b->n);
    switch (a->kind) {
    case HONE_ATTR_INT: assert_int_equal(a->i, b->i); break;
    case HONE_ATTR_FLOAT: assert_memory_equal(&a->f, &b->f, sizeof a->f); break;
    case HONE_ATTR_STRING:
        assert_int_equal(a->s_len, b->s_len);
        assert_memory_equal(a->s, b->s, a->s_len + 1);
        break;
    case HONE_ATTR_INTS:
        for (int i = 0; i < a->n; i++)
            assert_int_equal(a->ints[i], b->ints[i]);
        break;
    case HONE_ATTR_FLOATS:
        for (int i = 0; i < a->n; i++)
            assert_memory_equal(&a->floats[i], &b->floats[i], sizeof(float));
        break;
    case HONE_ATTR_STRINGS:
        for (int i = 0; i < a->n; i++)
            assert_string_equal(a->strings[i], b->strings[i]);
        break;
    case HONE_ATTR_TENSOR: assert_tensors_equal(a->t, b->t); break;
    default: fail_msg("unexpected attribute kind %d", a->kind);
    }
}

/* Types compare through their text ("f32[N,3]"), so symbols match by name. */
static void assert_types_equal(const hone_graph *ga, const hone_value *a, const hone_graph *gb,
                               const hone_value *b)
{
    char ta[256], tb[256];
    assert_string_equal(a->name, b->name);
    assert_string_equal(hone_value_type_str(ga, a, ta, sizeof ta),
                        hone_value_type_str(gb, b, tb, sizeof tb));
}

static void assert_value_refs_equal(hone_value *const *a, hone_value *const *b, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true((a[i] == NULL) == (b[i] == NULL));
        if (a[i])
            assert_string_equal(a[i]->name, b[i]->name);
    }
}

static void assert_nodes_equal(const hone_graph *ga, const hone_node *a, const hone_graph *gb,
                               const hone_node *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->op_type, b->op_type);
    assert_string_equal(a->domain, b->domain);
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->opset, b->opset);
    assert_int_equal(a->n_in, b->n_in);
    assert_int_equal(a->n_out, b->n_out);
    assert_value_refs_equal(a->in, b->in, a->n_in);
    assert_value_refs_equal(a->out, b->out, a->n_out);
    for (int i = 0; i < a->n_out; i++)
        if (a->out[i])
            assert_types_equal(ga, a->out[i], gb, b->out[i]);
    assert_int_equal(a->n_attr, b->n_attr);
    for (int i = 0; i < a->n_attr; i++)
        assert_attrs_equal(&a->attrs[i], &b->attrs[i]);
}

static int count_constants(const hone_graph *g)
{
    int k = 0;
    for (int i = 0; i < g->n_values; i++)
        k += g->values[i]->data != NULL;
    return k;
}

/* Same metadata, inputs, outputs, nodes (with attributes and types) and constants. */
static void assert_graphs_equal(const hone_graph *a, const hone_graph *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->ir_version, b->ir_version);
    assert_int_equal(hone_graph_opset(a, ""), hone_graph_opset(b, ""));
    assert_int_equal(a->n_inputs, b->n_inputs);
    for (int i = 0; i < a->n_inputs; i++)
        assert_types_equal(a, a->inputs[i], b, b->inputs[i]);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_outputs; i++)
        assert_types_equal(a, a->outputs[i], b, b->outputs[i]);
    assert_int_equal(a->n_nodes, b->n_nodes);
    for (int i = 0; i < a->n_nodes; i++)
        assert_nodes_equal(a, a->nodes[i], b, b->nodes[i]);
    assert_int_equal(count_constants(a), count_constants(b));
    for (int i = 0; i < a->n_values; i++) {
        const hone_value *v = a->values[i];
        if (!v->data)
            continue;
        const hone_value *w = hone_graph_find(b, v->name);
        assert_non_null(w);
        assert_non_null(w->data);
        assert_tensors_equal(v->data, w->data);
    }
}

/* ---- helpers ---- */

static hone_graph *reimport(const hone_graph *g, uint8_t **bytes, size_t *len)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *r = NULL;
    assert_int_equal(hone_onnx_serialize(&ctx, g, bytes, len), HONE_OK);
    hone_status st = hone_onnx_load_buffer(&ctx, *bytes, *len, NULL, &r);
    if (st)
        fail_msg("re-import failed: %s", ctx.msg);
    return r;
}

/* Input i of g with symbolic dims set to 2, filled with a fixed pattern. */
static hone_tensor *pattern_input(const hone_graph *g, int i)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    const hone_value *v = g->inputs[i];
    int64_t dims[HONE_MAX_RANK];
    for (int k = 0; k < v->rank; k++)
        dims[k] = v->dims[k] >= 0 ? v->dims[k] : 2;
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, v->dtype, v->rank, dims, &t), HONE_OK);
    for (int64_t k = 0; k < t->numel; k++)
        hone_tensor_set_f64(t, k, (double)((k * 37) % 101) / 50.0 - 1.0);
    return t;
}

/* Runs both graphs on the same inputs; outputs must be bit-identical. */
static void assert_same_outputs(const hone_graph *a, const hone_graph *b)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int ni = a->n_inputs, no = a->n_outputs;
    hone_tensor *in[ni + 1], *oa[no + 1], *ob[no + 1];
    for (int i = 0; i < ni; i++)
        in[i] = pattern_input(a, i);
    if (hone_interp_run(&ctx, a, (const hone_tensor **)in, oa, NULL))
        fail_msg("interpreter: %s", ctx.msg);
    assert_int_equal(hone_interp_run(&ctx, b, (const hone_tensor **)in, ob, NULL), HONE_OK);
    for (int i = 0; i < no; i++) {
        assert_tensors_equal(oa[i], ob[i]);
        hone_tensor_free(oa[i]);
        hone_tensor_free(ob[i]);
    }
    for (int i = 0; i < ni; i++)
        hone_tensor_free(in[i]);
}

static hone_value *add_const(hone_graph *g, const char *name, hone_dtype dt, int rank,
                             const int64_t *dims, const void *data)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, dt, rank, dims, &t), HONE_OK);
    memcpy(t->data, data, hone_tensor_nbytes(t));
    hone_value *v = hone_graph_new_value(g, name);
    hone_value_set_data(v, t);
    return v;
}

/* Identity node carrying one attribute of every kind hone imports. */
static void add_all_attrs(hone_graph *g, hone_node *n)
{
    static const int64_t ints[] = {1, -2, (int64_t)1 << 40};
    static const float floats[] = {0.5f, -3.25f};
    static const char *strs[] = {"alpha", "", "gamma"};
    hone_node_set_attr_int(g, n, "i", -7);
    hone_node_set_attr_float(g, n, "f", 0.0f);
    hone_node_set_attr_string(g, n, "s", "hello");
    hone_node_set_attr_ints(g, n, "ints", ints, 3);
    hone_attr *a = hone_node_add_attr(g, n, "floats", HONE_ATTR_FLOATS);
    a->n = 2;
    a->floats = hone_arena_alloc(g->arena, sizeof floats + sizeof(float));
    memcpy(a->floats, floats, sizeof floats);
    a = hone_node_add_attr(g, n, "strings", HONE_ATTR_STRINGS);
    a->n = 3;
    a->strings = hone_arena_alloc(g->arena, sizeof strs + sizeof(char *));
    memcpy(a->strings, strs, sizeof strs);
    int64_t d22[] = {2, 2};
    float tv[] = {1, 2, 3, 4};
    hone_node_add_attr(g, n, "t", HONE_ATTR_TENSOR)->t = tu_tensor_f32(2, d22, tv);
}

/* x[N,3] * w -> Identity{every attribute kind} -> Relu -> y, plus constants of many dtypes. */
static hone_graph *hand_graph(void)
{
    hone_graph *g = hone_graph_new();
    g->name = hone_arena_strdup(g->arena, "roundtrip");
    g->ir_version = 7;
    g->opsets = hone_arena_alloc(g->arena, sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->n_opsets = 1;
    hone_value *x = hone_graph_new_value(g, "x");
    x->dtype = HONE_DT_FLOAT;
    x->rank = 2;
    x->dims[0] = HONE_DIM_SYM(hone_graph_sym(g, "batch"));
    x->dims[1] = 3;
    hone_graph_add_input(g, x);
    int64_t d3[] = {3}, d2[] = {2};
    float w[] = {0.5f, -1.0f, 2.0f};
    int64_t i64[] = {-1, (int64_t)1 << 50};
    uint16_t f16[] = {0x3c00, 0xc000};
    uint8_t bools[] = {1, 0, 1};
    double f64[] = {3.141592653589793, -0.0};
    hone_value *wv = add_const(g, "w", HONE_DT_FLOAT, 1, d3, w);
    add_const(g, "i64", HONE_DT_INT64, 1, d2, i64);
    add_const(g, "f16", HONE_DT_FLOAT16, 1, d2, f16);
    add_const(g, "bools", HONE_DT_BOOL, 1, d3, bools);
    add_const(g, "f64", HONE_DT_DOUBLE, 1, d2, f64);
    add_const(g, "scalar", HONE_DT_FLOAT, 0, NULL, w);
    hone_node *mul = hone_graph_add_node(g, "Mul", "", "mul0", 2, 1);
    mul->in[0] = x;
    mul->in[1] = wv;
    mul->out[0] = hone_graph_new_value(g, "a");
    hone_node *id = hone_graph_add_node(g, "Identity", "", "id0", 1, 1);
    id->in[0] = mul->out[0];
    id->out[0] = hone_graph_new_value(g, "b");
    add_all_attrs(g, id);
    hone_node *relu = hone_graph_add_node(g, "Relu", "", "relu0", 1, 1);
    relu->in[0] = id->out[0];
    relu->out[0] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, relu->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_OK);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

/* ---- tests ---- */

static void test_roundtrip_hand_graph(void **state)
{
    hone_graph *g = hand_graph();
    uint8_t *b1, *b2;
    size_t l1, l2;
    hone_graph *r = reimport(g, &b1, &l1);
    assert_graphs_equal(g, r);
    assert_same_outputs(g, r);
    /* exporting the re-imported graph gives the very same bytes */
    hone_graph *r2 = reimport(r, &b2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_graphs_equal(r, r2);
    free(b1);
    free(b2);
    hone_graph_free(r2);
    hone_graph_free(r);
    hone_graph_free(g);
}

/* Fields of the decoded ModelProto, checked one by one. */
static void check_proto_fields(const Onnx__ModelProto *m)
{
    assert_int_equal(m->ir_version, 7);
    assert_string_equal(m->producer_name, "hone");
    assert_int_equal(m->n_opset_import, 1);
    assert_int_equal(m->opset_import[0]->version, 13);
    const Onnx__GraphProto *gp = m->graph;
    assert_string_equal(gp->name, "roundtrip");
    assert_int_equal(gp->n_input, 1);
    const Onnx__TensorShapeProto *sp = gp->input[0]->type->tensor_type->shape;
    assert_int_equal(gp->input[0]->type->tensor_type->elem_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    assert_int_equal(sp->n_dim, 2);
    assert_int_equal(sp->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    assert_string_equal(sp->dim[0]->dim_param, "batch");
    assert_int_equal(sp->dim[1]->dim_value, 3);
    assert_int_equal(gp->n_initializer, 6);
    assert_string_equal(gp->initializer[0]->name, "w");
    assert_int_equal(gp->initializer[0]->raw_data.len, 12);
    float w1;
    memcpy(&w1, gp->initializer[0]->raw_data.data + 4, 4);
    assert_float_equal(w1, -1.0f, 0);
    assert_int_equal(gp->n_value_info, 2); /* a and b; y is an output */
    assert_string_equal(gp->value_info[0]->name, "a");
    assert_int_equal(gp->n_node, 3);
    const Onnx__NodeProto *id = gp->node[1];
    assert_string_equal(id->op_type, "Identity");
    assert_int_equal(id->n_attribute, 7);
    assert_int_equal(id->attribute[1]->type, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    assert_true(id->attribute[1]->has_f); /* 0.0 must still be written */
    assert_int_equal(id->attribute[5]->n_strings, 3);
    assert_int_equal(id->attribute[5]->strings[1].len, 0);
    assert_int_equal(id->attribute[6]->t->dims[1], 2);
}

static void test_proto_fields(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hand_graph();
    uint8_t *buf;
    size_t len;
    assert_int_equal(hone_onnx_serialize(&ctx, g, &buf, &len), HONE_OK);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    check_proto_fields(m);
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
    hone_graph_free(g);
}

/* A foreign-domain op with an omitted input: "" in its place, and an opset
 * entry for the domain; no opsets and no ir_version fall back to defaults. */
static void test_proto_defaults(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hone_graph_new();
    hone_value *x = hone_graph_new_value(g, "x");
    hone_graph_add_input(g, x);
    hone_node *n = hone_graph_add_node(g, "Foo", "com.example", "foo0", 3, 2);
    n->in[0] = x;
    n->in[2] = x;
    n->out[1] = hone_graph_new_value(g, "y");
    hone_graph_add_output(g, n->out[1]);
    uint8_t *buf;
    size_t len;
    assert_int_equal(hone_onnx_serialize(&ctx, g, &buf, &len), HONE_OK);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    assert_int_equal(m->ir_version, 8);
    assert_int_equal(m->n_opset_import, 2);
    assert_string_equal(m->opset_import[0]->domain, "com.example");
    assert_int_equal(m->opset_import[0]->version, 1);
    assert_string_equal(m->opset_import[1]->domain, "");
    assert_int_equal(m->opset_import[1]->version, 13);
    const Onnx__NodeProto *np = m->graph->node[0];
    assert_string_equal(np->domain, "com.example");
    assert_int_equal(np->n_input, 3);
    assert_string_equal(np->input[1], "");
    assert_string_equal(np->output[0], "");
    assert_string_equal(np->output[1], "y");
    assert_false(m->graph->input[0]->type->tensor_type->has_elem_type);
    assert_null(m->graph->input[0]->type->tensor_type->shape);
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
    hone_graph_free(g);
}

/* IR version 3 wants every initializer among the graph inputs; they stay constants. */
static void test_old_ir_lists_initializers(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = hand_graph();
    g->ir_version = 3;
    uint8_t *buf;
    size_t len;
    hone_graph *r = reimport(g, &buf, &len);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    assert_int_equal(m->graph->n_input, 7);
    assert_string_equal(m->graph->input[0]->name, "x");
    assert_string_equal(m->graph->input[1]->name, "w");
    assert_int_equal(m->graph->input[2]->type->tensor_type->elem_type, HONE_DT_INT64);
    assert_int_equal(r->n_inputs, 1);
    assert_graphs_equal(g, r);
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
    hone_graph_free(r);
    hone_graph_free(g);
}

static void test_save_and_load(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    char dir[] = "/tmp/hone-test-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    hone_graph *g = hand_graph(), *r;
    assert_int_equal(hone_onnx_save(&ctx, g, path), HONE_OK);
    assert_int_equal(hone_onnx_load(&ctx, path, &r), HONE_OK);
    assert_graphs_equal(g, r);
    hone_graph_free(r);
    /* a folder that does not exist: an I/O error naming the path */
    snprintf(path, sizeof path, "%s/none/m.onnx", dir);
    assert_int_equal(hone_onnx_save(&ctx, g, path), HONE_ERR_IO);
    assert_non_null(strstr(ctx.msg, "none/m.onnx"));
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    unlink(path);
    rmdir(dir);
    hone_graph_free(g);
}

/* Import -> export -> import of a reference model, when its ops are built in. */
static void roundtrip_model(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_src(rel));
    if (access(path, R_OK))
        snprintf(path, sizeof path, "%s/../shared/%s", HONE_SOURCE_DIR, rel); /* CI, developers */
    if (access(path, R_OK))
        skip();
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    hone_status st = hone_onnx_load(&ctx, path, &g);
    if (st == HONE_ERR_UNSUPPORTED) {
        print_message("skipped %s: %.160s...\n", rel, ctx.msg);
        skip();
    }
    assert_int_equal(st, HONE_OK);
    uint8_t *buf;
    size_t len;
    hone_graph *r = reimport(g, &buf, &len);
    assert_graphs_equal(g, r);
    assert_same_outputs(g, r);
    free(buf);
    hone_graph_free(r);
    hone_graph_free(g);
}

static void test_roundtrip_resnet(void **state)
{
    roundtrip_model("models/fmnist_resnet14.onnx");
}

static void test_roundtrip_sr(void **state)
{
    roundtrip_model("models/fmnist_sr_x2.onnx");
}

static void test_roundtrip_tsn(void **state)
{
    roundtrip_model("models/mfmnist_tsn.onnx");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_hand_graph), cmocka_unit_test(test_proto_fields),
        cmocka_unit_test(test_proto_defaults),       cmocka_unit_test(test_old_ir_lists_initializers),
        cmocka_unit_test(test_save_and_load),
        cmocka_unit_test(test_roundtrip_resnet),     cmocka_unit_test(test_roundtrip_sr),
        cmocka_unit_test(test_roundtrip_tsn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
