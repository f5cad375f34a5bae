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

/* Logits of layer l: A_i = -2 d_i^2 / t0 around the pretrained weight. */
static hone_tensor *init_logits(const lb_job *job, const lb_layer *l, double t0)
{
    const lb_grid *gr = &job->grid;
    int64_t dims[HONE_MAX_RANK];
    memcpy(dims, l->w->dims, sizeof(int64_t) * (size_t)l->w->rank);
    dims[l->w->rank] = gr->k;
    hone_tensor *a = lb_new_tensor(HONE_DT_FLOAT, l->w->rank + 1, dims);
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

/* Replaces layer l's weight by the soft expectation over its levels. */
static void build_soft(slb_run *r, lb_layer *l, hone_value *t, hone_value *v, int k)
{
    hone_graph *g = r->job->g;
    const char *base = l->conv->name;
    hone_value *a = hone_pass_new_const(g, init_logits(r->job, l, r->t0),
                                        hone_arena_printf(g->arena, "%s_slb_logits", base));
    r->logits[k] = a;
    hone_value *s = lb_channel_const(g, l->w->rank, l->cout, l->scale,
                                     hone_arena_printf(g->arena, "%s_slb_s", base));
    hone_node *n = lb_add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_ta", base), a, t);
    n = lb_add_node(g, "Softmax", hone_arena_printf(g->arena, "%s_slb_p", base), n->out[0], NULL);
    hone_node_set_attr_int(g, n, "axis", -1);
    n = lb_add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_pv", base), n->out[0], v);
    int64_t last = -1;
    hone_value *axes = hone_pass_new_ints(r->job->pc->ctx, g, &last, 1, "slb_axes");
    n = lb_add_node(g, "ReduceSum", hone_arena_printf(g->arena, "%s_slb_u", base), n->out[0], axes);
    hone_node_set_attr_int(g, n, "keepdims", 0);
    n = lb_add_node(g, "Mul", hone_arena_printf(g->arena, "%s_slb_w", base), n->out[0], s);
    l->conv->in[1] = n->out[0];
}

static void build_all(slb_run *r)
{
    lb_job *job = r->job;
    hone_graph *g = job->g;
    int64_t one = 1, k = job->grid.k;
    hone_tensor *tt = lb_new_tensor(HONE_DT_FLOAT, 1, &one);
    *(float *)tt->data = (float)r->t0;
    hone_value *t = hone_pass_new_const(g, tt, "slb_T");
    r->t_name = t->name;
    hone_tensor *vt = lb_new_tensor(HONE_DT_FLOAT, 1, &k);
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

/* The method: soft weights in, training with annealing, argmax levels out. */
static hone_status slb_method(lb_job *job)
{
    hone_pass_ctx *pc = job->pc;
    int64_t one = 1;
    slb_run r = {job, NULL, NULL, hone_pass_opt_float(pc, "t0"),
                 hone_pass_opt_float(pc, "growth"), hone_pass_opt_float(pc, "start"),
                 hone_pass_opt_float(pc, "end"), -1, NULL};
    if (!(r.t0 > 0) || !(r.growth >= 1) || !(r.start >= 0 && r.start <= r.end && r.end <= 1))
        return hone_fail(pc->ctx, HONE_ERR_ARG,
                         "slb needs t0 > 0, growth >= 1 and 0 <= start <= end <= 1");
    build_all(&r);
    r.t = lb_new_tensor(HONE_DT_FLOAT, 1, &one);
    hone_status st = lb_train(job, r.logits, job->n, anneal, &r);
    if (!st) {
        hone_pass_log(pc, "final inverse temperature %.3g", r.last_t);
        take_argmax(&r);
    }
    hone_tensor_free(r.t);
    free(r.logits);
    return st;
}

hone_status hone_pass_slb(hone_pass_ctx *pc, hone_graph *g)
{
    return lb_run(pc, g, slb_method);
}
