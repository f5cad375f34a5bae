/*
 * The backend's less common ops (backend/lower_extra.c, runtime/extra.c)
 * against the reference interpreter, bit for bit, on the edge cases the ONNX
 * conformance data leaves out: GridSample at out-of-range and NaN grid
 * points in every mode, padding and align_corners; TopK with k = n, ties and
 * NaN; Einsum with repeated indices (diagonals, traces), broadcast dims,
 * three operands and integers; OneHot with fractional and out-of-range
 * indices; ReverseSequence along either axis; MaxUnpool into an enlarged
 * output; Det of singular and pivoting matrices; MVN over custom axes;
 * training-mode BatchNormalization (both output conventions); Dropout's
 * mask and its run-time training check; MaxPool over int8/uint8; and the
 * bfloat16 casts. Bad run-time data (a sequence length, an unpool index)
 * must fail the run, as the interpreter does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "interp.h"
#include "testutil.h"

/* ===================== helpers ===================== */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* Uniform in [lo, hi). */
static double urand(double lo, double hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) / (double)(1ull << 53);
}

static hone_graph *parse(const char *text)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    if (hone_graph_parse(&ctx, text, &g) || hone_graph_infer(&ctx, g))
        fail_msg("%s", ctx.msg);
    return g;
}

/* A tensor shaped like graph input i, values uniform in [lo, hi) (rounded when whole). */
static hone_tensor *input_like(const hone_graph *g, int i, double lo, double hi, bool whole)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    const hone_value *v = g->inputs[i];
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, v->dtype, v->rank, v->dims, &t), HONE_OK);
    for (int64_t k = 0; k < t->numel; k++) {
        double x = urand(lo, hi);
        hone_tensor_set_f64(t, k, whole ? floor(x) : x);
    }
    return t;
}

/* Compiles g for ins; NULL with ctx's message when the backend refuses. */
static hone_jit_t *compile(hone_ctx *ctx, hone_graph *g, const hone_tensor **ins)
{
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    hone_backend_shapes_from(&o, g, ins);
    hone_jit_t *j = NULL;
    return hone_jit_compile(ctx, g, &o, &j, NULL) ? NULL : j;
}

/* Runs g in the interpreter and the JIT on ins; every output must match byte for byte. */
static void same_bits(hone_graph *g, const hone_tensor **ins)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *want[8], *got[8];
    assert_int_equal(hone_interp_run(&ctx, g, ins, want, NULL), HONE_OK);
    hone_jit_t *j = compile(&ctx, g, ins);
    if (!j)
        fail_msg("JIT compile: %s", ctx.msg);
    assert_int_equal(hone_jit_run(&ctx, j, ins, got), HONE_OK);
    for (int i = 0; i < g->n_outputs; i++) {
        assert_int_equal(want[i]->dtype, got[i]->dtype);
        assert_int_equal(want[i]->numel, got[i]->numel);
        if (memcmp(want[i]->data, got[i]->data, hone_tensor_nbytes(want[i]))) {
            for (int64_t k = 0; k < want[i]->numel; k++)
                if (hone_tensor_get_f64(want[i], k) != hone_tensor_get_f64(got[i], k))
                    print_error("output %d element %lld: interpreter %.17g, JIT %.17g\n", i,
                                (long long)k, hone_tensor_get_f64(want[i], k),
                                hone_tensor_get_f64(got[i], k));
            fail_msg("output %d of %s differs", i, g->name);
        }
        hone_tensor_free(want[i]);
        hone_tensor_free(got[i]);
    }
    hone_jit_free(j);
}

/* Both the interpreter and the compiled model must reject ins at run time. */
static void both_fail(hone_graph *g, const hone_tensor **ins)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *out[8] = {0};
    assert_int_not_equal(hone_interp_run(&ctx, g, ins, out, NULL), HONE_OK);
    hone_jit_t *j = compile(&ctx, g, ins);
    if (!j)
        fail_msg("JIT compile: %s", ctx.msg);
    assert_int_not_equal(hone_jit_run(&ctx, j, ins, out), HONE_OK);
    assert_null(out[0]);
    hone_jit_free(j);
}

static void free_all(hone_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        hone_tensor_free(t[i]);
}

/* same_bits on the graph of text with every input uniform in [lo, hi). */
static void random_check(const char *text, double lo, double hi, bool whole)
{
    hone_graph *g = parse(text);
    hone_tensor *t[8];
    for (int i = 0; i < g->n_inputs; i++)
        t[i] = input_like(g, i, lo, hi, whole);
    same_bits(g, (const hone_tensor **)t);
    free_all(t, g->n_inputs);
    hone_graph_free(g);
}

/* ===================== GridSample ===================== */

/* Every mode x padding x align_corners, grid points up to 1.6 outside [-1, 1], one NaN. */
static void test_gridsample_modes(void **state)
{
    static const char *modes[] = {"bilinear", "nearest", "bicubic"};
    static const char *pads[] = {"zeros", "border", "reflection"};
    char text[512];
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 3; p++)
            for (int a = 0; a < 2; a++) {
                snprintf(text, sizeof text,
                         "graph gs (ir 8; ai.onnx 16) {\n  input %%x: f32[2,3,4,5]\n"
                         "  input %%grid: f32[2,3,6,2]\n"
                         "  %%y: f32[2,3,3,6] = GridSample(%%x, %%grid) {mode=\"%s\", "
                         "padding_mode=\"%s\", align_corners=%d}\n  output %%y: f32[2,3,3,6]\n}\n",
                         modes[m], pads[p], a);
                hone_graph *g = parse(text);
                hone_tensor *t[2] = {input_like(g, 0, -2, 2, false), input_like(g, 1, -1.6, 1.6, false)};
                ((float *)t[1]->data)[0] = 1.0f;
                ((float *)t[1]->data)[1] = -1.0f;
                ((float *)t[1]->data)[7] = NAN;
                same_bits(g, (const hone_tensor **)t);
                free_all(t, 2);
                hone_graph_free(g);
            }
}

static void test_gridsample_f64(void **state)
{
    random_check("graph gs (ir 8; ai.onnx 16) {\n  input %x: f64[1,2,3,3]\n"
                 "  input %grid: f64[1,4,4,2]\n"
                 "  %y: f64[1,2,4,4] = GridSample(%x, %grid) {mode=\"bicubic\", "
                 "padding_mode=\"reflection\"}\n  output %y: f64[1,2,4,4]\n}\n",
                 -3, 3, false);
}

/* ===================== TopK ===================== */

/* k = n along a middle axis with many ties (ties keep the lower index), largest and smallest. */
static void test_topk_ties(void **state)
{
    char text[512];
    for (int largest = 0; largest < 2; largest++) {
        snprintf(text, sizeof text,
                 "graph tk (ir 8; ai.onnx 13) {\n  input %%x: f32[3,7,4]\n  const %%k: i64[1] = [7]\n"
                 "  %%v: f32[3,7,4], %%i: i64[3,7,4] = TopK(%%x, %%k) {axis=1, largest=%d}\n"
                 "  output %%v: f32[3,7,4]\n  output %%i: i64[3,7,4]\n}\n",
                 largest);
        hone_graph *g = parse(text);
        hone_tensor *x = input_like(g, 0, -2, 3, true);
        ((float *)x->data)[4] = NAN;
        ((float *)x->data)[9] = -0.0f;
        same_bits(g, (const hone_tensor **)&x);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

/* Small k (the one-pass selection) against the first k of k = n (the merge
 * sort), with ties and NaN, both ways; and compiled against interpreted. */
static void test_topk_select(void **state)
{
    char text[768];
    for (int largest = 0; largest < 2; largest++) {
        snprintf(text, sizeof text,
                 "graph tk (ir 8; ai.onnx 13) {\n  input %%x: f32[5,64]\n  const %%k: i64[1] = [3]\n"
                 "  const %%n: i64[1] = [64]\n  const %%s: i64[1] = [0]\n  const %%a: i64[1] = [1]\n"
                 "  %%v: f32[5,3], %%i: i64[5,3] = TopK(%%x, %%k) {largest=%d}\n"
                 "  %%fv: f32[5,64], %%fi: i64[5,64] = TopK(%%x, %%n) {largest=%d}\n"
                 "  %%sv: f32[5,3] = Slice(%%fv, %%s, %%k, %%a)\n  %%si: i64[5,3] = Slice(%%fi, %%s, %%k, %%a)\n"
                 "  output %%v: f32[5,3]\n  output %%i: i64[5,3]\n  output %%sv: f32[5,3]\n"
                 "  output %%si: i64[5,3]\n}\n",
                 largest, largest);
        hone_graph *g = parse(text);
        hone_tensor *x = input_like(g, 0, -3, 3, true), *out[4];
        for (int r = 0; r < 5; r++)
            ((float *)x->data)[r * 64 + 10 * r] = NAN;
        same_bits(g, (const hone_tensor **)&x);
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        assert_int_equal(hone_interp_run(&ctx, g, (const hone_tensor **)&x, out, NULL), HONE_OK);
        assert_memory_equal(out[0]->data, out[2]->data, hone_tensor_nbytes(out[0]));
        assert_memory_equal(out[1]->data, out[3]->data, hone_tensor_nbytes(out[1]));
        free_all(out, 4);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

static void test_topk_int(void **state)
{
    random_check("graph tk (ir 8; ai.onnx 13) {\n  input %x: i32[5,9]\n  const %k: i64[1] = [4]\n"
                 "  %v: i32[5,4], %i: i64[5,4] = TopK(%x, %k)\n"
                 "  output %v: i32[5,4]\n  output %i: i64[5,4]\n}\n",
                 -3, 3, true);
}

/* ===================== Einsum ===================== */

static void einsum_case(const char *eq, const char *ins, const char *out, int n_in, bool whole)
{
    char text[768];
    snprintf(text, sizeof text,
             "graph ein (ir 8; ai.onnx 13) {\n%s  %%y: %s = Einsum(%s) {equation=\"%s\"}\n"
             "  output %%y: %s\n}\n",
             ins, out, n_in == 1 ? "%a" : n_in == 2 ? "%a, %b" : "%a, %b, %c", eq, out);
    random_check(text, -4, 4, whole);
}

/* Repeated indices (diagonal, trace, a label twice in one operand and again
 * in another), broadcast "...", three operands, integer wrapping. */
static void test_einsum_patterns(void **state)
{
    einsum_case("ii->i", "  input %a: f32[5,5]\n", "f32[5]", 1, false);
    einsum_case("ii", "  input %a: f32[6,6]\n", "f32[]", 1, false);
    einsum_case("iij,jk->ik", "  input %a: f32[3,3,4]\n  input %b: f32[4,2]\n", "f32[3,2]", 2, false);
    einsum_case("...ij,...jk->...ik", "  input %a: f32[2,1,3,4]\n  input %b: f32[3,4,5]\n",
                "f32[2,3,3,5]", 2, false);
    einsum_case("ij,jk,kl->li", "  input %a: f64[2,3]\n  input %b: f64[3,4]\n  input %c: f64[4,5]\n",
                "f64[5,2]", 3, false);
    einsum_case("ij,ij->", "  input %a: i64[3,4]\n  input %b: i64[3,4]\n", "i64[]", 2, true);
    einsum_case("bij->bji", "  input %a: i32[2,3,4]\n", "i32[2,4,3]", 1, true);
    einsum_case("i,j", "  input %a: f32[3]\n  input %b: f32[4]\n", "f32[3,4]", 2, false);
}

/* ===================== OneHot ===================== */

/* Fractional, negative and out-of-range float indices (the row stays off). */
static void test_onehot_indices(void **state)
{
    hone_graph *g = parse("graph oh (ir 8; ai.onnx 11) {\n  input %i: f32[2,5]\n"
                          "  const %d: i64[] = [4]\n  input %v: f32[2]\n"
                          "  %y: f32[2,4,5] = OneHot(%i, %d, %v) {axis=1}\n  output %y: f32[2,4,5]\n}\n");
    hone_tensor *t[2] = {input_like(g, 0, 0, 1, false), input_like(g, 1, -1, 1, false)};
    static const float iv[] = {0, 2.7f, -1.2f, 3.99f, 4, -4, -5, 100, 1e20f, NAN};
    memcpy(t[0]->data, iv, sizeof iv);
    same_bits(g, (const hone_tensor **)t);
    free_all(t, 2);
    hone_graph_free(g);
}

/* ===================== ReverseSequence ===================== */

static void test_reverse_sequence(void **state)
{
    hone_graph *g = parse("graph rs (ir 8; ai.onnx 13) {\n  input %x: f32[3,5,2]\n  input %l: i64[3]\n"
                          "  %y: f32[3,5,2] = ReverseSequence(%x, %l) {batch_axis=0, time_axis=1}\n"
                          "  output %y: f32[3,5,2]\n}\n");
    hone_tensor *t[2] = {input_like(g, 0, -1, 1, false), input_like(g, 1, 0, 1, true)};
    static const int64_t lens[] = {0, 5, 3};
    memcpy(t[1]->data, lens, sizeof lens);
    same_bits(g, (const hone_tensor **)t);
    ((int64_t *)t[1]->data)[2] = 6;
    both_fail(g, (const hone_tensor **)t);
    free_all(t, 2);
    hone_graph_free(g);
}

/* ===================== MaxUnpool ===================== */

/* Indices into the default 4x4 output land at the same coordinates of a 5x6 one. */
static void test_maxunpool_shape(void **state)
{
    hone_graph *g = parse("graph mu (ir 8; ai.onnx 11) {\n  input %x: f32[1,2,2,2]\n  input %i: i64[1,2,2,2]\n"
                          "  const %s: i64[4] = [1, 2, 5, 6]\n"
                          "  %y: f32[1,2,5,6] = MaxUnpool(%x, %i, %s) {kernel_shape=[2,2], strides=[2,2]}\n"
                          "  output %y: f32[1,2,5,6]\n}\n");
    hone_tensor *t[2] = {input_like(g, 0, -1, 1, false), input_like(g, 1, 0, 1, true)};
    static const int64_t idx[] = {0, 3, 9, 15, 16, 21, 26, 31};
    memcpy(t[1]->data, idx, sizeof idx);
    same_bits(g, (const hone_tensor **)t);
    ((int64_t *)t[1]->data)[5] = -1;
    both_fail(g, (const hone_tensor **)t);
    ((int64_t *)t[1]->data)[5] = 32;
    both_fail(g, (const hone_tensor **)t);
    free_all(t, 2);
    hone_graph_free(g);
}

/* ===================== Det ===================== */

/* Random, singular (two equal rows) and pivoting (zero leading entry) matrices. */
static void test_det_cases(void **state)
{
    hone_graph *g = parse("graph det (ir 8; ai.onnx 13) {\n  input %x: f32[3,4,4]\n"
                          "  %y: f32[3] = Det(%x)\n  output %y: f32[3]\n}\n");
    hone_tensor *x = input_like(g, 0, -2, 2, false);
    float *v = x->data;
    memcpy(v + 16 + 4, v + 16, 4 * sizeof *v);
    v[32] = 0;
    same_bits(g, (const hone_tensor **)&x);
    hone_tensor_free(x);
    hone_graph_free(g);
    random_check("graph det (ir 8; ai.onnx 13) {\n  input %x: f64[2,1,3,3]\n"
                 "  %y: f64[2,1] = Det(%x)\n  output %y: f64[2,1]\n}\n",
                 -2, 2, false);
}

/* ===================== MeanVarianceNormalization ===================== */

static void test_mvn_axes(void **state)
{
    random_check("graph mvn (ir 8; ai.onnx 13) {\n  input %x: f32[2,3,4,5]\n"
                 "  %y: f32[2,3,4,5] = MeanVarianceNormalization(%x) {axes=[1, -1]}\n"
                 "  output %y: f32[2,3,4,5]\n}\n",
                 3, 5, false);
}

/* ===================== BatchNormalization, training mode ===================== */

static void bn_case(const char *text)
{
    hone_graph *g = parse(text);
    hone_tensor *t[5] = {input_like(g, 0, -1, 3, false), input_like(g, 1, 0.5, 1.5, false),
                         input_like(g, 2, -1, 1, false), input_like(g, 3, -1, 1, false),
                         input_like(g, 4, 0.5, 2, false)};
    same_bits(g, (const hone_tensor **)t);
    free_all(t, 5);
    hone_graph_free(g);
}

/* Opset 14's running statistics, and opset 9's mean, var, saved_mean, saved_var. */
static void test_batchnorm_training(void **state)
{
    bn_case("graph bn (ir 8; ai.onnx 15) {\n  input %x: f32[3,4,2,5]\n  input %s: f32[4]\n"
            "  input %b: f32[4]\n  input %m: f32[4]\n  input %v: f32[4]\n"
            "  %y: f32[3,4,2,5], %rm: f32[4], %rv: f32[4] = BatchNormalization(%x, %s, %b, %m, %v)"
            " {training_mode=1, momentum=0.7, epsilon=0.01}\n"
            "  output %y: f32[3,4,2,5]\n  output %rm: f32[4]\n  output %rv: f32[4]\n}\n");
    bn_case("graph bn (ir 8; ai.onnx 9) {\n  input %x: f32[2,3,4]\n  input %s: f32[3]\n"
            "  input %b: f32[3]\n  input %m: f32[3]\n  input %v: f32[3]\n"
            "  %y: f32[2,3,4], %om: f32[3], %ov: f32[3], %sm: f32[3], %sv: f32[3] ="
            " BatchNormalization(%x, %s, %b, %m, %v)\n"
            "  output %y: f32[2,3,4]\n  output %om: f32[3]\n  output %ov: f32[3]\n"
            "  output %sm: f32[3]\n  output %sv: f32[3]\n}\n");
}

/* ===================== Dropout ===================== */

/* A run-time training_mode: true with ratio 0 passes data and an all-true
 * mask; true with ratio 0.5 fails the run, as in the interpreter. A known
 * true training_mode with the default ratio is refused at compile time. */
static void test_dropout_training(void **state)
{
    hone_graph *g = parse("graph dr (ir 8; ai.onnx 13) {\n  input %x: f32[3,4]\n  input %r: f32[]\n"
                          "  input %t: bool[]\n  %y: f32[3,4], %m: bool[3,4] = Dropout(%x, %r, %t)\n"
                          "  output %y: f32[3,4]\n  output %m: bool[3,4]\n}\n");
    hone_tensor *t[3] = {input_like(g, 0, -1, 1, false), input_like(g, 1, 0, 0, false),
                         input_like(g, 2, 1, 1, true)};
    same_bits(g, (const hone_tensor **)t);
    ((float *)t[1]->data)[0] = 0.5f;
    both_fail(g, (const hone_tensor **)t);
    ((uint8_t *)t[2]->data)[0] = 0;
    same_bits(g, (const hone_tensor **)t);
    free_all(t, 3);
    hone_graph_free(g);
    g = parse("graph dr (ir 8; ai.onnx 13) {\n  input %x: f32[3,4]\n  const %r: f32[] = [0.25]\n"
              "  const %t: bool[] = [1]\n  %y: f32[3,4] = Dropout(%x, %r, %t)\n  output %y: f32[3,4]\n}\n");
    hone_tensor *x = input_like(g, 0, -1, 1, false);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_null(compile(&ctx, g, (const hone_tensor **)&x));
    assert_non_null(strstr(ctx.msg, "draws random numbers"));
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ===================== MaxPool over 8-bit integers ===================== */

static void test_maxpool_int8(void **state)
{
    static const char *types[] = {"i8", "u8"};
    char text[512];
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "graph mp (ir 8; ai.onnx 12) {\n  input %%x: %s[2,2,5,6]\n"
                 "  %%y: %s[2,2,3,3], %%i: i64[2,2,3,3] = MaxPool(%%x) {kernel_shape=[3,2], "
                 "strides=[2,2], pads=[1,0,1,0]}\n  output %%y: %s[2,2,3,3]\n  output %%i: i64[2,2,3,3]\n}\n",
                 types[k], types[k], types[k]);
        hone_graph *g = parse(text);
        hone_tensor *x = input_like(g, 0, k ? 0 : -128, k ? 256 : 128, true);
        same_bits(g, (const hone_tensor **)&x);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

/* ===================== bfloat16 casts ===================== */

/* Float -> bfloat16 (truncation, NaN, infinities, subnormals) and back, and
 * integers through bfloat16. */
static void test_cast_bf16(void **state)
{
    hone_graph *g = parse("graph bf (ir 8; ai.onnx 13) {\n  input %x: f32[12]\n  input %n: i64[4]\n"
                          "  %b: bf16[12] = Cast(%x) {to=16}\n  %f: f32[12] = Cast(%b) {to=1}\n"
                          "  %j: i32[12] = Cast(%b) {to=6}\n  %nb: bf16[4] = Cast(%n) {to=16}\n"
                          "  %nd: f64[4] = Cast(%nb) {to=11}\n"
                          "  output %b: bf16[12]\n  output %f: f32[12]\n  output %j: i32[12]\n"
                          "  output %nd: f64[4]\n}\n");
    hone_tensor *t[2] = {input_like(g, 0, -1e3, 1e3, false), input_like(g, 1, -1e6, 1e6, true)};
    static const float sp[] = {NAN, INFINITY, -INFINITY, 1e-40f, -0.0f, 3.0e38f, 1.00390625f, 65504.5f};
    memcpy(t[0]->data, sp, sizeof sp);
    ((int64_t *)t[1]->data)[0] = INT64_MAX;
    same_bits(g, (const hone_tensor **)t);
    free_all(t, 2);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gridsample_modes),   cmocka_unit_test(test_gridsample_f64),
        cmocka_unit_test(test_topk_ties),          cmocka_unit_test(test_topk_select),
        cmocka_unit_test(test_topk_int),
        cmocka_unit_test(test_einsum_patterns),    cmocka_unit_test(test_onehot_indices),
        cmocka_unit_test(test_reverse_sequence),   cmocka_unit_test(test_maxunpool_shape),
        cmocka_unit_test(test_det_cases),          cmocka_unit_test(test_mvn_axes),
        cmocka_unit_test(test_batchnorm_training), cmocka_unit_test(test_dropout_training),
        cmocka_unit_test(test_maxpool_int8),       cmocka_unit_test(test_cast_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
