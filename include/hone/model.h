/*
 * The stable ABI of a hone-compiled model, for harnesses that load models
 * they were not built against (benchmarks, plugins). Every compiled model
 * PREFIX exports, besides its typed PREFIX_run from the generated header:
 *
 *   const hone_model_info *PREFIX_info(void);
 *
 * The compiled code never allocates: the caller hands in a workspace of
 * info->workspace_size bytes (16-byte aligned at least; 64 recommended),
 * one per concurrent caller. No global state is written.
 */
#ifndef HONE_MODEL_H
#define HONE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define HONE_MODEL_ABI_VERSION 1

typedef struct hone_tensor_desc {
    const char *name;      /* the ONNX tensor name */
    const char *c_name;    /* the sanitised C identifier used in the header's structs */
    int dtype;             /* hone_dtype / ONNX TensorProto.DataType */
    int rank;
    const int64_t *dims;
} hone_tensor_desc;

typedef struct hone_model_info {
    int abi_version;       /* HONE_MODEL_ABI_VERSION */
    const char *name;      /* PREFIX */
    size_t workspace_size; /* bytes */
    int n_inputs, n_outputs;
    const hone_tensor_desc *inputs, *outputs;
    /* Runs the model on buffers given in graph order; 0 on success. */
    int (*run)(const void *const *inputs, void *const *outputs, void *workspace);
} hone_model_info;

#endif
