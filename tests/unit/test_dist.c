/*
 * Data-parallel layer (one process) and training checkpoints.
 *
 * Without a transport hone_dist is rank 0 of 1 and every collective leaves
 * its data alone; gradient averaging then returns w times the trainer's
 * gradients, packed and unpacked through the buckets. Checkpoints: a run
 * stopped by a failure in epoch 3 and resumed from its epoch-2 checkpoint
 * ends with the weights, BN statistics and Adam state of an uninterrupted
 * run, bit for bit; a checkpoint of another run (seed, batch) and a damaged
 * one are refused; resuming without a checkpoint starts from scratch. The
 * multi-rank behaviour runs under mpirun in tests/mpi.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "train/dist.h"

/* x[N,4] -> Gemm(8) -> BatchNormalization -> Relu -> Gemm(3): weights are the
 * parser's pseudo-random fill, BN statistics mean 0 and variance 1. */
static const char *MODEL =
    "graph g (ir 8; ai.onnx 13) {\n"
    "  input %x: f32[N,4]\n"
    "  const %w1: f32[8,4]\n"
    "  const %b1: f32[8]\n"
    "  const %gamma: f32[8] = [1, 1, 1, 1, 1, 1, 1, 1]\n"
    "  const %beta: f32[8] = [0, 0, 0, 0, 0, 0, 0, 0]\n"
    "  const %mean: f32[8] = [0, 0, 0, 0, 0, 0, 0, 0]\n"
    "  const %var: f32[8] = [1, 1, 1, 1, 1, 1, 1, 1]\n"
    "  const %w2: f32[3,8]\n"
    "  const %b2: f32[3]\n"
    "  %h: f32[N,8] = Gemm(%x, %w1, %b1) {transB=1}  # fc1\n"
    "  %n: f32[N,8] = BatchNormalization(%h, %gamma, %beta, %mean, %var)  # bn\n"
    "  %r: f32[N,8] = Relu(%n)  # relu\n"
    "  %y: f32[N,3] = Gemm(%r, %w2, %b2) {transB=1}  # fc2\n"
    "  output %y: f32[N,3]\n"
    "}\n";

enum { N = 200 };

static hone_graph *model(void)
{
    hone_ctx ctx;
    hone_graph *g;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_graph_parse(&ctx, MODEL, &g), HONE_OK);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    return g;
}

/* Samples x[N,4] and the class of the largest of three fixed projections. */
static void make_data(hone_tensor **x, hone_tensor **y)
{
    int64_t xd[2] = {N, 4}, n = N;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_FLOAT, 2, xd, x), HONE_OK);
    assert_int_equal(hone_tensor_new(&ctx, HONE_DT_INT64, 1, &n, y), HONE_OK);
    float *xv = (*x)->data;
    for (int i = 0; i < N; i++) {
        double s[3] = {0};
        for (int j = 0; j < 4; j++) {
            xv[i * 4 + j] = (float)sin(0.37 * i + 1.3 * j) * 2.0f;
            for (int c = 0; c < 3; c++)
                s[c] += xv[i * 4 + j] * cos(0.9 * c + 0.4 * j);
        }
        ((int64_t *)(*y)->data)[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
}

static void spec_init(hone_fit_spec *s)
{
    hone_fit_spec_init(s);
    s->epochs = 3;
    s->batch = 32;
    s->lr = 0.01;
    s->val_split = 40;
    s->seed = 5;
    s->flip = true;
    hone_optim_spec_init(&s->optim, HONE_OPTIM_ADAM);
}

/* ---- one process ---- */

static void test_single_rank(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    assert_int_equal(hone_dist_rank(), 0);
    assert_int_equal(hone_dist_size(), 1);
    assert_false(hone_dist_active());
    assert_string_equal(hone_dist_transport_name(), "single");
    double d[2] = {1.5, -2};
    float f[1] = {3};
    assert_int_equal(hone_dist_sum_f64(&ctx, d, 2, "test"), HONE_OK);
    assert_int_equal(hone_dist_sum_f32(&ctx, f, 1, "test"), HONE_OK);
    assert_int_equal(hone_dist_bcast(&ctx, d, sizeof d, "test"), HONE_OK);
    assert_true(d[0] == 1.5 && d[1] == -2 && f[0] == 3);
    /* agreement hands back the rank's own outcome, message intact */
    hone_fail(&ctx, HONE_ERR_IO, "disk on fire");
    assert_int_equal(hone_dist_agree(&ctx, HONE_ERR_IO, "test", d, 2), HONE_ERR_IO);
    assert_string_equal(ctx.msg, "disk on fire");
    assert_false(hone_dist_failed_together());
}

/* Gradients of one step on the whole data set. */
static hone_trainer *one_step(hone_ctx *ctx, hone_graph *g)
{
    hone_tensor *x, *y;
    hone_train_spec ts;
    hone_trainer *tr;
    make_data(&x, &y);
    hone_train_spec_init(&ts);
    assert_int_equal(hone_trainer_new(ctx, g, &ts, &tr), HONE_OK);
    assert_int_equal(hone_trainer_step(tr, x, y, NULL, NULL), HONE_OK);
    hone_tensor_free(x);
    hone_tensor_free(y);
    return tr;
}

/* Averaging through buckets of at most `bucket` bytes returns w * grads. */
static void check_reduce(hone_ctx *ctx, hone_trainer *tr, int64_t bucket, int buckets)
{
    hone_dist_grads *dg;
    const hone_tensor *grads[8];
    int n = hone_trainer_n_params(tr);
    assert_int_equal(n, 6);        /* two Gemm weights and biases, BN scale and bias */
    assert_int_equal(hone_dist_grads_new(ctx, tr, bucket, &dg), HONE_OK);
    assert_int_equal(hone_dist_grads_buckets(dg), buckets);
    for (int i = 0; i < n; i++)
        grads[i] = hone_trainer_grad(tr, i);
    grads[2] = NULL;               /* a missing gradient counts as zero */
    assert_int_equal(hone_dist_grads_reduce(dg, grads, 0.25, 0), HONE_OK);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const hone_tensor *a = hone_trainer_grad(tr, i), *b = hone_dist_grads_get(dg, i);
        assert_int_equal(b->numel, a->numel);
        total += a->numel;
        for (int64_t j = 0; j < a->numel; j++)
            assert_true(((float *)b->data)[j] == (i == 2 ? 0.0f : 0.25f * ((float *)a->data)[j]));
    }
    assert_int_equal(hone_dist_grads_bytes(dg), total * 4);
    hone_dist_grads_free(dg);
}

static void test_grads_reduce(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = model();
    hone_trainer *tr = one_step(&ctx, g);
    /* 32 + 8 + 8 + 8 + 24 + 3 floats: one bucket by default; at 64 bytes
     * (16 floats) the 32- and 24-float weights get buckets of their own and
     * the small tensors share: [w1] [b1 gamma] [beta] [w2] [b2] in the
     * parameters' order */
    int64_t sizes = 0;
    for (int i = 0; i < hone_trainer_n_params(tr); i++)
        sizes += hone_trainer_param(tr, i)->numel;
    assert_int_equal(sizes, 83);
    check_reduce(&ctx, tr, 0, 1);
    check_reduce(&ctx, tr, 64, 5);
    hone_trainer_free(tr);
    hone_graph_free(g);
}

/* ---- checkpoints ---- */

/* before_step: fails at step *(int64_t *)user, as a crash would stop the run. */
static hone_status fail_at(void *user, hone_trainer *tr, const hone_fit_step_info *in)
{
    (void)tr;
    return in->step == *(int64_t *)user ? HONE_ERR_IO : HONE_OK;
}

/* Every float constant of a and b bit-identical (true) or not. */
static bool same_weights(const hone_graph *a, const hone_graph *b)
{
    for (int i = 0; i < a->n_values; i++) {
        const hone_value *v = a->values[i], *w;
        if (!v->data || v->data->dtype != HONE_DT_FLOAT)
            continue;
        w = hone_graph_find(b, v->name);
        assert_non_null(w);
        if (memcmp(v->data->data, w->data->data, hone_tensor_nbytes(v->data)))
            return false;
    }
    return true;
}

/* One checkpoint scenario: data, a spec, and the outcome of the last run. */
typedef struct ck_case {
    char dir[64];
    hone_tensor *x, *y;
    hone_fit_data d;
    hone_fit_spec s;
    hone_fit_result r;
    hone_ctx ctx;
    hone_status st;
} ck_case;

static void ck_init(ck_case *c)
{
    snprintf(c->dir, sizeof c->dir, "/tmp/hone_test_ckpt_%d", (int)getpid());
    make_data(&c->x, &c->y);
    c->d = (hone_fit_data){c->x, c->y, NULL};
    spec_init(&c->s);
}

static void ck_free(ck_case *c)
{
    char *p = hone_ckpt_path(c->dir);
    unlink(p);
    free(p);
    rmdir(c->dir);
    hone_tensor_free(c->x);
    hone_tensor_free(c->y);
}

/* Trains a fresh model with c->s and returns it; the outcome is in c. */
static hone_graph *train(ck_case *c)
{
    hone_graph *g = model();
    hone_ctx_init(&c->ctx);
    c->st = hone_fit(&c->ctx, g, &c->d, &c->s, &c->r);
    return g;
}

static void test_resume_equals_uninterrupted(void **state)
{
    (void)state;
    ck_case c;
    ck_init(&c);
    hone_graph *full = train(&c);
    assert_int_equal(c.st, HONE_OK);
    assert_int_equal(c.r.steps, 15);           /* 160 samples, batch 32: 5 steps an epoch */
    /* stopped by a failure in epoch 3: the epoch-2 checkpoint is on disk */
    int64_t stop = 12;
    c.s.checkpoint_dir = c.dir;
    c.s.before_step = fail_at;
    c.s.user = &stop;
    hone_graph *cut = train(&c);
    assert_int_equal(c.st, HONE_ERR_IO);
    assert_int_equal(access(c.dir, F_OK), 0);
    /* resumed: the remaining epoch, ending where the uninterrupted run ended */
    c.s.before_step = NULL;
    c.s.resume = true;
    hone_graph *resumed = train(&c);
    assert_int_equal(c.st, HONE_OK);
    assert_int_equal(c.r.resumed_epochs, 2);
    assert_int_equal(c.r.steps, 15);
    assert_int_equal(c.r.images, 3 * 160);
    assert_false(same_weights(full, cut));
    assert_true(same_weights(full, resumed));
    hone_graph_free(full);
    hone_graph_free(cut);
    hone_graph_free(resumed);
    ck_free(&c);
}

/* Overwrites byte `at` of the checkpoint with its complement. */
static void damage(const char *dir, long at)
{
    char *p = hone_ckpt_path(dir);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, at, SEEK_SET);
    int b = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(~b & 0xff, f);
    fclose(f);
    free(p);
}

/* Runs c->s and expects status st with `msg` in the message. */
static void expect_refused(ck_case *c, hone_status st, const char *msg)
{
    hone_graph_free(train(c));
    assert_int_equal(c->st, st);
    assert_non_null(strstr(c->ctx.msg, msg));
}

static void test_resume_refuses_other_runs(void **state)
{
    (void)state;
    ck_case c;
    ck_init(&c);
    c.s.epochs = 1;
    c.s.checkpoint_dir = c.dir;
    hone_graph_free(train(&c));
    assert_int_equal(c.st, HONE_OK);
    c.s.resume = true;
    c.s.epochs = 2;
    c.s.seed = 6;
    expect_refused(&c, HONE_ERR_ARG, "seeds differ");
    c.s.seed = 5;
    c.s.batch = 16;
    expect_refused(&c, HONE_ERR_ARG, "batch sizes differ");
    c.s.batch = 32;
    damage(c.dir, 200);
    expect_refused(&c, HONE_ERR_IO, "damaged checkpoint");
    ck_free(&c);
}

/* --resume with nothing saved yet (a failure in the first epoch) starts over. */
static void test_resume_without_checkpoint(void **state)
{
    (void)state;
    ck_case c;
    ck_init(&c);
    hone_graph *full = train(&c);
    c.s.checkpoint_dir = c.dir;
    c.s.resume = true;
    hone_graph *fresh = train(&c);
    assert_int_equal(c.st, HONE_OK);
    assert_int_equal(c.r.resumed_epochs, 0);
    assert_true(same_weights(full, fresh));
    hone_graph_free(full);
    hone_graph_free(fresh);
    ck_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_rank),
        cmocka_unit_test(test_grads_reduce),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_resume_refuses_other_runs),
        cmocka_unit_test(test_resume_without_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
