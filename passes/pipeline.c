/*
 * Pipeline text: "fold-constants,dce,fold-bn,scop{rate=0.45,seed=1}".
 *
 *   pipeline := [item {',' item}]
 *   item     := pass-name ['{' option {',' option} '}']
 *   option   := name '=' value      value: int, float, bool or string
 *
 * Blanks around tokens are ignored; a string value may be quoted ("a,b") to
 * hold ',' or '}'. Every name is checked against the pass table and every
 * value against its option's kind; errors quote the culprit and list the valid
 * choices. Options left out take the table's defaults. The -O levels are
 * pipeline texts too.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static const char *const levels[] = {
    "",
    "remove-identity,fold-constants,fold-shapes,dce",
    "remove-identity,fold-constants,fold-shapes,simplify-reshape,remove-identity,fold-constants,"
    "cse,fold-bn,dce",
    "qdq-to-integer,remove-identity,fold-constants,fold-shapes,simplify-reshape,remove-identity,"
    "fold-constants,cse,fold-bn,dce,fuse-conv,dce",
};

const char *hone_pipeline_level(int level)
{
    return level >= 0 && level < (int)(sizeof levels / sizeof *levels) ? levels[level] : NULL;
}

static const char *kind_name(hone_opt_kind k)
{
    switch (k) {
    case HONE_OPT_INT: return "an integer";
    case HONE_OPT_FLOAT: return "a number";
    case HONE_OPT_BOOL: return "true or false";
    default: return "a string";
    }
}

/* Parses text as option o's kind into v; false when it does not fit. */
static bool parse_value(const hone_pass_opt *o, const char *text, hone_opt_value *v)
{
    char *end;
    errno = 0;
    memset(v, 0, sizeof *v);
    switch (o->kind) {
    case HONE_OPT_INT:
        v->i = strtoll(text, &end, 10);
        v->f = (double)v->i;
        return *text && !*end && !errno;
    case HONE_OPT_FLOAT:
        v->f = strtod(text, &end);
        return *text && !*end && !errno && isfinite(v->f);
    case HONE_OPT_BOOL:
        v->b = !strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes") ||
               !strcmp(text, "on");
        return v->b || !strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no") ||
               !strcmp(text, "off");
    default:
        snprintf(v->s, sizeof v->s, "%s", text);
        return strlen(text) < sizeof v->s;
    }
}

static int opt_index(const hone_pass_info *pi, const char *name)
{
    for (int k = 0; k < HONE_PASS_MAX_OPTS && pi->opts[k].name; k++)
        if (!strcmp(pi->opts[k].name, name))
            return k;
    return -1;
}

static void set_defaults(hone_pass_inst *it)
{
    for (int k = 0; k < HONE_PASS_MAX_OPTS && it->info->opts[k].name; k++) {
        bool ok = parse_value(&it->info->opts[k], it->info->opts[k].dflt, &it->opts[k]);
        HONE_ASSERT(ok); /* a default that does not parse is a table bug */
    }
}

typedef struct lexer {
    hone_ctx *ctx;
    const char *text, *p;
} lexer;

static void skip_blanks(lexer *lx)
{
    while (isspace((unsigned char)*lx->p))
        lx->p++;
}

/* Reads a token up to one of `stops` (or a quoted string) into buf. */
static bool read_token(lexer *lx, const char *stops, char *buf, size_t n)
{
    skip_blanks(lx);
    const char *s = lx->p;
    size_t k;
    if (*s == '"' || *s == '\'') {
        const char *e = strchr(s + 1, *s);
        if (!e)
            return false;
        k = (size_t)(e - s - 1);
        lx->p = e + 1;
        s++;
    } else {
        k = strcspn(s, stops);
        lx->p = s + k;
        while (k && isspace((unsigned char)s[k - 1]))
            k--;
    }
    if (k >= n)
        return false;
    memcpy(buf, s, k);
    buf[k] = 0;
    skip_blanks(lx);
    return true;
}

static hone_status syntax(lexer *lx, const char *what)
{
    return hone_fail(lx->ctx, HONE_ERR_ARG, "pipeline '%s': %s at column %d", lx->text, what,
                     (int)(lx->p - lx->text) + 1);
}

static const char *opt_names(const hone_pass_info *pi, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < HONE_PASS_MAX_OPTS && pi->opts[i].name && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", pi->opts[i].name);
    return buf;
}

/* One "name=value" inside braces. */
static hone_status parse_option(lexer *lx, hone_pass_inst *it, unsigned *seen)
{
    char name[64], val[256], list[512];
    if (!read_token(lx, "=,}", name, sizeof name) || *lx->p != '=' || !*name)
        return syntax(lx, "expected 'option=value'");
    lx->p++;
    if (!read_token(lx, ",}", val, sizeof val))
        return syntax(lx, "bad option value");
    int k = opt_index(it->info, name);
    if (k < 0 && !it->info->opts[0].name)
        return hone_fail(lx->ctx, HONE_ERR_ARG, "pass '%s' takes no options (got '%s')",
                         it->info->name, name);
    if (k < 0)
        return hone_fail(lx->ctx, HONE_ERR_ARG, "pass '%s' has no option '%s' (valid: %s)",
                         it->info->name, name, opt_names(it->info, list, sizeof list));
    if (*seen & (1u << k))
        return hone_fail(lx->ctx, HONE_ERR_ARG, "option '%s' of pass '%s' is given twice", name,
                         it->info->name);
    *seen |= 1u << k;
    if (!parse_value(&it->info->opts[k], val, &it->opts[k]))
        return hone_fail(lx->ctx, HONE_ERR_ARG, "option '%s' of pass '%s' expects %s, got '%s'",
                         name, it->info->name, kind_name(it->info->opts[k].kind), val);
    return HONE_OK;
}

static hone_status parse_item(lexer *lx, hone_pass_inst *it)
{
    char name[64], list[1024];
    if (!read_token(lx, ",{ \t\n", name, sizeof name) || !*name)
        return syntax(lx, "expected a pass name");
    it->info = hone_pass_find(name);
    if (!it->info)
        return hone_fail(lx->ctx, HONE_ERR_ARG, "unknown pass '%s' (valid passes: %s)", name,
                         hone_pass_names(list, sizeof list));
    set_defaults(it);
    if (*lx->p != '{')
        return HONE_OK;
    lx->p++;
    unsigned seen = 0;
    for (;;) {
        hone_status st = parse_option(lx, it, &seen);
        if (st)
            return st;
        if (*lx->p != ',')
            break;
        lx->p++;
    }
    if (*lx->p != '}')
        return syntax(lx, "expected '}'");
    lx->p++;
    skip_blanks(lx);
    return HONE_OK;
}

hone_status hone_pipeline_parse(hone_ctx *ctx, const char *text, hone_pipeline *out)
{
    lexer lx = {ctx, text, text};
    memset(out, 0, sizeof *out);
    size_t cap = 1;
    for (const char *c = text; *c; c++)
        cap += *c == ',';
    out->items = calloc(cap, sizeof *out->items);
    HONE_ASSERT(out->items);
    skip_blanks(&lx);
    hone_status st = HONE_OK;
    while (*lx.p && !st) {
        if (out->n && *lx.p++ != ',') {
            lx.p--;
            st = syntax(&lx, "expected ','");
            break;
        }
        st = parse_item(&lx, &out->items[out->n]);
        if (!st)
            out->n++;
    }
    if (st)
        hone_pipeline_free(out);
    return st;
}

void hone_pipeline_free(hone_pipeline *p)
{
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

static void value_str(const hone_pass_opt *o, const hone_opt_value *v, char *buf, size_t n)
{
    switch (o->kind) {
    case HONE_OPT_INT: snprintf(buf, n, "%lld", (long long)v->i); break;
    case HONE_OPT_FLOAT: snprintf(buf, n, "%g", v->f); break;
    case HONE_OPT_BOOL: snprintf(buf, n, "%s", v->b ? "true" : "false"); break;
    default: snprintf(buf, n, "%s", v->s); break;
    }
}

const char *hone_pass_inst_str(const hone_pass_inst *pi, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "%s", pi->info->name);
    int shown = 0;
    for (int i = 0; i < HONE_PASS_MAX_OPTS && pi->info->opts[i].name && k < n; i++) {
        char val[160], dflt[160];
        hone_opt_value dv;
        parse_value(&pi->info->opts[i], pi->info->opts[i].dflt, &dv);
        value_str(&pi->info->opts[i], &pi->opts[i], val, sizeof val);
        value_str(&pi->info->opts[i], &dv, dflt, sizeof dflt);
        if (!strcmp(val, dflt))
            continue;
        k += (size_t)snprintf(buf + k, n - k, "%s%s=%s", shown++ ? "," : "{",
                              pi->info->opts[i].name, val);
    }
    if (shown && k < n)
        snprintf(buf + k, n - k, "}");
    return buf;
}
