/*
 * dce: dead code elimination. A node is dead when none of its outputs is read
 * by a live node or is a graph output; removal repeats until nothing changes
 * (hone_graph_remove_dead), then constants and values nothing references are
 * dropped. Graph inputs stay even when unused: they are the model's interface.
 */
#include "passes.h"

hone_status hone_pass_dce(hone_pass_ctx *pc, hone_graph *g)
{
    int values = g->n_values;
    hone_pass_note(pc, "nodes removed", hone_graph_remove_dead(g));
    hone_pass_note(pc, "values removed", values - g->n_values);
    return HONE_OK;
}
