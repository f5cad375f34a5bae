/*
 * fold-constants: a node whose inputs are all constant is evaluated once, at
 * compile time, through hone_node_run (the interpreter's own path, so folding
 * can never disagree with running), and its outputs become constants of the
 * same names. Constant nodes become constants directly from their attribute.
 * Shape and Size need only their input's shape, so they fold as soon as that
 * shape is static: together with the general rule this makes the
 * Shape->Gather->Unsqueeze->Concat->Reshape chains of PyTorch exports vanish.
 *
 * Not folded: random ops, nodes producing graph outputs, hone.DequantizePacked
 * (low-bit weights stay packed, 4-32x smaller than their float form; compiled code
 * unpacks them on the fly), computed outputs above the max-size option (Constant,
 * Shape and Size always fold), and
 * nodes whose kernel fails on their constants (counted as "failed"; the error
 * resurfaces when the model runs). One walk in
 * topological order suffices: folding a node makes its readers' inputs
 * constant before the walk reaches them.
 */
#include <string.h>

#include "passes.h"

static bool writes_graph_output(const hone_node *n)
{
    for (int j = 0; j < n->n_out; j++)
        if (n->out[j] && (n->out[j]->flags & HONE_VAL_OUTPUT))
            return true;
    return false;
}

/* A new tensor of n values, rank 0 when scalar. */
static hone_tensor *make(hone_ctx *ctx, hone_dtype dt, bool scalar, int64_t n)
{
    hone_tensor *t;
    int64_t dims[1] = {n};
    return hone_tensor_new(ctx, dt, scalar ? 0 : 1, dims, &t) ? NULL : t;
}

/* Contents of a Constant node from whichever value attribute it carries. */
static hone_tensor *constant_value(hone_ctx *ctx, const hone_node *n)
{
    const hone_attr *a = n->n_attr == 1 ? &n->attrs[0] : NULL;
    hone_tensor *t = NULL;
    if (!a)
        return NULL;
    if (!strcmp(a->name, "value") && a->kind == HONE_ATTR_TENSOR && a->t)
        return hone_tensor_clone(a->t);
    bool is_list = a->kind == HONE_ATTR_FLOATS || a->kind == HONE_ATTR_INTS;
    bool is_float = a->kind == HONE_ATTR_FLOAT || a->kind == HONE_ATTR_FLOATS;
    if (!is_float && a->kind != HONE_ATTR_INT && a->kind != HONE_ATTR_INTS)
        return NULL;
    t = make(ctx, is_float ? HONE_DT_FLOAT : HONE_DT_INT64, !is_list, is_list ? a->n : 1);
    for (int64_t i = 0; t && i < t->numel; i++) {
        if (is_float)
            hone_tensor_set_f64(t, i, is_list ? a->floats[i] : a->f);
        else
            hone_tensor_set_i64(t, i, is_list ? a->ints[i] : a->i);
    }
    return t;
}

/* Shape (with opset-15 start/end) or Size of a static-shaped input. */
static hone_tensor *shape_value(hone_ctx *ctx, const hone_node *n)
{
    const hone_value *x = n->in[0];
    if (n->n_in != 1 || !hone_pass_static(x))
        return NULL;
    if (hone_pass_is_op(n, "Size")) {
        hone_tensor *t = make(ctx, HONE_DT_INT64, true, 1);
        int64_t numel = 1;
        for (int i = 0; i < x->rank; i++)
            numel *= x->dims[i];
        if (t)
            hone_tensor_set_i64(t, 0, numel);
        return t;
    }
    int64_t s, e;
    hone_pass_shape_range(n, x->rank, &s, &e);
    hone_tensor *t = make(ctx, HONE_DT_INT64, false, e - s);
    for (int64_t i = s; t && i < e; i++)
        hone_tensor_set_i64(t, i - s, x->dims[i]);
    return t;
}

static bool inputs_constant(const hone_node *n)
{
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] && !hone_pass_is_const(n->in[j]))
            return false;
    return true;
}

/* True when an output already known to be static exceeds max elements. */
static bool known_too_big(const hone_node *n, int64_t max)
{
    for (int j = 0; j < n->n_out; j++) {
        const hone_value *v = n->out[j];
        if (!hone_pass_static(v))
            continue;
        int64_t k = 1;
        for (int d = 0; d < v->rank && k <= max; d++)
            k *= v->dims[d];
        if (k > max)
            return true;
    }
    return false;
}

/* Evaluates n on its constant inputs; false (outs all NULL) when it cannot. */
static bool evaluate(hone_pass_ctx *pc, const hone_node *n, hone_tensor **outs)
{
    if (n->op == HONE_OP_UNKNOWN || !inputs_constant(n))
        return false;
    const hone_tensor *ins[n->n_in + 1];
    for (int j = 0; j < n->n_in; j++)
        ins[j] = n->in[j] ? n->in[j]->data : NULL;
    hone_ctx quiet = *pc->ctx;
    if (hone_node_run(&quiet, n, ins, outs, NULL)) {
        hone_pass_note(pc, "failed", 1);
        return false;
    }
    return true;
}

/* The folded outputs of n into outs[]; false when n stays. */
static bool fold_outputs(hone_pass_ctx *pc, const hone_node *n, int64_t max, hone_tensor **outs)
{
    for (int j = 0; j < n->n_out; j++)
        outs[j] = NULL;
    if (hone_pass_is_random(n) || writes_graph_output(n) ||
        (!strcmp(n->domain, "hone") && !strcmp(n->op_type, "DequantizePacked")))
        return false;
    if (hone_pass_is_op(n, "Constant"))
        return n->n_out == 1 && (outs[0] = constant_value(pc->ctx, n));
    if ((hone_pass_is_op(n, "Shape") || hone_pass_is_op(n, "Size")) && n->n_out == 1 &&
        (outs[0] = shape_value(pc->ctx, n)))
        return true;
    if (known_too_big(n, max) || !evaluate(pc, n, outs))
        return false;
    bool fits = true;
    for (int j = 0; j < n->n_out; j++)
        fits &= !outs[j] || outs[j]->numel <= max;
    if (fits)
        return true;
    for (int j = 0; j < n->n_out; j++)
        hone_tensor_free(outs[j]);
    hone_pass_note(pc, "too large", 1);
    return false;
}

hone_status hone_pass_fold_constants(hone_pass_ctx *pc, hone_graph *g)
{
    int64_t max = hone_pass_opt_int(pc, "max-size");
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes;) {
        hone_node *n = g->nodes[i];
        hone_tensor *outs[n->n_out + 1];
        if (!fold_outputs(pc, n, max, outs)) {
            i++;
            continue;
        }
        for (int j = 0; j < n->n_out; j++) {
            if (n->out[j])
                hone_value_set_data(n->out[j], outs[j]);
            else
                hone_tensor_free(outs[j]);
        }
        hone_pass_remove_node(g, n);
        hone_pass_note(pc, "folded", 1);
    }
    return HONE_OK;
}
