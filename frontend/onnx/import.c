/*
 * ONNX import: ModelProto -> hone_graph.
 *
 * Values are created by name as they are met; the node list is then sorted
 * topologically (exporters do not always emit it sorted, and a cycle must be
 * reported, not looped on). Calls to model-local functions are inlined with
 * their internal names prefixed by the call node's name and attribute
 * references resolved against the call. Unsupported constructs are collected
 * and reported all at once, after which the graph is verified and inferred.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"

#define MAX_INLINE_DEPTH 16

typedef struct scope {
    const struct scope *parent;
    const char *prefix;                  /* for names internal to a function body */
    const Onnx__FunctionProto *fn;
    const Onnx__NodeProto *call;          /* the node that called fn */
    hone_value **actual_in, **actual_out; /* formal i -> actual value */
    int depth;
} scope;

typedef struct importer {
    hone_ctx *ctx;
    hone_graph *g;
    const Onnx__ModelProto *model;
    const char *base_dir;
    char unsupported[1024];
    size_t n_unsup_chars;
    int n_unsupported;
} importer;

static void note_unsupported(importer *im, const char *what)
{
    if (im->n_unsup_chars < sizeof im->unsupported - 1)
        im->n_unsup_chars += (size_t)snprintf(im->unsupported + im->n_unsup_chars,
                                              sizeof im->unsupported - im->n_unsup_chars, "%s%s",
                                              im->n_unsupported ? ", " : "", what);
    im->n_unsupported++;
}

static hone_value *value_named(importer *im, const char *name)
{
    hone_value *v = hone_graph_find(im->g, name);
    return v ? v : hone_graph_new_value(im->g, name);
}

/* Resolves a name seen inside scope s to a graph value ("" -> NULL). */
static hone_value *resolve(importer *im, const scope *s, const char *name, bool is_out)
{
    if (!name || !*name)
        return NULL;
    if (!s->fn)
        return value_named(im, name);
    for (size_t i = 0; i < s->fn->n_input; i++)
        if (!strcmp(s->fn->input[i], name))
            return s->actual_in[i];
    for (size_t i = 0; i < s->fn->n_output; i++)
        if (!strcmp(s->fn->output[i], name))
            return s->actual_out[i];
    (void)is_out;
    char *full = hone_arena_printf(im->g->arena, "%s/%s", s->prefix, name);
    return value_named(im, full);
}

static const Onnx__FunctionProto *find_function(const importer *im, const Onnx__NodeProto *n)
{
    const char *dom = n->domain ? n->domain : "";
    for (size_t i = 0; i < im->model->n_functions; i++) {
        const Onnx__FunctionProto *f = im->model->functions[i];
        if (f->name && !strcmp(f->name, n->op_type) && !strcmp(f->domain ? f->domain : "", dom))
            return f;
    }
    return NULL;
}

static const Onnx__AttributeProto *call_attr(const scope *s, const char *name)
{
    for (size_t i = 0; s->call && i < s->call->n_attribute; i++)
        if (s->call->attribute[i]->name && !strcmp(s->call->attribute[i]->name, name))
            return s->call->attribute[i];
    return NULL;
}

/* Copies one attribute into node n. Returns false when it must be skipped. */
static hone_status import_attr(importer *im, hone_node *n, const Onnx__AttributeProto *a)
{
    hone_graph *g = im->g;
    if (!a->name)
        return hone_fail(im->ctx, HONE_ERR_PARSE, "node '%s': attribute without a name", n->name);
    hone_attr *d = hone_node_add_attr(g, n, a->name, (hone_attr_kind)a->type);
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: d->f = a->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: d->i = a->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        d->s = hone_arena_strndup(g->arena, (const char *)a->s.data, a->s.len);
        d->s_len = a->s.len;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        d->n = (int)a->n_floats;
        d->floats = hone_arena_alloc(g->arena, sizeof(float) * (a->n_floats + 1));
        if (a->n_floats)
            memcpy(d->floats, a->floats, sizeof(float) * a->n_floats);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        d->n = (int)a->n_ints;
        d->ints = hone_arena_alloc(g->arena, sizeof(int64_t) * (a->n_ints + 1));
        if (a->n_ints)
            memcpy(d->ints, a->ints, sizeof(int64_t) * a->n_ints);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        d->n = (int)a->n_strings;
        d->strings = hone_arena_alloc(g->arena, sizeof(char *) * (a->n_strings + 1));
        for (size_t i = 0; i < a->n_strings; i++)
            d->strings[i] = hone_arena_strndup(g->arena, (const char *)a->strings[i].data,
                                               a->strings[i].len);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        if (!a->t)
            return hone_fail(im->ctx, HONE_ERR_PARSE, "node '%s': tensor attribute '%s' is empty",
                             n->name, a->name);
        if (hone_onnx_tensor_decode(im->ctx, a->t, im->base_dir, &d->t))
            return hone_fail_wrap(im->ctx, "node '%s' attribute '%s'", n->name, a->name);
        break;
    default: {
        char what[256];
        snprintf(what, sizeof what, "attribute '%s' of kind %d (node '%s')", a->name, (int)a->type,
                 n->name);
        note_unsupported(im, what);
        break;
    }
    }
    return HONE_OK;
}

static hone_status import_node(importer *im, const Onnx__NodeProto *np, const scope *s);

/* Inlines a call to a local function: a fresh scope maps formals to actuals. */
static hone_status inline_call(importer *im, const Onnx__NodeProto *np,
                               const Onnx__FunctionProto *fn, const scope *s)
{
    if (s->depth >= MAX_INLINE_DEPTH)
        return hone_fail(im->ctx, HONE_ERR_LIMIT, "function '%s' nests deeper than %d calls",
                         fn->name, MAX_INLINE_DEPTH);
    hone_value *ins[fn->n_input + 1], *outs[fn->n_output + 1];
    for (size_t i = 0; i < fn->n_input; i++)
        ins[i] = i < np->n_input ? resolve(im, s, np->input[i], false) : NULL;
    for (size_t i = 0; i < fn->n_output; i++)
        outs[i] = i < np->n_output ? resolve(im, s, np->output[i], true) : NULL;
    const char *callname = np->name && *np->name ? np->name : np->op_type;
    scope inner = {s, hone_arena_printf(im->g->arena, "%s%s%s", s->fn ? s->prefix : "",
                                        s->fn ? "/" : "", callname),
                   fn, np, ins, outs, s->depth + 1};
    for (size_t i = 0; i < fn->n_node; i++) {
        hone_status st = import_node(im, fn->node[i], &inner);
        if (st)
            return hone_fail_wrap(im->ctx, "in function '%s' called by '%s'", fn->name, callname);
    }
    return HONE_OK;
}

static hone_status import_node(importer *im, const Onnx__NodeProto *np, const scope *s)
{
    if (!np->op_type || !*np->op_type)
        return hone_fail(im->ctx, HONE_ERR_PARSE, "node '%s' has no op_type", np->name ? np->name : "");
    if (np->n_input > HONE_MAX_ARITY || np->n_output > HONE_MAX_ARITY)
        return hone_fail(im->ctx, HONE_ERR_LIMIT, "node '%s' (%s) has %zu inputs and %zu outputs (limit %d)",
                         np->name ? np->name : "", np->op_type, np->n_input, np->n_output,
                         HONE_MAX_ARITY);
    const Onnx__FunctionProto *fn = find_function(im, np);
    if (fn)
        return inline_call(im, np, fn, s);
    const char *name = np->name;
    if (s->fn)
        name = hone_arena_printf(im->g->arena, "%s/%s", s->prefix, name && *name ? name : np->op_type);
    hone_node *n = hone_graph_add_node(im->g, np->op_type, np->domain, name, (int)np->n_input,
                                       (int)np->n_output);
    for (size_t i = 0; i < np->n_input; i++)
        n->in[i] = resolve(im, s, np->input[i], false);
    for (size_t i = 0; i < np->n_output; i++)
        n->out[i] = resolve(im, s, np->output[i], true);
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        if (a->ref_attr_name && *a->ref_attr_name) {
            a = call_attr(s, a->ref_attr_name);
            if (!a)
                continue; /* unbound reference: the attribute takes its default */
            hone_status st = import_attr(im, n, a);
            if (st)
                return st;
            n->attrs[n->n_attr - 1].name = hone_arena_strdup(im->g->arena, np->attribute[i]->name);
            continue;
        }
        hone_status st = import_attr(im, n, a);
        if (st)
            return st;
    }
    return HONE_OK;
}

/* Declared type of a graph input/output/value_info onto v. */
static hone_status apply_type(importer *im, hone_value *v, const Onnx__TypeProto *tp)
{
    if (!tp)
        return HONE_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        char what[300];
        snprintf(what, sizeof what, "non-tensor value '%s'", v->name);
        note_unsupported(im, what);
        return HONE_OK;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type)
        v->dtype = (hone_dtype)tt->elem_type;
    if (!tt->shape)
        return HONE_OK;
    if (tt->shape->n_dim > HONE_MAX_RANK)
        return hone_fail(im->ctx, HONE_ERR_LIMIT, "value '%s' has rank %zu (hone allows %d)",
                         v->name, tt->shape->n_dim, HONE_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0 || d->dim_value > im->ctx->limits.max_dim)
                return hone_fail(im->ctx, HONE_ERR_LIMIT, "value '%s' dim %d is %lld (limit %lld)",
                                 v->name, i, (long long)d->dim_value,
                                 (long long)im->ctx->limits.max_dim);
            v->dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && *d->dim_param) {
            v->dims[i] = HONE_DIM_SYM(hone_graph_sym(im->g, d->dim_param));
        } else {
            v->dims[i] = HONE_DIM_UNKNOWN;
        }
    }
    return HONE_OK;
}

static hone_status import_initializers(importer *im, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name)
            return hone_fail(im->ctx, HONE_ERR_PARSE, "initializer %zu has no name", i);
        hone_tensor *t;
        hone_status st = hone_onnx_tensor_decode(im->ctx, tp, im->base_dir, &t);
        if (st)
            return st;
        hone_value_set_data(value_named(im, tp->name), t);
    }
    if (gp->n_sparse_initializer)
        note_unsupported(im, "sparse initializers");
    return HONE_OK;
}

static hone_status import_io(importer *im, const Onnx__GraphProto *gp)
{
    hone_status st = HONE_OK;
    for (size_t i = 0; i < gp->n_input && !st; i++) {
        if (!gp->input[i]->name || !*gp->input[i]->name)
            return hone_fail(im->ctx, HONE_ERR_PARSE, "graph input %zu has no name", i);
        hone_value *v = value_named(im, gp->input[i]->name);
        if (v->data)
            continue; /* an initializer listed as input: a constant here */
        st = apply_type(im, v, gp->input[i]->type);
        hone_graph_add_input(im->g, v);
    }
    for (size_t i = 0; i < gp->n_value_info && !st; i++)
        if (gp->value_info[i]->name && hone_graph_find(im->g, gp->value_info[i]->name))
            st = apply_type(im, hone_graph_find(im->g, gp->value_info[i]->name),
                            gp->value_info[i]->type);
    for (size_t i = 0; i < gp->n_output && !st; i++) {
        if (!gp->output[i]->name || !*gp->output[i]->name)
            return hone_fail(im->ctx, HONE_ERR_PARSE, "graph output %zu has no name", i);
        hone_value *v = value_named(im, gp->output[i]->name);
        st = apply_type(im, v, gp->output[i]->type);
        hone_graph_add_output(im->g, v);
    }
    return st;
}

static void import_meta(importer *im)
{
    const Onnx__ModelProto *m = im->model;
    hone_graph *g = im->g;
    g->ir_version = m->ir_version;
    g->model_version = m->model_version;
    g->producer_name = hone_arena_strdup(g->arena, m->producer_name ? m->producer_name : "");
    g->producer_version = hone_arena_strdup(g->arena, m->producer_version ? m->producer_version : "");
    g->n_opsets = (int)m->n_opset_import;
    g->opsets = hone_arena_alloc(g->arena, sizeof *g->opsets * (m->n_opset_import + 1));
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain ? m->opset_import[i]->domain : "";
        g->opsets[i].domain = hone_arena_strdup(g->arena, strcmp(d, "ai.onnx") ? d : "");
        g->opsets[i].version = m->opset_import[i]->version;
    }
    if (m->graph->name && *m->graph->name)
        g->name = hone_arena_strdup(g->arena, m->graph->name);
    if (m->graph->doc_string)
        g->doc = hone_arena_strdup(g->arena, m->graph->doc_string);
}

static hone_status import_graph(importer *im)
{
    const Onnx__GraphProto *gp = im->model->graph;
    import_meta(im);
    hone_status st = import_initializers(im, gp);
    if (!st)
        st = import_io(im, gp);
    scope top = {0};
    for (size_t i = 0; i < gp->n_node && !st; i++)
        st = import_node(im, gp->node[i], &top);
    if (st)
        return st;
    for (int i = 0; i < im->g->n_nodes; i++)
        if (im->g->nodes[i]->op == HONE_OP_UNKNOWN) {
            const hone_node *n = im->g->nodes[i];
            char what[300];
            snprintf(what, sizeof what, "%s%s%s (node '%s')", n->domain, *n->domain ? "." : "",
                     n->op_type, n->name);
            note_unsupported(im, what);
        }
    if (im->n_unsupported)
        return hone_fail(im->ctx, HONE_ERR_UNSUPPORTED, "%d unsupported construct%s: %s",
                         im->n_unsupported, im->n_unsupported > 1 ? "s" : "", im->unsupported);
    st = hone_graph_toposort(im->ctx, im->g);
    if (!st)
        st = hone_graph_verify(im->ctx, im->g);
    if (!st)
        st = hone_graph_infer(im->ctx, im->g);
    return st;
}

hone_status hone_onnx_load_buffer(hone_ctx *ctx, const uint8_t *buf, size_t len,
                                  const char *base_dir, hone_graph **out)
{
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m)
        return hone_fail(ctx, HONE_ERR_PARSE, "not a valid ONNX model (protobuf decoding failed)");
    if (!m->graph) {
        onnx__model_proto__free_unpacked(m, NULL);
        return hone_fail(ctx, HONE_ERR_PARSE, "ONNX model has no graph");
    }
    importer im = {.ctx = ctx, .g = hone_graph_new(), .model = m, .base_dir = base_dir};
    hone_status st = import_graph(&im);
    onnx__model_proto__free_unpacked(m, NULL);
    if (st) {
        hone_graph_free(im.g);
        return st;
    }
    *out = im.g;
    return HONE_OK;
}

hone_status hone_onnx_load(hone_ctx *ctx, const char *path, hone_graph **out)
{
    uint8_t *buf;
    size_t len;
    hone_status st = hone_read_file(ctx, path, &buf, &len);
    if (st)
        return st;
    char *dir = hone_path_dir(path);
    st = hone_onnx_load_buffer(ctx, buf, len, dir, out);
    free(dir);
    free(buf);
    if (st)
        hone_fail_wrap(ctx, "%s", path);
    return st;
}
