/*
 * Rewrite helpers shared by the passes: op tests, use queries, new constants,
 * node removal and bypassing a no-op node. Ops are recognised by their ONNX
 * name and domain (not the op enum), so a pass also sees nodes whose op has
 * no kernel in this build.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

bool hone_pass_is_op(const hone_node *n, const char *op_type)
{
    return n && !*n->domain && !strcmp(n->op_type, op_type);
}

bool hone_pass_is_random(const hone_node *n)
{
    return !strncmp(n->op_type, "Random", 6) || !strcmp(n->op_type, "Multinomial") ||
           !strcmp(n->op_type, "Bernoulli");
}

bool hone_pass_same_shape(const hone_value *a, const hone_value *b)
{
    if (!a || !b || a->rank < 0 || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] == HONE_DIM_UNKNOWN || a->dims[i] != b->dims[i])
            return false;
    return true;
}

bool hone_pass_in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, name, n))
            return true;
        p += k + (p[k] == ',');
    }
    return false;
}

void hone_pass_shape_range(const hone_node *n, int64_t r, int64_t *start, int64_t *end)
{
    int64_t s = hone_attr_int(n, "start", 0), e = hone_attr_int(n, "end", r);
    s = s < 0 ? s + r : s;
    e = e < 0 ? e + r : e;
    *start = s < 0 ? 0 : s > r ? r : s;
    *end = e < *start ? *start : e > r ? r : e;
}

bool hone_pass_is_const(const hone_value *v)
{
    return v && v->data && !v->producer;
}

bool hone_pass_static(const hone_value *v)
{
    if (!v || v->rank < 0)
        return false;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0)
            return false;
    return true;
}

hone_node *hone_pass_single_user(const hone_graph *g, const hone_value *v)
{
    if (!v || v->n_uses != 1 || (v->flags & HONE_VAL_OUTPUT))
        return NULL;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j] == v)
                return g->nodes[i];
    return NULL;
}

hone_value *hone_pass_new_const(hone_graph *g, hone_tensor *t, const char *hint)
{
    hone_value *v = hone_graph_new_value(g, hint);
    hone_value_set_data(v, t);
    return v;
}

hone_value *hone_pass_new_ints(hone_ctx *ctx, hone_graph *g, const int64_t *v, int n,
                               const char *hint)
{
    int64_t dims[1] = {n};
    hone_tensor *t;
    if (hone_tensor_new(ctx, HONE_DT_INT64, 1, dims, &t))
        return NULL;
    if (n)
        memcpy(t->data, v, sizeof *v * (size_t)n);
    return hone_pass_new_const(g, t, hint);
}

void hone_pass_set_input(hone_graph *g, hone_node *n, int idx, hone_value *v)
{
    if (idx >= n->n_in) {
        hone_value **in = hone_arena_alloc(g->arena, sizeof *in * (size_t)(idx + 2));
        memcpy(in, n->in, sizeof *in * (size_t)n->n_in);
        n->in = in;
        n->n_in = idx + 1;
    }
    n->in[idx] = v;
}

int hone_pass_index(const hone_graph *g, const hone_node *n)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == n)
            return i;
    return -1;
}

void hone_pass_remove_node(hone_graph *g, hone_node *n)
{
    int at = hone_pass_index(g, n);
    HONE_ASSERT(at >= 0);
    for (int a = 0; a < n->n_attr; a++) {
        hone_tensor_free(n->attrs[a].t);
        n->attrs[a].t = NULL;
    }
    memmove(&g->nodes[at], &g->nodes[at + 1], sizeof *g->nodes * (size_t)(g->n_nodes - at - 1));
    g->n_nodes--;
    hone_graph_update_uses(g);
}

/* True when v may be renamed away: produced by a node, not an interface value. */
static bool is_internal(const hone_value *v)
{
    return v->producer && !v->data && !(v->flags & (HONE_VAL_INPUT | HONE_VAL_OUTPUT));
}

bool hone_pass_bypass(hone_graph *g, hone_node *n, hone_value *out, hone_value *in)
{
    if (!(out->flags & HONE_VAL_OUTPUT)) {
        hone_graph_replace_uses(g, out, in);
        return true;
    }
    if (!is_internal(in))
        return false;
    hone_node *p = in->producer;
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] == in)
            n->in[j] = NULL;
    for (int j = 0; j < n->n_out; j++)
        if (n->out[j] == out)
            n->out[j] = NULL;
    for (int j = 0; j < p->n_out; j++)
        if (p->out[j] == in)
            p->out[j] = out;
    hone_graph_replace_uses(g, in, out);
    hone_graph_update_uses(g);
    return true;
}

void hone_pass_add_opset(hone_graph *g, const char *domain, int64_t version)
{
    if (hone_graph_opset(g, domain))
        return;
    hone_opset *o = hone_arena_alloc(g->arena, sizeof *o * (size_t)(g->n_opsets + 1));
    if (g->n_opsets)
        memcpy(o, g->opsets, sizeof *o * (size_t)g->n_opsets);
    o[g->n_opsets].domain = hone_arena_strdup(g->arena, domain);
    o[g->n_opsets].version = version;
    g->opsets = o;
    g->n_opsets++;
}

int hone_pass_const_ints(const hone_value *v, int64_t *out, int cap)
{
    if (!hone_pass_is_const(v) || !hone_dtype_is_int(v->data->dtype) || v->data->rank > 1 ||
        v->data->numel > cap)
        return -1;
    for (int64_t i = 0; i < v->data->numel; i++)
        out[i] = hone_tensor_get_i64(v->data, i);
    return (int)v->data->numel;
}
