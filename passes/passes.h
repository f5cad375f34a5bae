/*
 * passes: the pass manager and hone's graph optimisations. The module map.
 *
 * Every pass has one signature, hone_status fn(hone_pass_ctx *pc, hone_graph *g),
 * and one row in the pass table (table.c): name, one-line summary, function,
 * what it requires, and its typed options with defaults. A pipeline is text,
 * "fold-constants,dce,fold-bn,scop{rate=0.45,seed=1}", parsed against that
 * table (pipeline.c). One driver loop (manager.c) runs the passes and, after
 * each, sorts, verifies and re-infers the graph, so a pass may leave nodes out
 * of order and types stale; it also times each pass, dumps the graph when
 * asked, skips disabled passes (to bisect a wrong result) and writes a JSON
 * report. Passes rewrite the graph in place; shared rewrite helpers live in
 * util.c. -O0..-O3 name default pipelines.
 */
#ifndef HONE_PASSES_H
#define HONE_PASSES_H

#include <stdio.h>

#include "ir.h"

/* ===================== table.c: the pass table ===================== */

typedef enum hone_opt_kind {
    HONE_OPT_INT,
    HONE_OPT_FLOAT,
    HONE_OPT_STRING,
    HONE_OPT_BOOL
} hone_opt_kind;

/* One typed pass option; dflt is written as pipeline text ("0.5", "true"). */
typedef struct hone_pass_opt {
    const char *name;
    hone_opt_kind kind;
    const char *dflt;
    const char *help;
} hone_pass_opt;

#define HONE_PASS_MAX_OPTS 16

struct hone_pass_ctx;
typedef hone_status (*hone_pass_fn)(struct hone_pass_ctx *pc, hone_graph *g);

typedef struct hone_pass_info {
    const char *name;
    const char *summary;
    hone_pass_fn run;
    const char *requires;                  /* what must hold before it runs */
    hone_pass_opt opts[HONE_PASS_MAX_OPTS]; /* ends at the first NULL name */
} hone_pass_info;

extern const hone_pass_info hone_pass_table[];
extern const int hone_pass_count;

/* The table row named `name`, or NULL. */
const hone_pass_info *hone_pass_find(const char *name);
/* "a, b, c": every pass name, for error messages. */
const char *hone_pass_names(char *buf, size_t n);
/* Writes the table as Markdown (docs/PASSES.md is this output). */
void hone_pass_table_markdown(FILE *f);

/* ===================== pipeline.c: pipeline text ===================== */

typedef struct hone_opt_value {
    int64_t i;
    double f;
    bool b;
    char s[128];
} hone_opt_value;

/* One pass of a pipeline with its option values (table order). */
typedef struct hone_pass_inst {
    const hone_pass_info *info;
    hone_opt_value opts[HONE_PASS_MAX_OPTS];
} hone_pass_inst;

typedef struct hone_pipeline {
    hone_pass_inst *items;   /* malloc'd */
    int n;
} hone_pipeline;

/* Parses "a,b{k=v,...},..." against the pass table. Errors list the valid
 * passes or options; an empty text is an empty pipeline. */
hone_status hone_pipeline_parse(hone_ctx *ctx, const char *text, hone_pipeline *out);
void hone_pipeline_free(hone_pipeline *p);
/* Pipeline text of optimisation level 0..3, or NULL for another level. */
const char *hone_pipeline_level(int level);
/* Canonical text of one pass with the options that differ from defaults. */
const char *hone_pass_inst_str(const hone_pass_inst *pi, char *buf, size_t n);

/* ===================== manager.c: the driver ===================== */

#define HONE_PASS_MAX_COUNTERS 8

/* What one pass did: sizes before and after, cost, named counters. */
typedef struct hone_pass_stats {
    char text[256];
    bool disabled;
    int64_t nodes_before, nodes_after;
    int64_t params_before, params_after;
    int64_t macs_before, macs_after;       /* -1 when no cost function */
    double wall_s;
    int64_t rss_delta_kb;                  /* growth of peak RSS during the pass */
    int n_counters;
    struct { const char *what; int64_t n; } counters[HONE_PASS_MAX_COUNTERS];
    char *detail;                          /* pass-specific JSON value (hone_pass_detail), or NULL */
    size_t detail_len;
} hone_pass_stats;

/* Data for passes that calibrate or train (the --data, --labels and --targets
 * flags of opt and compile): samples already normalised and shaped to the
 * model's first input. A pass holds out val_split of them (hone_fit_split's
 * fixed draw) for selection and its before/after metric and trains on the
 * rest; a held-out test set never comes here. */
typedef struct hone_pass_data {
    const hone_tensor *x;         /* float [N, ...] */
    const hone_tensor *labels;    /* N integers; NULL: label-free (distil from the original) */
    const hone_tensor *targets;   /* float [N, ...] shaped like the output (image-to-image), or NULL */
    double val_split;             /* share in (0,1) or a sample count; 0: nothing held out */
    const char *path;             /* the --data file, for messages */
} hone_pass_data;

/* What a pass sees besides the graph: context, its options, a report sink,
 * the calibration data (NULL when none was given) and a progress stream. */
typedef struct hone_pass_ctx {
    hone_ctx *ctx;
    const hone_pass_inst *inst;
    hone_pass_stats *stats;
    const hone_pass_data *data;
    FILE *log;                    /* human-readable progress and report lines (stderr) */
} hone_pass_ctx;

int64_t hone_pass_opt_int(const hone_pass_ctx *pc, const char *name);
double hone_pass_opt_float(const hone_pass_ctx *pc, const char *name);
bool hone_pass_opt_bool(const hone_pass_ctx *pc, const char *name);
const char *hone_pass_opt_str(const hone_pass_ctx *pc, const char *name);
/* Report sink: adds n to the pass's counter `what` (a string literal). */
void hone_pass_note(hone_pass_ctx *pc, const char *what, int64_t n);
/* Appends text to the pass's "detail" entry of the --report JSON; the pass
 * writes one valid JSON value in pieces (per-layer tables, phase times,
 * metrics before and after). */
void hone_pass_detail(hone_pass_ctx *pc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal (as hone_json_string writes it) appended to the detail. */
void hone_pass_detail_string(hone_pass_ctx *pc, const char *s);
/* One progress or report line on the pass's log stream, prefixed "[pass] ". */
void hone_pass_log(hone_pass_ctx *pc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The calibration data, or an error naming the pass and the flags to give
 * when there is none (why: what it is needed for). */
hone_status hone_pass_need_data(hone_pass_ctx *pc, const char *why, const hone_pass_data **out);
/* Frees the detail strings of n stats rows (hone_passes_run's callers). */
void hone_pass_stats_release(hone_pass_stats *s, int n);

/* Multiply-accumulates of one node (hone_node_macs of cost.h fits); pluggable
 * so the report shows FLOPs when a cost model is linked in. */
typedef int64_t (*hone_cost_fn)(const hone_node *n);

typedef struct hone_passes_opts {
    const char *print_after;   /* comma-separated pass names or "all"; NULL: none */
    const char *print_dir;     /* dumps as DIR/NN-name.txt; NULL: to print_stream */
    FILE *print_stream;        /* NULL: stderr */
    const char **disabled;     /* pass names never run */
    int n_disabled;
    bool time_passes;          /* table of wall time and peak RSS growth */
    FILE *time_stream;         /* NULL: stderr */
    const char *report_path;   /* per-pass JSON report; NULL: none */
    hone_cost_fn macs;         /* NULL: no FLOPs in the report */
    const hone_pass_data *data; /* calibration/training data for passes that use it; may be NULL */
    FILE *log_stream;          /* pass progress lines; NULL: stderr */
} hone_passes_opts;

/* Runs the pipeline on g: sort, verify and infer before the first pass and
 * after each one. opts may be NULL. stats (may be NULL) receives p->n rows. */
hone_status hone_passes_run(hone_ctx *ctx, hone_graph *g, const hone_pipeline *p,
                            const hone_passes_opts *opts, hone_pass_stats *stats);
/* Writes s as a JSON string literal. */
void hone_json_string(FILE *f, const char *s);

/* ===================== util.c: rewrite helpers ===================== */

/* True when n is the ai.onnx op op_type. */
bool hone_pass_is_op(const hone_node *n, const char *op_type);
/* True for ops whose result is random (never folded or merged). */
bool hone_pass_is_random(const hone_node *n);
/* True when a and b have the same rank and equal known dims (numbers or the same symbol). */
bool hone_pass_same_shape(const hone_value *a, const hone_value *b);
/* True when name is an item of the comma-separated list. */
bool hone_pass_in_list(const char *list, const char *name);
/* Shape's [start, end) range over an input of rank r (opset 15 attributes, clamped). */
void hone_pass_shape_range(const hone_node *n, int64_t r, int64_t *start, int64_t *end);
/* True when v holds constant contents. */
bool hone_pass_is_const(const hone_value *v);
/* True when v has concrete rank and dims. */
bool hone_pass_static(const hone_value *v);
/* The only node reading v, or NULL when v has other readers or is a graph output. */
hone_node *hone_pass_single_user(const hone_graph *g, const hone_value *v);
/* New constant value holding t (owned by the graph), named after hint. */
hone_value *hone_pass_new_const(hone_graph *g, hone_tensor *t, const char *hint);
/* 1-D int64 constant of n values. */
hone_value *hone_pass_new_ints(hone_ctx *ctx, hone_graph *g, const int64_t *v, int n,
                               const char *hint);
/* Removes n from the graph (its attribute tensors freed); uses are recomputed. */
void hone_pass_remove_node(hone_graph *g, hone_node *n);
/* Makes the readers of n's output `out` read `in` instead, keeping graph
 * output names (in's producer then produces out). False when impossible. */
bool hone_pass_bypass(hone_graph *g, hone_node *n, hone_value *out, hone_value *in);
/* Sets input idx of n to v, growing the input list (with omitted inputs) if needed. */
void hone_pass_set_input(hone_graph *g, hone_node *n, int idx, hone_value *v);
/* Index of n in g->nodes. */
int hone_pass_index(const hone_graph *g, const hone_node *n);
/* Adds (domain, version) to the graph's opset imports when missing. */
void hone_pass_add_opset(hone_graph *g, const char *domain, int64_t version);
/* Reads a constant integer vector (at most cap); -1 when v is not one. */
int hone_pass_const_ints(const hone_value *v, int64_t *out, int cap);

/* ===================== the passes (one file each) ===================== */

hone_status hone_pass_fold_constants(hone_pass_ctx *pc, hone_graph *g);   /* fold_constants.c */
hone_status hone_pass_fold_shapes(hone_pass_ctx *pc, hone_graph *g);      /* fold_shapes.c */
hone_status hone_pass_dce(hone_pass_ctx *pc, hone_graph *g);              /* dce.c */
hone_status hone_pass_cse(hone_pass_ctx *pc, hone_graph *g);              /* cse.c */
hone_status hone_pass_remove_identity(hone_pass_ctx *pc, hone_graph *g);  /* remove_identity.c */
hone_status hone_pass_fold_bn(hone_pass_ctx *pc, hone_graph *g);          /* fold_bn.c */
hone_status hone_pass_simplify_reshape(hone_pass_ctx *pc, hone_graph *g); /* simplify_reshape.c */
hone_status hone_pass_fuse_conv(hone_pass_ctx *pc, hone_graph *g);        /* fuse_conv.c */
hone_status hone_pass_recalibrate_bn(hone_pass_ctx *pc, hone_graph *g); /* train/bnstat.c */
hone_status hone_pass_unfold_bn(hone_pass_ctx *pc, hone_graph *g);        /* unfold_bn.c */
hone_status hone_pass_abm(hone_pass_ctx *pc, hone_graph *g);              /* abm.c */
hone_status hone_pass_binarize(hone_pass_ctx *pc, hone_graph *g);        /* binarize.c */
hone_status hone_pass_adder(hone_pass_ctx *pc, hone_graph *g);            /* adder.c */
/* AdderNet's adaptive gradient scaling, in place: d <- eta sqrt(n) d / ||d||_2 (d = 0 stays). */
void hone_adder_scale_grad(float *d, int64_t n, double eta);
hone_status hone_pass_slb(hone_pass_ctx *pc, hone_graph *g);              /* slb.c */
hone_status hone_pass_quantize_rtn(hone_pass_ctx *pc, hone_graph *g);     /* lowbit_passes.c */
hone_status hone_pass_quantize_ste(hone_pass_ctx *pc, hone_graph *g);     /* lowbit_passes.c */
hone_status hone_pass_pack_lowbit(hone_pass_ctx *pc, hone_graph *g);      /* pack.c */
hone_status hone_pass_qdq_to_integer(hone_pass_ctx *pc, hone_graph *g);   /* qdq_integer.c */
hone_status hone_pass_scop(hone_pass_ctx *pc, hone_graph *g);             /* scop.c */
hone_status hone_pass_prune_l1(hone_pass_ctx *pc, hone_graph *g);         /* prune_l1.c */

/* unfold_bn.c as a library call for method passes: inserts a function-
 * preserving BatchNormalization after every Conv (constant float weights, no
 * BN reader) that select accepts (NULL: all), with statistics from the first
 * `samples` rows of x (normalised, model-shaped; NULL: mean 0, var 1).
 * *count (may be NULL) receives the number inserted. */
hone_status hone_unfold_bn(hone_ctx *ctx, hone_graph *g, const hone_tensor *x, int64_t samples,
                           double eps, bool (*select)(const hone_node *, void *), void *user,
                           int *count);

/* binary_portable.c: rewrites every hone.BinaryConv as standard ONNX (a float
 * Conv with +-alpha weights, its input through Where(Less(X, T), -1, 1) when
 * the activations are binary), for ONNX Runtime; the hone opset stays
 * declared only while hone-domain nodes remain. *count (may be NULL)
 * receives the number rewritten. */
hone_status hone_binary_to_onnx(hone_ctx *ctx, hone_graph *g, int *count);

/* ===================== symdim.c: symbolic dimension algebra ===================== */

/* A dimension as coef * product of symbols (exponents per graph symbol); the
 * graph stores such products as symbols named like "8*N". */
#define HONE_SYMDIM_MAX 4
typedef struct hone_symdim {
    int64_t coef;                  /* 0: unknown */
    int n;
    int sym[HONE_SYMDIM_MAX];      /* atomic symbol names' indices, sorted */
    int pow[HONE_SYMDIM_MAX];
} hone_symdim;

/* Dim d of the IR (known, symbol or unknown) as a product. */
hone_symdim hone_symdim_of(hone_graph *g, int64_t d);
/* The IR dim for s: a number, a (possibly new) symbol, or HONE_DIM_UNKNOWN. */
int64_t hone_symdim_to_dim(hone_graph *g, const hone_symdim *s);
hone_symdim hone_symdim_mul(const hone_symdim *a, const hone_symdim *b);
/* a / b when exact; coef 0 (unknown) otherwise. */
hone_symdim hone_symdim_div(const hone_symdim *a, const hone_symdim *b);
bool hone_symdim_known(const hone_symdim *s);

#endif
