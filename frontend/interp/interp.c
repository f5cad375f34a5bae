/*
 * Interpreter driver: binds inputs, walks the nodes in order, runs each through
 * hone_node_run (the same infer + eval path constant folding uses), and frees
 * every intermediate right after its last use.
 */
#include <stdlib.h>
#include <string.h>

#include "interp.h"

hone_status hone_interp_check_input(hone_ctx *ctx, const hone_graph *g, const hone_value *v,
                                    const hone_tensor *t)
{
    char want[256], got[256];
    if (v->dtype != HONE_DT_UNDEF && v->dtype != t->dtype)
        return hone_fail(ctx, HONE_ERR_ARG, "input '%s' expects %s, got %s", v->name,
                         hone_value_type_str(g, v, want, sizeof want),
                         hone_tensor_type_str(t, got, sizeof got));
    if (v->rank < 0)
        return HONE_OK;
    bool ok = v->rank == t->rank;
    for (int i = 0; ok && i < v->rank; i++)
        ok = v->dims[i] < 0 || v->dims[i] == t->dims[i];
    if (!ok)
        return hone_fail(ctx, HONE_ERR_ARG, "input '%s' expects shape %s, got %s", v->name,
                         hone_value_type_str(g, v, want, sizeof want),
                         hone_tensor_type_str(t, got, sizeof got));
    return HONE_OK;
}

/* Index of the last node reading each value (n_nodes for graph outputs). */
static int *last_uses(const hone_graph *g)
{
    int *last = malloc(sizeof *last * ((size_t)g->n_values + 1));
    HONE_ASSERT(last);
    for (int i = 0; i < g->n_values; i++)
        last[i] = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                last[g->nodes[i]->in[j]->id] = i;
    for (int i = 0; i < g->n_outputs; i++)
        last[g->outputs[i]->id] = g->n_nodes;
    return last;
}

static hone_status run_node(hone_ctx *ctx, const hone_node *n, hone_tensor **vals,
                            const hone_interp_hooks *hooks)
{
    const hone_tensor *in[n->n_in + 1];
    hone_tensor *out[n->n_out + 1];
    for (int j = 0; j < n->n_in; j++) {
        const hone_value *v = n->in[j];
        in[j] = v ? (v->data ? v->data : vals[v->id]) : NULL;
        if (v && !in[j])
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "input '%s' has no value", v->name);
    }
    hone_status st = hone_node_run(ctx, n, in, out, NULL);
    if (st)
        return st;
    for (int j = 0; j < n->n_out; j++) {
        if (!n->out[j]) {
            hone_tensor_free(out[j]);
            continue;
        }
        hone_tensor_free(vals[n->out[j]->id]);
        vals[n->out[j]->id] = out[j];
        if (hooks && hooks->on_value)
            hooks->on_value(hooks->user, n->out[j], out[j]);
    }
    return HONE_OK;
}

/* Bytes n's outputs will take, from their statically inferred shapes (0 if unknown). */
static int64_t planned_bytes(const hone_node *n)
{
    int64_t total = 0;
    for (int j = 0; j < n->n_out; j++) {
        const hone_value *v = n->out[j];
        if (!v || v->rank < 0)
            continue;
        int64_t k = (int64_t)hone_dtype_size(v->dtype);
        for (int d = 0; d < v->rank && k > 0; d++)
            k = v->dims[d] < 0 ? 0 : (v->dims[d] && k > INT64_MAX / v->dims[d]) ? INT64_MAX : k * v->dims[d];
        total = total > INT64_MAX - k ? INT64_MAX : total + k;
    }
    return total;
}

/* Bytes of every intermediate alive now plus `extra`, checked against
 * ctx->limits.max_memory (before a node runs, extra = its planned outputs). */
static hone_status check_memory(hone_ctx *ctx, const hone_graph *g, hone_tensor **vals,
                                const hone_node *n, int64_t extra)
{
    if (ctx->limits.max_memory <= 0)
        return HONE_OK;
    int64_t live = extra;
    for (int i = 0; i < g->n_values; i++)
        if (vals[i])
            live += (int64_t)hone_tensor_nbytes(vals[i]);
    if (live <= ctx->limits.max_memory)
        return HONE_OK;
    return hone_node_fail(ctx, n, HONE_ERR_LIMIT,
                          "intermediates take %lld bytes, above --max-memory %lld",
                          (long long)live, (long long)ctx->limits.max_memory);
}

hone_status hone_interp_run(hone_ctx *ctx, const hone_graph *g, const hone_tensor **inputs,
                            hone_tensor **outputs, const hone_interp_hooks *hooks)
{
    hone_tensor **vals = calloc((size_t)g->n_values + 1, sizeof *vals);
    int *last = last_uses(g);
    HONE_ASSERT(vals);
    hone_status st = HONE_OK;
    for (int i = 0; i < g->n_inputs && !st; i++) {
        st = hone_interp_check_input(ctx, g, g->inputs[i], inputs[i]);
        if (!st)
            vals[g->inputs[i]->id] = hone_tensor_clone(inputs[i]);
    }
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const hone_node *n = g->nodes[i];
        st = check_memory(ctx, g, vals, n, planned_bytes(n));
        if (!st)
            st = run_node(ctx, n, vals, hooks);
        if (!st)
            st = check_memory(ctx, g, vals, n, 0);
        for (int j = 0; j < n->n_in && !st; j++) {
            const hone_value *v = n->in[j];
            if (v && last[v->id] == i) {
                hone_tensor_free(vals[v->id]);
                vals[v->id] = NULL;
            }
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const hone_value *v = g->outputs[i];
        outputs[i] = NULL;
        if (st)
            continue;
        const hone_tensor *t = v->data ? v->data : vals[v->id];
        if (!t)
            st = hone_fail(ctx, HONE_ERR_INVALID, "graph output '%s' was not computed", v->name);
        else
            outputs[i] = hone_tensor_clone(t);
    }
    if (st)
        for (int i = 0; i < g->n_outputs; i++) {
            hone_tensor_free(outputs[i]);
            outputs[i] = NULL;
        }
    for (int i = 0; i < g->n_values; i++)
        hone_tensor_free(vals[i]);
    free(vals);
    free(last);
    return st;
}
