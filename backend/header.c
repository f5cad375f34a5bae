/*
 * The C header of a compiled model: what a C program needs to call it.
 *
 *   PREFIX_WORKSPACE_SIZE            bytes of workspace one call needs
 *   PREFIX_<T>_RANK/_SHAPE/_NUMEL    per input and output tensor T (upper case)
 *   PREFIX_inputs / PREFIX_outputs   one typed pointer per tensor, graph order,
 *                                    named after the ONNX tensors
 *   PREFIX_run, PREFIX_run_v, PREFIX_info
 *
 * Tensor names become C identifiers (non-identifier characters to '_', a
 * leading digit or a C keyword fixed, clashes numbered), the same names the
 * model's hone_model_info reports as c_name. The structs hold only pointers,
 * so PREFIX_run can hand them to PREFIX_run_v as pointer arrays. The header
 * needs nothing but the C standard headers; hone/model.h describes
 * PREFIX_info's result.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend.h"

static bool is_keyword(const char *s)
{
    static const char *const kw[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
        "union", "unsigned", "void", "volatile", "while", "bool", "true", "false"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (!strcmp(s, kw[i]))
            return true;
    return false;
}

/* The identifier for an ONNX name, before clash numbering. */
static void sanitise(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    if (isdigit((unsigned char)*s) || !*s)
        k += (size_t)snprintf(buf, n, "t_");
    for (; *s && k + 1 < n; s++)
        buf[k++] = isalnum((unsigned char)*s) || *s == '_' ? *s : '_';
    buf[k] = 0;
    if (is_keyword(buf) && k + 2 < n)
        strcat(buf, "_");
}

/* Graph tensor i of the list inputs, then outputs. */
static const hone_value *tensor_at(const bk_model *m, int i)
{
    return i < m->g->n_inputs ? m->g->inputs[i] : m->g->outputs[i - m->g->n_inputs];
}

const char *bk_c_name(const bk_model *m, int i, char *buf, size_t n)
{
    char other[256];
    sanitise(tensor_at(m, i)->name, buf, n);
    for (int j = 0; j < i; j++) {
        sanitise(tensor_at(m, j)->name, other, sizeof other);
        if (!strcasecmp(other, buf)) { /* the shape macros are upper case */
            size_t k = strlen(buf);
            snprintf(buf + k, n > k ? n - k : 0, "_%d", i);
            break;
        }
    }
    return buf;
}

static const char *c_type(hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_FLOAT: return "float";
    case HONE_DT_DOUBLE: return "double";
    case HONE_DT_INT8: return "int8_t";
    case HONE_DT_UINT8: return "uint8_t";
    case HONE_DT_INT16: return "int16_t";
    case HONE_DT_UINT16: case HONE_DT_FLOAT16: case HONE_DT_BFLOAT16: return "uint16_t";
    case HONE_DT_INT32: return "int32_t";
    case HONE_DT_UINT32: return "uint32_t";
    case HONE_DT_INT64: return "int64_t";
    case HONE_DT_UINT64: return "uint64_t";
    case HONE_DT_BOOL: return "bool";
    default: return "void";
    }
}

/* A growing text buffer. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < t->cap - t->n) {
            t->n += (size_t)k;
            return;
        }
        t->cap = t->cap * 2 + (size_t)k + 256;
        t->s = realloc(t->s, t->cap);
        HONE_ASSERT(t->s);
    }
}

static void upper(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        buf[k++] = (char)toupper((unsigned char)*s);
    buf[k] = 0;
}

/* Shape macros of tensor i. */
static void shape_macros(text *t, const bk_model *m, int i, const char *up)
{
    const hone_value *v = tensor_at(m, i);
    char cn[256], un[256];
    upper(bk_c_name(m, i, cn, sizeof cn), un, sizeof un);
    put(t, "/* '%s': %s", v->name, hone_dtype_onnx_name(v->dtype));
    for (int d = 0; d < v->rank; d++)
        put(t, "%s%lld", d ? "x" : " ", (long long)v->dims[d]);
    put(t, " */\n#define %s_%s_RANK %d\n#define %s_%s_SHAPE {", up, un, v->rank, up, un);
    for (int d = 0; d < v->rank; d++)
        put(t, "%s%lld", d ? ", " : "", (long long)v->dims[d]);
    put(t, "%s}\n#define %s_%s_NUMEL %lld\n", v->rank ? "" : "1", up, un, (long long)bk_numel(v));
}

/* typedef struct PREFIX_<what> { ... } PREFIX_<what>; over tensors [i0, i1). */
static void io_struct(text *t, const bk_model *m, const char *what, int i0, int i1, bool in)
{
    char cn[256];
    put(t, "typedef struct %s_%s {\n", m->name, what);
    for (int i = i0; i < i1; i++)
        put(t, "    %s%s *%s;\n", in ? "const " : "", c_type(tensor_at(m, i)->dtype),
            bk_c_name(m, i, cn, sizeof cn));
    if (i0 == i1)
        put(t, "    const void *unused_; /* the model has no %s */\n", what);
    put(t, "} %s_%s;\n\n", m->name, what);
}

char *bk_header_text(const bk_model *m, const bk_plan *p)
{
    text t = {0};
    char up[256];
    const char *pf = m->name;
    int ni = m->g->n_inputs, no = m->g->n_outputs;
    upper(pf, up, sizeof up);
    put(&t, "/*\n * %s: generated by hone %s from graph '%s'; do not edit.\n"
            " * %d input%s, %d output%s. Every call needs a workspace of %s_WORKSPACE_SIZE\n"
            " * bytes (64-byte aligned), one per concurrent caller; nothing else is allocated.\n */\n",
        pf, hone_version_string(), m->g->name ? m->g->name : "", ni, ni == 1 ? "" : "s", no,
        no == 1 ? "" : "s", up);
    put(&t, "#ifndef %s_H_\n#define %s_H_\n\n#include <stdbool.h>\n#include <stddef.h>\n"
            "#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", up, up);
    put(&t, "#define %s_WORKSPACE_SIZE ((size_t)%zu)\n#define %s_WORKSPACE_ALIGN 64\n\n", up,
        p->workspace, up);
    for (int i = 0; i < ni + no; i++)
        shape_macros(&t, m, i, up);
    put(&t, "\n");
    io_struct(&t, m, "inputs", 0, ni, true);
    io_struct(&t, m, "outputs", ni, ni + no, false);
    put(&t, "/* Runs the model: 0 on success, nonzero when an input holds an out-of-range\n"
            " * index or a shape other than the compiled one. Buffers are the tensors'\n"
            " * shapes, row-major; outputs must not overlap inputs. */\nint %s_run(const %s_inputs *in, %s_outputs *out, void *workspace);\n", pf, pf, pf);
    put(&t, "/* The same with buffers as arrays in graph order. */\n"
            "int %s_run_v(const void *const *in, void *const *out, void *workspace);\n", pf);
    put(&t, "/* Names, shapes and workspace size (struct hone_model_info, hone/model.h). */\n"
            "const struct hone_model_info *%s_info(void);\n\n", pf);
    if (m->profile)
        put(&t, "/* Compiled with --profile: every run adds each node's time to a table printed\n"
                " * at exit (stderr, or the file HONE_PROFILE names). %s_profile_report prints\n"
                " * it now (path NULL: that place) and clears it; %s_profile_reset clears it\n"
                " * (after warm-up runs, say). */\nvoid %s_profile_reset(void);\n"
                "void %s_profile_report(const char *path);\n\n", pf, pf, pf, pf);
    if (m->ext_weights) {
        size_t *off = malloc(sizeof *off * ((size_t)m->g->n_values + 1));
        HONE_ASSERT(off);
        size_t payload = bk_weights_layout(m, p, off);
        free(off);
        put(&t, "/* External weights (compiled with --weights=FILE): FILE holds %s_WEIGHTS_SIZE\n"
                " * bytes. Load them (e.g. mmap, or aligned_alloc(64, ...) + fread) and call\n"
                " * %s_set_weights once, before any run; the bytes are used in place, so keep\n"
                " * them alive and unchanged, 64-byte aligned. Returns 0, or 1 wrong size,\n"
                " * 2 not a hone weights file, 3 weights of another compile, 4 misaligned.\n"
                " * Until it succeeds, runs return %s_ERR_NO_WEIGHTS. */\n", up, pf, up);
        put(&t, "#define %s_WEIGHTS_SIZE ((size_t)%zu)\n#define %s_ERR_NO_WEIGHTS (%d)\n", up,
            (size_t)BK_WEIGHTS_HEADER + payload, up, BK_RUN_NO_WEIGHTS);
        put(&t, "int %s_set_weights(const void *blob, size_t size);\n\n", pf);
    }
    put(&t, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
    return t.s;
}
