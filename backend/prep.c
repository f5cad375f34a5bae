/*
 * Specialisation: the graph the backend compiles is a clone of the caller's
 * with every shape static. Symbolic input dims are fixed from the options
 * (--input-shape), then inference runs again so every value gets a concrete
 * shape. Then values computable at compile time are folded through the
 * interpreter's kernels: a node whose inputs are all known (constants or
 * folded values) runs once here and its outputs become embedded constants;
 * Shape and Size of a static value are known without its contents. This
 * removes the Shape -> Gather -> Concat -> Reshape chains of PyTorch exports,
 * so the generated code only moves tensors. Nodes whose outputs nobody needs
 * are dropped; the rest, in graph order, is the schedule.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* Largest folded output (elements); bigger values are computed at run time. */
#define FOLD_MAX_NUMEL ((int64_t)1 << 26)
/* Outputs up to this many elements are always folded; bigger ones only when
 * they are no bigger than the node's known inputs (a Transpose of weights is
 * folded, a large ConstantOfShape or Expand is computed at run time rather
 * than embedded). */
#define FOLD_SMALL_NUMEL 65536

int64_t bk_numel(const hone_value *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++)
        n *= v->dims[i];
    return n;
}

size_t bk_bytes(const hone_value *v)
{
    return (size_t)bk_numel(v) * hone_dtype_size(v->dtype);
}

const hone_tensor *bk_known(const bk_model *m, const hone_value *v)
{
    if (!v)
        return NULL;
    return v->data ? v->data : m->known[v->id];
}

static bool is_static(const hone_value *v)
{
    if (v->rank < 0 || v->dtype == HONE_DT_UNDEF)
        return false;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0)
            return false;
    return true;
}

/* Applies one --input-shape fix to the graph input it names. */
static hone_status fix_shape(hone_ctx *ctx, hone_graph *g, const hone_backend_shape *s)
{
    hone_value *v = NULL;
    char buf[256];
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i]->name, s->name))
            v = g->inputs[i];
    if (!v)
        return hone_fail(ctx, HONE_ERR_ARG, "--input-shape names '%s', which is not a graph input",
                         s->name);
    if (v->rank >= 0 && v->rank != s->rank)
        return hone_fail(ctx, HONE_ERR_ARG, "--input-shape gives '%s' rank %d, the model declares %s",
                         s->name, s->rank, hone_value_type_str(g, v, buf, sizeof buf));
    for (int d = 0; d < s->rank; d++)
        if (v->rank >= 0 && v->dims[d] >= 0 && v->dims[d] != s->dims[d])
            return hone_fail(ctx, HONE_ERR_ARG,
                             "--input-shape gives '%s' dim %d = %lld, the model fixes it to %lld",
                             s->name, d, (long long)s->dims[d], (long long)v->dims[d]);
    v->rank = s->rank;
    memcpy(v->dims, s->dims, sizeof(int64_t) * (size_t)s->rank);
    return HONE_OK;
}

/* Makes graph input `name` the constant t (a copy): it leaves the input list. */
static hone_status bind_input(hone_ctx *ctx, hone_graph *g, const char *name, const hone_tensor *t)
{
    int k = -1;
    char want[256], got[256];
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i]->name, name))
            k = i;
    if (k < 0)
        return hone_fail(ctx, HONE_ERR_ARG, "--bind names '%s', which is not a graph input", name);
    hone_value *v = g->inputs[k];
    bool ok = v->dtype == t->dtype && (v->rank < 0 || v->rank == t->rank);
    for (int d = 0; ok && v->rank >= 0 && d < t->rank; d++)
        ok = v->dims[d] < 0 || v->dims[d] == t->dims[d];
    if (!ok)
        return hone_fail(ctx, HONE_ERR_SHAPE, "--bind gives '%s' a %s, the model declares %s", name,
                         hone_tensor_type_str(t, got, sizeof got),
                         hone_value_type_str(g, v, want, sizeof want));
    hone_value_set_data(v, hone_tensor_clone(t));
    v->flags = (v->flags & ~HONE_VAL_INPUT) | HONE_VAL_CONST;
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    memmove(g->inputs + k, g->inputs + k + 1, sizeof *g->inputs * (size_t)(g->n_inputs - k - 1));
    g->n_inputs--;
    return HONE_OK;
}

bool hone_backend_shape_input(const hone_node *n, int i)
{
    static const struct { const char *op; int lo, hi; } slots[] = {
        {"Reshape", 1, 1},      {"Expand", 1, 1},        {"Tile", 1, 1},
        {"Slice", 1, 4},        {"Pad", 1, 3},           {"Resize", 1, 3},
        {"Upsample", 1, 1},     {"Squeeze", 1, 1},       {"Unsqueeze", 1, 1},
        {"Split", 1, 1},        {"TopK", 1, 1},          {"OneHot", 1, 1},
        {"Range", 0, 2},        {"ConstantOfShape", 0, 0}, {"HannWindow", 0, 0},
        {"HammingWindow", 0, 0}, {"BlackmanWindow", 0, 0}, {"MelWeightMatrix", 0, 4},
        {"CenterCropPad", 1, 2}, {"Trilu", 1, 1},        {"CumSum", 1, 1},
        {"ReduceSum", 1, 1},    {"ReduceMean", 1, 1},    {"ReduceMax", 1, 1},
        {"ReduceMin", 1, 1},    {"ReduceProd", 1, 1},    {"ReduceL1", 1, 1},
        {"ReduceL2", 1, 1},     {"ReduceLogSum", 1, 1},  {"ReduceLogSumExp", 1, 1},
        {"ReduceSumSquare", 1, 1}, {"DFT", 1, 2},        {"STFT", 1, 3},
        {"MaxUnpool", 2, 2},    {"Dropout", 1, 2},
    };
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    for (size_t k = 0; k < sizeof slots / sizeof *slots; k++)
        if (!strcmp(n->op_type, slots[k].op))
            return i >= slots[k].lo && i <= slots[k].hi;
    return false;
}

/* Fails naming every graph input whose shape is still not static. */
static hone_status check_inputs_static(hone_ctx *ctx, const hone_graph *g)
{
    char list[1024] = "", buf[256];
    size_t k = 0;
    int bad = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const hone_value *v = g->inputs[i];
        if (is_static(v))
            continue;
        bad++;
        k += (size_t)snprintf(list + k, k < sizeof list ? sizeof list - k : 0, "%s'%s' %s",
                              bad > 1 ? ", " : "", v->name,
                              hone_value_type_str(g, v, buf, sizeof buf));
        if (k >= sizeof list)
            k = sizeof list;
    }
    if (!bad)
        return HONE_OK;
    return hone_fail(ctx, HONE_ERR_ARG,
                     "compiled code needs static shapes; fix the symbolic dims of %s with "
                     "--input-shape NAME=DIMxDIM... (e.g. --input-shape %s=1x...)",
                     list, g->inputs[0]->name);
}

/* Ops never folded: their result is not a function of their inputs; and
 * hone.DequantizePacked, whose low-bit weights stay packed in the compiled code (4-32x
 * smaller than their float form) and are unpacked on the fly. */
static bool foldable_op(const hone_node *n)
{
    if (!strcmp(n->domain, "hone") && !strcmp(n->op_type, "DequantizePacked"))
        return false;
    static const char *const random[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                         "RandomUniformLike", "Multinomial", "Bernoulli"};
    for (size_t i = 0; i < sizeof random / sizeof *random; i++)
        if (!strcmp(n->op_type, random[i]))
            return false;
    return n->op != HONE_OP_UNKNOWN;
}

/* Shape (with opset-15 start/end) or Size of a static value, as a new tensor. */
static hone_status fold_shape(hone_ctx *ctx, const hone_node *n, hone_tensor **out)
{
    const hone_value *x = n->in[0];
    bool size = !strcmp(n->op_type, "Size");
    int64_t r = x->rank, lo = hone_attr_int(n, "start", 0), hi = hone_attr_int(n, "end", r);
    lo = lo < 0 ? lo + r : lo;
    hi = hi < 0 ? hi + r : hi;
    lo = lo < 0 ? 0 : lo > r ? r : lo;
    hi = hi < lo ? lo : hi > r ? r : hi;
    int64_t len = hi - lo;
    hone_status st = hone_tensor_new(ctx, HONE_DT_INT64, size ? 0 : 1, &len, out);
    if (st)
        return st;
    int64_t *d = (*out)->data;
    if (size)
        d[0] = bk_numel(x);
    for (int64_t i = 0; !size && i < len; i++)
        d[i] = x->dims[lo + i];
    return HONE_OK;
}

/* True when every present input of n is known at compile time. */
static bool inputs_known(const bk_model *m, const hone_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && !bk_known(m, n->in[i]))
            return false;
    return true;
}

/* True when n's outputs are static and small enough to embed (see FOLD_SMALL_NUMEL). */
static bool outputs_small(const hone_node *n)
{
    int64_t total = 0, in = 0;
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i]) {
            if (!is_static(n->out[i]))
                return false;
            total += bk_numel(n->out[i]);
        }
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && is_static(n->in[i]))
            in += bk_numel(n->in[i]);
    bool constant = n->n_in == 0; /* Constant: the data is in the model already */
    return total <= FOLD_SMALL_NUMEL || (total <= FOLD_MAX_NUMEL && (total <= in || constant));
}

/* True for ops whose result depends only on input 0's shape (EyeLike). */
static bool shape_only(const hone_node *n)
{
    return !*n->domain && !strcmp(n->op_type, "EyeLike") && n->n_in == 1 && n->in[0] &&
           is_static(n->in[0]) && bk_numel(n->in[0]) <= FOLD_MAX_NUMEL;
}

/* Folds node n when its outputs are computable now; errors are the model's. */
static hone_status fold_node(hone_ctx *ctx, bk_model *m, const hone_node *n)
{
    bool shape = (!strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size")) &&
                 !*n->domain && n->n_in == 1 && n->in[0] && is_static(n->in[0]);
    if (shape && n->out[0])
        return fold_shape(ctx, n, &m->known[n->out[0]->id]);
    bool dummy_in = shape_only(n) && !bk_known(m, n->in[0]);
    if (!foldable_op(n) || (!dummy_in && !inputs_known(m, n)) || !outputs_small(n))
        return HONE_OK;
    hone_tensor *dummy = NULL;
    if (dummy_in && hone_tensor_new(ctx, n->in[0]->dtype, n->in[0]->rank, n->in[0]->dims, &dummy))
        return hone_fail_wrap(ctx, "folding a compile-time value");
    const hone_tensor *in[n->n_in + 1];
    hone_tensor *out[n->n_out + 1];
    for (int i = 0; i < n->n_in; i++)
        in[i] = dummy && i == 0 ? dummy : bk_known(m, n->in[i]);
    hone_status st = hone_node_run(ctx, n, in, out, NULL);
    hone_tensor_free(dummy);
    if (st)
        return hone_fail_wrap(ctx, "folding a compile-time value");
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i])
            m->known[n->out[i]->id] = out[i];
        else
            hone_tensor_free(out[i]);
    m->n_folded++;
    return HONE_OK;
}

/* True when n still has to run: some output unknown and needed. */
static bool must_run(const bk_model *m, const hone_node *n, const bool *needed)
{
    bool any = false;
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && needed[n->out[i]->id] && !bk_known(m, n->out[i]))
            any = true;
    return any;
}

/* Schedule: the nodes that must run, in graph (topological) order. */
static hone_status schedule(hone_ctx *ctx, bk_model *m)
{
    hone_graph *g = m->g;
    bool *needed = calloc((size_t)g->n_values + 1, 1);
    bool *run = calloc((size_t)g->n_nodes + 1, 1);
    HONE_ASSERT(needed && run);
    for (int i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]->id] = true;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const hone_node *n = g->nodes[k];
        if (!must_run(m, n, needed))
            continue;
        run[k] = true;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i])
                needed[n->in[i]->id] = true;
    }
    m->sched = malloc(sizeof *m->sched * (size_t)(g->n_nodes + 1));
    HONE_ASSERT(m->sched);
    for (int k = 0; k < g->n_nodes; k++)
        if (run[k])
            m->sched[m->n_sched++] = g->nodes[k];
    free(needed);
    free(run);
    return HONE_OK;
}

/* Every value a scheduled node touches must have a static shape by now. */
static hone_status check_static(hone_ctx *ctx, const bk_model *m)
{
    char buf[256];
    for (int s = 0; s < m->n_sched; s++) {
        const hone_node *n = m->sched[s];
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && !is_static(n->out[i]))
                return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED,
                                      "output '%s' has no static shape (%s) after specialisation",
                                      n->out[i]->name,
                                      hone_value_type_str(m->g, n->out[i], buf, sizeof buf));
    }
    for (int i = 0; i < m->g->n_outputs; i++)
        if (!is_static(m->g->outputs[i]))
            return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "graph output '%s' has no static shape",
                             m->g->outputs[i]->name);
    return HONE_OK;
}

hone_status bk_model_prepare(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                             bk_model *m)
{
    memset(m, 0, sizeof *m);
    m->name = o->name ? o->name : "model";
    m->ext_weights = o->weights_path != NULL;
    m->winograd = !o->direct_conv;
    m->profile = o->profile;
    m->g = hone_graph_clone(g);
    m->known = calloc((size_t)m->g->n_values + 1, sizeof *m->known);
    HONE_ASSERT(m->known);
    hone_status st = HONE_OK;
    for (int i = 0; i < o->n_shapes && !st; i++)
        st = fix_shape(ctx, m->g, &o->shapes[i]);
    for (int i = 0; i < o->n_bind && !st; i++)
        st = bind_input(ctx, m->g, o->bind[i].name, o->bind[i].t);
    if (!st)
        st = check_inputs_static(ctx, m->g);
    if (!st)
        st = hone_graph_infer(ctx, m->g);
    for (int k = 0; k < m->g->n_nodes && !st; k++)
        st = fold_node(ctx, m, m->g->nodes[k]);
    if (!st)
        st = schedule(ctx, m);
    if (!st)
        st = check_static(ctx, m);
    return st;
}

void bk_model_free(bk_model *m)
{
    if (m->g)
        for (int i = 0; i < m->g->n_values; i++)
            hone_tensor_free(m->known[i]);
    free(m->known);
    free(m->sched);
    hone_graph_free(m->g);
    memset(m, 0, sizeof *m);
}
