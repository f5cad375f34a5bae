/*
 * Optimisers and learning-rate schedules against hand-computed values.
 *
 * Every optimiser takes two steps on p = [1, -2] with gradients [0.5, 1]
 * then [-1, 0.5]; the expected parameters are worked out in the comments
 * (torch.optim gives the same numbers). Clipping, frozen parameters, missing
 * gradients and bad arguments are checked on small cases whose answers are
 * obvious. Schedules are checked at chosen steps against their formulas.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loop.h"
#include "testutil.h"

#define TOL 1e-6

static const float G1[] = {0.5f, 1.0f}, G2[] = {-1.0f, 0.5f};

/* Runs kind for the two gradient steps above and checks p against want. */
static void two_steps(hone_optim_spec *spec, double lr, double w0, double w1)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d = 2;
    hone_tensor *p = tu_tensor_f32(1, &d, (const float[]){1.0f, -2.0f});
    hone_tensor *g1 = tu_tensor_f32(1, &d, G1), *g2 = tu_tensor_f32(1, &d, G2);
    hone_optim *o;
    assert_int_equal(hone_optim_new(&ctx, spec, 1, &p, &o), HONE_OK);
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){g1}, lr, NULL), HONE_OK);
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){g2}, lr, NULL), HONE_OK);
    assert_int_equal(hone_optim_steps(o, 0), 2);
    const float *v = p->data;
    assert_float_equal(v[0], w0, TOL);
    assert_float_equal(v[1], w1, TOL);
    hone_optim_free(o);
    hone_tensor_free(p), hone_tensor_free(g1), hone_tensor_free(g2);
}

/* SGD, momentum 0.9, wd 0.01, lr 0.1:
 *   g = [0.51, 0.98], buf = g, p = [0.949, -2.098];
 *   g = [-1 + 0.00949, 0.5 - 0.02098] = [-0.99051, 0.47902],
 *   buf = 0.9 * [0.51, 0.98] + g = [-0.53151, 1.36102], p = [1.002151, -2.234102]. */
static void test_sgd_momentum(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_SGD);
    s.weight_decay = 0.01;
    two_steps(&s, 0.1, 1.002151, -2.234102);
}

/* Nesterov: step 1 d = g + 0.9 buf = [0.969, 1.862], p = [0.9031, -2.1862];
 * step 2 g = [-0.990969, 0.478138], buf = [-0.531969, 1.360138],
 * d = [-1.4697411, 1.7022622], p = [1.05007411, -2.35642622]. */
static void test_sgd_nesterov(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_NESTEROV);
    s.weight_decay = 0.01;
    two_steps(&s, 0.1, 1.05007411, -2.35642622);
}

/* Plain SGD (momentum 0): p -= 0.1 * g twice = [1 - 0.05 + 0.1, -2 - 0.1 - 0.05]. */
static void test_sgd_plain(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_SGD);
    s.momentum = 0;
    two_steps(&s, 0.1, 1.05, -2.15);
}

/* Adam, lr 0.01: step 1 moves each weight by lr * sign(g): p = [0.99, -2.01].
 * Step 2, weight 0: m = 0.9 * 0.05 - 0.1 = -0.055, v = 0.999 * 0.00025 + 0.001
 * = 0.00124975; m^ = -0.055 / 0.19, v^ = 0.00124975 / 0.001999;
 * p = 0.99 - 0.01 * m^ / sqrt(v^) = 0.993661035. Weight 1: m = 0.14,
 * v = 0.001249, p = -2.01 - 0.01 * (0.14 / 0.19) / sqrt(0.001249 / 0.001999)
 * = -2.019321796. */
static void test_adam(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_ADAM);
    two_steps(&s, 0.01, 0.9936610354, -2.0193217962);
}

/* Adam with L2 0.1: the gradients become [0.6, 0.8], then
 * [-1 + 0.099, 0.5 - 0.201]; the same algebra gives [0.99248199, -2.01888248]. */
static void test_adam_l2(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_ADAM);
    s.weight_decay = 0.1;
    two_steps(&s, 0.01, 0.9924819888, -2.0188824834);
}

/* AdamW, wd 0.1, lr 0.01: p *= 0.999 before each Adam step:
 * [0.999 - 0.01, -1.998 - 0.01] = [0.989, -2.008]; step 2:
 * 0.989 * 0.999 + 0.003661035 = 0.991672035, -2.008 * 0.999 - 0.009321796
 * = -2.015313796. */
static void test_adamw(void **state)
{
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_ADAMW);
    s.weight_decay = 0.1;
    two_steps(&s, 0.01, 0.9916720354, -2.0153137962);
}

/* Two parameters p1 = [0, 0], p2 = [0] with gradients [3, 0] and [4]. */
typedef struct pair_case {
    hone_tensor *p[2], *g[2];
    hone_optim *o;
    hone_ctx ctx;
} pair_case;

static void pair_setup(pair_case *c, double clip)
{
    hone_ctx_init(&c->ctx);
    int64_t d2 = 2, d1 = 1;
    c->p[0] = tu_tensor_f32(1, &d2, NULL);
    c->p[1] = tu_tensor_f32(1, &d1, NULL);
    c->g[0] = tu_tensor_f32(1, &d2, (const float[]){3, 0});
    c->g[1] = tu_tensor_f32(1, &d1, (const float[]){4});
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_SGD);
    s.momentum = 0;
    s.clip_norm = clip;
    assert_int_equal(hone_optim_new(&c->ctx, &s, 2, c->p, &c->o), HONE_OK);
}

static void pair_free(pair_case *c)
{
    hone_optim_free(c->o);
    for (int i = 0; i < 2; i++)
        hone_tensor_free(c->p[i]), hone_tensor_free(c->g[i]);
}

static float val(const hone_tensor *t, int i)
{
    return ((const float *)t->data)[i];
}

/* Global norm 5 clipped to 1: every gradient scaled by 1 / (5 + 1e-6). */
static void test_clip_global_norm(void **state)
{
    pair_case c;
    pair_setup(&c, 1.0);
    double norm;
    assert_int_equal(hone_optim_step(c.o, (const hone_tensor **)c.g, 1.0, &norm), HONE_OK);
    assert_float_equal(norm, 5.0, 1e-12);
    assert_float_equal(val(c.p[0], 0), -3.0 / (5 + 1e-6), TOL);
    assert_float_equal(val(c.p[0], 1), 0, 0);
    assert_float_equal(val(c.p[1], 0), -4.0 / (5 + 1e-6), TOL);
    assert_float_equal(val(c.g[0], 0), 3, 0); /* the caller's gradients are left alone */
    pair_free(&c);
    /* a bound above the norm changes nothing */
    pair_setup(&c, 10.0);
    assert_int_equal(hone_optim_step(c.o, (const hone_tensor **)c.g, 0.5, &norm), HONE_OK);
    assert_float_equal(val(c.p[0], 0), -1.5, 0);
    assert_float_equal(val(c.p[1], 0), -2.0, 0);
    pair_free(&c);
}

/* A frozen parameter keeps its value, its step count and stays out of the norm. */
static void test_frozen(void **state)
{
    pair_case c;
    pair_setup(&c, 1.0);
    hone_optim_set_frozen(c.o, 1, true);
    assert_true(hone_optim_frozen(c.o, 1));
    assert_false(hone_optim_frozen(c.o, 0));
    double norm;
    assert_int_equal(hone_optim_step(c.o, (const hone_tensor **)c.g, 1.0, &norm), HONE_OK);
    assert_float_equal(norm, 3.0, 1e-12);
    assert_float_equal(val(c.p[0], 0), -3.0 / (3 + 1e-6), TOL);
    assert_float_equal(val(c.p[1], 0), 0, 0);
    assert_int_equal(hone_optim_steps(c.o, 0), 1);
    assert_int_equal(hone_optim_steps(c.o, 1), 0);
    /* unfrozen again, it trains; a missing gradient leaves its parameter alone */
    hone_optim_set_frozen(c.o, 1, false);
    const hone_tensor *g[2] = {NULL, c.g[1]};
    assert_int_equal(hone_optim_step(c.o, g, 0.5, &norm), HONE_OK);
    assert_float_equal(norm, 4.0, 1e-12);
    assert_float_equal(val(c.p[0], 0), -3.0 / (3 + 1e-6), TOL);
    assert_float_equal(val(c.p[1], 0), -0.5 * 4.0 / (4 + 1e-6), TOL);
    pair_free(&c);
}

/* Adam's bias correction counts each parameter's own steps. */
static void test_adam_per_param_steps(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d = 1;
    hone_tensor *p[2] = {tu_tensor_f32(1, &d, NULL), tu_tensor_f32(1, &d, NULL)};
    hone_tensor *g = tu_tensor_f32(1, &d, (const float[]){2});
    hone_optim_spec s;
    hone_optim_spec_init(&s, HONE_OPTIM_ADAM);
    hone_optim *o;
    assert_int_equal(hone_optim_new(&ctx, &s, 2, p, &o), HONE_OK);
    hone_optim_set_frozen(o, 1, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){g, g}, 0.1, NULL), HONE_OK);
    hone_optim_set_frozen(o, 1, false);
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){g, g}, 0.1, NULL), HONE_OK);
    /* a constant gradient moves Adam by lr per step (m^ / sqrt(v^) = 1) */
    assert_float_equal(val(p[0], 0), -0.4, TOL);
    assert_float_equal(val(p[1], 0), -0.1, TOL);
    hone_optim_free(o);
    hone_tensor_free(p[0]), hone_tensor_free(p[1]), hone_tensor_free(g);
}

/* Bad hyper-parameters, parameters and gradients are errors, not crashes. */
static void test_optim_errors(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d = 2, d3 = 3;
    hone_tensor *p = tu_tensor_f32(1, &d, NULL), *g3 = tu_tensor_f32(1, &d3, NULL), *ip;
    hone_optim_spec s;
    hone_optim *o;
    hone_optim_spec_init(&s, HONE_OPTIM_NESTEROV);
    s.momentum = 0;
    assert_int_equal(hone_optim_new(&ctx, &s, 1, &p, &o), HONE_ERR_ARG);
    hone_optim_spec_init(&s, HONE_OPTIM_ADAM);
    s.beta2 = 1.0;
    assert_int_equal(hone_optim_new(&ctx, &s, 1, &p, &o), HONE_ERR_ARG);
    hone_optim_spec_init(&s, HONE_OPTIM_SGD);
    s.weight_decay = -1;
    assert_int_equal(hone_optim_new(&ctx, &s, 1, &p, &o), HONE_ERR_ARG);
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &d, &ip), HONE_OK);
    hone_optim_spec_init(&s, HONE_OPTIM_SGD);
    assert_int_equal(hone_optim_new(&ctx, &s, 1, &ip, &o), HONE_ERR_ARG);
    assert_int_equal(hone_optim_new(&ctx, &s, 1, &p, &o), HONE_OK);
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){g3}, 0.1, NULL), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "gradient 0"));
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){p}, -1, NULL), HONE_ERR_ARG);
    assert_int_equal(hone_optim_step(o, (const hone_tensor *[]){p}, NAN, NULL), HONE_ERR_ARG);
    hone_optim_free(o);
    hone_tensor_free(p), hone_tensor_free(g3), hone_tensor_free(ip);
}

static void test_optim_names(void **state)
{
    assert_int_equal(hone_optim_parse("adamw"), HONE_OPTIM_ADAMW);
    assert_int_equal(hone_optim_parse("nesterov"), HONE_OPTIM_NESTEROV);
    assert_int_equal(hone_optim_parse("lamb"), -1);
    assert_string_equal(hone_optim_name(HONE_OPTIM_SGD), "sgd");
    assert_int_equal(hone_schedule_parse("onecycle"), HONE_SCHED_ONECYCLE);
    assert_int_equal(hone_schedule_parse("linear"), -1);
    assert_string_equal(hone_schedule_name(HONE_SCHED_COSINE), "cosine");
}

/* ---- schedules ---- */

static void test_constant_warmup(void **state)
{
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_CONSTANT, 0.1, 10);
    s.warmup = 4;
    const double want[] = {0.025, 0.05, 0.075, 0.1, 0.1, 0.1};
    for (int i = 0; i < 6; i++)
        assert_float_equal(hone_schedule_lr(&s, i), want[i], 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 50), 0.1, 0);
    assert_float_equal(hone_schedule_momentum(&s, 3), -1, 0);
}

/* 0.05 * (1 + cos(pi * t / 10)) at t = 0, 1, 2, 5, 9, 10. */
static void test_cosine(void **state)
{
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_COSINE, 0.1, 10);
    assert_float_equal(hone_schedule_lr(&s, 0), 0.1, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 1), 0.09755282581475769, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 2), 0.09045084971874738, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 5), 0.05, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 9), 0.002447174185242324, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 10), 0, 0);
    assert_float_equal(hone_schedule_lr(&s, 11), 0, 0);
}

/* Warm-up 2 then cosine over 10 steps from 0.1 down to 0.001. */
static void test_cosine_warmup_floor(void **state)
{
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_COSINE, 0.1, 12);
    s.warmup = 2;
    s.min_lr = 0.001;
    assert_float_equal(hone_schedule_lr(&s, 0), 0.05, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 1), 0.1, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 2), 0.1, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 7), 0.001 + 0.099 * 0.5, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 12), 0.001, 0);
}

static void test_step(void **state)
{
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_STEP, 1.0, 10);
    s.milestones[0] = 3;
    s.milestones[1] = 6;
    s.n_milestones = 2;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_OK);
    const int steps[] = {0, 2, 3, 5, 6, 100};
    const double want[] = {1, 1, 0.1, 0.1, 0.01, 0.01};
    for (int i = 0; i < 6; i++)
        assert_float_equal(hone_schedule_lr(&s, steps[i]), want[i], 1e-15);
    s.gamma = 0.5;
    assert_float_equal(hone_schedule_lr(&s, 7), 0.25, 0);
}

/* torch's OneCycleLR(max_lr=1, total_steps=100): rises from 0.04 to 1 at step
 * 29, falls to 4e-6 at step 99; momentum 0.95 -> 0.85 -> 0.95. */
static void test_onecycle(void **state)
{
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_ONECYCLE, 1.0, 100);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_OK);
    assert_float_equal(hone_schedule_lr(&s, 0), 0.04, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 14), 0.49401332387899954, 1e-14);
    assert_float_equal(hone_schedule_lr(&s, 29), 1.0, 1e-15);
    assert_float_equal(hone_schedule_lr(&s, 64), 0.500002, 1e-14);
    assert_float_equal(hone_schedule_lr(&s, 99), 4e-6, 1e-18);
    assert_float_equal(hone_schedule_momentum(&s, 0), 0.95, 1e-15);
    assert_float_equal(hone_schedule_momentum(&s, 29), 0.85, 1e-15);
    assert_float_equal(hone_schedule_momentum(&s, 64), 0.9, 1e-15);
    assert_float_equal(hone_schedule_momentum(&s, 99), 0.95, 1e-15);
    s.base_momentum = s.max_momentum = 0;
    assert_float_equal(hone_schedule_momentum(&s, 10), -1, 0);
}

static void test_schedule_errors(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_schedule s;
    hone_schedule_init(&s, HONE_SCHED_STEP, 0.1, 10);
    s.milestones[0] = 5;
    s.milestones[1] = 5;
    s.n_milestones = 2;
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "ascending"));
    hone_schedule_init(&s, HONE_SCHED_ONECYCLE, 0.1, 3);
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_ERR_ARG);
    hone_schedule_init(&s, HONE_SCHED_COSINE, 0.1, 0);
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_ERR_ARG);
    hone_schedule_init(&s, HONE_SCHED_COSINE, 0.1, 10);
    s.warmup = 11;
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_ERR_ARG);
    hone_schedule_init(&s, HONE_SCHED_CONSTANT, -0.1, 10);
    assert_int_equal(hone_schedule_check(&ctx, &s), HONE_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_l2),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_clip_global_norm),
        cmocka_unit_test(test_frozen),
        cmocka_unit_test(test_adam_per_param_steps),
        cmocka_unit_test(test_optim_errors),
        cmocka_unit_test(test_optim_names),
        cmocka_unit_test(test_constant_warmup),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_cosine_warmup_floor),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_onecycle),
        cmocka_unit_test(test_schedule_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
