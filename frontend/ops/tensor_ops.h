/*
 * Tensor-manipulation family: the helpers its files share, and the map of
 * the family.
 *
 * Every op here only moves, selects or generates elements, so the kernels
 * work on bytes (any dtype, strings deep-copied) through tf_copy and the
 * strided view copier; only Range, EyeLike, OneHot and Resize compute values.
 * Inference is where each op's shape rule lives: it reads input contents when
 * they are known (ic->in[i]->value; always true in the interpreter) and
 * otherwise returns the best partial shape (rank known, dims
 * HONE_DIM_UNKNOWN). Kernels therefore find their outputs preallocated by the
 * driver, except the data-dependent ones (NonZero, Unique, Compress), which
 * allocate them.
 *
 *   tensor_util.c   byte copies, strided views, argument readers
 *   tensor.c        Constant, ConstantOfShape, Shape, Size, Reshape, Flatten,
 *                   Squeeze, Unsqueeze, Range, EyeLike, Trilu
 *   tensor_layout.c Transpose, Concat, Split, Slice, Expand, Tile,
 *                   DepthToSpace, SpaceToDepth, ReverseSequence
 *   tensor_pad.c    Pad
 *   tensor_index.c  Gather, GatherElements, GatherND, Scatter, ScatterElements,
 *                   ScatterND, OneHot, Compress, NonZero
 *   tensor_unique.c Unique
 *   resize.c        Resize, Upsample
 */
#ifndef HONE_TENSOR_OPS_H
#define HONE_TENSOR_OPS_H

#include "ops_util.h"

/* Internal views may exceed HONE_MAX_RANK (Tile views a rank-r tensor as 2r
 * dims). */
#define TF_MAX_RANK (2 * HONE_MAX_RANK)
/* Longest integer-list argument read (split sizes, pads...). */
#define TF_MAX_INTS 1024

/* Results of tf_ints_arg besides a count. */
enum { TF_ABSENT = -1, TF_UNKNOWN = -2, TF_TOOLONG = -3 };

/* ===================== tensor_util.c ===================== */

/* Copies n elements src[si..] to dst[di..]; strings are duplicated. The
 * dtypes must match (an invariant inference guarantees; asserted). */
void tf_copy(hone_tensor *dst, int64_t di, const hone_tensor *src, int64_t si, int64_t n);
/* Sets dst[di..di+n) to copies of src[si] (same dtype, asserted). */
void tf_fill(hone_tensor *dst, int64_t di, int64_t n, const hone_tensor *src, int64_t si);
/* Copies the block dims (rank <= TF_MAX_RANK) from src at offset soff with
 * element strides sstr into dst at doff with strides dstr (strides may be 0
 * or negative on the source side). */
void tf_copy_block(hone_tensor *dst, int64_t doff, const int64_t *dstr, const hone_tensor *src,
                   int64_t soff, const int64_t *sstr, int rank, const int64_t *dims);
/* tf_copy_block into all of dst, which is contiguous with shape dims. */
void tf_copy_view(hone_tensor *dst, const hone_tensor *src, int64_t soff, const int64_t *sstr,
                  int rank, const int64_t *dims);
/* Steps the multi-index idx over dims (row-major); false after the last one. */
bool tf_next_index(int rank, const int64_t *dims, int64_t *idx);

/* Fails with HONE_ERR_INTERNAL unless the driver preallocated every output. */
hone_status tf_need_out(hone_eval *ec);
/* An infer view of an eval (ti, pi: n_in entries), so kernels reuse the
 * argument readers written for inference. The view has no outputs. */
void tf_eval_view(const hone_eval *ec, hone_infer *ic, hone_tinfo *ti, const hone_tinfo **pi);
/* Contents of infer input i, or NULL when absent or unknown. */
const hone_tensor *tf_ival(const hone_infer *ic, int i);
/* True when infer input i was given. */
bool tf_has(const hone_infer *ic, int i);
/* Eval input i, or NULL when omitted. */
const hone_tensor *tf_ein(const hone_eval *ec, int i);
/* Integer list argument: attribute `attr` when opset < from (from 0: never),
 * else the input whose presence and contents are given. Returns the count,
 * TF_ABSENT, TF_UNKNOWN or TF_TOOLONG (more than cap entries). */
int tf_ints_arg(const hone_node *nd, int opset, int from, const char *attr, bool present,
                const hone_tensor *t, int64_t *v, int cap);
/* hone_infer_axis for ops that need a real axis: scalars have none. */
hone_status tf_axis(hone_infer *ic, int64_t a, int rank, int *out);
/* Normalises index i into [0, dim) from [-dim, dim); false when out of range. */
bool tf_norm_index(int64_t *i, int64_t dim);
/* Product of dims, or HONE_DIM_UNKNOWN when one is not known (no overflow
 * check: use for inference only, the allocator checks limits). */
int64_t tf_dims_prod(int rank, const int64_t *dims);
/* When every dim is known, checks the element count against the limits
 * (a clean error for huge requested sizes before anything is allocated). */
hone_status tf_check_size(hone_infer *ic, int rank, const int64_t *dims);
/* Marks every output dim of infer output i unknown with the given rank. */
void tf_infer_rank(hone_infer *ic, int i, hone_dtype dt, int rank);
/* Fails naming the node unless an integer input has an integer dtype. */
hone_status tf_check_int_input(hone_infer *ic, int i, const char *what);
/* Error for an index outside [-dim, dim). */
hone_status tf_bad_index(hone_ctx *ctx, const hone_node *n, int64_t idx, int64_t dim,
                         const char *what);

#endif
