/*
 * The training op family (domain "hone"): the module map. Rows live in
 * grad.def. These are the backward and loss ops reverse-mode autodiff
 * (passes/train/autodiff.c) emits; the interpreter runs them like any other
 * op. All of them work on float32 only (and say so when given anything
 * else). An op that needs a forward tensor's shape takes the forward tensor
 * itself as a "like" input, so symbolic batch sizes need no shape plumbing.
 *
 *   grad_elementwise.c  SumTo (un-broadcast), ExpandLike, ReshapeLike,
 *                       ZerosLike, UnaryGrad (activation derivatives)
 *   grad_nn.c           ConvGrad, BatchNormTrain, BatchNormGrad, MaxPoolGrad,
 *                       AveragePoolGrad, GlobalPoolGrad, SoftmaxGrad
 *   grad_loss.c         SoftmaxCrossEntropy, SoftTargetKL, DistanceLoss: each
 *                       outputs the scalar loss and d(loss)/d(input 0)
 *   grad_tensor.c       MoveGrad (element-moving ops), ResizeGrad (Resize and
 *                       Upsample): both replay the forward node
 *
 * Kernels live in the runtime files named after their families with a _grad suffix.
 */
#ifndef HONE_OPS_GRAD_H
#define HONE_OPS_GRAD_H

#include "nn.h"

/* ===================== grad_elementwise.c ===================== */

/* Fails unless every present input in [0, n) is float32 (or still untyped). */
hone_status grad_infer_f32(hone_infer *ic, int n);
/* Fails unless a and b (where known) have one shape; `what` names them. */
hone_status grad_same_shape(hone_infer *ic, const hone_tinfo *a, const hone_tinfo *b,
                            const char *what);
/* Sets output i (when the node has it) to float32 with t's shape. */
void grad_infer_as(hone_infer *ic, int i, const hone_tinfo *t);
/* True when the node produces output i (optional outputs may be absent). */
bool grad_wants(const hone_node *n, int i);
/* Output 0: float32 shaped like input 1 (the forward tensor). */
hone_status infer_like(hone_infer *ic);

#endif
