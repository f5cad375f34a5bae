/*
 * Filter pruning shared by the scop and prune-l1 passes: the module map.
 *
 *   prune_common.c  structure detection (which Conv output channels may be
 *                   removed), channel scores -> kept channels (per-layer rate
 *                   or a global FLOPs/params target), physical removal, and the
 *                   driver every filter-pruning pass runs: BN re-introduced
 *                   after the prunable convs, the method's scores, selection,
 *                   removal, BN re-estimation, fine-tuning, BN folded back,
 *                   report.
 *   scop.c          knockoff scores: |gamma| * (2 beta - 1), beta trained in a
 *                   mixed [real; knockoff] batch.
 *   prune_l1.c      the naive ablation: L1 norm of each filter.
 *
 * Structure rule (what makes a conv's output channel removable): a Conv with
 * group 1 and constant float weights, not reading a graph input (the stem),
 * whose output passes, each value with exactly one reader and none a graph
 * output, through an optional BatchNormalization and channel-wise ops (Relu,
 * LeakyRelu, Clip, Sigmoid, Tanh, MaxPool, AveragePool, Identity, Dropout)
 * into exactly one group-1 Conv with constant weights. Removing channel c
 * then drops row c of the conv's weight and bias, entry c of the BN, and
 * input column c of the next conv; nothing else sees the channel. Convs
 * whose output reaches an Add (the last conv of a residual block, the
 * downsample shortcut), a Concat, a graph output or several readers keep
 * their width, which keeps every residual sum and concatenation consistent.
 * For ResNet basic blocks this prunes the first conv of each block; for
 * bottlenecks the first two (what SCOP prunes in ResNets too).
 */
#ifndef HONE_PRUNE_H
#define HONE_PRUNE_H

#include "loop.h"
#include "passes.h"

/* One prunable conv and what removing its channels touches. */
typedef struct hone_prune_layer {
    hone_node *conv;       /* Conv whose output channels go */
    hone_node *bn;         /* its BatchNormalization (NULL before unfolding) */
    hone_node *next;       /* the Conv reading those channels */
    int64_t channels;      /* output channels before pruning */
    double flops_ch;       /* FLOPs one channel costs (this conv, its chain, next conv) */
    double params_ch;      /* parameters one channel costs (folded form) */
    double conv_flops, chain_flops, next_flops; /* of the conv, the ops between, the next conv */
    double *score;         /* per channel; higher = more important */
    double norm;           /* layer scale that makes scores comparable across layers (> 0) */
    bool *keep;            /* per channel, chosen by hone_prune_select */
    int64_t kept;
} hone_prune_layer;

/* Finds the prunable convs of g (uses updated, shapes inferred); *out
 * receives a malloc'd array (free with hone_prune_layers_free). */
int hone_prune_find(const hone_graph *g, hone_prune_layer **out);
void hone_prune_layers_free(hone_prune_layer *l, int n);

/* What to keep: rate > 0 prunes floor(rate * C) lowest-scoring channels of
 * every layer; otherwise flops (or params) in (0,1) is the share of the
 * whole graph's FLOPs (params) to remove, taken greedily over all layers in
 * order of score / norm, each layer keeping at least a tenth of its
 * channels. total is the graph's FLOPs (params). align > 1 then rounds every
 * layer's width to the nearest multiple of align and, where that misses the target,
 * takes align more channels at a time from the layer whose weakest kept channels
 * score lowest (GEMM kernels work in blocks of 8 output channels, so a width of 29
 * costs what 32 does). Fails when nothing is set or the target cannot be reached. */
hone_status hone_prune_select(hone_ctx *ctx, hone_prune_layer *l, int n, double rate,
                              double flops, double params, double total_flops,
                              double total_params, int64_t align);

/* Removes the channels of layer l whose keep flag is false (kept indices in
 * channel order): conv rows and bias, BN entries, next conv's input columns.
 * Shapes are stale afterwards (run hone_graph_infer). */
hone_status hone_prune_remove(hone_ctx *ctx, hone_graph *g, const hone_prune_layer *l);

/* What a method's scorer gets: the graph with BN after every layer conv,
 * the layers (bn set), the training split and a fit spec with loss, teacher,
 * batch and seed filled in (val_split 0: the data is the training split). */
typedef struct hone_prune_job {
    hone_pass_ctx *pc;
    hone_graph *g;
    hone_prune_layer *layers;
    int n;
    hone_fit_data train;
    hone_fit_spec fit;
} hone_prune_job;

/* Fills layers[k].score and .norm for every k. */
typedef hone_status (*hone_prune_score_fn)(hone_prune_job *job);

/* The whole filter-pruning pass over g with the pass's options rate, flops,
 * params, ft-steps, ft-lr, batch, seed; method names the scores in the
 * report. */
hone_status hone_prune_run(hone_pass_ctx *pc, hone_graph *g, const char *method,
                           hone_prune_score_fn score);

#endif
