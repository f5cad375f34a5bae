/*
 * hone compare MODEL [--passes=...|-On] [--input NAME=FILE]...: runs the
 * model as loaded, then as transformed by a pipeline, in the interpreter
 * (storing every computed value), and compares every value whose name exists
 * in both (a value folded into a constant is compared through its contents).
 * Rows come in the original graph's execution order; the first value above tolerance is named first,
 * which points at the pass (with --disable-pass) and the node that broke.
 *
 * max abs = max |t - o|; max rel = max |t - o| / max(|o|, atol), o being the
 * original; scaled = max abs / max |o| (the error relative to the value's scale). A value diverges when some element has |t - o| > atol + rtol*|o|,
 * a NaN on one side only, or a different type or shape. Inputs not given get
 * deterministic random values (floats in [-1, 1), symbolic dims = 1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "interp.h"

#define MAX_INPUTS 64

typedef struct cmp_args {
    const char *model;
    const char *in_names[MAX_INPUTS], *in_files[MAX_INPUTS];
    int n_in;
    double rtol, atol;
    unsigned long long seed;
    cli_passes cp;
} cmp_args;

typedef struct row {
    const hone_value *v;        /* in the original graph */
    double max_abs, max_rel, max_ref;
    bool diverged;
    const char *why;            /* NULL, or why the two cannot be compared */
} row;

/* The computed values of one run, by value id. */
typedef struct run_store {
    hone_tensor **t;
    int n;
} run_store;

typedef struct cmp {
    const hone_graph *g, *t;    /* original and transformed graphs */
    run_store so, st;           /* their computed values */
    row *rows;
    int n_rows;
    double rtol, atol;
} cmp;

void help_compare(FILE *f)
{
    fprintf(f, "usage: hone compare MODEL [--passes=PIPELINE | -O0..-O3] [--input NAME=FILE]...\n"
               "                    [--rtol R] [--atol A] [--seed S] [pass flags]\n\n"
               "Runs MODEL before and after the pipeline (default -O2) in the interpreter and\n"
               "reports, for each value present in both, max abs and max rel error in execution\n"
               "order, the first divergence above tolerance (default rtol 1e-4, atol 1e-5) first.\n"
               "Inputs not given are random (seeded). Exit status 1 when a value diverges.\n\n");
    cli_passes_help(f);
}

static void store_value(void *user, const hone_value *v, const hone_tensor *t)
{
    run_store *s = user;
    HONE_ASSERT(v->id < s->n);
    hone_tensor_free(s->t[v->id]);
    s->t[v->id] = hone_tensor_clone(t);
}

/* Runs g storing every computed value into s (allocated here). */
static hone_status run_and_store(hone_ctx *ctx, const hone_graph *g, const hone_tensor **ins,
                                 run_store *s, const char *which)
{
    hone_tensor *outs[g->n_outputs + 1];
    hone_interp_hooks hooks = {store_value, s};
    s->n = g->n_values;
    s->t = calloc((size_t)s->n + 1, sizeof *s->t);
    HONE_ASSERT(s->t);
    hone_status st = hone_interp_run(ctx, g, ins, outs, &hooks);
    for (int i = 0; !st && i < g->n_outputs; i++)
        hone_tensor_free(outs[i]);
    return st ? hone_fail_wrap(ctx, "running the %s model", which) : HONE_OK;
}

static void store_free(run_store *s)
{
    for (int i = 0; i < s->n; i++)
        hone_tensor_free(s->t[i]);
    free(s->t);
}

static bool same_type(const hone_tensor *a, const hone_tensor *b)
{
    return a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank);
}

/* Element-wise errors of t (transformed) against o (original) into r. */
static void measure(const cmp *c, const hone_tensor *t, const hone_tensor *o, row *r)
{
    if (!same_type(t, o)) {
        r->diverged = true;
        r->why = "type or shape differs";
        return;
    }
    if (o->dtype == HONE_DT_STRING)
        return;
    for (int64_t i = 0; i < o->numel; i++) {
        double a = hone_tensor_get_f64(t, i), b = hone_tensor_get_f64(o, i), d = fabs(a - b);
        if (isnan(a) || isnan(b)) {
            r->diverged |= isnan(a) != isnan(b);
            continue;
        }
        r->max_ref = fmax(r->max_ref, fabs(b));
        if (a == b)
            continue;
        r->max_abs = fmax(r->max_abs, d);
        r->max_rel = fmax(r->max_rel, d / fmax(fabs(b), c->atol));
        r->diverged |= !(d <= c->atol + c->rtol * fabs(b));
    }
}

/* A row for original value v when the transformed graph has it too. */
static void compare_value(cmp *c, const hone_value *v)
{
    const hone_value *tv = hone_graph_find(c->t, v->name);
    const hone_tensor *t = !tv ? NULL : tv->data ? tv->data : c->st.t[tv->id];
    const hone_tensor *o = c->so.t[v->id];
    if (!t || !o)
        return;
    row *r = &c->rows[c->n_rows++];
    memset(r, 0, sizeof *r);
    r->v = v;
    measure(c, t, o, r);
}

/* Rows for every node output of the original graph, in execution order. */
static void compare_all(cmp *c)
{
    c->rows = calloc((size_t)c->g->n_values + 1, sizeof *c->rows);
    HONE_ASSERT(c->rows);
    for (int i = 0; i < c->g->n_nodes; i++)
        for (int j = 0; j < c->g->nodes[i]->n_out; j++)
            if (c->g->nodes[i]->out[j])
                compare_value(c, c->g->nodes[i]->out[j]);
}

/* Deterministic input for v: floats uniform in [-1, 1), other types zero. */
static hone_status random_input(hone_ctx *ctx, const hone_value *v, unsigned long long *state,
                                hone_tensor **out)
{
    int64_t dims[HONE_MAX_RANK];
    for (int i = 0; i < v->rank; i++)
        dims[i] = v->dims[i] >= 0 ? v->dims[i] : 1;
    hone_status st = hone_tensor_new(ctx, v->dtype, v->rank < 0 ? 0 : v->rank, dims, out);
    for (int64_t i = 0; !st && hone_dtype_is_float(v->dtype) && i < (*out)->numel; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        hone_tensor_set_f64(*out, i, (double)(*state >> 11) / (double)(1ull << 52) - 1.0);
    }
    return st;
}

/* Input tensors in g->inputs order, from --input files or random. */
static hone_status bind_inputs(hone_ctx *ctx, const hone_graph *g, const cmp_args *a,
                               hone_tensor **ins)
{
    unsigned long long state = a->seed * 2862933555777941757ull + 3037000493ull;
    for (int j = 0; j < a->n_in; j++)
        if (a->in_names[j] && !hone_graph_find(g, a->in_names[j]))
            return hone_fail(ctx, HONE_ERR_ARG, "model has no input named '%s'", a->in_names[j]);
    for (int i = 0; i < g->n_inputs; i++) {
        const char *file = NULL;
        for (int j = 0; j < a->n_in; j++)
            if (a->in_names[j] ? !strcmp(a->in_names[j], g->inputs[i]->name) : g->n_inputs == 1)
                file = a->in_files[j];
        hone_status st = file ? cli_load_tensor(ctx, file, &ins[i])
                              : random_input(ctx, g->inputs[i], &state, &ins[i]);
        if (st)
            return st;
    }
    return HONE_OK;
}

static int parse(int argc, char **argv, cmp_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = cli_pass_flag("compare", argc, argv, &i, &a->cp);
        if (r < 0)
            return EXIT_USAGE;
        if (r)
            continue;
        if ((v = cli_opt(argc, argv, &i, "--input"))) {
            if (a->n_in == MAX_INPUTS)
                return cli_usage("compare", "too many inputs");
            const char *eq = strchr(v, '=');
            a->in_names[a->n_in] = eq ? strndup(v, (size_t)(eq - v)) : NULL;
            a->in_files[a->n_in++] = eq ? eq + 1 : v;
        } else if ((v = cli_opt(argc, argv, &i, "--rtol"))) {
            a->rtol = atof(v);
        } else if ((v = cli_opt(argc, argv, &i, "--atol"))) {
            a->atol = atof(v);
        } else if ((v = cli_opt(argc, argv, &i, "--seed"))) {
            a->seed = strtoull(v, NULL, 10);
        } else if (argv[i][0] == '-' || a->model) {
            return cli_usage("compare", "unexpected argument '%s'", argv[i]);
        } else {
            a->model = argv[i];
        }
    }
    return a->model ? EXIT_OK : cli_usage("compare", "no model given");
}

static void print_row(const cmp *c, const row *r, const hone_graph *g)
{
    char type[128];
    hone_value_type_str(g, r->v, type, sizeof type);
    double scaled = r->max_ref > 0 ? r->max_abs / r->max_ref : r->max_abs;
    printf("%c %-44s %-22s %12.4g %12.4g %12.4g%s%s\n", r->diverged ? '!' : ' ', r->v->name, type,
           r->max_abs, r->max_rel, scaled, r->why ? "  " : "", r->why ? r->why : "");
}

/* Prints the first divergence, then every row; returns how many diverge. */
static int report(const cmp *c, const hone_graph *g)
{
    int bad = 0;
    const row *first = NULL;
    for (int i = 0; i < c->n_rows; i++)
        if (c->rows[i].diverged && !bad++)
            first = &c->rows[i];
    if (first)
        printf("first divergence: %%%s (node '%s', %s): max abs %.4g, max rel %.4g%s%s\n",
               first->v->name, first->v->producer ? first->v->producer->name : "?",
               first->v->producer ? first->v->producer->op_type : "?", first->max_abs,
               first->max_rel, first->why ? ", " : "", first->why ? first->why : "");
    printf("  %-44s %-22s %12s %12s %12s\n", "value", "type", "max abs", "max rel", "scaled");
    for (int i = 0; i < c->n_rows; i++)
        print_row(c, &c->rows[i], g);
    printf("%d values compared, %d above tolerance (rtol %g, atol %g)\n", c->n_rows, bad, c->rtol,
           c->atol);
    return bad;
}

/* Runs the original, then the transformed graph, then compares their values. */
static hone_status compare(hone_ctx *ctx, hone_graph *g, cmp_args *a, int *bad)
{
    hone_graph *t = hone_graph_clone(g);
    hone_tensor *ins[g->n_inputs + 1];
    memset(ins, 0, sizeof ins);
    cmp c = {.g = g, .t = t, .rtol = a->rtol, .atol = a->atol};
    hone_status st = cli_run_passes(ctx, t, &a->cp, 2);
    if (!st)
        st = bind_inputs(ctx, g, a, ins);
    if (!st)
        st = run_and_store(ctx, g, (const hone_tensor **)ins, &c.so, "original");
    if (!st)
        st = run_and_store(ctx, t, (const hone_tensor **)ins, &c.st, "transformed");
    if (!st) {
        compare_all(&c);
        *bad = report(&c, g);
    }
    store_free(&c.so);
    store_free(&c.st);
    for (int i = 0; i < g->n_inputs; i++)
        hone_tensor_free(ins[i]);
    free(c.rows);
    hone_graph_free(t);
    return st;
}

int cmd_compare(int argc, char **argv)
{
    cmp_args a = {.rtol = 1e-4, .atol = 1e-5};
    cli_passes_init(&a.cp);
    int rc = parse(argc, argv, &a), bad = 0;
    if (rc)
        return rc;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (cli_load_model(&ctx, a.model, &g))
        return cli_fail(&ctx);
    hone_status st = compare(&ctx, g, &a, &bad);
    hone_graph_free(g);
    cli_passes_free(&a.cp);
    for (int j = 0; j < a.n_in; j++)
        free((char *)a.in_names[j]);
    if (st)
        return cli_fail(&ctx);
    return bad ? EXIT_FAIL : EXIT_OK;
}
