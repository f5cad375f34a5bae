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
    int64_t mults;   /* floating-point multiplications (energy model, see cost.c) */
    int64_t adds;    /* floating-point additions and subtractions */
} hone_cost;

/* 45 nm energy per fp32 operation that the AdderNet papers use (picojoules). */
#define HONE_PJ_FP32_ADD 0.9
#define HONE_PJ_FP32_MULT 3.7
/* Estimated energy of c's multiplications and additions, in picojoules. */
double hone_cost_energy_pj(const hone_cost *c);

/* Cost of one node from the shapes of its values. */
hone_cost hone_node_cost(const hone_node *n);
/* MACs of one node (0 for ops without multiply-accumulates). */
int64_t hone_node_macs(const hone_node *n);
/* Sum over every node of g. */
hone_cost hone_graph_cost(const hone_graph *g);
/* Elements of the floating-point constants that nodes read (the weights). */
int64_t hone_graph_params(const hone_graph *g);

#endif
