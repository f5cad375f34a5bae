/*
 * Runtime thread pool: every index of the range is visited exactly once for
 * many (n, grain, size) combinations; chunks respect the grain; worker ids
 * stay in range; per-worker partial sums add up to the closed form
 * n(n-1)/2; the pool really runs chunks at the same time (a rendezvous that
 * only completes when all workers hold a chunk at once); serial fallbacks
 * (NULL pool, size 1, n <= grain, nesting) and bad sizes; two external
 * threads sharing one pool; a range of INT64_MAX items (chunk arithmetic
 * must not overflow); and many jobs in a row.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "hone_rt.h"

/* Visit record: how often each index was seen, chunk bounds, worker ids. */
typedef struct visits {
    int *count;
    int64_t min_chunk, n;
    atomic_int calls;
    atomic_int bad_worker;
    atomic_int short_chunk;
    int size;
    int64_t grain;
} visits;

static void visit(void *ctx, int64_t b, int64_t e, int worker)
{
    visits *v = ctx;
    for (int64_t i = b; i < e; i++)
        v->count[i]++; /* chunks are disjoint, so no two threads share an index */
    if (worker < 0 || worker >= v->size)
        atomic_fetch_add(&v->bad_worker, 1);
    if (e - b < v->grain && e != v->n)
        atomic_fetch_add(&v->short_chunk, 1);
    atomic_fetch_add(&v->calls, 1);
}

/* Runs one parallel-for over n with grain and checks the coverage rules. */
static void check_cover(hone_rt_pool *p, int64_t n, int64_t grain)
{
    visits v = {.n = n, .size = hone_rt_pool_size(p), .grain = grain};
    v.count = calloc((size_t)(n > 0 ? n : 1), sizeof *v.count);
    atomic_init(&v.calls, 0);
    atomic_init(&v.bad_worker, 0);
    atomic_init(&v.short_chunk, 0);
    hone_rt_parallel_for(p, n, grain, visit, &v);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(v.count[i], 1);
    assert_int_equal(atomic_load(&v.bad_worker), 0);
    assert_int_equal(atomic_load(&v.short_chunk), 0);
    if (n == 0)
        assert_int_equal(atomic_load(&v.calls), 0);
    free(v.count);
}

static void test_cover_every_index_once(void **state)
{
    static const int sizes[] = {1, 2, 3, 4, 7};
    static const int64_t ns[] = {0, 1, 2, 5, 16, 17, 100, 1000, 4099};
    static const int64_t grains[] = {0, 1, 3, 64, 5000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        hone_rt_pool *p = hone_rt_pool_create(sizes[s]);
        assert_non_null(p);
        assert_int_equal(hone_rt_pool_size(p), sizes[s]);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
                check_cover(p, ns[i], grains[g]);
        hone_rt_pool_destroy(p);
    }
}

/* Per-worker partial sums of the indices, as a kernel with per-worker scratch would. */
typedef struct partial {
    int64_t sum[8];
} partial;

static void add_range(void *ctx, int64_t b, int64_t e, int worker)
{
    partial *ps = ctx;
    for (int64_t i = b; i < e; i++)
        ps->sum[worker] += i;
}

static void test_per_worker_partials(void **state)
{
    hone_rt_pool *p = hone_rt_pool_create(4);
    assert_non_null(p);
    for (int rep = 0; rep < 200; rep++) {
        partial ps;
        memset(&ps, 0, sizeof ps);
        int64_t n = 10000 + rep;
        hone_rt_parallel_for(p, n, 1, add_range, &ps);
        int64_t total = 0;
        for (int w = 0; w < 8; w++)
            total += ps.sum[w];
        assert_int_equal(total, n * (n - 1) / 2); /* 0 + 1 + ... + (n-1) */
    }
    hone_rt_pool_destroy(p);
}

/* Rendezvous: each chunk waits (up to 10 s) until `want` chunks are in flight. */
typedef struct rendezvous {
    atomic_int arrived;
    int want;
    atomic_int seen_workers; /* bit per worker id */
} rendezvous;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void meet(void *ctx, int64_t b, int64_t e, int worker)
{
    rendezvous *r = ctx;
    atomic_fetch_or(&r->seen_workers, 1 << worker);
    atomic_fetch_add(&r->arrived, 1);
    double t0 = now_s();
    while (atomic_load(&r->arrived) < r->want && now_s() - t0 < 10.0)
        sched_yield();
}

static void test_chunks_run_concurrently(void **state)
{
    hone_rt_pool *p = hone_rt_pool_create(4);
    assert_non_null(p);
    rendezvous r = {.want = 4};
    atomic_init(&r.arrived, 0);
    atomic_init(&r.seen_workers, 0);
    /* 4 items of grain 1 on 4 workers: 4 chunks, and no thread can take a second
     * chunk before all 4 are in flight, so every worker must hold one at once. */
    hone_rt_parallel_for(p, 4, 1, meet, &r);
    assert_int_equal(atomic_load(&r.arrived), 4);
    assert_int_equal(atomic_load(&r.seen_workers), 0xf);
    hone_rt_pool_destroy(p);
}

/* Records the single call a serial fallback must make. */
typedef struct one_call {
    int calls, worker;
    int64_t b, e;
} one_call;

static void record(void *ctx, int64_t b, int64_t e, int worker)
{
    one_call *c = ctx;
    c->calls++;
    c->b = b;
    c->e = e;
    c->worker = worker;
}

static void test_serial_fallbacks(void **state)
{
    one_call c = {0};
    hone_rt_parallel_for(NULL, 10, 1, record, &c);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.b, 0);
    assert_int_equal(c.e, 10);
    assert_int_equal(c.worker, 0);
    assert_int_equal(hone_rt_pool_size(NULL), 1);

    hone_rt_pool *p = hone_rt_pool_create(3);
    assert_non_null(p);
    memset(&c, 0, sizeof c);
    hone_rt_parallel_for(p, 50, 50, record, &c); /* n <= grain: one inline chunk */
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.e, 50);
    assert_int_equal(c.worker, 0);
    memset(&c, 0, sizeof c);
    hone_rt_parallel_for(p, -5, 1, record, &c); /* empty range */
    assert_int_equal(c.calls, 0);
    hone_rt_pool_destroy(p);
    hone_rt_pool_destroy(NULL);
}

static void test_bad_sizes(void **state)
{
    assert_null(hone_rt_pool_create(0));
    assert_null(hone_rt_pool_create(-3));
    assert_null(hone_rt_pool_create(HONE_RT_POOL_MAX_THREADS + 1));
}

/* Nesting: each outer chunk issues an inner parallel-for on the same pool. */
typedef struct nested {
    hone_rt_pool *pool;
    atomic_int inner_calls;
    atomic_int wrong_worker;
    atomic_llong inner_sum;
} nested;

typedef struct inner_ctx {
    nested *outer;
    int worker;
} inner_ctx;

static void inner(void *ctx, int64_t b, int64_t e, int worker)
{
    inner_ctx *ic = ctx;
    atomic_fetch_add(&ic->outer->inner_calls, 1);
    if (worker != ic->worker)
        atomic_fetch_add(&ic->outer->wrong_worker, 1);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&ic->outer->inner_sum, i);
}

static void outer(void *ctx, int64_t b, int64_t e, int worker)
{
    nested *nd = ctx;
    for (int64_t i = b; i < e; i++) {
        inner_ctx ic = {nd, worker};
        hone_rt_parallel_for(nd->pool, 10, 1, inner, &ic);
    }
}

static void test_nested_runs_inline(void **state)
{
    nested nd = {.pool = hone_rt_pool_create(3)};
    assert_non_null(nd.pool);
    atomic_init(&nd.inner_calls, 0);
    atomic_init(&nd.wrong_worker, 0);
    atomic_init(&nd.inner_sum, 0);
    hone_rt_parallel_for(nd.pool, 12, 1, outer, &nd);
    /* 12 outer items, each one inline inner call over 0..9 (sum 45). */
    assert_int_equal(atomic_load(&nd.inner_calls), 12);
    assert_int_equal(atomic_load(&nd.wrong_worker), 0);
    assert_int_equal(atomic_load(&nd.inner_sum), 12 * 45);
    hone_rt_pool_destroy(nd.pool);
}

/* Two external threads submit jobs to one pool at the same time. */
typedef struct submitter {
    hone_rt_pool *pool;
    int64_t n;
    int ok;
} submitter;

static void count_range(void *ctx, int64_t b, int64_t e, int worker)
{
    atomic_fetch_add((atomic_llong *)ctx, e - b);
}

static void *submit_many(void *arg)
{
    submitter *s = arg;
    s->ok = 1;
    for (int rep = 0; rep < 300; rep++) {
        atomic_llong total;
        atomic_init(&total, 0);
        hone_rt_parallel_for(s->pool, s->n, 7, count_range, &total);
        if (atomic_load(&total) != s->n)
            s->ok = 0;
    }
    return NULL;
}

/* Two threads submitting na and nb parallel-fors to p at once; each must see all of them
 * cover their ranges. */
static void two_callers(hone_rt_pool *p, int na, int nb)
{
    submitter a = {p, na, 0}, b = {p, nb, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, submit_many, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, submit_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(a.ok);
    assert_true(b.ok);
}

static void test_concurrent_callers(void **state)
{
    hone_rt_pool *p = hone_rt_pool_create(3);
    assert_non_null(p);
    two_callers(p, 1000, 777);
    hone_rt_pool_destroy(p);
}

/* A polling pool (hone_rt_pool_set_spin): every index covered once, back to back and
 * after the workers have gone to sleep, and by two concurrent callers. */
static void test_spinning_pool(void **state)
{
    hone_rt_pool *p = hone_rt_pool_create(3);
    assert_non_null(p);
    hone_rt_pool_set_spin(p, 100000);
    for (int r = 0; r < 200; r++)
        check_cover(p, 97 + r, 1);
    hone_rt_pool_set_spin(p, 10);
    for (int r = 0; r < 5; r++) {
        check_cover(p, 1000, 3);
        usleep(2000); /* the workers sleep on the condition variable again */
    }
    hone_rt_pool_set_spin(p, 100000);
    two_callers(p, 500, 333);
    hone_rt_pool_destroy(p);
    hone_rt_pool_set_spin(NULL, 5); /* a no-op */
}

/* Chunk bookkeeping without touching the range: total length, count, bad bounds. */
typedef struct span_log {
    atomic_llong total;
    atomic_int chunks, bad;
    int64_t n;
} span_log;

static void log_span(void *ctx, int64_t b, int64_t e, int worker)
{
    span_log *l = ctx;
    atomic_fetch_add(&l->total, e - b);
    atomic_fetch_add(&l->chunks, 1);
    if (b < 0 || e <= b || e > l->n)
        atomic_fetch_add(&l->bad, 1);
}

static void test_huge_range_no_overflow(void **state)
{
    hone_rt_pool *p = hone_rt_pool_create(4);
    assert_non_null(p);
    span_log l = {.n = INT64_MAX};
    atomic_init(&l.total, 0);
    atomic_init(&l.chunks, 0);
    atomic_init(&l.bad, 0);
    /* grain INT64_MAX/3 = 3074457345618258602 exceeds the per-worker target
     * ceil(INT64_MAX/16), so chunks are grain long: 3 full ones and a last one of 1. */
    hone_rt_parallel_for(p, INT64_MAX, INT64_MAX / 3, log_span, &l);
    assert_int_equal(atomic_load(&l.total), INT64_MAX);
    assert_int_equal(atomic_load(&l.chunks), 4);
    assert_int_equal(atomic_load(&l.bad), 0);
    hone_rt_pool_destroy(p);
}

static void test_create_destroy_cycles(void **state)
{
    for (int i = 0; i < 50; i++) {
        hone_rt_pool *p = hone_rt_pool_create(1 + i % 5);
        assert_non_null(p);
        if (i % 2)
            check_cover(p, 33, 2);
        hone_rt_pool_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cover_every_index_once),
        cmocka_unit_test(test_per_worker_partials),
        cmocka_unit_test(test_chunks_run_concurrently),
        cmocka_unit_test(test_serial_fallbacks),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_nested_runs_inline),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_spinning_pool),
        cmocka_unit_test(test_huge_range_no_overflow),
        cmocka_unit_test(test_create_destroy_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
