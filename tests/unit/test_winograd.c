/*
 * The Winograd F(4x4, 3x3) and F(2x2, 3x3) convolutions (runtime/winograd.c) that
 * compiled models run for 3x3 stride-1 convs, against a direct double-precision
 * convolution: ResNet-like shapes (56x56 x 64 on the shared pool, 14x14 x 256 in F(2x2)
 * with two KC slices of input channels), output-channel counts that are not multiples of the 8-row micro-kernel
 * or of the 32-channel units, planes that are not a whole number of 4x4 tiles, more
 * than 16 tiles a row (two vector passes), padding 0 and 2, non-square planes, two
 * images. Every output must be written (the output starts as NaN). The error bound is
 * relative to the sum of |x w| over the window (the scale rounding errors grow with):
 * the transforms' constants (up to 8 and 1/24) cost a few more roundings than a direct
 * sum. Also: the fused epilogue gives the bits of the plain call followed by the
 * separate epilogue, and which windows the path takes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "hone_rt.h"

typedef struct wcase {
    int64_t n, c, m, h, wd, pad;
    int bias;
} wcase;

static const wcase cases[] = {
    {1, 64, 64, 56, 56, 1, 1},   /* ResNet stage 1: 196 tiles, the shared pool */
    {1, 256, 256, 14, 14, 1, 1}, /* F(2x2, 3x3) (large weights), two KC slices, 49 tiles */
    {1, 160, 200, 13, 15, 1, 0}, /* F(2x2, 3x3), partial tiles and units, no bias */
    {1, 128, 128, 14, 14, 1, 1}, /* F(4x4, 3x3), 16 tiles */
    {1, 48, 40, 13, 13, 1, 0},   /* 40 outputs: a partial unit and panel; 13x13: partial tiles */
    {2, 16, 24, 17, 23, 1, 1},   /* two images, non-square */
    {1, 16, 16, 70, 70, 1, 1},   /* 18 tiles a row: two vector passes */
    {1, 24, 16, 14, 15, 0, 1},   /* no padding: 12 x 13 outputs */
    {1, 16, 17, 12, 12, 2, 1},   /* padding 2: 14 x 14 outputs */
    {1, 128, 96, 7, 7, 1, 1},    /* a 7x7 plane: F(2x2, 3x3), 16 tiles covering 8 x 8 */
    {2, 512, 40, 7, 9, 1, 0},    /* F(2x2) on 7 x 9, two KC slices, two images */
    {8, 16, 16, 28, 28, 1, 1},   /* 8 frames of a video model in one pass: 392 tiles */
    {9, 32, 32, 60, 60, 1, 0},   /* 9 images: a pass of 7, then 2 (the bound on V) */
};

static float *floats(size_t n, int nan)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = nan ? NAN : (float)tu_urand();
    return p;
}

/* Worst |got - want| / (sum |x w| + |bias|) over all outputs. */
static double worst_error(const wcase *cc, const hone_rt_window *w, const float *x,
                          const float *wt, const float *bias, const float *y)
{
    double worst = 0;
    for (int64_t b = 0; b < cc->n; b++)
        for (int64_t o = 0; o < cc->m; o++)
            for (int64_t oy = 0; oy < w->out[0]; oy++)
                for (int64_t ox = 0; ox < w->out[1]; ox++) {
                    double s = bias ? bias[o] : 0, scale = fabs(s);
                    for (int64_t ci = 0; ci < cc->c; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int64_t iy = oy - cc->pad + ky, ix = ox - cc->pad + kx;
                                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->wd)
                                    continue;
                                double t = (double)x[((b * cc->c + ci) * cc->h + iy) * cc->wd + ix] *
                                           wt[(o * cc->c + ci) * 9 + ky * 3 + kx];
                                s += t;
                                scale += fabs(t);
                            }
                    double got = y[((b * cc->m + o) * w->out[0] + oy) * w->out[1] + ox];
                    double e = fabs(got - s) / (scale > 0 ? scale : 1);
                    worst = e > worst || isnan(e) ? e : worst;
                }
    return worst;
}

static void test_winograd_matches_direct(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const wcase *cc = &cases[i];
        hone_rt_window w = tu_window_2d(cc->h, cc->wd, 3, 1, cc->pad, 1);
        assert_true(hone_rt_winograd_fits(&w, cc->c, cc->m, 1));
        size_t ny = (size_t)(cc->n * cc->m * w.out[0] * w.out[1]);
        tu_seed(29);
        float *x = floats((size_t)(cc->n * cc->c * cc->h * cc->wd), 0);
        float *wt = floats((size_t)(cc->m * cc->c * 9), 0);
        float *bias = cc->bias ? floats((size_t)cc->m, 0) : NULL;
        float *up = floats((size_t)hone_rt_winograd_packed_numel(&w, cc->c, cc->m), 1);
        float *sc = floats(hone_rt_winograd_scratch(&w, cc->n, cc->c, cc->m), 1);
        float *y = floats(ny, 1);
        hone_rt_winograd_pack(&w, cc->c, cc->m, wt, up);
        hone_rt_winograd_conv(&w, cc->n, cc->c, cc->m, x, up, bias, NULL, -INFINITY, INFINITY,
                              y, sc);
        double e = worst_error(cc, &w, x, wt, bias, y);
        print_message("case %zu: worst error %.3g of the scale\n", i, e);
        if (!(e <= 5e-6))
            fail_msg("winograd case %zu (%lldx%lld, c=%lld, m=%lld): relative error %g", i,
                     (long long)cc->h, (long long)cc->wd, (long long)cc->c, (long long)cc->m, e);
        free(x), free(wt), free(bias), free(up), free(sc), free(y);
    }
}

/* The residual and the bounds in the output transform's store give the bits of the
 * plain conv followed by the separate epilogue (y += z, y < lo -> lo, y > hi -> hi). */
static void test_winograd_epilogue(void **state)
{
    (void)state;
    static const float bounds[3][2] = {{0.0f, INFINITY}, {-0.25f, 0.5f}, {-INFINITY, INFINITY}};
    const wcase *cc = &cases[3];
    hone_rt_window w = tu_window_2d(cc->h, cc->wd, 3, 1, cc->pad, 1);
    size_t ny = (size_t)(cc->n * cc->m * w.out[0] * w.out[1]);
    tu_seed(31);
    float *x = floats((size_t)(cc->n * cc->c * cc->h * cc->wd), 0);
    float *wt = floats((size_t)(cc->m * cc->c * 9), 0), *bias = floats((size_t)cc->m, 0);
    float *z = floats(ny, 0), *y1 = floats(ny, 1), *y2 = floats(ny, 1);
    float *up = floats((size_t)hone_rt_winograd_packed_numel(&w, cc->c, cc->m), 1);
    float *sc = floats(hone_rt_winograd_scratch(&w, cc->n, cc->c, cc->m), 1);
    hone_rt_winograd_pack(&w, cc->c, cc->m, wt, up);
    for (int bi = 0; bi < 3; bi++)
        for (int with_z = 0; with_z < 2; with_z++) {
            float lo = bounds[bi][0], hi = bounds[bi][1];
            hone_rt_winograd_conv(&w, cc->n, cc->c, cc->m, x, up, bias, NULL, -INFINITY,
                                  INFINITY, y1, sc);
            for (size_t e = 0; e < ny; e++) {
                float v = with_z ? y1[e] + z[e] : y1[e];
                v = v < lo ? lo : v;
                y1[e] = v > hi ? hi : v;
            }
            hone_rt_winograd_conv(&w, cc->n, cc->c, cc->m, x, up, bias, with_z ? z : NULL, lo,
                                  hi, y2, sc);
            assert_memory_equal(y1, y2, sizeof(float) * ny);
        }
    free(x), free(wt), free(bias), free(z), free(y1), free(y2), free(up), free(sc);
}

/* Only 3x3, stride 1, undilated, ungrouped windows over planes of at least 7 x 7 outputs
 * with at least 16 channels in and out, and weights that stay small enough once
 * transformed, take the path. */
static void test_winograd_fits(void **state)
{
    (void)state;
    hone_rt_window w = tu_window_2d(14, 14, 3, 1, 1, 1);
    assert_true(hone_rt_winograd_fits(&w, 16, 16, 1));
    assert_false(hone_rt_winograd_fits(&w, 15, 16, 1));
    assert_false(hone_rt_winograd_fits(&w, 16, 8, 1));
    assert_false(hone_rt_winograd_fits(&w, 32, 32, 2));
    hone_rt_window s2 = tu_window_2d(28, 28, 3, 2, 1, 1);
    assert_false(hone_rt_winograd_fits(&s2, 64, 64, 1));
    hone_rt_window d2 = tu_window_2d(28, 28, 3, 1, 2, 2);
    assert_false(hone_rt_winograd_fits(&d2, 64, 64, 1));
    hone_rt_window k5 = tu_window_2d(28, 28, 5, 1, 2, 1);
    assert_false(hone_rt_winograd_fits(&k5, 64, 64, 1));
    hone_rt_window small = tu_window_2d(7, 7, 3, 1, 1, 1);
    assert_true(hone_rt_winograd_fits(&small, 512, 512, 1)); /* F(2x2): 16.8 MB */
    hone_rt_window tiny = tu_window_2d(6, 6, 3, 1, 1, 1);
    assert_false(hone_rt_winograd_fits(&tiny, 64, 64, 1));
    hone_rt_window big = tu_window_2d(14, 14, 3, 1, 1, 1);
    assert_true(hone_rt_winograd_fits(&big, 256, 256, 1));
    assert_false(hone_rt_winograd_fits(&big, 1024, 512, 1)); /* 16 / 9 x 18.9 MB */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_winograd_matches_direct),
        cmocka_unit_test(test_winograd_epilogue),
        cmocka_unit_test(test_winograd_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
