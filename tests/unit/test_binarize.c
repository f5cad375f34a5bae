/*
 * Binary networks: hone.BinaryConv's semantics, its runtime kernels and
 * compiled form, the training ops of the binarize pass, and the pass itself.
 *
 *   - the interpreter's BinaryConv against a direct double-precision loop
 *     (padded taps contribute 0 under sign activations) and against the
 *     portable rewrite (float Conv with +-alpha weights, Where on inputs);
 *   - the XNOR + popcount kernel bit for bit against the interpreter and
 *     the W1 kernel within 1e-5, for channel counts around multiples of 64,
 *     padding, strides and dilations;
 *   - JIT against interpreter on a graph of W1 and W1A1 convs;
 *   - SignSTE's straight-through backward and NoisyLabelLoss's value and
 *     gradient (central finite differences) through hone_autodiff;
 *   - the pass on the bundled fmnist_resnet14 with a few steps: binary convs
 *     replace the chosen convs, no training node survives, and the deployed
 *     model runs compiled exactly as interpreted.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dataset.h"
#include "hone_rt.h"
#include "interp.h"
#include "onnx.h"
#include "passes.h"
#include "testutil.h"
#include "train.h"

static hone_graph *new_graph(void)
{
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, 2 * sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->opsets[1] = (hone_opset){"hone", 1};
    g->n_opsets = 2;
    return g;
}

static hone_node *node(hone_graph *g, const char *dom, const char *op, int n_in,
                       hone_value *const *in, int n_out)
{
    hone_node *n = hone_graph_add_node(g, op, dom, NULL, n_in, n_out);
    n->opset = *dom ? 1 : 13;
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    for (int i = 0; i < n_out; i++)
        n->out[i] = hone_graph_new_value(g, NULL);
    return n;
}

/* ===================== one BinaryConv ===================== */

typedef struct geom {
    int64_t n, c, m, h, w, k, stride, pad, dil;
} geom;

typedef struct bconv {
    geom s;
    hone_tensor *x, *wf, *bits, *alpha, *bias, *thresh;
} bconv;

/* Random operands of geometry s (weights as floats and as packed bits). */
static void bconv_init(bconv *b, geom s)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    int64_t xd[4] = {s.n, s.c, s.h, s.w}, wd[4] = {s.m, s.c, s.k, s.k}, kk = s.c * s.k * s.k;
    b->x = tu_rand_f32(4, xd, 2.0);
    b->wf = tu_rand_f32(4, wd, 1.0);
    int64_t bd[2] = {s.m, (int64_t)hone_rt_binconv_row_bytes(kk)};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_UINT8, 2, bd, &b->bits), HONE_OK);
    hone_rt_binconv_pack_signs(b->wf->data, s.m, kk, b->bits->data);
    b->alpha = tu_rand_f32(1, &s.m, 1.0);
    b->bias = tu_rand_f32(1, &s.m, 1.0);
    b->thresh = tu_rand_f32(1, &s.c, 0.5);
}

static void bconv_free(bconv *b)
{
    hone_tensor_free(b->x);
    hone_tensor_free(b->wf);
    hone_tensor_free(b->bits);
    hone_tensor_free(b->alpha);
    hone_tensor_free(b->bias);
    hone_tensor_free(b->thresh);
}

/* X -> BinaryConv -> Y with b's constants (copied). */
static hone_graph *bconv_graph(const bconv *b, bool binary, bool with_thresh)
{
    hone_graph *g = new_graph();
    hone_value *x = hone_graph_new_value(g, "x");
    x->dtype = HONE_DT_FLOAT;
    x->rank = 4;
    int64_t xd[4] = {b->s.n, b->s.c, b->s.h, b->s.w};
    memcpy(x->dims, xd, sizeof xd);
    hone_graph_add_input(g, x);
    hone_value *in[5] = {x, tu_const(g, "bits", hone_tensor_clone(b->bits)),
                         tu_const(g, "alpha", hone_tensor_clone(b->alpha)),
                         tu_const(g, "bias", hone_tensor_clone(b->bias)),
                         with_thresh ? tu_const(g, "thresh", hone_tensor_clone(b->thresh)) : NULL};
    hone_node *n = node(g, "hone", "BinaryConv", with_thresh ? 5 : 4, in, 1);
    int64_t k[2] = {b->s.k, b->s.k}, st[2] = {b->s.stride, b->s.stride};
    int64_t p[4] = {b->s.pad, b->s.pad, b->s.pad, b->s.pad}, d[2] = {b->s.dil, b->s.dil};
    hone_node_set_attr_ints(g, n, "kernel_shape", k, 2);
    hone_node_set_attr_ints(g, n, "strides", st, 2);
    hone_node_set_attr_ints(g, n, "pads", p, 4);
    hone_node_set_attr_ints(g, n, "dilations", d, 2);
    hone_node_set_attr_int(g, n, "binary_input", binary);
    hone_graph_add_output(g, n->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

static hone_tensor *run1(hone_graph *g, const hone_tensor *x)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *out[4] = {0};
    hone_status st = hone_interp_run(&ctx, g, (const hone_tensor *[]){x}, out, NULL);
    if (st)
        fail_msg("interp: %s", ctx.msg);
    return out[0];
}

/* The semantics of docs/CUSTOM_OPS.md as a direct loop in double. */
static double reference(const bconv *b, bool binary, bool with_thresh, int64_t i, int64_t o,
                        int64_t oy, int64_t ox)
{
    const geom *s = &b->s;
    const float *x = b->x->data, *w = b->wf->data, *t = b->thresh->data;
    double dot = 0;
    for (int64_t c = 0; c < s->c; c++)
        for (int64_t ky = 0; ky < s->k; ky++)
            for (int64_t kx = 0; kx < s->k; kx++) {
                int64_t iy = oy * s->stride - s->pad + ky * s->dil;
                int64_t ix = ox * s->stride - s->pad + kx * s->dil;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    continue; /* padding: contributes nothing, also under sign activations */
                double a = x[((i * s->c + c) * s->h + iy) * s->w + ix];
                if (binary)
                    a = a >= (with_thresh ? t[c] : 0.0f) ? 1 : -1;
                dot += (w[((o * s->c + c) * s->k + ky) * s->k + kx] >= 0 ? 1 : -1) * a;
            }
    return ((const float *)b->alpha->data)[o] * dot + ((const float *)b->bias->data)[o];
}

static const geom geoms[] = {
    {2, 3, 5, 7, 6, 3, 1, 1, 1},   {1, 70, 9, 6, 5, 3, 2, 1, 1}, {1, 64, 16, 5, 5, 3, 1, 0, 1},
    {1, 130, 4, 4, 4, 1, 1, 0, 1}, {1, 65, 7, 7, 7, 3, 1, 2, 2}, {1, 1, 3, 4, 4, 3, 1, 1, 1},
    /* output channels in whole AVX-512 blocks: 4 + 1 accumulators, and 2 x 4 */
    {1, 66, 40, 4, 4, 3, 1, 1, 1}, {2, 16, 64, 5, 6, 3, 2, 1, 1},
    /* the XNOR kernel's 8-pixel path (c <= 64, stride 1, 8k channels): padding, dilation,
     * rows of 11 and 13 pixels (a partial block of 8) */
    {2, 20, 24, 6, 11, 3, 1, 1, 2}, {1, 64, 8, 9, 13, 3, 1, 1, 1},
};

static void test_interp_matches_reference(void **state)
{
    (void)state;
    for (size_t gi = 0; gi < sizeof geoms / sizeof *geoms; gi++)
        for (int mode = 0; mode < 3; mode++) {
            bconv b;
            bconv_init(&b, geoms[gi]);
            bool binary = mode > 0, th = mode == 2;
            hone_graph *g = bconv_graph(&b, binary, th);
            hone_tensor *y = run1(g, b.x);
            int64_t oh = y->dims[2], ow = y->dims[3];
            for (int64_t e = 0; e < y->numel; e++) {
                int64_t ox = e % ow, oy = e / ow % oh, o = e / (ow * oh) % b.s.m, i = e / (ow * oh * b.s.m);
                double want = reference(&b, binary, th, i, o, oy, ox);
                double tol = binary ? 1e-6 * fabs(want) + 1e-6 : 1e-5 * (1 + fabs(want));
                if (fabs(((float *)y->data)[e] - want) > tol)
                    fail_msg("geom %zu mode %d element %lld: %g vs %g", gi, mode, (long long)e,
                             ((float *)y->data)[e], want);
            }
            hone_tensor_free(y);
            hone_graph_free(g);
            bconv_free(&b);
        }
}

/* All inputs below threshold (a = -1), all weights +1, alpha 1, bias 0: a
 * 3x3 conv with padding 1 gives -9c inside, -6c on edges, -4c in corners. */
static void test_padding_under_sign(void **state)
{
    (void)state;
    bconv b;
    bconv_init(&b, (geom){1, 70, 2, 4, 4, 3, 1, 1, 1});
    for (int64_t i = 0; i < b.x->numel; i++)
        ((float *)b.x->data)[i] = -1.0f;
    memset(b.bits->data, 0xff, (size_t)b.bits->numel);
    for (int64_t o = 0; o < 2; o++) {
        ((float *)b.alpha->data)[o] = 1.0f;
        ((float *)b.bias->data)[o] = 0.0f;
    }
    hone_graph *g = bconv_graph(&b, true, false);
    hone_tensor *y = run1(g, b.x);
    const float *v = y->data;
    assert_true(v[0] == -4 * 70.0f && v[1] == -6 * 70.0f && v[5] == -9 * 70.0f);
    assert_true(v[16 + 15] == -4 * 70.0f);
    hone_tensor_free(y);
    hone_graph_free(g);
    bconv_free(&b);
}

/* Largest |a - b| over max(1, max |a|). */
static double max_err(const hone_tensor *a, const hone_tensor *b)
{
    assert_int_equal(a->numel, b->numel);
    double e = 0, mx = 1;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = ((float *)a->data)[i], y = ((float *)b->data)[i];
        e = fmax(e, fabs(x - y));
        mx = fmax(mx, fabs(x));
    }
    if (e / mx > 1e-5)
        printf("max |a - b| = %g, max |a| = %g\n", e, mx);
    return e / mx;
}

static void test_portable_form(void **state)
{
    (void)state;
    for (size_t gi = 0; gi < sizeof geoms / sizeof *geoms; gi++)
        for (int mode = 0; mode < 3; mode++) {
            bconv b;
            bconv_init(&b, geoms[gi]);
            hone_graph *g = bconv_graph(&b, mode > 0, mode == 2), *p = hone_graph_clone(g);
            hone_ctx ctx;
            hone_ctx_init(&ctx);
            int n = 0;
            assert_int_equal(hone_binary_to_onnx(&ctx, p, &n), HONE_OK);
            assert_int_equal(n, 1);
            for (int i = 0; i < p->n_nodes; i++)
                assert_string_equal(p->nodes[i]->domain, "");
            hone_tensor *y = run1(g, b.x), *z = run1(p, b.x);
            assert_true(max_err(y, z) <= 1e-5);
            hone_tensor_free(y);
            hone_tensor_free(z);
            hone_graph_free(g);
            hone_graph_free(p);
            bconv_free(&b);
        }
}

/* The window of geometry s (2-D). */
static hone_rt_window window_of(const geom *s)
{
    return tu_window_2d(s->h, s->w, s->k, s->stride, s->pad, s->dil);
}

static void test_kernels_match_interp(void **state)
{
    (void)state;
    for (size_t gi = 0; gi < sizeof geoms / sizeof *geoms; gi++) {
        bconv b;
        bconv_init(&b, geoms[gi]);
        const geom *s = &b.s;
        hone_rt_window w = window_of(s);
        int64_t yd[4] = {s->n, s->m, w.out[0], w.out[1]};
        for (int binary = 0; binary < 2; binary++) {
            hone_graph *g = bconv_graph(&b, binary, true);
            hone_tensor *want = run1(g, b.x), *got = tu_tensor_f32(4, yd, NULL);
            size_t ws = binary ? hone_rt_binconv_xnor_scratch(&w, s->c, s->m)
                               : hone_rt_binconv_w1_scratch(&w, s->c);
            void *scratch = malloc(ws);
            if (binary) {
                size_t nw = hone_rt_binconv_xnor_weights_count(s->c, s->m, s->k * s->k);
                uint64_t *wp = malloc(sizeof *wp * nw);
                hone_rt_binconv_xnor_weights(s->c, s->m, s->k * s->k, b.bits->data, wp);
                hone_rt_binconv_xnor(&w, s->n, s->c, s->m, wp, b.alpha->data, b.bias->data,
                                     b.thresh->data, b.x->data, got->data, scratch);
                free(wp);
                assert_memory_equal(want->data, got->data, hone_tensor_nbytes(want));
            } else {
                hone_rt_binconv_w1(&w, s->n, s->c, s->m, b.bits->data, b.alpha->data,
                                   b.bias->data, b.x->data, got->data, scratch);
                assert_true(max_err(want, got) <= 1e-5);
            }
            free(scratch);
            hone_tensor_free(want);
            hone_tensor_free(got);
            hone_graph_free(g);
        }
        bconv_free(&b);
    }
}

static void test_popcount_kind(void **state)
{
    (void)state;
    const char *k = hone_rt_binconv_popcount_kind();
    assert_true(!strcmp(k, "avx512-vpopcntdq") || !strcmp(k, "popcnt") || !strcmp(k, "portable"));
}

/* JIT vs interpreter on X -> BinaryConv(W1) -> Relu -> BinaryConv(W1A1). */
static void test_jit_matches_interp(void **state)
{
    (void)state;
    bconv a, c;
    bconv_init(&a, (geom){2, 70, 66, 9, 9, 3, 1, 1, 1});
    bconv_init(&c, (geom){2, 66, 8, 9, 9, 3, 2, 1, 1});
    for (int binary = 0; binary < 2; binary++) {
        hone_graph *g = bconv_graph(&a, binary, true);
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        hone_backend_opts o;
        hone_backend_opts_init(&o);
        hone_backend_shapes_from(&o, g, (const hone_tensor *[]){a.x});
        hone_jit_t *j;
        if (hone_jit_compile(&ctx, g, &o, &j, NULL))
            fail_msg("JIT: %s", ctx.msg);
        hone_tensor *want = run1(g, a.x), *got[1];
        assert_int_equal(hone_jit_run(&ctx, j, (const hone_tensor *[]){a.x}, got), HONE_OK);
        if (binary)
            assert_memory_equal(want->data, got[0]->data, hone_tensor_nbytes(want));
        else
            assert_true(max_err(want, got[0]) <= 1e-5);
        hone_tensor_free(want);
        hone_tensor_free(got[0]);
        hone_jit_free(j);
        hone_graph_free(g);
    }
    bconv_free(&a);
    bconv_free(&c);
}

/* ===================== training ops ===================== */

/* loss = DistanceLoss(SignSTE(Q), t): dQ must be dB = 2(B - t)/n where |Q| <= 1, else 0. */
static void test_sign_ste_backward(void **state)
{
    (void)state;
    int64_t d[1] = {8};
    const float qv[8] = {-1.5f, -1.0f, -0.3f, 0.0f, 0.2f, 0.99f, 1.01f, 3.0f};
    hone_graph *g = new_graph();
    hone_value *q = tu_const(g, "q", tu_tensor_f32(1, d, qv)), *t = tu_const(g, "t", tu_rand_f32(1, d, 1.0));
    hone_value *b = node(g, "hone", "SignSTE", 1, &q, 1)->out[0];
    hone_value *loss = hone_loss_dist(g, b, t, false);
    hone_graph_add_output(g, loss);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_value *grad;
    assert_int_equal(hone_autodiff(&ctx, g, loss, 1, &q, &grad), HONE_OK);
    hone_graph_add_output(g, grad);
    hone_tensor *out[2];
    assert_int_equal(hone_interp_run(&ctx, g, NULL, out, NULL), HONE_OK);
    const float *tv = t->data->data, *gv = out[1]->data;
    for (int i = 0; i < 8; i++) {
        double bi = qv[i] >= 0 ? 1 : -1, want = fabsf(qv[i]) <= 1 ? 2 * (bi - tv[i]) / 8 : 0;
        assert_true(fabs(gv[i] - want) < 1e-6);
    }
    hone_tensor_free(out[0]);
    hone_tensor_free(out[1]);
    hone_graph_free(g);
}

/* The loss of q against w at rho, by the formula of METHODS.md. */
static double noisy_loss(const float *q, const float *w, int n, double rho)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double y = w[i] >= 0 ? 1 : -1;
        s += ((1 - rho) * (q[i] - y) * (q[i] - y) - rho * (q[i] + y) * (q[i] + y)) / (1 - 2 * rho);
    }
    return s / n;
}

/* NoisyLabelLoss(Q * c, W): value by the formula, dQ by central differences. */
static void test_noisy_label_loss(void **state)
{
    (void)state;
    int64_t d[2] = {3, 4};
    const float rho = 0.1f;
    hone_graph *g = new_graph();
    hone_value *q = tu_const(g, "q", tu_rand_f32(2, d, 1.5)), *w = tu_const(g, "w", tu_rand_f32(2, d, 1.0));
    hone_value *c = tu_const(g, "c", tu_rand_f32(2, d, 2.0));
    hone_value *qc = node(g, "", "Mul", 2, (hone_value *[]){q, c}, 1)->out[0];
    hone_node *l = node(g, "hone", "NoisyLabelLoss", 2, (hone_value *[]){qc, w}, 2);
    hone_node_set_attr_float(g, l, "rho", rho);
    hone_graph_add_output(g, l->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_value *grad;
    assert_int_equal(hone_autodiff(&ctx, g, l->out[0], 1, &q, &grad), HONE_OK);
    hone_graph_add_output(g, grad);
    hone_tensor *out[2];
    assert_int_equal(hone_interp_run(&ctx, g, NULL, out, NULL), HONE_OK);
    float *qv = q->data->data, *cv = c->data->data, *wv = w->data->data, prod[12];
    for (int i = 0; i < 12; i++)
        prod[i] = qv[i] * cv[i];
    assert_true(fabs(*(float *)out[0]->data - noisy_loss(prod, wv, 12, rho)) < 1e-5);
    for (int i = 0; i < 12; i++) {
        double eps = 1e-3, lp, lm;
        prod[i] = (float)((qv[i] + eps) * cv[i]);
        lp = noisy_loss(prod, wv, 12, rho);
        prod[i] = (float)((qv[i] - eps) * cv[i]);
        lm = noisy_loss(prod, wv, 12, rho);
        prod[i] = qv[i] * cv[i];
        double fd = (lp - lm) / (2 * eps), an = ((float *)out[1]->data)[i];
        if (fabs(fd - an) > 1e-3 * (1 + fabs(fd)))
            fail_msg("element %d: analytic %g, finite difference %g", i, an, fd);
    }
    hone_tensor_free(out[0]);
    hone_tensor_free(out[1]);
    hone_graph_free(g);
}

/* train.h extra_loss_value: the trainer's loss is the main term plus the named scalar. */
static void test_trainer_extra_loss(void **state)
{
    (void)state;
    int64_t wd[2] = {3, 4}, xd[2] = {2, 4}, ld[1] = {2};
    float losses[2];
    for (int with = 0; with < 2; with++) {
        tu_seed(5);
        hone_graph *g = new_graph();
        hone_value *x = hone_graph_new_value(g, "x");
        x->dtype = HONE_DT_FLOAT;
        x->rank = 2;
        memcpy(x->dims, xd, sizeof xd);
        hone_graph_add_input(g, x);
        hone_value *w = tu_const(g, "w", tu_rand_f32(2, wd, 1.0)), *w0 = tu_const(g, "w0", tu_rand_f32(2, wd, 1.0));
        hone_node *gm = node(g, "", "Gemm", 2, (hone_value *[]){x, w}, 1);
        hone_node_set_attr_int(g, gm, "transB", 1);
        hone_graph_add_output(g, gm->out[0]);
        hone_node *r = node(g, "hone", "NoisyLabelLoss", 2, (hone_value *[]){w, w0}, 2);
        hone_node_set_attr_float(g, r, "rho", 0.1f);
        r->out[0] = hone_graph_new_value(g, "reg");
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
        hone_train_spec sp;
        hone_train_spec_init(&sp);
        sp.extra_loss_value = with ? "reg" : NULL;
        hone_trainer *t;
        if (hone_trainer_new(&ctx, g, &sp, &t))
            fail_msg("trainer: %s", ctx.msg);
        hone_tensor *xt = tu_rand_f32(2, xd, 1.0), *lab;
        assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, ld, &lab), HONE_OK);
        ((int64_t *)lab->data)[0] = 1;
        ((int64_t *)lab->data)[1] = 2;
        assert_int_equal(hone_trainer_step(t, xt, lab, NULL, &losses[with]), HONE_OK);
        if (with)
            losses[0] += (float)noisy_loss(w->data->data, w0->data->data, 12, 0.1);
        hone_tensor_free(xt);
        hone_tensor_free(lab);
        hone_trainer_free(t);
        hone_graph_free(g);
    }
    assert_true(fabs(losses[1] - losses[0]) < 1e-5 * (1 + fabs(losses[0])));
}

/* ===================== the pass ===================== */

/* The first n Fashion-MNIST test images (the smaller file; here only data for the pass),
 * normalised, or NULL (skip) when absent. */
static hone_tensor *fmnist(int64_t n, const hone_graph *g)
{
    const char *path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *raw, *x;
    if (hone_data_load(&ctx, path, &raw))
        return NULL;
    hone_data_limit(raw, n);
    hone_norm nm = {.scale = 1.0 / 255, .mean = 0.2860, .std = 0.3530};
    assert_int_equal(hone_data_to_float(&ctx, raw, nm, &x), HONE_OK);
    assert_int_equal(hone_data_fit_shape(&ctx, x, g, g->inputs[0]), HONE_OK);
    hone_tensor_free(raw);
    return x;
}

static int count_op(const hone_graph *g, const char *op)
{
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        k += !strcmp(g->nodes[i]->op_type, op);
    return k;
}

static void run_pass(const char *pipeline, bool binary)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (hone_onnx_load(&ctx, tu_src("models/fmnist_resnet14.onnx"), &g))
        skip();
    hone_tensor *x = fmnist(96, g);
    if (!x) {
        printf("skipped: Fashion-MNIST not installed\n");
        hone_graph_free(g);
        skip();
    }
    hone_pass_data d = {.x = x, .val_split = 32};
    hone_passes_opts o = {.data = &d, .log_stream = stderr};
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, pipeline, &p), HONE_OK);
    if (hone_passes_run(&ctx, g, &p, &o, NULL))
        fail_msg("pass: %s", ctx.msg);
    assert_int_equal(count_op(g, "BinaryConv"), 12);
    assert_int_equal(count_op(g, "Conv"), 3); /* first conv and the two 1x1 downsamples */
    assert_int_equal(count_op(g, "SignSTE") + count_op(g, "NoisyLabelLoss") +
                         count_op(g, "BatchNormalization"), 0);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "BinaryConv"))
            assert_int_equal(hone_attr_int(g->nodes[i], "binary_input", -1), binary);
    int64_t idx[4] = {0, 1, 2, 3};
    hone_tensor *xb;
    assert_int_equal(hone_data_gather(&ctx, x, idx, 4, 4, &xb), HONE_OK);
    hone_backend_opts bo;
    hone_backend_opts_init(&bo);
    hone_backend_shapes_from(&bo, g, (const hone_tensor *[]){xb});
    hone_jit_t *j;
    if (hone_jit_compile(&ctx, g, &bo, &j, NULL))
        fail_msg("JIT: %s", ctx.msg);
    hone_tensor *want = run1(g, xb), *got[1];
    assert_int_equal(hone_jit_run(&ctx, j, (const hone_tensor *[]){xb}, got), HONE_OK);
    for (int64_t i = 0; i < want->numel; i++)
        assert_true(isfinite(((float *)want->data)[i]));
    assert_true(max_err(want, got[0]) <= (binary ? 1e-5 : 1e-4));
    hone_tensor_free(want);
    hone_tensor_free(got[0]);
    hone_jit_free(j);
    hone_tensor_free(xb);
    hone_pipeline_free(&p);
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_pass_lns_w1a1(void **state)
{
    (void)state;
    run_pass("binarize{steps=2,batch=16,acts=sign,samples=64}", true);
}

static void test_pass_ste_w1(void **state)
{
    (void)state;
    run_pass("binarize{steps=2,batch=16,method=ste,scale=learned,samples=64}", false);
}

static void test_pass_bad_options(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (hone_onnx_load(&ctx, tu_src("models/fmnist_resnet14.onnx"), &g))
        skip();
    hone_pipeline p;
    assert_int_equal(hone_pipeline_parse(&ctx, "binarize{method=xnor}", &p), HONE_OK);
    assert_int_equal(hone_passes_run(&ctx, g, &p, NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "method=lns|ste"));
    hone_pipeline_free(&p);
    hone_ctx_init(&ctx);
    assert_int_equal(hone_pipeline_parse(&ctx, "binarize", &p), HONE_OK);
    assert_int_equal(hone_passes_run(&ctx, g, &p, NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "--data"));
    hone_pipeline_free(&p);
    hone_graph_free(g);
}

int main(void)
{
    tu_seed(77u);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interp_matches_reference),
        cmocka_unit_test(test_padding_under_sign),
        cmocka_unit_test(test_portable_form),
        cmocka_unit_test(test_kernels_match_interp),
        cmocka_unit_test(test_popcount_kind),
        cmocka_unit_test(test_jit_matches_interp),
        cmocka_unit_test(test_sign_ste_backward),
        cmocka_unit_test(test_noisy_label_loss),
        cmocka_unit_test(test_trainer_extra_loss),
        cmocka_unit_test(test_pass_lns_w1a1),
        cmocka_unit_test(test_pass_ste_w1),
        cmocka_unit_test(test_pass_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
