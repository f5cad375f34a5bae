/*
 * simplify-reshape: shortens chains of data-movement ops.
 *
 * View chains. Reshape, Flatten, Squeeze and Unsqueeze never reorder data, so
 * a view of a view is a view of the original. An outer Reshape whose constant
 * target holds no 0 (copy-a-dim) entry simply reads the chain's source. Any
 * other outer view whose output shape is known becomes Reshape(source,
 * target), the target spelling the output: numbers as they are, a symbol
 * equal to the source's dim at the same place as 0, one other symbol as -1.
 *
 * Transpose pairs. Transpose(Transpose(x, p1), p2) = Transpose(x, c) with
 * c[i] = p1[p2[i]]; when c is the identity the pair cancels and readers read
 * x. The inner node stays while others read it (dce removes it otherwise).
 */
#include <string.h>

#include "passes.h"

static bool is_view(const hone_node *n)
{
    return n && (hone_pass_is_op(n, "Reshape") || hone_pass_is_op(n, "Flatten") ||
                 hone_pass_is_op(n, "Squeeze") || hone_pass_is_op(n, "Unsqueeze")) &&
           n->n_in >= 1 && n->in[0] && n->n_out == 1 && n->out[0];
}

/* A Reshape whose meaning does not depend on its input's shape. */
static bool shape_free_reshape(const hone_node *n)
{
    int64_t t[HONE_MAX_RANK];
    if (!hone_pass_is_op(n, "Reshape") || n->n_in != 2)
        return false;
    int k = hone_pass_const_ints(n->in[1], t, HONE_MAX_RANK);
    if (k < 0)
        return false;
    for (int i = 0; i < k; i++)
        if (t[i] == 0 && !hone_attr_int(n, "allowzero", 0))
            return false;
    return true;
}

/* Reshape target spelling out's shape over source x; false when not expressible. */
static bool target_for(const hone_value *x, const hone_value *out, int64_t *t)
{
    int free_at = -1;
    if (out->rank < 0)
        return false;
    for (int i = 0; i < out->rank; i++) {
        int64_t d = out->dims[i];
        t[i] = d;
        if (d >= 0)
            continue;
        if (d != HONE_DIM_UNKNOWN && i < x->rank && x->dims[i] == d)
            t[i] = 0;
        else if (free_at < 0)
            free_at = i;
        else
            return false;
    }
    if (free_at >= 0)
        t[free_at] = -1;
    for (int i = 0; i < out->rank; i++)
        if (t[i] == 0 && out->dims[i] == 0)
            return false; /* a real zero-sized dim would read as "copy" */
    return true;
}

/* Replaces view n (reading inner view m) by one Reshape of m's source. */
static bool merge_views(hone_pass_ctx *pc, hone_graph *g, hone_node *n, hone_node *m)
{
    hone_value *src = m->in[0], *out = n->out[0];
    int64_t t[HONE_MAX_RANK];
    if (shape_free_reshape(n)) {
        n->in[0] = src;
        hone_graph_update_uses(g);
        return true;
    }
    if (!target_for(src, out, t))
        return false;
    hone_value *tv = hone_pass_new_ints(pc->ctx, g, t, out->rank, "shape");
    if (!tv)
        return false;
    const char *name = n->name;
    hone_pass_remove_node(g, n);
    hone_node *r = hone_graph_add_node(g, "Reshape", "", name, 2, 1);
    r->in[0] = src;
    r->in[1] = tv;
    r->out[0] = out;
    hone_graph_update_uses(g);
    return true;
}

/* The permutation of Transpose n (default: reversed axes); -1 when unknown. */
static int perm_of(const hone_node *n, int64_t *p)
{
    const int64_t *a;
    int k = hone_attr_ints(n, "perm", &a);
    if (k > HONE_MAX_RANK)
        return -1;
    if (k >= 0) {
        memcpy(p, a, sizeof *a * (size_t)k);
        return k;
    }
    int r = n->in[0] ? n->in[0]->rank : -1;
    for (int i = 0; i < r; i++)
        p[i] = r - 1 - i;
    return r;
}

static bool merge_transposes(hone_graph *g, hone_node *n, hone_node *m)
{
    int64_t p1[HONE_MAX_RANK], p2[HONE_MAX_RANK], c[HONE_MAX_RANK];
    int k1 = perm_of(m, p1), k2 = perm_of(n, p2);
    bool identity = true;
    if (k1 < 0 || k1 != k2)
        return false;
    for (int i = 0; i < k1; i++) {
        if (p2[i] < 0 || p2[i] >= k1)
            return false;
        c[i] = p1[p2[i]];
        identity &= c[i] == i;
    }
    if (identity) {
        if (!hone_pass_bypass(g, n, n->out[0], m->in[0]))
            return false;
        hone_pass_remove_node(g, n);
        return true;
    }
    n->in[0] = m->in[0];
    hone_node_set_attr_ints(g, n, "perm", c, k1);
    hone_graph_update_uses(g);
    return true;
}

static bool simplify(hone_pass_ctx *pc, hone_graph *g, hone_node *n)
{
    hone_node *m = n->n_in && n->in[0] ? n->in[0]->producer : NULL;
    if (is_view(n) && is_view(m) && merge_views(pc, g, n, m)) {
        hone_pass_note(pc, "views merged", 1);
        return true;
    }
    if (hone_pass_is_op(n, "Transpose") && hone_pass_is_op(m, "Transpose") && n->n_out == 1 &&
        merge_transposes(g, n, m)) {
        hone_pass_note(pc, "transposes merged", 1);
        return true;
    }
    return false;
}

hone_status hone_pass_simplify_reshape(hone_pass_ctx *pc, hone_graph *g)
{
    hone_graph_update_uses(g);
    bool changed = true;
    for (int round = 0; changed && round < 64; round++) {
        changed = false;
        for (int i = 0; i < g->n_nodes; i++)
            changed |= simplify(pc, g, g->nodes[i]);
        if (changed)
            hone_graph_toposort(pc->ctx, g);
    }
    return HONE_OK;
}
