#include <stdio.h>
#include <string.h>

#include "testutil.h"

hone_tensor *tu_tensor_f32(int rank, const int64_t *dims, const float *vals)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    if (hone_tensor_new(&ctx, HONE_DT_FLOAT, rank, dims, &t))
        return NULL;
    if (vals)
        memcpy(t->data, vals, sizeof(float) * (size_t)t->numel);
    return t;
}

const char *tu_src(const char *rel)
{
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", HONE_SOURCE_DIR, rel);
    return buf[k];
}

static uint32_t tu_rng = 77u;

void tu_seed(uint32_t seed)
{
    tu_rng = seed;
}

double tu_urand(void)
{
    tu_rng = tu_rng * 1664525u + 1013904223u;
    return (double)(tu_rng >> 8) / 8388608.0 - 1.0;
}

hone_tensor *tu_rand_f32(int rank, const int64_t *dims, double scale)
{
    hone_tensor *t = tu_tensor_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = (float)(tu_urand() * scale);
    return t;
}

hone_value *tu_const(hone_graph *g, const char *name, hone_tensor *t)
{
    hone_value *v = hone_graph_new_value(g, name);
    hone_value_set_data(v, t);
    return v;
}

hone_rt_window tu_window_2d(int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                            int64_t dil)
{
    hone_rt_window win = {.nsp = 2};
    for (int d = 0; d < 2; d++) {
        win.in[d] = d ? w : h;
        win.k[d] = k;
        win.stride[d] = stride;
        win.dil[d] = dil;
        win.pad[d] = win.pad_end[d] = pad;
        win.out[d] = (win.in[d] + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    }
    return win;
}

hone_graph *tu_graph_new(void)
{
    static hone_opset os = {"", 13};
    hone_graph *g = hone_graph_new();
    g->opsets = &os;
    g->n_opsets = 1;
    return g;
}
