/*
 * remove-identity: drops nodes whose output provably equals their input:
 * Identity; Dropout in inference (training_mode absent or constant false, mask
 * unused); Reshape/Flatten/Squeeze/Unsqueeze/Expand whose output shape equals
 * the input shape dim by dim (numbers or the same symbol); Transpose with the
 * identity permutation; Cast to the input's own type; Pad with all-zero pads;
 * Slice with unit steps whose output shape equals the input shape (so every
 * axis is covered whole). Readers then read the input; a graph output keeps
 * its name (hone_pass_bypass), and a node that would need to rename a graph
 * input or another output stays.
 */
#include <string.h>

#include "passes.h"

#define MAX_PADS 64

static bool noop_identity(const hone_node *n)
{
    return true;
}

static bool noop_dropout(const hone_node *n)
{
    if (n->n_out > 1 && n->out[1] && n->out[1]->n_uses)
        return false;
    if (n->n_in < 3 || !n->in[2])
        return true;
    if (!hone_pass_is_const(n->in[2]) || n->in[2]->data->numel != 1)
        return false;
    return hone_tensor_get_i64(n->in[2]->data, 0) == 0;
}

static bool noop_view(const hone_node *n)
{
    return hone_pass_same_shape(n->in[0], n->out[0]);
}

static bool noop_transpose(const hone_node *n)
{
    const int64_t *perm;
    int k = hone_attr_ints(n, "perm", &perm);
    if (k < 0)
        return n->in[0]->rank >= 0 && n->in[0]->rank <= 1;
    for (int i = 0; i < k; i++)
        if (perm[i] != i)
            return false;
    return true;
}

static bool noop_cast(const hone_node *n)
{
    return n->in[0]->dtype != HONE_DT_UNDEF && hone_attr_int(n, "to", -1) == n->in[0]->dtype;
}

static bool all_zero(const int64_t *v, int k)
{
    for (int i = 0; i < k; i++)
        if (v[i])
            return false;
    return k >= 0;
}

static bool noop_pad(const hone_node *n)
{
    const int64_t *attr;
    int64_t pads[MAX_PADS];
    int k = hone_attr_ints(n, "pads", &attr);
    if (k >= 0)
        return all_zero(attr, k);
    return n->n_in > 1 && all_zero(pads, hone_pass_const_ints(n->in[1], pads, MAX_PADS));
}

static bool noop_slice(const hone_node *n)
{
    int64_t steps[HONE_MAX_RANK];
    if (n->n_in > 4 && n->in[4]) {
        int k = hone_pass_const_ints(n->in[4], steps, HONE_MAX_RANK);
        if (k < 0)
            return false;
        for (int i = 0; i < k; i++)
            if (steps[i] != 1)
                return false;
    }
    return hone_pass_same_shape(n->in[0], n->out[0]);
}

static const struct rule {
    const char *op;
    bool (*noop)(const hone_node *n);
} rules[] = {
    {"Identity", noop_identity}, {"Dropout", noop_dropout},     {"Reshape", noop_view},
    {"Flatten", noop_view},      {"Squeeze", noop_view},        {"Unsqueeze", noop_view},
    {"Expand", noop_view},       {"Transpose", noop_transpose}, {"Cast", noop_cast},
    {"Pad", noop_pad},           {"Slice", noop_slice},
};

/* The rule that proves n a no-op, or NULL. */
static const struct rule *noop_rule(const hone_node *n)
{
    if (!n->n_in || !n->in[0] || !n->n_out || !n->out[0])
        return NULL;
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++)
        if (hone_pass_is_op(n, rules[r].op))
            return rules[r].noop(n) ? &rules[r] : NULL;
    return NULL;
}

hone_status hone_pass_remove_identity(hone_pass_ctx *pc, hone_graph *g)
{
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes;) {
        hone_node *n = g->nodes[i];
        const struct rule *r = noop_rule(n);
        if (r && hone_pass_bypass(g, n, n->out[0], n->in[0])) {
            hone_pass_remove_node(g, n);
            hone_pass_note(pc, r->op, 1);
            continue;
        }
        i++;
    }
    return HONE_OK;
}
