/*
 * The pass driver: one loop runs a pipeline over a graph. Before the first
 * pass and after each one it sorts, verifies and re-infers the graph, so a pass
 * may leave nodes out of order and a broken graph is blamed on the pass that
 * broke it. Around each pass it measures node and parameter counts (and MACs
 * through a pluggable cost function), wall time (the pass plus the sort,
 * verification and inference after it) and the growth of peak RSS.
 * Debugging aids: dump the graph after chosen passes (to a stream or one file
 * per pass in a folder), disable passes by name to bisect a wrong result, a
 * timing table, and a JSON report of every pass.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cost.h"
#include "passes.h"

/* ---- option access and the report sink ---- */

static const hone_opt_value *opt(const hone_pass_ctx *pc, const char *name)
{
    const hone_pass_info *pi = pc->inst->info;
    for (int k = 0; k < HONE_PASS_MAX_OPTS && pi->opts[k].name; k++)
        if (!strcmp(pi->opts[k].name, name))
            return &pc->inst->opts[k];
    hone_assert_fail("a pass reads an option its table row does not declare", __FILE__, __LINE__);
}

int64_t hone_pass_opt_int(const hone_pass_ctx *pc, const char *name)
{
    return opt(pc, name)->i;
}

double hone_pass_opt_float(const hone_pass_ctx *pc, const char *name)
{
    return opt(pc, name)->f;
}

bool hone_pass_opt_bool(const hone_pass_ctx *pc, const char *name)
{
    return opt(pc, name)->b;
}

const char *hone_pass_opt_str(const hone_pass_ctx *pc, const char *name)
{
    return opt(pc, name)->s;
}

void hone_pass_note(hone_pass_ctx *pc, const char *what, int64_t n)
{
    hone_pass_stats *s = pc->stats;
    if (!s || !n)
        return;
    for (int i = 0; i < s->n_counters; i++)
        if (!strcmp(s->counters[i].what, what)) {
            s->counters[i].n += n;
            return;
        }
    if (s->n_counters < HONE_PASS_MAX_COUNTERS) {
        s->counters[s->n_counters].what = what;
        s->counters[s->n_counters++].n = n;
    }
}

void hone_pass_detail(hone_pass_ctx *pc, const char *fmt, ...)
{
    hone_pass_stats *s = pc->stats;
    if (!s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k <= 0)
        return;
    char *p = realloc(s->detail, s->detail_len + (size_t)k + 1);
    HONE_ASSERT(p);
    va_start(ap, fmt);
    vsnprintf(p + s->detail_len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    s->detail = p;
    s->detail_len += (size_t)k;
}

void hone_pass_log(hone_pass_ctx *pc, const char *fmt, ...)
{
    FILE *f = pc->log ? pc->log : stderr;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "[%s] ", pc->inst->info->name);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    va_end(ap);
}

hone_status hone_pass_need_data(hone_pass_ctx *pc, const char *why, const hone_pass_data **out)
{
    *out = pc->data;
    if (pc->data && pc->data->x)
        return HONE_OK;
    return hone_fail(pc->ctx, HONE_ERR_ARG, "pass '%s' needs %s: give --data FILE (and "
                     "--labels FILE, or --targets FILE; without them it distils from the "
                     "original model)", pc->inst->info->name, why);
}

void hone_pass_stats_release(hone_pass_stats *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        free(s[i].detail);
        s[i].detail = NULL;
        s[i].detail_len = 0;
    }
}

/* ---- measurements ---- */

static int64_t graph_macs(const hone_graph *g, hone_cost_fn macs)
{
    if (!macs)
        return -1;
    int64_t n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += macs(g->nodes[i]);
    return n;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int64_t peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0 : (int64_t)ru.ru_maxrss;
}

/* ---- the loop ---- */

/* Sort, verify and infer: the invariants every pass must leave intact. */
static hone_status settle(hone_ctx *ctx, hone_graph *g)
{
    hone_status st = hone_graph_toposort(ctx, g);
    if (!st)
        st = hone_graph_verify(ctx, g);
    if (!st)
        st = hone_graph_infer(ctx, g);
    hone_graph_update_uses(g);
    return st;
}

static bool print_selected(const char *list, const char *name)
{
    return hone_pass_in_list(list, "all") || hone_pass_in_list(list, name);
}

static bool is_disabled(const hone_passes_opts *o, const char *name)
{
    for (int i = 0; i < o->n_disabled; i++)
        if (!strcmp(o->disabled[i], name))
            return true;
    return false;
}

static hone_status check_names(hone_ctx *ctx, const hone_passes_opts *o)
{
    char list[1024];
    for (int i = 0; i < o->n_disabled; i++)
        if (!hone_pass_find(o->disabled[i]))
            return hone_fail(ctx, HONE_ERR_ARG,
                             "cannot disable unknown pass '%s' (valid passes: %s)", o->disabled[i],
                             hone_pass_names(list, sizeof list));
    for (const char *p = o->print_after; p && *p;) {
        size_t k = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(k < 63 ? k : 63), p);
        if (strcmp(name, "all") && !hone_pass_find(name))
            return hone_fail(ctx, HONE_ERR_ARG,
                             "cannot print after unknown pass '%s' (valid: all, %s)", name,
                             hone_pass_names(list, sizeof list));
        p += k + (p[k] == ',');
    }
    return HONE_OK;
}

/* Dumps g after pass number idx, to the stream or to DIR/NN-name.txt. */
static hone_status print_after(hone_ctx *ctx, const hone_passes_opts *o, const hone_graph *g,
                               int idx, const hone_pass_stats *s)
{
    if (!o->print_dir) {
        FILE *f = o->print_stream ? o->print_stream : stderr;
        fprintf(f, "// after pass %d: %s\n", idx + 1, s->text);
        hone_graph_print(f, g);
        return HONE_OK;
    }
    char path[4096];
    if (mkdir(o->print_dir, 0777) && errno != EEXIST)
        return hone_fail(ctx, HONE_ERR_IO, "cannot create folder '%s': %s", o->print_dir,
                         strerror(errno));
    snprintf(path, sizeof path, "%s/%02d-%s.txt", o->print_dir, idx + 1, s->text);
    FILE *f = fopen(path, "w");
    if (!f)
        return hone_fail(ctx, HONE_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    fprintf(f, "// after pass %d: %s\n", idx + 1, s->text);
    hone_graph_print(f, g);
    fclose(f);
    return HONE_OK;
}

/* Runs one pass with its measurements; errors name the pass. */
static hone_status run_one(hone_ctx *ctx, hone_graph *g, const hone_pass_inst *pi,
                           const hone_passes_opts *o, hone_pass_stats *s)
{
    s->nodes_before = g->n_nodes;
    s->params_before = hone_graph_params(g);
    s->macs_before = graph_macs(g, o->macs);
    double t0 = now_s();
    int64_t rss0 = peak_rss_kb();
    hone_pass_ctx pc = {.ctx = ctx, .inst = pi, .stats = s, .data = o->data,
                        .log = o->log_stream ? o->log_stream : stderr};
    hone_status st = pi->info->run(&pc, g);
    if (st)
        return hone_fail_wrap(ctx, "pass '%s'", s->text);
    if ((st = settle(ctx, g)))
        return hone_fail_wrap(ctx, "graph is invalid after pass '%s'", s->text);
    s->wall_s = now_s() - t0;
    s->rss_delta_kb = peak_rss_kb() - rss0;
    s->nodes_after = g->n_nodes;
    s->params_after = hone_graph_params(g);
    s->macs_after = graph_macs(g, o->macs);
    return HONE_OK;
}

static void time_table(FILE *f, const hone_pass_stats *s, int n)
{
    double total = 0;
    fprintf(f, "%-40s %10s %14s %16s\n", "pass", "wall ms", "peak RSS +KB", "nodes");
    for (int i = 0; i < n; i++) {
        if (s[i].disabled) {
            fprintf(f, "%-40s %10s\n", s[i].text, "disabled");
            continue;
        }
        total += s[i].wall_s;
        fprintf(f, "%-40s %10.3f %14lld %7lld -> %-6lld\n", s[i].text, 1e3 * s[i].wall_s,
                (long long)s[i].rss_delta_kb, (long long)s[i].nodes_before,
                (long long)s[i].nodes_after);
    }
    fprintf(f, "%-40s %10.3f\n", "total", 1e3 * total);
}

void hone_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void hone_pass_detail_string(hone_pass_ctx *pc, const char *s)
{
    if (!pc->stats)
        return;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    HONE_ASSERT(f);
    hone_json_string(f, s);
    HONE_ASSERT(fclose(f) == 0);
    hone_pass_detail(pc, "%s", buf);
    free(buf);
}

static void report_row(FILE *f, const hone_pass_stats *s)
{
    fprintf(f, "    {\"pass\": ");
    hone_json_string(f, s->text);
    fprintf(f, ", \"disabled\": %s", s->disabled ? "true" : "false");
    if (!s->disabled) {
        fprintf(f, ", \"nodes_before\": %lld, \"nodes_after\": %lld, \"params_before\": %lld, "
                   "\"params_after\": %lld",
                (long long)s->nodes_before, (long long)s->nodes_after,
                (long long)s->params_before, (long long)s->params_after);
        if (s->macs_before >= 0)
            fprintf(f, ", \"flops_before\": %lld, \"flops_after\": %lld",
                    2 * (long long)s->macs_before, 2 * (long long)s->macs_after);
        fprintf(f, ", \"wall_ms\": %.3f, \"peak_rss_delta_kb\": %lld, \"changes\": {",
                1e3 * s->wall_s, (long long)s->rss_delta_kb);
        for (int c = 0; c < s->n_counters; c++) {
            fprintf(f, "%s", c ? ", " : "");
            hone_json_string(f, s->counters[c].what);
            fprintf(f, ": %lld", (long long)s->counters[c].n);
        }
        fputc('}', f);
        if (s->detail)
            fprintf(f, ", \"detail\": %s", s->detail);
    }
    fputc('}', f);
}

static hone_status write_report(hone_ctx *ctx, const char *path, const hone_pass_stats *s, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return hone_fail(ctx, HONE_ERR_IO, "cannot write report '%s': %s", path, strerror(errno));
    fprintf(f, "{\n  \"passes\": [\n");
    for (int i = 0; i < n; i++) {
        report_row(f, &s[i]);
        fprintf(f, "%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) ? hone_fail(ctx, HONE_ERR_IO, "cannot write report '%s'", path) : HONE_OK;
}

/* The pass loop proper; *done receives how many rows of s are filled. */
static hone_status run_all(hone_ctx *ctx, hone_graph *g, const hone_pipeline *p,
                           const hone_passes_opts *o, hone_pass_stats *s, int *done)
{
    hone_status st = settle(ctx, g);
    if (st)
        return hone_fail_wrap(ctx, "before the first pass");
    for (int i = 0; i < p->n && !st; i++) {
        memset(&s[i], 0, sizeof s[i]);
        hone_pass_inst_str(&p->items[i], s[i].text, sizeof s[i].text);
        *done = i + 1;
        s[i].disabled = is_disabled(o, p->items[i].info->name);
        if (s[i].disabled)
            continue;
        st = run_one(ctx, g, &p->items[i], o, &s[i]);
        if (!st && print_selected(o->print_after, p->items[i].info->name))
            st = print_after(ctx, o, g, i, &s[i]);
    }
    return st;
}

hone_status hone_passes_run(hone_ctx *ctx, hone_graph *g, const hone_pipeline *p,
                            const hone_passes_opts *opts, hone_pass_stats *stats)
{
    hone_passes_opts none = {0};
    const hone_passes_opts *o = opts ? opts : &none;
    hone_status st = check_names(ctx, o);
    if (st)
        return st;
    hone_pass_stats local[p->n + 1];
    hone_pass_stats *s = stats ? stats : local;
    int done = 0;
    st = run_all(ctx, g, p, o, s, &done);
    if (o->time_passes)
        time_table(o->time_stream ? o->time_stream : stderr, s, done);
    if (o->report_path) {
        hone_ctx rctx = *ctx;
        hone_status rst = write_report(&rctx, o->report_path, s, done);
        if (!st && rst) {
            *ctx = rctx;
            st = rst;
        }
    }
    if (!stats)
        hone_pass_stats_release(s, done);
    return st;
}
