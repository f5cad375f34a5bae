/*
 * Pass manager and passes.
 *
 * Golden tests: tests/passes/<pass>/<case>.in.txt is a text IR graph whose
 * first line is "# passes: PIPELINE" (or -O<level>); <case>.out.txt is hone_graph_print of
 * the result followed by "# %name = [values]" for every constant of at most
 * 16 elements (so folded values are checked too). Every case also runs in the
 * interpreter before and after (outputs within 1e-5, relative to max(1,|x|)),
 * and again under -O3 with each of its passes disabled in turn. A case runs
 * when every op of its input is in this build's op table; the others are
 * listed as skipped. HONE_UPDATE_GOLDEN=1 rewrites the .out.txt files and
 * docs/PASSES.md: review the diff before committing it.
 *
 * Unit tests: the pipeline parser (typed options, error messages), the
 * driver (disable, print-after, report), symbolic dims, the text reader, and
 * docs/PASSES.md being the output of the pass table.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp.h"
#include "io.h"
#include "passes.h"
#include "testutil.h"

#define MAX_CASES 256

/* ---- helpers ---- */

static char *read_text(const char *path)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    uint8_t *buf;
    size_t len;
    if (hone_read_file(&ctx, path, &buf, &len))
        return NULL;
    char *s = realloc(buf, len + 1);
    s[len] = 0;
    return s;
}

static hone_graph *parse_ok(const char *text)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    if (hone_graph_parse(&ctx, text, &g))
        fail_msg("parse: %s", ctx.msg);
    return g;
}

static bool all_ops_known(const hone_graph *g, char *missing, size_t n)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == HONE_OP_UNKNOWN) {
            snprintf(missing, n, "%s", g->nodes[i]->op_type);
            return false;
        }
    return true;
}

/* The dump of g plus the contents of small constants. */
static char *dump(const hone_graph *g)
{
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    hone_graph_print(f, g);
    for (int i = 0; i < g->n_values; i++) {
        const hone_value *v = g->values[i];
        if (!hone_pass_is_const(v) || v->data->numel > 16)
            continue;
        fprintf(f, "# %%%s = [", v->name);
        for (int64_t k = 0; k < v->data->numel; k++)
            fprintf(f, "%s%.6g", k ? ", " : "", hone_tensor_get_f64(v->data, k));
        fprintf(f, "]\n");
    }
    fclose(f);
    return buf;
}

/* Inputs for g: floats from a fixed generator, symbolic dims bound to 2. */
static void make_inputs(const hone_graph *g, hone_tensor **ins)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < g->n_inputs; i++) {
        const hone_value *v = g->inputs[i];
        int64_t dims[HONE_MAX_RANK];
        for (int d = 0; d < v->rank; d++)
            dims[d] = v->dims[d] >= 0 ? v->dims[d] : 2;
        assert_int_equal(hone_tensor_new(&ctx, v->dtype, v->rank, dims, &ins[i]), HONE_OK);
        for (int64_t k = 0; k < ins[i]->numel; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            hone_tensor_set_f64(ins[i], k, (double)(s >> 11) / (double)(1ull << 52) - 1.0);
        }
    }
}

/* Runs a and b on the same inputs; outputs must agree within 1e-5. */
static void check_same_outputs(const hone_graph *a, const hone_graph *b, const char *what)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *ins[a->n_inputs + 1], *oa[a->n_outputs + 1], *ob[b->n_outputs + 1];
    assert_int_equal(a->n_outputs, b->n_outputs);
    make_inputs(a, ins);
    if (hone_interp_run(&ctx, a, (const hone_tensor **)ins, oa, NULL) ||
        hone_interp_run(&ctx, b, (const hone_tensor **)ins, ob, NULL))
        fail_msg("%s: interpreter: %s", what, ctx.msg);
    for (int i = 0; i < a->n_outputs; i++) {
        assert_int_equal(oa[i]->numel, ob[i]->numel);
        for (int64_t k = 0; k < oa[i]->numel; k++) {
            double x = hone_tensor_get_f64(oa[i], k), y = hone_tensor_get_f64(ob[i], k);
            if (!(fabs(x - y) <= 1e-5 * fmax(1.0, fabs(x))))
                fail_msg("%s: output %d element %lld: %.9g before, %.9g after", what, i,
                         (long long)k, x, y);
        }
        hone_tensor_free(oa[i]);
        hone_tensor_free(ob[i]);
    }
    for (int i = 0; i < a->n_inputs; i++)
        hone_tensor_free(ins[i]);
}

/* Runs pipeline text on g (opts may be NULL); fails the test on error. */
static void run_pipeline(hone_graph *g, const char *text, const hone_passes_opts *opts,
                         const char *what)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    if (hone_pipeline_parse(&ctx, text, &p) || hone_passes_run(&ctx, g, &p, opts, NULL))
        fail_msg("%s: %s", what, ctx.msg);
    hone_pipeline_free(&p);
}

/* ---- golden cases ---- */

typedef struct gcase {
    char in[1024], out[1024], name[300];
} gcase;

static int list_cases(gcase *cases, int cap)
{
    int n = 0;
    DIR *top = opendir(tu_src("tests/passes"));
    assert_non_null(top);
    struct dirent *d, *e;
    while ((d = readdir(top))) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/%s", tu_src("tests/passes"), d->d_name);
        DIR *sub = d->d_name[0] != '.' ? opendir(dir) : NULL;
        while (sub && (e = readdir(sub))) {
            size_t k = strlen(e->d_name);
            if (k < 8 || strcmp(e->d_name + k - 7, ".in.txt") || n == cap)
                continue;
            gcase *c = &cases[n++];
            snprintf(c->in, sizeof c->in, "%s/%s", dir, e->d_name);
            snprintf(c->out, sizeof c->out, "%s/%.*s.out.txt", dir, (int)(k - 7), e->d_name);
            snprintf(c->name, sizeof c->name, "%s/%.*s", d->d_name, (int)(k - 7), e->d_name);
        }
        if (sub)
            closedir(sub);
    }
    closedir(top);
    return n;
}

/* The pipeline of a case: its "# passes:" first line. */
static const char *case_pipeline(const char *text, char *buf, size_t n)
{
    const char *key = "# passes:";
    assert_true(!strncmp(text, key, strlen(key)));
    const char *s = text + strlen(key);
    while (*s == ' ')
        s++;
    size_t k = strcspn(s, "\n");
    snprintf(buf, n, "%.*s", (int)k, s);
    if (!strncmp(buf, "-O", 2))
        snprintf(buf, n, "%s", hone_pipeline_level(buf[2] - '0'));
    return buf;
}

static void compare_golden(const gcase *c, const char *got)
{
    if (getenv("HONE_UPDATE_GOLDEN")) {
        FILE *f = fopen(c->out, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    char *want = read_text(c->out);
    if (!want)
        fail_msg("%s: missing %s; got:\n%s", c->name, c->out, got);
    if (strcmp(want, got))
        fail_msg("%s: output differs from %s\n--- expected\n%s--- got\n%s", c->name, c->out, want,
                 got);
    free(want);
}

/* Loads case c; NULL (after printing why) when it cannot run in this build. */
static hone_graph *load_case(const gcase *c, char *pipeline, size_t n)
{
    char *text = read_text(c->in), missing[128];
    assert_non_null(text);
    case_pipeline(text, pipeline, n);
    hone_graph *g = parse_ok(text);
    free(text);
    if (all_ops_known(g, missing, sizeof missing))
        return g;
    print_message("skipped %s: op %s is not in this build\n", c->name, missing);
    hone_graph_free(g);
    return NULL;
}

static void test_golden(void **state)
{
    static gcase cases[MAX_CASES];
    int n = list_cases(cases, MAX_CASES), ran = 0;
    assert_true(n >= 20);
    for (int i = 0; i < n; i++) {
        char pipeline[512];
        hone_graph *g = load_case(&cases[i], pipeline, sizeof pipeline);
        if (!g)
            continue;
        hone_graph *orig = hone_graph_clone(g);
        run_pipeline(g, pipeline, NULL, cases[i].name);
        char *got = dump(g);
        compare_golden(&cases[i], got);
        check_same_outputs(orig, g, cases[i].name);
        free(got);
        hone_graph_free(orig);
        hone_graph_free(g);
        ran++;
    }
    print_message("%d of %d golden cases ran\n", ran, n);
    assert_true(ran >= 5);
}

/* -O3 with each of its passes disabled in turn keeps every case's outputs. */
static void test_disable_each_pass(void **state)
{
    static gcase cases[MAX_CASES];
    int n = list_cases(cases, MAX_CASES);
    for (int i = 0; i < n; i++) {
        char pipeline[512];
        hone_graph *g = load_case(&cases[i], pipeline, sizeof pipeline);
        for (int k = 0; g && k < hone_pass_count; k++) {
            const char *name = hone_pass_table[k].name;
            if (!strstr(hone_pipeline_level(3), name))
                continue;
            hone_graph *t = hone_graph_clone(g);
            hone_passes_opts o = {.disabled = &name, .n_disabled = 1};
            char what[400];
            snprintf(what, sizeof what, "%s with -O3 minus %s", cases[i].name, name);
            run_pipeline(t, hone_pipeline_level(3), &o, what);
            check_same_outputs(g, t, what);
            hone_graph_free(t);
        }
        hone_graph_free(g);
    }
}

/* ---- pipeline text ---- */

static void expect_pipeline_error(const char *text, const char *a, const char *b)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, text, &p), HONE_ERR_ARG);
    if (!strstr(ctx.msg, a) || (b && !strstr(ctx.msg, b)))
        fail_msg("pipeline '%s': message '%s' lacks '%s' / '%s'", text, ctx.msg, a, b ? b : "");
}

static void test_pipeline_parse(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    const char *text = " fold-constants{max-size = 64}, dce ,fuse-conv{residual=false,"
                       "activations=\"Relu,Clip\"},cse{constants=0}";
    assert_int_equal(hone_pipeline_parse(&ctx, text, &p), HONE_OK);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.items[0].info->name, "fold-constants");
    assert_int_equal(p.items[0].opts[0].i, 64);
    assert_string_equal(p.items[1].info->name, "dce");
    assert_false(p.items[2].opts[1].b);
    assert_string_equal(p.items[2].opts[0].s, "Relu,Clip");
    assert_false(p.items[3].opts[0].b);
    char buf[256];
    assert_string_equal(hone_pass_inst_str(&p.items[2], buf, sizeof buf),
                        "fuse-conv{activations=Relu,Clip,residual=false}");
    assert_string_equal(hone_pass_inst_str(&p.items[1], buf, sizeof buf), "dce");
    hone_pipeline_free(&p);
    assert_int_equal(hone_pipeline_parse(&ctx, "", &p), HONE_OK);
    assert_int_equal(p.n, 0);
    hone_pipeline_free(&p);
}

static void test_pipeline_defaults_and_levels(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, "fold-constants,fuse-conv", &p), HONE_OK);
    assert_int_equal(p.items[0].opts[0].i, 1048576);
    assert_true(p.items[1].opts[1].b);
    hone_pipeline_free(&p);
    for (int l = 0; l <= 3; l++) {
        assert_int_equal(hone_pipeline_parse(&ctx, hone_pipeline_level(l), &p), HONE_OK);
        hone_pipeline_free(&p);
    }
    assert_null(hone_pipeline_level(4));
    assert_non_null(strstr(hone_pipeline_level(2), "fold-bn"));
    assert_null(strstr(hone_pipeline_level(2), "fuse-conv"));
    assert_non_null(strstr(hone_pipeline_level(3), "fuse-conv"));
}

static void test_pipeline_errors(void **state)
{
    expect_pipeline_error("dce,frobnicate", "unknown pass 'frobnicate'", "fold-bn");
    expect_pipeline_error("fold-constants{maxsize=3}", "no option 'maxsize'", "valid: max-size");
    expect_pipeline_error("fold-constants{max-size=big}", "expects an integer", "'big'");
    expect_pipeline_error("cse{constants=maybe}", "expects true or false", NULL);
    expect_pipeline_error("dce{x=1}", "takes no options", NULL);
    expect_pipeline_error("dce,", "expected a pass name", NULL);
    expect_pipeline_error("dce fold-bn", "expected ','", NULL);
    expect_pipeline_error("cse{constants=1", "expected '}'", NULL);
    expect_pipeline_error("cse{constants=1,constants=0}", "given twice", NULL);
}

/* ---- the driver ---- */

static const char *small =
    "graph g (ir 8; ai.onnx 13) {\n"
    "  input %x: f32[2,3]\n"
    "  const %a: f32[3] = [1, 2, 3]\n"
    "  const %b: f32[3] = [1, 2, 3]\n"
    "  %i: f32[2,3] = Identity(%x)  # id\n"
    "  %s: f32[2,3] = Add(%i, %a)  # add_a\n"
    "  %t: f32[2,3] = Add(%i, %b)  # add_b\n"
    "  %y: f32[2,3] = Mul(%s, %t)  # mul\n"
    "  output %y: f32[2,3]\n"
    "}\n";

static void test_driver_disable_and_report(void **state)
{
    hone_graph *g = parse_ok(small);
    const char *off[] = {"cse"};
    char report[] = "/tmp/hone_test_report_XXXXXX";
    int fd = mkstemp(report);
    assert_true(fd >= 0);
    close(fd);
    hone_passes_opts o = {.disabled = off, .n_disabled = 1, .report_path = report};
    run_pipeline(g, "remove-identity,cse,dce", &o, "disable");
    assert_int_equal(g->n_nodes, 3); /* Identity gone, the two Adds kept */
    char *json = read_text(report);
    assert_non_null(strstr(json, "{\"pass\": \"cse\", \"disabled\": true}"));
    assert_non_null(strstr(json, "\"pass\": \"remove-identity\", \"disabled\": false, "
                                 "\"nodes_before\": 4, \"nodes_after\": 3"));
    assert_non_null(strstr(json, "\"changes\": {\"Identity\": 1}"));
    free(json);
    remove(report);
    hone_graph_free(g);
    g = parse_ok(small);
    run_pipeline(g, "remove-identity,cse,dce", NULL, "enabled");
    assert_int_equal(g->n_nodes, 2); /* the Adds of equal constants merge */
    hone_graph_free(g);
}

static void test_driver_print_after(void **state)
{
    hone_graph *g = parse_ok(small);
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    hone_passes_opts o = {.print_after = "cse", .print_stream = f};
    run_pipeline(g, "remove-identity,cse,dce", &o, "print-after");
    fclose(f);
    assert_non_null(strstr(buf, "// after pass 2: cse\ngraph g"));
    assert_null(strstr(buf, "after pass 1"));
    assert_null(strstr(buf, "after pass 3"));
    free(buf);
    hone_graph_free(g);
}

static void test_driver_bad_names(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = parse_ok(small);
    hone_pipeline p;
    const char *off[] = {"nope"};
    hone_passes_opts o = {.disabled = off, .n_disabled = 1};
    assert_int_equal(hone_pipeline_parse(&ctx, "dce", &p), HONE_OK);
    assert_int_equal(hone_passes_run(&ctx, g, &p, &o, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "unknown pass 'nope'"));
    hone_passes_opts o2 = {.print_after = "dce,zzz"};
    assert_int_equal(hone_passes_run(&ctx, g, &p, &o2, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "'zzz'"));
    hone_pipeline_free(&p);
    hone_graph_free(g);
}

/* ---- symbolic dims ---- */

static void test_symdim(void **state)
{
    hone_graph *g = hone_graph_new();
    int64_t n = HONE_DIM_SYM(hone_graph_sym(g, "N")), t = HONE_DIM_SYM(hone_graph_sym(g, "T"));
    hone_symdim sn = hone_symdim_of(g, n), st = hone_symdim_of(g, t), s8 = hone_symdim_of(g, 8);
    hone_symdim a = hone_symdim_mul(&s8, &sn), b = hone_symdim_mul(&a, &st);
    char buf[64];
    int64_t d = hone_symdim_to_dim(g, &b);
    assert_string_equal(hone_dims_str(g, 1, &d, buf, sizeof buf), "[8*N*T]");
    hone_symdim back = hone_symdim_of(g, d), q = hone_symdim_div(&back, &a);
    assert_int_equal(hone_symdim_to_dim(g, &q), t);
    hone_symdim s3 = hone_symdim_of(g, 3), bad = hone_symdim_div(&a, &s3);
    assert_false(hone_symdim_known(&bad));
    hone_symdim s2 = hone_symdim_of(g, 2), four = hone_symdim_div(&s8, &s2);
    assert_int_equal(hone_symdim_to_dim(g, &four), 4);
    hone_symdim unk = hone_symdim_of(g, HONE_DIM_UNKNOWN), u = hone_symdim_mul(&unk, &sn);
    assert_int_equal(hone_symdim_to_dim(g, &u), HONE_DIM_UNKNOWN);
    hone_graph_free(g);
}

/* ---- text reader ---- */

static void test_parse_roundtrip(void **state)
{
    const char *text = "graph g (ir 8; ai.onnx 13; hone 1) {\n"
                       "  input %x: f32[N,3]\n"
                       "  const %onnx::w: f32[3]\n"
                       "  %y: f32[N,3], _ = Foo(%x, _, %onnx::w) {alpha=0.5, k=[1,2], "
                       "mode=\"a b\", t=tensor i64[2] [4, 5]}  # my node\n"
                       "  %z: ?[?] = hone.Bar(%y)  # bar\n"
                       "  output %z: ?[?]\n"
                       "}\n";
    hone_graph *g = parse_ok(text);
    hone_node *n = g->nodes[0];
    assert_string_equal(n->name, "my node");
    assert_null(n->in[1]);
    assert_null(n->out[1]);
    assert_float_equal(hone_attr_float(n, "alpha", 0), 0.5, 0);
    assert_int_equal(hone_attr_find(n, "alpha")->kind, HONE_ATTR_FLOAT);
    assert_int_equal(hone_attr_find(n, "k")->kind, HONE_ATTR_INTS);
    assert_string_equal(hone_attr_str(n, "mode", ""), "a b");
    assert_int_equal(hone_tensor_get_i64(hone_attr_find(n, "t")->t, 1), 5);
    assert_string_equal(g->nodes[1]->domain, "hone");
    const hone_tensor *w = hone_graph_find(g, "onnx::w")->data;
    for (int i = 0; i < 3; i++)
        assert_true(fabs(hone_tensor_get_f64(w, i)) <= 1.0);
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    hone_graph_print(f, g);
    fclose(f);
    hone_graph *g2 = parse_ok(buf);
    char *buf2;
    f = open_memstream(&buf2, &len);
    hone_graph_print(f, g2);
    fclose(f);
    assert_string_equal(buf, buf2);
    free(buf);
    free(buf2);
    hone_graph_free(g);
    hone_graph_free(g2);
}

static void expect_parse_error(const char *text, const char *want)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    assert_int_not_equal(hone_graph_parse(&ctx, text, &g), HONE_OK);
    assert_null(g);
    if (!strstr(ctx.msg, want))
        fail_msg("parse error '%s' lacks '%s'", ctx.msg, want);
}

static void test_parse_errors(void **state)
{
    expect_parse_error("grph g () {\n}\n", "line 1: expected 'graph");
    expect_parse_error("graph g () {\n  input %x: q9[2]\n}\n", "line 2: unknown element type");
    expect_parse_error("graph g () {\n  const %c: f32[2] = [1]\n}\n", "does not match");
    expect_parse_error("graph g () {\n  %y: f32[1] = Relu(%x  # r\n}\n", "line 2: expected ')'");
    expect_parse_error("graph g () {\n  input %x: f32[1]\n", "missing closing");
    expect_parse_error("graph g () {\n  %y: f32[1] = Relu(%y)  # r\n  output %y\n}\n", "cycle");
    expect_parse_error("graph g () {\n  output %y: f32[1]\n}\n", "never produced");
}

/* ---- hone.FusedConv ---- */

static hone_status infer_text(const char *text, hone_ctx *ctx)
{
    hone_graph *g = parse_ok(text);
    hone_ctx_init(ctx);
    hone_status st = hone_graph_infer(ctx, g);
    hone_graph_free(g);
    return st;
}

static void test_fused_conv_errors(void **state)
{
    hone_ctx ctx;
    const char *bad_act = "graph g (ir 8; ai.onnx 13; hone 1) {\n"
                          "  input %x: f32[1,1,3,3]\n  const %w: f32[1,1,1,1]\n"
                          "  %y: f32[1,1,3,3] = hone.FusedConv(%x, %w) {activation=\"Tanh\"}  # f\n"
                          "  output %y: f32[1,1,3,3]\n}\n";
    assert_int_equal(infer_text(bad_act, &ctx), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "node 'f' (FusedConv): activation 'Tanh'"));
    const char *bad_params = "graph g (ir 8; ai.onnx 13; hone 1) {\n"
                             "  input %x: f32[1,1,3,3]\n  const %w: f32[1,1,1,1]\n"
                             "  %y: f32[1,1,3,3] = hone.FusedConv(%x, %w) "
                             "{activation=\"Clip\", activation_params=[0.5]}  # f\n"
                             "  output %y: f32[1,1,3,3]\n}\n";
    assert_int_equal(infer_text(bad_params, &ctx), HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "has 1 values, Clip takes 2"));
    const char *big_z = "graph g (ir 8; ai.onnx 13; hone 1) {\n"
                        "  input %x: f32[1,1,3,3]\n  input %z: f32[2,1,3,3]\n"
                        "  const %w: f32[1,1,1,1]\n"
                        "  %y: f32[1,1,3,3] = hone.FusedConv(%x, %w, _, %z)  # f\n"
                        "  output %y: f32[1,1,3,3]\n}\n";
    hone_status st = infer_text(big_z, &ctx);
    if (hone_op_lookup("", "Conv") == HONE_OP_UNKNOWN) {
        assert_int_equal(st, HONE_ERR_UNSUPPORTED);
        assert_non_null(strstr(ctx.msg, "Conv op, which this build lacks"));
    } else {
        assert_int_equal(st, HONE_ERR_SHAPE);
        assert_non_null(strstr(ctx.msg, "would enlarge"));
    }
}

/* hone.QConv's checks: types, a scale of the wrong length, a residual of another
 * shape, an unknown activation, each naming the node. */
static void test_qconv_errors(void **state)
{
    (void)state;
    hone_ctx ctx;
#define QGRAPH(xt, sdims, extra, attrs)                                                        \
    "graph g (ir 8; ai.onnx 13; hone 1) {\n  input %x: " xt "[1,2,3,3]\n"                     \
    "  input %z: f32[1,4,2,3]\n  const %w: i8[4,2,1,1]\n  const %xz: u8[] = [3]\n"            \
    "  const %s: f32[" sdims "]\n"                                                            \
    "  %y: f32[1,4,3,3] = hone.QConv(%x, %w, %xz, %s" extra ") " attrs " # q\n"               \
    "  output %y: f32[1,4,3,3]\n}\n"
    assert_int_equal(infer_text(QGRAPH("i8", "4", "", ""), &ctx), HONE_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.msg, "node 'q' (QConv): X must be uint8 and W int8"));
    assert_int_equal(infer_text(QGRAPH("u8", "3", "", ""), &ctx), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "scale must hold 4 values"));
    assert_int_equal(infer_text(QGRAPH("u8", "4", ", _, %z", ""), &ctx), HONE_ERR_SHAPE);
    assert_non_null(strstr(ctx.msg, "Z must be float with the output's shape"));
    assert_int_equal(infer_text(QGRAPH("u8", "4", "", "{activation=\"Tanh\"}"), &ctx),
                     HONE_ERR_INVALID);
    assert_non_null(strstr(ctx.msg, "activation 'Tanh'"));
    assert_int_equal(infer_text(QGRAPH("u8", "4", "", ""), &ctx), HONE_OK);
#undef QGRAPH
}

/* FusedConv against a hand computation: 1x1 conv (w=2, b=1), Z added, Clip to [0, 4]. */
static void test_fused_conv_values(void **state)
{
    if (hone_op_lookup("", "Conv") == HONE_OP_UNKNOWN) {
        print_message("skipped: Conv is not in this build\n");
        return;
    }
    hone_graph *g = parse_ok("graph g (ir 8; ai.onnx 13; hone 1) {\n"
                             "  input %x: f32[1,1,2,2]\n  input %z: f32[1,1,1,2]\n"
                             "  const %w: f32[1,1,1,1] = [2]\n  const %b: f32[1] = [1]\n"
                             "  %y: f32[1,1,2,2] = hone.FusedConv(%x, %w, %b, %z) "
                             "{kernel_shape=[1,1], activation=\"Clip\", "
                             "activation_params=[0.0, 4.0]}  # f\n"
                             "  output %y: f32[1,1,2,2]\n}\n");
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t dx[] = {1, 1, 2, 2}, dz[] = {1, 1, 1, 2};
    float xv[] = {-3, 0.5f, 1, 2}, zv[] = {0.25f, -1};
    const hone_tensor *ins[] = {tu_tensor_f32(4, dx, xv), tu_tensor_f32(4, dz, zv)};
    hone_tensor *out[1];
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    assert_int_equal(hone_interp_run(&ctx, g, ins, out, NULL), HONE_OK);
    /* 2x+1+z: -6+1+0.25 -> 0 (clipped), 1+1-1 = 1, 2+1+0.25 = 3.25, 4+1-1 = 4 */
    float want[] = {0, 1, 3.25f, 4};
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)out[0]->data)[i], want[i], 1e-6);
    hone_tensor_free(out[0]);
    hone_tensor_free((hone_tensor *)ins[0]);
    hone_tensor_free((hone_tensor *)ins[1]);
    hone_graph_free(g);
}

/* ---- docs ---- */

static void test_passes_doc_current(void **state)
{
    char *buf, *doc = read_text(tu_src("docs/PASSES.md"));
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    hone_pass_table_markdown(f);
    fclose(f);
    if (getenv("HONE_UPDATE_GOLDEN")) {
        f = fopen(tu_src("docs/PASSES.md"), "w");
        assert_non_null(f);
        fputs(buf, f);
        fclose(f);
    } else if (!doc || strcmp(doc, buf))
        fail_msg("docs/PASSES.md is stale: run 'hone passes --markdown > docs/PASSES.md'");
    free(buf);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_parse),
        cmocka_unit_test(test_pipeline_defaults_and_levels),
        cmocka_unit_test(test_pipeline_errors),
        cmocka_unit_test(test_driver_disable_and_report),
        cmocka_unit_test(test_driver_print_after),
        cmocka_unit_test(test_driver_bad_names),
        cmocka_unit_test(test_symdim),
        cmocka_unit_test(test_parse_roundtrip),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_fused_conv_errors),
        cmocka_unit_test(test_qconv_errors),
        cmocka_unit_test(test_fused_conv_values),
        cmocka_unit_test(test_passes_doc_current),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_disable_each_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
