/*
 * The graph: values and nodes in topological order, a name index, symbolic
 * dimension names and model metadata. Nodes, names and attributes live in the
 * graph's arena; constant tensors are owned by their value and freed with the
 * graph. Editing helpers (replace uses, dead-node removal, topological sort)
 * are what passes build on.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* ---- name -> value index: open addressing, power-of-two capacity ---- */

typedef struct hone_strmap {
    const char **keys;
    hone_value **vals;
    size_t cap, n;
} hone_strmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void map_put(hone_strmap *m, const char *k, hone_value *v);

static void map_grow(hone_strmap *m)
{
    hone_strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    HONE_ASSERT(m->keys && m->vals);
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            map_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

static void map_put(hone_strmap *m, const char *k, hone_value *v)
{
    if ((m->n + 1) * 2 > m->cap)
        map_grow(m);
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], k))
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
}

static hone_value *map_get(const hone_strmap *m, const char *k)
{
    if (!m->cap)
        return NULL;
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], k))
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- growable pointer arrays ---- */

static void *grow(void *arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return arr;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *p = realloc(arr, (size_t)nc * elem);
    HONE_ASSERT(p);
    *cap = nc;
    return p;
}

hone_graph *hone_graph_new(void)
{
    hone_graph *g = calloc(1, sizeof *g);
    HONE_ASSERT(g);
    g->arena = hone_arena_new();
    g->by_name = calloc(1, sizeof *g->by_name);
    HONE_ASSERT(g->by_name);
    g->name = "main";
    return g;
}

static void free_attr_tensors(hone_node *n)
{
    for (int i = 0; i < n->n_attr; i++)
        hone_tensor_free(n->attrs[i].t);
}

void hone_graph_free(hone_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++)
        hone_tensor_free(g->values[i]->data);
    for (int i = 0; i < g->n_nodes; i++)
        free_attr_tensors(g->nodes[i]);
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->syms);
    free(g->by_name->keys);
    free(g->by_name->vals);
    free(g->by_name);
    hone_arena_free(g->arena);
    free(g);
}

hone_value *hone_graph_find(const hone_graph *g, const char *name)
{
    return name ? map_get(g->by_name, name) : NULL;
}

hone_value *hone_graph_new_value(hone_graph *g, const char *name)
{
    const char *nm = name;
    while (!nm || !*nm || map_get(g->by_name, nm))
        nm = hone_arena_printf(g->arena, "%s_%d", name && *name ? name : "v", g->fresh++);
    hone_value *v = hone_arena_alloc(g->arena, sizeof *v);
    v->name = nm == name ? hone_arena_strdup(g->arena, nm) : nm;
    v->rank = -1;
    v->id = g->n_values;
    g->values = grow(g->values, &g->cap_values, g->n_values + 1, sizeof *g->values);
    g->values[g->n_values++] = v;
    map_put(g->by_name, v->name, v);
    return v;
}

void hone_value_set_data(hone_value *v, hone_tensor *t)
{
    if (v->data && v->data != t)
        hone_tensor_free(v->data);
    v->data = t;
    v->flags |= HONE_VAL_CONST;
    v->dtype = t->dtype;
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof v->dims);
}

hone_node *hone_graph_add_node(hone_graph *g, const char *op_type, const char *domain,
                               const char *name, int n_in, int n_out)
{
    hone_node *n = hone_arena_alloc(g->arena, sizeof *n);
    n->op_type = hone_arena_strdup(g->arena, op_type);
    n->domain = hone_arena_strdup(g->arena, domain && strcmp(domain, "ai.onnx") ? domain : "");
    n->name = name && *name ? hone_arena_strdup(g->arena, name)
                            : hone_arena_printf(g->arena, "%s_%d", op_type, g->fresh++);
    n->op = hone_op_lookup(n->domain, n->op_type);
    n->opset = (int)hone_graph_opset(g, n->domain);
    n->n_in = n_in;
    n->n_out = n_out;
    n->in = hone_arena_alloc(g->arena, sizeof(hone_value *) * (size_t)(n_in + 1));
    n->out = hone_arena_alloc(g->arena, sizeof(hone_value *) * (size_t)(n_out + 1));
    g->nodes = grow(g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes);
    n->id = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return n;
}

void hone_graph_insert_node(hone_graph *g, hone_node *n, int pos)
{
    int at = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == n)
            at = i;
    HONE_ASSERT(at >= 0 && pos >= 0 && pos <= g->n_nodes);
    memmove(&g->nodes[at], &g->nodes[at + 1], sizeof(hone_node *) * (size_t)(g->n_nodes - at - 1));
    if (pos > at)
        pos--;
    memmove(&g->nodes[pos + 1], &g->nodes[pos], sizeof(hone_node *) * (size_t)(g->n_nodes - 1 - pos));
    g->nodes[pos] = n;
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i]->id = i;
}

void hone_graph_add_input(hone_graph *g, hone_value *v)
{
    g->inputs = grow(g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof *g->inputs);
    g->inputs[g->n_inputs++] = v;
    v->flags |= HONE_VAL_INPUT;
}

void hone_graph_add_output(hone_graph *g, hone_value *v)
{
    g->outputs = grow(g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof *g->outputs);
    g->outputs[g->n_outputs++] = v;
    v->flags |= HONE_VAL_OUTPUT;
}

int hone_graph_sym(hone_graph *g, const char *name)
{
    for (int i = 0; i < g->n_syms; i++)
        if (!strcmp(g->syms[i], name))
            return i;
    g->syms = grow(g->syms, &g->cap_syms, g->n_syms + 1, sizeof *g->syms);
    g->syms[g->n_syms] = hone_arena_strdup(g->arena, name);
    return g->n_syms++;
}

int64_t hone_graph_opset(const hone_graph *g, const char *domain)
{
    const char *d = domain && strcmp(domain, "ai.onnx") ? domain : "";
    for (int i = 0; i < g->n_opsets; i++) {
        const char *od = strcmp(g->opsets[i].domain, "ai.onnx") ? g->opsets[i].domain : "";
        if (!strcmp(od, d))
            return g->opsets[i].version;
    }
    return 0;
}

/* ---- attributes ---- */

hone_attr *hone_node_add_attr(hone_graph *g, hone_node *n, const char *name, hone_attr_kind k)
{
    for (int i = 0; i < n->n_attr; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            hone_tensor_free(n->attrs[i].t);
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = hone_arena_strdup(g->arena, name);
            n->attrs[i].kind = k;
            return &n->attrs[i];
        }
    hone_attr *a = hone_arena_alloc(g->arena, sizeof *a * (size_t)(n->n_attr + 1));
    if (n->n_attr)
        memcpy(a, n->attrs, sizeof *a * (size_t)n->n_attr);
    n->attrs = a;
    a = &n->attrs[n->n_attr++];
    a->name = hone_arena_strdup(g->arena, name);
    a->kind = k;
    return a;
}

void hone_node_set_attr_int(hone_graph *g, hone_node *n, const char *name, int64_t v)
{
    hone_node_add_attr(g, n, name, HONE_ATTR_INT)->i = v;
}

void hone_node_set_attr_float(hone_graph *g, hone_node *n, const char *name, float v)
{
    hone_node_add_attr(g, n, name, HONE_ATTR_FLOAT)->f = v;
}

void hone_node_set_attr_ints(hone_graph *g, hone_node *n, const char *name, const int64_t *v, int cnt)
{
    hone_attr *a = hone_node_add_attr(g, n, name, HONE_ATTR_INTS);
    a->n = cnt;
    a->ints = hone_arena_alloc(g->arena, sizeof(int64_t) * (size_t)(cnt + 1));
    if (cnt)
        memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}

void hone_node_set_attr_string(hone_graph *g, hone_node *n, const char *name, const char *s)
{
    hone_attr *a = hone_node_add_attr(g, n, name, HONE_ATTR_STRING);
    a->s = hone_arena_strdup(g->arena, s);
    a->s_len = strlen(s);
}

/* ---- structure ---- */

void hone_graph_update_uses(hone_graph *g)
{
    for (int i = 0; i < g->n_values; i++) {
        g->values[i]->n_uses = 0;
        g->values[i]->producer = NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        hone_node *n = g->nodes[i];
        n->id = i;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j])
                n->in[j]->n_uses++;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j])
                n->out[j]->producer = n;
    }
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i]->n_uses++;
}

/* Consumers of each value as a CSR list: for value v, cons[off[v]..off[v+1]). */
static void build_consumers(const hone_graph *g, int **off_out, int **cons_out)
{
    int *off = calloc((size_t)g->n_values + 2, sizeof *off);
    HONE_ASSERT(off);
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                off[g->nodes[i]->in[j]->id + 1]++;
    for (int v = 0; v < g->n_values; v++)
        off[v + 1] += off[v];
    int *fill = malloc(sizeof *fill * ((size_t)g->n_values + 1));
    int *cons = malloc(sizeof *cons * ((size_t)off[g->n_values] + 1));
    HONE_ASSERT(fill && cons);
    memcpy(fill, off, sizeof *fill * (size_t)g->n_values);
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                cons[fill[g->nodes[i]->in[j]->id]++] = i;
    free(fill);
    *off_out = off;
    *cons_out = cons;
}

/* A node on a cycle: walk unscheduled producers from an unscheduled node until one repeats. */
static const hone_node *on_cycle(const hone_graph *g, const char *done)
{
    int i = 0;
    while (done[i])
        i++;
    char *seen = calloc((size_t)g->n_nodes + 1, 1);
    HONE_ASSERT(seen);
    while (!seen[i]) {
        seen[i] = 1;
        const hone_node *n = g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] && n->in[j]->producer && !done[n->in[j]->producer->id]) {
                i = n->in[j]->producer->id;
                break;
            }
    }
    free(seen);
    return g->nodes[i];
}

/* Kahn's algorithm; a min-index ready queue keeps the original order stable. */
hone_status hone_graph_toposort(hone_ctx *ctx, hone_graph *g)
{
    hone_graph_update_uses(g);
    int n = g->n_nodes, *off, *cons;
    build_consumers(g, &off, &cons);
    int *pending = calloc((size_t)n + 1, sizeof *pending);
    hone_node **order = malloc(sizeof *order * ((size_t)n + 1));
    char *ready = calloc((size_t)n + 1, 1), *done = calloc((size_t)n + 1, 1);
    HONE_ASSERT(pending && order && ready && done);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++) {
            hone_value *v = g->nodes[i]->in[j];
            if (v && v->producer)
                pending[i]++;
        }
    int k = 0, scan = 0;
    for (int i = 0; i < n; i++)
        ready[i] = pending[i] == 0;
    while (k < n) {
        while (scan < n && (!ready[scan] || done[scan]))
            scan++;
        if (scan == n)
            break;
        hone_node *nd = g->nodes[scan];
        done[scan] = 1;
        order[k++] = nd;
        int lowest = n;
        for (int o = 0; o < nd->n_out; o++) {
            if (!nd->out[o])
                continue;
            int v = nd->out[o]->id;
            for (int c = off[v]; c < off[v + 1]; c++)
                if (--pending[cons[c]] == 0) {
                    ready[cons[c]] = 1;
                    lowest = cons[c] < lowest ? cons[c] : lowest;
                }
        }
        if (lowest < scan)
            scan = lowest;
    }
    hone_status st = HONE_OK;
    if (k < n) {
        const hone_node *c = on_cycle(g, done);
        st = hone_fail(ctx, HONE_ERR_INVALID, "graph has a cycle through node '%s' (%s)",
                       c->name, c->op_type);
    } else if (n) {
        memcpy(g->nodes, order, sizeof *order * (size_t)n);
        for (int i = 0; i < n; i++)
            g->nodes[i]->id = i;
    }
    free(pending);
    free(order);
    free(ready);
    free(done);
    free(off);
    free(cons);
    return st;
}

int hone_graph_remove_dead(hone_graph *g)
{
    int removed = 0, changed = 1;
    while (changed) {
        changed = 0;
        hone_graph_update_uses(g);
        int k = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            hone_node *n = g->nodes[i];
            int used = 0;
            for (int j = 0; j < n->n_out; j++)
                used |= n->out[j] && n->out[j]->n_uses > 0;
            if (used) {
                g->nodes[k++] = n;
            } else {
                free_attr_tensors(n);
                n->n_attr = 0;
                removed++;
                changed = 1;
            }
        }
        g->n_nodes = k;
    }
    hone_graph_update_uses(g);
    /* Drop constants and values nobody references (inputs and outputs stay). */
    int k = 0;
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i];
        if (v->n_uses || v->producer || (v->flags & (HONE_VAL_INPUT | HONE_VAL_OUTPUT))) {
            v->id = k;
            g->values[k++] = v;
        } else {
            hone_tensor_free(v->data);
            v->data = NULL;
            map_put(g->by_name, v->name, NULL);
        }
    }
    g->n_values = k;
    return removed;
}

/* Base-36 digits of k (at least one) into buf. */
static const char *base36(char *buf, unsigned long k)
{
    char tmp[16];
    int n = 0;
    do
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[k % 36];
    while ((k /= 36) && n < 15);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return buf;
}

void hone_graph_strip_names(hone_graph *g)
{
    const int keep = HONE_VAL_INPUT | HONE_VAL_OUTPUT;
    for (int i = 0; i < g->n_values; i++)
        if (!(g->values[i]->flags & keep))
            map_put(g->by_name, g->values[i]->name, NULL);
    unsigned long k = 0;
    char buf[16];
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i];
        if (v->flags & keep)
            continue;
        while (map_get(g->by_name, base36(buf, k)))   /* an input or output has it */
            k++;
        v->name = hone_arena_strdup(g->arena, buf);
        map_put(g->by_name, v->name, v);
        k++;
    }
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i]->name = "";
    g->doc = NULL;
}

void hone_graph_replace_uses(hone_graph *g, hone_value *from, hone_value *to)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j] == from)
                g->nodes[i]->in[j] = to;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) {
            g->outputs[i] = to;
            to->flags |= HONE_VAL_OUTPUT;
            from->flags &= ~HONE_VAL_OUTPUT;
        }
}

/* ---- deep copy ---- */

static hone_value *clone_value(hone_graph *c, const hone_value *v)
{
    hone_value *nv = hone_graph_find(c, v->name);
    if (nv)
        return nv;
    nv = hone_graph_new_value(c, v->name);
    nv->dtype = v->dtype;
    nv->rank = v->rank;
    memcpy(nv->dims, v->dims, sizeof nv->dims);
    nv->flags = v->flags & HONE_VAL_CONST;
    if (v->data)
        nv->data = hone_tensor_clone(v->data);
    return nv;
}

static void clone_attrs(hone_graph *c, hone_node *nn, const hone_node *n)
{
    nn->n_attr = n->n_attr;
    nn->attrs = hone_arena_alloc(c->arena, sizeof *nn->attrs * (size_t)(n->n_attr + 1));
    for (int a = 0; a < n->n_attr; a++) {
        hone_attr *d = &nn->attrs[a];
        const hone_attr *s = &n->attrs[a];
        *d = *s;
        d->name = hone_arena_strdup(c->arena, s->name);
        if (s->s)
            d->s = hone_arena_strndup(c->arena, s->s, s->s_len);
        if (s->floats) {
            d->floats = hone_arena_alloc(c->arena, sizeof(float) * (size_t)(s->n + 1));
            memcpy(d->floats, s->floats, sizeof(float) * (size_t)s->n);
        }
        if (s->ints) {
            d->ints = hone_arena_alloc(c->arena, sizeof(int64_t) * (size_t)(s->n + 1));
            memcpy(d->ints, s->ints, sizeof(int64_t) * (size_t)s->n);
        }
        if (s->strings) {
            d->strings = hone_arena_alloc(c->arena, sizeof(char *) * (size_t)(s->n + 1));
            for (int k = 0; k < s->n; k++)
                d->strings[k] = hone_arena_strdup(c->arena, s->strings[k]);
        }
        if (s->t)
            d->t = hone_tensor_clone(s->t);
    }
}

hone_graph *hone_graph_clone(const hone_graph *g)
{
    hone_graph *c = hone_graph_new();
    c->name = hone_arena_strdup(c->arena, g->name);
    c->doc = hone_arena_strdup(c->arena, g->doc);
    c->ir_version = g->ir_version;
    c->model_version = g->model_version;
    c->producer_name = hone_arena_strdup(c->arena, g->producer_name);
    c->producer_version = hone_arena_strdup(c->arena, g->producer_version);
    c->n_opsets = g->n_opsets;
    c->opsets = hone_arena_alloc(c->arena, sizeof *c->opsets * (size_t)(g->n_opsets + 1));
    for (int i = 0; i < g->n_opsets; i++) {
        c->opsets[i].domain = hone_arena_strdup(c->arena, g->opsets[i].domain);
        c->opsets[i].version = g->opsets[i].version;
    }
    for (int i = 0; i < g->n_syms; i++)
        hone_graph_sym(c, g->syms[i]);
    for (int i = 0; i < g->n_values; i++)
        clone_value(c, g->values[i]);
    for (int i = 0; i < g->n_inputs; i++)
        hone_graph_add_input(c, clone_value(c, g->inputs[i]));
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *n = g->nodes[i];
        hone_node *nn = hone_graph_add_node(c, n->op_type, n->domain, n->name, n->n_in, n->n_out);
        nn->opset = n->opset;
        for (int j = 0; j < n->n_in; j++)
            nn->in[j] = n->in[j] ? clone_value(c, n->in[j]) : NULL;
        for (int j = 0; j < n->n_out; j++)
            nn->out[j] = n->out[j] ? clone_value(c, n->out[j]) : NULL;
        clone_attrs(c, nn, n);
    }
    for (int i = 0; i < g->n_outputs; i++)
        hone_graph_add_output(c, clone_value(c, g->outputs[i]));
    c->fresh = g->fresh;
    hone_graph_update_uses(c);
    return c;
}
