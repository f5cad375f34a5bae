/*
 * BatchNormalization statistics re-estimation ("recalibrate-bn").
 *
 * After weights change (pruning, quantisation, fine-tuning with frozen
 * statistics) the running mean and variance a BN layer normalises with no
 * longer describe its input. The fix is torch's update_bn: run the model in
 * training mode, so every BN normalises with its batch's own statistics and
 * the layers after it see what they saw in training, over a few calibration
 * batches, and set each BN's running statistics to the average over batches
 * of its batch mean and unbiased batch variance (momentum None).
 *
 * The model is cloned, the clone's BN nodes are switched to training mode
 * (opset-14 form, no extra outputs), and the clone runs in the reference
 * interpreter with a hook that sees every BN input as it is computed; no
 * gradient is built. The averages are written into the original graph's
 * mean/var constants. Only whole batches are used when the model's batch
 * size is fixed: padding rows would bias the statistics.
 *
 * Data-parallel (dist.h): rank r runs batches r, r + R, ... and the ranks
 * add up their sums, so R ranks give what one process gives.
 */
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "hone_rt.h"
#include "interp.h"
#include "loop.h"
#include "passes.h"

/* One BN of the original graph and its running sums. */
typedef struct bn_acc {
    hone_node *orig, *clone;
    int64_t c;
    double *sum_mean, *sum_var;   /* c each */
} bn_acc;

typedef struct recal {
    hone_ctx *ctx;
    bn_acc *bn;
    int n_bn;
    float *scratch;               /* 2 * max c */
    hone_status st;
} recal;

/* A BN whose mean and var are float constants of one value per channel. */
static bool recalibratable(const hone_node *n)
{
    if (n->op != HONE_OP_BATCH_NORMALIZATION || n->n_in < 5)
        return false;
    for (int i = 3; i <= 4; i++)
        if (!n->in[i] || !n->in[i]->data || n->in[i]->data->dtype != HONE_DT_FLOAT ||
            n->in[i]->data->rank != 1)
            return false;
    return n->in[3]->data->numel == n->in[4]->data->numel;
}

/* Switches a cloned BN node to batch statistics with no extra outputs. */
static hone_status to_training(hone_ctx *ctx, hone_graph *g, hone_node *n)
{
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] && (n->out[i]->n_uses || (n->out[i]->flags & HONE_VAL_OUTPUT)))
            return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "BatchNormalization already "
                                  "returns training statistics; cannot recalibrate it");
    n->n_out = 1;
    if (n->opset < 14)
        n->opset = 14;
    hone_node_set_attr_int(g, n, "training_mode", 1);
    return HONE_OK;
}

/* Collects the BN nodes of g, paired with their clones in c. */
static hone_status collect(recal *r, hone_graph *g, hone_graph *c)
{
    r->bn = calloc((size_t)g->n_nodes + 1, sizeof *r->bn);
    if (!r->bn)
        return hone_fail(r->ctx, HONE_ERR_NOMEM, "out of memory");
    hone_graph_update_uses(c);
    int64_t cmax = 0;
    hone_status st = HONE_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        if (!recalibratable(g->nodes[i]))
            continue;
        bn_acc *b = &r->bn[r->n_bn++];
        b->orig = g->nodes[i];
        b->clone = c->nodes[i];
        b->c = b->orig->in[3]->data->numel;
        b->sum_mean = calloc((size_t)b->c * 2 + 1, sizeof(double));
        b->sum_var = b->sum_mean + b->c;
        cmax = b->c > cmax ? b->c : cmax;
        st = b->sum_mean ? to_training(r->ctx, c, b->clone)
                         : hone_fail(r->ctx, HONE_ERR_NOMEM, "out of memory");
    }
    r->scratch = st ? NULL : malloc(sizeof(float) * (size_t)(2 * cmax + 1));
    return st || r->scratch ? st : hone_fail(r->ctx, HONE_ERR_NOMEM, "out of memory");
}

/* Adds one batch's mean and unbiased variance of x [N, C, ...] to b. */
static void accumulate(recal *r, bn_acc *b, const hone_tensor *x)
{
    if (r->st)
        return;
    if (x->dtype != HONE_DT_FLOAT || x->rank < 2 || x->dims[1] != b->c) {
        char buf[64];
        r->st = hone_node_fail(r->ctx, b->orig, HONE_ERR_UNSUPPORTED, "recalibration needs a "
                               "float [N, %lld, ...] input, got %s", (long long)b->c,
                               hone_tensor_type_str(x, buf, sizeof buf));
        return;
    }
    int64_t n = x->dims[0], plane = n ? x->numel / (n * b->c) : 0, m = n * plane;
    float *mean = r->scratch, *var = r->scratch + b->c;
    hone_rt_channel_moments(n, b->c, plane, x->data, mean, var);
    double unbias = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    for (int64_t i = 0; i < b->c; i++) {
        b->sum_mean[i] += mean[i];
        b->sum_var[i] += var[i] * unbias;
    }
}

/* Interpreter hook: every BN input of the clone, as it is computed. */
static void on_value(void *user, const hone_value *v, const hone_tensor *t)
{
    recal *r = user;
    for (int i = 0; i < r->n_bn; i++)
        if (r->bn[i].clone->in[0] == v)
            accumulate(r, &r->bn[i], t);
}

/* Runs the clone on one batch; BN inputs that are graph inputs are taken here. */
static hone_status run_batch(recal *r, const hone_graph *c, const hone_tensor *xb)
{
    hone_interp_hooks hooks = {on_value, r};
    hone_tensor **outs = calloc((size_t)c->n_outputs + 1, sizeof *outs);
    if (!outs)
        return hone_fail(r->ctx, HONE_ERR_NOMEM, "out of memory");
    on_value(r, c->inputs[0], xb);
    hone_status st = r->st ? r->st : hone_interp_run(r->ctx, c, &xb, outs, &hooks);
    for (int i = 0; i < c->n_outputs; i++)
        hone_tensor_free(outs[i]);
    free(outs);
    return st ? st : r->st;
}

/* Every batch of x through the clone; *nb gets the number of batches. */
static hone_status run_all(recal *r, const hone_graph *c, const hone_tensor *x, int64_t batch,
                           int64_t *nb)
{
    const hone_value *in = c->inputs[0];
    int64_t fixed = in->rank >= 1 && in->dims[0] >= 1 ? in->dims[0] : 0, n = x->dims[0];
    batch = fixed ? fixed : batch;
    hone_batcher b;
    hone_status st = hone_batcher_init(r->ctx, &b, n, batch);
    const int64_t *idx;
    int64_t k;
    *nb = 0;
    while (!st && (k = hone_batcher_next(&b, &idx)) > 0 && !(fixed && k < fixed)) {
        if ((*nb)++ % hone_dist_size() != hone_dist_rank())
            continue;   /* another rank's batch */
        hone_tensor *xb;
        st = hone_data_gather(r->ctx, x, idx, k, k, &xb);
        if (!st)
            st = run_batch(r, c, xb);
        hone_tensor_free(xb);
    }
    hone_batcher_free(&b);
    if (!st && *nb == 0)
        st = hone_fail(r->ctx, HONE_ERR_ARG, "%lld calibration samples make no batch of the "
                       "model's fixed size %lld", (long long)n, (long long)fixed);
    return st;
}

/* Data-parallel: every rank's sums added up (a no-op with one rank). */
static hone_status sum_over_ranks(recal *r, hone_status st)
{
    st = hone_dist_agree(r->ctx, st, "BN recalibration", NULL, 0);
    for (int i = 0; i < r->n_bn && !st; i++)
        st = hone_dist_sum_f64(r->ctx, r->bn[i].sum_mean, 2 * r->bn[i].c,
                               "the BN statistics allreduce");
    return st;
}

/* Running statistics = batch averages, written into the original graph. */
static void store(recal *r, int64_t nb)
{
    for (int i = 0; i < r->n_bn; i++) {
        bn_acc *b = &r->bn[i];
        float *mean = b->orig->in[3]->data->data, *var = b->orig->in[4]->data->data;
        for (int64_t j = 0; j < b->c; j++) {
            mean[j] = (float)(b->sum_mean[j] / (double)nb);
            var[j] = (float)(b->sum_var[j] / (double)nb);
        }
    }
}

static hone_status check_args(hone_ctx *ctx, const hone_graph *g, const hone_tensor *x,
                              int64_t batch)
{
    char buf[64];
    if (g->n_inputs != 1)
        return hone_fail(ctx, HONE_ERR_ARG, "BN recalibration needs a model with one input "
                         "(it has %d)", g->n_inputs);
    if (!x || x->dtype != HONE_DT_FLOAT || x->rank < 1 || x->dims[0] < 1 || batch < 1)
        return hone_fail(ctx, HONE_ERR_ARG, "BN recalibration needs float samples [N, ...] and "
                         "a batch size >= 1 (got %s, batch %lld)",
                         x ? hone_tensor_type_str(x, buf, sizeof buf) : "none", (long long)batch);
    return HONE_OK;
}

hone_status hone_bn_recalibrate(hone_ctx *ctx, hone_graph *g, const hone_tensor *x,
                                int64_t batch, int *n_bn)
{
    hone_status st = check_args(ctx, g, x, batch);
    if (st)
        return st;
    recal r = {.ctx = ctx};
    hone_graph *c = hone_graph_clone(g);
    if (!c)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory cloning the model");
    int64_t nb = 0;
    st = collect(&r, g, c);
    if (!st && r.n_bn)
        st = sum_over_ranks(&r, run_all(&r, c, x, batch, &nb));
    if (!st && r.n_bn)
        store(&r, nb);
    if (n_bn)
        *n_bn = st ? 0 : r.n_bn;
    for (int i = 0; i < r.n_bn; i++)
        free(r.bn[i].sum_mean);
    free(r.bn);
    free(r.scratch);
    hone_graph_free(c);
    return st;
}

/* ===================== the pass ===================== */

/* recalibrate-bn{data=FILE, samples=N, batch=B, scale, mean, std}: the first
 * N samples of FILE, normalised (x*scale - mean)/std and shaped like the
 * model input, re-estimate every BN's running statistics. */
hone_status hone_pass_recalibrate_bn(hone_pass_ctx *pc, hone_graph *g)
{
    const char *path = hone_pass_opt_str(pc, "data");
    hone_norm nm = {hone_pass_opt_float(pc, "scale"), hone_pass_opt_float(pc, "mean"),
                    hone_pass_opt_float(pc, "std")};
    hone_tensor *raw, *x = NULL;
    int n_bn = 0;
    if (g->n_inputs != 1)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "recalibrate-bn needs a model with one input "
                         "(it has %d)", g->n_inputs);
    if (!*path && pc->data && pc->data->x) {
        /* the common --data flag: already normalised and shaped */
        hone_tensor *all = hone_tensor_clone(pc->data->x);
        HONE_ASSERT(all);
        hone_data_limit(all, hone_pass_opt_int(pc, "samples"));
        hone_status st = hone_bn_recalibrate(pc->ctx, g, all, hone_pass_opt_int(pc, "batch"),
                                             &n_bn);
        hone_tensor_free(all);
        hone_pass_note(pc, "BN nodes recalibrated", n_bn);
        return st;
    }
    if (!*path)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "recalibrate-bn needs calibration samples: "
                         "--data FILE, or recalibrate-bn{data=FILE}");
    if (g->n_inputs != 1)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "recalibrate-bn needs a model with one input "
                         "(it has %d)", g->n_inputs);
    hone_status st = hone_data_load(pc->ctx, path, &raw);
    if (st)
        return st;
    hone_data_limit(raw, hone_pass_opt_int(pc, "samples"));
    st = hone_data_to_float(pc->ctx, raw, nm, &x);
    hone_tensor_free(raw);
    if (!st)
        st = hone_data_fit_shape(pc->ctx, x, g, g->inputs[0]);
    if (!st)
        st = hone_bn_recalibrate(pc->ctx, g, x, hone_pass_opt_int(pc, "batch"), &n_bn);
    hone_tensor_free(x);
    hone_pass_note(pc, "BN nodes recalibrated", n_bn);
    return st;
}
