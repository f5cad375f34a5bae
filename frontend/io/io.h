/*
 * File and data I/O: the module map.
 *
 * file.c  whole-file reads with limits; atomic writes (temp file + rename).
 * npy.c   NumPy .npy arrays (v1-v3 headers, any numeric dtype, C order).
 * idx.c   IDX files (MNIST family), gzip-compressed or not.
 */
#ifndef HONE_IO_H
#define HONE_IO_H

#include "ir.h"

/* Reads a whole file into a malloc'd buffer (limit: ctx->limits.max_bytes). */
hone_status hone_read_file(hone_ctx *ctx, const char *path, uint8_t **buf, size_t *len);
/* Writes buf to path through a temporary file in the same folder, then renames. */
hone_status hone_write_file_atomic(hone_ctx *ctx, const char *path, const void *buf, size_t len);
/* Folder part of a path ("." when none), malloc'd. */
char *hone_path_dir(const char *path);
/* FNV-1a 64-bit hash of n bytes (checksums of weight blobs and checkpoints). */
uint64_t hone_fnv1a64(const void *p, size_t n);

/* Parses .npy bytes (little-endian, C order, numeric and bool dtypes). */
hone_status hone_npy_parse(hone_ctx *ctx, const uint8_t *buf, size_t len, hone_tensor **out);
hone_status hone_npy_read(hone_ctx *ctx, const char *path, hone_tensor **out);
/* Serialises t as .npy (v1 header) into a malloc'd buffer. */
hone_status hone_npy_encode(hone_ctx *ctx, const hone_tensor *t, uint8_t **buf, size_t *len);
/* Writes t as .npy, atomically. */
hone_status hone_npy_write(hone_ctx *ctx, const hone_tensor *t, const char *path);

/* ===================== idx.c ===================== */

/* Reads an IDX file (big-endian header and data, as MNIST ships), plain or
 * gzip-compressed (detected from the content, not the name). The header is
 * checked against the file size before anything is allocated. */
hone_status hone_idx_read(hone_ctx *ctx, const char *path, hone_tensor **out);

#endif
