/*
 * hone passes [--markdown]: the pass table, as text or as the Markdown of
 * docs/PASSES.md.
 */
#include <string.h>

#include "cli.h"

void help_passes(FILE *f)
{
    fprintf(f, "usage: hone passes [--markdown]\n\n"
               "Lists every graph pass with its options and the -O pipelines. --markdown writes\n"
               "the reference page (docs/PASSES.md is this output).\n");
}

static void list_pass(const hone_pass_info *pi)
{
    printf("%-18s %s\n", pi->name, pi->summary);
    for (int k = 0; k < HONE_PASS_MAX_OPTS && pi->opts[k].name; k++)
        printf("%-18s   {%s=%s}  %s\n", "", pi->opts[k].name, pi->opts[k].dflt, pi->opts[k].help);
}

int cmd_passes(int argc, char **argv)
{
    bool md = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--markdown"))
            return cli_usage("passes", "unknown argument '%s'", argv[i]);
        md = true;
    }
    if (md) {
        hone_pass_table_markdown(stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < hone_pass_count; i++)
        list_pass(&hone_pass_table[i]);
    printf("\n");
    for (int l = 0; hone_pipeline_level(l); l++)
        printf("-O%d  %s\n", l, *hone_pipeline_level(l) ? hone_pipeline_level(l) : "(no passes)");
    return EXIT_OK;
}
