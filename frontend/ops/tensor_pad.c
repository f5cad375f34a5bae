/*
 * Tensor family: Pad, in all its forms. Opset 1 reads the "paddings"
 * attribute, opsets 2..10 "pads" and "value", opset 11 on the pads and
 * constant_value inputs, opset 18 an optional axes input naming the dims the
 * pads apply to. pads list all begins then all ends; negative pads crop.
 *
 * The constant mode fills the output and copies the kept block of the input
 * in one strided copy. The edge, reflect and wrap modes map each output
 * coordinate of each dim to a source coordinate (a small table per dim) and
 * copy element by element; reflect repeats its mirror for pads wider than the
 * input, as numpy.pad does.
 */
#include <stdlib.h>

#include "tensor_ops.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* The mode attribute of a Pad node. */
static hone_status pad_mode_of(hone_ctx *ctx, const hone_node *n, pad_mode *m)
{
    static const char *const names[] = {"constant", "reflect", "edge", "wrap"};
    const char *s = hone_attr_str(n, "mode", "constant");
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *m = (pad_mode)i;
            return HONE_OK;
        }
    return hone_node_fail(ctx, n, HONE_ERR_INVALID, "unknown mode '%s'", s);
}

/* Spreads pads given for the listed axes (opset 18) over all rank dims. */
static hone_status pad_spread(hone_infer *ic, int rank, const int64_t *axes, int na,
                              const int64_t *given, int64_t *pads)
{
    for (int i = 0; i < 2 * rank; i++)
        pads[i] = 0;
    for (int k = 0; k < na; k++) {
        int a;
        hone_status st = tf_axis(ic, axes[k], rank, &a);
        if (st)
            return st;
        pads[a] = given[k];
        pads[rank + a] = given[na + k];
    }
    return HONE_OK;
}

/* Begin/end pads per dim (2*rank values); *known false when not known yet. */
static hone_status pad_amounts(hone_infer *ic, int rank, int64_t *pads, bool *known)
{
    int64_t given[4 * HONE_MAX_RANK], axes[2 * HONE_MAX_RANK];
    const char *attr = ic->opset < 2 ? "paddings" : "pads";
    int n = tf_ints_arg(ic->node, ic->opset, 11, attr, tf_has(ic, 1), tf_ival(ic, 1), given,
                        4 * HONE_MAX_RANK);
    int na = ic->opset >= 18 ? tf_ints_arg(ic->node, ic->opset, 18, "", tf_has(ic, 3),
                                           tf_ival(ic, 3), axes, 2 * HONE_MAX_RANK)
                             : TF_ABSENT;
    *known = n >= 0 && na != TF_UNKNOWN;
    if (n == TF_ABSENT)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "pads are required");
    if (n == TF_TOOLONG || na == TF_TOOLONG)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "more pads or axes than dims");
    if (!*known)
        return HONE_OK;
    if (na == TF_ABSENT) {
        for (int i = 0; i < rank; i++)
            axes[i] = i;
        na = rank;
    }
    if (n != 2 * na)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "pads has %d entries, expected %d",
                              n, 2 * na);
    return pad_spread(ic, rank, axes, na, given, pads);
}

/* Output dim of padding d by b and e (symbolic d survives zero pads). */
static hone_status pad_dim(hone_infer *ic, pad_mode m, int i, int64_t d, int64_t b, int64_t e,
                           int64_t *out)
{
    if (d < 0) {
        *out = b == 0 && e == 0 ? d : HONE_DIM_UNKNOWN;
        return HONE_OK;
    }
    if (b > INT64_MAX / 4 || e > INT64_MAX / 4 || b < -d || e < -d || d + b + e < 0)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "pads %lld, %lld do not fit dim %d of extent %lld", (long long)b,
                              (long long)e, i, (long long)d);
    if (m != PAD_CONSTANT && d == 0 && (b > 0 || e > 0))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "cannot pad the empty dim %d in this mode", i);
    *out = d + b + e;
    return HONE_OK;
}

/* Pad: x[d_i], pads -> [d_i + begin_i + end_i]. */
hone_status infer_pad(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    int64_t pads[2 * HONE_MAX_RANK], d[HONE_MAX_RANK];
    bool known;
    pad_mode m;
    hone_status st = pad_mode_of(ic->ctx, ic->node, &m);
    if (!st)
        st = tf_check_int_input(ic, 1, "pads");
    if (!st && tf_has(ic, 2) && ic->in[2]->dtype && x->dtype && ic->in[2]->dtype != x->dtype)
        st = hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                            "constant_value type differs from input");
    if (st || x->rank < 0) {
        tf_infer_rank(ic, 0, x->dtype, x->rank);
        return st;
    }
    st = pad_amounts(ic, x->rank, pads, &known);
    for (int i = 0; !st && i < x->rank; i++)
        if (known)
            st = pad_dim(ic, m, i, x->dims[i], pads[i], pads[x->rank + i], &d[i]);
        else
            d[i] = HONE_DIM_UNKNOWN;
    if (!st)
        st = tf_check_size(ic, x->rank, d);
    if (!st)
        hone_infer_set(ic, 0, x->dtype, x->rank, d);
    return st;
}

/* Source coordinate for output coordinate o along a dim of extent d with b
 * leading pads; -1 selects the constant. */
static int64_t pad_src(pad_mode m, int64_t o, int64_t b, int64_t d)
{
    int64_t i = o - b, p = 2 * (d - 1), r;
    if (i >= 0 && i < d)
        return i;
    switch (m) {
    case PAD_EDGE: return i < 0 ? 0 : d - 1;
    case PAD_WRAP: return (i % d + d) % d;
    case PAD_REFLECT:
        if (d == 1)
            return 0;
        r = (i % p + p) % p;
        return r < d ? r : p - r;
    default: return -1;
    }
}

/* The constant of Pad as a one-element tensor of x's type (caller frees). */
static hone_status pad_constant(hone_eval *ec, hone_tensor **c)
{
    const hone_tensor *x = ec->in[0], *v = tf_ein(ec, 2);
    hone_status st = hone_tensor_new(ec->ctx, x->dtype, 0, NULL, c);
    if (st)
        return st;
    if (ec->opset < 11)
        hone_tensor_set_f64(*c, 0, hone_attr_float(ec->node, "value", 0));
    else if (v && v->numel > 0)
        tf_copy(*c, 0, v, 0, 1);
    return HONE_OK;
}

/* Constant mode: fill with the constant, then copy the block of x that survives. */
static hone_status pad_fill_copy(hone_eval *ec, const int64_t *pads)
{
    const hone_tensor *x = ec->in[0];
    hone_tensor *o = ec->out[0], *c;
    int r = x->rank;
    int64_t xs[HONE_MAX_RANK], os[HONE_MAX_RANK], d[HONE_MAX_RANK], xo = 0, oo = 0;
    hone_status st = pad_constant(ec, &c);
    if (st)
        return st;
    tf_fill(o, 0, o->numel, c, 0);
    hone_tensor_free(c);
    hone_strides(r, x->dims, xs);
    hone_strides(r, o->dims, os);
    for (int i = 0; i < r; i++) {
        int64_t b = pads[i], e = pads[r + i];
        d[i] = x->dims[i] + (b < 0 ? b : 0) + (e < 0 ? e : 0);
        xo += (b < 0 ? -b : 0) * xs[i];
        oo += (b > 0 ? b : 0) * os[i];
    }
    tf_copy_block(o, oo, os, x, xo, xs, r, d);
    return HONE_OK;
}

/* Edge, reflect and wrap: per-dim coordinate tables, then one copy per element. */
static hone_status pad_mapped(hone_eval *ec, pad_mode m, const int64_t *pads)
{
    const hone_tensor *x = ec->in[0];
    hone_tensor *o = ec->out[0];
    int r = x->rank;
    int64_t xs[HONE_MAX_RANK], idx[HONE_MAX_RANK] = {0}, *map[HONE_MAX_RANK], total = 0;
    for (int i = 0; i < r; i++)
        total += o->dims[i];
    int64_t *buf = malloc(sizeof *buf * (size_t)(total + 1));
    if (!buf)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    hone_strides(r, x->dims, xs);
    for (int i = 0, at = 0; i < r; at += (int)o->dims[i], i++) {
        map[i] = buf + at;
        for (int64_t k = 0; k < o->dims[i]; k++)
            map[i][k] = pad_src(m, k, pads[i], x->dims[i]) * xs[i];
    }
    for (int64_t k = 0; k < o->numel; k++, tf_next_index(r, o->dims, idx)) {
        int64_t s = 0;
        for (int i = 0; i < r; i++)
            s += map[i][idx[i]];
        tf_copy(o, k, x, s, 1);
    }
    free(buf);
    return HONE_OK;
}

/* Constant mode by fill and block copy, the other modes by coordinate tables. */
hone_status eval_pad(hone_eval *ec)
{
    hone_tinfo ti[4];
    const hone_tinfo *pi[4];
    int64_t pads[2 * HONE_MAX_RANK];
    bool known;
    pad_mode m;
    hone_infer ic;
    tf_eval_view(ec, &ic, ti, pi);
    hone_status st = tf_need_out(ec);
    if (!st)
        st = pad_mode_of(ec->ctx, ec->node, &m);
    if (!st)
        st = pad_amounts(&ic, ec->in[0]->rank, pads, &known);
    if (!st && !known)
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_INTERNAL, "pads not known at run time");
    if (st)
        return st;
    return m == PAD_CONSTANT ? pad_fill_copy(ec, pads) : pad_mapped(ec, m, pads);
}
