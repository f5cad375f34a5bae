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
 */
#include <cblas.h>
#include <pthread.h>

#include "hone_rt.h"

static pthread_mutex_t kp_lock = PTHREAD_MUTEX_INITIALIZER;
static int kp_users;
static int kp_blas_threads;
static hone_rt_pool *kp_pool;

void hone_rt_kernel_pool_acquire(void)
{
    pthread_mutex_lock(&kp_lock);
    if (kp_users++ == 0) {
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
