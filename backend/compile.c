/*
 * The backend's public entry points: one straight pipeline,
 *   prepare (prep.c) -> plan (plan.c) -> lower (lower.c) -> optimise (emit.c)
 * then either a file (object, assembly, IR, bitcode, shared library, header)
 * or, in jit.c, code in the running process. Each stage is timed for the
 * report. The header needs only the first two stages, but is written only
 * for a model that lowers completely.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "io.h"

void hone_backend_opts_init(hone_backend_opts *o)
{
    memset(o, 0, sizeof *o);
    o->opt_level = 3;
}

void hone_backend_shapes_from(hone_backend_opts *o, const hone_graph *g, const hone_tensor **ins)
{
    o->n_shapes = 0;
    for (int i = 0; i < g->n_inputs && i < HONE_BACKEND_MAX_SHAPES; i++) {
        hone_backend_shape *s = &o->shapes[o->n_shapes++];
        snprintf(s->name, sizeof s->name, "%s", g->inputs[i]->name);
        s->rank = ins[i]->rank;
        memcpy(s->dims, ins[i]->dims, sizeof s->dims);
    }
}

int hone_backend_emit_kind(const char *s)
{
    static const char *const names[] = {"lib", "obj", "asm", "llvm-ir", "bc", "header"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static hone_status check_opts(hone_ctx *ctx, const hone_backend_opts *o)
{
    const char *s = o->name ? o->name : "model";
    bool ok = *s && (isalpha((unsigned char)*s) || *s == '_') && strlen(s) < 200;
    for (const char *p = s; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_';
    if (!ok)
        return hone_fail(ctx, HONE_ERR_ARG, "model name '%s' is not a C identifier", s);
    if (o->opt_level < 0 || o->opt_level > 3)
        return hone_fail(ctx, HONE_ERR_ARG, "optimisation level %d is not in 0..3", o->opt_level);
    return HONE_OK;
}

/* Fills the report's plan figures. */
static void report_plan(hone_backend_report *rep, const bk_model *m, const bk_plan *p)
{
    rep->workspace = p->workspace;
    rep->workspace_bound = p->bound;
    rep->n_nodes = m->n_sched;
    rep->n_views = p->n_views;
    rep->n_folded = m->n_folded;
    for (int v = 0; v < m->g->n_values; v++)
        if (p->loc[v].kind == BK_LOC_CONST && bk_known(m, m->g->values[v]))
            rep->weight_bytes += hone_tensor_nbytes(bk_known(m, m->g->values[v]));
}

hone_status bk_build(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o, bk_front *f,
                     LLVMContextRef c, hone_backend_report *rep)
{
    hone_backend_report local;
    rep = rep ? rep : &local;
    memset(rep, 0, sizeof *rep);
    memset(f, 0, sizeof *f);
    double t0 = now();
    hone_status st = check_opts(ctx, o);
    if (!st)
        st = bk_model_prepare(ctx, g, o, &f->m);
    if (!st)
        st = bk_plan_model(ctx, &f->m, &f->p);
    if (st)
        return st;
    report_plan(rep, &f->m, &f->p);
    double t1 = now();
    rep->t_prepare = t1 - t0;
    if (!c)
        return HONE_OK;
    st = bk_lower_model(ctx, &f->m, &f->p, c, &f->mod);
    double t2 = now();
    rep->t_lower = t2 - t1;
    if (!st)
        st = bk_target_machine(ctx, o, &f->tm);
    if (!st)
        st = bk_optimize(ctx, f->mod, f->tm, o->opt_level);
    rep->t_optimize = now() - t2;
    return st;
}

void bk_front_free(bk_front *f)
{
    if (f->mod)
        LLVMDisposeModule(f->mod);
    if (f->tm)
        LLVMDisposeTargetMachine(f->tm);
    bk_plan_free(&f->p);
    bk_model_free(&f->m);
    memset(f, 0, sizeof *f);
}

/* Writes the generated header to path, atomically. */
static hone_status write_header(hone_ctx *ctx, const bk_front *f, const char *path)
{
    char *text = bk_header_text(&f->m, &f->p);
    hone_status st = hone_write_file_atomic(ctx, path, text, strlen(text));
    free(text);
    return st;
}

/* OUT's header path: the extension replaced by .h (or .h appended). */
static char *header_path(const char *path)
{
    size_t n = strlen(path);
    char *h = malloc(n + 3);
    HONE_ASSERT(h);
    memcpy(h, path, n + 1);
    char *dot = strrchr(h, '.'), *slash = strrchr(h, '/');
    if (dot && (!slash || dot > slash))
        *dot = 0;
    strcat(h, ".h");
    return h;
}

/* The shared library, and the header beside it. */
static hone_status write_lib(hone_ctx *ctx, const bk_front *f, const char *path)
{
    char *h = header_path(path);
    hone_status st = bk_write_shared(ctx, f->mod, f->tm, path);
    if (!st && strcmp(h, path))
        st = write_header(ctx, f, h);
    free(h);
    return st;
}

hone_status hone_backend_compile(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                                 hone_emit_kind kind, const char *path, hone_backend_report *rep)
{
    bk_front f;
    bool header = kind == HONE_EMIT_HEADER;
    LLVMContextRef c = LLVMContextCreate(); /* headers too: every node must lower */
    hone_backend_report local;
    rep = rep ? rep : &local;
    hone_status st = bk_build(ctx, g, o, &f, c, rep);
    double t0 = now();
    if (!st && header)
        st = write_header(ctx, &f, path);
    else if (!st && kind == HONE_EMIT_LIB)
        st = write_lib(ctx, &f, path);
    else if (!st)
        st = bk_emit_file(ctx, f.mod, f.tm, kind, path);
    if (!st && o->weights_path && !header)
        st = bk_weights_write(ctx, &f.m, &f.p, o->weights_path);
    rep->t_emit = now() - t0;
    bk_front_free(&f);
    LLVMContextDispose(c);
    return st;
}

struct hone_lib {
    void *handle;
    const hone_model_info *info;
};

hone_status hone_lib_load(hone_ctx *ctx, const char *path, const char *name, hone_lib_t **out)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return hone_fail(ctx, HONE_ERR_IO, "cannot load '%s': %s", path, dlerror());
    char sym[300];
    snprintf(sym, sizeof sym, "%s_info", name);
    const hone_model_info *(*info)(void) = (const hone_model_info *(*)(void))dlsym(h, sym);
    if (!info) {
        dlclose(h);
        return hone_fail(ctx, HONE_ERR_INVALID, "'%s' has no %s: not a hone model named '%s'",
                         path, sym, name);
    }
    hone_lib_t *l = malloc(sizeof *l);
    HONE_ASSERT(l);
    l->handle = h;
    l->info = info();
    int abi = l->info->abi_version;
    if (abi != HONE_MODEL_ABI_VERSION) {
        hone_lib_free(l);
        return hone_fail(ctx, HONE_ERR_INVALID, "'%s' has model ABI %d, this hone reads %d", path,
                         abi, HONE_MODEL_ABI_VERSION);
    }
    *out = l;
    return HONE_OK;
}

const hone_model_info *hone_lib_info(const hone_lib_t *l)
{
    return l->info;
}

void hone_lib_free(hone_lib_t *l)
{
    if (!l)
        return;
    dlclose(l->handle);
    free(l);
}
