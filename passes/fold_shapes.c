/*
 * fold-shapes: shape arithmetic over symbolic dims. PyTorch exports compute
 * reshape targets at run time (x.view(x.size(0), -1) becomes Shape -> Gather
 * -> Unsqueeze -> Concat -> Reshape); with a symbolic batch N nothing there is
 * constant, so fold-constants cannot remove it. This pass tracks small
 * integer vectors whose elements are numbers or symbolic products
 * (symdim.c) through Shape, Gather, Slice, Concat, Unsqueeze, Squeeze, Cast,
 * Identity, Mul and Div:
 *   - a vector that turns out fully numeric becomes a constant;
 *   - a Reshape whose target is fully described gets a constant target: an
 *     entry equal to the input's dim at the same place becomes 0 (copy), one
 *     remaining symbolic entry becomes -1, after resolving an existing -1
 *     from the element count;
 *   - Reshape and Flatten outputs whose dims inference left unknown get
 *     product dims ("8*N"), which inference then carries downstream.
 * The three steps repeat (with inference in between) until nothing changes.
 * Every rewrite is exact for every value of the symbols.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

#define VEC_MAX 16
#define MAX_ROUNDS 8

typedef enum { E_UNK, E_INT, E_SYM } ekind;

/* One element: an exact integer, a symbolic product, or unknown. */
typedef struct elem {
    ekind k;
    int64_t v;
    hone_symdim s;
} elem;

/* A known rank-0 or rank-1 integer vector. */
typedef struct svec {
    bool ok;
    int rank, n;
    elem e[VEC_MAX];
} svec;

typedef struct fshape {
    hone_pass_ctx *pc;
    hone_graph *g;
    svec *vec;       /* per value id below n_vec */
    int n_vec;
} fshape;

static elem from_dim(hone_graph *g, int64_t d)
{
    elem e = {.k = d >= 0 ? E_INT : E_UNK, .v = d};
    if (d >= 0 || d == HONE_DIM_UNKNOWN)
        return e;
    e.s = hone_symdim_of(g, d);
    e.k = hone_symdim_known(&e.s) ? E_SYM : E_UNK;
    return e;
}

/* The element as a product (positive integers and symbols); coef 0 otherwise. */
static hone_symdim to_sym(const elem *e)
{
    hone_symdim s = {0};
    if (e->k == E_INT && e->v > 0)
        s.coef = e->v;
    return e->k == E_SYM ? e->s : s;
}

static elem from_sym(const hone_symdim *s)
{
    elem e = {.k = E_UNK};
    if (!hone_symdim_known(s))
        return e;
    if (!s->n)
        return (elem){.k = E_INT, .v = s->coef};
    e.k = E_SYM;
    e.s = *s;
    return e;
}

static bool sym_equal(const hone_symdim *a, const hone_symdim *b)
{
    if (a->coef != b->coef || a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->sym[i] != b->sym[i] || a->pow[i] != b->pow[i])
            return false;
    return true;
}

/* a*b or a/b (integer division only when exact for symbols). */
static elem arith(elem a, elem b, bool div)
{
    if (a.k == E_INT && b.k == E_INT) {
        if (div && (b.v == 0 || a.v < 0 || b.v < 0))
            return (elem){.k = E_UNK};
        int64_t r;
        if (!div && __builtin_mul_overflow(a.v, b.v, &r))
            return (elem){.k = E_UNK};
        return (elem){.k = E_INT, .v = div ? a.v / b.v : r};
    }
    hone_symdim x = to_sym(&a), y = to_sym(&b);
    hone_symdim r = div ? hone_symdim_div(&x, &y) : hone_symdim_mul(&x, &y);
    return from_sym(&r);
}

/* ---- vectors of values ---- */

static const svec *vec_of(fshape *fs, const hone_value *v, svec *tmp)
{
    if (!v)
        return NULL;
    if (!hone_pass_is_const(v))
        return v->id < fs->n_vec && fs->vec[v->id].ok ? &fs->vec[v->id] : NULL;
    const hone_tensor *t = v->data;
    if (!hone_dtype_is_int(t->dtype) || t->rank > 1 || t->numel > VEC_MAX)
        return NULL;
    *tmp = (svec){.ok = true, .rank = t->rank, .n = (int)t->numel};
    for (int i = 0; i < tmp->n; i++)
        tmp->e[i] = (elem){.k = E_INT, .v = hone_tensor_get_i64(t, i)};
    return tmp;
}

static bool all_int(const svec *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->e[i].k != E_INT)
            return false;
    return true;
}

/* Constant integer vector input i of n (rank <= 1), or NULL. */
static const svec *const_in(fshape *fs, const hone_node *n, int i, svec *tmp)
{
    const svec *s = i < n->n_in ? vec_of(fs, n->in[i], tmp) : NULL;
    return s && all_int(s) ? s : NULL;
}

static bool vec_shape(fshape *fs, const hone_node *n, svec *o)
{
    const hone_value *x = n->in[0];
    if (x->rank < 0 || x->rank > VEC_MAX)
        return false;
    int64_t s, e;
    hone_pass_shape_range(n, x->rank, &s, &e);
    o->rank = 1;
    for (int64_t i = s; i < e; i++)
        o->e[o->n++] = from_dim(fs->g, x->dims[i]);
    return true;
}

static bool vec_gather(fshape *fs, const hone_node *n, svec *o)
{
    svec t1, t2;
    const svec *d = vec_of(fs, n->in[0], &t1), *idx = const_in(fs, n, 1, &t2);
    if (!d || !idx || d->rank != 1 || hone_attr_int(n, "axis", 0) != 0)
        return false;
    o->rank = idx->rank;
    for (int i = 0; i < idx->n; i++) {
        int64_t k = idx->e[i].v < 0 ? idx->e[i].v + d->n : idx->e[i].v;
        if (k < 0 || k >= d->n)
            return false;
        o->e[o->n++] = d->e[k];
    }
    return true;
}

/* Axes of Squeeze/Unsqueeze from the attribute (opset < 13) or input 1. */
static int axes_of(fshape *fs, const hone_node *n, int64_t *ax)
{
    const int64_t *a;
    int k = hone_attr_ints(n, "axes", &a);
    if (k >= 0) {
        memcpy(ax, a, sizeof *a * (size_t)(k < VEC_MAX ? k : VEC_MAX));
        return k <= VEC_MAX ? k : -1;
    }
    svec t;
    const svec *s = const_in(fs, n, 1, &t);
    for (int i = 0; s && i < s->n; i++)
        ax[i] = s->e[i].v;
    return s ? s->n : (n->n_in > 1 && n->in[1] ? -1 : 0);
}

/* Unsqueeze of a scalar to [1] and Squeeze of a [1] to a scalar. */
static bool vec_squeeze(fshape *fs, const hone_node *n, svec *o, bool un)
{
    svec t;
    int64_t ax[VEC_MAX];
    const svec *d = vec_of(fs, n->in[0], &t);
    int k = axes_of(fs, n, ax);
    if (!d || d->rank != (un ? 0 : 1) || d->n != 1 || k < (un ? 1 : 0) || k > 1)
        return false;
    if (k == 1 && ax[0] != 0 && ax[0] != -1)
        return false;
    *o = *d;
    o->rank = un ? 1 : 0;
    return true;
}

static bool vec_concat(fshape *fs, const hone_node *n, svec *o)
{
    int64_t axis = hone_attr_int(n, "axis", 0);
    if (axis != 0 && axis != -1)
        return false;
    o->rank = 1;
    for (int j = 0; j < n->n_in; j++) {
        svec t;
        const svec *d = vec_of(fs, n->in[j], &t);
        if (!d || d->rank != 1 || o->n + d->n > VEC_MAX)
            return false;
        memcpy(&o->e[o->n], d->e, sizeof *d->e * (size_t)d->n);
        o->n += d->n;
    }
    return true;
}

/* Slice of a 1-D vector; starts/ends/axes/steps from inputs (opset >= 10). */
static bool vec_slice(fshape *fs, const hone_node *n, svec *o)
{
    svec t0, t1, t2, t3, t4;
    const svec *d = vec_of(fs, n->in[0], &t0), *st = const_in(fs, n, 1, &t1),
               *en = const_in(fs, n, 2, &t2), *ax = const_in(fs, n, 3, &t3),
               *sp = const_in(fs, n, 4, &t4);
    if (!d || d->rank != 1 || !st || !en || st->n != 1 || en->n != 1 ||
        (n->n_in > 3 && n->in[3] && (!ax || ax->n != 1 || (ax->e[0].v != 0 && ax->e[0].v != -1))) ||
        (n->n_in > 4 && n->in[4] && (!sp || sp->n != 1 || sp->e[0].v == 0)))
        return false;
    int64_t len = d->n, step = sp && n->n_in > 4 && n->in[4] ? sp->e[0].v : 1;
    int64_t s = st->e[0].v < 0 ? st->e[0].v + len : st->e[0].v;
    int64_t e = en->e[0].v < 0 ? en->e[0].v + len : en->e[0].v;
    s = step > 0 ? (s < 0 ? 0 : s > len ? len : s) : (s < -1 ? -1 : s > len - 1 ? len - 1 : s);
    e = step > 0 ? (e < 0 ? 0 : e > len ? len : e) : (e < -1 ? -1 : e > len - 1 ? len - 1 : e);
    o->rank = 1;
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step)
        o->e[o->n++] = d->e[i];
    return true;
}

/* Mul/Div of two vectors with scalar (or [1]) broadcasting. */
static bool vec_arith(fshape *fs, const hone_node *n, svec *o, bool div)
{
    svec t0, t1;
    const svec *a = vec_of(fs, n->in[0], &t0), *b = vec_of(fs, n->in[1], &t1);
    if (!a || !b || (a->n != b->n && a->n != 1 && b->n != 1))
        return false;
    o->rank = a->rank > b->rank ? a->rank : b->rank;
    o->n = a->n > b->n ? a->n : b->n;
    for (int i = 0; i < o->n; i++)
        o->e[i] = arith(a->e[a->n == 1 ? 0 : i], b->e[b->n == 1 ? 0 : i], div);
    return true;
}

static bool is_int_cast(const hone_node *n)
{
    return hone_pass_is_op(n, "Cast") && hone_dtype_is_int((hone_dtype)hone_attr_int(n, "to", 0));
}

/* The vector n's single output holds, when derivable. */
static bool vec_node(fshape *fs, const hone_node *n, svec *o)
{
    svec t;
    memset(o, 0, sizeof *o);
    if (n->n_out != 1 || !n->n_in || !n->in[0])
        return false;
    if (hone_pass_is_op(n, "Shape"))
        return vec_shape(fs, n, o);
    if (hone_pass_is_op(n, "Gather"))
        return vec_gather(fs, n, o);
    if (hone_pass_is_op(n, "Unsqueeze") || hone_pass_is_op(n, "Squeeze"))
        return vec_squeeze(fs, n, o, hone_pass_is_op(n, "Unsqueeze"));
    if (hone_pass_is_op(n, "Concat"))
        return vec_concat(fs, n, o);
    if (hone_pass_is_op(n, "Slice"))
        return n->n_in >= 3 && vec_slice(fs, n, o);
    if ((hone_pass_is_op(n, "Mul") || hone_pass_is_op(n, "Div")) && n->n_in == 2)
        return vec_arith(fs, n, o, hone_pass_is_op(n, "Div"));
    if (hone_pass_is_op(n, "Identity") || is_int_cast(n)) {
        const svec *d = vec_of(fs, n->in[0], &t);
        if (d)
            *o = *d;
        return d != NULL;
    }
    return false;
}

/* ---- Reshape arithmetic ---- */

/* Output dims of Reshape(x, target) as elements; false when underivable. */
static bool reshape_dims(fshape *fs, const hone_value *x, const svec *t, bool allowzero, elem *out)
{
    int neg = -1;
    hone_symdim known = {.coef = 1};
    for (int i = 0; i < t->n; i++) {
        elem e = t->e[i];
        if (e.k == E_INT && e.v == 0 && !allowzero)
            e = i < x->rank ? from_dim(fs->g, x->dims[i]) : (elem){.k = E_UNK};
        if (e.k == E_INT && e.v == -1 && neg < 0) {
            neg = i;
            continue;
        }
        if (e.k == E_UNK || (e.k == E_INT && e.v <= 0))
            return false;
        out[i] = e;
        hone_symdim s = to_sym(&e);
        known = hone_symdim_mul(&known, &s);
    }
    if (neg < 0)
        return true;
    hone_symdim total = {.coef = 1};
    for (int i = 0; i < x->rank; i++) {
        elem e = from_dim(fs->g, x->dims[i]);
        hone_symdim s = to_sym(&e);
        total = hone_symdim_mul(&total, &s);
    }
    hone_symdim q = hone_symdim_div(&total, &known);
    out[neg] = from_sym(&q);
    return out[neg].k != E_UNK;
}

/* Sets unknown dims of v from the derived ones; returns how many it set. */
static int refine(fshape *fs, hone_value *v, const elem *dims, int rank)
{
    int changed = 0;
    if (v->rank >= 0 && v->rank != rank)
        return 0;
    if (v->rank < 0) {
        v->rank = rank;
        for (int i = 0; i < rank; i++)
            v->dims[i] = HONE_DIM_UNKNOWN;
    }
    for (int i = 0; i < rank; i++) {
        hone_symdim s = to_sym(&dims[i]);
        int64_t d = dims[i].k == E_INT ? dims[i].v : hone_symdim_to_dim(fs->g, &s);
        if (v->dims[i] == HONE_DIM_UNKNOWN && d != HONE_DIM_UNKNOWN) {
            v->dims[i] = d;
            changed++;
        }
    }
    return changed;
}

static int refine_flatten(fshape *fs, hone_node *n)
{
    const hone_value *x = n->in[0];
    int64_t axis = hone_attr_int(n, "axis", 1);
    if (x->rank < 0 || axis < -x->rank || axis > x->rank)
        return 0;
    axis = axis < 0 ? axis + x->rank : axis;
    hone_symdim part[2] = {{.coef = 1}, {.coef = 1}};
    for (int i = 0; i < x->rank; i++) {
        elem e = from_dim(fs->g, x->dims[i]);
        hone_symdim s = to_sym(&e);
        part[i >= axis] = hone_symdim_mul(&part[i >= axis], &s);
    }
    elem dims[2] = {from_sym(&part[0]), from_sym(&part[1])};
    return refine(fs, n->out[0], dims, 2);
}

/* Names the product dims of Reshape/Flatten outputs that inference left
 * unknown; returns how many dims it named. */
static int refine_views(fshape *fs)
{
    int changed = 0;
    for (int i = 0; i < fs->g->n_nodes; i++) {
        hone_node *n = fs->g->nodes[i];
        svec t;
        elem dims[VEC_MAX];
        if (n->n_out < 1 || !n->out[0] || !n->n_in || !n->in[0])
            continue;
        if (hone_pass_is_op(n, "Flatten"))
            changed += refine_flatten(fs, n);
        bool reshape = hone_pass_is_op(n, "Reshape") && n->n_in == 2;
        const svec *tv = reshape ? const_in(fs, n, 1, &t) : NULL;
        if (tv && tv->rank == 1 && n->in[0]->rank >= 0 &&
            reshape_dims(fs, n->in[0], tv, hone_attr_int(n, "allowzero", 0), dims))
            changed += refine(fs, n->out[0], dims, tv->n);
    }
    return changed;
}

/* Constant target for a Reshape whose target vector t has no unknowns. */
static bool constant_target(fshape *fs, const hone_node *n, const svec *t, int64_t *c)
{
    const hone_value *x = n->in[0];
    bool allowzero = hone_attr_int(n, "allowzero", 0);
    int free_at = -1, neg_at = -1;
    for (int i = 0; i < t->n; i++) {
        elem xi = i < x->rank ? from_dim(fs->g, x->dims[i]) : (elem){.k = E_UNK};
        c[i] = t->e[i].v;
        if (t->e[i].k == E_INT) {
            neg_at = t->e[i].v == -1 ? i : neg_at;
            continue;
        }
        if (!allowzero && xi.k == E_SYM && sym_equal(&xi.s, &t->e[i].s)) {
            c[i] = 0;
            continue;
        }
        if (free_at >= 0)
            return false;
        free_at = i;
    }
    if (free_at >= 0 && neg_at >= 0) {
        elem dims[VEC_MAX];
        if (x->rank < 0 || !reshape_dims(fs, x, t, allowzero, dims) || dims[neg_at].k != E_INT)
            return false;
        c[neg_at] = dims[neg_at].v;
    }
    if (free_at >= 0)
        c[free_at] = -1;
    return true;
}

/* ---- the walk ---- */

/* The node's output vector is fully numeric: it becomes a constant. */
static bool materialize(fshape *fs, hone_node *n, const svec *s)
{
    hone_value *v = n->out[0];
    hone_tensor *t;
    int64_t dims[1] = {s->n};
    hone_dtype dt = hone_dtype_is_int(v->dtype) ? v->dtype : HONE_DT_INT64;
    if ((v->flags & HONE_VAL_OUTPUT) || hone_tensor_new(fs->pc->ctx, dt, s->rank, dims, &t))
        return false;
    for (int i = 0; i < s->n; i++)
        hone_tensor_set_i64(t, i, s->e[i].v);
    hone_value_set_data(v, t);
    hone_pass_remove_node(fs->g, n);
    hone_pass_note(fs->pc, "folded", 1);
    return true;
}

static bool rewrite_reshape(fshape *fs, hone_node *n)
{
    svec t;
    int64_t c[VEC_MAX];
    bool computed = n->n_in == 2 && !hone_pass_is_const(n->in[1]);
    const svec *tv = computed ? vec_of(fs, n->in[1], &t) : NULL;
    if (!tv || tv->rank != 1 || !n->in[0])
        return false;
    for (int i = 0; i < tv->n; i++)
        if (tv->e[i].k == E_UNK)
            return false;
    if (!constant_target(fs, n, tv, c))
        return false;
    hone_value *cv = hone_pass_new_ints(fs->pc->ctx, fs->g, c, tv->n, "shape");
    if (!cv)
        return false;
    n->in[1] = cv;
    hone_graph_update_uses(fs->g);
    hone_pass_note(fs->pc, "reshape targets", 1);
    return true;
}

/* One walk in topological order; true when the graph changed. */
static bool walk(fshape *fs)
{
    bool changed = false;
    fs->n_vec = fs->g->n_values;
    fs->vec = realloc(fs->vec, sizeof *fs->vec * ((size_t)fs->n_vec + 1));
    HONE_ASSERT(fs->vec);
    memset(fs->vec, 0, sizeof *fs->vec * (size_t)fs->n_vec);
    for (int i = 0; i < fs->g->n_nodes; i++) {
        hone_node *n = fs->g->nodes[i];
        svec o;
        if (hone_pass_is_op(n, "Reshape") && rewrite_reshape(fs, n)) {
            changed = true;
            continue;
        }
        if (!n->out[0] || !vec_node(fs, n, &o))
            continue;
        o.ok = true;
        if (n->out[0]->id < fs->n_vec)
            fs->vec[n->out[0]->id] = o;
        if (all_int(&o) && materialize(fs, n, &o)) {
            changed = true;
            i--;
        }
    }
    return changed;
}

hone_status hone_pass_fold_shapes(hone_pass_ctx *pc, hone_graph *g)
{
    fshape fs = {pc, g, NULL, 0};
    hone_status st = HONE_OK;
    for (int round = 0; round < MAX_ROUNDS && !st; round++) {
        hone_graph_update_uses(g);
        int refined = refine_views(&fs);
        if (refined) {
            hone_pass_note(pc, "dims named", refined);
            st = hone_graph_infer(pc->ctx, g);
        }
        bool rewrote = !st && walk(&fs);
        if (!refined && !rewrote)
            break;
        if (rewrote)
            st = hone_graph_infer(pc->ctx, g);
    }
    free(fs.vec);
    return st;
}
