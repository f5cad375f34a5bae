/*
 * Symbolic dimension algebra for shape folding. A dimension is coef times a
 * product of atomic symbols ("N", "T") with exponents; the IR stores such a
 * product as one graph symbol whose name spells it ("8*N", "N*T"), so the
 * rest of hone sees an ordinary named dim, inference carries it through
 * shape-preserving ops, and two dims are equal exactly when their names are.
 * Parsing a symbol's name back gives the product, which is how Reshape and
 * Flatten over symbolic shapes get their products and quotients. coef 0
 * means unknown (zero-sized dims are treated as unknown: conservative).
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static hone_symdim unknown(void)
{
    hone_symdim s = {0};
    return s;
}

bool hone_symdim_known(const hone_symdim *s)
{
    return s->coef > 0;
}

/* Multiplies in atom `sym` with exponent pow, keeping atoms sorted by index. */
static bool add_atom(hone_symdim *s, int sym, int pow)
{
    int i = 0;
    while (i < s->n && s->sym[i] < sym)
        i++;
    if (i < s->n && s->sym[i] == sym) {
        s->pow[i] += pow;
        return true;
    }
    if (s->n == HONE_SYMDIM_MAX)
        return false;
    memmove(&s->sym[i + 1], &s->sym[i], sizeof *s->sym * (size_t)(s->n - i));
    memmove(&s->pow[i + 1], &s->pow[i], sizeof *s->pow * (size_t)(s->n - i));
    s->sym[i] = sym;
    s->pow[i] = pow;
    s->n++;
    return true;
}

static bool mul_coef(int64_t *c, int64_t k)
{
    return !__builtin_mul_overflow(*c, k, c);
}

hone_symdim hone_symdim_of(hone_graph *g, int64_t d)
{
    hone_symdim s = {.coef = d > 0 ? d : 0};
    if (d >= 0 || d == HONE_DIM_UNKNOWN || HONE_DIM_SYM_INDEX(d) >= g->n_syms)
        return s;
    const char *name = g->syms[HONE_DIM_SYM_INDEX(d)];
    s.coef = 1;
    for (const char *p = name; *p;) {
        size_t k = strcspn(p, "*");
        char atom[256];
        snprintf(atom, sizeof atom, "%.*s", (int)(k < 255 ? k : 255), p);
        char *end;
        long long v = strtoll(atom, &end, 10);
        bool ok = k && (*end || end == atom ? add_atom(&s, hone_graph_sym(g, atom), 1)
                                            : v > 0 && mul_coef(&s.coef, v));
        if (!ok)
            return unknown();
        p += k + (p[k] == '*');
    }
    return s;
}

/* Atom indices of s, each repeated by its exponent, sorted by name. */
static int atoms_by_name(const hone_graph *g, const hone_symdim *s, int *out, int cap)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->pow[i] && n < cap; k++) {
            int j = n++;
            for (; j > 0 && strcmp(g->syms[out[j - 1]], g->syms[s->sym[i]]) > 0; j--)
                out[j] = out[j - 1];
            out[j] = s->sym[i];
        }
    return n;
}

int64_t hone_symdim_to_dim(hone_graph *g, const hone_symdim *s)
{
    if (!hone_symdim_known(s))
        return HONE_DIM_UNKNOWN;
    if (!s->n)
        return s->coef;
    if (s->coef == 1 && s->n == 1 && s->pow[0] == 1)
        return HONE_DIM_SYM(s->sym[0]);
    int atoms[64];
    int n = atoms_by_name(g, s, atoms, 64);
    char name[512];
    size_t k = s->coef != 1 ? (size_t)snprintf(name, sizeof name, "%lld*", (long long)s->coef) : 0;
    for (int i = 0; i < n && k < sizeof name; i++)
        k += (size_t)snprintf(name + k, sizeof name - k, "%s%s", i ? "*" : "", g->syms[atoms[i]]);
    return k < sizeof name ? HONE_DIM_SYM(hone_graph_sym(g, name)) : HONE_DIM_UNKNOWN;
}

hone_symdim hone_symdim_mul(const hone_symdim *a, const hone_symdim *b)
{
    hone_symdim r = *a;
    if (!hone_symdim_known(a) || !hone_symdim_known(b) || !mul_coef(&r.coef, b->coef))
        return unknown();
    for (int i = 0; i < b->n; i++)
        if (!add_atom(&r, b->sym[i], b->pow[i]))
            return unknown();
    return r;
}

hone_symdim hone_symdim_div(const hone_symdim *a, const hone_symdim *b)
{
    if (!hone_symdim_known(a) || !hone_symdim_known(b) || a->coef % b->coef)
        return unknown();
    hone_symdim r = *a;
    r.coef = a->coef / b->coef;
    for (int i = 0; i < b->n; i++) {
        int j = 0;
        while (j < r.n && r.sym[j] != b->sym[i])
            j++;
        if (j == r.n || r.pow[j] < b->pow[i])
            return unknown();
        r.pow[j] -= b->pow[i];
    }
    int k = 0;
    for (int j = 0; j < r.n; j++)
        if (r.pow[j]) {
            r.sym[k] = r.sym[j];
            r.pow[k++] = r.pow[j];
        }
    r.n = k;
    return r;
}
