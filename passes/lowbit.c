/*
 * Low-bit weight quantization, the frame shared by slb, quantize-rtn and
 * quantize-ste (lowbit.h has the map). Everything here is method-neutral:
 * which convs, which scales, calibrated activation ranges, BN re-estimation,
 * BN folding into the dequantization scales and the exported form.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "interp.h"
#include "lowbit.h"

/* ===================== levels ===================== */

lb_grid lb_grid_of(int bits)
{
    lb_grid gr = {bits, 1 << bits, 2, (1 << bits) - 1};
    if (bits >= 8)
        gr = (lb_grid){8, 255, 1, 127};
    return gr;
}

double lb_level(const lb_grid *gr, int i)
{
    return (double)(gr->step * i - gr->qmax) / gr->qmax;
}

int lb_nearest(const lb_grid *gr, double u)
{
    double r = nearbyint((u * gr->qmax + gr->qmax) / gr->step);
    return r < 0 ? 0 : r > gr->k - 1 ? gr->k - 1 : (int)r;
}

/* ===================== choosing convs and scales ===================== */

static bool quantizable(const hone_node *n)
{
    return hone_pass_is_op(n, "Conv") && n->n_in >= 2 && hone_pass_is_const(n->in[1]) &&
           n->in[1]->data->dtype == HONE_DT_FLOAT && n->in[1]->data->rank >= 3;
}

static bool in_job(const hone_node *n, void *user)
{
    const lb_job *job = user;
    for (int k = 0; k < job->n; k++)
        if (job->layers[k].conv == n)
            return true;
    return false;
}

/* Squared error of quantizing w[0..n) with scale s. */
static double quant_err(const lb_grid *gr, const float *w, int64_t n, double s)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = w[i] - s * lb_level(gr, lb_nearest(gr, w[i] / s));
        e += d * d;
    }
    return e;
}

/* The MSE-best scale among 64 clippings of max|w| (the same rule for every
 * method, so ablations differ only in how levels are chosen). */
static double best_scale(const lb_grid *gr, const float *w, int64_t n)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(w[i]));
    if (mx == 0)
        return 1;
    double best = mx, err = INFINITY;
    for (int t = 1; t <= 64; t++) {
        double s = mx * t / 64.0, e = quant_err(gr, w, n, s);
        if (e < err)
            err = e, best = s;
    }
    return best;
}

static void init_layer(lb_job *job, lb_layer *l, hone_node *conv)
{
    l->conv = conv;
    l->w = hone_tensor_clone(conv->in[1]->data);
    l->cout = l->w->dims[0];
    l->per = l->w->numel / l->cout;
    l->scale = malloc(sizeof *l->scale * (size_t)l->cout);
    l->idx = malloc((size_t)l->w->numel);
    HONE_ASSERT(l->w && l->scale && l->idx);
    const float *w = l->w->data;
    double layer_s = job->per_channel ? 0 : best_scale(&job->grid, w, l->w->numel);
    for (int64_t c = 0; c < l->cout; c++)
        l->scale[c] = (float)(job->per_channel ? best_scale(&job->grid, w + c * l->per, l->per)
                                               : layer_s);
    for (int64_t i = 0; i < l->w->numel; i++)
        l->idx[i] = (uint8_t)lb_nearest(&job->grid, w[i] / l->scale[i / l->per]);
}

static void pick_layers(lb_job *job, bool keep_first)
{
    hone_graph *g = job->g;
    job->layers = calloc((size_t)g->n_nodes + 1, sizeof *job->layers);
    HONE_ASSERT(job->layers);
    bool first = true;
    for (int i = 0; i < g->n_nodes; i++) {
        hone_node *n = g->nodes[i];
        if (!hone_pass_is_op(n, "Conv"))
            continue;
        bool skip = first && keep_first;
        first = false;
        if (!skip && quantizable(n))
            init_layer(job, &job->layers[job->n++], n);
    }
}

/* ===================== calibration data ===================== */

/* The first `samples` training (not held-out) samples. */
static hone_status gather_calib(lb_job *job, int64_t samples)
{
    hone_ctx *ctx = job->pc->ctx;
    int64_t *tr = NULL, *held = NULL, n_tr = 0, n_held = 0;
    hone_status st = hone_fit_split(ctx, job->data->x->dims[0], job->data->val_split, &tr, &n_tr,
                                    &held, &n_held);
    if (!st && n_tr < 1)
        st = hone_fail(ctx, HONE_ERR_ARG, "no training samples left after the held-out split");
    int64_t k = n_tr < samples ? n_tr : samples;
    if (!st)
        st = hone_data_gather(ctx, job->data->x, tr, k, k, &job->calib);
    free(tr);
    free(held);
    return st;
}

/* ===================== activation ranges (acts=8) ===================== */

typedef struct range_acc {
    hone_value **vals;
    double *lo, *hi;
    int n;
} range_acc;

static void on_range(void *user, const hone_value *v, const hone_tensor *t)
{
    range_acc *r = user;
    for (int k = 0; k < r->n; k++) {
        if (r->vals[k] != v || t->dtype != HONE_DT_FLOAT)
            continue;
        const float *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            r->lo[k] = fmin(r->lo[k], p[i]);
            r->hi[k] = fmax(r->hi[k], p[i]);
        }
    }
}

/* Runs g over the calibration samples in batches of 64 with hooks. */
static hone_status run_calib(lb_job *job, const hone_interp_hooks *hooks)
{
    hone_ctx *ctx = job->pc->ctx;
    int64_t b0 = job->g->inputs[0]->rank > 0 ? job->g->inputs[0]->dims[0] : -1;
    int64_t n = job->calib->dims[0], b = b0 > 0 ? b0 : 64; /* a fixed model batch wins */
    int64_t *idx = malloc(sizeof *idx * (size_t)b);
    HONE_ASSERT(idx);
    hone_status st = HONE_OK;
    for (int64_t pos = 0; pos < n && !st; pos += b) {
        int64_t k = n - pos < b ? n - pos : b;
        for (int64_t i = 0; i < k; i++)
            idx[i] = pos + i;
        hone_tensor *xb = NULL, *outs[16] = {0};
        st = hone_data_gather(ctx, job->calib, idx, k, k, &xb);
        const hone_tensor *ins[1] = {xb};
        if (!st && job->g->n_outputs > 16)
            st = hone_fail(ctx, HONE_ERR_UNSUPPORTED, "more than 16 graph outputs");
        if (!st)
            st = hone_interp_run(ctx, job->g, ins, outs, hooks);
        for (int i = 0; i < 16; i++)
            hone_tensor_free(outs[i]);
        hone_tensor_free(xb);
    }
    free(idx);
    return st;
}

static hone_value *scalar_f(hone_graph *g, double x, const char *hint)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(&ctx, HONE_DT_FLOAT, 0, NULL, &t));
    *(float *)t->data = (float)x;
    return hone_pass_new_const(g, t, hint);
}

/* FakeQuant(v) over the uint8 grid covering [lo, hi] (and 0); convs of the
 * job reading v read its output instead. */
static void insert_fake_quant(lb_job *job, hone_value *v, double lo, double hi)
{
    hone_graph *g = job->g;
    lo = fmin(lo, 0);
    hi = fmax(hi, lo + 1e-6);
    double s = (hi - lo) / 255, zp = fmin(fmax(nearbyint(-lo / s), 0), 255);
    const char *base = hone_arena_printf(g->arena, "%s_fq", v->name);
    hone_node *n = hone_graph_add_node(g, "FakeQuant", "hone", base, 3, 1);
    n->in[0] = v;
    n->in[1] = scalar_f(g, s, hone_arena_printf(g->arena, "%s_scale", base));
    n->in[2] = scalar_f(g, zp, hone_arena_printf(g->arena, "%s_zero_point", base));
    n->out[0] = hone_graph_new_value(g, base);
    for (int k = 0; k < job->n; k++)
        if (job->layers[k].conv->in[0] == v)
            job->layers[k].conv->in[0] = n->out[0];
    job->n_fq++;
}

static hone_status quantize_acts(lb_job *job)
{
    range_acc r = {0};
    r.vals = calloc((size_t)job->n + 1, sizeof *r.vals);
    r.lo = malloc(sizeof *r.lo * ((size_t)job->n + 1));
    r.hi = malloc(sizeof *r.hi * ((size_t)job->n + 1));
    HONE_ASSERT(r.vals && r.lo && r.hi);
    for (int k = 0; k < job->n; k++) {
        hone_value *v = job->layers[k].conv->in[0];
        bool seen = false;
        for (int j = 0; j < r.n && !seen; j++)
            seen = r.vals[j] == v;
        if (!seen)
            r.vals[r.n] = v, r.lo[r.n] = INFINITY, r.hi[r.n++] = -INFINITY;
    }
    hone_interp_hooks hooks = {on_range, &r};
    hone_status st = run_calib(job, &hooks);
    hone_pass_add_opset(job->g, "hone", 1);
    for (int j = 0; j < r.n && !st; j++)
        insert_fake_quant(job, r.vals[j], r.lo[j], r.hi[j]);
    free(r.vals);
    free(r.lo);
    free(r.hi);
    return st;
}

/* ===================== begin ===================== */

/* Whether the pass has option `name` (quantize-rtn has no training ones). */
static bool has_opt(const hone_pass_ctx *pc, const char *name)
{
    for (int k = 0; k < HONE_PASS_MAX_OPTS && pc->inst->info->opts[k].name; k++)
        if (!strcmp(pc->inst->info->opts[k].name, name))
            return true;
    return false;
}

void lb_fit_spec(lb_job *job, hone_fit_spec *spec)
{
    hone_pass_ctx *pc = job->pc;
    hone_fit_spec_init(spec);
    hone_optim_spec_init(&spec->optim, HONE_OPTIM_ADAM);
    spec->min_lr = 0;
    spec->batch = 64;
    if (has_opt(pc, "steps")) {
        spec->lr = hone_pass_opt_float(pc, "lr");
        spec->max_steps = hone_pass_opt_int(pc, "steps");
        spec->seed = (uint64_t)hone_pass_opt_int(pc, "seed");
    }
    spec->val_split = job->data->val_split;
    spec->teacher = job->teacher;
    spec->train.loss = job->data->labels ? HONE_LOSS_CE_KD : HONE_LOSS_KD;
    spec->train.kd_alpha = 0.5f;
    spec->train.temperature = 4;
    spec->flip = false;
}

static hone_status check_opts(lb_job *job, int bits)
{
    const char *gran = hone_pass_opt_str(job->pc, "granularity");
    if (bits < 1 || bits > 8)
        return hone_fail(job->pc->ctx, HONE_ERR_ARG, "bits must be 1..8, not %d", bits);
    if (job->acts != 32 && job->acts != 8)
        return hone_fail(job->pc->ctx, HONE_ERR_ARG, "acts must be 32 or 8, not %d", job->acts);
    if (strcmp(gran, "channel") && strcmp(gran, "layer"))
        return hone_fail(job->pc->ctx, HONE_ERR_ARG,
                         "granularity must be channel or layer, not '%s'", gran);
    const char *fmt = hone_pass_opt_str(job->pc, "format");
    if (strcmp(fmt, "onnx") && strcmp(fmt, "packed"))
        return hone_fail(job->pc->ctx, HONE_ERR_ARG, "format must be onnx or packed, not '%s'",
                         fmt);
    job->per_channel = !strcmp(gran, "channel");
    return HONE_OK;
}

hone_status lb_begin(hone_pass_ctx *pc, hone_graph *g, lb_job *job)
{
    memset(job, 0, sizeof *job);
    job->pc = pc;
    job->g = g;
    int bits = (int)hone_pass_opt_int(pc, "bits");
    job->acts = (int)hone_pass_opt_int(pc, "acts");
    job->grid = lb_grid_of(bits);
    hone_status st = check_opts(job, bits);
    if (!st)
        st = hone_pass_need_data(pc, "calibration, BN re-estimation and training", &job->data);
    if (st)
        return st;
    if (g->n_inputs != 1)
        return hone_fail(pc->ctx, HONE_ERR_UNSUPPORTED, "the model must have one input");
    job->teacher = hone_graph_clone(g);
    job->fd = (hone_fit_data){job->data->x, job->data->labels, NULL};
    if ((st = gather_calib(job, hone_pass_opt_int(pc, "samples"))))
        return st;
    pick_layers(job, hone_pass_opt_bool(pc, "keep-first"));
    if (!job->n)
        return hone_fail(pc->ctx, HONE_ERR_ARG, "no Conv with constant float weights to quantize");
    int n_bn = 0;
    st = hone_unfold_bn(pc->ctx, g, job->calib, job->calib->dims[0], 1e-5, in_job, job, &n_bn);
    hone_pass_note(pc, "BN unfolded", n_bn);
    if (!st)
        st = hone_graph_toposort(pc->ctx, g);
    if (!st && job->acts == 8 && !(st = quantize_acts(job)))
        st = hone_graph_toposort(pc->ctx, g);
    hone_fit_spec spec;
    lb_fit_spec(job, &spec);
    if (!st)
        st = hone_fit_evaluate(pc->ctx, job->teacher, &job->fd, &spec, &job->kind, &job->before);
    hone_pass_log(pc, "%d convs at %d bits (%s), activations %d-bit; before: %s %.4f", job->n,
                  bits, job->per_channel ? "per channel" : "per layer", job->acts,
                  hone_fit_metric_name(job->kind), job->before);
    return st;
}

/* ===================== finish ===================== */

hone_tensor *lb_new_tensor(hone_dtype dt, int rank, const int64_t *dims)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    HONE_ASSERT(!hone_tensor_new(&ctx, dt, rank, dims, &t));
    return t;
}

hone_node *lb_add_node(hone_graph *g, const char *op, const char *name, hone_value *x,
                       hone_value *y)
{
    hone_node *n = hone_graph_add_node(g, op, "", name, y ? 2 : 1, 1);
    n->in[0] = x;
    if (y)
        n->in[1] = y;
    n->out[0] = hone_graph_new_value(g, name);
    return n;
}

hone_value *lb_channel_const(hone_graph *g, int r, int64_t m, const float *s, const char *name)
{
    int64_t dims[HONE_MAX_RANK];
    for (int i = 0; i < r; i++)
        dims[i] = i ? 1 : m;
    hone_tensor *t = lb_new_tensor(HONE_DT_FLOAT, r, dims);
    memcpy(t->data, s, sizeof(float) * (size_t)m);
    return hone_pass_new_const(g, t, name);
}

hone_status lb_train(lb_job *job, hone_value *const *params, int n,
                     hone_status (*hook)(void *, hone_trainer *, const hone_fit_step_info *),
                     void *user)
{
    hone_fit_spec spec;
    lb_fit_spec(job, &spec);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    HONE_ASSERT(names);
    for (int i = 0; i < n; i++)
        names[i] = params[i]->name;
    spec.train.trainable = names;
    spec.train.n_trainable = n;
    spec.before_step = hook;
    spec.user = user;
    hone_fit_result res;
    hone_status st = hone_graph_toposort(job->pc->ctx, job->g);
    if (!st)
        st = hone_fit(job->pc->ctx, job->g, &job->fd, &spec, &res);
    if (!st)
        hone_pass_log(job->pc, "trained %lld steps (%.0f images/s)", (long long)res.steps,
                      res.images_per_s);
    free(names);
    return st;
}

hone_status lb_run(hone_pass_ctx *pc, hone_graph *g, hone_status (*method)(lb_job *job))
{
    lb_job job;
    hone_status st = lb_begin(pc, g, &job);
    if (!st && method)
        st = method(&job);
    if (st) {
        lb_job_free(&job);
        return st;
    }
    return lb_finish(&job);
}

void lb_set_discrete(lb_job *job)
{
    for (int k = 0; k < job->n; k++) {
        lb_layer *l = &job->layers[k];
        hone_tensor *t = lb_new_tensor(HONE_DT_FLOAT, l->w->rank, l->w->dims);
        float *p = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            p[i] = (float)(lb_level(&job->grid, l->idx[i]) * l->scale[i / l->per]);
        l->conv->in[1] = hone_pass_new_const(job->g, t, l->conv->in[1]->name);
    }
    hone_graph_update_uses(job->g);
    hone_graph_remove_dead(job->g);
    HONE_ASSERT(!hone_graph_toposort(job->pc->ctx, job->g)); /* removing nodes keeps it acyclic */
}

/* The BN node reading the conv's output (the one hone_unfold_bn added). */
static hone_node *bn_after(hone_graph *g, const hone_node *conv)
{
    hone_node *u = hone_pass_single_user(g, conv->out[0]);
    return u && hone_pass_is_op(u, "BatchNormalization") && u->n_in == 5 ? u : NULL;
}

/* Folds the BN after layer l into its per-channel scales (dq, codes with
 * the sign of the BN scale) and a new conv bias. */
static void fold_layer(lb_job *job, lb_layer *l, hone_node *bn, double *dq, int8_t *q)
{
    hone_graph *g = job->g;
    double eps = hone_attr_float(bn, "epsilon", 1e-5f);
    hone_tensor *bias = lb_new_tensor(HONE_DT_FLOAT, 1, &l->cout);
    for (int64_t c = 0; c < l->cout; c++) {
        double f = hone_tensor_get_f64(bn->in[1]->data, c) /
                   sqrt(hone_tensor_get_f64(bn->in[4]->data, c) + eps);
        ((float *)bias->data)[c] = (float)(hone_tensor_get_f64(bn->in[2]->data, c) -
                                           hone_tensor_get_f64(bn->in[3]->data, c) * f);
        dq[c] = fabs(f) * l->scale[c] / job->grid.qmax;
        for (int64_t i = c * l->per; i < (c + 1) * l->per; i++) {
            int v = job->grid.step * l->idx[i] - job->grid.qmax;
            q[i] = (int8_t)(f < 0 ? -v : v);
        }
    }
    hone_pass_set_input(g, l->conv, 2, hone_pass_new_const(g, bias, "slb_bias"));
    l->conv->out[0] = bn->out[0]; /* the conv takes over the BN's output (and its name) */
    bn->out[0] = NULL;
    hone_pass_remove_node(g, bn);
}

/* DequantizeLinear(codes, scale, zero, axis 0) as new constants and node named after
 * base: BASE_<tag>dq reading BASE_<tag>q, BASE_<tag>scale, BASE_<tag>zero, writing
 * BASE_<out>; returns that value. */
static hone_value *axis0_dq(hone_graph *g, const char *base, const char *tag, hone_tensor *codes,
                            hone_tensor *scale, hone_tensor *zero, const char *out)
{
    hone_node *n = hone_graph_add_node(g, "DequantizeLinear", "",
                                       hone_arena_printf(g->arena, "%s_%sdq", base, tag), 3, 1);
    n->in[0] = hone_pass_new_const(g, codes, hone_arena_printf(g->arena, "%s_%sq", base, tag));
    n->in[1] = hone_pass_new_const(g, scale, hone_arena_printf(g->arena, "%s_%sscale", base, tag));
    n->in[2] = hone_pass_new_const(g, zero, hone_arena_printf(g->arena, "%s_%szero", base, tag));
    hone_node_set_attr_int(g, n, "axis", 0);
    n->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_%s", base, out));
    return n->out[0];
}

/* int8 codes -> DequantizeLinear(axis 0) -> the conv's weight input. */
static void export_onnx(lb_job *job, lb_layer *l, const double *dq, const int8_t *q)
{
    hone_graph *g = job->g;
    hone_tensor *qt = lb_new_tensor(HONE_DT_INT8, l->w->rank, l->w->dims);
    memcpy(qt->data, q, (size_t)qt->numel);
    hone_tensor *st = lb_new_tensor(HONE_DT_FLOAT, 1, &l->cout);
    hone_tensor *zt = lb_new_tensor(HONE_DT_INT8, 1, &l->cout);
    for (int64_t c = 0; c < l->cout; c++)
        ((float *)st->data)[c] = (float)dq[c];
    l->conv->in[1] = axis0_dq(g, l->conv->name, "w", qt, st, zt, "w");
}

/* For a conv reading 8-bit activations (a FakeQuant's output) with a constant bias:
 * the bias as int32 codes at scale x_scale * w_scale[c] (float products) through
 * DequantizeLinear, the form ONNX quantizers write. ONNX Runtime's int8 kernels
 * (QLinearConv, which it fuses Q/DQ chains into) add an int32 bias to the exact
 * integer sums; given a float bias they round it to that grid themselves, and their
 * results would then differ from the spec'd float ops by that rounding. */
static void export_bias(lb_job *job, lb_layer *l, const double *dq)
{
    hone_graph *g = job->g;
    hone_node *conv = l->conv, *fq = conv->in[0]->producer;
    const hone_value *b = conv->n_in > 2 ? conv->in[2] : NULL;
    if (!fq || strcmp(fq->domain, "hone") || strcmp(fq->op_type, "FakeQuant") || !b ||
        !hone_pass_is_const(b) || b->data->dtype != HONE_DT_FLOAT || b->data->numel != l->cout)
        return;
    float sx = (float)hone_tensor_get_f64(fq->in[1]->data, 0);
    hone_tensor *qt = lb_new_tensor(HONE_DT_INT32, 1, &l->cout);
    hone_tensor *st = lb_new_tensor(HONE_DT_FLOAT, 1, &l->cout);
    hone_tensor *zt = lb_new_tensor(HONE_DT_INT32, 1, &l->cout);
    for (int64_t c = 0; c < l->cout; c++) {
        float s = sx * (float)dq[c];
        double v = s > 0 ? nearbyint(hone_tensor_get_f64(b->data, c) / s) : 0;
        if (!(s > 0) || fabs(v) > 2147483647.0) { /* no grid for this channel: keep float */
            hone_tensor_free(qt);
            hone_tensor_free(st);
            hone_tensor_free(zt);
            return;
        }
        ((int32_t *)qt->data)[c] = (int32_t)v;
        ((float *)st->data)[c] = s;
    }
    hone_pass_set_input(g, conv, 2, axis0_dq(g, conv->name, "b", qt, st, zt, "bias"));
}

/* hone.FakeQuant -> QuantizeLinear + DequantizeLinear (uint8). */
static void export_fake_quant(hone_graph *g, hone_node *fq)
{
    hone_tensor *z = lb_new_tensor(HONE_DT_UINT8, 0, NULL);
    *(uint8_t *)z->data = (uint8_t)hone_tensor_get_f64(fq->in[2]->data, 0);
    hone_value *zp = hone_pass_new_const(g, z, hone_arena_printf(g->arena, "%s_u8", fq->name));
    hone_node *q = hone_graph_add_node(g, "QuantizeLinear", "",
                                       hone_arena_printf(g->arena, "%s_q", fq->name), 3, 1);
    q->in[0] = fq->in[0];
    q->in[1] = fq->in[1];
    q->in[2] = zp;
    q->out[0] = hone_graph_new_value(g, hone_arena_printf(g->arena, "%s_q", fq->name));
    hone_node *d = hone_graph_add_node(g, "DequantizeLinear", "",
                                       hone_arena_printf(g->arena, "%s_dq", fq->name), 3, 1);
    d->in[0] = q->out[0];
    d->in[1] = fq->in[1];
    d->in[2] = zp;
    d->out[0] = fq->out[0];
    fq->out[0] = hone_graph_new_value(g, NULL);
}

static void export_all(lb_job *job)
{
    hone_graph *g = job->g;
    hone_graph_update_uses(g);
    for (int k = 0; k < job->n; k++) {
        lb_layer *l = &job->layers[k];
        hone_node *bn = bn_after(g, l->conv);
        double *dq = malloc(sizeof *dq * (size_t)l->cout);
        int8_t *q = malloc((size_t)l->w->numel);
        HONE_ASSERT(dq && q);
        if (bn) {
            fold_layer(job, l, bn, dq, q);
            hone_graph_update_uses(g);
        } else {
            for (int64_t i = 0; i < l->w->numel; i++)
                q[i] = (int8_t)(job->grid.step * l->idx[i] - job->grid.qmax);
            for (int64_t c = 0; c < l->cout; c++)
                dq[c] = l->scale[c] / job->grid.qmax;
        }
        export_onnx(job, l, dq, q);
        export_bias(job, l, dq);
        free(dq);
        free(q);
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->domain, "hone") && !strcmp(g->nodes[i]->op_type, "FakeQuant"))
            export_fake_quant(g, g->nodes[i]);
    if (!strcmp(hone_pass_opt_str(job->pc, "format"), "packed"))
        hone_pass_note(job->pc, "weights packed", lb_pack(g));
    hone_graph_update_uses(g);
    hone_graph_remove_dead(g);
}

static void report(lb_job *job)
{
    hone_pass_ctx *pc = job->pc;
    int64_t weights = 0;
    for (int k = 0; k < job->n; k++)
        weights += job->layers[k].w->numel;
    hone_pass_note(pc, "convs quantized", job->n);
    hone_pass_note(pc, "weights quantized", weights);
    hone_pass_note(pc, "activations quantized", job->n_fq);
    hone_pass_log(pc, "held-out %s: %.4f before, %.4f after", hone_fit_metric_name(job->kind),
                  job->before, job->after);
    hone_pass_detail(pc, "{\"bits\":%d,\"acts\":%d,\"convs\":%d,\"weights\":%lld,"
                         "\"metric\":\"%s\",\"before\":%.6g,\"after\":%.6g}",
                     job->grid.bits, job->acts, job->n, (long long)weights,
                     hone_fit_metric_name(job->kind), isnan(job->before) ? -1 : job->before,
                     isnan(job->after) ? -1 : job->after);
}

hone_status lb_finish(lb_job *job)
{
    hone_pass_ctx *pc = job->pc;
    lb_set_discrete(job);
    int n_bn = 0;
    int64_t b0 = job->g->inputs[0]->rank > 0 ? job->g->inputs[0]->dims[0] : -1;
    hone_status st = hone_bn_recalibrate(pc->ctx, job->g, job->calib, b0 > 0 ? b0 : 64, &n_bn);
    hone_pass_note(pc, "BN re-estimated", n_bn);
    hone_fit_spec spec;
    lb_fit_spec(job, &spec);
    if (!st)
        st = hone_fit_evaluate(pc->ctx, job->g, &job->fd, &spec, &job->kind, &job->after);
    if (!st) {
        report(job);
        export_all(job);
    }
    lb_job_free(job);
    return st;
}

void lb_job_free(lb_job *job)
{
    for (int k = 0; k < job->n; k++) {
        hone_tensor_free(job->layers[k].w);
        free(job->layers[k].scale);
        free(job->layers[k].idx);
    }
    free(job->layers);
    hone_graph_free(job->teacher);
    hone_tensor_free(job->calib);
    memset(job, 0, sizeof *job);
}
