/*
 * ONNX export: hone_graph -> ModelProto, serialised or written atomically.
 *
 * The proto tree is built in one scratch arena: every message, pointer array
 * and number array the export creates lives there, and strings the graph
 * already owns (names, op types, attribute strings) are pointed to rather than
 * copied, so a single hone_arena_free releases the tree. Tensor payloads come
 * from hone_onnx_tensor_encode (malloc'd) and are tracked in a list freed at
 * the end. Types are written for inputs, outputs and every intermediate whose
 * dtype is known (HONE_ONNX_NO_VALUE_INFO: inputs and outputs only); symbolic dimensions go back out as dim_param using the
 * graph's symbol names, so import -> export -> import is the identity.
 */
#include <stdlib.h>
#include <string.h>

#include "onnx.h"

#define DEFAULT_IR_VERSION 8
#define DEFAULT_ONNX_OPSET 13

typedef struct exporter {
    hone_ctx *ctx;
    const hone_graph *g;
    hone_arena *a;
    Onnx__TensorProto **tensors; /* encoded payloads, freed with the export */
    int n_tensors, cap_tensors;
    unsigned flags;              /* HONE_ONNX_* */
} exporter;

/* The proto structs take char *; the packer only reads through them. */
static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

static void *alloc_array(exporter *ex, size_t n, size_t elem)
{
    return hone_arena_alloc(ex->a, elem * (n ? n : 1));
}

/* Encodes t and remembers it for release after packing. */
static Onnx__TensorProto *encode_tensor(exporter *ex, const hone_tensor *t, const char *name)
{
    if (ex->n_tensors == ex->cap_tensors) {
        ex->cap_tensors = ex->cap_tensors ? ex->cap_tensors * 2 : 32;
        ex->tensors = realloc(ex->tensors, sizeof *ex->tensors * (size_t)ex->cap_tensors);
        HONE_ASSERT(ex->tensors);
    }
    Onnx__TensorProto *p = hone_onnx_tensor_encode(t, name);
    ex->tensors[ex->n_tensors++] = p;
    return p;
}

/* One dimension: a value, a symbol name (dim_param) or nothing when unknown. */
static Onnx__TensorShapeProto__Dimension *new_dim(exporter *ex, int64_t d)
{
    Onnx__TensorShapeProto__Dimension *dp = hone_arena_alloc(ex->a, sizeof *dp);
    onnx__tensor_shape_proto__dimension__init(dp);
    if (d >= 0) {
        dp->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dp->dim_value = d;
    } else if (d < -1 && HONE_DIM_SYM_INDEX(d) < ex->g->n_syms) {
        dp->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        dp->dim_param = str(ex->g->syms[HONE_DIM_SYM_INDEX(d)]);
    }
    return dp;
}

/* Tensor type of v: element type when known, shape when the rank is known. */
static Onnx__TypeProto *new_type(exporter *ex, const hone_value *v)
{
    Onnx__TypeProto *tp = hone_arena_alloc(ex->a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = hone_arena_alloc(ex->a, sizeof *tt);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = v->dtype != HONE_DT_UNDEF;
    tt->elem_type = (int32_t)v->dtype;
    if (v->rank < 0)
        return tp;
    Onnx__TensorShapeProto *sp = hone_arena_alloc(ex->a, sizeof *sp);
    onnx__tensor_shape_proto__init(sp);
    sp->n_dim = (size_t)v->rank;
    sp->dim = alloc_array(ex, sp->n_dim, sizeof *sp->dim);
    for (int i = 0; i < v->rank; i++)
        sp->dim[i] = new_dim(ex, v->dims[i]);
    tt->shape = sp;
    return tp;
}

static Onnx__ValueInfoProto *new_value_info(exporter *ex, const hone_value *v)
{
    Onnx__ValueInfoProto *vi = hone_arena_alloc(ex->a, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = str(v->name);
    vi->type = new_type(ex, v);
    return vi;
}

/* Copies the list-valued payload of a FLOATS / INTS / STRINGS attribute. */
static void export_attr_list(exporter *ex, const hone_attr *a, Onnx__AttributeProto *p)
{
    size_t n = (size_t)a->n;
    if (a->kind == HONE_ATTR_FLOATS) {
        p->n_floats = n;
        p->floats = alloc_array(ex, n, sizeof *p->floats);
        if (n)
            memcpy(p->floats, a->floats, n * sizeof *p->floats);
    } else if (a->kind == HONE_ATTR_INTS) {
        p->n_ints = n;
        p->ints = alloc_array(ex, n, sizeof *p->ints);
        if (n)
            memcpy(p->ints, a->ints, n * sizeof *p->ints);
    } else {
        p->n_strings = n;
        p->strings = alloc_array(ex, n, sizeof *p->strings);
        for (size_t i = 0; i < n; i++) {
            p->strings[i].data = (uint8_t *)str(a->strings[i]);
            p->strings[i].len = strlen(str(a->strings[i]));
        }
    }
}

/* One attribute; graph-valued kinds (never imported) are refused. */
static hone_status export_attr(exporter *ex, const hone_node *n, const hone_attr *a,
                               Onnx__AttributeProto **out)
{
    Onnx__AttributeProto *p = hone_arena_alloc(ex->a, sizeof *p);
    onnx__attribute_proto__init(p);
    p->name = str(a->name);
    p->has_type = 1;
    p->type = (Onnx__AttributeProto__AttributeType)a->kind;
    switch (a->kind) {
    case HONE_ATTR_FLOAT: p->has_f = 1; p->f = a->f; break;
    case HONE_ATTR_INT: p->has_i = 1; p->i = a->i; break;
    case HONE_ATTR_STRING:
        p->has_s = 1;
        p->s.data = (uint8_t *)str(a->s);
        p->s.len = a->s ? a->s_len : 0;
        break;
    case HONE_ATTR_TENSOR:
        if (!a->t)
            return hone_node_fail(ex->ctx, n, HONE_ERR_INVALID, "tensor attribute '%s' is empty",
                                  a->name);
        p->t = encode_tensor(ex, a->t, NULL);
        break;
    case HONE_ATTR_FLOATS: case HONE_ATTR_INTS: case HONE_ATTR_STRINGS:
        export_attr_list(ex, a, p);
        break;
    default:
        return hone_node_fail(ex->ctx, n, HONE_ERR_UNSUPPORTED,
                              "attribute '%s' of kind %d cannot be exported", a->name, (int)a->kind);
    }
    *out = p;
    return HONE_OK;
}

/* Value names of a node's inputs or outputs; "" marks an omitted optional one. */
static char **value_names(exporter *ex, hone_value *const *vals, int n)
{
    char **names = alloc_array(ex, (size_t)n, sizeof *names);
    for (int i = 0; i < n; i++)
        names[i] = str(vals[i] ? vals[i]->name : "");
    return names;
}

static hone_status export_node(exporter *ex, const hone_node *n, Onnx__NodeProto **out)
{
    Onnx__NodeProto *np = hone_arena_alloc(ex->a, sizeof *np);
    onnx__node_proto__init(np);
    np->name = str(n->name);
    np->op_type = str(n->op_type);
    if (n->domain && *n->domain)
        np->domain = str(n->domain);
    np->n_input = (size_t)n->n_in;
    np->input = value_names(ex, n->in, n->n_in);
    np->n_output = (size_t)n->n_out;
    np->output = value_names(ex, n->out, n->n_out);
    np->n_attribute = (size_t)n->n_attr;
    np->attribute = alloc_array(ex, np->n_attribute, sizeof *np->attribute);
    for (int i = 0; i < n->n_attr; i++) {
        hone_status st = export_attr(ex, n, &n->attrs[i], &np->attribute[i]);
        if (st)
            return st;
    }
    *out = np;
    return HONE_OK;
}

/* Every constant value becomes an initializer (raw_data payload). */
static void export_initializers(exporter *ex, Onnx__GraphProto *gp)
{
    const hone_graph *g = ex->g;
    gp->initializer = alloc_array(ex, (size_t)g->n_values, sizeof *gp->initializer);
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->data)
            gp->initializer[gp->n_initializer++] = encode_tensor(ex, g->values[i]->data,
                                                                 g->values[i]->name);
}

/* value_info for node outputs that are not graph outputs and have a known dtype. */
static void export_value_info(exporter *ex, Onnx__GraphProto *gp)
{
    const hone_graph *g = ex->g;
    gp->value_info = alloc_array(ex, (size_t)g->n_values, sizeof *gp->value_info);
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_out; j++) {
            const hone_value *v = g->nodes[i]->out[j];
            if (v && v->dtype != HONE_DT_UNDEF && !(v->flags & HONE_VAL_OUTPUT) &&
                gp->n_value_info < (size_t)g->n_values)
                gp->value_info[gp->n_value_info++] = new_value_info(ex, v);
        }
}

/* Graph inputs; before IR version 4 every initializer must be listed too. */
static void export_inputs(exporter *ex, Onnx__GraphProto *gp, int64_t ir_version)
{
    const hone_graph *g = ex->g;
    gp->input = alloc_array(ex, (size_t)(g->n_inputs + g->n_values), sizeof *gp->input);
    for (int i = 0; i < g->n_inputs; i++)
        gp->input[gp->n_input++] = new_value_info(ex, g->inputs[i]);
    for (int i = 0; ir_version < 4 && i < g->n_values; i++)
        if (g->values[i]->data && !(g->values[i]->flags & HONE_VAL_INPUT))
            gp->input[gp->n_input++] = new_value_info(ex, g->values[i]);
}

static hone_status export_graph(exporter *ex, Onnx__GraphProto *gp, int64_t ir_version)
{
    const hone_graph *g = ex->g;
    gp->name = str(g->name);
    if (g->doc && *g->doc)
        gp->doc_string = str(g->doc);
    export_inputs(ex, gp, ir_version);
    gp->n_output = (size_t)g->n_outputs;
    gp->output = alloc_array(ex, gp->n_output, sizeof *gp->output);
    for (int i = 0; i < g->n_outputs; i++)
        gp->output[i] = new_value_info(ex, g->outputs[i]);
    export_initializers(ex, gp);
    if (!(ex->flags & HONE_ONNX_NO_VALUE_INFO))
        export_value_info(ex, gp);
    gp->n_node = (size_t)g->n_nodes;
    gp->node = alloc_array(ex, gp->n_node, sizeof *gp->node);
    for (int i = 0; i < g->n_nodes; i++) {
        hone_status st = export_node(ex, g->nodes[i], &gp->node[i]);
        if (st)
            return st;
    }
    return HONE_OK;
}

static bool has_opset(const Onnx__ModelProto *m, const char *domain)
{
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (!strcmp(m->opset_import[i]->domain, domain))
            return true;
    return false;
}

static void add_opset(exporter *ex, Onnx__ModelProto *m, const char *domain, int64_t version)
{
    Onnx__OperatorSetIdProto *op = hone_arena_alloc(ex->a, sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = str(domain);
    op->has_version = 1;
    op->version = version;
    m->opset_import[m->n_opset_import++] = op;
}

/* The graph's opsets, plus one for any node domain it did not declare. */
static void export_opsets(exporter *ex, Onnx__ModelProto *m)
{
    const hone_graph *g = ex->g;
    m->opset_import = alloc_array(ex, (size_t)(g->n_opsets + g->n_nodes + 1), sizeof *m->opset_import);
    for (int i = 0; i < g->n_opsets; i++)
        if (!has_opset(m, g->opsets[i].domain))
            add_opset(ex, m, g->opsets[i].domain, g->opsets[i].version);
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *n = g->nodes[i];
        if (!has_opset(m, n->domain))
            add_opset(ex, m, n->domain, n->opset > 0 ? n->opset : *n->domain ? 1 : DEFAULT_ONNX_OPSET);
    }
    if (!has_opset(m, ""))
        add_opset(ex, m, "", DEFAULT_ONNX_OPSET);
}

static hone_status export_model(exporter *ex, Onnx__ModelProto *m)
{
    const hone_graph *g = ex->g;
    m->has_ir_version = 1;
    m->ir_version = g->ir_version > 0 ? g->ir_version : DEFAULT_IR_VERSION;
    m->producer_name = "hone";
    m->producer_version = str(hone_version_string());
    m->has_model_version = g->model_version != 0;
    m->model_version = g->model_version;
    export_opsets(ex, m);
    m->graph = hone_arena_alloc(ex->a, sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    return export_graph(ex, m->graph, m->ir_version);
}

hone_status hone_onnx_serialize(hone_ctx *ctx, const hone_graph *g, uint8_t **buf, size_t *len)
{
    return hone_onnx_serialize_flags(ctx, g, 0, buf, len);
}

hone_status hone_onnx_serialize_flags(hone_ctx *ctx, const hone_graph *g, unsigned flags,
                                      uint8_t **buf, size_t *len)
{
    exporter ex = {.ctx = ctx, .g = g, .a = hone_arena_new(), .flags = flags};
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    hone_status st = export_model(&ex, &m);
    if (!st) {
        size_t n = onnx__model_proto__get_packed_size(&m);
        uint8_t *b = malloc(n ? n : 1);
        if (!b)
            st = hone_fail(ctx, HONE_ERR_NOMEM, "out of memory serialising %zu bytes", n);
        else {
            *len = onnx__model_proto__pack(&m, b);
            *buf = b;
        }
    }
    for (int i = 0; i < ex.n_tensors; i++)
        hone_onnx_tensor_proto_free(ex.tensors[i]);
    free(ex.tensors);
    hone_arena_free(ex.a);
    return st;
}

hone_status hone_onnx_save(hone_ctx *ctx, const hone_graph *g, const char *path)
{
    return hone_onnx_save_flags(ctx, g, path, 0);
}

hone_status hone_onnx_save_flags(hone_ctx *ctx, const hone_graph *g, const char *path,
                                 unsigned flags)
{
    uint8_t *buf;
    size_t len;
    hone_status st = hone_onnx_serialize_flags(ctx, g, flags, &buf, &len);
    if (st)
        return hone_fail_wrap(ctx, "%s", path);
    st = hone_write_file_atomic(ctx, path, buf, len);
    free(buf);
    return st;
}
