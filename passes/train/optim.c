/*
 * Optimisers over (parameter, gradient) tensor pairs.
 *
 * The update rules are torch.optim's, so a recipe carries over unchanged:
 *
 *   SGD       g += wd * p; buf = m * buf + g (buf = g on the first step);
 *             p -= lr * buf, or with Nesterov p -= lr * (g + m * buf)
 *   Adam      g += wd * p; m1 = b1 m1 + (1-b1) g; m2 = b2 m2 + (1-b2) g^2;
 *             p -= lr / (1 - b1^t) * m1 / (sqrt(m2) / sqrt(1 - b2^t) + eps)
 *   AdamW     p *= 1 - lr * wd, then Adam without the L2 term
 *
 * Gradient clipping runs first, over every unfrozen parameter at once
 * (torch.nn.utils.clip_grad_norm_): when the global L2 norm exceeds the
 * bound, every gradient is scaled by bound / (norm + 1e-6). The scale is
 * applied while reading the gradient, so the caller's gradients stay as they
 * were. State (momentum buffer or the two Adam moments) lives in one block
 * per parameter, allocated with the optimiser; t counts each parameter's own
 * steps, so a parameter frozen for a while keeps its bias correction right.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define CLIP_EPS 1e-6

typedef struct param_state {
    hone_tensor *p;
    float *s1, *s2;     /* momentum buffer / Adam first and second moments */
    int64_t t;          /* updates applied */
    bool frozen;
} param_state;

struct hone_optim {
    hone_ctx *ctx;
    hone_optim_spec spec;
    int n;
    param_state *ps;
};

static const char *const kind_names[HONE_OPTIM_COUNT] = {"sgd", "nesterov", "adam", "adamw"};

void hone_optim_spec_init(hone_optim_spec *s, hone_optim_kind kind)
{
    *s = (hone_optim_spec){.kind = kind, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999,
                           .eps = 1e-8};
}

int hone_optim_parse(const char *name)
{
    for (int k = 0; k < HONE_OPTIM_COUNT; k++)
        if (!strcmp(name, kind_names[k]))
            return k;
    return -1;
}

const char *hone_optim_name(hone_optim_kind k)
{
    return k >= 0 && k < HONE_OPTIM_COUNT ? kind_names[k] : "?";
}

static bool is_adam(const hone_optim_spec *s)
{
    return s->kind == HONE_OPTIM_ADAM || s->kind == HONE_OPTIM_ADAMW;
}

/* Rejects hyper-parameters torch.optim would reject. */
static hone_status check_spec(hone_ctx *ctx, const hone_optim_spec *s)
{
    if (s->kind < 0 || s->kind >= HONE_OPTIM_COUNT)
        return hone_fail(ctx, HONE_ERR_ARG, "unknown optimiser %d", (int)s->kind);
    if (!(s->momentum >= 0 && s->momentum < 1) || !(s->weight_decay >= 0))
        return hone_fail(ctx, HONE_ERR_ARG, "momentum must be in [0, 1) and weight decay >= 0 "
                         "(got %g, %g)", s->momentum, s->weight_decay);
    if (s->kind == HONE_OPTIM_NESTEROV && s->momentum == 0)
        return hone_fail(ctx, HONE_ERR_ARG, "Nesterov momentum needs a momentum above 0");
    if (!(s->beta1 >= 0 && s->beta1 < 1) || !(s->beta2 >= 0 && s->beta2 < 1) || !(s->eps > 0))
        return hone_fail(ctx, HONE_ERR_ARG, "Adam betas must be in [0, 1) and eps > 0 "
                         "(got %g, %g, %g)", s->beta1, s->beta2, s->eps);
    if (!(s->clip_norm >= 0))
        return hone_fail(ctx, HONE_ERR_ARG, "clipping norm must be >= 0, got %g", s->clip_norm);
    return HONE_OK;
}

/* State floats per parameter element: 0 (plain SGD), 1 (momentum) or 2 (Adam). */
static int state_slots(const hone_optim_spec *s)
{
    return is_adam(s) ? 2 : s->momentum > 0 ? 1 : 0;
}

static hone_status init_param(hone_optim *o, int i, hone_tensor *p)
{
    char buf[64];
    if (!p || p->dtype != HONE_DT_FLOAT)
        return hone_fail(o->ctx, HONE_ERR_ARG, "optimiser parameter %d is %s, not a float tensor",
                         i, p ? hone_tensor_type_str(p, buf, sizeof buf) : "missing");
    param_state *ps = &o->ps[i];
    ps->p = p;
    int slots = state_slots(&o->spec);
    if (slots == 0 || p->numel == 0)
        return HONE_OK;
    ps->s1 = calloc((size_t)p->numel * (size_t)slots, sizeof(float));
    if (!ps->s1)
        return hone_fail(o->ctx, HONE_ERR_NOMEM, "out of memory for optimiser state of %lld "
                         "values", (long long)p->numel);
    ps->s2 = slots == 2 ? ps->s1 + p->numel : NULL;
    return HONE_OK;
}

hone_status hone_optim_new(hone_ctx *ctx, const hone_optim_spec *spec, int n,
                           hone_tensor *const *params, hone_optim **out)
{
    *out = NULL;
    hone_status st = check_spec(ctx, spec);
    if (st)
        return st;
    hone_optim *o = calloc(1, sizeof *o);
    if (!o || !(o->ps = calloc((size_t)(n > 0 ? n : 1), sizeof *o->ps))) {
        free(o);
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory for an optimiser of %d parameters", n);
    }
    o->ctx = ctx;
    o->spec = *spec;
    o->n = n;
    for (int i = 0; i < n && !st; i++)
        st = init_param(o, i, params[i]);
    if (st) {
        hone_optim_free(o);
        return st;
    }
    *out = o;
    return HONE_OK;
}

void hone_optim_free(hone_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++)
        free(o->ps[i].s1);
    free(o->ps);
    free(o);
}

void hone_optim_set_frozen(hone_optim *o, int i, bool frozen)
{
    HONE_ASSERT(i >= 0 && i < o->n);
    o->ps[i].frozen = frozen;
}

bool hone_optim_frozen(const hone_optim *o, int i)
{
    HONE_ASSERT(i >= 0 && i < o->n);
    return o->ps[i].frozen;
}

void hone_optim_set_momentum(hone_optim *o, double m)
{
    if (is_adam(&o->spec))
        o->spec.beta1 = m;
    else
        o->spec.momentum = m;
}

int64_t hone_optim_steps(const hone_optim *o, int i)
{
    HONE_ASSERT(i >= 0 && i < o->n);
    return o->ps[i].t;
}

/* Gradients that take part in this step: present and of the parameter's size. */
static hone_status check_grads(hone_optim *o, const hone_tensor *const *grads)
{
    for (int i = 0; i < o->n; i++) {
        const hone_tensor *g = grads[i];
        if (!g || o->ps[i].frozen)
            continue;
        if (g->dtype != HONE_DT_FLOAT || g->numel != o->ps[i].p->numel)
            return hone_fail(o->ctx, HONE_ERR_SHAPE, "gradient %d has %lld %s values for a "
                             "parameter of %lld floats", i, (long long)g->numel,
                             hone_dtype_name(g->dtype), (long long)o->ps[i].p->numel);
    }
    return HONE_OK;
}

/* Global L2 norm of the gradients of unfrozen parameters. */
static double grad_norm(const hone_optim *o, const hone_tensor *const *grads)
{
    double ss = 0;
    for (int i = 0; i < o->n; i++) {
        if (!grads[i] || o->ps[i].frozen)
            continue;
        const float *g = grads[i]->data;
        for (int64_t j = 0; j < grads[i]->numel; j++)
            ss += (double)g[j] * g[j];
    }
    return sqrt(ss);
}

/* SGD (heavy-ball or Nesterov) update of one parameter; gs scales the gradient. */
static void sgd_update(const hone_optim_spec *s, param_state *ps, const float *grad, float gs,
                       float lr)
{
    float *p = ps->p->data, *buf = ps->s1;
    float wd = (float)s->weight_decay, m = (float)s->momentum;
    for (int64_t j = 0; j < ps->p->numel; j++) {
        float g = grad[j] * gs + wd * p[j];
        if (buf) {
            buf[j] = ps->t == 0 ? g : m * buf[j] + g;
            g = s->kind == HONE_OPTIM_NESTEROV ? g + m * buf[j] : buf[j];
        }
        p[j] -= lr * g;
    }
}

/* Adam / AdamW update of one parameter at its step t (1-based). */
static void adam_update(const hone_optim_spec *s, param_state *ps, const float *grad, float gs,
                        float lr)
{
    float *p = ps->p->data, *m1 = ps->s1, *m2 = ps->s2;
    /* 1 - beta in double first, as torch does: 1 - (float)0.999 is off by 1e-5 */
    float c1 = (float)(1 - s->beta1), b2 = (float)s->beta2, c2 = (float)(1 - s->beta2);
    float eps = (float)s->eps;
    float wd = (float)s->weight_decay, l2 = s->kind == HONE_OPTIM_ADAM ? wd : 0;
    double t = (double)(ps->t + 1);
    float step = (float)(lr / (1 - pow(s->beta1, t)));
    float bc2 = (float)sqrt(1 - pow(s->beta2, t));
    if (s->kind == HONE_OPTIM_ADAMW)
        for (int64_t j = 0; j < ps->p->numel; j++)
            p[j] *= 1 - lr * wd;
    for (int64_t j = 0; j < ps->p->numel; j++) {
        float g = grad[j] * gs + l2 * p[j];
        m1[j] += c1 * (g - m1[j]);
        m2[j] = b2 * m2[j] + c2 * g * g;
        p[j] -= step * m1[j] / (sqrtf(m2[j]) / bc2 + eps);
    }
}

hone_status hone_optim_step(hone_optim *o, const hone_tensor *const *grads, double lr,
                            double *norm)
{
    hone_status st = check_grads(o, grads);
    if (st)
        return st;
    if (!(lr >= 0) || !isfinite(lr))
        return hone_fail(o->ctx, HONE_ERR_ARG, "learning rate must be finite and >= 0, got %g", lr);
    double gn = grad_norm(o, grads);
    if (norm)
        *norm = gn;
    float gs = 1;
    if (o->spec.clip_norm > 0 && o->spec.clip_norm / (gn + CLIP_EPS) < 1)
        gs = (float)(o->spec.clip_norm / (gn + CLIP_EPS));
    for (int i = 0; i < o->n; i++) {
        param_state *ps = &o->ps[i];
        if (!grads[i] || ps->frozen)
            continue;
        if (is_adam(&o->spec))
            adam_update(&o->spec, ps, grads[i]->data, gs, (float)lr);
        else
            sgd_update(&o->spec, ps, grads[i]->data, gs, (float)lr);
        ps->t++;
    }
    return HONE_OK;
}

float *hone_optim_state(hone_optim *o, int i, int64_t *n, int64_t **t)
{
    HONE_ASSERT(i >= 0 && i < o->n);
    param_state *ps = &o->ps[i];
    *n = ps->s1 ? ps->p->numel * state_slots(&o->spec) : 0;
    *t = &ps->t;
    return ps->s1;
}
