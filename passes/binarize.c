/*
 * binarize: 1-bit weights (W1) or 1-bit weights and activations (W1A1) by
 * learning the binarization with noisy supervision (Han et al., ICML 2020,
 * arXiv 2010.04871; ../shared/METHODS.md section 2), or by the naive
 * straight-through sign (method=ste, the ablation).
 *
 * Chosen convs (3x3 and larger, group 1, constant weights; the first conv,
 * 1x1 downsample convs and the final Gemm stay fp32 unless asked) are
 * binarized in three phases:
 *
 * 1. Training form, built into the graph so that the training engine
 *    differentiates it like any node. BN is first re-introduced after each
 *    chosen conv (hone_unfold_bn: the shared models were exported with BN
 *    folded, and binary convs train much better with batch statistics).
 *    Per layer, with W [M,C,kh,kw] the latent fp32 weights:
 *        Wn = W / max|W|                          (unit range: STE does not clip at start)
 *        lns: Q = Wn + gain * g(Wn), g = conv3x3 C->2C, BN, ReLU, conv3x3 2C->2C,
 *             BN, ReLU, conv3x3 2C->C (padding 1), each output filter a C-channel
 *             kh x kw image and the batch the M filters; gain = map-gain (0.1)
 *        ste: Q = Wn
 *        B  = hone.SignSTE(Q)  (+-1; gradient straight through where |Q| <= 1)
 *        alpha = ReduceMean(|W|) per output channel (scale=channel), or a
 *                trained [M,1,1,1] constant started there (scale=learned)
 *        Y  = Conv(a(X), B * alpha), a(X) = X (acts=fp) or
 *             hone.SignSTE(X - T) with a trained per-channel threshold T
 *             started at the channel mean of X on the calibration samples
 *             (acts=sign: the inputs are post-ReLU, so sign(X) alone would be
 *             constant +1)
 *    lns adds lambda/L * sum over layers of hone.NoisyLabelLoss(Q, W) (the
 *    unbiased squared-loss estimator for symmetric label noise rho, with
 *    sign(W) the noisy label) to the task loss (train.h extra_loss_value).
 *    Choices (the paper's code is not public): g's last conv starts at zero
 *    so Q = Wn and B = sign(W) at step 0 (lns starts exactly where ste
 *    starts); its other convs are Kaiming-normal from `seed`, its BNs start
 *    at scale 1, bias 0; lambda = 0.05 by default, a guess that was not
 *    tuned (a sweep did not fit the shared machine's budget). At step 0,
 *    with |q| about 0.2, the estimator is q^2 - 2|q|/(1-2rho) + 1 = 0.6 per
 *    element, so the term is 0.03 against a task loss of about 1.7: it
 *    steers Q towards sign(W) without pinning it (where |Q| > 1 the STE
 *    passes no task gradient, so a large lambda would freeze the weights).
 *    Q starts inside [-1, 1] because Wn is scaled by max|W|.
 *    rho = 0.05 (METHODS: 0.05-0.1 helps, >= 0.2 hurts). gain: with Adam every
 *    weight of g's last conv moves by about lr per step whatever its gradient,
 *    and each of Q's entries sums 2C*9 of them (1152 at C = 64), so at gain 1 g
 *    moves Q about a thousand times faster than the weights' own steps move
 *    Wn: within a few steps it flips signs wholesale (15-27% of them by the end
 *    of a run) and lns trails ste. gain 0.1 slows it down; in a 500-step W1A1
 *    trial (seed 1, test top-1) ste 81.70%, lns at gain 1 79.56%, 0.1 82.92%,
 *    0.01 82.61%. One Adam optimiser
 *    (lr, cosine to 0) trains everything: latent weights, g, thresholds, the
 *    fp32 layers and BN.
 * 2. Training: hone_fit for `steps` batches; label-free distillation (KD at
 *    T=4) from a clone of the input model without labels, CE + KD with them;
 *    held-out split for the before/after metric.
 * 3. Deployed form: each layer becomes hone.BinaryConv(X, bits(sign Q),
 *    alpha', B', [T]) with the BN after it folded into alpha' and B'; the
 *    mapping nets, the loss terms and the latent weights are dead and
 *    removed. hone opt --portable rewrites BinaryConv back to standard ONNX.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "interp.h"
#include "loop.h"
#include "passes.h"
#include "hone_rt.h"

#define OPSET 13

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct layer {
    hone_node *conv;        /* the Conv being binarized */
    hone_value *x;          /* its input */
    hone_value *w;          /* latent weights (constant, trained) */
    hone_node *bn;          /* BN after it, or NULL */
    hone_value *q;          /* Q (training) */
    hone_value *alpha;      /* alpha [M,1,1,1] (computed or constant) */
    hone_value *thresh;     /* T [1,C,1,1] (acts=sign) or NULL */
    hone_value *reg;        /* NoisyLabelLoss of the layer (lns) */
    int64_t m, c, kh, kw;
    int flips;              /* bits of sign(Q) that differ from sign(W) at the start */
} layer;

typedef struct bz {
    hone_pass_ctx *pc;
    hone_ctx *ctx;
    hone_graph *g;
    bool lns, sign_acts, learned_scale;
    float map_gain;         /* Q = Wn + map_gain * g(Wn) */
    uint64_t rng;
    layer *ls;
    int n;
    const char **trainable;
    int n_trainable;
} bz;

/* ===================== small builders ===================== */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A standard normal draw (Box-Muller). */
static double normal(uint64_t *s)
{
    double u = ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(next_u64(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A new float constant of the given shape filled with x. */
static hone_value *fconst(bz *b, int rank, const int64_t *dims, float x, const char *hint)
{
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(b->ctx, HONE_DT_FLOAT, rank, dims, &t));
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = x;
    return hone_pass_new_const(b->g, t, hint);
}

/* Appends dom.op(in...) with one output named after hint; returns the node. */
static hone_node *add(bz *b, const char *dom, const char *op, int n_in, hone_value *const *in,
                      const char *hint)
{
    hone_graph *g = b->g;
    hone_node *n = hone_graph_add_node(g, op, dom, hone_arena_printf(g->arena, "%s/%s", hint, op),
                                       n_in, 1);
    n->opset = *dom ? 1 : OPSET;
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s/%s_out", hint, op));
    return n;
}

#define OP(b, op, hint, ...)                                                                   \
    add(b, "", op, sizeof((hone_value *[]){__VA_ARGS__}) / sizeof(hone_value *),              \
        (hone_value *[]){__VA_ARGS__}, hint)                                                    \
        ->out[0]

/* ===================== choosing layers ===================== */

/* Whether n is a conv the pass binarizes under the options. */
static bool chosen(const hone_pass_ctx *pc, const hone_graph *g, const hone_node *n)
{
    if (!hone_pass_is_op(n, "Conv") || n->n_in < 2 || !hone_pass_is_const(n->in[1]))
        return false;
    const hone_tensor *w = n->in[1]->data;
    if (w->dtype != HONE_DT_FLOAT || w->rank != 4 || hone_attr_int(n, "group", 1) != 1)
        return false;
    if (n->n_in > 2 && n->in[2] && !hone_pass_is_const(n->in[2]))
        return false;
    bool first = g->n_inputs && n->in[0] == g->inputs[0];
    bool pointwise = w->dims[2] == 1 && w->dims[3] == 1;
    return (!first || hone_pass_opt_bool(pc, "first")) &&
           (!pointwise || hone_pass_opt_bool(pc, "downsample"));
}

static bool select_conv(const hone_node *n, void *user)
{
    bz *b = user;
    return chosen(b->pc, b->g, n);
}

/* The BatchNormalization reading v (its only reader), or NULL. */
static hone_node *bn_after(hone_graph *g, hone_value *v)
{
    hone_node *u = hone_pass_single_user(g, v);
    return u && hone_pass_is_op(u, "BatchNormalization") && u->in[0] == v &&
                   hone_pass_is_const(u->in[1]) && hone_pass_is_const(u->in[2]) &&
                   hone_pass_is_const(u->in[3]) && hone_pass_is_const(u->in[4])
               ? u
               : NULL;
}

static void find_layers(bz *b)
{
    hone_graph *g = b->g;
    b->ls = calloc((size_t)g->n_nodes + 1, sizeof *b->ls);
    HONE_ASSERT(b->ls);
    hone_graph_update_uses(g);
    for (int i = 0; i < g->n_nodes; i++) {
        hone_node *n = g->nodes[i];
        if (!chosen(b->pc, g, n))
            continue;
        layer *l = &b->ls[b->n++];
        const hone_tensor *w = n->in[1]->data;
        *l = (layer){.conv = n, .x = n->in[0], .w = n->in[1], .bn = bn_after(g, n->out[0]),
                     .m = w->dims[0], .c = w->dims[1], .kh = w->dims[2], .kw = w->dims[3]};
    }
}

/* ===================== thresholds (acts=sign) ===================== */

typedef struct mean_acc {
    bz *b;
    double **sum;
    int64_t *count;
} mean_acc;

static void on_value(void *user, const hone_value *v, const hone_tensor *t)
{
    mean_acc *a = user;
    for (int k = 0; k < a->b->n; k++) {
        if (a->b->ls[k].x != v || t->dtype != HONE_DT_FLOAT || t->rank != 4)
            continue;
        int64_t n = t->dims[0], c = t->dims[1], inner = t->dims[2] * t->dims[3];
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                for (int64_t e = 0; e < inner; e++)
                    a->sum[k][j] += p[(i * c + j) * inner + e];
        a->count[k] += n * inner;
    }
}

/* Runs the graph on rows [pos, pos + k) of x (k <= 64) with hooks; outputs dropped. */
static hone_status run_rows(bz *b, const hone_tensor *x, int64_t pos, int64_t k,
                            const hone_interp_hooks *hooks)
{
    int64_t idx[64];
    for (int64_t i = 0; i < k; i++)
        idx[i] = pos + i;
    hone_tensor *xb = NULL, *outs[16] = {0};
    hone_status st = hone_data_gather(b->ctx, x, idx, k, k, &xb);
    const hone_tensor *ins[1] = {xb};
    if (!st && b->g->n_outputs > 16)
        st = hone_fail(b->ctx, HONE_ERR_UNSUPPORTED, "binarize: the model has over 16 outputs");
    if (!st)
        st = hone_interp_run(b->ctx, b->g, ins, outs, hooks);
    for (int i = 0; i < 16; i++)
        hone_tensor_free(outs[i]);
    hone_tensor_free(xb);
    return st;
}

/* Channel means of every layer's input over the first `samples` rows of x. */
static hone_status input_means(bz *b, const hone_tensor *x, int64_t samples, mean_acc *a)
{
    a->b = b;
    a->sum = calloc((size_t)b->n + 1, sizeof *a->sum);
    a->count = calloc((size_t)b->n + 1, sizeof *a->count);
    HONE_ASSERT(a->sum && a->count);
    for (int k = 0; k < b->n; k++)
        HONE_ASSERT((a->sum[k] = calloc((size_t)b->ls[k].c, sizeof **a->sum)));
    int64_t total = x->dims[0] < samples ? x->dims[0] : samples;
    hone_interp_hooks hooks = {on_value, a};
    hone_status st = HONE_OK;
    for (int64_t pos = 0; pos < total && !st; pos += 64)
        st = run_rows(b, x, pos, total - pos < 64 ? total - pos : 64, &hooks);
    return st;
}

static void means_free(mean_acc *a, int n)
{
    for (int k = 0; k < n && a->sum; k++)
        free(a->sum[k]);
    free(a->sum);
    free(a->count);
}

/* ===================== the training form ===================== */

static void train_name(bz *b, const hone_value *v)
{
    b->trainable[b->n_trainable++] = v->name;
}

/* A Kaiming-normal (fan_in) conv weight [o, i, 3, 3], or zeros when zero. */
static hone_value *conv_weight(bz *b, int64_t o, int64_t i, bool zero, const char *hint)
{
    int64_t d[4] = {o, i, 3, 3};
    hone_value *v = fconst(b, 4, d, 0.0f, hint);
    float *p = v->data->data;
    double sd = sqrt(2.0 / (double)(i * 9));
    for (int64_t e = 0; !zero && e < v->data->numel; e++)
        p[e] = (float)(sd * normal(&b->rng));
    return v;
}

/* conv3x3 (padding 1) of x by a new weight [o, i, 3, 3]. */
static hone_value *map_conv(bz *b, hone_value *x, int64_t o, int64_t i, bool zero,
                            const char *hint)
{
    static const int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    hone_value *w = conv_weight(b, o, i, zero, hone_arena_printf(b->g->arena, "%s/w", hint));
    hone_node *n = add(b, "", "Conv", 2, (hone_value *[]){x, w}, hint);
    hone_node_set_attr_ints(b->g, n, "kernel_shape", k, 2);
    hone_node_set_attr_ints(b->g, n, "pads", pads, 4);
    return n->out[0];
}

/* BN (scale 1, bias 0, running mean 0, var 1) then ReLU over c channels. */
static hone_value *map_bn_relu(bz *b, hone_value *x, int64_t c, const char *hint)
{
    hone_value *in[5] = {x, fconst(b, 1, &c, 1.0f, hint), fconst(b, 1, &c, 0.0f, hint),
                         fconst(b, 1, &c, 0.0f, hint), fconst(b, 1, &c, 1.0f, hint)};
    hone_value *y = add(b, "", "BatchNormalization", 5, in, hint)->out[0];
    return OP(b, "Relu", hint, y);
}

/* Q = Wn + g(Wn): the mapping net of METHODS.md, last conv zero. */
static hone_value *mapping_net(bz *b, layer *l, hone_value *wn, const char *hint)
{
    hone_arena *ar = b->g->arena;
    int64_t c = l->c;
    hone_value *h = map_conv(b, wn, 2 * c, c, false, hone_arena_printf(ar, "%s/map1", hint));
    h = map_bn_relu(b, h, 2 * c, hone_arena_printf(ar, "%s/map1bn", hint));
    h = map_conv(b, h, 2 * c, 2 * c, false, hone_arena_printf(ar, "%s/map2", hint));
    h = map_bn_relu(b, h, 2 * c, hone_arena_printf(ar, "%s/map2bn", hint));
    h = map_conv(b, h, c, 2 * c, true, hone_arena_printf(ar, "%s/map3", hint));
    if (b->map_gain != 1.0f)
        h = OP(b, "Mul", hint, h, fconst(b, 0, NULL, b->map_gain, hone_arena_printf(ar, "%s/gain", hint)));
    return OP(b, "Add", hint, wn, h);
}

/* alpha [M,1,1,1]: per-output-channel mean |W| (computed, or a trained constant). */
static hone_value *scale_of(bz *b, layer *l, const char *hint)
{
    const float *w = l->w->data->data;
    int64_t k = l->c * l->kh * l->kw, d[4] = {l->m, 1, 1, 1};
    if (b->learned_scale) {
        hone_value *a = fconst(b, 4, d, 0.0f, hone_arena_printf(b->g->arena, "%s/alpha", hint));
        for (int64_t o = 0; o < l->m; o++) {
            double s = 0;
            for (int64_t j = 0; j < k; j++)
                s += fabs(w[o * k + j]);
            ((float *)a->data->data)[o] = (float)(s / (double)k);
        }
        train_name(b, a);
        return a;
    }
    static const int64_t axes[3] = {1, 2, 3};
    hone_node *r = add(b, "", "ReduceMean", 1, (hone_value *[]){OP(b, "Abs", hint, l->w)}, hint);
    hone_node_set_attr_ints(b->g, r, "axes", axes, 3);
    hone_node_set_attr_int(b->g, r, "keepdims", 1);
    return r->out[0];
}

/* max |W| of a layer (1 when all zero). */
static float max_abs(const hone_tensor *w)
{
    float m = 0;
    for (int64_t i = 0; i < w->numel; i++)
        m = fmaxf(m, fabsf(((const float *)w->data)[i]));
    return m > 0 ? m : 1.0f;
}

/* Rewires layer l to its training form (see the header). */
static void build_layer(bz *b, layer *l, const double *mean, float rho)
{
    hone_arena *ar = b->g->arena;
    const char *hint = hone_arena_printf(ar, "%s/bin", l->conv->name ? l->conv->name : "conv");
    hone_value *s = fconst(b, 0, NULL, 1.0f / max_abs(l->w->data), hint);
    hone_value *wn = OP(b, "Mul", hint, l->w, s);
    l->q = b->lns ? mapping_net(b, l, wn, hint) : wn;
    if (b->lns) {
        hone_node *r = hone_graph_add_node(b->g, "NoisyLabelLoss", "hone",
                                           hone_arena_printf(ar, "%s/NoisyLabelLoss", hint), 2, 2);
        r->opset = 1;
        r->in[0] = l->q;
        r->in[1] = l->w;
        r->out[0] = hone_graph_new_value(b->g, hone_arena_printf(ar, "%s/reg", hint));
        r->out[1] = hone_graph_new_value(b->g, hone_arena_printf(ar, "%s/dreg", hint));
        hone_node_set_attr_float(b->g, r, "rho", rho);
        l->reg = r->out[0];
    }
    train_name(b, l->w);
    l->alpha = scale_of(b, l, hint);
    hone_value *weff = OP(b, "Mul", hint, add(b, "hone", "SignSTE", 1, &l->q, hint)->out[0],
                          l->alpha);
    hone_value *x = l->x;
    if (b->sign_acts) {
        int64_t d[4] = {1, l->c, 1, 1};
        l->thresh = fconst(b, 4, d, 0.0f, hone_arena_printf(ar, "%s/thresh", hint));
        for (int64_t j = 0; j < l->c; j++)
            ((float *)l->thresh->data->data)[j] = (float)mean[j];
        train_name(b, l->thresh);
        x = add(b, "hone", "SignSTE", 1, (hone_value *[]){OP(b, "Sub", hint, x, l->thresh)},
                hint)->out[0];
    }
    l->conv->in[0] = x;
    l->conv->in[1] = weff;
}

/* lambda / L * sum of the layers' noisy-label terms, as one scalar value. */
static hone_value *build_reg(bz *b, float lambda)
{
    hone_value *sum = NULL;
    for (int k = 0; k < b->n; k++)
        sum = sum ? OP(b, "Add", "binarize", sum, b->ls[k].reg) : b->ls[k].reg;
    if (!sum)
        return NULL;
    return OP(b, "Mul", "binarize/reg", sum, fconst(b, 0, NULL, lambda / (float)b->n, "lambda"));
}

static hone_status build_training_form(bz *b, const hone_tensor *x, const char **reg_name)
{
    const hone_pass_ctx *pc = b->pc;
    mean_acc a = {0};
    hone_status st = b->sign_acts ? input_means(b, x, hone_pass_opt_int(pc, "samples"), &a)
                                  : HONE_OK;
    for (int k = 0; k < b->n && !st; k++) {
        double *mean = NULL;
        if (b->sign_acts) {
            mean = a.sum[k];
            for (int64_t j = 0; j < b->ls[k].c; j++)
                mean[j] /= (double)(a.count[k] ? a.count[k] : 1);
        }
        build_layer(b, &b->ls[k], mean, (float)hone_pass_opt_float(pc, "rho"));
    }
    means_free(&a, b->n);
    hone_value *reg = !st && b->lns ? build_reg(b, (float)hone_pass_opt_float(pc, "lambda")) : NULL;
    *reg_name = reg ? reg->name : NULL;
    hone_pass_add_opset(b->g, "hone", 1);
    hone_graph_update_uses(b->g);
    return st ? st : hone_graph_toposort(b->ctx, b->g);
}

/* ===================== training ===================== */

static void on_step(void *user, const hone_fit_step_info *info)
{
    bz *b = user;
    if (info->step % 50 == 0 || info->step + 1 == info->steps)
        hone_pass_log(b->pc, "step %lld/%lld loss %.4f lr %.2e (%.0f s)", (long long)info->step,
                      (long long)info->steps, info->loss, info->lr, info->elapsed_s);
}

static void fit_spec(bz *b, const hone_pass_data *d, const hone_graph *teacher,
                     const char *reg, hone_fit_spec *f)
{
    const hone_pass_ctx *pc = b->pc;
    hone_fit_spec_init(f);
    hone_optim_spec_init(&f->optim, HONE_OPTIM_ADAM);
    f->schedule = HONE_SCHED_COSINE;
    f->lr = hone_pass_opt_float(pc, "lr");
    f->min_lr = 0;
    f->batch = hone_pass_opt_int(pc, "batch");
    f->max_steps = hone_pass_opt_int(pc, "steps");
    f->seed = (uint64_t)hone_pass_opt_int(pc, "seed");
    f->val_split = d->val_split;
    f->teacher = teacher;
    f->train.loss = d->labels ? HONE_LOSS_CE_KD : HONE_LOSS_KD;
    f->train.trainable = b->trainable;
    f->train.n_trainable = b->n_trainable;
    f->train.extra_loss_value = reg;
    f->on_step = on_step;
    f->user = b;
}

/* ===================== the deployed form ===================== */

typedef struct grab {
    bz *b;
    hone_tensor **q, **alpha;
} grab;

static void on_grab(void *user, const hone_value *v, const hone_tensor *t)
{
    grab *gr = user;
    for (int k = 0; k < gr->b->n; k++) {
        layer *l = &gr->b->ls[k];
        if (v == l->q && !gr->q[k])
            HONE_ASSERT((gr->q[k] = hone_tensor_clone(t)));
        if (v == l->alpha && !gr->alpha[k])
            HONE_ASSERT((gr->alpha[k] = hone_tensor_clone(t)));
    }
}

/* Q and alpha of every layer as the trained graph computes them (inference form). */
static hone_status grab_q(bz *b, const hone_tensor *x, grab *gr)
{
    gr->b = b;
    gr->q = calloc((size_t)b->n + 1, sizeof *gr->q);
    gr->alpha = calloc((size_t)b->n + 1, sizeof *gr->alpha);
    HONE_ASSERT(gr->q && gr->alpha);
    for (int k = 0; k < b->n; k++)
        if (b->ls[k].alpha->data)
            HONE_ASSERT((gr->alpha[k] = hone_tensor_clone(b->ls[k].alpha->data)));
    hone_interp_hooks hooks = {on_grab, gr};
    hone_status st = run_rows(b, x, 0, 1, &hooks);
    for (int k = 0; k < b->n && !st; k++)
        if (!gr->q[k] || !gr->alpha[k])
            st = hone_fail(b->ctx, HONE_ERR_INTERNAL, "binarize: layer %d's Q was not computed", k);
    return st;
}

static void grab_free(grab *gr, int n)
{
    for (int k = 0; k < n && gr->q; k++) {
        hone_tensor_free(gr->q[k]);
        hone_tensor_free(gr->alpha[k]);
    }
    free(gr->q);
    free(gr->alpha);
}

/* New float vector constant of n values. */
static hone_value *fvec(bz *b, int64_t n, const double *v, const char *hint)
{
    hone_value *c = fconst(b, 1, &n, 0.0f, hint);
    for (int64_t i = 0; i < n; i++)
        ((float *)c->data->data)[i] = (float)v[i];
    return c;
}

/* alpha' and B' of layer l: its scale times the BN after it (when any), folded. */
static void fold_scale(const layer *l, const hone_tensor *alpha, double *a, double *bias)
{
    const hone_node *c = l->conv;
    const hone_tensor *b0 = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
    for (int64_t o = 0; o < l->m; o++) {
        a[o] = ((const float *)alpha->data)[o];
        bias[o] = b0 ? hone_tensor_get_f64(b0, o) : 0;
        if (!l->bn)
            continue;
        double eps = hone_attr_float(l->bn, "epsilon", 1e-5f);
        double gm = hone_tensor_get_f64(l->bn->in[1]->data, o);
        double bt = hone_tensor_get_f64(l->bn->in[2]->data, o);
        double mu = hone_tensor_get_f64(l->bn->in[3]->data, o);
        double sd = sqrt(hone_tensor_get_f64(l->bn->in[4]->data, o) + eps);
        a[o] *= gm / sd;
        bias[o] = gm * (bias[o] - mu) / sd + bt;
    }
}

/* Replaces layer l's conv (and BN) by hone.BinaryConv from the trained Q. */
static void deploy_layer(bz *b, layer *l, const hone_tensor *q, const hone_tensor *alpha)
{
    hone_graph *g = b->g;
    const char *name = l->conv->name ? l->conv->name : "conv";
    int64_t k = l->c * l->kh * l->kw, shape[2] = {l->m, (int64_t)hone_rt_binconv_row_bytes(k)};
    hone_tensor *bits;
    HONE_ASSERT(!hone_tensor_new(b->ctx, HONE_DT_UINT8, 2, shape, &bits));
    hone_rt_binconv_pack_signs(q->data, l->m, k, bits->data);
    double *a = malloc(sizeof *a * (size_t)l->m), *bias = malloc(sizeof *bias * (size_t)l->m);
    HONE_ASSERT(a && bias);
    fold_scale(l, alpha, a, bias);
    int n_in = l->thresh ? 5 : 4;
    hone_node *n = hone_graph_add_node(g, "BinaryConv", "hone",
                                       hone_arena_printf(g->arena, "%s_binary", name), n_in, 1);
    n->opset = 1;
    n->in[0] = l->x;
    n->in[1] = hone_pass_new_const(g, bits, hone_arena_printf(g->arena, "%s_wbits", name));
    n->in[2] = fvec(b, l->m, a, hone_arena_printf(g->arena, "%s_alpha", name));
    n->in[3] = fvec(b, l->m, bias, hone_arena_printf(g->arena, "%s_bias", name));
    if (l->thresh) {
        hone_value *t = l->thresh;
        int64_t c = l->c;
        hone_tensor *tv;
        HONE_ASSERT(!hone_tensor_new(b->ctx, HONE_DT_FLOAT, 1, &c, &tv));
        memcpy(tv->data, t->data->data, sizeof(float) * (size_t)c);
        n->in[4] = hone_pass_new_const(g, tv, hone_arena_printf(g->arena, "%s_thresh", name));
    }
    static const char *const attrs[] = {"kernel_shape", "strides", "pads", "dilations", "auto_pad"};
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        const hone_attr *at = hone_attr_find(l->conv, attrs[i]);
        if (at && at->kind == HONE_ATTR_INTS)
            hone_node_set_attr_ints(g, n, attrs[i], at->ints, at->n);
        else if (at && at->kind == HONE_ATTR_STRING)
            hone_node_set_attr_string(g, n, attrs[i], at->s);
    }
    int64_t ks[2] = {l->kh, l->kw};
    hone_node_set_attr_ints(g, n, "kernel_shape", ks, 2);
    hone_node_set_attr_int(g, n, "binary_input", b->sign_acts);
    hone_node *last = l->bn ? l->bn : l->conv;
    n->out[0] = last->out[0];
    last->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_dead", name));
    free(a);
    free(bias);
}

/* Bits of sign(q) that differ from sign(w). */
static int count_flips(const hone_tensor *q, const hone_tensor *w)
{
    int f = 0;
    for (int64_t i = 0; i < q->numel; i++)
        f += (((const float *)q->data)[i] >= 0) != (((const float *)w->data)[i] >= 0);
    return f;
}

static hone_status deploy(bz *b, const hone_tensor *x)
{
    grab gr = {0};
    hone_status st = grab_q(b, x, &gr);
    hone_pass_detail(b->pc, ",\"layers\":[");
    int64_t fp = 0, packed = 0;
    for (int k = 0; k < b->n && !st; k++) {
        layer *l = &b->ls[k];
        int64_t kk = l->c * l->kh * l->kw;
        int64_t bytes = l->m * (int64_t)hone_rt_binconv_row_bytes(kk) + 4 * l->m;
        l->flips = count_flips(gr.q[k], l->w->data);
        hone_pass_detail(b->pc, "%s{\"conv\":", k ? "," : "");
        hone_pass_detail(b->pc, "\"%s\",\"shape\":[%lld,%lld,%lld,%lld],\"fp32_bytes\":%lld,"
                         "\"binary_bytes\":%lld,\"bits_unlike_sign_w\":%d}",
                         l->conv->name ? l->conv->name : "", (long long)l->m, (long long)l->c,
                         (long long)l->kh, (long long)l->kw, (long long)(4 * l->m * kk),
                         (long long)bytes, l->flips);
        fp += 4 * l->m * kk;
        packed += bytes;
        deploy_layer(b, l, gr.q[k], gr.alpha[k]);
    }
    hone_pass_detail(b->pc, "],\"fp32_bytes\":%lld,\"binary_bytes\":%lld", (long long)fp,
                     (long long)packed);
    grab_free(&gr, b->n);
    hone_graph_update_uses(b->g);
    hone_graph_remove_dead(b->g);
    return st ? st : hone_graph_toposort(b->ctx, b->g);
}

/* ===================== the pass ===================== */

static hone_status check_options(hone_pass_ctx *pc, bz *b)
{
    const char *m = hone_pass_opt_str(pc, "method"), *a = hone_pass_opt_str(pc, "acts");
    const char *s = hone_pass_opt_str(pc, "scale");
    double rho = hone_pass_opt_float(pc, "rho");
    if ((strcmp(m, "lns") && strcmp(m, "ste")) || (strcmp(a, "fp") && strcmp(a, "sign")) ||
        (strcmp(s, "channel") && strcmp(s, "learned")))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "binarize: method=lns|ste, acts=fp|sign, "
                         "scale=channel|learned (got %s, %s, %s)", m, a, s);
    if (!(rho >= 0 && rho < 0.5) || hone_pass_opt_int(pc, "steps") < 1 ||
        hone_pass_opt_int(pc, "batch") < 1 || !(hone_pass_opt_float(pc, "lr") > 0))
        return hone_fail(pc->ctx, HONE_ERR_ARG,
                         "binarize: rho in [0, 0.5), steps >= 1, batch >= 1, lr > 0");
    b->lns = !strcmp(m, "lns");
    b->map_gain = (float)hone_pass_opt_float(pc, "map-gain");
    b->sign_acts = !strcmp(a, "sign");
    b->learned_scale = !strcmp(s, "learned");
    b->rng = 0x62696e61726973ull ^ (uint64_t)hone_pass_opt_int(pc, "seed");
    return HONE_OK;
}

/* Held-out metric of model m (hone_fit's split and scoring). */
static double held_out(bz *b, const hone_graph *m, const hone_fit_data *fd,
                       const hone_fit_spec *f)
{
    hone_fit_metric kind;
    double v = NAN;
    if (hone_fit_evaluate(b->ctx, m, fd, f, &kind, &v)) {
        hone_pass_log(b->pc, "held-out metric failed: %s", b->ctx->msg);
        return NAN;
    }
    return v;
}

static hone_status train_and_deploy(bz *b, const hone_pass_data *d, hone_graph *teacher)
{
    hone_pass_ctx *pc = b->pc;
    const char *reg = NULL;
    hone_fit_spec f;
    hone_fit_data fd = {d->x, d->labels, NULL};
    hone_fit_result res;
    double t0 = now_s();
    hone_status st = build_training_form(b, d->x, &reg);
    fit_spec(b, d, teacher, reg, &f);
    double before = held_out(b, teacher, &fd, &f), t1 = now_s();
    if (!st)
        st = hone_fit(b->ctx, b->g, &fd, &f, &res);
    double t2 = now_s();
    if (!st)
        st = deploy(b, d->x);
    double after = st ? NAN : held_out(b, b->g, &fd, &f);
    hone_pass_log(pc, "%d convs binarized (%s, %s): held-out %s %.4f -> %.4f", b->n,
                  b->lns ? "lns" : "ste", b->sign_acts ? "W1A1" : "W1",
                  hone_fit_metric_name(f.train.loss == HONE_LOSS_KD ? HONE_FIT_METRIC_AGREE
                                                                     : HONE_FIT_METRIC_TOP1),
                  before, after);
    hone_pass_detail(pc, ",\"metric_before\":%.6f,\"metric_after\":%.6f,\"steps\":%lld,"
                     "\"setup_s\":%.3f,\"train_s\":%.3f,\"deploy_s\":%.3f",
                     isnan(before) ? -1.0 : before, isnan(after) ? -1.0 : after,
                     st ? 0LL : (long long)res.steps, t1 - t0, t2 - t1, now_s() - t2);
    return st;
}

hone_status hone_pass_binarize(hone_pass_ctx *pc, hone_graph *g)
{
    bz b = {.pc = pc, .ctx = pc->ctx, .g = g};
    const hone_pass_data *d;
    hone_status st = check_options(pc, &b);
    if (!st)
        st = hone_pass_need_data(pc, "training samples", &d);
    if (st)
        return st;
    hone_graph *teacher = hone_graph_clone(g);
    int unfolded = 0;
    if (hone_pass_opt_bool(pc, "unfold-bn"))
        st = hone_unfold_bn(pc->ctx, g, d->x, hone_pass_opt_int(pc, "samples"), 1e-5, select_conv,
                            &b, &unfolded);
    if (!st)
        st = hone_graph_toposort(pc->ctx, g);
    if (!st)
        find_layers(&b);
    b.trainable = calloc((size_t)(3 * b.n + 1), sizeof *b.trainable);
    HONE_ASSERT(b.trainable);
    hone_pass_detail(pc, "{\"method\":\"%s\",\"acts\":\"%s\",\"binarized\":%d",
                     hone_pass_opt_str(pc, "method"), hone_pass_opt_str(pc, "acts"), b.n);
    if (!st && b.n)
        st = train_and_deploy(&b, d, teacher);
    hone_pass_detail(pc, "}");
    hone_pass_note(pc, "convs binarized", st ? 0 : b.n);
    hone_pass_note(pc, "BN unfolded", unfolded);
    free(b.trainable);
    free(b.ls);
    hone_graph_free(teacher);
    return st;
}
