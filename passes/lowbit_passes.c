/*
 * The naive ablations of slb (slb.c), in lowbit.c's frame with the same
 * levels, scales, activation quantization and BN re-estimation:
 *   quantize-rtn  every weight takes its nearest level (round to nearest),
 *                 no training;
 *   quantize-ste  straight-through fine-tuning with slb's budget: a latent
 *                 weight U (in units of s, clamped to [-1, 1]) trains, the
 *                 forward pass uses its nearest level. In the graph
 *                 W = (U + D) * S with D = v(U) - U a constant refreshed
 *                 before every step, so dW/dU = S exactly as the STE asks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit.h"

hone_status hone_pass_quantize_rtn(hone_pass_ctx *pc, hone_graph *g)
{
    return lb_run(pc, g, NULL); /* lb_begin already chose the nearest levels */
}

typedef struct ste_run {
    lb_job *job;
    hone_value **u, **d;   /* latent weights and their rounding offsets, per layer */
    int *param;            /* trainer parameter index of u[k] */
} ste_run;

/* D = v(U) - U over the clamped latent weights (clamped in place). */
static void refresh_offsets(const lb_grid *gr, hone_tensor *u, hone_tensor *d)
{
    float *pu = u->data, *pd = d->data;
    for (int64_t i = 0; i < u->numel; i++) {
        pu[i] = fminf(fmaxf(pu[i], -1.f), 1.f);
        pd[i] = (float)(lb_level(gr, lb_nearest(gr, pu[i])) - pu[i]);
    }
}

static void build_ste(ste_run *r, int k)
{
    lb_layer *l = &r->job->layers[k];
    hone_graph *g = r->job->g;
    const char *base = l->conv->name;
    hone_tensor *u = lb_new_tensor(HONE_DT_FLOAT, l->w->rank, l->w->dims);
    hone_tensor *d = lb_new_tensor(HONE_DT_FLOAT, l->w->rank, l->w->dims);
    const float *w = l->w->data;
    for (int64_t i = 0; i < u->numel; i++)
        ((float *)u->data)[i] = w[i] / l->scale[i / l->per];
    refresh_offsets(&r->job->grid, u, d);
    r->u[k] = hone_pass_new_const(g, u, hone_arena_printf(g->arena, "%s_ste_u", base));
    r->d[k] = hone_pass_new_const(g, d, hone_arena_printf(g->arena, "%s_ste_d", base));
    hone_value *s = lb_channel_const(g, l->w->rank, l->cout, l->scale,
                                     hone_arena_printf(g->arena, "%s_ste_s", base));
    hone_node *x = lb_add_node(g, "Add", hone_arena_printf(g->arena, "%s_ste_q", base), r->u[k],
                               r->d[k]);
    x = lb_add_node(g, "Mul", hone_arena_printf(g->arena, "%s_ste_w", base), x->out[0], s);
    l->conv->in[1] = x->out[0];
}

/* before_step hook: clamps U and sets D for the coming forward pass. */
static hone_status ste_step(void *user, hone_trainer *tr, const hone_fit_step_info *info)
{
    (void)info;
    ste_run *r = user;
    lb_job *job = r->job;
    for (int k = 0; k < job->n; k++) {
        if (r->param[k] < 0)
            for (int i = 0; i < hone_trainer_n_params(tr); i++)
                if (!strcmp(hone_trainer_param_name(tr, i), r->u[k]->name))
                    r->param[k] = i;
        if (r->param[k] < 0)
            return hone_fail(job->pc->ctx, HONE_ERR_ARG, "latent weight '%s' is not trained",
                             r->u[k]->name);
        hone_tensor *u = hone_trainer_param(tr, r->param[k]);
        refresh_offsets(&job->grid, u, r->d[k]->data);
        hone_status st = hone_trainer_set_const(tr, r->d[k]->name, r->d[k]->data);
        if (st)
            return st;
    }
    return HONE_OK;
}

/* The method: latent weights in, straight-through training, nearest levels out. */
static hone_status ste_method(lb_job *job)
{
    ste_run r = {job, calloc((size_t)job->n, sizeof(hone_value *)),
                 calloc((size_t)job->n, sizeof(hone_value *)), malloc(sizeof(int) * (size_t)job->n)};
    HONE_ASSERT(r.u && r.d && r.param);
    for (int k = 0; k < job->n; k++) {
        r.param[k] = -1;
        build_ste(&r, k);
    }
    hone_status st = lb_train(job, r.u, job->n, ste_step, &r);
    for (int k = 0; k < job->n && !st; k++) {
        lb_layer *l = &job->layers[k];
        const float *u = r.u[k]->data->data;
        for (int64_t i = 0; i < l->w->numel; i++)
            l->idx[i] = (uint8_t)lb_nearest(&job->grid, fminf(fmaxf(u[i], -1.f), 1.f));
    }
    free(r.u);
    free(r.d);
    free(r.param);
    return st;
}

hone_status hone_pass_quantize_ste(hone_pass_ctx *pc, hone_graph *g)
{
    return lb_run(pc, g, ste_method);
}
