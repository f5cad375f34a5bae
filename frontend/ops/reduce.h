/*
 * Helpers private to the reduce and misc op families: axis normalisation
 * with errors that name the node, the [outer, n, inner] view of a tensor
 * around one axis, and a total order on elements (NaN above everything,
 * integers compared exactly).
 */
#ifndef HONE_OPS_REDUCE_H
#define HONE_OPS_REDUCE_H

#include "ir.h"

/* ---- reduce.c ---- */

/* Normalises axis a (may be negative) into [0, rank), or fails naming node n. */
hone_status hone_reduce_axis(hone_ctx *ctx, const hone_node *n, int64_t a, int rank, int *out);
/* Fails unless dt is a numeric type (or still unknown). */
hone_status hone_reduce_check_numeric(hone_ctx *ctx, const hone_node *n, hone_dtype dt);

/* ---- reduce_axis.c ---- */

/* dims viewed as [outer, n, inner] around axis. */
void hone_reduce_split(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *n,
                       int64_t *inner);
/* -1, 0 or 1 as element i of t is below, equal to or above element j. */
int hone_reduce_cmp(const hone_tensor *t, int64_t i, int64_t j);

#endif
