/*
 * hone.QConv (hone domain, docs/CUSTOM_OPS.md): the quantized convolution
 * that qdq-to-integer writes for DequantizeLinear -> Conv [-> Add] [-> Relu]
 * [-> QuantizeLinear] chains.
 *
 * hone.QConv(X, W, x_zero_point, scale, [B], [Z], [y_scale], [y_zero_point]) -> Y
 *   X uint8 [N,C,H,W]; W int8 [M,C/group,kh,kw] (zero point 0); x_zero_point
 *   uint8 scalar; scale float [M]; B float [M]; Z float, Y's shape; y_scale
 *   float scalar; y_zero_point uint8 scalar. Conv attributes as Conv;
 *   activation "" or "Relu".
 *   s = ConvInteger(X, W, x_zero_point) (exact int32 sums), then in float32,
 *   each operation rounded on its own:
 *     v = float(s) * scale[m] (+ B[m]) (+ Z) (then max(v, 0) with Relu)
 *   Y = v (float), or with y_scale
 *     Y = saturate_uint8(round_half_even(v / y_scale) + y_zero_point).
 *   That is exactly Cast, Mul, Add, Add, Relu and QuantizeLinear in a row.
 *
 * The interpreter packs W and runs the runtime's kernel (hone_rt_qconv), the
 * one compiled code calls, so both give the same bits.
 */
#include <stdlib.h>
#include <string.h>

#include "nn.h"

static const hone_tinfo *opt_in(const hone_infer *ic, int i)
{
    return i < ic->n_in ? ic->in[i] : NULL;
}

/* Fails unless t (when present) has dtype dt and n elements (n < 0: any). */
static hone_status check(hone_infer *ic, const hone_tinfo *t, hone_dtype dt, int64_t n,
                         const char *what)
{
    if (!t)
        return HONE_OK;
    if (t->dtype && t->dtype != dt)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "%s must be %s, not %s", what,
                              hone_dtype_name(dt), hone_dtype_name(t->dtype));
    if (n < 0 || t->rank < 0)
        return HONE_OK;
    int64_t k = 1;
    for (int i = 0; i < t->rank; i++)
        k = t->dims[i] < 0 ? -1 : k * t->dims[i];
    if (t->rank > 1 || (k >= 0 && k != n))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "%s must hold %lld values in at most one dimension", what,
                              (long long)n);
    return HONE_OK;
}

static bool relu_of(const hone_node *n, bool *ok)
{
    const char *a = hone_attr_str(n, "activation", "");
    *ok = !*a || !strcmp(a, "Relu");
    return *a != 0;
}

hone_status infer_qconv(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0], *w = ic->in[1], *y_scale = opt_in(ic, 6);
    bool ok;
    relu_of(ic->node, &ok);
    if (!ok)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "activation '%s' is not \"\" or Relu",
                              hone_attr_str(ic->node, "activation", ""));
    if ((x->dtype && x->dtype != HONE_DT_UINT8) || (w->dtype && w->dtype != HONE_DT_INT8))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                              "X must be uint8 and W int8, not %s and %s",
                              hone_dtype_name(x->dtype), hone_dtype_name(w->dtype));
    if (!ic->in[2] || !ic->in[3])
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "x_zero_point and scale are required");
    if (x->rank >= 0 && x->rank != 4)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                              "X must have rank 4 (2-D convolution), not %d", x->rank);
    hone_infer sub = *ic;
    sub.n_in = 3;
    hone_status st = hone_op_table[hone_op_lookup("", "ConvInteger")].infer(&sub);
    if (st)
        return st;
    int64_t m = w->rank > 0 ? w->dims[0] : -1;
    if ((st = check(ic, ic->in[2], HONE_DT_UINT8, 1, "x_zero_point")) ||
        (st = check(ic, ic->in[3], HONE_DT_FLOAT, m, "scale")) ||
        (st = check(ic, opt_in(ic, 4), HONE_DT_FLOAT, m, "B")) ||
        (st = check(ic, y_scale, HONE_DT_FLOAT, 1, "y_scale")) ||
        (st = check(ic, opt_in(ic, 7), HONE_DT_UINT8, 1, "y_zero_point")))
        return st;
    const hone_tinfo *z = opt_in(ic, 5);
    hone_tinfo *y = &ic->out[0];
    if (z && z->rank >= 0 && y->rank >= 0) {
        bool same = z->rank == y->rank && (!z->dtype || z->dtype == HONE_DT_FLOAT);
        for (int i = 0; same && i < y->rank; i++)
            same = z->dims[i] < 0 || y->dims[i] < 0 || z->dims[i] == y->dims[i];
        if (!same)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "Z must be float with the output's shape");
    }
    y->dtype = y_scale ? HONE_DT_UINT8 : HONE_DT_FLOAT;
    return HONE_OK;
}

static const void *data_of(const hone_eval *ec, int i)
{
    return i < ec->n_in && ec->in[i] ? ec->in[i]->data : NULL;
}

hone_status eval_qconv(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0], *wt = ec->in[1];
    bool ok;
    int relu = relu_of(ec->node, &ok);
    hone_rt_window w;
    hone_status st = nn_window(ec->ctx, ec->node, 2, x->dims + 2, wt->dims + 2,
                               (nn_window_opts){0}, &w);
    if (st)
        return st;
    int64_t g = hone_attr_int(ec->node, "group", 1), c = x->dims[1], m = wt->dims[0];
    int64_t dims[4] = {x->dims[0], m, w.out[0], w.out[1]};
    if (!ec->out[0] && (st = hone_eval_alloc(ec, 0, data_of(ec, 6) ? HONE_DT_UINT8 : HONE_DT_FLOAT,
                                             4, dims)))
        return st;
    size_t np = hone_rt_conv_integer_packed_size(&w, c, m, g);
    void *packed = malloc(np ? np : 1);
    void *scratch = malloc(hone_rt_conv_integer_scratch(&w, c, m, g));
    if (!packed || !scratch) {
        free(packed);
        free(scratch);
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    }
    hone_rt_conv_integer_pack(&w, c, m, g, wt->data, packed);
    hone_rt_qconv(&w, x->dims[0], c, m, g, x->data, data_of(ec, 2), packed, data_of(ec, 3),
                  data_of(ec, 4), data_of(ec, 5), relu, data_of(ec, 6), data_of(ec, 7),
                  ec->out[0]->data, scratch);
    free(packed);
    free(scratch);
    return HONE_OK;
}
