/*
 * Filter pruning (passes/prune.h): structure detection, channel removal and
 * selection, shared by the scop and prune-l1 passes.
 *
 * Removal is checked against its definition: a pruned graph computes exactly
 * what the unpruned graph computes with the removed channels zeroed (their
 * conv rows and bias, or their BN scale and shift, set to 0, so the channel
 * reads 0 after the activation). Detection is checked on a residual graph
 * with a stem, a downsample shortcut, an Add, a Concat and a MaxPool chain,
 * and on the bundled ResNet (only the first conv of each block qualifies).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "interp.h"
#include "onnx.h"
#include "prune.h"
#include "testutil.h"

/* stem (reads the input, two readers), c1 -> BN -> Relu -> c2 (prunable),
 * c2 and down -> Add (not), c3 -> Relu -> Concat and c4 -> Concat (not),
 * c5 -> Relu -> MaxPool -> c6 (prunable), c6 -> output (not). */
static const char *residual_ir =
    "graph g (ir 8; ai.onnx 13) {\n"
    "  input %x: f32[2,3,8,8]\n"
    "  const %w0: f32[8,3,3,3]\n"
    "  const %b0: f32[8]\n"
    "  const %w1: f32[8,8,3,3]\n"
    "  const %b1: f32[8]\n"
    "  const %s1: f32[8]\n"
    "  const %t1: f32[8]\n"
    "  const %m1: f32[8]\n"
    "  const %v1: f32[8] = [1, 2, 0.5, 1.5, 1, 3, 0.25, 1]\n"
    "  const %w2: f32[8,8,3,3]\n"
    "  const %wd: f32[8,8,1,1]\n"
    "  const %w3: f32[6,8,3,3]\n"
    "  const %w4: f32[6,8,3,3]\n"
    "  const %w5: f32[10,12,3,3]\n"
    "  const %b5: f32[10]\n"
    "  const %w6: f32[5,10,3,3]\n"
    "  %s: f32[2,8,8,8] = Conv(%x, %w0, %b0) {kernel_shape=[3,3], pads=[1,1,1,1]}  # stem\n"
    "  %sr: f32[2,8,8,8] = Relu(%s)  # stem_relu\n"
    "  %c1: f32[2,8,8,8] = Conv(%sr, %w1, %b1) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c1\n"
    "  %n1: f32[2,8,8,8] = BatchNormalization(%c1, %s1, %t1, %m1, %v1)  # bn1\n"
    "  %r1: f32[2,8,8,8] = Relu(%n1)  # r1\n"
    "  %c2: f32[2,8,8,8] = Conv(%r1, %w2) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c2\n"
    "  %d: f32[2,8,8,8] = Conv(%sr, %wd) {kernel_shape=[1,1]}  # down\n"
    "  %a: f32[2,8,8,8] = Add(%c2, %d)  # add\n"
    "  %ar: f32[2,8,8,8] = Relu(%a)  # add_relu\n"
    "  %c3: f32[2,6,8,8] = Conv(%ar, %w3) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c3\n"
    "  %r3: f32[2,6,8,8] = Relu(%c3)  # r3\n"
    "  %c4: f32[2,6,8,8] = Conv(%ar, %w4) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c4\n"
    "  %cat: f32[2,12,8,8] = Concat(%r3, %c4) {axis=1}  # cat\n"
    "  %c5: f32[2,10,8,8] = Conv(%cat, %w5, %b5) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c5\n"
    "  %r5: f32[2,10,8,8] = Relu(%c5)  # r5\n"
    "  %p5: f32[2,10,4,4] = MaxPool(%r5) {kernel_shape=[2,2], strides=[2,2]}  # pool\n"
    "  %c6: f32[2,5,4,4] = Conv(%p5, %w6) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c6\n"
    "  output %c6: f32[2,5,4,4]\n"
    "}\n";

static hone_graph *parse_graph(const char *text)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    if (hone_graph_parse(&ctx, text, &g) || hone_graph_infer(&ctx, g))
        fail_msg("parse: %s", ctx.msg);
    hone_graph_update_uses(g);
    return g;
}

/* Runs g on a seeded input shaped like its first input (batch `batch` when
 * the batch dim is symbolic); the caller frees the output. */
static hone_tensor *run(hone_graph *g, int64_t batch)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    const hone_value *in = g->inputs[0];
    int64_t dims[HONE_MAX_RANK];
    for (int i = 0; i < in->rank; i++)
        dims[i] = in->dims[i] > 0 ? in->dims[i] : batch;
    hone_tensor *x = tu_tensor_f32(in->rank, dims, NULL);
    uint32_t s = 12345;
    for (int64_t i = 0; i < x->numel; i++) {
        s = s * 1664525u + 1013904223u;
        ((float *)x->data)[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    hone_tensor *out[4] = {0};
    const hone_tensor *ins[1] = {x};
    if (hone_interp_run(&ctx, g, ins, out, NULL))
        fail_msg("interpreter: %s", ctx.msg);
    hone_tensor_free(x);
    return out[0];
}

static double max_diff(const hone_tensor *a, const hone_tensor *b)
{
    assert_int_equal(a->numel, b->numel);
    double m = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double d = fabs(hone_tensor_get_f64(a, i) - hone_tensor_get_f64(b, i));
        m = d > m ? d : m;
    }
    return m;
}

static hone_node *node_named(const hone_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->name, name))
            return g->nodes[i];
    return NULL;
}

/* Zeroes entries c of v (axis 0) where keep[c] is false; v gets new contents. */
static void zero_rows(hone_value *v, const bool *keep)
{
    int64_t c = v->data->dims[0], per = v->data->numel / c;
    for (int64_t i = 0; i < v->data->numel; i++)
        if (!keep[i / per])
            hone_tensor_set_f64(v->data, i, 0);
}

/* Drops every channel c with c % 3 == 1 of layer l. */
static void drop_some(hone_prune_layer *l)
{
    for (int64_t c = 0; c < l->channels; c++)
        l->keep[c] = c % 3 != 1;
    l->kept = l->channels - (l->channels + 1) / 3;
}

/* In the clone z, zeroes what removal of l's dropped channels takes away. */
static void zero_layer(hone_graph *z, const hone_prune_layer *l)
{
    if (l->bn) {
        hone_node *bn = node_named(z, l->bn->name);
        zero_rows(bn->in[1], l->keep);
        zero_rows(bn->in[2], l->keep);
        return;
    }
    hone_node *conv = node_named(z, l->conv->name);
    zero_rows(conv->in[1], l->keep);
    if (conv->n_in > 2 && conv->in[2])
        zero_rows(conv->in[2], l->keep);
}

/* Prunes every layer of g and compares with the zeroed clone. */
static void check_removal(hone_graph *g, int64_t batch)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_prune_layer *l;
    int n = hone_prune_find(g, &l);
    assert_true(n > 0);
    hone_graph *z = hone_graph_clone(g);
    hone_tensor *orig = run(g, batch);
    for (int k = 0; k < n; k++) {
        drop_some(&l[k]);
        zero_layer(z, &l[k]);
    }
    int64_t params0 = hone_graph_params(g);
    for (int k = 0; k < n; k++)
        assert_int_equal(hone_prune_remove(&ctx, g, &l[k]), HONE_OK);
    hone_graph_update_uses(g);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    assert_int_equal(hone_graph_verify(&ctx, g), HONE_OK);
    for (int k = 0; k < n; k++) {
        assert_int_equal(l[k].conv->in[1]->data->dims[0], l[k].kept);
        assert_int_equal(l[k].next->in[1]->data->dims[1], l[k].kept);
        assert_int_equal(l[k].conv->out[0]->dims[1], l[k].kept);
    }
    assert_true(hone_graph_params(g) < params0);
    hone_tensor *pruned = run(g, batch), *zeroed = run(z, batch);
    double scale = 0;
    for (int64_t i = 0; i < zeroed->numel; i++)
        scale = fmax(scale, fabs(hone_tensor_get_f64(zeroed, i)));
    assert_true(max_diff(pruned, zeroed) <= 1e-5 * fmax(1, scale));
    assert_true(max_diff(orig, zeroed) > 1e-3); /* the channels mattered */
    hone_tensor_free(orig);
    hone_tensor_free(pruned);
    hone_tensor_free(zeroed);
    hone_graph_free(z);
    hone_prune_layers_free(l, n);
}

static void test_detect_residual(void **state)
{
    (void)state;
    hone_graph *g = parse_graph(residual_ir);
    hone_prune_layer *l;
    int n = hone_prune_find(g, &l);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].conv->name, "c1");
    assert_string_equal(l[0].bn->name, "bn1");
    assert_string_equal(l[0].next->name, "c2");
    assert_string_equal(l[1].conv->name, "c5");
    assert_null(l[1].bn);
    assert_string_equal(l[1].next->name, "c6");
    assert_int_equal(l[0].channels, 8);
    assert_int_equal(l[1].channels, 10);
    /* c5: 12*9 MACs per output pixel (64 pixels), c6: 5*9 per pixel (16 pixels) */
    assert_true(l[1].flops_ch > 2.0 * (12 * 9 * 64 + 5 * 9 * 16));
    assert_true(fabs(l[1].params_ch - (12 * 9 + 5 * 9 + 1)) < 1e-9);
    hone_prune_layers_free(l, n);
    hone_graph_free(g);
}

static void test_remove_residual(void **state)
{
    (void)state;
    hone_graph *g = parse_graph(residual_ir);
    check_removal(g, 2);
    hone_graph_free(g);
}

static hone_graph *load_resnet(void)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = NULL;
    if (hone_onnx_load(&ctx, tu_src("models/fmnist_resnet14.onnx"), &g) ||
        hone_graph_infer(&ctx, g))
        fail_msg("load: %s", ctx.msg);
    hone_graph_update_uses(g);
    return g;
}

/* The bundled ResNet: only each block's first conv; never the stem, the
 * shortcut convs or a conv feeding an Add. */
static void test_detect_resnet(void **state)
{
    (void)state;
    hone_graph *g = load_resnet();
    hone_prune_layer *l;
    int n = hone_prune_find(g, &l);
    assert_int_equal(n, 6);
    for (int k = 0; k < n; k++) {
        assert_non_null(strstr(l[k].conv->name, "/c1/"));
        assert_non_null(strstr(l[k].next->name, "/c2/"));
    }
    hone_prune_layers_free(l, n);
    hone_graph_free(g);
}

/* Same equivalence on the ResNet with BN re-introduced after its c1 convs. */
static void test_remove_resnet_bn(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = load_resnet();
    int count = 0;
    assert_int_equal(hone_unfold_bn(&ctx, g, NULL, 0, 1e-5, NULL, NULL, &count), HONE_OK);
    assert_int_equal(count, 15);
    assert_int_equal(hone_graph_toposort(&ctx, g), HONE_OK);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    hone_graph_update_uses(g);
    check_removal(g, 3);
    hone_graph_free(g);
}

/* rate: floor(rate*C) lowest scores go per layer; flops: the greedy global
 * choice removes at least the target and not one channel more than needed. */
static void test_select(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = parse_graph(residual_ir);
    hone_prune_layer *l;
    int n = hone_prune_find(g, &l);
    for (int k = 0; k < n; k++)
        for (int64_t c = 0; c < l[k].channels; c++)
            l[k].score[c] = (double)((c * 7 + k) % l[k].channels);
    assert_int_equal(hone_prune_select(&ctx, l, n, 0.45, 0, 0, 1, 1, 1), HONE_OK);
    assert_int_equal(l[0].kept, 8 - 3);
    assert_int_equal(l[1].kept, 10 - 4);
    for (int k = 0; k < n; k++)
        for (int64_t c = 0; c < l[k].channels; c++)
            assert_int_equal(l[k].keep[c], l[k].score[c] >= (k ? 4 : 3));
    hone_prune_layers_free(l, n);

    n = hone_prune_find(g, &l);
    double total = (double)hone_graph_cost(g).flops, need = 0.2 * total;
    for (int k = 0; k < n; k++)
        for (int64_t c = 0; c < l[k].channels; c++)
            l[k].score[c] = (double)c;
    assert_int_equal(hone_prune_select(&ctx, l, n, 0, 0.2, 0, total, 1, 1), HONE_OK);
    double gone = 0, most = 0;
    for (int k = 0; k < n; k++) {
        gone += (double)(l[k].channels - l[k].kept) * l[k].flops_ch;
        most = fmax(most, l[k].flops_ch);
        assert_true(l[k].kept >= (l[k].channels + 9) / 10);
    }
    assert_true(gone >= need && gone < need + most);
    for (int k = 0; k < n; k++)
        assert_int_equal(hone_prune_remove(&ctx, g, &l[k]), HONE_OK);
    hone_graph_update_uses(g);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    double after = (double)hone_graph_cost(g).flops;
    assert_true(total - after >= 0.995 * need);
    hone_prune_layers_free(l, n);

    n = hone_prune_find(g, &l);
    assert_int_not_equal(hone_prune_select(&ctx, l, n, 0, 0.99, 0, total, 1, 1), HONE_OK);
    assert_non_null(strstr(ctx.msg, "out of reach"));
    hone_prune_layers_free(l, n);
    hone_graph_free(g);
}

/* Two pruned layers in a row (a bottleneck's first two convs): the middle
 * conv loses inputs and outputs, and the greedy count follows what is left,
 * so the measured reduction meets the target without overshooting by more
 * than one channel. */
static void test_select_chain(void **state)
{
    (void)state;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g = parse_graph(
        "graph g (ir 8; ai.onnx 13) {\n"
        "  input %x: f32[1,4,8,8]\n"
        "  const %wa: f32[8,4,3,3]\n"
        "  const %wb: f32[8,8,3,3]\n"
        "  const %wc: f32[6,8,3,3]\n"
        "  %xr: f32[1,4,8,8] = Relu(%x)  # in_relu\n"
        "  %a: f32[1,8,8,8] = Conv(%xr, %wa) {kernel_shape=[3,3], pads=[1,1,1,1]}  # a\n"
        "  %ar: f32[1,8,8,8] = Relu(%a)  # ar\n"
        "  %b: f32[1,8,8,8] = Conv(%ar, %wb) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b\n"
        "  %br: f32[1,8,8,8] = Relu(%b)  # br\n"
        "  %c: f32[1,6,8,8] = Conv(%br, %wc) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c\n"
        "  output %c: f32[1,6,8,8]\n"
        "}\n");
    hone_prune_layer *l;
    int n = hone_prune_find(g, &l);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].next->name, "b");
    assert_string_equal(l[1].conv->name, "b");
    for (int k = 0; k < n; k++)
        for (int64_t c = 0; c < l[k].channels; c++)
            l[k].score[c] = (double)c + 0.5 * k;
    double total = (double)hone_graph_cost(g).flops, need = 0.6 * total;
    assert_int_equal(hone_prune_select(&ctx, l, n, 0, 0.6, 0, total, 1, 1), HONE_OK);
    for (int k = 0; k < n; k++)
        assert_int_equal(hone_prune_remove(&ctx, g, &l[k]), HONE_OK);
    hone_graph_update_uses(g);
    assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
    double gone = total - (double)hone_graph_cost(g).flops;
    assert_true(gone >= 0.999 * need);
    assert_true(gone < need + fmax(l[0].flops_ch, l[1].flops_ch));
    hone_prune_layers_free(l, n);
    hone_graph_free(g);
}

/* align=4: every width a multiple of 4 (the channels kept are the layer's best), the
 * measured FLOPs reduction at least the target and short of it plus one block of 4
 * channels (rounding up is given back); the same target with align=1
 * keeps widths that are not all multiples of 4 (so the rounding did something). */
static void test_select_align(void **state)
{
    (void)state;
    static const char *ir =
        "graph g (ir 8; ai.onnx 13) {\n"
        "  input %x: f32[1,4,8,8]\n"
        "  const %wa: f32[16,4,3,3]\n"
        "  const %wb: f32[12,16,3,3]\n"
        "  const %wc: f32[6,12,3,3]\n"
        "  %xr: f32[1,4,8,8] = Relu(%x)  # in_relu\n"
        "  %a: f32[1,16,8,8] = Conv(%xr, %wa) {kernel_shape=[3,3], pads=[1,1,1,1]}  # a\n"
        "  %ar: f32[1,16,8,8] = Relu(%a)  # ar\n"
        "  %b: f32[1,12,8,8] = Conv(%ar, %wb) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b\n"
        "  %br: f32[1,12,8,8] = Relu(%b)  # br\n"
        "  %c: f32[1,6,8,8] = Conv(%br, %wc) {kernel_shape=[3,3], pads=[1,1,1,1]}  # c\n"
        "  output %c: f32[1,6,8,8]\n"
        "}\n";
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    bool unaligned = false;
    for (int64_t align = 1; align <= 4; align += 3) {
        hone_graph *g = parse_graph(ir);
        hone_prune_layer *l;
        int n = hone_prune_find(g, &l);
        assert_int_equal(n, 2);
        for (int k = 0; k < n; k++)
            for (int64_t c = 0; c < l[k].channels; c++)
                l[k].score[c] = (double)((c * 5 + 3 * k) % l[k].channels) + 0.1 * k;
        double total = (double)hone_graph_cost(g).flops, need = 0.45 * total;
        assert_int_equal(hone_prune_select(&ctx, l, n, 0, 0.45, 0, total, 1, align), HONE_OK);
        for (int k = 0; k < n; k++) {
            int64_t kept = 0;
            double worst_kept = 1e9, best_gone = -1;
            for (int64_t c = 0; c < l[k].channels; c++) {
                kept += l[k].keep[c];
                if (l[k].keep[c])
                    worst_kept = fmin(worst_kept, l[k].score[c]);
                else
                    best_gone = fmax(best_gone, l[k].score[c]);
            }
            assert_int_equal(kept, l[k].kept);
            assert_true(worst_kept > best_gone);
            if (align == 4)
                assert_int_equal(l[k].kept % 4, 0);
            else
                unaligned = unaligned || l[k].kept % 4;
        }
        for (int k = 0; k < n; k++)
            assert_int_equal(hone_prune_remove(&ctx, g, &l[k]), HONE_OK);
        hone_graph_update_uses(g);
        assert_int_equal(hone_graph_infer(&ctx, g), HONE_OK);
        double most = fmax(l[0].flops_ch, l[1].flops_ch), gone = total - (double)hone_graph_cost(g).flops;
        assert_true(gone >= 0.999 * need);
        assert_true(gone < need + (double)align * most); /* given back what was not needed */
        hone_prune_layers_free(l, n);
        hone_graph_free(g);
    }
    assert_true(unaligned);
    assert_int_not_equal(hone_prune_select(&ctx, NULL, 0, 0, 0.3, 0, 1, 1, 0), HONE_OK);
    assert_non_null(strstr(ctx.msg, "align"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_align),
        cmocka_unit_test(test_detect_residual),
        cmocka_unit_test(test_remove_residual),
        cmocka_unit_test(test_detect_resnet),
        cmocka_unit_test(test_remove_resnet_bn),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
