/*
 * Helpers private to the misc op family (quant.c, qlinear.c, loss.c,
 * einsum.c, misc.c): how quantisation parameters map onto a tensor, and
 * reading an optional scalar-or-per-channel parameter.
 */
#ifndef HONE_OPS_MISC_H
#define HONE_OPS_MISC_H

#include "ir.h"

/* ---- quant.c ---- */

/* Where element i of a tensor finds its scale and zero point: channel
 * (i / inner) % n, so n == 1 means one pair for the whole tensor. */
typedef struct hone_qmap {
    int64_t n, inner;
} hone_qmap;

/* Checks scale/zero-point shapes against x (per tensor, or per axis from
 * opset 13 along attribute "axis") and fills m; inner needs x's dims known. */
hone_status hone_misc_qmap(hone_ctx *ctx, const hone_node *nd, int opset, const hone_tinfo *x,
                           const hone_tinfo *scale, const hone_tinfo *zp, hone_qmap *m);
/* The tinfo view of a concrete tensor (NULL stays NULL via the return value). */
const hone_tinfo *hone_misc_tinfo(hone_tinfo *ti, const hone_tensor *t);
/* Element c of an optional parameter tensor, 0 when t is NULL. */
double hone_misc_param(const hone_tensor *t, int64_t c);
/* Fails unless dt is an 8- or 16-bit integer type quantised values may take. */
hone_status hone_misc_check_qtype(hone_ctx *ctx, const hone_node *nd, hone_dtype dt, const char *what);
/* q = saturate(round_half_even(v) + zp) into element i of y. */
void hone_misc_quant_store(hone_tensor *y, int64_t i, double v, double zp);

/* ---- einsum.c ---- */

#define HONE_EINSUM_MAX_IN 16
#define HONE_EINSUM_MAX_LABELS (52 + HONE_MAX_RANK)

/* An Einsum as one loop nest (for compilers): its n labels ordered output
 * first (nout of them, in output order) then the summed ones, each label's
 * extent, and each operand's element stride per label (a label repeated in
 * an operand adds up its strides; a broadcast "..." dim has stride 0). The
 * interpreter sums each output element over the summed labels in this order. */
typedef struct hone_einsum_nest {
    int n, nout, nin;
    int64_t dims[HONE_EINSUM_MAX_LABELS];
    int64_t str[HONE_EINSUM_MAX_IN][HONE_EINSUM_MAX_LABELS];
} hone_einsum_nest;
/* The nest of Einsum node nd over operands of the given static shapes. */
hone_status hone_einsum_nest_of(hone_ctx *ctx, const hone_node *nd, int nin,
                                const hone_tinfo *const *in, hone_einsum_nest *out);

#endif
