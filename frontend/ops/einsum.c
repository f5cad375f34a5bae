/*
 * Einsum: the general Einstein summation of any number of operands.
 *
 * The equation is compiled into an eplan: every operand dim gets a label id
 * (letters A-Z are 0-25, a-z 26-51, and the k-th of the broadcast "..." dims
 * is 52+k, aligned to the right as numpy does), every label an extent, and
 * the output a list of labels: the ones after "->", or in implicit mode the
 * "..." dims followed by the letters used exactly once, in ASCII order.
 *
 * Evaluation walks all labels with one odometer, output labels first and
 * summed labels last, so each output element is the sum over a contiguous run
 * of steps. Each operand's offset moves by its stride for that label; a label
 * repeated within an operand adds up its strides, which is how diagonals and
 * traces ("ii->i", "ii") fall out, and a size-1 "..." dim that broadcasts gets
 * stride 0. It is a reference kernel: it costs the product of all label
 * extents, without reordering the contraction.
 */
#include "misc.h"
#include "ops_util.h"

#define EIN_MAX_IN HONE_EINSUM_MAX_IN
#define EIN_LETTERS 52
#define EIN_MAX_LABELS HONE_EINSUM_MAX_LABELS
#define EIN_MAX_EQ 512
#define EIN_MAX_WORK 1e13 /* odometer steps one Einsum may take */

typedef struct eplan {
    int nin, nell;                       /* operands, broadcast ("...") rank */
    int rank[EIN_MAX_IN];
    int lab[EIN_MAX_IN][HONE_MAX_RANK];  /* label of each operand dim */
    bool used[EIN_MAX_LABELS];
    int64_t size[EIN_MAX_LABELS];        /* extent of each used label */
    int nout, out[HONE_MAX_RANK];        /* output labels in order */
} eplan;

static int letter_id(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : -1;
}

/* Counts the letters of a term and finds its "..."; -1 on anything malformed. */
static int term_letters(const char *s, size_t len, bool *ell)
{
    int n = 0;
    *ell = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (*ell || i + 3 > len || s[i + 1] != '.' || s[i + 2] != '.')
                return -1;
            *ell = true;
            i += 2;
        } else if (letter_id(s[i]) >= 0) {
            n++;
        } else {
            return -1;
        }
    }
    return n;
}

/* Label ids of a well-formed term whose "..." stands for the last er of nell dims. */
static int term_labels(const char *s, size_t len, int er, int nell, int *labs)
{
    int k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            for (int e = 0; e < er; e++)
                labs[k++] = EIN_LETTERS + nell - er + e;
            i += 2;
        } else {
            labs[k++] = letter_id(s[i]);
        }
    }
    return k;
}

/* Merges extent d into label l; "..." labels broadcast size 1. False on a clash. */
static bool merge_size(eplan *p, int l, int64_t d)
{
    int64_t *s = &p->size[l];
    if (!p->used[l] || *s == d || (*s < 0 && d >= 0)) {
        p->used[l] = true;
        *s = d;
        return true;
    }
    if (d < 0 || (l >= EIN_LETTERS && d == 1))
        return true;
    if (l >= EIN_LETTERS && *s == 1) {
        *s = d;
        return true;
    }
    return false;
}

/* Equation attribute without spaces into eq. */
static hone_status read_equation(hone_ctx *ctx, const hone_node *nd, char *eq)
{
    const char *s = hone_attr_str(nd, "equation", NULL);
    if (!s)
        return hone_node_fail(ctx, nd, HONE_ERR_INVALID, "attribute equation is missing");
    size_t k = 0;
    for (; *s; s++)
        if (*s != ' ') {
            if (k + 1 >= EIN_MAX_EQ)
                return hone_node_fail(ctx, nd, HONE_ERR_LIMIT, "equation is too long");
            eq[k++] = *s;
        }
    eq[k] = 0;
    return HONE_OK;
}

/* Splits the input side of eq into at most EIN_MAX_IN terms; returns the count (-1 if more). */
static int split_terms(const char *lhs, size_t len, const char **ts, size_t *tl)
{
    int n = 0;
    const char *start = lhs;
    for (size_t i = 0; i <= len; i++)
        if (i == len || lhs[i] == ',') {
            if (n == EIN_MAX_IN)
                return -1;
            ts[n] = start;
            tl[n++] = (size_t)(lhs + i - start);
            start = lhs + i + 1;
        }
    return n;
}

/* Labels and extents of operand k from its term. */
static hone_status plan_operand(hone_ctx *ctx, const hone_node *nd, eplan *p, int k,
                                const char *t, size_t len, const hone_tinfo *x)
{
    bool ell;
    int nl = term_letters(t, len, &ell);
    int er = x->rank - nl;
    p->rank[k] = x->rank;
    if (nl < 0 || er < 0 || (!ell && er))
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "term '%.*s' does not fit operand %d of rank %d", (int)len, t, k,
                              x->rank);
    term_labels(t, len, er, p->nell, p->lab[k]);
    for (int d = 0; d < x->rank; d++)
        if (!merge_size(p, p->lab[k][d], x->dims[d]))
            return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                  "label of dim %d of operand %d has extent %lld, elsewhere %lld",
                                  d, k, (long long)x->dims[d], (long long)p->size[p->lab[k][d]]);
    return HONE_OK;
}

/* Implicit output: the "..." dims, then letters used exactly once, in ASCII order. */
static hone_status plan_implicit(hone_ctx *ctx, const hone_node *nd, eplan *p)
{
    int count[EIN_LETTERS] = {0};
    for (int k = 0; k < p->nin; k++)
        for (int d = 0; d < p->rank[k]; d++)
            if (p->lab[k][d] < EIN_LETTERS)
                count[p->lab[k][d]]++;
    p->nout = 0;
    for (int e = 0; e < p->nell; e++)
        p->out[p->nout++] = EIN_LETTERS + e;
    for (int l = 0; l < EIN_LETTERS; l++)
        if (count[l] == 1) {
            if (p->nout == HONE_MAX_RANK)
                return hone_node_fail(ctx, nd, HONE_ERR_LIMIT, "output rank exceeds %d",
                                      HONE_MAX_RANK);
            p->out[p->nout++] = l;
        }
    return HONE_OK;
}

/* Explicit output term: known labels, each at most once. */
static hone_status plan_explicit(hone_ctx *ctx, const hone_node *nd, eplan *p, const char *t)
{
    bool ell, seen[EIN_MAX_LABELS] = {0};
    size_t len = strlen(t);
    int nl = term_letters(t, len, &ell);
    if (nl < 0 || nl + (ell ? p->nell : 0) > HONE_MAX_RANK)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE, "output term '%s' is malformed or too long",
                              t);
    p->nout = term_labels(t, len, p->nell, p->nell, p->out);
    for (int i = 0; i < p->nout; i++) {
        int l = p->out[i];
        if (!p->used[l] || seen[l])
            return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                  "output term '%s' repeats a label or names one no input has", t);
        seen[l] = true;
    }
    return HONE_OK;
}

/* Compiles the equation against the operand shapes. */
static hone_status ein_plan(hone_ctx *ctx, const hone_node *nd, int nin,
                            const hone_tinfo *const *in, eplan *p)
{
    char eq[EIN_MAX_EQ];
    const char *ts[EIN_MAX_IN];
    size_t tl[EIN_MAX_IN];
    hone_status st = read_equation(ctx, nd, eq);
    if (st)
        return st;
    const char *arrow = strstr(eq, "->");
    int nt = split_terms(eq, arrow ? (size_t)(arrow - eq) : strlen(eq), ts, tl);
    if (nt != nin)
        return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                              "equation '%s' does not have one term per input (%d inputs)", eq, nin);
    memset(p, 0, sizeof *p);
    p->nin = nin;
    for (int k = 0; k < nin; k++) {
        bool ell;
        int nl = term_letters(ts[k], tl[k], &ell);
        if (ell && in[k]->rank - nl > p->nell)
            p->nell = in[k]->rank - nl;
    }
    for (int k = 0; k < nin && !st; k++)
        st = plan_operand(ctx, nd, p, k, ts[k], tl[k], in[k]);
    if (st)
        return st;
    return arrow ? plan_explicit(ctx, nd, p, arrow + 2) : plan_implicit(ctx, nd, p);
}

/* Checks operands share one numeric type; returns it through dt. */
static hone_status ein_types(hone_ctx *ctx, const hone_node *nd, int nin,
                             const hone_tinfo *const *in, hone_dtype *dt)
{
    if (nin > EIN_MAX_IN)
        return hone_node_fail(ctx, nd, HONE_ERR_LIMIT, "%d operands, at most %d supported", nin,
                              EIN_MAX_IN);
    *dt = in[0]->dtype;
    for (int k = 0; k < nin; k++) {
        hone_dtype d = in[k]->dtype;
        if (d && ((*dt && d != *dt) || !(hone_dtype_is_float(d) || hone_dtype_is_int(d))))
            return hone_node_fail(ctx, nd, HONE_ERR_SHAPE,
                                  "operands must share one numeric type (operand %d is %s)", k,
                                  hone_dtype_name(d));
    }
    return HONE_OK;
}

hone_status infer_einsum(hone_infer *ic)
{
    hone_dtype dt;
    eplan p;
    int64_t d[HONE_MAX_RANK];
    hone_status st = ein_types(ic->ctx, ic->node, ic->n_in, ic->in, &dt);
    if (st)
        return st;
    for (int k = 0; k < ic->n_in; k++)
        if (ic->in[k]->rank < 0) {
            hone_infer_set(ic, 0, dt, -1, NULL);
            return HONE_OK;
        }
    if ((st = ein_plan(ic->ctx, ic->node, ic->n_in, ic->in, &p)))
        return st;
    for (int i = 0; i < p.nout; i++)
        d[i] = p.size[p.out[i]];
    hone_infer_set(ic, 0, dt, p.nout, d);
    return HONE_OK;
}

/* The odometer over all labels, with each operand's offset. */
typedef struct ewalk {
    int n, nin;
    int64_t dims[EIN_MAX_LABELS], idx[EIN_MAX_LABELS];
    int64_t str[EIN_MAX_IN][EIN_MAX_LABELS];
    int64_t off[EIN_MAX_IN];
} ewalk;

/* Orders labels output-first and sums each operand's strides per label. */
static void ewalk_init(ewalk *w, const eplan *p, const hone_tinfo *const *in)
{
    int pos[EIN_MAX_LABELS];
    memset(w, 0, sizeof *w);
    memset(pos, -1, sizeof pos);
    w->nin = p->nin;
    for (int i = 0; i < p->nout; i++)
        pos[p->out[i]] = w->n++;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (p->used[l] && pos[l] < 0)
            pos[l] = w->n++;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (pos[l] >= 0)
            w->dims[pos[l]] = p->size[l];
    for (int k = 0; k < p->nin; k++) {
        int64_t st[HONE_MAX_RANK];
        hone_strides(in[k]->rank, in[k]->dims, st);
        for (int d = 0; d < in[k]->rank; d++) {
            int l = p->lab[k][d];
            if (in[k]->dims[d] == p->size[l])
                w->str[k][pos[l]] += st[d];
        }
    }
}

static void ewalk_next(ewalk *w)
{
    for (int i = w->n - 1; i >= 0; i--) {
        for (int k = 0; k < w->nin; k++)
            w->off[k] += w->str[k][i];
        if (++w->idx[i] < w->dims[i])
            return;
        for (int k = 0; k < w->nin; k++)
            w->off[k] -= w->str[k][i] * w->dims[i];
        w->idx[i] = 0;
    }
}

/* y[o] = sum over `inner` steps of the product of the operands at the walk's offsets. */
static void ein_run(ewalk *w, const hone_tensor *const *in, hone_tensor *y, int64_t inner)
{
    bool isint = hone_dtype_is_int(y->dtype);
    for (int64_t o = 0; o < y->numel; o++) {
        double af = 0;
        uint64_t ai = 0;
        for (int64_t s = 0; s < inner; s++, ewalk_next(w)) {
            double pf = 1;
            uint64_t pi = 1;
            for (int k = 0; k < w->nin; k++) {
                if (isint)
                    pi *= (uint64_t)hone_tensor_get_i64(in[k], w->off[k]);
                else
                    pf *= hone_tensor_get_f64(in[k], w->off[k]);
            }
            af += pf;
            ai += pi;
        }
        if (isint)
            hone_tensor_set_i64(y, o, (int64_t)ai);
        else
            hone_tensor_set_f64(y, o, af);
    }
}

hone_status eval_einsum(hone_eval *ec)
{
    hone_tinfo ti[EIN_MAX_IN];
    const hone_tinfo *pi[EIN_MAX_IN];
    hone_dtype dt;
    eplan p;
    int64_t d[HONE_MAX_RANK];
    if (ec->n_in > EIN_MAX_IN)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_LIMIT, "too many operands");
    for (int k = 0; k < ec->n_in; k++)
        pi[k] = hone_misc_tinfo(&ti[k], ec->in[k]);
    hone_status st = ein_types(ec->ctx, ec->node, ec->n_in, pi, &dt);
    if (st || (st = ein_plan(ec->ctx, ec->node, ec->n_in, pi, &p)))
        return st;
    for (int i = 0; i < p.nout; i++)
        d[i] = p.size[p.out[i]];
    if ((st = hone_eval_alloc(ec, 0, dt, p.nout, d)))
        return st;
    ewalk w;
    ewalk_init(&w, &p, pi);
    int64_t inner = 1;
    double work = (double)ec->out[0]->numel;
    for (int i = p.nout; i < w.n; i++) {
        inner *= w.dims[i];
        work *= (double)w.dims[i];
    }
    if (work > EIN_MAX_WORK)
        return hone_node_fail(ec->ctx, ec->node, HONE_ERR_LIMIT,
                              "contraction needs %.3g steps, above the limit %.3g", work,
                              EIN_MAX_WORK);
    if (inner > 0)
        ein_run(&w, ec->in, ec->out[0], inner);
    return HONE_OK;
}

hone_status hone_einsum_nest_of(hone_ctx *ctx, const hone_node *nd, int nin,
                                const hone_tinfo *const *in, hone_einsum_nest *out)
{
    hone_dtype dt;
    eplan p;
    ewalk w;
    hone_status st = ein_types(ctx, nd, nin, in, &dt);
    if (st || (st = ein_plan(ctx, nd, nin, in, &p)))
        return st;
    ewalk_init(&w, &p, in);
    out->n = w.n;
    out->nout = p.nout;
    out->nin = nin;
    memcpy(out->dims, w.dims, sizeof out->dims);
    memcpy(out->str, w.str, sizeof out->str);
    return HONE_OK;
}
