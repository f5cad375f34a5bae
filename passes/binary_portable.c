/*
 * hone.BinaryConv back to standard ONNX (hone opt --portable), so that ONNX
 * Runtime or any ONNX consumer can run and cross-check a binarized model:
 *     Y = Conv(a(X), alpha[m] * (+-1 from the bits), B)
 *     a(X) = X                                      (binary_input = 0)
 *     a(X) = Where(Less(X, T), -1, +1)              (binary_input = 1; T [1,C,1,1], 0 without T)
 * Zero padding of the float Conv is exactly BinaryConv's rule that padded
 * taps contribute nothing; the only difference is float rounding of
 * alpha * sum versus sum of alpha * s (a few ulp).
 */
#include <string.h>

#include "hone_rt.h"
#include "passes.h"

/* A float constant of the given shape and values (n of them, or all fill when v is NULL). */
static hone_value *fconst(hone_ctx *ctx, hone_graph *g, int rank, const int64_t *dims,
                          const float *v, float fill, const char *hint)
{
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(ctx, HONE_DT_FLOAT, rank, dims, &t));
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = v ? v[i] : fill;
    return hone_pass_new_const(g, t, hint);
}

/* ONNX node op(in...) at opset 13 with one new output. */
static hone_value *onnx1(hone_graph *g, const char *op, int n_in, hone_value *const *in,
                         const char *base)
{
    hone_node *n = hone_graph_add_node(g, op, "", hone_arena_printf(g->arena, "%s/%s", base, op),
                                       n_in, 1);
    n->opset = 13;
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s/%s_out", base, op));
    return n->out[0];
}

/* a(X) = Where(X < T, -1, +1). */
static hone_value *sign_input(hone_ctx *ctx, hone_graph *g, const hone_node *n, const char *base)
{
    hone_value *x = n->in[0], *t = n->n_in > 4 ? n->in[4] : NULL;
    int64_t c = x->dims[1], d[4] = {1, c, 1, 1};
    hone_value *tv = fconst(ctx, g, 4, d, t ? t->data->data : NULL, 0.0f,
                            hone_arena_printf(g->arena, "%s_thresh4", base));
    hone_value *lt = onnx1(g, "Less", 2, (hone_value *[]){x, tv}, base);
    hone_value *in[3] = {lt, fconst(ctx, g, 0, NULL, NULL, -1.0f, "minus_one"),
                         fconst(ctx, g, 0, NULL, NULL, 1.0f, "plus_one")};
    return onnx1(g, "Where", 3, in, base);
}

/* The float weights alpha[m] * s[m, j] of a BinaryConv on c channels. */
static hone_value *float_weights(hone_ctx *ctx, hone_graph *g, const hone_node *n, int64_t c,
                                 const int64_t *k, const char *base)
{
    const hone_tensor *bits = n->in[1]->data, *alpha = n->in[2]->data;
    int64_t m = bits->dims[0], kk = c * k[0] * k[1], d[4] = {m, c, k[0], k[1]};
    hone_value *w = fconst(ctx, g, 4, d, NULL, 0.0f, hone_arena_printf(g->arena, "%s_w", base));
    float *p = w->data->data;
    for (int64_t o = 0; o < m; o++)
        for (int64_t j = 0; j < kk; j++) {
            float a = ((const float *)alpha->data)[o];
            p[o * kk + j] = hone_rt_binconv_bit(bits->data, kk, o, j) ? a : -a;
        }
    return w;
}

/* Rewrites one BinaryConv with constant bits and scale; false when it cannot. */
static bool rewrite(hone_ctx *ctx, hone_graph *g, hone_node *n)
{
    const int64_t *k;
    if (n->n_in < 3 || !hone_pass_is_const(n->in[1]) || !hone_pass_is_const(n->in[2]) ||
        n->in[0]->rank != 4 || n->in[0]->dims[1] < 1 || hone_attr_ints(n, "kernel_shape", &k) != 2 ||
        (n->n_in > 4 && n->in[4] && !hone_pass_is_const(n->in[4])))
        return false;
    const char *base = n->name && *n->name ? n->name : n->out[0]->name;
    hone_value *x = hone_attr_int(n, "binary_input", 0) ? sign_input(ctx, g, n, base) : n->in[0];
    hone_value *in[3] = {x, float_weights(ctx, g, n, n->in[0]->dims[1], k, base),
                         n->n_in > 3 ? n->in[3] : NULL};
    hone_node *conv = hone_graph_add_node(g, "Conv", "", base, in[2] ? 3 : 2, 1);
    conv->opset = 13;
    memcpy(conv->in, in, sizeof *in * (size_t)conv->n_in);
    static const char *const attrs[] = {"kernel_shape", "strides", "pads", "dilations"};
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        const hone_attr *a = hone_attr_find(n, attrs[i]);
        if (a && a->kind == HONE_ATTR_INTS)
            hone_node_set_attr_ints(g, conv, attrs[i], a->ints, a->n);
    }
    const char *ap = hone_attr_str(n, "auto_pad", NULL);
    if (ap)
        hone_node_set_attr_string(g, conv, "auto_pad", ap);
    conv->out[0] = n->out[0];
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_replaced", base));
    return true;
}

hone_status hone_binary_to_onnx(hone_ctx *ctx, hone_graph *g, int *count)
{
    hone_status st = hone_graph_infer(ctx, g);
    int n = 0, left = 0, total = g->n_nodes;
    for (int i = 0; i < total && !st; i++) {
        hone_node *nd = g->nodes[i];
        if (strcmp(nd->domain, "hone") || strcmp(nd->op_type, "BinaryConv"))
            continue;
        if (rewrite(ctx, g, nd))
            n++;
        else
            left++;
    }
    if (count)
        *count = n;
    if (st)
        return st;
    hone_graph_update_uses(g);
    hone_graph_remove_dead(g);
    st = hone_graph_toposort(ctx, g);
    if (!st && left)
        st = hone_fail(ctx, HONE_ERR_UNSUPPORTED,
                       "%d hone.BinaryConv nodes have non-constant bits, scale or threshold, "
                       "or unknown channels: no portable form", left);
    return st ? st : hone_graph_infer(ctx, g);
}
