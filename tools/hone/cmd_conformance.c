/*
 * hone conformance DIR...: runs ONNX backend test folders (model.onnx plus
 * test_data_set_N/input_K.pb and output_K.pb) through the interpreter and
 * compares every output (rtol 1e-3, atol 1e-7 by default). Each test runs in a
 * child process with a time limit, so a crash or hang is counted, never fatal.
 * With --expect FILE, every test named in FILE must pass (exit 1 otherwise).
 * --backend=jit compiles each test model in memory through the LLVM backend,
 * --backend=aot into a shared library loaded with dlopen (shapes fixed to
 * the test's inputs); ops the backend does not lower are SKIPs.
 *
 * Output: one line per test ("PASS name", "FAIL name: why", "SKIP name: why"),
 * then "N passed, M failed, K skipped". SKIP = cleanly reported unsupported.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "interp.h"
#include "onnx.h"

enum { R_PASS = 0, R_FAIL = 1, R_SKIP = 3 };

typedef enum { BACKEND_INTERP, BACKEND_JIT, BACKEND_AOT } conf_backend;

typedef struct conf_opts {
    double rtol, atol;
    int timeout_s;
    const char *expect_file;
    bool verbose;
    conf_backend backend;
} conf_opts;

void help_conformance(FILE *f)
{
    fprintf(f, "usage: hone conformance [--expect FILE] [--rtol R] [--atol A] [--timeout S] "
               "[--verbose] [--report-md FILE] [--backend=interp|jit|aot] DIR...\n\n"
               "Runs ONNX backend tests. Each DIR is a test folder (holding model.onnx) or a\n"
               "folder of test folders. Prints one line per test and ends with\n"
               "'N passed, M failed, K skipped' (skipped = reported as unsupported).\n"
               "--expect FILE: names of tests that must pass; any of them not passing fails the run.\n"
               "--report-md FILE: writes a per-op markdown table (tests per op type and results).\n"
               "--backend: run the reference interpreter (default), the LLVM JIT, or a compiled\n"
               "shared library (aot); ops the backend does not lower are skipped.\n");
}

/* Compares element i of got and want within tolerance. */
static bool close_enough(const hone_tensor *got, const hone_tensor *want, int64_t i,
                         const conf_opts *o)
{
    if (want->dtype == HONE_DT_STRING) {
        const char *a = ((char **)got->data)[i], *b = ((char **)want->data)[i];
        return a && b && !strcmp(a, b);
    }
    if (!hone_dtype_is_float(want->dtype))
        return hone_tensor_get_i64(got, i) == hone_tensor_get_i64(want, i);
    double a = hone_tensor_get_f64(got, i), b = hone_tensor_get_f64(want, i);
    if (isnan(b))
        return isnan(a);
    if (isinf(b))
        return a == b;
    return fabs(a - b) <= o->atol + o->rtol * fabs(b);
}

static bool compare(const hone_tensor *got, const hone_tensor *want, const conf_opts *o,
                    char *why, size_t n)
{
    char a[256], b[256];
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)want->rank)) {
        snprintf(why, n, "output is %s, expected %s", hone_tensor_type_str(got, a, sizeof a),
                 hone_tensor_type_str(want, b, sizeof b));
        return false;
    }
    for (int64_t i = 0; i < want->numel; i++)
        if (!close_enough(got, want, i, o)) {
            snprintf(why, n, "element %lld is %.9g, expected %.9g", (long long)i,
                     hone_tensor_get_f64(got, i), hone_tensor_get_f64(want, i));
            return false;
        }
    return true;
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The ONNX 1.12 test data stores bfloat16 tensors as UINT16 of the same bits;
 * read them as the bfloat16 the model declares. */
static void fix_bf16(hone_tensor *t, hone_dtype declared)
{
    if (t && t->dtype == HONE_DT_UINT16 && declared == HONE_DT_BFLOAT16)
        t->dtype = HONE_DT_BFLOAT16;
}

/* Compiles g for the shapes of ins into a shared library in a temporary
 * folder, loads it and runs it. */
static hone_status run_aot(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *bo,
                           const hone_tensor **ins, hone_tensor **outs)
{
    char dir[] = "/tmp/hone-conf-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return hone_fail(ctx, HONE_ERR_IO, "cannot create a temporary folder: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/model.so", dir);
    hone_lib_t *lib = NULL;
    hone_status st = hone_backend_compile(ctx, g, bo, HONE_EMIT_LIB, path, NULL);
    if (!st)
        st = hone_lib_load(ctx, path, bo->name, &lib);
    void *ws = lib ? hone_model_workspace(hone_lib_info(lib)) : NULL;
    if (!st)
        st = hone_model_run(ctx, hone_lib_info(lib), ins, outs, ws);
    free(ws);
    hone_lib_free(lib);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.h", dir);
    unlink(path);
    rmdir(dir);
    return st;
}

/* True when graph input v is read, and only at inputs that decide shapes or
 * index patterns (hone_backend_shape_input), never as data or an output. */
static bool shape_only_input(const hone_graph *g, const hone_value *v)
{
    int uses = 0;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return false;
    for (int k = 0; k < g->n_nodes; k++) {
        const hone_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == v) {
                if (!hone_backend_shape_input(n, i))
                    return false;
                uses++;
            }
    }
    return uses > 0;
}

/* True when graph input v is small (a scalar or a short vector, as sizes
 * and counts are) and its value reaches a shape-deciding input through a
 * chain of nodes (a window size cast and fed to Range): the shapes cannot be
 * static unless it is bound, whatever else it feeds. */
static bool shape_source_input(const hone_graph *g, const hone_value *v)
{
    if (v->rank > 1 || (v->rank == 1 && (v->dims[0] < 0 || v->dims[0] > HONE_MAX_RANK)))
        return false;
    bool *reach = calloc((size_t)g->n_values + 1, sizeof *reach), hit = false;
    if (!reach)
        return false;
    reach[v->id] = true;
    for (int k = 0; k < g->n_nodes && !hit; k++) { /* nodes are in topological order */
        const hone_node *n = g->nodes[k];
        bool any = false;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && reach[n->in[i]->id]) {
                any = true;
                hit = hit || hone_backend_shape_input(n, i);
            }
        for (int i = 0; i < n->n_out && any; i++)
            if (n->out[i])
                reach[n->out[i]->id] = true;
    }
    free(reach);
    return hit;
}

/* Runs g on ins through the chosen backend. Compiled ones are specialised to
 * the inputs' shapes, and to the values of inputs that only decide shapes
 * or that small shape-deciding values derive from (bound at compile time, as
 * `hone compile --bind` does); the rest stay run-time inputs. */
static hone_status run_backend(hone_ctx *ctx, const hone_graph *g, const hone_tensor **ins,
                               hone_tensor **outs, const conf_opts *o)
{
    if (o->backend == BACKEND_INTERP)
        return hone_interp_run(ctx, g, ins, outs, NULL);
    hone_backend_opts bo;
    hone_backend_opts_init(&bo);
    bo.name = "model";
    hone_backend_shapes_from(&bo, g, ins);
    const hone_tensor *rt[g->n_inputs + 1];
    int n_rt = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const hone_value *v = g->inputs[i];
        if ((shape_only_input(g, v) || shape_source_input(g, v)) && bo.n_bind < HONE_BACKEND_MAX_SHAPES) {
            bo.bind[bo.n_bind].name = g->inputs[i]->name;
            bo.bind[bo.n_bind++].t = ins[i];
        } else {
            rt[n_rt++] = ins[i];
        }
    }
    if (o->backend == BACKEND_AOT)
        return run_aot(ctx, g, &bo, rt, outs);
    hone_jit_t *j = NULL;
    hone_status st = hone_jit_compile(ctx, g, &bo, &j, NULL);
    if (!st)
        st = hone_jit_run(ctx, j, rt, outs);
    hone_jit_free(j);
    return st;
}

/* Runs one test_data_set folder; returns R_PASS or R_FAIL with why. */
static int run_dataset(hone_ctx *ctx, const hone_graph *g, const char *dir, const conf_opts *o,
                       char *why, size_t n)
{
    char path[4096];
    hone_tensor *ins[g->n_inputs + 1], *outs[g->n_outputs + 1];
    int ok = R_PASS;
    memset(ins, 0, sizeof ins);
    for (int i = 0; i < g->n_inputs && ok == R_PASS; i++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", dir, i);
        if (hone_onnx_read_tensor_pb(ctx, path, &ins[i])) {
            snprintf(why, n, "%s", ctx->msg);
            ok = R_FAIL;
        }
        fix_bf16(ins[i], g->inputs[i]->dtype);
    }
    if (ok == R_PASS && run_backend(ctx, g, (const hone_tensor **)ins, outs, o)) {
        snprintf(why, n, "%s", ctx->msg);
        ok = ctx->status == HONE_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    } else if (ok == R_PASS) {
        for (int i = 0; i < g->n_outputs; i++) {
            hone_tensor *want;
            snprintf(path, sizeof path, "%s/output_%d.pb", dir, i);
            if (ok == R_PASS && hone_onnx_read_tensor_pb(ctx, path, &want) == HONE_OK) {
                fix_bf16(want, g->outputs[i]->dtype);
                if (!compare(outs[i], want, o, why, n))
                    ok = R_FAIL;
                hone_tensor_free(want);
            } else if (ok == R_PASS) {
                snprintf(why, n, "%s", ctx->msg);
                ok = R_FAIL;
            }
            hone_tensor_free(outs[i]);
        }
    }
    for (int i = 0; i < g->n_inputs; i++)
        hone_tensor_free(ins[i]);
    return ok;
}

/* The body of one test, run in the child. Exit code = result. */
static int run_test(const char *dir, const conf_opts *o, char *why, size_t n)
{
    char path[4096];
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (hone_onnx_load(&ctx, path, &g)) {
        snprintf(why, n, "%s", ctx.msg);
        return ctx.status == HONE_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    }
    int res = R_PASS;
    for (int k = 0; res == R_PASS; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_%d", dir, k);
        if (!file_exists(path)) {
            if (k == 0) {
                snprintf(why, n, "no test_data_set_0");
                res = R_FAIL;
            }
            break;
        }
        res = run_dataset(&ctx, g, path, o, why, n);
    }
    hone_graph_free(g);
    return res;
}

/* Comma-separated op types of the model's top-level graph (for per-op status). */
static void model_ops(const char *dir, char *ops, size_t cap)
{
    char path[4096];
    uint8_t *buf;
    size_t len, k = 0;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    ops[0] = 0;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (hone_read_file(&ctx, path, &buf, &len))
        return;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    for (size_t i = 0; m && m->graph && i < m->graph->n_node; i++) {
        const char *t = m->graph->node[i]->op_type;
        char pat[256];
        snprintf(pat, sizeof pat, ",%s,", t ? t : "?");
        char cur[1100];
        snprintf(cur, sizeof cur, ",%s,", ops);
        if (t && !strstr(cur, pat) && k + strlen(t) + 2 < cap)
            k += (size_t)snprintf(ops + k, cap - k, "%s%s", k ? "," : "", t);
    }
    if (m)
        onnx__model_proto__free_unpacked(m, NULL);
}

/* Forks, runs the test with a time limit, reads ops and verdict from a pipe. */
static int run_isolated(const char *dir, const conf_opts *o, char *why, size_t n, char *ops,
                        size_t ops_cap)
{
    int fd[2];
    if (pipe(fd))
        return snprintf(why, n, "pipe: %s", strerror(errno)), R_FAIL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        alarm((unsigned)o->timeout_s);
        char msg[1024] = "", line[2048];
        model_ops(dir, ops, ops_cap);
        int r = run_test(dir, o, msg, sizeof msg);
        int len = snprintf(line, sizeof line, "%s\n%s", ops, msg);
        ssize_t w = write(fd[1], line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        (void)w;
        close(fd[1]);
        exit(r); /* exit, not _exit: leak checkers run at exit */
    }
    close(fd[1]);
    char buf[2048];
    size_t got = 0;
    for (ssize_t k; got < sizeof buf - 1 && (k = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0;)
        got += (size_t)k;
    buf[got] = 0;
    close(fd[0]);
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    snprintf(ops, ops_cap, "%s", nl ? buf : "");
    snprintf(why, n, "%s", nl ? nl + 1 : buf);
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, n, sig == SIGALRM ? "timed out after %d s" : "crashed with signal %d",
                 sig == SIGALRM ? o->timeout_s : sig);
        return R_FAIL;
    }
    int code = WEXITSTATUS(status);
    if (code != R_PASS && code != R_FAIL && code != R_SKIP) {
        snprintf(why, n, "test process exited with code %d (sanitizer report on stderr?)", code);
        return R_FAIL;
    }
    return code;
}

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static void push_name(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, sizeof *l->v * (size_t)l->cap);
    }
    l->v[l->n++] = strdup(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Test folders: DIR itself if it holds model.onnx, else its subfolders that do. */
static void collect(const char *dir, name_list *out)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/model.onnx", dir);
    if (file_exists(p)) {
        push_name(out, dir);
        return;
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    name_list tmp = {0};
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        if (file_exists(p)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            push_name(&tmp, p);
        }
    }
    closedir(d);
    qsort(tmp.v, (size_t)tmp.n, sizeof *tmp.v, cmp_str);
    for (int i = 0; i < tmp.n; i++) {
        push_name(out, tmp.v[i]);
        free(tmp.v[i]);
    }
    free(tmp.v);
}

static void free_list(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void load_expect(const char *path, name_list *l)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n#")] = 0;
        char *s = line;
        while (*s == ' ')
            s++;
        if (*s)
            push_name(l, s);
    }
    fclose(f);
}

static bool in_list(const name_list *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

typedef struct op_stats {
    struct {
        char name[64];
        int pass, fail, skip;
    } v[1024];
    int n;
} op_stats;

/* Counts result r for every op type in the comma-separated list ops. */
static void record_ops(op_stats *s, const char *ops, int r)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", ops);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < s->n && strcmp(s->v[i].name, t))
            i++;
        if (i == s->n) {
            if (s->n == 1024)
                return;
            snprintf(s->v[s->n++].name, sizeof s->v[0].name, "%s", t);
        }
        if (r == R_PASS)
            s->v[i].pass++;
        else if (r == R_SKIP)
            s->v[i].skip++;
        else
            s->v[i].fail++;
    }
}

static int cmp_op(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Markdown table of per-op results, written atomically. */
static int write_op_report(const op_stats *s, const char *path, int np, int nf, int ns)
{
    op_stats sorted = *s;
    qsort(sorted.v, (size_t)sorted.n, sizeof sorted.v[0], cmp_op);
    size_t cap = 128 + (size_t)sorted.n * 160, k = 0;
    char *buf = malloc(cap);
    k += (size_t)snprintf(buf + k, cap - k, "Totals: %d passed, %d failed, %d skipped.\n\n"
                          "| op | tests | pass | fail | skip | status |\n|---|---|---|---|---|---|\n",
                          np, nf, ns);
    for (int i = 0; i < sorted.n; i++) {
        int p = sorted.v[i].pass, f = sorted.v[i].fail, sk = sorted.v[i].skip;
        const char *st = !f && !sk ? "ok" : !p ? (f ? "failing" : "unsupported") : "partial";
        k += (size_t)snprintf(buf + k, cap - k, "| %s | %d | %d | %d | %d | %s |\n",
                              sorted.v[i].name, p + f + sk, p, f, sk, st);
    }
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_status st = hone_write_file_atomic(&ctx, path, buf, k);
    free(buf);
    return st ? cli_fail(&ctx) : EXIT_OK;
}

int cmd_conformance(int argc, char **argv)
{
    static op_stats stats;
    const char *report_md = NULL;
    conf_opts o = {1e-3, 1e-7, 60, NULL, false, BACKEND_INTERP};
    /* static: reachable from globals while forked children run and exit */
    static name_list tests, expect, passed;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--expect")))
            o.expect_file = v;
        else if ((v = cli_opt(argc, argv, &i, "--rtol")))
            o.rtol = atof(v);
        else if ((v = cli_opt(argc, argv, &i, "--atol")))
            o.atol = atof(v);
        else if ((v = cli_opt(argc, argv, &i, "--timeout")))
            o.timeout_s = atoi(v) > 0 ? atoi(v) : 60;
        else if ((v = cli_opt(argc, argv, &i, "--report-md")))
            report_md = v;
        else if (!strcmp(argv[i], "--verbose"))
            o.verbose = true;
        else if ((v = cli_opt(argc, argv, &i, "--backend"))) {
            if (!strcmp(v, "interp") || !strcmp(v, "jit") || !strcmp(v, "aot"))
                o.backend = !strcmp(v, "jit") ? BACKEND_JIT : !strcmp(v, "aot") ? BACKEND_AOT
                                                                                : BACKEND_INTERP;
            else
                return cli_usage("conformance", "unknown --backend '%s' (interp, jit or aot)", v);
        }
        else if (argv[i][0] == '-')
            return cli_usage("conformance", "unknown or incomplete option '%s'", argv[i]);
        else
            collect(argv[i], &tests);
    }
    if (!tests.n)
        return cli_usage("conformance", "no test folders found");
    if (o.expect_file) {
        load_expect(o.expect_file, &expect);
        if (!expect.n)
            return cli_usage("conformance", "cannot read expected list '%s'", o.expect_file);
    }
    int np = 0, nf = 0, ns = 0;
    for (int i = 0; i < tests.n; i++) {
        char why[1024] = "", ops[1024] = "";
        int r = run_isolated(tests.v[i], &o, why, sizeof why, ops, sizeof ops);
        record_ops(&stats, ops, r);
        const char *name = base_name(tests.v[i]);
        if (r == R_PASS) {
            np++;
            push_name(&passed, name);
            printf("PASS %s\n", name);
        } else if (r == R_SKIP) {
            ns++;
            printf("SKIP %s: %s\n", name, why);
        } else {
            nf++;
            printf("FAIL %s: %s\n", name, why);
        }
    }
    int missing = 0;
    for (int i = 0; i < expect.n; i++)
        if (!in_list(&passed, expect.v[i])) {
            printf("REGRESSION %s: expected to pass\n", expect.v[i]);
            missing++;
        }
    printf("%d passed, %d failed, %d skipped\n", np, nf, ns);
    int rc = missing ? EXIT_FAIL : EXIT_OK;
    if (report_md && write_op_report(&stats, report_md, np, nf, ns))
        rc = EXIT_FAIL;
    free_list(&tests);
    free_list(&expect);
    free_list(&passed);
    return rc;
}
