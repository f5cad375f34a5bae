/*
 * Loss ops of the training engine. Each outputs the scalar loss and,
 * optionally, its gradient with respect to input 0, computed in the same
 * pass (autodiff's rule for these ops just scales that gradient by the
 * incoming scalar):
 *
 *   SoftmaxCrossEntropy(logits[B,K], labels[B]) -> loss, dlogits
 *       mean over the batch; labels int64 or int32 in [0, K)
 *   SoftTargetKL(logits[B,K], teacher[B,K]) -> loss, dlogits
 *       T^2 * batch mean of KL(softmax(teacher/T) || softmax(logits/T)),
 *       attribute temperature (T > 0, default 1); the teacher gets no gradient
 *   DistanceLoss(x, t) -> loss, dx
 *       mean of (x - t)^2 (kind "mse", default) or |x - t| (kind "l1") over
 *       all elements; x and t have one shape (d/dt is -dx)
 */
#include <stdlib.h>

#include "grad.h"

/* Output 0 is a float32 scalar, output 1 (when wanted) has input 0's shape. */
static void infer_loss_outputs(hone_infer *ic)
{
    hone_infer_set(ic, 0, HONE_DT_FLOAT, 0, NULL);
    grad_infer_as(ic, 1, ic->in[0]);
}

/* Fails unless input i has rank 2 ([B, K]). */
static hone_status check_matrix(hone_infer *ic, int i)
{
    if (ic->in[i]->rank >= 0 && ic->in[i]->rank != 2)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "input %d must be [batch, classes], got rank %d", i,
                              ic->in[i]->rank);
    return HONE_OK;
}

/* The gradient buffer: output 1, or fresh scratch (*own) when the node has none. */
static hone_status grad_buffer(hone_eval *ec, float **g, float **own)
{
    *own = NULL;
    if (grad_wants(ec->node, 1)) {
        *g = ec->out[1]->data;
        return HONE_OK;
    }
    hone_status st = nn_scratch(ec, (size_t)ec->in[0]->numel, own);
    *g = *own;
    return st;
}

/* ===================== SoftmaxCrossEntropy ===================== */

hone_status infer_xent(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *lab = ic->in[1];
    hone_status st = grad_infer_f32(ic, 1);
    if (!st)
        st = check_matrix(ic, 0);
    if (!st && lab->dtype && lab->dtype != HONE_DT_INT64 && lab->dtype != HONE_DT_INT32)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "labels must be int64 or int32, got %s",
                            hone_dtype_name(lab->dtype));
    if (!st && lab->rank >= 0 &&
        (lab->rank != 1 || (x->rank == 2 && x->dims[0] >= 0 && lab->dims[0] >= 0 &&
                            lab->dims[0] != x->dims[0])))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                            "labels must be a vector with one entry per row of logits");
    if (!st)
        infer_loss_outputs(ic);
    return st;
}

/* Copies the labels into an int64 array, failing on one outside [0, k). */
static hone_status read_labels(hone_eval *ec, const hone_tensor *lab, int64_t k, int64_t *out)
{
    for (int64_t i = 0; i < lab->numel; i++) {
        out[i] = hone_tensor_get_i64(lab, i);
        if (out[i] < 0 || out[i] >= k)
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID,
                                  "label %lld at row %lld is outside [0, %lld)", (long long)out[i],
                                  (long long)i, (long long)k);
    }
    return HONE_OK;
}

hone_status eval_xent(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *lab = ec->in[1];
    int64_t rows = x->dims[0], k = x->dims[1];
    int64_t *labels = malloc(sizeof *labels * (size_t)(rows ? rows : 1));
    float *g, *own = NULL;
    if (!labels)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    hone_status st = read_labels(ec, lab, k, labels);
    if (!st)
        st = grad_buffer(ec, &g, &own);
    if (!st)
        *(float *)ec->out[0]->data = (float)hone_rt_softmax_xent(rows, k, x->data, labels, g);
    free(labels);
    free(own);
    return st;
}

/* ===================== SoftTargetKL ===================== */

hone_status infer_soft_kl(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 2);
    if (!st)
        st = check_matrix(ic, 0);
    if (!st)
        st = grad_same_shape(ic, ic->in[0], ic->in[1], "logits and teacher logits");
    if (!st && !(hone_attr_float(ic->node, "temperature", 1.0f) > 0))
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "temperature must be positive");
    if (!st)
        infer_loss_outputs(ic);
    return st;
}

hone_status eval_soft_kl(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    float *g, *own;
    hone_status st = grad_buffer(ec, &g, &own);
    if (st)
        return st;
    float t = hone_attr_float(ec->node, "temperature", 1.0f);
    *(float *)ec->out[0]->data =
        (float)hone_rt_soft_kl(x->dims[0], x->dims[1], x->data, ec->in[1]->data, t, g);
    free(own);
    return HONE_OK;
}

/* ===================== DistanceLoss ===================== */

/* 1 for kind "l1", 0 for "mse", -1 for anything else. */
static int dist_kind(const hone_node *n)
{
    const char *k = hone_attr_str(n, "kind", "mse");
    return !strcmp(k, "l1") ? 1 : !strcmp(k, "mse") ? 0 : -1;
}

hone_status infer_dist_loss(hone_infer *ic)
{
    hone_status st = grad_infer_f32(ic, 2);
    if (!st)
        st = grad_same_shape(ic, ic->in[0], ic->in[1], "input and target");
    if (!st && dist_kind(ic->node) < 0)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                            "kind must be \"mse\" or \"l1\", is \"%s\"",
                            hone_attr_str(ic->node, "kind", ""));
    if (!st)
        infer_loss_outputs(ic);
    return st;
}

hone_status eval_dist_loss(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    float *g, *own;
    hone_status st = grad_buffer(ec, &g, &own);
    if (st)
        return st;
    *(float *)ec->out[0]->data =
        (float)hone_rt_dist_loss(dist_kind(ec->node), x->numel, x->data, ec->in[1]->data, g);
    free(own);
    return HONE_OK;
}
