/*
 * The pass table: every pass hone knows, with its summary, function, what it
 * requires and its typed options. Adding a pass = one row here plus its file.
 * docs/PASSES.md is generated from this table (`hone passes --markdown`).
 */
#include <string.h>

#include "passes.h"

/* The options scop and prune-l1 share: how much to remove, and the fine-tuning budget. */
#define PRUNE_OPTS(RANKED_BY)                                                                  \
    {"rate", HONE_OPT_FLOAT, "0", "share of channels removed in every prunable conv (SCOP's "  \
     "paper: 0.4-0.45); 0: use flops= or params="},                                            \
    {"flops", HONE_OPT_FLOAT, "0", "share of the model's FLOPs to remove, channels chosen "   \
     "globally by " RANKED_BY},                                                               \
    {"params", HONE_OPT_FLOAT, "0", "share of the model's parameters to remove (when "        \
     "flops=0)"},                                                                             \
    {"ft-steps", HONE_OPT_INT, "400", "fine-tuning steps after pruning (0: none)"},           \
    {"ft-lr", HONE_OPT_FLOAT, "0.01", "fine-tuning learning rate (Nesterov SGD, cosine)"},      \
    {"align", HONE_OPT_INT, "1", "round every pruned width to a multiple of this (8: the "     \
     "compiled conv's blocks of output channels), the FLOPs/params target still met"}

#define LOWBIT_OPTS \
    {"bits", HONE_OPT_INT, "2", "weight bits: 1, 2, 3, 4 or 8 (levels linspace(-1,1,2^b) times s)"}, \
    {"acts", HONE_OPT_INT, "32", "activation bits: 32 (float) or 8 (calibrated uint8 ranges, " \
     "fake-quantized in training, QuantizeLinear/DequantizeLinear in the output)"}, \
    {"granularity", HONE_OPT_STRING, "channel", "weight scale s per output `channel` or per " \
     "`layer`"}, \
    {"keep-first", HONE_OPT_BOOL, "true", "leave the first Conv in float"}, \
    {"format", HONE_OPT_STRING, "onnx", "`onnx`: int8 codes -> DequantizeLinear(axis 0) -> " \
     "Conv; `packed`: b-bit indices in hone.DequantizePacked"}, \
    {"samples", HONE_OPT_INT, "1024", "training samples for BN statistics, activation ranges " \
     "and BN re-estimation"}
#define LOWBIT_TRAIN_OPTS \
    {"steps", HONE_OPT_INT, "300", "training budget in optimiser steps (batch 64, Adam, cosine)"}, \
    {"lr", HONE_OPT_FLOAT, "0.001", "peak learning rate"}, \
    {"seed", HONE_OPT_INT, "1", "shuffling seed"}

const hone_pass_info hone_pass_table[] = {
    {"fold-constants",
     "Evaluates every node whose inputs are all constant (and Shape/Size of static shapes) and "
     "turns its outputs into constants; random ops and hone.DequantizePacked (packed low-bit "
     "weights stay packed) are left alone.",
     hone_pass_fold_constants, "inferred shapes; the node's op in the op table",
     {{"max-size", HONE_OPT_INT, "1048576",
       "largest output (elements) a folded node may produce; bigger ones stay computed"}}},
    {"fold-shapes",
     "Folds shape arithmetic over symbolic dims (Shape, Gather, Slice, Concat, Unsqueeze, "
     "Squeeze, Cast of partly known shapes); Reshape targets become constants using 0 and -1.",
     hone_pass_fold_shapes, "inferred shapes",
     {{NULL}}},
    {"dce", "Removes nodes whose outputs are never used and constants nothing reads.",
     hone_pass_dce, "nothing", {{NULL}}},
    {"cse",
     "Merges nodes with the same op, inputs and attributes, and constants with identical "
     "contents.",
     hone_pass_cse, "nothing",
     {{"constants", HONE_OPT_BOOL, "true", "also merge constants with identical contents"}}},
    {"remove-identity",
     "Removes Identity, inference Dropout, and Reshape/Flatten/Squeeze/Unsqueeze/Expand/"
     "Transpose/Cast/Pad/Slice nodes that provably leave their input unchanged.",
     hone_pass_remove_identity, "inferred shapes (to prove a reshape is a no-op)", {{NULL}}},
    {"fold-bn",
     "Folds BatchNormalization following Conv, Gemm or MatMul into the weights and bias when "
     "the weights are constant and the BN input has a single use.",
     hone_pass_fold_bn, "constant weights and BN parameters", {{NULL}}},
    {"simplify-reshape",
     "Merges chains of Reshape/Flatten/Squeeze/Unsqueeze into one Reshape and composes (or "
     "cancels) consecutive Transposes.",
     hone_pass_simplify_reshape, "inferred shapes", {{NULL}}},
    {"fuse-conv",
     "Fuses Conv + per-channel bias Add + activation (Relu, LeakyRelu, Clip, Sigmoid) + "
     "residual Add into one hone.FusedConv node.",
     hone_pass_fuse_conv, "Conv in the op table (hone.FusedConv evaluates through it)",
     {{"activations", HONE_OPT_STRING, "Relu,LeakyRelu,Clip,Sigmoid",
       "comma-separated activations that may be fused"},
      {"residual", HONE_OPT_BOOL, "true", "fuse an Add of a tensor shaped like the conv output"}}},
    {"recalibrate-bn",
     "Re-estimates the running mean and variance of every BatchNormalization: the model runs "
     "with batch statistics over calibration batches (no gradients) and each BN gets the average "
     "of its batch means and unbiased batch variances.",
     hone_pass_recalibrate_bn, "one model input; BN mean/var constant",
     {{"data", HONE_OPT_STRING, "", "calibration samples (.npy, IDX, .pb; first dim = samples); "
       "empty: the --data flag's"},
      {"samples", HONE_OPT_INT, "1024", "use the first N samples"},
      {"batch", HONE_OPT_INT, "64", "calibration batch size (a fixed model batch wins)"},
      {"scale", HONE_OPT_FLOAT, "1", "input normalisation (x*scale - mean)/std"},
      {"mean", HONE_OPT_FLOAT, "0", "see scale"},
      {"std", HONE_OPT_FLOAT, "1", "see scale"}}},
    {"unfold-bn",
     "Moves each Conv's bias into a new BatchNormalization after it whose statistics come from "
     "the --data samples (mean 0, variance 1 without them), keeping the function: the inverse "
     "of fold-bn, for models whose exporter folded BN away before a pass that retrains them.",
     hone_pass_unfold_bn, "Conv weights constant; the conv output read by no BN",
     {{"samples", HONE_OPT_INT, "1024", "calibration samples used for the statistics"},
      {"epsilon", HONE_OPT_FLOAT, "1e-05", "epsilon of the inserted BatchNormalization nodes"},
      {"skip", HONE_OPT_STRING, "", "comma-separated Conv node names left alone"}}},
    {"abm",
     "Approximated bilinear modules (ABM, arXiv 2007.12887) for frame-level video models: finds "
     "the frame layout (B*T,C,H,W) and the temporal head, turns the first conv of chosen residual "
     "blocks into a temporal bilinear module (main conv over frames t, t-1, t+1 with the "
     "pretrained kernel at the centre, times an auxiliary conv with weights 0 and bias 1; exact "
     "at insertion) and fine-tunes with SGD on --data/--labels (label-free: distils from the "
     "original).",
     hone_pass_abm, "a Reshape [N,T,...] -> [N*T,...] (or frames=) and a ReduceMean over T; "
     "residual blocks Conv-Relu-Conv-Add; --data for fine-tuning",
     {{"frames", HONE_OPT_INT, "0", "frames per clip T; 0: inferred from the frame reshape"},
      {"variant", HONE_OPT_STRING, "c-in", "c-in (all channels of frames t-1, t+1) or a-in "
       "(their last beta*C channels)"},
      {"beta", HONE_OPT_FLOAT, "0.125", "a-in: share of channels taken from each neighbour frame"},
      {"blocks", HONE_OPT_STRING, "paper", "paper (stage 1 untouched, and the first block of each "
       "later stage; all blocks when that leaves none), all, none (the naive ablation: fine-tune "
       "only), or block numbers \"1,2\" (0-based, graph order)"},
      {"epochs", HONE_OPT_INT, "1", "fine-tuning epochs over the training clips; 0 with steps=0: "
       "no training"},
      {"steps", HONE_OPT_INT, "0", "> 0: fine-tune this many SGD steps instead of epochs"},
      {"batch", HONE_OPT_INT, "16", "clips per step"},
      {"lr", HONE_OPT_FLOAT, "0.001", "SGD learning rate (cosine schedule)"},
      {"momentum", HONE_OPT_FLOAT, "0.9", "SGD momentum"},
      {"wd", HONE_OPT_FLOAT, "0.0005", "weight decay"},
      {"clip", HONE_OPT_FLOAT, "20", "global gradient-norm bound"},
      {"seed", HONE_OPT_INT, "1", "shuffling seed"}}},
    {"binarize",
     "Binarizes conv weights (W1) or weights and activations (W1A1) by training: a learned "
     "mapping net from each filter to its binary version supervised by sign(W) as a noisy "
     "label (lns, arXiv 2010.04871), or the straight-through sign (ste); label-free "
     "distillation from the input model, CE + KD with --labels. Writes hone.BinaryConv "
     "(bit-packed weights, per-channel scale, BN folded in).",
     hone_pass_binarize, "--data (and optionally --labels); constant 2-D Conv weights, group 1",
     {{"method", HONE_OPT_STRING, "lns", "lns (learned mapping, noisy-label loss) or ste "
       "(sign with straight-through estimator, the ablation)"},
      {"acts", HONE_OPT_STRING, "fp", "fp (W1: float activations) or sign (W1A1: sign of the "
       "input against a learned per-channel threshold)"},
      {"scale", HONE_OPT_STRING, "channel", "alpha: channel (mean |W| per output channel) or "
       "learned (trained, started there)"},
      {"lambda", HONE_OPT_FLOAT, "0.05", "weight of the noisy-label loss (lns)"},
      {"rho", HONE_OPT_FLOAT, "0.05", "assumed label-noise rate of sign(W), in [0, 0.5) (lns)"},
      {"map-gain", HONE_OPT_FLOAT, "0.1", "Q = W/max|W| + map-gain * g(W/max|W|): how fast the "
       "mapping net's output moves against the weights' (lns)"},
      {"steps", HONE_OPT_INT, "300", "training budget in optimiser steps"},
      {"batch", HONE_OPT_INT, "64", "training batch size"},
      {"lr", HONE_OPT_FLOAT, "0.0005", "Adam learning rate (cosine to 0)"},
      {"seed", HONE_OPT_INT, "1", "shuffling and mapping-net initialisation seed"},
      {"first", HONE_OPT_BOOL, "false", "also binarize the first conv (reads the model input)"},
      {"downsample", HONE_OPT_BOOL, "false", "also binarize 1x1 (downsample) convs"},
      {"unfold-bn", HONE_OPT_BOOL, "true", "re-insert BN after each binarized conv before "
       "training (folded into the binary conv's scale and bias at the end)"},
      {"samples", HONE_OPT_INT, "512", "calibration samples for BN statistics and thresholds"}}},
    {"adder",
     "Converts every Conv but the stem and the last layer into hone.Adder2d (AdderNet: -L1 "
     "distance) followed by a BatchNormalization calibrated on --data, and trains it with "
     "AdderNet's rules (full-precision dW, HardTanh dX, adaptive per-layer scaling) and "
     "distillation from the original CNN: PKKD kernel matching, logits KD, or none; AdderSR's "
     "self-shortcut and learnable power activation for image-to-image models.",
     hone_pass_adder, "--data (with --labels, --targets, or label-free); Conv weights constant",
     {{"kd", HONE_OPT_STRING, "pkkd", "distillation: pkkd (kernel features + logits), logits, none"},
      {"teacher", HONE_OPT_STRING, "frozen", "frozen: the CNN teacher stays fixed; cotrain: it trains too"},
      {"teacher-lr", HONE_OPT_FLOAT, "0.01", "teacher=cotrain: the teacher's learning rate as a fraction of lr"},
      {"sigma", HONE_OPT_FLOAT, "1", "PKKD kernel width, relative to the calibrated mean distance"},
      {"layers", HONE_OPT_STRING, "", "PKKD matched layers: '' last of each resolution, all, or Conv names"},
      {"steps", HONE_OPT_INT, "1000", "training batches (0: convert and calibrate only)"},
      {"batch", HONE_OPT_INT, "64", "batch size"},
      {"lr", HONE_OPT_FLOAT, "0.1", "peak learning rate (Nesterov SGD, cosine schedule)"},
      {"eta", HONE_OPT_FLOAT, "0.2", "AdderNet's adaptive gradient scale eta"},
      {"kd-weight", HONE_OPT_FLOAT, "1", "weight of the logits (or output image) distillation term"},
      {"feat-weight", HONE_OPT_FLOAT, "1", "weight of the PKKD feature term"},
      {"shortcut", HONE_OPT_BOOL, "false", "AdderSR self-shortcut Y = X + BN(Adder(X)) where shapes agree"},
      {"power", HONE_OPT_BOOL, "false", "AdderSR learnable power activation sign(y)|y|^alpha after each adder"},
      {"samples", HONE_OPT_INT, "1024", "calibration samples (BN statistics, kernel widths)"},
      {"seed", HONE_OPT_INT, "1", "training seed"}}},
    {"slb",
     "Searching for low-bit weights (SLB): each quantized Conv weight learns a softmax over its "
     "2^b levels (exact gradients, inverse temperature annealed), starting from the nearest "
     "level of the pretrained weight; BN is unfolded for training and re-estimated with the "
     "discrete weights, then folded into the per-channel scales. Trains on the --data samples "
     "(CE + KD from the original with --labels, KD without).",
     hone_pass_slb, "--data; Conv weights constant; one model input",
     {LOWBIT_OPTS, LOWBIT_TRAIN_OPTS,
      {"t0", HONE_OPT_FLOAT, "5", "initial inverse temperature T"},
      {"growth", HONE_OPT_FLOAT, "1.05", "factor T grows by per 1% of the steps between start and end"},
      {"start", HONE_OPT_FLOAT, "0.2", "share of the steps after which T starts growing"},
      {"end", HONE_OPT_FLOAT, "0.8", "share of the steps after which weights are the argmax level"}}},
    {"quantize-rtn",
     "Round-to-nearest low-bit weights (slb's naive ablation): the same levels, scales and "
     "activation quantization, BN re-estimated with the rounded weights, no training.",
     hone_pass_quantize_rtn, "--data; Conv weights constant; one model input",
     {LOWBIT_OPTS}},
    {"quantize-ste",
     "Straight-through fine-tuning of low-bit weights (slb's second ablation): latent weights "
     "train through their nearest level with the straight-through estimator, same budget, "
     "levels, scales and BN handling as slb.",
     hone_pass_quantize_ste, "--data; Conv weights constant; one model input",
     {LOWBIT_OPTS, LOWBIT_TRAIN_OPTS}},
    {"pack-lowbit",
     "Rewrites DequantizeLinear of constant int8 weight codes that lie on a b-bit level grid "
     "(slb/quantize-rtn/quantize-ste output) into hone.DequantizePacked of densely packed b-bit "
     "indices; the dequantized weights are bit-identical.",
     hone_pass_pack_lowbit, "constant int8 codes, per-axis-0 or scalar scale, zero zero point",
     {{NULL}}},
    {"qdq-to-integer",
     "Rewrites Conv(DequantizeLinear(uint8 x), DequantizeLinear(constant int8 W), B) into "
     "hone.QConv, which also takes in a following residual Add, Relu and QuantizeLinear "
     "(fuse=false: ConvInteger + Cast + per-channel Mul + Add of B), so the backend runs the "
     "conv on integers (AVX-512 VNNI where available) and its epilogue in the store; first in "
     "-O3, before fold-constants. B: float, or DequantizeLinear of int32.",
     hone_pass_qdq_to_integer,
     "per-tensor uint8 activation quantization; int8 weights with zero zero points",
     {{"fuse", HONE_OPT_BOOL, "true", "one hone.QConv per 2-D conv, taking in a following "
       "residual Add, Relu and uint8 QuantizeLinear (false: ConvInteger, Cast, Mul, Add)"}}},
    {"scop",
     "Knockoff filter pruning (SCOP): trains a gate beta per output channel of each prunable "
     "conv in a mixed [real; knockoff] batch, removes the channels scoring lowest by "
     "|gamma|*(2*beta-1), re-estimates BN, fine-tunes and folds BN back. Needs --data (labels: "
     "CE; none: distils from the original model).",
     hone_pass_scop, "one model input; constant Conv weights; --data",
     {PRUNE_OPTS("score"),
      {"knockoff", HONE_OPT_STRING, "permute", "knockoff source: permute (the batch rolled by "
       "one shuffled sample) or noise (Gaussian pixels with the data's per-pixel mean and std)"},
      {"beta-steps", HONE_OPT_INT, "200", "optimiser steps training the knockoff gates"},
      {"beta-lr", HONE_OPT_FLOAT, "0.01", "Adam learning rate of the gates (betas 0.5, 0.9)"},
      {"batch", HONE_OPT_INT, "64", "batch size (the gate batch is twice this: real + knockoff)"},
      {"seed", HONE_OPT_INT, "1", "seed of shuffling and noise"}}},
    {"prune-l1",
     "L1-norm filter pruning, the naive ablation of scop: same structure rule, selection, "
     "removal, BN re-estimation and fine-tuning budget, channels ranked by the L1 norm of their "
     "filters. Needs --data.",
     hone_pass_prune_l1, "one model input; constant Conv weights; --data",
     {PRUNE_OPTS("norm"),
      {"batch", HONE_OPT_INT, "64", "batch size"},
      {"seed", HONE_OPT_INT, "1", "seed of shuffling"}}},
};

const int hone_pass_count = (int)(sizeof hone_pass_table / sizeof *hone_pass_table);

const hone_pass_info *hone_pass_find(const char *name)
{
    for (int i = 0; i < hone_pass_count; i++)
        if (!strcmp(hone_pass_table[i].name, name))
            return &hone_pass_table[i];
    return NULL;
}

const char *hone_pass_names(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < hone_pass_count && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", hone_pass_table[i].name);
    return buf;
}

static const char *kind_word(hone_opt_kind k)
{
    static const char *const words[] = {"int", "float", "string", "bool"};
    return words[k];
}

static void markdown_pass(FILE *f, const hone_pass_info *pi)
{
    fprintf(f, "## %s\n\n%s\n\nRequires: %s.\n\n", pi->name, pi->summary, pi->requires);
    if (!pi->opts[0].name) {
        fprintf(f, "Options: none.\n\n");
        return;
    }
    fprintf(f, "| option | type | default | meaning |\n|---|---|---|---|\n");
    for (int k = 0; k < HONE_PASS_MAX_OPTS && pi->opts[k].name; k++)
        fprintf(f, "| `%s` | %s | `%s` | %s |\n", pi->opts[k].name, kind_word(pi->opts[k].kind),
                pi->opts[k].dflt, pi->opts[k].help);
    fputc('\n', f);
}

void hone_pass_table_markdown(FILE *f)
{
    fprintf(f, "# hone passes\n\n"
               "<!-- Generated by `hone passes --markdown > docs/PASSES.md`; a test checks it is "
               "current. -->\n\n"
               "A pipeline is a comma-separated list of passes, each optionally followed by "
               "options in braces:\n`--passes='fold-constants,dce,fuse-conv{residual=false}'`. "
               "Option values are typed (int, float, bool, string; quote a string holding ',').\n"
               "After every pass the driver sorts, verifies and re-infers the graph. "
               "`--print-after=NAME|all`, `--disable-pass=NAME`,\n`--time-passes` and "
               "`--report=FILE.json` help to debug a pipeline pass by pass.\n\n"
               "Optimisation levels:\n\n");
    for (int l = 0; hone_pipeline_level(l); l++) {
        const char *p = hone_pipeline_level(l);
        fprintf(f, "- `-O%d`: %s%s%s\n", l, *p ? "`" : "", *p ? p : "(none)", *p ? "`" : "");
    }
    fputc('\n', f);
    for (int i = 0; i < hone_pass_count; i++)
        markdown_pass(f, &hone_pass_table[i]);
}
