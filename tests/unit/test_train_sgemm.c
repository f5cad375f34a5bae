/*
 * hone_rt_train_sgemm (runtime/sgemm_avx512.c) against a double-precision
 * reference: every transpose combination, sizes that leave partial MR x NR
 * tiles and cross the KC / MC / NC blocks, A B^T with few columns, leading dimensions wider than the
 * rows, alpha and beta (beta == 0 must not read C: C starts as NaN there),
 * and the same results on a second thread (per-thread packing buffers). Also
 * hone_rt_sgemm's one-row products (runtime/gemm.c: a classifier at batch 1), both
 * layouts of B, on and off the shared pool.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include "hone_rt.h"

typedef struct gcase {
    int ta, tb;
    int64_t m, n, k;
    float alpha, beta;
} gcase;

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef void (*gemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);

/* Runs one case through f; returns the largest error relative to sum |a||b| + |beta c|. */
static double run_with(gemm_fn f, const gcase *g)
{
    int64_t pad = 3;
    int64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
    int64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
    int64_t lda = ac + pad, ldb = bc + pad, ldc = g->n + pad;
    float *a = malloc(sizeof *a * (size_t)(ar * lda)), *b = malloc(sizeof *b * (size_t)(br * ldb));
    float *c = malloc(sizeof *c * (size_t)(g->m * ldc)), *c0 = malloc(sizeof *c0 * (size_t)(g->m * ldc));
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(c0);
    unsigned s = 7u + (unsigned)(g->m * 31 + g->n * 17 + g->k);
    for (int64_t i = 0; i < ar * lda; i++)
        a[i] = frand(&s);
    for (int64_t i = 0; i < br * ldb; i++)
        b[i] = frand(&s);
    for (int64_t i = 0; i < g->m * ldc; i++)
        c0[i] = c[i] = g->beta == 0.0f ? NAN : frand(&s);
    f(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, lda, b, ldb, g->beta, c, ldc);
    double worst = 0.0;
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0.0, mag = 0.0;
            for (int64_t p = 0; p < g->k; p++) {
                double x = g->ta ? a[p * lda + i] : a[i * lda + p];
                double y = g->tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += x * y;
                mag += fabs(x * y);
            }
            double want = g->alpha * acc, scale = fabs(g->alpha) * mag + 1e-30;
            if (g->beta != 0.0f) {
                want += g->beta * (double)c0[i * ldc + j];
                scale += fabs(g->beta * (double)c0[i * ldc + j]);
            }
            double err = fabs((double)c[i * ldc + j] - want) / scale;
            if (!(err <= worst))
                worst = isnan(err) ? INFINITY : err;
        }
        /* the padding past n is untouched */
        for (int64_t j = g->n; j < ldc; j++)
            if (!(c[i * ldc + j] == c0[i * ldc + j] || (isnan(c[i * ldc + j]) && isnan(c0[i * ldc + j]))))
                worst = INFINITY;
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    return worst;
}

static double run_case(const gcase *g)
{
    return run_with(hone_rt_train_sgemm, g);
}

static const gcase cases[] = {
    {0, 0, 1, 1, 1, 1.0f, 0.0f},       {0, 0, 8, 32, 256, 1.0f, 0.0f},
    {0, 0, 9, 33, 257, 1.0f, 1.0f},    {0, 1, 16, 100, 144, 1.0f, 1.0f},
    {1, 0, 144, 392, 16, 1.0f, 0.0f},  {1, 1, 7, 5, 3, -0.5f, 2.0f},
    {0, 0, 130, 47, 300, 0.25f, 0.5f}, {0, 1, 64, 4100, 20, 1.0f, 0.0f},
    {1, 0, 3, 4097, 513, 1.0f, 1.0f},  {1, 1, 129, 31, 77, 1.5f, 0.0f},
    /* A B^T with few columns (OpenBLAS's share) */
    {0, 1, 144, 16, 3136, 1.0f, 0.0f}, {0, 1, 145, 13, 300, 0.5f, 1.5f},
    {0, 1, 3, 1, 257, 1.0f, 1.0f},     {0, 1, 50, 63, 1000, -1.0f, 0.0f},
    {0, 1, 97, 64, 4117, 0.5f, 1.0f},  {0, 1, 1, 65, 15, 1.0f, 0.0f},
};

static void test_matches_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double e = run_case(&cases[i]);
        if (!(e < 1e-5))
            fail_msg("case %zu (ta %d tb %d m %lld n %lld k %lld): relative error %g", i,
                     cases[i].ta, cases[i].tb, (long long)cases[i].m, (long long)cases[i].n,
                     (long long)cases[i].k, e);
    }
}

/* hone_rt_sgemm with one row: 1000 x 1280 runs on the pool, the rest on one thread;
 * k with a partial 16-lane tail, n not a multiple of 4 or 16, A transposed (strided). */
static void test_one_row(void **state)
{
    (void)state;
    static const gcase rows[] = {
        {0, 1, 1, 1000, 1280, 1.0f, 0.0f}, {0, 0, 1, 1000, 1280, 1.0f, 0.0f},
        {0, 1, 1, 37, 21, 0.5f, 0.75f},    {0, 0, 1, 37, 21, -2.0f, 1.0f},
        {1, 1, 1, 13, 40, 1.0f, 0.0f},     {1, 0, 1, 19, 5, 1.0f, 0.5f},
        {0, 1, 1, 2, 7, 1.0f, 0.0f},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        double e = run_with(hone_rt_sgemm, &rows[i]);
        if (!(e < 1e-5))
            fail_msg("one-row case %zu (ta %d tb %d n %lld k %lld): relative error %g", i,
                     rows[i].ta, rows[i].tb, (long long)rows[i].n, (long long)rows[i].k, e);
    }
}

static void *thread_main(void *arg)
{
    double *worst = arg;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double e = run_case(&cases[i]);
        if (!(e <= *worst))
            *worst = e;
    }
    return NULL;
}

static void test_other_threads(void **state)
{
    (void)state;
    double w1 = 0.0, w2 = 0.0;
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, thread_main, &w1), 0);
    assert_int_equal(pthread_create(&t2, NULL, thread_main, &w2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_true(w1 < 1e-5);
    assert_true(w2 < 1e-5);
}

int main(void)
{
    printf("training GEMM: %s\n", hone_rt_train_gemm_name());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_other_threads),
        cmocka_unit_test(test_one_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
