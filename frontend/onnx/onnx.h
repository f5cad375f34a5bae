/*
 * ONNX <-> IR: the module map.
 *
 * import.c  ModelProto -> hone_graph (opsets, typed inputs with symbolic dims,
 *           initializers, attributes, value_info, local functions inlined).
 * export.c  hone_graph -> ModelProto, written atomically.
 * tensor.c  TensorProto <-> hone_tensor (raw and typed fields, external data),
 *           and standalone .pb tensor files.
 */
#ifndef HONE_ONNX_H
#define HONE_ONNX_H

#include "ir.h"
#include "io.h"
#include "onnx.pb-c.h"

/* Loads, verifies and infers a model file. Errors name the file. */
hone_status hone_onnx_load(hone_ctx *ctx, const char *path, hone_graph **out);
/* Same from memory; base_dir resolves external data (NULL: none allowed). */
hone_status hone_onnx_load_buffer(hone_ctx *ctx, const uint8_t *buf, size_t len,
                                  const char *base_dir, hone_graph **out);
/* Writes g as an ONNX model (to a temporary file, renamed into place). */
hone_status hone_onnx_save(hone_ctx *ctx, const hone_graph *g, const char *path);
/* Serialises g into a malloc'd buffer. */
hone_status hone_onnx_serialize(hone_ctx *ctx, const hone_graph *g, uint8_t **buf, size_t *len);
/* Export flags: no value_info for intermediates (readers infer their shapes). */
enum { HONE_ONNX_NO_VALUE_INFO = 1 };
hone_status hone_onnx_save_flags(hone_ctx *ctx, const hone_graph *g, const char *path,
                                 unsigned flags);
hone_status hone_onnx_serialize_flags(hone_ctx *ctx, const hone_graph *g, unsigned flags,
                                      uint8_t **buf, size_t *len);

/* TensorProto -> tensor; base_dir for external data (NULL: external data refused). */
hone_status hone_onnx_tensor_decode(hone_ctx *ctx, const Onnx__TensorProto *p,
                                    const char *base_dir, hone_tensor **out);
/* tensor -> TensorProto (raw_data); free with hone_onnx_tensor_proto_free. */
Onnx__TensorProto *hone_onnx_tensor_encode(const hone_tensor *t, const char *name);
void hone_onnx_tensor_proto_free(Onnx__TensorProto *p);
/* Reads a serialized TensorProto file (.pb). */
hone_status hone_onnx_read_tensor_pb(hone_ctx *ctx, const char *path, hone_tensor **out);
/* Writes a serialized TensorProto file (.pb), atomically. */
hone_status hone_onnx_write_tensor_pb(hone_ctx *ctx, const hone_tensor *t, const char *name,
                                      const char *path);

#endif
