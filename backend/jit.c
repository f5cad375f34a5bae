/*
 * In-memory compilation through ORC's LLJIT. The module is built and
 * optimised exactly as for a file (compile.c), then handed to an LLJIT whose
 * target machine builder is made from the same target machine, so --mcpu,
 * --mattr and the level mean the same thing in both paths.
 *
 * Symbol resolution: the runtime kernels are defined in the JIT's main
 * library as absolute symbols taken from this binary (so no -rdynamic or
 * whole-archive link is needed and any program linking hone_core can JIT),
 * and a process search generator resolves the C library and libm (memcpy,
 * expf, ...). After adding the module, PREFIX_info is looked up and called;
 * its hone_model_info drives hone_jit_run, which checks the input tensors
 * against the compiled shapes, allocates the outputs and a workspace (kept
 * for the next call) and calls the compiled run entry.
 */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "backend.h"
#include "hone_rt.h"

struct hone_jit {
    LLVMOrcLLJITRef jit;
    const hone_model_info *info;
    void *ws;
};

/* The runtime entry points compiled code may call. */
static const struct {
    const char *name;
    void (*fn)(void);
} runtime_syms[] = {
#define RT(f) {#f, (void (*)(void))f}
    RT(hone_rt_sgemm), RT(hone_rt_dgemm), RT(hone_rt_sum_f32), RT(hone_rt_conv),
    RT(hone_rt_conv_tiled), RT(hone_rt_conv2d), RT(hone_rt_conv2d_epi), RT(hone_rt_conv2d_batched), RT(hone_rt_winograd_conv), RT(hone_rt_conv2d_unpacked), RT(hone_rt_depthwise_conv), RT(hone_rt_depthwise_conv_epi), RT(hone_rt_conv_transpose), RT(hone_rt_maxpool), RT(hone_rt_avgpool), RT(hone_rt_lppool),
    RT(hone_rt_global_pool), RT(hone_rt_row_moments), RT(hone_rt_batchnorm),
    RT(hone_rt_layernorm), RT(hone_rt_lrn), RT(hone_rt_softmax), RT(hone_rt_lpnorm),
    RT(hone_rt_gridsample), RT(hone_rt_topk), RT(hone_rt_det), RT(hone_rt_mvn),
    RT(hone_rt_bn_batch), RT(hone_rt_maxpool_i8),
    RT(hone_rt_binconv_xnor), RT(hone_rt_binconv_w1),
    RT(hone_rt_adder), RT(hone_rt_signed_power),
    RT(hone_rt_conv_integer_packed), RT(hone_rt_qconv), RT(hone_rt_dequantize_packed), RT(hone_rt_conv_integer_pack), RT(hone_rt_conv_integer), RT(hone_rt_requantize), RT(hone_rt_matmul_integer),
    RT(hone_rt_dynamic_quantize), RT(hone_rt_compiled_enter), RT(hone_rt_prof_now), RT(hone_rt_prof_add), RT(hone_rt_prof_reset), RT(hone_rt_prof_report),
#undef RT
};
#define N_RUNTIME_SYMS (sizeof runtime_syms / sizeof *runtime_syms)

static hone_status orc_fail(hone_ctx *ctx, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    hone_fail(ctx, HONE_ERR_INTERNAL, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return HONE_ERR_INTERNAL;
}

/* Defines the runtime kernels and adds the process's libraries to the main dylib. */
static hone_status add_symbols(hone_ctx *ctx, LLVMOrcLLJITRef jit)
{
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
    LLVMOrcCSymbolMapPair pairs[N_RUNTIME_SYMS];
    for (size_t i = 0; i < N_RUNTIME_SYMS; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, runtime_syms[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)runtime_syms[i].fn;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMErrorRef e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, N_RUNTIME_SYMS));
    if (e)
        return orc_fail(ctx, "defining the runtime symbols", e);
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
    if (e)
        return orc_fail(ctx, "searching the process's libraries", e);
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return HONE_OK;
}

/* An LLJIT generating code for f's target machine (which it takes over). */
static hone_status make_jit(hone_ctx *ctx, bk_front *f, LLVMOrcLLJITRef *jit)
{
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(f->tm));
    f->tm = NULL;
    LLVMErrorRef e = LLVMOrcCreateLLJIT(jit, b);
    if (e)
        return orc_fail(ctx, "creating the JIT", e);
    return add_symbols(ctx, *jit);
}

/* Adds f's module (consumed) and looks up PREFIX_info. */
static hone_status load_module(hone_ctx *ctx, hone_jit_t *j, bk_front *f, LLVMOrcThreadSafeContextRef tsc)
{
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(f->mod, tsc);
    f->mod = NULL;
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return orc_fail(ctx, "adding the module to the JIT", e);
    }
    char name[300];
    snprintf(name, sizeof name, "%s_info", f->m.name);
    LLVMOrcExecutorAddress addr;
    if ((e = LLVMOrcLLJITLookup(j->jit, &addr, name)))
        return orc_fail(ctx, "compiling the model", e);
    const hone_model_info *(*info)(void) = (const hone_model_info *(*)(void))(uintptr_t)addr;
    j->info = info();
    return HONE_OK;
}

hone_status hone_jit_compile(hone_ctx *ctx, const hone_graph *g, const hone_backend_opts *o,
                             hone_jit_t **out, hone_backend_report *rep)
{
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    bk_front f;
    hone_jit_t *j = calloc(1, sizeof *j);
    HONE_ASSERT(j);
    hone_status st = bk_build(ctx, g, o, &f, LLVMOrcThreadSafeContextGetContext(tsc), rep);
    if (!st)
        st = make_jit(ctx, &f, &j->jit);
    if (!st)
        st = load_module(ctx, j, &f, tsc);
    bk_front_free(&f);
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (st) {
        hone_jit_free(j);
        return st;
    }
    *out = j;
    return HONE_OK;
}

const hone_model_info *hone_jit_info(const hone_jit_t *j)
{
    return j->info;
}

/* Fails unless t has the dtype and shape of compiled input d. */
static hone_status check_input(hone_ctx *ctx, const hone_tensor_desc *d, const hone_tensor *t)
{
    bool ok = t && (int)t->dtype == d->dtype && t->rank == d->rank;
    for (int i = 0; ok && i < d->rank; i++)
        ok = t->dims[i] == d->dims[i];
    if (ok)
        return HONE_OK;
    char got[128];
    return hone_fail(ctx, HONE_ERR_SHAPE, "input '%s' is %s, the compiled model takes %s of rank %d "
                     "(recompile with --input-shape for other shapes)", d->name,
                     t ? hone_tensor_type_str(t, got, sizeof got) : "missing",
                     hone_dtype_onnx_name(d->dtype), d->rank);
}

hone_status hone_model_run(hone_ctx *ctx, const hone_model_info *mi, const hone_tensor **in,
                           hone_tensor **out, void *ws)
{
    const void *ip[mi->n_inputs + 1];
    void *op[mi->n_outputs + 1];
    hone_status st = HONE_OK;
    for (int i = 0; i < mi->n_inputs && !st; i++) {
        st = check_input(ctx, &mi->inputs[i], in[i]);
        ip[i] = st ? NULL : in[i]->data;
    }
    for (int i = 0; i < mi->n_outputs; i++)
        out[i] = NULL;
    for (int i = 0; i < mi->n_outputs && !st; i++) {
        const hone_tensor_desc *d = &mi->outputs[i];
        st = hone_tensor_new(ctx, (hone_dtype)d->dtype, d->rank, d->dims, &out[i]);
        op[i] = st ? NULL : out[i]->data;
    }
    int rc = st ? 0 : mi->run(ip, op, ws);
    if (rc)
        st = hone_fail(ctx, HONE_ERR_INVALID, "compiled model '%s' failed with status %d (an index "
                       "out of range, or a shape other than the compiled one, in its inputs)", mi->name, rc);
    for (int i = 0; st && i < mi->n_outputs; i++) {
        hone_tensor_free(out[i]);
        out[i] = NULL;
    }
    return st;
}

void *hone_model_workspace(const hone_model_info *mi)
{
    size_t need = (mi->workspace_size + BK_ALIGN - 1) / BK_ALIGN * BK_ALIGN;
    return aligned_alloc(BK_ALIGN, need ? need : BK_ALIGN);
}

hone_status hone_jit_run(hone_ctx *ctx, hone_jit_t *j, const hone_tensor **in, hone_tensor **out)
{
    if (!j->ws && !(j->ws = hone_model_workspace(j->info)))
        return hone_fail(ctx, HONE_ERR_NOMEM, "cannot allocate a %zu-byte workspace",
                         j->info->workspace_size);
    return hone_model_run(ctx, j->info, in, out, j->ws);
}

void hone_jit_free(hone_jit_t *j)
{
    if (!j)
        return;
    if (j->jit)
        LLVMOrcDisposeLLJIT(j->jit);
    free(j->ws);
    free(j);
}
