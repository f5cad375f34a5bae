/*
 * Element types: sizes, names, classification and the 16-bit float
 * conversions (IEEE half and bfloat16, round-to-nearest-even).
 */
#include <math.h>
#include <string.h>

#include "ir.h"

static const struct {
    size_t size;
    const char *name, *onnx;
} dtypes[HONE_DT_COUNT] = {
    [HONE_DT_UNDEF] = {0, "?", "UNDEFINED"},
    [HONE_DT_FLOAT] = {4, "f32", "FLOAT"},
    [HONE_DT_UINT8] = {1, "u8", "UINT8"},
    [HONE_DT_INT8] = {1, "i8", "INT8"},
    [HONE_DT_UINT16] = {2, "u16", "UINT16"},
    [HONE_DT_INT16] = {2, "i16", "INT16"},
    [HONE_DT_INT32] = {4, "i32", "INT32"},
    [HONE_DT_INT64] = {8, "i64", "INT64"},
    [HONE_DT_STRING] = {sizeof(char *), "str", "STRING"},
    [HONE_DT_BOOL] = {1, "bool", "BOOL"},
    [HONE_DT_FLOAT16] = {2, "f16", "FLOAT16"},
    [HONE_DT_DOUBLE] = {8, "f64", "DOUBLE"},
    [HONE_DT_UINT32] = {4, "u32", "UINT32"},
    [HONE_DT_UINT64] = {8, "u64", "UINT64"},
    [HONE_DT_COMPLEX64] = {8, "c64", "COMPLEX64"},
    [HONE_DT_COMPLEX128] = {16, "c128", "COMPLEX128"},
    [HONE_DT_BFLOAT16] = {2, "bf16", "BFLOAT16"},
};

size_t hone_dtype_size(hone_dtype dt)
{
    return (unsigned)dt < HONE_DT_COUNT ? dtypes[dt].size : 0;
}

const char *hone_dtype_name(hone_dtype dt)
{
    return (unsigned)dt < HONE_DT_COUNT ? dtypes[dt].name : "?";
}

const char *hone_dtype_onnx_name(hone_dtype dt)
{
    return (unsigned)dt < HONE_DT_COUNT ? dtypes[dt].onnx : "UNDEFINED";
}

bool hone_dtype_is_float(hone_dtype dt)
{
    return dt == HONE_DT_FLOAT || dt == HONE_DT_DOUBLE || dt == HONE_DT_FLOAT16 ||
           dt == HONE_DT_BFLOAT16;
}

bool hone_dtype_is_int(hone_dtype dt)
{
    switch (dt) {
    case HONE_DT_UINT8: case HONE_DT_INT8: case HONE_DT_UINT16: case HONE_DT_INT16:
    case HONE_DT_INT32: case HONE_DT_INT64: case HONE_DT_UINT32: case HONE_DT_UINT64:
        return true;
    default:
        return false;
    }
}

bool hone_dtype_is_signed(hone_dtype dt)
{
    return dt == HONE_DT_INT8 || dt == HONE_DT_INT16 || dt == HONE_DT_INT32 ||
           dt == HONE_DT_INT64 || hone_dtype_is_float(dt);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float hone_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    if (exp == 31)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* IEEE half with round-to-nearest-even, overflow to inf, NaN kept NaN. */
uint16_t hone_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
    float a = fabsf(f);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00);
    if (a >= 65520.0f)
        return (uint16_t)(sign | 0x7c00);
    if (a < 6.103515625e-05f) { /* subnormal half: quantise to 2^-24 steps */
        float q = nearbyintf(a * 16777216.0f);
        return (uint16_t)(sign | (uint32_t)q);
    }
    uint32_t au = u & 0x7fffffff;
    uint32_t exp = (au >> 23) - 112, man = au & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float hone_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t hone_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
