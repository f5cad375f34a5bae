/*
 * Backward kernels of the elementwise activations and unary math ops:
 * dx = dy * f'(.) over float32 arrays; and the Relu forward the training
 * engine's interpreter uses (hone_rt_relu, branch-free like Relu's backward).
 *
 * Each derivative is written from whichever forward tensor gives it most
 * cheaply: the output y for Relu (y > 0 iff x > 0), Sigmoid (y(1-y)), Tanh
 * (1-y^2), Exp (y), Sqrt (1/(2y)) and Reciprocal (-y^2), so the forward input
 * need not stay alive; the input x for everything else. hone_rt_act_uses_y
 * tells the caller which one to pass. Kinks take the one-sided derivative
 * PyTorch uses: Relu and LeakyRelu count 0 as negative, Clip passes the
 * gradient at its bounds, Abs has gradient 0 at 0.
 */
#include <math.h>

#include "hone_rt.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

int hone_rt_act_uses_y(hone_rt_act k)
{
    switch (k) {
    case HONE_RT_ACT_RELU: case HONE_RT_ACT_SIGMOID: case HONE_RT_ACT_TANH:
    case HONE_RT_ACT_EXP: case HONE_RT_ACT_SQRT: case HONE_RT_ACT_RECIPROCAL:
        return 1;
    default:
        return 0;
    }
}

/* The loop body EXPR over t (forward value) and g (incoming gradient). */
#define ACT_LOOP(EXPR)                         \
    do {                                       \
        for (int64_t i = 0; i < n; i++) {      \
            float v = t[i], g = dy[i];         \
            dx[i] = (EXPR);                    \
        }                                      \
    } while (0)

/* Hard-swish slope: 0 below -3, 1 above 3, (2x + 3) / 6 between. */
static inline float hardswish_slope(float x)
{
    return x < -3.0f ? 0.0f : x > 3.0f ? 1.0f : (2.0f * x + 3.0f) / 6.0f;
}

/* dx = dy where t > 0, else 0 (NaN: 0), branch-free: a branch per element
 * mispredicts about half the time on activations. */
static void relu_grad(int64_t n, const float *dy, const float *t, float *dx)
{
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        __m128 keep = _mm_cmpgt_ps(_mm_loadu_ps(t + i), zero);
        _mm_storeu_ps(dx + i, _mm_and_ps(keep, _mm_loadu_ps(dy + i)));
    }
#endif
    for (; i < n; i++)
        dx[i] = t[i] > 0 ? dy[i] : 0.0f;
}

void hone_rt_relu(int64_t n, const float *x, float *y)
{
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(x + i);
        _mm_storeu_ps(y + i, _mm_andnot_ps(_mm_cmplt_ps(v, zero), v));
    }
#endif
    for (; i < n; i++)
        y[i] = x[i] < 0 ? 0 : x[i];
}

/* Logistic function without overflow for either sign. */
static inline float sigmoidf(float x)
{
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* x^(p-1) * p, with the common exponents done without pow. */
static void pow_grad(int64_t n, const float *dy, const float *t, float p, float *dx)
{
    if (p == 2.0f)
        ACT_LOOP(2.0f * v * g);
    else if (p == 3.0f)
        ACT_LOOP(3.0f * v * v * g);
    else
        ACT_LOOP(p * powf(v, p - 1.0f) * g);
}

void hone_rt_act_grad(hone_rt_act k, int64_t n, const float *dy, const float *t, float a,
                      float b, float *dx)
{
    switch (k) {
    case HONE_RT_ACT_RELU: relu_grad(n, dy, t, dx); break;
    case HONE_RT_ACT_LEAKY_RELU: ACT_LOOP(v > 0 ? g : a * g); break;
    case HONE_RT_ACT_SIGMOID: ACT_LOOP(g * v * (1.0f - v)); break;
    case HONE_RT_ACT_TANH: ACT_LOOP(g * (1.0f - v * v)); break;
    case HONE_RT_ACT_CLIP: ACT_LOOP(v >= a && v <= b ? g : 0.0f); break;
    case HONE_RT_ACT_HARD_SIGMOID: ACT_LOOP(a * v + b > 0 && a * v + b < 1 ? a * g : 0.0f); break;
    case HONE_RT_ACT_HARD_SWISH: ACT_LOOP(g * hardswish_slope(v)); break;
    case HONE_RT_ACT_ELU: ACT_LOOP(v > 0 ? g : g * a * expf(v)); break;
    case HONE_RT_ACT_SOFTPLUS: ACT_LOOP(g * sigmoidf(v)); break;
    case HONE_RT_ACT_EXP: ACT_LOOP(g * v); break;
    case HONE_RT_ACT_LOG: ACT_LOOP(g / v); break;
    case HONE_RT_ACT_SQRT: ACT_LOOP(g * 0.5f / v); break;
    case HONE_RT_ACT_ABS: ACT_LOOP(v > 0 ? g : v < 0 ? -g : 0.0f); break;
    case HONE_RT_ACT_RECIPROCAL: ACT_LOOP(-g * v * v); break;
    case HONE_RT_ACT_POW: pow_grad(n, dy, t, a, dx); break;
    default: break;
    }
}
