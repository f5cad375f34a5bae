/*
 * scop: knockoff filter pruning (SCOP, Tang et al., NeurIPS 2020).
 *
 * The shared driver (prune_common.c) re-introduces BN after every prunable
 * conv, asks this file for channel scores, prunes, re-estimates BN,
 * fine-tunes and folds BN back. Scoring, on a clone of the unfolded graph:
 *
 *   x [B,...] -> Concat(x, knockoff) [2B,...]      the knockoff half:
 *       permute: the batch rolled by one sample (hone_fit shuffles every
 *                epoch, so each sample is paired with a random other one,
 *                the "random permutation of the batch" knockoff);
 *       noise:   a fresh draw per step of independent Gaussian pixels with
 *                the training split's per-pixel mean and std (conditionally
 *                independent of the label by construction).
 *   after every prunable conv, before its BN (z [2B,C,...]):
 *       z5 = Reshape(z, [2,-1,C,...]); real = z5[0:1], knock = z5[1:2]
 *       z' = Reshape(Concat(knock + beta * (real - knock), knock), [-1,C,...])
 *     i.e. x_real <- beta*x_real + (1-beta)*x_knockoff, the knockoff half
 *     unchanged; BN then runs in training mode over the whole 2B batch.
 *   the output keeps its real half only: Reshape -> Slice -> Reshape.
 * beta [1,1,C,1,..] per layer starts at 0.5 and is the only thing that
 * trains (freeze_all_but_listed): Adam (beta1 0.5, beta2 0.9, lr beta-lr,
 * constant), loss CE on labels or KD from the original model, beta clamped
 * to [0,1] before every step and after the last. Score per channel:
 * |gamma| * (2*beta - 1), gamma the BN scale; the layer's norm (for the
 * global target) is its mean |gamma|.
 *
 * Design choices (the reference code uses a pretrained generator for
 * knockoffs, not reproduced here): the two knockoff sources above; the
 * mixing sits between conv and BN as the paper describes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune.h"

typedef struct scop {
    hone_pass_ctx *pc;
    hone_graph *gb;            /* the knockoff training graph */
    const char **beta;         /* names of the beta constants, one per layer */
    int n;
    const char *noise_name;    /* noise knockoff constant, or NULL */
    hone_tensor *noise;        /* [B,...] scratch for the draws */
    float *mean, *std;         /* per element of one sample */
    int64_t sample;            /* elements per sample */
    uint64_t seed;
} scop;

/* ===================== graph construction ===================== */

static hone_value *op(hone_graph *g, const char *type, int n_in, hone_value **in)
{
    const char *name = hone_arena_printf(g->arena, "scop/%s_%d", type, g->fresh++);
    hone_node *n = hone_graph_add_node(g, type, "", name, n_in, 1);
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, name);
    n->out[0]->producer = n;
    return n->out[0];
}

static hone_value *ints(hone_graph *g, const int64_t *v, int n)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    return hone_pass_new_ints(&ctx, g, v, n, "scop/ints");
}

/* x[start:end] along axis 0. */
static hone_value *rows(hone_graph *g, hone_value *x, int64_t start, int64_t end)
{
    int64_t s = start, e = end, ax = 0;
    return op(g, "Slice", 4, (hone_value *[]){x, ints(g, &s, 1), ints(g, &e, 1),
                                                 ints(g, &ax, 1)});
}

static hone_value *concat0(hone_graph *g, hone_value *a, hone_value *b)
{
    hone_value *r = op(g, "Concat", 2, (hone_value *[]){a, b});
    hone_node_set_attr_int(g, r->producer, "axis", 0);
    return r;
}

/* Reshape of x to [lead..., dims[1..rank)] (lead: 1 or 2 leading entries). */
static hone_value *reshape(hone_graph *g, hone_value *x, const int64_t *lead, int n_lead,
                           const hone_value *like)
{
    int64_t shape[HONE_MAX_RANK + 1];
    memcpy(shape, lead, sizeof *lead * (size_t)n_lead);
    for (int i = 1; i < like->rank; i++)
        shape[n_lead + i - 1] = like->dims[i];
    return op(g, "Reshape", 2, (hone_value *[]){x, ints(g, shape, n_lead + like->rank - 1)});
}

/* True when v has a known rank >= 2 and static dims after the batch. */
static bool static_tail(const hone_value *v)
{
    if (v->rank < 2)
        return false;
    for (int i = 1; i < v->rank; i++)
        if (v->dims[i] < 1)
            return false;
    return true;
}

/* beta-mixing of z (read by the BN node bn) with a new beta constant. */
static const char *wrap(hone_graph *g, hone_value *z, hone_node *bn, int64_t c)
{
    int64_t dims[HONE_MAX_RANK + 1] = {1, 1, c};
    for (int i = 3; i <= z->rank; i++)
        dims[i] = 1;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, z->rank + 1, dims, &t));
    for (int64_t i = 0; i < c; i++)
        ((float *)t->data)[i] = 0.5f;
    const char *name = hone_arena_printf(g->arena, "scop_beta/%s", bn->name);
    hone_value *beta = hone_pass_new_const(g, t, name);
    name = beta->name;
    int64_t two[2] = {2, -1}, one = -1;
    hone_value *z5 = reshape(g, z, two, 2, z);
    hone_value *real = rows(g, z5, 0, 1), *knock = rows(g, z5, 1, 2);
    hone_value *d = op(g, "Sub", 2, (hone_value *[]){real, knock});
    hone_value *m = op(g, "Mul", 2, (hone_value *[]){d, beta});
    hone_value *mixed = op(g, "Add", 2, (hone_value *[]){knock, m});
    bn->in[0] = reshape(g, concat0(g, mixed, knock), &one, 1, z);
    return name;
}

/* The input becomes [x; knockoff]. */
static void double_input(scop *s, hone_graph *g)
{
    hone_value *x = g->inputs[0];
    hone_value *xx = hone_graph_new_value(g, "scop/real_and_knockoff");
    hone_graph_update_uses(g);
    hone_graph_replace_uses(g, x, xx);
    hone_value *knock;
    if (s->noise) {
        knock = hone_pass_new_const(g, hone_tensor_clone(s->noise), "scop/noise_knockoff");
        s->noise_name = knock->name;
    } else {
        knock = concat0(g, rows(g, x, 1, INT64_MAX), rows(g, x, 0, 1));
    }
    hone_value *r = concat0(g, x, knock);
    hone_node *cat = r->producer;
    cat->out[0] = xx;
    xx->producer = cat;
}

/* The first output keeps its real half. */
static void real_half_output(hone_graph *g)
{
    hone_value *out = g->outputs[0];
    hone_node *p = out->producer;
    int j = 0;
    while (p->out[j] != out)
        j++;
    hone_value *o = hone_graph_new_value(g, hone_arena_printf(g->arena, "scop/%s_both",
                                                              out->name));
    p->out[j] = o;
    o->producer = p;
    int64_t two[2] = {2, -1}, one = -1;
    hone_value *half = reshape(g, rows(g, reshape(g, o, two, 2, out), 0, 1), &one, 1, out);
    hone_node *r = half->producer;
    r->out[0] = out;
    out->producer = r;
}

/* Clone of the job's graph wired for knockoff training. */
static hone_status build(scop *s, hone_prune_job *job)
{
    hone_ctx *ctx = job->pc->ctx;
    hone_graph *g = hone_graph_clone(job->g);
    s->gb = g;
    if (g->n_inputs != 1 || g->n_outputs < 1 || !g->outputs[0]->producer ||
        !static_tail(g->inputs[0]) || !static_tail(g->outputs[0]))
        return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "scop needs one input and an output with "
                         "static dims after the batch dim");
    s->beta = hone_arena_alloc(g->arena, sizeof *s->beta * ((size_t)job->n + 1));
    for (int k = 0; k < job->n; k++) {
        hone_value *z = hone_graph_find(g, job->layers[k].bn->in[0]->name);
        hone_node *bn = NULL;
        for (int i = 0; z && i < g->n_nodes && !bn; i++)
            if (g->nodes[i]->n_in && g->nodes[i]->in[0] == z &&
                hone_pass_is_op(g->nodes[i], "BatchNormalization"))
                bn = g->nodes[i];
        if (!bn || !static_tail(z))
            return hone_node_fail(ctx, job->layers[k].bn, HONE_ERR_INTERNAL,
                                  "BN of a prunable conv not found in the training clone");
        s->beta[k] = wrap(g, z, bn, job->layers[k].channels);
    }
    s->n = job->n;
    double_input(s, g);
    real_half_output(g);
    hone_graph_update_uses(g);
    hone_status st = hone_graph_toposort(ctx, g);
    return st ? st : hone_graph_infer(ctx, g);
}

/* ===================== noise knockoff ===================== */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u = ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(splitmix(s) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void draw_noise(scop *s, uint64_t step)
{
    uint64_t st = s->seed * 0x2545f4914f6cdd1dull + step * 0x9e3779b97f4a7c15ull + 7;
    float *p = s->noise->data;
    for (int64_t i = 0; i < s->noise->numel; i++) {
        int64_t e = i % s->sample;
        p[i] = s->mean[e] + s->std[e] * (float)normal(&st);
    }
}

/* Per-element mean and std of the training samples; a [batch,...] scratch. */
static void noise_setup(scop *s, const hone_tensor *x, int64_t batch)
{
    int64_t n = x->dims[0], m = x->numel / n;
    double *sum = calloc((size_t)m, sizeof *sum), *sq = calloc((size_t)m, sizeof *sq);
    s->mean = malloc(sizeof *s->mean * (size_t)m);
    s->std = malloc(sizeof *s->std * (size_t)m);
    HONE_ASSERT(sum && sq && s->mean && s->std);
    const float *p = x->data;
    for (int64_t i = 0; i < n * m; i++) {
        sum[i % m] += p[i];
        sq[i % m] += (double)p[i] * p[i];
    }
    for (int64_t e = 0; e < m; e++) {
        double mu = sum[e] / (double)n, var = sq[e] / (double)n - mu * mu;
        s->mean[e] = (float)mu;
        s->std[e] = (float)sqrt(var > 0 ? var : 0);
    }
    free(sum);
    free(sq);
    int64_t dims[HONE_MAX_RANK];
    memcpy(dims, x->dims, sizeof *dims * (size_t)x->rank);
    dims[0] = batch;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, x->rank, dims, &s->noise));
    s->sample = m;
    draw_noise(s, 0);
}

/* ===================== training ===================== */

static void clamp01(hone_tensor *t)
{
    float *p = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        p[i] = p[i] < 0 ? 0 : p[i] > 1 ? 1 : p[i];
}

static hone_status before_step(void *user, hone_trainer *tr, const hone_fit_step_info *info)
{
    scop *s = user;
    for (int i = 0; i < hone_trainer_n_params(tr); i++)
        if (!strncmp(hone_trainer_param_name(tr, i), "scop_beta/", 10))
            clamp01(hone_trainer_param(tr, i));
    if (!s->noise_name)
        return HONE_OK;
    draw_noise(s, (uint64_t)info->step + 1);
    return hone_trainer_set_const(tr, s->noise_name, s->noise);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* One log line on the trained gates: quartiles and how many hit 0 or 1. */
static void log_betas(const scop *s)
{
    int64_t cnt = 0, lo = 0, hi = 0;
    for (int k = 0; k < s->n; k++)
        cnt += hone_graph_find(s->gb, s->beta[k])->data->numel;
    float *all = malloc(sizeof *all * (size_t)(cnt + 1));
    HONE_ASSERT(all);
    cnt = 0;
    for (int k = 0; k < s->n; k++) {
        const hone_tensor *t = hone_graph_find(s->gb, s->beta[k])->data;
        for (int64_t i = 0; i < t->numel; i++) {
            float b = ((const float *)t->data)[i];
            all[cnt++] = b;
            lo += b <= 0;
            hi += b >= 1;
        }
    }
    qsort(all, (size_t)cnt, sizeof *all, cmp_float);
    hone_pass_log(s->pc, "knockoff gates: beta min %.3f, quartiles %.3f %.3f %.3f, max %.3f; "
                  "%lld of %lld at 0, %lld at 1", all[0], all[cnt / 4], all[cnt / 2],
                  all[3 * cnt / 4], all[cnt - 1], (long long)lo, (long long)cnt, (long long)hi);
    free(all);
}

static void on_step(void *user, const hone_fit_step_info *info)
{
    scop *s = user;
    if ((info->step + 1) % 50 == 0 || info->step + 1 == info->steps)
        hone_pass_log(s->pc, "knockoff step %lld/%lld loss %.4f (%.0f s)",
                      (long long)info->step + 1, (long long)info->steps, info->loss,
                      info->elapsed_s);
}

static hone_status train_beta(scop *s, hone_prune_job *job)
{
    hone_pass_ctx *pc = job->pc;
    hone_fit_spec fs = job->fit;
    hone_optim_spec_init(&fs.optim, HONE_OPTIM_ADAM);
    fs.optim.beta1 = 0.5;
    fs.optim.beta2 = 0.9;
    fs.schedule = HONE_SCHED_CONSTANT;
    fs.lr = hone_pass_opt_float(pc, "beta-lr");
    fs.max_steps = hone_pass_opt_int(pc, "beta-steps");
    fs.train.freeze_all_but_listed = true;
    fs.train.trainable = s->beta;
    fs.train.n_trainable = s->n;
    fs.before_step = before_step;
    fs.on_step = on_step;
    fs.user = s;
    return hone_fit(pc->ctx, s->gb, &job->train, &fs, NULL);
}

/* |gamma| * (2 beta - 1) per channel; norm = mean |gamma|. */
static void scores(scop *s, hone_prune_job *job)
{
    for (int k = 0; k < job->n; k++) {
        hone_prune_layer *l = &job->layers[k];
        hone_tensor *beta = hone_graph_find(s->gb, s->beta[k])->data;
        const hone_tensor *gamma = l->bn->in[1]->data;
        clamp01(beta);
        double sum = 0;
        for (int64_t c = 0; c < l->channels; c++) {
            double gm = fabs(hone_tensor_get_f64(gamma, c));
            l->score[c] = gm * (2 * hone_tensor_get_f64(beta, c) - 1);
            sum += gm;
        }
        l->norm = sum > 0 ? sum / (double)l->channels : 1;
    }
}

static hone_status scop_score(hone_prune_job *job)
{
    scop s = {.pc = job->pc, .seed = job->fit.seed};
    if (!strcmp(hone_pass_opt_str(job->pc, "knockoff"), "noise"))
        noise_setup(&s, job->train.x, job->fit.batch);
    hone_status st = build(&s, job);
    if (!st)
        st = train_beta(&s, job);
    if (!st) {
        scores(&s, job);
        log_betas(&s);
    }
    if (s.gb)
        hone_graph_free(s.gb);
    hone_tensor_free(s.noise);
    free(s.mean);
    free(s.std);
    return st;
}

hone_status hone_pass_scop(hone_pass_ctx *pc, hone_graph *g)
{
    const char *kind = hone_pass_opt_str(pc, "knockoff");
    if (strcmp(kind, "permute") && strcmp(kind, "noise"))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "scop: knockoff must be permute or noise, got "
                         "'%s'", kind);
    if (hone_pass_opt_int(pc, "beta-steps") < 1)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "scop: beta-steps must be at least 1");
    return hone_prune_run(pc, g, "scop", scop_score);
}
