/*
 * The 2-D max pool of compiled models and the interpreter (runtime/pool.c) against a
 * direct reference: kernels 1-5 high and 2-16 wide, horizontal strides 1 and 2 (the
 * AVX-512 path) and 3 (the portable one), vertical strides 1-3, asymmetric pads,
 * ceil-mode output sizes whose last windows run past the image, rows that are not a
 * multiple of 16 wide, planes enough for the shared pool. Every output must be
 * written (it starts as NaN).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "hone_rt.h"

typedef struct pool_case {
    int64_t planes, h, w, kh, kw, sy, sx, pt, pl, pb, pr;
    int ceil;
} pool_case;

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int ceil)
{
    int64_t span = in + p0 + p1 - k;
    return (ceil ? (span + s - 1) / s : span / s) + 1;
}

/* Max over the window's elements inside the image (-inf when there are none). */
static float reference(const pool_case *c, const float *x, int64_t pl, int64_t oy, int64_t ox)
{
    float m = -INFINITY;
    for (int64_t ky = 0; ky < c->kh; ky++)
        for (int64_t kx = 0; kx < c->kw; kx++) {
            int64_t iy = oy * c->sy - c->pt + ky, ix = ox * c->sx - c->pl + kx;
            if (iy >= 0 && iy < c->h && ix >= 0 && ix < c->w) {
                float v = x[(pl * c->h + iy) * c->w + ix];
                m = v > m ? v : m;
            }
        }
    return m;
}

static void check_case(const pool_case *c)
{
    hone_rt_window w = {.nsp = 2};
    int64_t in[2] = {c->h, c->w}, k[2] = {c->kh, c->kw}, s[2] = {c->sy, c->sx};
    int64_t p0[2] = {c->pt, c->pl}, p1[2] = {c->pb, c->pr};
    for (int d = 0; d < 2; d++) {
        w.in[d] = in[d], w.k[d] = k[d], w.stride[d] = s[d], w.dil[d] = 1;
        w.pad[d] = p0[d], w.pad_end[d] = p1[d];
        w.out[d] = out_dim(in[d], k[d], s[d], p0[d], p1[d], c->ceil);
    }
    int64_t nx = c->planes * c->h * c->w, ny = c->planes * w.out[0] * w.out[1];
    float *x = malloc(sizeof(float) * (size_t)nx), *y = malloc(sizeof(float) * (size_t)ny);
    assert_true(x && y);
    unsigned seed = 5;
    for (int64_t i = 0; i < nx; i++)
        x[i] = (float)rand_r(&seed) / (float)RAND_MAX * 4.0f - 2.0f;
    memset(y, 0xff, sizeof(float) * (size_t)ny);
    hone_rt_maxpool(&w, c->planes, x, y, NULL, 0);
    for (int64_t pl = 0; pl < c->planes; pl++)
        for (int64_t oy = 0; oy < w.out[0]; oy++)
            for (int64_t ox = 0; ox < w.out[1]; ox++) {
                float got = y[(pl * w.out[0] + oy) * w.out[1] + ox];
                float want = reference(c, x, pl, oy, ox);
                if (!(got == want))
                    fail_msg("case %lldx%lld k %lldx%lld s %lldx%lld: plane %lld (%lld, %lld): "
                             "got %g, want %g",
                             (long long)c->h, (long long)c->w, (long long)c->kh,
                             (long long)c->kw, (long long)c->sy, (long long)c->sx, (long long)pl,
                             (long long)oy, (long long)ox, got, want);
            }
    free(x);
    free(y);
}

static void test_maxpool_matches_reference(void **state)
{
    (void)state;
    static const pool_case cases[] = {
        {3, 111, 111, 3, 3, 2, 2, 0, 0, 0, 0, 1},   /* SqueezeNet: ceil mode, last window cut */
        {2, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 0},   /* ResNet stem pool */
        {64, 55, 55, 3, 3, 2, 2, 0, 0, 0, 0, 1},    /* enough taps for the shared pool */
        {4, 9, 37, 2, 2, 2, 2, 0, 0, 0, 0, 0},      /* 2x2 stride 2 */
        {3, 13, 29, 3, 5, 1, 1, 1, 2, 1, 2, 0},     /* stride 1, same size */
        {2, 7, 40, 1, 16, 3, 2, 0, 3, 0, 5, 1},     /* 16 wide, asymmetric pads */
        {2, 17, 19, 5, 3, 3, 3, 2, 1, 2, 1, 1},     /* stride 3: the portable path */
        {1, 3, 3, 3, 3, 1, 2, 1, 1, 1, 1, 1},       /* windows mostly padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
