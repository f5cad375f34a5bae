/*
 * The neural-network op family: the module map.
 *
 *   nn.c          shared helpers: float32 staging for the runtime kernels,
 *                 sliding-window geometry (strides, dilations, pads, auto_pad,
 *                 ceil_mode) and axis splitting
 *   nn_conv.c     Conv, ConvTranspose
 *   nn_pool.c     MaxPool, AveragePool, LpPool, their Global forms, MaxUnpool
 *   nn_norm.c     BatchNormalization, InstanceNormalization, LayerNormalization,
 *                 LpNormalization, MeanVarianceNormalization, LRN
 *   nn_linalg.c   Gemm, MatMul
 *   nn_softmax.c  Softmax, LogSoftmax, Hardmax, Dropout
 *
 * Every float kernel lives in runtime/ and works on float32 buffers. The eval
 * functions here stage their tensors through float32 (zero-copy for float32,
 * exact conversions for float16, bfloat16 and small integers) and report
 * float64 as unsupported, except where a double kernel exists (Gemm, MatMul;
 * Einsum lives in the misc family). Shape inference is exact and shared by static inference and the
 * interpreter, so a bad shape is reported the same way by both.
 */
#ifndef HONE_NN_H
#define HONE_NN_H

#include "hone_rt.h"
#include "ops_util.h"

/* ===================== nn.c: shared helpers ===================== */

#define NN_STAGE_MAX 8

/* Float32 views of an eval's inputs and outputs, converted copies where the
 * tensor is not float32 itself. in[i] is NULL for absent inputs and for inputs
 * of another element kind (an int64 index, a bool flag). */
typedef struct nn_stage {
    const float *in[NN_STAGE_MAX];
    float *out[NN_STAGE_MAX];
    float *own_in[NN_STAGE_MAX], *own_out[NN_STAGE_MAX];
    int n_out;
} nn_stage;

/* Stages every input of in[0]'s dtype or of a float dtype, and outputs
 * [0, n_out) that exist; UNSUPPORTED when in[0] cannot go through float32
 * exactly (float64, wide integers). */
hone_status nn_stage_begin(hone_eval *ec, int n_out, nn_stage *s);
/* Writes staged outputs back (converting) and frees the copies. */
void nn_stage_end(hone_eval *ec, nn_stage *s);
/* An uninitialised scratch buffer of n floats (at least one), or NOMEM naming the node. */
hone_status nn_scratch(hone_eval *ec, size_t n, float **p);

/* Fails unless input i (when its dtype is known) is a float type; with
 * small_ints, int8 and uint8 are accepted too. */
hone_status nn_infer_float(hone_infer *ic, int i, bool small_ints);
/* The inference view of a concrete tensor (for shape rules shared with eval). */
void nn_tinfo_of(const hone_tensor *t, hone_tinfo *ti);
/* Dim i of ti, or HONE_DIM_UNKNOWN when the rank is unknown. */
int64_t nn_dim(const hone_tinfo *ti, int i);
/* Fails unless every present input in [0, n) has a float type, the same as
 * input 0's when same is set. */
hone_status nn_infer_floats(hone_infer *ic, int n, bool same);
/* Product of dims [from, to). */
int64_t nn_prod(const int64_t *dims, int from, int to);
/* Splits a shape at axis into outer = prod(dims[..axis)), len = dims[axis],
 * inner = prod(dims(axis..]). */
void nn_split_axis(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *len,
                   int64_t *inner);

typedef struct nn_window_opts {
    bool ceil_mode;      /* pools: round the output extent up */
    bool pool;           /* pools: padding must be smaller than the window */
} nn_window_opts;

/* Fills w for nsp spatial dims of extents in[] under kernel k[] from the
 * node's strides, dilations, pads and auto_pad. Unknown (negative) extents give
 * unknown outputs; a window larger than the padded input is a shape error. */
hone_status nn_window(hone_ctx *ctx, const hone_node *n, int nsp, const int64_t *in,
                      const int64_t *k, nn_window_opts o, hone_rt_window *w);
/* Reads strides and dilations into w and the 2*nsp pads (begins, then ends). */
hone_status nn_window_attrs(hone_ctx *ctx, const hone_node *n, int nsp, hone_rt_window *w,
                            int64_t *pads);
/* Reads an INTS attribute of exactly cnt values, each in [lo, max_dim], into v;
 * absent gives dflt everywhere. */
hone_status nn_ints_attr(hone_ctx *ctx, const hone_node *n, const char *name, int cnt,
                         int64_t dflt, int64_t lo, int64_t *v);

/* nn_pool.c: MaxUnpool's default output extents, (in - 1) * stride + kernel - pads. */
hone_status nn_unpool_dims(hone_ctx *ctx, const hone_node *n, const hone_tinfo *x, int64_t *y);

#endif
