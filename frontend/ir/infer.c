/*
 * Shape and type inference, and single-node execution.
 *
 * Each op's infer function sees hone_tinfo views of its inputs: type, shape and
 * contents when known. The same function serves static inference over a graph
 * (contents known only for constants) and the interpreter (contents always
 * known), so the two can never disagree. During static inference small values
 * whose inputs are all known are evaluated on the spot (data propagation), so
 * the Shape->Gather->Concat->Reshape chains of PyTorch exports infer fully.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#define PROPAGATE_MAX_NUMEL 4096

typedef struct hone_tensor_list {
    hone_tensor **items;
    int n, cap;
} hone_tensor_list;

static void list_push(hone_tensor_list *l, hone_tensor *t)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = realloc(l->items, sizeof *l->items * (size_t)l->cap);
        HONE_ASSERT(l->items);
    }
    l->items[l->n++] = t;
}

static void list_free(hone_tensor_list *l)
{
    for (int i = 0; i < l->n; i++)
        hone_tensor_free(l->items[i]);
    free(l->items);
}

hone_status hone_node_fail(hone_ctx *ctx, const hone_node *n, hone_status st, const char *fmt, ...)
{
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return hone_fail(ctx, st, "node '%s' (%s): %s", n->name, n->op_type, buf);
}

bool hone_tinfo_static(const hone_tinfo *t)
{
    if (t->rank < 0)
        return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0)
            return false;
    return true;
}

void hone_infer_set(hone_infer *ic, int i, hone_dtype dt, int rank, const int64_t *dims)
{
    HONE_ASSERT(i < ic->n_out && rank <= HONE_MAX_RANK);
    ic->out[i].dtype = dt;
    ic->out[i].rank = rank;
    for (int k = 0; k < rank; k++)
        ic->out[i].dims[k] = dims ? dims[k] : HONE_DIM_UNKNOWN;
}

hone_tensor *hone_infer_new_value(hone_infer *ic, hone_dtype dt, int rank, const int64_t *dims)
{
    hone_tensor *t;
    if (!ic->owned || hone_tensor_new(ic->ctx, dt, rank, dims, &t))
        return NULL;
    list_push(ic->owned, t);
    return t;
}

hone_status hone_infer_axis(hone_infer *ic, int64_t a, int rank, int *out)
{
    if (a < -rank || a >= (rank ? rank : 1))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                              "axis %lld is out of range for rank %d", (long long)a, rank);
    *out = (int)(a < 0 ? a + rank : a);
    return HONE_OK;
}

int hone_infer_const_ints(const hone_infer *ic, int i, int64_t *v, int cap)
{
    if (i >= ic->n_in || !ic->in[i] || !ic->in[i]->value)
        return -1;
    const hone_tensor *t = ic->in[i]->value;
    if (t->numel > cap)
        return -1;
    for (int64_t k = 0; k < t->numel; k++)
        v[k] = hone_tensor_get_i64(t, k);
    return (int)t->numel;
}

/* Broadcast one dim pair; symbolic dims survive when equal or against 1. */
static int64_t bcast_dim(int64_t a, int64_t b, bool *bad)
{
    if (a == b)
        return a;
    if (a == 1)
        return b;
    if (b == 1)
        return a;
    if (a >= 0 && b >= 0) {
        *bad = true;
        return a;
    }
    if (a >= 0 && a != 1)
        return a;
    if (b >= 0 && b != 1)
        return b;
    return HONE_DIM_UNKNOWN;
}

hone_status hone_infer_broadcast(hone_infer *ic, int ra, const int64_t *da, int rb,
                                 const int64_t *db, int *r, int64_t *d)
{
    if (ra < 0 || rb < 0) {
        *r = -1;
        return HONE_OK;
    }
    int rr = ra > rb ? ra : rb;
    bool bad = false;
    for (int i = 0; i < rr; i++) {
        int ia = i - (rr - ra), ib = i - (rr - rb);
        int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
        d[i] = bcast_dim(x, y, &bad);
        if (bad)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE,
                                  "shapes cannot broadcast: dim %lld vs %lld", (long long)x,
                                  (long long)y);
    }
    *r = rr;
    return HONE_OK;
}

hone_status hone_eval_alloc(hone_eval *ec, int i, hone_dtype dt, int rank, const int64_t *dims)
{
    HONE_ASSERT(i < ec->n_out);
    if (ec->out[i]) {
        hone_tensor *t = ec->out[i];
        if (t->dtype == dt && t->rank == rank &&
            (!rank || !memcmp(t->dims, dims, sizeof(int64_t) * (size_t)rank)))
            return HONE_OK;
        hone_tensor_free(t);
        ec->out[i] = NULL;
    }
    hone_status st = hone_tensor_new(ec->ctx, dt, rank, dims, &ec->out[i]);
    if (st)
        hone_fail_wrap(ec->ctx, "node '%s' (%s)", ec->node->name, ec->node->op_type);
    return st;
}

static void tinfo_from_tensor(hone_tinfo *ti, const hone_tensor *t)
{
    ti->dtype = t->dtype;
    ti->rank = t->rank;
    memcpy(ti->dims, t->dims, sizeof ti->dims);
    ti->value = t;
}

static hone_status check_arity(hone_ctx *ctx, const hone_node *n)
{
    const hone_op_info *oi = &hone_op_table[n->op];
    if (n->n_in > HONE_MAX_ARITY || n->n_out > HONE_MAX_ARITY)
        return hone_node_fail(ctx, n, HONE_ERR_LIMIT, "more than %d inputs or outputs", HONE_MAX_ARITY);
    if (n->op == HONE_OP_UNKNOWN)
        return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "op '%s%s%s' is not supported",
                              n->domain, *n->domain ? "." : "", n->op_type);
    if (n->n_in < oi->min_in || (oi->max_in >= 0 && n->n_in > oi->max_in))
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "has %d inputs, expected %d..%d", n->n_in,
                              oi->min_in, oi->max_in);
    if (n->n_out < oi->min_out || (oi->max_out >= 0 && n->n_out > oi->max_out))
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "has %d outputs, expected %d..%d",
                              n->n_out, oi->min_out, oi->max_out);
    /* required inputs, and every input of a variadic op, must be present */
    for (int i = 0; i < n->n_in; i++)
        if (!n->in[i] && (i < oi->min_in || oi->max_in < 0))
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "required input %d is missing", i);
    return HONE_OK;
}

/* Ops whose kernels write every element of every output (the training step's hot ops:
 * their runtime kernels also serve compiled code, whose buffers start uninitialised, or
 * zero what they accumulate into), so their outputs skip calloc's zeroing (4% of a
 * training step with it). */
static bool writes_every_output(hone_op op)
{
    switch (op) {
    case HONE_OP_CONV:
    case HONE_OP_CONV_GRAD:
    case HONE_OP_RELU:
    case HONE_OP_ADD:
    case HONE_OP_UNARY_GRAD:
        return true;
    default:
        return false;
    }
}

hone_status hone_node_run(hone_ctx *ctx, const hone_node *n, const hone_tensor **in,
                          hone_tensor **out, hone_tensor_list *owned)
{
    hone_status st = check_arity(ctx, n);
    if (st)
        return st;
    hone_tinfo tin[n->n_in + 1], tout[n->n_out + 1];
    const hone_tinfo *pin[n->n_in + 1];
    memset(tout, 0, sizeof tout);
    for (int i = 0; i < n->n_in; i++) {
        pin[i] = in[i] ? &tin[i] : NULL;
        if (in[i])
            tinfo_from_tensor(&tin[i], in[i]);
    }
    for (int i = 0; i < n->n_out; i++)
        tout[i].rank = -1;
    hone_tensor_list local = {0};
    hone_infer ic = {ctx, n, n->opset, n->n_in, pin, n->n_out, tout, owned ? owned : &local};
    st = hone_op_table[n->op].infer(&ic);
    for (int i = 0; i < n->n_out; i++)
        out[i] = NULL;
    for (int i = 0; !st && i < n->n_out; i++)
        if (hone_tinfo_static(&tout[i]) && tout[i].dtype != HONE_DT_UNDEF)
            st = (writes_every_output(n->op) ? hone_tensor_new_uninit : hone_tensor_new)(
                ctx, tout[i].dtype, tout[i].rank, tout[i].dims, &out[i]);
    if (st && ctx->msg[0] && !strstr(ctx->msg, n->name))
        hone_fail_wrap(ctx, "node '%s' (%s)", n->name, n->op_type);
    if (!st) {
        hone_eval ec = {ctx, n, n->opset, n->n_in, in, n->n_out, out};
        st = hone_op_table[n->op].eval(&ec);
    }
    for (int i = 0; !st && i < n->n_out; i++)
        if (!out[i] && n->out[i])
            st = hone_node_fail(ctx, n, HONE_ERR_INTERNAL, "kernel produced no output %d", i);
    if (st)
        for (int i = 0; i < n->n_out; i++) {
            hone_tensor_free(out[i]);
            out[i] = NULL;
        }
    list_free(&local);
    return st;
}

static void tinfo_from_value(hone_tinfo *ti, const hone_value *v, hone_tensor **known)
{
    ti->dtype = v->dtype;
    ti->rank = v->rank;
    memcpy(ti->dims, v->dims, sizeof ti->dims);
    ti->value = v->data ? v->data : known[v->id];
}

/* Merges an inferred type into a value, keeping declared knowledge the op could not derive. */
static void merge_out(hone_ctx *ctx, hone_value *v, const hone_tinfo *t)
{
    if (t->dtype != HONE_DT_UNDEF) {
        if (v->dtype != HONE_DT_UNDEF && v->dtype != t->dtype && ctx->verbose)
            fprintf(stderr, "hone: note: %s declared %s, inferred %s\n", v->name,
                    hone_dtype_name(v->dtype), hone_dtype_name(t->dtype));
        v->dtype = t->dtype;
    }
    if (t->rank < 0)
        return;
    if (v->rank != t->rank) {
        v->rank = t->rank;
        memcpy(v->dims, t->dims, sizeof v->dims);
        return;
    }
    for (int i = 0; i < t->rank; i++) {
        int64_t inf = t->dims[i], dec = v->dims[i];
        if (inf >= 0 || (dec < 0 && inf != HONE_DIM_UNKNOWN))
            v->dims[i] = inf;
    }
}

/* Evaluates a node whose inputs are all known and whose outputs are small. */
static void propagate(hone_ctx *ctx, const hone_node *n, const hone_tinfo **pin,
                      const hone_tinfo *tout, hone_tensor **known)
{
    int64_t total = 0;
    for (int i = 0; i < n->n_in; i++)
        if (pin[i] && !pin[i]->value)
            return;
    for (int i = 0; i < n->n_out; i++) {
        if (!hone_tinfo_static(&tout[i]))
            return;
        int64_t k;
        hone_ctx quiet = *ctx;
        if (hone_shape_numel(&quiet, tout[i].rank, tout[i].dims, &k) || k > PROPAGATE_MAX_NUMEL)
            return;
        total += k;
    }
    if (total > PROPAGATE_MAX_NUMEL || n->op == HONE_OP_UNKNOWN)
        return;
    const hone_tensor *in[n->n_in + 1];
    hone_tensor *out[n->n_out + 1];
    for (int i = 0; i < n->n_in; i++)
        in[i] = pin[i] ? pin[i]->value : NULL;
    hone_ctx quiet = *ctx;
    if (hone_node_run(&quiet, n, in, out, NULL))
        return; /* propagation is best effort; the real error surfaces at run time */
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && !known[n->out[i]->id])
            known[n->out[i]->id] = out[i];
        else
            hone_tensor_free(out[i]);
}

static hone_status infer_node(hone_ctx *ctx, hone_node *n, hone_tensor **known)
{
    hone_status st = check_arity(ctx, n);
    if (st)
        return st;
    hone_tinfo tin[n->n_in + 1], tout[n->n_out + 1];
    const hone_tinfo *pin[n->n_in + 1];
    memset(tout, 0, sizeof tout);
    for (int i = 0; i < n->n_in; i++) {
        pin[i] = n->in[i] ? &tin[i] : NULL;
        if (n->in[i])
            tinfo_from_value(&tin[i], n->in[i], known);
    }
    for (int i = 0; i < n->n_out; i++)
        tout[i].rank = -1;
    hone_tensor_list owned = {0};
    hone_infer ic = {ctx, n, n->opset, n->n_in, pin, n->n_out, tout, &owned};
    st = hone_op_table[n->op].infer(&ic);
    if (st) {
        if (!strstr(ctx->msg, n->name))
            hone_fail_wrap(ctx, "node '%s' (%s)", n->name, n->op_type);
        list_free(&owned);
        return st;
    }
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i]) {
            merge_out(ctx, n->out[i], &tout[i]);
            if (tout[i].value && !known[n->out[i]->id])
                known[n->out[i]->id] = hone_tensor_clone(tout[i].value);
        }
    list_free(&owned);
    propagate(ctx, n, pin, tout, known);
    return HONE_OK;
}

hone_status hone_graph_infer(hone_ctx *ctx, hone_graph *g)
{
    hone_tensor **known = calloc((size_t)g->n_values + 1, sizeof *known);
    HONE_ASSERT(known);
    hone_status st = HONE_OK;
    for (int i = 0; i < g->n_nodes && !st; i++)
        st = infer_node(ctx, g->nodes[i], known);
    for (int i = 0; i < g->n_values; i++)
        hone_tensor_free(known[i]);
    free(known);
    return st;
}
