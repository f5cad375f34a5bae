/*
 * The memory plan. Every value gets a location: graph inputs and outputs live
 * in the caller's buffers (no copies), constants and folded values in
 * embedded globals, and every other value in one workspace the caller passes.
 *
 * View ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout at
 * inference) produce no code: their output shares the bytes of their input,
 * so a chain of views is one storage class rooted at the first real value.
 * A Concat whose inputs are each one contiguous slice of its output (every dim
 * before the axis is 1) and are read by it alone (bk_concat_in_place) produces
 * no code either: its inputs join its output's class at their byte offsets, so
 * their producers write straight into it (SqueezeNet's Fire modules copied 5 MB
 * a run before), and the class lives from its first member's definition.
 * A class holding a graph output is placed in that output's buffer; when the
 * class is rooted at a graph input or constant, or holds a second output, the
 * output gets a copy at the end of the run instead.
 *
 * Workspace classes are live from the step that defines their root to the
 * last step that reads any member (output copies read at the final step).
 * Kernel scratch (im2col columns, accumulators) is one more buffer, live for
 * its node's step only. Offsets come from greedy placement: buffers taken in
 * some order, each put in a gap between the buffers already placed whose
 * live intervals overlap its own (the tightest gap, or the lowest), else on
 * top. Four orders (by size, by size x lifetime, by lifetime, and by breadth:
 * the busiest steps' buffers first) times two fit rules are tried and the
 * smallest plan kept; while that is above the lower bound, a local search swaps
 * two buffers of the best order at a time (seeded: the same plan on every compile)
 * and keeps orders that do no worse. The lower bound is the largest sum of buffers live at
 * one step; the report states both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static size_t align_up(size_t n)
{
    return (n + BK_ALIGN - 1) / BK_ALIGN * BK_ALIGN;
}

static int by_size_desc(const void *a, const void *b)
{
    const bk_buf *x = *(bk_buf *const *)a, *y = *(bk_buf *const *)b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

/* Larger size x lifetime first. */
static int by_area_desc(const void *a, const void *b)
{
    const bk_buf *x = *(bk_buf *const *)a, *y = *(bk_buf *const *)b;
    double ax = (double)x->size * (x->last - x->first + 1), ay = (double)y->size * (y->last - y->first + 1);
    return ax != ay ? (ax < ay ? 1 : -1) : by_size_desc(a, b);
}

/* Longer lifetime first, then larger. */
static int by_length_desc(const void *a, const void *b)
{
    const bk_buf *x = *(bk_buf *const *)a, *y = *(bk_buf *const *)b;
    int lx = x->last - x->first, ly = y->last - y->first;
    return lx != ly ? ly - lx : by_size_desc(a, b);
}

static int by_offset(const void *a, const void *b)
{
    const bk_buf *x = *(bk_buf *const *)a, *y = *(bk_buf *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static bool overlaps(const bk_buf *a, const bk_buf *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/* Offset for b among the placed buffers live with it: the tightest gap that
 * fits (best fit) or the lowest one (first fit), else on top of them. */
static size_t fit(const bk_buf *b, bk_buf **placed, int n_placed, bk_buf **tmp, bool best_fit)
{
    int k = 0;
    for (int i = 0; i < n_placed; i++)
        if (overlaps(b, placed[i]))
            tmp[k++] = placed[i];
    qsort(tmp, (size_t)k, sizeof *tmp, by_offset);
    size_t need = align_up(b->size), at = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
    for (int i = 0; i < k; i++) {
        if (tmp[i]->offset >= at + need && tmp[i]->offset - at < best_gap) {
            best_gap = best_fit ? tmp[i]->offset - at : 0;
            best = best == SIZE_MAX || best_fit ? at : best;
        }
        size_t end = tmp[i]->offset + align_up(tmp[i]->size);
        at = end > at ? end : at;
    }
    return best != SIZE_MAX ? best : at;
}

/* Places the buffers in the given order; returns the extent. */
static size_t place(bk_buf **order, int n, bool best_fit, bk_buf **tmp)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        order[i]->offset = order[i]->size ? fit(order[i], order, i, tmp, best_fit) : 0;
        size_t end = order[i]->offset + align_up(order[i]->size);
        total = end > total ? end : total;
    }
    return total;
}

/* Greedy by breadth: steps by decreasing live bytes, each step's unplaced
 * buffers largest first. */
static void breadth_order(bk_buf *bufs, int n, bk_buf **order)
{
    int steps = 0, k = 0;
    for (int i = 0; i < n; i++)
        steps = bufs[i].last + 1 > steps ? bufs[i].last + 1 : steps;
    size_t *live = calloc((size_t)steps + 1, sizeof *live);
    int *by_live = malloc(sizeof(int) * (size_t)(steps + 1));
    bool *taken = calloc((size_t)n + 1, 1);
    HONE_ASSERT(live && by_live && taken);
    for (int i = 0; i < n; i++)
        for (int s = bufs[i].first < 0 ? 0 : bufs[i].first; s <= bufs[i].last; s++)
            live[s] += align_up(bufs[i].size);
    for (int s = 0; s < steps; s++)
        by_live[s] = s;
    for (int a = 1; a < steps; a++)     /* insertion sort: steps are few */
        for (int b = a; b > 0 && live[by_live[b]] > live[by_live[b - 1]]; b--) {
            int t = by_live[b];
            by_live[b] = by_live[b - 1];
            by_live[b - 1] = t;
        }
    for (int si = 0; si < steps; si++) {
        int s = by_live[si], k0 = k;
        for (int i = 0; i < n; i++)
            if (!taken[i] && bufs[i].first <= s && s <= bufs[i].last) {
                taken[i] = true;
                order[k++] = &bufs[i];
            }
        qsort(order + k0, (size_t)(k - k0), sizeof *order, by_size_desc);
    }
    for (int i = 0; i < n; i++)
        if (!taken[i])
            order[k++] = &bufs[i];
    free(live);
    free(by_live);
    free(taken);
}

/* Random restarts after the fixed orders, while the plan is above the lower bound. */
#define PLAN_TRIES 2000

/* xorshift64: the perturbations are the same on every compile of a model. */
static uint64_t plan_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

size_t bk_plan_offsets(bk_buf *bufs, int n)
{
    static int (*const orders[])(const void *, const void *) = {by_size_desc, by_area_desc,
                                                                 by_length_desc, NULL};
    bk_buf **order = malloc(sizeof *order * (size_t)(n + 1));
    bk_buf **tmp = malloc(sizeof *tmp * (size_t)(n + 1));
    bk_buf **best_order = malloc(sizeof *best_order * (size_t)(n + 1));
    size_t *best_off = malloc(sizeof *best_off * (size_t)(n + 1)), best = SIZE_MAX;
    size_t bound = bk_plan_bound(bufs, n);
    bool best_bf = true;
    HONE_ASSERT(order && tmp && best_order && best_off);
    for (int o = 0; o < 4; o++)
        for (int bf = 0; bf < 2; bf++) {
            for (int i = 0; i < n; i++)
                order[i] = &bufs[i];
            if (orders[o])
                qsort(order, (size_t)n, sizeof *order, orders[o]);
            else
                breadth_order(bufs, n, order);
            size_t total = place(order, n, bf == 0, tmp);
            if (total < best) {
                best = total;
                best_bf = bf == 0;
                memcpy(best_order, order, sizeof *order * (size_t)n);
                for (int i = 0; i < n; i++)
                    best_off[i] = bufs[i].offset;
            }
        }
    /* Then a local search: the best order with two buffers swapped, kept when the
     * plan is no larger (greedy fits can leave holes a different order avoids). */
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < PLAN_TRIES && best > bound && n > 1; t++) {
        memcpy(order, best_order, sizeof *order * (size_t)n);
        int a = (int)(plan_rand(&seed) % (uint64_t)n), b = (int)(plan_rand(&seed) % (uint64_t)n);
        bk_buf *x = order[a];
        order[a] = order[b];
        order[b] = x;
        size_t total = place(order, n, best_bf, tmp);
        if (total <= best) {
            best = total;
            memcpy(best_order, order, sizeof *order * (size_t)n);
            for (int i = 0; i < n; i++)
                best_off[i] = bufs[i].offset;
        }
    }
    for (int i = 0; i < n; i++)
        bufs[i].offset = best_off[i];
    free(order);
    free(tmp);
    free(best_order);
    free(best_off);
    return n ? best : 0;
}

size_t bk_plan_bound(const bk_buf *bufs, int n)
{
    int steps = 0;
    for (int i = 0; i < n; i++)
        steps = bufs[i].last + 1 > steps ? bufs[i].last + 1 : steps;
    size_t *live = calloc((size_t)steps + 1, sizeof *live), best = 0;
    HONE_ASSERT(live);
    for (int i = 0; i < n; i++)
        for (int s = bufs[i].first < 0 ? 0 : bufs[i].first; s <= bufs[i].last; s++)
            live[s] += align_up(bufs[i].size);
    for (int s = 0; s < steps; s++)
        best = live[s] > best ? live[s] : best;
    free(live);
    return best;
}

/* ---- storage classes of a model ---- */

typedef struct planner {
    const bk_model *m;
    bk_plan *p;
    int *root;      /* per value id: root of its view class */
    int *def;       /* per value id: defining step, -1 for inputs and constants */
    int *last;      /* per value id (roots): last step reading the class */
    int *out_of;    /* per value id (roots): graph output holding the class, -1 */
    size_t *off;    /* per value id: byte offset inside its parent (in-place Concat inputs) */
} planner;

static int find_root(planner *pl, int id)
{
    while (pl->root[id] != id)
        id = pl->root[id];
    return id;
}

/* Byte offset of value id inside its class's root. */
static size_t root_offset(planner *pl, int id)
{
    size_t o = 0;
    for (; pl->root[id] != id; id = pl->root[id])
        o += pl->off[id];
    return o;
}

/* Links view outputs to their inputs and records definition steps. */
static void link_views(planner *pl)
{
    const bk_model *m = pl->m;
    for (int s = 0; s < m->n_sched; s++) {
        const hone_node *n = m->sched[s];
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i])
                pl->def[n->out[i]->id] = s;
        if (bk_is_view(n) && n->out[0] && n->in[0]) {
            pl->root[n->out[0]->id] = find_root(pl, n->in[0]->id);
            pl->off[n->out[0]->id] = root_offset(pl, n->in[0]->id);
            pl->p->n_views++;
        }
        if (bk_concat_in_place(m, n)) { /* each input a slice of the output */
            size_t at = 0;
            for (int i = 0; i < n->n_in; i++) {
                pl->root[n->in[i]->id] = n->out[0]->id;
                pl->off[n->in[i]->id] = at;
                at += bk_bytes(n->in[i]);
            }
            pl->p->n_views++;
        }
    }
}

/* First step defining a member of each class (a root's own step, or an earlier in-place
 * Concat input's). */
static void class_defs(planner *pl)
{
    for (int v = 0; v < pl->m->g->n_values; v++) {
        int r = find_root(pl, v);
        if (r != v && pl->def[v] >= 0 && (pl->def[r] < 0 || pl->def[v] < pl->def[r]))
            pl->def[r] = pl->def[v];
    }
}

/* Where a root lives before outputs are considered. */
static bk_loc base_loc(const planner *pl, const hone_value *v)
{
    bk_loc l = {BK_LOC_WS, -1, 0, v->id};
    if (bk_known(pl->m, v))
        l.kind = BK_LOC_CONST;
    for (int i = 0; i < pl->m->g->n_inputs; i++)
        if (pl->m->g->inputs[i] == v)
            l = (bk_loc){BK_LOC_INPUT, i, 0, v->id};
    return l;
}

/* Graph outputs: a workspace class takes the first output that holds it;
 * every other output is copied in at the end. */
static void place_outputs(planner *pl)
{
    const hone_graph *g = pl->m->g;
    int end = pl->m->n_sched;
    for (int j = 0; j < g->n_outputs; j++) {
        int v = g->outputs[j]->id, r = find_root(pl, v);
        bk_loc *l = &pl->p->loc[r];
        if (l->kind == BK_LOC_WS && pl->out_of[r] < 0) {
            pl->out_of[r] = j;
            *l = (bk_loc){BK_LOC_OUTPUT, j, 0, r};
        } else {
            pl->p->out_copy[j] = v;
            pl->last[r] = end;
        }
    }
}

/* Last step reading each class. */
static void liveness(planner *pl)
{
    const bk_model *m = pl->m;
    for (int s = 0; s < m->n_sched; s++) {
        const hone_node *n = m->sched[s];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i]) {
                int r = find_root(pl, n->in[i]->id);
                pl->last[r] = s > pl->last[r] ? s : pl->last[r];
            }
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i]) {
                int r = find_root(pl, n->out[i]->id);
                pl->last[r] = s > pl->last[r] ? s : pl->last[r];
            }
    }
}

/* The interval buffers: workspace classes, then per-step scratch. */
static hone_status place_workspace(hone_ctx *ctx, planner *pl)
{
    const bk_model *m = pl->m;
    int nv = m->g->n_values, n = 0;
    bk_buf *bufs = calloc((size_t)(nv + m->n_sched + 1), sizeof *bufs);
    int *owner = calloc((size_t)(nv + m->n_sched + 1), sizeof *owner);
    HONE_ASSERT(bufs && owner);
    for (int v = 0; v < nv; v++)
        if (pl->root[v] == v && pl->p->loc[v].kind == BK_LOC_WS && pl->def[v] >= 0) {
            owner[n] = v;
            bufs[n++] = (bk_buf){bk_bytes(m->g->values[v]), pl->def[v], pl->last[v], 0};
        }
    for (int s = 0; s < m->n_sched; s++)
        if (pl->p->scratch_size[s]) {
            owner[n] = -1 - s;
            bufs[n++] = (bk_buf){pl->p->scratch_size[s], s, s, 0};
        }
    pl->p->workspace = bk_plan_offsets(bufs, n);
    pl->p->bound = bk_plan_bound(bufs, n);
    for (int i = 0; i < n; i++)
        if (owner[i] >= 0)
            pl->p->loc[owner[i]].offset = bufs[i].offset;
        else
            pl->p->scratch_off[-1 - owner[i]] = bufs[i].offset;
    free(bufs);
    free(owner);
    return HONE_OK;
}

/* Kernel scratch of every step, from the rule table. */
static void scratch_sizes(planner *pl)
{
    for (int s = 0; s < pl->m->n_sched; s++) {
        const bk_rule *r = bk_rule_find(pl->m->sched[s]);
        pl->p->scratch_size[s] = r && r->scratch ? r->scratch(pl->m, pl->m->sched[s]) : 0;
    }
}

hone_status bk_plan_model(hone_ctx *ctx, const bk_model *m, bk_plan *p)
{
    int nv = m->g->n_values, ns = m->n_sched;
    memset(p, 0, sizeof *p);
    p->loc = calloc((size_t)nv + 1, sizeof *p->loc);
    p->scratch_off = calloc((size_t)ns + 1, sizeof *p->scratch_off);
    p->scratch_size = calloc((size_t)ns + 1, sizeof *p->scratch_size);
    p->out_copy = malloc(sizeof *p->out_copy * (size_t)(m->g->n_outputs + 1));
    planner pl = {m, p, malloc(sizeof(int) * (size_t)(nv + 1)), malloc(sizeof(int) * (size_t)(nv + 1)),
                  malloc(sizeof(int) * (size_t)(nv + 1)), malloc(sizeof(int) * (size_t)(nv + 1)),
                  calloc((size_t)nv + 1, sizeof(size_t))};
    HONE_ASSERT(p->loc && p->scratch_off && p->scratch_size && p->out_copy && pl.root && pl.def &&
                pl.last && pl.out_of && pl.off);
    for (int v = 0; v < nv; v++) {
        pl.root[v] = v;
        pl.def[v] = pl.last[v] = pl.out_of[v] = -1;
    }
    for (int j = 0; j < m->g->n_outputs; j++)
        p->out_copy[j] = -1;
    link_views(&pl);
    class_defs(&pl);
    for (int v = 0; v < nv; v++)
        if (pl.root[v] == v)
            p->loc[v] = base_loc(&pl, m->g->values[v]);
    liveness(&pl);
    place_outputs(&pl);
    scratch_sizes(&pl);
    hone_status st = place_workspace(ctx, &pl);
    for (int v = 0; v < nv; v++) {
        size_t o = root_offset(&pl, v);
        p->loc[v] = p->loc[find_root(&pl, v)];
        p->loc[v].offset += o;
    }
    free(pl.off);
    free(pl.root);
    free(pl.def);
    free(pl.last);
    free(pl.out_of);
    return st;
}

void bk_plan_free(bk_plan *p)
{
    free(p->loc);
    free(p->scratch_off);
    free(p->scratch_size);
    free(p->out_copy);
    memset(p, 0, sizeof *p);
}

hone_status hone_backend_plan(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                              size_t *workspace, size_t *bound)
{
    bk_model m = {0};
    bk_plan p = {0};
    hone_status st = bk_model_prepare(ctx, g, o, &m);
    if (!st)
        st = bk_plan_model(ctx, &m, &p);
    if (!st) {
        *workspace = p.workspace;
        *bound = p.bound;
    }
    bk_plan_free(&p);
    bk_model_free(&m);
    return st;
}
