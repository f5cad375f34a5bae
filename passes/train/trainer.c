/*
 * The trainer: a training program built from a model, and the inference
 * form of the same model, sharing one set of parameter tensors.
 *
 * The training program is a clone of the model in which
 *   - a concrete batch dimension of the input becomes the symbol "batch";
 *   - every inference-form BatchNormalization becomes hone.BatchNormTrain,
 *     whose batch mean and unbiased variance are program outputs;
 *   - the loss (loss.c) is appended, with graph inputs for labels, teacher
 *     logits or target, and teacher features;
 *   - autodiff appends the gradients of every parameter.
 * Program outputs: 0 the loss, 1 the trained output, then (mean, var) per BN,
 * then one gradient per parameter. A parameter is a float constant read at a
 * parameter slot (Conv/ConvTranspose weight and bias, Gemm and MatMul
 * operands, BN scale and bias, PRelu slope, the bias added to a
 * Conv/Gemm/MatMul output) that is not frozen and that the loss depends on;
 * BN running statistics and shape constants never are.
 *
 * The parameters are the program's constant tensors themselves: the
 * interpreter reads them in place, optimisers update them in place, and the
 * inference graph's constants point at the very same tensors (detached again
 * before that graph is freed). BN running statistics live in the inference
 * graph and are blended with each step's batch statistics (PyTorch's
 * momentum convention: running = (1 - m) running + m batch).
 */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hone_rt.h"
#include "interp.h"
#include "train.h"

#define OUT_LOSS 0
#define OUT_PRED 1

typedef struct bn_stat {
    const char *mean_name, *var_name; /* running statistics in the model */
    hone_value *run_mean, *run_var;   /* the same in the inference graph */
    hone_value *batch_mean, *batch_var;
    int out_mean;                     /* program output of the batch mean (var follows) */
} bn_stat;

struct hone_trainer {
    hone_ctx *ctx;
    hone_graph *train, *infer;
    float bn_momentum;
    int n_params;
    hone_value **params;   /* program constants */
    hone_value **shared;   /* inference-graph values sharing their tensors (or NULL) */
    hone_value **grads;
    int n_bn;
    bn_stat *bn;
    int grad0;             /* first gradient output */
    hone_tensor **outs;    /* last step's program outputs */
    hone_loss_inputs lin;
};

void hone_train_spec_init(hone_train_spec *s)
{
    memset(s, 0, sizeof *s);
    s->loss = HONE_LOSS_CE;
    s->temperature = 4.0f;
    s->kd_alpha = 0.9f;
    s->bn_train = true;
    s->bn_momentum = 0.1f;
    s->feat_weight = 1.0f;
}

/* ===================== building the program ===================== */

/* Makes a concrete batch dimension of the first input symbolic and re-infers. */
static hone_status symbolic_batch(hone_ctx *ctx, hone_graph *g)
{
    hone_value *x = g->inputs[0];
    if (x->rank >= 1 && x->dims[0] >= 0) {
        x->dims[0] = HONE_DIM_SYM(hone_graph_sym(g, "batch"));
        for (int i = 0; i < g->n_values; i++) {
            hone_value *v = g->values[i];
            if (!v->data && !(v->flags & HONE_VAL_INPUT))
                v->rank = -1;
        }
    }
    return hone_graph_infer(ctx, g);
}

/* Puts node m (just appended) at index idx in place of the node there. */
static void put_at(hone_graph *g, int idx, hone_node *m)
{
    HONE_ASSERT(g->nodes[g->n_nodes - 1] == m);
    g->nodes[idx] = m;
    m->id = idx;
    g->n_nodes--;
}

/* Rewrites inference-form BatchNormalization node idx as hone.BatchNormTrain. */
static void bn_to_train(hone_trainer *t, int idx)
{
    hone_graph *g = t->train;
    hone_node *n = g->nodes[idx];
    hone_node *m = hone_graph_add_node(g, "BatchNormTrain", "hone", n->name, 3, 4);
    m->opset = 1;
    memcpy(m->in, n->in, sizeof *m->in * 3);
    m->out[0] = n->out[0];
    for (int i = 1; i < 4; i++)
        m->out[i] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_%s", n->name,
                                                              i == 1 ? "mean" : i == 2 ? "invstd" : "var"));
    hone_node_set_attr_float(g, m, "epsilon", hone_attr_float(n, "epsilon", 1e-5f));
    bn_stat *b = &t->bn[t->n_bn++];
    b->mean_name = n->in[3]->name;
    b->var_name = n->in[4]->name;
    b->batch_mean = m->out[1];
    b->batch_var = m->out[3];
    put_at(g, idx, m);
}

/* Whether node n is a BatchNormalization in inference form with constant statistics. */
static bool bn_inference(const hone_node *n)
{
    bool extra = false;
    for (int i = 1; i < n->n_out; i++)
        extra = extra || n->out[i];
    return n->op == HONE_OP_BATCH_NORMALIZATION && !extra && n->in[3]->data && n->in[4]->data &&
           !hone_attr_int(n, "training_mode", 0);
}

static void convert_bn(hone_trainer *t)
{
    hone_graph *g = t->train;
    t->bn = calloc((size_t)g->n_nodes + 1, sizeof *t->bn);
    HONE_ASSERT(t->bn);
    for (int i = 0; i < g->n_nodes; i++)
        if (bn_inference(g->nodes[i]))
            bn_to_train(t, i);
}

/* Whether the name is in the list. */
static bool listed(const char **names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], name))
            return true;
    return false;
}

static bool is_frozen(const hone_train_spec *s, const char *name)
{
    return listed(s->frozen, s->n_frozen, name) ||
           (s->freeze_all_but_listed && !listed(s->trainable, s->n_trainable, name));
}

/* Whether v is produced by an op whose output a constant Add operand biases. */
static bool biased_op(const hone_value *v)
{
    hone_op op = v && v->producer ? v->producer->op : HONE_OP_UNKNOWN;
    return op == HONE_OP_CONV || op == HONE_OP_GEMM || op == HONE_OP_MATMUL ||
           op == HONE_OP_CONV_TRANSPOSE;
}

/* Whether input i of n is a parameter slot. */
static bool param_slot(const hone_node *n, int i)
{
    switch (n->op) {
    case HONE_OP_CONV: case HONE_OP_CONV_TRANSPOSE: case HONE_OP_PRELU: return i >= 1;
    case HONE_OP_GEMM: case HONE_OP_MATMUL: return true;
    case HONE_OP_BATCH_NORM_TRAIN: case HONE_OP_BATCH_NORMALIZATION: return i == 1 || i == 2;
    case HONE_OP_ADD: return biased_op(n->in[1 - i]);
    default: return false;
    }
}

/* Candidate parameters of g (deduplicated) into out; returns the count. */
static int find_params(const hone_graph *g, const hone_train_spec *s, hone_value **out)
{
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const hone_node *n = g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            hone_value *v = n->in[j];
            if (!v || !v->data || v->data->dtype != HONE_DT_FLOAT || is_frozen(s, v->name) ||
                !(param_slot(n, j) || (v->name && listed(s->trainable, s->n_trainable, v->name))))
                continue;
            bool seen = false;
            for (int q = 0; q < k && !seen; q++)
                seen = out[q] == v;
            if (!seen)
                out[k++] = v;
        }
    }
    return k;
}

/* Fails when a frozen or trainable name is not a constant of the model. */
static hone_status check_names(hone_ctx *ctx, const hone_graph *g, const char **names, int n)
{
    for (int i = 0; i < n; i++) {
        const hone_value *v = names[i] ? hone_graph_find(g, names[i]) : NULL;
        if (!v || !v->data)
            return hone_fail(ctx, HONE_ERR_ARG, "'%s' is not a constant of the model",
                             names[i] ? names[i] : "(null)");
    }
    return HONE_OK;
}

/* Differentiates the loss w.r.t. every candidate and keeps those with a gradient. */
static hone_status add_gradients(hone_trainer *t, const hone_train_spec *s, hone_value *loss)
{
    hone_graph *g = t->train;
    hone_value **cand = calloc((size_t)g->n_values + 1, sizeof *cand);
    hone_value **grads = calloc((size_t)g->n_values + 1, sizeof *grads);
    HONE_ASSERT(cand && grads);
    int n = find_params(g, s, cand);
    hone_status st = hone_autodiff(t->ctx, g, loss, n, cand, grads);
    for (int i = 0; i < n && !st; i++)
        if (grads[i]) {
            cand[t->n_params] = cand[i];
            grads[t->n_params++] = grads[i];
        }
    t->params = cand;
    t->grads = grads;
    return st;
}

/* Program outputs: loss, trained output, BN batch statistics, gradients. */
static void set_outputs(hone_trainer *t, hone_value *loss, hone_value *pred)
{
    hone_graph *g = t->train;
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i]->flags &= ~HONE_VAL_OUTPUT;
    g->n_outputs = 0;
    hone_graph_add_output(g, loss);
    hone_graph_add_output(g, pred);
    for (int i = 0; i < t->n_bn; i++) {
        t->bn[i].out_mean = g->n_outputs;
        hone_graph_add_output(g, t->bn[i].batch_mean);
        hone_graph_add_output(g, t->bn[i].batch_var);
    }
    t->grad0 = g->n_outputs;
    for (int i = 0; i < t->n_params; i++)
        hone_graph_add_output(g, t->grads[i]);
}

/* The value trained: spec->output or the first graph output; must be float32. */
static hone_status trained_output(hone_ctx *ctx, hone_graph *g, const char *name,
                                  hone_value **out)
{
    *out = name ? hone_graph_find(g, name) : g->n_outputs ? g->outputs[0] : NULL;
    if (!*out)
        return hone_fail(ctx, HONE_ERR_ARG, "output '%s' is not in the model", name ? name : "");
    if ((*out)->dtype != HONE_DT_FLOAT)
        return hone_fail(ctx, HONE_ERR_ARG, "output '%s' is not float32", (*out)->name);
    return HONE_OK;
}

static hone_status build_train(hone_trainer *t, const hone_graph *model, const hone_train_spec *s)
{
    hone_ctx *ctx = t->ctx;
    hone_graph *g = t->train = hone_graph_clone(model);
    hone_value *pred, *loss;
    if (g->n_inputs != 1)
        return hone_fail(ctx, HONE_ERR_ARG, "the model has %d inputs; the trainer feeds one",
                         g->n_inputs);
    hone_status st = check_names(ctx, model, s->frozen, s->n_frozen);
    if (!st)
        st = check_names(ctx, model, s->trainable, s->n_trainable);
    if (!st)
        st = symbolic_batch(ctx, g);
    if (!st)
        st = trained_output(ctx, g, s->output, &pred);
    if (st)
        return st;
    if (s->bn_train)
        convert_bn(t);
    st = hone_loss_build(ctx, g, s, pred, &t->lin, &loss);
    if (!st)
        st = add_gradients(t, s, loss);
    if (st)
        return hone_fail_wrap(ctx, "building the training program");
    set_outputs(t, loss, pred);
    hone_graph_remove_dead(g);
    st = hone_graph_verify(ctx, g);
    return st ? st : hone_graph_infer(ctx, g);
}

/* ===================== the inference graph ===================== */

/* Keeps only the trained output of the inference graph. */
static void infer_outputs(hone_graph *g, const char *name)
{
    hone_value *v = name ? hone_graph_find(g, name) : g->outputs[0];
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i]->flags &= ~HONE_VAL_OUTPUT;
    g->n_outputs = 0;
    hone_graph_add_output(g, v);
    hone_graph_remove_dead(g);
}

static hone_status build_infer(hone_trainer *t, const hone_graph *model, const char *output)
{
    hone_graph *g = t->infer = hone_graph_clone(model);
    hone_status st = symbolic_batch(t->ctx, g);
    if (st)
        return st;
    infer_outputs(g, output ? output : model->outputs[0]->name);
    t->shared = calloc((size_t)t->n_params + 1, sizeof *t->shared);
    HONE_ASSERT(t->shared);
    for (int i = 0; i < t->n_params; i++) {
        hone_value *v = hone_graph_find(g, t->params[i]->name);
        if (!v || !v->data)
            continue;
        hone_tensor_free(v->data);
        v->data = t->params[i]->data;
        t->shared[i] = v;
    }
    for (int i = 0; i < t->n_bn; i++) {
        t->bn[i].run_mean = hone_graph_find(g, t->bn[i].mean_name);
        t->bn[i].run_var = hone_graph_find(g, t->bn[i].var_name);
    }
    return HONE_OK;
}

/* Every step allocates and frees the same few-megabyte intermediates. glibc
 * would serve each from a fresh mmap (or trim the heap after it), so every
 * step paid page faults and zeroing of fresh pages for all of them; keeping
 * freed blocks in the heap lets the next step reuse them. */
static void keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

hone_status hone_trainer_new(hone_ctx *ctx, const hone_graph *model, const hone_train_spec *spec,
                             hone_trainer **out)
{
    keep_freed_memory();
    hone_rt_kernel_pool_acquire();
    hone_trainer *t = calloc(1, sizeof *t);
    HONE_ASSERT(t);
    t->ctx = ctx;
    t->bn_momentum = spec->bn_momentum;
    *out = NULL;
    hone_status st = build_train(t, model, spec);
    if (!st)
        st = build_infer(t, model, spec->output);
    if (st) {
        hone_trainer_free(t);
        return st;
    }
    *out = t;
    return HONE_OK;
}

/* Frees the last step's outputs. */
static void drop_outputs(hone_trainer *t)
{
    for (int i = 0; t->outs && i < t->train->n_outputs; i++)
        hone_tensor_free(t->outs[i]);
    free(t->outs);
    t->outs = NULL;
}

void hone_trainer_free(hone_trainer *t)
{
    if (!t)
        return;
    drop_outputs(t);
    for (int i = 0; t->shared && i < t->n_params; i++)
        if (t->shared[i])
            t->shared[i]->data = NULL;
    hone_graph_free(t->infer);
    hone_graph_free(t->train);
    free(t->params);
    free(t->grads);
    free(t->shared);
    free(t->bn);
    free(t);
    hone_rt_kernel_pool_release();
}

/* ===================== running ===================== */

/* Blends one BN's batch statistics into its running statistics. */
static void update_bn(const bn_stat *b, float m, const hone_tensor *mean, const hone_tensor *var)
{
    if (!b->run_mean || !b->run_var || b->run_mean->data->dtype != HONE_DT_FLOAT ||
        b->run_var->data->dtype != HONE_DT_FLOAT)
        return;
    float *rm = b->run_mean->data->data, *rv = b->run_var->data->data;
    const float *bm = mean->data, *bv = var->data;
    for (int64_t c = 0; c < mean->numel && c < b->run_mean->data->numel; c++) {
        rm[c] = (1 - m) * rm[c] + m * bm[c];
        rv[c] = (1 - m) * rv[c] + m * bv[c];
    }
}

/* The tensor fed to train-graph input v, or NULL when the caller gave none. */
static const hone_tensor *feed(const hone_trainer *t, const hone_value *v, const hone_tensor *x,
                               const hone_tensor *labels, const hone_tensor *teacher,
                               const hone_tensor *feature)
{
    if (v == t->lin.labels)
        return labels;
    if (v == t->lin.teacher)
        return teacher;
    if (v == t->lin.feature)
        return feature;
    return x;
}

hone_status hone_trainer_step_with(hone_trainer *t, const hone_tensor *input,
                                   const hone_tensor *labels, const hone_tensor *teacher,
                                   const hone_tensor *feature, float *loss)
{
    hone_graph *g = t->train;
    const hone_tensor *ins[4];
    for (int i = 0; i < g->n_inputs && i < 4; i++) {
        ins[i] = feed(t, g->inputs[i], input, labels, teacher, feature);
        if (!ins[i])
            return hone_fail(t->ctx, HONE_ERR_ARG, "the loss needs input '%s'", g->inputs[i]->name);
    }
    drop_outputs(t);
    t->outs = calloc((size_t)g->n_outputs + 1, sizeof *t->outs);
    HONE_ASSERT(t->outs);
    hone_status st = hone_interp_run(t->ctx, g, ins, t->outs, NULL);
    if (st) {
        free(t->outs);
        t->outs = NULL;
        return st;
    }
    for (int i = 0; i < t->n_bn; i++)
        update_bn(&t->bn[i], t->bn_momentum, t->outs[t->bn[i].out_mean],
                  t->outs[t->bn[i].out_mean + 1]);
    if (loss)
        *loss = *(const float *)t->outs[OUT_LOSS]->data;
    return HONE_OK;
}

hone_status hone_trainer_step(hone_trainer *t, const hone_tensor *input, const hone_tensor *labels,
                              const hone_tensor *teacher, float *loss)
{
    return hone_trainer_step_with(t, input, labels, teacher, NULL, loss);
}

hone_status hone_trainer_infer(hone_trainer *t, const hone_tensor *input, hone_tensor **output)
{
    const hone_tensor *ins[1] = {input};
    return hone_interp_run(t->ctx, t->infer, ins, output, NULL);
}

/* Copies src into the model constant named name (same dtype and size). */
static hone_status write_back(hone_ctx *ctx, hone_graph *model, const char *name,
                              const hone_tensor *src)
{
    hone_value *v = hone_graph_find(model, name);
    if (!v || !v->data || v->data->dtype != src->dtype || v->data->numel != src->numel)
        return hone_fail(ctx, HONE_ERR_ARG, "model has no constant '%s' of the trained shape", name);
    memcpy(v->data->data, src->data, hone_tensor_nbytes(src));
    return HONE_OK;
}

hone_status hone_trainer_sync(hone_trainer *t, hone_graph *model)
{
    hone_status st = HONE_OK;
    for (int i = 0; i < t->n_params && !st; i++)
        st = write_back(t->ctx, model, t->params[i]->name, t->params[i]->data);
    for (int i = 0; i < t->n_bn && !st; i++) {
        const bn_stat *b = &t->bn[i];
        if (b->run_mean && b->run_var)
            st = write_back(t->ctx, model, b->mean_name, b->run_mean->data);
        if (!st && b->run_mean && b->run_var)
            st = write_back(t->ctx, model, b->var_name, b->run_var->data);
    }
    return st;
}

/* ===================== accessors ===================== */

int hone_trainer_n_params(const hone_trainer *t)
{
    return t->n_params;
}

const char *hone_trainer_param_name(const hone_trainer *t, int i)
{
    return i >= 0 && i < t->n_params ? t->params[i]->name : NULL;
}

hone_tensor *hone_trainer_param(hone_trainer *t, int i)
{
    return i >= 0 && i < t->n_params ? t->params[i]->data : NULL;
}

const hone_tensor *hone_trainer_grad(const hone_trainer *t, int i)
{
    return t->outs && i >= 0 && i < t->n_params ? t->outs[t->grad0 + i] : NULL;
}

const hone_tensor *hone_trainer_output(const hone_trainer *t)
{
    return t->outs ? t->outs[OUT_PRED] : NULL;
}

const hone_graph *hone_trainer_graph(const hone_trainer *t)
{
    return t->train;
}

hone_status hone_trainer_set_const(hone_trainer *t, const char *name, const hone_tensor *src)
{
    hone_graph *gs[2] = {t->train, t->infer};
    bool found = false;
    for (int k = 0; k < 2; k++) {
        hone_value *v = hone_graph_find(gs[k], name);
        if (!v || !v->data)
            continue;
        if (v->data->dtype != src->dtype || v->data->numel != src->numel)
            return hone_fail(t->ctx, HONE_ERR_SHAPE, "constant '%s' has another type or size",
                             name);
        if (v->data != src)
            memcpy(v->data->data, src->data, hone_tensor_nbytes(src));
        found = true;
    }
    return found ? HONE_OK : hone_fail(t->ctx, HONE_ERR_ARG, "no constant '%s' to set", name);
}

/* ===================== data-parallel and checkpoint access ===================== */

int hone_trainer_n_bn(const hone_trainer *t)
{
    return t->n_bn;
}

void hone_trainer_bn_running(hone_trainer *t, int i, hone_tensor **mean, hone_tensor **var)
{
    const bn_stat *b = i >= 0 && i < t->n_bn ? &t->bn[i] : NULL;
    bool ok = b && b->run_mean && b->run_var;
    *mean = ok ? b->run_mean->data : NULL;
    *var = ok ? b->run_var->data : NULL;
}
