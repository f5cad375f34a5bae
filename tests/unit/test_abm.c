/*
 * Tests of the abm pass (passes/abm.c) on a tiny TSN-style video model built
 * here: clips [N,4,1,6,6] -> frames -> stem, three residual blocks (the
 * second opens stage 2 with a projection shortcut) -> pooled features
 * [N,4,8] averaged over time -> 3 logits. Weights are seeded pseudo-random.
 *   - exactness at insertion (C-in and A-in, every block): outputs equal the
 *     original's within 1e-5;
 *   - the paper's block choice (stage 2, not its first block) on this model;
 *   - the C-in module computes a 3x3x3 conv over (B,C,T,H,W): its temporal
 *     taps, set to random values, match a direct 3-D convolution;
 *   - a model without frames or temporal head fails with a clear message;
 *   - fine-tuning runs and changes the auxiliary weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "passes.h"
#include "testutil.h"

#define T 4

static const char *const video_text =
    "graph tsn (ir 8; ai.onnx 13) {\n"
    "  input %clip: f32[N,4,1,6,6]\n"
    "  const %fs: i64[4] = [-1, 1, 6, 6]\n"
    "  const %hs: i64[3] = [-1, 4, 8]\n"
    "  const %w0: f32[4,1,3,3]\n  const %b0: f32[4]\n"
    "  const %w1: f32[4,4,3,3]\n  const %b1: f32[4]\n"
    "  const %w2: f32[4,4,3,3]\n  const %b2: f32[4]\n"
    "  const %w3: f32[8,4,3,3]\n  const %b3: f32[8]\n"
    "  const %w4: f32[8,8,3,3]\n  const %b4: f32[8]\n"
    "  const %ws: f32[8,4,1,1]\n  const %bs: f32[8]\n"
    "  const %w5: f32[8,8,3,3]\n  const %b5: f32[8]\n"
    "  const %w6: f32[8,8,3,3]\n  const %b6: f32[8]\n"
    "  const %fw: f32[3,8]\n  const %fb: f32[3]\n"
    "  %f: f32[?,1,6,6] = Reshape(%clip, %fs)  # frames\n"
    "  %s: f32[?,4,6,6] = Conv(%f, %w0, %b0) {kernel_shape=[3,3], pads=[1,1,1,1]}  # stem\n"
    "  %sr: f32[?,4,6,6] = Relu(%s)  # stem_relu\n"
    "  %a1: f32[?,4,6,6] = Conv(%sr, %w1, %b1) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b0c1\n"
    "  %r1: f32[?,4,6,6] = Relu(%a1)  # b0r\n"
    "  %a2: f32[?,4,6,6] = Conv(%r1, %w2, %b2) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b0c2\n"
    "  %s1: f32[?,4,6,6] = Add(%a2, %sr)  # b0add\n"
    "  %o1: f32[?,4,6,6] = Relu(%s1)  # b0out\n"
    "  %a3: f32[?,8,3,3] = Conv(%o1, %w3, %b3) {kernel_shape=[3,3], pads=[1,1,1,1], "
    "strides=[2,2]}  # b1c1\n"
    "  %r3: f32[?,8,3,3] = Relu(%a3)  # b1r\n"
    "  %a4: f32[?,8,3,3] = Conv(%r3, %w4, %b4) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b1c2\n"
    "  %sc: f32[?,8,3,3] = Conv(%o1, %ws, %bs) {kernel_shape=[1,1], strides=[2,2]}  # b1sc\n"
    "  %s2: f32[?,8,3,3] = Add(%a4, %sc)  # b1add\n"
    "  %o2: f32[?,8,3,3] = Relu(%s2)  # b1out\n"
    "  %a5: f32[?,8,3,3] = Conv(%o2, %w5, %b5) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b2c1\n"
    "  %r5: f32[?,8,3,3] = Relu(%a5)  # b2r\n"
    "  %a6: f32[?,8,3,3] = Conv(%r5, %w6, %b6) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b2c2\n"
    "  %s3: f32[?,8,3,3] = Add(%a6, %o2)  # b2add\n"
    "  %o3: f32[?,8,3,3] = Relu(%s3)  # b2out\n"
    "  %gp: f32[?,8,1,1] = GlobalAveragePool(%o3)  # gap\n"
    "  %fl: f32[?,8] = Flatten(%gp) {axis=1}  # flat\n"
    "  %h: f32[?,4,8] = Reshape(%fl, %hs)  # head_reshape\n"
    "  %m: f32[?,8] = ReduceMean(%h) {axes=[1], keepdims=0}  # head\n"
    "  %logits: f32[?,3] = Gemm(%m, %fw, %fb) {transB=1}  # fc\n"
    "  output %logits: f32[?,3]\n"
    "}\n";

static const char *const image_text =
    "graph cnn (ir 8; ai.onnx 13) {\n"
    "  input %x: f32[N,1,6,6]\n"
    "  const %w: f32[4,1,3,3]\n"
    "  %c: f32[N,4,6,6] = Conv(%x, %w) {kernel_shape=[3,3], pads=[1,1,1,1]}  # conv\n"
    "  %p: f32[N,4,1,1] = GlobalAveragePool(%c)  # gap\n"
    "  output %p: f32[N,4,1,1]\n"
    "}\n";

static uint64_t rng_state;

static float urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

static hone_graph *model(const char *text, uint64_t seed)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    assert_int_equal(hone_graph_parse(&ctx, text, &g), HONE_OK);
    rng_state = seed;
    for (int i = 0; i < g->n_values; i++) {
        hone_value *v = g->values[i];
        if (v->data && v->data->dtype == HONE_DT_FLOAT)
            for (int64_t e = 0; e < v->data->numel; e++)
                ((float *)v->data->data)[e] = urand();
    }
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

static hone_tensor *clips(int64_t n, uint64_t seed)
{
    int64_t dims[5] = {n, T, 1, 6, 6};
    hone_tensor *x = tu_tensor_f32(5, dims, NULL);
    rng_state = seed;
    for (int64_t e = 0; e < x->numel; e++)
        ((float *)x->data)[e] = 2 * urand();
    return x;
}

/* Runs pipeline text on g (data may be NULL); returns the status. */
static hone_status run_pass(hone_ctx *ctx, hone_graph *g, const char *text,
                            const hone_pass_data *data, hone_pass_stats *stats)
{
    hone_pipeline p;
    hone_status st = hone_pipeline_parse(ctx, text, &p);
    if (st)
        return st;
    FILE *log = fopen("/dev/null", "w");
    hone_passes_opts o = {.data = data, .log_stream = log};
    st = hone_passes_run(ctx, g, &p, &o, stats);
    hone_pipeline_free(&p);
    if (log)
        fclose(log);
    return st;
}

static hone_tensor *run_model(hone_graph *g, const hone_tensor *x)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *out[2] = {NULL};
    assert_int_equal(hone_interp_run(&ctx, g, &x, out, NULL), HONE_OK);
    return out[0];
}

static double max_diff(const hone_tensor *a, const hone_tensor *b)
{
    assert_int_equal(a->numel, b->numel);
    double m = 0;
    for (int64_t e = 0; e < a->numel; e++) {
        double d = fabs((double)((float *)a->data)[e] - ((float *)b->data)[e]);
        m = d > m ? d : m;
    }
    return m;
}

static int count_op(const hone_graph *g, const char *op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* The pass with fine-tuning off keeps the function; returns the module count. */
static int check_exact(const char *pipeline)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = model(video_text, 7), *orig = hone_graph_clone(g);
    hone_pass_stats stats = {0};
    assert_int_equal(run_pass(&ctx, g, pipeline, NULL, &stats), HONE_OK);
    hone_pass_stats_release(&stats, 1);
    hone_tensor *x = clips(3, 11);
    hone_tensor *a = run_model(orig, x), *b = run_model(g, x);
    double d = max_diff(a, b), scale = 0;
    for (int64_t e = 0; e < a->numel; e++)
        scale = fmax(scale, fabs(((float *)a->data)[e]));
    assert_true(scale > 1e-3);     /* the outputs are not trivially zero */
    assert_true(d <= 1e-5);
    int mods = count_op(g, "Mul");
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(x);
    hone_graph_free(orig);
    hone_graph_free(g);
    return mods;
}

static void test_exact_cin_all(void **state)
{
    (void)state;
    assert_int_equal(check_exact("abm{epochs=0,blocks=all}"), 3);
}

static void test_exact_ain_all(void **state)
{
    (void)state;
    assert_int_equal(check_exact("abm{epochs=0,blocks=all,variant=a-in,beta=0.25}"), 3);
}

static void test_paper_blocks(void **state)
{
    (void)state;
    /* stage 1 (block 0) and the first block of stage 2 (block 1) stay 2-D */
    assert_int_equal(check_exact("abm{epochs=0}"), 1);
    assert_int_equal(check_exact("abm{epochs=0,blocks=\"0,2\"}"), 2);
    assert_int_equal(check_exact("abm{epochs=0,blocks=none}"), 0);
}

/* The weight constant of the module conv whose name ends in suffix. */
static hone_tensor *module_weight(hone_graph *g, const char *suffix)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const char *nm = g->nodes[i]->name;
        size_t a = strlen(nm), b = strlen(suffix);
        if (a >= b && !strcmp(nm + a - b, suffix))
            return g->nodes[i]->in[1]->data;
    }
    fail_msg("no node named *%s", suffix);
    return NULL;
}

/* Direct 3x3x3 conv (temporal pad 1, spatial pad 1) of b2c1's input
 * x [N*T, C, 3, 3] with taps w3[o][c][dt] (dt = 0: t-1, 1: t, 2: t+1) and
 * bias, times the aux output (all ones here), then compared downstream: we
 * compare the module's Mul output directly. */
static void test_cin_is_3d_conv(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = model(video_text, 3);
    assert_int_equal(run_pass(&ctx, g, "abm{epochs=0,blocks=2}", NULL, NULL), HONE_OK);
    hone_tensor *wm = module_weight(g, "abm_main");
    const hone_tensor *bm = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (strstr(g->nodes[i]->name, "abm_main"))
            bm = g->nodes[i]->in[2]->data;
    assert_non_null(bm);
    int64_t co = wm->dims[0], ci3 = wm->dims[1], C = ci3 / 3;
    assert_int_equal(co, 8);
    assert_int_equal(C, 8);
    rng_state = 99;
    for (int64_t e = 0; e < wm->numel; e++)
        ((float *)wm->data)[e] = urand();
    /* watch the module input (b2c1's input %o2) and output (%a5) */
    hone_value *xin = hone_graph_find(g, "o2"), *yout = hone_graph_find(g, "a5");
    assert_non_null(xin);
    assert_non_null(yout);
    hone_graph_add_output(g, xin);
    hone_graph_add_output(g, yout);
    hone_tensor *x = clips(2, 5), *out[4] = {NULL};
    assert_int_equal(hone_interp_run(&ctx, g, (const hone_tensor **)&x, out, NULL), HONE_OK);
    const hone_tensor *xi = out[1], *yo = out[2];
    int64_t N = 2, H = 3, W = 3;
    const float *wv = wm->data, *xv = xi->data, *yv = yo->data;
    double worst = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < co; o++)
                for (int64_t i = 0; i < H; i++)
                    for (int64_t j = 0; j < W; j++) {
                        double acc = hone_tensor_get_f64(bm, o);
                        for (int dt = -1; dt <= 1; dt++) {
                            int64_t tt = t + dt;
                            if (tt < 0 || tt >= T)
                                continue;
                            /* channel block: 0 = t, 1 = t-1, 2 = t+1 */
                            int64_t blk = dt == 0 ? 0 : dt < 0 ? 1 : 2;
                            for (int64_t c = 0; c < C; c++)
                                for (int ki = 0; ki < 3; ki++)
                                    for (int kj = 0; kj < 3; kj++) {
                                        int64_t ii = i + ki - 1, jj = j + kj - 1;
                                        if (ii < 0 || ii >= H || jj < 0 || jj >= W)
                                            continue;
                                        acc += wv[((o * ci3 + blk * C + c) * 3 + ki) * 3 + kj] *
                                               xv[(((n * T + tt) * C + c) * H + ii) * W + jj];
                                    }
                        }
                        double got = yv[(((n * T + t) * co + o) * H + i) * W + j];
                        worst = fmax(worst, fabs(got - acc));
                    }
    assert_true(worst < 1e-4);
    for (int i = 0; i < 4; i++)
        hone_tensor_free(out[i]);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_not_video(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = model(image_text, 1);
    assert_int_equal(run_pass(&ctx, g, "abm{epochs=0}", NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "no temporal head"));
    assert_non_null(strstr(ctx.msg, "not a frame-level video model"));
    hone_graph_free(g);
    hone_ctx_init(&ctx);
    g = model(video_text, 1);
    assert_int_equal(run_pass(&ctx, g, "abm{epochs=0,frames=5}", NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "disagrees"));
    hone_graph_free(g);
    hone_ctx_init(&ctx);
    g = model(video_text, 1);
    assert_int_equal(run_pass(&ctx, g, "abm{epochs=0,variant=x}", NULL, NULL), HONE_ERR_ARG);
    hone_graph_free(g);
    hone_ctx_init(&ctx);
    g = model(video_text, 1);
    assert_int_equal(run_pass(&ctx, g, "abm{blocks=all,steps=2}", NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "--data"));
    hone_graph_free(g);
}

static void test_finetune(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = model(video_text, 9);
    hone_tensor *x = clips(24, 4);
    int64_t n = 24;
    hone_tensor *y;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &n, &y), HONE_OK);
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)y->data)[i] = i % 3;
    hone_pass_data d = {.x = x, .labels = y, .val_split = 8, .path = "test"};
    hone_pass_stats stats = {0};
    assert_int_equal(run_pass(&ctx, g, "abm{blocks=all,steps=4,batch=4,lr=0.05}", &d, &stats),
                     HONE_OK);
    assert_non_null(stats.detail);
    assert_non_null(strstr(stats.detail, "\"trained\":true"));
    hone_pass_stats_release(&stats, 1);
    const hone_tensor *wa = module_weight(g, "b2c1/abm_aux");
    double s = 0;
    for (int64_t e = 0; e < wa->numel; e++)
        s += fabs(((float *)wa->data)[e]);
    assert_true(s > 0);   /* the auxiliary branch left its zero start */
    hone_tensor *out = run_model(g, x);
    for (int64_t e = 0; e < out->numel; e++)
        assert_true(isfinite(((float *)out->data)[e]));
    hone_tensor_free(out);
    hone_tensor_free(x);
    hone_tensor_free(y);
    hone_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_cin_all),  cmocka_unit_test(test_exact_ain_all),
        cmocka_unit_test(test_paper_blocks),   cmocka_unit_test(test_cin_is_3d_conv),
        cmocka_unit_test(test_not_video),      cmocka_unit_test(test_finetune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
