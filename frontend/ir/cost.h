/*
 * Compute cost of nodes and graphs from their inferred shapes: MACs
 * (multiply-accumulates of Conv, Gemm, MatMul) and FLOPs, and the parameter
 * count. `hone stats` prints them; passes report them before and after.
 *
 * cost.c  per-node rules by op type, graph totals, parameters.
 */
#ifndef HONE_COST_H
#define HONE_COST_H

#include "ir.h"

typedef struct hone_cost {
    int64_t macs;    /* multiply-accumulates */
    int64_t flops;   /* floating-point operations; a MAC counts 2 */
    bool exact;      /* false when an unknown dimension was counted as 1 */
} hone_cost;

/* Cost of one node from the shapes of its values. */
hone_cost hone_node_cost(const hone_node *n);
/* MACs of one node (0 for ops without multiply-accumulates). */
int64_t hone_node_macs(const hone_node *n);
/* Sum over every node of g. */
hone_cost hone_graph_cost(const hone_graph *g);
/* Elements of the floating-point constants that nodes read (the weights). */
int64_t hone_graph_params(const hone_graph *g);

#endif
