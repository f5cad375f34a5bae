/*
 * classify: runs a hone-compiled classifier and prints the top classes.
 *
 * The program is written against the stable ABI of <hone/model.h> only, so
 * it works with any model compiled with `hone compile --name PREFIX`: build
 * it with -DHONE_MODEL_NAME=PREFIX and link the compiled model (the .so, or
 * the object file plus libhone_rt). It asks the model for its descriptor
 * (PREFIX_info), allocates every input and output and one 64-byte-aligned
 * workspace of the stated size, fills input k from the k-th file given on the
 * command line (raw little-endian float32, exactly the tensor's size) or, when
 * none is given, from a fixed pattern, runs the model and treats output 0 as
 * [batch, classes] scores.
 *
 * usage: classify [--expect CLASS] [INPUT.f32 ...]
 * Exit status 0 on success; 1 when the model fails, an output is not finite
 * or a sample's top class differs from --expect; 2 on bad usage or input.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hone/model.h>

#ifndef HONE_MODEL_NAME
#error "build with -DHONE_MODEL_NAME=PREFIX, the --name given to hone compile"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL_INFO CAT(HONE_MODEL_NAME, _info)

const hone_model_info *MODEL_INFO(void);

#define DT_FLOAT 1 /* ONNX TensorProto.FLOAT */
#define TOP_K 3

/* Elements of a static tensor; -1 when a dim is unknown (negative). */
static long long numel(const hone_tensor_desc *d)
{
    long long n = 1;
    for (int i = 0; i < d->rank; i++) {
        if (d->dims[i] < 0)
            return -1;
        n *= d->dims[i];
    }
    return n;
}

/* A zeroed float buffer for d, or NULL (with a message) when d is not static float32. */
static float *alloc_tensor(const hone_tensor_desc *d)
{
    long long n = numel(d);
    if (d->dtype != DT_FLOAT || n < 0) {
        fprintf(stderr, "classify: tensor '%s' is not a static float32 tensor\n", d->name);
        return NULL;
    }
    float *p = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!p)
        fprintf(stderr, "classify: out of memory for '%s'\n", d->name);
    return p;
}

/* Reads exactly n floats from path into x; 0 on success. */
static int read_f32(const char *path, float *x, long long n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "classify: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t got = fread(x, sizeof(float), (size_t)n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != (size_t)n || extra) {
        fprintf(stderr, "classify: %s: expected exactly %lld float32 values\n", path, n);
        return -1;
    }
    return 0;
}

/* The fixed pattern of input k: x[i] = ((i * (k + 3)) mod 10) / 10. */
static void fill_pattern(float *x, long long n, int k)
{
    for (long long i = 0; i < n; i++)
        x[i] = (float)((i * (k + 3)) % 10) / 10.0f;
}

/* Prints the TOP_K classes of one row of scores; returns the top class or -1 if not finite. */
static long long report_row(long long s, const float *row, long long classes)
{
    long long best[TOP_K];
    int k = 0;
    for (long long c = 0; c < classes; c++)
        if (!isfinite(row[c]))
            return -1;
    for (; k < TOP_K && k < classes; k++) {
        best[k] = -1;
        for (long long c = 0; c < classes; c++) {
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= best[j] == c;
            if (!taken && (best[k] < 0 || row[c] > row[best[k]]))
                best[k] = c;
        }
        printf("sample %lld rank %d: class %lld score %.3f\n", s, k + 1, best[k], row[best[k]]);
    }
    return best[0];
}

/* Scores of output 0 viewed as [batch, classes]; 0 when every row passes the checks. */
static int report(const hone_tensor_desc *d, const float *y, long long expect)
{
    long long n = numel(d);
    long long batch = d->rank >= 2 ? d->dims[0] : 1;
    long long classes = batch > 0 ? n / batch : 0;
    int bad = 0;
    for (long long s = 0; s < batch; s++) {
        long long top = report_row(s, y + s * classes, classes);
        if (top < 0)
            fprintf(stderr, "classify: sample %lld has a non-finite score\n", s);
        else if (expect >= 0 && top != expect)
            fprintf(stderr, "classify: sample %lld: class %lld, expected %lld\n", s, top, expect);
        bad |= top < 0 || (expect >= 0 && top != expect);
    }
    return bad;
}

/* Allocates and fills the inputs (files first, then the pattern); 0 on success. */
static int load_inputs(const hone_model_info *m, float **in, char **files, int n_files)
{
    if (n_files > m->n_inputs) {
        fprintf(stderr, "classify: %d input files for a model of %d inputs\n", n_files,
                m->n_inputs);
        return -1;
    }
    for (int k = 0; k < m->n_inputs; k++) {
        if (!(in[k] = alloc_tensor(&m->inputs[k])))
            return -1;
        if (k < n_files && read_f32(files[k], in[k], numel(&m->inputs[k])))
            return -1;
        if (k >= n_files)
            fill_pattern(in[k], numel(&m->inputs[k]), k);
    }
    return 0;
}

/* Runs m once on the buffers; 0 on success. */
static int run_model(const hone_model_info *m, float **in, float **out)
{
    size_t ws_size = (m->workspace_size + 63) / 64 * 64;
    void *ws = aligned_alloc(64, ws_size ? ws_size : 64);
    if (!ws) {
        fprintf(stderr, "classify: cannot allocate a %zu-byte workspace\n", ws_size);
        return -1;
    }
    int rc = m->run((const void *const *)in, (void *const *)out, ws);
    free(ws);
    if (rc)
        fprintf(stderr, "classify: %s_run failed (%d)\n", m->name, rc);
    return rc;
}

static void free_all(float **bufs, int n)
{
    for (int i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
}

int main(int argc, char **argv)
{
    long long expect = -1;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--expect") == 0) {
        expect = atoll(argv[2]);
        first = 3;
    }
    const hone_model_info *m = MODEL_INFO();
    if (m->abi_version != HONE_MODEL_ABI_VERSION || m->n_outputs < 1) {
        fprintf(stderr, "classify: model ABI %d, expected %d with an output\n", m->abi_version,
                HONE_MODEL_ABI_VERSION);
        return 2;
    }
    float **in = calloc((size_t)m->n_inputs + 1, sizeof *in);
    float **out = calloc((size_t)m->n_outputs, sizeof *out);
    int rc = !in || !out || load_inputs(m, in, argv + first, argc - first) ? 2 : 0;
    for (int k = 0; !rc && k < m->n_outputs; k++)
        rc = (out[k] = alloc_tensor(&m->outputs[k])) ? 0 : 2;
    if (!rc)
        rc = run_model(m, in, out) ? 1 : report(&m->outputs[0], out[0], expect);
    if (in)
        free_all(in, m->n_inputs);
    if (out)
        free_all(out, m->n_outputs);
    return rc;
}
