/*
 * Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * Both see their input as [N, C, D] (D = product of the dims after C) and the
 * labels as [N, D]. SoftmaxCrossEntropyLoss first takes log_softmax over C
 * (optionally returned as its second output) and then is exactly the NLL of
 * those log-probabilities, so one kernel computes both:
 *
 *   loss[n, d] = -lp[n, label, d] * w[label],  weight[n, d] = w[label]
 *
 * with w = 1 when no weights are given, and both 0 where label == ignore_index.
 * reduction "none" returns loss shaped like the labels, "sum" its sum and
 * "mean" sum(loss) / sum(weight). A label outside [0, C) that is not the
 * ignore_index is an error, never an out-of-bounds read. Everything is
 * computed in double and stored in the input's type.
 */
#include <stdlib.h>

#include "misc.h"
#include "ops_util.h"

typedef enum { RED_NONE, RED_SUM, RED_MEAN } reduction;

/* Reads the reduction attribute (default mean). */
static hone_status read_reduction(hone_ctx *ctx, const hone_node *nd, reduction *r)
{
    const char *s = hone_attr_str(nd, "reduction", "mean");
    *r = !strcmp(s, "none") ? RED_NONE : !strcmp(s, "sum") ? RED_SUM : RED_MEAN;
    if (*r == RED_MEAN && strcmp(s, "mean"))
        return hone_node_fail(ctx, nd, HONE_ERR_INVALID,
                              "reduction '%s' is not one of none, sum, mean", s);
    return HONE_OK;
}

/* Checks input [N, C, d...], labels [N, d...] and weights [C]. */
static hone_status loss_check(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *t = ic->in[1], *w = ic->n_in > 2 ? ic->in[2] : NULL;
    if (x->dtype && !hone_dtype_is_float(x->dtype))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input must be floating point");
    if (t->dtype && t->dtype != HONE_DT_INT32 && t->dtype != HONE_DT_INT64)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "labels must be i32 or i64");
    if (x->rank < 0 || t->rank < 0)
        return HONE_OK;
    bool bad = x->rank < 2 || t->rank != x->rank - 1;
    for (int i = 0; !bad && i < t->rank; i++) {
        int64_t a = x->dims[i ? i + 1 : 0], b = t->dims[i];
        bad = a >= 0 && b >= 0 && a != b;
    }
    if (!bad && w && w->rank >= 0)
        bad = w->rank != 1 || (w->dims[0] >= 0 && x->dims[1] >= 0 && w->dims[0] != x->dims[1]);
    if (bad)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "expected input [N, C, d...], labels [N, d...] and weights [C]");
    return HONE_OK;
}

/* Output 0: labels' shape for reduction none, else a scalar; output 1 (SCE): like the input. */
static hone_status loss_infer(hone_infer *ic)
{
    reduction r;
    hone_status st = read_reduction(ic->ctx, ic->node, &r);
    if (st || (st = loss_check(ic)))
        return st;
    const hone_tinfo *x = ic->in[0], *t = ic->in[1];
    if (r == RED_NONE)
        hone_infer_set(ic, 0, x->dtype, t->rank, t->dims);
    else
        hone_infer_set(ic, 0, x->dtype, 0, NULL);
    if (ic->n_out > 1)
        hone_infer_set(ic, 1, x->dtype, x->rank, x->dims);
    return HONE_OK;
}

hone_status infer_nll_loss(hone_infer *ic)
{
    return loss_infer(ic);
}

hone_status infer_sce_loss(hone_infer *ic)
{
    return loss_infer(ic);
}

/* [N, C, D] view of the input. */
typedef struct lgeo {
    int64_t n, c, d;
} lgeo;

static lgeo loss_geo(const hone_tensor *x)
{
    lgeo g = {x->dims[0], x->dims[1], 1};
    for (int i = 2; i < x->rank; i++)
        g.d *= x->dims[i];
    return g;
}

/* Per-position loss and weight from log-probabilities lp[N, C, D]. */
static hone_status nll_terms(hone_eval *ec, const double *lp, lgeo g, double *loss, double *wt)
{
    const hone_tensor *t = ec->in[1], *w = ec->n_in > 2 ? ec->in[2] : NULL;
    bool has_ii = hone_attr_find(ec->node, "ignore_index") != NULL;
    int64_t ii = hone_attr_int(ec->node, "ignore_index", 0);
    for (int64_t i = 0; i < g.n * g.d; i++) {
        int64_t lab = hone_tensor_get_i64(t, i), n = i / g.d, j = i % g.d;
        if (has_ii && lab == ii) {
            loss[i] = wt[i] = 0;
            continue;
        }
        if (lab < 0 || lab >= g.c)
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID,
                                  "label %lld at position %lld is outside [0, %lld)",
                                  (long long)lab, (long long)i, (long long)g.c);
        wt[i] = w ? hone_tensor_get_f64(w, lab) : 1;
        loss[i] = -lp[(n * g.c + lab) * g.d + j] * wt[i];
    }
    return HONE_OK;
}

/* Reduces the per-position losses into output 0. */
static hone_status nll_output(hone_eval *ec, const double *loss, const double *wt, int64_t cnt)
{
    reduction r;
    const hone_tensor *t = ec->in[1];
    hone_status st = read_reduction(ec->ctx, ec->node, &r);
    if (st || (st = hone_eval_alloc(ec, 0, ec->in[0]->dtype, r == RED_NONE ? t->rank : 0, t->dims)))
        return st;
    if (r == RED_NONE) {
        for (int64_t i = 0; i < cnt; i++)
            hone_tensor_set_f64(ec->out[0], i, loss[i]);
        return HONE_OK;
    }
    double sl = 0, sw = 0;
    for (int64_t i = 0; i < cnt; i++) {
        sl += loss[i];
        sw += wt[i];
    }
    hone_tensor_set_f64(ec->out[0], 0, r == RED_SUM ? sl : sl / sw);
    return HONE_OK;
}

/* NLL of lp (the input's log-probabilities in double) into output 0. */
static hone_status nll_run(hone_eval *ec, const double *lp)
{
    lgeo g = loss_geo(ec->in[0]);
    int64_t cnt = g.n * g.d;
    double *loss = malloc(sizeof *loss * (size_t)(2 * cnt + 1));
    if (!loss)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    hone_status st = nll_terms(ec, lp, g, loss, loss + cnt);
    if (!st)
        st = nll_output(ec, loss, loss + cnt, cnt);
    free(loss);
    return st;
}

/* The input in double (malloc'd), or NULL. */
static double *to_f64(const hone_tensor *x)
{
    double *v = malloc(sizeof *v * (size_t)(x->numel + 1));
    for (int64_t i = 0; v && i < x->numel; i++)
        v[i] = hone_tensor_get_f64(x, i);
    return v;
}

hone_status eval_nll_loss(hone_eval *ec)
{
    double *lp = to_f64(ec->in[0]);
    if (!lp)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    hone_status st = nll_run(ec, lp);
    free(lp);
    return st;
}

/* In place: v[N, C, D] becomes log_softmax of itself over C. */
static void log_softmax_c(double *v, lgeo g)
{
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t j = 0; j < g.d; j++) {
            double *p = v + n * g.c * g.d + j, mx = -INFINITY, s = 0;
            for (int64_t c = 0; c < g.c; c++)
                mx = p[c * g.d] > mx ? p[c * g.d] : mx;
            for (int64_t c = 0; c < g.c; c++)
                s += exp(p[c * g.d] - mx);
            double lse = mx + log(s);
            for (int64_t c = 0; c < g.c; c++)
                p[c * g.d] -= lse;
        }
}

hone_status eval_sce_loss(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    double *lp = to_f64(x);
    if (!lp)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    log_softmax_c(lp, loss_geo(x));
    hone_status st = nll_run(ec, lp);
    if (!st && ec->n_out > 1 && ec->node->out[1] &&
        !(st = hone_eval_alloc(ec, 1, x->dtype, x->rank, x->dims)))
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_f64(ec->out[1], i, lp[i]);
    free(lp);
    return st;
}
