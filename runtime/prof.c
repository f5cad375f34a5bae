/*
 * Per-node time of compiled models built with `hone compile --profile` (or run
 * with `hone run --jit --profile`): the generated run function reads the clock
 * around each node's call and adds the span here, keyed by the node's name
 * string. At exit (or on hone_rt_prof_report, which then clears it) the table goes
 * to stderr, or to the file HONE_PROFILE names: per node its op, calls, total, mean and
 * least time and share, slowest first, then the same per op type.
 *
 * Not for deployment builds: the table lives in static storage (no allocation),
 * HONE_PROF_SLOTS nodes at most over all models of the program (further nodes
 * are counted as dropped), and a mutex guards the insertion of a new node.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hone_rt.h"

#define HONE_PROF_SLOTS 8192 /* a power of two */

typedef struct prof_slot {
    const char *name; /* the node's name (the generated code's constant string) */
    const char *op;
    int64_t ns;
    int64_t calls;
    int64_t min_ns; /* the fastest call (0: none yet) */
    int32_t step;
} prof_slot;

static prof_slot slots[HONE_PROF_SLOTS];
static int64_t n_dropped;
static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t prof_once = PTHREAD_ONCE_INIT;

int64_t hone_rt_prof_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void report_at_exit(void)
{
    hone_rt_prof_report(NULL);
}

static void prof_init(void)
{
    atexit(report_at_exit);
}

/* The slot of name (by pointer: each node's string is a distinct constant), inserted
 * when new; NULL when the table is full. */
static prof_slot *slot_of(const char *name, const char *op, int32_t step)
{
    uintptr_t h = (uintptr_t)name;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    for (unsigned probe = 0; probe < HONE_PROF_SLOTS; probe++) {
        prof_slot *s = &slots[(h + probe) & (HONE_PROF_SLOTS - 1)];
        const char *cur = __atomic_load_n(&s->name, __ATOMIC_ACQUIRE);
        if (cur == name)
            return s;
        if (!cur) {
            pthread_mutex_lock(&prof_mu);
            if (!s->name) {
                s->op = op;
                s->step = step;
                __atomic_store_n(&s->name, name, __ATOMIC_RELEASE);
            }
            cur = s->name;
            pthread_mutex_unlock(&prof_mu);
            if (cur == name)
                return s;
        }
    }
    return NULL;
}

void hone_rt_prof_add(int64_t t0, int32_t step, const char *name, const char *op)
{
    int64_t dt = hone_rt_prof_now() - t0;
    pthread_once(&prof_once, prof_init);
    prof_slot *s = slot_of(name, op, step);
    if (!s) {
        __atomic_fetch_add(&n_dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_fetch_add(&s->ns, dt, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
    int64_t m = __atomic_load_n(&s->min_ns, __ATOMIC_RELAXED);
    while ((m == 0 || dt < m) &&
           !__atomic_compare_exchange_n(&s->min_ns, &m, dt, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static int by_time(const void *a, const void *b)
{
    const prof_slot *x = *(const prof_slot *const *)a, *y = *(const prof_slot *const *)b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? 1 : -1;
    return x->step - y->step;
}

void hone_rt_prof_reset(void);

void hone_rt_prof_report(const char *path)
{
    static prof_slot *order[HONE_PROF_SLOTS];
    static prof_slot ops[HONE_PROF_SLOTS];
    static prof_slot *op_order[HONE_PROF_SLOTS];
    int n = 0, n_ops = 0;
    int64_t total = 0;
    pthread_mutex_lock(&prof_mu);
    for (int i = 0; i < HONE_PROF_SLOTS; i++)
        if (slots[i].name && slots[i].calls > 0) {
            order[n++] = &slots[i];
            total += slots[i].ns;
            int k = 0;
            while (k < n_ops && strcmp(ops[k].op, slots[i].op))
                k++;
            if (k == n_ops) {
                ops[n_ops] = (prof_slot){.name = slots[i].op, .op = slots[i].op};
                op_order[n_ops] = &ops[n_ops];
                n_ops++;
            }
            ops[k].ns += slots[i].ns;
            ops[k].calls += slots[i].calls;
            ops[k].step++; /* nodes of this op */
        }
    pthread_mutex_unlock(&prof_mu);
    if (!n)
        return;
    if (!path)
        path = getenv("HONE_PROFILE");
    FILE *f = path && *path ? fopen(path, "w") : stderr;
    if (!f) {
        fprintf(stderr, "hone profile: cannot write '%s'; the table follows here\n", path);
        f = stderr;
    }
    qsort(order, (size_t)n, sizeof *order, by_time);
    qsort(op_order, (size_t)n_ops, sizeof *op_order, by_time);
    double tot_ms = (double)total * 1e-6;
    fprintf(f, "# hone profile: %d nodes, %.3f ms in nodes in all", n, tot_ms);
    if (n_dropped)
        fprintf(f, " (%" PRId64 " calls of nodes past the table's %d dropped)", n_dropped,
                HONE_PROF_SLOTS);
    fprintf(f, "\n%-6s %-20s %8s %12s %10s %10s %6s  %s\n", "step", "op", "calls", "total_ms",
            "mean_us", "min_us", "share", "node");
    for (int i = 0; i < n; i++) {
        const prof_slot *s = order[i];
        fprintf(f, "%-6d %-20s %8" PRId64 " %12.3f %10.1f %10.1f %5.1f%%  %s\n", (int)s->step,
                s->op, s->calls, (double)s->ns * 1e-6, (double)s->ns * 1e-3 / (double)s->calls,
                (double)s->min_ns * 1e-3, total ? 100.0 * (double)s->ns / (double)total : 0.0,
                s->name);
    }
    fprintf(f, "# per op type\n%-20s %6s %8s %12s %6s\n", "op", "nodes", "calls", "total_ms",
            "share");
    for (int i = 0; i < n_ops; i++) {
        const prof_slot *s = op_order[i];
        fprintf(f, "%-20s %6d %8" PRId64 " %12.3f %5.1f%%\n", s->op, (int)s->step, s->calls,
                (double)s->ns * 1e-6, total ? 100.0 * (double)s->ns / (double)total : 0.0);
    }
    if (f != stderr)
        fclose(f);
    hone_rt_prof_reset();
}

void hone_rt_prof_reset(void)
{
    pthread_mutex_lock(&prof_mu);
    for (int i = 0; i < HONE_PROF_SLOTS; i++) {
        __atomic_store_n(&slots[i].ns, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].min_ns, 0, __ATOMIC_RELAXED);
    }
    n_dropped = 0;
    pthread_mutex_unlock(&prof_mu);
}
