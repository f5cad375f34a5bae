/*
 * Shared helpers of the nn family: float32 staging between hone tensors and
 * the runtime kernels, and the sliding-window geometry that Conv,
 * ConvTranspose and every pooling op derive from their attributes.
 *
 * Window rules (ONNX, per spatial dim, ek = (k-1)*dilation + 1):
 *   NOTSET  out = floor((in + pb + pe - ek) / s) + 1, or ceil with ceil_mode,
 *           dropping a last window that would start inside the end padding
 *   VALID   pads 0, out = floor((in - ek) / s) + 1
 *   SAME_*  out = ceil(in / s), total pad = max(0, (out-1)*s + ek - in) split
 *           evenly, the odd element at the end (UPPER) or the start (LOWER)
 */
#include <stdlib.h>

#include "nn.h"

/* True when every value of dt is exact in float32. */
static bool f32_exact(hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_FLOAT: case HONE_DT_FLOAT16: case HONE_DT_BFLOAT16:
    case HONE_DT_INT8: case HONE_DT_UINT8: case HONE_DT_INT16: case HONE_DT_UINT16:
        return true;
    default:
        return false;
    }
}

/* Float32 view of t: its own data, or a converted copy stored in *own. */
static hone_status stage_in(hone_eval *ec, const hone_tensor *t, const float **p, float **own)
{
    *own = NULL;
    if (t->dtype == HONE_DT_FLOAT) {
        *p = t->data;
        return HONE_OK;
    }
    *own = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!*own)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory staging input");
    for (int64_t i = 0; i < t->numel; i++)
        (*own)[i] = (float)hone_tensor_get_f64(t, i);
    *p = *own;
    return HONE_OK;
}

hone_status nn_stage_begin(hone_eval *ec, int n_out, nn_stage *s)
{
    memset(s, 0, sizeof *s);
    hone_dtype dt = ec->in[0]->dtype;
    hone_status st = HONE_OK;
    for (int i = 0; i < ec->n_in && i < NN_STAGE_MAX && !st; i++) {
        const hone_tensor *t = ec->in[i];
        if (!t || (t->dtype != dt && !hone_dtype_is_float(t->dtype)))
            continue;
        if (!f32_exact(t->dtype))
            st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_UNSUPPORTED,
                                "%s input %d is not supported (float32, float16 or bfloat16 only)",
                                hone_dtype_name(t->dtype), i);
        else
            st = stage_in(ec, t, &s->in[i], &s->own_in[i]);
    }
    s->n_out = n_out;
    for (int i = 0; i < n_out && !st; i++) {
        hone_tensor *t = ec->out[i];
        HONE_ASSERT(!ec->node->out[i] || t);
        if (!t || t->dtype == HONE_DT_FLOAT) {
            s->out[i] = t ? t->data : NULL;
            continue;
        }
        st = nn_scratch(ec, (size_t)t->numel, &s->own_out[i]);
        s->out[i] = s->own_out[i];
    }
    if (st)
        nn_stage_end(ec, s);
    return st;
}

void nn_stage_end(hone_eval *ec, nn_stage *s)
{
    for (int i = 0; i < NN_STAGE_MAX; i++) {
        free(s->own_in[i]);
        if (s->own_out[i] && i < s->n_out)
            for (int64_t j = 0; j < ec->out[i]->numel; j++)
                hone_tensor_set_f64(ec->out[i], j, s->own_out[i][j]);
        free(s->own_out[i]);
    }
    memset(s, 0, sizeof *s);
}

hone_status nn_scratch(hone_eval *ec, size_t n, float **p)
{
    *p = malloc(sizeof(float) * (n ? n : 1));
    if (!*p)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM,
                              "out of memory allocating %zu floats of scratch", n);
    return HONE_OK;
}

hone_status nn_infer_float(hone_infer *ic, int i, bool small_ints)
{
    hone_dtype dt = ic->in[i] ? ic->in[i]->dtype : HONE_DT_UNDEF;
    if (dt == HONE_DT_UNDEF || hone_dtype_is_float(dt))
        return HONE_OK;
    if (small_ints && (dt == HONE_DT_INT8 || dt == HONE_DT_UINT8))
        return HONE_OK;
    return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                          "input %d has element type %s, expected a float type", i,
                          hone_dtype_name(dt));
}

void nn_tinfo_of(const hone_tensor *t, hone_tinfo *ti)
{
    ti->dtype = t->dtype;
    ti->rank = t->rank;
    memcpy(ti->dims, t->dims, sizeof ti->dims);
    ti->value = t;
}

int64_t nn_dim(const hone_tinfo *ti, int i)
{
    return ti && ti->rank > i ? ti->dims[i] : HONE_DIM_UNKNOWN;
}

hone_status nn_infer_floats(hone_infer *ic, int n, bool same)
{
    hone_dtype dt = ic->in[0]->dtype;
    for (int i = 0; i < n && i < ic->n_in; i++) {
        hone_status st = nn_infer_float(ic, i, false);
        if (st)
            return st;
        hone_dtype t = ic->in[i] ? ic->in[i]->dtype : HONE_DT_UNDEF;
        if (same && t && dt && t != dt)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "input %d is %s but input 0 is %s", i, hone_dtype_name(t),
                                  hone_dtype_name(dt));
    }
    return HONE_OK;
}

int64_t nn_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

void nn_split_axis(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *len,
                   int64_t *inner)
{
    *outer = nn_prod(dims, 0, axis);
    *len = axis < rank ? dims[axis] : 1;
    *inner = nn_prod(dims, axis + 1, rank);
}

hone_status nn_ints_attr(hone_ctx *ctx, const hone_node *n, const char *name, int cnt,
                         int64_t dflt, int64_t lo, int64_t *v)
{
    const int64_t *a;
    int got = hone_attr_ints(n, name, &a);
    for (int i = 0; got < 0 && i < cnt; i++)
        v[i] = dflt;
    if (got < 0)
        return HONE_OK;
    if (got != cnt)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute '%s' has %d values, expected %d",
                              name, got, cnt);
    for (int i = 0; i < cnt; i++) {
        if (a[i] < lo || a[i] > ctx->limits.max_dim)
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute '%s'[%d] = %lld is out of range",
                                  name, i, (long long)a[i]);
        v[i] = a[i];
    }
    return HONE_OK;
}

hone_status nn_window_attrs(hone_ctx *ctx, const hone_node *n, int nsp, hone_rt_window *w,
                            int64_t *pads)
{
    hone_status st = nn_ints_attr(ctx, n, "strides", nsp, 1, 1, w->stride);
    if (!st)
        st = nn_ints_attr(ctx, n, "dilations", nsp, 1, 1, w->dil);
    if (!st)
        st = nn_ints_attr(ctx, n, "pads", 2 * nsp, 0, 0, pads);
    return st;
}

typedef enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID } auto_pad;

static hone_status read_auto_pad(hone_ctx *ctx, const hone_node *n, auto_pad *ap)
{
    const char *s = hone_attr_str(n, "auto_pad", "NOTSET");
    if (!*s || !strcmp(s, "NOTSET"))
        *ap = PAD_NOTSET;
    else if (!strcmp(s, "SAME_UPPER"))
        *ap = PAD_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER"))
        *ap = PAD_SAME_LOWER;
    else if (!strcmp(s, "VALID"))
        *ap = PAD_VALID;
    else
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "unknown auto_pad '%s'", s);
    return HONE_OK;
}

/* SAME_*: out = ceil(in / s), padding split with the odd element at the end
 * (upper) or the start. */
static void same_pads(hone_rt_window *w, int d, int64_t ek, bool upper)
{
    int64_t in = w->in[d], s = w->stride[d];
    w->out[d] = (in + s - 1) / s;
    int64_t total = (w->out[d] - 1) * s + ek - in;
    total = total < 0 ? 0 : total;
    w->pad[d] = upper ? total / 2 : total - total / 2;
    w->pad_end[d] = total - w->pad[d];
}

/* Output extent of dim d of w (kernel, strides, dilations and explicit pads
 * set) under auto_pad ap; pads are rewritten for SAME and VALID. */
static hone_status window_dim(hone_ctx *ctx, const hone_node *n, hone_rt_window *w, int d,
                              auto_pad ap, nn_window_opts o)
{
    int64_t ek, in = w->in[d], s = w->stride[d];
    if (in < 0 || w->k[d] < 0) {
        w->out[d] = HONE_DIM_UNKNOWN;
        return HONE_OK;
    }
    if (w->k[d] == 0 || __builtin_mul_overflow(w->k[d] - 1, w->dil[d], &ek) || ek >= INT64_MAX / 4)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "kernel extent %lld x dilation %lld is invalid",
                              (long long)w->k[d], (long long)w->dil[d]);
    ek += 1;
    if (ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER) {
        same_pads(w, d, ek, ap == PAD_SAME_UPPER);
        return HONE_OK;
    }
    if (ap == PAD_VALID)
        w->pad[d] = w->pad_end[d] = 0;
    int64_t span = in + w->pad[d] + w->pad_end[d] - ek;
    if (span < 0)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "kernel extent %lld along spatial dim %d is larger than the padded "
                              "input (%lld)", (long long)ek, d, (long long)(span + ek));
    if (o.pool && (w->pad[d] >= ek || w->pad_end[d] >= ek))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE,
                              "pads along spatial dim %d must be smaller than the window (%lld)",
                              d, (long long)ek);
    bool up = o.ceil_mode && ap != PAD_VALID;
    w->out[d] = (up ? span + s - 1 : span) / s + 1;
    if (up && (w->out[d] - 1) * s >= in + w->pad[d])
        w->out[d]--;
    return HONE_OK;
}

hone_status nn_window(hone_ctx *ctx, const hone_node *n, int nsp, const int64_t *in,
                      const int64_t *k, nn_window_opts o, hone_rt_window *w)
{
    int64_t pads[2 * HONE_RT_MAX_SPATIAL];
    auto_pad ap = PAD_NOTSET;
    memset(w, 0, sizeof *w);
    if (nsp < 1 || nsp > HONE_RT_MAX_SPATIAL)
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "%d spatial dims are not supported (1..%d)",
                              nsp, HONE_RT_MAX_SPATIAL);
    w->nsp = nsp;
    hone_status st = nn_window_attrs(ctx, n, nsp, w, pads);
    if (!st)
        st = read_auto_pad(ctx, n, &ap);
    for (int d = 0; d < nsp && !st; d++) {
        w->in[d] = in[d];
        w->k[d] = k[d];
        w->pad[d] = pads[d];
        w->pad_end[d] = pads[nsp + d];
        st = window_dim(ctx, n, w, d, ap, o);
    }
    return st;
}
