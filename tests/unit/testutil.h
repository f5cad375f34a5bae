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

#include "ir.h"

/* A float tensor of the given shape filled from vals (or zeros when NULL). */
hone_tensor *tu_tensor_f32(int rank, const int64_t *dims, const float *vals);
/* Path of a file in the source tree. */
const char *tu_src(const char *rel);

#endif
