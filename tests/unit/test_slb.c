/*
 * Low-bit quantization (passes/slb.c, lowbit.c, lowbit_passes.c, pack.c and
 * the ops of frontend/ops/lowbit.c): slb's soft-weight chain differentiated
 * by autodiff against the exact rule dW/dA_i = T P_i (v_i - W); hone.FakeQuant
 * against the QuantizeLinear/DequantizeLinear pair and its straight-through
 * gradient; the level grids; quantize-rtn on a small conv net (codes on the
 * grid, ordered like the weights, the function kept at 8 bits); packed and
 * unpacked forms bit-identical; the standard-ONNX form through an ONNX byte
 * round trip; slb and quantize-ste train and leave discrete weights; the
 * runtime's integer convolution (VNNI or portable) against the
 * interpreter's ConvInteger, and its fused epilogue (hone_rt_qconv) against
 * the unfused float operations; qdq-to-integer keeps the model's function, its
 * fused hone.QConv form bit-identical to the unfused one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone_rt.h"
#include "interp.h"
#include "lowbit.h"
#include "onnx.h"
#include "testutil.h"
#include "train.h"

static hone_node *node(hone_graph *g, const char *op, const char *dom, int n_in,
                       hone_value *const *in, const char *out)
{
    hone_node *n = hone_graph_add_node(g, op, dom, out, n_in, 1);
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, out);
    return n;
}

#define NODE(g, op, out, ...) \
    node(g, op, "", sizeof((hone_value *[]){__VA_ARGS__}) / sizeof(hone_value *), \
         (hone_value *[]){__VA_ARGS__}, out)

static hone_graph *new_graph(void)
{
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, 2 * sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->opsets[1] = (hone_opset){"hone", 1};
    g->n_opsets = 2;
    return g;
}

static hone_value *input(hone_graph *g, const char *name, int rank, const int64_t *dims)
{
    hone_value *x = hone_graph_new_value(g, name);
    x->dtype = HONE_DT_FLOAT;
    x->rank = rank;
    memcpy(x->dims, dims, sizeof *dims * (size_t)rank);
    hone_graph_add_input(g, x);
    return x;
}

/* ---------- slb's soft weight: exact gradient ---------- */

/* W[r] = sum_i softmax(T*A[r])_i v_i; loss = sum_r c_r W_r; checks autodiff's
 * dloss/dA against c_r * T * P_ri * (v_i - W_r). */
static void test_soft_weight_gradient(void **state)
{
    (void)state;
    enum { R = 5, K = 4 };
    const float T = 3.5f;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = new_graph();
    hone_value *a = input(g, "A", 2, (int64_t[]){R, K});
    int64_t one = 1, k = K, r = R;
    hone_tensor *tt = tu_tensor_f32(1, &one, (float[]){T});
    lb_grid gr = lb_grid_of(2);
    float v[K], c[R];
    for (int i = 0; i < K; i++)
        v[i] = (float)lb_level(&gr, i);
    for (int i = 0; i < R; i++)
        c[i] = (float)tu_urand();
    hone_node *n = NODE(g, "Mul", "ta", a, tu_const(g, "T", tt));
    n = NODE(g, "Softmax", "p", n->out[0]);
    hone_node_set_attr_int(g, n, "axis", -1);
    n = NODE(g, "Mul", "pv", n->out[0], tu_const(g, "V", tu_tensor_f32(1, &k, v)));
    int64_t last = -1;
    hone_tensor *ax;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &one, &ax), HONE_OK);
    memcpy(ax->data, &last, sizeof last);
    n = NODE(g, "ReduceSum", "w", n->out[0], tu_const(g, "axes", ax));
    hone_node_set_attr_int(g, n, "keepdims", 0);
    hone_value *w = n->out[0];
    n = NODE(g, "Mul", "cw", w, tu_const(g, "c", tu_tensor_f32(1, &r, c)));
    n = NODE(g, "ReduceSum", "loss", n->out[0]);
    hone_node_set_attr_int(g, n, "keepdims", 0);
    hone_graph_add_output(g, n->out[0]);
    hone_graph_add_output(g, w);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_value *grad = NULL;
    assert_int_equal(hone_autodiff(&ctx, g, n->out[0], 1, &a, &grad), HONE_OK);
    assert_non_null(grad);
    hone_graph_add_output(g, grad);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_tensor *av = tu_rand_f32(2, (int64_t[]){R, K}, 1.0), *out[3] = {0};
    const hone_tensor *ins[1] = {av};
    assert_int_equal(hone_interp_run(&ctx, g, ins, out, NULL), HONE_OK);
    const float *pa = av->data, *pw = out[1]->data, *pg = out[2]->data;
    for (int i = 0; i < R; i++) {
        double mx = -INFINITY, z = 0, p[K];
        for (int j = 0; j < K; j++)
            mx = fmax(mx, T * pa[i * K + j]);
        for (int j = 0; j < K; j++)
            z += p[j] = exp(T * pa[i * K + j] - mx);
        for (int j = 0; j < K; j++) {
            double want = c[i] * T * (p[j] / z) * (v[j] - pw[i]);
            assert_true(fabs(pg[i * K + j] - want) < 1e-5 + 1e-4 * fabs(want));
        }
    }
    for (int i = 0; i < 3; i++)
        hone_tensor_free(out[i]);
    hone_tensor_free(av);
    hone_graph_free(g);
}

/* ---------- hone.FakeQuant ---------- */

static hone_tensor *run1(hone_ctx *ctx, const hone_node *n, const hone_tensor **in)
{
    hone_tensor *out[1] = {0};
    assert_int_equal(hone_node_run(ctx, n, in, out, NULL), HONE_OK);
    return out[0];
}

static hone_tensor *scalar(hone_dtype dt, double x)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, dt, 0, NULL, &t), HONE_OK);
    hone_tensor_set_f64(t, 0, x);
    return t;
}

/* FakeQuant equals QuantizeLinear -> DequantizeLinear (uint8), saturation
 * and ties included, and passes the gradient straight through. */
static void test_fake_quant(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = new_graph();
    int64_t d = 64;
    hone_value *x = input(g, "x", 1, &d);
    hone_tensor *s = scalar(HONE_DT_FLOAT, 0.05), *zf = scalar(HONE_DT_FLOAT, 20);
    hone_tensor *zu = scalar(HONE_DT_UINT8, 20);
    hone_node *fq = node(g, "FakeQuant", "hone", 3,
                         (hone_value *[]){x, tu_const(g, "s", s), tu_const(g, "z", zf)}, "fq");
    hone_node *q = NODE(g, "QuantizeLinear", "q", x, tu_const(g, "s2", hone_tensor_clone(s)),
                        tu_const(g, "zu", zu));
    hone_node *dq = NODE(g, "DequantizeLinear", "dq", q->out[0], q->in[1], q->in[2]);
    hone_tensor *xv = tu_rand_f32(1, &d, 12.0);
    ((float *)xv->data)[0] = 0.025f; /* a tie: rounds to even */
    ((float *)xv->data)[1] = -3.0f;  /* below the range */
    const hone_tensor *in3[3] = {xv, s, zf}, *inq[3] = {xv, s, zu};
    hone_tensor *a = run1(&ctx, fq, in3), *qv = run1(&ctx, q, inq);
    const hone_tensor *ind[3] = {qv, s, zu};
    hone_tensor *b = run1(&ctx, dq, ind);
    assert_int_equal(memcmp(a->data, b->data, sizeof(float) * (size_t)d), 0);
    assert_true(((float *)a->data)[1] == -1.0f);
    /* straight-through: d sum(c * FakeQuant(x)) / dx = c */
    hone_node *m = NODE(g, "Mul", "m", fq->out[0], tu_const(g, "c", tu_rand_f32(1, &d, 1.0)));
    hone_node *l = NODE(g, "ReduceSum", "l", m->out[0]);
    hone_node_set_attr_int(g, l, "keepdims", 0);
    hone_graph_add_output(g, l->out[0]);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_value *grad = NULL;
    assert_int_equal(hone_autodiff(&ctx, g, l->out[0], 1, &x, &grad), HONE_OK);
    hone_graph_add_output(g, grad);
    hone_graph_update_uses(g);
    hone_graph_remove_dead(g);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_tensor *out[2] = {0};
    const hone_tensor *ins[1] = {xv};
    assert_int_equal(hone_interp_run(&ctx, g, ins, out, NULL), HONE_OK);
    assert_int_equal(memcmp(out[1]->data, m->in[1]->data->data, sizeof(float) * (size_t)d), 0);
    for (int i = 0; i < 2; i++)
        hone_tensor_free(out[i]);
    hone_tensor_free(a);
    hone_tensor_free(b);
    hone_tensor_free(qv);
    hone_tensor_free(xv);
    hone_graph_free(g);
}

/* ---------- grids ---------- */

static void test_grids(void **state)
{
    (void)state;
    lb_grid g1 = lb_grid_of(1), g2 = lb_grid_of(2), g8 = lb_grid_of(8);
    assert_int_equal(g1.k, 2);
    assert_true(lb_level(&g1, 0) == -1 && lb_level(&g1, 1) == 1);
    assert_int_equal(g2.k, 4);
    assert_true(fabs(lb_level(&g2, 1) + 1.0 / 3) < 1e-12);
    assert_int_equal(lb_nearest(&g2, 0.2), 2);   /* levels -1, -1/3, 1/3, 1 */
    assert_int_equal(lb_nearest(&g2, -0.7), 0);
    assert_int_equal(lb_nearest(&g2, 5.0), 3);
    assert_int_equal(g8.k, 255);
    assert_int_equal(lb_nearest(&g8, 0.0), 127);
    assert_true(fabs(lb_level(&g8, 254) - 1) < 1e-12);
    for (double u = -1.2; u <= 1.2; u += 0.01) { /* nearest really is nearest */
        int i = lb_nearest(&g2, u);
        for (int j = 0; j < g2.k; j++)
            assert_true(fabs(u - lb_level(&g2, i)) <= fabs(u - lb_level(&g2, j)) + 1e-12);
    }
}

/* ---------- passes on a small conv net ---------- */

/* x[N,2,8,8] -> Conv(4,3x3)+Relu -> Conv(6,3x3)+Relu -> Conv(6,1x1) -> GAP ->
 * Flatten -> Gemm(3) -> logits. */
static hone_graph *conv_net(void)
{
    hone_graph *g = new_graph();
    int64_t xd[4] = {HONE_DIM_SYM(hone_graph_sym(g, "N")), 2, 8, 8};
    hone_value *x = input(g, "x", 4, xd);
    const int64_t shapes[3][4] = {{4, 2, 3, 3}, {6, 4, 3, 3}, {6, 6, 1, 1}};
    hone_value *h = x;
    for (int i = 0; i < 3; i++) {
        char wn[16], bn[16], cn[16], rn[16];
        snprintf(wn, sizeof wn, "w%d", i);
        snprintf(bn, sizeof bn, "b%d", i);
        snprintf(cn, sizeof cn, "conv%d", i);
        snprintf(rn, sizeof rn, "relu%d", i);
        hone_node *c = NODE(g, "Conv", cn, h, tu_const(g, wn, tu_rand_f32(4, shapes[i], 0.6)),
                            tu_const(g, bn, tu_rand_f32(1, shapes[i], 0.1)));
        int64_t p = shapes[i][2] / 2;
        hone_node_set_attr_ints(g, c, "pads", (int64_t[]){p, p, p, p}, 4);
        h = i < 2 ? NODE(g, "Relu", rn, c->out[0])->out[0] : c->out[0];
    }
    h = NODE(g, "GlobalAveragePool", "gap", h)->out[0];
    h = NODE(g, "Flatten", "flat", h)->out[0];
    int64_t fd[2] = {3, 6}, k = 3;
    hone_node *fc = NODE(g, "Gemm", "logits", h, tu_const(g, "fc", tu_rand_f32(2, fd, 0.8)),
                         tu_const(g, "fc_b", tu_rand_f32(1, &k, 0.1)));
    hone_node_set_attr_int(g, fc, "transB", 1);
    hone_graph_add_output(g, fc->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

static hone_tensor *samples(int64_t n)
{
    return tu_rand_f32(4, (int64_t[]){n, 2, 8, 8}, 1.0);
}

/* Runs pipeline text over g with x as label-free data (val_split 16 samples). */
static void run_passes(hone_graph *g, const char *text, const hone_tensor *x,
                       hone_pass_stats *stats)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, text, &p), HONE_OK);
    hone_pass_data data = {x, NULL, NULL, 16, "test"};
    FILE *devnull = fopen("/dev/null", "w");
    hone_passes_opts o = {0};
    o.data = &data;
    o.log_stream = devnull;
    hone_status st = hone_passes_run(&ctx, g, &p, &o, stats);
    if (st)
        fprintf(stderr, "%s\n", ctx.msg);
    assert_int_equal(st, HONE_OK);
    if (stats)
        hone_pass_stats_release(stats, p.n);
    hone_pipeline_free(&p);
    fclose(devnull);
}

static hone_tensor *forward(hone_graph *g, const hone_tensor *x)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *out[1] = {0};
    const hone_tensor *in[1] = {x};
    assert_int_equal(hone_interp_run(&ctx, g, in, out, NULL), HONE_OK);
    return out[0];
}

/* The DequantizeLinear feeding conv node `name`, or NULL. */
static const hone_node *weight_dq(const hone_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->name, name)) {
            const hone_node *p = g->nodes[i]->in[1]->producer;
            return p && !strcmp(p->op_type, "DequantizeLinear") ? p : NULL;
        }
    return NULL;
}

/* quantize-rtn at 2 bits: every conv reads int8 codes through a per-channel
 * DequantizeLinear; codes are odd within +-3 and, channel by channel, ordered
 * like the pretrained weights (round to nearest is monotone; BN folding may
 * flip a channel's sign). */
static void test_rtn_codes(void **state)
{
    (void)state;
    hone_graph *g = conv_net(), *orig = hone_graph_clone(g);
    hone_tensor *x = samples(96);
    run_passes(g, "quantize-rtn{bits=2,keep-first=false,samples=80}", x, NULL);
    for (int c = 0; c < 3; c++) {
        char cn[16], wn[16];
        snprintf(cn, sizeof cn, "conv%d", c);
        snprintf(wn, sizeof wn, "w%d", c);
        const hone_node *dq = weight_dq(g, cn);
        assert_non_null(dq);
        const hone_tensor *q = dq->in[0]->data, *w = hone_graph_find(orig, wn)->data;
        assert_int_equal(q->dtype, HONE_DT_INT8);
        assert_int_equal(dq->in[1]->data->numel, w->dims[0]);
        int64_t per = w->numel / w->dims[0];
        for (int64_t i = 0; i < q->numel; i++) {
            int v = ((const int8_t *)q->data)[i];
            assert_true((v & 1) && v >= -3 && v <= 3);
        }
        for (int64_t ch = 0; ch < w->dims[0]; ch++) {
            const int8_t *qc = (const int8_t *)q->data + ch * per;
            const float *wc = (const float *)w->data + ch * per;
            int sign = 0;
            for (int64_t i = 0; i < per; i++)
                for (int64_t j = 0; j < per; j++)
                    if (wc[i] < wc[j] && qc[i] != qc[j]) {
                        int sg = qc[i] < qc[j] ? 1 : -1;
                        assert_true(!sign || sg == sign);
                        sign = sg;
                    }
        }
    }
    hone_tensor_free(x);
    hone_graph_free(g);
    hone_graph_free(orig);
}

/* At 8 bits (255 levels) round to nearest with BN re-estimated on the same
 * data keeps the function: logits within 3% of their range. */
static void test_rtn_8bit_keeps_function(void **state)
{
    (void)state;
    hone_graph *g = conv_net();
    hone_tensor *x = samples(96);
    hone_tensor *before = forward(g, x);
    run_passes(g, "quantize-rtn{bits=8,keep-first=false,samples=80}", x, NULL);
    hone_tensor *after = forward(g, x);
    double range = 0, err = 0;
    for (int64_t i = 0; i < before->numel; i++) {
        range = fmax(range, fabs(((float *)before->data)[i]));
        err = fmax(err, fabs(((float *)before->data)[i] - ((float *)after->data)[i]));
    }
    assert_true(err < 0.03 * range);
    hone_tensor_free(before);
    hone_tensor_free(after);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static int count_op(const hone_graph *g, const char *op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* DequantizeLinear nodes whose input has type dt. */
static int count_dq(const hone_graph *g, hone_dtype dt)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i]->op_type, "DequantizeLinear") && g->nodes[i]->in[0]->dtype == dt;
    return n;
}

/* pack-lowbit: same logits bit for bit, b-bit storage, fewer bytes; the
 * standard form survives an ONNX byte round trip with the same logits. */
static void test_pack_and_roundtrip(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = conv_net();
    hone_tensor *x = samples(96);
    run_passes(g, "quantize-rtn{bits=2,acts=8,keep-first=false,samples=80}", x, NULL);
    assert_int_equal(count_op(g, "QuantizeLinear"), 3);
    hone_tensor *ref = forward(g, x);
    uint8_t *buf = NULL, *pbuf = NULL;
    size_t len = 0, plen = 0;
    assert_int_equal(hone_onnx_serialize(&ctx, g, &buf, &len), HONE_OK);
    hone_graph *back = NULL;
    assert_int_equal(hone_onnx_load_buffer(&ctx, buf, len, "roundtrip", &back), HONE_OK);
    hone_tensor *rt = forward(back, x);
    assert_int_equal(memcmp(ref->data, rt->data, hone_tensor_nbytes(ref)), 0);
    run_passes(g, "pack-lowbit", x, NULL);
    assert_int_equal(count_op(g, "DequantizePacked"), 3);
    /* the activations' (uint8) and the biases' (int32 codes at x_scale * w_scale) */
    assert_int_equal(count_dq(g, HONE_DT_UINT8), 3);
    assert_int_equal(count_dq(g, HONE_DT_INT32), 3);
    hone_tensor *packed = forward(g, x);
    assert_int_equal(memcmp(ref->data, packed->data, hone_tensor_nbytes(ref)), 0);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "DequantizePacked"))
            assert_int_equal(hone_attr_int(g->nodes[i], "bits", 0), 2);
    assert_int_equal(hone_onnx_serialize(&ctx, g, &pbuf, &plen), HONE_OK);
    assert_true(plen < len);
    free(buf);
    free(pbuf);
    hone_tensor_free(ref);
    hone_tensor_free(rt);
    hone_tensor_free(packed);
    hone_tensor_free(x);
    hone_graph_free(back);
    hone_graph_free(g);
}

static int64_t counter(const hone_pass_stats *s, const char *what)
{
    for (int i = 0; i < s->n_counters; i++)
        if (!strcmp(s->counters[i].what, what))
            return s->counters[i].n;
    return -1;
}

/* slb and quantize-ste train (a few steps) and leave 1-bit weights: codes
 * +-1 per channel. */
static void test_slb_and_ste_train(void **state)
{
    (void)state;
    const char *pipes[2] = {"slb{bits=1,keep-first=false,steps=6,samples=80,end=0.5}",
                            "quantize-ste{bits=1,keep-first=false,steps=6,samples=80}"};
    for (int k = 0; k < 2; k++) {
        hone_graph *g = conv_net();
        hone_tensor *x = samples(96);
        hone_pass_stats st[1];
        memset(st, 0, sizeof st);
        run_passes(g, pipes[k], x, st);
        assert_int_equal(counter(&st[0], "convs quantized"), 3);
        assert_int_equal(counter(&st[0], "BN re-estimated"), 3);
        const hone_node *dq = weight_dq(g, "conv1");
        assert_non_null(dq);
        const int8_t *q = dq->in[0]->data->data;
        for (int64_t i = 0; i < dq->in[0]->data->numel; i++)
            assert_true(q[i] == 1 || q[i] == -1);
        assert_int_equal(count_op(g, "BatchNormalization"), 0);
        hone_tensor_free(x);
        hone_graph_free(g);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = conv_net();
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, "slb{bits=9}", &p), HONE_OK);
    hone_tensor *x = samples(40);
    hone_pass_data data = {x, NULL, NULL, 8, "test"};
    hone_passes_opts o = {0};
    o.data = &data;
    assert_int_not_equal(hone_passes_run(&ctx, g, &p, &o, NULL), HONE_OK);
    assert_non_null(strstr(ctx.msg, "bits"));
    hone_pipeline_free(&p);
    hone_ctx_clear(&ctx);
    assert_int_equal(hone_pipeline_parse(&ctx, "quantize-rtn", &p), HONE_OK);
    o.data = NULL;
    assert_int_not_equal(hone_passes_run(&ctx, g, &p, &o, NULL), HONE_OK);
    hone_pipeline_free(&p);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ---------- integer convolution ---------- */

static hone_tensor *rand_int(hone_dtype dt, int rank, const int64_t *dims)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, dt, rank, dims, &t), HONE_OK);
    for (int64_t i = 0; i < t->numel; i++)
        hone_tensor_set_i64(t, i, dt == HONE_DT_UINT8 ? (int64_t)((tu_urand() + 1) * 127.9)
                                                       : (int64_t)(tu_urand() * 127.9));
    return t;
}

/* hone_rt_conv_integer (the VNNI kernel for uint8 x int8, the portable loops
 * for uint8 x uint8 with weight zero points) equals the interpreter's
 * ConvInteger, with padding, stride, dilation and groups. */
static void test_conv_integer_kernel(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    for (int variant = 0; variant < 2; variant++) {
        bool s8 = variant == 0;
        int64_t n = 2, c = 6, m = 10, g = 2, xd[4] = {n, c, 9, 11}, wd[4] = {m, c / g, 3, 2};
        hone_graph *gr = new_graph();
        hone_value *in[4] = {input(gr, "x", 4, xd), input(gr, "w", 4, wd), input(gr, "xz", 0, xd),
                             s8 ? NULL : input(gr, "wz", 1, &m)};
        hone_node *nd = node(gr, "ConvInteger", "", s8 ? 3 : 4, in, "y");
        hone_node_set_attr_ints(gr, nd, "pads", (int64_t[]){1, 2, 0, 1}, 4);
        hone_node_set_attr_ints(gr, nd, "strides", (int64_t[]){2, 1}, 2);
        hone_node_set_attr_ints(gr, nd, "dilations", (int64_t[]){1, 2}, 2);
        hone_node_set_attr_int(gr, nd, "group", g);
        hone_tensor *x = rand_int(HONE_DT_UINT8, 4, xd);
        hone_tensor *w = rand_int(s8 ? HONE_DT_INT8 : HONE_DT_UINT8, 4, wd);
        hone_tensor *xz = rand_int(HONE_DT_UINT8, 0, NULL), *wz = rand_int(HONE_DT_UINT8, 1, &m);
        const hone_tensor *ins[4] = {x, w, xz, wz};
        hone_tensor *ref = run1(&ctx, nd, ins);
        /* window: image 9x11, kernel 3x2, stride (2,1), dilation (1,2), pads (1,2)/(0,1) */
        hone_rt_window win = {2, {9, 11}, {ref->dims[2], ref->dims[3]}, {3, 2}, {2, 1}, {1, 2},
                              {1, 2}, {0, 1}};
        void *scratch = malloc(hone_rt_conv_integer_scratch(&win, c, m, g));
        int32_t *y = malloc(sizeof *y * (size_t)ref->numel);
        assert_non_null(scratch);
        assert_non_null(y);
        hone_rt_conv_integer(&win, n, c, m, g, x->data, 0, xz->data, w->data, s8, s8 ? NULL : wz->data,
                             s8 ? 0 : m, y, scratch);
        assert_int_equal(ref->dtype, HONE_DT_INT32);
        assert_int_equal(memcmp(y, ref->data, hone_tensor_nbytes(ref)), 0);
        free(scratch);
        free(y);
        hone_tensor_free(ref);
        hone_tensor_free(x);
        hone_tensor_free(w);
        hone_tensor_free(xz);
        hone_tensor_free(wz);
        hone_graph_free(gr);
    }
}

/* hone_rt_qconv's epilogue (in the VNNI tile's store, or the portable loops) against
 * the same float operations, one at a time, on hone_rt_conv_integer's sums: float and
 * uint8 outputs, with and without bias, residual and Relu; 7x9 outputs (63 positions:
 * full and partial 16-lane groups), two groups of 10 channels (a partial 8-row block). */
static void test_qconv_epilogue(void **state)
{
    (void)state;
    int64_t n = 2, c = 6, m = 20, g = 2, xd[4] = {n, c, 7, 9}, wd[4] = {m, c / g, 3, 3};
    hone_rt_window win = {2, {7, 9}, {7, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
    int64_t P = 63, numel = n * m * P;
    hone_tensor *x = rand_int(HONE_DT_UINT8, 4, xd), *w = rand_int(HONE_DT_INT8, 4, wd);
    uint8_t xz = 131, yz = 7;
    float scale[20], bias[20], ys = 0.75f;
    for (int i = 0; i < m; i++) {
        scale[i] = (float)(tu_urand() + 1.5) * 1e-3f;
        bias[i] = (float)tu_urand() * 3;
    }
    hone_tensor *res = tu_rand_f32(4, (int64_t[]){n, m, 7, 9}, 4.0);
    int32_t *acc = malloc(sizeof *acc * (size_t)numel);
    float *yf = malloc(sizeof *yf * (size_t)numel);
    uint8_t *yq = malloc((size_t)numel);
    void *scratch = malloc(hone_rt_conv_integer_scratch(&win, c, m, g));
    void *packed = malloc(hone_rt_conv_integer_packed_size(&win, c, m, g));
    assert_true(acc && yf && yq && scratch && packed);
    hone_rt_conv_integer(&win, n, c, m, g, x->data, 0, &xz, w->data, 1, NULL, 0, acc, scratch);
    hone_rt_conv_integer_pack(&win, c, m, g, w->data, packed);
    int checked_clamp = 0;
    for (int variant = 0; variant < 8; variant++) {
        bool with_b = variant & 1, with_r = variant & 2, relu = variant & 4;
        for (int quant = 0; quant < 2; quant++) {
            hone_rt_qconv(&win, n, c, m, g, x->data, &xz, packed, scale, with_b ? bias : NULL,
                          with_r ? res->data : NULL, relu, quant ? &ys : NULL, quant ? &yz : NULL,
                          quant ? (void *)yq : (void *)yf, scratch);
            for (int64_t i = 0; i < numel; i++) {
                int64_t o = i / P % m;
                float v = (float)acc[i] * scale[o];
                if (with_b)
                    v = v + bias[o];
                if (with_r)
                    v = v + ((const float *)res->data)[i];
                if (relu)
                    v = v > 0 ? v : 0;
                if (!quant) {
                    assert_true(yf[i] == v);
                    continue;
                }
                double q = nearbyint((double)(float)((double)v / ys)) + yz;
                q = q < 0 ? 0 : q > 255 ? 255 : q;
                checked_clamp += q == 0 || q == 255;
                assert_int_equal(yq[i], (uint8_t)q);
            }
        }
    }
    assert_true(checked_clamp > 0); /* the saturation was exercised */
    free(acc);
    free(yf);
    free(yq);
    free(scratch);
    free(packed);
    hone_tensor_free(x);
    hone_tensor_free(w);
    hone_tensor_free(res);
}

/* qdq-to-integer on a W8A8 model: hone.QConv nodes (taking in each Relu and the
 * QuantizeLinear after it) replace the quantized convs, with the same logits bit
 * for bit as the unfused ConvInteger + Cast + Mul + Add chain (fuse=false), both
 * within float rounding of the Q/DQ form; the int32 biases are read. */
static void test_qdq_to_integer(void **state)
{
    (void)state;
    hone_graph *g = conv_net();
    hone_tensor *x = samples(96);
    run_passes(g, "quantize-rtn{bits=8,acts=8,keep-first=false,samples=80}", x, NULL);
    assert_int_equal(count_dq(g, HONE_DT_INT32), 3);
    hone_tensor *ref = forward(g, x);
    hone_graph *u = hone_graph_clone(g);
    run_passes(u, "qdq-to-integer{fuse=false}", x, NULL);
    assert_int_equal(count_op(u, "ConvInteger"), 3);
    assert_int_equal(count_op(u, "Conv"), 0);
    run_passes(g, "qdq-to-integer", x, NULL);
    assert_int_equal(count_op(g, "QConv"), 3);
    assert_int_equal(count_op(g, "Conv") + count_op(g, "ConvInteger") + count_op(g, "Relu"), 0);
    /* conv0 -> relu0 -> Q and conv1 -> relu1 -> Q end in uint8; conv2 feeds the pool */
    int u8_out = 0;
    for (int i = 0; i < g->n_nodes; i++)
        u8_out += !strcmp(g->nodes[i]->op_type, "QConv") &&
                  g->nodes[i]->out[0]->dtype == HONE_DT_UINT8;
    assert_int_equal(u8_out, 2);
    assert_int_equal(count_op(g, "QuantizeLinear"), 1); /* the input's */
    hone_tensor *got = forward(g, x), *unf = forward(u, x);
    assert_int_equal(memcmp(got->data, unf->data, hone_tensor_nbytes(got)), 0);
    double range = 0, err = 0;
    for (int64_t i = 0; i < ref->numel; i++) {
        range = fmax(range, fabs(((float *)ref->data)[i]));
        err = fmax(err, fabs(((float *)ref->data)[i] - ((float *)got->data)[i]));
    }
    assert_true(err <= 1e-4 * range);
    hone_tensor_free(ref);
    hone_tensor_free(got);
    hone_tensor_free(unf);
    hone_tensor_free(x);
    hone_graph_free(g);
    hone_graph_free(u);
}

int main(void)
{
    tu_seed(12345u);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_weight_gradient),
        cmocka_unit_test(test_fake_quant),
        cmocka_unit_test(test_grids),
        cmocka_unit_test(test_rtn_codes),
        cmocka_unit_test(test_rtn_8bit_keeps_function),
        cmocka_unit_test(test_pack_and_roundtrip),
        cmocka_unit_test(test_slb_and_ste_train),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_conv_integer_kernel),
        cmocka_unit_test(test_qconv_epilogue),
        cmocka_unit_test(test_qdq_to_integer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
