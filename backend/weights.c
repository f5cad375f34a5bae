/*
 * External weights (hone compile --weights=FILE): the constants a compiled
 * model reads at run time live in a separate blob instead of the code.
 *
 * Layout: every run-time constant (plan location BK_LOC_CONST with known
 * contents, in value-id order) at a 64-byte aligned offset of the payload.
 * The file is a 64-byte header, then the payload:
 *   bytes 0-7   "HONEWTS1"
 *   bytes 8-15  FNV-1a 64 hash of the payload (little-endian)
 *   bytes 16-23 payload size in bytes (little-endian)
 *   bytes 24-63 zero
 * The generated PREFIX_set_weights(blob, size) checks size, magic, hash field
 * (against the hash compiled in) and alignment, then keeps the pointer; the
 * data are not copied, so the caller keeps the blob alive and 64-byte aligned
 * (e.g. mmap of the file, or aligned_alloc + fread).
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "io.h"

size_t bk_weights_layout(const bk_model *m, const bk_plan *p, size_t *off)
{
    size_t total = 0;
    for (int v = 0; v < m->g->n_values; v++) {
        off[v] = SIZE_MAX;
        const hone_tensor *t = bk_known(m, m->g->values[v]);
        if (p->loc[v].kind != BK_LOC_CONST || p->loc[v].root != v || !t)
            continue;
        off[v] = total;
        total += (hone_tensor_nbytes(t) + BK_ALIGN - 1) / BK_ALIGN * BK_ALIGN;
    }
    return total;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t *bk_weights_blob(const bk_model *m, const bk_plan *p, size_t *size, uint64_t *hash)
{
    size_t *off = malloc(sizeof *off * ((size_t)m->g->n_values + 1));
    HONE_ASSERT(off);
    size_t payload = bk_weights_layout(m, p, off);
    uint8_t *blob = calloc(BK_WEIGHTS_HEADER + payload + 1, 1);
    HONE_ASSERT(blob);
    for (int v = 0; v < m->g->n_values; v++)
        if (off[v] != SIZE_MAX) {
            const hone_tensor *t = bk_known(m, m->g->values[v]);
            memcpy(blob + BK_WEIGHTS_HEADER + off[v], t->data, hone_tensor_nbytes(t));
        }
    free(off);
    memcpy(blob, "HONEWTS1", 8);
    *hash = hone_fnv1a64(blob + BK_WEIGHTS_HEADER, payload);
    put_le64(blob + 8, *hash);
    put_le64(blob + 16, payload);
    *size = BK_WEIGHTS_HEADER + payload;
    return blob;
}

hone_status bk_weights_write(hone_ctx *ctx, const bk_model *m, const bk_plan *p, const char *path)
{
    size_t size;
    uint64_t hash;
    uint8_t *blob = bk_weights_blob(m, p, &size, &hash);
    hone_status st = hone_write_file_atomic(ctx, path, blob, size);
    free(blob);
    return st;
}
