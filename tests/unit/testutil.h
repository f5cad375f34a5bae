/*
 * Shared helpers for the CMocka unit tests.
 */
#ifndef HONE_TESTUTIL_H
#define HONE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hone_rt.h"
#include "ir.h"

/* A float tensor of the given shape filled from vals (or zeros when NULL). */
hone_tensor *tu_tensor_f32(int rank, const int64_t *dims, const float *vals);
/* A deterministic uniform draw in [-1, 1) (an LCG; tu_seed restarts it). */
void tu_seed(uint32_t seed);
double tu_urand(void);
/* A float tensor of the given shape filled with tu_urand() * scale. */
hone_tensor *tu_rand_f32(int rank, const int64_t *dims, double scale);
/* A new constant value of g named name holding t. */
hone_value *tu_const(hone_graph *g, const char *name, hone_tensor *t);
/* An empty graph that imports ai.onnx opset 13. */
hone_graph *tu_graph_new(void);
/* A square 2-D window over an h x w image: k x k kernel, stride, symmetric pad, dilation;
 * the output size as ONNX Conv computes it (floor). */
hone_rt_window tu_window_2d(int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                            int64_t dil);
/* Path of a file in the source tree. */
const char *tu_src(const char *rel);

#endif
