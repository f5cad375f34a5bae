/*
 * The op table: one X-macro (frontend/ops/ops.def) generates the op enum, the
 * table of names, arities and functions, and the function prototypes. Adding an
 * op means adding one row and writing its functions; nothing else is kept in
 * step by hand. Column legend: see ops.def.
 */
#ifndef HONE_OPS_H
#define HONE_OPS_H

struct hone_infer;
struct hone_eval;

typedef enum hone_op {
    HONE_OP_UNKNOWN = 0,
#define X(e, name, dom, min_in, max_in, min_out, max_out, infer, eval) HONE_OP_##e,
#include "ops.def"
#undef X
    HONE_OP_COUNT
} hone_op;

typedef struct hone_op_info {
    const char *name;
    const char *domain;     /* "" = ai.onnx */
    int min_in, max_in;     /* max -1 = variadic */
    int min_out, max_out;
    hone_status (*infer)(struct hone_infer *ic);
    hone_status (*eval)(struct hone_eval *ec);
} hone_op_info;

extern const hone_op_info hone_op_table[HONE_OP_COUNT];

/* Op for (domain, name); "ai.onnx" and "" are the same domain. */
hone_op hone_op_lookup(const char *domain, const char *name);

#define X(e, name, dom, min_in, max_in, min_out, max_out, infer, eval) \
    hone_status infer(struct hone_infer *ic);                           \
    hone_status eval(struct hone_eval *ec);
#include "ops.def"
#undef X

#endif
