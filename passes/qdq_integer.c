/*
 * qdq-to-integer: runs quantized convolutions on integers. The standard
 * quantized form that slb, quantize-rtn and other exporters write,
 *   Conv(DequantizeLinear(xq, sx, zx), DequantizeLinear(Wq, sw, 0), B)
 * with uint8 activations xq (per-tensor scale and zero point) and constant
 * int8 weights (per-output-channel or per-tensor scale, zero zero point),
 * becomes
 *   Add(Mul(Cast<float>(ConvInteger(xq, Wq, zx)), sx * sw), B)
 * (scale and bias shaped [1, M, 1, ...]), so the backend's integer kernel
 * (runtime/qconv.c: AVX-512 VNNI) does the arithmetic. The result equals
 * the float form up to float rounding: the integer sums are exact. It runs
 * first in -O3, before fold-constants turns the weights' DequantizeLinear
 * into float constants. B may be a float constant or the DequantizeLinear of
 * constant int32 codes (the form ONNX quantizers write).
 *
 * With fuse (the default) the chain becomes one hone.QConv node
 * (frontend/ops/qconv_fused.c) instead, which also takes in what follows
 * through single-reader values: an Add of a tensor of the output's shape (a
 * residual), a Relu, then a QuantizeLinear with a scalar scale and uint8
 * zero point, whose uint8 output the node then writes. Its kernel applies
 * all of that in the conv's store; the result is bit-identical to the
 * unfused ops (fuse=false).
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool scalar_const(const hone_value *v, hone_dtype dt)
{
    return v && hone_pass_is_const(v) && v->data->numel == 1 && v->data->dtype == dt;
}

/* The activation DequantizeLinear: uint8 input, constant scalar scale and zero point. */
static bool act_dq(const hone_node *d)
{
    return d && hone_pass_is_op(d, "DequantizeLinear") && d->n_in >= 3 &&
           d->in[0]->dtype == HONE_DT_UINT8 && scalar_const(d->in[1], HONE_DT_FLOAT) &&
           scalar_const(d->in[2], HONE_DT_UINT8);
}

/* A DequantizeLinear of constant codes of type dt: constant float scale, scalar or one
 * per index of axis 0 (m of them), zero (or no) zero point. */
static bool const_dq(const hone_node *d, hone_dtype dt, int64_t m)
{
    if (!d || !hone_pass_is_op(d, "DequantizeLinear") || d->n_in < 2 ||
        !hone_pass_is_const(d->in[0]) || d->in[0]->data->dtype != dt ||
        !hone_pass_is_const(d->in[1]) || d->in[1]->data->dtype != HONE_DT_FLOAT)
        return false;
    const hone_tensor *s = d->in[1]->data;
    if (!(s->numel == 1 || (s->numel == m && hone_attr_int(d, "axis", 1) == 0)))
        return false;
    if (d->n_in > 2 && d->in[2]) {
        if (!hone_pass_is_const(d->in[2]))
            return false;
        for (int64_t i = 0; i < d->in[2]->data->numel; i++)
            if (hone_tensor_get_i64(d->in[2]->data, i))
                return false;
    }
    return true;
}

/* The weight DequantizeLinear: constant int8 codes, per-output-channel or scalar scale. */
static bool weight_dq(const hone_node *d, int64_t m)
{
    return const_dq(d, HONE_DT_INT8, m);
}

/* The bias of conv n as m values: a float constant, or DequantizeLinear of constant
 * int32 codes with a constant scalar or per-axis-0 float scale and zero zero point
 * (evaluated as the interpreter does: (q - zp) * s in double, rounded to float). No
 * bias: true with b untouched. b may be NULL (only checks). */
static bool bias_values(const hone_node *n, int64_t m, double *b)
{
    const hone_value *v = n->n_in > 2 ? n->in[2] : NULL;
    if (!v)
        return true;
    if (hone_pass_is_const(v)) {
        if (v->data->dtype != HONE_DT_FLOAT || v->data->numel != m)
            return false;
        for (int64_t i = 0; b && i < m; i++)
            b[i] = hone_tensor_get_f64(v->data, i);
        return true;
    }
    const hone_node *d = v->producer;
    if (!const_dq(d, HONE_DT_INT32, m) || d->in[0]->data->numel != m ||
        d->in[0]->data->rank != 1)
        return false;
    const hone_tensor *s = d->in[1]->data;
    for (int64_t i = 0; b && i < m; i++)
        b[i] = (float)(hone_tensor_get_f64(d->in[0]->data, i) *
                       hone_tensor_get_f64(s, s->numel == 1 ? 0 : i));
    return true;
}

static bool matches(const hone_node *n)
{
    if (!hone_pass_is_op(n, "Conv") || n->n_in < 2 || n->out[0]->rank < 3 ||
        !HONE_DIM_IS_KNOWN(n->out[0]->dims[1]))
        return false;
    int64_t m = n->out[0]->dims[1];
    return bias_values(n, m, NULL) && act_dq(n->in[0]->producer) &&
           weight_dq(n->in[1]->producer, m);
}

/* A float constant [1, M, 1, ...] of rank r (r 1: [M]) from per-channel values. */
static hone_value *channel_const(hone_ctx *ctx, hone_graph *g, int r, int64_t m,
                                 const double *v, const char *hint)
{
    int64_t dims[HONE_MAX_RANK];
    for (int i = 0; i < r; i++)
        dims[i] = i == 1 || r == 1 ? m : 1;
    hone_tensor *t;
    if (hone_tensor_new(ctx, HONE_DT_FLOAT, r, dims, &t))
        return NULL;
    for (int64_t i = 0; i < m; i++)
        ((float *)t->data)[i] = (float)v[i];
    return hone_pass_new_const(g, t, hint);
}

static hone_node *add(hone_graph *g, const char *op, const char *name, int n_in)
{
    hone_node *n = hone_graph_add_node(g, op, "", name, n_in, 1);
    n->out[0] = hone_graph_new_value(g, name);
    return n;
}

/* Copies conv's window attributes (not its name or domain-specific ones) to dst. */
static void copy_conv_attrs(hone_graph *g, hone_node *dst, const hone_node *conv)
{
    static const char *const names[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                                        "strides"};
    for (int a = 0; a < conv->n_attr; a++)
        for (size_t j = 0; j < sizeof names / sizeof *names; j++) {
            const hone_attr *oa = &conv->attrs[a];
            if (strcmp(oa->name, names[j]))
                continue;
            hone_attr *na = hone_node_add_attr(g, dst, oa->name, oa->kind);
            na->i = oa->i;
            na->s = oa->s ? hone_arena_strdup(g->arena, oa->s) : NULL;
            na->s_len = oa->s_len;
            na->n = oa->n;
            if (oa->ints) {
                na->ints = hone_arena_alloc(g->arena, sizeof *na->ints * (size_t)oa->n);
                memcpy(na->ints, oa->ints, sizeof *na->ints * (size_t)oa->n);
            }
        }
}

/* k[o] = x_scale * w_scale[o] for m channels, followed by room for m bias values
 * (one allocation, freed by the caller). */
static double *out_scales(const hone_node *xd, const hone_node *wd, int64_t m)
{
    double sx = hone_tensor_get_f64(xd->in[1]->data, 0);
    double *k = malloc(sizeof *k * (size_t)m * 2);
    HONE_ASSERT(k);
    for (int64_t i = 0; i < m; i++)
        k[i] = sx * hone_tensor_get_f64(wd->in[1]->data, wd->in[1]->data->numel == 1 ? 0 : i);
    return k;
}

static hone_status rewrite(hone_pass_ctx *pc, hone_graph *g, hone_node *conv)
{
    hone_node *xd = conv->in[0]->producer, *wd = conv->in[1]->producer;
    int64_t m = conv->out[0]->dims[1];
    int r = conv->out[0]->rank;
    double *k = out_scales(xd, wd, m), *b = k + m;
    const char *base = conv->name;
    hone_node *ci = add(g, "ConvInteger", hone_arena_printf(g->arena, "%s_int", base), 3);
    ci->in[0] = xd->in[0];
    ci->in[1] = wd->in[0];
    ci->in[2] = xd->in[2];
    copy_conv_attrs(g, ci, conv);
    hone_node *cast = add(g, "Cast", hone_arena_printf(g->arena, "%s_f", base), 1);
    cast->in[0] = ci->out[0];
    hone_node_set_attr_int(g, cast, "to", HONE_DT_FLOAT);
    hone_node *mul = add(g, "Mul", hone_arena_printf(g->arena, "%s_scaled", base), 2);
    mul->in[0] = cast->out[0];
    mul->in[1] = channel_const(pc->ctx, g, r, m, k, hone_arena_printf(g->arena, "%s_k", base));
    hone_value *y = conv->out[0];
    bool ok = true;
    if (!mul->in[1]) {
        free(k);
        return pc->ctx->status;
    }
    if (conv->n_in > 2 && conv->in[2]) {
        bias_values(conv, m, b);
        hone_node *ad = add(g, "Add", hone_arena_printf(g->arena, "%s_biased", base), 2);
        ad->in[0] = mul->out[0];
        ad->in[1] = channel_const(pc->ctx, g, r, m, b, hone_arena_printf(g->arena, "%s_b", base));
        ad->out[0] = y;
        ok = ad->in[1] != NULL;
    } else {
        mul->out[0] = y;
    }
    free(k);
    conv->out[0] = hone_graph_new_value(g, NULL);
    return ok ? HONE_OK : pc->ctx->status;
}

/* QuantizeLinear to uint8 with a positive constant scalar scale and uint8 zero point. */
static bool scalar_quant(const hone_node *q)
{
    return q && hone_pass_is_op(q, "QuantizeLinear") && q->n_in >= 3 &&
           scalar_const(q->in[1], HONE_DT_FLOAT) && scalar_const(q->in[2], HONE_DT_UINT8) &&
           hone_tensor_get_f64(q->in[1]->data, 0) > 0 && q->out[0]->dtype == HONE_DT_UINT8;
}

/* The hone.QConv of conv and what follows it (see the top). */
static hone_status fuse(hone_pass_ctx *pc, hone_graph *g, hone_node *conv)
{
    hone_node *xd = conv->in[0]->producer, *wd = conv->in[1]->producer, *absorbed[3];
    int64_t m = conv->out[0]->dims[1];
    int na = 0;
    hone_value *tail = conv->out[0], *z = NULL;
    hone_node *u = hone_pass_single_user(g, tail), *q = NULL;
    if (u && hone_pass_is_op(u, "Add") && u->n_in == 2 && u->in[0] != u->in[1]) {
        hone_value *o = u->in[0] == tail ? u->in[1] : u->in[0];
        if (o->dtype == HONE_DT_FLOAT && hone_pass_same_shape(o, tail)) {
            z = o;
            absorbed[na++] = u;
            tail = u->out[0];
            u = hone_pass_single_user(g, tail);
        }
    }
    bool relu = u && hone_pass_is_op(u, "Relu");
    if (relu) {
        absorbed[na++] = u;
        tail = u->out[0];
        u = hone_pass_single_user(g, tail);
    }
    if (scalar_quant(u)) {
        q = u;
        absorbed[na++] = u;
        tail = u->out[0];
    }
    double *k = out_scales(xd, wd, m), *b = k + m;
    bool has_b = conv->n_in > 2 && conv->in[2];
    if (has_b)
        bias_values(conv, m, b);
    hone_pass_add_opset(g, "hone", 1);
    hone_node *f = hone_graph_add_node(g, "QConv", "hone", conv->name, q ? 8 : z ? 6 : has_b ? 5 : 4, 1);
    f->in[0] = xd->in[0];
    f->in[1] = wd->in[0];
    f->in[2] = xd->in[2];
    f->in[3] = channel_const(pc->ctx, g, 1, m, k, hone_arena_printf(g->arena, "%s_k", conv->name));
    if (has_b)
        f->in[4] = channel_const(pc->ctx, g, 1, m, b, hone_arena_printf(g->arena, "%s_b", conv->name));
    free(k);
    if (!f->in[3] || (has_b && !f->in[4]))
        return pc->ctx->status;
    if (z)
        f->in[5] = z;
    if (q) {
        f->in[6] = q->in[1];
        f->in[7] = q->in[2];
    }
    copy_conv_attrs(g, f, conv);
    if (relu)
        hone_node_set_attr_string(g, f, "activation", "Relu");
    f->out[0] = tail;
    /* the replaced nodes write fresh values nobody reads: remove_dead drops them */
    conv->out[0] = hone_graph_new_value(g, NULL);
    for (int i = 0; i < na; i++)
        absorbed[i]->out[0] = hone_graph_new_value(g, NULL);
    hone_pass_note(pc, "nodes absorbed", na);
    return HONE_OK;
}

hone_status hone_pass_qdq_to_integer(hone_pass_ctx *pc, hone_graph *g)
{
    int n0 = g->n_nodes, count = 0;
    bool fused = hone_pass_opt_bool(pc, "fuse");
    hone_graph_update_uses(g);
    for (int i = 0; i < n0; i++) {
        hone_node *n = g->nodes[i];
        if (!matches(n))
            continue;
        hone_status st = fused && n->out[0]->rank == 4 ? fuse(pc, g, n) : rewrite(pc, g, n);
        if (st)
            return st;
        hone_graph_update_uses(g);
        count++;
    }
    hone_graph_update_uses(g);
    hone_graph_remove_dead(g);
    hone_pass_note(pc, "convs on integers", count);
    return HONE_OK;
}
