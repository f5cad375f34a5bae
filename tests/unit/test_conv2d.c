/*
 * The packed 2-D convolution (runtime/conv2d.c), the kernel of compiled models
 * and of the interpreter, against a direct double-precision convolution:
 * padding, strides, dilations, groups, pointwise windows (no im2col), column
 * matrices deeper than one KC slice (288 and 576 rows), output-channel counts
 * that are not multiples of the 8-row micro-kernel, position counts that leave
 * a partial last panel, tiles of a few output rows (a wide image), no bias and
 * a conv large enough to run on the shared pool, small planes with many channels.
 * Every output must be written
 * (the output starts as NaN); weights packed ahead of time (what the backend
 * embeds) and packed per call (hone_rt_conv2d_unpacked, hone_rt_conv) give
 * bit-identical results. Also the depthwise kernel (runtime/depthwise.c) against the
 * same direct convolution.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "hone_rt.h"

typedef struct conv_case {
    int64_t n, c, m, groups, h, wd, k, stride, pad, dil;
    int bias;
} conv_case;

static const conv_case cases[] = {
    {1, 16, 16, 1, 28, 28, 3, 1, 1, 1, 1},  /* ResNet-14 stage 1 */
    {2, 32, 13, 1, 14, 14, 3, 2, 1, 1, 1},  /* 288 rows: two KC slices; 13 outputs */
    {1, 64, 64, 1, 28, 28, 3, 1, 1, 1, 1},  /* 576 rows, 29M MACs: the shared pool */
    {3, 16, 32, 1, 14, 14, 1, 2, 0, 1, 0},  /* 1x1 stride 2, no bias */
    {2, 24, 20, 1, 5, 7, 1, 1, 0, 1, 1},    /* pointwise: x is the column matrix */
    {2, 6, 9, 3, 9, 11, 3, 1, 2, 2, 1},     /* groups, dilation, non-square */
    {1, 3, 5, 1, 5, 5, 5, 1, 0, 1, 1},      /* one position per window row */
    {1, 40, 8, 1, 3, 700, 3, 1, 1, 1, 0},   /* wide: 360 rows x 700 positions a row */
    {1, 256, 100, 1, 7, 7, 3, 1, 1, 1, 1},  /* 7x7, 100 channels, on the pool */
    {2, 192, 128, 2, 9, 9, 1, 1, 0, 1, 1},  /* pointwise, 2 groups of 64, 2 images */
    {1, 64, 72, 1, 14, 14, 3, 2, 1, 1, 0},  /* 7x7 outputs, stride 2, 72 channels, no bias */
    {1, 3, 16, 1, 41, 37, 7, 2, 3, 1, 1},   /* stem-like 7x7 stride 2, odd widths */
    {1, 8, 8, 1, 70, 70, 3, 2, 1, 1, 1},    /* stride 2, 35 a row: a full and a partial block */
    {1, 128, 16, 1, 40, 41, 3, 1, 1, 1, 1}, /* 1152 x 1640 column matrix: two 4 MiB tiles */
};

static hone_rt_window window_of(const conv_case *cc)
{
    return tu_window_2d(cc->h, cc->wd, cc->k, cc->stride, cc->pad, cc->dil);
}

/* y[b][o][oy][ox] in double, straight from the definition. */
static double direct(const conv_case *cc, const hone_rt_window *w, const float *x,
                     const float *wt, const float *bias, int64_t b, int64_t o, int64_t oy,
                     int64_t ox)
{
    int64_t cg = cc->c / cc->groups, mg = cc->m / cc->groups, g = o / mg;
    double s = bias ? bias[o] : 0;
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t ky = 0; ky < cc->k; ky++)
            for (int64_t kx = 0; kx < cc->k; kx++) {
                int64_t iy = oy * cc->stride - cc->pad + ky * cc->dil;
                int64_t ix = ox * cc->stride - cc->pad + kx * cc->dil;
                if (iy < 0 || iy >= w->in[0] || ix < 0 || ix >= w->in[1])
                    continue;
                s += (double)x[((b * cc->c + g * cg + ci) * cc->h + iy) * cc->wd + ix] *
                     wt[((o * cg + ci) * cc->k + ky) * cc->k + kx];
            }
    return s;
}

static float *rand_floats(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)tu_urand();
    return p;
}

static float *nan_floats(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static void run_case(const conv_case *cc)
{
    hone_rt_window w = window_of(cc);
    int64_t rows = cc->c / cc->groups * cc->k * cc->k, total = w.out[0] * w.out[1];
    size_t nx = (size_t)(cc->n * cc->c * cc->h * cc->wd), nw = (size_t)(cc->m * rows);
    size_t ny = (size_t)(cc->n * cc->m * total);
    tu_seed(11);
    float *x = rand_floats(nx), *wt = rand_floats(nw);
    float *bias = cc->bias ? rand_floats((size_t)cc->m) : NULL;
    float *wp = nan_floats((size_t)hone_rt_conv2d_packed_numel(&w, cc->m, cc->groups, rows));
    float *s1 = nan_floats(hone_rt_conv2d_scratch(&w, cc->c, cc->m, cc->groups));
    float *s2 = nan_floats(hone_rt_conv2d_unpacked_scratch(&w, cc->c, cc->m, cc->groups));
    float *s3 = nan_floats(hone_rt_conv_scratch(&w, cc->c, cc->m, cc->groups));
    float *y1 = nan_floats(ny), *y2 = nan_floats(ny), *y3 = nan_floats(ny);

    hone_rt_conv2d_pack(&w, cc->m, cc->groups, rows, wt, wp);
    hone_rt_conv2d(&w, cc->n, cc->c, cc->m, cc->groups, x, wp, bias, y1, s1);
    hone_rt_conv2d_unpacked(&w, cc->n, cc->c, cc->m, cc->groups, x, wt, bias, y2, s2);
    hone_rt_conv(&w, cc->n, cc->c, cc->m, cc->groups, x, wt, bias, y3, s3);
    assert_memory_equal(y1, y2, sizeof(float) * ny);
    assert_memory_equal(y1, y3, sizeof(float) * ny);

    double worst = 0;
    for (int64_t b = 0; b < cc->n; b++)
        for (int64_t o = 0; o < cc->m; o++)
            for (int64_t p = 0; p < total; p++) {
                double want = direct(cc, &w, x, wt, bias, b, o, p / w.out[1], p % w.out[1]);
                double got = y1[(b * cc->m + o) * total + p];
                double d = fabs(got - want);
                worst = d > worst || isnan(d) ? d : worst;
            }
    if (!(worst <= 1e-5 * (double)rows))
        fail_msg("conv %lldx%lld c=%lld m=%lld k=%lld: off by %g", (long long)cc->h,
                 (long long)cc->wd, (long long)cc->c, (long long)cc->m, (long long)cc->k, worst);
    free(x), free(wt), free(bias), free(wp), free(s1), free(s2), free(s3);
    free(y1), free(y2), free(y3);
}

static void test_conv2d_matches_direct(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(&cases[i]);
}

/* hone_rt_depthwise_conv (group = channels) against the direct convolution: the 3x3
 * kernel on a padded copy at strides 1 and 2 with plane widths that leave partial
 * 16-column blocks, dilation and a plane too large to copy (the masked 3x3 kernel), a
 * 5x5 kernel (the general AVX-512 kernel), a wide row, enough planes to run on the
 * shared pool, and planes of at most 64 outputs (read flat). Every output must be
 * written. */
static void test_depthwise_matches_direct(void **state)
{
    (void)state;
    static const conv_case dw[] = {
        {2, 8, 8, 8, 37, 37, 3, 1, 1, 1, 1},     /* 3 blocks, the last of 5 columns */
        {1, 6, 6, 6, 37, 35, 3, 2, 1, 1, 0},     /* stride 2, odd width, no bias */
        {1, 4, 4, 4, 9, 20, 3, 1, 2, 2, 1},      /* dilation 2, pad 2 */
        {1, 5, 5, 5, 12, 19, 5, 2, 2, 1, 1},     /* 5x5 */
        {1, 2, 2, 2, 3, 1100, 3, 1, 1, 1, 1},    /* 69 blocks a row */
        {1, 96, 96, 96, 28, 28, 3, 1, 1, 1, 1},  /* 677k MACs: the shared pool */
        {1, 16, 16, 16, 7, 7, 3, 1, 1, 1, 1},    /* one partial block */
        {1, 2, 2, 2, 150, 150, 3, 1, 1, 1, 1},   /* 152 x 178 padded: too large to copy */
        {1, 8, 8, 8, 112, 112, 3, 2, 1, 1, 1},   /* stride 2, MobileNetV2's 112 -> 56 */
        {1, 4, 4, 4, 14, 14, 3, 2, 1, 1, 1},     /* stride 2, 14 -> 7: one partial block */
        {1, 3, 3, 3, 33, 70, 3, 2, 0, 1, 1},     /* stride 2 unpadded, 34 outputs a row */
        {1, 2, 2, 2, 9, 600, 3, 2, 1, 1, 1},     /* stride 2, 19 blocks a row */
        {1, 2, 2, 2, 3, 5000, 3, 2, 1, 1, 1},    /* stride 2, 3 rows of 5000 */
        {1, 24, 24, 24, 8, 8, 3, 1, 1, 1, 1},    /* flat: 64 outputs, the most */
        {1, 4, 4, 4, 9, 8, 3, 1, 1, 1, 0},       /* 72 outputs: padded, not flat */
        {2, 3, 3, 3, 5, 9, 3, 1, 1, 1, 1},       /* flat: 5x9, rows across registers */
    };
    for (size_t i = 0; i < sizeof dw / sizeof *dw; i++) {
        const conv_case *cc = &dw[i];
        hone_rt_window w = window_of(cc);
        int64_t total = w.out[0] * w.out[1];
        size_t ny = (size_t)(cc->n * cc->m * total);
        tu_seed(17);
        float *x = rand_floats((size_t)(cc->n * cc->c * cc->h * cc->wd));
        float *wt = rand_floats((size_t)(cc->m * cc->k * cc->k));
        float *bias = cc->bias ? rand_floats((size_t)cc->m) : NULL, *y = nan_floats(ny);
        hone_rt_depthwise_conv(&w, cc->n, cc->c, x, wt, bias, y);
        double worst = 0;
        for (int64_t b = 0; b < cc->n; b++)
            for (int64_t o = 0; o < cc->m; o++)
                for (int64_t p = 0; p < total; p++) {
                    double want = direct(cc, &w, x, wt, bias, b, o, p / w.out[1], p % w.out[1]);
                    double d = fabs(y[(b * cc->m + o) * total + p] - want);
                    worst = d > worst || isnan(d) ? d : worst;
                }
        if (!(worst <= 1e-5 * (double)(cc->k * cc->k)))
            fail_msg("depthwise case %zu: off by %g", i, worst);
        free(x), free(wt), free(bias), free(y);
    }
}

/* hone_rt_conv2d_batched (several images of a batch in one im2col and one GEMM, their
 * columns padded to whole panels) gives the bits of hone_rt_conv2d image by image, with
 * and without the epilogue: 8 frames of a video model's stride-2 conv, 20 images in tiles
 * of 16 and 4, a pointwise conv and two groups (not batched: the plain path), odd sizes. */
static void test_conv2d_batched(void **state)
{
    (void)state;
    static const conv_case bc[] = {
        {8, 16, 32, 1, 28, 28, 3, 2, 1, 1, 1},  /* 14x14 outputs: 7 panels an image */
        {20, 32, 24, 1, 14, 14, 3, 1, 1, 1, 0}, /* 288 x 224 columns an image: 16, then 4 */
        {3, 8, 12, 1, 9, 11, 3, 1, 1, 1, 1},    /* 99 outputs, partial panels */
        {4, 24, 20, 1, 5, 7, 1, 1, 0, 1, 1},    /* pointwise: not batched */
        {3, 6, 9, 3, 9, 11, 3, 1, 2, 2, 1},     /* groups: not batched */
    };
    for (size_t i = 0; i < sizeof bc / sizeof *bc; i++)
        for (int with_epi = 0; with_epi < 2; with_epi++) {
            const conv_case *cc = &bc[i];
            hone_rt_window w = window_of(cc);
            int64_t rows = cc->c / cc->groups * cc->k * cc->k;
            size_t ny = (size_t)(cc->n * cc->m * w.out[0] * w.out[1]);
            tu_seed(41);
            float *x = rand_floats((size_t)(cc->n * cc->c * cc->h * cc->wd));
            float *wt = rand_floats((size_t)(cc->m * rows)), *z = rand_floats(ny);
            float *bias = cc->bias ? rand_floats((size_t)cc->m) : NULL;
            float *wp = nan_floats((size_t)hone_rt_conv2d_packed_numel(&w, cc->m, cc->groups, rows));
            float *s1 = nan_floats(hone_rt_conv2d_scratch(&w, cc->c, cc->m, cc->groups));
            float *s2 = nan_floats(hone_rt_conv2d_batched_scratch(&w, cc->n, cc->c, cc->m, cc->groups));
            float *y1 = nan_floats(ny), *y2 = nan_floats(ny);
            assert_true(hone_rt_conv2d_batched_scratch(&w, cc->n, cc->c, cc->m, cc->groups) >=
                        hone_rt_conv2d_scratch(&w, cc->c, cc->m, cc->groups));
            hone_rt_conv2d_pack(&w, cc->m, cc->groups, rows, wt, wp);
            if (with_epi)
                hone_rt_conv2d_epi(&w, cc->n, cc->c, cc->m, cc->groups, x, wp, bias, z, 0.0f,
                                   0.5f, y1, s1);
            else
                hone_rt_conv2d(&w, cc->n, cc->c, cc->m, cc->groups, x, wp, bias, y1, s1);
            hone_rt_conv2d_batched(&w, cc->n, cc->c, cc->m, cc->groups, x, wp, bias,
                                   with_epi ? z : NULL, 0.0f, 0.5f, with_epi, y2, s2);
            assert_memory_equal(y1, y2, sizeof(float) * ny);
            free(x), free(wt), free(z), free(bias), free(wp), free(s1), free(s2), free(y1),
                free(y2);
        }
}

/* hone_rt_conv2d_epi (FusedConv's residual and Relu / Clip in the kernel's last store)
 * gives the bits of hone_rt_conv2d followed by the backend's separate epilogue loop:
 * y += z, then y < lo -> lo, y > hi -> hi; on a conv with two KC slices and one on the
 * pool with blocks of weights, with and without a residual, with one bound or two. */
static void test_conv2d_epilogue(void **state)
{
    (void)state;
    static const conv_case ec[] = {
        {2, 32, 13, 1, 14, 14, 3, 2, 1, 1, 1},
        {1, 256, 100, 1, 7, 7, 3, 1, 1, 1, 1},
        {1, 64, 64, 1, 28, 28, 3, 1, 1, 1, 0},
    };
    static const float bounds[3][2] = {{0.0f, INFINITY}, {-0.25f, 0.5f}, {-INFINITY, INFINITY}};
    for (size_t i = 0; i < sizeof ec / sizeof *ec; i++)
        for (int bi = 0; bi < 3; bi++)
            for (int with_z = 0; with_z < 2; with_z++) {
                const conv_case *cc = &ec[i];
                hone_rt_window w = window_of(cc);
                int64_t rows = cc->c * cc->k * cc->k, total = w.out[0] * w.out[1];
                size_t ny = (size_t)(cc->n * cc->m * total);
                tu_seed(23);
                float *x = rand_floats((size_t)(cc->n * cc->c * cc->h * cc->wd));
                float *wt = rand_floats((size_t)(cc->m * rows)), *z = rand_floats(ny);
                float *bias = cc->bias ? rand_floats((size_t)cc->m) : NULL;
                float *wp = nan_floats((size_t)hone_rt_conv2d_packed_numel(&w, cc->m, 1, rows));
                float *sc = nan_floats(hone_rt_conv2d_scratch(&w, cc->c, cc->m, 1));
                float *y1 = nan_floats(ny), *y2 = nan_floats(ny);
                float lo = bounds[bi][0], hi = bounds[bi][1];
                hone_rt_conv2d_pack(&w, cc->m, 1, rows, wt, wp);
                hone_rt_conv2d(&w, cc->n, cc->c, cc->m, 1, x, wp, bias, y1, sc);
                for (size_t e = 0; e < ny; e++) {
                    float v = with_z ? y1[e] + z[e] : y1[e];
                    v = v < lo ? lo : v;
                    y1[e] = v > hi ? hi : v;
                }
                hone_rt_conv2d_epi(&w, cc->n, cc->c, cc->m, 1, x, wp, bias, with_z ? z : NULL,
                                   lo, hi, y2, sc);
                assert_memory_equal(y1, y2, sizeof(float) * ny);
                free(x), free(wt), free(z), free(bias), free(wp), free(sc), free(y1), free(y2);
            }
}

/* hone_rt_depthwise_conv_epi (the epilogue on each plane as it is finished) gives the
 * bits of hone_rt_depthwise_conv followed by the separate epilogue loop, on the padded
 * 3x3 kernel, a stride-2 one, a 5x5 one and a plane too large to copy, on the pool. */
static void test_depthwise_epilogue(void **state)
{
    (void)state;
    static const conv_case dc[] = {
        {2, 8, 8, 8, 37, 37, 3, 1, 1, 1, 1},
        {1, 96, 96, 96, 28, 28, 3, 2, 1, 1, 0},
        {1, 5, 5, 5, 12, 19, 5, 2, 2, 1, 1},
        {1, 2, 2, 2, 150, 150, 3, 1, 1, 1, 1},
        {1, 32, 32, 32, 7, 7, 3, 1, 1, 1, 1},    /* flat */
    };
    static const float bounds[3][2] = {{0.0f, 6.0f}, {0.0f, INFINITY}, {-INFINITY, INFINITY}};
    for (size_t i = 0; i < sizeof dc / sizeof *dc; i++)
        for (int bi = 0; bi < 3; bi++)
            for (int with_z = 0; with_z < 2; with_z++) {
                const conv_case *cc = &dc[i];
                hone_rt_window w = window_of(cc);
                size_t ny = (size_t)(cc->n * cc->m * w.out[0] * w.out[1]);
                tu_seed(37);
                float *x = rand_floats((size_t)(cc->n * cc->c * cc->h * cc->wd));
                float *wt = rand_floats((size_t)(cc->m * cc->k * cc->k)), *z = rand_floats(ny);
                float *bias = cc->bias ? rand_floats((size_t)cc->m) : NULL;
                float *y1 = nan_floats(ny), *y2 = nan_floats(ny);
                float lo = bounds[bi][0], hi = bounds[bi][1];
                for (size_t e = 0; e < ny; e++) /* outputs beyond 6 and below 0 both occur */
                    z[e] *= 8.0f;
                hone_rt_depthwise_conv(&w, cc->n, cc->c, x, wt, bias, y1);
                for (size_t e = 0; e < ny; e++) {
                    float v = with_z ? y1[e] + z[e] : y1[e];
                    v = v < lo ? lo : v;
                    y1[e] = v > hi ? hi : v;
                }
                hone_rt_depthwise_conv_epi(&w, cc->n, cc->c, x, wt, bias, with_z ? z : NULL, lo,
                                           hi, y2);
                assert_memory_equal(y1, y2, sizeof(float) * ny);
                free(x), free(wt), free(z), free(bias), free(y1), free(y2);
            }
}

/* A conv whose weights have no input channel left (c = 0) is its bias. */
static void test_conv2d_no_inputs(void **state)
{
    (void)state;
    conv_case cc = {1, 0, 3, 1, 4, 4, 3, 1, 1, 1, 1};
    hone_rt_window w = window_of(&cc);
    float bias[3] = {1, -2, 3}, y[3 * 16], scratch[64];
    hone_rt_conv2d(&w, 1, 0, 3, 1, NULL, NULL, bias, y, scratch);
    for (int i = 0; i < 48; i++)
        assert_float_equal(y[i], bias[i / 16], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_matches_direct),
        cmocka_unit_test(test_conv2d_no_inputs),
        cmocka_unit_test(test_conv2d_epilogue),
        cmocka_unit_test(test_conv2d_batched),
        cmocka_unit_test(test_depthwise_matches_direct),
        cmocka_unit_test(test_depthwise_epilogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
