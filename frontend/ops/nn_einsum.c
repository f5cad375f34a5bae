/*
 * Einsum: the reference kernel for any equation, any numeric element type.
 *
 * The equation is compiled once into label ids: letters a-z are 0..25, A-Z
 * 26..51, and the dims an ellipsis covers get ids 52 + (distance from the
 * right), so ellipses of different ranks line up right-aligned and broadcast
 * as numpy does. Without "->" the output is the ellipsis dims followed by the
 * letters used exactly once, in alphabetical (ASCII) order.
 *
 * Evaluation walks an odometer over every label in use. Each operand keeps
 * one stride per label (the sum of the strides of its dims with that label, so
 * a repeated label reads a diagonal; 0 where a size-1 dim broadcasts), which
 * keeps every operand offset up to date incrementally. Products accumulate in
 * double, or in wrapping int64 for integer types.
 */
#include <stdlib.h>

#include "nn.h"

#define EIN_LETTERS 52
#define EIN_LABELS (EIN_LETTERS + HONE_MAX_RANK)
#define EIN_MAX_IN 16
#define EIN_MAX_WORK ((int64_t)1 << 30)

typedef struct ein_spec {
    int n_in;
    int rank[EIN_MAX_IN + 1];                 /* operand ranks; index n_in is the output */
    int8_t lab[EIN_MAX_IN + 1][HONE_MAX_RANK];
    int64_t size[EIN_LABELS];                 /* extent of each label, -1 unknown */
    bool used[EIN_LABELS];
} ein_spec;

static int letter_id(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return 26 + c - 'A';
    return -1;
}

/* Records the extent of label l from one operand dim; fails on a conflict. */
static hone_status bind_size(hone_ctx *ctx, const hone_node *n, ein_spec *sp, int l, int64_t d)
{
    int64_t *s = &sp->size[l];
    sp->used[l] = true;
    if (d < 0 || *s == d || (l >= EIN_LETTERS && d == 1 && *s >= 0))
        return HONE_OK;
    if (*s < 0 || (l >= EIN_LETTERS && *s == 1)) {
        *s = d;
        return HONE_OK;
    }
    return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "label '%c' has extents %lld and %lld",
                          l < 26 ? 'a' + l : l < EIN_LETTERS ? 'A' + l - 26 : '.', (long long)*s,
                          (long long)d);
}

/* Letters in s[0..len); *ell tells whether it holds an ellipsis. */
static int count_letters(const char *s, size_t len, bool *ell)
{
    int k = 0;
    for (size_t i = 0; i < len; i++)
        k += letter_id(s[i]) >= 0;
    *ell = false;
    for (size_t i = 0; i + 2 < len && !*ell; i++)
        *ell = !strncmp(s + i, "...", 3);
    return k;
}

/* Parses term s[0..len), whose ellipsis covers e dims, into its labels. */
static hone_status parse_term(hone_ctx *ctx, const hone_node *n, const char *s, size_t len, int e,
                              int8_t *lab, int *rank)
{
    int out = 0;
    bool ell = false;
    for (size_t i = 0; i < len; i++) {
        int id = letter_id(s[i]), k = id >= 0 ? 1 : 0;
        size_t skip = 0;
        if (id < 0 && !ell && i + 2 < len && !strncmp(s + i, "...", 3)) {
            ell = true;
            k = e;
            skip = 2;
        } else if (id < 0 && s[i] != ' ') {
            return hone_node_fail(ctx, n, HONE_ERR_INVALID, "bad character '%c' in equation", s[i]);
        }
        if (out + k > HONE_MAX_RANK)
            return hone_node_fail(ctx, n, HONE_ERR_LIMIT, "term '%.*s' has too many dims",
                                  (int)len, s);
        for (int j = 0; j < k; j++)
            lab[out++] = (int8_t)(id >= 0 ? id : EIN_LETTERS + e - 1 - j);
        i += skip;
    }
    *rank = out;
    return HONE_OK;
}

/* Parses the term of operand i (rank r) and binds its label extents. */
static hone_status parse_input(hone_ctx *ctx, const hone_node *n, ein_spec *sp, int i,
                               const char *s, size_t len, int r, const int64_t *dims)
{
    bool has_ell;
    int e = r - count_letters(s, len, &has_ell);
    if (e < 0 || (e > 0 && !has_ell))
        return hone_node_fail(ctx, n, HONE_ERR_SHAPE, "term '%.*s' does not fit input %d of rank %d",
                              (int)len, s, i, r);
    hone_status st = parse_term(ctx, n, s, len, e, sp->lab[i], &sp->rank[i]);
    for (int d = 0; d < sp->rank[i] && !st; d++)
        st = bind_size(ctx, n, sp, sp->lab[i][d], dims[d]);
    return st;
}

/* The implicit output: ellipsis dims, then letters used once, sorted by ASCII. */
static void implicit_output(ein_spec *sp, int ell)
{
    int count[EIN_LETTERS] = {0}, r = 0;
    for (int i = 0; i < sp->n_in; i++)
        for (int d = 0; d < sp->rank[i]; d++)
            if (sp->lab[i][d] < EIN_LETTERS)
                count[sp->lab[i][d]]++;
    for (int j = 0; j < ell; j++)
        sp->lab[sp->n_in][r++] = (int8_t)(EIN_LETTERS + ell - 1 - j);
    for (int c = 'A'; c <= 'z' && r < HONE_MAX_RANK; c++)
        if (letter_id((char)c) >= 0 && count[letter_id((char)c)] == 1)
            sp->lab[sp->n_in][r++] = (int8_t)letter_id((char)c);
    sp->rank[sp->n_in] = r;
}

/* Checks output labels: each from an input, none repeated. */
static hone_status check_output(hone_ctx *ctx, const hone_node *n, const ein_spec *sp)
{
    bool seen[EIN_LABELS] = {0};
    for (int d = 0; d < sp->rank[sp->n_in]; d++) {
        int l = sp->lab[sp->n_in][d];
        if (seen[l] || !sp->used[l])
            return hone_node_fail(ctx, n, HONE_ERR_INVALID,
                                  "output label %d is repeated or not in any input", d);
        seen[l] = true;
    }
    return HONE_OK;
}

/* Widest ellipsis among the inputs. */
static int ellipsis_width(const ein_spec *sp)
{
    int w = 0;
    for (int i = 0; i < sp->n_in; i++)
        for (int d = 0; d < sp->rank[i]; d++)
            if (sp->lab[i][d] >= EIN_LETTERS && sp->lab[i][d] - EIN_LETTERS + 1 > w)
                w = sp->lab[i][d] - EIN_LETTERS + 1;
    return w;
}

/* Compiles the equation against the operand shapes (ranks known). */
static hone_status ein_compile(hone_ctx *ctx, const hone_node *n, int n_in,
                               const hone_tinfo **in, ein_spec *sp)
{
    const char *eq = hone_attr_str(n, "equation", NULL);
    if (!eq)
        return hone_node_fail(ctx, n, HONE_ERR_INVALID, "attribute 'equation' is required");
    if (n_in > EIN_MAX_IN)
        return hone_node_fail(ctx, n, HONE_ERR_UNSUPPORTED, "more than %d operands", EIN_MAX_IN);
    memset(sp, 0, sizeof *sp);
    memset(sp->size, -1, sizeof sp->size);
    sp->n_in = n_in;
    const char *arrow = strstr(eq, "->"), *p = eq, *end = arrow ? arrow : eq + strlen(eq);
    hone_status st = HONE_OK;
    for (int i = 0; i < n_in && !st; i++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if ((i < n_in - 1) != (comma != NULL))
            return hone_node_fail(ctx, n, HONE_ERR_INVALID,
                                  "equation '%s' does not have %d input terms", eq, n_in);
        const char *stop = comma ? comma : end;
        st = parse_input(ctx, n, sp, i, p, (size_t)(stop - p), in[i]->rank, in[i]->dims);
        p = stop + 1;
    }
    if (!st && arrow)
        st = parse_term(ctx, n, arrow + 2, strlen(arrow + 2), ellipsis_width(sp), sp->lab[n_in],
                        &sp->rank[n_in]);
    if (!st && !arrow)
        implicit_output(sp, ellipsis_width(sp));
    return st ? st : check_output(ctx, n, sp);
}

/* Einsum: operands -> the tensor the equation names. */
hone_status infer_einsum(hone_infer *ic)
{
    ein_spec sp;
    int64_t y[HONE_MAX_RANK];
    hone_dtype dt = ic->in[0]->dtype;
    for (int i = 0; i < ic->n_in; i++) {
        if (!ic->in[i])
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_INVALID, "input %d is missing", i);
        if (ic->in[i]->dtype && dt && ic->in[i]->dtype != dt)
            return hone_node_fail(ic->ctx, ic->node, HONE_ERR_SHAPE, "inputs differ in type");
        if (ic->in[i]->rank < 0) {
            hone_infer_set(ic, 0, dt, -1, NULL);
            return HONE_OK;
        }
    }
    hone_status st = ein_compile(ic->ctx, ic->node, ic->n_in, ic->in, &sp);
    if (st)
        return st;
    for (int d = 0; d < sp.rank[sp.n_in]; d++)
        y[d] = sp.size[sp.lab[sp.n_in][d]];
    hone_infer_set(ic, 0, dt, sp.rank[sp.n_in], y);
    return HONE_OK;
}

/* Per-label strides of operand k with dims (a size-1 dim of a wider label broadcasts). */
static void label_strides(const ein_spec *sp, int k, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    memset(st, 0, sizeof(int64_t) * EIN_LABELS);
    for (int d = sp->rank[k] - 1; d >= 0; d--) {
        int l = sp->lab[k][d];
        if (!(dims[d] == 1 && sp->size[l] != 1))
            st[l] += s;
        s *= dims[d];
    }
}

/* The odometer over every label in use, with one running offset per operand. */
typedef struct ein_walk {
    int n_lab, n_op;
    int lab[EIN_LABELS];
    int64_t idx[EIN_LABELS];
    int64_t st[EIN_MAX_IN + 1][EIN_LABELS];
    int64_t off[EIN_MAX_IN + 1];
} ein_walk;

static void walk_next(const ein_spec *sp, ein_walk *w)
{
    for (int j = w->n_lab - 1; j >= 0; j--) {
        int l = w->lab[j];
        for (int k = 0; k < w->n_op; k++)
            w->off[k] += w->st[k][l];
        if (++w->idx[j] < sp->size[l])
            return;
        for (int k = 0; k < w->n_op; k++)
            w->off[k] -= sp->size[l] * w->st[k][l];
        w->idx[j] = 0;
    }
}

/* Sums every product into y: double for floats, wrapping int64 for integers. */
static void ein_run(const ein_spec *sp, ein_walk *w, int64_t total, hone_eval *ec, double *acc)
{
    hone_tensor *y = ec->out[0];
    bool isint = hone_dtype_is_int(y->dtype);
    int64_t *iacc = (int64_t *)acc;
    for (int64_t t = 0; t < total; t++, walk_next(sp, w)) {
        double p = 1;
        uint64_t q = 1;
        for (int k = 0; k < sp->n_in; k++) {
            if (isint)
                q *= (uint64_t)hone_tensor_get_i64(ec->in[k], w->off[k]);
            else
                p *= hone_tensor_get_f64(ec->in[k], w->off[k]);
        }
        if (isint)
            iacc[w->off[sp->n_in]] = (int64_t)((uint64_t)iacc[w->off[sp->n_in]] + q);
        else
            acc[w->off[sp->n_in]] += p;
    }
    for (int64_t i = 0; i < y->numel; i++) {
        if (isint)
            hone_tensor_set_i64(y, i, iacc[i]);
        else
            hone_tensor_set_f64(y, i, acc[i]);
    }
}

hone_status eval_einsum(hone_eval *ec)
{
    hone_tinfo ti[EIN_MAX_IN];
    const hone_tinfo *pi[EIN_MAX_IN];
    ein_spec sp;
    ein_walk w = {.n_op = ec->n_in + 1};
    for (int i = 0; i < ec->n_in && i < EIN_MAX_IN; i++) {
        nn_tinfo_of(ec->in[i], &ti[i]);
        pi[i] = &ti[i];
    }
    hone_status st = ein_compile(ec->ctx, ec->node, ec->n_in, pi, &sp);
    if (st)
        return st;
    int64_t total = 1;
    for (int l = 0; l < EIN_LABELS; l++)
        if (sp.used[l]) {
            w.lab[w.n_lab++] = l;
            total = sp.size[l] && total > EIN_MAX_WORK / sp.size[l] ? EIN_MAX_WORK + 1
                                                                    : total * sp.size[l];
        }
    if (total > EIN_MAX_WORK)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_LIMIT, "equation needs over 2^30 steps");
    for (int k = 0; k < ec->n_in; k++)
        label_strides(&sp, k, ec->in[k]->dims, w.st[k]);
    label_strides(&sp, ec->n_in, ec->out[0]->dims, w.st[ec->n_in]);
    double *acc = calloc((size_t)(ec->out[0]->numel ? ec->out[0]->numel : 1), sizeof *acc);
    if (!acc)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_NOMEM, "out of memory");
    ein_run(&sp, &w, total, ec, acc);
    free(acc);
    return HONE_OK;
}
