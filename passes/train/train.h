/*
 * hone training engine: the module map.
 *
 * The engine turns a forward graph into a training program: a copy of the
 * graph in which BatchNormalization runs in training mode, a loss node is
 * appended, and reverse-mode autodiff appends the backward nodes (each op's
 * backward builder lives in the op table; backward kernels are hone-domain
 * ops run by the same interpreter). Parameters are the graph's float
 * constants that are not frozen; the program's extra outputs are their
 * gradients. Optimisers update the parameter tensors in place.
 *
 *   autodiff.c   reverse-mode differentiation over the IR
 *   trainer.c    hone_trainer: build the program, run forward+backward, sync back
 *   loss.c       losses (CE, soft CE/KL at temperature, MSE, L1, feature matching)
 *   optim.c      SGD (momentum, Nesterov, weight decay), Adam/AdamW, grad clipping
 *   schedule.c   constant, cosine, step, one-cycle learning-rate schedules
 *   loop.c       epochs over a dataset: shuffling, batching, augmentation, eval
 *   bnstat.c     BN statistics re-estimation (recalibrate-bn)
 */
#ifndef HONE_TRAIN_H
#define HONE_TRAIN_H

#include "ir.h"

/* ---------- autodiff.c ---------- */

/* Appends to g the nodes computing d(loss)/d(wrt[i]) for every i; grads[i]
 * receives the value holding that gradient (NULL when it does not depend on
 * the loss). loss must be a scalar float value of g. */
hone_status hone_autodiff(hone_ctx *ctx, hone_graph *g, hone_value *loss, int n_wrt,
                          hone_value **wrt, hone_value **grads);

/* ---------- trainer.c ---------- */

typedef enum hone_loss_kind {
    HONE_LOSS_CE,       /* softmax cross-entropy against integer labels */
    HONE_LOSS_KD,       /* soft cross-entropy against teacher logits at temperature T */
    HONE_LOSS_CE_KD,    /* alpha * KD * T^2 + (1 - alpha) * CE */
    HONE_LOSS_MSE,      /* mean squared error against a float target */
    HONE_LOSS_L1,       /* mean absolute error against a float target */
} hone_loss_kind;

typedef struct hone_train_spec {
    hone_loss_kind loss;
    float temperature;        /* KD temperature (default 4) */
    float kd_alpha;           /* weight of KD in CE_KD (default 0.9) */
    const char *output;       /* graph output trained (NULL: the first) */
    const char **frozen;      /* constants never updated (names) */
    int n_frozen;
    bool freeze_all_but_listed; /* when true, only `trainable` names train */
    const char **trainable;
    int n_trainable;
    bool bn_train;            /* BatchNormalization in training mode (default true) */
    float bn_momentum;        /* running-stat momentum (PyTorch convention, default 0.1) */
} hone_train_spec;

void hone_train_spec_init(hone_train_spec *s);

typedef struct hone_trainer hone_trainer;

/* Builds a training program for model (which is not modified until sync). */
hone_status hone_trainer_new(hone_ctx *ctx, const hone_graph *model, const hone_train_spec *spec,
                             hone_trainer **out);
void hone_trainer_free(hone_trainer *t);
int hone_trainer_n_params(const hone_trainer *t);
const char *hone_trainer_param_name(const hone_trainer *t, int i);
hone_tensor *hone_trainer_param(hone_trainer *t, int i);     /* updated in place */
const hone_tensor *hone_trainer_grad(const hone_trainer *t, int i);
/* One forward+backward pass on a batch: input [B,...]; target is int64
 * labels [B] (CE), teacher logits [B,K] (KD), both (CE_KD: labels, teacher),
 * or a float tensor shaped like the output (MSE/L1). Gradients are left in
 * hone_trainer_grad; *loss gets the batch loss. */
hone_status hone_trainer_step(hone_trainer *t, const hone_tensor *input, const hone_tensor *labels,
                              const hone_tensor *teacher, float *loss);
/* Forward only in inference mode (BN running stats), outputs[i] new tensors. */
hone_status hone_trainer_infer(hone_trainer *t, const hone_tensor *input, hone_tensor **output);
/* Writes trained parameters and BN running statistics back into model. */
hone_status hone_trainer_sync(hone_trainer *t, hone_graph *model);

#endif
