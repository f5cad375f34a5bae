/*
 * The data loop, weight re-initialisation and BN re-estimation.
 *
 * Split and flip are checked for their invariants (disjoint, covering,
 * fixed across calls, mirrored rows, about half flipped); re-initialisation
 * for zero biases, BN identity statistics and Kaiming spread; BN
 * re-estimation against a naive two-batch computation of what torch's
 * update_bn gives (the second BN sees the first one normalised with batch
 * statistics). hone_fit trains small MLPs: cross-entropy on separable
 * classes, label-free distillation from a trained teacher, MSE regression;
 * the same seed gives bit-identical weights, another seed different ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp.h"
#include "io.h"
#include "passes.h"
#include "testutil.h"
#include "train/loop.h"

/* ---- graph building ---- */

static hone_graph *new_graph(void)
{
    hone_graph *g = tu_graph_new();
    return g;
}

/* Float input [N, dims...] with a symbolic N (or fixed when n > 0). */
static hone_value *add_input(hone_graph *g, int64_t n, int rank, const int64_t *dims)
{
    hone_value *x = hone_graph_new_value(g, "x");
    x->dtype = HONE_DT_FLOAT;
    x->rank = rank + 1;
    x->dims[0] = n > 0 ? n : HONE_DIM_SYM(hone_graph_sym(g, "N"));
    memcpy(x->dims + 1, dims, sizeof *dims * (size_t)rank);
    hone_graph_add_input(g, x);
    return x;
}

static hone_value *add_const(hone_graph *g, const char *name, int rank, const int64_t *dims,
                             const float *vals)
{
    hone_value *v = hone_graph_new_value(g, name);
    hone_value_set_data(v, tu_tensor_f32(rank, dims, vals));
    return v;
}

static hone_value *add_op(hone_graph *g, const char *op, int n_in, hone_value **in)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, n_in, 1);
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, NULL);
    return n->out[0];
}

static hone_value *add_gemm(hone_graph *g, hone_value *x, const char *w, int64_t k, int64_t m,
                            const float *wv)
{
    char bname[32];
    snprintf(bname, sizeof bname, "%s_b", w);
    hone_value *in[3] = {x, add_const(g, w, 2, (int64_t[]){m, k}, wv),
                         add_const(g, bname, 1, &m, NULL)};
    hone_value *y = add_op(g, "Gemm", 3, in);
    hone_node_set_attr_int(g, g->nodes[g->n_nodes - 1], "transB", 1);
    return y;
}

static hone_graph *finish(hone_graph *g, hone_value *y)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph_add_output(g, y);
    hone_graph_update_uses(g);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

/* x[N, k] -> Gemm(k -> h) -> Relu -> Gemm(h -> m), small fixed weights. */
static hone_graph *mlp(int64_t k, int64_t h, int64_t m)
{
    hone_graph *g = new_graph();
    float w1[64], w2[64];
    for (int i = 0; i < 64; i++) {
        w1[i] = 0.3f * sinf(1.7f * (float)i + 0.3f);
        w2[i] = 0.3f * cosf(1.3f * (float)i + 0.1f);
    }
    hone_value *x = add_input(g, 0, 1, &k);
    hone_value *a = add_op(g, "Relu", 1, (hone_value *[]){add_gemm(g, x, "w1", k, h, w1)});
    return finish(g, add_gemm(g, a, "w2", h, m, w2));
}

/* ---- split ---- */

static void check_partition(const int64_t *a, int64_t na, const int64_t *b, int64_t nb, int64_t n)
{
    uint8_t *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < na; i++) {
        assert_true(a[i] >= 0 && a[i] < n && !seen[a[i]]);
        assert_true(i == 0 || a[i] > a[i - 1]);
        seen[a[i]] = 1;
    }
    for (int64_t i = 0; i < nb; i++) {
        assert_true(b[i] >= 0 && b[i] < n && !seen[b[i]]);
        assert_true(i == 0 || b[i] > b[i - 1]);
        seen[b[i]] = 1;
    }
    assert_int_equal(na + nb, n);
    free(seen);
}

static void test_split(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    int64_t *tr, *he, *tr2, *he2, nt, nh, nt2, nh2;
    assert_int_equal(hone_fit_split(&ctx, 100, 0.3, &tr, &nt, &he, &nh), HONE_OK);
    assert_int_equal(nh, 30);
    check_partition(tr, nt, he, nh, 100);
    /* the draw is fixed: the same call gives the same samples */
    assert_int_equal(hone_fit_split(&ctx, 100, 0.3, &tr2, &nt2, &he2, &nh2), HONE_OK);
    assert_memory_equal(he, he2, sizeof *he * 30);
    /* and not simply the last 30 */
    assert_true(he[0] < 70);
    free(tr), free(he), free(tr2), free(he2);
    assert_int_equal(hone_fit_split(&ctx, 100, 7, &tr, &nt, &he, &nh), HONE_OK);
    assert_int_equal(nh, 7);
    check_partition(tr, nt, he, nh, 100);
    free(tr), free(he);
    assert_int_equal(hone_fit_split(&ctx, 10, 0, &tr, &nt, &he, &nh), HONE_OK);
    assert_int_equal(nh, 0);
    assert_int_equal(nt, 10);
    free(tr), free(he);
    assert_int_equal(hone_fit_split(&ctx, 10, 0.01, &tr, &nt, &he, &nh), HONE_OK);
    assert_int_equal(nh, 1);
    free(tr), free(he);
    assert_int_equal(hone_fit_split(&ctx, 10, 10, &tr, &nt, &he, &nh), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "none"));
    assert_int_equal(hone_fit_split(&ctx, 10, 2.5, &tr, &nt, &he, &nh), HONE_ERR_ARG);
    assert_int_equal(hone_fit_split(&ctx, 10, -0.5, &tr, &nt, &he, &nh), HONE_ERR_ARG);
    assert_null(tr);
}

/* ---- flip ---- */

static void test_flip(void **state)
{
    enum { B = 1000 };
    int64_t dims[] = {B, 1, 2, 3};
    hone_tensor *x = tu_tensor_f32(4, dims, NULL);
    float *d = x->data;
    for (int64_t i = 0; i < x->numel; i++)
        d[i] = (float)i;
    hone_tensor *y = hone_tensor_clone(x), *x2 = hone_tensor_clone(x);
    int64_t k = hone_fit_flip(x, y, 42);
    assert_true(k > 430 && k < 570);
    assert_memory_equal(x->data, y->data, hone_tensor_nbytes(x)); /* targets follow */
    int64_t flipped = 0;
    for (int64_t s = 0; s < B; s++) {
        const float *p = d + s * 6;
        float base = (float)(s * 6);
        bool same = p[0] == base && p[1] == base + 1 && p[2] == base + 2 && p[3] == base + 3;
        bool mirrored = p[0] == base + 2 && p[1] == base + 1 && p[2] == base && p[3] == base + 5 &&
                        p[4] == base + 4 && p[5] == base + 3;
        assert_true(same != mirrored);
        flipped += mirrored;
    }
    assert_int_equal(flipped, k);
    /* same seed, same choice; another seed, another */
    assert_int_equal(hone_fit_flip(x2, NULL, 42), k);
    assert_memory_equal(x->data, x2->data, hone_tensor_nbytes(x));
    hone_fit_flip(x2, NULL, 42); /* flipping twice with the same seed restores */
    hone_fit_flip(x, NULL, 43);
    assert_memory_not_equal(x->data, y->data, hone_tensor_nbytes(x));
    for (int64_t i = 0; i < x2->numel; i++)
        assert_float_equal(((float *)x2->data)[i], (float)i, 0);
    hone_tensor_free(x), hone_tensor_free(y), hone_tensor_free(x2);
}

/* ---- re-initialisation ---- */

/* x[N,4,5,5] -> Conv(W[8,4,3,3], B[8]) -> BN -> Relu -> ReduceMean -> Gemm(W[10,8]). */
static hone_graph *conv_graph(void)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {4, 5, 5}, wd[] = {8, 4, 3, 3}, c8 = 8;
    hone_value *x = add_input(g, 0, 3, xd);
    float ones[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    hone_value *conv = add_op(g, "Conv", 3, (hone_value *[]){x, add_const(g, "cw", 4, wd, NULL),
                                                           add_const(g, "cb", 1, &c8, ones)});
    hone_value *bn = add_op(g, "BatchNormalization", 5,
                            (hone_value *[]){conv, add_const(g, "s", 1, &c8, ones),
                                             add_const(g, "b", 1, &c8, ones),
                                             add_const(g, "m", 1, &c8, ones),
                                             add_const(g, "v", 1, &c8, ones)});
    hone_value *r = add_op(g, "Relu", 1, &bn);
    hone_value *gap = add_op(g, "ReduceMean", 1, &r);
    hone_node_set_attr_ints(g, g->nodes[g->n_nodes - 1], "axes", (int64_t[]){2, 3}, 2);
    hone_node_set_attr_int(g, g->nodes[g->n_nodes - 1], "keepdims", 0);
    return finish(g, add_gemm(g, gap, "fw", 8, 10, NULL));
}

static void moments(const hone_tensor *t, double *mean, double *sd)
{
    double s = 0, q = 0;
    const float *d = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        s += d[i];
    *mean = s / (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++)
        q += (d[i] - *mean) * (d[i] - *mean);
    *sd = sqrt(q / (double)t->numel);
}

static const float *cdata(const hone_graph *g, const char *name)
{
    return hone_graph_find(g, name)->data->data;
}

static void test_reinit(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = conv_graph(), *g2 = conv_graph(), *g3 = conv_graph();
    int count;
    assert_int_equal(hone_model_reinit(&ctx, g, 5, &count), HONE_OK);
    assert_int_equal(count, 8); /* conv W, B; BN x4; Gemm W, C */
    for (int i = 0; i < 8; i++) {
        assert_float_equal(cdata(g, "cb")[i], 0, 0);
        assert_float_equal(cdata(g, "s")[i], 1, 0);
        assert_float_equal(cdata(g, "b")[i], 0, 0);
        assert_float_equal(cdata(g, "m")[i], 0, 0);
        assert_float_equal(cdata(g, "v")[i], 1, 0);
    }
    double mean, sd;
    /* Conv fan_in 4*3*3 = 36: sd sqrt(2/36) = 0.2357 over 288 draws */
    moments(hone_graph_find(g, "cw")->data, &mean, &sd);
    assert_true(fabs(mean) < 0.04 && fabs(sd - sqrt(2.0 / 36)) < 0.025);
    /* Gemm with transB: W[10, 8], fan_in 8: sd 0.5 over 80 draws */
    moments(hone_graph_find(g, "fw")->data, &mean, &sd);
    assert_true(fabs(mean) < 0.15 && fabs(sd - 0.5) < 0.12);
    /* reproducible from the seed */
    hone_model_reinit(&ctx, g2, 5, NULL);
    hone_model_reinit(&ctx, g3, 6, NULL);
    assert_memory_equal(cdata(g, "cw"), cdata(g2, "cw"), sizeof(float) * 288);
    assert_memory_not_equal(cdata(g, "cw"), cdata(g3, "cw"), sizeof(float) * 288);
    hone_graph_free(g), hone_graph_free(g2), hone_graph_free(g3);
}

/* ---- BN re-estimation ---- */

/* x[N,2,1,2] -> BN1 -> Relu -> BN2; batch dim n (0: symbolic). */
static hone_graph *bn_graph(int64_t n)
{
    hone_graph *g = new_graph();
    int64_t xd[] = {2, 1, 2}, c2 = 2;
    hone_value *x = add_input(g, n, 3, xd);
    hone_value *b1 = add_op(g, "BatchNormalization", 5,
                            (hone_value *[]){x, add_const(g, "s1", 1, &c2, (float[]){1.5f, 0.5f}),
                                             add_const(g, "b1", 1, &c2, (float[]){0.1f, -0.2f}),
                                             add_const(g, "m1", 1, &c2, NULL),
                                             add_const(g, "v1", 1, &c2, (float[]){1, 1})});
    hone_value *r = add_op(g, "Relu", 1, &b1);
    hone_value *b2 = add_op(g, "BatchNormalization", 5,
                            (hone_value *[]){r, add_const(g, "s2", 1, &c2, (float[]){1, 1}),
                                             add_const(g, "b2", 1, &c2, NULL),
                                             add_const(g, "m2", 1, &c2, NULL),
                                             add_const(g, "v2", 1, &c2, (float[]){1, 1})});
    return finish(g, b2);
}

static float bn_sample(int64_t s, int c, int i)
{
    return (float)(sin(1.3 * (double)s + 0.7 * c + 0.4 * i) * (c + 1) + c);
}

/* Channel mean and population variance of v[b][c][i] over a batch. */
static void naive_moments(float v[][2][2], int nb, int c, double *mean, double *var)
{
    double s = 0, q = 0;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 2; i++)
            s += v[b][c][i];
    *mean = s / (2.0 * nb);
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 2; i++)
            q += (v[b][c][i] - *mean) * (v[b][c][i] - *mean);
    *var = q / (2.0 * nb);
}

/* What update_bn gives for batches {0..3} and {4..7}: want[bn][mean|var][c]. */
static void expected_bn(double want[2][2][2])
{
    static const float scale[2] = {1.5f, 0.5f}, shift[2] = {0.1f, -0.2f};
    memset(want, 0, sizeof(double) * 8);
    for (int batch = 0; batch < 2; batch++) {
        float x[4][2][2], r[4][2][2];
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < 2; i++)
                    x[b][c][i] = bn_sample(batch * 4 + b, c, i);
        for (int c = 0; c < 2; c++) {
            double m, v;
            naive_moments(x, 4, c, &m, &v);
            want[0][0][c] += m / 2;
            want[0][1][c] += v * 8 / 7 / 2;
            for (int b = 0; b < 4; b++)
                for (int i = 0; i < 2; i++)
                    r[b][c][i] = fmaxf(0, (float)(scale[c] * (x[b][c][i] - m) / sqrt(v + 1e-5) +
                                                  shift[c]));
            naive_moments(r, 4, c, &m, &v);
            want[1][0][c] += m / 2;
            want[1][1][c] += v * 8 / 7 / 2;
        }
    }
}

static hone_tensor *bn_data(int64_t n)
{
    int64_t dims[] = {n, 2, 1, 2};
    hone_tensor *x = tu_tensor_f32(4, dims, NULL);
    float *d = x->data;
    for (int64_t s = 0; s < n; s++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++)
                d[(s * 2 + c) * 2 + i] = s < 8 ? bn_sample(s, c, i) : 100.0f;
    return x;
}

static void check_bn(const hone_graph *g)
{
    double want[2][2][2];
    expected_bn(want);
    const char *names[2][2] = {{"m1", "v1"}, {"m2", "v2"}};
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 2; s++)
            for (int c = 0; c < 2; c++)
                assert_float_equal(cdata(g, names[k][s])[c], want[k][s][c], 1e-5);
}

static void test_bn_recalibrate(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = bn_graph(0);
    hone_tensor *x = bn_data(8);
    int n_bn;
    assert_int_equal(hone_bn_recalibrate(&ctx, g, x, 4, &n_bn), HONE_OK);
    assert_int_equal(n_bn, 2);
    check_bn(g);
    /* the model still runs in inference mode (the clone took training mode) */
    hone_tensor *out;
    assert_int_equal(hone_interp_run(&ctx, g, (const hone_tensor **)&x, &out, NULL), HONE_OK);
    hone_tensor_free(out);
    assert_int_equal(hone_attr_int(g->nodes[0], "training_mode", 0), 0);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* A fixed batch size of 4 uses whole batches only: the 2 outliers are ignored. */
static void test_bn_recalibrate_fixed_batch(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = bn_graph(4);
    hone_tensor *x = bn_data(10);
    assert_int_equal(hone_bn_recalibrate(&ctx, g, x, 64, NULL), HONE_OK);
    check_bn(g);
    hone_data_limit(x, 3);
    assert_int_equal(hone_bn_recalibrate(&ctx, g, x, 64, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "no batch"));
    hone_tensor_free(x);
    hone_graph_free(g);
}

static void test_bn_recalibrate_no_bn(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = mlp(4, 3, 2);
    int64_t dims[] = {5, 4};
    hone_tensor *x = tu_tensor_f32(2, dims, NULL);
    int n_bn = -1;
    assert_int_equal(hone_bn_recalibrate(&ctx, g, x, 2, &n_bn), HONE_OK);
    assert_int_equal(n_bn, 0);
    assert_int_equal(hone_bn_recalibrate(&ctx, g, x, 0, &n_bn), HONE_ERR_ARG);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* The pass: samples from a file, the first 8 of 10, batches of 4. */
static void test_recalibrate_bn_pass(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    char path[64], text[160];
    snprintf(path, sizeof path, "/tmp/hone-bnstat-%d.npy", (int)getpid());
    hone_tensor *x = bn_data(10);
    assert_int_equal(hone_npy_write(&ctx, x, path), HONE_OK);
    hone_graph *g = bn_graph(0);
    hone_pipeline p;
    snprintf(text, sizeof text, "recalibrate-bn{data=%s,samples=8,batch=4}", path);
    assert_int_equal(hone_pipeline_parse(&ctx, text, &p), HONE_OK);
    hone_pass_stats stats;
    assert_int_equal(hone_passes_run(&ctx, g, &p, NULL, &stats), HONE_OK);
    check_bn(g);
    assert_int_equal(stats.n_counters, 1);
    assert_int_equal(stats.counters[0].n, 2);
    hone_pipeline_free(&p);
    assert_int_equal(hone_pipeline_parse(&ctx, "recalibrate-bn", &p), HONE_OK);
    assert_int_equal(hone_passes_run(&ctx, g, &p, NULL, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "data=FILE"));
    hone_pipeline_free(&p);
    unlink(path);
    hone_tensor_free(x);
    hone_graph_free(g);
}

/* ---- hone_fit ---- */

enum { NS = 240, K = 4, CLS = 3 };

/* Three separable classes in 4-D: class c is centred on 2 * e_c. */
static void cls_data(hone_tensor **x, hone_tensor **y)
{
    int64_t xd[] = {NS, K}, n = NS;
    *x = tu_tensor_f32(2, xd, NULL);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_UINT8, 1, &n, y), HONE_OK);
    float *d = (*x)->data;
    for (int s = 0; s < NS; s++) {
        int c = s % CLS;
        ((uint8_t *)(*y)->data)[s] = (uint8_t)c;
        for (int j = 0; j < K; j++)
            d[s * K + j] = (j == c ? 2.0f : 0.0f) + 0.6f * (float)sin(2.1 * s + 1.7 * j);
    }
}

typedef struct counts {
    int steps, epochs;
    double first_loss, last_loss, lr[64];
} counts;

static void count_step(void *user, const hone_fit_step_info *in)
{
    counts *c = user;
    if (c->steps < 64)
        c->lr[c->steps] = in->lr;
    if (c->steps++ == 0)
        c->first_loss = in->loss;
}

static void count_epoch(void *user, const hone_fit_epoch_info *in)
{
    counts *c = user;
    c->epochs++;
    c->last_loss = in->loss;
}

/* One training case: the class data, an MLP with `out` outputs, a spec whose
 * callbacks count into c. */
typedef struct fit_case {
    hone_ctx ctx;
    hone_tensor *x, *y;
    hone_graph *g;
    hone_fit_spec s;
    counts c;
} fit_case;

static void case_init(fit_case *fc, int64_t out)
{
    memset(fc, 0, sizeof *fc);
    hone_ctx_init(&fc->ctx);
    cls_data(&fc->x, &fc->y);
    fc->g = mlp(K, 6, out);
    hone_fit_spec *s = &fc->s;
    hone_fit_spec_init(s);
    s->epochs = 8;
    s->batch = 32;
    s->lr = 0.1;
    s->val_split = 0.25;
    s->seed = 7;
    s->on_step = count_step;
    s->on_epoch = count_epoch;
    s->user = &fc->c;
}

static void case_free(fit_case *fc)
{
    hone_tensor_free(fc->x);
    hone_tensor_free(fc->y);
    hone_graph_free(fc->g);
}

static void test_fit_classifier(void **state)
{
    fit_case fc;
    case_init(&fc, CLS);
    hone_fit_data d = {fc.x, fc.y, NULL};
    hone_fit_result r;
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, &r), HONE_OK);
    assert_int_equal(r.n_held, 60);
    assert_int_equal(r.n_train, 180);
    assert_int_equal(r.steps, 8 * 6);
    assert_int_equal(r.images, 8 * 180);
    assert_int_equal(fc.c.steps, 48);
    assert_int_equal(fc.c.epochs, 8);
    assert_int_equal(r.metric_kind, HONE_FIT_METRIC_TOP1);
    assert_true(r.metric >= 0.95);
    assert_true(fc.c.last_loss < 0.5 * fc.c.first_loss);
    /* the rates followed the cosine schedule over 48 steps */
    assert_float_equal(fc.c.lr[0], 0.1, 1e-12);
    assert_float_equal(fc.c.lr[24], 0.05, 1e-12);
    case_free(&fc);
}

typedef struct hook_log {
    int before, update;
    int64_t last_step;
} hook_log;

static hone_status before_step(void *user, hone_trainer *tr, const hone_fit_step_info *in)
{
    hook_log *h = (hook_log *)((char *)user + sizeof(counts));
    (void)tr;
    h->before++;
    h->last_step = in->step;
    return HONE_OK;
}

/* Zeroes every gradient: training must then leave the weights alone. */
static hone_status zero_grads(void *user, hone_trainer *tr, hone_tensor *const *grads,
                              const hone_fit_step_info *in)
{
    hook_log *h = (hook_log *)((char *)user + sizeof(counts));
    (void)in;
    h->update++;
    for (int i = 0; i < hone_trainer_n_params(tr); i++)
        if (grads[i])
            memset(grads[i]->data, 0, hone_tensor_nbytes(grads[i]));
    return HONE_OK;
}

/* max_steps stops mid-epoch with the schedule spanning those steps; the hooks
 * run once per step; hone_fit_evaluate scores the same held-out samples. */
static void test_fit_budget_hooks_evaluate(void **state)
{
    (void)state;
    struct { counts c; hook_log h; } log = {0};
    fit_case fc;
    case_init(&fc, CLS);
    fc.s.user = &log;
    fc.s.max_steps = 9;            /* 6 steps per epoch: one epoch and a half */
    fc.s.before_step = before_step;
    fc.s.before_update = zero_grads;
    hone_fit_data d = {fc.x, fc.y, NULL};
    hone_fit_metric kind;
    double before, after;
    assert_int_equal(hone_fit_evaluate(&fc.ctx, fc.g, &d, &fc.s, &kind, &before), HONE_OK);
    assert_int_equal(kind, HONE_FIT_METRIC_TOP1);
    assert_true(before >= 0 && before <= 1);
    hone_graph *ref = hone_graph_clone(fc.g);
    hone_fit_result r;
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, &r), HONE_OK);
    assert_int_equal(r.steps, 9);
    assert_int_equal(log.c.steps, 9);
    assert_int_equal(log.c.epochs, 2);
    assert_int_equal(log.h.before, 9);
    assert_int_equal(log.h.update, 9);
    assert_int_equal(log.h.last_step, 8);
    assert_float_equal(log.c.lr[0], 0.1, 1e-12);
    assert_true(log.c.lr[8] < 0.01);   /* cosine over 9 steps, not 8 epochs */
    /* zero gradients: plain Nesterov without weight decay leaves weights alone */
    for (int i = 0; i < ref->n_values; i++) {
        const hone_value *v = ref->values[i];
        if (v->data && v->data->dtype == HONE_DT_FLOAT) {
            const hone_value *w = hone_graph_find(fc.g, v->name);
            assert_memory_equal(v->data->data, w->data->data, hone_tensor_nbytes(v->data));
        }
    }
    assert_int_equal(hone_fit_evaluate(&fc.ctx, fc.g, &d, &fc.s, &kind, &after), HONE_OK);
    assert_float_equal(after, before, 0);
    /* and with real gradients the held-out score it reports is hone_fit's */
    fc.s.before_update = NULL;
    fc.s.max_steps = 0;
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, &r), HONE_OK);
    assert_int_equal(hone_fit_evaluate(&fc.ctx, fc.g, &d, &fc.s, &kind, &after), HONE_OK);
    assert_float_equal(after, r.metric, 1e-12);
    assert_true(after >= 0.95);
    hone_graph_free(ref);
    case_free(&fc);
}

/* Trains with seed, flip, AdamW and clipping; returns the first weight tensor. */
static hone_tensor *train_weights(uint64_t seed)
{
    fit_case fc;
    case_init(&fc, CLS);
    fc.s.epochs = 2;
    fc.s.seed = seed;
    fc.s.flip = true;
    hone_optim_spec_init(&fc.s.optim, HONE_OPTIM_ADAMW);
    fc.s.optim.weight_decay = 1e-3;
    fc.s.optim.clip_norm = 1.0;
    hone_fit_data d = {fc.x, fc.y, NULL};
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_OK);
    hone_tensor *w = hone_tensor_clone(hone_graph_find(fc.g, "w1")->data);
    case_free(&fc);
    return w;
}

static void test_fit_reproducible(void **state)
{
    hone_tensor *a = train_weights(11), *b = train_weights(11), *c = train_weights(12);
    assert_memory_equal(a->data, b->data, hone_tensor_nbytes(a));
    assert_memory_not_equal(a->data, c->data, hone_tensor_nbytes(a));
    hone_tensor_free(a), hone_tensor_free(b), hone_tensor_free(c);
}

/* A student learns from a trained teacher without labels: held-out agreement. */
static void test_fit_label_free(void **state)
{
    fit_case fc;
    case_init(&fc, CLS);
    hone_graph *student = mlp(K, 6, CLS);
    hone_fit_data d = {fc.x, fc.y, NULL};
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_OK);
    assert_int_equal(hone_model_reinit(&fc.ctx, student, 3, NULL), HONE_OK);
    fc.s.teacher = fc.g;
    fc.s.train.loss = HONE_LOSS_KD;
    fc.s.optim.kind = HONE_OPTIM_ADAM;
    fc.s.lr = 0.02;
    fc.s.epochs = 30;
    hone_fit_data free_data = {fc.x, NULL, NULL};
    hone_fit_result r;
    assert_int_equal(hone_fit(&fc.ctx, student, &free_data, &fc.s, &r), HONE_OK);
    assert_int_equal(r.metric_kind, HONE_FIT_METRIC_AGREE);
    assert_true(r.metric >= 0.9);
    /* without a teacher a distillation loss has nothing to learn from */
    fc.s.teacher = NULL;
    assert_int_equal(hone_fit(&fc.ctx, student, &free_data, &fc.s, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(fc.ctx.msg, "teacher"));
    hone_graph_free(student);
    case_free(&fc);
}

/* MSE regression towards a linear map into [0.2, 0.8]: PSNR rises. */
static void test_fit_regression(void **state)
{
    fit_case fc;
    case_init(&fc, 2);
    int64_t td[] = {NS, 2};
    hone_tensor *t = tu_tensor_f32(2, td, NULL);
    const float *xd = fc.x->data;
    for (int s = 0; s < NS; s++) {
        ((float *)t->data)[s * 2] = 0.5f + 0.1f * (xd[s * K] - xd[s * K + 1]);
        ((float *)t->data)[s * 2 + 1] = 0.3f + 0.1f * xd[s * K + 2];
    }
    fc.s.train.loss = HONE_LOSS_MSE;
    fc.s.epochs = 20;
    hone_fit_data d = {fc.x, NULL, t};
    hone_fit_result r;
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, &r), HONE_OK);
    assert_int_equal(r.metric_kind, HONE_FIT_METRIC_PSNR);
    assert_true(r.metric > 25);
    hone_tensor_free(t);
    case_free(&fc);
}

static void test_fit_errors(void **state)
{
    fit_case fc;
    case_init(&fc, CLS);
    hone_fit_data no_labels = {fc.x, NULL, NULL}, d = {fc.x, fc.y, NULL};
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &no_labels, &fc.s, NULL), HONE_ERR_ARG);
    assert_non_null(strstr(fc.ctx.msg, "labels"));
    fc.s.val_split = NS;
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_ERR_ARG);
    fc.s.val_split = 0;
    fc.s.schedule = HONE_SCHED_ONECYCLE;
    fc.s.epochs = 1;
    fc.s.batch = 200; /* one step: one-cycle has no room */
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_ERR_ARG);
    fc.s.schedule = HONE_SCHED_COSINE;
    ((uint8_t *)fc.y->data)[5] = CLS; /* a class the model does not have */
    assert_int_not_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_OK);
    assert_non_null(strstr(fc.ctx.msg, "outside"));
    hone_data_limit(fc.y, 10);
    assert_int_equal(hone_fit(&fc.ctx, fc.g, &d, &fc.s, NULL), HONE_ERR_SHAPE);
    case_free(&fc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_reinit),
        cmocka_unit_test(test_bn_recalibrate),
        cmocka_unit_test(test_bn_recalibrate_fixed_batch),
        cmocka_unit_test(test_bn_recalibrate_no_bn),
        cmocka_unit_test(test_recalibrate_bn_pass),
        cmocka_unit_test(test_fit_classifier),
        cmocka_unit_test(test_fit_reproducible),
        cmocka_unit_test(test_fit_label_free),
        cmocka_unit_test(test_fit_regression),
        cmocka_unit_test(test_fit_errors),
        cmocka_unit_test(test_fit_budget_hooks_evaluate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
