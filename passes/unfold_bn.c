/*
 * unfold-bn: the inverse of fold-bn, for passes that prune, quantize or
 * retrain models whose exporter folded BatchNormalization into the convs.
 * For each chosen Conv with constant float weights whose output no BN reads,
 * the bias moves into a new BatchNormalization after the conv:
 *   z = Conv(x, W)                      (no bias)
 *   y = BN(z; mean = mu, var = s2, scale = sqrt(s2 + eps), B = mu + b)
 * mu and s2 are the per-channel mean and (biased) variance of z over
 * calibration samples (mu = 0, s2 = 1 without samples). In inference form
 * BN(z) = (z - mu) + mu + b = z + b, so the model's function is unchanged
 * (up to float rounding), while training-mode BN now sees batch statistics
 * close to its running ones, and per-channel BN scales exist for methods
 * that rank, gate or re-estimate channels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "interp.h"
#include "passes.h"

typedef struct stat_acc {
    const hone_graph *g;
    int n;
    hone_value **vals;     /* conv outputs watched */
    double **sum, **sq;    /* per channel */
    int64_t *count;        /* elements per channel so far */
    const hone_tensor **bias;
} stat_acc;

static void on_value(void *user, const hone_value *v, const hone_tensor *t)
{
    stat_acc *a = user;
    for (int k = 0; k < a->n; k++) {
        if (a->vals[k] != v || t->dtype != HONE_DT_FLOAT || t->rank < 2)
            continue;
        int64_t n = t->dims[0], c = t->dims[1], inner = t->numel / (n * c);
        const float *p = t->data;
        const hone_tensor *b = a->bias[k];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++) {
                double bj = b ? hone_tensor_get_f64(b, j) : 0, s = 0, q = 0;
                const float *r = p + (i * c + j) * inner;
                for (int64_t e = 0; e < inner; e++) {
                    double z = (double)r[e] - bj;
                    s += z;
                    q += z * z;
                }
                a->sum[k][j] += s;
                a->sq[k][j] += q;
            }
        a->count[k] += n * inner;
    }
}

static bool has_bn_reader(const hone_graph *g, const hone_value *v)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *n = g->nodes[i];
        if (hone_pass_is_op(n, "BatchNormalization") && n->n_in && n->in[0] == v)
            return true;
    }
    return false;
}

static bool unfoldable(const hone_graph *g, const hone_node *n)
{
    if (!hone_pass_is_op(n, "Conv") || n->n_in < 2 || !hone_pass_is_const(n->in[1]) ||
        n->in[1]->data->dtype != HONE_DT_FLOAT || n->in[1]->data->rank < 3 || !n->out[0])
        return false;
    int64_t c = n->in[1]->data->dims[0];
    if (n->n_in > 2 && n->in[2] &&
        (!hone_pass_is_const(n->in[2]) || n->in[2]->data->numel != c))
        return false;
    return !has_bn_reader(g, n->out[0]);
}

/* Statistics of the bias-free outputs of convs[0..n) over x. */
static hone_status gather_stats(hone_ctx *ctx, const hone_graph *g, hone_node **convs, int n,
                                const hone_tensor *x, int64_t samples, int64_t batch,
                                stat_acc *a)
{
    a->g = g;
    a->n = n;
    a->vals = calloc((size_t)n + 1, sizeof *a->vals);
    a->sum = calloc((size_t)n + 1, sizeof *a->sum);
    a->sq = calloc((size_t)n + 1, sizeof *a->sq);
    a->count = calloc((size_t)n + 1, sizeof *a->count);
    a->bias = calloc((size_t)n + 1, sizeof *a->bias);
    HONE_ASSERT(a->vals && a->sum && a->sq && a->count && a->bias);
    for (int k = 0; k < n; k++) {
        int64_t c = convs[k]->in[1]->data->dims[0];
        a->vals[k] = convs[k]->out[0];
        a->sum[k] = calloc((size_t)c, sizeof **a->sum);
        a->sq[k] = calloc((size_t)c, sizeof **a->sq);
        HONE_ASSERT(a->sum[k] && a->sq[k]);
        a->bias[k] = convs[k]->n_in > 2 && convs[k]->in[2] ? convs[k]->in[2]->data : NULL;
    }
    if (!x)
        return HONE_OK;
    int64_t total = x->dims[0] < samples ? x->dims[0] : samples;
    hone_interp_hooks hooks = {on_value, a};
    hone_status st = HONE_OK;
    int64_t *idx = malloc(sizeof *idx * (size_t)batch);
    HONE_ASSERT(idx);
    for (int64_t pos = 0; pos < total && !st; pos += batch) {
        int64_t k = total - pos < batch ? total - pos : batch;
        for (int64_t i = 0; i < k; i++)
            idx[i] = pos + i;
        hone_tensor *xb = NULL, *outs[16] = {0};
        st = hone_data_gather(ctx, x, idx, k, k, &xb);
        const hone_tensor *ins[1] = {xb};
        if (!st && g->n_outputs <= 16)
            st = hone_interp_run(ctx, g, ins, outs, &hooks);
        for (int i = 0; i < 16; i++)
            hone_tensor_free(outs[i]);
        hone_tensor_free(xb);
    }
    free(idx);
    return st;
}

static void stats_free(stat_acc *a)
{
    for (int k = 0; k < a->n; k++) {
        free(a->sum[k]);
        free(a->sq[k]);
    }
    free(a->vals);
    free(a->sum);
    free(a->sq);
    free(a->count);
    free(a->bias);
}

static hone_value *vec(hone_graph *g, int64_t c, const double *v, const char *hint)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, 1, &c, &t));
    for (int64_t i = 0; i < c; i++)
        ((float *)t->data)[i] = (float)v[i];
    return hone_pass_new_const(g, t, hint);
}

/* Rewrites conv k: bias out, BN in. */
static void unfold_one(hone_graph *g, hone_node *conv, const stat_acc *a, int k, double eps)
{
    int64_t c = conv->in[1]->data->dims[0];
    double *mean = malloc(sizeof *mean * (size_t)c), *var = malloc(sizeof *var * (size_t)c);
    double *scale = malloc(sizeof *scale * (size_t)c), *shift = malloc(sizeof *shift * (size_t)c);
    HONE_ASSERT(mean && var && scale && shift);
    for (int64_t j = 0; j < c; j++) {
        double cnt = (double)a->count[k];
        mean[j] = cnt > 0 ? a->sum[k][j] / cnt : 0;
        var[j] = cnt > 0 ? a->sq[k][j] / cnt - mean[j] * mean[j] : 1;
        if (!(var[j] > 1e-12))
            var[j] = 1e-12;
        scale[j] = sqrt(var[j] + eps);
        shift[j] = mean[j] + (a->bias[k] ? hone_tensor_get_f64(a->bias[k], j) : 0);
    }
    const char *name = conv->name && *conv->name ? conv->name : conv->out[0]->name;
    hone_node *bn = hone_graph_add_node(g, "BatchNormalization", "",
                                        hone_arena_printf(g->arena, "%s_bn", name), 5, 1);
    hone_value *z = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_nobias",
                                                              conv->out[0]->name));
    bn->in[0] = z;
    bn->in[1] = vec(g, c, scale, hone_arena_printf(g->arena, "%s_bn_scale", name));
    bn->in[2] = vec(g, c, shift, hone_arena_printf(g->arena, "%s_bn_bias", name));
    bn->in[3] = vec(g, c, mean, hone_arena_printf(g->arena, "%s_bn_mean", name));
    bn->in[4] = vec(g, c, var, hone_arena_printf(g->arena, "%s_bn_var", name));
    hone_node_set_attr_float(g, bn, "epsilon", (float)eps);
    bn->out[0] = conv->out[0];
    conv->out[0] = z;
    if (conv->n_in > 2)
        conv->in[2] = NULL, conv->n_in = 2;
    free(mean);
    free(var);
    free(scale);
    free(shift);
}

hone_status hone_unfold_bn(hone_ctx *ctx, hone_graph *g, const hone_tensor *x, int64_t samples,
                           double eps, bool (*select)(const hone_node *, void *), void *user,
                           int *count)
{
    hone_node **convs = malloc(sizeof *convs * ((size_t)g->n_nodes + 1));
    HONE_ASSERT(convs);
    int n = 0;
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes; i++)
        if (unfoldable(g, g->nodes[i]) && (!select || select(g->nodes[i], user)))
            convs[n++] = g->nodes[i];
    stat_acc a = {0};
    int64_t b0 = g->n_inputs && g->inputs[0]->rank > 0 ? g->inputs[0]->dims[0] : -1;
    hone_status st = gather_stats(ctx, g, convs, n, x, samples, b0 > 0 ? b0 : 64, &a); /* a fixed batch wins */
    for (int k = 0; k < n && !st; k++)
        unfold_one(g, convs[k], &a, k, eps);
    stats_free(&a);
    free(convs);
    if (count)
        *count = st ? 0 : n;
    if (!st)
        hone_graph_update_uses(g);
    return st;
}

static bool not_skipped(const hone_node *n, void *user)
{
    const char *skip = user;
    return !*skip || !hone_pass_in_list(skip, n->name ? n->name : "");
}

hone_status hone_pass_unfold_bn(hone_pass_ctx *pc, hone_graph *g)
{
    int count = 0;
    const hone_tensor *x = pc->data ? pc->data->x : NULL;
    hone_status st = hone_unfold_bn(pc->ctx, g, x, hone_pass_opt_int(pc, "samples"),
                                    hone_pass_opt_float(pc, "epsilon"), not_skipped,
                                    (void *)hone_pass_opt_str(pc, "skip"), &count);
    hone_pass_note(pc, "BN inserted", count);
    if (!st && !x && count)
        hone_pass_log(pc, "no --data: BN statistics set to mean 0, variance 1");
    return st;
}
