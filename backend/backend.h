/*
 * backend: hone graphs to native code through the LLVM C API. The module map.
 *
 * A compile runs one straight pipeline, each stage in its own file:
 *
 *   prep.c        specialise: clone the graph, fix symbolic input dims, infer
 *                 static shapes, fold every value computable at compile time
 *                 (constants, Shape chains) and keep the schedule: the nodes
 *                 left to run, in topological order, dead ones dropped
 *   plan.c        memory plan: where every value lives (caller input or output
 *                 buffer, embedded constant, or a slot of the one workspace),
 *                 view ops (Reshape & co) sharing their input's slot, liveness
 *                 over the schedule, per-node kernel scratch, and greedy
 *                 offsets (the best of several orders); reports the
 *                 workspace size and its lower bound
 *   rules.c       the lowering table: per ONNX op its lowering function and
 *                 scratch rule, or "view" (no code, shares the input's bytes)
 *   lower.c       the LLVM module: one internal function per scheduled node,
 *                 PREFIX_run_v calling them in order, PREFIX_run, PREFIX_info
 *   build.c       IR building helpers: types, constants, loop nests over
 *                 strided operands (dims collapsed, innermost contiguous),
 *                 runtime calls
 *   lower_nn.c    heavy ops as calls into runtime/ kernels (conv with planned
 *                 im2col tiles or direct depthwise, gemm, pools, norms,
 *                 softmax), geometry passed as constant globals
 *   lower_ew.c    elementwise ops as loop nests (unary, broadcasting binary,
 *                 Where, Clip, Cast, (De)QuantizeLinear, variadic),
 *                 reductions, ArgMax/ArgMin, FusedConv's epilogue
 *   lower_move.c  data movement as strided or table-driven copies (Transpose,
 *                 Concat, Slice, Split, Pad, Expand, Tile, DepthToSpace,
 *                 SpaceToDepth, Resize), and ConstantOfShape fills
 *   lower_index.c ops driven by run-time indices, checked against their
 *                 extents (Gather, GatherElements, GatherND, ScatterElements,
 *                 ScatterND), Trilu, CumSum, the NLL and softmax
 *                 cross-entropy losses (labels checked)
 *   emit.c        target machine, the LLVM pass pipeline, object / assembly /
 *                 IR / bitcode files, the self-contained shared library
 *   header.c      the generated C header of a compiled model
 *   jit.c         ORC LLJIT: compile in memory, look up PREFIX_info, run any
 *                 compiled model on tensors
 *   compile.c     the public entry points tying the stages together, loading
 *                 a compiled library
 *
 * Compiled code never allocates: the caller passes input and output buffers
 * and one workspace of the size the header states (PREFIX_WORKSPACE_SIZE).
 * Everything but PREFIX_run, PREFIX_run_v and PREFIX_info is internal, so
 * several models link into one program.
 */
#ifndef HONE_BACKEND_H
#define HONE_BACKEND_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "hone/model.h"
#include "ir.h"

/* ===================== compile.c: public entry points ===================== */

#define HONE_BACKEND_MAX_SHAPES 64

/* A --input-shape NAME=DIMS fix for a graph input with symbolic dims. */
typedef struct hone_backend_shape {
    char name[256];
    int rank;
    int64_t dims[HONE_MAX_RANK];
} hone_backend_shape;

typedef struct hone_backend_opts {
    const char *name;   /* symbol prefix (a C identifier); NULL: "model" */
    int opt_level;      /* 0..3: LLVM pass pipeline and code generation level */
    const char *mcpu;   /* NULL or "native": the host CPU */
    const char *mattr;  /* target features ("+avx2,-avx512f"); NULL: the CPU's own */
    int n_shapes;
    hone_backend_shape shapes[HONE_BACKEND_MAX_SHAPES];
    const char *weights_path; /* NULL: weights embedded; else written there (weights.c) */
    bool direct_conv;   /* 3x3 stride-1 convs on the direct kernel, not Winograd's */
    bool profile;       /* time each node (runtime/prof.c): for measuring, not deployment */
    /* Inputs whose values are fixed at compile time (--bind NAME=FILE): they
     * become constants and leave the compiled model's input list, so shapes
     * and index patterns they decide (Reshape targets, Slice starts, Resize
     * scales, reduction axes, TopK k) are specialised. Tensors not owned. */
    int n_bind;
    struct { const char *name; const hone_tensor *t; } bind[HONE_BACKEND_MAX_SHAPES];
} hone_backend_opts;

typedef enum hone_emit_kind {
    HONE_EMIT_LIB,      /* shared library, self-contained (runtime and BLAS linked in) */
    HONE_EMIT_OBJ,
    HONE_EMIT_ASM,
    HONE_EMIT_LLVM_IR,
    HONE_EMIT_BC,
    HONE_EMIT_HEADER,
} hone_emit_kind;

/* What a compile did, for reports and tests. */
typedef struct hone_backend_report {
    size_t workspace, workspace_bound; /* bytes: planned, and the liveness lower bound */
    size_t weight_bytes;               /* constants embedded */
    int n_nodes, n_views, n_folded;    /* scheduled nodes, of them views; folded nodes */
    double t_prepare, t_lower, t_optimize, t_emit; /* seconds */
} hone_backend_report;

void hone_backend_opts_init(hone_backend_opts *o);
/* Fixes every graph input's shape to that of the tensor given for it. */
void hone_backend_shapes_from(hone_backend_opts *o, const hone_graph *g, const hone_tensor **ins);
/* Plans g's memory without generating code: the workspace the compiled model
 * would need and its liveness lower bound, in bytes (shapes must be static). */
hone_status hone_backend_plan(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                              size_t *workspace, size_t *bound);
/* True when input i of n decides the shapes or the index pattern of n's
 * outputs rather than flowing into them as data (Reshape's shape, Slice's
 * starts/ends/axes/steps, Resize's scales/sizes, reduction axes, TopK's k,
 * a window's size, MaxUnpool's output_shape, Dropout's ratio and
 * training_mode...): the inputs worth binding at compile time. */
bool hone_backend_shape_input(const hone_node *n, int i);
/* Parses an emit kind name (lib, obj, asm, llvm-ir, bc, header); -1 when unknown. */
int hone_backend_emit_kind(const char *s);
/* The runtime archive (libhone_rt.a) compiled objects link with: $HONE_RT_LIB
 * or the build tree's. */
const char *hone_backend_runtime_archive(void);
/* Compiles g and writes `kind` to path, atomically. rep may be NULL. */
hone_status hone_backend_compile(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                                 hone_emit_kind kind, const char *path, hone_backend_report *rep);

/* ===================== jit.c: in-memory compilation ===================== */

typedef struct hone_jit hone_jit_t;

/* Compiles g into the running process. rep may be NULL. */
hone_status hone_jit_compile(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                             hone_jit_t **out, hone_backend_report *rep);
/* The compiled model's descriptor (shapes, workspace size, run entry). */
const hone_model_info *hone_jit_info(const hone_jit_t *j);
/* Runs on tensors in graph input order; out[i] receive new tensors the caller
 * frees. Inputs are checked against the compiled shapes and dtypes. */
hone_status hone_jit_run(hone_ctx *ctx, hone_jit_t *j, const hone_tensor **in, hone_tensor **out);
void hone_jit_free(hone_jit_t *j);
/* Runs any compiled model (JIT or loaded library) on tensors in graph input
 * order: inputs checked against its shapes, outputs allocated; ws holds
 * mi->workspace_size bytes (hone_model_workspace allocates one, free() it). */
hone_status hone_model_run(hone_ctx *ctx, const hone_model_info *mi, const hone_tensor **in,
                           hone_tensor **out, void *ws);
void *hone_model_workspace(const hone_model_info *mi);

/* ===================== compile.c: loading a compiled library ===================== */


typedef struct hone_lib hone_lib_t;
/* dlopens a library written by hone_backend_compile(HONE_EMIT_LIB) and finds
 * NAME_info in it. */
hone_status hone_lib_load(hone_ctx *ctx, const char *path, const char *name, hone_lib_t **out);
const hone_model_info *hone_lib_info(const hone_lib_t *l);
void hone_lib_free(hone_lib_t *l);

/* ===================== prep.c: the specialised model ===================== */


typedef struct bk_model {
    hone_graph *g;          /* owned clone with static shapes */
    hone_tensor **known;    /* per value id: contents folded at compile time (owned) */
    hone_node **sched;      /* the nodes left to run, in order */
    int n_sched;
    int n_folded;
    const char *name;       /* symbol prefix */
    bool ext_weights;       /* run-time constants come from PREFIX_set_weights' blob */
    bool winograd;          /* 3x3 stride-1 convs may run Winograd F(4x4, 3x3) */
    bool profile;           /* the run function times each node (hone_rt_prof_add) */
} bk_model;

hone_status bk_model_prepare(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                             bk_model *m);
void bk_model_free(bk_model *m);
/* Compile-time contents of v (a constant or a folded value), or NULL. */
const hone_tensor *bk_known(const bk_model *m, const hone_value *v);
/* Element count and byte size of v's static shape. */
int64_t bk_numel(const hone_value *v);
size_t bk_bytes(const hone_value *v);

/* ===================== plan.c: the memory plan ===================== */

#define BK_ALIGN 64

/* One buffer for the interval planner: live over schedule steps [first, last]. */
typedef struct bk_buf {
    size_t size;
    int first, last;
    size_t offset;          /* out: 64-byte aligned */
} bk_buf;

/* Assigns offsets, biggest buffers first, each into the tightest gap left by
 * the buffers already placed whose intervals overlap it; returns the extent. */
size_t bk_plan_offsets(bk_buf *bufs, int n);
/* Max over steps of the (aligned) bytes live at once: no plan can do better. */
size_t bk_plan_bound(const bk_buf *bufs, int n);

typedef enum bk_loc_kind { BK_LOC_NONE, BK_LOC_INPUT, BK_LOC_OUTPUT, BK_LOC_CONST, BK_LOC_WS } bk_loc_kind;

/* Where a value's bytes live at run time. */
typedef struct bk_loc {
    bk_loc_kind kind;
    int index;              /* graph input / output index */
    size_t offset;          /* workspace offset */
    int root;               /* the value whose bytes these are (views share a root) */
} bk_loc;

typedef struct bk_plan {
    bk_loc *loc;            /* per value id */
    size_t *scratch_off;    /* per schedule step: workspace offset of kernel scratch */
    size_t *scratch_size;   /* per schedule step, 0 = none */
    int *out_copy;          /* per graph output: value id copied in at the end, -1 = none */
    size_t workspace, bound;
    int n_views;
} bk_plan;

hone_status bk_plan_model(hone_ctx *ctx, const bk_model *m, bk_plan *p);
/* A Concat whose inputs the plan places inside its output, one after the other (every
 * dim before the axis is 1, so each input is a contiguous slice): each input is the
 * output of a real op (not a view, constant, graph input or output) read by this Concat
 * only, and the output is not a graph output. Its producers then write straight into
 * the output, and the Concat itself emits no code. */
bool bk_concat_in_place(const bk_model *m, const hone_node *n);
void bk_plan_free(bk_plan *p);

/* ===================== weights.c: external weights ===================== */

#define BK_WEIGHTS_HEADER 64
#define BK_RUN_NO_WEIGHTS (-2) /* run_v's status when set_weights was not called */
/* Payload offset of each run-time constant (off[value id], SIZE_MAX: none);
 * returns the payload size. */
size_t bk_weights_layout(const bk_model *m, const bk_plan *p, size_t *off);
/* The whole blob (header + payload, malloc'd), its size and payload hash. */
uint8_t *bk_weights_blob(const bk_model *m, const bk_plan *p, size_t *size, uint64_t *hash);
/* Writes the blob to path atomically. */
hone_status bk_weights_write(hone_ctx *ctx, const bk_model *m, const bk_plan *p, const char *path);

/* ===================== rules.c: the lowering table ===================== */

struct bk_lower;
typedef hone_status (*bk_lower_fn)(struct bk_lower *L);
/* Scratch bytes a node's kernel needs (0: none). */
typedef size_t (*bk_scratch_fn)(const bk_model *m, const hone_node *n);

typedef struct bk_rule {
    const char *domain, *name;
    bk_lower_fn lower;      /* NULL: a view, output 0 shares input 0's bytes */
    bk_scratch_fn scratch;
} bk_rule;

/* The rule for n's op, or NULL when the backend does not lower it. */
const bk_rule *bk_rule_find(const hone_node *n);
/* True when n is a view whose output can share its input's bytes. */
bool bk_is_view(const hone_node *n);

/* ===================== lower.c: the LLVM module ===================== */

#define BK_MAX_ARGS 64

/* The state of one lowering: the module, and the node function being built. */
typedef struct bk_lower {
    hone_ctx *ctx;
    const bk_model *m;
    const bk_plan *p;
    LLVMContextRef c;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i1, i8, i16, i32, i64, f16, f32, f64, ptr, vd;
    LLVMValueRef *globals;  /* per value id: constant global, created on demand */
    size_t *woff;           /* ext_weights: payload offset per value id */
    LLVMValueRef wbase;     /* ext_weights: the global holding the payload pointer */
    int n_unsupported;
    char unsupported[1536]; /* "node 'x' (Op): why; ..." */
    /* the node function being built */
    const hone_node *node;
    int step;
    LLVMValueRef fn;
    LLVMValueRef in[BK_MAX_ARGS], out[BK_MAX_ARGS], scratch; /* NULL when absent */
} bk_lower;

/* Lowers a prepared and planned model into a new module of context c. */
hone_status bk_lower_model(hone_ctx *ctx, const bk_model *m, const bk_plan *p, LLVMContextRef c,
                           LLVMModuleRef *out);
/* Records that the current node cannot be lowered (why, printf-style) and
 * returns HONE_ERR_UNSUPPORTED; lowering goes on to report every such node. */
hone_status bk_unsupported(bk_lower *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Compile-time contents of input i of the current node, or NULL. */
const hone_tensor *bk_in_known(bk_lower *L, int i);
/* Input / output value i of the current node (NULL when absent). */
const hone_value *bk_in(bk_lower *L, int i);
const hone_value *bk_out(bk_lower *L, int i);

/* ===================== build.c: IR building helpers ===================== */

#define BK_MAX_AXES (2 * HONE_MAX_RANK)
#define BK_MAX_OPERANDS 16

/* LLVM type of an element of dt (bool as i8, float16 as half), or NULL when not lowered. */
LLVMTypeRef bk_type(bk_lower *L, hone_dtype dt);
/* Index of s in names[0..n), or -1. */
int bk_find_name(const char *s, const char *const *names, int n);
/* True for half, float and double. */
bool bk_is_float_type(LLVMTypeRef t);
LLVMValueRef bk_i64(bk_lower *L, int64_t v);
LLVMValueRef bk_i32(bk_lower *L, int32_t v);
LLVMValueRef bk_f32(bk_lower *L, double v);
/* Element pointer: base + idx elements of type ty. */
LLVMValueRef bk_gep(bk_lower *L, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef bk_gep_c(bk_lower *L, LLVMTypeRef ty, LLVMValueRef base, int64_t idx);
/* A private constant global holding bytes (64-byte aligned); name is a hint. */
LLVMValueRef bk_global_bytes(bk_lower *L, const void *data, size_t n, const char *name);
/* Calls the external function `name` of the given signature, declaring it once. */
LLVMValueRef bk_call(bk_lower *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np,
                     LLVMValueRef *args);
/* Calls an overloaded LLVM intrinsic ("llvm.fabs") on type ty. */
LLVMValueRef bk_intrinsic(bk_lower *L, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
                          int n);
/* Same for an intrinsic overloaded on several types (llvm.fptosi.sat: result, source). */
LLVMValueRef bk_intrinsic_n(bk_lower *L, const char *name, LLVMTypeRef *tys, int nt,
                            LLVMValueRef *args, int n);
/* memcpy / memset of n bytes. */
void bk_memcpy(bk_lower *L, LLVMValueRef dst, LLVMValueRef src, int64_t n);
void bk_memset(bk_lower *L, LLVMValueRef dst, int byte, int64_t n);

/* Returns status 1 from the node function unless ok (i1) holds. */
void bk_check_or_fail(bk_lower *L, LLVMValueRef ok);
/* Loads an index (integer type it) at base[off] as i64, negative ones counted
 * from extent, and fails the node unless it lies in [0, extent). */
LLVMValueRef bk_load_index(bk_lower *L, LLVMTypeRef it, LLVMValueRef base, LLVMValueRef off,
                           int64_t extent);

/* A counted loop [0, n), n > 0: bk_loop_begin returns the induction variable. */
typedef struct bk_loop {
    LLVMValueRef iv;
    LLVMBasicBlockRef head;
    int64_t n;
} bk_loop;
LLVMValueRef bk_loop_begin(bk_lower *L, int64_t n, bk_loop *lp);
void bk_loop_end(bk_lower *L, bk_loop *lp);

/* A loop nest over dims with n_ops operands, each with its element strides
 * per axis. bk_nest_emit collapses axes where every operand is contiguous
 * across them (unless keep_axes), drops extent-1 axes, and calls body with
 * each operand's element offset and the induction variable of every axis
 * (NULL for dropped or collapsed ones). */
typedef struct bk_nest {
    int rank, n_ops;
    int64_t dims[BK_MAX_AXES];
    int64_t strides[BK_MAX_OPERANDS][BK_MAX_AXES];
    bool keep_axes;
} bk_nest;
typedef void (*bk_body_fn)(bk_lower *L, void *user, LLVMValueRef *offs, LLVMValueRef *ivs);
void bk_nest_emit(bk_lower *L, const bk_nest *n, bk_body_fn body, void *user);
/* Row-major strides of dims (elements). */
void bk_strides(int rank, const int64_t *dims, int64_t *st);
/* Strides of an operand of shape (r, d) broadcast onto (rank, dims): 0 on
 * broadcast axes, right-aligned as numpy does. */
void bk_bcast_strides(int r, const int64_t *d, int rank, const int64_t *dims, int64_t *st);

/* ===================== lower_nn.c / lower_ew.c / lower_move.c / lower_index.c ===================== */

/* Lowering functions named by the rule table. */
hone_status bk_lower_conv(bk_lower *L);
hone_status bk_lower_conv_transpose(bk_lower *L);
hone_status bk_lower_fused_conv(bk_lower *L);
hone_status bk_lower_gemm(bk_lower *L);
hone_status bk_lower_matmul(bk_lower *L);
hone_status bk_lower_pool(bk_lower *L);
hone_status bk_lower_global_pool(bk_lower *L);
hone_status bk_lower_batchnorm(bk_lower *L);
hone_status bk_lower_instancenorm(bk_lower *L);
hone_status bk_lower_layernorm(bk_lower *L);
hone_status bk_lower_lpnorm(bk_lower *L);
hone_status bk_lower_lrn(bk_lower *L);
hone_status bk_lower_softmax(bk_lower *L);
/* True when a Conv/FusedConv node's weights are packed at compile time (hone_rt_conv2d
 * on a constant): its plain weights need no run-time pointer. */
bool bk_conv_packs_weights(const bk_model *m, const hone_node *n);
size_t bk_scratch_conv(const bk_model *m, const hone_node *n);
size_t bk_scratch_conv_transpose(const bk_model *m, const hone_node *n);
size_t bk_scratch_instancenorm(const bk_model *m, const hone_node *n);
size_t bk_scratch_layernorm(const bk_model *m, const hone_node *n);
/* lower_binary.c: hone.BinaryConv through runtime/binconv.c. */
hone_status bk_lower_binary_conv(bk_lower *L);
size_t bk_scratch_binary_conv(const bk_model *m, const hone_node *n);
struct hone_rt_window;
/* Window positions per im2col tile of a compiled conv with c channels in g groups. */
int64_t bk_conv_tile_cols(const struct hone_rt_window *w, int64_t c, int64_t g);
/* Window and group count of a Conv-like node n (X input 0, W input 1, conv attributes). */
hone_status bk_conv_window(hone_ctx *ctx, const hone_node *n, struct hone_rt_window *w, int64_t *g);

/* lower_adder.c: hone.Adder2d and hone.SignedPower (AdderNet). */
hone_status bk_lower_adder(bk_lower *L);
hone_status bk_lower_signed_power(bk_lower *L);
size_t bk_scratch_adder(const bk_model *m, const hone_node *n);

hone_status bk_lower_unary(bk_lower *L);
hone_status bk_lower_binary(bk_lower *L);
hone_status bk_lower_variadic(bk_lower *L);
hone_status bk_lower_where(bk_lower *L);
hone_status bk_lower_clip(bk_lower *L);
hone_status bk_lower_cast(bk_lower *L);
hone_status bk_lower_quant(bk_lower *L);
hone_status bk_lower_reduce(bk_lower *L);
hone_status bk_lower_argminmax(bk_lower *L);
size_t bk_scratch_reduce(const bk_model *m, const hone_node *n);
/* Emits y = act(y + z) over an output of n elements in place (FusedConv's
 * epilogue); z (may be NULL) broadcasts with strides zs over dims. */
void bk_emit_epilogue(bk_lower *L, LLVMValueRef y, int rank, const int64_t *dims,
                      LLVMValueRef z, const int64_t *zs, const char *act, const float *params,
                      int n_params);

hone_status bk_lower_transpose(bk_lower *L);
hone_status bk_lower_concat(bk_lower *L);
hone_status bk_lower_split(bk_lower *L);
hone_status bk_lower_slice(bk_lower *L);
hone_status bk_lower_pad(bk_lower *L);
hone_status bk_lower_expand(bk_lower *L);
hone_status bk_lower_tile(bk_lower *L);
hone_status bk_lower_depth_to_space(bk_lower *L);
hone_status bk_lower_space_to_depth(bk_lower *L);
hone_status bk_lower_resize(bk_lower *L);
hone_status bk_lower_constant_of_shape(bk_lower *L);
/* Copies a strided view: out[oofs] = in[iofs] over the nest (2 operands:
 * out first), elements of type ty, out and in already offset. */
void bk_emit_copy(bk_lower *L, LLVMTypeRef ty, LLVMValueRef out, LLVMValueRef in,
                  const bk_nest *n);

/* lower_index.c: ops driven by run-time indices or a run-time axis */
hone_status bk_lower_gather(bk_lower *L);
hone_status bk_lower_gather_elements(bk_lower *L);
hone_status bk_lower_scatter_elements(bk_lower *L);
hone_status bk_lower_gather_nd(bk_lower *L);
hone_status bk_lower_scatter_nd(bk_lower *L);
hone_status bk_lower_trilu(bk_lower *L);
hone_status bk_lower_cumsum(bk_lower *L);
hone_status bk_lower_loss(bk_lower *L);

/* lower_extra.c: the less common ops (GridSample, Einsum, OneHot, TopK, ...) */
struct hone_rt_window;
hone_status bk_lower_grid_sample(bk_lower *L);
hone_status bk_lower_einsum(bk_lower *L);
hone_status bk_lower_onehot(bk_lower *L);
hone_status bk_lower_topk(bk_lower *L);
hone_status bk_lower_reverse_sequence(bk_lower *L);
hone_status bk_lower_maxunpool(bk_lower *L);
hone_status bk_lower_det(bk_lower *L);
hone_status bk_lower_mvn(bk_lower *L);
hone_status bk_lower_dropout(bk_lower *L);
/* Unique, NonZero, Compress: unsupported, naming their data-dependent shapes. */
hone_status bk_lower_data_dependent(bk_lower *L);
/* BatchNormalization in training mode and MaxPool over int8/uint8 (from lower_nn.c). */
hone_status bk_lower_batchnorm_train(bk_lower *L);
hone_status bk_lower_maxpool_i8(bk_lower *L, const struct hone_rt_window *w);
size_t bk_scratch_topk(const bk_model *m, const hone_node *n);
size_t bk_scratch_det(const bk_model *m, const hone_node *n);
size_t bk_scratch_mvn(const bk_model *m, const hone_node *n);
size_t bk_scratch_batchnorm(const bk_model *m, const hone_node *n);
size_t bk_scratch_pool(const bk_model *m, const hone_node *n);

/* ===================== emit.c: target, passes, files ===================== */

/* A target machine for the host triple under o's CPU, features and level. */
hone_status bk_target_machine(hone_ctx *ctx, const hone_backend_opts *o, LLVMTargetMachineRef *tm);
/* Verifies m, then runs the default<Olevel> pipeline for tm. */
hone_status bk_optimize(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm, int level);
/* Writes m as kind (OBJ, ASM, LLVM_IR, BC) to path, through a temporary file. */
hone_status bk_emit_file(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm,
                         hone_emit_kind kind, const char *path);
/* Writes m as a shared library at path: a temporary object next to it,
 * linked with the runtime archive and BLAS, renamed into place. */
hone_status bk_write_shared(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path);

/* ===================== header.c: the C header ===================== */

/* The text of the generated header (malloc'd). */
char *bk_header_text(const bk_model *m, const bk_plan *p);
/* The C identifier for tensor name s, unique among the model's inputs and
 * outputs (index i of the list inputs then outputs), into buf. */
const char *bk_c_name(const bk_model *m, int i, char *buf, size_t n);

/* ===================== compile.c: the shared pipeline ===================== */

/* A model through prepare, plan and (with a context) lower and optimise. */
typedef struct bk_front {
    bk_model m;
    bk_plan p;
    LLVMModuleRef mod;          /* NULL when built without a context */
    LLVMTargetMachineRef tm;
} bk_front;

/* Runs the pipeline up to an optimised module in context c (NULL: stop
 * after the plan); fills rep (may be NULL). */
hone_status bk_build(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o, bk_front *f,
                     LLVMContextRef c, hone_backend_report *rep);
void bk_front_free(bk_front *f);

/* ===================== lower_quant.c: integer ops ===================== */

hone_status bk_lower_conv_integer(bk_lower *L);
hone_status bk_lower_qlinear_conv(bk_lower *L);
hone_status bk_lower_matmul_integer(bk_lower *L);
hone_status bk_lower_qlinear_matmul(bk_lower *L);
hone_status bk_lower_dynamic_quantize(bk_lower *L);
size_t bk_scratch_conv_integer(const bk_model *m, const hone_node *n);
hone_status bk_lower_qconv(bk_lower *L);
hone_status bk_lower_dequantize_packed(bk_lower *L);
size_t bk_scratch_qconv(const bk_model *m, const hone_node *n);
/* Input index of a ConvInteger/QLinearConv node's weights when they are packed at
 * compile time (their plain bytes then need no run-time pointer), else -1. */
int bk_qconv_packed_weight(const bk_model *m, const hone_node *n);
size_t bk_scratch_qlinear_matmul(const bk_model *m, const hone_node *n);

#endif
