/*
 * hone public API.
 *
 * hone is an ONNX graph-transformation compiler. This header is the stable C
 * surface shared by the library, the `hone` tool and embedders: status codes,
 * data types and the export macro. Everything behind it lives in internal
 * module headers (frontend/ir/ir.h and friends).
 */
#ifndef HONE_HONE_H
#define HONE_HONE_H

#include <stddef.h>
#include <stdint.h>

#if defined(HONE_BUILDING) && defined(__GNUC__)
#define HONE_API __attribute__((visibility("default")))
#else
#define HONE_API
#endif

#define HONE_VERSION_MAJOR 0
#define HONE_VERSION_MINOR 1
#define HONE_VERSION_PATCH 0

/* Every fallible function returns one of these; the message lives in the context. */
typedef enum hone_status {
    HONE_OK = 0,
    HONE_ERR_IO,          /* file cannot be opened, read or written */
    HONE_ERR_PARSE,       /* bytes are not a valid ONNX / npy / IDX / pb file */
    HONE_ERR_INVALID,     /* structurally invalid model (cycle, missing input...) */
    HONE_ERR_UNSUPPORTED, /* valid ONNX that hone does not implement */
    HONE_ERR_SHAPE,       /* shapes or types do not fit the op */
    HONE_ERR_LIMIT,       /* a resource limit was exceeded */
    HONE_ERR_NOMEM,       /* allocation failed */
    HONE_ERR_ARG,         /* bad argument or flag from the caller */
    HONE_ERR_INTERNAL,    /* a bug in hone */
    HONE_STATUS_COUNT
} hone_status;

/* Element types; the numeric values are ONNX's TensorProto.DataType. */
typedef enum hone_dtype {
    HONE_DT_UNDEF = 0,
    HONE_DT_FLOAT = 1,
    HONE_DT_UINT8 = 2,
    HONE_DT_INT8 = 3,
    HONE_DT_UINT16 = 4,
    HONE_DT_INT16 = 5,
    HONE_DT_INT32 = 6,
    HONE_DT_INT64 = 7,
    HONE_DT_STRING = 8,
    HONE_DT_BOOL = 9,
    HONE_DT_FLOAT16 = 10,
    HONE_DT_DOUBLE = 11,
    HONE_DT_UINT32 = 12,
    HONE_DT_UINT64 = 13,
    HONE_DT_COMPLEX64 = 14,
    HONE_DT_COMPLEX128 = 15,
    HONE_DT_BFLOAT16 = 16,
    HONE_DT_COUNT
} hone_dtype;

HONE_API const char *hone_status_name(hone_status s);
HONE_API const char *hone_version_string(void);

#endif
