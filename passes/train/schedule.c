/*
 * Learning-rate schedules, evaluated per optimiser step (0-based).
 *
 *   constant   lr
 *   cosine     min + (lr - min) * (1 + cos(pi * t / T)) / 2, t = step - warmup,
 *              T = total - warmup; min after T (torch's CosineAnnealingLR
 *              with T_max = T, stepped per batch)
 *   step       lr * gamma^k, k = number of milestones <= step (MultiStepLR)
 *   one-cycle  torch's OneCycleLR (two phases, cosine annealing): from
 *              lr/div up to lr at step pct*total - 1, then down to
 *              lr/div/final_div at step total - 1; momentum moves the other
 *              way, max -> base -> max
 *
 * Warm-up (all but one-cycle) replaces the first `warmup` steps by a linear
 * ramp lr * (step + 1) / warmup, so step 0 already trains and step
 * warmup - 1 reaches lr. Everything is computed in double from the step
 * number alone, so a resumed run gets the same rates.
 */
#include <math.h>
#include <string.h>

#include "loop.h"

static const char *const kind_names[HONE_SCHED_COUNT] = {"constant", "cosine", "step", "onecycle"};

void hone_schedule_init(hone_schedule *s, hone_sched_kind kind, double lr, int64_t total)
{
    *s = (hone_schedule){.kind = kind, .lr = lr, .total = total, .gamma = 0.1, .pct_start = 0.3,
                         .div_factor = 25, .final_div_factor = 1e4, .base_momentum = 0.85,
                         .max_momentum = 0.95};
}

int hone_schedule_parse(const char *name)
{
    for (int k = 0; k < HONE_SCHED_COUNT; k++)
        if (!strcmp(name, kind_names[k]))
            return k;
    return -1;
}

const char *hone_schedule_name(hone_sched_kind k)
{
    return k >= 0 && k < HONE_SCHED_COUNT ? kind_names[k] : "?";
}

static hone_status check_milestones(hone_ctx *ctx, const hone_schedule *s)
{
    if (s->n_milestones < 0 || s->n_milestones > HONE_SCHED_MAX_MILESTONES)
        return hone_fail(ctx, HONE_ERR_ARG, "%d milestones (at most %d)", s->n_milestones,
                         HONE_SCHED_MAX_MILESTONES);
    for (int i = 0; i < s->n_milestones; i++)
        if (s->milestones[i] < 0 || (i && s->milestones[i] <= s->milestones[i - 1]))
            return hone_fail(ctx, HONE_ERR_ARG, "milestones must be >= 0 and strictly ascending "
                             "(milestone %d is %lld)", i, (long long)s->milestones[i]);
    if (!(s->gamma > 0))
        return hone_fail(ctx, HONE_ERR_ARG, "step gamma must be > 0, got %g", s->gamma);
    return HONE_OK;
}

/* One-cycle needs a rising phase of at least one step and a falling one. */
static hone_status check_onecycle(hone_ctx *ctx, const hone_schedule *s)
{
    if (!(s->pct_start > 0 && s->pct_start < 1) || !(s->div_factor > 0) ||
        !(s->final_div_factor > 0))
        return hone_fail(ctx, HONE_ERR_ARG, "one-cycle needs pct_start in (0, 1) and positive "
                         "division factors");
    double up = s->pct_start * (double)s->total - 1;
    if (!(up > 0) || !((double)s->total - 1 - up > 0))
        return hone_fail(ctx, HONE_ERR_ARG, "one-cycle over %lld steps with pct_start %g leaves "
                         "an empty phase (train more steps)", (long long)s->total, s->pct_start);
    return HONE_OK;
}

hone_status hone_schedule_check(hone_ctx *ctx, const hone_schedule *s)
{
    if (s->kind < 0 || s->kind >= HONE_SCHED_COUNT)
        return hone_fail(ctx, HONE_ERR_ARG, "unknown schedule %d", (int)s->kind);
    if (!(s->lr >= 0) || !isfinite(s->lr) || !(s->min_lr >= 0))
        return hone_fail(ctx, HONE_ERR_ARG, "learning rates must be finite and >= 0 (lr %g, "
                         "min %g)", s->lr, s->min_lr);
    if (s->total < 1 || s->warmup < 0 || s->warmup > s->total)
        return hone_fail(ctx, HONE_ERR_ARG, "schedule of %lld steps with %lld warm-up steps",
                         (long long)s->total, (long long)s->warmup);
    if (s->kind == HONE_SCHED_STEP)
        return check_milestones(ctx, s);
    if (s->kind == HONE_SCHED_ONECYCLE)
        return check_onecycle(ctx, s);
    return HONE_OK;
}

/* Cosine interpolation from a (pct 0) to b (pct 1). */
static double cos_anneal(double a, double b, double pct)
{
    return b + (a - b) * (1 + cos(M_PI * pct)) / 2;
}

/* One-cycle position: phase 0 rising, 1 falling; *pct within the phase. */
static int onecycle_phase(const hone_schedule *s, int64_t step, double *pct)
{
    double up = s->pct_start * (double)s->total - 1, end = (double)s->total - 1;
    double t = (double)step;
    if (t <= up) {
        *pct = t / up;
        return 0;
    }
    *pct = t >= end ? 1 : (t - up) / (end - up);
    return 1;
}

static double onecycle_lr(const hone_schedule *s, int64_t step)
{
    double pct, lo = s->lr / s->div_factor, fin = lo / s->final_div_factor;
    return onecycle_phase(s, step, &pct) == 0 ? cos_anneal(lo, s->lr, pct)
                                              : cos_anneal(s->lr, fin, pct);
}

static int64_t milestones_passed(const hone_schedule *s, int64_t step)
{
    int k = 0;
    while (k < s->n_milestones && s->milestones[k] <= step)
        k++;
    return k;
}

double hone_schedule_lr(const hone_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (s->kind == HONE_SCHED_ONECYCLE)
        return onecycle_lr(s, step);
    if (step < s->warmup)
        return s->lr * (double)(step + 1) / (double)s->warmup;
    switch (s->kind) {
    case HONE_SCHED_COSINE: {
        int64_t t = step - s->warmup, span = s->total - s->warmup;
        return span <= 0 || t >= span ? s->min_lr
                                      : cos_anneal(s->lr, s->min_lr, (double)t / (double)span);
    }
    case HONE_SCHED_STEP:
        return s->lr * pow(s->gamma, (double)milestones_passed(s, step));
    default:
        return s->lr;
    }
}

double hone_schedule_momentum(const hone_schedule *s, int64_t step)
{
    if (s->kind != HONE_SCHED_ONECYCLE || (s->base_momentum == 0 && s->max_momentum == 0))
        return -1;
    double pct;
    return onecycle_phase(s, step < 0 ? 0 : step, &pct) == 0
               ? cos_anneal(s->max_momentum, s->base_momentum, pct)
               : cos_anneal(s->base_momentum, s->max_momentum, pct);
}
