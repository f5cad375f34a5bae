/*
 * Soak: imports, optimises (-O2), compiles in memory (JIT) and runs every ONNX
 * backend test model given, in one process, for several rounds, and checks that
 * resident memory after the last round is back at its level after the first
 * (no leaks, no growth). Models the backend cannot lower still go through
 * import, passes and the interpreter.
 * usage: soak ROUNDS MAX_GROWTH_MB DIR...   (each DIR a folder of test folders)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "interp.h"
#include "onnx.h"
#include "passes.h"

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Inputs of test_data_set_0, or NULL when one cannot be read. */
static hone_tensor **load_inputs(hone_ctx *ctx, const hone_graph *g, const char *dir)
{
    hone_tensor **ins = calloc((size_t)g->n_inputs + 1, sizeof *ins);
    for (int i = 0; i < g->n_inputs; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/test_data_set_0/input_%d.pb", dir, i);
        if (hone_onnx_read_tensor_pb(ctx, p, &ins[i])) {
            for (int k = 0; k < i; k++)
                hone_tensor_free(ins[k]);
            free(ins);
            return NULL;
        }
    }
    return ins;
}

static void free_tensors(hone_tensor **t, int n)
{
    for (int i = 0; t && i < n; i++)
        hone_tensor_free(t[i]);
    free(t);
}

/* One model through the whole pipeline; returns 1 when it was JIT-compiled and run. */
static int one_model(const char *dir, const hone_pipeline *p)
{
    char path[4096];
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (hone_onnx_load(&ctx, path, &g))
        return 0;
    int jitted = 0;
    hone_tensor **ins = load_inputs(&ctx, g, dir);
    if (ins && !hone_passes_run(&ctx, g, p, NULL, NULL)) {
        hone_tensor **outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
        if (!hone_interp_run(&ctx, g, (const hone_tensor **)ins, outs, NULL)) {
            free_tensors(outs, g->n_outputs);
            outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
        }
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        hone_backend_shapes_from(&o, g, (const hone_tensor **)ins);
        hone_jit_t *j = NULL;
        if (!hone_jit_compile(&ctx, g, &o, &j, NULL)) {
            jitted = !hone_jit_run(&ctx, j, (const hone_tensor **)ins, outs);
            hone_jit_free(j);
        }
        free_tensors(outs, g->n_outputs);
    }
    free_tensors(ins, g->n_inputs);
    hone_graph_free(g);
    return jitted;
}

static int run_round(int argc, char **argv, const hone_pipeline *p, int *models)
{
    int jitted = 0;
    *models = 0;
    for (int a = 3; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s", argv[a], e->d_name);
            jitted += one_model(dir, p);
            (*models)++;
        }
        if (d)
            closedir(d);
    }
    return jitted;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "usage: soak ROUNDS MAX_GROWTH_MB DIR...\n"), 2;
    int rounds = atoi(argv[1]), models = 0;
    long max_growth_kb = atol(argv[2]) * 1024, after_first = 0, now = 0;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    if (hone_pipeline_parse(&ctx, hone_pipeline_level(2), &p))
        return fprintf(stderr, "soak: %s\n", ctx.msg), 1;
    for (int r = 0; r < rounds; r++) {
        int jitted = run_round(argc, argv, &p, &models);
        now = rss_kb();
        if (!r)
            after_first = now;
        printf("round %d: %d models, %d compiled and run, resident %ld KB\n", r + 1, models, jitted,
               now);
    }
    hone_pipeline_free(&p);
    long growth = now - after_first;
    printf("growth after the first round: %ld KB (limit %ld KB)\n", growth, max_growth_kb);
    return growth > max_growth_kb;
}
