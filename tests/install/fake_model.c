/*
 * A hand-written stand-in for a hone-compiled model, used until the LLVM
 * backend lands: it exports exactly the stable ABI of include/hone/model.h
 * for PREFIX "fake", so harnesses and the install test can be exercised.
 *
 *   fake: a f32[1,10], b f32[1,10] -> y f32[1,10] = a + b
 *
 * Like compiled code it never allocates and calls the runtime: a and b are
 * stacked into the caller's workspace as [1, 2, 10] and summed over the
 * middle axis by hone_rt_sum_f32, so linking it needs libhone_rt. Built as a
 * shared module it plays `hone compile -o fake.so`; as an object file it
 * plays `hone compile --emit=obj`.
 */
#include <string.h>

#include <hone/model.h>
#include <hone/runtime/hone_rt.h>

#define FAKE_N 10

static const int64_t fake_dims[2] = {1, FAKE_N};

static const hone_tensor_desc fake_inputs[2] = {
    {"a", "a", 1, 2, fake_dims},
    {"b", "b", 1, 2, fake_dims},
};
static const hone_tensor_desc fake_outputs[1] = {
    {"y", "y", 1, 2, fake_dims},
};

/* y = a + b through the workspace; 1 when a pointer is missing. */
int fake_run_v(const void *const *inputs, void *const *outputs, void *workspace)
{
    if (!inputs || !outputs || !workspace || !inputs[0] || !inputs[1] || !outputs[0])
        return 1;
    float *stack = workspace;
    memcpy(stack, inputs[0], FAKE_N * sizeof(float));
    memcpy(stack + FAKE_N, inputs[1], FAKE_N * sizeof(float));
    hone_rt_sum_f32(stack, outputs[0], 1, 2, FAKE_N, 1.0);
    return 0;
}

static const hone_model_info fake_model_info = {
    HONE_MODEL_ABI_VERSION, "fake", 2 * FAKE_N * sizeof(float), 2, 1,
    fake_inputs, fake_outputs, fake_run_v,
};

const hone_model_info *fake_info(void)
{
    return &fake_model_info;
}
