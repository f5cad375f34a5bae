/*
 * Elementwise ops, part three: Cast and CastLike.
 *
 * Conversions follow the ONNX Cast rules: floating to integer truncates
 * toward zero (out-of-range values, which ONNX leaves undefined, saturate and
 * NaN becomes 0); integer to narrower integer keeps the low bits (two's
 * complement wrap, 200 -> -56 for int8); anything to bool is "nonzero";
 * floating to floating rounds to nearest even, overflowing to infinity,
 * except that bfloat16 results keep the top 16 bits of the float32 value
 * (truncation), as the ONNX reference and runtimes of opsets <= 17 do.
 *
 * Strings: numbers print the way numpy's str() does, which the ONNX reference
 * uses: the shortest decimal that reads back to the same value in the source
 * precision, positional for 1e-4 <= |x| < 1e16 and scientific otherwise
 * ("0.5", "1.0", "1e-05", "nan", "-inf"); integers print in decimal and bools
 * as True/False. Parsing accepts what strtod accepts ("NaN", "+INF", "1e5");
 * a string that is not a number is an error naming the element.
 */
#include <errno.h>
#include <stdlib.h>

#include "elementwise.h"

#define NUM_BUF 64

/* The dtype Cast's `to` names (an int; a type name such as "FLOAT" in
 * opset-1 models), or UNDEF when absent or not a tensor type. */
static hone_dtype cast_target(const hone_node *n)
{
    const hone_attr *a = hone_attr_find(n, "to");
    if (!a)
        return HONE_DT_UNDEF;
    if (a->kind == HONE_ATTR_STRING) {
        for (int dt = 1; dt < HONE_DT_COUNT; dt++)
            if (!strcmp(a->s, hone_dtype_onnx_name((hone_dtype)dt)))
                return (hone_dtype)dt;
        return HONE_DT_UNDEF;
    }
    return a->i > 0 && a->i < HONE_DT_COUNT ? (hone_dtype)a->i : HONE_DT_UNDEF;
}

static bool is_complex(hone_dtype dt)
{
    return dt == HONE_DT_COMPLEX64 || dt == HONE_DT_COMPLEX128;
}

/* Cast: output dtype from `to`; CastLike: from input 1. Shape is input 0's. */
hone_status infer_cast(hone_infer *ic)
{
    const hone_tinfo *x = ic->in[0];
    bool like = ic->node->op == HONE_OP_CASTLIKE;
    hone_dtype to = like ? ic->in[1]->dtype : cast_target(ic->node);
    if (!like && to == HONE_DT_UNDEF)
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID,
                              "attribute 'to' is missing or names no tensor type");
    if (is_complex(x->dtype) || is_complex(to))
        return hone_node_fail(ic->ctx, ic->node, HONE_ERR_UNSUPPORTED,
                              "casts of complex types (%s to %s) are not supported",
                              hone_dtype_onnx_name(x->dtype), hone_dtype_onnx_name(to));
    hone_infer_set(ic, 0, to, x->rank, x->dims);
    return HONE_OK;
}

/* ===================== numbers to strings ===================== */

/* True when the decimal s reads back to exactly v in precision dt. */
static bool reads_back(const char *s, double v, hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_FLOAT: return strtof(s, NULL) == (float)v;
    case HONE_DT_FLOAT16: return hone_f32_to_f16(strtof(s, NULL)) == hone_f32_to_f16((float)v);
    case HONE_DT_BFLOAT16: return hone_f32_to_bf16(strtof(s, NULL)) == hone_f32_to_bf16((float)v);
    default: return strtod(s, NULL) == v;
    }
}

/* Shortest significant digits of finite v > 0 that read back in dt: the
 * digits (no dot) into dig and the decimal exponent of the first one. */
static int shortest_digits(double v, hone_dtype dt, char *dig, int *exp10)
{
    char buf[NUM_BUF];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (reads_back(buf, v, dt))
            break;
    }
    snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    int n = 0;
    for (const char *c = buf; *c && *c != 'e'; c++)
        if (*c != '.')
            dig[n++] = *c;
    while (n > 1 && dig[n - 1] == '0')
        n--;
    dig[n] = 0;
    *exp10 = atoi(strchr(buf, 'e') + 1);
    return n;
}

/* Digits placed around the decimal point: "123.45", "0.001", "100.0". */
static void positional(char *out, size_t cap, const char *dig, int n, int e)
{
    size_t k = 0;
    if (e < 0) {
        k += (size_t)snprintf(out, cap, "0.");
        for (int i = 0; i < -e - 1 && k + 1 < cap; i++)
            out[k++] = '0';
        snprintf(out + k, cap - k, "%s", dig);
        return;
    }
    for (int i = 0; i <= e && k + 1 < cap; i++)
        out[k++] = i < n ? dig[i] : '0';
    snprintf(out + k, cap - k, ".%s", n > e + 1 ? dig + e + 1 : "0");
}

/* numpy's str() of a floating value held in precision dt. */
static void format_float(char *out, size_t cap, double v, hone_dtype dt)
{
    char dig[NUM_BUF];
    int e, n;
    if (isnan(v) || isinf(v) || v == 0) {
        snprintf(out, cap, "%s", isnan(v) ? "nan" : isinf(v) ? (v < 0 ? "-inf" : "inf")
                                 : signbit(v) ? "-0.0" : "0.0");
        return;
    }
    size_t k = v < 0 ? 1 : 0;
    out[0] = '-';
    n = shortest_digits(fabs(v), dt, dig, &e);
    if (fabs(v) >= 1e-4 && fabs(v) < 1e16) {
        positional(out + k, cap - k, dig, n, e);
        return;
    }
    snprintf(out + k, cap - k, "%c%s%s", dig[0], n > 1 ? "." : "", dig + 1);
    k = strlen(out);
    snprintf(out + k, cap - k, "e%c%02d", e < 0 ? '-' : '+', abs(e));
}

/* y[i] = the string form of x[i]. */
static hone_status to_strings(hone_eval *ec, const hone_tensor *x, hone_tensor *y)
{
    char buf[NUM_BUF];
    char **dst = y->data;
    for (int64_t i = 0; i < x->numel; i++) {
        if (x->dtype == HONE_DT_BOOL)
            snprintf(buf, sizeof buf, "%s", hone_tensor_get_i64(x, i) ? "True" : "False");
        else if (hone_ew_domain(x->dtype) == EW_D_FLOAT)
            format_float(buf, sizeof buf, hone_tensor_get_f64(x, i), x->dtype);
        else if (hone_ew_domain(x->dtype) == EW_D_UINT)
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)hone_tensor_get_i64(x, i));
        else
            snprintf(buf, sizeof buf, "%lld", (long long)hone_tensor_get_i64(x, i));
        free(dst[i]);
        if (!(dst[i] = strdup(buf)))
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    }
    return HONE_OK;
}

/* ===================== strings to numbers ===================== */

/* Parses s whole (surrounding blanks allowed) into y[i] for y's dtype. */
static bool parse_elem(const char *s, hone_tensor *y, int64_t i)
{
    char *end;
    errno = 0;
    if (y->dtype == HONE_DT_BOOL && (!strcmp(s, "True") || !strcmp(s, "False"))) {
        hone_tensor_set_i64(y, i, s[0] == 'T');
        return true;
    }
    if (hone_ew_domain(y->dtype) == EW_D_FLOAT || y->dtype == HONE_DT_BOOL) {
        hone_tensor_set_f64(y, i, strtod(s, &end));
    } else if (hone_ew_domain(y->dtype) == EW_D_UINT) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '-')
            return false;
        hone_tensor_set_i64(y, i, (int64_t)strtoull(s, &end, 10));
    } else {
        hone_tensor_set_i64(y, i, (int64_t)strtoll(s, &end, 10));
    }
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    return end != s && !*end && errno != ERANGE;
}

/* y[i] = x[i] parsed as y's dtype; an unparsable string is an error. */
static hone_status from_strings(hone_eval *ec, const hone_tensor *x, hone_tensor *y)
{
    char *const *src = x->data;
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = src[i] ? src[i] : "";
        if (!parse_elem(s, y, i))
            return hone_node_fail(ec->ctx, ec->node, HONE_ERR_INVALID,
                                  "element %lld, \"%.40s\", is not a valid %s", (long long)i, s,
                                  hone_dtype_onnx_name(y->dtype));
    }
    return HONE_OK;
}

/* ===================== numeric casts ===================== */

/* bfloat16 by truncation of the float32 bits (NaN stays a quiet NaN). */
static uint16_t bf16_trunc(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(isnan(f) ? (u >> 16) | 0x40 : u >> 16);
}

/* y = x converted elementwise between numeric/bool dtypes (rules above). */
static void cast_numeric(const hone_tensor *x, hone_tensor *y)
{
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, hone_tensor_nbytes(x));
    } else if (y->dtype == HONE_DT_BFLOAT16) {
        uint16_t *o = y->data;
        for (int64_t i = 0; i < x->numel; i++)
            o[i] = bf16_trunc((float)hone_tensor_get_f64(x, i));
    } else if (hone_dtype_is_float(x->dtype) || hone_dtype_is_float(y->dtype)) {
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_f64(y, i, hone_tensor_get_f64(x, i));
    } else {
        for (int64_t i = 0; i < x->numel; i++)
            hone_tensor_set_i64(y, i, hone_tensor_get_i64(x, i));
    }
}

/* Cast and CastLike share this kernel; the output dtype came from infer. */
hone_status eval_cast(hone_eval *ec)
{
    const hone_tensor *x = ec->in[0];
    hone_dtype to = ec->node->op == HONE_OP_CASTLIKE ? ec->in[1]->dtype : cast_target(ec->node);
    hone_status st = hone_eval_alloc(ec, 0, to, x->rank, x->dims);
    if (st)
        return st;
    hone_tensor *y = ec->out[0];
    if (x->dtype == HONE_DT_STRING && to == HONE_DT_STRING)
        return eval_identity(ec);
    if (to == HONE_DT_STRING)
        return to_strings(ec, x, y);
    if (x->dtype == HONE_DT_STRING)
        return from_strings(ec, x, y);
    cast_numeric(x, y);
    return HONE_OK;
}
