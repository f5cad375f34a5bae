/*
 * conv2d_bench: GFLOP/s of one 2-D convolution on the compiled models' kernel
 * (hone_rt_conv2d on weights packed ahead, as `hone compile` embeds them), and the
 * core's fused multiply-add peak to read it against.
 *
 *   conv2d_bench C M H K S [--epi|--winograd] [--poll]
 *                                    conv C -> M channels on an H x H image, K x K
 *                                    kernel, stride S, padding K/2, batch 1; repeated
 *                                    for 0.3 s of the thread's CPU time after one warm-up
 *   conv2d_bench --peak              16 independent 512-bit FMA chains (AVX-512 CPUs)
 *   conv2d_bench --scaling           the same chains on one thread, then on two at once:
 *                                    prints two_thread_efficiency (one thread's wall time
 *                                    over the pair's; 1.00 when two CPUs each run as fast
 *                                    as one alone, 0.50 when they share one core)
 *
 * Threads: the runtime's shared pool (HONE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else
 * the CPUs); CPU time is the calling thread's, so give 1 thread for a per-core figure;
 * the wall time per run is printed too (for several threads; pool workers sleep between
 * parallel-fors here unless --poll, with which they poll for the next job as in compiled
 * models, hone_rt_compiled_enter).
 * docs/PERFORMANCE.md reads its figures. --epi times hone_rt_conv2d_epi with a Relu;
 * --winograd times hone_rt_winograd_conv (3x3 stride 1 only; GFLOP/s counted as the
 * direct conv's, so the figures compare).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hone_rt.h"

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static double fma_chains(long n)
{
    __m512 a[16], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++)
        a[i] = _mm512_set1_ps((float)i);
    double t0 = cpu_now();
    for (long k = 0; k < n; k++) {
#pragma GCC unroll 16 /* the chains stay in registers only when fully unrolled */
        for (int i = 0; i < 16; i++)
            a[i] = _mm512_fmadd_ps(a[i], x, y);
    }
    double t = cpu_now() - t0;
    __m512 s = a[0];
    for (int i = 1; i < 16; i++)
        s = _mm512_add_ps(s, a[i]);
    if (_mm512_reduce_add_ps(s) == 1.0f) /* keeps the chains live */
        puts("");
    return t;
}

static double peak(void)
{
    long n = 50000000;
    return 2.0 * 16 * 16 * (double)n / fma_chains(n) / 1e9;
}

static void *chains_thread(void *arg)
{
    fma_chains(*(long *)arg);
    return NULL;
}

/* Wall time of the chains on this thread alone over that of two threads running them at
 * once (each the same count). */
static double scaling(void)
{
    long n = 10000000;
    pthread_t th;
    fma_chains(n / 10); /* warm-up */
    double t0 = wall_now();
    fma_chains(n);
    double one = wall_now() - t0;
    t0 = wall_now();
    if (pthread_create(&th, NULL, chains_thread, &n))
        return -1;
    fma_chains(n);
    pthread_join(th, NULL);
    return one / (wall_now() - t0);
}
#endif

static int usage(void)
{
    fprintf(stderr, "usage: conv2d_bench C M H K S [--epi|--winograd] [--poll] | conv2d_bench --peak | "
                    "conv2d_bench --scaling\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--peak") || !strcmp(argv[1], "--scaling"))) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (!__builtin_cpu_supports("avx512f")) {
            fprintf(stderr, "conv2d_bench: %s needs AVX-512F\n", argv[1]);
            return 1;
        }
        if (!strcmp(argv[1], "--peak"))
            printf("fma_peak_gflops %.1f\n", peak());
        else
            printf("two_thread_efficiency %.2f\n", scaling());
        return 0;
#else
        fprintf(stderr, "conv2d_bench: %s needs x86-64\n", argv[1]);
        return 1;
#endif
    }
    if (argc < 6 || argc > 8)
        return usage();
    int epi = 0, wino = 0, poll = 0;
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--epi"))
            epi = 1;
        else if (!strcmp(argv[i], "--winograd"))
            wino = 1;
        else if (!strcmp(argv[i], "--poll"))
            poll = 1;
        else
            return usage();
    }
    if (epi && wino)
        return usage();
    if (poll) /* the pool's workers poll for the next job, as in compiled models */
        hone_rt_compiled_enter();
    long v[5];
    for (int i = 0; i < 5; i++) {
        char *end;
        v[i] = strtol(argv[i + 1], &end, 10);
        if (*end || v[i] < 1 || v[i] > 100000)
            return usage();
    }
    int64_t c = v[0], m = v[1], h = v[2], k = v[3], s = v[4];
    hone_rt_window w = {0};
    w.nsp = 2;
    for (int i = 0; i < 2; i++) {
        w.in[i] = h, w.k[i] = k, w.stride[i] = s, w.dil[i] = 1;
        w.pad[i] = w.pad_end[i] = k / 2;
        w.out[i] = (h + 2 * (k / 2) - k) / s + 1;
    }
    if (w.out[0] < 1) {
        fprintf(stderr, "conv2d_bench: no output positions\n");
        return 1;
    }
    if (wino && !hone_rt_winograd_fits(&w, c, m, 1)) {
        fprintf(stderr, "conv2d_bench: this conv does not take the Winograd path\n");
        return 1;
    }
    int64_t rows = c * k * k, oh = w.out[0];
    float *x = malloc(sizeof(float) * (size_t)(c * h * h));
    float *wt = malloc(sizeof(float) * (size_t)(m * rows));
    float *wp = malloc(sizeof(float) * (size_t)(wino ? hone_rt_winograd_packed_numel(&w, c, m)
                                                     : hone_rt_conv2d_packed_numel(&w, m, 1, rows)));
    float *y = malloc(sizeof(float) * (size_t)(m * oh * oh)), *b = calloc((size_t)m, sizeof(float));
    float *sc = malloc(sizeof(float) * (wino ? hone_rt_winograd_scratch(&w, 1, c, m)
                                             : hone_rt_conv2d_scratch(&w, c, m, 1)));
    if (!x || !wt || !wp || !y || !b || !sc) {
        fprintf(stderr, "conv2d_bench: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < c * h * h; i++)
        x[i] = (float)(i % 13) * 0.01f;
    for (int64_t i = 0; i < m * rows; i++)
        wt[i] = (float)(i % 7) * 0.01f - 0.03f;
    if (wino)
        hone_rt_winograd_pack(&w, c, m, wt, wp);
    else
        hone_rt_conv2d_pack(&w, m, 1, rows, wt, wp);
    int it = 0;
    double t0 = 0, t = 0, w0 = 0;
    for (int warm = 1; warm >= 0; warm--) {
        it = 0;
        t0 = cpu_now();
        w0 = wall_now();
        do {
            if (wino)
                hone_rt_winograd_conv(&w, 1, c, m, x, wp, b, NULL, -INFINITY, INFINITY, y, sc);
            else if (epi)
                hone_rt_conv2d_epi(&w, 1, c, m, 1, x, wp, b, NULL, 0.0f, INFINITY, y, sc);
            else
                hone_rt_conv2d(&w, 1, c, m, 1, x, wp, b, y, sc);
            it++;
        } while ((t = cpu_now() - t0) < (warm ? 0.05 : 0.3));
    }
    double wall = wall_now() - w0;
    double flop = 2.0 * (double)m * (double)rows * (double)(oh * oh);
    printf("conv C%lld M%lld H%lld K%lld S%lld: %.3f ms %.1f GFLOP/s (wall %.3f ms)\n",
           (long long)c, (long long)m, (long long)h, (long long)k, (long long)s, t / it * 1e3,
           flop * it / t / 1e9, wall / it * 1e3);
    free(x), free(wt), free(wp), free(y), free(b), free(sc);
    return 0;
}
