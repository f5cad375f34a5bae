/*
 * The training engine's pooled convolution kernels (conv_batch.c, and
 * hone_rt_conv_grad_pool in conv_grad.c) against the per-image reference
 * kernels hone_rt_conv / hone_rt_conv_grad: the same results within float
 * rounding for 2-D windows with padding, strides, dilations, groups, 1x1
 * windows, bias or none, batch sizes that split unevenly into image batches;
 * bit-identical results for 1, 2 and 3 workers (dW partial sums are fixed
 * whatever the worker count); the same again with the kernel pool held, so
 * that OpenBLAS then runs each GEMM on its calling thread; and the
 * kernel pool's acquire/release nesting.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "hone_rt.h"

typedef struct conv_case {
    int64_t n, c, m, groups, h, wd, k, stride, pad, dil;
    int bias;
} conv_case;

static const conv_case cases[] = {
    {128, 16, 16, 1, 28, 28, 3, 1, 1, 1, 1}, /* the ResNet-14 stage-1 conv */
    {37, 16, 32, 1, 14, 14, 3, 2, 1, 1, 1},  /* stride 2, odd batch */
    {9, 16, 32, 1, 14, 14, 1, 2, 0, 1, 0},   /* 1x1 stride-2 shortcut, no bias */
    {5, 8, 12, 1, 7, 7, 1, 1, 0, 1, 1},      /* pointwise */
    {11, 6, 9, 3, 9, 11, 3, 1, 2, 2, 1},     /* groups, dilation, non-square */
    {3, 4, 4, 4, 6, 5, 3, 2, 1, 1, 0},       /* depthwise, stride 2 */
    {1, 3, 5, 1, 5, 5, 5, 1, 0, 1, 1},       /* one image, window covers the image */
};

static hone_rt_window window_of(const conv_case *cc)
{
    return tu_window_2d(cc->h, cc->wd, cc->k, cc->stride, cc->pad, cc->dil);
}

static float *rand_floats(size_t n, unsigned *seed)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
    return p;
}

static float *scratch_of(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    return p;
}

/* a and b agree within float rounding: differences in summation order of long
 * sums (dW sums n*P products) scale with the largest magnitude of the result. */
static void assert_close(const float *a, const float *b, size_t n, const char *what)
{
    double worst = 0, big = 1;
    for (size_t i = 0; i < n; i++)
        big = fabs((double)b[i]) > big ? fabs((double)b[i]) : big;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst || isnan(d) ? d : worst;
    }
    if (!(worst <= 2e-6 * big))
        fail_msg("%s differs by %g (largest magnitude %g)", what, worst, big);
}

typedef struct sizes {
    size_t x, wt, y;
} sizes;

static sizes sizes_of(const conv_case *cc, const hone_rt_window *w)
{
    sizes s = {(size_t)(cc->n * cc->c * cc->h * cc->wd),
               (size_t)(cc->m * (cc->c / cc->groups) * cc->k * cc->k),
               (size_t)(cc->n * cc->m * w->out[0] * w->out[1])};
    return s;
}

/* With train_gemm, the kernel pool is held while the pooled kernel runs, as in
 * training (OpenBLAS then runs each GEMM on its calling thread). */
static void forward_case(const conv_case *cc, hone_rt_pool *pool, bool train_gemm)
{
    hone_rt_window w = window_of(cc);
    sizes s = sizes_of(cc, &w);
    unsigned seed = 7;
    float *x = rand_floats(s.x, &seed), *wt = rand_floats(s.wt, &seed);
    float *b = cc->bias ? rand_floats((size_t)cc->m, &seed) : NULL;
    float *ref = scratch_of(s.y), *got = scratch_of(s.y);
    float *sr = scratch_of(hone_rt_conv_scratch(&w, cc->c, cc->m, cc->groups));
    float *sb = scratch_of(hone_rt_conv_batch_scratch(&w, cc->c, cc->m, cc->groups,
                                                      hone_rt_pool_size(pool)));
    hone_rt_conv(&w, cc->n, cc->c, cc->m, cc->groups, x, wt, b, ref, sr);
    memset(got, 0xff, sizeof(float) * s.y); /* NaNs: every element must be written */
    if (train_gemm)
        hone_rt_kernel_pool_acquire();
    hone_rt_conv_batch(pool, &w, cc->n, cc->c, cc->m, cc->groups, x, wt, b, got, sb);
    if (train_gemm)
        hone_rt_kernel_pool_release();
    assert_close(got, ref, s.y, "conv_batch");
    free(x), free(wt), free(b), free(ref), free(got), free(sr), free(sb);
}

static void test_forward_matches_per_image(void **state)
{
    (void)state;
    hone_rt_pool *p2 = hone_rt_pool_create(2);
    assert_non_null(p2);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forward_case(&cases[i], NULL, false);
        forward_case(&cases[i], p2, false);
        forward_case(&cases[i], p2, true);
    }
    hone_rt_pool_destroy(p2);
}

/* dx, dw, db of one case through the pooled kernel on pool (into out[0..2]). */
static void grad_pool(const conv_case *cc, hone_rt_pool *pool, const float *x, const float *wt,
                      const float *dy, float **out)
{
    hone_rt_window w = window_of(cc);
    sizes s = sizes_of(cc, &w);
    float *sc = scratch_of(
        hone_rt_conv_grad_pool_scratch(&w, cc->c, cc->m, cc->groups, hone_rt_pool_size(pool)));
    out[0] = scratch_of(s.x);
    out[1] = scratch_of(s.wt);
    out[2] = scratch_of((size_t)cc->m);
    memset(out[0], 0xff, sizeof(float) * s.x);
    hone_rt_conv_grad_pool(pool, &w, cc->n, cc->c, cc->m, cc->groups, x, wt, dy, out[0], out[1],
                           out[2], sc);
    free(sc);
}

/* The backward in double precision, straight from the definition (independent of the
 * kernels' im2col, implicit and GEMM paths): dx, dw, db zeroed first. */
static void naive_grad(const conv_case *cc, const hone_rt_window *w, const float *x,
                       const float *wt, const float *dy, double *dx, double *dw, double *db)
{
    int64_t cg = cc->c / cc->groups, mg = cc->m / cc->groups, oh = w->out[0], ow = w->out[1];
    memset(dx, 0, sizeof(double) * (size_t)(cc->n * cc->c * cc->h * cc->wd));
    memset(dw, 0, sizeof(double) * (size_t)(cc->m * cg * cc->k * cc->k));
    memset(db, 0, sizeof(double) * (size_t)cc->m);
    for (int64_t b = 0; b < cc->n; b++)
        for (int64_t o = 0; o < cc->m; o++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t z = 0; z < ow; z++) {
                    double g = dy[((b * cc->m + o) * oh + y) * ow + z];
                    db[o] += g;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < cc->k; i++)
                            for (int64_t j = 0; j < cc->k; j++) {
                                int64_t iy = y * cc->stride - cc->pad + i * cc->dil;
                                int64_t iz = z * cc->stride - cc->pad + j * cc->dil;
                                if (iy < 0 || iy >= cc->h || iz < 0 || iz >= cc->wd)
                                    continue;
                                int64_t ci = o / mg * cg + c;
                                int64_t xi = ((b * cc->c + ci) * cc->h + iy) * cc->wd + iz;
                                int64_t wi = ((o * cg + c) * cc->k + i) * cc->k + j;
                                dw[wi] += g * x[xi];
                                dx[xi] += g * wt[wi];
                            }
                }
}

/* got agrees with the double reference within float rounding of long sums. */
static void assert_near_ref(const float *got, const double *want, size_t n, const char *what)
{
    double worst = 0, big = 1;
    for (size_t i = 0; i < n; i++)
        big = fabs(want[i]) > big ? fabs(want[i]) : big;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        worst = d > worst || isnan(d) ? d : worst;
    }
    if (!(worst <= 1e-5 * big))
        fail_msg("%s differs from the reference by %g (largest magnitude %g)", what, worst, big);
}

static void grad_case(const conv_case *cc, hone_rt_pool *p2, hone_rt_pool *p3, bool train_gemm)
{
    hone_rt_window w = window_of(cc);
    sizes s = sizes_of(cc, &w);
    unsigned seed = 11;
    float *x = rand_floats(s.x, &seed), *wt = rand_floats(s.wt, &seed);
    float *dy = rand_floats(s.y, &seed);
    float *ref[3] = {scratch_of(s.x), scratch_of(s.wt), scratch_of((size_t)cc->m)};
    float *sr = scratch_of(hone_rt_conv_grad_scratch(&w, cc->c, cc->m, cc->groups));
    hone_rt_conv_grad(&w, cc->n, cc->c, cc->m, cc->groups, x, wt, dy, ref[0], ref[1], ref[2],
                      sr);
    float *g1[3], *g2[3], *g3[3];
    if (train_gemm)
        hone_rt_kernel_pool_acquire();
    grad_pool(cc, NULL, x, wt, dy, g1);
    grad_pool(cc, p2, x, wt, dy, g2);
    grad_pool(cc, p3, x, wt, dy, g3);
    if (train_gemm)
        hone_rt_kernel_pool_release();
    size_t len[3] = {s.x, s.wt, (size_t)cc->m};
    double *nv[3] = {malloc(sizeof(double) * s.x), malloc(sizeof(double) * s.wt),
                     malloc(sizeof(double) * (size_t)cc->m)};
    assert_true(nv[0] && nv[1] && nv[2]);
    naive_grad(cc, &w, x, wt, dy, nv[0], nv[1], nv[2]);
    for (int i = 0; i < 3; i++) {
        assert_near_ref(g1[i], nv[i], len[i], i == 0 ? "dx" : i == 1 ? "dw" : "db");
        assert_near_ref(ref[i], nv[i], len[i], i == 0 ? "dx (serial)" : i == 1 ? "dw (serial)" : "db (serial)");
        free(nv[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_close(g1[i], ref[i], len[i], i == 0 ? "dx" : i == 1 ? "dw" : "db");
        assert_memory_equal(g1[i], g2[i], sizeof(float) * len[i]);
        assert_memory_equal(g1[i], g3[i], sizeof(float) * len[i]);
        free(ref[i]), free(g1[i]), free(g2[i]), free(g3[i]);
    }
    free(x), free(wt), free(dy), free(sr);
}

static void test_grad_matches_and_is_worker_independent(void **state)
{
    (void)state;
    hone_rt_pool *p2 = hone_rt_pool_create(2), *p3 = hone_rt_pool_create(3);
    assert_non_null(p2);
    assert_non_null(p3);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        grad_case(&cases[i], p2, p3, false);
        grad_case(&cases[i], p2, p3, true);
    }
    hone_rt_pool_destroy(p2);
    hone_rt_pool_destroy(p3);
}

/* Only dx, or only dw and db, wanted. */
static void test_grad_partial_outputs(void **state)
{
    (void)state;
    const conv_case *cc = &cases[1];
    hone_rt_window w = window_of(cc);
    sizes s = sizes_of(cc, &w);
    unsigned seed = 3;
    float *x = rand_floats(s.x, &seed), *wt = rand_floats(s.wt, &seed);
    float *dy = rand_floats(s.y, &seed);
    float *all[3];
    grad_pool(cc, NULL, x, wt, dy, all);
    float *sc = scratch_of(hone_rt_conv_grad_pool_scratch(&w, cc->c, cc->m, cc->groups, 2));
    float *dx = scratch_of(s.x), *dw = scratch_of(s.wt), *db = scratch_of((size_t)cc->m);
    hone_rt_pool *p2 = hone_rt_pool_create(2);
    hone_rt_conv_grad_pool(p2, &w, cc->n, cc->c, cc->m, cc->groups, x, wt, dy, dx, NULL, NULL, sc);
    assert_memory_equal(dx, all[0], sizeof(float) * s.x);
    hone_rt_conv_grad_pool(p2, &w, cc->n, cc->c, cc->m, cc->groups, x, wt, dy, NULL, dw, db, sc);
    assert_memory_equal(dw, all[1], sizeof(float) * s.wt);
    assert_memory_equal(db, all[2], sizeof(float) * (size_t)cc->m);
    hone_rt_pool_destroy(p2);
    for (int i = 0; i < 3; i++)
        free(all[i]);
    free(x), free(wt), free(dy), free(sc), free(dx), free(dw), free(db);
}

/* Acquire/release nest; the pool exists exactly while acquired (with more than
 * one OpenBLAS thread, which the unit tests' environment pins to 1). */
static void test_kernel_pool_nesting(void **state)
{
    (void)state;
    assert_false(hone_rt_kernel_pool_active());
    assert_null(hone_rt_kernel_pool());
    hone_rt_kernel_pool_acquire();
    hone_rt_kernel_pool_acquire();
    assert_true(hone_rt_kernel_pool_active());
    hone_rt_kernel_pool_release();
    assert_true(hone_rt_kernel_pool_active());
    hone_rt_kernel_pool_release();
    assert_false(hone_rt_kernel_pool_active());
    assert_null(hone_rt_kernel_pool());
    hone_rt_kernel_pool_release(); /* unbalanced release: ignored */
    assert_false(hone_rt_kernel_pool_active());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_per_image),
        cmocka_unit_test(test_grad_matches_and_is_worker_independent),
        cmocka_unit_test(test_grad_partial_outputs),
        cmocka_unit_test(test_kernel_pool_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
