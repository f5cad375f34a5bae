/*
 * Elementwise ops: unary math and activations, broadcasting binary
 * arithmetic. The reference kernels compute through double (or int64 for
 * integer types) for every dtype; the fast float paths live in runtime/.
 */
#include "ops_util.h"

hone_status infer_identity(hone_infer *ic)
{
    return hone_infer_same(ic);
}

hone_status eval_identity(hone_eval *ec)
{
    memcpy(ec->out[0]->data, ec->in[0]->data, hone_tensor_nbytes(ec->in[0]));
    return HONE_OK;
}

/* Applies f to every element through double. */
static hone_status map_unary(hone_eval *ec, double (*f)(double))
{
    const hone_tensor *a = ec->in[0];
    for (int64_t i = 0; i < a->numel; i++)
        hone_tensor_set_f64(ec->out[0], i, f(hone_tensor_get_f64(a, i)));
    return HONE_OK;
}

static double relu(double x)
{
    return x > 0 ? x : 0;
}

hone_status eval_relu(hone_eval *ec)
{
    return map_unary(ec, relu);
}

hone_status infer_binary_arith(hone_infer *ic)
{
    if (ic->in[0]->dtype != ic->in[1]->dtype && ic->in[0]->dtype && ic->in[1]->dtype)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "input types differ: %s vs %s",
                              hone_dtype_name(ic->in[0]->dtype), hone_dtype_name(ic->in[1]->dtype));
    return hone_infer_bcast_all(ic, HONE_DT_UNDEF);
}

typedef enum { B_ADD, B_MUL } binop;

/* Broadcasting binary op; integers in int64, everything else in double. */
static hone_status binary(hone_eval *ec, binop op)
{
    hone_bcast b;
    hone_tensor *o = ec->out[0];
    bool isint = hone_dtype_is_int(o->dtype);
    hone_bcast_init(&b, o->rank, o->dims, 2, ec->in);
    for (int64_t i = 0; i < o->numel; i++, hone_bcast_next(&b)) {
        if (isint) {
            int64_t x = hone_tensor_get_i64(ec->in[0], b.off[0]);
            int64_t y = hone_tensor_get_i64(ec->in[1], b.off[1]);
            hone_tensor_set_i64(o, i, op == B_ADD ? (int64_t)((uint64_t)x + (uint64_t)y)
                                                  : (int64_t)((uint64_t)x * (uint64_t)y));
        } else {
            double x = hone_tensor_get_f64(ec->in[0], b.off[0]);
            double y = hone_tensor_get_f64(ec->in[1], b.off[1]);
            hone_tensor_set_f64(o, i, op == B_ADD ? x + y : x * y);
        }
    }
    return HONE_OK;
}

hone_status eval_add(hone_eval *ec)
{
    return binary(ec, B_ADD);
}

hone_status eval_mul(hone_eval *ec)
{
    return binary(ec, B_MUL);
}
