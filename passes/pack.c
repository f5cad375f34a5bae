/*
 * pack-lowbit: hone's dense form of low-bit weights. A DequantizeLinear of
 * constant int8 codes whose values sit on one of lowbit.h's grids becomes
 * hone.DequantizePacked of b-bit level indices (index = (code + offset) /
 * step), so a 2-bit weight takes a quarter of a byte instead of one. The
 * dequantized weights are bit-identical: both ops compute code * scale[c] in
 * double and round once to float. slb, quantize-rtn and quantize-ste call
 * lb_pack for format=packed; the pass converts any model written in the
 * standard form.
 */
#include <stdlib.h>
#include <string.h>

#include "lowbit.h"

/* Smallest grid (lowbit.h) holding every code; bits 0 when none does. */
static lb_grid grid_of_codes(const int8_t *q, int64_t n)
{
    bool odd = true;
    int mx = 0;
    for (int64_t i = 0; i < n; i++) {
        int v = q[i] < 0 ? -q[i] : q[i];
        odd = odd && (v & 1);
        mx = v > mx ? v : mx;
    }
    for (int b = 1; odd && b < 8; b++)
        if (mx <= (1 << b) - 1)
            return lb_grid_of(b);
    lb_grid none = {0, 0, 0, 0};
    return mx <= 127 ? lb_grid_of(8) : none;
}

static bool zero_points(const hone_node *n)
{
    if (n->n_in < 3 || !n->in[2])
        return true;
    const hone_tensor *z = n->in[2]->data;
    if (!z)
        return false;
    for (int64_t i = 0; i < z->numel; i++)
        if (hone_tensor_get_i64(z, i))
            return false;
    return true;
}

/* Whether DequantizeLinear n has packable constant int8 per-axis-0 weights. */
static bool packable(const hone_node *n)
{
    if (!hone_pass_is_op(n, "DequantizeLinear") || n->n_in < 2 || !hone_pass_is_const(n->in[0]) ||
        !hone_pass_is_const(n->in[1]) || n->in[0]->data->dtype != HONE_DT_INT8 ||
        n->in[1]->data->dtype != HONE_DT_FLOAT || !zero_points(n))
        return false;
    const hone_tensor *q = n->in[0]->data, *s = n->in[1]->data;
    if (q->rank < 1 || q->rank > HONE_MAX_RANK || s->rank > 1)
        return false;
    return s->numel == 1 || (hone_attr_int(n, "axis", 1) == 0 && s->numel == q->dims[0]);
}

/* Replaces DequantizeLinear n by hone.DequantizePacked on grid gr; the new
 * names are short ("pk<k>"): in a 2-bit model names are a good part of the file. */
static void pack_one(hone_graph *g, hone_node *n, const lb_grid *gr, int k)
{
    const hone_tensor *q = n->in[0]->data, *s = n->in[1]->data;
    int64_t bytes = (q->numel * gr->bits + 7) / 8, c = q->dims[0];
    hone_tensor *pt = lb_new_tensor(HONE_DT_UINT8, 1, &bytes), *st = lb_new_tensor(HONE_DT_FLOAT, 1, &c);
    uint8_t *p = pt->data;
    const int8_t *qv = q->data;
    for (int64_t i = 0; i < q->numel; i++) {
        unsigned v = (unsigned)((qv[i] + gr->qmax) / gr->step);
        for (int b = 0; b < gr->bits; b++)
            if (v >> b & 1u)
                p[(i * gr->bits + b) / 8] |= (uint8_t)(1u << ((i * gr->bits + b) % 8));
    }
    for (int64_t j = 0; j < c; j++)
        ((float *)st->data)[j] = (float)hone_tensor_get_f64(s, s->numel == 1 ? 0 : j);
    hone_node *d = hone_graph_add_node(g, "DequantizePacked", "hone",
                                       hone_arena_printf(g->arena, "pk%d", k), 2, 1);
    d->in[0] = hone_pass_new_const(g, pt, hone_arena_printf(g->arena, "pk%d_q", k));
    d->in[1] = hone_pass_new_const(g, st, hone_arena_printf(g->arena, "pk%d_s", k));
    hone_node_set_attr_int(g, d, "bits", gr->bits);
    hone_node_set_attr_int(g, d, "step", gr->step);
    hone_node_set_attr_int(g, d, "offset", gr->qmax);
    hone_node_set_attr_ints(g, d, "shape", q->dims, q->rank);
    d->out[0] = n->out[0];
    n->out[0] = hone_graph_new_value(g, NULL);
    if (!(d->out[0]->flags & HONE_VAL_OUTPUT)) {
        hone_value *w = hone_graph_new_value(g, hone_arena_printf(g->arena, "pk%d_w", k));
        hone_graph_replace_uses(g, d->out[0], w);
        d->out[0] = w;
    }
}

int lb_pack(hone_graph *g)
{
    int count = 0, n0 = g->n_nodes;
    for (int i = 0; i < n0; i++) {
        hone_node *n = g->nodes[i];
        if (!packable(n))
            continue;
        lb_grid gr = grid_of_codes(n->in[0]->data->data, n->in[0]->data->numel);
        if (!gr.bits)
            continue;
        if (!count)
            hone_pass_add_opset(g, "hone", 1);
        pack_one(g, n, &gr, count++);
    }
    hone_graph_update_uses(g);
    hone_graph_remove_dead(g);
    return count;
}

hone_status hone_pass_pack_lowbit(hone_pass_ctx *pc, hone_graph *g)
{
    hone_pass_note(pc, "weights packed", lb_pack(g));
    return HONE_OK;
}
