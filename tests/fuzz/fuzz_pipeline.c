/*
 * Fuzz harness: the text pipeline parser (--passes=...) and the text IR
 * parser (hone_graph_parse), which both read user-typed text.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    HONE_ASSERT(text);
    memcpy(text, data, size);
    text[size] = 0;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    ctx.limits.max_numel = (int64_t)1 << 22;
    ctx.limits.max_bytes = (int64_t)1 << 26;
    hone_pipeline p;
    if (hone_pipeline_parse(&ctx, text, &p) == HONE_OK)
        hone_pipeline_free(&p);
    hone_graph *g;
    if (hone_graph_parse(&ctx, text, &g) == HONE_OK)
        hone_graph_free(g);
    free(text);
    return 0;
}
