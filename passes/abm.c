/*
 * abm: approximated bilinear modules (ABM, ICCV 2019, arXiv 2007.12887) for
 * frame-level video models.
 *
 * A frame-level video classifier (TSN) runs a 2-D CNN on every frame of a
 * clip, laid out (B*T, C, H, W) with the frames of one clip contiguous, and
 * averages the frame features over T before its classifier. This pass finds
 * that layout (a Reshape folding the clip input [N, T, ...] into frames
 * [N*T, ...]; T may also be given) and the temporal head (a ReduceMean over
 * axis 1 of the [N, T, C] features), then turns the first conv of chosen
 * residual blocks (the conv-BN-ReLU-conv subnet) into a temporal bilinear
 * module and fine-tunes the model with the training engine.
 *
 * The module, in the shifted 2-D form (standard ONNX ops only):
 *   R    = Reshape(x, [-1, T, C, H, W])               the frames of each clip
 *   S    = R, or its last k channels (ABM-A: k = round(beta*C))
 *   prev = Pad(S[:, 0:T-1], 1 frame before)            frame t sees t-1; zeros at t=0
 *   next = Pad(S[:, 1:T], 1 frame after)               frame t sees t+1; zeros at t=T-1
 *   X3   = Reshape(Concat(R, prev, next; channels), [-1, C+2k, H, W])
 *   main = Conv(X3, Wm, b)      Wm = [W | 0 | 0]: the pretrained kernel at the
 *                               temporal centre, zeros at t-1 and t+1
 *   aux  = Conv(X3, 0, 1)       the auxiliary branch: weights 0, bias 1
 *   y    = main * aux           replaces the conv's output; ReLU and the rest of
 *                               the block follow unchanged
 * With k = C (ABM-C-in) the 2-D conv over X3 is exactly a 3x3x3 conv over
 * (B, C, T, H, W) with temporal padding 1 whose kernel's three temporal taps
 * are the three channel blocks of Wm: one conv kernel after one copy per
 * shift. The exported models' BN is folded into the convs, so main's
 * conv+bias is the paper's BN(main) in inference form and the product comes
 * right after it. At insertion aux = 1 and the extra input weights are 0, so
 * the model computes the original function (abm{epochs=0} checks it).
 *
 * Blocks: a residual block is Conv(c1) -> Relu -> Conv(c2) -> Add(skip) where
 * skip is the block input or a Conv of it (a projection shortcut, which opens
 * a new stage). blocks=paper (the default) takes the paper's choice: stage 1
 * untouched, and in later stages every block but the first. A model with one
 * block per stage (mfmnist_tsn) leaves nothing under that rule; the pass then
 * converts every block and says so in its log and report. blocks=all, none
 * (the naive ablation: fine-tune the frame-averaging model with the same
 * budget) or a list of block numbers (0-based, in graph order) choose others.
 *
 * Fine-tuning follows METHODS.md: SGD, lr 1e-3, momentum 0.9, weight decay
 * 5e-4, gradient-norm clip 20, cosine schedule, cross-entropy against the
 * --labels (without labels: distillation from the original model), the
 * held-out share of the --data clips (val_split) scored before and after.
 * Budget: epochs, or steps (optimiser updates; overrides epochs); 0 for both
 * skips training.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"
#include "passes.h"

#define ABM_MAX_BLOCKS 64

typedef struct abm_block {
    hone_node *c1, *c2, *add;
    int stage;
    bool first;           /* first block of its stage */
} abm_block;

typedef struct abm {
    hone_pass_ctx *pc;
    hone_ctx *ctx;
    hone_graph *g;
    int64_t T;
    const char *prefix;   /* names of the module being built */
} abm;

/* ---------- layout ---------- */

/* A Reshape folding [N, T, d2, ...] into [N*T, d2, ...]; *T receives T. */
static bool frame_reshape(const hone_node *n, int64_t *T)
{
    if (!hone_pass_is_op(n, "Reshape") || !n->out[0] || !n->in[0])
        return false;
    const hone_value *x = n->in[0], *y = n->out[0];
    if (x->rank < 3 || y->rank != x->rank - 1 || x->dims[1] < 2)
        return false;
    for (int i = 2; i < x->rank; i++)
        if (x->dims[i] < 0 || y->dims[i - 1] != x->dims[i])
            return false;
    *T = x->dims[1];
    return true;
}

/* T of the head's [N, T, C] reshape: its dim 1, its constant target, or the
 * constant second piece of a Concat target; -1 when unknown. */
static int64_t head_frames(const hone_value *x)
{
    if (x->dims[1] >= 0)
        return x->dims[1];
    const hone_node *r = x->producer;
    if (!r || !hone_pass_is_op(r, "Reshape") || r->n_in < 2 || !r->in[1])
        return -1;
    int64_t v[HONE_MAX_RANK];
    if (hone_pass_const_ints(r->in[1], v, HONE_MAX_RANK) == 3)
        return v[1];
    const hone_node *c = r->in[1]->producer;
    if (c && hone_pass_is_op(c, "Concat") && c->n_in == 3 && c->in[1] &&
        hone_pass_const_ints(c->in[1], v, 1) == 1)
        return v[0];
    return -1;
}

/* The temporal head: ReduceMean over axis 1 of a rank-3 [N, T, C] tensor. */
static bool temporal_head(const hone_node *n, int64_t *T)
{
    if (!hone_pass_is_op(n, "ReduceMean") || !n->in[0] || n->in[0]->rank != 3)
        return false;
    const int64_t *ax;
    int64_t axv[2];
    int na = hone_attr_ints(n, "axes", &ax);
    if (na < 0 && n->n_in > 1 && n->in[1]) {
        na = hone_pass_const_ints(n->in[1], axv, 2);
        ax = axv;
    }
    if (na != 1 || (ax[0] != 1 && ax[0] != -2))
        return false;
    *T = head_frames(n->in[0]);
    return true;
}

/* Appends s to the pass's detail JSON as a string literal. */
static void detail_string(hone_pass_ctx *pc, const char *s)
{
    char buf[512];
    size_t k = 0;
    buf[k++] = '"';
    for (; *s && k < sizeof buf - 8; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf[k++] = '\\', buf[k++] = (char)c;
        else if (c < 0x20)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\u%04x", c);
        else
            buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = 0;
    hone_pass_detail(pc, "%s", buf);
}

static hone_status find_layout(abm *m)
{
    hone_graph *g = m->g;
    int64_t tf = -1, th = -1, t;
    const hone_node *fr = NULL, *head = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!fr && frame_reshape(g->nodes[i], &t))
            fr = g->nodes[i], tf = t;
        else if (!head && temporal_head(g->nodes[i], &t))
            head = g->nodes[i], th = t;
    }
    int64_t want = hone_pass_opt_int(m->pc, "frames");
    char buf[256] = "(no input)";
    if (g->n_inputs)
        hone_value_type_str(g, g->inputs[0], buf, sizeof buf);
    if (!head)
        return hone_fail(m->ctx, HONE_ERR_ARG,
                         "abm: no temporal head: the model never averages frame features "
                         "over time (ReduceMean over axis 1 of [N,T,C]); input '%s' %s is not "
                         "a frame-level video model",
                         g->n_inputs ? g->inputs[0]->name : "", buf);
    if (!fr && want <= 0)
        return hone_fail(m->ctx, HONE_ERR_ARG,
                         "abm: no frame layout: no Reshape folds a clip [N,T,...] into frames "
                         "[N*T,...] (input '%s' %s); give frames=T when the model takes frames",
                         g->n_inputs ? g->inputs[0]->name : "", buf);
    int64_t T = want > 0 ? want : tf;
    if ((tf > 0 && tf != T) || (th > 0 && th != T))
        return hone_fail(m->ctx, HONE_ERR_ARG,
                         "abm: frames=%lld disagrees with the graph (frame reshape '%s': %lld, "
                         "head '%s': %lld)", (long long)T, fr ? fr->name : "-", (long long)tf,
                         head->name, (long long)th);
    if (T < 2)
        return hone_fail(m->ctx, HONE_ERR_ARG, "abm: frames must be at least 2 (got %lld)",
                         (long long)T);
    m->T = T;
    hone_pass_log(m->pc, "frames T=%lld (frame reshape %s, head %s)", (long long)T,
                  fr ? fr->name : "none: frames=", head->name);
    hone_pass_detail(m->pc, "{\"frames\":%lld,\"frame_reshape\":", (long long)T);
    detail_string(m->pc, fr ? fr->name : "");
    hone_pass_detail(m->pc, ",\"head\":");
    detail_string(m->pc, head->name);
    return HONE_OK;
}

/* ---------- blocks ---------- */

static hone_node *producer_op(const hone_value *v, const char *op)
{
    return v && v->producer && hone_pass_is_op(v->producer, op) ? v->producer : NULL;
}

/* A plain 2-D conv with constant float weights (and bias) over a static input. */
static bool convertible(const hone_node *c)
{
    if (c->n_in < 2 || !hone_pass_is_const(c->in[1]) || c->in[1]->data->dtype != HONE_DT_FLOAT ||
        c->in[1]->data->rank != 4 || hone_attr_int(c, "group", 1) != 1 || c->in[0]->rank != 4)
        return false;
    if (c->n_in > 2 && c->in[2] && !hone_pass_is_const(c->in[2]))
        return false;
    for (int i = 1; i < 4; i++)
        if (c->in[0]->dims[i] < 1)
            return false;
    return c->in[0]->dims[1] == c->in[1]->data->dims[1];
}

/* add = Add(c2(Relu(c1(x))), x or Conv(x)): fills b, true when it is a block. */
static bool residual_block(const hone_graph *g, hone_node *add, abm_block *b)
{
    if (!hone_pass_is_op(add, "Add") || add->n_in != 2)
        return false;
    for (int s = 0; s < 2; s++) {
        hone_node *c2 = producer_op(add->in[s], "Conv");
        hone_node *relu = c2 ? producer_op(c2->in[0], "Relu") : NULL;
        hone_node *c1 = relu ? producer_op(relu->in[0], "Conv") : NULL;
        if (!c1 || hone_pass_single_user(g, c1->out[0]) != relu)
            continue;
        const hone_value *x = c1->in[0], *skip = add->in[1 - s];
        hone_node *sc = producer_op(skip, "Conv");
        if (skip != x && !(sc && sc != c1 && sc->in[0] == x))
            continue;
        *b = (abm_block){.c1 = c1, .c2 = c2, .add = add, .first = skip != x};
        return true;
    }
    return false;
}

/* Blocks in graph order with their stages (a projection shortcut opens one). */
static int find_blocks(hone_graph *g, abm_block *out)
{
    int n = 0, stage = 0;
    for (int i = 0; i < g->n_nodes && n < ABM_MAX_BLOCKS; i++) {
        abm_block b;
        if (!residual_block(g, g->nodes[i], &b))
            continue;
        if (b.first && n)
            stage++;
        b.first = b.first || !n;
        b.stage = stage;
        out[n++] = b;
    }
    return n;
}

/* Marks chosen blocks in pick[]; returns how many, -1 on a bad list. */
static int choose(hone_pass_ctx *pc, const abm_block *b, int n, bool *pick, bool *fallback)
{
    const char *sel = hone_pass_opt_str(pc, "blocks");
    int k = 0;
    *fallback = false;
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (!strcmp(sel, "paper"))
            pick[i] = b[i].stage > 0 && !b[i].first;
        else
            pick[i] = !strcmp(sel, "all") || hone_pass_in_list(sel, num);
        k += pick[i];
    }
    if (strcmp(sel, "paper") && strcmp(sel, "all") && strcmp(sel, "none")) {
        for (const char *p = sel; *p; p++)
            if (!(*p == ',' || (*p >= '0' && *p <= '9')))
                return -1;
        char *dup = strdup(sel);
        HONE_ASSERT(dup);
        for (char *t = strtok(dup, ","); t; t = strtok(NULL, ","))
            if (atoi(t) >= n) {
                free(dup);
                return -1;
            }
        free(dup);
    }
    if (!k && !strcmp(sel, "paper") && n) {
        for (int i = 0; i < n; i++)
            pick[i] = true;
        *fallback = true;
        k = n;
    }
    return k;
}

/* ---------- module construction ---------- */

static hone_node *add_node(abm *m, const char *op, int n_in, hone_value *const *in,
                           const char *what)
{
    hone_graph *g = m->g;
    hone_node *n = hone_graph_add_node(g, op, "", hone_arena_printf(g->arena, "%s/abm_%s",
                                                                   m->prefix, what), n_in, 1);
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s/abm_%s_out", m->prefix,
                                                          what));
    return n;
}

static hone_value *node1(abm *m, const char *op, int n_in, hone_value *const *in,
                         const char *what)
{
    for (int i = 0; i < n_in; i++)
        if (!in[i])
            return NULL;
    return add_node(m, op, n_in, in, what)->out[0];
}

static hone_value *ints(abm *m, int n, const int64_t *v, const char *what)
{
    return hone_pass_new_ints(m->ctx, m->g, v, n,
                              hone_arena_printf(m->g->arena, "%s/abm_%s", m->prefix, what));
}

static hone_value *reshape(abm *m, hone_value *x, int r, const int64_t *shape, const char *what)
{
    hone_value *in[2] = {x, ints(m, r, shape, hone_arena_printf(m->g->arena, "%s_shape", what))};
    return in[1] ? node1(m, "Reshape", 2, in, what) : NULL;
}

static hone_value *slice(abm *m, hone_value *x, int64_t start, int64_t end, int64_t axis,
                         const char *what)
{
    hone_arena *a = m->g->arena;
    hone_value *in[4] = {x, ints(m, 1, &start, hone_arena_printf(a, "%s_starts", what)),
                         ints(m, 1, &end, hone_arena_printf(a, "%s_ends", what)),
                         ints(m, 1, &axis, hone_arena_printf(a, "%s_axes", what))};
    return in[1] && in[2] && in[3] ? node1(m, "Slice", 4, in, what) : NULL;
}

/* Pads axis 1 of a rank-5 tensor with one zero frame before (or after). */
static hone_value *shift(abm *m, hone_value *x, bool before, const char *what)
{
    int64_t pads[10] = {0};
    pads[before ? 1 : 6] = 1;
    hone_value *in[2] = {x, ints(m, 10, pads, hone_arena_printf(m->g->arena, "%s_pads", what))};
    return in[1] ? node1(m, "Pad", 2, in, what) : NULL;
}

static hone_value *conv_like(abm *m, const hone_node *c1, hone_value *x, hone_tensor *w,
                             hone_tensor *b, const char *what)
{
    hone_arena *a = m->g->arena;
    hone_value *in[3] = {x, hone_pass_new_const(m->g, w, hone_arena_printf(a, "%s/abm_%s_W",
                                                                          m->prefix, what)),
                         hone_pass_new_const(m->g, b, hone_arena_printf(a, "%s/abm_%s_B",
                                                                       m->prefix, what))};
    hone_node *n = add_node(m, "Conv", 3, in, what);
    for (int i = 0; i < c1->n_attr; i++) {
        const hone_attr *at = &c1->attrs[i];
        if (at->kind == HONE_ATTR_INTS)
            hone_node_set_attr_ints(m->g, n, at->name, at->ints, at->n);
        else if (at->kind == HONE_ATTR_INT)
            hone_node_set_attr_int(m->g, n, at->name, at->i);
        else if (at->kind == HONE_ATTR_STRING)
            hone_node_set_attr_string(m->g, n, at->name, at->s);
    }
    return n->out[0];
}

/* Main weights [Co, C+2k, kh, kw] = [W | 0 | 0], bias b; aux weights 0, bias 1. */
static hone_status module_weights(abm *m, const hone_node *c1, int64_t k, hone_tensor **wm,
                                  hone_tensor **bm, hone_tensor **wa, hone_tensor **ba)
{
    const hone_tensor *w = c1->in[1]->data;
    const hone_tensor *b = c1->n_in > 2 && c1->in[2] ? c1->in[2]->data : NULL;
    int64_t co = w->dims[0], ci = w->dims[1], kk = w->dims[2] * w->dims[3];
    int64_t dims[4] = {co, ci + 2 * k, w->dims[2], w->dims[3]};
    hone_status st;
    if ((st = hone_tensor_new(m->ctx, HONE_DT_FLOAT, 4, dims, wm)) ||
        (st = hone_tensor_new(m->ctx, HONE_DT_FLOAT, 4, dims, wa)) ||
        (st = hone_tensor_new(m->ctx, HONE_DT_FLOAT, 1, &co, bm)) ||
        (st = hone_tensor_new(m->ctx, HONE_DT_FLOAT, 1, &co, ba)))
        return st;
    const float *src = w->data;
    float *dst = (*wm)->data, *one = (*ba)->data;
    for (int64_t o = 0; o < co; o++) {
        memcpy(dst + o * (ci + 2 * k) * kk, src + o * ci * kk, sizeof *dst * (size_t)(ci * kk));
        ((float *)(*bm)->data)[o] = b ? (float)hone_tensor_get_f64(b, o) : 0.0f;
        one[o] = 1.0f;
    }
    return HONE_OK;
}

/* Replaces block b's first conv by its bilinear module over k neighbour channels. */
static hone_status convert(abm *m, const abm_block *b, int64_t k)
{
    hone_node *c1 = b->c1;
    hone_value *x = c1->in[0], *y = c1->out[0];
    int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3], T = m->T;
    m->prefix = c1->name;
    hone_value *r = reshape(m, x, 5, (int64_t[]){-1, T, C, H, W}, "clips");
    hone_value *s = k < C ? slice(m, r, C - k, C, 2, "tail") : r;
    hone_value *prev = shift(m, slice(m, s, 0, T - 1, 1, "upto_last"), true, "prev");
    hone_value *next = shift(m, slice(m, s, 1, T, 1, "from_second"), false, "next");
    if (!prev || !next)
        return m->ctx->status ? m->ctx->status : HONE_ERR_NOMEM;
    hone_node *cat = add_node(m, "Concat", 3, (hone_value *[]){r, prev, next}, "concat");
    hone_node_set_attr_int(m->g, cat, "axis", 2);
    hone_value *x3 = reshape(m, cat->out[0], 4, (int64_t[]){-1, C + 2 * k, H, W}, "frames");
    if (!x3)
        return m->ctx->status ? m->ctx->status : HONE_ERR_NOMEM;
    hone_tensor *wm = NULL, *bm = NULL, *wa = NULL, *ba = NULL;
    hone_status st = module_weights(m, c1, k, &wm, &bm, &wa, &ba);
    if (st) {
        hone_tensor_free(wm), hone_tensor_free(bm), hone_tensor_free(wa), hone_tensor_free(ba);
        return st;
    }
    hone_value *main_out = conv_like(m, c1, x3, wm, bm, "main");
    hone_value *aux_out = conv_like(m, c1, x3, wa, ba, "aux");
    hone_node *mul = hone_graph_add_node(m->g, "Mul", "",
                                         hone_arena_printf(m->g->arena, "%s/abm_mul", c1->name),
                                         2, 1);
    mul->in[0] = main_out;
    mul->in[1] = aux_out;
    mul->out[0] = y;
    c1->out[0] = hone_graph_new_value(m->g, NULL);
    hone_pass_remove_node(m->g, c1);
    return HONE_OK;
}

/* ---------- fine-tuning ---------- */

/* A progress line every 25 steps and at the last one. */
static void on_step(void *user, const hone_fit_step_info *info)
{
    if ((info->step + 1) % 25 && info->step + 1 != info->steps)
        return;
    hone_pass_log(user, "step %lld/%lld loss %.4f lr %.2g (%.0f s)", (long long)info->step + 1,
                  (long long)info->steps, info->loss, info->lr, info->elapsed_s);
}

static hone_status finetune(abm *m, hone_graph *g)
{
    hone_pass_ctx *pc = m->pc;
    int64_t steps = hone_pass_opt_int(pc, "steps");
    int epochs = (int)hone_pass_opt_int(pc, "epochs");
    if (steps <= 0 && epochs <= 0) {
        hone_pass_detail(pc, ",\"trained\":false}");
        return HONE_OK;
    }
    const hone_pass_data *d;
    hone_status st = hone_pass_need_data(pc, "training clips to fine-tune the modules", &d);
    if (st)
        return st;
    if ((st = hone_graph_toposort(m->ctx, g)) || (st = hone_graph_infer(m->ctx, g)))
        return st;
    hone_graph_update_uses(g);
    hone_fit_spec fs;
    hone_fit_spec_init(&fs);
    hone_optim_spec_init(&fs.optim, HONE_OPTIM_SGD);
    fs.optim.momentum = hone_pass_opt_float(pc, "momentum");
    fs.optim.weight_decay = hone_pass_opt_float(pc, "wd");
    fs.optim.clip_norm = hone_pass_opt_float(pc, "clip");
    fs.schedule = HONE_SCHED_COSINE;
    fs.lr = hone_pass_opt_float(pc, "lr");
    fs.epochs = epochs > 0 ? epochs : 1;
    fs.max_steps = steps > 0 ? steps : 0;
    fs.batch = hone_pass_opt_int(pc, "batch");
    fs.seed = (uint64_t)hone_pass_opt_int(pc, "seed");
    fs.val_split = d->val_split;
    fs.on_step = on_step;
    fs.user = pc;
    hone_graph *teacher = NULL;
    if (!d->labels) {
        teacher = hone_graph_clone(g);
        fs.train.loss = HONE_LOSS_KD;
        fs.teacher = teacher;
    } else {
        fs.train.loss = HONE_LOSS_CE;
    }
    hone_fit_data fd = {d->x, d->labels, NULL};
    hone_fit_metric kind;
    double before = NAN;
    hone_fit_result res;
    st = hone_fit_evaluate(m->ctx, g, &fd, &fs, &kind, &before);
    if (!st)
        st = hone_fit(m->ctx, g, &fd, &fs, &res);
    hone_graph_free(teacher);
    if (st)
        return st;
    const char *mk = hone_fit_metric_name(res.metric_kind);
    hone_pass_log(pc, "fine-tuned %lld steps (%lld clips, %.1f clips/s, %.0f s): held-out %s "
                  "%.4f -> %.4f", (long long)res.steps, (long long)res.images, res.images_per_s,
                  res.train_s, mk, before, res.metric);
    hone_pass_note(pc, "training steps", res.steps);
    hone_pass_detail(pc, ",\"trained\":true,\"steps\":%lld,\"train_clips\":%lld,"
                     "\"heldout_clips\":%lld,\"metric\":\"%s\",\"heldout_before\":%.6g,"
                     "\"heldout_after\":%.6g,\"train_s\":%.3f,\"clips_per_s\":%.3f}",
                     (long long)res.steps, (long long)res.n_train, (long long)res.n_held, mk,
                     isnan(before) ? -1.0 : before, isnan(res.metric) ? -1.0 : res.metric,
                     res.train_s, res.images_per_s);
    return HONE_OK;
}

/* ---------- the pass ---------- */

hone_status hone_pass_abm(hone_pass_ctx *pc, hone_graph *g)
{
    abm m = {.pc = pc, .ctx = pc->ctx, .g = g};
    const char *variant = hone_pass_opt_str(pc, "variant");
    double beta = hone_pass_opt_float(pc, "beta");
    bool a_in = !strcmp(variant, "a-in");
    if (!a_in && strcmp(variant, "c-in"))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "abm: variant must be c-in or a-in, not '%s'",
                         variant);
    if (a_in && !(beta > 0 && beta <= 1))
        return hone_fail(pc->ctx, HONE_ERR_ARG, "abm: beta must be in (0, 1], not %g", beta);
    hone_graph_update_uses(g);
    hone_status st = find_layout(&m);
    if (st)
        return st;
    abm_block blocks[ABM_MAX_BLOCKS];
    bool pick[ABM_MAX_BLOCKS], fallback;
    int n = find_blocks(g, blocks);
    int k = choose(pc, blocks, n, pick, &fallback);
    if (k < 0)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "abm: blocks='%s': give paper, all, none or "
                         "block numbers below %d", hone_pass_opt_str(pc, "blocks"), n);
    if (fallback)
        hone_pass_log(pc, "the paper's choice (stage 1 untouched, the first block of each later "
                      "stage untouched) leaves no block of this model's %d; converting all", n);
    hone_pass_detail(pc, ",\"variant\":\"%s\",\"blocks_found\":%d,\"paper_rule_empty\":%s,"
                     "\"modules\":[", variant, n, fallback ? "true" : "false");
    int made = 0;
    for (int i = 0; i < n; i++) {
        if (!pick[i])
            continue;
        if (!convertible(blocks[i].c1)) {
            hone_pass_log(pc, "block %d: conv %s is not a plain 2-D conv with constant weights "
                          "over a static input; left alone", i, blocks[i].c1->name);
            continue;
        }
        int64_t C = blocks[i].c1->in[0]->dims[1];
        int64_t nb = a_in ? (int64_t)lround(beta * (double)C) : C;
        nb = nb < 1 ? 1 : nb > C ? C : nb;
        const char *name = blocks[i].c1->name;
        hone_pass_detail(pc, "%s{\"block\":%d,\"stage\":%d,\"conv\":", made ? "," : "", i,
                         blocks[i].stage);
        detail_string(pc, name);
        hone_pass_detail(pc, ",\"channels\":%lld,\"neighbour_channels\":%lld}", (long long)C,
                         (long long)nb);
        hone_pass_log(pc, "block %d (stage %d): %s -> %s module, %lld + 2x%lld input channels",
                      i, blocks[i].stage + 1, name, a_in ? "ABM-A-in" : "ABM-C-in", (long long)C,
                      (long long)nb);
        if ((st = convert(&m, &blocks[i], nb)))
            return st;
        made++;
    }
    hone_pass_detail(pc, "]");
    hone_pass_note(pc, "modules", made);
    hone_graph_update_uses(g);
    if (made)
        hone_graph_remove_dead(g);    /* the replaced convs' weights */
    return finetune(&m, g);
}
