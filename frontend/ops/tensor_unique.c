/*
 * Tensor family: Unique.
 *
 * The input is seen as n items: its elements (no axis) or its slices along
 * the axis, compared lexicographically element by element. A stable merge
 * sort of the item numbers groups equal items with the first occurrence
 * first; groups are then numbered in sorted order (sorted=1) or in order of
 * first occurrence (sorted=0), which yields all four outputs: the unique
 * items, the index of each one's first occurrence, each input item's group,
 * and the group sizes.
 */
#include <stdlib.h>

#include "hone_rt.h"
#include "tensor_ops.h"

typedef struct items {
    const hone_tensor *x;
    int64_t outer, n, inner; /* x viewed as [outer, n, inner] */
} items;

/* Three-way comparison of elements a and b of t. */
static int elem_cmp(const hone_tensor *t, int64_t a, int64_t b)
{
    if (t->dtype == HONE_DT_STRING) {
        const char *x = ((char **)t->data)[a], *y = ((char **)t->data)[b];
        return strcmp(x ? x : "", y ? y : "");
    }
    if (hone_dtype_is_int(t->dtype)) {
        int64_t x = hone_tensor_get_i64(t, a), y = hone_tensor_get_i64(t, b);
        return (x > y) - (x < y);
    }
    double x = hone_tensor_get_f64(t, a), y = hone_tensor_get_f64(t, b);
    return (x > y) - (x < y);
}

/* Lexicographic comparison of items a and b. */
static int item_cmp(const items *it, int64_t a, int64_t b)
{
    for (int64_t o = 0; o < it->outer; o++)
        for (int64_t i = 0; i < it->inner; i++) {
            int c =
                elem_cmp(it->x, (o * it->n + a) * it->inner + i, (o * it->n + b) * it->inner + i);
            if (c)
                return c;
        }
    return 0;
}

/* item_cmp for the runtime's stable sort. */
static int item_order(const void *it, int64_t a, int64_t b)
{
    return item_cmp(it, a, b);
}

typedef struct groups {
    int64_t u; /* number of unique items */
    int64_t *first; /* by output position: first occurrence */
    int64_t *count; /* by output position: occurrences */
    int64_t *inv; /* by item: output position */
} groups;

/* Groups equal items; positions follow sorted order or first occurrence. */
static void group_items(const items *it, const int64_t *ord, bool sorted, groups *g)
{
    int64_t n = it->n, *gid = g->count; /* gid per item, reuses count as scratch */
    g->u = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k == 0 || item_cmp(it, ord[k - 1], ord[k]))
            g->u++;
        gid[ord[k]] = g->u - 1;
    }
    int64_t *pos = malloc(sizeof *pos * (size_t)(g->u + 1)), next = 0;
    HONE_ASSERT(pos);
    for (int64_t p = 0; p < g->u; p++)
        pos[p] = sorted ? p : -1;
    for (int64_t j = 0; j < n; j++) {
        if (pos[gid[j]] < 0)
            pos[gid[j]] = next++;
        g->inv[j] = pos[gid[j]];
    }
    for (int64_t p = 0; p < g->u; p++)
        g->count[p] = 0;
    for (int64_t j = 0; j < n; j++)
        if (g->count[g->inv[j]]++ == 0)
            g->first[g->inv[j]] = j;
    free(pos);
}

/* Unique: x -> Y (unique items), indices[u], inverse_indices[n], counts[u]. */
hone_status infer_unique(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    const hone_attr *a = hone_attr_find(ic->node, "axis");
    int axis = 0;
    int64_t n = x->rank >= 0 ? tf_dims_prod(x->rank, x->dims) : HONE_DIM_UNKNOWN;
    if (a && x->rank >= 0) {
        hone_status st = tf_axis(ic, a->i, x->rank, &axis);
        if (st)
            return st;
        n = x->dims[axis];
    }
    int64_t d[HONE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        d[i] = i == axis ? HONE_DIM_UNKNOWN : x->dims[i];
    hone_infer_set(ic, 0, x->dtype, a ? x->rank : 1, a ? d : NULL);
    for (int i = 1; i < ic->n_out; i++)
        hone_infer_set(ic, i, HONE_DT_INT64, 1, i == 2 ? &n : NULL);
    return HONE_OK;
}

/* Allocates the outputs of Unique and fills them from the groups. */
static hone_status unique_outputs(hone_eval *ec, const items *it, int axis, bool has_axis,
                                  const groups *g)
{
    const hone_tensor *x = it->x;
    int64_t d[HONE_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[axis] = g->u;
    hone_status st = hone_eval_alloc(ec, 0, x->dtype, has_axis ? x->rank : 1, has_axis ? d : &g->u);
    for (int i = 1; !st && i < ec->n_out; i++)
        if (ec->node->out[i])
            st = hone_eval_alloc(ec, i, HONE_DT_INT64, 1, i == 2 ? &it->n : &g->u);
    if (st)
        return st;
    for (int64_t p = 0; p < g->u; p++)
        for (int64_t o = 0; o < it->outer; o++)
            tf_copy(ec->out[0], (o * g->u + p) * it->inner, x,
                    (o * it->n + g->first[p]) * it->inner, it->inner);
    const int64_t *src[4] = {NULL, g->first, g->inv, g->count};
    for (int i = 1; i < ec->n_out && i < 4; i++)
        if (ec->out[i])
            memcpy(ec->out[i]->data, src[i], sizeof(int64_t) * (size_t)ec->out[i]->numel);
    return HONE_OK;
}

/* Sorts item numbers, groups equal items and writes the four outputs. */
hone_status eval_unique(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    const hone_attr *a = hone_attr_find(ec->node, "axis");
    int axis = a ? (int)(a->i < 0 ? a->i + x->rank : a->i) : 0;
    items it = {x, 1, x->numel, 1};
    if (a) {
        it.n = x->dims[axis];
        for (int i = 0; i < x->rank; i++)
            *(i < axis ? &it.outer : &it.inner) *= i == axis ? 1 : x->dims[i];
    }
    size_t sz = sizeof(int64_t) * (size_t)(it.n + 1);
    int64_t *ord = malloc(sz), *tmp = malloc(sz), *first = malloc(sz), *count = malloc(sz);
    int64_t *inv = malloc(sz);
    hone_status st = HONE_OK;
    if (!ord || !tmp || !first || !count || !inv)
        st = hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; !st && i < it.n; i++)
        ord[i] = i;
    if (!st) {
        groups g = {0, first, count, inv};
        hone_rt_stable_sort(ord, tmp, it.n, item_order, &it);
        group_items(&it, ord, hone_attr_int(ec->node, "sorted", 1) != 0, &g);
        st = unique_outputs(ec, &it, axis, a != NULL, &g);
    }
    free(ord);
    free(tmp);
    free(first);
    free(count);
    free(inv);
    return st;
}
