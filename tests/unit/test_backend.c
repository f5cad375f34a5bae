/*
 * The LLVM backend: the memory planner (every pair of buffers live at once
 * checked for overlap, the workspace against its lower bound), compiled code
 * against the reference interpreter (JIT, and a shared library called from a
 * C program built here with the system compiler against the generated
 * header, two models linked into one program), every emit kind, and the
 * errors: unsupported ops listed all at once, symbolic shapes without
 * --input-shape, an out-of-range Gather index at run time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "interp.h"
#include "onnx.h"
#include "passes.h"
#include "testutil.h"

/* ===================== helpers ===================== */

static uint64_t rng_state = 88172645463325252ull;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static hone_tensor *random_f32(int rank, const int64_t *dims)
{
    hone_tensor *t = tu_tensor_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = frand();
    return t;
}

static hone_value *add_input(hone_graph *g, const char *name, hone_dtype dt, int rank,
                             const int64_t *dims)
{
    hone_value *v = hone_graph_new_value(g, name);
    v->dtype = dt;
    v->rank = rank;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)rank);
    hone_graph_add_input(g, v);
    return v;
}

static hone_value *add_const(hone_graph *g, const char *name, hone_tensor *t)
{
    hone_value *v = hone_graph_new_value(g, name);
    hone_value_set_data(v, t);
    v->dtype = t->dtype;
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof v->dims);
    return v;
}

/* A node with the given inputs and n_out fresh outputs (the first named out0 when given). */
static hone_node *add_node_named(hone_graph *g, const char *op, int n_in, hone_value **in, int n_out,
                                 const char *out0)
{
    static int k;
    char name[32];
    snprintf(name, sizeof name, "n%d", k++);
    hone_node *n = hone_graph_add_node(g, op, "", name, n_in, n_out);
    n->opset = 13;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    for (int i = 0; i < n_out; i++)
        n->out[i] = hone_graph_new_value(g, i ? NULL : out0);
    return n;
}

static hone_node *add_node(hone_graph *g, const char *op, int n_in, hone_value **in, int n_out)
{
    return add_node_named(g, op, n_in, in, n_out, NULL);
}

static hone_graph *new_graph(void)
{
    hone_graph *g = tu_graph_new();
    g->name = "test";
    return g;
}

/* Conv(3x3, pad 1) + bias -> Relu -> MaxPool 2x2 -> + skip (Conv 1x1) ->
 * GlobalAveragePool -> Gemm -> Softmax: x[2,3,8,8] -> probs[2,5]; also the
 * sum ("features") and a depthwise conv of the Relu ("dw": stride, uneven
 * pads, dilation). */
static hone_graph *conv_net(void)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {2, 3, 8, 8}, w1d[] = {4, 3, 3, 3}, b1d[] = {4}, w2d[] = {4, 3, 1, 1};
    int64_t fd[] = {5, 4}, fbd[] = {5};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 4, xd);
    hone_value *w1 = add_const(g, "w1", random_f32(4, w1d)), *b1 = add_const(g, "b1", random_f32(1, b1d));
    hone_node *c1 = add_node(g, "Conv", 3, (hone_value *[]){x, w1, b1}, 1);
    hone_node_set_attr_ints(g, c1, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *r = add_node(g, "Relu", 1, c1->out, 1);
    hone_node *mp = add_node(g, "MaxPool", 1, r->out, 1);
    hone_node_set_attr_ints(g, mp, "kernel_shape", (int64_t[]){2, 2}, 2);
    hone_node_set_attr_ints(g, mp, "strides", (int64_t[]){2, 2}, 2);
    hone_value *w2 = add_const(g, "w2", random_f32(4, w2d));
    hone_node *c2 = add_node(g, "Conv", 2, (hone_value *[]){x, w2}, 1);
    hone_node_set_attr_ints(g, c2, "strides", (int64_t[]){2, 2}, 2);
    hone_node *add = add_node_named(g, "Add", 2, (hone_value *[]){mp->out[0], c2->out[0]}, 1, "features");
    hone_node *gap = add_node(g, "GlobalAveragePool", 1, add->out, 1);
    hone_node *red = add_node(g, "ReduceMean", 1, gap->out, 1);
    hone_node_set_attr_ints(g, red, "axes", (int64_t[]){2, 3}, 2);
    hone_node_set_attr_int(g, red, "keepdims", 0);
    hone_value *fw = add_const(g, "fw", random_f32(2, fd)), *fb = add_const(g, "fb", random_f32(1, fbd));
    hone_node *fc = add_node(g, "Gemm", 3, (hone_value *[]){red->out[0], fw, fb}, 1);
    hone_node_set_attr_int(g, fc, "transB", 1);
    hone_node *sm = add_node_named(g, "Softmax", 1, fc->out, 1, "probs");
    int64_t dwd[] = {4, 1, 3, 3};
    hone_value *wdw = add_const(g, "wdw", random_f32(4, dwd));
    hone_node *dw = add_node_named(g, "Conv", 3, (hone_value *[]){r->out[0], wdw, b1}, 1, "dw");
    hone_node_set_attr_int(g, dw, "group", 4);
    hone_node_set_attr_ints(g, dw, "pads", (int64_t[]){1, 0, 2, 1}, 4);
    hone_node_set_attr_ints(g, dw, "strides", (int64_t[]){2, 1}, 2);
    hone_node_set_attr_ints(g, dw, "dilations", (int64_t[]){1, 2}, 2);
    hone_graph_add_output(g, sm->out[0]);
    hone_graph_add_output(g, add->out[0]);
    hone_graph_add_output(g, dw->out[0]);
    return g;
}

/* Elementwise mix with broadcasting and type changes: x[2,3,4] f32, y[3,1] f32,
 * i[2,1,4] i32 -> where(x > y, x * 2 - y, Cast(i)) and Clip(x) and argmax. */
static hone_graph *ew_net(void)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {2, 3, 4}, yd[] = {3, 1}, id[] = {2, 1, 4}, sd[] = {1};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 3, xd), *y = add_input(g, "y", HONE_DT_FLOAT, 2, yd);
    hone_value *iv = add_input(g, "i", HONE_DT_INT32, 3, id);
    hone_value *two = add_const(g, "two", tu_tensor_f32(1, sd, (float[]){2}));
    hone_node *gt = add_node(g, "Greater", 2, (hone_value *[]){x, y}, 1);
    hone_node *mul = add_node(g, "Mul", 2, (hone_value *[]){x, two}, 1);
    hone_node *sub = add_node(g, "Sub", 2, (hone_value *[]){mul->out[0], y}, 1);
    hone_node *cast = add_node(g, "Cast", 1, &iv, 1);
    hone_node_set_attr_int(g, cast, "to", HONE_DT_FLOAT);
    hone_node *wh = add_node(g, "Where", 3, (hone_value *[]){gt->out[0], sub->out[0], cast->out[0]}, 1);
    hone_value *lo = add_const(g, "lo", tu_tensor_f32(0, NULL, (float[]){-0.25f}));
    hone_node *clip = add_node(g, "Clip", 2, (hone_value *[]){x, lo}, 1);
    hone_node *am = add_node(g, "ArgMax", 1, wh->out, 1);
    hone_node_set_attr_int(g, am, "axis", 1);
    hone_node *sig = add_node(g, "Sigmoid", 1, clip->out, 1);
    hone_graph_add_output(g, wh->out[0]);
    hone_graph_add_output(g, sig->out[0]);
    hone_graph_add_output(g, am->out[0]);
    return g;
}

static hone_tensor *random_i32(int rank, const int64_t *dims)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT32, rank, dims, &t), HONE_OK);
    for (int64_t i = 0; i < t->numel; i++)
        ((int32_t *)t->data)[i] = (int32_t)(frand() * 50);
    return t;
}

/* Largest |a - b| / max|a| over two tensors of one shape (integers compared exactly). */
static double rel_err(const hone_tensor *a, const hone_tensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->numel, b->numel);
    double mx = 1e-30, d = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = hone_tensor_get_f64(a, i), y = hone_tensor_get_f64(b, i);
        mx = fmax(mx, fabs(x));
        d = fmax(d, fabs(x - y));
    }
    return d / mx;
}

/* Runs g in the interpreter and the JIT on ins; returns the worst relative error. */
static double jit_vs_interp(hone_graph *g, const hone_tensor **ins)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    hone_backend_shapes_from(&o, g, ins);
    hone_tensor *want[16], *got[16];
    hone_jit_t *j;
    assert_int_equal(hone_interp_run(&ctx, g, ins, want, NULL), HONE_OK);
    hone_status st = hone_jit_compile(&ctx, g, &o, &j, NULL);
    if (st)
        fail_msg("JIT compile: %s", ctx.msg);
    assert_int_equal(hone_jit_run(&ctx, j, ins, got), HONE_OK);
    double worst = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        worst = fmax(worst, rel_err(want[i], got[i]));
        hone_tensor_free(want[i]);
        hone_tensor_free(got[i]);
    }
    hone_jit_free(j);
    return worst;
}

/* The shared classifier, or NULL when this build lacks an op it needs (Flatten). */
static hone_graph *load_classifier(void)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    if (hone_op_lookup("", "Flatten") == HONE_OP_UNKNOWN)
        return NULL;
    assert_int_equal(hone_onnx_load(&ctx, tu_src("models/fmnist_resnet14.onnx"), &g), HONE_OK);
    return g;
}

/* ===================== planner ===================== */

static bool bufs_overlap(const bk_buf *a, const bk_buf *b)
{
    bool live = a->first <= b->last && b->first <= a->last;
    return live && a->size && b->size && a->offset < b->offset + b->size && b->offset < a->offset + a->size;
}

/* Every pair of buffers live at once occupies disjoint bytes; offsets aligned. */
static void check_pairs(const bk_buf *b, int n, size_t total)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(b[i].offset % BK_ALIGN, 0);
        assert_true(b[i].offset + b[i].size <= total);
        for (int j = i + 1; j < n; j++)
            if (bufs_overlap(&b[i], &b[j]))
                fail_msg("buffers %d [%d,%d] @%zu+%zu and %d [%d,%d] @%zu+%zu overlap", i, b[i].first,
                         b[i].last, b[i].offset, b[i].size, j, b[j].first, b[j].last, b[j].offset,
                         b[j].size);
    }
}

/* A chain A -> B -> C: A and C can share bytes, B cannot share with either. */
static void test_plan_chain(void **state)
{
    bk_buf b[3] = {{100, 0, 1, 0}, {200, 1, 2, 0}, {100, 2, 3, 0}};
    size_t total = bk_plan_offsets(b, 3);
    check_pairs(b, 3, total);
    assert_int_equal(bk_plan_bound(b, 3), 128 + 256);
    assert_int_equal(total, 128 + 256);
    assert_int_equal(b[0].offset, b[2].offset);
}

/* Random intervals: no overlaps, total at least the bound. */
static void test_plan_random(void **state)
{
    enum { N = 300 };
    bk_buf b[N];
    for (int i = 0; i < N; i++) {
        int first = (int)((frand() + 1) * 100), len = (int)((frand() + 1) * 10);
        b[i] = (bk_buf){(size_t)((frand() + 1) * 5000), first, first + len, 0};
    }
    size_t total = bk_plan_offsets(b, N), bound = bk_plan_bound(b, N);
    check_pairs(b, N, total);
    assert_true(total >= bound);
    assert_true(total <= 2 * bound);
}

/* Checks a real plan pairwise: every workspace value (views share their root's
 * bytes) and every scratch buffer, with liveness recomputed here from the schedule. */
static void check_model_plan(const bk_model *m, const bk_plan *p)
{
    int nv = m->g->n_values, ns = m->n_sched, n = 0;
    bk_buf *b = calloc((size_t)(nv + ns + 1), sizeof *b);
    int *root = malloc(sizeof(int) * (size_t)nv);
    for (int v = 0; v < nv; v++)
        root[v] = v;
    for (int s = 0; s < ns; s++) {
        const hone_node *nd = m->sched[s];
        if (bk_is_view(nd))
            root[nd->out[0]->id] = root[nd->in[0]->id];
        if (bk_concat_in_place(m, nd)) { /* inputs: consecutive slices of the output */
            size_t at = p->loc[nd->out[0]->id].offset;
            for (int i = 0; i < nd->n_in; i++) {
                root[nd->in[i]->id] = nd->out[0]->id;
                assert_int_equal(p->loc[nd->in[i]->id].kind, BK_LOC_WS);
                assert_int_equal(p->loc[nd->in[i]->id].offset, at);
                at += bk_bytes(nd->in[i]);
            }
            assert_int_equal(at, p->loc[nd->out[0]->id].offset + bk_bytes(nd->out[0]));
        }
    }
    int *first = malloc(sizeof(int) * (size_t)nv), *last = malloc(sizeof(int) * (size_t)nv);
    for (int v = 0; v < nv; v++)
        first[v] = last[v] = -1;
    for (int s = 0; s < ns; s++) {
        const hone_node *nd = m->sched[s];
        for (int i = 0; i < nd->n_out; i++)
            if (nd->out[i] && first[root[nd->out[i]->id]] < 0)
                first[root[nd->out[i]->id]] = last[root[nd->out[i]->id]] = s;
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i])
                last[root[nd->in[i]->id]] = s;
    }
    for (int j = 0; j < m->g->n_outputs; j++)
        last[root[m->g->outputs[j]->id]] = ns;
    for (int v = 0; v < nv; v++)
        if (root[v] == v && first[v] >= 0 && p->loc[v].kind == BK_LOC_WS)
            b[n++] = (bk_buf){bk_bytes(m->g->values[v]), first[v], last[v], p->loc[v].offset};
    for (int s = 0; s < ns; s++)
        if (p->scratch_size[s])
            b[n++] = (bk_buf){p->scratch_size[s], s, s, p->scratch_off[s]};
    check_pairs(b, n, p->workspace);
    assert_true(p->workspace >= bk_plan_bound(b, n));
    free(b);
    free(root);
    free(first);
    free(last);
}

/* x[2, 8, 10, 10] -> a 1x1 conv (4 channels) and a 3x3 one (6), concatenated along the
 * channels, then Relu: with n = 1 the Concat is in place (its inputs written into its
 * output); with n = 2 each input is not one slice of the output, so it copies. */
static hone_graph *concat_net(int64_t n)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {n, 8, 10, 10}, wad[] = {4, 8, 1, 1}, wbd[] = {6, 8, 3, 3};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 4, xd);
    hone_value *wa = add_const(g, "wa", random_f32(4, wad)), *wb = add_const(g, "wb", random_f32(4, wbd));
    hone_node *a = add_node(g, "Conv", 2, (hone_value *[]){x, wa}, 1);
    hone_node *b = add_node(g, "Conv", 2, (hone_value *[]){x, wb}, 1);
    hone_node_set_attr_ints(g, b, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *c = add_node(g, "Concat", 2, (hone_value *[]){b->out[0], a->out[0]}, 1);
    hone_node_set_attr_int(g, c, "axis", 1);
    hone_node *r = add_node_named(g, "Relu", 1, c->out, 1, "y");
    hone_graph_add_output(g, r->out[0]);
    return g;
}

/* A Concat in place: its producers write into its output, it emits no code, the plan is
 * valid, and the JIT gives the interpreter's result; at batch 2 it is a copy. */
static void test_concat_in_place(void **state)
{
    (void)state;
    for (int64_t n = 1; n <= 2; n++) {
        hone_graph *g = concat_net(n);
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        bk_front f;
        if (bk_build(&ctx, g, &o, &f, NULL, NULL))
            fail_msg("%s", ctx.msg);
        int in_place = 0;
        for (int s = 0; s < f.m.n_sched; s++)
            in_place += bk_concat_in_place(&f.m, f.m.sched[s]);
        assert_int_equal(in_place, n == 1);
        check_model_plan(&f.m, &f.p);
        bk_front_free(&f);
        int64_t xd[] = {n, 8, 10, 10};
        hone_tensor *x = random_f32(4, xd);
        assert_true(jit_vs_interp(g, (const hone_tensor *[]){x}) <= 1e-6);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

/* The plans of the test nets and the classifier: valid, and within 1.15x the bound. */
static void test_plan_models(void **state)
{
    hone_graph *gs[2] = {conv_net(), load_classifier()};
    for (int k = 0; k < 2 && gs[k]; k++) {
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        o.n_shapes = 1;
        snprintf(o.shapes[0].name, sizeof o.shapes[0].name, "%s", gs[k]->inputs[0]->name);
        o.shapes[0].rank = 4;
        memcpy(o.shapes[0].dims, k ? (int64_t[]){3, 1, 28, 28} : (int64_t[]){2, 3, 8, 8}, 4 * sizeof(int64_t));
        bk_front f;
        if (bk_build(&ctx, gs[k], &o, &f, NULL, NULL))
            fail_msg("%s", ctx.msg);
        check_model_plan(&f.m, &f.p);
        assert_true((double)f.p.workspace <= 1.15 * (double)f.p.bound);
        assert_true(f.p.bound > 0);
        bk_front_free(&f);
        hone_graph_free(gs[k]);
    }
}

/* ===================== JIT against the interpreter ===================== */

static void test_jit_conv_net(void **state)
{
    hone_graph *g = conv_net();
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    int64_t xd[] = {2, 3, 8, 8};
    hone_tensor *x = random_f32(4, xd);
    assert_true(jit_vs_interp(g, (const hone_tensor *[]){x}) <= 1e-5);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* 3x3 stride-1 convs with 16+ channels on 14x14 planes compile to Winograd F(4x4, 3x3)
 * (hone_rt_winograd_conv): a plain Conv, and after fuse-conv a FusedConv whose residual
 * and Relu the Winograd kernel applies in its output transform. Both agree with the
 * interpreter (the direct sum) up to rounding, and not bit for bit (the path was taken;
 * tests/backend/compile_cli.sh checks --conv=direct's equal bits). */
static hone_graph *winograd_net(void)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {1, 16, 14, 14}, wd[] = {16, 16, 3, 3}, bd[] = {16};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 4, xd);
    hone_value *w1 = add_const(g, "w1", random_f32(4, wd)), *b1 = add_const(g, "b1", random_f32(1, bd));
    hone_value *w2 = add_const(g, "w2", random_f32(4, wd));
    hone_node *c1 = add_node(g, "Conv", 3, (hone_value *[]){x, w1, b1}, 1);
    hone_node_set_attr_ints(g, c1, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *c2 = add_node(g, "Conv", 2, (hone_value *[]){c1->out[0], w2}, 1);
    hone_node_set_attr_ints(g, c2, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *add = add_node(g, "Add", 2, (hone_value *[]){c2->out[0], x}, 1);
    hone_node *r = add_node_named(g, "Relu", 1, add->out, 1, "y");
    hone_graph_add_output(g, r->out[0]);
    return g;
}

static void test_jit_winograd(void **state)
{
    (void)state;
    int64_t xd[] = {1, 16, 14, 14};
    hone_tensor *x = random_f32(4, xd);
    for (int fused = 0; fused < 2; fused++) {
        hone_graph *g = winograd_net();
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
        if (fused) {
            hone_pipeline p;
            assert_int_equal(hone_pipeline_parse(&ctx, "fuse-conv", &p), HONE_OK);
            FILE *log = fopen("/dev/null", "w");
            hone_passes_opts po = {.log_stream = log};
            assert_int_equal(hone_passes_run(&ctx, g, &p, &po, NULL), HONE_OK);
            hone_pipeline_free(&p);
            if (log)
                fclose(log);
            int n_fused = 0;
            for (int i = 0; i < g->n_nodes; i++)
                n_fused += !strcmp(g->nodes[i]->op_type, "FusedConv");
            assert_int_equal(n_fused, 1); /* the second conv, its residual and Relu */
        }
        bk_model m;
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        assert_int_equal(bk_model_prepare(&ctx, g, &o, &m), HONE_OK);
        int n_wino = 0;
        for (int s = 0; s < m.n_sched; s++) {
            hone_rt_window w;
            int64_t grp;
            const hone_node *n = m.sched[s];
            if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "FusedConv")) {
                assert_int_equal(bk_conv_window(&ctx, n, &w, &grp), HONE_OK);
                n_wino += hone_rt_winograd_fits(&w, 16, 16, grp);
            }
        }
        bk_model_free(&m);
        assert_int_equal(n_wino, 2);
        double e = jit_vs_interp(g, (const hone_tensor *[]){x});
        if (!(e <= 1e-5 && e > 0))
            fail_msg("winograd net (fused %d): relative error %g", fused, e);
        hone_graph_free(g);
    }
    hone_tensor_free(x);
}

/* A depthwise conv followed by Clip(0, 6) (MobileNetV2's ReLU6) fuses into a FusedConv
 * whose bounds the depthwise kernel applies to each plane (hone_rt_depthwise_conv_epi):
 * the compiled model matches the interpreter up to rounding (an unclamped output would be
 * off by far more: the bound 0.5 is below most outputs). */
static void test_jit_depthwise_clip(void **state)
{
    (void)state;
    hone_graph *g = new_graph();
    int64_t xd[] = {1, 32, 20, 20}, wd[] = {32, 1, 3, 3}, bd[] = {32}, sd[] = {1};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 4, xd);
    hone_value *w = add_const(g, "w", random_f32(4, wd)), *b = add_const(g, "b", random_f32(1, bd));
    hone_tensor *lo = tu_tensor_f32(0, sd, NULL), *hi = tu_tensor_f32(0, sd, NULL);
    ((float *)lo->data)[0] = 0.0f;
    ((float *)hi->data)[0] = 0.5f; /* low enough that both bounds bite */
    hone_node *c = add_node(g, "Conv", 3, (hone_value *[]){x, w, b}, 1);
    hone_node_set_attr_int(g, c, "group", 32);
    hone_node_set_attr_ints(g, c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *cl = add_node_named(g, "Clip", 3, (hone_value *[]){c->out[0], add_const(g, "lo", lo),
                                                                  add_const(g, "hi", hi)}, 1, "y");
    hone_graph_add_output(g, cl->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, "fuse-conv", &p), HONE_OK);
    FILE *log = fopen("/dev/null", "w");
    hone_passes_opts po = {.log_stream = log};
    assert_int_equal(hone_passes_run(&ctx, g, &p, &po, NULL), HONE_OK);
    hone_pipeline_free(&p);
    if (log)
        fclose(log);
    int fused = 0;
    for (int i = 0; i < g->n_nodes; i++)
        fused += !strcmp(g->nodes[i]->op_type, "FusedConv");
    assert_int_equal(fused, 1);
    hone_tensor *in = random_f32(4, xd);
    double e = jit_vs_interp(g, (const hone_tensor *[]){in});
    if (!(e <= 1e-6)) /* the interpreter sums the taps in another order: rounding only */
        fail_msg("depthwise + Clip: relative error %g", e);
    hone_tensor_free(in);
    hone_graph_free(g);
}

static void test_jit_elementwise(void **state)
{
    hone_graph *g = ew_net();
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    int64_t xd[] = {2, 3, 4}, yd[] = {3, 1}, id[] = {2, 1, 4};
    hone_tensor *x = random_f32(3, xd), *y = random_f32(2, yd), *i = random_i32(3, id);
    assert_true(jit_vs_interp(g, (const hone_tensor *[]){x, y, i}) <= 1e-6);
    hone_tensor_free(x);
    hone_tensor_free(y);
    hone_tensor_free(i);
    hone_graph_free(g);
}

/* The shared classifier (batch 3) through the JIT within 1e-4 of the interpreter. */
static void test_jit_classifier(void **state)
{
    hone_graph *g = load_classifier();
    if (!g)
        skip();
    int64_t xd[] = {3, 1, 28, 28};
    hone_tensor *x = random_f32(4, xd);
    double e = jit_vs_interp(g, (const hone_tensor *[]){x});
    assert_true(e <= 1e-4);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* A constant int64 vector. */
static hone_value *ints_const(hone_graph *g, const char *name, int n, const int64_t *v)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    int64_t d = n;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &d, &t), HONE_OK);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    return add_const(g, name, t);
}

/* Layout ops (tensor family) against the interpreter: x[2,4,6,5] through
 * Transpose, Slice with steps, Concat, Pad reflect, Tile, DepthToSpace CRD,
 * Expand, Split, and Resize nearest / linear / cubic with constant scales. */
static void test_jit_layout_ops(void **state)
{
    static const char *const ops[] = {"Transpose", "Slice", "Concat", "Pad", "Tile", "DepthToSpace",
                                      "Expand", "Split", "Resize"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (hone_op_lookup("", ops[i]) == HONE_OP_UNKNOWN)
            skip();
    hone_graph *g = new_graph();
    int64_t xd[] = {2, 4, 6, 5};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 4, xd);
    hone_node *tr = add_node(g, "Transpose", 1, &x, 1);
    hone_node_set_attr_ints(g, tr, "perm", (int64_t[]){0, 3, 1, 2}, 4);
    hone_node *sl = add_node(g, "Slice", 5, (hone_value *[]){x, ints_const(g, "st", 2, (int64_t[]){5, -1}),
        ints_const(g, "en", 2, (int64_t[]){0, -100}), ints_const(g, "ax", 2, (int64_t[]){2, 3}),
        ints_const(g, "sp", 2, (int64_t[]){-2, -2})}, 1);
    hone_node *cc = add_node(g, "Concat", 2, (hone_value *[]){x, x}, 1);
    hone_node_set_attr_int(g, cc, "axis", -2);
    hone_node *pd = add_node(g, "Pad", 2, (hone_value *[]){x, ints_const(g, "pads", 8, (int64_t[]){0, 1, 2, 3, 0, 2, 1, 0})}, 1);
    hone_node_set_attr_string(g, pd, "mode", "reflect");
    hone_node *tl = add_node(g, "Tile", 2, (hone_value *[]){x, ints_const(g, "rep", 4, (int64_t[]){1, 2, 1, 3})}, 1);
    hone_node *ds = add_node(g, "DepthToSpace", 1, &x, 1);
    hone_node_set_attr_int(g, ds, "blocksize", 2);
    hone_node_set_attr_string(g, ds, "mode", "CRD");
    hone_node *ex = add_node(g, "Expand", 2, (hone_value *[]){x, ints_const(g, "shp", 5, (int64_t[]){3, 1, 1, 1, 1})}, 1);
    hone_node *sp = add_node(g, "Split", 2, (hone_value *[]){x, ints_const(g, "parts", 2, (int64_t[]){2, 4})}, 2);
    hone_node_set_attr_int(g, sp, "axis", 2);
    hone_node *outs[16] = {tr, sl, cc, pd, tl, ds, ex, sp};
    int n = 8;
    static const char *const modes[][2] = {{"nearest", "asymmetric"}, {"linear", "half_pixel"},
                                           {"cubic", "align_corners"}, {"linear", "tf_crop_and_resize"}};
    hone_tensor *sc = tu_tensor_f32(1, (int64_t[]){4}, (float[]){1, 1, 1.7f, 0.6f});
    hone_value *scv = add_const(g, "scales", sc);
    hone_value *roi = add_const(g, "roi", tu_tensor_f32(1, (int64_t[]){8}, (float[]){0, 0, 0.1f, 0.2f, 1, 1, 0.8f, 1.3f}));
    for (int m = 0; m < 4; m++) {
        hone_node *rs = add_node(g, "Resize", 3, (hone_value *[]){x, roi, scv}, 1);
        hone_node_set_attr_string(g, rs, "mode", modes[m][0]);
        hone_node_set_attr_string(g, rs, "coordinate_transformation_mode", modes[m][1]);
        hone_node_set_attr_int(g, rs, "exclude_outside", m == 2);
        outs[n++] = rs;
    }
    for (int i = 0; i < n; i++)
        hone_graph_add_output(g, outs[i]->out[0]);
    hone_graph_add_output(g, sp->out[1]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    if (hone_graph_infer(&ctx, g))
        fail_msg("%s", ctx.msg);
    hone_tensor *xt = random_f32(4, xd);
    assert_true(jit_vs_interp(g, (const hone_tensor *[]){xt}) <= 1e-6);
    hone_tensor_free(xt);
    hone_graph_free(g);
}

/* ===================== errors ===================== */

/* Two ops the backend does not lower (data-dependent output shapes, here
 * declared): one error naming both. */
static void test_unsupported_listed(void **state)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {4, 5};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 2, xd);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_node *u = add_node(g, "Unique", 1, &x, 1);
    hone_node *nz = add_node(g, "NonZero", 1, &x, 1);
    hone_node *r = add_node(g, "Relu", 1, u->out, 1);
    hone_graph_add_output(g, r->out[0]);
    hone_graph_add_output(g, nz->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    u->out[0]->rank = r->out[0]->rank = 1;
    u->out[0]->dims[0] = r->out[0]->dims[0] = 3;
    nz->out[0]->dims[1] = 7;
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    hone_jit_t *j;
    assert_int_equal(hone_jit_compile(&ctx, g, &o, &j, NULL), HONE_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.msg, "2 nodes cannot be compiled"));
    assert_non_null(strstr(ctx.msg, u->name));
    assert_non_null(strstr(ctx.msg, "(Unique)"));
    assert_non_null(strstr(ctx.msg, nz->name));
    assert_non_null(strstr(ctx.msg, "(NonZero): its output shape depends on the input values"));
    hone_graph_free(g);
}

/* A fresh temporary folder (static buffer per call site via out). */
static void temp_dir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/hone-test-backend-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Symbolic dims need --input-shape; with it the header states the fixed shape. */
static void test_symbolic_needs_shape(void **state)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {HONE_DIM_SYM(hone_graph_sym(g, "N")), 3};
    hone_value *x = add_input(g, "x", HONE_DT_FLOAT, 2, xd);
    hone_node *r = add_node_named(g, "Relu", 1, &x, 1, "y");
    hone_graph_add_output(g, r->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    char dir[64], path[128];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sym.h", dir);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    o.name = "sym";
    assert_int_equal(hone_backend_compile(&ctx, g, &o, HONE_EMIT_HEADER, path, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "--input-shape"));
    assert_non_null(strstr(ctx.msg, "'x'"));
    o.n_shapes = 1;
    o.shapes[0] = (hone_backend_shape){"x", 2, {5, 3}};
    assert_int_equal(hone_backend_compile(&ctx, g, &o, HONE_EMIT_HEADER, path, NULL), HONE_OK);
    size_t len;
    char *h = read_all(path, &len);
    assert_non_null(strstr(h, "#define SYM_X_SHAPE {5, 3}"));
    assert_non_null(strstr(h, "#define SYM_Y_NUMEL 15"));
    assert_non_null(strstr(h, "const float *x;"));
    assert_non_null(strstr(h, "int sym_run(const sym_inputs *in, sym_outputs *out, void *workspace);"));
    free(h);
    unlink(path);
    rmdir(dir);
    o.name = "9lives";
    assert_int_equal(hone_backend_compile(&ctx, g, &o, HONE_EMIT_HEADER, path, NULL), HONE_ERR_ARG);
    hone_graph_free(g);
}

/* Gather reads indices at run time: an out-of-range one is a status, not a read. */
static void test_gather_out_of_range(void **state)
{
    if (hone_op_lookup("", "Gather") == HONE_OP_UNKNOWN)
        skip();
    hone_graph *g = new_graph();
    int64_t dd[] = {5, 2}, id[] = {3};
    hone_value *d = add_input(g, "d", HONE_DT_FLOAT, 2, dd), *ix = add_input(g, "ix", HONE_DT_INT64, 1, id);
    hone_node *ga = add_node(g, "Gather", 2, (hone_value *[]){d, ix}, 1);
    hone_graph_add_output(g, ga->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_tensor *dt = random_f32(2, dd), *it;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, id, &it), HONE_OK);
    int64_t *iv = it->data;
    iv[0] = 4, iv[1] = -1, iv[2] = 0;
    const hone_tensor *ins[] = {dt, it};
    assert_true(jit_vs_interp(g, ins) == 0);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    hone_jit_t *j;
    hone_tensor *out[1];
    assert_int_equal(hone_jit_compile(&ctx, g, &o, &j, NULL), HONE_OK);
    iv[1] = 5;
    assert_int_equal(hone_jit_run(&ctx, j, ins, out), HONE_ERR_INVALID);
    assert_null(out[0]);
    iv[1] = -6;
    assert_int_equal(hone_jit_run(&ctx, j, ins, out), HONE_ERR_INVALID);
    hone_jit_free(j);
    hone_tensor_free(dt);
    hone_tensor_free(it);
    hone_graph_free(g);
}

/* ===================== files: emit kinds and a C program ===================== */

static void compile_to(hone_graph *g, const char *name, const char *input, const int64_t *dims,
                       hone_emit_kind kind, const char *path)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_backend_opts o;
    hone_backend_opts_init(&o);
    o.name = name;
    o.n_shapes = 1;
    o.shapes[0].rank = 4;
    snprintf(o.shapes[0].name, sizeof o.shapes[0].name, "%s", input);
    memcpy(o.shapes[0].dims, dims, 4 * sizeof(int64_t));
    if (hone_backend_compile(&ctx, g, &o, kind, path, NULL))
        fail_msg("compile %s: %s", path, ctx.msg);
}

static void test_emit_kinds(void **state)
{
    static const struct { hone_emit_kind kind; const char *file, *magic; } kinds[] = {
        {HONE_EMIT_OBJ, "net.o", "\177ELF"}, {HONE_EMIT_ASM, "net.s", "net_run_v:"},
        {HONE_EMIT_LLVM_IR, "net.ll", "@net_run_v(ptr"}, {HONE_EMIT_BC, "net.bc", "BC"},
        {HONE_EMIT_HEADER, "net.h", "#define NET_WORKSPACE_SIZE"},
    };
    hone_graph *g = conv_net();
    char dir[64], path[128];
    temp_dir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kinds[i].file);
        compile_to(g, "net", "x", (int64_t[]){2, 3, 8, 8}, kinds[i].kind, path);
        size_t len;
        char *text = read_all(path, &len);
        if (i == 0 || i == 3)
            assert_memory_equal(text, kinds[i].magic, strlen(kinds[i].magic));
        else
            assert_non_null(strstr(text, kinds[i].magic));
        free(text);
        unlink(path);
    }
    rmdir(dir);
    hone_graph_free(g);
}

/* The C program: runs net (and clf when present) on raw float inputs and
 * writes the raw outputs; checks the info descriptor against the header. */
static const char *program_text(bool clf)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
        "#include <stdio.h>\n#include <stdlib.h>\n#include \"hone/model.h\"\n#include \"net.h\"\n"
        "%s\n"
        "static void io(const char *p, void *b, size_t n, int w)\n"
        "{ FILE *f = fopen(p, w ? \"wb\" : \"rb\"); if (!f || (w ? fwrite(b, 1, n, f) : fread(b, 1, n, f)) != n) exit(3); fclose(f); }\n"
        "int main(int argc, char **argv)\n{\n"
        "    static float x[NET_X_NUMEL], probs[NET_PROBS_NUMEL], feat[NET_FEATURES_NUMEL], dw[NET_DW_NUMEL];\n"
        "    const int64_t shape[] = NET_X_SHAPE;\n"
        "    const struct hone_model_info *mi = net_info();\n"
        "    if (mi->workspace_size != NET_WORKSPACE_SIZE || mi->n_inputs != 1 || mi->inputs[0].dims[1] != shape[1]) return 2;\n"
        "    void *ws = aligned_alloc(64, (NET_WORKSPACE_SIZE + 63) / 64 * 64 + 64);\n"
        "    io(argv[1], x, sizeof x, 0);\n"
        "    net_inputs in = {x};\n    net_outputs out = {probs, feat, dw};\n"
        "    if (net_run(&in, &out, ws)) return 1;\n"
        "    io(argv[2], probs, sizeof probs, 1);\n    io(argv[3], feat, sizeof feat, 1);\n"
        "    io(argv[6], dw, sizeof dw, 1);\n"
        "%s"
        "    free(ws);\n    return 0;\n}\n",
        clf ? "#include \"clf.h\"" : "",
        clf ? "    static float img[CLF_INPUT_NUMEL], logits[CLF_LOGITS_NUMEL];\n"
              "    void *ws2 = aligned_alloc(64, (CLF_WORKSPACE_SIZE + 63) / 64 * 64 + 64);\n"
              "    io(argv[4], img, sizeof img, 0);\n"
              "    clf_inputs ci = {img};\n    clf_outputs co = {logits};\n"
              "    if (clf_run(&ci, &co, ws2)) return 1;\n"
              "    io(argv[5], logits, sizeof logits, 1);\n    free(ws2);\n" : "");
    return buf;
}

static void write_raw(const char *path, const hone_tensor *t)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t->data, hone_tensor_nbytes(t), 1, f), 1);
    fclose(f);
}

/* Raw floats in path against interpreter output t. */
static double raw_err(const char *path, const hone_tensor *t)
{
    size_t len;
    char *buf = read_all(path, &len);
    assert_int_equal(len, hone_tensor_nbytes(t));
    hone_tensor got = *t;
    got.data = buf;
    double e = rel_err(t, &got);
    free(buf);
    return e;
}

/* A sanitizer build's runtime archive needs the sanitizers in the program too. */
#ifdef __SANITIZE_ADDRESS__
#define PROGRAM_FLAGS "-fsanitize=address,undefined"
#else
#define PROGRAM_FLAGS ""
#endif

/* Builds the program against the given model files (shared libraries or objects) and runs it. */
static void build_and_run(const char *dir, const char *objs, bool clf)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/main.c", dir);
    FILE *f = fopen(cmd, "w");
    assert_non_null(f);
    fputs(program_text(clf), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Werror %s -I%s -I%s %s/main.c %s -Wl,-rpath,%s -o %s/prog",
             PROGRAM_FLAGS, dir, tu_src("include"), dir, objs, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/prog %s/x.raw %s/probs.raw %s/feat.raw %s/img.raw %s/logits.raw %s/dw.raw",
             dir, dir, dir, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
}

/* Interpreter outputs of g on input x. */
static void interp(hone_graph *g, const hone_tensor *x, hone_tensor **out)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_interp_run(&ctx, g, (const hone_tensor *[]){x}, out, NULL), HONE_OK);
}

/* Both models as shared libraries, then as objects linked statically with the
 * runtime: the program's outputs match the interpreter. */
static void test_aot_program(void **state)
{
    hone_graph *net = conv_net(), *clf = load_classifier();
    char dir[64], path[256], objs[1024];
    temp_dir(dir, sizeof dir);
    int64_t xd[] = {2, 3, 8, 8}, cd[] = {2, 1, 28, 28};
    hone_tensor *x = random_f32(4, xd), *img = random_f32(4, cd), *want[3], *cwant[1] = {NULL};
    snprintf(path, sizeof path, "%s/x.raw", dir);
    write_raw(path, x);
    snprintf(path, sizeof path, "%s/img.raw", dir);
    write_raw(path, img);
    interp(net, x, want);
    if (clf)
        interp(clf, img, cwant);
    for (int pass = 0; pass < 2; pass++) {
        const char *ext = pass ? "o" : "so";
        hone_emit_kind kind = pass ? HONE_EMIT_OBJ : HONE_EMIT_LIB;
        snprintf(path, sizeof path, "%s/net.%s", dir, ext);
        compile_to(net, "net", "x", xd, kind, path);
        snprintf(objs, sizeof objs, "%s", path);
        if (clf) {
            snprintf(path, sizeof path, "%s/clf.%s", dir, ext);
            compile_to(clf, "clf", "input", cd, kind, path);
            snprintf(objs + strlen(objs), sizeof objs - strlen(objs), " %s", path);
        }
        if (pass) {
            compile_to(net, "net", "x", xd, HONE_EMIT_HEADER, (snprintf(path, sizeof path, "%s/net.h", dir), path));
            if (clf)
                compile_to(clf, "clf", "input", cd, HONE_EMIT_HEADER, (snprintf(path, sizeof path, "%s/clf.h", dir), path));
            snprintf(objs + strlen(objs), sizeof objs - strlen(objs), " %s -lopenblas -lm",
                     hone_backend_runtime_archive());
        }
        build_and_run(dir, objs, clf != NULL);
        snprintf(path, sizeof path, "%s/probs.raw", dir);
        assert_true(raw_err(path, want[0]) <= 1e-5);
        snprintf(path, sizeof path, "%s/feat.raw", dir);
        assert_true(raw_err(path, want[1]) <= 1e-5);
        snprintf(path, sizeof path, "%s/dw.raw", dir);
        assert_true(raw_err(path, want[2]) <= 1e-5);
        snprintf(path, sizeof path, "%s/logits.raw", dir);
        if (clf)
            assert_true(raw_err(path, cwant[0]) <= 1e-4);
    }
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
    hone_tensor_free(want[0]);
    hone_tensor_free(want[1]);
    hone_tensor_free(want[2]);
    hone_tensor_free(cwant[0]);
    hone_tensor_free(x);
    hone_tensor_free(img);
    hone_graph_free(net);
    hone_graph_free(clf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_chain),           cmocka_unit_test(test_plan_random),
        cmocka_unit_test(test_plan_models),          cmocka_unit_test(test_jit_conv_net),
        cmocka_unit_test(test_jit_winograd),
        cmocka_unit_test(test_concat_in_place),
        cmocka_unit_test(test_jit_depthwise_clip),
        cmocka_unit_test(test_jit_elementwise),      cmocka_unit_test(test_jit_classifier),
        cmocka_unit_test(test_jit_layout_ops),
        cmocka_unit_test(test_unsupported_listed),   cmocka_unit_test(test_symbolic_needs_shape),
        cmocka_unit_test(test_gather_out_of_range),  cmocka_unit_test(test_emit_kinds),
        cmocka_unit_test(test_aot_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
