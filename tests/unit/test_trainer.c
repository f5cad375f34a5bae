/*
 * The trainer: program construction (parameters found, BN converted, loss
 * inputs added), one step's gradients against finite differences of the
 * step's own loss, BN running statistics against the batch statistics,
 * inference sharing the trained tensors, sync back into a model, frozen
 * parameters, every loss kind, argument errors, and the bundled
 * fmnist_resnet14 model: a step runs, every parameter gets a finite non-zero
 * gradient, and a sync round trip reproduces the trainer's inference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "onnx.h"
#include "testutil.h"
#include "train.h"

static hone_node *node(hone_graph *g, const char *op, int n_in, hone_value *const *in,
                       const char *out)
{
    hone_node *n = hone_graph_add_node(g, op, "", NULL, n_in, 1);
    memcpy(n->in, in, sizeof *in * (size_t)n_in);
    n->out[0] = hone_graph_new_value(g, out);
    return n;
}

#define NODE(g, op, out, ...) \
    node(g, op, sizeof((hone_value *[]){__VA_ARGS__}) / sizeof(hone_value *), \
         (hone_value *[]){__VA_ARGS__}, out)

/* x[1,1,6,6] -> Conv(w1,b1) -> BN -> Relu -> MaxPool 2x2 -> ReduceMean(2,3) ->
 * Gemm(fc, fc_b) -> logits[1,3]. The batch dimension is concrete (1). The
 * smooth variant has Softplus and AveragePool instead (no kinks, for finite
 * differences). */
static hone_graph *model_of(bool smooth)
{
    hone_graph *g = hone_graph_new();
    g->opsets = hone_arena_alloc(g->arena, sizeof *g->opsets);
    g->opsets[0] = (hone_opset){"", 13};
    g->n_opsets = 1;
    int64_t xd[4] = {1, 1, 6, 6}, wd[4] = {4, 1, 3, 3}, c[1] = {4}, fd[2] = {3, 4}, k[1] = {3};
    hone_value *x = hone_graph_new_value(g, "x");
    x->dtype = HONE_DT_FLOAT;
    x->rank = 4;
    memcpy(x->dims, xd, sizeof xd);
    hone_graph_add_input(g, x);
    hone_tensor *var = tu_rand_f32(1, c, 0.3);
    for (int i = 0; i < 4; i++)
        ((float *)var->data)[i] += 1.0f;
    hone_node *conv = NODE(g, "Conv", "conv", x, tu_const(g, "w1", tu_rand_f32(4, wd, 0.5)),
                           tu_const(g, "b1", tu_rand_f32(1, c, 0.1)));
    hone_node_set_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    hone_node *bn = NODE(g, "BatchNormalization", "bn", conv->out[0],
                         tu_const(g, "bn_scale", tu_rand_f32(1, c, 1.0)), tu_const(g, "bn_bias", tu_rand_f32(1, c, 0.2)),
                         tu_const(g, "bn_mean", tu_rand_f32(1, c, 0.2)), tu_const(g, "bn_var", var));
    hone_node *relu = NODE(g, smooth ? "Softplus" : "Relu", "relu", bn->out[0]);
    hone_node *mp = NODE(g, smooth ? "AveragePool" : "MaxPool", "pool", relu->out[0]);
    hone_node_set_attr_ints(g, mp, "kernel_shape", (int64_t[]){2, 2}, 2);
    hone_node_set_attr_ints(g, mp, "strides", (int64_t[]){2, 2}, 2);
    hone_node *rm = NODE(g, "ReduceMean", "feat", mp->out[0]);
    hone_node_set_attr_ints(g, rm, "axes", (int64_t[]){2, 3}, 2);
    hone_node_set_attr_int(g, rm, "keepdims", 0);
    hone_node *fc = NODE(g, "Gemm", "logits", rm->out[0], tu_const(g, "fc", tu_rand_f32(2, fd, 0.8)),
                         tu_const(g, "fc_b", tu_rand_f32(1, k, 0.1)));
    hone_node_set_attr_int(g, fc, "transB", 1);
    hone_graph_add_output(g, fc->out[0]);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

static hone_graph *small_model(void)
{
    return model_of(false);
}

static hone_tensor *labels_for(int64_t n)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &n, &t), HONE_OK);
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)t->data)[i] = i % 3;
    return t;
}

/* A batch whose brightness depends on the label. */
static hone_tensor *batch_for(int64_t n)
{
    int64_t d[4] = {n, 1, 6, 6};
    hone_tensor *t = tu_rand_f32(4, d, 1.0);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] += 0.7f * (float)((i / 36) % 3);
    return t;
}

static int param_index(const hone_trainer *t, const char *name)
{
    for (int i = 0; i < hone_trainer_n_params(t); i++)
        if (!strcmp(hone_trainer_param_name(t, i), name))
            return i;
    return -1;
}

/* ---------- construction ---------- */

static void test_params_and_program(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m = small_model();
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    hone_trainer *t;
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
    assert_int_equal(hone_trainer_n_params(t), 6);
    static const char *want[] = {"w1", "b1", "bn_scale", "bn_bias", "fc", "fc_b"};
    for (int i = 0; i < 6; i++)
        assert_true(param_index(t, want[i]) >= 0);
    assert_int_equal(param_index(t, "bn_mean"), -1);
    assert_null(hone_trainer_grad(t, 0));
    const hone_graph *g = hone_trainer_graph(t);
    int bn_train = 0, bn_infer = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        bn_train += g->nodes[i]->op == HONE_OP_BATCH_NORM_TRAIN;
        bn_infer += g->nodes[i]->op == HONE_OP_BATCH_NORMALIZATION;
    }
    assert_int_equal(bn_train, 1);
    assert_int_equal(bn_infer, 0);
    assert_int_equal(g->n_inputs, 2); /* x and labels */
    assert_true(g->inputs[0]->dims[0] < 0); /* the batch became symbolic */
    hone_trainer_free(t);
    hone_graph_free(m);
}

/* ---------- a step ---------- */

/* Gradients left by a step against central differences of the step's loss. */
static void test_step_gradients(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m = model_of(true);
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    hone_trainer *t;
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
    hone_tensor *x = batch_for(5), *lab = labels_for(5);
    float loss, lp, lm;
    assert_int_equal(hone_trainer_step(t, x, lab, NULL, &loss), HONE_OK);
    assert_true(loss > 0.3f && loss < 3.0f);
    int np = hone_trainer_n_params(t);
    hone_tensor **grads = calloc((size_t)np, sizeof *grads);
    for (int p = 0; p < np; p++)
        grads[p] = hone_tensor_clone(hone_trainer_grad(t, p));
    const double eps = 3e-3;
    for (int p = 0; p < np; p++) {
        float *w = hone_trainer_param(t, p)->data;
        for (int64_t i = 0; i < grads[p]->numel && i < 6; i++) {
            float save = w[i];
            w[i] = (float)(save + eps);
            assert_int_equal(hone_trainer_step(t, x, lab, NULL, &lp), HONE_OK);
            w[i] = (float)(save - eps);
            assert_int_equal(hone_trainer_step(t, x, lab, NULL, &lm), HONE_OK);
            w[i] = save;
            double fd = (lp - lm) / (2 * eps), an = ((float *)grads[p]->data)[i];
            if (fabs(fd - an) > 3e-3 + 3e-2 * fabs(an))
                fail_msg("%s[%lld]: step gradient %g, finite difference %g",
                         hone_trainer_param_name(t, p), (long long)i, an, fd);
        }
        hone_tensor_free(grads[p]);
    }
    free(grads);
    hone_tensor_free(x);
    hone_tensor_free(lab);
    hone_trainer_free(t);
    hone_graph_free(m);
}

/* With momentum 1 the running statistics become the batch's, so inference
 * on the same batch reproduces the training-mode output (up to the unbiased
 * variance factor n/(n-1)). */
static void test_bn_running_stats(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m = small_model();
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    spec.bn_momentum = 1.0f;
    hone_trainer *t;
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
    hone_tensor *x = batch_for(6), *lab = labels_for(6), *inf;
    hone_tensor *before;
    assert_int_equal(hone_trainer_infer(t, x, &before), HONE_OK);
    assert_int_equal(hone_trainer_step(t, x, lab, NULL, NULL), HONE_OK);
    assert_int_equal(hone_trainer_infer(t, x, &inf), HONE_OK);
    const hone_tensor *tr = hone_trainer_output(t);
    assert_int_equal(inf->numel, 18);
    double diff_before = 0;
    for (int64_t i = 0; i < inf->numel; i++) {
        float a = ((float *)tr->data)[i], b = ((float *)inf->data)[i];
        assert_float_equal(a, b, 2e-2 * (1 + fabs(a)));
        diff_before += fabs(((float *)before->data)[i] - a);
    }
    assert_true(diff_before > 1e-2); /* the model's own statistics gave other logits */
    hone_tensor_free(before);
    hone_tensor_free(inf);
    hone_tensor_free(x);
    hone_tensor_free(lab);
    hone_trainer_free(t);
    hone_graph_free(m);
}

/* SGD through the API lowers the loss; sync writes parameters and running
 * statistics into a model that then reproduces the trainer's inference. */
static void test_train_and_sync(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m = small_model(), *copy = hone_graph_clone(m);
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    const char *frozen[] = {"fc_b"};
    spec.frozen = frozen;
    spec.n_frozen = 1;
    hone_trainer *t;
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
    assert_int_equal(param_index(t, "fc_b"), -1);
    hone_tensor *x = batch_for(9), *lab = labels_for(9);
    float first = 0, loss = 0;
    for (int s = 0; s < 80; s++) {
        assert_int_equal(hone_trainer_step(t, x, lab, NULL, &loss), HONE_OK);
        first = s ? first : loss;
        for (int p = 0; p < hone_trainer_n_params(t); p++) {
            hone_tensor *w = hone_trainer_param(t, p);
            const hone_tensor *g = hone_trainer_grad(t, p);
            for (int64_t i = 0; i < w->numel; i++)
                ((float *)w->data)[i] -= 0.3f * ((const float *)g->data)[i];
        }
    }
    assert_true(loss < 0.75f * first);
    assert_int_equal(hone_trainer_sync(t, copy), HONE_OK);
    hone_tensor *want, *got[1];
    assert_int_equal(hone_trainer_infer(t, x, &want), HONE_OK);
    int64_t one_d[4] = {1, 1, 6, 6};
    hone_tensor *one = tu_tensor_f32(4, one_d, x->data); /* the model takes batch 1 */
    const hone_tensor *in[1] = {one};
    assert_int_equal(hone_interp_run(&ctx, copy, in, got, NULL), HONE_OK);
    for (int k = 0; k < 3; k++)
        assert_float_equal(((float *)got[0]->data)[k], ((float *)want->data)[k], 1e-5);
    hone_value *fcb = hone_graph_find(copy, "fc_b"), *orig = hone_graph_find(m, "fc_b");
    assert_memory_equal(fcb->data->data, orig->data->data, 12); /* frozen: untouched */
    hone_value *rm = hone_graph_find(copy, "bn_mean"), *om = hone_graph_find(m, "bn_mean");
    assert_memory_not_equal(rm->data->data, om->data->data, 16); /* running stats moved */
    hone_tensor_free(got[0]);
    hone_tensor_free(want);
    hone_tensor_free(one);
    hone_tensor_free(x);
    hone_tensor_free(lab);
    hone_trainer_free(t);
    hone_graph_free(copy);
    hone_graph_free(m);
}

/* Each loss kind builds, runs, and gives its gradient to the last layer. */
static void test_loss_kinds(void **state)
{
    static const hone_loss_kind kinds[] = {HONE_LOSS_KD, HONE_LOSS_CE_KD, HONE_LOSS_MSE,
                                           HONE_LOSS_L1, HONE_LOSS_NONE};
    int64_t td[2] = {4, 3}, fd[2] = {4, 4};
    for (int k = 0; k < 5; k++) {
        hone_ctx ctx;
        hone_ctx_init(&ctx);
        hone_graph *m = small_model();
        hone_train_spec spec;
        hone_train_spec_init(&spec);
        spec.loss = kinds[k];
        spec.feat_student = k == 4 ? "feat" : k == 1 ? "feat" : NULL;
        hone_trainer *t;
        assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
        hone_tensor *x = batch_for(4), *lab = labels_for(4), *teach = tu_rand_f32(2, td, 2.0);
        hone_tensor *feat = tu_rand_f32(2, fd, 1.0);
        float loss = -1;
        hone_status st = hone_trainer_step_with(t, x, lab, teach, feat, &loss);
        if (st)
            fail_msg("loss kind %d: %s", k, ctx.msg);
        assert_true(loss > 0 && isfinite(loss));
        int w1 = param_index(t, "w1");
        assert_true(w1 >= 0);
        const hone_tensor *g = hone_trainer_grad(t, w1);
        double norm = 0;
        for (int64_t i = 0; i < g->numel; i++)
            norm += fabs(((const float *)g->data)[i]);
        assert_true(norm > 0);
        /* Without the tensors the loss reads, the step is refused. */
        assert_int_equal(hone_trainer_step(t, x, NULL, NULL, NULL), HONE_ERR_ARG);
        hone_tensor_free(x);
        hone_tensor_free(lab);
        hone_tensor_free(teach);
        hone_tensor_free(feat);
        hone_trainer_free(t);
        hone_graph_free(m);
    }
}

static void test_errors(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m = small_model();
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    const char *bad[] = {"no_such_weight"};
    spec.frozen = bad;
    spec.n_frozen = 1;
    hone_trainer *t;
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_ERR_ARG);
    assert_non_null(strstr(ctx.msg, "no_such_weight"));
    assert_null(t);
    hone_train_spec_init(&spec);
    spec.output = "nope";
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_ERR_ARG);
    hone_train_spec_init(&spec);
    spec.feat_student = "relu";
    spec.feat_teacher = "missing";
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_ERR_ARG);
    hone_train_spec_init(&spec);
    assert_int_equal(hone_trainer_new(&ctx, m, &spec, &t), HONE_OK);
    int64_t wrong[4] = {2, 3, 6, 6};
    hone_tensor *x = tu_rand_f32(4, wrong, 1.0), *lab = labels_for(2);
    assert_int_equal(hone_trainer_step(t, x, lab, NULL, NULL), HONE_ERR_ARG);
    hone_tensor_free(x);
    hone_tensor_free(lab);
    hone_trainer_free(t);
    hone_graph_free(m);
}

/* ---------- the bundled fmnist_resnet14 ---------- */

/* A step on a batch of 8 gives every parameter a finite, non-zero gradient;
 * after a few SGD steps, sync writes a model whose own inference (the
 * interpreter on the model graph) equals the trainer's. */
static void test_resnet14(void **state)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *m;
    assert_int_equal(hone_onnx_load(&ctx, tu_src("models/fmnist_resnet14.onnx"), &m), HONE_OK);
    hone_train_spec spec;
    hone_train_spec_init(&spec);
    hone_trainer *t;
    hone_status st = hone_trainer_new(&ctx, m, &spec, &t);
    if (st)
        fail_msg("%s", ctx.msg);
    assert_int_equal(hone_trainer_n_params(t), 32); /* 15 convs (weight, bias) + fc */
    int64_t xd[4] = {8, 1, 28, 28};
    hone_tensor *x = tu_rand_f32(4, xd, 1.0), *lab = labels_for(8);
    float loss;
    for (int s = 0; s < 3; s++) {
        assert_int_equal(hone_trainer_step(t, x, lab, NULL, &loss), HONE_OK);
        assert_true(isfinite(loss) && loss > 0);
        for (int p = 0; p < hone_trainer_n_params(t); p++) {
            const hone_tensor *g = hone_trainer_grad(t, p);
            hone_tensor *w = hone_trainer_param(t, p);
            double norm = 0;
            assert_int_equal(g->numel, w->numel);
            for (int64_t i = 0; i < g->numel; i++) {
                float v = ((const float *)g->data)[i];
                assert_true(isfinite(v));
                norm += fabs(v);
                ((float *)w->data)[i] -= 0.05f * v;
            }
            if (!(norm > 0))
                fail_msg("parameter %s has a zero gradient", hone_trainer_param_name(t, p));
        }
    }
    hone_tensor *want, *got[1];
    const hone_tensor *in[1] = {x};
    assert_int_equal(hone_trainer_infer(t, x, &want), HONE_OK);
    assert_int_equal(hone_trainer_sync(t, m), HONE_OK);
    assert_int_equal(hone_interp_run(&ctx, m, in, got, NULL), HONE_OK);
    assert_int_equal(got[0]->numel, 80);
    assert_memory_equal(got[0]->data, want->data, 80 * sizeof(float));
    hone_tensor_free(got[0]);
    hone_tensor_free(want);
    hone_tensor_free(x);
    hone_tensor_free(lab);
    hone_trainer_free(t);
    hone_graph_free(m);
}

int main(void)
{
    tu_seed(77u);
    if (getenv("HONE_TEST_SEED")) /* stress runs: other random draws */
        tu_seed((uint32_t)strtoul(getenv("HONE_TEST_SEED"), NULL, 10));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_and_program),
        cmocka_unit_test(test_step_gradients),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_train_and_sync),
        cmocka_unit_test(test_loss_kinds),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_resnet14),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
