/*
 * Attribute lookup with defaults, the way op kernels read them.
 */
#include <stdint.h>
#include <string.h>

#include "ir.h"

const hone_attr *hone_attr_find(const hone_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

int64_t hone_attr_int(const hone_node *n, const char *name, int64_t dflt)
{
    const hone_attr *a = hone_attr_find(n, name);
    if (!a)
        return dflt;
    if (a->kind != HONE_ATTR_FLOAT)
        return a->i;
    /* saturating: casting a float outside int64's range is undefined */
    if (!(a->f == a->f))
        return 0;
    return a->f >= 9.2e18f ? INT64_MAX : a->f <= -9.2e18f ? INT64_MIN : (int64_t)a->f;
}

float hone_attr_float(const hone_node *n, const char *name, float dflt)
{
    const hone_attr *a = hone_attr_find(n, name);
    if (!a)
        return dflt;
    return a->kind == HONE_ATTR_INT ? (float)a->i : a->f;
}

const char *hone_attr_str(const hone_node *n, const char *name, const char *dflt)
{
    const hone_attr *a = hone_attr_find(n, name);
    return a && a->kind == HONE_ATTR_STRING ? a->s : dflt;
}

int hone_attr_ints(const hone_node *n, const char *name, const int64_t **v)
{
    const hone_attr *a = hone_attr_find(n, name);
    if (!a || a->kind != HONE_ATTR_INTS)
        return -1;
    *v = a->ints;
    return a->n;
}

int hone_attr_floats(const hone_node *n, const char *name, const float **v)
{
    const hone_attr *a = hone_attr_find(n, name);
    if (!a || a->kind != HONE_ATTR_FLOATS)
        return -1;
    *v = a->floats;
    return a->n;
}
