/*
 * adder: Conv -> AdderNet layers (hone.Adder2d + BatchNormalization), trained
 * with AdderNet's rules and, by default, progressive kernel-based knowledge
 * distillation (PKKD, arXiv 2009.13044) from the original CNN; AdderSR's
 * self-shortcut and power activation (arXiv 2009.08891) for image-to-image
 * models.
 *
 * Conversion. Every Conv with constant weights becomes an Adder2d with the
 * same weights and attributes, except the stem (a Conv reading a graph
 * input) and the last layer (a Conv from which no Conv, Gemm or MatMul is
 * reachable: the classifier or reconstruction layer, which stays
 * multiplicative). hone_unfold_bn first moves each chosen conv's bias into a
 * BatchNormalization after it (the shared models had BN folded into their
 * convs); once the convs are adders, the BN running statistics are
 * re-estimated on `samples` calibration samples (hone_bn_recalibrate), so
 * each BN maps its adder's output onto the mean and spread the conv's output
 * had (scale sqrt(var_conv + eps), bias mean_conv + b from unfold-bn).
 * AdderSR: power=1 inserts hone.SignedPower (sign(y)|y|^alpha, one learnable
 * alpha per layer, from 1) between the adder and its BN; shortcut=1 adds the
 * layer's input to the BN output where input and output shapes agree
 * (Y = X + BN(P(Adder(X)))).
 *
 * Training (hone_fit on one combined graph): the student (converted model)
 * and a copy of the original CNN (the teacher, value names prefixed "t/")
 * share the input. Loss = main term + kd-weight * distillation + feat-weight
 * * PKKD term (built by the trainer's extra_loss hook):
 *   - main: CE against --labels; L1 against --targets (image-to-image);
 *     none label-free (the distillation term then carries the signal);
 *   - distillation (kd=logits or pkkd; always when label-free): T^2 KL of
 *     softmax at T = 4 against the teacher's logits, or L1 against the
 *     teacher's output image for image-to-image models;
 *   - PKKD (kd=pkkd), at the matched layers: the student's adder output
 *     Y_a = -L1 distance goes through a Laplace kernel g = exp(Y_a / s_a)
 *     and a 1x1 conv (initialised to the identity); the teacher's conv at the
 *     same place gives the Gaussian kernel h = exp(-||x - f||^2 / s_c) with
 *     ||x - f||^2 = ||patch||^2 + ||f||^2 - 2 x.f computed from a bias-free
 *     copy of the conv, a ones-kernel conv over x^2 and the filter norms; the
 *     term is the mean over matched layers of MSE(conv1x1(g), h). Widths are
 *     relative to calibration: s_a = sigma * mean|Y_a| and s_c = sigma *
 *     mean ||x - f||^2 (so sigma = 1 puts the average kernel value at e^-1).
 *     The 1x1 conv sits on the student side only: with one on both sides
 *     the pair could shrink both features to zero together.
 *   - teacher=frozen keeps the teacher's weights fixed; teacher=cotrain
 *     (PKKD's "progressive" variant) trains them too, with CE (or L1 to
 *     targets) on the teacher's own output plus the PKKD term, so the
 *     teacher moves towards features the adder student can follow; at
 *     teacher-lr times the learning rate (its gradients scaled in the
 *     before_update hook below).
 * Matched layers (layers=): "" (default) the last converted layer of each
 * resolution stage, "all", or a comma-separated list of Conv node names.
 * AdderNet's rules come from the AdderGrad backward (full-precision dW,
 * HardTanh dX); its adaptive per-layer scaling dW <- eta sqrt(numel) dW /
 * ||dW||_2 runs in hone_fit's before_update hook, before the optimiser adds
 * weight decay (Nesterov SGD, momentum 0.9, weight decay 1e-4, cosine
 * schedule over `steps` batches of `batch`, lr option).
 * The report gives the held-out metric (hone_fit's split of --data, never a
 * test set) of the CNN, of the converted model before training and after.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "interp.h"
#include "loop.h"
#include "passes.h"

#define TPREFIX "t/"

typedef struct layer {
    const char *name;     /* the Conv's node name */
    hone_node *node;      /* the Adder2d in the student graph */
    const char *w;        /* its weight constant */
    const char *y;        /* its output (the student feature) */
    bool matched;
    /* PKKD feature names in the combined graph and calibration means */
    const char *g_feat, *h_feat, *d2, *inv_a, *inv_c;
    double mean_y, mean_d2;
} layer;

typedef struct run {
    hone_pass_ctx *pc;
    const hone_pass_data *d;
    layer *l;
    int n, n_matched;
    bool pkkd, logits, cotrain, image;
    float kd_w, feat_w, eta;
    const char *s_out, *t_out;  /* student and teacher outputs in the combined graph */
    const char **frozen;
    int n_frozen;
    const char **trainable;
    int n_trainable;
    float teacher_lr;           /* teacher=cotrain: its gradients' scale */
    float *grad_scale;          /* per trainer parameter (lazily): -1 adder, else a factor */
} run;

/* ===================== choosing layers ===================== */

static bool weighted_op(const hone_node *n)
{
    return hone_pass_is_op(n, "Conv") || hone_pass_is_op(n, "Gemm") ||
           hone_pass_is_op(n, "MatMul") || n->op == HONE_OP_ADDER2D;
}

/* reach[v] = some Conv/Gemm/MatMul reads v or a value computed from it
 * (g topologically sorted). */
static bool *downstream_weights(const hone_graph *g)
{
    bool *reach = calloc((size_t)g->n_values + 1, sizeof *reach);
    HONE_ASSERT(reach);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const hone_node *n = g->nodes[i];
        bool r = weighted_op(n);
        for (int j = 0; !r && j < n->n_out; j++)
            r = n->out[j] && reach[n->out[j]->id];
        for (int j = 0; r && j < n->n_in; j++)
            if (n->in[j])
                reach[n->in[j]->id] = true;
    }
    return reach;
}

/* A Conv the pass converts: constant float weights, not the stem, not last. */
static bool convertible(const hone_node *n, const bool *reach)
{
    return hone_pass_is_op(n, "Conv") && n->n_in >= 2 && n->in[0] && n->out[0] &&
           hone_pass_is_const(n->in[1]) && n->in[1]->data->dtype == HONE_DT_FLOAT &&
           n->in[1]->data->rank >= 3 && !(n->in[0]->flags & HONE_VAL_INPUT) &&
           reach[n->out[0]->id];
}

static bool listed_layer(const hone_node *n, void *user)
{
    const run *r = user;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->l[i].name, n->name))
            return true;
    return false;
}

/* Fills r->l with the convertible convs of g in graph order. */
static void choose_layers(run *r, hone_graph *g)
{
    bool *reach = downstream_weights(g);
    r->l = calloc((size_t)g->n_nodes + 1, sizeof *r->l);
    HONE_ASSERT(r->l);
    for (int i = 0; i < g->n_nodes; i++)
        if (convertible(g->nodes[i], reach))
            r->l[r->n++].name = g->nodes[i]->name;
    free(reach);
}

/* Spatial extent of value v (product of dims 2..), -1 when unknown. */
static int64_t plane(const hone_value *v)
{
    int64_t p = 1;
    for (int d = 2; d < v->rank; d++)
        p *= v->dims[d] > 0 ? v->dims[d] : -1;
    return v->rank > 2 && p > 0 ? p : -1;
}

/* layers= "": the last layer of each resolution; "all"; or listed names. */
static void choose_matched(run *r, const char *spec)
{
    for (int i = 0; i < r->n; i++) {
        layer *l = &r->l[i];
        if (!strcmp(spec, "all"))
            l->matched = true;
        else if (*spec)
            l->matched = hone_pass_in_list(spec, l->name);
        else
            l->matched = i + 1 == r->n ||
                         plane(r->l[i + 1].node->out[0]) != plane(l->node->out[0]);
        /* the teacher's patch norms are per image position: grouped convs are not matched */
        l->matched = l->matched && hone_attr_int(l->node, "group", 1) == 1 &&
                     l->node->in[1]->data->rank == 4;
        r->n_matched += l->matched;
    }
}

/* ===================== rewriting the student ===================== */

static hone_value *scalar(hone_graph *g, float v, const char *hint)
{
    hone_ctx ctx;
    hone_tensor *t;
    int64_t one = 1;
    hone_ctx_init(&ctx);
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, 1, &one, &t));
    ((float *)t->data)[0] = v;
    return hone_pass_new_const(g, t, hint);
}

/* The BN unfold-bn put after conv output z (its only reader). */
static hone_node *bn_after(hone_graph *g, const hone_value *z)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (hone_pass_is_op(g->nodes[i], "BatchNormalization") && g->nodes[i]->in[0] == z)
            return g->nodes[i];
    return NULL;
}

/* A one-output node op(in...) appended to g; returns its output. */
static hone_value *node1(hone_graph *g, const char *op, const char *dom, const char *name,
                         int n_in, hone_value *const *in)
{
    hone_node *n = hone_graph_add_node(g, op, dom, name, n_in, 1);
    n->opset = *dom ? 1 : 13;
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_out", name));
    return n->out[0];
}

/* AdderSR: SignedPower between the adder and its BN (alpha trainable). */
static void add_power(run *r, hone_graph *g, layer *l, hone_node *bn)
{
    hone_value *a = scalar(g, 1.0f, hone_arena_printf(g->arena, "%s_alpha", l->name));
    const char *nm = hone_arena_printf(g->arena, "%s_power", l->name);
    bn->in[0] = node1(g, "SignedPower", "hone", nm, 2, (hone_value *[]){l->node->out[0], a});
    r->trainable[r->n_trainable++] = a->name;
}

/* AdderSR: Y = X + BN(...) where the layer keeps its input's shape. */
static bool add_shortcut(hone_graph *g, layer *l, hone_node *bn)
{
    hone_value *x = l->node->in[0], *y = bn->out[0];
    if (!hone_pass_same_shape(x, y))
        return false;
    hone_value *b = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_body", y->name));
    bn->out[0] = b;
    hone_node *add = hone_graph_add_node(g, "Add", "", hone_arena_printf(g->arena, "%s_shortcut",
                                                                       l->name), 2, 1);
    add->opset = 13;
    add->in[0] = x;
    add->in[1] = b;
    add->out[0] = y;
    return true;
}

/* Conv -> Adder2d in place (same inputs, weights and attributes, no bias). */
static void to_adder(hone_graph *g, hone_node *n)
{
    n->op_type = "Adder2d";
    n->domain = "hone";
    n->opset = 1;
    n->op = hone_op_lookup("hone", "Adder2d");
    n->n_in = 2;
    hone_pass_add_opset(g, "hone", 1);
}

static hone_node *find_node(const hone_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->name, name))
            return g->nodes[i];
    return NULL;
}

/* Converts the chosen layers of g (BN already unfolded after each). */
static hone_status convert(run *r, hone_graph *g, bool power, bool shortcut, int *n_short)
{
    for (int i = 0; i < r->n; i++) {
        layer *l = &r->l[i];
        l->node = find_node(g, l->name);
        hone_node *bn = l->node ? bn_after(g, l->node->out[0]) : NULL;
        if (!bn)
            return hone_fail(r->pc->ctx, HONE_ERR_INTERNAL, "adder: no BN after conv '%s'",
                             l->name);
        to_adder(g, l->node);
        l->w = l->node->in[1]->name;
        l->y = l->node->out[0]->name;
        r->trainable[r->n_trainable++] = l->w;
        if (power)
            add_power(r, g, l, bn);
        if (shortcut)
            *n_short += add_shortcut(g, l, bn);
    }
    hone_status st = hone_graph_toposort(r->pc->ctx, g);
    return st ? st : hone_graph_infer(r->pc->ctx, g);
}

/* Re-estimates every BN on the first `samples` samples of x. */
static hone_status recalibrate(hone_ctx *ctx, hone_graph *g, const hone_tensor *x, int64_t samples)
{
    int64_t n = x->dims[0] < samples ? x->dims[0] : samples;
    int64_t *idx = malloc(sizeof *idx * (size_t)(n + 1));
    HONE_ASSERT(idx);
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    hone_tensor *xs = NULL;
    hone_status st = hone_data_gather(ctx, x, idx, n, n, &xs);
    if (!st)
        st = hone_bn_recalibrate(ctx, g, xs, 64, NULL);
    hone_tensor_free(xs);
    free(idx);
    return st;
}

/* ===================== the combined training graph ===================== */

/* Appends a copy of teacher t to c (value and node names prefixed, input 0
 * shared with c's); returns its first output in c. Attribute strings and
 * lists stay in t's arena (t must outlive c); attribute tensors are copied,
 * since each graph frees its own. */
static hone_value *append_teacher(run *r, hone_graph *c, const hone_graph *t)
{
    hone_value **map = calloc((size_t)t->n_values + 1, sizeof *map);
    HONE_ASSERT(map);
    map[t->inputs[0]->id] = c->inputs[0];
    for (int i = 0; i < t->n_values; i++) {
        const hone_value *v = t->values[i];
        if (map[i])
            continue;
        map[i] = hone_graph_new_value(c, hone_arena_printf(c->arena, TPREFIX "%s", v->name));
        if (v->data) {
            hone_value_set_data(map[i], hone_tensor_clone(v->data));
            if (!r->cotrain)
                r->frozen[r->n_frozen++] = map[i]->name;
        }
    }
    for (int i = 0; i < t->n_nodes; i++) {
        const hone_node *n = t->nodes[i];
        hone_node *m = hone_graph_add_node(c, n->op_type, n->domain,
                                           hone_arena_printf(c->arena, TPREFIX "%s", n->name),
                                           n->n_in, n->n_out);
        m->opset = n->opset;
        for (int j = 0; j < n->n_in; j++)
            m->in[j] = n->in[j] ? map[n->in[j]->id] : NULL;
        for (int j = 0; j < n->n_out; j++)
            m->out[j] = n->out[j] ? map[n->out[j]->id] : NULL;
        m->n_attr = n->n_attr;
        m->attrs = hone_arena_alloc(c->arena, sizeof *m->attrs * (size_t)(n->n_attr + 1));
        for (int a = 0; a < n->n_attr; a++) {
            m->attrs[a] = n->attrs[a];
            m->attrs[a].t = n->attrs[a].t ? hone_tensor_clone(n->attrs[a].t) : NULL;
        }
    }
    hone_value *out = map[t->outputs[0]->id];
    free(map);
    return out;
}

/* Copies the window attributes of conv n onto m (not kernel_shape). */
static void window_of(hone_graph *g, hone_node *m, const hone_node *n)
{
    static const char *const names[] = {"auto_pad", "dilations", "group", "pads", "strides"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const hone_attr *a = hone_attr_find(n, names[i]);
        if (a)
            *hone_node_add_attr(g, m, a->name, a->kind) = *a;
    }
}

/* A float constant of shape dims filled with v, or the identity over the
 * first two dims when ident. */
static hone_value *filled(hone_graph *g, int rank, const int64_t *dims, float v, bool ident,
                          const char *hint)
{
    hone_ctx ctx;
    hone_tensor *t;
    hone_ctx_init(&ctx);
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, rank, dims, &t));
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = ident ? (i % (dims[0] + 1) == 0 ? 1.0f : 0.0f) : v;
    return hone_pass_new_const(g, t, hint);
}

/* Conv(x, w) with conv n's window; returns its output. */
static hone_value *conv_like(hone_graph *g, const hone_node *n, hone_value *x, hone_value *w,
                             const char *name)
{
    hone_value *y = node1(g, "Conv", "", name, 2, (hone_value *[]){x, w});
    window_of(g, g->nodes[g->n_nodes - 1], n);
    return y;
}

static hone_value *op2(hone_graph *g, const char *op, hone_value *a, hone_value *b,
                       const char *name)
{
    return node1(g, op, "", name, 2, (hone_value *[]){a, b});
}

/* Student kernel feature conv1x1(exp(Y_a * inv_a)) of layer l. */
static void student_feature(run *r, hone_graph *c, layer *l)
{
    hone_value *y = hone_graph_find(c, l->y);
    int64_t m = hone_graph_find(c, l->w)->data->dims[0], d[4] = {m, m, 1, 1};
    const char *b = l->name;
    hone_value *inv = scalar(c, 1.0f, hone_arena_printf(c->arena, "%s_pkkd_inv_a", b));
    hone_value *e = node1(c, "Exp", "", hone_arena_printf(c->arena, "%s_pkkd_g", b), 1,
                          (hone_value *[]){op2(c, "Mul", y, inv,
                                               hone_arena_printf(c->arena, "%s_pkkd_ys", b))});
    hone_value *map = filled(c, 4, d, 0, true, hone_arena_printf(c->arena, "%s_pkkd_map", b));
    hone_node *mc = hone_graph_add_node(c, "Conv", "", hone_arena_printf(c->arena, "%s_pkkd_mapc", b), 2, 1);
    mc->opset = 13;
    mc->in[0] = e;
    mc->in[1] = map;
    mc->out[0] = hone_graph_new_value(c, hone_arena_printf(c->arena, "%s_pkkd_gm", b));
    l->inv_a = inv->name;
    l->g_feat = mc->out[0]->name;
}

/* Teacher Gaussian kernel exp(-(||patch||^2 + ||f||^2 - 2 x.f) * inv_c) of layer l. */
static void teacher_feature(run *r, hone_graph *c, layer *l)
{
    hone_node *tc = find_node(c, hone_arena_printf(c->arena, TPREFIX "%s", l->name));
    hone_value *x = tc->in[0], *w = tc->in[1];
    const int64_t *wd = w->data->dims;
    int64_t ones_d[4] = {1, wd[1], wd[2], wd[3]};
    const char *b = l->name;
    hone_value *xf = conv_like(c, tc, x, w, hone_arena_printf(c->arena, "%s_pkkd_xf", b));
    hone_value *ones = filled(c, 4, ones_d, 1.0f, false,
                              hone_arena_printf(c->arena, "%s_pkkd_ones", b));
    r->frozen[r->n_frozen++] = ones->name;
    hone_value *x2 = op2(c, "Mul", x, x, hone_arena_printf(c->arena, "%s_pkkd_x2", b));
    hone_value *pn = conv_like(c, tc, x2, ones, hone_arena_printf(c->arena, "%s_pkkd_pn", b));
    hone_value *w2 = op2(c, "Mul", w, w, hone_arena_printf(c->arena, "%s_pkkd_w2", b));
    hone_node *rs = hone_graph_add_node(c, "ReduceSum", "", hone_arena_printf(c->arena, "%s_pkkd_fn", b), 2, 1);
    rs->opset = 13;
    rs->in[0] = w2;
    rs->in[1] = hone_pass_new_ints(r->pc->ctx, c, (int64_t[]){1, 2, 3}, 3, "pkkd_axes");
    rs->out[0] = hone_graph_new_value(c, hone_arena_printf(c->arena, "%s_pkkd_fn_out", b));
    hone_node *tr = hone_graph_add_node(c, "Transpose", "", hone_arena_printf(c->arena, "%s_pkkd_fnt", b), 1, 1);
    tr->opset = 13;
    tr->in[0] = rs->out[0];
    tr->out[0] = hone_graph_new_value(c, hone_arena_printf(c->arena, "%s_pkkd_fnt_out", b));
    hone_node_set_attr_ints(c, tr, "perm", (int64_t[]){1, 0, 2, 3}, 4);
    hone_value *two = scalar(c, 2.0f, "pkkd_two");
    hone_value *d2 = op2(c, "Sub", op2(c, "Add", pn, tr->out[0],
                                       hone_arena_printf(c->arena, "%s_pkkd_pf", b)),
                         op2(c, "Mul", xf, two, hone_arena_printf(c->arena, "%s_pkkd_2xf", b)),
                         hone_arena_printf(c->arena, "%s_pkkd_d2", b));
    hone_value *inv = scalar(c, -1.0f, hone_arena_printf(c->arena, "%s_pkkd_inv_c", b));
    hone_value *h = node1(c, "Exp", "", hone_arena_printf(c->arena, "%s_pkkd_h", b), 1,
                          (hone_value *[]){op2(c, "Mul", d2, inv,
                                               hone_arena_printf(c->arena, "%s_pkkd_d2s", b))});
    l->d2 = d2->name;
    l->inv_c = inv->name;
    l->h_feat = h->name;
}

/* Mean |v| of every watched value over one interpreter run. */
typedef struct watch {
    int n;
    const hone_value **v;
    double *mean;
} watch;

static void on_value(void *user, const hone_value *v, const hone_tensor *t)
{
    watch *w = user;
    for (int k = 0; k < w->n; k++)
        if (w->v[k] == v && t->dtype == HONE_DT_FLOAT && t->numel > 0) {
            double s = 0;
            for (int64_t i = 0; i < t->numel; i++)
                s += fabs(((const float *)t->data)[i]);
            w->mean[k] = s / (double)t->numel;
        }
}

/* Sets each matched layer's kernel widths from one calibration batch of c. */
static hone_status calibrate_widths(run *r, hone_graph *c, double sigma, int64_t samples)
{
    hone_ctx *ctx = r->pc->ctx;
    int64_t n = r->d->x->dims[0] < samples ? r->d->x->dims[0] : samples;
    watch w = {0, calloc((size_t)(2 * r->n + 1), sizeof *w.v), calloc((size_t)(2 * r->n + 1), sizeof *w.mean)};
    int64_t *idx = malloc(sizeof *idx * (size_t)(n + 1));
    hone_tensor **outs = calloc((size_t)c->n_outputs + 1, sizeof *outs), *xs = NULL;
    HONE_ASSERT(w.v && w.mean && idx && outs);
    for (int i = 0; i < r->n; i++)
        if (r->l[i].matched) {
            w.v[w.n++] = hone_graph_find(c, r->l[i].y);
            w.v[w.n++] = hone_graph_find(c, r->l[i].d2);
        }
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    hone_status st = hone_data_gather(ctx, r->d->x, idx, n, n, &xs);
    hone_interp_hooks hooks = {on_value, &w};
    if (!st)
        st = hone_interp_run(ctx, c, (const hone_tensor *[]){xs}, outs, &hooks);
    for (int i = 0, k = 0; !st && i < r->n; i++) {
        layer *l = &r->l[i];
        if (!l->matched)
            continue;
        l->mean_y = w.mean[k++];
        l->mean_d2 = w.mean[k++];
        ((float *)hone_graph_find(c, l->inv_a)->data->data)[0] =
            (float)(1.0 / (sigma * (l->mean_y > 1e-12 ? l->mean_y : 1e-12)));
        ((float *)hone_graph_find(c, l->inv_c)->data->data)[0] =
            (float)(-1.0 / (sigma * (l->mean_d2 > 1e-12 ? l->mean_d2 : 1e-12)));
    }
    for (int i = 0; i < c->n_outputs; i++)
        hone_tensor_free(outs[i]);
    hone_tensor_free(xs);
    free(outs);
    free(idx);
    free(w.v);
    free(w.mean);
    return st;
}

/* Whether training reads the teacher: distillation, or no labels and no targets. */
static bool uses_teacher(const run *r)
{
    return r->pkkd || r->logits || (!r->d->labels && !r->d->targets);
}

/* The student + teacher graph the trainer trains (output 0: the student's);
 * the student alone when nothing distils (kd=none with labels or targets). */
static hone_status build_combined(run *r, const hone_graph *g, const hone_graph *t, double sigma,
                                  int64_t samples, hone_graph **out)
{
    hone_graph *c = *out = hone_graph_clone(g);
    r->s_out = c->outputs[0]->name;
    for (int i = 1; i < c->n_outputs; i++)
        c->outputs[i]->flags &= ~HONE_VAL_OUTPUT;
    c->n_outputs = 1;
    if (!uses_teacher(r))
        return HONE_OK;
    hone_value *to = append_teacher(r, c, t);
    r->t_out = to->name;
    hone_graph_add_output(c, to);
    for (int i = 0; r->pkkd && i < r->n; i++)
        if (r->l[i].matched) {
            student_feature(r, c, &r->l[i]);
            teacher_feature(r, c, &r->l[i]);
            hone_graph_add_output(c, hone_graph_find(c, r->l[i].g_feat));
            hone_graph_add_output(c, hone_graph_find(c, r->l[i].h_feat));
        }
    hone_status st = hone_graph_toposort(r->pc->ctx, c);
    if (!st)
        st = hone_graph_infer(r->pc->ctx, c);
    if (!st && r->pkkd && r->n_matched)
        st = calibrate_widths(r, c, sigma, samples);
    return st;
}

/* ===================== training ===================== */

/* Loss terms beyond the main one, on the training program pg. */
static hone_value *extra_terms(void *user, hone_ctx *ctx, hone_graph *pg,
                               const hone_loss_inputs *in)
{
    run *r = user;
    hone_value *terms[2 * 64 + 4], *s = hone_graph_find(pg, r->s_out);
    hone_value *t = hone_graph_find(pg, r->t_out);
    float w[2 * 64 + 4];
    int n = 0;
    if (r->logits || r->pkkd || (!in->labels && !in->teacher)) {
        w[n] = r->kd_w;
        terms[n++] = r->image ? hone_loss_dist(pg, s, t, true) : hone_loss_kd(pg, s, t, 4.0f);
    }
    for (int i = 0; r->pkkd && i < r->n && n < 2 * 64; i++)
        if (r->l[i].matched) {
            w[n] = r->feat_w / (float)r->n_matched;
            terms[n++] = hone_loss_dist(pg, hone_graph_find(pg, r->l[i].g_feat),
                                        hone_graph_find(pg, r->l[i].h_feat), false);
        }
    if (r->cotrain && (in->labels || in->teacher)) {
        w[n] = 1.0f;
        terms[n++] = in->labels ? hone_loss_ce(pg, t, in->labels)
                                : hone_loss_dist(pg, t, in->teacher, true);
    }
    if (n == 0) {
        w[n] = 0.0f;
        terms[n++] = hone_loss_kd(pg, s, t, 4.0f);
    }
    hone_value *v = hone_loss_mix(pg, n, terms, w);
    if (!v)
        hone_fail(ctx, HONE_ERR_ARG, "adder: a distillation term could not be built");
    return v;
}

void hone_adder_scale_grad(float *d, int64_t n, double eta)
{
    double ss = 0;
    for (int64_t j = 0; j < n; j++)
        ss += (double)d[j] * d[j];
    if (!(ss > 0))
        return;
    double f = eta * sqrt((double)n) / sqrt(ss);
    for (int64_t j = 0; j < n; j++)
        d[j] = (float)(d[j] * f);
}

/* AdderNet's adaptive scaling of every adder layer's weight gradient; with
 * teacher=cotrain, the teacher's gradients scaled by teacher-lr (its learning rate as a
 * fraction of lr: the BN-free CNNs diverged within 4 steps at the adders' lr of 0.1). */
static hone_status scale_grads(void *user, hone_trainer *tr, hone_tensor *const *grads,
                               const hone_fit_step_info *info)
{
    (void)info;
    run *r = user;
    int np = hone_trainer_n_params(tr);
    if (!r->grad_scale) {
        r->grad_scale = calloc((size_t)np + 1, sizeof *r->grad_scale);
        HONE_ASSERT(r->grad_scale);
        for (int i = 0; i < np; i++) {
            const char *name = hone_trainer_param_name(tr, i);
            r->grad_scale[i] = 1.0f;
            for (int k = 0; k < r->n; k++)
                if (!strcmp(name, r->l[k].w))
                    r->grad_scale[i] = -1.0f;
            if (r->cotrain && !strncmp(name, TPREFIX, strlen(TPREFIX)))
                r->grad_scale[i] = r->teacher_lr;
        }
    }
    for (int i = 0; i < np; i++) {
        if (!grads[i] || r->grad_scale[i] == 1.0f)
            continue;
        if (r->grad_scale[i] < 0)
            hone_adder_scale_grad(grads[i]->data, grads[i]->numel, r->eta);
        else
            for (int64_t j = 0; j < grads[i]->numel; j++)
                ((float *)grads[i]->data)[j] *= r->grad_scale[i];
    }
    return HONE_OK;
}

/* Progress line every 50 steps. */
static void on_step(void *user, const hone_fit_step_info *in)
{
    run *r = user;
    if ((in->step + 1) % 50 == 0 || in->step + 1 == in->steps)
        hone_pass_log(r->pc, "step %lld/%lld loss %.4f lr %.4g (%.0f s)", (long long)in->step + 1,
                      (long long)in->steps, in->loss, in->lr, in->elapsed_s);
}

static void fit_spec(run *r, hone_fit_spec *f, const hone_graph *teacher)
{
    const hone_pass_ctx *pc = r->pc;
    hone_fit_spec_init(f);
    f->max_steps = hone_pass_opt_int(pc, "steps");
    f->batch = hone_pass_opt_int(pc, "batch");
    f->lr = hone_pass_opt_float(pc, "lr");
    f->optim.weight_decay = 1e-4;
    f->seed = (uint64_t)hone_pass_opt_int(pc, "seed");
    f->val_split = r->d->val_split;
    f->teacher = teacher;
    f->train.loss = r->d->labels ? HONE_LOSS_CE : r->d->targets ? HONE_LOSS_L1 : HONE_LOSS_NONE;
    f->train.frozen = r->frozen;
    f->train.n_frozen = r->n_frozen;
    f->train.trainable = r->trainable;
    f->train.n_trainable = r->n_trainable;
    f->train.extra_loss = uses_teacher(r) ? extra_terms : NULL;
    f->train.extra_user = r;
    f->before_update = scale_grads;
    f->on_step = on_step;
    f->user = r;
}

/* Copies every constant of g from the trained combined graph c (same names). */
static void take_trained(hone_graph *g, const hone_graph *c)
{
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i], *u;
        if (v->data && (u = hone_graph_find(c, v->name)) && u->data &&
            u->data->numel == v->data->numel && u->data->dtype == v->data->dtype)
            memcpy(v->data->data, u->data->data, hone_tensor_nbytes(v->data));
    }
}

/* ===================== the pass ===================== */

static hone_status parse_kd(run *r)
{
    const char *kd = hone_pass_opt_str(r->pc, "kd"), *t = hone_pass_opt_str(r->pc, "teacher");
    r->pkkd = !strcmp(kd, "pkkd");
    r->logits = !strcmp(kd, "logits");
    r->cotrain = !strcmp(t, "cotrain");
    if (!r->pkkd && !r->logits && strcmp(kd, "none"))
        return hone_fail(r->pc->ctx, HONE_ERR_ARG, "adder: kd=%s is not pkkd, logits or none", kd);
    if (!r->cotrain && strcmp(t, "frozen"))
        return hone_fail(r->pc->ctx, HONE_ERR_ARG, "adder: teacher=%s is not frozen or cotrain", t);
    r->kd_w = (float)hone_pass_opt_float(r->pc, "kd-weight");
    r->feat_w = (float)hone_pass_opt_float(r->pc, "feat-weight");
    r->eta = (float)hone_pass_opt_float(r->pc, "eta");
    r->teacher_lr = (float)hone_pass_opt_float(r->pc, "teacher-lr");
    r->image = !r->d->labels && r->d->targets;  /* label-free: set from the output rank */
    if (hone_pass_opt_int(r->pc, "steps") < 0 || hone_pass_opt_int(r->pc, "batch") < 1 ||
        !(hone_pass_opt_float(r->pc, "sigma") > 0) || !(r->teacher_lr > 0))
        return hone_fail(r->pc->ctx, HONE_ERR_ARG,
                         "adder: steps >= 0, batch >= 1, sigma > 0, teacher-lr > 0");
    return HONE_OK;
}

/* JSON number, or null for NaN. */
static const char *num(double v, char *buf, size_t n)
{
    if (isnan(v))
        return "null";
    snprintf(buf, n, "%.6g", v);
    return buf;
}

/* The pass's --report detail: metrics, then one entry per converted layer. */
static void report(run *r, const char *metric, const double *m, const hone_fit_result *res)
{
    size_t cap = 256 + (size_t)r->n * 200, len = 0;
    char *s = malloc(cap), b[3][32];
    HONE_ASSERT(s);
    len += (size_t)snprintf(s, cap, "{\"metric\":\"%s\",\"cnn\":%s,\"converted\":%s,"
                            "\"trained\":%s,\"steps\":%lld,\"train_s\":%.3f,\"layers\":[",
                            metric, num(m[0], b[0], 32), num(m[1], b[1], 32), num(m[2], b[2], 32),
                            (long long)res->steps, res->train_s);
    for (int i = 0; i < r->n && len < cap; i++) {
        const layer *l = &r->l[i];
        len += (size_t)snprintf(s + len, cap - len, "%s{\"layer\":\"%s\",\"pkkd\":%s,"
                                "\"mean_abs_y\":%.6g,\"mean_d2\":%.6g}", i ? "," : "", l->name,
                                l->matched && r->pkkd ? "true" : "false", l->mean_y, l->mean_d2);
    }
    if (len < cap)
        snprintf(s + len, cap - len, "]}");
    hone_pass_detail(r->pc, "%s", s);
    free(s);
}

/* Converts, calibrates and trains; g becomes the adder network. */
static hone_status convert_and_train(run *r, hone_graph *g, const hone_graph *teacher)
{
    hone_pass_ctx *pc = r->pc;
    hone_ctx *ctx = pc->ctx;
    int64_t samples = hone_pass_opt_int(pc, "samples");
    int bn = 0, n_short = 0;
    hone_status st = hone_unfold_bn(ctx, g, r->d->x, samples, 1e-5, listed_layer, r, &bn);
    if (!st)
        st = convert(r, g, hone_pass_opt_bool(pc, "power"), hone_pass_opt_bool(pc, "shortcut"),
                     &n_short);
    if (!st)
        st = recalibrate(ctx, g, r->d->x, samples);
    if (st)
        return st;
    choose_matched(r, hone_pass_opt_str(pc, "layers"));
    hone_pass_note(pc, "convs to Adder2d", r->n);
    hone_pass_note(pc, "BN inserted", bn);
    hone_pass_note(pc, "shortcuts", n_short);
    hone_pass_note(pc, "PKKD layers", r->pkkd ? r->n_matched : 0);
    hone_fit_spec f;
    fit_spec(r, &f, teacher);
    hone_fit_metric kind;
    double m_cnn = NAN, m_conv = NAN, m_after = NAN;
    st = hone_fit_evaluate(ctx, teacher, &(hone_fit_data){r->d->x, r->d->labels, r->d->targets},
                           &f, &kind, &m_cnn);
    if (!st)
        st = hone_fit_evaluate(ctx, g, &(hone_fit_data){r->d->x, r->d->labels, r->d->targets}, &f,
                               &kind, &m_conv);
    hone_graph *c = NULL;
    if (!st)
        st = build_combined(r, g, teacher, hone_pass_opt_float(pc, "sigma"), samples, &c);
    f.train.n_frozen = r->n_frozen;
    f.train.n_trainable = r->n_trainable;
    hone_fit_result res = {0};
    if (!st && f.max_steps > 0)
        st = hone_fit(ctx, c, &(hone_fit_data){r->d->x, r->d->labels, r->d->targets}, &f, &res);
    if (!st)
        take_trained(g, c);
    hone_graph_free(c);
    if (!st)
        st = hone_fit_evaluate(ctx, g, &(hone_fit_data){r->d->x, r->d->labels, r->d->targets}, &f,
                               &kind, &m_after);
    if (st)
        return st;
    hone_pass_log(pc, "held-out %s: CNN %.4f, converted %.4f, trained %.4f (%lld steps, %.0f s)",
                  hone_fit_metric_name(kind), m_cnn, m_conv, m_after, (long long)res.steps,
                  res.train_s);
    report(r, hone_fit_metric_name(kind), (double[]){m_cnn, m_conv, m_after}, &res);
    return HONE_OK;
}

hone_status hone_pass_adder(hone_pass_ctx *pc, hone_graph *g)
{
    const hone_pass_data *d;
    run r = {.pc = pc};
    hone_status st = hone_pass_need_data(pc, "training samples", &d);
    r.d = d;
    if (!st)
        st = parse_kd(&r);
    if (!st)
        st = hone_graph_toposort(pc->ctx, g);
    if (st)
        return st;
    hone_graph *teacher = hone_graph_clone(g);
    r.image = r.image || (!d->labels && g->n_outputs && g->outputs[0]->rank > 2);
    choose_layers(&r, g);
    size_t cap = (size_t)(2 * g->n_values + teacher->n_values + 8 * r.n + 8);
    r.frozen = calloc(cap, sizeof *r.frozen);
    r.trainable = calloc(cap, sizeof *r.trainable);
    HONE_ASSERT(r.frozen && r.trainable);
    if (r.n)
        st = convert_and_train(&r, g, teacher);
    else
        hone_pass_log(pc, "no convertible Conv (stem and last layer stay multiplicative)");
    hone_graph_free(teacher);
    free(r.l);
    free(r.frozen);
    free(r.trainable);
    free(r.grad_scale);
    return st;
}
