/*
 * Softmax, LogSoftmax, Hardmax and Dropout.
 *
 * The three softmax ops changed meaning at opset 13. Before it, the input is
 * coerced to 2-D, [prod(dims[..axis)), prod(dims[axis..))], with axis default
 * 1, and the op runs over each whole row; from 13 on it runs along the single
 * axis, default -1. Both map onto the runtime's [outer, len, inner] view.
 *
 * Dropout is evaluated as inference: the output is the input and the mask is
 * all true. Training mode (opset 12's training_mode input) with a non-zero
 * ratio would draw random numbers, which a reference interpreter cannot
 * reproduce, so it is reported as unsupported. Opset < 7's is_test flag is
 * treated like every runtime treats it: Dropout in a deployed graph is identity.
 */
#include "nn.h"

/* The axis of a softmax-family node, normalised; old opsets accept axis == rank. */
static hone_status softmax_axis(hone_ctx *ctx, const hone_node *n, int opset, int rank,
                                int *axis)
{
    bool old = opset < 13;
    int64_t a = hone_attr_int(n, "axis", old ? 1 : -1);
    int hi = old ? rank : rank - 1;
    if (a < -rank || a > hi)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "axis %lld is out of range for rank %d",
                              (long long)a, rank);
    *axis = (int)(a < 0 ? a + rank : a);
    return HONE_OK;
}

hone_status infer_softmax(hone_infer *ic)
{
    int axis;
    hone_status st = nn_infer_float(ic, 0, false);
    if (!st && ic->in[0]->rank >= 0)
        st = softmax_axis(ic->ctx, ic->node, ic->opset, ic->in[0]->rank, &axis);
    return st ? st : hone_infer_same(ic);
}

/* Evaluates Softmax, LogSoftmax or Hardmax (by op). */
hone_status eval_softmax(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    int axis;
    int64_t outer, len, inner;
    hone_rt_softmax_kind kind = ec->node->op == HONE_OP_LOG_SOFTMAX ? HONE_RT_LOGSOFTMAX
                                : ec->node->op == HONE_OP_HARDMAX   ? HONE_RT_HARDMAX
                                                                    : HONE_RT_SOFTMAX;
    hone_status st = softmax_axis(ec->ctx, ec->node, ec->opset, x->rank, &axis);
    if (st)
        return st;
    nn_split_axis(x->rank, x->dims, axis, &outer, &len, &inner);
    if (ec->opset < 13) {
        len = nn_prod(x->dims, axis, x->rank);
        inner = 1;
    }
    nn_stage s;
    if ((st = nn_stage_begin(ec, 1, &s)))
        return st;
    hone_rt_softmax(kind, outer, len, inner, s.in[0], s.out[0]);
    nn_stage_end(ec, &s);
    return HONE_OK;
}

/* Dropout: data (ratio, training_mode from opset 12) -> output, mask. */
hone_status infer_dropout(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    hone_status st = nn_infer_float(ic, 0, false);
    if (st)
        return st;
    const hone_tinfo *r = ic->opset >= 12 && ic->n_in > 1 ? ic->in[1] : NULL;
    double ratio = r && r->value && r->value->numel ? hone_tensor_get_f64(r->value, 0)
                                                    : hone_attr_float(ic->node, "ratio", 0.5f);
    if (!(ratio >= 0 && ratio < 1))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "ratio %g is not in [0, 1)",
                              ratio);
    hone_infer_set(ic, 0, x->dtype, x->rank, x->dims);
    if (ic->n_out > 1)
        hone_infer_set(ic, 1, ic->opset >= 10 ? HONE_DT_BOOL : x->dtype, x->rank, x->dims);
    return HONE_OK;
}

hone_status eval_dropout(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *train = ec->n_in > 2 ? ec->in[2] : NULL;
    const hone_tensor *r = ec->opset >= 12 && ec->n_in > 1 ? ec->in[1] : NULL;
    double ratio = r && r->numel ? hone_tensor_get_f64(r, 0) : 0.5;
    if (train && train->numel && hone_tensor_get_i64(train, 0) && ratio > 0)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_UNSUPPORTED,
                              "training-mode Dropout with ratio %g draws random numbers", ratio);
    memcpy(ec->out[0]->data, x->data, hone_tensor_nbytes(x));
    if (ec->n_out > 1 && ec->out[1])
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_f64(ec->out[1], i, 1.0);
    return HONE_OK;
}
