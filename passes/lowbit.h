/*
 * Low-bit weight quantization shared by slb (slb.c), quantize-rtn and
 * quantize-ste (lowbit_passes.c): the module map of lowbit.c.
 *
 * A job walks one model through the common frame of the three methods:
 *   lb_begin   needs --data; clones the original (teacher, "before" metric);
 *              picks the Convs to quantize; re-introduces BatchNormalization
 *              after them (hone_unfold_bn, the shared models have BN folded);
 *              chooses each layer's scale s (per output channel or per layer,
 *              the MSE-best clipping of the pretrained weights); with 8-bit
 *              activations calibrates every quantized conv's input range
 *              (min/max over calibration samples) and inserts hone.FakeQuant.
 *   (method)   sets lb_layer.code: the chosen level of every weight.
 *   lb_finish  discrete weights in, BN re-estimated with them ("state BN"),
 *              held-out metric after, BN folded into the per-channel scales
 *              and biases, and the deployable form written: standard ONNX
 *              (int8 codes -> DequantizeLinear(axis 0) -> Conv, uint8
 *              QuantizeLinear/DequantizeLinear pairs for activations) or
 *              hone's packed form (hone.DequantizePacked of b-bit indices).
 *
 * Levels: b = 1..7 bits: v_i = q_i / qmax with q_i = 2i - (2^b - 1), i.e.
 * linspace(-1, 1, 2^b) ({-1, +1} for one bit); b = 8: q_i = i - 127, the
 * 255 symmetric int8 levels (linspace over 256 levels has no int8 codes).
 * A weight is q * s / qmax.
 */
#ifndef HONE_LOWBIT_H
#define HONE_LOWBIT_H

#include "loop.h"
#include "passes.h"

typedef struct lb_grid {
    int bits, k;          /* k levels */
    int step, qmax;       /* q_i = step * i - qmax */
} lb_grid;

typedef struct lb_layer {
    hone_node *conv;
    hone_tensor *w;       /* pretrained weight [M, C/g, kh, kw] (owned copy) */
    int64_t cout, per;    /* output channels, weights per channel */
    float *scale;         /* s per output channel (equal for layer granularity) */
    uint8_t *idx;         /* chosen level index per weight */
} lb_layer;

typedef struct lb_job {
    hone_pass_ctx *pc;
    hone_graph *g;
    const hone_pass_data *data;
    lb_grid grid;
    int acts;             /* 32 or 8 */
    bool per_channel;
    lb_layer *layers;
    int n;
    hone_graph *teacher;  /* the original model */
    hone_tensor *calib;   /* training samples for calibration and BN re-estimation */
    hone_fit_data fd;
    hone_fit_metric kind;
    double before, after;
    int n_fq;             /* FakeQuant nodes inserted */
} lb_job;

/* The level grid of `bits` (1..8). */
lb_grid lb_grid_of(int bits);
/* Level value v_i in [-1, 1]. */
double lb_level(const lb_grid *gr, int i);
/* Index of the level nearest u (u in units of s). */
int lb_nearest(const lb_grid *gr, double u);

/* Runs the common first half on g (options bits, acts, granularity,
 * keep-first, samples of pc). */
hone_status lb_begin(hone_pass_ctx *pc, hone_graph *g, lb_job *job);
/* A hone_fit spec for the method's training (steps, batch, lr, seed
 * options; CE + KD from the original with labels, KD without). */
void lb_fit_spec(lb_job *job, hone_fit_spec *spec);
/* Sets every layer's weight to the discrete weights of lb_layer.idx. */
void lb_set_discrete(lb_job *job);
/* The common second half; frees the job. */
hone_status lb_finish(lb_job *job);
/* Frees what lb_begin made (lb_finish calls it). */
void lb_job_free(lb_job *job);
/* A pass in the frame: lb_begin, method (sets lb_layer.idx), lb_finish. */
hone_status lb_run(hone_pass_ctx *pc, hone_graph *g, hone_status (*method)(lb_job *job));
/* Trains job->g (lb_fit_spec) with the n constants params as the listed
 * trainables and hook as before_step; logs steps and throughput. */
hone_status lb_train(lb_job *job, hone_value *const *params, int n,
                     hone_status (*hook)(void *, hone_trainer *, const hone_fit_step_info *),
                     void *user);
/* A new zeroed tensor (sizes the pass itself derived: no failure expected). */
hone_tensor *lb_new_tensor(hone_dtype dt, int rank, const int64_t *dims);
/* Appends op(x[, y]) named `name` with one fresh output (producer links come
 * with the next use update: use the returned node's out[0]). */
hone_node *lb_add_node(hone_graph *g, const char *op, const char *name, hone_value *x,
                       hone_value *y);
/* A float constant shaped like a weight of rank r, [M, 1, 1, ...], from s[M]. */
hone_value *lb_channel_const(hone_graph *g, int r, int64_t m, const float *s, const char *name);

/* ---------- pack.c ---------- */

/* Rewrites every DequantizeLinear of constant int8 weights (per-axis-0 or
 * scalar scale, zero zero point) whose codes lie on a b-bit grid of
 * lowbit.h (b < 8: odd codes within +-(2^b - 1); else the 255 levels) into
 * hone.DequantizePacked of b-bit indices; returns the number rewritten. The
 * outputs are bit-identical. */
int lb_pack(hone_graph *g);

#endif
