/*
 * Verifier: the structural invariants every pass must preserve. Values are
 * defined once, used after their definition, graph outputs are produced, and
 * node arities match the op table. Run after import and after every pass.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static hone_status check_node(hone_ctx *ctx, const hone_node *n, char *defined)
{
    const hone_op_info *oi = &hone_op_table[n->op];
    if (n->n_in > HONE_MAX_ARITY || n->n_out > HONE_MAX_ARITY)
        return hone_node_fail(ctx, n, HONE_ERR_LIMIT, "has more than %d inputs or outputs",
                              HONE_MAX_ARITY);
    if (n->op != HONE_OP_UNKNOWN &&
        (n->n_in < oi->min_in || (oi->max_in >= 0 && n->n_in > oi->max_in)))
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "has %d inputs, the op takes %d..%d",
                              n->n_in, oi->min_in, oi->max_in);
    for (int j = 0; j < n->n_in; j++) {
        const hone_value *v = n->in[j];
        if (v && !defined[v->id])
            return hone_node_fail(ctx, n, HONE_ERR_INVALID,
                                  "input '%s' is used before it is defined (or never defined)",
                                  v->name);
    }
    for (int j = 0; j < n->n_out; j++) {
        const hone_value *v = n->out[j];
        if (!v)
            continue;
        if (defined[v->id])
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "output '%s' is defined twice",
                                  v->name);
        defined[v->id] = 1;
    }
    return HONE_OK;
}

/* Longest chain of dependent nodes (nodes must be in topological order). */
static hone_status check_depth(hone_ctx *ctx, const hone_graph *g)
{
    int64_t *depth = calloc((size_t)g->n_values + 1, sizeof *depth), deepest = 0;
    HONE_ASSERT(depth);
    hone_status st = HONE_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const hone_node *n = g->nodes[i];
        int64_t d = 0;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] && depth[n->in[j]->id] > d)
                d = depth[n->in[j]->id];
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j])
                depth[n->out[j]->id] = d + 1;
        deepest = d + 1 > deepest ? d + 1 : deepest;
        if (deepest > ctx->limits.max_depth)
            st = hone_node_fail(ctx, n, HONE_ERR_LIMIT, "graph is deeper than the limit %lld",
                                (long long)ctx->limits.max_depth);
    }
    free(depth);
    return st;
}

hone_status hone_graph_verify(hone_ctx *ctx, const hone_graph *g)
{
    char *defined = calloc((size_t)g->n_values + 1, 1);
    HONE_ASSERT(defined);
    hone_status st = HONE_OK;
    for (int i = 0; i < g->n_values; i++) {
        HONE_ASSERT(g->values[i]->id == i);
        if (g->values[i]->data)
            defined[i] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++)
        defined[g->inputs[i]->id] = 1;
    if ((int64_t)g->n_nodes > ctx->limits.max_nodes)
        st = hone_fail(ctx, HONE_ERR_LIMIT, "graph has %d nodes, above the limit %lld", g->n_nodes,
                       (long long)ctx->limits.max_nodes);
    for (int i = 0; i < g->n_nodes && !st; i++)
        st = check_node(ctx, g->nodes[i], defined);
    if (!st)
        st = check_depth(ctx, g);
    for (int i = 0; i < g->n_outputs && !st; i++)
        if (!defined[g->outputs[i]->id])
            st = hone_fail(ctx, HONE_ERR_INVALID, "graph output '%s' is never produced",
                           g->outputs[i]->name);
    free(defined);
    return st;
}

hone_status hone_graph_check_supported(hone_ctx *ctx, const hone_graph *g)
{
    char list[1800] = "";
    size_t k = 0;
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *n = g->nodes[i];
        if (n->op != HONE_OP_UNKNOWN)
            continue;
        if (k < sizeof list - 1)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s%s%s (node '%s')",
                                  count ? ", " : "", n->domain, *n->domain ? "." : "",
                                  n->op_type, n->name);
        count++;
    }
    if (!count)
        return HONE_OK;
    return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "%d unsupported node%s: %s", count,
                     count > 1 ? "s" : "", list);
}
