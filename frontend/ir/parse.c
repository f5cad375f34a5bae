/*
 * Text IR reader: parses the dump format of print.c back into a graph, so that
 * pass tests read "IR in, expected IR out" and a graph can be written by hand.
 *
 *   graph main (ir 8; ai.onnx 13) {
 *     input %x: f32[N,3]
 *     const %b: f32[3] = [1, -2, 3]
 *     %y: f32[N,3] = Add(%x, %b) {alpha=0.5}  # add0
 *     output %y: f32[N,3]
 *   }
 *
 * The reader is line-oriented: one declaration or node per line, '#' lines are
 * comments. It accepts two things the printer never writes: explicit constant
 * contents ("= [v, ...]" after a const, "tensor T[d] [v, ...]" in an
 * attribute). Float tensors without contents get a deterministic
 * pseudo-random fill in [-1, 1) seeded by the value's name, so numeric tests
 * need no data files; other types are zero-filled. "[?]" reads as
 * an unknown rank (the printer writes a rank-1 unknown dim the same way).
 * Value names end at ", ", ")", ": " or white space. The graph is sorted and
 * verified, not inferred: ops outside the op table are allowed here.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct parser {
    hone_ctx *ctx;
    hone_graph *g;
    const char *p;   /* cursor inside the current line */
    int line;
} parser;

static hone_status perr(parser *ps, const char *what)
{
    char near[40];
    size_t k = strcspn(ps->p, "\n");
    snprintf(near, sizeof near, "%.*s", (int)(k < 30 ? k : 30), ps->p);
    return hone_fail(ps->ctx, HONE_ERR_PARSE, "line %d: %s (near '%s')", ps->line, what, near);
}

static void skip_ws(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r')
        ps->p++;
}

/* Consumes the literal s after optional blanks; false (nothing consumed) if absent. */
static bool eat(parser *ps, const char *s)
{
    skip_ws(ps);
    size_t n = strlen(s);
    if (strncmp(ps->p, s, n))
        return false;
    ps->p += n;
    return true;
}

static hone_status expect(parser *ps, const char *s)
{
    char what[64];
    if (eat(ps, s))
        return HONE_OK;
    snprintf(what, sizeof what, "expected '%s'", s);
    return perr(ps, what);
}

static bool name_end(const char *p)
{
    return !*p || *p == '\n' || *p == ' ' || *p == '\t' || *p == ',' || *p == ')' ||
           *p == '}' || (p[0] == ':' && (p[1] == ' ' || p[1] == '\t'));
}

/* Reads a name token into the graph arena. */
static const char *read_name(parser *ps)
{
    skip_ws(ps);
    const char *s = ps->p;
    while (!name_end(ps->p))
        ps->p++;
    return ps->p > s ? hone_arena_strndup(ps->g->arena, s, (size_t)(ps->p - s)) : NULL;
}

static hone_dtype dtype_from_name(const char *s, size_t n)
{
    for (int d = 0; d < HONE_DT_COUNT; d++) {
        const char *nm = hone_dtype_name((hone_dtype)d);
        if (strlen(nm) == n && !strncmp(nm, s, n))
            return (hone_dtype)d;
    }
    return HONE_DT_COUNT;
}

/* One dim: integer, '?' or a symbol name. */
static hone_status parse_dim(parser *ps, int64_t *d)
{
    skip_ws(ps);
    const char *s = ps->p;
    size_t n = strcspn(s, ",]\n");
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n)
        return perr(ps, "empty dimension");
    ps->p = s + n;
    if (n == 1 && *s == '?') {
        *d = HONE_DIM_UNKNOWN;
        return HONE_OK;
    }
    if (isdigit((unsigned char)*s)) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end != s + n || errno)
            return perr(ps, "bad dimension");
        *d = v;
        return HONE_OK;
    }
    char *sym = hone_arena_strndup(ps->g->arena, s, n);
    *d = HONE_DIM_SYM(hone_graph_sym(ps->g, sym));
    return HONE_OK;
}

/* "f32[N,3]" onto dt/rank/dims; "[?]" is an unknown rank. */
static hone_status parse_type(parser *ps, hone_dtype *dt, int *rank, int64_t *dims)
{
    skip_ws(ps);
    size_t n = strcspn(ps->p, "[\n");
    *dt = dtype_from_name(ps->p, n);
    if (*dt == HONE_DT_COUNT)
        return perr(ps, "unknown element type");
    ps->p += n;
    hone_status st = expect(ps, "[");
    if (st)
        return st;
    *rank = 0;
    if (eat(ps, "?]")) {
        *rank = -1;
        return HONE_OK;
    }
    if (eat(ps, "]"))
        return HONE_OK;
    do {
        if (*rank == HONE_MAX_RANK)
            return perr(ps, "rank above the limit");
        if ((st = parse_dim(ps, &dims[(*rank)++])))
            return st;
    } while (eat(ps, ","));
    return expect(ps, "]");
}

/* Reads "[v, ...]" as doubles (count into *n, at most cap). */
static hone_status parse_numbers(parser *ps, double *v, int cap, int *n)
{
    hone_status st = expect(ps, "[");
    *n = 0;
    if (st || eat(ps, "]"))
        return st;
    do {
        skip_ws(ps);
        char *end;
        double x = strtod(ps->p, &end);
        if (end == ps->p)
            return perr(ps, "expected a number");
        if (*n == cap)
            return perr(ps, "too many values");
        v[(*n)++] = x;
        ps->p = end;
    } while (eat(ps, ","));
    return expect(ps, "]");
}

/* Deterministic values in [-1, 1) for a float tensor named `name`. */
static void fill_pseudo_random(hone_tensor *t, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (int64_t i = 0; i < t->numel; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        hone_tensor_set_f64(t, i, (double)(h >> 11) / (double)(1ull << 52) - 1.0);
    }
}

#define MAX_LITERAL 4096

/* Tensor of type (dt, rank, dims) with optional "[values]" after the cursor. */
static hone_status parse_tensor_body(parser *ps, const char *name, hone_dtype dt, int rank,
                                     const int64_t *dims, hone_tensor **out)
{
    if (rank < 0)
        return perr(ps, "a constant needs a known shape");
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return perr(ps, "a constant needs concrete dimensions");
    hone_status st = hone_tensor_new(ps->ctx, dt, rank, dims, out);
    if (st)
        return st;
    skip_ws(ps);
    if (*ps->p != '[') {
        if (hone_dtype_is_float(dt))
            fill_pseudo_random(*out, name);
        return HONE_OK;
    }
    static double v[MAX_LITERAL];
    int n;
    if ((st = parse_numbers(ps, v, MAX_LITERAL, &n)) || n != (*out)->numel) {
        hone_tensor_free(*out);
        *out = NULL;
        return st ? st : perr(ps, "value count does not match the shape");
    }
    for (int i = 0; i < n; i++)
        hone_tensor_set_f64(*out, i, v[i]);
    return HONE_OK;
}

/* "%name" reference to a value, created on first sight. */
static hone_status parse_ref(parser *ps, hone_value **v)
{
    if (!eat(ps, "%"))
        return perr(ps, "expected '%name'");
    const char *nm = read_name(ps);
    if (!nm)
        return perr(ps, "empty value name");
    *v = hone_graph_find(ps->g, nm);
    if (!*v)
        *v = hone_graph_new_value(ps->g, nm);
    return HONE_OK;
}

/* "%name: type" declaration. */
static hone_status parse_decl(parser *ps, hone_value **v)
{
    hone_status st = parse_ref(ps, v);
    if (!st)
        st = expect(ps, ":");
    if (!st)
        st = parse_type(ps, &(*v)->dtype, &(*v)->rank, (*v)->dims);
    return st;
}

static hone_status parse_const(parser *ps)
{
    hone_value *v;
    hone_tensor *t;
    hone_status st = parse_decl(ps, &v);
    if (st)
        return st;
    if (!eat(ps, "="))
        skip_ws(ps);
    if ((st = parse_tensor_body(ps, v->name, v->dtype, v->rank, v->dims, &t)))
        return st;
    hone_value_set_data(v, t);
    return HONE_OK;
}

/* double -> int64, saturating (a cast out of range is undefined behaviour). */
static int64_t sat_i64(double v)
{
    if (!(v == v))
        return 0;
    return v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
}

static void set_number_list(parser *ps, hone_node *n, const char *name, const double *v, int cnt,
                            bool is_float)
{
    if (!is_float) {
        int64_t iv[cnt + 1];
        for (int i = 0; i < cnt; i++)
            iv[i] = sat_i64(v[i]);
        hone_node_set_attr_ints(ps->g, n, name, iv, cnt);
        return;
    }
    hone_attr *a = hone_node_add_attr(ps->g, n, name, HONE_ATTR_FLOATS);
    a->n = cnt;
    a->floats = hone_arena_alloc(ps->g->arena, sizeof(float) * (size_t)(cnt + 1));
    for (int i = 0; i < cnt; i++)
        a->floats[i] = (float)v[i];
}

static hone_status parse_string_attr(parser *ps, hone_node *n, const char *name)
{
    const char *s = ++ps->p, *e = strchr(s, '"');
    if (!e)
        return perr(ps, "unterminated string");
    ps->p = e + 1;
    hone_node_set_attr_string(ps->g, n, name, hone_arena_strndup(ps->g->arena, s, (size_t)(e - s)));
    return HONE_OK;
}

static hone_status parse_tensor_attr(parser *ps, hone_node *n, const char *name)
{
    hone_dtype dt;
    int rank;
    int64_t dims[HONE_MAX_RANK];
    hone_attr *a = hone_node_add_attr(ps->g, n, name, HONE_ATTR_TENSOR);
    hone_status st = parse_type(ps, &dt, &rank, dims);
    return st ? st : parse_tensor_body(ps, name, dt, rank, dims, &a->t);
}

/* Attribute value after "name=": number, "string", [list] or tensor. A number
 * (or list) holding '.', 'e', "inf" or "nan" is a float, otherwise an int. */
static hone_status parse_attr(parser *ps, hone_node *n, const char *name)
{
    skip_ws(ps);
    if (*ps->p == '"')
        return parse_string_attr(ps, n, name);
    if (eat(ps, "tensor"))
        return parse_tensor_attr(ps, n, name);
    bool is_list = *ps->p == '[', is_float = false;
    size_t span = is_list ? strcspn(ps->p, "]") : strcspn(ps->p, ",}");
    for (size_t i = 0; i < span; i++)
        is_float |= strchr(".eEinIN", ps->p[i]) != NULL;
    static double v[MAX_LITERAL];
    int cnt = 1;
    if (is_list) {
        hone_status st = parse_numbers(ps, v, MAX_LITERAL, &cnt);
        if (st)
            return st;
        set_number_list(ps, n, name, v, cnt, is_float);
        return HONE_OK;
    }
    char *end;
    v[0] = strtod(ps->p, &end);
    if (end == ps->p)
        return perr(ps, "bad attribute value");
    ps->p = end;
    if (is_float)
        hone_node_set_attr_float(ps->g, n, name, (float)v[0]);
    else
        hone_node_set_attr_int(ps->g, n, name, sat_i64(v[0]));
    return HONE_OK;
}

static hone_status parse_attrs(parser *ps, hone_node *n)
{
    if (!eat(ps, "{"))
        return HONE_OK;
    do {
        skip_ws(ps);
        size_t k = strcspn(ps->p, "= \t,}\n");
        if (ps->p[k] != '=' || !k)
            return perr(ps, "expected 'name=value'");
        const char *name = hone_arena_strndup(ps->g->arena, ps->p, k);
        ps->p += k + 1;
        hone_status st = parse_attr(ps, n, name);
        if (st)
            return st;
    } while (eat(ps, ","));
    return expect(ps, "}");
}

#define MAX_ARGS 256

/* Output list "%a: T, _, %b: T" up to " = "; count into *n. */
static hone_status parse_outputs(parser *ps, hone_value **outs, int *n)
{
    *n = 0;
    skip_ws(ps);
    if (*ps->p == '=')
        return HONE_OK;
    do {
        if (*n == MAX_ARGS)
            return perr(ps, "too many outputs");
        hone_status st = HONE_OK;
        if (eat(ps, "_"))
            outs[(*n)++] = NULL;
        else if (!(st = parse_decl(ps, &outs[*n])))
            (*n)++;
        if (st)
            return st;
    } while (eat(ps, ","));
    return HONE_OK;
}

static hone_status parse_inputs(parser *ps, hone_value **ins, int *n)
{
    *n = 0;
    hone_status st = expect(ps, "(");
    if (st || eat(ps, ")"))
        return st;
    do {
        if (*n == MAX_ARGS)
            return perr(ps, "too many inputs");
        if (eat(ps, "_"))
            ins[(*n)++] = NULL;
        else if (!(st = parse_ref(ps, &ins[*n])))
            (*n)++;
        if (st)
            return st;
    } while (eat(ps, ","));
    return expect(ps, ")");
}

/* "[dom.]Op" into op/dom (arena strings); the last '.' splits the domain. */
static hone_status parse_op_name(parser *ps, const char **op, const char **dom)
{
    skip_ws(ps);
    size_t k = strcspn(ps->p, "( \t\n");
    if (!k)
        return perr(ps, "expected an op name");
    const char *s = ps->p, *dot = NULL;
    for (size_t i = 0; i < k; i++)
        if (s[i] == '.')
            dot = s + i;
    *dom = dot ? hone_arena_strndup(ps->g->arena, s, (size_t)(dot - s)) : "";
    *op = dot ? hone_arena_strndup(ps->g->arena, dot + 1, (size_t)(s + k - dot - 1))
              : hone_arena_strndup(ps->g->arena, s, k);
    ps->p += k;
    return HONE_OK;
}

/* The node name: the text after the line's last " # ", or NULL. */
static const char *node_name(parser *ps)
{
    size_t len = strcspn(ps->p, "\n");
    const char *hash = NULL;
    for (const char *q = ps->p; q + 2 < ps->p + len; q++)
        if (q[0] == ' ' && q[1] == '#' && q[2] == ' ')
            hash = q;
    if (!hash)
        return NULL;
    const char *s = hash + 3, *e = ps->p + len;
    while (*s == ' ')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\r'))
        e--;
    return hone_arena_strndup(ps->g->arena, s, (size_t)(e - s));
}

static hone_status parse_node(parser *ps)
{
    hone_value *outs[MAX_ARGS], *ins[MAX_ARGS];
    int n_out, n_in;
    const char *op = NULL, *dom = "";
    hone_status st = parse_outputs(ps, outs, &n_out);
    if (!st)
        st = expect(ps, "=");
    if (!st)
        st = parse_op_name(ps, &op, &dom);
    if (!st)
        st = parse_inputs(ps, ins, &n_in);
    if (st)
        return st;
    hone_node *n = hone_graph_add_node(ps->g, op, dom, node_name(ps), n_in, n_out);
    memcpy(n->in, ins, sizeof *ins * (size_t)n_in);
    memcpy(n->out, outs, sizeof *outs * (size_t)n_out);
    if ((st = parse_attrs(ps, n)))
        return st;
    skip_ws(ps);
    bool rest = *ps->p && *ps->p != '#' && *ps->p != '\n';
    return rest ? perr(ps, "unexpected text after node") : HONE_OK;
}

/* "graph NAME (ir 8; ai.onnx 13; hone 1) {" */
static hone_status parse_header(parser *ps)
{
    if (!eat(ps, "graph"))
        return perr(ps, "expected 'graph NAME (...) {'");
    const char *name = read_name(ps);
    if (name)
        ps->g->name = name;
    hone_status st = expect(ps, "(");
    hone_opset sets[64];
    int n = 0;
    while (!st && !eat(ps, ")")) {
        const char *key = read_name(ps);
        skip_ws(ps);
        char *end;
        long long v = strtoll(ps->p, &end, 10);
        if (!key || end == ps->p || n == 64)
            return perr(ps, "expected 'domain version' in the graph header");
        ps->p = end;
        if (!strcmp(key, "ir"))
            ps->g->ir_version = v;
        else
            sets[n++] = (hone_opset){strcmp(key, "ai.onnx") ? key : "", v};
        if (!eat(ps, ";") && !(skip_ws(ps), *ps->p == ')'))
            return perr(ps, "expected ';' or ')'");
    }
    ps->g->n_opsets = n;
    ps->g->opsets = hone_arena_alloc(ps->g->arena, sizeof *sets * (size_t)(n + 1));
    memcpy(ps->g->opsets, sets, sizeof *sets * (size_t)n);
    return st ? st : expect(ps, "{");
}

/* One body line: input, const, output or node. */
static hone_status parse_line(parser *ps)
{
    hone_value *v;
    hone_status st;
    if (eat(ps, "input ")) {
        if (!(st = parse_decl(ps, &v)))
            hone_graph_add_input(ps->g, v);
        return st;
    }
    if (eat(ps, "const "))
        return parse_const(ps);
    if (eat(ps, "output ")) {
        if ((st = parse_ref(ps, &v)))
            return st;
        if (eat(ps, ":"))
            st = parse_type(ps, &v->dtype, &v->rank, v->dims);
        if (!st)
            hone_graph_add_output(ps->g, v);
        return st;
    }
    return parse_node(ps);
}

static bool blank_or_comment(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return !*p || *p == '\n' || *p == '#';
}

/* Walks the lines: header, body, closing brace. */
static hone_status parse_lines(parser *ps, const char *text)
{
    enum { HEAD, BODY, DONE } state = HEAD;
    hone_status st = HONE_OK;
    const char *nl;
    for (const char *line = text; *line && !st; line = (nl = strchr(line, '\n')) ? nl + 1 : "") {
        ps->line++;
        ps->p = line;
        if (blank_or_comment(line))
            continue;
        if (state == DONE)
            return perr(ps, "text after the closing '}'");
        if (state == HEAD) {
            st = parse_header(ps);
            state = BODY;
        } else if (eat(ps, "}")) {
            state = DONE;
        } else {
            st = parse_line(ps);
        }
    }
    if (!st && state != DONE)
        st = hone_fail(ps->ctx, HONE_ERR_PARSE, "line %d: missing closing '}'", ps->line);
    return st;
}

hone_status hone_graph_parse(hone_ctx *ctx, const char *text, hone_graph **out)
{
    parser ps = {ctx, hone_graph_new(), text, 0};
    hone_status st = parse_lines(&ps, text);
    if (!st)
        st = hone_graph_toposort(ctx, ps.g);
    if (!st)
        st = hone_graph_verify(ctx, ps.g);
    if (st) {
        hone_graph_free(ps.g);
        return st;
    }
    hone_graph_update_uses(ps.g);
    *out = ps.g;
    return HONE_OK;
}
