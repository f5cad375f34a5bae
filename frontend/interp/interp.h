/*
 * Reference interpreter: runs a graph node by node through the op table's
 * kernels. It is the semantic reference for the backend and the training
 * engine, so it favours clarity over speed; intermediates are freed after
 * their last use.
 */
#ifndef HONE_INTERP_H
#define HONE_INTERP_H

#include "ir.h"

typedef struct hone_interp_hooks {
    /* Called for every node output once computed (for per-value comparison). */
    void (*on_value)(void *user, const hone_value *v, const hone_tensor *t);
    void *user;
} hone_interp_hooks;

/* Runs g on inputs (in g->inputs order); outputs[i] receives new tensors
 * (g->n_outputs of them) that the caller frees. hooks may be NULL. */
hone_status hone_interp_run(hone_ctx *ctx, const hone_graph *g, const hone_tensor **inputs,
                            hone_tensor **outputs, const hone_interp_hooks *hooks);

/* Checks that t fits the declared type of graph input v. */
hone_status hone_interp_check_input(hone_ctx *ctx, const hone_graph *g, const hone_value *v,
                                    const hone_tensor *t);

#endif
