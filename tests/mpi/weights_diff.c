/*
 * weights_diff A.onnx B.onnx TOL: compares the float constants of two models
 * of the same graph by name. Prints how many were compared, the largest
 * absolute difference and the largest difference relative to the tensor's
 * largest magnitude; exits 0 when that relative difference is at most TOL
 * (and something was compared), 1 when it is larger, 2 on an error (a file
 * that does not load, a constant missing from B or of another size).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnx.h"

/* Largest |a - b| and max |a| of two float tensors of equal size. */
static void diff(const hone_tensor *a, const hone_tensor *b, double *abs_d, double *scale)
{
    const float *x = a->data, *y = b->data;
    *abs_d = *scale = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        *abs_d = d > *abs_d || isnan(d) ? d : *abs_d;
        *scale = fabs(x[i]) > *scale ? fabs(x[i]) : *scale;
    }
}

static int compare(const hone_graph *ga, const hone_graph *gb, double tol)
{
    int n = 0;
    double worst_abs = 0, worst_rel = 0;
    for (int i = 0; i < ga->n_values; i++) {
        const hone_value *v = ga->values[i];
        if (!v->data || v->data->dtype != HONE_DT_FLOAT || !v->name)
            continue;
        const hone_value *w = hone_graph_find(gb, v->name);
        if (!w || !w->data || w->data->dtype != HONE_DT_FLOAT || w->data->numel != v->data->numel) {
            fprintf(stderr, "weights_diff: '%s' is missing from the second model or differs in "
                    "size\n", v->name);
            return 2;
        }
        double d, s;
        diff(v->data, w->data, &d, &s);
        double rel = d / (s > 1e-12 ? s : 1e-12);
        worst_abs = d > worst_abs || isnan(d) ? d : worst_abs;
        worst_rel = rel > worst_rel || isnan(rel) ? rel : worst_rel;
        n++;
    }
    printf("compared %d tensors: max abs diff %.3g, max rel diff %.3g (tolerance %.3g)\n", n,
           worst_abs, worst_rel, tol);
    return n > 0 && worst_rel <= tol ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: weights_diff A.onnx B.onnx TOL\n");
        return 2;
    }
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *a = NULL, *b = NULL;
    if (hone_onnx_load(&ctx, argv[1], &a) || hone_onnx_load(&ctx, argv[2], &b)) {
        fprintf(stderr, "weights_diff: %s\n", ctx.msg);
        hone_graph_free(a);
        return 2;
    }
    int rc = compare(a, b, atof(argv[3]));
    hone_graph_free(a);
    hone_graph_free(b);
    return rc;
}
