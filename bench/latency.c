/*
 * latency: times a hone-compiled model loaded at run time.
 *
 * The harness knows a model only through the stable ABI of <hone/model.h>:
 * it dlopen()s MODEL.so, looks up PREFIX_info (PREFIX from --name, else the
 * file name without "lib" and extension), allocates every input and output
 * and one 64-byte-aligned workspace of the stated size, fills the inputs from
 * .npy files (checked against the model's dtypes and shapes) or with seeded
 * random data, runs --warmup untimed runs and --repeat timed runs, and prints
 * the median, min and 90th-percentile latency in ms and the peak resident set
 * size of the whole process (getrusage), one "key value" per line so scripts
 * can read it. --output-dir writes the outputs of the last run as .npy, so a
 * benchmark can check what it timed. .npy I/O and tensors come from hone's
 * frontend/io module; the harness itself never links the compiled model.
 *
 * usage: latency MODEL.so [--name PREFIX] [--input NAME=FILE.npy]... [--warmup N]
 *                [--repeat N] [--threads N] [--seed S] [--output-dir DIR]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <hone/model.h>

#include "io.h"

#define MAX_FEEDS 64

typedef struct options {
    const char *model, *name, *output_dir;
    const char *feed_name[MAX_FEEDS], *feed_file[MAX_FEEDS];
    int n_feeds, warmup, repeat, threads;
    unsigned long long seed;
} options;

typedef struct session {
    const hone_model_info *info;
    hone_tensor **in, **out;
    void **in_ptr, **out_ptr;
    void *workspace;
} session;

/* PREFIX_profile_reset of a model compiled with --profile (NULL otherwise): the warm-up
 * runs are left out of its per-node table. */
static void (*prof_reset)(void);

static void usage(FILE *f)
{
    fprintf(f, "usage: latency MODEL.so [--name PREFIX] [--input NAME=FILE.npy]... [--warmup N]\n"
               "               [--repeat N] [--threads N] [--seed S] [--output-dir DIR]\n\n"
               "Times a hone-compiled model: median/min/p90 latency in ms over --repeat runs\n"
               "(default 20) after --warmup runs (default 3), and the peak RSS. Inputs without\n"
               "--input get seeded random data. --threads N sets OPENBLAS_NUM_THREADS and\n"
               "OMP_NUM_THREADS before the model is loaded.\n");
}

/* Parses a count flag value >= lo; -1 when it is not one. */
static int parse_count(const char *s, int lo)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= lo && v <= 1000000 ? (int)v : -1;
}

/* Records --input NAME=FILE; 0 on success. */
static int add_feed(options *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || o->n_feeds == MAX_FEEDS)
        return -1;
    o->feed_name[o->n_feeds] = strndup(arg, (size_t)(eq - arg));
    o->feed_file[o->n_feeds++] = eq + 1;
    return 0;
}

/* Fills o from argv; 0 on success, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.warmup = 3, .repeat = 20, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (a[0] != '-' && !o->model) {
            o->model = a;
            continue;
        } else if (!v) {
            bad = 1;
        } else if (strcmp(a, "--name") == 0) {
            o->name = v;
        } else if (strcmp(a, "--input") == 0) {
            bad = add_feed(o, v);
        } else if (strcmp(a, "--output-dir") == 0) {
            o->output_dir = v;
        } else if (strcmp(a, "--warmup") == 0) {
            bad = (o->warmup = parse_count(v, 0)) < 0;
        } else if (strcmp(a, "--repeat") == 0) {
            bad = (o->repeat = parse_count(v, 1)) < 0;
        } else if (strcmp(a, "--threads") == 0) {
            bad = (o->threads = parse_count(v, 1)) < 0;
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = strtoull(v, NULL, 10);
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "latency: bad argument '%s%s%s'\n", a, v ? " " : "", v ? v : "");
            return 2;
        }
        i++;
    }
    if (!o->model) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* PREFIX from the file name: basename without a leading "lib" and the extension. */
static char *default_name(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strncmp(base, "lib", 3) == 0 && base[3])
        base += 3;
    size_t n = strcspn(base, ".");
    return strndup(base, n);
}

/* Loads the model's descriptor from the shared object; NULL with a message. */
static const hone_model_info *load_model(const options *o)
{
    void *h = dlopen(o->model, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "latency: %s\n", dlerror());
        return NULL;
    }
    char *name = o->name ? strdup(o->name) : default_name(o->model);
    char sym[512];
    snprintf(sym, sizeof sym, "%s_profile_reset", name ? name : "");
    prof_reset = (void (*)(void))dlsym(h, sym);
    snprintf(sym, sizeof sym, "%s_info", name ? name : "");
    free(name);
    const hone_model_info *(*info_fn)(void) = (const hone_model_info *(*)(void))dlsym(h, sym);
    const hone_model_info *info = info_fn ? info_fn() : NULL;
    if (!info)
        fprintf(stderr, "latency: %s: no symbol %s (give the PREFIX with --name)\n", o->model, sym);
    else if (info->abi_version != HONE_MODEL_ABI_VERSION) {
        fprintf(stderr, "latency: %s: model ABI %d, this harness reads ABI %d\n", o->model,
                info->abi_version, HONE_MODEL_ABI_VERSION);
        info = NULL;
    }
    return info;
}

/* 1 when t has exactly the dtype and dims of d. */
static int matches(const hone_tensor *t, const hone_tensor_desc *d)
{
    if ((int)t->dtype != d->dtype || t->rank != d->rank)
        return 0;
    for (int i = 0; i < d->rank; i++)
        if (t->dims[i] != d->dims[i])
            return 0;
    return 1;
}

/* Next value of a 64-bit xorshift generator. */
static unsigned long long next_rand(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random contents: floats uniform in [-1, 1), integers in [0, 10), booleans 0/1. */
static void fill_random(hone_tensor *t, unsigned long long *seed)
{
    int is_float = t->dtype == HONE_DT_FLOAT || t->dtype == HONE_DT_DOUBLE ||
                   t->dtype == HONE_DT_FLOAT16 || t->dtype == HONE_DT_BFLOAT16;
    int range = t->dtype == HONE_DT_BOOL ? 2 : 10;
    for (int64_t i = 0; i < t->numel; i++) {
        unsigned long long r = next_rand(seed);
        double v = is_float ? (double)(r >> 11) / (double)(1ULL << 52) - 1.0 : (double)(r % range);
        hone_tensor_set_f64(t, i, v);
    }
}

/* The file given with --input for tensor d, or NULL. */
static const char *feed_for(const options *o, const hone_tensor_desc *d)
{
    for (int i = 0; i < o->n_feeds; i++)
        if (strcmp(o->feed_name[i], d->name) == 0 || strcmp(o->feed_name[i], d->c_name) == 0)
            return o->feed_file[i];
    return NULL;
}

/* Input k of the model from its .npy file or random data; 0 on success. */
static int make_input(const options *o, const hone_tensor_desc *d, hone_tensor **t,
                      unsigned long long *seed)
{
    hone_ctx ctx;
    const char *file = feed_for(o, d);
    hone_ctx_init(&ctx);
    if (d->dtype == HONE_DT_STRING || d->dtype == HONE_DT_COMPLEX64 ||
        d->dtype == HONE_DT_COMPLEX128) {
        fprintf(stderr, "latency: input '%s' has an unsupported dtype %d\n", d->name, d->dtype);
        return -1;
    }
    if (file ? hone_npy_read(&ctx, file, t) : hone_tensor_new(&ctx, d->dtype, d->rank, d->dims, t)) {
        fprintf(stderr, "latency: input '%s': %s\n", d->name, ctx.msg);
        return -1;
    }
    if (!matches(*t, d)) {
        fprintf(stderr, "latency: %s does not have the dtype and shape of input '%s'\n", file,
                d->name);
        return -1;
    }
    if (!file)
        fill_random(*t, seed);
    return 0;
}

/* Zeroed output tensor for d; 0 on success. */
static int make_output(const hone_tensor_desc *d, hone_tensor **t)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    if (hone_tensor_new(&ctx, d->dtype, d->rank, d->dims, t)) {
        fprintf(stderr, "latency: output '%s': %s\n", d->name, ctx.msg);
        return -1;
    }
    return 0;
}

/* Allocates everything one run needs; 0 on success. */
static int open_session(const options *o, const hone_model_info *m, session *s)
{
    unsigned long long seed = o->seed ? o->seed : 1;
    size_t ws = (m->workspace_size + 63) / 64 * 64;
    s->info = m;
    s->in = calloc((size_t)m->n_inputs + 1, sizeof *s->in);
    s->out = calloc((size_t)m->n_outputs + 1, sizeof *s->out);
    s->in_ptr = calloc((size_t)m->n_inputs + 1, sizeof *s->in_ptr);
    s->out_ptr = calloc((size_t)m->n_outputs + 1, sizeof *s->out_ptr);
    s->workspace = aligned_alloc(64, ws ? ws : 64);
    if (!s->in || !s->out || !s->in_ptr || !s->out_ptr || !s->workspace) {
        fprintf(stderr, "latency: out of memory (workspace %zu bytes)\n", ws);
        return -1;
    }
    for (int k = 0; k < m->n_inputs; k++) {
        if (make_input(o, &m->inputs[k], &s->in[k], &seed))
            return -1;
        s->in_ptr[k] = s->in[k]->data;
    }
    for (int k = 0; k < m->n_outputs; k++) {
        if (make_output(&m->outputs[k], &s->out[k]))
            return -1;
        s->out_ptr[k] = s->out[k]->data;
    }
    return 0;
}

static void close_session(session *s)
{
    for (int k = 0; s->in && k < s->info->n_inputs; k++)
        hone_tensor_free(s->in[k]);
    for (int k = 0; s->out && k < s->info->n_outputs; k++)
        hone_tensor_free(s->out[k]);
    free(s->in);
    free(s->out);
    free(s->in_ptr);
    free(s->out_ptr);
    free(s->workspace);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs the model once, timing it into *ms; 0 on success. */
static int run_once(const session *s, double *ms)
{
    double t0 = now_ms();
    int rc = s->info->run((const void *const *)s->in_ptr, (void *const *)s->out_ptr, s->workspace);
    *ms = now_ms() - t0;
    if (rc)
        fprintf(stderr, "latency: %s_run returned %d\n", s->info->name, rc);
    return rc;
}

/* Warm-up and timed runs, then the summary lines; 0 on success. */
static int time_runs(const options *o, const session *s)
{
    double *t = calloc((size_t)o->repeat, sizeof *t), ms;
    int rc = t ? 0 : -1;
    for (int i = 0; !rc && i < o->warmup; i++)
        rc = run_once(s, &ms);
    if (prof_reset)
        prof_reset();
    for (int i = 0; !rc && i < o->repeat; i++)
        rc = run_once(s, &t[i]);
    if (!rc) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        qsort(t, (size_t)o->repeat, sizeof *t, cmp_double);
        int p90 = (9 * o->repeat + 9) / 10 - 1; /* ceil(0.9 n) - 1 */
        printf("runs %d\nwarmup %d\n", o->repeat, o->warmup);
        printf("median_ms %.3f\nmin_ms %.3f\np90_ms %.3f\n", t[o->repeat / 2], t[0], t[p90]);
        printf("peak_rss_mb %.1f\n", (double)ru.ru_maxrss / 1024.0);
    }
    free(t);
    return rc;
}

/* Writes each output as DIR/<c_name>.npy; 0 on success. */
static int save_outputs(const char *dir, const session *s)
{
    for (int k = 0; k < s->info->n_outputs; k++) {
        char path[4096];
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        snprintf(path, sizeof path, "%s/%s.npy", dir, s->info->outputs[k].c_name);
        if (hone_npy_write(&ctx, s->out[k], path)) {
            fprintf(stderr, "latency: %s\n", ctx.msg);
            return -1;
        }
    }
    return 0;
}

/* Sets the BLAS/OpenMP thread counts the model will read when it loads. */
static void set_threads(int n)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", n);
    setenv("OPENBLAS_NUM_THREADS", buf, 1);
    setenv("OMP_NUM_THREADS", buf, 1);
}

int main(int argc, char **argv)
{
    options o;
    session s = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.threads)
        set_threads(o.threads);
    const hone_model_info *m = load_model(&o);
    if (!m)
        return 1;
    printf("model %s: %d inputs, %d outputs, workspace %zu bytes\n", m->name, m->n_inputs,
           m->n_outputs, m->workspace_size);
    rc = open_session(&o, m, &s) || time_runs(&o, &s) ||
         (o.output_dir && save_outputs(o.output_dir, &s));
    close_session(&s);
    for (int i = 0; i < o.n_feeds; i++)
        free((char *)o.feed_name[i]);
    return rc ? 1 : 0;
}
