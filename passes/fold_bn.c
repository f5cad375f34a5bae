/*
 * fold-bn: BatchNormalization in inference is y = s*x + t per channel, with
 * s = scale/sqrt(var+eps) and t = B - mean*s. When x comes from a producer
 * with constant weights and nothing else reads x, the affine map folds in:
 *   Conv   X[N,C,..]*W[M,C/g,k..] (+b): W'[m] = s[m]*W[m], b' = s*b + t
 *   Gemm   alpha*A'*B' + beta*C:  column n of B' scaled by s[n];
 *          C' = s*beta*C + t, beta = 1          (C absent, scalar, [N], [1,N])
 *   MatMul X[M,K]*W[K,N] (output rank 2): W' columns scaled, then Add(t)
 * The producer then writes the BN's output value directly (its name kept).
 * New weights are new constants (the old ones may be shared; dce drops them
 * when unused). Arithmetic runs in double, stored back in the weight's type.
 * Skipped: training mode, a used running-mean/var output, non-float or
 * non-constant parameters, shapes that do not match the channel count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct affine {
    int64_t c;       /* channels */
    double *s, *t;   /* y = s*x + t per channel */
} affine;

static bool const_vec(const hone_value *v, int64_t c)
{
    return hone_pass_is_const(v) && hone_dtype_is_float(v->data->dtype) && v->data->numel == c &&
           v->data->rank == 1;
}

/* The per-channel affine map of BN node b, or false when b cannot fold. */
static bool bn_affine(const hone_node *b, affine *a)
{
    if (b->n_in != 5 || hone_attr_int(b, "training_mode", 0) || !hone_attr_int(b, "spatial", 1) ||
        !hone_pass_is_const(b->in[1]))
        return false;
    for (int j = 1; j < b->n_out; j++)
        if (b->out[j] && b->out[j]->n_uses)
            return false;
    int64_t c = b->in[1]->data->numel;
    for (int j = 1; j < 5; j++)
        if (!const_vec(b->in[j], c))
            return false;
    double eps = hone_attr_float(b, "epsilon", 1e-5f);
    a->c = c;
    a->s = malloc(sizeof *a->s * (size_t)c);
    a->t = malloc(sizeof *a->t * (size_t)c);
    HONE_ASSERT(a->s && a->t);
    for (int64_t i = 0; i < c; i++) {
        double var = hone_tensor_get_f64(b->in[4]->data, i);
        a->s[i] = hone_tensor_get_f64(b->in[1]->data, i) / sqrt(var + eps);
        a->t[i] = hone_tensor_get_f64(b->in[2]->data, i) -
                  hone_tensor_get_f64(b->in[3]->data, i) * a->s[i];
    }
    return true;
}

static void affine_free(affine *a)
{
    free(a->s);
    free(a->t);
}

/* New bias[c] = s*beta*old + t, old read with broadcasting (NULL: zeros). */
static hone_value *new_bias(hone_graph *g, const affine *a, const hone_value *old, double beta,
                            hone_dtype dt, const char *hint)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    int64_t dims[1] = {a->c};
    if (hone_tensor_new(&ctx, dt, 1, dims, &t))
        return NULL;
    for (int64_t i = 0; i < a->c; i++) {
        double o = old ? hone_tensor_get_f64(old->data, old->data->numel == 1 ? 0 : i) : 0;
        hone_tensor_set_f64(t, i, a->s[i] * beta * o + a->t[i]);
    }
    return hone_pass_new_const(g, t, hint);
}

/* Clone of w with element i scaled by s[channel(i)]; channel = (i / inner) % c. */
static hone_value *scaled(hone_graph *g, const hone_value *w, const affine *a, int64_t inner)
{
    hone_tensor *t = hone_tensor_clone(w->data);
    for (int64_t i = 0; i < t->numel; i++)
        hone_tensor_set_f64(t, i, hone_tensor_get_f64(t, i) * a->s[(i / inner) % a->c]);
    return hone_pass_new_const(g, t, w->name);
}

static bool bias_ok(const hone_value *b, int64_t c, bool allow_scalar)
{
    if (!b)
        return true;
    if (!hone_pass_is_const(b) || !hone_dtype_is_float(b->data->dtype))
        return false;
    const hone_tensor *t = b->data;
    return (t->numel == c && (t->rank == 1 || (t->rank == 2 && t->dims[0] == 1))) ||
           (allow_scalar && t->numel == 1);
}

static bool fold_conv(hone_graph *g, hone_node *p, const affine *a)
{
    const hone_value *w = p->n_in > 1 ? p->in[1] : NULL, *b = p->n_in > 2 ? p->in[2] : NULL;
    if (!hone_pass_is_const(w) || !hone_dtype_is_float(w->data->dtype) || w->data->rank < 3 ||
        w->data->dims[0] != a->c || !bias_ok(b, a->c, false))
        return false;
    hone_value *nb = new_bias(g, a, b, 1.0, w->data->dtype, b ? b->name : "bias");
    if (!nb)
        return false;
    hone_pass_set_input(g, p, 1, scaled(g, w, a, w->data->numel / a->c));
    hone_pass_set_input(g, p, 2, nb);
    return true;
}

static bool fold_gemm(hone_graph *g, hone_node *p, const affine *a)
{
    const hone_value *w = p->n_in > 1 ? p->in[1] : NULL, *c = p->n_in > 2 ? p->in[2] : NULL;
    bool tb = hone_attr_int(p, "transB", 0);
    if (!hone_pass_is_const(w) || !hone_dtype_is_float(w->data->dtype) || w->data->rank != 2 ||
        w->data->dims[tb ? 0 : 1] != a->c || !bias_ok(c, a->c, true))
        return false;
    double beta = hone_attr_float(p, "beta", 1.0f);
    hone_value *nc = new_bias(g, a, c, beta, w->data->dtype, c ? c->name : "bias");
    if (!nc)
        return false;
    hone_pass_set_input(g, p, 1, scaled(g, w, a, tb ? w->data->dims[1] : 1));
    hone_pass_set_input(g, p, 2, nc);
    hone_node_set_attr_float(g, p, "beta", 1.0f);
    return true;
}

/* MatMul keeps its output; an Add of t after it writes the BN output. */
static bool fold_matmul(hone_graph *g, hone_node *p, hone_node *bn, const affine *a)
{
    const hone_value *w = p->in[1];
    if (p->n_in != 2 || !hone_pass_is_const(w) || !hone_dtype_is_float(w->data->dtype) ||
        w->data->rank != 2 || w->data->dims[1] != a->c || p->out[0]->rank != 2)
        return false;
    hone_value *t = new_bias(g, a, NULL, 0.0, w->data->dtype, "bn_shift");
    if (!t)
        return false;
    hone_pass_set_input(g, p, 1, scaled(g, w, a, 1));
    const char *name = hone_arena_printf(g->arena, "%s_shift", bn->name);
    hone_node *add = hone_graph_add_node(g, "Add", "", name, 2, 1);
    add->in[0] = p->out[0];
    add->in[1] = t;
    add->out[0] = bn->out[0];
    bn->out[0] = NULL;
    return true;
}

/* Folds BN node b into its producer; true when the graph changed. */
static bool fold_one(hone_pass_ctx *pc, hone_graph *g, hone_node *b)
{
    hone_value *x = b->in[0];
    hone_node *p = x ? x->producer : NULL;
    affine a;
    if (!p || hone_pass_single_user(g, x) != b || p->out[0] != x || !bn_affine(b, &a))
        return false;
    bool ok = false, matmul = false;
    const char *kind = "";
    if (hone_pass_is_op(p, "Conv"))
        ok = fold_conv(g, p, &a), kind = "Conv";
    else if (hone_pass_is_op(p, "Gemm"))
        ok = fold_gemm(g, p, &a), kind = "Gemm";
    else if ((matmul = hone_pass_is_op(p, "MatMul")))
        ok = fold_matmul(g, p, b, &a), kind = "MatMul";
    affine_free(&a);
    if (!ok)
        return false;
    if (!matmul)
        p->out[0] = b->out[0];
    b->out[0] = NULL;
    hone_pass_remove_node(g, b);
    hone_pass_note(pc, kind, 1);
    return true;
}

hone_status hone_pass_fold_bn(hone_pass_ctx *pc, hone_graph *g)
{
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes;) {
        hone_node *n = g->nodes[i];
        if (hone_pass_is_op(n, "BatchNormalization") && n->n_in && fold_one(pc, g, n))
            continue;
        i++;
    }
    return HONE_OK;
}
