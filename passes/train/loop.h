/*
 * hone training engine, loop slice: the module map.
 *
 * What turns one forward+backward step (train.h: hone_trainer) into training:
 *
 *   optim.c     optimisers over (parameter, gradient) tensor pairs: SGD with
 *               momentum or Nesterov momentum, Adam, AdamW; L2 or decoupled
 *               weight decay; global gradient-norm clipping; a frozen flag
 *               per parameter. Updates follow torch.optim's formulas.
 *   schedule.c  learning rate per step: constant, cosine, step (milestones,
 *               gamma), all with optional linear warm-up, and one-cycle
 *               (which also cycles momentum, as torch's OneCycleLR does).
 *   loop.c      epochs over a dataset: held-out split, seeded shuffling,
 *               batching, horizontal-flip augmentation, teacher targets for
 *               label-free training, a held-out metric per epoch, weight
 *               re-initialisation; the same seed gives the same weights.
 *   bnstat.c    BatchNormalization statistics re-estimation: the model runs
 *               with batch statistics over calibration batches and every BN
 *               gets the cumulative average of them as running mean/var.
 *
 * Steps count optimiser updates from 0. Learning rates are doubles here and
 * rounded to float only where a parameter is updated.
 */
#ifndef HONE_TRAIN_LOOP_H
#define HONE_TRAIN_LOOP_H

#include "dataset.h"
#include "train.h"

/* ---------- optim.c ---------- */

typedef enum hone_optim_kind {
    HONE_OPTIM_SGD,       /* p -= lr * buf, buf = m * buf + g (buf = g at the first step) */
    HONE_OPTIM_NESTEROV,  /* p -= lr * (g + m * buf) */
    HONE_OPTIM_ADAM,      /* L2 weight decay added to the gradient */
    HONE_OPTIM_ADAMW,     /* decoupled weight decay: p *= 1 - lr * wd */
    HONE_OPTIM_COUNT
} hone_optim_kind;

typedef struct hone_optim_spec {
    hone_optim_kind kind;
    double momentum;      /* SGD/Nesterov momentum (default 0.9; 0 = plain SGD) */
    double weight_decay;  /* default 0 */
    double beta1, beta2;  /* Adam moment decay (0.9, 0.999) */
    double eps;           /* Adam denominator floor (1e-8) */
    double clip_norm;     /* bound of the global gradient L2 norm; 0 = no clipping */
} hone_optim_spec;

/* Defaults of kind (the torch.optim defaults, momentum 0.9 for SGD). */
void hone_optim_spec_init(hone_optim_spec *s, hone_optim_kind kind);
/* "sgd", "nesterov", "adam", "adamw" -> kind; -1 for another name. */
int hone_optim_parse(const char *name);
const char *hone_optim_name(hone_optim_kind k);

typedef struct hone_optim hone_optim;

/* An optimiser over n float parameters (updated in place, not owned). Errors
 * through ctx, which the optimiser keeps for hone_optim_step. */
hone_status hone_optim_new(hone_ctx *ctx, const hone_optim_spec *spec, int n,
                           hone_tensor *const *params, hone_optim **out);
void hone_optim_free(hone_optim *o);
/* A frozen parameter is neither updated nor counted in the clipping norm. */
void hone_optim_set_frozen(hone_optim *o, int i, bool frozen);
bool hone_optim_frozen(const hone_optim *o, int i);
/* Sets SGD momentum or Adam beta1 (one-cycle momentum cycling). */
void hone_optim_set_momentum(hone_optim *o, double m);
/* One update at learning rate lr. grads[i] is the gradient of params[i] (NULL:
 * none this step, the parameter is left alone). *norm (may be NULL) receives
 * the global L2 norm of the gradients before clipping. */
hone_status hone_optim_step(hone_optim *o, const hone_tensor *const *grads, double lr,
                            double *norm);
/* Steps taken by parameter i (Adam's bias-correction count). */
int64_t hone_optim_steps(const hone_optim *o, int i);
/* State of parameter i for checkpoints (read and restored in place): the
 * returned *n floats (momentum buffer, or Adam's two moments one after the
 * other; NULL and 0 for plain SGD) and the step counter *t. */
float *hone_optim_state(hone_optim *o, int i, int64_t *n, int64_t **t);

/* ---------- schedule.c ---------- */

typedef enum hone_sched_kind {
    HONE_SCHED_CONSTANT,
    HONE_SCHED_COSINE,
    HONE_SCHED_STEP,
    HONE_SCHED_ONECYCLE,
    HONE_SCHED_COUNT
} hone_sched_kind;

#define HONE_SCHED_MAX_MILESTONES 16

typedef struct hone_schedule {
    hone_sched_kind kind;
    double lr;               /* base rate; the peak of one-cycle */
    int64_t total;           /* steps of the whole run */
    int64_t warmup;          /* linear warm-up steps (not one-cycle): lr * (s+1) / warmup */
    double min_lr;           /* cosine: the rate reached at `total` */
    int64_t milestones[HONE_SCHED_MAX_MILESTONES]; /* step: ascending steps */
    int n_milestones;
    double gamma;            /* step: factor at each milestone (0.1) */
    double pct_start;        /* one-cycle: share of steps rising (0.3) */
    double div_factor;       /* one-cycle: initial rate = lr / div_factor (25) */
    double final_div_factor; /* one-cycle: final rate = initial / final_div_factor (1e4) */
    double base_momentum, max_momentum; /* one-cycle momentum range (0.85, 0.95); 0, 0: off */
} hone_schedule;

void hone_schedule_init(hone_schedule *s, hone_sched_kind kind, double lr, int64_t total);
/* "constant", "cosine", "step", "onecycle" -> kind; -1 for another name. */
int hone_schedule_parse(const char *name);
const char *hone_schedule_name(hone_sched_kind k);
/* Validates the fields (positive totals, ascending milestones, ranges). */
hone_status hone_schedule_check(hone_ctx *ctx, const hone_schedule *s);
/* Learning rate of step (0-based); steps past total keep the last rule's value. */
double hone_schedule_lr(const hone_schedule *s, int64_t step);
/* Momentum one-cycle sets at step, or -1 when the schedule leaves it alone. */
double hone_schedule_momentum(const hone_schedule *s, int64_t step);

/* ---------- loop.c ---------- */

/* What the held-out metric measures. */
typedef enum hone_fit_metric {
    HONE_FIT_METRIC_NONE,   /* no held-out samples */
    HONE_FIT_METRIC_TOP1,   /* argmax vs labels */
    HONE_FIT_METRIC_AGREE,  /* argmax vs the teacher's argmax (label-free) */
    HONE_FIT_METRIC_PSNR,   /* vs targets, or vs the teacher's outputs (label-free) */
} hone_fit_metric;

const char *hone_fit_metric_name(hone_fit_metric m);

/* The samples of one run, already normalised and shaped to the model input:
 * x [N, ...] float; labels: N integers (CE, CE_KD) or NULL; targets: float
 * [N, ...] shaped like the model output (MSE, L1) or NULL. */
typedef struct hone_fit_data {
    const hone_tensor *x;
    const hone_tensor *labels;
    const hone_tensor *targets;
} hone_fit_data;

typedef struct hone_fit_step_info {
    int epoch, epochs;             /* 0-based epoch, epoch count */
    int64_t step, steps;           /* global step, total steps */
    int64_t epoch_images, epoch_size; /* samples done in this epoch, per epoch */
    double loss, lr, grad_norm;
    double elapsed_s;              /* since training began */
} hone_fit_step_info;

typedef struct hone_fit_epoch_info {
    int epoch, epochs;
    int64_t step;                  /* steps done */
    double loss;                   /* mean batch loss, weighted by batch size */
    double lr;                     /* the last step's rate */
    hone_fit_metric metric_kind;
    double metric;                 /* NAN when metric_kind is NONE */
    double epoch_s, images_per_s;  /* training time of the epoch (metric excluded) */
} hone_fit_epoch_info;

typedef struct hone_fit_spec {
    int epochs;
    int64_t batch;                 /* the last batch of an epoch may be smaller */
    hone_optim_spec optim;
    hone_sched_kind schedule;
    double lr, min_lr;
    double warmup_epochs;          /* linear warm-up (constant, cosine, step) */
    double milestones[HONE_SCHED_MAX_MILESTONES]; /* step schedule, in epochs */
    int n_milestones;
    double gamma;
    hone_train_spec train;         /* loss, KD temperature and alpha, frozen names, BN mode */
    const hone_graph *teacher;     /* label-free: its first output is each batch's target */
    double val_split;              /* 0: none; (0,1): share of samples; >= 1: sample count */
    uint64_t seed;
    bool flip;                     /* mirror each sample's last axis with probability 1/2 */
    int64_t max_steps;             /* > 0: train this many steps (the schedule spans them;
                                    * epochs is then ignored), for budgets below an epoch */
    void (*on_step)(void *user, const hone_fit_step_info *info);
    void (*on_epoch)(void *user, const hone_fit_epoch_info *info);
    /* Pass hooks (may be NULL; a non-zero status stops training):
     * before_step runs before each forward+backward (anneal a temperature with
     * hone_trainer_set_const, redraw noise); before_update runs between the
     * backward pass and the optimiser step with the gradients, which it may
     * rescale or replace in place (per-layer learning-rate scaling, custom
     * gradient rules); grads[i] belongs to hone_trainer_param(tr, i). */
    hone_status (*before_step)(void *user, hone_trainer *tr, const hone_fit_step_info *info);
    hone_status (*before_update)(void *user, hone_trainer *tr, hone_tensor *const *grads,
                                 const hone_fit_step_info *info);
    void *user;
    /* Checkpoints (dist.h: hone_ckpt_*): with checkpoint_dir set, the state is
     * saved there after every epoch; with resume, a run starts from the
     * checkpoint found there (from scratch when there is none). */
    const char *checkpoint_dir;
    bool resume;
} hone_fit_spec;

/* Defaults: 1 epoch, batch 64, Nesterov SGD, cosine, lr 0.01, gamma 0.1, seed 1. */
void hone_fit_spec_init(hone_fit_spec *s);

typedef struct hone_fit_result {
    int64_t steps, images, n_train, n_held;
    double loss;                   /* the last epoch's mean loss */
    hone_fit_metric metric_kind;
    double metric;                 /* the last epoch's held-out metric (NAN without one) */
    double train_s, images_per_s;
    /* data-parallel runs (dist.h): ranks, bytes each rank allreduces per step,
     * seconds in those allreduces; epochs restored from a checkpoint */
    int ranks;
    int64_t allreduce_bytes;
    double allreduce_s;
    int64_t resumed_epochs;
} hone_fit_result;

/* Trains model on data for spec->epochs epochs and writes the trained
 * parameters and BN statistics back into model. res may be NULL. */
hone_status hone_fit(hone_ctx *ctx, hone_graph *model, const hone_fit_data *data,
                     const hone_fit_spec *spec, hone_fit_result *res);

/* The held-out metric of model without training: the samples hone_fit(spec)
 * would hold out (spec->val_split), scored the way it scores them (top-1
 * against labels, PSNR against targets, else agreement with / PSNR against
 * spec->teacher). *kind receives what was measured (NONE: nothing held out,
 * *metric NAN). spec->epochs may be 0. */
hone_status hone_fit_evaluate(hone_ctx *ctx, const hone_graph *model, const hone_fit_data *data,
                              const hone_fit_spec *spec, hone_fit_metric *kind, double *metric);

/* Held-out split of n samples: `val` as in hone_fit_spec. The held-out
 * samples are drawn with a fixed seed (the same for every training seed);
 * both lists ascend. Free both with free(). */
hone_status hone_fit_split(hone_ctx *ctx, int64_t n, double val, int64_t **train,
                           int64_t *n_train, int64_t **held, int64_t *n_held);
/* Mirrors the last axis of each sample of x [B, ...] (and of y when given,
 * same samples) with probability 1/2 drawn from seed; returns the number
 * flipped. */
int64_t hone_fit_flip(hone_tensor *x, hone_tensor *y, uint64_t seed);
/* Re-initialises the weights of g: Kaiming-normal (fan_in, ReLU gain
 * sqrt(2)) for Conv, ConvTranspose, Gemm and MatMul weights, zeros for their
 * biases, BatchNormalization scale 1, bias 0, mean 0, var 1. *count (may be
 * NULL) receives the number of tensors re-initialised. */
hone_status hone_model_reinit(hone_ctx *ctx, hone_graph *g, uint64_t seed, int *count);

/* ---------- bnstat.c ---------- */

/* Re-estimates the running mean and variance of every BatchNormalization of
 * g: runs g with batch statistics (training-mode BN, no gradients) on the
 * samples of x [N, ...] (normalised, model-shaped) in batches of `batch`, and
 * sets each BN's mean to the average of its batch means and its variance to
 * the average of its unbiased batch variances (torch's cumulative average,
 * momentum None). *n_bn (may be NULL) receives the number of BN nodes set. */
hone_status hone_bn_recalibrate(hone_ctx *ctx, hone_graph *g, const hone_tensor *x,
                                int64_t batch, int *n_bn);

#endif
