/*
 * cse: common subexpression elimination. Two nodes with the same op, the same
 * input values and equal attributes compute the same thing, so readers of the
 * later one read the earlier one and the later one goes. Constants with equal
 * type, shape and bytes merge first, which makes more nodes equal. One walk in
 * topological order finds chains: once a node's inputs are merged, its own
 * duplicates compare equal. Random ops and nodes with graph attributes are
 * never merged; a duplicate that produces a graph output merges only when
 * the name can be kept (hone_pass_bypass).
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static bool tensors_equal(const hone_tensor *a, const hone_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank ||
        memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank))
        return false;
    if (a->dtype != HONE_DT_STRING)
        return !memcmp(a->data, b->data, hone_tensor_nbytes(a));
    for (int64_t i = 0; i < a->numel; i++) {
        const char *x = ((char **)a->data)[i], *y = ((char **)b->data)[i];
        if ((x || y) && (!x || !y || strcmp(x, y)))
            return false;
    }
    return true;
}

static bool attr_equal(const hone_attr *a, const hone_attr *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case HONE_ATTR_INT: return a->i == b->i;
    case HONE_ATTR_FLOAT: return a->f == b->f;
    case HONE_ATTR_STRING: return a->s_len == b->s_len && !memcmp(a->s, b->s, a->s_len);
    case HONE_ATTR_INTS:
        return a->n == b->n && !memcmp(a->ints, b->ints, sizeof *a->ints * (size_t)a->n);
    case HONE_ATTR_FLOATS:
        return a->n == b->n && !memcmp(a->floats, b->floats, sizeof *a->floats * (size_t)a->n);
    case HONE_ATTR_STRINGS:
        for (int i = 0; a->n == b->n && i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i]))
                return false;
        return a->n == b->n;
    case HONE_ATTR_TENSOR: return a->t && b->t && tensors_equal(a->t, b->t);
    default: return false; /* subgraphs are never compared */
    }
}

static bool nodes_equal(const hone_node *a, const hone_node *b)
{
    if (strcmp(a->op_type, b->op_type) || strcmp(a->domain, b->domain) || a->n_in != b->n_in ||
        a->n_out != b->n_out || a->n_attr != b->n_attr || a->opset != b->opset)
        return false;
    for (int j = 0; j < a->n_in; j++)
        if (a->in[j] != b->in[j])
            return false;
    for (int k = 0; k < a->n_attr; k++) {
        const hone_attr *o = hone_attr_find(b, a->attrs[k].name);
        if (!o || !attr_equal(&a->attrs[k], o))
            return false;
    }
    return true;
}

static bool mergeable(const hone_node *n)
{
    if (hone_pass_is_random(n) || !n->n_out)
        return false;
    for (int k = 0; k < n->n_attr; k++)
        if (n->attrs[k].kind == HONE_ATTR_GRAPH || n->attrs[k].kind == HONE_ATTR_GRAPHS)
            return false;
    return true;
}

static uint64_t node_hash(const hone_node *n)
{
    uint64_t h = fnv(1469598103934665603ull, n->op_type, strlen(n->op_type));
    for (int j = 0; j < n->n_in; j++) {
        int id = n->in[j] ? n->in[j]->id : -1;
        h = fnv(h, &id, sizeof id);
    }
    return fnv(h, &n->n_attr, sizeof n->n_attr);
}

static uint64_t const_hash(const hone_tensor *t)
{
    uint64_t h = fnv(1469598103934665603ull, &t->dtype, sizeof t->dtype);
    h = fnv(h, t->dims, sizeof(int64_t) * (size_t)t->rank);
    return t->dtype == HONE_DT_STRING ? h : fnv(h, t->data, hone_tensor_nbytes(t));
}

/* Open-addressing set of earlier items by hash; equality decided by the caller. */
typedef struct table {
    void **item;
    uint64_t *hash;
    size_t cap;
} table;

static table table_new(int n)
{
    table t = {NULL, NULL, 16};
    while (t.cap < 2 * (size_t)n + 2)
        t.cap *= 2;
    t.item = calloc(t.cap, sizeof *t.item);
    t.hash = calloc(t.cap, sizeof *t.hash);
    HONE_ASSERT(t.item && t.hash);
    return t;
}

/* The earlier item equal to x (by eq), or NULL after inserting x. */
static void *find_or_add(table *t, void *x, uint64_t h, bool (*eq)(const void *, const void *))
{
    size_t i = h & (t->cap - 1);
    for (; t->item[i]; i = (i + 1) & (t->cap - 1))
        if (t->hash[i] == h && eq(t->item[i], x))
            return t->item[i];
    t->item[i] = x;
    t->hash[i] = h;
    return NULL;
}

static void table_free(table *t)
{
    free(t->item);
    free(t->hash);
}

static bool node_eq(const void *a, const void *b)
{
    return nodes_equal(a, b);
}

static bool const_eq(const void *a, const void *b)
{
    return tensors_equal(((const hone_value *)a)->data, ((const hone_value *)b)->data);
}

static int merge_constants(hone_graph *g)
{
    table t = table_new(g->n_values);
    int merged = 0;
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i];
        if (!hone_pass_is_const(v) || !v->n_uses || (v->flags & (HONE_VAL_INPUT | HONE_VAL_OUTPUT)))
            continue;
        hone_value *first = find_or_add(&t, v, const_hash(v->data), const_eq);
        if (first) {
            hone_graph_replace_uses(g, v, first);
            merged++;
        }
    }
    table_free(&t);
    hone_graph_update_uses(g);
    return merged;
}

/* True when every output of dup can be redirected to the same output of first. */
static bool can_redirect(const hone_node *dup, const hone_node *first)
{
    for (int j = 0; j < dup->n_out; j++) {
        const hone_value *o = dup->out[j], *f = first->out[j];
        if (o && (!f || ((o->flags & HONE_VAL_OUTPUT) && (f->flags & HONE_VAL_OUTPUT))))
            return false;
    }
    return true;
}

static void redirect(hone_graph *g, hone_node *dup, hone_node *first)
{
    for (int j = 0; j < dup->n_out; j++)
        if (dup->out[j]) {
            bool ok = hone_pass_bypass(g, dup, dup->out[j], first->out[j]);
            HONE_ASSERT(ok); /* can_redirect checked it */
        }
    hone_pass_remove_node(g, dup);
}

hone_status hone_pass_cse(hone_pass_ctx *pc, hone_graph *g)
{
    hone_graph_update_uses(g);
    if (hone_pass_opt_bool(pc, "constants"))
        hone_pass_note(pc, "constants merged", merge_constants(g));
    table t = table_new(g->n_nodes);
    for (int i = 0; i < g->n_nodes;) {
        hone_node *n = g->nodes[i];
        hone_node *first = mergeable(n) ? find_or_add(&t, n, node_hash(n), node_eq) : NULL;
        if (first && first != n && can_redirect(n, first)) {
            redirect(g, n, first);
            hone_pass_note(pc, "nodes merged", 1);
            continue;
        }
        i++;
    }
    table_free(&t);
    return HONE_OK;
}
