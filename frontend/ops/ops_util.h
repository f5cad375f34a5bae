/*
 * Helpers shared by op implementations: broadcasting iteration, attribute and
 * input reading, common shape rules. Every op family .c includes this.
 */
#ifndef HONE_OPS_UTIL_H
#define HONE_OPS_UTIL_H

#include <math.h>
#include <string.h>

#include "ir.h"

#define HONE_BCAST_MAX_IN 16

/* Walks the elements of an output shape while tracking, for each of n
 * inputs, the flat offset of the element that broadcasts onto it. */
typedef struct hone_bcast {
    int rank, n;
    int64_t dims[HONE_MAX_RANK];
    int64_t strides[HONE_BCAST_MAX_IN][HONE_MAX_RANK];
    int64_t idx[HONE_MAX_RANK];
    int64_t off[HONE_BCAST_MAX_IN];
} hone_bcast;

void hone_bcast_init(hone_bcast *b, int rank, const int64_t *dims, int n, const hone_tensor **ins);
void hone_bcast_next(hone_bcast *b);

/* Broadcast output shape of n tensors (inputs assumed valid after inference). */
void hone_bcast_shape(int n, const hone_tensor **ins, int *rank, int64_t *dims);

/* The shared infer rule "output 0 = input 0's type and shape". */
hone_status hone_infer_same(hone_infer *ic);
/* Infer rule for elementwise ops over all inputs with broadcasting; the output
 * dtype is out_dt, or input 0's dtype when out_dt is UNDEF. */
hone_status hone_infer_bcast_all(hone_infer *ic, hone_dtype out_dt);

/* Reads a 1-D integer tensor into v (up to cap); returns count. */
int hone_tensor_ints(const hone_tensor *t, int64_t *v, int cap);

#endif
