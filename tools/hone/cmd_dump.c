/*
 * hone dump MODEL [--passes=...|-On] [--format=text|dot|json]: the IR after
 * import, inference and an optional pipeline. text is the stable dump of
 * print.c (which `hone opt`/the text reader read back); dot draws the graph
 * for Graphviz (constants folded into their readers' labels); json lists
 * opsets, inputs, outputs, constants (type only) and nodes with attributes.
 */
#include <math.h>
#include <string.h>

#include "cli.h"

void help_dump(FILE *f)
{
    fprintf(f, "usage: hone dump MODEL [--format=text|dot|json] [--passes=PIPELINE | -O0..-O3]\n"
               "                 [pass flags]\n\n"
               "Prints the model's IR: text (one node per line with output types and shapes),\n"
               "dot (Graphviz) or json. With a pipeline, the IR after it. MODEL is .onnx or a\n"
               "text IR dump (.txt).\n\n");
    cli_passes_help(f);
}

/* ---- dot ---- */

static void dot_label(FILE *f, const char *s)
{
    for (; *s; s++)
        fprintf(f, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
}

/* The dot node id of whatever defines v: a node, or an input box. */
static void dot_source(FILE *f, const hone_value *v)
{
    if (v->producer)
        fprintf(f, "n%d", v->producer->id);
    else
        fprintf(f, "\"v%d\"", v->id);
}

static void dot_node(FILE *f, const hone_graph *g, const hone_node *n)
{
    char buf[320];
    fprintf(f, "  n%d [label=\"%s%s", n->id, *n->domain ? n->domain : "", *n->domain ? "." : "");
    dot_label(f, n->op_type);
    fprintf(f, "\\n");
    dot_label(f, n->name);
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] && hone_pass_is_const(n->in[j]))
            fprintf(f, "\\n%s", hone_value_type_str(g, n->in[j], buf, sizeof buf));
    fprintf(f, "\"];\n");
    for (int j = 0; j < n->n_in; j++) {
        const hone_value *v = n->in[j];
        if (!v || hone_pass_is_const(v))
            continue;
        fprintf(f, "  ");
        dot_source(f, v);
        fprintf(f, " -> n%d [label=\"%s\"];\n", n->id, hone_value_type_str(g, v, buf, sizeof buf));
    }
}

static void print_dot(FILE *f, const hone_graph *g)
{
    char buf[320];
    fprintf(f, "digraph \"");
    dot_label(f, g->name);
    fprintf(f, "\" {\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int i = 0; i < g->n_inputs; i++) {
        fprintf(f, "  \"v%d\" [shape=ellipse, label=\"", g->inputs[i]->id);
        dot_label(f, g->inputs[i]->name);
        fprintf(f, "\"];\n");
    }
    for (int i = 0; i < g->n_nodes; i++)
        dot_node(f, g, g->nodes[i]);
    for (int i = 0; i < g->n_outputs; i++) {
        const hone_value *v = g->outputs[i];
        fprintf(f, "  \"out%d\" [shape=ellipse, label=\"", i);
        dot_label(f, v->name);
        fprintf(f, "\"];\n  ");
        dot_source(f, v);
        fprintf(f, " -> \"out%d\" [label=\"%s\"];\n", i,
                hone_value_type_str(g, v, buf, sizeof buf));
    }
    fprintf(f, "}\n");
}

/* ---- json ---- */

static void json_number(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.9g", x);
    else
        fprintf(f, "\"%s\"", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static void json_attr_value(FILE *f, const hone_attr *a)
{
    char buf[256], type[240];
    switch (a->kind) {
    case HONE_ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
    case HONE_ATTR_FLOAT: json_number(f, a->f); break;
    case HONE_ATTR_STRING: hone_json_string(f, a->s); break;
    case HONE_ATTR_INTS:
    case HONE_ATTR_FLOATS:
    case HONE_ATTR_STRINGS:
        fputc('[', f);
        for (int i = 0; i < a->n; i++) {
            fprintf(f, "%s", i ? ", " : "");
            if (a->kind == HONE_ATTR_INTS)
                fprintf(f, "%lld", (long long)a->ints[i]);
            else if (a->kind == HONE_ATTR_FLOATS)
                json_number(f, a->floats[i]);
            else
                hone_json_string(f, a->strings[i]);
        }
        fputc(']', f);
        break;
    case HONE_ATTR_TENSOR:
        snprintf(buf, sizeof buf, "tensor %s",
                 a->t ? hone_tensor_type_str(a->t, type, sizeof type) : "?");
        hone_json_string(f, buf);
        break;
    default: fprintf(f, "null"); break;
    }
}

static void json_value(FILE *f, const hone_graph *g, const hone_value *v)
{
    char buf[320];
    fprintf(f, "{\"name\": ");
    hone_json_string(f, v->name);
    fprintf(f, ", \"type\": ");
    hone_json_string(f, hone_value_type_str(g, v, buf, sizeof buf));
    fputc('}', f);
}

static void json_names(FILE *f, hone_value *const *vs, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s", i ? ", " : "");
        if (vs[i])
            hone_json_string(f, vs[i]->name);
        else
            fprintf(f, "null");
    }
    fputc(']', f);
}

static void json_node(FILE *f, const hone_node *n)
{
    fprintf(f, "    {\"name\": ");
    hone_json_string(f, n->name);
    fprintf(f, ", \"op\": ");
    hone_json_string(f, n->op_type);
    fprintf(f, ", \"domain\": ");
    hone_json_string(f, n->domain);
    fprintf(f, ", \"inputs\": ");
    json_names(f, n->in, n->n_in);
    fprintf(f, ", \"outputs\": ");
    json_names(f, n->out, n->n_out);
    fprintf(f, ", \"attributes\": {");
    for (int a = 0; a < n->n_attr; a++) {
        fprintf(f, "%s", a ? ", " : "");
        hone_json_string(f, n->attrs[a].name);
        fprintf(f, ": ");
        json_attr_value(f, &n->attrs[a]);
    }
    fprintf(f, "}}");
}

/* A JSON array of values, one per line. */
static void json_values(FILE *f, const hone_graph *g, const char *key, hone_value *const *vs,
                        int n, bool consts_only)
{
    fprintf(f, "  \"%s\": [", key);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (consts_only && !hone_pass_is_const(vs[i]))
            continue;
        fprintf(f, "%s\n    ", k++ ? "," : "");
        json_value(f, g, vs[i]);
    }
    fprintf(f, "\n  ],\n");
}

static void print_json(FILE *f, const hone_graph *g)
{
    fprintf(f, "{\n  \"name\": ");
    hone_json_string(f, g->name);
    fprintf(f, ",\n  \"ir_version\": %lld,\n  \"opsets\": {", (long long)g->ir_version);
    for (int i = 0; i < g->n_opsets; i++) {
        fprintf(f, "%s", i ? ", " : "");
        hone_json_string(f, *g->opsets[i].domain ? g->opsets[i].domain : "ai.onnx");
        fprintf(f, ": %lld", (long long)g->opsets[i].version);
    }
    fprintf(f, "},\n");
    json_values(f, g, "inputs", g->inputs, g->n_inputs, false);
    json_values(f, g, "outputs", g->outputs, g->n_outputs, false);
    json_values(f, g, "constants", g->values, g->n_values, true);
    fprintf(f, "  \"nodes\": [");
    for (int i = 0; i < g->n_nodes; i++) {
        fprintf(f, "%s\n", i ? "," : "");
        json_node(f, g->nodes[i]);
    }
    fprintf(f, "\n  ]\n}\n");
}

/* ---- the command ---- */

int cmd_dump(int argc, char **argv)
{
    const char *model = NULL, *format = "text";
    cli_passes cp;
    cli_passes_init(&cp);
    for (int i = 1; i < argc; i++) {
        int r = cli_pass_flag("dump", argc, argv, &i, &cp);
        const char *v;
        if (r < 0)
            return EXIT_USAGE;
        if (r)
            continue;
        if ((v = cli_opt(argc, argv, &i, "--format")))
            format = v;
        else if (argv[i][0] == '-')
            return cli_usage("dump", "unknown option '%s'", argv[i]);
        else if (model)
            return cli_usage("dump", "more than one model given");
        else
            model = argv[i];
    }
    if (!model)
        return cli_usage("dump", "no model given");
    if (strcmp(format, "text") && strcmp(format, "dot") && strcmp(format, "json"))
        return cli_usage("dump", "unknown format '%s' (valid: text, dot, json)", format);
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (cli_load_model(&ctx, model, &g))
        return cli_fail(&ctx);
    hone_status st = cli_run_passes(&ctx, g, &cp, -1);
    if (!st)
        (*format == 't' ? hone_graph_print : *format == 'd' ? print_dot : print_json)(stdout, g);
    hone_graph_free(g);
    cli_passes_free(&cp);
    return st ? cli_fail(&ctx) : EXIT_OK;
}
