/*
 * The lowering table: one row per op the backend compiles, keyed by ONNX
 * domain and name (so the backend builds whichever op families the op table
 * holds): its lowering function and its scratch rule. A row without a
 * lowering function is a view: the output is input 0's bytes reinterpreted,
 * so it costs no code and no memory (see plan.c).
 */
#include <string.h>

#include "backend.h"

static const bk_rule rules[] = {
    /* views */
    {"", "Identity", NULL, NULL},
    {"", "Reshape", NULL, NULL},
    {"", "Flatten", NULL, NULL},
    {"", "Squeeze", NULL, NULL},
    {"", "Unsqueeze", NULL, NULL},
    {"", "Dropout", bk_lower_dropout, NULL}, /* a view at inference (bk_is_view) */
    /* runtime kernels */
    {"", "Conv", bk_lower_conv, bk_scratch_conv},
    {"", "ConvTranspose", bk_lower_conv_transpose, bk_scratch_conv_transpose},
    {"hone", "FusedConv", bk_lower_fused_conv, bk_scratch_conv},
    {"", "Gemm", bk_lower_gemm, NULL},
    {"", "MatMul", bk_lower_matmul, NULL},
    {"", "MaxPool", bk_lower_pool, bk_scratch_pool},
    {"", "AveragePool", bk_lower_pool, NULL},
    {"", "LpPool", bk_lower_pool, NULL},
    {"", "GlobalAveragePool", bk_lower_global_pool, NULL},
    {"", "GlobalMaxPool", bk_lower_global_pool, NULL},
    {"", "GlobalLpPool", bk_lower_global_pool, NULL},
    {"", "BatchNormalization", bk_lower_batchnorm, bk_scratch_batchnorm},
    {"", "InstanceNormalization", bk_lower_instancenorm, bk_scratch_instancenorm},
    {"", "LayerNormalization", bk_lower_layernorm, bk_scratch_layernorm},
    {"", "LpNormalization", bk_lower_lpnorm, NULL},
    {"", "LRN", bk_lower_lrn, NULL},
    {"", "Softmax", bk_lower_softmax, NULL},
    {"", "LogSoftmax", bk_lower_softmax, NULL},
    {"", "Hardmax", bk_lower_softmax, NULL},
    /* elementwise loop nests */
    {"", "Abs", bk_lower_unary, NULL},
    {"", "Neg", bk_lower_unary, NULL},
    {"", "Sign", bk_lower_unary, NULL},
    {"", "Exp", bk_lower_unary, NULL},
    {"", "Log", bk_lower_unary, NULL},
    {"", "Sqrt", bk_lower_unary, NULL},
    {"", "Reciprocal", bk_lower_unary, NULL},
    {"", "Floor", bk_lower_unary, NULL},
    {"", "Ceil", bk_lower_unary, NULL},
    {"", "Round", bk_lower_unary, NULL},
    {"", "Sin", bk_lower_unary, NULL},
    {"", "Cos", bk_lower_unary, NULL},
    {"", "Tan", bk_lower_unary, NULL},
    {"", "Asin", bk_lower_unary, NULL},
    {"", "Acos", bk_lower_unary, NULL},
    {"", "Atan", bk_lower_unary, NULL},
    {"", "Sinh", bk_lower_unary, NULL},
    {"", "Cosh", bk_lower_unary, NULL},
    {"", "Asinh", bk_lower_unary, NULL},
    {"", "Acosh", bk_lower_unary, NULL},
    {"", "Atanh", bk_lower_unary, NULL},
    {"", "Erf", bk_lower_unary, NULL},
    {"", "Not", bk_lower_unary, NULL},
    {"", "IsNaN", bk_lower_unary, NULL},
    {"", "IsInf", bk_lower_unary, NULL},
    {"", "Relu", bk_lower_unary, NULL},
    {"", "Sigmoid", bk_lower_unary, NULL},
    {"", "Tanh", bk_lower_unary, NULL},
    {"", "Softplus", bk_lower_unary, NULL},
    {"", "Softsign", bk_lower_unary, NULL},
    {"", "Elu", bk_lower_unary, NULL},
    {"", "Selu", bk_lower_unary, NULL},
    {"", "Celu", bk_lower_unary, NULL},
    {"", "LeakyRelu", bk_lower_unary, NULL},
    {"", "ThresholdedRelu", bk_lower_unary, NULL},
    {"", "HardSigmoid", bk_lower_unary, NULL},
    {"", "HardSwish", bk_lower_unary, NULL},
    {"", "Shrink", bk_lower_unary, NULL},
    {"", "Clip", bk_lower_clip, NULL},
    {"", "Cast", bk_lower_cast, NULL},
    {"", "CastLike", bk_lower_cast, NULL},
    {"", "QuantizeLinear", bk_lower_quant, NULL},
    {"", "DequantizeLinear", bk_lower_quant, NULL},
    {"", "Add", bk_lower_binary, NULL},
    {"", "Sub", bk_lower_binary, NULL},
    {"", "Mul", bk_lower_binary, NULL},
    {"", "Div", bk_lower_binary, NULL},
    {"", "Mod", bk_lower_binary, NULL},
    {"", "Pow", bk_lower_binary, NULL},
    {"", "BitShift", bk_lower_binary, NULL},
    {"", "And", bk_lower_binary, NULL},
    {"", "Or", bk_lower_binary, NULL},
    {"", "Xor", bk_lower_binary, NULL},
    {"", "Equal", bk_lower_binary, NULL},
    {"", "Less", bk_lower_binary, NULL},
    {"", "LessOrEqual", bk_lower_binary, NULL},
    {"", "Greater", bk_lower_binary, NULL},
    {"", "GreaterOrEqual", bk_lower_binary, NULL},
    {"", "PRelu", bk_lower_binary, NULL},
    {"", "Where", bk_lower_where, NULL},
    {"", "Max", bk_lower_variadic, NULL},
    {"", "Min", bk_lower_variadic, NULL},
    {"", "Sum", bk_lower_variadic, NULL},
    {"", "Mean", bk_lower_variadic, NULL},
    {"", "ReduceSum", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceMean", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceMax", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceMin", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceProd", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceL1", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceL2", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceLogSum", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceLogSumExp", bk_lower_reduce, bk_scratch_reduce},
    {"", "ReduceSumSquare", bk_lower_reduce, bk_scratch_reduce},
    {"", "ArgMax", bk_lower_argminmax, NULL},
    {"", "ArgMin", bk_lower_argminmax, NULL},
    /* data movement */
    {"", "Transpose", bk_lower_transpose, NULL},
    {"", "Concat", bk_lower_concat, NULL},
    {"", "Split", bk_lower_split, NULL},
    {"", "Slice", bk_lower_slice, NULL},
    {"", "Gather", bk_lower_gather, NULL},
    {"", "GatherElements", bk_lower_gather_elements, NULL},
    {"", "ScatterElements", bk_lower_scatter_elements, NULL},
    {"", "Scatter", bk_lower_scatter_elements, NULL},
    {"", "GatherND", bk_lower_gather_nd, NULL},
    {"", "ScatterND", bk_lower_scatter_nd, NULL},
    {"", "Trilu", bk_lower_trilu, NULL},
    {"", "CumSum", bk_lower_cumsum, NULL},
    {"", "NegativeLogLikelihoodLoss", bk_lower_loss, NULL},
    {"", "SoftmaxCrossEntropyLoss", bk_lower_loss, NULL},
    {"", "Pad", bk_lower_pad, NULL},
    {"", "Expand", bk_lower_expand, NULL},
    {"", "Tile", bk_lower_tile, NULL},
    {"", "DepthToSpace", bk_lower_depth_to_space, NULL},
    {"", "SpaceToDepth", bk_lower_space_to_depth, NULL},
    {"", "Resize", bk_lower_resize, NULL},
    {"", "Upsample", bk_lower_resize, NULL},
    {"", "ConstantOfShape", bk_lower_constant_of_shape, NULL},
    /* lower_extra.c */
    {"", "GridSample", bk_lower_grid_sample, NULL},
    {"", "Einsum", bk_lower_einsum, NULL},
    {"", "OneHot", bk_lower_onehot, NULL},
    {"", "TopK", bk_lower_topk, bk_scratch_topk},
    {"", "ReverseSequence", bk_lower_reverse_sequence, NULL},
    {"", "MaxUnpool", bk_lower_maxunpool, NULL},
    {"", "Det", bk_lower_det, bk_scratch_det},
    {"", "MeanVarianceNormalization", bk_lower_mvn, bk_scratch_mvn},
    {"", "Unique", bk_lower_data_dependent, NULL},
    {"", "NonZero", bk_lower_data_dependent, NULL},
    {"", "Compress", bk_lower_data_dependent, NULL},
    {"hone", "BinaryConv", bk_lower_binary_conv, bk_scratch_binary_conv},
    /* AdderNet (lower_adder.c) */
    {"hone", "Adder2d", bk_lower_adder, bk_scratch_adder},
    {"hone", "SignedPower", bk_lower_signed_power, NULL},
    /* integer ops (lower_quant.c) */
    {"", "ConvInteger", bk_lower_conv_integer, bk_scratch_conv_integer},
    {"", "QLinearConv", bk_lower_qlinear_conv, bk_scratch_conv_integer},
    {"hone", "QConv", bk_lower_qconv, bk_scratch_qconv},
    {"hone", "DequantizePacked", bk_lower_dequantize_packed, NULL},
    {"", "MatMulInteger", bk_lower_matmul_integer, NULL},
    {"", "QLinearMatMul", bk_lower_qlinear_matmul, bk_scratch_qlinear_matmul},
    {"", "DynamicQuantizeLinear", bk_lower_dynamic_quantize, NULL},
};

const bk_rule *bk_rule_find(const hone_node *n)
{
    const char *d = strcmp(n->domain, "ai.onnx") ? n->domain : "";
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (!strcmp(rules[i].name, n->op_type) && !strcmp(rules[i].domain, d))
            return &rules[i];
    return NULL;
}

/* Dropout is a view only at inference: no mask output asked for and no
 * training_mode input (a known false one is fine). */
static bool dropout_is_view(const hone_node *n)
{
    if (n->n_out > 1 && n->out[1] && n->out[1]->n_uses)
        return false;
    const hone_value *t = n->n_in > 2 ? n->in[2] : NULL;
    return !t || (t->data && t->data->numel == 1 && !hone_tensor_get_i64(t->data, 0));
}

/* v is the graph's output, or one of its inputs. */
static bool graph_io(const hone_graph *g, const hone_value *v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v)
            return true;
    return false;
}

/* Inputs of the scheduled nodes that are v. */
static int sched_reads(const bk_model *m, const hone_value *v)
{
    int k = 0;
    for (int s = 0; s < m->n_sched; s++)
        for (int i = 0; i < m->sched[s]->n_in; i++)
            k += m->sched[s]->in[i] == v;
    return k;
}

bool bk_concat_in_place(const bk_model *m, const hone_node *n)
{
    const hone_value *y = n->n_out ? n->out[0] : NULL;
    if (strcmp(n->op_type, "Concat") || (n->domain && *n->domain) || !y || n->n_in < 1 ||
        bk_known(m, y) || graph_io(m->g, y))
        return false;
    int axis = (int)hone_attr_int(n, "axis", 0);
    axis = axis < 0 ? axis + y->rank : axis;
    for (int d = 0; d < axis; d++)
        if (y->dims[d] != 1)
            return false;
    for (int i = 0; i < n->n_in; i++) {
        const hone_value *x = n->in[i];
        if (!x || !x->producer || bk_known(m, x) || graph_io(m->g, x) ||
            bk_is_view(x->producer) || x->dtype != y->dtype || sched_reads(m, x) != 1)
            return false;
    }
    return true;
}

bool bk_is_view(const hone_node *n)
{
    const bk_rule *r = bk_rule_find(n);
    if (r && !strcmp(n->op_type, "Dropout"))
        return dropout_is_view(n);
    return r && !r->lower;
}
