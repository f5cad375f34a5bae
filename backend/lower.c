/*
 * The LLVM module of a compiled model.
 *
 * Every scheduled node that is not a view becomes one internal function
 *   i32 node_K(ptr out0.., ptr in0.., ptr scratch)
 * whose pointer parameters are noalias (values are immutable and the plan
 * never overlaps a node's outputs with its live inputs), returning 0, or a
 * nonzero status when the node meets bad data at run time (an index out of
 * range). The rule table picks the lowering function; lowering goes on after
 * an unsupported node so the error lists every one of them at once.
 *
 * The entry points:
 *   i32 PREFIX_run_v(ptr in, ptr out, ptr ws)  loads the input and output
 *       pointers, calls the node functions in schedule order with pointers
 *       from the plan (caller buffers, constant globals, ws + offset), then
 *       copies the outputs the plan could not place directly;
 *   i32 PREFIX_run(ptr in, ptr out, ptr ws)    the typed entry of the header:
 *       its structs are arrays of pointers, so it forwards to run_v;
 *   ptr PREFIX_info()                           the hone_model_info global.
 * Everything else has private or internal linkage.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

hone_status bk_unsupported(bk_lower *L, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t k = strlen(L->unsupported);
    if (k < sizeof L->unsupported - 1)
        snprintf(L->unsupported + k, sizeof L->unsupported - k, "%snode '%s' (%s): %s",
                 L->n_unsupported ? "; " : "", L->node->name, L->node->op_type, why);
    L->n_unsupported++;
    return HONE_ERR_UNSUPPORTED;
}

const hone_value *bk_in(bk_lower *L, int i)
{
    return i < L->node->n_in ? L->node->in[i] : NULL;
}

const hone_value *bk_out(bk_lower *L, int i)
{
    return i < L->node->n_out ? L->node->out[i] : NULL;
}

const hone_tensor *bk_in_known(bk_lower *L, int i)
{
    return bk_known(L->m, bk_in(L, i));
}

static void init_types(bk_lower *L)
{
    L->i1 = LLVMInt1TypeInContext(L->c);
    L->i8 = LLVMInt8TypeInContext(L->c);
    L->i16 = LLVMInt16TypeInContext(L->c);
    L->i32 = LLVMInt32TypeInContext(L->c);
    L->i64 = LLVMInt64TypeInContext(L->c);
    L->f16 = LLVMHalfTypeInContext(L->c);
    L->f32 = LLVMFloatTypeInContext(L->c);
    L->f64 = LLVMDoubleTypeInContext(L->c);
    L->ptr = LLVMPointerTypeInContext(L->c, 0);
    L->vd = LLVMVoidTypeInContext(L->c);
}

static void add_attr(bk_lower *L, LLVMValueRef fn, unsigned idx, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(L->c, kind, 0));
}

/* The constant global holding v's compile-time contents (created once). */
static LLVMValueRef const_global(bk_lower *L, const hone_value *v)
{
    if (!L->globals[v->id]) {
        const hone_tensor *t = bk_known(L->m, v);
        L->globals[v->id] = bk_global_bytes(L, t->data, hone_tensor_nbytes(t), "const");
    }
    return L->globals[v->id];
}

/* Run-time pointers of run_v: graph inputs and outputs, the workspace, the
 * external weights' payload (NULL when weights are embedded). */
typedef struct run_ptrs {
    LLVMValueRef *in, *out, ws, wbase;
} run_ptrs;

/* The run-time address of v's bytes inside run_v. */
static LLVMValueRef value_ptr(bk_lower *L, const run_ptrs *rp, const hone_value *v)
{
    if (!v)
        return LLVMConstNull(L->ptr);
    const bk_loc *l = &L->p->loc[v->id];
    switch (l->kind) {
    case BK_LOC_INPUT: return rp->in[l->index];
    case BK_LOC_OUTPUT: return rp->out[l->index];
    case BK_LOC_CONST:
        if (rp->wbase && L->woff[l->root] != SIZE_MAX)
            return bk_gep_c(L, L->i8, rp->wbase, (int64_t)L->woff[l->root]);
        return const_global(L, L->m->g->values[l->root]);
    case BK_LOC_WS: return bk_gep_c(L, L->i8, rp->ws, (int64_t)l->offset);
    default: return LLVMConstNull(L->ptr);
    }
}

/* Ops that handle bfloat16 values (kept as their raw 16 bits). */
static bool bf16_op(const hone_node *n)
{
    return !strcmp(n->op_type, "Cast") || !strcmp(n->op_type, "CastLike");
}

/* Element types every value of the node has in the backend, or unsupported. */
static hone_status check_types(bk_lower *L, const hone_node *n)
{
    for (int i = 0; i < n->n_in + n->n_out; i++) {
        const hone_value *v = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (v && (!bk_type(L, v->dtype) || (v->dtype == HONE_DT_BFLOAT16 && !bf16_op(n))))
            return bk_unsupported(L, "'%s' has element type %s, which compiled code does not handle%s",
                                  v->name, hone_dtype_onnx_name(v->dtype),
                                  v->dtype == HONE_DT_BFLOAT16 ? " outside Cast/CastLike" : "");
    }
    if (n->n_in + n->n_out + 1 > BK_MAX_ARGS)
        return bk_unsupported(L, "more than %d inputs and outputs", BK_MAX_ARGS - 1);
    return HONE_OK;
}

/* Creates node function for step s with its parameters bound into L. */
static void begin_node_fn(bk_lower *L, int s)
{
    const hone_node *n = L->m->sched[s];
    int np = n->n_out + n->n_in + 1;
    LLVMTypeRef params[BK_MAX_ARGS];
    for (int i = 0; i < np; i++)
        params[i] = L->ptr;
    char name[64];
    snprintf(name, sizeof name, "node_%d", s);
    L->fn = LLVMAddFunction(L->mod, name, LLVMFunctionType(L->i32, params, (unsigned)np, 0));
    LLVMSetLinkage(L->fn, LLVMInternalLinkage);
    add_attr(L, L->fn, LLVMAttributeFunctionIndex, "nounwind");
    for (int i = 0; i < np; i++) {
        add_attr(L, L->fn, (unsigned)i + 1, "noalias");
        LLVMValueRef p = LLVMGetParam(L->fn, (unsigned)i);
        if (i < n->n_out)
            L->out[i] = p;
        else if (i < np - 1)
            L->in[i - n->n_out] = p;
        else
            L->scratch = p;
    }
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, L->fn, "entry"));
}

/* Lowers step s into its node function; returns it, or NULL for views and failures. */
static LLVMValueRef lower_step(bk_lower *L, int s, hone_status *st)
{
    const hone_node *n = L->m->sched[s];
    const bk_rule *r = bk_rule_find(n);
    L->node = n;
    L->step = s;
    *st = HONE_OK;
    if (r && (bk_is_view(n) || bk_concat_in_place(L->m, n)))
        return NULL;
    if (!r || !r->lower) {
        *st = bk_unsupported(L, "the LLVM backend does not lower this op");
        return NULL;
    }
    if ((*st = check_types(L, n)))
        return NULL;
    begin_node_fn(L, s);
    *st = r->lower(L);
    if (*st) {
        LLVMDeleteFunction(L->fn);
        return NULL;
    }
    LLVMBuildRet(L->b, bk_i32(L, 0));
    return L->fn;
}

/* True when every output of n is empty (nothing to compute). */
static bool all_empty(const hone_node *n)
{
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && bk_numel(n->out[i]) > 0)
            return false;
    return true;
}

/* In run_v: calls fn with the node's pointers; returns early on a nonzero status. */
static void call_step(bk_lower *L, const run_ptrs *rp, int s, LLVMValueRef fn, LLVMValueRef run)
{
    const hone_node *n = L->m->sched[s];
    LLVMValueRef args[BK_MAX_ARGS];
    int k = 0;
    for (int i = 0; i < n->n_out; i++)
        args[k++] = value_ptr(L, rp, n->out[i]);
    /* weights the node reads packed (embedded at compile time): no pointer to the plain ones */
    int packed = bk_conv_packs_weights(L->m, n) ? 1 : bk_qconv_packed_weight(L->m, n);
    for (int i = 0; i < n->n_in; i++)
        args[k++] = i == packed ? LLVMConstNull(L->ptr) : value_ptr(L, rp, n->in[i]);
    args[k++] = L->p->scratch_size[s] ? bk_gep_c(L, L->i8, rp->ws, (int64_t)L->p->scratch_off[s])
                                      : LLVMConstNull(L->ptr);
    LLVMValueRef r = LLVMBuildCall2(L->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)k, "");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->c, run, "ok");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->c, run, "bad");
    LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, r, bk_i32(L, 0), ""), ok, bad);
    LLVMPositionBuilderAtEnd(L->b, bad);
    LLVMBuildRet(L->b, r);
    LLVMPositionBuilderAtEnd(L->b, ok);
}

/* Loads in[i] and out[j] of run_v's pointer arrays. */
static void load_ptrs(bk_lower *L, LLVMValueRef fn, run_ptrs *rp)
{
    const hone_graph *g = L->m->g;
    rp->in = calloc((size_t)g->n_inputs + 1, sizeof *rp->in);
    rp->out = calloc((size_t)g->n_outputs + 1, sizeof *rp->out);
    HONE_ASSERT(rp->in && rp->out);
    for (int i = 0; i < g->n_inputs; i++)
        rp->in[i] = LLVMBuildLoad2(L->b, L->ptr, bk_gep_c(L, L->ptr, LLVMGetParam(fn, 0), i), "");
    for (int j = 0; j < g->n_outputs; j++)
        rp->out[j] = LLVMBuildLoad2(L->b, L->ptr, bk_gep_c(L, L->ptr, LLVMGetParam(fn, 1), j), "");
    rp->ws = LLVMGetParam(fn, 2);
    rp->wbase = NULL;
}

/* ext_weights: loads the payload pointer; returns BK_RUN_NO_WEIGHTS when unset. */
static void load_weights(bk_lower *L, LLVMValueRef run, run_ptrs *rp)
{
    rp->wbase = LLVMBuildLoad2(L->b, L->ptr, L->wbase, "weights");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->c, run, "weights_ok");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->c, run, "no_weights");
    LLVMBuildCondBr(L->b, LLVMBuildIsNull(L->b, rp->wbase, ""), bad, ok);
    LLVMPositionBuilderAtEnd(L->b, bad);
    LLVMBuildRet(L->b, bk_i32(L, BK_RUN_NO_WEIGHTS));
    LLVMPositionBuilderAtEnd(L->b, ok);
}

static LLVMValueRef add_entry(bk_lower *L, const char *suffix, LLVMTypeRef ty)
{
    char name[300];
    snprintf(name, sizeof name, "%s_%s", L->m->name, suffix);
    LLVMValueRef fn = LLVMAddFunction(L->mod, name, ty);
    add_attr(L, fn, LLVMAttributeFunctionIndex, "nounwind");
    return fn;
}

static LLVMValueRef cstring(bk_lower *L, const char *s);

/* --profile: the clock before a node's call (hone_rt_prof_now) ... */
static LLVMValueRef prof_now(bk_lower *L)
{
    return bk_call(L, "hone_rt_prof_now", L->i64, NULL, 0, NULL);
}

/* ... and after it, with the node's step, name and op (hone_rt_prof_add). */
static void prof_add(bk_lower *L, LLVMValueRef t0, int s)
{
    const hone_node *n = L->m->sched[s];
    char name[64];
    snprintf(name, sizeof name, "node_%d", s);
    LLVMTypeRef params[4] = {L->i64, L->i32, L->ptr, L->ptr};
    LLVMValueRef args[4] = {t0, bk_i32(L, s), cstring(L, n->name && *n->name ? n->name : name),
                            cstring(L, n->op_type)};
    bk_call(L, "hone_rt_prof_add", LLVMVoidTypeInContext(L->c), params, 4, args);
}

/* PREFIX_run_v: the node calls in schedule order, then the output copies. */
static LLVMValueRef build_run_v(bk_lower *L, LLVMValueRef *fns)
{
    LLVMTypeRef params[3] = {L->ptr, L->ptr, L->ptr};
    LLVMValueRef run = add_entry(L, "run_v", LLVMFunctionType(L->i32, params, 3, 0));
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, run, "entry"));
    bk_call(L, "hone_rt_compiled_enter", LLVMVoidTypeInContext(L->c), NULL, 0, NULL);
    run_ptrs rp;
    load_ptrs(L, run, &rp);
    if (L->m->ext_weights)
        load_weights(L, run, &rp);
    for (int s = 0; s < L->m->n_sched; s++)
        if (fns[s] && !all_empty(L->m->sched[s])) {
            LLVMValueRef t0 = L->m->profile ? prof_now(L) : NULL;
            call_step(L, &rp, s, fns[s], run);
            if (t0)
                prof_add(L, t0, s);
        }
    const hone_graph *g = L->m->g;
    for (int j = 0; j < g->n_outputs; j++)
        if (L->p->out_copy[j] >= 0) {
            const hone_value *v = g->values[L->p->out_copy[j]];
            bk_memcpy(L, rp.out[j], value_ptr(L, &rp, v), (int64_t)bk_bytes(v));
        }
    LLVMBuildRet(L->b, bk_i32(L, 0));
    free(rp.in);
    free(rp.out);
    return run;
}

/* PREFIX_run: forwards its struct pointers to run_v. */
static void build_run(bk_lower *L, LLVMValueRef run_v)
{
    LLVMTypeRef params[3] = {L->ptr, L->ptr, L->ptr};
    LLVMTypeRef ty = LLVMFunctionType(L->i32, params, 3, 0);
    LLVMValueRef run = add_entry(L, "run", ty);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, run, "entry"));
    LLVMValueRef args[3] = {LLVMGetParam(run, 0), LLVMGetParam(run, 1), LLVMGetParam(run, 2)};
    LLVMValueRef r = LLVMBuildCall2(L->b, ty, run_v, args, 3, "");
    LLVMSetTailCall(r, 1);
    LLVMBuildRet(L->b, r);
}

/* ---- PREFIX_set_weights (external weights) ---- */

/* Returns code from the current block when cond holds. */
static void fail_if(bk_lower *L, LLVMValueRef fn, LLVMValueRef cond, int code)
{
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->c, fn, "ok");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->c, fn, "bad");
    LLVMBuildCondBr(L->b, cond, bad, ok);
    LLVMPositionBuilderAtEnd(L->b, bad);
    LLVMBuildRet(L->b, bk_i32(L, code));
    LLVMPositionBuilderAtEnd(L->b, ok);
}

/* i32 PREFIX_set_weights(ptr blob, i64 size): checks the blob written with
 * this code (size, magic, payload hash field, alignment) and keeps the
 * payload pointer for run_v. Codes: see the header (header.c). */
static void build_set_weights(bk_lower *L)
{
    size_t total;
    uint64_t hash;
    free(bk_weights_blob(L->m, L->p, &total, &hash));
    LLVMTypeRef params[2] = {L->ptr, L->i64};
    LLVMValueRef fn = add_entry(L, "set_weights", LLVMFunctionType(L->i32, params, 2, 0));
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, fn, "entry"));
    LLVMValueRef blob = LLVMGetParam(fn, 0), size = LLVMGetParam(fn, 1);
    fail_if(L, fn, LLVMBuildIsNull(L->b, blob, ""), 1);
    fail_if(L, fn, LLVMBuildICmp(L->b, LLVMIntNE, size, bk_i64(L, (int64_t)total), ""), 1);
    uint64_t magic = 0;
    memcpy(&magic, "HONEWTS1", 8); /* little-endian hosts: the file's byte order */
    LLVMValueRef m = LLVMBuildLoad2(L->b, L->i64, blob, "");
    LLVMSetAlignment(m, 1);
    fail_if(L, fn, LLVMBuildICmp(L->b, LLVMIntNE, m, LLVMConstInt(L->i64, magic, 0), ""), 2);
    LLVMValueRef h = LLVMBuildLoad2(L->b, L->i64, bk_gep_c(L, L->i8, blob, 8), "");
    LLVMSetAlignment(h, 1);
    fail_if(L, fn, LLVMBuildICmp(L->b, LLVMIntNE, h, LLVMConstInt(L->i64, hash, 0), ""), 3);
    LLVMValueRef payload = bk_gep_c(L, L->i8, blob, BK_WEIGHTS_HEADER);
    LLVMValueRef mis = LLVMBuildAnd(L->b, LLVMBuildPtrToInt(L->b, payload, L->i64, ""),
                                    bk_i64(L, BK_ALIGN - 1), "");
    fail_if(L, fn, LLVMBuildICmp(L->b, LLVMIntNE, mis, bk_i64(L, 0), ""), 4);
    LLVMBuildStore(L->b, payload, L->wbase);
    LLVMBuildRet(L->b, bk_i32(L, 0));
}

/* The payload pointer global and the offsets of the run-time constants. */
static void init_ext_weights(bk_lower *L)
{
    L->woff = malloc(sizeof *L->woff * ((size_t)L->m->g->n_values + 1));
    HONE_ASSERT(L->woff);
    bk_weights_layout(L->m, L->p, L->woff);
    L->wbase = LLVMAddGlobal(L->mod, L->ptr, "weights");
    LLVMSetInitializer(L->wbase, LLVMConstNull(L->ptr));
    LLVMSetLinkage(L->wbase, LLVMInternalLinkage);
    LLVMSetAlignment(L->wbase, 8);
}

/* ---- --profile: PREFIX_profile_reset and PREFIX_profile_report ---- */

/* Exported wrappers of the library's own (hidden) hone_rt_prof_reset / _report. */
static void build_profile_fns(bk_lower *L)
{
    static const char *const what[2] = {"profile_reset", "profile_report"};
    static const char *const rt[2] = {"hone_rt_prof_reset", "hone_rt_prof_report"};
    for (int i = 0; i < 2; i++) {
        LLVMTypeRef params[1] = {L->ptr};
        LLVMValueRef fn = add_entry(L, what[i], LLVMFunctionType(LLVMVoidTypeInContext(L->c),
                                                                 params, (unsigned)i, 0));
        LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, fn, "entry"));
        LLVMValueRef args[1] = {i ? LLVMGetParam(fn, 0) : NULL};
        bk_call(L, rt[i], LLVMVoidTypeInContext(L->c), params, i, args);
        LLVMBuildRetVoid(L->b);
    }
}

/* ---- PREFIX_info ---- */

static LLVMValueRef cstring(bk_lower *L, const char *s)
{
    LLVMValueRef init = LLVMConstStringInContext(L->c, s, (unsigned)strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(L->mod, LLVMTypeOf(init), "str");
    LLVMSetInitializer(g, init);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

/* hone_tensor_desc {name, c_name, dtype, rank, dims} of graph tensor v (index k). */
static LLVMValueRef tensor_desc(bk_lower *L, LLVMTypeRef ty, const hone_value *v, int k)
{
    char cname[256];
    int64_t dims[HONE_MAX_RANK + 1] = {0};
    memcpy(dims, v->dims, sizeof(int64_t) * (size_t)v->rank);
    LLVMValueRef d = bk_global_bytes(L, dims, sizeof(int64_t) * (size_t)(v->rank + 1), "dims");
    LLVMValueRef f[5] = {cstring(L, v->name), cstring(L, bk_c_name(L->m, k, cname, sizeof cname)),
                         bk_i32(L, v->dtype), bk_i32(L, v->rank), d};
    return LLVMConstNamedStruct(ty, f, 5);
}

/* A private constant array of the descriptors of n graph tensors. */
static LLVMValueRef desc_array(bk_lower *L, LLVMTypeRef ty, hone_value **vs, int n, int k0)
{
    LLVMValueRef *el = calloc((size_t)n + 1, sizeof *el);
    HONE_ASSERT(el);
    for (int i = 0; i < n; i++)
        el[i] = tensor_desc(L, ty, vs[i], k0 + i);
    LLVMValueRef init = LLVMConstArray2(ty, el, (uint64_t)n);
    free(el);
    LLVMValueRef g = LLVMAddGlobal(L->mod, LLVMTypeOf(init), "descs");
    LLVMSetInitializer(g, init);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetGlobalConstant(g, 1);
    return g;
}

/* The hone_model_info global and PREFIX_info returning it. */
static void build_info(bk_lower *L, LLVMValueRef run_v)
{
    const hone_graph *g = L->m->g;
    LLVMTypeRef dt = LLVMStructCreateNamed(L->c, "hone_tensor_desc");
    LLVMTypeRef df[5] = {L->ptr, L->ptr, L->i32, L->i32, L->ptr};
    LLVMStructSetBody(dt, df, 5, 0);
    LLVMTypeRef it = LLVMStructCreateNamed(L->c, "hone_model_info");
    LLVMTypeRef itf[8] = {L->i32, L->ptr, L->i64, L->i32, L->i32, L->ptr, L->ptr, L->ptr};
    LLVMStructSetBody(it, itf, 8, 0);
    LLVMValueRef f[8] = {bk_i32(L, HONE_MODEL_ABI_VERSION), cstring(L, L->m->name),
                         bk_i64(L, (int64_t)L->p->workspace), bk_i32(L, g->n_inputs),
                         bk_i32(L, g->n_outputs), desc_array(L, dt, g->inputs, g->n_inputs, 0),
                         desc_array(L, dt, g->outputs, g->n_outputs, g->n_inputs), run_v};
    LLVMValueRef info = LLVMAddGlobal(L->mod, it, "info");
    LLVMSetInitializer(info, LLVMConstNamedStruct(it, f, 8));
    LLVMSetLinkage(info, LLVMPrivateLinkage);
    LLVMSetGlobalConstant(info, 1);
    LLVMValueRef fn = add_entry(L, "info", LLVMFunctionType(L->ptr, NULL, 0, 0));
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->c, fn, "entry"));
    LLVMBuildRet(L->b, info);
}

/* Fails with every unsupported node in one message. */
static hone_status report_unsupported(hone_ctx *ctx, const bk_lower *L)
{
    return hone_fail(ctx, HONE_ERR_UNSUPPORTED, "%d node%s cannot be compiled: %s%s",
                     L->n_unsupported, L->n_unsupported > 1 ? "s" : "", L->unsupported,
                     strlen(L->unsupported) >= sizeof L->unsupported - 1 ? " ..." : "");
}

hone_status bk_lower_model(hone_ctx *ctx, const bk_model *m, const bk_plan *p, LLVMContextRef c,
                           LLVMModuleRef *out)
{
    bk_lower L = {ctx, m, p, c};
    init_types(&L);
    L.mod = LLVMModuleCreateWithNameInContext(m->name, c);
    L.b = LLVMCreateBuilderInContext(c);
    L.globals = calloc((size_t)m->g->n_values + 1, sizeof *L.globals);
    LLVMValueRef *fns = calloc((size_t)m->n_sched + 1, sizeof *fns);
    HONE_ASSERT(L.globals && fns);
    if (m->ext_weights)
        init_ext_weights(&L);
    hone_status st = HONE_OK;
    for (int s = 0; s < m->n_sched && (!st || st == HONE_ERR_UNSUPPORTED); s++)
        fns[s] = lower_step(&L, s, &st);
    if (!st && L.n_unsupported)
        st = HONE_ERR_UNSUPPORTED;
    if (st == HONE_ERR_UNSUPPORTED && L.n_unsupported)
        report_unsupported(ctx, &L);
    if (!st) {
        LLVMValueRef run_v = build_run_v(&L, fns);
        build_run(&L, run_v);
        build_info(&L, run_v);
        if (m->profile)
            build_profile_fns(&L);
        if (m->ext_weights)
            build_set_weights(&L);
    }
    LLVMDisposeBuilder(L.b);
    free(L.globals);
    free(L.woff);
    free(fns);
    if (st) {
        LLVMDisposeModule(L.mod);
        return st;
    }
    *out = L.mod;
    return HONE_OK;
}
