/*
 * prune-l1: L1-norm filter pruning (Li et al., ICLR 2017), the naive
 * ablation of scop. Same structure rule, selection, removal, BN
 * re-estimation and fine-tuning budget (prune_common.c); only the scores
 * differ: the L1 norm of each output filter of the conv as given (BN folded
 * into it, so the norm includes the BN scale), with no training. A layer's
 * norm for the global target is its mean filter norm.
 */
#include <math.h>

#include "prune.h"

static hone_status l1_score(hone_prune_job *job)
{
    for (int k = 0; k < job->n; k++) {
        hone_prune_layer *l = &job->layers[k];
        const hone_tensor *w = l->conv->in[1]->data;
        int64_t per = w->numel / l->channels;
        double sum = 0;
        for (int64_t c = 0; c < l->channels; c++) {
            double s = 0;
            for (int64_t i = 0; i < per; i++)
                s += fabs(hone_tensor_get_f64(w, c * per + i));
            l->score[c] = s;
            sum += s;
        }
        l->norm = sum > 0 ? sum / (double)l->channels : 1;
    }
    return HONE_OK;
}

hone_status hone_pass_prune_l1(hone_pass_ctx *pc, hone_graph *g)
{
    return hone_prune_run(pc, g, "prune-l1", l1_score);
}
