#include <stdio.h>
#include <string.h>

#include "testutil.h"

hone_tensor *tu_tensor_f32(int rank, const int64_t *dims, const float *vals)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_tensor *t;
    if (hone_tensor_new(&ctx, HONE_DT_FLOAT, rank, dims, &t))
        return NULL;
    if (vals)
        memcpy(t->data, vals, sizeof(float) * (size_t)t->numel);
    return t;
}

const char *tu_src(const char *rel)
{
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", HONE_SOURCE_DIR, rel);
    return buf[k];
}
