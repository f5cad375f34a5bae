/*
 * AdderNet ops: hone.Adder2d forward against a naive reference (padding,
 * strides, dilations, groups, position counts that leave vector tails),
 * hone.AdderGrad against AdderNet's formulas (dW = sum (X - W) dY, dX = sum
 * clamp(W - X, -1, 1) dY), hone.SignedPower and its gradient against the
 * formula and central differences, autodiff emitting AdderGrad, the
 * adaptive per-layer gradient scaling, and the cost model's counts
 * (multiplications and additions) for Conv and Adder2d.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cost.h"
#include "hone_rt.h"
#include "interp.h"
#include "passes.h"
#include "testutil.h"
#include "train.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static hone_tensor *rnd(int rank, const int64_t *dims, float scale)
{
    hone_tensor *t = tu_tensor_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = scale * frand();
    return t;
}

typedef struct geom {
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t pads[4], strides[2], dil[2];
} geom;

static int64_t out_dim(int64_t in, int64_t k, int64_t pb, int64_t pe, int64_t s, int64_t d)
{
    return (in + pb + pe - d * (k - 1) - 1) / s + 1;
}

/* A graph holding one node op(inputs) with the geometry's conv attributes. */
static hone_node *make_node(hone_graph *g, const char *op, int n_in, int n_out, const geom *q)
{
    hone_node *nd = hone_graph_add_node(g, op, "hone", "n", n_in, n_out);
    nd->opset = 1;
    for (int i = 0; i < n_in; i++)
        nd->in[i] = hone_graph_new_value(g, "in");
    for (int i = 0; i < n_out; i++)
        nd->out[i] = hone_graph_new_value(g, "out");
    if (q) {
        hone_node_set_attr_ints(g, nd, "pads", q->pads, 4);
        hone_node_set_attr_ints(g, nd, "strides", q->strides, 2);
        hone_node_set_attr_ints(g, nd, "dilations", q->dil, 2);
        hone_node_set_attr_int(g, nd, "group", q->group);
    }
    return nd;
}

/* Input coordinate of output o, tap j along one axis (-1 in the padding). */
static int64_t tap(int64_t o, int64_t j, int64_t s, int64_t d, int64_t pb, int64_t in)
{
    int64_t i = o * s - pb + j * d;
    return i >= 0 && i < in ? i : -1;
}

/* Visits every (output element, weight element) pair with the input value. */
typedef void (*pair_fn)(void *u, int64_t yi, int64_t wi, int64_t xi, double x, double w);

static void each_pair(const geom *q, const float *x, const float *w, pair_fn fn, void *u)
{
    int64_t oh = out_dim(q->h, q->kh, q->pads[0], q->pads[2], q->strides[0], q->dil[0]);
    int64_t ow = out_dim(q->w, q->kw, q->pads[1], q->pads[3], q->strides[1], q->dil[1]);
    int64_t cg = q->c / q->group, mg = q->m / q->group;
    for (int64_t b = 0; b < q->n; b++)
        for (int64_t o = 0; o < q->m; o++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t z = 0; z < ow; z++)
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < q->kh; i++)
                            for (int64_t j = 0; j < q->kw; j++) {
                                int64_t iy = tap(y, i, q->strides[0], q->dil[0], q->pads[0], q->h);
                                int64_t iz = tap(z, j, q->strides[1], q->dil[1], q->pads[1], q->w);
                                int64_t ci = o / mg * cg + c;
                                int64_t xi = iy < 0 || iz < 0 ? -1
                                                              : ((b * q->c + ci) * q->h + iy) * q->w + iz;
                                int64_t wi = ((o * cg + c) * q->kh + i) * q->kw + j;
                                int64_t yi = ((b * q->m + o) * oh + y) * ow + z;
                                fn(u, yi, wi, xi, xi < 0 ? 0.0 : x[xi], w[wi]);
                            }
}

typedef struct refs {
    double *y, *dx, *dw;
    const float *dy;
} refs;

static void ref_pair(void *u, int64_t yi, int64_t wi, int64_t xi, double x, double w)
{
    refs *r = u;
    double g = r->dy ? r->dy[yi] : 0, d = w - x;
    r->y[yi] -= fabs(x - w);
    r->dw[wi] += (x - w) * g;
    if (xi >= 0)
        r->dx[xi] += (d < -1 ? -1 : d > 1 ? 1 : d) * g;
}

static void check_close(const float *got, const double *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > tol * (1 + fabs(want[i]))) {
            print_error("element %lld: got %g, want %g\n", (long long)i, got[i], want[i]);
            fail();
        }
}

/* Forward and backward of one geometry against the naive reference. */
static void check_geometry(const geom *q)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t xd[4] = {q->n, q->c, q->h, q->w}, wd[4] = {q->m, q->c / q->group, q->kh, q->kw};
    hone_tensor *x = rnd(4, xd, 1.5f), *w = rnd(4, wd, 1.0f), *y = NULL;
    hone_graph *g = hone_graph_new();
    hone_node *fwd = make_node(g, "Adder2d", 2, 1, q);
    assert_int_equal(hone_node_run(&ctx, fwd, (const hone_tensor *[]){x, w}, &y, NULL), HONE_OK);
    hone_tensor *dy = rnd(y->rank, y->dims, 1.0f), *grads[2] = {NULL, NULL};
    hone_node *bwd = make_node(g, "AdderGrad", 3, 2, q);
    assert_int_equal(hone_node_run(&ctx, bwd, (const hone_tensor *[]){dy, x, w}, grads, NULL),
                     HONE_OK);
    refs r = {calloc((size_t)y->numel, sizeof(double)), calloc((size_t)x->numel, sizeof(double)),
              calloc((size_t)w->numel, sizeof(double)), dy->data};
    each_pair(q, x->data, w->data, ref_pair, &r);
    check_close(y->data, r.y, y->numel, 1e-5);
    check_close(grads[0]->data, r.dx, x->numel, 1e-4);
    check_close(grads[1]->data, r.dw, w->numel, 1e-4);
    free(r.y), free(r.dx), free(r.dw);
    hone_tensor_free(x), hone_tensor_free(w), hone_tensor_free(y), hone_tensor_free(dy);
    hone_tensor_free(grads[0]), hone_tensor_free(grads[1]);
    hone_graph_free(g);
}

static void test_adder_forward_backward(void **state)
{
    (void)state;
    static const geom cases[] = {
        {2, 4, 9, 8, 6, 3, 3, 2, {1, 0, 2, 1}, {2, 1}, {1, 2}}, /* groups, odd pads, tails */
        {1, 16, 14, 14, 32, 3, 3, 1, {1, 1, 1, 1}, {1, 1}, {1, 1}}, /* 196 positions */
        {3, 5, 7, 7, 9, 1, 1, 1, {0, 0, 0, 0}, {2, 2}, {1, 1}},  /* strided 1x1 */
        {1, 3, 5, 6, 5, 2, 3, 1, {2, 2, 2, 2}, {1, 1}, {1, 1}},  /* wide padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_geometry(&cases[i]);
}

/* SignedPower: y = sign(x)|x|^a; dX by formula, dalpha by central differences. */
/* The training engine's pooled kernels (images over a pool's workers) against the naive
 * reference, with 2 and 3 workers: the forward gives the serial kernel's bits, and the
 * backward the same bits with either worker count (dw from fixed partial sums). */
static float *pooled_run(const geom *q, hone_rt_pool *pool, const float *x, const float *w,
                         const float *dy, int64_t cols, float **dx, float **dw, int64_t ny)
{
    hone_rt_window win = tu_window_2d(q->h, q->w, q->kh, q->strides[0], q->pads[0], q->dil[0]);
    int workers = hone_rt_pool_size(pool);
    int64_t nx = q->n * q->c * q->h * q->w, nw = q->m * q->c / q->group * q->kh * q->kw;
    float *y = malloc(sizeof(float) * (size_t)ny);
    float *s = malloc(sizeof(float) * hone_rt_adder_pool_scratch(&win, q->c, q->group, cols, workers));
    float *sg = malloc(sizeof(float) * hone_rt_adder_grad_pool_scratch(&win, q->c, q->m, q->group,
                                                                       cols, workers));
    *dx = malloc(sizeof(float) * (size_t)nx), *dw = malloc(sizeof(float) * (size_t)nw);
    assert_true(y && s && sg && *dx && *dw);
    memset(y, 0xff, sizeof(float) * (size_t)ny); /* NaNs: every element must be written */
    memset(*dx, 0xff, sizeof(float) * (size_t)nx);
    hone_rt_adder_pool(pool, &win, q->n, q->c, q->m, q->group, x, w, y, s, cols);
    hone_rt_adder_grad_pool(pool, &win, q->n, q->c, q->m, q->group, x, w, dy, *dx, *dw, sg, cols);
    free(s), free(sg);
    return y;
}

static void test_pooled_kernels(void **state)
{
    (void)state;
    static const geom cases[] = {
        {6, 16, 14, 14, 16, 3, 3, 1, {1, 1, 1, 1}, {1, 1}, {1, 1}}, /* 144 rows, 196 positions */
        {5, 6, 9, 9, 8, 3, 3, 2, {1, 1, 1, 1}, {2, 2}, {1, 1}},     /* groups: 27 rows, stride 2 */
        {3, 5, 7, 7, 9, 1, 1, 1, {0, 0, 0, 0}, {2, 2}, {1, 1}},     /* 5 rows */
        {9, 32, 7, 7, 8, 3, 3, 1, {1, 1, 1, 1}, {1, 1}, {1, 1}},    /* 9 images, 8 slabs */
    };
    hone_rt_pool *p2 = hone_rt_pool_create(2), *p3 = hone_rt_pool_create(3);
    assert_true(p2 && p3);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const geom *q = &cases[i];
        int64_t oh = out_dim(q->h, q->kh, q->pads[0], q->pads[2], q->strides[0], q->dil[0]);
        int64_t ow = out_dim(q->w, q->kw, q->pads[1], q->pads[3], q->strides[1], q->dil[1]);
        int64_t xd[4] = {q->n, q->c, q->h, q->w}, wd[4] = {q->m, q->c / q->group, q->kh, q->kw};
        int64_t yd[4] = {q->n, q->m, oh, ow}, ny = q->n * q->m * oh * ow;
        hone_tensor *x = rnd(4, xd, 1.5f), *w = rnd(4, wd, 1.0f), *dy = rnd(4, yd, 1.0f);
        refs r = {calloc((size_t)ny, sizeof(double)), calloc((size_t)x->numel, sizeof(double)),
                  calloc((size_t)w->numel, sizeof(double)), dy->data};
        each_pair(q, x->data, w->data, ref_pair, &r);
        for (int64_t cols = 64; cols <= 4096; cols *= 64) {
            float *dx2, *dw2, *dx3, *dw3, *dxs, *dws;
            float *y2 = pooled_run(q, p2, x->data, w->data, dy->data, cols, &dx2, &dw2, ny);
            float *y3 = pooled_run(q, p3, x->data, w->data, dy->data, cols, &dx3, &dw3, ny);
            float *ys = pooled_run(q, NULL, x->data, w->data, dy->data, cols, &dxs, &dws, ny);
            check_close(y2, r.y, ny, 1e-5);
            check_close(dx2, r.dx, x->numel, 1e-4);
            check_close(dw2, r.dw, w->numel, 1e-4);
            check_close(dws, r.dw, w->numel, 1e-4);
            assert_memory_equal(y2, ys, sizeof(float) * (size_t)ny);
            assert_memory_equal(y3, ys, sizeof(float) * (size_t)ny);
            assert_memory_equal(dx2, dxs, sizeof(float) * (size_t)x->numel);
            assert_memory_equal(dx3, dxs, sizeof(float) * (size_t)x->numel);
            assert_memory_equal(dw2, dw3, sizeof(float) * (size_t)w->numel);
            free(y2), free(dx2), free(dw2), free(y3), free(dx3), free(dw3);
            free(ys), free(dxs), free(dws);
        }
        free(r.y), free(r.dx), free(r.dw);
        hone_tensor_free(x), hone_tensor_free(w), hone_tensor_free(dy);
    }
    hone_rt_pool_destroy(p2), hone_rt_pool_destroy(p3);
}

static void test_signed_power(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t d = 7, one = 1;
    float xs[7] = {-2.0f, -0.5f, 0.0f, 0.3f, 1.0f, 1.7f, -1.2f};
    hone_tensor *x = tu_tensor_f32(1, &d, xs), *dy = tu_tensor_f32(1, &d, NULL);
    hone_graph *g = hone_graph_new();
    hone_node *f = make_node(g, "SignedPower", 2, 1, NULL);
    hone_node *b = make_node(g, "SignedPowerGrad", 3, 2, NULL);
    for (int i = 0; i < 7; i++)
        ((float *)dy->data)[i] = 0.1f * (float)(i + 1);
    double loss[2];
    for (int s = 0; s < 2; s++) {
        float a = 1.3f + (s ? -1e-3f : 1e-3f);
        hone_tensor *at = tu_tensor_f32(1, &one, &a), *y = NULL;
        assert_int_equal(hone_node_run(&ctx, f, (const hone_tensor *[]){x, at}, &y, NULL), HONE_OK);
        loss[s] = 0;
        for (int i = 0; i < 7; i++)
            loss[s] += ((float *)dy->data)[i] * ((float *)y->data)[i];
        hone_tensor_free(at), hone_tensor_free(y);
    }
    float a = 1.3f;
    hone_tensor *at = tu_tensor_f32(1, &one, &a), *gr[2] = {NULL, NULL}, *y = NULL;
    assert_int_equal(hone_node_run(&ctx, f, (const hone_tensor *[]){x, at}, &y, NULL), HONE_OK);
    assert_float_equal(((float *)y->data)[0], -powf(2.0f, 1.3f), 1e-5);
    assert_float_equal(((float *)y->data)[2], 0.0f, 0);
    assert_int_equal(hone_node_run(&ctx, b, (const hone_tensor *[]){dy, x, at}, gr, NULL), HONE_OK);
    assert_float_equal(((float *)gr[1]->data)[0], (loss[0] - loss[1]) / 2e-3, 2e-3);
    for (int i = 0; i < 7; i++)
        if (xs[i] != 0)
            assert_float_equal(((float *)gr[0]->data)[i],
                               ((float *)dy->data)[i] * 1.3f * powf(fabsf(xs[i]), 0.3f), 1e-5);
    hone_tensor_free(x), hone_tensor_free(dy), hone_tensor_free(at), hone_tensor_free(y);
    hone_tensor_free(gr[0]), hone_tensor_free(gr[1]);
    hone_graph_free(g);
}

/* Autodiff of loss = MSE(Adder2d(X, W), 0) w.r.t. W goes through AdderGrad. */
static void test_autodiff_uses_adder_rule(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    geom q = {1, 2, 4, 4, 3, 3, 3, 1, {1, 1, 1, 1}, {1, 1}, {1, 1}};
    int64_t xd[4] = {1, 2, 4, 4}, wd[4] = {3, 2, 3, 3}, yd[4] = {1, 3, 4, 4};
    hone_graph *g = hone_graph_new();
    hone_node *n = make_node(g, "Adder2d", 2, 1, &q);
    hone_value_set_data(n->in[0], rnd(4, xd, 1.0f));
    hone_value_set_data(n->in[1], rnd(4, wd, 1.0f));
    hone_value *t = hone_graph_new_value(g, "zero");
    hone_value_set_data(t, tu_tensor_f32(4, yd, NULL));
    hone_value *loss = hone_loss_dist(g, n->out[0], t, false), *grad = NULL;
    hone_graph_add_output(g, loss);
    assert_int_equal(hone_autodiff(&ctx, g, loss, 1, &n->in[1], &grad), HONE_OK);
    assert_non_null(grad);
    assert_non_null(grad->producer);
    assert_string_equal(grad->producer->op_type, "AdderGrad");
    hone_graph_free(g);
}

/* eta sqrt(numel) g / ||g||: the norm becomes eta sqrt(n), the direction stays. */
static void test_adaptive_scaling(void **state)
{
    (void)state;
    float g[12];
    double before = 0, after = 0;
    for (int i = 0; i < 12; i++) {
        g[i] = 0.01f * (float)(i - 5);
        before += (double)g[i] * g[i];
    }
    float g0[12];
    memcpy(g0, g, sizeof g);
    hone_adder_scale_grad(g, 12, 0.2);
    for (int i = 0; i < 12; i++)
        after += (double)g[i] * g[i];
    assert_float_equal(sqrt(after), 0.2 * sqrt(12.0), 1e-5);
    for (int i = 0; i < 12; i++)
        assert_float_equal(g[i], g0[i] * 0.2 * sqrt(12.0) / sqrt(before), 1e-5);
    float z[3] = {0, 0, 0};
    hone_adder_scale_grad(z, 3, 0.2);
    assert_float_equal(z[0], 0.0f, 0);
}

/* Conv: M*C*K mults and as many adds per position; Adder2d: 2x the adds, no mults. */
static void test_cost_counts(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    geom q = {1, 4, 6, 6, 8, 3, 3, 1, {1, 1, 1, 1}, {1, 1}, {1, 1}};
    int64_t xd[4] = {1, 4, 6, 6}, wd[4] = {8, 4, 3, 3};
    hone_graph *g = hone_graph_new();
    hone_node *a = make_node(g, "Adder2d", 2, 1, &q);
    a->in[0]->dtype = HONE_DT_FLOAT, a->in[0]->rank = 4;
    memcpy(a->in[0]->dims, xd, sizeof xd);
    hone_value_set_data(a->in[1], rnd(4, wd, 1.0f));
    hone_graph_add_input(g, a->in[0]);
    hone_graph_add_output(g, a->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_cost c = hone_node_cost(a);
    int64_t k = 8 * 4 * 9 * 36;
    assert_int_equal(c.mults, 0);
    assert_int_equal(c.adds, 2 * k);
    a->op_type = "Conv", a->domain = "", a->op = hone_op_lookup("", "Conv");
    c = hone_node_cost(a);
    assert_int_equal(c.mults, k);
    assert_int_equal(c.adds, k);
    assert_float_equal(hone_cost_energy_pj(&c), k * (0.9 + 3.7), 1e-3);
    hone_graph_free(g);
}

/* The compiled Adder2d (+ SignedPower) agrees with the interpreter. */
static void test_backend_matches_interpreter(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    geom q = {2, 6, 9, 11, 8, 3, 3, 2, {1, 1, 1, 1}, {1, 2}, {1, 1}};
    int64_t xd[4] = {2, 6, 9, 11}, wd[4] = {8, 3, 3, 3}, one = 1;
    float alpha = 0.8f;
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, 2 * sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->opsets[1] = (hone_opset){"hone", 1};
    g->n_opsets = 2;
    hone_node *a = make_node(g, "Adder2d", 2, 1, &q);
    hone_node *p = make_node(g, "SignedPower", 2, 1, NULL);
    a->in[0]->dtype = HONE_DT_FLOAT, a->in[0]->rank = 4;
    memcpy(a->in[0]->dims, xd, sizeof xd);
    hone_value_set_data(a->in[1], rnd(4, wd, 1.0f));
    p->in[0] = a->out[0];
    hone_value_set_data(p->in[1], tu_tensor_f32(1, &one, &alpha));
    hone_graph_add_input(g, a->in[0]);
    hone_graph_add_output(g, p->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_tensor *x = rnd(4, xd, 1.0f), *want = NULL, *got = NULL;
    const hone_tensor *ins[1] = {x};
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    hone_jit_t *j;
    assert_int_equal(hone_interp_run(&ctx, g, ins, &want, NULL), HONE_OK);
    if (hone_jit_compile(&ctx, g, &o, &j, NULL))
        fail_msg("JIT compile: %s", ctx.msg);
    assert_int_equal(hone_jit_run(&ctx, j, ins, &got), HONE_OK);
    assert_int_equal(got->numel, want->numel);
    for (int64_t i = 0; i < got->numel; i++)
        assert_float_equal(((float *)got->data)[i], ((float *)want->data)[i],
                           1e-5 * (1 + fabsf(((float *)want->data)[i])));
    hone_jit_free(j);
    hone_tensor_free(x), hone_tensor_free(want), hone_tensor_free(got);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adder_forward_backward),
        cmocka_unit_test(test_pooled_kernels),
        cmocka_unit_test(test_signed_power),
        cmocka_unit_test(test_autodiff_uses_adder_rule),
        cmocka_unit_test(test_adaptive_scaling),
        cmocka_unit_test(test_cost_counts),
        cmocka_unit_test(test_backend_matches_interpreter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
