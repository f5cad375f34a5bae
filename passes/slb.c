/*
 * slb: searching for low-bit weights (SLB, arXiv 2009.08695). Every weight of
 * a quantized conv chooses one of K = 2^b levels v_i (lowbit.h) through
 * learned logits A; the training weight is the expectation
 *   W = s * sum_i softmax(T * A)_i * v_i
 * built from differentiable graph nodes, so autodiff gives the exact
 * gradient dW/dA_i = s * T * P_i * (v_i - W/s), no straight-through:
 *   A[M,C,kh,kw,K] -> Mul(T) -> Softmax(-1) -> Mul(V[K]) -> ReduceSum(-1) -> Mul(S[M,1,1,1])
 * The logits start favouring the level nearest the pretrained weight
 * (A_i = -2 d_i^2 / t0, d_i the distance to v_i in level spacings, so the
 * initial T*A is -2 d_i^2). The inverse temperature T (one constant shared
 * by all layers) stays at t0 until `start` of the steps, then grows
 * geometrically by `growth` per 1% of the steps until `end`; after `end` it
 * is 1e4 * t0, which makes W the argmax level (the deployed weight) while BN
 * and the unquantized layers finish training. The result takes
 * v[argmax A] per weight; lowbit.c then re-estimates BN and exports.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit.h"

typedef struct slb_run {
    lb_job *job;
    hone_value **logits;   /* per layer */
    const char *t_name;    /* the temperature constant */
    double t0, growth, start, end, last_t;
    hone_tensor *t;        /* scratch [1] */
} slb_run;

/* T at step of steps (schedule above). */
static double temperature(const slb_run *r, int64_t step, int64_t steps)
{
    double p = steps > 0 ? (double)step / (double)steps : 1;
    if (p >= r->end)
        return r->t0 * 1e4;
    double k = fmax(p, r->start) - r->start;
    return r->t0 * pow(r->growth, 100 * k);
}

static hone_tensor *new_tensor(int rank, const int64_t *dims)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, rank, dims, &t));
    return t;
}

/* Logits of layer l: A_i = -2 d_i^2 / t0 around the pretrained weight. */
static hone_tensor *init_logits(const lb_job *job, const lb_layer *l, double t0)
{
    const lb_grid *gr = &job->grid;
    int64_t dims[HONE_MAX_RANK];
    memcpy(dims, l->w->dims, sizeof(int64_t) * (size_t)l->w->rank);
    dims[l->w->rank] = gr->k;
    hone_tensor *a = new_tensor(l->w->rank + 1, dims);
    float *p = a->data;
    const float *w = l->w->data;
    double spacing = (double)gr->step / gr->qmax;
    for (int64_t i = 0; i < l->w->numel; i++) {
        double u = w[i] / l->scale[i / l->per];
        for (int j = 0; j < gr->k; j++) {
            double d = (u - lb_level(gr, j)) / spacing;
            p[i * gr->k + j] = (float)(-2 * d * d / t0);
        }
    }
    return a;
}

/* Appends op(x[, y]) (no producer link until uses are updated: returns the node). */
static hone_node *add_node(hone_graph *g, const char *op, const char *name, hone_value *x,
                           hone_value *y)
{
    hone_node *n = hone_graph_add_node(g, op, "", name, y ? 2 : 1, 1);
    n->in[0] = x;
    if (y)
        n->in[1] = y;
    n->out[0] = hone_graph_new_value(g, name);
    return n;
}

/* Replaces layer l's weight by the soft expectation over its levels. */
static void build_soft(slb_run *r, lb_layer *l, hone_value *t, hone_value *v, int k)
{
    hone_graph *g = r->job->g;
    const char *base = l->conv->name;
    hone_value *a = hone_pass_new_const(g, init_logits(r->job, l, r->t0),
                                        hone_arena_printf(g->arena, "%s_slb_logits", base));
    r->logits[k] = a;
    int64_t sd[HONE_MAX_RANK];
    for (int i = 0; i < l->w->rank; i++)
        sd[i] = i ? 1 : l->cout;
    hone_tensor *st = new_tensor(l->w->rank, sd);
    memcpy(st->data, l->scale, sizeof(float) * (size_t)l->cout);
    hone_value *s = hone_pass_new_const(g, st, hone_arena_printf(g->arena, "%s_slb_s", base));
    hone_node *n = add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_ta", base), a, t);
    n = add_node(g, "Softmax", hone_arena_printf(g->arena, "%s_slb_p", base), n->out[0], NULL);
    hone_node_set_attr_int(g, n, "axis", -1);
    n = add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_pv", base), n->out[0], v);
    int64_t last = -1;
    hone_value *axes = hone_pass_new_ints(r->job->pc->ctx, g, &last, 1, "slb_axes");
    n = add_node(g, "ReduceSum", hone_arena_printf(g->arena, "%s_slb_u", base), n->out[0], axes);
    hone_node_set_attr_int(g, n, "keepdims", 0);
    n = add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_w", base), n->out[0], s);
    l->conv->in[1] = n->out[0];
}

static void build_all(slb_run *r)
{
    lb_job *job = r->job;
    hone_graph *g = job->g;
    int64_t one = 1, k = job->grid.k;
    hone_tensor *tt = new_tensor(1, &one);
    *(float *)tt->data = (float)r->t0;
    hone_value *t = hone_pass_new_const(g, tt, "slb_T");
    r->t_name = t->name;
    hone_tensor *vt = new_tensor(1, &k);
    for (int i = 0; i < job->grid.k; i++)
        ((float *)vt->data)[i] = (float)lb_level(&job->grid, i);
    hone_value *v = hone_pass_new_const(g, vt, "slb_levels");
    r->logits = calloc((size_t)job->n, sizeof *r->logits);
    HONE_ASSERT(r->logits);
    for (int i = 0; i < job->n; i++)
        build_soft(r, &job->layers[i], t, v, i);
}

/* before_step hook: anneals T. */
static hone_status anneal(void *user, hone_trainer *tr, const hone_fit_step_info *info)
{
    slb_run *r = user;
    double t = temperature(r, info->step, info->steps);
    if (t == r->last_t)
        return HONE_OK;
    r->last_t = t;
    *(float *)r->t->data = (float)t;
    return hone_trainer_set_const(tr, r->t_name, r->t);
}

/* The argmax level of every weight from the trained logits. */
static void take_argmax(slb_run *r)
{
    lb_job *job = r->job;
    int k = job->grid.k;
    int64_t changed = 0;
    for (int i = 0; i < job->n; i++) {
        lb_layer *l = &job->layers[i];
        const float *a = r->logits[i]->data->data;
        for (int64_t w = 0; w < l->w->numel; w++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (a[w * k + j] > a[w * k + best])
                    best = j;
            changed += best != l->idx[w];
            l->idx[w] = (uint8_t)best;
        }
    }
    hone_pass_note(job->pc, "levels changed from nearest", changed);
}

static hone_status train(slb_run *r)
{
    lb_job *job = r->job;
    hone_fit_spec spec;
    lb_fit_spec(job, &spec);
    const char **names = calloc((size_t)job->n, sizeof *names);
    HONE_ASSERT(names);
    for (int i = 0; i < job->n; i++)
        names[i] = r->logits[i]->name;
    spec.train.trainable = names;
    spec.train.n_trainable = job->n;
    spec.before_step = anneal;
    spec.user = r;
    int64_t one = 1;
    r->t = new_tensor(1, &one);
    r->last_t = -1;
    hone_fit_result res;
    hone_status st = hone_fit(job->pc->ctx, job->g, &job->fd, &spec, &res);
    if (!st)
        hone_pass_log(job->pc, "trained %lld steps (%.0f images/s), final T %.3g",
                      (long long)res.steps, res.images_per_s, r->last_t);
    hone_tensor_free(r->t);
    free(names);
    return st;
}

hone_status hone_pass_slb(hone_pass_ctx *pc, hone_graph *g)
{
    lb_job job;
    hone_status st = lb_begin(pc, g, &job);
    if (st) {
        lb_job_free(&job);
        return st;
    }
    slb_run r = {&job, NULL, NULL, hone_pass_opt_float(pc, "t0"),
                 hone_pass_opt_float(pc, "growth"), hone_pass_opt_float(pc, "start"),
                 hone_pass_opt_float(pc, "end"), -1, NULL};
    if (!(r.t0 > 0) || !(r.growth >= 1) || !(r.start >= 0 && r.start <= r.end && r.end <= 1)) {
        lb_job_free(&job);
        return hone_fail(pc->ctx, HONE_ERR_ARG,
                         "slb needs t0 > 0, growth >= 1 and 0 <= start <= end <= 1");
    }
    build_all(&r);
    st = hone_graph_toposort(pc->ctx, g);
    if (!st)
        st = train(&r);
    if (!st)
        take_argmax(&r);
    free(r.logits);
    if (st) {
        lb_job_free(&job);
        return st;
    }
    return lb_finish(&job);
}
