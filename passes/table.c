/*
 * The pass table: every pass hone knows, with its summary, function, what it
 * requires and its typed options. Adding a pass = one row here plus its file.
 * docs/PASSES.md is generated from this table (`hone passes --markdown`).
 */
#include <string.h>

#include "passes.h"

const hone_pass_info hone_pass_table[] = {
    {"fold-constants",
     "Evaluates every node whose inputs are all constant (and Shape/Size of static shapes) and "
     "turns its outputs into constants.",
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
    {"scop",
     "Knockoff filter pruning (SCOP): trains a gate beta per output channel of each prunable "
     "conv in a mixed [real; knockoff] batch, removes the channels scoring lowest by "
     "|gamma|*(2*beta-1), re-estimates BN, fine-tunes and folds BN back. Needs --data (labels: "
     "CE; none: distils from the original model).",
     hone_pass_scop, "one model input; constant Conv weights; --data",
     {{"rate", HONE_OPT_FLOAT, "0", "share of channels removed in every prunable conv (paper: "
       "0.4-0.45); 0: use flops= or params="},
      {"flops", HONE_OPT_FLOAT, "0", "share of the model's FLOPs to remove, channels chosen "
       "globally by score"},
      {"params", HONE_OPT_FLOAT, "0", "share of the model's parameters to remove (when flops=0)"},
      {"knockoff", HONE_OPT_STRING, "permute", "knockoff source: permute (the batch rolled by "
       "one shuffled sample) or noise (Gaussian pixels with the data's per-pixel mean and std)"},
      {"beta-steps", HONE_OPT_INT, "200", "optimiser steps training the knockoff gates"},
      {"beta-lr", HONE_OPT_FLOAT, "0.01", "Adam learning rate of the gates (betas 0.5, 0.9)"},
      {"ft-steps", HONE_OPT_INT, "400", "fine-tuning steps after pruning (0: none)"},
      {"ft-lr", HONE_OPT_FLOAT, "0.01", "fine-tuning learning rate (Nesterov SGD, cosine)"},
      {"batch", HONE_OPT_INT, "64", "batch size (the gate batch is twice this: real + knockoff)"},
      {"seed", HONE_OPT_INT, "1", "seed of shuffling and noise"}}},
    {"prune-l1",
     "L1-norm filter pruning, the naive ablation of scop: same structure rule, selection, "
     "removal, BN re-estimation and fine-tuning budget, channels ranked by the L1 norm of their "
     "filters. Needs --data.",
     hone_pass_prune_l1, "one model input; constant Conv weights; --data",
     {{"rate", HONE_OPT_FLOAT, "0", "share of channels removed in every prunable conv; 0: use "
       "flops= or params="},
      {"flops", HONE_OPT_FLOAT, "0", "share of the model's FLOPs to remove, channels chosen "
       "globally by norm"},
      {"params", HONE_OPT_FLOAT, "0", "share of the model's parameters to remove (when flops=0)"},
      {"ft-steps", HONE_OPT_INT, "400", "fine-tuning steps after pruning (0: none)"},
      {"ft-lr", HONE_OPT_FLOAT, "0.01", "fine-tuning learning rate (Nesterov SGD, cosine)"},
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
