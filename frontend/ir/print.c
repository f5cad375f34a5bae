/*
 * Text dump of the IR: stable (no addresses, order = graph order), one node
 * per line with the types of its outputs, attributes sorted as stored.
 *
 *   graph main (ir 8; ai.onnx 13) {
 *     input %x: f32[N,1,28,28]
 *     const %w: f32[16,1,3,3]
 *     %y: f32[N,16,28,28] = Conv(%x, %w, _) {pads=[1,1,1,1]}  # conv1
 *     output %y
 *   }
 */
#include <string.h>

#include "ir.h"

const char *hone_dims_str(const hone_graph *g, int rank, const int64_t *dims, char *buf, size_t n)
{
    if (rank < 0) {
        snprintf(buf, n, "[?]");
        return buf;
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++) {
        const char *sep = i ? "," : "";
        int64_t d = dims[i];
        if (d >= 0)
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)d);
        else if (d < -1 && g && HONE_DIM_SYM_INDEX(d) < g->n_syms)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", sep, g->syms[HONE_DIM_SYM_INDEX(d)]);
        else
            k += (size_t)snprintf(buf + k, n - k, "%s?", sep);
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

const char *hone_value_type_str(const hone_graph *g, const hone_value *v, char *buf, size_t n)
{
    char dims[256];
    snprintf(buf, n, "%s%s", hone_dtype_name(v->dtype), hone_dims_str(g, v->rank, v->dims, dims, sizeof dims));
    return buf;
}

static void print_list_i(FILE *f, const int64_t *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%lld", i ? "," : "", (long long)v[i]);
    fputc(']', f);
}

static void print_attr(FILE *f, const hone_attr *a)
{
    char buf[256];
    fprintf(f, "%s=", a->name);
    switch (a->kind) {
    case HONE_ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
    case HONE_ATTR_FLOAT: fprintf(f, "%g", (double)a->f); break;
    case HONE_ATTR_STRING: fprintf(f, "\"%s\"", a->s); break;
    case HONE_ATTR_INTS: print_list_i(f, a->ints, a->n); break;
    case HONE_ATTR_FLOATS:
        fputc('[', f);
        for (int i = 0; i < a->n; i++)
            fprintf(f, "%s%g", i ? "," : "", (double)a->floats[i]);
        fputc(']', f);
        break;
    case HONE_ATTR_STRINGS:
        fputc('[', f);
        for (int i = 0; i < a->n; i++)
            fprintf(f, "%s\"%s\"", i ? "," : "", a->strings[i]);
        fputc(']', f);
        break;
    case HONE_ATTR_TENSOR:
        fprintf(f, "tensor %s", a->t ? hone_tensor_type_str(a->t, buf, sizeof buf) : "?");
        break;
    default: fprintf(f, "<kind %d>", a->kind); break;
    }
}

static void print_node(FILE *f, const hone_graph *g, const hone_node *n)
{
    char buf[320];
    fputs("  ", f);
    for (int j = 0; j < n->n_out; j++) {
        if (!n->out[j]) {
            fprintf(f, "%s_", j ? ", " : "");
            continue;
        }
        fprintf(f, "%s%%%s: %s", j ? ", " : "", n->out[j]->name,
                hone_value_type_str(g, n->out[j], buf, sizeof buf));
    }
    fprintf(f, " = %s%s%s(", n->domain, *n->domain ? "." : "", n->op_type);
    for (int j = 0; j < n->n_in; j++)
        fprintf(f, "%s%s%s", j ? ", " : "", n->in[j] ? "%" : "_", n->in[j] ? n->in[j]->name : "");
    fputc(')', f);
    if (n->n_attr) {
        fputs(" {", f);
        for (int a = 0; a < n->n_attr; a++) {
            if (a)
                fputs(", ", f);
            print_attr(f, &n->attrs[a]);
        }
        fputc('}', f);
    }
    fprintf(f, "  # %s\n", n->name);
}

void hone_graph_print(FILE *f, const hone_graph *g)
{
    char buf[320];
    fprintf(f, "graph %s (ir %lld", g->name, (long long)g->ir_version);
    for (int i = 0; i < g->n_opsets; i++)
        fprintf(f, "; %s %lld", *g->opsets[i].domain ? g->opsets[i].domain : "ai.onnx",
                (long long)g->opsets[i].version);
    fputs(") {\n", f);
    for (int i = 0; i < g->n_inputs; i++)
        fprintf(f, "  input %%%s: %s\n", g->inputs[i]->name,
                hone_value_type_str(g, g->inputs[i], buf, sizeof buf));
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->data && !g->values[i]->producer)
            fprintf(f, "  const %%%s: %s\n", g->values[i]->name,
                    hone_value_type_str(g, g->values[i], buf, sizeof buf));
    for (int i = 0; i < g->n_nodes; i++)
        print_node(f, g, g->nodes[i]);
    for (int i = 0; i < g->n_outputs; i++)
        fprintf(f, "  output %%%s: %s\n", g->outputs[i]->name,
                hone_value_type_str(g, g->outputs[i], buf, sizeof buf));
    fputs("}\n", f);
}
