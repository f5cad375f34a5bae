/*
 * Filter pruning common to scop and prune-l1 (prune.h has the structure rule).
 *
 * The driver, hone_prune_run, is the same for every scoring method so that
 * the methods differ only in their scores:
 *   1. find the prunable convs on the model as given (BN usually folded);
 *   2. hold out the pass data's validation share (hone_fit_split, the same
 *      draw hone_fit uses) and measure the held-out metric of the original;
 *   3. re-introduce a function-preserving BN after each prunable conv
 *      (hone_unfold_bn, statistics from the training split);
 *   4. the method scores every channel (scop trains knockoff gates here);
 *   5. select (per-layer rate, or a global FLOPs/params target, greedy over
 *      layer-normalised scores) and physically remove the channels;
 *   6. re-estimate BN statistics, fine-tune all weights (Nesterov SGD,
 *      momentum 0.9, weight decay 1e-4, cosine, ft-steps steps; CE with
 *      labels, KD from the original model without), fold BN back (fold-bn);
 *   7. measure the held-out metric again and report per-layer widths, params,
 *      FLOPs, metrics and the time of each phase (--report detail and log).
 * The training split is cut to a whole number of batches so every training
 * batch has the same size (scop's noise knockoff is a fixed-shape constant).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cost.h"
#include "dataset.h"
#include "prune.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ===================== structure detection ===================== */

static bool float_const(const hone_value *v)
{
    return hone_pass_is_const(v) && v->data->dtype == HONE_DT_FLOAT;
}

/* A group-1 Conv with constant float weights (and bias, if any). */
static bool plain_conv(const hone_node *n)
{
    if (!hone_pass_is_op(n, "Conv") || n->n_in < 2 || n->n_out < 1 || !n->out[0] ||
        hone_attr_int(n, "group", 1) != 1 || !float_const(n->in[1]) ||
        n->in[1]->data->rank < 3)
        return false;
    const hone_value *b = n->n_in > 2 ? n->in[2] : NULL;
    return !b || (float_const(b) && b->data->numel == n->in[1]->data->dims[0]);
}

/* Ops that act on each channel alone and carry no per-channel parameters. */
static bool channelwise(const hone_node *n)
{
    static const char *const ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh",
                                      "MaxPool", "AveragePool", "Identity", "Dropout"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (hone_pass_is_op(n, ops[i]))
            break;
        else if (i + 1 == sizeof ops / sizeof *ops)
            return false;
    for (int j = 1; j < n->n_out; j++)
        if (n->out[j] && (n->out[j]->n_uses || (n->out[j]->flags & HONE_VAL_OUTPUT)))
            return false;
    return n->n_out >= 1 && n->out[0];
}

/* An inference BN over c channels reading v, with constant parameters. */
static bool plain_bn(const hone_node *n, const hone_value *v, int64_t c)
{
    if (!hone_pass_is_op(n, "BatchNormalization") || n->n_in != 5 || n->in[0] != v ||
        hone_attr_int(n, "training_mode", 0))
        return false;
    for (int j = 1; j < 5; j++)
        if (!float_const(n->in[j]) || n->in[j]->data->numel != c || n->in[j]->data->rank != 1)
            return false;
    return channelwise(&(hone_node){.op_type = "Relu", .domain = "", .n_out = n->n_out,
                                    .out = n->out});
}

/* Follows v (c channels) through an optional BN and channel-wise ops to the
 * one Conv reading it; *bn and *chain_flops report what was passed. */
static hone_node *follow(const hone_graph *g, hone_value *v, int64_t c, hone_node **bn,
                         double *chain_flops)
{
    hone_node *u = hone_pass_single_user(g, v);
    *bn = NULL;
    *chain_flops = 0;
    if (u && plain_bn(u, v, c)) {
        *bn = u;
        v = u->out[0];
        u = hone_pass_single_user(g, v);
    }
    while (u && channelwise(u) && u->in[0] == v) {
        for (int j = 1; j < u->n_in; j++)
            if (u->in[j] == v)
                return NULL;
        *chain_flops += (double)hone_node_cost(u).flops;
        v = u->out[0];
        u = hone_pass_single_user(g, v);
    }
    if (!u || !plain_conv(u) || u->in[0] != v || u->in[1] == v ||
        u->in[1]->data->dims[1] != c)
        return NULL;
    return u;
}

int hone_prune_find(const hone_graph *g, hone_prune_layer **out)
{
    hone_prune_layer *l = calloc((size_t)g->n_nodes + 1, sizeof *l);
    HONE_ASSERT(l);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        hone_node *conv = g->nodes[i], *bn, *next;
        double chain;
        if (!plain_conv(conv) || !conv->in[0] || (conv->in[0]->flags & HONE_VAL_INPUT) ||
            hone_pass_is_const(conv->in[0]))
            continue;
        int64_t c = conv->in[1]->data->dims[0];
        if (c < 2 || !(next = follow(g, conv->out[0], c, &bn, &chain)))
            continue;
        hone_prune_layer *p = &l[n++];
        p->conv = conv;
        p->bn = bn;
        p->next = next;
        p->channels = c;
        p->conv_flops = (double)hone_node_cost(conv).flops;
        p->chain_flops = chain;
        p->next_flops = (double)hone_node_cost(next).flops;
        p->flops_ch = (p->conv_flops + chain + p->next_flops) / (double)c;
        p->params_ch = (double)(conv->in[1]->data->numel + next->in[1]->data->numel) /
                       (double)c + 1;
        p->score = calloc((size_t)c, sizeof *p->score);
        p->keep = malloc(sizeof *p->keep * (size_t)c);
        HONE_ASSERT(p->score && p->keep);
        for (int64_t j = 0; j < c; j++)
            p->keep[j] = true;
        p->kept = c;
        p->norm = 1;
    }
    *out = l;
    return n;
}

void hone_prune_layers_free(hone_prune_layer *l, int n)
{
    for (int k = 0; l && k < n; k++) {
        free(l[k].score);
        free(l[k].keep);
    }
    free(l);
}

/* ===================== selection ===================== */

typedef struct cand {
    int layer;
    int64_t ch;
    double v;
} cand;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    return a->ch < b->ch ? -1 : a->ch > b->ch;
}

/* Per layer: the floor(rate * C) lowest scores go (at least one channel stays). */
static void select_rate(hone_prune_layer *l, int n, double rate)
{
    for (int k = 0; k < n; k++) {
        int64_t c = l[k].channels, drop = (int64_t)floor(rate * (double)c + 1e-9);
        if (drop > c - 1)
            drop = c - 1;
        cand *cs = malloc(sizeof *cs * (size_t)c);
        HONE_ASSERT(cs);
        for (int64_t j = 0; j < c; j++)
            cs[j] = (cand){k, j, l[k].score[j]};
        qsort(cs, (size_t)c, sizeof *cs, cand_cmp);
        for (int64_t j = 0; j < drop; j++)
            l[k].keep[cs[j].ch] = false;
        l[k].kept = c - drop;
        free(cs);
    }
}

/* Layer whose next conv is l[k]'s conv (*in) and whose conv is l[k]'s next (*out), or -1. */
static void neighbours(const hone_prune_layer *l, int n, int k, int *in, int *out)
{
    *in = *out = -1;
    for (int j = 0; j < n; j++) {
        if (l[j].next == l[k].conv)
            *in = j;
        if (l[j].conv == l[k].next)
            *out = j;
    }
}

/* FLOPs (params) one more channel of layer k removes now: a conv between two
 * pruned layers (a bottleneck's middle conv) already lost part of its other side. */
static double gain(const hone_prune_layer *l, int k, int in, int out, bool by_flops)
{
    const hone_prune_layer *p = &l[k];
    double c = (double)p->channels;
    double fin = in >= 0 ? (double)l[in].kept / (double)l[in].channels : 1;
    double fout = out >= 0 ? (double)l[out].kept / (double)l[out].channels : 1;
    if (by_flops)
        return p->conv_flops / c * fin + p->chain_flops / c + p->next_flops / c * fout;
    double wc = (double)p->conv->in[1]->data->numel / c, wn = (double)p->next->in[1]->data->numel / c;
    return wc * fin + 1 + wn * fout;
}

/* Global: lowest score/norm first until `want` FLOPs (or params) are gone. */
static bool select_global(hone_prune_layer *l, int n, bool by_flops, double want)
{
    int64_t total = 0, m = 0;
    int *in = malloc(sizeof *in * ((size_t)n + 1)), *out = malloc(sizeof *out * ((size_t)n + 1));
    HONE_ASSERT(in && out);
    for (int k = 0; k < n; k++) {
        total += l[k].channels;
        neighbours(l, n, k, &in[k], &out[k]);
    }
    cand *cs = malloc(sizeof *cs * (size_t)(total + 1));
    HONE_ASSERT(cs);
    for (int k = 0; k < n; k++)
        for (int64_t j = 0; j < l[k].channels; j++)
            cs[m++] = (cand){k, j, l[k].score[j] / (l[k].norm > 0 ? l[k].norm : 1)};
    qsort(cs, (size_t)m, sizeof *cs, cand_cmp);
    double gone = 0;
    for (int64_t i = 0; i < m && gone < want; i++) {
        int k = cs[i].layer;
        hone_prune_layer *p = &l[k];
        int64_t floor_keep = (p->channels + 9) / 10;
        if (p->kept <= (floor_keep < 1 ? 1 : floor_keep))
            continue;
        gone += gain(l, k, in[k], out[k], by_flops);
        p->keep[cs[i].ch] = false;
        p->kept--;
    }
    free(cs);
    free(in);
    free(out);
    return gone >= want;
}

/* Keeps the `keep` highest-scoring channels of layer p (ties: lower index first). */
static void set_kept(hone_prune_layer *p, int64_t keep)
{
    cand *cs = malloc(sizeof *cs * (size_t)(p->channels + 1));
    HONE_ASSERT(cs);
    for (int64_t j = 0; j < p->channels; j++)
        cs[j] = (cand){0, j, -p->score[j]};
    qsort(cs, (size_t)p->channels, sizeof *cs, cand_cmp);
    for (int64_t j = 0; j < p->channels; j++)
        p->keep[cs[j].ch] = j < keep;
    p->kept = keep;
    free(cs);
}

/* FLOPs (params) the current keep flags remove: per layer, its conv loses the pruned
 * share of its outputs (and of its inputs when a pruned layer feeds it), the ops
 * between lose theirs, and a next conv that is no layer's own conv loses its inputs. */
static double removed_cost(const hone_prune_layer *l, int n, const int *in, const int *out,
                           bool by_flops)
{
    double r = 0;
    for (int k = 0; k < n; k++) {
        const hone_prune_layer *p = &l[k];
        double f = (double)p->kept / (double)p->channels;
        double fin = in[k] >= 0 ? (double)l[in[k]].kept / (double)l[in[k]].channels : 1;
        double conv = by_flops ? p->conv_flops : (double)p->conv->in[1]->data->numel;
        double chain = by_flops ? p->chain_flops : (double)p->channels;
        double next = by_flops ? p->next_flops : (double)p->next->in[1]->data->numel;
        r += conv * (1 - f * fin) + chain * (1 - f);
        if (out[k] < 0)
            r += next * (1 - f);
    }
    return r;
}

/* Mean score / norm of the `align` lowest-scoring kept channels of p. */
static double weakest_mean(const hone_prune_layer *p, int64_t align)
{
    cand *cs = malloc(sizeof *cs * (size_t)(p->channels + 1));
    HONE_ASSERT(cs);
    int64_t m = 0;
    for (int64_t j = 0; j < p->channels; j++)
        if (p->keep[j])
            cs[m++] = (cand){0, j, p->score[j]};
    qsort(cs, (size_t)m, sizeof *cs, cand_cmp);
    double s = 0;
    for (int64_t j = 0; j < align && j < m; j++)
        s += cs[j].v;
    free(cs);
    return s / (double)align / (p->norm > 0 ? p->norm : 1);
}

/* Mean score / norm of the `align` highest-scoring pruned channels of p. */
static double strongest_mean(const hone_prune_layer *p, int64_t align)
{
    cand *cs = malloc(sizeof *cs * (size_t)(p->channels + 1));
    HONE_ASSERT(cs);
    int64_t m = 0;
    for (int64_t j = 0; j < p->channels; j++)
        if (!p->keep[j])
            cs[m++] = (cand){0, j, -p->score[j]};
    qsort(cs, (size_t)m, sizeof *cs, cand_cmp);
    double s = 0;
    for (int64_t j = 0; j < align && j < m; j++)
        s -= cs[j].v;
    free(cs);
    return s / (double)align / (p->norm > 0 ? p->norm : 1);
}

/* Rounds every layer's width to the nearest multiple of align (at least align; a layer
 * narrower than align keeps its width), then, while a target `want` (> 0) is not met,
 * takes align more channels from the layer whose weakest align kept channels score
 * lowest; then gives align channels back, the strongest first, wherever the target
 * stays met (so rounding up elsewhere does not overshoot it). False when no layer can
 * give more and the target is still missed. */
static bool align_widths(hone_prune_layer *l, int n, int64_t align, bool by_flops,
                         double want)
{
    int *in = malloc(sizeof *in * ((size_t)n + 1)), *out = malloc(sizeof *out * ((size_t)n + 1));
    HONE_ASSERT(in && out);
    for (int k = 0; k < n; k++) {
        neighbours(l, n, k, &in[k], &out[k]);
        if (l[k].channels < align)
            continue;
        int64_t a = (l[k].kept + align / 2) / align * align;
        a = a < align ? align : a > l[k].channels ? l[k].channels : a;
        set_kept(&l[k], a);
    }
    bool ok = true;
    while (want > 0 && removed_cost(l, n, in, out, by_flops) < want) {
        int best = -1;
        double best_v = 0;
        for (int k = 0; k < n; k++) {
            int64_t floor_keep = (l[k].channels + 9) / 10;
            if (l[k].kept - align < (align > floor_keep ? align : floor_keep))
                continue;
            double v = weakest_mean(&l[k], align);
            if (best < 0 || v < best_v) {
                best = k;
                best_v = v;
            }
        }
        if (best < 0) {
            ok = false;
            break;
        }
        set_kept(&l[best], l[best].kept - align);
    }
    /* Rounding up elsewhere may have removed far more than asked: give align channels
     * back, strongest first, wherever the target stays met. */
    for (bool gave = ok && want > 0; gave;) {
        gave = false;
        int best = -1;
        double best_v = 0;
        for (int k = 0; k < n; k++) {
            if (l[k].channels < align || l[k].kept + align > l[k].channels)
                continue;
            set_kept(&l[k], l[k].kept + align);
            double v = strongest_mean(&l[k], align);
            if (removed_cost(l, n, in, out, by_flops) >= want && (best < 0 || v > best_v)) {
                best = k;
                best_v = v;
            }
            set_kept(&l[k], l[k].kept - align);
        }
        if (best >= 0) {
            set_kept(&l[best], l[best].kept + align);
            gave = true;
        }
    }
    free(in);
    free(out);
    return ok;
}

hone_status hone_prune_select(hone_ctx *ctx, hone_prune_layer *l, int n, double rate,
                              double flops, double params, double total_flops,
                              double total_params, int64_t align)
{
    if (align < 1)
        return hone_fail(ctx, HONE_ERR_ARG, "align must be at least 1, got %lld", (long long)align);
    if (rate > 0) {
        if (rate >= 1)
            return hone_fail(ctx, HONE_ERR_ARG, "rate must be in (0, 1), got %g", rate);
        select_rate(l, n, rate);
        if (align > 1)
            align_widths(l, n, align, true, 0);
        return HONE_OK;
    }
    bool by_flops = flops > 0;
    double share = by_flops ? flops : params;
    if (!(share > 0 && share < 1))
        return hone_fail(ctx, HONE_ERR_ARG, "give rate=, flops= or params= as a share in "
                         "(0, 1) (got rate=%g flops=%g params=%g)", rate, flops, params);
    double want = share * (by_flops ? total_flops : total_params);
    if (!select_global(l, n, by_flops, want) ||
        (align > 1 && !align_widths(l, n, align, by_flops, want)))
        return hone_fail(ctx, HONE_ERR_ARG, "a %s reduction of %.0f%% is out of reach: the "
                         "prunable convs (each keeping a tenth of its channels%s) cannot remove "
                         "that much", by_flops ? "FLOPs" : "params", 100 * share,
                         align > 1 ? ", in multiples of align" : "");
    return HONE_OK;
}

/* Fails early (before any training) when the options name no reachable target. */
static hone_status check_target(hone_pass_ctx *pc, const hone_prune_layer *l, int n,
                                double flops0, double params0)
{
    double rate = hone_pass_opt_float(pc, "rate"), flops = hone_pass_opt_float(pc, "flops");
    double params = hone_pass_opt_float(pc, "params"), most = 0;
    if (rate > 0)
        return rate < 1 ? HONE_OK
                        : hone_fail(pc->ctx, HONE_ERR_ARG, "rate must be in (0, 1), got %g", rate);
    bool by_flops = flops > 0;
    double share = by_flops ? flops : params;
    if (!(share > 0 && share < 1))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "give rate=, flops= or params= as a share in "
                         "(0, 1) (got rate=%g flops=%g params=%g)", rate, flops, params);
    for (int k = 0; k < n; k++) {
        int64_t floor_keep = (l[k].channels + 9) / 10;
        most += (double)(l[k].channels - (floor_keep < 1 ? 1 : floor_keep)) *
                (by_flops ? l[k].flops_ch : l[k].params_ch);
    }
    if (most < share * (by_flops ? flops0 : params0))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "a %s reduction of %.0f%% is out of reach: the "
                         "prunable convs (each keeping a tenth of its channels) can remove "
                         "%.1f%%", by_flops ? "FLOPs" : "params", 100 * share,
                         100 * most / (by_flops ? flops0 : params0));
    return HONE_OK;
}

/* ===================== removal ===================== */

/* Copy of t keeping index i of axis `axis` where keep[i]. */
static hone_tensor *take(const hone_tensor *t, int axis, const bool *keep, int64_t kept)
{
    int64_t dims[HONE_MAX_RANK], outer = 1, inner = 1;
    memcpy(dims, t->dims, sizeof *dims * (size_t)t->rank);
    for (int i = 0; i < axis; i++)
        outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        inner *= t->dims[i];
    dims[axis] = kept;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *r;
    HONE_ASSERT(!hone_tensor_new(&ctx, t->dtype, t->rank, dims, &r));
    size_t es = hone_dtype_size(t->dtype), row = es * (size_t)inner;
    const char *src = t->data;
    char *dst = r->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < t->dims[axis]; c++)
            if (keep[c]) {
                memcpy(dst, src + (size_t)(o * t->dims[axis] + c) * row, row);
                dst += row;
            }
    return r;
}

static void replace_input(hone_graph *g, hone_node *n, int idx, int axis, const bool *keep,
                          int64_t kept)
{
    const hone_value *v = n->in[idx];
    hone_pass_set_input(g, n, idx, hone_pass_new_const(g, take(v->data, axis, keep, kept),
                                                       v->name));
}

hone_status hone_prune_remove(hone_ctx *ctx, hone_graph *g, const hone_prune_layer *l)
{
    if (l->kept < 1 || l->conv->in[1]->data->dims[0] != l->channels ||
        l->next->in[1]->data->dims[1] != l->channels)
        return hone_node_fail(ctx, l->conv, HONE_ERR_INTERNAL, "pruning layer state does not "
                              "match the graph (%lld channels expected)",
                              (long long)l->channels);
    replace_input(g, l->conv, 1, 0, l->keep, l->kept);
    if (l->conv->n_in > 2 && l->conv->in[2])
        replace_input(g, l->conv, 2, 0, l->keep, l->kept);
    for (int j = 1; l->bn && j < 5; j++)
        replace_input(g, l->bn, j, 0, l->keep, l->kept);
    replace_input(g, l->next, 1, 1, l->keep, l->kept);
    return HONE_OK;
}

/* ===================== the driver ===================== */

typedef struct run {
    hone_pass_ctx *pc;
    hone_ctx *ctx;
    const hone_pass_data *d;
    hone_graph *g, *teacher;
    hone_prune_layer *l;
    int n;
    hone_tensor *xtr, *ytr;        /* training split */
    hone_fit_spec fit, eval;       /* eval: fit with the held-out share */
    double flops0, params0, flops1, params1;
    double metric0, metric1;
    hone_fit_metric kind;
    double t_unfold, t_score, t_remove, t_recal, t_ft, t_fold, t_eval;
    double ft_loss;
} run;

static bool is_layer_conv(const hone_node *n, void *user)
{
    const run *r = user;
    for (int k = 0; k < r->n; k++)
        if (r->l[k].conv == n)
            return true;
    return false;
}

/* Gathers rows idx[0..n) of t (NULL t: NULL). */
static hone_status gather(hone_ctx *ctx, const hone_tensor *t, const int64_t *idx, int64_t n,
                          hone_tensor **out)
{
    *out = NULL;
    return t ? hone_data_gather(ctx, t, idx, n, n, out) : HONE_OK;
}

/* The training split, cut to whole batches when there is more than one. */
static hone_status split_data(run *r)
{
    int64_t *tr = NULL, *held = NULL, ntr = 0, nh = 0;
    hone_status st = hone_fit_split(r->ctx, r->d->x->dims[0], r->d->val_split, &tr, &ntr,
                                    &held, &nh);
    if (!st && ntr < 2)
        st = hone_fail(r->ctx, HONE_ERR_ARG, "pass '%s' needs at least 2 training samples "
                       "after the held-out split (got %lld)", r->pc->inst->info->name,
                       (long long)ntr);
    if (!st && ntr > r->fit.batch)
        ntr -= ntr % r->fit.batch;
    if (!st && ntr < r->fit.batch)
        r->fit.batch = ntr;
    if (!st)
        st = gather(r->ctx, r->d->x, tr, ntr, &r->xtr);
    if (!st)
        st = gather(r->ctx, r->d->labels, tr, ntr, &r->ytr);
    free(tr);
    free(held);
    return st;
}

static void init_specs(run *r)
{
    hone_pass_ctx *pc = r->pc;
    hone_fit_spec_init(&r->fit);
    r->fit.batch = hone_pass_opt_int(pc, "batch");
    r->fit.seed = (uint64_t)hone_pass_opt_int(pc, "seed");
    r->fit.val_split = 0;
    r->fit.train.loss = r->d->labels ? HONE_LOSS_CE : HONE_LOSS_KD;
    r->fit.teacher = r->teacher;
    r->eval = r->fit;
    r->eval.val_split = r->d->val_split;
}

static hone_status metric(run *r, const hone_graph *g, double *m)
{
    hone_fit_data all = {r->d->x, r->d->labels, NULL};
    double t0 = now_s();
    hone_status st = hone_fit_evaluate(r->ctx, g, &all, &r->eval, &r->kind, m);
    r->t_eval += now_s() - t0;
    return st;
}

/* BN after every layer conv; layers get their BN node. */
static hone_status unfold(run *r)
{
    double t0 = now_s();
    int count = 0;
    hone_status st = hone_unfold_bn(r->ctx, r->g, r->xtr, 1024, 1e-5, is_layer_conv, r, &count);
    hone_graph_update_uses(r->g);
    for (int k = 0; !st && k < r->n; k++) {
        hone_prune_layer *p = &r->l[k];
        if (!p->bn)
            p->bn = hone_pass_single_user(r->g, p->conv->out[0]);
        if (!p->bn || !hone_pass_is_op(p->bn, "BatchNormalization"))
            st = hone_node_fail(r->ctx, p->conv, HONE_ERR_INTERNAL, "no BN after the conv");
    }
    if (!st)
        st = hone_graph_toposort(r->ctx, r->g);
    if (!st)
        st = hone_graph_infer(r->ctx, r->g);
    r->t_unfold = now_s() - t0;
    return st;
}

static hone_status select_and_remove(run *r)
{
    hone_pass_ctx *pc = r->pc;
    double t0 = now_s();
    hone_status st = hone_prune_select(r->ctx, r->l, r->n, hone_pass_opt_float(pc, "rate"),
                                       hone_pass_opt_float(pc, "flops"),
                                       hone_pass_opt_float(pc, "params"), r->flops0, r->params0,
                                       hone_pass_opt_int(pc, "align"));
    for (int k = 0; !st && k < r->n; k++) {
        st = hone_prune_remove(r->ctx, r->g, &r->l[k]);
        hone_pass_note(pc, "channels removed", r->l[k].channels - r->l[k].kept);
    }
    hone_graph_update_uses(r->g);
    if (!st)
        st = hone_graph_infer(r->ctx, r->g);
    r->t_remove = now_s() - t0;
    return st;
}

static hone_status recalibrate(run *r)
{
    double t0 = now_s();
    int64_t m = r->xtr->dims[0] < 2048 ? r->xtr->dims[0] : 2048;
    int64_t *idx = malloc(sizeof *idx * (size_t)m);
    HONE_ASSERT(idx);
    for (int64_t i = 0; i < m; i++)
        idx[i] = i;
    hone_tensor *calib = NULL;
    int nbn = 0;
    hone_status st = gather(r->ctx, r->xtr, idx, m, &calib);
    if (!st)
        st = hone_bn_recalibrate(r->ctx, r->g, calib, r->fit.batch, &nbn);
    hone_tensor_free(calib);
    free(idx);
    r->t_recal = now_s() - t0;
    return st;
}

static void ft_log(void *user, const hone_fit_step_info *info)
{
    run *r = user;
    if ((info->step + 1) % 50 == 0 || info->step + 1 == info->steps)
        hone_pass_log(r->pc, "fine-tune step %lld/%lld loss %.4f lr %.5f (%.0f s)",
                      (long long)info->step + 1, (long long)info->steps, info->loss, info->lr,
                      info->elapsed_s);
}

static hone_status finetune(run *r)
{
    double t0 = now_s();
    hone_fit_spec fs = r->fit;
    int64_t steps = hone_pass_opt_int(r->pc, "ft-steps");
    hone_optim_spec_init(&fs.optim, HONE_OPTIM_NESTEROV);
    fs.optim.momentum = 0.9;
    fs.optim.weight_decay = 1e-4;
    fs.schedule = HONE_SCHED_COSINE;
    fs.lr = hone_pass_opt_float(r->pc, "ft-lr");
    fs.max_steps = steps;
    fs.on_step = ft_log;
    fs.user = r;
    hone_fit_data tr = {r->xtr, r->ytr, NULL};
    hone_fit_result res = {0};
    hone_status st = steps > 0 ? hone_fit(r->ctx, r->g, &tr, &fs, &res) : HONE_OK;
    r->ft_loss = steps > 0 ? res.loss : NAN;
    r->t_ft = now_s() - t0;
    return st;
}

static hone_status fold(run *r)
{
    double t0 = now_s();
    hone_pass_ctx quiet = *r->pc;
    quiet.stats = NULL;
    hone_status st = hone_pass_fold_bn(&quiet, r->g);
    for (int k = 0; k < r->n; k++)
        r->l[k].bn = NULL;
    hone_graph_remove_dead(r->g); /* the replaced weights and folded BN parameters */
    if (!st)
        st = hone_graph_infer(r->ctx, r->g);
    r->t_fold = now_s() - t0;
    return st;
}

static void json_num(hone_pass_ctx *pc, const char *key, double v)
{
    if (isfinite(v))
        hone_pass_detail(pc, "\"%s\":%.10g", key, v);
    else
        hone_pass_detail(pc, "\"%s\":null", key);
}

static void detail(run *r, const char *method)
{
    hone_pass_ctx *pc = r->pc;
    hone_pass_detail(pc, "{\"method\":\"%s\",\"layers\":[", method);
    for (int k = 0; k < r->n; k++) {
        hone_pass_detail(pc, "%s{\"conv\":", k ? "," : "");
        hone_pass_detail_string(pc, r->l[k].conv->name);
        hone_pass_detail(pc, ",\"channels\":%lld,\"kept\":%lld}",
                         (long long)r->l[k].channels, (long long)r->l[k].kept);
    }
    hone_pass_detail(pc, "],");
    json_num(pc, "params_before", r->params0);
    hone_pass_detail(pc, ",");
    json_num(pc, "params_after", r->params1);
    hone_pass_detail(pc, ",");
    json_num(pc, "flops_before", r->flops0);
    hone_pass_detail(pc, ",");
    json_num(pc, "flops_after", r->flops1);
    hone_pass_detail(pc, ",\"metric\":\"%s\",", hone_fit_metric_name(r->kind));
    json_num(pc, "metric_before", r->metric0);
    hone_pass_detail(pc, ",");
    json_num(pc, "metric_after", r->metric1);
    hone_pass_detail(pc, ",");
    json_num(pc, "finetune_loss", r->ft_loss);
    hone_pass_detail(pc, ",\"seconds\":{\"unfold_bn\":%.3f,\"score\":%.3f,\"select_remove\":%.3f,"
                     "\"recalibrate_bn\":%.3f,\"finetune\":%.3f,\"fold_bn\":%.3f,"
                     "\"evaluate\":%.3f}}", r->t_unfold, r->t_score, r->t_remove, r->t_recal,
                     r->t_ft, r->t_fold, r->t_eval);
}

static void log_table(run *r, const char *method)
{
    hone_pass_ctx *pc = r->pc;
    hone_pass_log(pc, "%-40s %8s %8s", "layer (conv)", "channels", "kept");
    for (int k = 0; k < r->n; k++)
        hone_pass_log(pc, "%-40s %8lld %8lld", r->l[k].conv->name, (long long)r->l[k].channels,
                      (long long)r->l[k].kept);
    hone_pass_log(pc, "%s: params %.0f -> %.0f (-%.1f%%), FLOPs %.0f -> %.0f (-%.1f%%)", method,
                  r->params0, r->params1, 100 * (1 - r->params1 / r->params0), r->flops0,
                  r->flops1, 100 * (1 - r->flops1 / r->flops0));
    if (r->kind == HONE_FIT_METRIC_NONE)
        hone_pass_log(pc, "held-out metric: none (no held-out split)");
    else
        hone_pass_log(pc, "held-out %s: %.4f -> %.4f", hone_fit_metric_name(r->kind), r->metric0,
                      r->metric1);
    hone_pass_log(pc, "time (s): unfold-bn %.1f, score %.1f, select+remove %.1f, "
                  "recalibrate-bn %.1f, fine-tune %.1f, fold-bn %.1f, evaluate %.1f",
                  r->t_unfold, r->t_score, r->t_remove, r->t_recal, r->t_ft, r->t_fold,
                  r->t_eval);
}

static hone_status prune_steps(run *r, hone_prune_score_fn score)
{
    hone_status st = split_data(r);
    if (!st)
        st = metric(r, r->g, &r->metric0);
    if (!st)
        st = unfold(r);
    if (!st) {
        hone_prune_job job = {r->pc, r->g, r->l, r->n, {r->xtr, r->ytr, NULL}, r->fit};
        double t0 = now_s();
        st = score(&job);
        r->t_score = now_s() - t0;
    }
    if (!st)
        st = select_and_remove(r);
    if (!st)
        st = recalibrate(r);
    if (!st)
        st = finetune(r);
    if (!st)
        st = fold(r);
    if (!st)
        st = metric(r, r->g, &r->metric1);
    return st;
}

/* Sets the first input's batch dim to `dim` (a symbol for training at any
 * batch size, or back to the model's concrete size) and re-infers. */
static hone_status set_batch(hone_ctx *ctx, hone_graph *g, int64_t dim)
{
    g->inputs[0]->dims[0] = dim;
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i];
        if (!v->data && !(v->flags & HONE_VAL_INPUT))
            v->rank = -1;
    }
    return hone_graph_infer(ctx, g);
}

/* Everything after the checks, on g with a symbolic batch dim. */
static hone_status prune_model(run *r, const char *method, hone_prune_score_fn score)
{
    hone_pass_ctx *pc = r->pc;
    r->n = hone_prune_find(r->g, &r->l);
    if (!r->n) {
        hone_pass_log(pc, "no prunable conv (see prune.h for the structure rule); unchanged");
        return HONE_OK;
    }
    hone_status st = check_target(pc, r->l, r->n, r->flops0, r->params0);
    if (st)
        return st;
    r->teacher = r->d->labels ? NULL : hone_graph_clone(r->g);
    init_specs(r);
    st = prune_steps(r, score);
    if (!st) {
        hone_pass_note(pc, "layers pruned", r->n);
        hone_graph_update_uses(r->g);
        r->flops1 = (double)hone_graph_cost(r->g).flops;
        r->params1 = (double)hone_graph_params(r->g);
        detail(r, method);
        log_table(r, method);
    }
    return st;
}

hone_status hone_prune_run(hone_pass_ctx *pc, hone_graph *g, const char *method,
                           hone_prune_score_fn score)
{
    run r = {.pc = pc, .ctx = pc->ctx, .g = g};
    hone_status st = hone_pass_need_data(pc, "training data (channel scores and fine-tuning)",
                                         &r.d);
    if (st)
        return st;
    if (g->n_inputs != 1 || g->inputs[0]->rank < 1)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "pass '%s' needs a model with one input (it "
                         "has %d)", pc->inst->info->name, g->n_inputs);
    int64_t batch = g->inputs[0]->dims[0];
    hone_graph_update_uses(g);
    r.flops0 = (double)hone_graph_cost(g).flops / (batch > 0 ? (double)batch : 1);
    r.params0 = (double)hone_graph_params(g);
    if (batch >= 0) /* train at any batch size; the model's own comes back at the end */
        st = set_batch(pc->ctx, g, HONE_DIM_SYM(hone_graph_sym(g, "batch")));
    if (!st)
        st = prune_model(&r, method, score);
    if (!st && batch >= 0)
        st = set_batch(pc->ctx, g, batch);
    hone_tensor_free(r.xtr);
    hone_tensor_free(r.ytr);
    if (r.teacher)
        hone_graph_free(r.teacher);
    hone_prune_layers_free(r.l, r.n);
    return st;
}
