/*
 * hone training engine: the module map.
 *
 * The engine turns a forward graph into a training program: a copy of the
 * graph in which BatchNormalization runs in training mode (hone.BatchNormTrain),
 * a loss node is appended, and reverse-mode autodiff appends the backward
 * nodes (one switch over the op in autodiff.c; backward kernels are
 * hone-domain ops in frontend/ops/grad.def run by the same interpreter).
 * Parameters are the graph's float constants at parameter slots that are not
 * frozen; the program's extra outputs are their gradients. Optimisers update
 * the parameter tensors in place.
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
 * the loss). loss must be a float32 scalar value of g. g must be
 * topologically sorted; MaxPool nodes on the gradient path gain an Indices
 * output. Unsupported ops on the path fail with HONE_ERR_UNSUPPORTED naming
 * the node. */
hone_status hone_autodiff(hone_ctx *ctx, hone_graph *g, hone_value *loss, int n_wrt,
                          hone_value **wrt, hone_value **grads);

/* ---------- loss.c ---------- */

typedef enum hone_loss_kind {
    HONE_LOSS_CE,       /* softmax cross-entropy against integer labels (batch mean) */
    HONE_LOSS_KD,       /* T^2 * KL(teacher || student) of softmax at temperature T */
    HONE_LOSS_CE_KD,    /* kd_alpha * KD + (1 - kd_alpha) * CE */
    HONE_LOSS_MSE,      /* mean squared error against a float target */
    HONE_LOSS_L1,       /* mean absolute error against a float target */
    HONE_LOSS_NONE,     /* only the feature-matching term (feat_weight * MSE) */
} hone_loss_kind;

struct hone_loss_inputs; /* below: the graph inputs a loss added */

typedef struct hone_train_spec {
    hone_loss_kind loss;
    float temperature;        /* KD temperature (default 4) */
    float kd_alpha;           /* weight of KD in CE_KD (default 0.9) */
    const char *output;       /* graph output trained (NULL: the first) */
    const char **frozen;      /* constants never updated (names) */
    int n_frozen;
    bool freeze_all_but_listed; /* when true, only `trainable` names train */
    /* Names that train; a float constant listed here is a parameter at any
     * input slot (a pass's own scales, logits, gates), not only at the usual
     * weight and bias slots. */
    const char **trainable;
    int n_trainable;
    bool bn_train;            /* BatchNormalization in training mode (default true) */
    float bn_momentum;        /* running-stat momentum (PyTorch convention, default 0.1) */
    /* Feature matching: adds feat_weight * MSE(feat_student, feat_teacher), two value
     * names of the model; with feat_teacher NULL the teacher feature is a tensor fed
     * each step (hone_trainer_step_with). feat_student NULL: no such term. */
    const char *feat_student;
    const char *feat_teacher;
    float feat_weight;        /* default 1 */
    /* A float scalar value of the model added to the loss as it is (a pass's
     * regulariser built into the graph, e.g. binarize's noisy-label term), or NULL. */
    const char *extra_loss_value;
    /* Extra terms a pass builds on the training program itself (several
     * feature pairs, an in-graph teacher branch): called on the program after
     * the main and feature terms with the loss's graph inputs (labels,
     * target); returns a float scalar of g added with weight 1, or NULL with
     * the error in ctx. NULL: no extra term. */
    hone_value *(*extra_loss)(void *user, hone_ctx *ctx, hone_graph *g,
                              const struct hone_loss_inputs *in);
    void *extra_user;
} hone_train_spec;

void hone_train_spec_init(hone_train_spec *s);

/* Graph inputs a loss added (NULL where unused), in the order they were added. */
typedef struct hone_loss_inputs {
    hone_value *labels;       /* int64 [N] */
    hone_value *teacher;      /* float, shaped like the output: teacher logits or target */
    hone_value *feature;      /* float, shaped like feat_student */
} hone_loss_inputs;

/* Appends spec's loss over value `out` of g, adding graph inputs for what it
 * compares against; *loss receives the float32 scalar. */
hone_status hone_loss_build(hone_ctx *ctx, hone_graph *g, const hone_train_spec *spec,
                            hone_value *out, hone_loss_inputs *in, hone_value **loss);
/* The single terms (each returns the scalar loss value, NULL on bad arguments). */
hone_value *hone_loss_ce(hone_graph *g, hone_value *logits, hone_value *labels);
hone_value *hone_loss_kd(hone_graph *g, hone_value *logits, hone_value *teacher, float temp);
hone_value *hone_loss_dist(hone_graph *g, hone_value *x, hone_value *target, bool l1);
/* sum_i w[i] * terms[i] (w[i] == 1 multiplies by nothing). */
hone_value *hone_loss_mix(hone_graph *g, int n, hone_value **terms, const float *w);

/* ---------- trainer.c ---------- */

typedef struct hone_trainer hone_trainer;

/* Builds a training program for model (which is not modified until sync). The
 * model's first input takes the batch; a concrete batch dimension becomes
 * symbolic, so any batch size runs. ctx receives errors of later calls too. */
hone_status hone_trainer_new(hone_ctx *ctx, const hone_graph *model, const hone_train_spec *spec,
                             hone_trainer **out);
void hone_trainer_free(hone_trainer *t);
int hone_trainer_n_params(const hone_trainer *t);
const char *hone_trainer_param_name(const hone_trainer *t, int i);
hone_tensor *hone_trainer_param(hone_trainer *t, int i);     /* updated in place */
/* Gradient of parameter i from the last step (NULL before the first step). */
const hone_tensor *hone_trainer_grad(const hone_trainer *t, int i);
/* The trained output (e.g. logits) of the last step, for training metrics. */
const hone_tensor *hone_trainer_output(const hone_trainer *t);
/* One forward+backward pass on a batch: input [B,...]; labels int64 [B] (CE,
 * CE_KD); teacher: teacher logits [B,K] (KD, CE_KD) or the float target shaped
 * like the output (MSE, L1). Unused arguments may be NULL. Gradients are left
 * in hone_trainer_grad; *loss (may be NULL) gets the batch loss. BN running
 * statistics are updated after the step. */
hone_status hone_trainer_step(hone_trainer *t, const hone_tensor *input, const hone_tensor *labels,
                              const hone_tensor *teacher, float *loss);
/* Same, with the fed teacher feature of a feature-matching loss. */
hone_status hone_trainer_step_with(hone_trainer *t, const hone_tensor *input,
                                   const hone_tensor *labels, const hone_tensor *teacher,
                                   const hone_tensor *feature, float *loss);
/* Forward only in inference mode (BN running stats, same parameter tensors):
 * *output receives a new tensor of the trained output, which the caller frees. */
hone_status hone_trainer_infer(hone_trainer *t, const hone_tensor *input, hone_tensor **output);
/* Writes trained parameters and BN running statistics back into model (the
 * graph given to hone_trainer_new, or one with the same names and shapes). */
hone_status hone_trainer_sync(hone_trainer *t, hone_graph *model);
/* The training program, for inspection and dumps (owned by the trainer). */
const hone_graph *hone_trainer_graph(const hone_trainer *t);
/* Overwrites the contents of the model constant `name` (not a parameter: a
 * temperature, a mask, a noise draw) in both the training program and the
 * inference form; src must have its dtype and size. */
hone_status hone_trainer_set_const(hone_trainer *t, const char *name, const hone_tensor *src);
/* BatchNormalization running statistics of the inference form (dist.c keeps
 * them equal across ranks, ckpt.c saves them): n BN layers; *mean and *var of
 * BN i (NULL when the model has no such constants). */
int hone_trainer_n_bn(const hone_trainer *t);
void hone_trainer_bn_running(hone_trainer *t, int i, hone_tensor **mean, hone_tensor **var);

#endif
