/*
 * The op table, generated from frontend/ops/ops.def.
 */
#include <string.h>

#include "ir.h"

const hone_op_info hone_op_table[HONE_OP_COUNT] = {
    [HONE_OP_UNKNOWN] = {"<unknown>", "", 0, -1, 0, -1, NULL, NULL},
#define X(e, nm, dom, min_in, max_in, min_out, max_out, inf, ev) \
    [HONE_OP_##e] = {nm, dom, min_in, max_in, min_out, max_out, inf, ev},
#include "ops.def"
#undef X
};

hone_op hone_op_lookup(const char *domain, const char *name)
{
    const char *d = domain && strcmp(domain, "ai.onnx") ? domain : "";
    for (int i = 1; i < HONE_OP_COUNT; i++)
        if (!strcmp(hone_op_table[i].name, name) && !strcmp(hone_op_table[i].domain, d))
            return (hone_op)i;
    return HONE_OP_UNKNOWN;
}
