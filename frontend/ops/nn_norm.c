/*
 * Normalisation ops: BatchNormalization (inference and training mode),
 * InstanceNormalization, LayerNormalization, LpNormalization,
 * MeanVarianceNormalization and LRN.
 *
 * BatchNormalization in training mode normalises with the batch statistics
 * (population variance) and returns running statistics blended with momentum:
 * running = input_stat * momentum + batch_stat * (1 - momentum). Before opset
 * 14 the extra outputs are mean, var, saved_mean, saved_var and their
 * presence selects training mode; from 14 the training_mode attribute does
 * and the extras are running_mean, running_var.
 *
 * MeanVarianceNormalization follows its ONNX function body exactly:
 * (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over the given axes.
 */
#include <stdlib.h>

#include "nn.h"

/* Fails unless input i (when present and known) is the vector [c]. */
static hone_status check_channel_vec(hone_infer *ic, int i, int64_t c, const char *what)
{
    const hone_tinfo *t = i < ic->n_in ? ic->in[i] : NULL;
    if (!t || t->rank < 0)
        return HONE_OK;
    if (t->rank != 1 || (t->dims[0] >= 0 && c >= 0 && t->dims[0] != c))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "%s must have shape [%lld] (one value per channel)", what,
                              (long long)c);
    return HONE_OK;
}

/* Fails unless X has rank >= 2 and inputs [1, last] are per-channel vectors. */
static hone_status check_channel_inputs(hone_infer *ic, int last)
{
    static const char *names[] = {"X", "scale", "B", "mean", "var"};
    const hone_tinfo *x = ic->in[0];
    hone_status st = nn_infer_floats(ic, last + 1, last < 4);
    if (!st && x->rank >= 0 && x->rank < 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "X must have rank >= 2 ([N, C, ...]), got %d", x->rank);
    for (int i = 1; i <= last && !st; i++)
        st = check_channel_vec(ic, i, nn_dim(x, 1), names[i]);
    return st;
}

/* Whether a BatchNormalization node runs in training mode. */
static bool bn_training(const hone_node *n, int opset)
{
    if (opset >= 14)
        return hone_attr_int(n, "training_mode", 0) != 0;
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i])
            return true;
    return false;
}

/* BatchNormalization: X[N,C,...], scale/B/mean/var[C] -> Y (+ per-channel stats). */
hone_status infer_batchnorm(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_status st = check_channel_inputs(ic, 4);
    if (st)
        return st;
    if (ic->opset < 9 && hone_attr_int(ic->node, "spatial", 1) == 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                              "spatial=0 (per-element statistics) is not supported");
    if (ic->opset >= 14 && ic->n_out > 3)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "has %d outputs, at most 3 from opset 14", ic->n_out);
    int64_t c = nn_dim(x, 1);
    hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    for (int i = 1; i < ic->n_out; i++)
        hone_infer_set(ic, i, ic->in[3]->dtype, 1, &c);
    return HONE_OK;
}

/* Training mode: batch statistics into out[3..4] (or scratch), running stats into out[1..2]. */
static hone_status bn_train(hone_eval *ec, const nn_stage *s, int64_t n, int64_t c, int64_t plane)
{
    float *bm, *bv;
    hone_status st = nn_scratch(ec, 2 * (size_t)c, &bm);
    if (st)
        return st;
    bv = bm + c;
    float eps = hone_attr_float(ec->node, "epsilon", 1e-5f);
    float mom = hone_attr_float(ec->node, "momentum", 0.9f);
    hone_rt_channel_moments(n, c, plane, s->in[0], bm, bv);
    hone_rt_batchnorm(n, c, plane, s->in[0], s->in[1], s->in[2], bm, bv, eps, s->out[0]);
    for (int64_t i = 0; i < c; i++) {
        if (s->out[1])
            s->out[1][i] = s->in[3][i] * mom + bm[i] * (1 - mom);
        if (s->out[2])
            s->out[2][i] = s->in[4][i] * mom + bv[i] * (1 - mom);
        if (s->out[3])
            s->out[3][i] = bm[i];
        if (s->out[4])
            s->out[4][i] = bv[i];
    }
    free(bm);
    return HONE_OK;
}

hone_status eval_batchnorm(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t n = x->dims[0], c = x->dims[1], plane = nn_prod(x->dims, 2, x->rank);
    nn_stage s;
    hone_status st = nn_stage_begin(ec, ec->n_out, &s);
    if (st)
        return st;
    if (bn_training(ec->node, ec->opset))
        st = bn_train(ec, &s, n, c, plane);
    else
        hone_rt_batchnorm(n, c, plane, s.in[0], s.in[1], s.in[2], s.in[3], s.in[4],
                          hone_attr_float(ec->node, "epsilon", 1e-5f), s.out[0]);
    nn_stage_end(ec, &s);
    return st;
}

/* InstanceNormalization: X[N,C,...], scale[C], B[C] -> Y, per (n, c) statistics. */
hone_status infer_instancenorm(hone_infer *ic)
{
    hone_status st = check_channel_inputs(ic, 2);
    if (!st)
        hone_infer_set(ic, 0, ic->in[0]->dtype, ic->in[0]->rank, ic->in[0]->dims);
    return st;
}

hone_status eval_instancenorm(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t n = x->dims[0], c = x->dims[1], plane = nn_prod(x->dims, 2, x->rank);
    float eps = hone_attr_float(ec->node, "epsilon", 1e-5f), *mean;
    nn_stage s;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (!st && (st = nn_scratch(ec, 2 * (size_t)(n * c), &mean)))
        nn_stage_end(ec, &s);
    if (st)
        return st;
    hone_rt_row_moments(n * c, plane, s.in[0], mean, mean + n * c);
    for (int64_t b = 0; b < n; b++)
        hone_rt_batchnorm(1, c, plane, s.in[0] + b * c * plane, s.in[1], s.in[2], mean + b * c,
                          mean + n * c + b * c, eps, s.out[0] + b * c * plane);
    free(mean);
    nn_stage_end(ec, &s);
    return HONE_OK;
}

/* Fails unless t (when known) broadcasts onto dims[axis..rank). */
static hone_status check_norm_param(hone_infer *ic, const hone_tinfo *t, int axis,
                                    const char *what)
{
    const hone_tinfo *x = ic->in[0];
    if (!t || t->rank < 0 || x->rank < 0)
        return HONE_OK;
    int span = x->rank - axis;
    bool ok = t->rank <= span;
    for (int i = 0; ok && i < t->rank; i++) {
        int64_t a = t->dims[t->rank - 1 - i], b = x->dims[x->rank - 1 - i];
        ok = a == 1 || a < 0 || b < 0 || a == b;
    }
    if (!ok)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "%s does not broadcast onto the normalised dims (axis %d)", what,
                              axis);
    return HONE_OK;
}

/* LayerNormalization: X, Scale, B over dims [axis..) -> Y, Mean, InvStdDev[X[:axis], 1...]. */
hone_status infer_layernorm(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int axis = 0;
    hone_status st = nn_infer_floats(ic, 3, true);
    if (!st && x->rank >= 0)
        st = hone_infer_axis(ic, hone_attr_int(ic->node, "axis", -1), x->rank, &axis);
    if (!st)
        st = check_norm_param(ic, ic->in[1], axis, "Scale");
    if (!st)
        st = check_norm_param(ic, ic->n_in > 2 ? ic->in[2] : NULL, axis, "B");
    if (st)
        return st;
    int64_t sd[HONE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sd[i] = i < axis ? x->dims[i] : 1;
    hone_dtype u = hone_attr_int(ic->node, "stash_type", 1) == 1 ? HONE_DT_FLOAT : x->dtype;
    hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    for (int i = 1; i < ic->n_out; i++)
        hone_infer_set(ic, i, u, x->rank, x->rank < 0 ? NULL : sd);
    return HONE_OK;
}

/* Expands a staged parameter t (broadcast onto dims[axis..rank)) into len floats. */
static void expand_param(const hone_tensor *t, const float *v, int rank, const int64_t *dims,
                         int axis, float *out)
{
    hone_bcast b;
    hone_bcast_init(&b, rank - axis, dims + axis, 1, &t);
    for (int64_t j = 0, len = nn_prod(dims, axis, rank); j < len; j++, hone_bcast_next(&b))
        out[j] = v[b.off[0]];
}

/* Writes a float vector into output i of the eval when it exists (any float dtype). */
static void store_stat(hone_eval *ec, int i, const float *v)
{
    if (i >= ec->n_out || !ec->out[i])
        return;
    for (int64_t j = 0; j < ec->out[i]->numel; j++)
        hone_tensor_set_f64(ec->out[i], j, v[j]);
}

hone_status eval_layernorm(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t a = hone_attr_int(ec->node, "axis", -1);
    int axis = (int)(a < 0 ? a + x->rank : a);
    int64_t rows = nn_prod(x->dims, 0, axis), len = nn_prod(x->dims, axis, x->rank);
    bool has_b = ec->n_in > 2 && ec->in[2];
    nn_stage s;
    float *buf;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (!st && (st = nn_scratch(ec, (size_t)(2 * len + 2 * rows), &buf)))
        nn_stage_end(ec, &s);
    if (st)
        return st;
    expand_param(ec->in[1], s.in[1], x->rank, x->dims, axis, buf);
    if (has_b)
        expand_param(ec->in[2], s.in[2], x->rank, x->dims, axis, buf + len);
    float *mean = buf + 2 * len, *invstd = mean + rows;
    hone_rt_layernorm(rows, len, s.in[0], buf, has_b ? buf + len : NULL,
                      hone_attr_float(ec->node, "epsilon", 1e-5f), s.out[0], mean, invstd);
    store_stat(ec, 1, mean);
    store_stat(ec, 2, invstd);
    free(buf);
    nn_stage_end(ec, &s);
    return HONE_OK;
}

/* LpNormalization: X -> X / ||X||_p along axis, p in {1, 2}. */
hone_status infer_lpnorm(hone_infer *ic)
{
    int axis;
    int64_t p = hone_attr_int(ic->node, "p", 2);
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st && p != 1 && p != 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "p must be 1 or 2, got %lld",
                              (long long)p);
    if (!st && ic->in[0]->rank >= 0)
        st = hone_infer_axis(ic, hone_attr_int(ic->node, "axis", -1), ic->in[0]->rank, &axis);
    return st ? st : hone_infer_same(ic);
}

hone_status eval_lpnorm(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int64_t a = hone_attr_int(ec->node, "axis", -1), outer, len, inner;
    nn_split_axis(x->rank, x->dims, (int)(a < 0 ? a + x->rank : a), &outer, &len, &inner);
    nn_stage s;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    hone_rt_lpnorm(outer, len, inner, s.in[0], s.out[0], (int)hone_attr_int(ec->node, "p", 2));
    nn_stage_end(ec, &s);
    return HONE_OK;
}

/* Reduced-axis mask of MeanVarianceNormalization (default axes [0, 2, 3]). */
static hone_status mvn_axes(hone_ctx *ctx, const hone_node *n, int rank, bool *red)
{
    static const int64_t dflt[] = {0, 2, 3};
    const int64_t *ax = dflt;
    int cnt = hone_attr_ints(n, "axes", &ax);
    if (cnt < 0) {
        ax = dflt;
        cnt = 3;
    }
    memset(red, 0, sizeof(bool) * HONE_MAX_RANK);
    for (int i = 0; i < cnt; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + rank : ax[i];
        if (a < 0 || a >= rank)
            return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "axis %lld is out of range for rank %d",
                                  (long long)ax[i], rank);
        red[a] = true;
    }
    return HONE_OK;
}

hone_status infer_mvn(hone_infer *ic)
{
    bool red[HONE_MAX_RANK];
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st && ic->in[0]->rank >= 0)
        st = mvn_axes(ic->ctx, ic->node, ic->in[0]->rank, red);
    return st ? st : hone_infer_same(ic);
}

/* Group of every element = its flat index over the kept axes; sums per group. */
static void mvn_apply(const hone_tensor *x, const bool *red, const float *xv, float *yv,
                      double *sum)
{
    hone_tensor g = {.rank = x->rank};
    int64_t groups = 1;
    for (int i = 0; i < x->rank; i++) {
        g.dims[i] = red[i] ? 1 : x->dims[i];
        groups *= g.dims[i];
    }
    const hone_tensor *gp = &g;
    hone_bcast b;
    double cnt = groups ? (double)x->numel / (double)groups : 1;
    hone_bcast_init(&b, x->rank, x->dims, 1, &gp);
    for (int64_t i = 0; i < x->numel; i++, hone_bcast_next(&b)) {
        sum[2 * b.off[0]] += xv[i];
        sum[2 * b.off[0] + 1] += (double)xv[i] * xv[i];
    }
    hone_bcast_init(&b, x->rank, x->dims, 1, &gp);
    for (int64_t i = 0; i < x->numel; i++, hone_bcast_next(&b)) {
        double m = sum[2 * b.off[0]] / cnt, var = sum[2 * b.off[0] + 1] / cnt - m * m;
        yv[i] = (float)((xv[i] - m) / (sqrt(var > 0 ? var : 0) + 1e-9));
    }
}

hone_status eval_mvn(hone_eval *ec)
{
    bool red[HONE_MAX_RANK];
    nn_stage s;
    double *sum;
    hone_status st = mvn_axes(ec->ctx, ec->node, ec->in[0]->rank, red);
    if (!st)
        st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    sum = calloc(2 * (size_t)(ec->in[0]->numel ? ec->in[0]->numel : 1), sizeof *sum);
    if (sum)
        mvn_apply(ec->in[0], red, s.in[0], s.out[0], sum);
    else
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    free(sum);
    nn_stage_end(ec, &s);
    return st;
}

/* LRN: X[N,C,...] normalised across size neighbouring channels. */
hone_status infer_lrn(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t size = hone_attr_int(ic->node, "size", 0);
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st && size < 1)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "attribute 'size' is required and must be positive");
    if (!st && x->rank >= 0 && x->rank < 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "X must have rank >= 2, got %d",
                              x->rank);
    return st ? st : hone_infer_same(ic);
}

hone_status eval_lrn(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    const hone_node *n = ec->node;
    nn_stage s;
    hone_status st = nn_stage_begin(ec, 1, &s);
    if (st)
        return st;
    hone_rt_lrn(x->dims[0], x->dims[1], nn_prod(x->dims, 2, x->rank), s.in[0], s.out[0],
                hone_attr_int(n, "size", 1), hone_attr_float(n, "alpha", 1e-4f),
                hone_attr_float(n, "beta", 0.75f), hone_attr_float(n, "bias", 1.0f));
    nn_stage_end(ec, &s);
    return HONE_OK;
}
