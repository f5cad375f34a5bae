/*
 * Thread safety of a compiled model: one single-threaded reference run, then
 * T threads x R runs, each thread with its own workspace and output buffers,
 * every output compared bit for bit with the reference. The model is a
 * hone-compiled shared library found through its PREFIX_info descriptor.
 * usage: thread_test MODEL.so PREFIX [THREADS] [RUNS]
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"

typedef struct job {
    const hone_model_info *info;
    const void *const *inputs;
    void *const *reference;
    size_t *out_bytes;
    int runs, mismatches, failures;
} job;

static size_t dtype_size(int dt)
{
    switch (dt) {
    case 1: case 6: case 12: return 4;
    case 7: case 11: case 13: return 8;
    case 4: case 5: case 10: case 16: return 2;
    default: return 1;
    }
}

static size_t desc_bytes(const hone_tensor_desc *d)
{
    size_t n = dtype_size(d->dtype);
    for (int i = 0; i < d->rank; i++)
        n *= (size_t)d->dims[i];
    return n;
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) {
        fprintf(stderr, "thread_test: out of memory\n");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

/* One thread: R runs with a private workspace, outputs compared to the reference. */
static void *worker(void *arg)
{
    job *j = arg;
    const hone_model_info *m = j->info;
    void *ws = xalloc(m->workspace_size);
    void *outs[m->n_outputs + 1];
    for (int o = 0; o < m->n_outputs; o++)
        outs[o] = xalloc(j->out_bytes[o]);
    for (int r = 0; r < j->runs; r++) {
        if (m->run(j->inputs, outs, ws)) {
            j->failures++;
            continue;
        }
        for (int o = 0; o < m->n_outputs; o++)
            j->mismatches += memcmp(outs[o], j->reference[o], j->out_bytes[o]) != 0;
    }
    for (int o = 0; o < m->n_outputs; o++)
        free(outs[o]);
    free(ws);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fprintf(stderr, "usage: thread_test MODEL.so PREFIX [THREADS] [RUNS]\n"), 2;
    int threads = argc > 3 ? atoi(argv[3]) : 8, runs = argc > 4 ? atoi(argv[4]) : 1000;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return fprintf(stderr, "thread_test: %s\n", dlerror()), 1;
    char sym[256];
    snprintf(sym, sizeof sym, "%s_info", argv[2]);
    const hone_model_info *(*info_fn)(void) = (const hone_model_info *(*)(void))dlsym(lib, sym);
    if (!info_fn)
        return fprintf(stderr, "thread_test: no symbol %s\n", sym), 1;
    const hone_model_info *m = info_fn();
    const void *ins[m->n_inputs + 1];
    void *ref[m->n_outputs + 1];
    size_t out_bytes[m->n_outputs + 1];
    srand(1);
    for (int i = 0; i < m->n_inputs; i++) {
        size_t nb = desc_bytes(&m->inputs[i]);
        float *x = xalloc(nb);
        for (size_t k = 0; k < nb / sizeof(float); k++)
            x[k] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
        ins[i] = x;
    }
    for (int o = 0; o < m->n_outputs; o++) {
        out_bytes[o] = desc_bytes(&m->outputs[o]);
        ref[o] = xalloc(out_bytes[o]);
    }
    void *ws = xalloc(m->workspace_size);
    if (m->run(ins, ref, ws))
        return fprintf(stderr, "thread_test: reference run failed\n"), 1;
    free(ws);
    pthread_t tid[threads];
    job jobs[threads];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){m, ins, ref, out_bytes, runs, 0, 0};
        pthread_create(&tid[t], NULL, worker, &jobs[t]);
    }
    int bad = 0, failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        bad += jobs[t].mismatches;
        failed += jobs[t].failures;
    }
    printf("%d threads x %d runs: %d outputs differ from the single-threaded run, %d runs failed\n",
           threads, runs, bad, failed);
    for (int i = 0; i < m->n_inputs; i++)
        free((void *)ins[i]);
    for (int o = 0; o < m->n_outputs; o++)
        free(ref[o]);
    dlclose(lib);
    return bad || failed;
}
