/*
 * Fuzz harness: the data loaders. The first byte picks the format (.npy,
 * IDX plain or gzip, ONNX TensorProto .pb); the rest is the file. Loaders
 * that read from a path get a per-process temporary file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dataset.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the bytes to a temporary file named with ext; returns its path. */
static const char *to_file(const uint8_t *data, size_t size, const char *ext)
{
    static char path[128];
    snprintf(path, sizeof path, "/tmp/hone-fuzz-%d%s", (int)getpid(), ext);
    FILE *f = fopen(path, "wb");
    HONE_ASSERT(f);
    if (size)
        HONE_ASSERT(fwrite(data, 1, size, f) == size);
    fclose(f);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    static const char *ext[] = {".npy", ".idx", ".gz", ".pb"};
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    ctx.limits.max_numel = (int64_t)1 << 22;
    ctx.limits.max_bytes = (int64_t)1 << 26;
    const char *path = to_file(data + 1, size - 1, ext[data[0] % 4]);
    hone_tensor *t = NULL;
    if (hone_data_load(&ctx, path, &t) == HONE_OK) {
        hone_tensor *f = NULL;
        if (hone_data_to_float(&ctx, t, HONE_NORM_NONE, &f) == HONE_OK)
            hone_tensor_free(f);
        hone_tensor_free(t);
    }
    unlink(path);
    return 0;
}
