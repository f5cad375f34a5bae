/*
 * Resize / Upsample sampling, shared by the reference kernel (resize.c) and
 * the backend's lowering, so both read a node the same way: the plan (mode,
 * coordinate rule, rounding, per-dim scale, size and roi) and, per output
 * coordinate, the input indices and weights it samples.
 */
#ifndef HONE_RESIZE_H
#define HONE_RESIZE_H

#include "ir.h"

typedef enum { HONE_RS_NEAREST, HONE_RS_LINEAR, HONE_RS_CUBIC } hone_rs_mode;
typedef enum {
    HONE_RS_HALF_PIXEL,
    HONE_RS_HALF_PIXEL_SYMMETRIC,
    HONE_RS_PYTORCH_HALF_PIXEL,
    HONE_RS_ALIGN_CORNERS,
    HONE_RS_ASYMMETRIC,
    HONE_RS_TF_HALF_PIXEL_FOR_NN,
    HONE_RS_TF_CROP_AND_RESIZE,
} hone_rs_coord;
typedef enum {
    HONE_RS_PREFER_FLOOR,
    HONE_RS_PREFER_CEIL,
    HONE_RS_FLOOR,
    HONE_RS_CEIL,
    HONE_RS_SIMPLE, /* legacy truncation (Upsample, Resize-10) */
} hone_rs_nearest;

typedef struct hone_resize_plan {
    hone_rs_mode mode;
    hone_rs_coord coord;
    hone_rs_nearest nearest;
    double cubic_a, extrapolation;
    bool exclude_outside;
    bool known;                    /* scale and out are known */
    double scale[HONE_MAX_RANK];
    int64_t out[HONE_MAX_RANK];
    double roi[2 * HONE_MAX_RANK]; /* starts then ends, normalised coordinates */
} hone_resize_plan;

/* The plan of the Resize (or, with upsample, Upsample) node seen through ic;
 * p->known stays false when scales or sizes are only known at run time. */
hone_status hone_resize_plan_of(hone_infer *ic, bool upsample, hone_resize_plan *p);
/* Terms of output coordinate j along dim d (rank dims, extents in -> out): input
 * indices clamped to the edge and their weights, zero weights dropped (at most 4).
 * Returns the count; 0 means outside the input (tf_crop_and_resize: extrapolate). */
int hone_resize_terms(const hone_resize_plan *p, int d, int rank, int64_t j, int64_t in,
                      int64_t out, int64_t *idx, double *w);

#endif
