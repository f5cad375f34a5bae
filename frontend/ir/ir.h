/*
 * hone IR core: the module map.
 *
 * A hone_graph is a list of nodes in topological order over SSA values. Values
 * carry a dtype and a (possibly symbolic) shape; constant values (ONNX
 * initializers) carry their data in a hone_tensor owned by the graph. Graph
 * metadata (nodes, names, attributes) lives in one arena per graph and is freed
 * at once; tensor payloads are malloc'd separately so passes can replace them.
 *
 * Dimensions are int64: >= 0 is a known extent, HONE_DIM_UNKNOWN (-1) an
 * anonymous unknown, and -(k+2) the k-th named symbol of the graph (graph->syms),
 * so "N" in [N,3,224,224] survives inference and printing.
 *
 * Every op is one row of the X-macro table in frontend/ops/ops.def. Each row
 * names a shape/type inference function and an interpreter kernel; both see the
 * same hone_infer view so the interpreter and static inference never disagree.
 */
#ifndef HONE_IR_H
#define HONE_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hone/hone.h"

#define HONE_MAX_RANK 8
/* Most inputs or outputs one node may have (kernels keep per-node views on the stack). */
#define HONE_MAX_ARITY 4096
#define HONE_DIM_UNKNOWN (-1)
#define HONE_DIM_IS_KNOWN(d) ((d) >= 0)
#define HONE_DIM_SYM(k) (-(int64_t)(k)-2)
#define HONE_DIM_SYM_INDEX(d) ((int)(-(d)-2))

/* Invariant violations (bugs, never user mistakes) abort with file:line. */
#define HONE_ASSERT(c) \
    ((c) ? (void)0 : hone_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void hone_assert_fail(const char *what, const char *file, int line);

/* ===================== ctx.c: errors and limits ===================== */

typedef struct hone_limits {
    int64_t max_dim;      /* largest single dimension accepted */
    int64_t max_numel;    /* largest element count of one tensor */
    int64_t max_bytes;    /* largest total bytes one tensor may take */
    int64_t max_nodes;    /* largest node count of one graph */
    int64_t max_depth;    /* longest chain of dependent nodes */
    int64_t max_memory;   /* interpreter memory budget in bytes, 0 = none */
} hone_limits;

typedef struct hone_ctx {
    hone_status status;
    char msg[2048];
    const char *file;     /* the file being processed, for messages */
    hone_limits limits;
    int verbose;
} hone_ctx;

void hone_ctx_init(hone_ctx *ctx);
/* Defaults new contexts copy; set once at start-up, before any thread starts. */
void hone_limits_get_defaults(hone_limits *l);
void hone_limits_set_defaults(const hone_limits *l);
/* Records an error (printf-style) and returns its status code. */
hone_status hone_fail(hone_ctx *ctx, hone_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
hone_status hone_vfail(hone_ctx *ctx, hone_status st, const char *fmt, va_list ap);
/* Prefixes the current message with context ("while X: <old message>"). */
hone_status hone_fail_wrap(hone_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hone_ctx_clear(hone_ctx *ctx);

/* ===================== arena.c: bump allocator ===================== */

typedef struct hone_arena hone_arena;
hone_arena *hone_arena_new(void);
void hone_arena_free(hone_arena *a);
void *hone_arena_alloc(hone_arena *a, size_t n);   /* zeroed, 16-aligned */
char *hone_arena_strdup(hone_arena *a, const char *s);
char *hone_arena_strndup(hone_arena *a, const char *s, size_t n);
char *hone_arena_printf(hone_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ===================== dtype.c ===================== */

size_t hone_dtype_size(hone_dtype dt);       /* 0 for UNDEF; sizeof(char*) for STRING */
const char *hone_dtype_name(hone_dtype dt);  /* short name: f32, i64, bool... */
const char *hone_dtype_onnx_name(hone_dtype dt); /* FLOAT, INT64... */
bool hone_dtype_is_float(hone_dtype dt);
bool hone_dtype_is_int(hone_dtype dt);       /* signed or unsigned integer */
bool hone_dtype_is_signed(hone_dtype dt);
float hone_f16_to_f32(uint16_t h);
uint16_t hone_f32_to_f16(float f);
float hone_bf16_to_f32(uint16_t h);
uint16_t hone_f32_to_bf16(float f);

/* ===================== tensor.c: dense tensors ===================== */

typedef struct hone_tensor {
    hone_dtype dtype;
    int rank;
    int64_t dims[HONE_MAX_RANK];
    int64_t numel;
    void *data;          /* owned; STRING tensors hold char* per element */
} hone_tensor;

/* numel of dims with overflow and limit checks against ctx->limits. */
hone_status hone_shape_numel(hone_ctx *ctx, int rank, const int64_t *dims, int64_t *numel);
/* New zeroed tensor; checks limits and reports errors through ctx. */
hone_status hone_tensor_new(hone_ctx *ctx, hone_dtype dt, int rank, const int64_t *dims,
                            hone_tensor **out);
/* The same, contents not initialised (for kernels that write every element). */
hone_status hone_tensor_new_uninit(hone_ctx *ctx, hone_dtype dt, int rank, const int64_t *dims,
                                   hone_tensor **out);
hone_tensor *hone_tensor_clone(const hone_tensor *t);
void hone_tensor_free(hone_tensor *t);
size_t hone_tensor_nbytes(const hone_tensor *t);
/* Element access through double / int64 (any numeric dtype, bool, f16, bf16). */
double hone_tensor_get_f64(const hone_tensor *t, int64_t i);
void hone_tensor_set_f64(hone_tensor *t, int64_t i, double v);
int64_t hone_tensor_get_i64(const hone_tensor *t, int64_t i);
void hone_tensor_set_i64(hone_tensor *t, int64_t i, int64_t v);
/* Row-major strides of dims (elements). */
void hone_strides(int rank, const int64_t *dims, int64_t *strides);
/* "f32[1,3,224,224]" into buf. */
const char *hone_tensor_type_str(const hone_tensor *t, char *buf, size_t n);

/* ===================== graph.c: the IR ===================== */

enum { HONE_VAL_INPUT = 1, HONE_VAL_OUTPUT = 2, HONE_VAL_CONST = 4 };

struct hone_node;
struct hone_graph;

typedef struct hone_value {
    const char *name;
    int id;
    hone_dtype dtype;            /* HONE_DT_UNDEF when not known yet */
    int rank;                    /* -1 when not known */
    int64_t dims[HONE_MAX_RANK];
    hone_tensor *data;           /* constant contents, owned by the graph */
    struct hone_node *producer;  /* NULL for inputs and constants */
    int flags;
    int n_uses;                  /* maintained by hone_graph_update_uses */
} hone_value;

typedef enum hone_attr_kind {
    HONE_ATTR_UNDEF = 0,
    HONE_ATTR_FLOAT = 1,
    HONE_ATTR_INT = 2,
    HONE_ATTR_STRING = 3,
    HONE_ATTR_TENSOR = 4,
    HONE_ATTR_GRAPH = 5,
    HONE_ATTR_FLOATS = 6,
    HONE_ATTR_INTS = 7,
    HONE_ATTR_STRINGS = 8,
    HONE_ATTR_TENSORS = 9,
    HONE_ATTR_GRAPHS = 10,
} hone_attr_kind;

typedef struct hone_attr {
    const char *name;
    hone_attr_kind kind;
    float f;
    int64_t i;
    const char *s;          /* STRING (NUL-terminated copy) */
    size_t s_len;
    int n;                  /* element count of FLOATS/INTS/STRINGS */
    float *floats;
    int64_t *ints;
    const char **strings;
    hone_tensor *t;         /* TENSOR, owned by the graph */
} hone_attr;

#include "ops.h"

typedef struct hone_node {
    int id;
    hone_op op;              /* HONE_OP_UNKNOWN when not in the op table */
    const char *op_type;
    const char *domain;      /* "" for ai.onnx */
    const char *name;        /* never NULL; synthesised when the model has none */
    int opset;               /* opset version of its domain in this model */
    int n_in, n_out, n_attr;
    hone_value **in;         /* in[i] == NULL for an omitted optional input */
    hone_value **out;
    hone_attr *attrs;
} hone_node;

typedef struct hone_opset {
    const char *domain;
    int64_t version;
} hone_opset;

typedef struct hone_graph {
    hone_arena *arena;
    const char *name;
    const char *doc;
    hone_node **nodes;
    int n_nodes, cap_nodes;
    hone_value **values;
    int n_values, cap_values;
    hone_value **inputs;     /* graph inputs that are not constants */
    int n_inputs, cap_inputs;
    hone_value **outputs;
    int n_outputs, cap_outputs;
    const char **syms;       /* symbolic dimension names */
    int n_syms, cap_syms;
    hone_opset *opsets;
    int n_opsets;
    int64_t ir_version;
    const char *producer_name, *producer_version;
    int64_t model_version;
    struct hone_strmap *by_name;
    int fresh;               /* counter for generated names */
} hone_graph;

hone_graph *hone_graph_new(void);
void hone_graph_free(hone_graph *g);
/* Value by name, or NULL. */
hone_value *hone_graph_find(const hone_graph *g, const char *name);
/* New value with a unique name (name NULL or taken -> generated from hint). */
hone_value *hone_graph_new_value(hone_graph *g, const char *name);
/* Gives v constant contents t (ownership moves to the graph). */
void hone_value_set_data(hone_value *v, hone_tensor *t);
/* Node appended at the end; in/out arrays sized, filled by the caller. */
hone_node *hone_graph_add_node(hone_graph *g, const char *op_type, const char *domain,
                               const char *name, int n_in, int n_out);
/* Inserts n before node index pos. */
void hone_graph_insert_node(hone_graph *g, hone_node *n, int pos);
void hone_graph_add_input(hone_graph *g, hone_value *v);
void hone_graph_add_output(hone_graph *g, hone_value *v);
/* Symbol index for a dimension name (interned). */
int hone_graph_sym(hone_graph *g, const char *name);
int64_t hone_graph_opset(const hone_graph *g, const char *domain);
/* Adds attributes. Arrays are copied into the arena. */
hone_attr *hone_node_add_attr(hone_graph *g, hone_node *n, const char *name, hone_attr_kind k);
void hone_node_set_attr_int(hone_graph *g, hone_node *n, const char *name, int64_t v);
void hone_node_set_attr_float(hone_graph *g, hone_node *n, const char *name, float v);
void hone_node_set_attr_ints(hone_graph *g, hone_node *n, const char *name, const int64_t *v, int cnt);
void hone_node_set_attr_string(hone_graph *g, hone_node *n, const char *name, const char *s);
/* Sorts nodes topologically; fails naming a node on a cycle. */
hone_status hone_graph_toposort(hone_ctx *ctx, hone_graph *g);
/* Recomputes producer links and n_uses of every value. */
void hone_graph_update_uses(hone_graph *g);
/* Drops nodes whose outputs are all unused and values nobody references. */
int hone_graph_remove_dead(hone_graph *g);
/* Replaces every use of `from` (node inputs and graph outputs) by `to`. */
void hone_graph_replace_uses(hone_graph *g, hone_value *from, hone_value *to);
/* Deployment form: every value that is not a graph input or output gets a short
 * generated name (base 36, in graph order), node names and the doc string are
 * emptied. The graph computes the same; only the names a debugger would show go. */
void hone_graph_strip_names(hone_graph *g);
/* Deep copy of a graph (tensors included). */
hone_graph *hone_graph_clone(const hone_graph *g);

/* attribute lookup (attr.c) */
const hone_attr *hone_attr_find(const hone_node *n, const char *name);
int64_t hone_attr_int(const hone_node *n, const char *name, int64_t dflt);
float hone_attr_float(const hone_node *n, const char *name, float dflt);
const char *hone_attr_str(const hone_node *n, const char *name, const char *dflt);
/* Count of INTS elements and pointer to them, or -1 when absent. */
int hone_attr_ints(const hone_node *n, const char *name, const int64_t **v);
int hone_attr_floats(const hone_node *n, const char *name, const float **v);

/* ===================== infer.c: shape and type inference ===================== */

/* What an op sees of one input or output: type, shape and, when known, contents. */
typedef struct hone_tinfo {
    hone_dtype dtype;
    int rank;                    /* -1 unknown */
    int64_t dims[HONE_MAX_RANK];
    const hone_tensor *value;    /* contents when known (constants, interpreter) */
} hone_tinfo;

typedef struct hone_infer {
    hone_ctx *ctx;
    const hone_node *node;
    int opset;
    int n_in;
    const hone_tinfo **in;       /* in[i] NULL for an omitted optional input */
    int n_out;
    hone_tinfo *out;             /* to fill: dtype, rank, dims (and value if cheap) */
    struct hone_tensor_list *owned; /* values created during inference */
} hone_infer;

/* Interpreter view of one node execution. out[i] is preallocated when its
 * shape was fully known after inference; otherwise it is NULL and the kernel
 * creates it with hone_eval_alloc. */
typedef struct hone_eval {
    hone_ctx *ctx;
    const hone_node *node;
    int opset;
    int n_in;
    const hone_tensor **in;
    int n_out;
    hone_tensor **out;
} hone_eval;

typedef hone_status (*hone_infer_fn)(hone_infer *ic);
typedef hone_status (*hone_eval_fn)(hone_eval *ec);

/* Runs one node on concrete tensors (infer, allocate, eval); out[] receives
 * new tensors owned by the caller. `owned` may be NULL. */
hone_status hone_node_run(hone_ctx *ctx, const hone_node *n, const hone_tensor **in,
                          hone_tensor **out, struct hone_tensor_list *owned);
/* Infers every value of g; fills shapes, propagates small constants. */
hone_status hone_graph_infer(hone_ctx *ctx, hone_graph *g);
/* Error naming node and op ("node 'x' (Conv): ..."). */
hone_status hone_node_fail(hone_ctx *ctx, const hone_node *n, hone_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Allocates out[i] of an eval if the driver could not. */
hone_status hone_eval_alloc(hone_eval *ec, int i, hone_dtype dt, int rank, const int64_t *dims);
/* A tensor owned by the inference driver (freed when inference ends). */
hone_tensor *hone_infer_new_value(hone_infer *ic, hone_dtype dt, int rank, const int64_t *dims);
/* Sets out[i] to dtype and shape. */
void hone_infer_set(hone_infer *ic, int i, hone_dtype dt, int rank, const int64_t *dims);
/* Numpy-style broadcast of two shapes (symbolic dims kept when equal). */
hone_status hone_infer_broadcast(hone_infer *ic, int ra, const int64_t *da, int rb,
                                 const int64_t *db, int *r, int64_t *d);
/* Normalises axis a (may be negative) into [0, rank); error if out of range. */
hone_status hone_infer_axis(hone_infer *ic, int64_t a, int rank, int *out);
/* Reads a known 1-D integer input i into v (at most cap entries); returns count or -1. */
int hone_infer_const_ints(const hone_infer *ic, int i, int64_t *v, int cap);
/* True when every dim of info is known. */
bool hone_tinfo_static(const hone_tinfo *t);

/* ===================== verify.c ===================== */

/* Checks the structural invariants of g; the first violation is reported. */
hone_status hone_graph_verify(hone_ctx *ctx, const hone_graph *g);
/* Reports every node whose op is not in the op table, all at once. */
hone_status hone_graph_check_supported(hone_ctx *ctx, const hone_graph *g);

/* ===================== print.c ===================== */

#include <stdio.h>
/* Stable, readable text dump, one node per line. */
void hone_graph_print(FILE *f, const hone_graph *g);
/* "f32[N,3,224,224]" for a value. */
const char *hone_value_type_str(const hone_graph *g, const hone_value *v, char *buf, size_t n);
const char *hone_dims_str(const hone_graph *g, int rank, const int64_t *dims, char *buf, size_t n);

/* ===================== parse.c ===================== */

/* Reads the text dump back into a graph (sorted and verified, not inferred). */
hone_status hone_graph_parse(hone_ctx *ctx, const char *text, hone_graph **out);

#endif
