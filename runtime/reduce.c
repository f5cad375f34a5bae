/*
 * float32 sums over one contiguous block of axes: the input is viewed as
 * [outer, red, inner] and summed over red. Rows (inner == 1) use four double
 * lanes the compiler can vectorise; columns (inner > 1) accumulate whole rows
 * into a stack buffer of doubles, a chunk of inner at a time, so the kernel
 * never allocates and keeps double accuracy.
 */
#include "hone_rt.h"

#define COL_CHUNK 256

/* Sum of n contiguous floats in double. */
static double row_sum(const float *x, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

/* y[i] = scale * sum_r x[r, i] for x[red, inner]. */
static void col_sum(const float *x, float *y, int64_t red, int64_t inner, double scale)
{
    double acc[COL_CHUNK];
    for (int64_t c = 0; c < inner; c += COL_CHUNK) {
        int64_t w = inner - c < COL_CHUNK ? inner - c : COL_CHUNK;
        for (int64_t j = 0; j < w; j++)
            acc[j] = 0;
        for (int64_t r = 0; r < red; r++) {
            const float *row = x + r * inner + c;
            for (int64_t j = 0; j < w; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < w; j++)
            y[c + j] = (float)(acc[j] * scale);
    }
}

void hone_rt_sum_f32(const float *x, float *y, int64_t outer, int64_t red, int64_t inner,
                     double scale)
{
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = x + o * red * inner;
        if (inner == 1)
            y[o] = (float)(row_sum(xo, red) * scale);
        else
            col_sum(xo, y + o * inner, red, inner, scale);
    }
}
