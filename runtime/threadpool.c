/*
 * A small fixed thread pool with one operation: parallel-for over [0, n).
 *
 * hone_rt_pool_create spawns size-1 worker threads once; the thread calling
 * hone_rt_parallel_for is worker 0 and works too. Nothing is allocated after
 * creation, so compiled code may use a pool its caller created: a job is a
 * (fn, ctx, n, chunk) record stored in the pool itself, and the range is cut
 * into chunks that workers claim from one atomic counter, which balances
 * uneven chunks without a queue. Each chunk call receives the worker index,
 * so a kernel can give every worker its own slice of the caller's workspace.
 *
 * Workers sleep on a condition variable and wake when the job generation
 * changes (a pool may first poll for a while: hone_rt_pool_set_spin). The
 * claim counter carries the generation in its upper 32 bits, and a worker
 * claims a chunk only while they match the job it copied, so the caller need
 * not wait for workers that never got a chunk: it returns once every chunk is
 * done. A worker that was descheduled (a shared machine) or slow to wake then
 * costs nothing, where the caller used to wait for it to check in; one that
 * wakes late joins whatever job is current, or none. Concurrent callers are
 * serialised by a submit lock; a parallel-for issued from inside a chunk
 * (nesting) runs inline on the calling worker instead of deadlocking.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "hone_rt.h"

/* Chunks per worker when the grain allows it: enough to balance uneven chunks, and a
 * short wait for the last one (two threads, 8 against 4: ResNet-50 19.2-19.5 ->
 * 18.9 ms, MobileNetV2 2.69-2.77 -> 2.66-2.70 ms). */
#define CHUNKS_PER_WORKER 8

typedef struct pool_job {
    hone_rt_range_fn fn;
    void *ctx;
    int64_t n, chunk, n_chunks;
} pool_job;

typedef struct pool_worker {
    pthread_t thread;
    hone_rt_pool *pool;
    int id;                   /* 1 .. size-1; the caller is 0 */
} pool_worker;

struct hone_rt_pool {
    int size;                 /* workers including the caller */
    pool_worker *workers;     /* size - 1 spawned workers */
    pthread_mutex_t mu;       /* guards gen, stop and job */
    pthread_cond_t wake;      /* gen changed or stop set */
    pthread_cond_t done_cv;   /* the current job's last chunk finished */
    pthread_mutex_t submit;   /* one parallel-for at a time */
    atomic_uint_fast64_t gen; /* written under mu; read without it while spinning */
    int stop;
    atomic_int spin;          /* polls before sleeping (hone_rt_pool_set_spin) */
    pool_job job;
    atomic_uint_fast64_t claim; /* (generation << 32) | next unclaimed chunk of that job */
    atomic_int_fast64_t done;   /* chunks of the current job finished */
};

/* The pool whose chunk the current thread is running, if any (nesting guard),
 * and the worker index it runs as. */
static _Thread_local const hone_rt_pool *running_in;
static _Thread_local int running_id;

/* Claims chunks of job (generation gen) until none is left, calling fn on each as worker
 * id; the worker that finishes the last chunk wakes a caller asleep on `done`. */
static void run_chunks(hone_rt_pool *p, const pool_job *job, uint64_t gen, int id)
{
    const hone_rt_pool *outer = running_in;
    int outer_id = running_id;
    uint64_t tag = (gen & 0xffffffffu) << 32;
    running_in = p;
    running_id = id;
    for (;;) {
        uint_fast64_t v = atomic_load(&p->claim);
        if ((v & ~(uint_fast64_t)0xffffffffu) != tag || (int64_t)(v & 0xffffffffu) >= job->n_chunks)
            break;
        if (!atomic_compare_exchange_weak(&p->claim, &v, v + 1))
            continue;
        int64_t b = (int64_t)(v & 0xffffffffu) * job->chunk;
        int64_t e = job->n - b < job->chunk ? job->n : b + job->chunk;
        job->fn(job->ctx, b, e, id);
        if (atomic_fetch_add(&p->done, 1) + 1 == job->n_chunks && id != 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    running_in = outer;
    running_id = outer_id;
}

/* One pause of a polling loop. */
static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline int spin_polls(hone_rt_pool *p)
{
    return atomic_load_explicit(&p->spin, memory_order_relaxed);
}

/* Waits for a generation after *seen; copies the current one and its job, or returns 0
 * on stop. */
static int wait_job(hone_rt_pool *p, uint64_t *seen, pool_job *job)
{
    for (int i = 0, n = spin_polls(p); i < n && atomic_load(&p->gen) == *seen; i++)
        relax();
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->gen == *seen)
        pthread_cond_wait(&p->wake, &p->mu);
    int go = !p->stop;
    *seen = p->gen;
    *job = p->job;
    pthread_mutex_unlock(&p->mu);
    return go;
}

/* Body of a spawned worker: run each new job's chunks, then report back. */
static void *worker_main(void *arg)
{
    pool_worker *w = arg;
    hone_rt_pool *p = w->pool;
    uint64_t seen = 0;
    pool_job job;
    while (wait_job(p, &seen, &job))
        run_chunks(p, &job, seen, w->id);
    return NULL;
}

/* Stops and joins the first n spawned workers, then frees the pool. */
static void teardown(hone_rt_pool *p, int n)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->submit);
    free(p->workers);
    free(p);
}

/* Starts spawned worker i (id i + 1); 0 on success. */
static int spawn(hone_rt_pool *p, int i)
{
    p->workers[i].pool = p;
    p->workers[i].id = i + 1;
    return pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
}

hone_rt_pool *hone_rt_pool_create(int n_threads)
{
    if (n_threads < 1 || n_threads > HONE_RT_POOL_MAX_THREADS)
        return NULL;
    hone_rt_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->size = n_threads;
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->submit, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->gen, 0);
    int started = 0;
    while (p->workers && started < n_threads - 1 && spawn(p, started) == 0)
        started++;
    if (!p->workers || started < n_threads - 1) {
        teardown(p, started);
        return NULL;
    }
    return p;
}

void hone_rt_pool_set_spin(hone_rt_pool *p, int polls)
{
    if (p)
        atomic_store_explicit(&p->spin, polls > 0 ? polls : 0, memory_order_relaxed);
}

int hone_rt_pool_spin(const hone_rt_pool *p)
{
    return p ? atomic_load_explicit(&((hone_rt_pool *)p)->spin, memory_order_relaxed) : 0;
}

void hone_rt_pool_destroy(hone_rt_pool *p)
{
    if (p)
        teardown(p, p->size - 1);
}

int hone_rt_pool_size(const hone_rt_pool *p)
{
    return p ? p->size : 1;
}

/* ceil(a / b) for a >= 0, b > 0, without overflow. */
static int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

/* The job record for n items cut for size workers, chunks of at least grain: at most
 * size * CHUNKS_PER_WORKER chunks, so a chunk index fits the claim counter's 32 bits. */
static pool_job make_job(int size, int64_t n, int64_t grain, hone_rt_range_fn fn, void *ctx)
{
    int64_t target = ceil_div(n, (int64_t)size * CHUNKS_PER_WORKER);
    pool_job job = {fn, ctx, n, target > grain ? target : grain, 0};
    job.n_chunks = ceil_div(n, job.chunk);
    return job;
}

void hone_rt_parallel_for(hone_rt_pool *p, int64_t n, int64_t grain, hone_rt_range_fn fn,
                          void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->size == 1 || n <= grain || running_in == p) {
        fn(ctx, 0, n, running_in == p ? running_id : 0);
        return;
    }
    pool_job job = make_job(p->size, n, grain, fn, ctx);
    pthread_mutex_lock(&p->submit);
    pthread_mutex_lock(&p->mu);
    p->job = job;
    uint64_t gen = (uint64_t)p->gen + 1;
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, (uint_fast64_t)(gen & 0xffffffffu) << 32);
    p->gen = gen;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, &job, gen, 0);
    for (int i = 0, np = spin_polls(p); i < np && atomic_load(&p->done) < job.n_chunks; i++)
        relax();
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->done) < job.n_chunks)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->submit);
}

/* ===================== the shared pool ===================== */

/* Polls of the shared pool's threads before they sleep. The interpreter and the training
 * engine: SHARED_SPIN = 0, since on a machine shared with other jobs a polling worker
 * takes the core the caller needs (a 2-thread parallel-for took 90-360 us with 4000
 * polls against 15-20 us sleeping on the condition variable, under load). Compiled
 * models: COMPILED_SPIN (hone_rt_compiled_enter), as ONNX Runtime's pool spins by
 * default: a model runs one parallel-for after another, and waking sleeping workers cost
 * ResNet-18 5% and MobileNetV2 20% of their 2-thread latency on a quiet machine
 * (docs/PERFORMANCE.md). HONE_SPIN=N overrides both (0: always sleep at once). */
#define SHARED_SPIN 0
#define COMPILED_SPIN 2000

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static hone_rt_pool *shared;

static int env_threads(const char *name)
{
    const char *s = getenv(name);
    int n = s ? atoi(s) : 0;
    return n > 0 ? n : 0;
}

/* HONE_SPIN when set (0 included), else dflt. */
static int spin_setting(int dflt)
{
    const char *s = getenv("HONE_SPIN");
    return s && *s ? atoi(s) : dflt;
}

static void shared_init(void)
{
    int n = env_threads("HONE_NUM_THREADS");
    n = n ? n : env_threads("OPENBLAS_NUM_THREADS");
    n = n ? n : (int)sysconf(_SC_NPROCESSORS_ONLN);
    n = n < 1 ? 1 : n > 16 ? 16 : n;
    shared = n > 1 ? hone_rt_pool_create(n) : NULL;
    hone_rt_pool_set_spin(shared, spin_setting(SHARED_SPIN));
}

static pthread_once_t compiled_once = PTHREAD_ONCE_INIT;

static void compiled_init(void)
{
    hone_rt_pool_set_spin(hone_rt_shared_pool(), spin_setting(COMPILED_SPIN));
}

void hone_rt_compiled_enter(void)
{
    pthread_once(&compiled_once, compiled_init);
}

hone_rt_pool *hone_rt_shared_pool(void)
{
    pthread_once(&shared_once, shared_init);
    return shared;
}
