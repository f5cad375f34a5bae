/*
 * hone dump MODEL.onnx: the text IR after import and inference.
 */
#include <string.h>

#include "cli.h"
#include "onnx.h"

void help_dump(FILE *f)
{
    fprintf(f, "usage: hone dump MODEL.onnx\n\n"
               "Prints the model's IR as text: one node per line with output types and shapes.\n");
}

int cmd_dump(int argc, char **argv)
{
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            return cli_usage("dump", "unknown option '%s'", argv[i]);
        if (model)
            return cli_usage("dump", "more than one model given");
        model = argv[i];
    }
    if (!model)
        return cli_usage("dump", "no model given");
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_graph *g;
    if (hone_onnx_load(&ctx, model, &g))
        return cli_fail(&ctx);
    hone_graph_print(stdout, g);
    hone_graph_free(g);
    return EXIT_OK;
}
