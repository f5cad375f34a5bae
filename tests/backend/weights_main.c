/*
 * A program linking a model compiled with --weights=FILE (-DEXT) or with
 * embedded weights: loads the weights blob (EXT), checks set_weights' error
 * codes, runs one 1x1x28x28 image read from a raw float32 file and prints
 * the logits, so the test can compare both builds' outputs byte for byte.
 * usage: weights_main IMAGE.f32 [WEIGHTS.bin]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clf.h"

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = aligned_alloc(64, (*n + 63) / 64 * 64 + 64);
    if (p && fread(p, 1, *n, f) != *n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    float x[CLF_INPUT_NUMEL], y[CLF_LOGITS_NUMEL];
    size_t n = 0;
    void *img = argc > 1 ? read_all(argv[1], &n) : NULL;
    if (!img || n != sizeof x)
        return fprintf(stderr, "cannot read the image\n"), 1;
    memcpy(x, img, sizeof x);
    free(img);
    void *ws = aligned_alloc(64, CLF_WORKSPACE_SIZE ? CLF_WORKSPACE_SIZE : 64);
    clf_inputs in = {x};
    clf_outputs out = {y};
    void *w = NULL;
#ifdef EXT
    if (clf_run(&in, &out, ws) != CLF_ERR_NO_WEIGHTS) {
        free(ws);
        return fprintf(stderr, "ran without weights\n"), 1;
    }
    w = argc > 2 ? read_all(argv[2], &n) : NULL;
    if (!w || n != CLF_WEIGHTS_SIZE) {
        free(w);
        free(ws);
        return fprintf(stderr, "cannot read the weights (%zu bytes)\n", n), 1;
    }
    int codes[4];
    codes[0] = clf_set_weights(w, n - 1);
    ((char *)w)[0] ^= 1;
    codes[1] = clf_set_weights(w, n);
    ((char *)w)[0] ^= 1;
    ((char *)w)[9] ^= 1;
    codes[2] = clf_set_weights(w, n);
    ((char *)w)[9] ^= 1;
    codes[3] = clf_set_weights(w, n);
    printf("set_weights codes %d %d %d %d\n", codes[0], codes[1], codes[2], codes[3]);
    if (codes[3]) {
        free(w);
        free(ws);
        return 1;
    }
#endif
    int rc = clf_run(&in, &out, ws);
    for (int i = 0; i < CLF_LOGITS_NUMEL; i++)
        printf("%.9g\n", y[i]);
    free(ws);
    free(w);
    return rc;
}
