/*
 * The data loop: epochs of optimiser steps over a dataset.
 *
 * A run first sets the held-out samples aside (hone_fit_split: drawn from
 * the training samples with a fixed seed, so every training seed is judged
 * on the same samples), builds the trainer (train.h) and an optimiser over
 * its parameters, and turns epoch-based schedule settings into steps. Each
 * epoch shuffles the training positions with a seed derived from (seed,
 * epoch); each batch gathers its samples, mirrors some of them (seed derived
 * from (seed, step)), asks the teacher for targets when training label-free,
 * runs forward+backward and one optimiser step at the schedule's rate. After
 * each epoch the held-out samples run in inference mode and are scored with
 * metric.c: top-1 against labels, PSNR against targets, and, label-free,
 * agreement with the teacher's argmax or PSNR against its outputs (computed
 * once). Every random choice comes from a seed, and the trainer and
 * interpreter are deterministic, so the same seed gives the same weights bit
 * for bit. The trainer makes the batch dimension symbolic, so batches take
 * the requested size whatever the model declares, the last one smaller.
 *
 * Data-parallel (dist.h, several ranks under mpirun): every rank draws the
 * same global batches and trains on its contiguous slice of each, the flips
 * drawn as for the whole batch; the gradients are averaged over the global
 * batch before the hooks and the optimiser see them, so B samples per rank
 * on R ranks train like one process with batch R*B. After each epoch BN
 * running statistics are averaged and rank 0's parameters broadcast; the
 * held-out batches are shared out and their scores summed. With a
 * checkpoint folder the state is saved after each epoch (ckpt.c) and a
 * resumed run continues from it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "interp.h"
#include "loop.h"

/* The held-out split draws from its own fixed stream, whatever the seed. */
#define SPLIT_SEED 0x5eedULL
enum { TAG_SHUFFLE = 1, TAG_FLIP = 2, TAG_INIT = 3 };

/* ---- random numbers: splitmix64 streams keyed by (seed, tag, index) ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A stream for (seed, tag, index), decorrelated from its neighbours. */
static rng rng_for(uint64_t seed, uint64_t tag, uint64_t index)
{
    rng r = {seed};
    r.s = rng_next(&r) ^ (tag * 0xd1b54a32d192ed03ull);
    r.s = rng_next(&r) ^ (index * 0x8cb92ba72f3d8dd7ull);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one value per call). */
static double rng_normal(rng *r)
{
    double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *hone_fit_metric_name(hone_fit_metric m)
{
    static const char *const names[] = {"none", "top1", "agree", "psnr"};
    return m >= 0 && m <= HONE_FIT_METRIC_PSNR ? names[m] : "?";
}

void hone_fit_spec_init(hone_fit_spec *s)
{
    memset(s, 0, sizeof *s);
    s->epochs = 1;
    s->batch = 64;
    hone_optim_spec_init(&s->optim, HONE_OPTIM_NESTEROV);
    s->schedule = HONE_SCHED_COSINE;
    s->lr = 0.01;
    s->gamma = 0.1;
    hone_train_spec_init(&s->train);
    s->seed = 1;
}

/* ===================== split and augmentation ===================== */

/* Held-out count for `val` over n samples. */
static hone_status held_count(hone_ctx *ctx, int64_t n, double val, int64_t *k)
{
    if (!(val >= 0) || (val >= 1 && val != floor(val)))
        return hone_fail(ctx, HONE_ERR_ARG, "held-out split must be a share in (0, 1) or a "
                         "whole sample count, got %g", val);
    *k = val >= 1 ? (int64_t)val : (int64_t)llround(val * (double)n);
    if (val > 0 && *k == 0)
        *k = 1;
    if (*k >= n)
        return hone_fail(ctx, HONE_ERR_ARG, "held-out split of %lld samples leaves none of %lld "
                         "to train on", (long long)*k, (long long)n);
    return HONE_OK;
}

hone_status hone_fit_split(hone_ctx *ctx, int64_t n, double val, int64_t **train,
                           int64_t *n_train, int64_t **held, int64_t *n_held)
{
    int64_t k = 0;
    hone_batcher b;
    *train = *held = NULL;
    hone_status st = held_count(ctx, n, val, &k);
    if (st || (st = hone_batcher_init(ctx, &b, n, 1)))
        return st;
    hone_batcher_shuffle(&b, SPLIT_SEED);
    uint8_t *is_held = calloc((size_t)n + 1, 1);
    *train = malloc(sizeof **train * (size_t)(n - k + 1));
    *held = malloc(sizeof **held * (size_t)(k + 1));
    if (!is_held || !*train || !*held) {
        free(is_held), free(*train), free(*held), hone_batcher_free(&b);
        *train = *held = NULL;
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory splitting %lld samples", (long long)n);
    }
    for (int64_t i = 0; i < k; i++)
        is_held[b.order[i]] = 1;
    *n_train = *n_held = 0;
    for (int64_t i = 0; i < n; i++)
        if (is_held[i])
            (*held)[(*n_held)++] = i;
        else
            (*train)[(*n_train)++] = i;
    free(is_held);
    hone_batcher_free(&b);
    return HONE_OK;
}

/* Reverses every run of `w` floats in [p, p + n). */
static void mirror_rows(float *p, int64_t n, int64_t w)
{
    for (int64_t r = 0; r + w <= n; r += w)
        for (int64_t a = r, z = r + w - 1; a < z; a++, z--) {
            float t = p[a];
            p[a] = p[z];
            p[z] = t;
        }
}

/* hone_fit_flip for samples that start `skip` draws into the batch's stream
 * (a rank's slice of a global batch). */
static int64_t flip_from(hone_tensor *x, hone_tensor *y, uint64_t seed, int64_t skip)
{
    HONE_ASSERT(x->dtype == HONE_DT_FLOAT && (!y || y->dtype == HONE_DT_FLOAT));
    if (x->rank < 2 || x->dims[0] == 0)
        return 0;
    int64_t b = x->dims[0], xs = x->numel / b, ys = y && y->rank >= 2 ? y->numel / b : 0;
    rng r = rng_for(seed, TAG_FLIP, 0);
    int64_t flipped = 0;
    for (int64_t i = 0; i < skip; i++)
        rng_next(&r);
    for (int64_t i = 0; i < b; i++) {
        if (rng_uniform(&r) >= 0.5)
            continue;
        mirror_rows((float *)x->data + i * xs, xs, x->dims[x->rank - 1]);
        if (ys)
            mirror_rows((float *)y->data + i * ys, ys, y->dims[y->rank - 1]);
        flipped++;
    }
    return flipped;
}

int64_t hone_fit_flip(hone_tensor *x, hone_tensor *y, uint64_t seed)
{
    return flip_from(x, y, seed, 0);
}

/* ===================== weight re-initialisation ===================== */

/* A float constant input i of n not yet visited, or NULL. */
static hone_tensor *fresh_const(const hone_node *n, int i, uint8_t *seen)
{
    if (i >= n->n_in || !n->in[i] || !n->in[i]->data || seen[n->in[i]->id])
        return NULL;
    hone_tensor *t = n->in[i]->data;
    if (t->dtype != HONE_DT_FLOAT)
        return NULL;
    seen[n->in[i]->id] = 1;
    return t;
}

static void fill(hone_tensor *t, float v)
{
    float *d = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        d[i] = v;
}

/* Kaiming-normal: N(0, 2 / fan_in). */
static void kaiming(hone_tensor *t, int64_t fan_in, rng *r)
{
    float *d = t->data;
    double sd = sqrt(2.0 / (double)(fan_in > 0 ? fan_in : 1));
    for (int64_t i = 0; i < t->numel; i++)
        d[i] = (float)(sd * rng_normal(r));
}

/* fan_in of a weight used by node n: Conv W[M,C/g,k..] -> C/g*k..;
 * ConvTranspose W[C,M/g,k..] -> M/g*k.. (torch's rule); Gemm B by transB;
 * MatMul B[K,N] -> K. */
static int64_t fan_in(const hone_node *n, const hone_tensor *w)
{
    if (w->rank < 2 || w->numel == 0)
        return 0;
    if (n->op == HONE_OP_GEMM)
        return hone_attr_int(n, "transB", 0) ? w->dims[1] : w->dims[0];
    if (n->op == HONE_OP_MATMUL)
        return w->dims[w->rank - 2];
    return w->numel / w->dims[0];
}

/* Re-initialises the weight/bias inputs of one node; counts tensors set. */
static int reinit_node(const hone_node *n, uint8_t *seen, rng *r)
{
    hone_tensor *t;
    int count = 0;
    bool weighted = n->op == HONE_OP_CONV || n->op == HONE_OP_CONV_TRANSPOSE ||
                    n->op == HONE_OP_GEMM || n->op == HONE_OP_MATMUL;
    if (weighted && (t = fresh_const(n, 1, seen)) && t->rank >= 2) {
        kaiming(t, fan_in(n, t), r);
        count++;
    }
    if (weighted && n->op != HONE_OP_MATMUL && (t = fresh_const(n, 2, seen)) && ++count)
        fill(t, 0);
    if (n->op == HONE_OP_BATCH_NORMALIZATION)
        for (int i = 1; i <= 4; i++)
            if ((t = fresh_const(n, i, seen)) && ++count)
                fill(t, i == 1 || i == 4 ? 1.0f : 0.0f);
    return count;
}

/* Add of a MatMul or Conv output and a 1-D constant: that constant is a bias. */
static int reinit_bias_add(const hone_node *n, uint8_t *seen)
{
    if (n->op != HONE_OP_ADD || n->n_in != 2)
        return 0;
    for (int i = 0; i < 2; i++) {
        const hone_node *p = n->in[1 - i] ? n->in[1 - i]->producer : NULL;
        hone_tensor *t;
        if (p && (p->op == HONE_OP_MATMUL || p->op == HONE_OP_CONV) && n->in[i] &&
            n->in[i]->data && n->in[i]->data->rank <= 1 && (t = fresh_const(n, i, seen))) {
            fill(t, 0);
            return 1;
        }
    }
    return 0;
}

hone_status hone_model_reinit(hone_ctx *ctx, hone_graph *g, uint64_t seed, int *count)
{
    uint8_t *seen = calloc((size_t)g->n_values + 1, 1);
    if (!seen)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory");
    hone_graph_update_uses(g);
    rng r = rng_for(seed, TAG_INIT, 0);
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++)
        c += reinit_node(g->nodes[i], seen, &r) + reinit_bias_add(g->nodes[i], seen);
    free(seen);
    if (count)
        *count = c;
    return HONE_OK;
}

/* ===================== the run ===================== */

typedef struct fit {
    hone_ctx *ctx;
    const hone_fit_spec *spec;
    const hone_fit_data *data;
    const hone_graph *model;
    hone_trainer *tr;
    hone_optim *opt;
    hone_schedule sched;
    hone_tensor *labels;              /* int64 copy of data->labels */
    int64_t *train_idx, n_train, *held_idx, n_held;
    hone_tensor *vx, *vref;           /* held-out samples; labels or reference outputs */
    hone_fit_metric metric;
    int64_t batch, steps_per_epoch, step, images;
    int64_t *idx;                     /* sample indices of the current batch */
    const hone_tensor **grads;
    double train_s;
    /* data-parallel (dist.h) and checkpoints */
    hone_dist_grads *dg;              /* gradient averaging; NULL with one rank */
    int64_t shard_lo;                 /* this rank's first position in the global batch */
    int start_epoch;                  /* epochs restored from a checkpoint */
} fit;

static bool uses_labels(hone_loss_kind k)
{
    return k == HONE_LOSS_CE || k == HONE_LOSS_CE_KD;
}

static bool uses_teacher_logits(hone_loss_kind k)
{
    return k == HONE_LOSS_KD || k == HONE_LOSS_CE_KD;
}

static bool is_regression(hone_loss_kind k)
{
    return k == HONE_LOSS_MSE || k == HONE_LOSS_L1;
}

/* The loss must find what it compares against. */
static hone_status check_sources(fit *f)
{
    const hone_fit_spec *s = f->spec;
    hone_loss_kind k = s->train.loss;
    if (uses_labels(k) && !f->data->labels)
        return hone_fail(f->ctx, HONE_ERR_ARG, "this loss needs labels");
    if (uses_teacher_logits(k) && !s->teacher)
        return hone_fail(f->ctx, HONE_ERR_ARG, "a distillation loss needs a teacher model");
    if (is_regression(k) && !f->data->targets && !s->teacher)
        return hone_fail(f->ctx, HONE_ERR_ARG, "MSE/L1 needs targets or a teacher model");
    if (s->teacher && (s->teacher->n_inputs != 1 || s->teacher->n_outputs < 1))
        return hone_fail(f->ctx, HONE_ERR_ARG, "the teacher must have one input and an output "
                         "(it has %d inputs)", s->teacher->n_inputs);
    return HONE_OK;
}

/* Shapes and counts of the data against each other and the spec. */
static hone_status check_data(fit *f)
{
    const hone_fit_data *d = f->data;
    const hone_fit_spec *s = f->spec;
    char buf[64];
    if (!d->x || d->x->dtype != HONE_DT_FLOAT || d->x->rank < 1 || d->x->dims[0] < 1)
        return hone_fail(f->ctx, HONE_ERR_ARG, "training samples must be a non-empty float "
                         "tensor [N, ...], got %s",
                         d->x ? hone_tensor_type_str(d->x, buf, sizeof buf) : "none");
    int64_t n = d->x->dims[0];
    if (d->labels && (!hone_dtype_is_int(d->labels->dtype) || d->labels->numel != n))
        return hone_fail(f->ctx, HONE_ERR_SHAPE, "labels must be %lld integers (one per sample), "
                         "got %s", (long long)n, hone_tensor_type_str(d->labels, buf, sizeof buf));
    if (d->targets && (d->targets->dtype != HONE_DT_FLOAT || d->targets->rank < 1 ||
                       d->targets->dims[0] != n))
        return hone_fail(f->ctx, HONE_ERR_SHAPE, "targets must be float [%lld, ...], got %s",
                         (long long)n, hone_tensor_type_str(d->targets, buf, sizeof buf));
    if ((s->epochs < 1 && s->max_steps <= 0) || s->batch < 1)
        return hone_fail(f->ctx, HONE_ERR_ARG, "epochs and batch size must be >= 1 (got %d, %lld)",
                         s->epochs, (long long)s->batch);
    if (f->model->n_inputs != 1 || f->model->n_outputs < 1)
        return hone_fail(f->ctx, HONE_ERR_ARG, "training needs a model with one input (it has "
                         "%d)", f->model->n_inputs);
    return check_sources(f);
}

/* Labels as int64, every one >= 0. */
static hone_status labels_i64(fit *f)
{
    const hone_tensor *l = f->data->labels;
    if (!l)
        return HONE_OK;
    int64_t n = l->numel;
    hone_status st = hone_tensor_new(f->ctx, HONE_DT_INT64, 1, &n, &f->labels);
    for (int64_t i = 0; i < n && !st; i++) {
        int64_t v = hone_tensor_get_i64(l, i);
        if (v < 0)
            return hone_fail(f->ctx, HONE_ERR_ARG, "label %lld of sample %lld is negative",
                             (long long)v, (long long)i);
        ((int64_t *)f->labels->data)[i] = v;
    }
    return st;
}

/* Batch size and steps per epoch. */
static hone_status plan_batches(fit *f)
{
    f->batch = f->spec->batch;
    f->steps_per_epoch = (f->n_train + f->batch - 1) / f->batch;
    f->idx = malloc(sizeof *f->idx * (size_t)f->batch);
    return f->idx ? HONE_OK : hone_fail(f->ctx, HONE_ERR_NOMEM, "out of memory");
}

/* The schedule in steps from the spec's epoch-based settings. */
static hone_status plan_schedule(fit *f)
{
    const hone_fit_spec *s = f->spec;
    double spe = (double)f->steps_per_epoch;
    hone_schedule_init(&f->sched, s->schedule, s->lr,
                       s->max_steps > 0 ? s->max_steps : f->steps_per_epoch * s->epochs);
    f->sched.min_lr = s->min_lr;
    f->sched.gamma = s->gamma;
    f->sched.warmup = s->warmup_epochs > 0 ? llround(s->warmup_epochs * spe) : 0;
    if (s->n_milestones < 0 || s->n_milestones > HONE_SCHED_MAX_MILESTONES)
        return hone_fail(f->ctx, HONE_ERR_ARG, "too many milestones (%d)", s->n_milestones);
    f->sched.n_milestones = s->n_milestones;
    for (int i = 0; i < s->n_milestones; i++)
        f->sched.milestones[i] = llround(s->milestones[i] * spe);
    return hone_schedule_check(f->ctx, &f->sched);
}

/* Trainer and an optimiser over its parameters. */
static hone_status make_trainer(fit *f)
{
    hone_status st = hone_trainer_new(f->ctx, f->model, &f->spec->train, &f->tr);
    if (st)
        return st;
    int n = hone_trainer_n_params(f->tr);
    hone_tensor **params = malloc(sizeof *params * (size_t)(n + 1));
    f->grads = calloc((size_t)n + 1, sizeof *f->grads);
    if (!params || !f->grads) {
        free(params);
        return hone_fail(f->ctx, HONE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        params[i] = hone_trainer_param(f->tr, i);
    st = hone_optim_new(f->ctx, &f->spec->optim, n, params, &f->opt);
    free(params);
    return st;
}

/* Runs the teacher on a batch; *out gets its first output. */
static hone_status run_teacher(fit *f, const hone_tensor *xb, hone_tensor **out)
{
    const hone_graph *t = f->spec->teacher;
    hone_tensor **outs = calloc((size_t)t->n_outputs, sizeof *outs);
    if (!outs)
        return hone_fail(f->ctx, HONE_ERR_NOMEM, "out of memory");
    hone_status st = hone_interp_run(f->ctx, t, &xb, outs, NULL);
    if (st)
        hone_fail_wrap(f->ctx, "teacher");
    for (int i = 1; i < t->n_outputs; i++)
        hone_tensor_free(outs[i]);
    *out = st ? NULL : outs[0];
    free(outs);
    return st;
}

/* Argmax of each row of logits [B, K] as int64 labels [B]. */
static hone_status argmax_rows(fit *f, const hone_tensor *logits, hone_tensor **out)
{
    int64_t b = logits->rank >= 1 ? logits->dims[0] : 0, k = b ? logits->numel / b : 0;
    if (k < 1)
        return hone_fail(f->ctx, HONE_ERR_SHAPE, "teacher output has no scores per sample");
    hone_status st = hone_tensor_new(f->ctx, HONE_DT_INT64, 1, &b, out);
    const float *p = logits->data;
    for (int64_t i = 0; i < b && !st; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            best = p[i * k + j] > p[i * k + best] ? j : best;
        ((int64_t *)(*out)->data)[i] = best;
    }
    return st;
}

/* Label-free reference of the held-out samples: teacher argmax or outputs. */
static hone_status teacher_reference(fit *f)
{
    hone_tensor *out;
    hone_status st = run_teacher(f, f->vx, &out);
    if (st)
        return st;
    if (out->dtype != HONE_DT_FLOAT)
        st = hone_fail(f->ctx, HONE_ERR_SHAPE, "the teacher's output must be float");
    else if (f->metric == HONE_FIT_METRIC_AGREE)
        st = argmax_rows(f, out, &f->vref);
    else
        f->vref = out, out = NULL;
    hone_tensor_free(out);
    return st;
}

/* Held-out samples and what they are scored against. */
static hone_status prepare_held_out(fit *f)
{
    const hone_fit_data *d = f->data;
    hone_loss_kind k = f->spec->train.loss;
    if (f->n_held == 0)
        return HONE_OK;
    f->metric = f->labels ? HONE_FIT_METRIC_TOP1
                : d->targets || is_regression(k) ? HONE_FIT_METRIC_PSNR
                : HONE_FIT_METRIC_AGREE;
    hone_status st = hone_data_gather(f->ctx, d->x, f->held_idx, f->n_held, f->n_held, &f->vx);
    if (st)
        return st;
    if (f->labels)
        return hone_data_gather(f->ctx, f->labels, f->held_idx, f->n_held, f->n_held, &f->vref);
    if (d->targets)
        return hone_data_gather(f->ctx, d->targets, f->held_idx, f->n_held, f->n_held, &f->vref);
    return teacher_reference(f);
}

/* Scores one held-out batch (rows pos..pos+k of vx) into *score. */
static hone_status score_batch(fit *f, int64_t pos, int64_t k, double *score)
{
    hone_tensor *xb, *out = NULL;
    for (int64_t i = 0; i < k; i++)
        f->idx[i] = pos + i;
    hone_status st = hone_data_gather(f->ctx, f->vx, f->idx, k, k, &xb);
    if (st)
        return st;
    if (f->tr) {
        st = hone_trainer_infer(f->tr, xb, &out);
    } else {
        const hone_tensor *ins[1] = {xb};
        hone_tensor **outs = calloc((size_t)f->model->n_outputs + 1, sizeof *outs);
        HONE_ASSERT(outs);
        st = hone_interp_run(f->ctx, f->model, ins, outs, NULL);
        out = outs[0];
        for (int i = 1; i < f->model->n_outputs; i++)
            hone_tensor_free(outs[i]);
        free(outs);
    }
    hone_tensor_free(xb);
    if (st)
        return st;
    if (f->metric == HONE_FIT_METRIC_PSNR) {
        st = hone_metric_psnr(f->ctx, out, f->vref, f->idx, k, 1.0, score);
    } else {
        int64_t hits = 0;
        st = hone_metric_top1(f->ctx, out, f->vref, f->idx, k, &hits);
        *score += (double)hits;
    }
    hone_tensor_free(out);
    return st;
}

/* Held-out metric of the current parameters (NAN without held-out samples). */
static hone_status evaluate(fit *f, double *metric)
{
    *metric = NAN;
    if (f->metric == HONE_FIT_METRIC_NONE)
        return HONE_OK;
    double score = 0;
    hone_status st = HONE_OK;
    int64_t nb = 0;
    for (int64_t pos = 0; pos < f->n_held && !st; pos += f->batch) {
        int64_t k = f->n_held - pos < f->batch ? f->n_held - pos : f->batch;
        if (nb++ % hone_dist_size() == hone_dist_rank()) /* the ranks share the batches */
            st = score_batch(f, pos, k, &score);
    }
    st = hone_dist_agree(f->ctx, st, "the held-out evaluation", &score, 1);
    *metric = score / (double)f->n_held;
    return st;
}

/* Inputs and targets of one training batch. */
typedef struct batch {
    hone_tensor *x, *labels, *target, *teacher;
} batch;

static void batch_free(batch *b)
{
    hone_tensor_free(b->x);
    hone_tensor_free(b->labels);
    hone_tensor_free(b->target);
    hone_tensor_free(b->teacher);
}

/* Gathers, augments and labels the samples f->idx[0..k). */
static hone_status make_batch(fit *f, int64_t k, batch *b)
{
    const hone_fit_data *d = f->data;
    hone_loss_kind loss = f->spec->train.loss;
    hone_status st = hone_data_gather(f->ctx, d->x, f->idx, k, k, &b->x);
    if (!st && f->labels && uses_labels(loss))
        st = hone_data_gather(f->ctx, f->labels, f->idx, k, k, &b->labels);
    if (!st && d->targets && is_regression(loss))
        st = hone_data_gather(f->ctx, d->targets, f->idx, k, k, &b->target);
    if (!st && f->spec->flip)
        flip_from(b->x, b->target, rng_for(f->spec->seed, TAG_FLIP, (uint64_t)f->step).s,
                  f->shard_lo);
    bool want_teacher = uses_teacher_logits(loss) || (is_regression(loss) && !b->target);
    if (!st && f->spec->teacher && want_teacher)
        st = run_teacher(f, b->x, is_regression(loss) ? &b->target : &b->teacher);
    return st;
}

/* Forward and backward on the samples f->idx[0..k); *loss gets the batch loss. */
static hone_status forward_backward(fit *f, int64_t k, float *loss)
{
    batch b = {0};
    hone_status st = make_batch(f, k, &b);
    if (!st)
        st = hone_trainer_step(f->tr, b.x, b.labels, b.target ? b.target : b.teacher, loss);
    batch_free(&b);
    if (!st && !isfinite(*loss))
        st = hone_fail(f->ctx, HONE_ERR_ARG, "the loss became %g at step %lld (lower the "
                       "learning rate, or clip gradients)", *loss, (long long)f->step);
    return st;
}

/* Data-parallel: the ranks agree on the step's outcome, the loss becomes the
 * global batch's and f->grads the global batch's mean gradients (each rank
 * weighs its batch mean by its share k / total). */
static hone_status average_over_ranks(fit *f, hone_status st, int64_t k, int64_t total,
                                      float *loss)
{
    char what[48];
    double sum = !st && k > 0 ? (double)*loss * (double)k : 0;
    snprintf(what, sizeof what, "step %lld", (long long)f->step);
    if ((st = hone_dist_agree(f->ctx, st, what, &sum, 1)))
        return st;
    *loss = (float)(sum / (double)total);
    int n = hone_trainer_n_params(f->tr);
    for (int i = 0; i < n; i++)
        f->grads[i] = k > 0 ? hone_trainer_grad(f->tr, i) : NULL;
    st = hone_dist_grads_reduce(f->dg, f->grads, (double)k / (double)total, f->step);
    for (int i = 0; i < n; i++)
        f->grads[i] = hone_dist_grads_get(f->dg, i);
    return st;
}

/* Forward, backward and one optimiser step on the samples f->idx[0..k), this
 * rank's part of a global batch of `total`. */
static hone_status train_step(fit *f, int64_t k, int64_t total, hone_fit_step_info *info)
{
    float loss = 0;
    info->step = f->step;
    info->lr = hone_schedule_lr(&f->sched, f->step);
    hone_status st = f->spec->before_step ? f->spec->before_step(f->spec->user, f->tr, info)
                                          : HONE_OK;
    if (!st && k > 0)
        st = forward_backward(f, k, &loss);
    if (f->dg)
        st = average_over_ranks(f, st, k, total, &loss);
    if (st)
        return st;
    int n = hone_trainer_n_params(f->tr);
    for (int i = 0; i < n && !f->dg; i++)
        f->grads[i] = hone_trainer_grad(f->tr, i);
    double m = hone_schedule_momentum(&f->sched, f->step);
    if (m >= 0)
        hone_optim_set_momentum(f->opt, m);
    info->loss = loss;
    if (f->spec->before_update &&
        (st = f->spec->before_update(f->spec->user, f->tr, (hone_tensor *const *)f->grads, info)))
        return st;
    return hone_optim_step(f->opt, f->grads, info->lr, &info->grad_norm);
}

/* One pass over the training samples in a shuffled order. */
static hone_status train_epoch(fit *f, hone_batcher *bt, int epoch, hone_fit_epoch_info *ei)
{
    const hone_fit_spec *s = f->spec;
    int epochs = s->max_steps > 0 ? (int)((s->max_steps + f->steps_per_epoch - 1) /
                                          f->steps_per_epoch) : s->epochs;
    hone_fit_step_info info = {.epoch = epoch, .epochs = epochs,
                               .steps = f->sched.total, .epoch_size = f->n_train};
    const int64_t *pos;
    int64_t k;
    double sum = 0, t0 = now_s();
    hone_status st = HONE_OK;
    hone_batcher_shuffle(bt, rng_for(s->seed, TAG_SHUFFLE, (uint64_t)epoch).s);
    while (!st && (s->max_steps <= 0 || f->step < s->max_steps) &&
           (k = hone_batcher_next(bt, &pos)) > 0) {
        /* this rank's slice [lo, hi) of the global batch (all of it with one rank) */
        int r = hone_dist_rank(), size = hone_dist_size();
        int64_t lo = k * r / size, hi = k * (r + 1) / size;
        for (int64_t i = lo; i < hi; i++)
            f->idx[i - lo] = f->train_idx[pos[i]];
        f->shard_lo = lo;
        hone_dist_fault_point(f->step);
        st = train_step(f, hi - lo, k, &info);
        sum += info.loss * (double)k;
        info.epoch_images += k;
        f->images += k;
        info.step = f->step++;
        info.elapsed_s = f->train_s + now_s() - t0;
        if (!st && s->on_step)
            s->on_step(s->user, &info);
    }
    ei->epoch_s = now_s() - t0;
    f->train_s += ei->epoch_s;
    ei->loss = info.epoch_images ? sum / (double)info.epoch_images : NAN;
    ei->lr = info.lr;
    ei->images_per_s = (double)info.epoch_images / (ei->epoch_s > 0 ? ei->epoch_s : 1e-9);
    return st;
}

/* Everything before the first step. */
static hone_status setup(fit *f)
{
    hone_status st = check_data(f);
    if (!st)
        st = labels_i64(f);
    if (!st)
        st = hone_fit_split(f->ctx, f->data->x->dims[0], f->spec->val_split, &f->train_idx,
                            &f->n_train, &f->held_idx, &f->n_held);
    if (!st)
        st = plan_batches(f);
    if (!st)
        st = plan_schedule(f);
    if (!st)
        st = make_trainer(f);
    if (!st && hone_dist_active())
        st = hone_dist_grads_new(f->ctx, f->tr, 0, &f->dg);
    if (!st)
        st = prepare_held_out(f);
    return st;
}

/* ---- checkpoints (ckpt.c) ---- */

static hone_ckpt_pos ckpt_pos(const fit *f, int epoch)
{
    return (hone_ckpt_pos){.seed = f->spec->seed, .epoch = epoch, .step = f->step,
                           .images = f->images, .train_s = f->train_s, .n_train = f->n_train,
                           .batch = f->batch, .optim = (int32_t)f->spec->optim.kind};
}

/* Continues from the checkpoint in spec->checkpoint_dir, when there is one. */
static hone_status resume(fit *f)
{
    hone_ckpt_pos want = ckpt_pos(f, 0), got = {0};
    bool found = false;
    hone_status st = hone_ckpt_load(f->ctx, f->spec->checkpoint_dir, f->tr, f->opt, &want, &got,
                                    &found);
    double seen = found;
    st = hone_dist_agree(f->ctx, st, "reading the checkpoint", &seen, 1);
    if (!st && seen != 0 && seen != hone_dist_size())
        st = hone_fail(f->ctx, HONE_ERR_IO, "%s: only %g of %d ranks see the checkpoint; the "
                       "folder must be shared by every rank", f->spec->checkpoint_dir, seen,
                       hone_dist_size());
    if (st || !found)
        return st;
    f->start_epoch = (int)got.epoch;
    f->step = got.step;
    f->images = got.images;
    f->train_s = got.train_s;
    return HONE_OK;
}

static hone_status save_checkpoint(fit *f, int epochs_done)
{
    hone_ckpt_pos pos = ckpt_pos(f, epochs_done);
    return hone_ckpt_save(f->ctx, f->spec->checkpoint_dir, f->tr, f->opt, &pos);
}

static hone_status run_epochs(fit *f, hone_fit_result *res)
{
    const hone_fit_spec *s = f->spec;
    hone_batcher bt;
    hone_status st = hone_batcher_init(f->ctx, &bt, f->n_train, f->batch);
    int epochs = s->max_steps > 0 ? (int)((s->max_steps + f->steps_per_epoch - 1) /
                                          f->steps_per_epoch) : s->epochs;
    if (!st && s->checkpoint_dir && s->resume)
        st = resume(f);
    /* each epoch's shuffle permutes the previous order: replay the skipped ones */
    for (int e = 0; e < f->start_epoch; e++)
        hone_batcher_shuffle(&bt, rng_for(s->seed, TAG_SHUFFLE, (uint64_t)e).s);
    for (int e = f->start_epoch; e < epochs && !st; e++) {
        hone_fit_epoch_info ei = {.epoch = e, .epochs = epochs, .metric_kind = f->metric};
        st = train_epoch(f, &bt, e, &ei);
        if (!st)
            st = hone_dist_sync_trainer(f->ctx, f->tr);
        if (!st)
            st = evaluate(f, &ei.metric);
        if (!st && s->checkpoint_dir)
            st = save_checkpoint(f, e + 1);
        ei.step = f->step;
        if (!st && s->on_epoch)
            s->on_epoch(s->user, &ei);
        res->loss = ei.loss;
        res->metric = ei.metric;
    }
    hone_batcher_free(&bt);
    return st;
}

static void release(fit *f)
{
    hone_optim_free(f->opt);
    if (f->tr)
        hone_trainer_free(f->tr);
    hone_tensor_free(f->labels);
    hone_tensor_free(f->vx);
    hone_tensor_free(f->vref);
    free(f->train_idx);
    free(f->held_idx);
    free(f->idx);
    free(f->grads);
    hone_dist_grads_free(f->dg);
}

hone_status hone_fit(hone_ctx *ctx, hone_graph *model, const hone_fit_data *data,
                     const hone_fit_spec *spec, hone_fit_result *res)
{
    fit f = {.ctx = ctx, .spec = spec, .data = data, .model = model};
    hone_fit_result local;
    res = res ? res : &local;
    memset(res, 0, sizeof *res);
    res->metric = NAN;
    hone_status st = setup(&f);
    if (!st)
        st = run_epochs(&f, res);
    if (!st)
        st = hone_trainer_sync(f.tr, model);
    res->steps = f.step;
    res->images = f.images;
    res->n_train = f.n_train;
    res->n_held = f.n_held;
    res->metric_kind = f.metric;
    res->train_s = f.train_s;
    res->images_per_s = f.train_s > 0 ? (double)res->images / f.train_s : 0;
    res->ranks = hone_dist_size();
    res->allreduce_bytes = f.dg ? hone_dist_grads_bytes(f.dg) : 0;
    res->allreduce_s = f.dg ? hone_dist_grads_seconds(f.dg) : 0;
    res->resumed_epochs = f.start_epoch;
    release(&f);
    return st;
}

hone_status hone_fit_evaluate(hone_ctx *ctx, const hone_graph *model, const hone_fit_data *data,
                              const hone_fit_spec *spec, hone_fit_metric *kind, double *metric)
{
    hone_fit_spec sp = *spec;
    if (sp.epochs < 1)
        sp.epochs = 1;
    fit f = {.ctx = ctx, .spec = &sp, .data = data, .model = model};
    *metric = NAN;
    *kind = HONE_FIT_METRIC_NONE;
    hone_status st = check_data(&f);
    if (!st)
        st = labels_i64(&f);
    if (!st)
        st = hone_fit_split(ctx, data->x->dims[0], sp.val_split, &f.train_idx, &f.n_train,
                            &f.held_idx, &f.n_held);
    if (!st)
        st = plan_batches(&f);
    if (!st)
        st = prepare_held_out(&f);
    if (!st)
        st = evaluate(&f, metric);
    *kind = f.metric;
    release(&f);
    return st;
}
