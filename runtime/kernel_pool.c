/*
 * The kernel pool: the threads the training engine's interpreted kernels use.
 *
 * OpenBLAS's own threads split each GEMM, which pays for small GEMMs (a
 * 16-channel convolution of a 28x28 image is 16x144x784) with a wake-up and a
 * spin-wait per call, and leaves im2col, col2im and packing on one thread.
 * While the pool is acquired, kernels instead split their images over the
 * pool's workers, and each worker calls OpenBLAS single-threaded on its own
 * images: OpenBLAS is set to one thread for that time and restored after.
 * The pool has as many workers as OpenBLAS had threads (OPENBLAS_NUM_THREADS
 * or its default), so the thread budget a user sets is kept.
 *
 * The training GEMM (hone_rt_train_sgemm): while the pool is acquired, the
 * convolution kernels' GEMMs go to oneDNN's dnnl_sgemm when the system has
 * libdnnl.so.2 (Debian's libdnnl2, which python3-torch depends on), loaded at
 * run time, so hone neither links nor requires it. oneDNN picks AVX-512
 * kernels by CPU features, where OpenBLAS runs whatever OPENBLAS_CORETYPE
 * names (this environment pins the AVX2 "Haswell" kernels): on the shapes
 * of CNN training it runs about 1.1x-2.3x faster per core (see
 * docs/PERFORMANCE.md). Each calling thread sets its own OpenMP thread count
 * to 1 before its first call, as the pool already splits the work.
 * HONE_TRAIN_GEMM=openblas keeps OpenBLAS; sanitizer builds always do (the
 * library is not instrumented).
 */
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hone_rt.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KP_NO_DNNL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define KP_NO_DNNL 1
#endif
#endif

static pthread_mutex_t kp_lock = PTHREAD_MUTEX_INITIALIZER;
static int kp_users;
static int kp_blas_threads;
static hone_rt_pool *kp_pool;

/* oneDNN's row-major sgemm and OpenMP's thread-count setter, or NULL. */
typedef int (*dnnl_sgemm_fn)(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const float *a, int64_t lda, const float *b, int64_t ldb,
                             float beta, float *c, int64_t ldc);
typedef void (*omp_threads_fn)(int n);
static pthread_once_t kp_dnnl_once = PTHREAD_ONCE_INIT;
static dnnl_sgemm_fn kp_dnnl_loaded;
static omp_threads_fn kp_omp_threads;
static _Atomic(dnnl_sgemm_fn) kp_dnnl; /* kp_dnnl_loaded while the pool is acquired */
static _Thread_local int kp_omp_pinned;

/* Loads libdnnl.so.2 once (never unloaded: its JIT kernels are cached). */
static void load_dnnl(void)
{
#ifndef KP_NO_DNNL
    const char *want = getenv("HONE_TRAIN_GEMM");
    if (want && strcmp(want, "openblas") == 0)
        return;
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    dnnl_sgemm_fn f = (dnnl_sgemm_fn)dlsym(h, "dnnl_sgemm");
    omp_threads_fn o = (omp_threads_fn)dlsym(h, "omp_set_num_threads");
    if (f && o) {
        kp_dnnl_loaded = f;
        kp_omp_threads = o;
    }
#endif
}

void hone_rt_train_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                         float *c, int64_t ldc)
{
    dnnl_sgemm_fn f = kp_dnnl;
    if (!f || m <= 0 || n <= 0 || k <= 0) {
        hone_rt_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (!kp_omp_pinned) {
        kp_omp_threads(1);
        kp_omp_pinned = 1;
    }
    if (f(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c,
          ldc) != 0)
        hone_rt_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char *hone_rt_train_gemm_name(void)
{
    return kp_dnnl ? "onednn" : "openblas";
}

void hone_rt_kernel_pool_acquire(void)
{
    pthread_mutex_lock(&kp_lock);
    if (kp_users++ == 0) {
        pthread_once(&kp_dnnl_once, load_dnnl);
        kp_dnnl = kp_dnnl_loaded;
        kp_blas_threads = openblas_get_num_threads();
        kp_pool = kp_blas_threads > 1 ? hone_rt_pool_create(kp_blas_threads) : NULL;
        if (kp_pool)
            openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&kp_lock);
}

void hone_rt_kernel_pool_release(void)
{
    pthread_mutex_lock(&kp_lock);
    if (kp_users > 0 && --kp_users == 0) {
        kp_dnnl = NULL;
        if (kp_pool)
            openblas_set_num_threads(kp_blas_threads);
        hone_rt_pool_destroy(kp_pool);
        kp_pool = NULL;
    }
    pthread_mutex_unlock(&kp_lock);
}

int hone_rt_kernel_pool_active(void)
{
    pthread_mutex_lock(&kp_lock);
    int on = kp_users > 0;
    pthread_mutex_unlock(&kp_lock);
    return on;
}

hone_rt_pool *hone_rt_kernel_pool(void)
{
    pthread_mutex_lock(&kp_lock);
    hone_rt_pool *p = kp_pool;
    pthread_mutex_unlock(&kp_lock);
    return p;
}
