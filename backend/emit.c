/*
 * Target and output files. The target machine is the host triple with the
 * requested CPU and features (--mcpu=native, the default, means the host's
 * own CPU name and feature string), position-independent so the same object
 * serves shared libraries and static links. Optimisation is LLVM's standard
 * pipeline, default<O0..O3>, with loop and SLP vectorisation on.
 *
 * Every file is written atomically: LLVM writes a temporary file in the
 * target's folder, which is renamed into place. A shared library is the
 * object linked by the system C compiler (`cc`, or $HONE_CC) with the
 * runtime archive (libhone_rt.a, PIC, symbols hidden with --exclude-libs so
 * several models' libraries load side by side) and OpenBLAS; the compiler's
 * diagnostics become the error message. The archive is $HONE_RT_LIB, else
 * the build tree's, else the installed one next to the running hone.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "backend.h"

#ifndef HONE_RT_LIBRARY
#define HONE_RT_LIBRARY "libhone_rt.a"
#endif
#ifndef HONE_INSTALL_LIBDIR
#define HONE_INSTALL_LIBDIR "lib"
#endif

extern char **environ;

/* Copies an LLVM message into ctx and frees it. */
static hone_status llvm_fail(hone_ctx *ctx, hone_status st, const char *what, char *msg)
{
    hone_fail(ctx, st, "%s: %s", what, msg ? msg : "unknown LLVM error");
    LLVMDisposeMessage(msg);
    return st;
}

static LLVMCodeGenOptLevel codegen_level(int level)
{
    return level <= 0 ? LLVMCodeGenLevelNone : level == 1 ? LLVMCodeGenLevelLess
           : level == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
}

hone_status bk_target_machine(hone_ctx *ctx, const hone_backend_opts *o, LLVMTargetMachineRef *tm)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *err = NULL;
    LLVMTargetRef t;
    if (LLVMGetTargetFromTriple(triple, &t, &err)) {
        LLVMDisposeMessage(triple);
        return llvm_fail(ctx, HONE_ERR_INTERNAL, "no LLVM target for the host", err);
    }
    bool native = !o->mcpu || !strcmp(o->mcpu, "native");
    char *cpu = native ? LLVMGetHostCPUName() : NULL;
    char *host = native ? LLVMGetHostCPUFeatures() : NULL;
    size_t n = (host ? strlen(host) : 0) + (o->mattr ? strlen(o->mattr) : 0) + 2;
    char *features = malloc(n);
    HONE_ASSERT(features);
    snprintf(features, n, "%s%s%s", host ? host : "", host && o->mattr ? "," : "",
             o->mattr ? o->mattr : "");
    *tm = LLVMCreateTargetMachine(t, triple, native ? cpu : o->mcpu, features,
                                  codegen_level(o->opt_level), LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(host);
    free(features);
    if (!*tm)
        return hone_fail(ctx, HONE_ERR_ARG, "cannot create a target machine for CPU '%s'",
                         o->mcpu ? o->mcpu : "native");
    return HONE_OK;
}

hone_status bk_optimize(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm, int level)
{
    char *err = NULL, pipeline[32];
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetTarget(m, triple);
    LLVMSetModuleDataLayout(m, dl);
    LLVMDisposeTargetData(dl);
    LLVMDisposeMessage(triple);
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &err))
        return llvm_fail(ctx, HONE_ERR_INTERNAL, "generated LLVM IR is invalid", err);
    LLVMDisposeMessage(err);
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level < 0 ? 0 : level > 3 ? 3 : level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, level >= 2);
    LLVMErrorRef e = LLVMRunPasses(m, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e)
        return llvm_fail(ctx, HONE_ERR_INTERNAL, "LLVM pass pipeline", LLVMGetErrorMessage(e));
    return HONE_OK;
}

/* A fresh temporary file name next to path (the file is created, empty). */
static hone_status temp_path(hone_ctx *ctx, const char *path, char **out)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    HONE_ASSERT(tmp);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hone_status st = hone_fail(ctx, HONE_ERR_IO, "cannot create a temporary file next to '%s': %s",
                                   path, strerror(errno));
        free(tmp);
        return st;
    }
    close(fd);
    *out = tmp;
    return HONE_OK;
}

/* Renames tmp (given mode bits, less the umask) onto path, or removes tmp when st failed. */
static hone_status commit(hone_ctx *ctx, hone_status st, char *tmp, const char *path, mode_t mode)
{
    mode_t mask = umask(0);
    umask(mask);
    if (!st && chmod(tmp, mode & ~mask))
        st = hone_fail(ctx, HONE_ERR_IO, "cannot set the mode of '%s': %s", tmp, strerror(errno));
    if (!st && rename(tmp, path))
        st = hone_fail(ctx, HONE_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (st)
        unlink(tmp);
    free(tmp);
    return st;
}

/* Writes m to file as kind; the LLVM message on failure. */
static hone_status write_kind(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm,
                              hone_emit_kind kind, char *file)
{
    char *err = NULL;
    switch (kind) {
    case HONE_EMIT_LLVM_IR:
        return LLVMPrintModuleToFile(m, file, &err) ? llvm_fail(ctx, HONE_ERR_IO, file, err) : HONE_OK;
    case HONE_EMIT_BC:
        return LLVMWriteBitcodeToFile(m, file) ? hone_fail(ctx, HONE_ERR_IO, "cannot write bitcode to '%s'", file)
                                               : HONE_OK;
    default:
        if (LLVMTargetMachineEmitToFile(tm, m, file, kind == HONE_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile, &err))
            return llvm_fail(ctx, HONE_ERR_IO, file, err);
        return HONE_OK;
    }
}

hone_status bk_emit_file(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm,
                         hone_emit_kind kind, const char *path)
{
    char *tmp;
    hone_status st = temp_path(ctx, path, &tmp);
    if (st)
        return st;
    return commit(ctx, write_kind(ctx, m, tm, kind, tmp), tmp, path, 0666);
}

/* Runs argv (no shell), capturing its stderr into err (cap bytes); returns the exit status or -1. */
static int run_tool(char *const *argv, char *err, size_t cap)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t got = 0;
    for (ssize_t k; got < cap - 1 && (k = read(fd[0], err + got, cap - 1 - got)) > 0;)
        got += (size_t)k;
    err[got] = 0;
    close(fd[0]);
    if (rc)
        return snprintf(err, cap, "%s", strerror(rc)), -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* <folder of this executable>/../LIBDIR/libhone_rt.a, the installed layout. */
static const char *installed_archive(void)
{
    static char path[4096];
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    snprintf(path, sizeof path, "%s/../%s/libhone_rt.a", exe, HONE_INSTALL_LIBDIR);
    return path;
}

const char *hone_backend_runtime_archive(void)
{
    if (getenv("HONE_RT_LIB"))
        return getenv("HONE_RT_LIB");
    const char *inst = installed_archive();
    return access(HONE_RT_LIBRARY, R_OK) && inst && !access(inst, R_OK) ? inst : HONE_RT_LIBRARY;
}

/* Links an object file with the runtime and BLAS into a shared library at
 * path (through a temporary file). */
static hone_status link_shared(hone_ctx *ctx, const char *obj, const char *path)
{
    const char *cc = getenv("HONE_CC") ? getenv("HONE_CC") : "cc";
    const char *rt = hone_backend_runtime_archive();
    if (access(rt, R_OK))
        return hone_fail(ctx, HONE_ERR_IO, "runtime library '%s' not found (set HONE_RT_LIB to libhone_rt.a)", rt);
    char *tmp, msg[1024];
    hone_status st = temp_path(ctx, path, &tmp);
    if (st)
        return st;
    char *argv[] = {(char *)cc, "-shared", "-o", tmp, (char *)obj, (char *)rt,
                    "-Wl,--exclude-libs,ALL", "-lopenblas", "-lm", NULL};
    int rc = run_tool(argv, msg, sizeof msg);
    if (rc)
        st = hone_fail(ctx, HONE_ERR_IO, "linking '%s' with %s failed (%d): %s", path, cc, rc, msg);
    return commit(ctx, st, tmp, path, 0777);
}

hone_status bk_write_shared(hone_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path)
{
    char *obj;
    hone_status st = temp_path(ctx, path, &obj);
    if (st)
        return st;
    st = write_kind(ctx, m, tm, HONE_EMIT_OBJ, obj);
    if (!st)
        st = link_shared(ctx, obj, path);
    unlink(obj);
    free(obj);
    return st;
}
