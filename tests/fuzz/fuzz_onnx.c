/*
 * Fuzz harness: ONNX import (protobuf decoding, initializers, functions), the
 * verifier and shape inference, then export of what was imported. Limits are
 * tightened so a fuzzed shape cannot ask for gigabytes.
 */
#include <stdlib.h>

#include "onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    ctx.limits.max_numel = (int64_t)1 << 22;
    ctx.limits.max_bytes = (int64_t)1 << 26;
    ctx.limits.max_nodes = 10000;
    hone_graph *g;
    if (hone_onnx_load_buffer(&ctx, data, size, NULL, &g) != HONE_OK)
        return 0;
    HONE_ASSERT(hone_graph_verify(&ctx, g) == HONE_OK);
    uint8_t *buf;
    size_t len;
    if (hone_onnx_serialize(&ctx, g, &buf, &len) == HONE_OK)
        free(buf);
    hone_graph_free(g);
    return 0;
}
