/*
 * fuse-conv: Conv followed by a per-channel bias Add, a residual Add and an
 * activation becomes one hone.FusedConv node (frontend/ops/hone.c):
 *
 *   Y = act(Conv(X, W, B) + b_c + Z)   ->   FusedConv(X, W, B + b_c, Z)
 *
 * Matching walks forward from each Conv through single-reader values, in this
 * order: Adds of a constant shaped [M,1,..,1] (or a scalar) fold into B; one
 * Add of another tensor of the output's shape becomes Z (residual option); an
 * activation from the `activations` option ends the chain (Clip needs constant
 * bounds). Z is added before the activation, so conv -> act -> Add keeps its
 * Add. A Conv with nothing to absorb stays a Conv. The fused node writes the
 * chain's last value, so graph output names survive.
 */
#include <math.h>
#include <string.h>

#include "passes.h"

typedef struct chain {
    hone_node *conv;
    hone_node *absorbed[8];
    int n_absorbed;
    hone_value *tail;        /* value the fused node will produce */
    hone_tensor *bias;       /* B + absorbed per-channel constants; NULL: conv's B */
    hone_value *z;
    const char *act;
    float params[2];
    int n_params;
} chain;

/* True when constant v is a per-channel (axis 1) vector for output y with m channels. */
static bool per_channel(const hone_value *v, const hone_value *y, int64_t m)
{
    if (!hone_pass_is_const(v) || !hone_dtype_is_float(v->data->dtype) || y->rank < 2 ||
        v->data->rank > y->rank)
        return false;
    const hone_tensor *t = v->data;
    for (int i = 0; i < t->rank; i++) {
        int k = i + y->rank - t->rank;
        if (t->dims[i] != 1 && !(k == 1 && t->dims[i] == m))
            return false;
    }
    return true;
}

/* The other operand of binary node n reading v. */
static hone_value *other(const hone_node *n, const hone_value *v)
{
    return n->in[0] == v ? n->in[1] : n->in[0];
}

static bool absorb(chain *c, hone_node *n)
{
    if (c->n_absorbed == 8)
        return false;
    c->absorbed[c->n_absorbed++] = n;
    c->tail = n->out[0];
    return true;
}

/* Adds per-channel constant b into the running bias. */
static bool add_bias(hone_pass_ctx *pc, chain *c, const hone_value *b, int64_t m)
{
    if (!c->bias) {
        const hone_value *cb = c->conv->n_in > 2 ? c->conv->in[2] : NULL;
        int64_t dims[1] = {m};
        if (cb && !hone_pass_is_const(cb))
            return false;
        if (cb)
            c->bias = hone_tensor_clone(cb->data);
        else if (hone_tensor_new(pc->ctx, b->data->dtype, 1, dims, &c->bias))
            return false;
    }
    for (int64_t i = 0; i < m; i++) {
        double add = hone_tensor_get_f64(b->data, b->data->numel == 1 ? 0 : i);
        hone_tensor_set_f64(c->bias, i, hone_tensor_get_f64(c->bias, i) + add);
    }
    return true;
}

/* Clip bounds from inputs (opset >= 11) or attributes. */
static bool clip_bounds(const hone_node *n, float *p)
{
    p[0] = hone_attr_float(n, "min", -INFINITY);
    p[1] = hone_attr_float(n, "max", INFINITY);
    for (int j = 1; j < n->n_in && j < 3; j++) {
        if (!n->in[j])
            continue;
        if (!hone_pass_is_const(n->in[j]) || n->in[j]->data->numel != 1)
            return false;
        p[j - 1] = (float)hone_tensor_get_f64(n->in[j]->data, 0);
    }
    return true;
}

/* Takes activation node n into the chain when allowed. */
static bool take_activation(hone_pass_ctx *pc, chain *c, hone_node *n)
{
    static const char *const acts[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid"};
    const char *allowed = hone_pass_opt_str(pc, "activations");
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        if (!hone_pass_is_op(n, acts[k]) || !hone_pass_in_list(allowed, acts[k]))
            continue;
        if (k == 2 && !clip_bounds(n, c->params))
            return false;
        c->params[0] = k == 1 ? hone_attr_float(n, "alpha", 0.01f) : c->params[0];
        c->n_params = k == 1 ? 1 : k == 2 ? 2 : 0;
        c->act = acts[k];
        return absorb(c, n);
    }
    return false;
}

static bool is_add(const hone_node *n)
{
    return n && hone_pass_is_op(n, "Add") && n->n_in == 2 && n->n_out == 1;
}

/* Extends the chain from c->tail as far as the rules allow. */
static void grow(hone_pass_ctx *pc, hone_graph *g, chain *c)
{
    int64_t m = c->conv->in[1]->rank > 0 ? c->conv->in[1]->dims[0] : -1;
    hone_node *n = hone_pass_single_user(g, c->tail);
    while (is_add(n) && m > 0 && c->n_absorbed < 7 && per_channel(other(n, c->tail), c->tail, m) &&
           add_bias(pc, c, other(n, c->tail), m)) {
        absorb(c, n);
        n = hone_pass_single_user(g, c->tail);
    }
    hone_value *z = is_add(n) ? other(n, c->tail) : NULL;
    if (z && z != c->tail && hone_pass_opt_bool(pc, "residual") &&
        hone_pass_same_shape(n->out[0], c->tail) && absorb(c, n)) {
        c->z = z;
        n = hone_pass_single_user(g, c->tail);
    }
    if (n)
        take_activation(pc, c, n);
}

/* Builds the FusedConv for chain c and removes the nodes it replaces. */
static void fuse(hone_graph *g, chain *c)
{
    hone_node *cv = c->conv;
    hone_pass_add_opset(g, "hone", 1);
    hone_value *b = c->bias ? hone_pass_new_const(g, c->bias, "fused_bias")
                            : (cv->n_in > 2 ? cv->in[2] : NULL);
    hone_node *f = hone_graph_add_node(g, "FusedConv", "hone", cv->name, c->z ? 4 : b ? 3 : 2, 1);
    f->in[0] = cv->in[0];
    f->in[1] = cv->in[1];
    if (f->n_in > 2)
        f->in[2] = b;
    if (c->z)
        f->in[3] = c->z;
    f->out[0] = c->tail;
    for (int a = 0; a < cv->n_attr; a++)
        if (cv->attrs[a].kind != HONE_ATTR_TENSOR)
            *hone_node_add_attr(g, f, cv->attrs[a].name, cv->attrs[a].kind) = cv->attrs[a];
    if (c->act)
        hone_node_set_attr_string(g, f, "activation", c->act);
    if (c->n_params) {
        hone_attr *p = hone_node_add_attr(g, f, "activation_params", HONE_ATTR_FLOATS);
        p->n = c->n_params;
        p->floats = hone_arena_alloc(g->arena, sizeof(float) * 2);
        memcpy(p->floats, c->params, sizeof(float) * (size_t)c->n_params);
    }
    for (int k = c->n_absorbed - 1; k >= 0; k--)
        hone_pass_remove_node(g, c->absorbed[k]);
    hone_pass_remove_node(g, cv);
}

static bool try_fuse(hone_pass_ctx *pc, hone_graph *g, hone_node *n)
{
    if (!hone_pass_is_op(n, "Conv") || n->n_in < 2 || !n->in[1] || n->n_out != 1 || !n->out[0])
        return false;
    chain c = {.conv = n, .tail = n->out[0]};
    grow(pc, g, &c);
    if (!c.n_absorbed) {
        hone_tensor_free(c.bias);
        return false;
    }
    fuse(g, &c);
    hone_pass_note(pc, "convs fused", 1);
    hone_pass_note(pc, "nodes absorbed", c.n_absorbed);
    return true;
}

hone_status hone_pass_fuse_conv(hone_pass_ctx *pc, hone_graph *g)
{
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes;) {
        if (try_fuse(pc, g, g->nodes[i]))
            continue;
        i++;
    }
    return HONE_OK;
}
