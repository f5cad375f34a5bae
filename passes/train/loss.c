/*
 * Losses: each is built as hone-domain op nodes appended to the graph (see
 * frontend/ops/grad_loss.c), so the interpreter computes them and autodiff
 * differentiates them like any node. Every loss op also outputs its
 * gradient with respect to its first input, which autodiff reuses.
 *
 * hone_loss_build composes the trainer's loss from a spec: the main term
 * (CE, KD, their mix, MSE or L1) plus an optional feature-matching MSE
 * between two values of the graph, or between a value and a teacher feature
 * fed as a new graph input. What a loss compares against (labels, teacher
 * logits or target, teacher feature) becomes a new graph input with the
 * compared value's shape, so a symbolic batch size carries over.
 */
#include <stdlib.h>
#include <string.h>

#include "train.h"

/* A loss node dom.op(x, y) with outputs (loss, dloss/dx); returns the loss value. */
static hone_node *loss_node(hone_graph *g, const char *op, hone_value *x, hone_value *y)
{
    hone_node *n = hone_graph_add_node(g, op, "hone", NULL, 2, 2);
    n->opset = 1;
    n->in[0] = x;
    n->in[1] = y;
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_loss", x->name));
    n->out[1] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_dloss", x->name));
    return n;
}

hone_value *hone_loss_ce(hone_graph *g, hone_value *logits, hone_value *labels)
{
    if (!logits || !labels)
        return NULL;
    return loss_node(g, "SoftmaxCrossEntropy", logits, labels)->out[0];
}

hone_value *hone_loss_kd(hone_graph *g, hone_value *logits, hone_value *teacher, float temp)
{
    if (!logits || !teacher || !(temp > 0))
        return NULL;
    hone_node *n = loss_node(g, "SoftTargetKL", logits, teacher);
    hone_node_set_attr_float(g, n, "temperature", temp);
    return n->out[0];
}

hone_value *hone_loss_dist(hone_graph *g, hone_value *x, hone_value *target, bool l1)
{
    if (!x || !target)
        return NULL;
    hone_node *n = loss_node(g, "DistanceLoss", x, target);
    hone_node_set_attr_string(g, n, "kind", l1 ? "l1" : "mse");
    return n->out[0];
}

/* An ONNX binary node a (op) b at opset 17; returns its output. */
static hone_value *binary(hone_graph *g, const char *op, hone_value *a, hone_value *b)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, 2, 1);
    n->opset = 17;
    n->in[0] = a;
    n->in[1] = b;
    n->out[0] = hone_graph_new_value(g, "loss_mix");
    return n->out[0];
}

/* w * v, or v itself when w is 1. */
static hone_value *scaled(hone_graph *g, hone_value *v, float w)
{
    if (w == 1.0f)
        return v;
    hone_tensor *t = calloc(1, sizeof *t);
    float *d = malloc(sizeof *d);
    HONE_ASSERT(t && d);
    *d = w;
    t->dtype = HONE_DT_FLOAT;
    t->numel = 1;
    t->data = d;
    hone_value *c = hone_graph_new_value(g, "loss_weight");
    hone_value_set_data(c, t);
    return binary(g, "Mul", v, c);
}

hone_value *hone_loss_mix(hone_graph *g, int n, hone_value **terms, const float *w)
{
    hone_value *sum = NULL;
    for (int i = 0; i < n; i++) {
        if (!terms[i])
            return NULL;
        hone_value *t = scaled(g, terms[i], w[i]);
        sum = sum ? binary(g, "Add", sum, t) : t;
    }
    return sum;
}

/* A new graph input named name, of dtype dt and the shape of like (rank r of it). */
static hone_value *new_input(hone_graph *g, const char *name, hone_dtype dt, const hone_value *like,
                             int r)
{
    hone_value *v = hone_graph_new_value(g, name);
    v->dtype = dt;
    v->rank = r;
    memcpy(v->dims, like->dims, sizeof v->dims);
    hone_graph_add_input(g, v);
    return v;
}

/* The main term of spec over out, adding the inputs it reads to in. */
static hone_value *main_term(hone_graph *g, const hone_train_spec *s, hone_value *out,
                             hone_loss_inputs *in)
{
    bool ce = s->loss == HONE_LOSS_CE || s->loss == HONE_LOSS_CE_KD;
    bool kd = s->loss == HONE_LOSS_KD || s->loss == HONE_LOSS_CE_KD;
    if (ce)
        in->labels = new_input(g, "labels", HONE_DT_INT64, out, 1);
    if (s->loss != HONE_LOSS_CE && s->loss != HONE_LOSS_NONE)
        in->teacher = new_input(g, kd ? "teacher" : "target", HONE_DT_FLOAT, out, out->rank);
    if (s->loss == HONE_LOSS_MSE || s->loss == HONE_LOSS_L1)
        return hone_loss_dist(g, out, in->teacher, s->loss == HONE_LOSS_L1);
    if (!kd)
        return hone_loss_ce(g, out, in->labels);
    hone_value *k = hone_loss_kd(g, out, in->teacher, s->temperature);
    if (!ce)
        return k;
    hone_value *terms[2] = {k, hone_loss_ce(g, out, in->labels)};
    float w[2] = {s->kd_alpha, 1.0f - s->kd_alpha};
    return hone_loss_mix(g, 2, terms, w);
}

/* The feature-matching term of spec, or NULL when it has none (*st set on error). */
static hone_value *feature_term(hone_ctx *ctx, hone_graph *g, const hone_train_spec *s,
                                hone_loss_inputs *in, hone_status *st)
{
    hone_value *a = hone_graph_find(g, s->feat_student), *b = NULL;
    if (!a) {
        *st = hone_fail(ctx, HONE_ERR_ARG, "feature value '%s' is not in the model", s->feat_student);
        return NULL;
    }
    if (s->feat_teacher && !(b = hone_graph_find(g, s->feat_teacher))) {
        *st = hone_fail(ctx, HONE_ERR_ARG, "feature value '%s' is not in the model", s->feat_teacher);
        return NULL;
    }
    if (!b)
        b = in->feature = new_input(g, "teacher_feature", HONE_DT_FLOAT, a, a->rank);
    return hone_loss_dist(g, a, b, false);
}

/* *loss += the scalar value named name (a regulariser the model computes). */
static hone_status add_extra(hone_ctx *ctx, hone_graph *g, const char *name, hone_value **loss)
{
    hone_value *v = hone_graph_find(g, name);
    if (!v || v->dtype != HONE_DT_FLOAT || v->rank != 0)
        return hone_fail(ctx, HONE_ERR_ARG, "extra loss '%s' is not a float scalar of the model",
                         name);
    hone_value *terms[2] = {*loss, v};
    *loss = hone_loss_mix(g, 2, terms, (const float[]){1.0f, 1.0f});
    return HONE_OK;
}

hone_status hone_loss_build(hone_ctx *ctx, hone_graph *g, const hone_train_spec *spec,
                            hone_value *out, hone_loss_inputs *in, hone_value **loss)
{
    hone_status st = HONE_OK;
    hone_value *terms[3] = {NULL, NULL, NULL};
    float w[3] = {1.0f, spec->feat_weight, 1.0f};
    int n = 0;
    memset(in, 0, sizeof *in);
    *loss = NULL;
    if (spec->loss == HONE_LOSS_CE_KD && !(spec->kd_alpha >= 0 && spec->kd_alpha <= 1))
        return hone_fail(ctx, HONE_ERR_ARG, "kd_alpha %g is not in [0, 1]", spec->kd_alpha);
    if (spec->loss != HONE_LOSS_NONE && !(terms[n++] = main_term(g, spec, out, in)))
        return hone_fail(ctx, HONE_ERR_ARG, "invalid loss settings (temperature %g)",
                         spec->temperature);
    if (spec->feat_student && !(terms[n++] = feature_term(ctx, g, spec, in, &st)))
        return st;
    if (n == 0 && !spec->extra_loss)
        return hone_fail(ctx, HONE_ERR_ARG, "the loss has no term (no main loss, no feature)");
    w[0] = n == 2 || spec->loss != HONE_LOSS_NONE ? 1.0f : spec->feat_weight;
    if (spec->extra_loss) {
        w[n] = 1.0f;
        if (!(terms[n++] = spec->extra_loss(spec->extra_user, ctx, g, in)))
            return ctx->status ? ctx->status
                               : hone_fail(ctx, HONE_ERR_ARG, "the extra loss term failed");
    }
    *loss = hone_loss_mix(g, n, terms, w);
    return spec->extra_loss_value ? add_extra(ctx, g, spec->extra_loss_value, loss) : HONE_OK;
}
