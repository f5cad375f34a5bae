/*
 * The elementwise op family, internal map. Rows live in elementwise.def.
 *
 *   elementwise.c  unary math and activations (one table indexed by op), Clip,
 *                  Identity, and the dtype-class checks every file here uses
 *   binary.c       broadcasting binary ops (arithmetic, Pow, Mod, BitShift,
 *                  logic, comparisons), PRelu, Where and the variadic
 *                  Max/Min/Sum/Mean, all over one row-wise broadcast walker
 *   cast.c         Cast and CastLike, string conversions included
 *
 * Integer dtypes compute in int64 (uint64 for unsigned ones), floating dtypes
 * in double; float32 has plain-loop fast paths for the ops CNNs use.
 */
#ifndef HONE_ELEMENTWISE_H
#define HONE_ELEMENTWISE_H

#include "ops_util.h"

/* Dtype classes as bit masks over hone_dtype, for type checks in infer. */
#define EW_T(dt) (1u << (dt))
#define EW_FLOAT (EW_T(HONE_DT_FLOAT) | EW_T(HONE_DT_DOUBLE) | EW_T(HONE_DT_FLOAT16) | \
                  EW_T(HONE_DT_BFLOAT16))
#define EW_SINT (EW_T(HONE_DT_INT8) | EW_T(HONE_DT_INT16) | EW_T(HONE_DT_INT32) | \
                 EW_T(HONE_DT_INT64))
#define EW_UINT (EW_T(HONE_DT_UINT8) | EW_T(HONE_DT_UINT16) | EW_T(HONE_DT_UINT32) | \
                 EW_T(HONE_DT_UINT64))
#define EW_INT (EW_SINT | EW_UINT)
#define EW_NUM (EW_FLOAT | EW_INT)
#define EW_BOOL EW_T(HONE_DT_BOOL)
#define EW_ANY (EW_NUM | EW_BOOL | EW_T(HONE_DT_STRING))

/* The arithmetic a dtype computes in: double, int64 or uint64. */
typedef enum ew_domain { EW_D_FLOAT, EW_D_INT, EW_D_UINT } ew_domain;

/* ===================== elementwise.c ===================== */

/* Fails (HONE_ERR_SHAPE) unless input i is absent, untyped or in mask. */
hone_status hone_ew_check_type(hone_infer *ic, int i, unsigned mask);
/* Fails (HONE_ERR_SHAPE) when inputs i and j are both typed and differ. */
hone_status hone_ew_check_same(hone_infer *ic, int i, int j);
/* The compute domain of dt (bool counts as a signed integer). */
ew_domain hone_ew_domain(hone_dtype dt);

#endif
