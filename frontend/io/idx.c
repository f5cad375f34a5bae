/*
 * IDX files, the format of MNIST and Fashion-MNIST: two zero bytes, a type
 * code, a rank, then one big-endian uint32 per dimension and the big-endian
 * data in C order. Debian ships them gzip-compressed; zlib's gz* reader
 * passes plain files through unchanged, so one streaming path reads both.
 *
 * Nothing is allocated until the header has been validated and the file size
 * agrees with it: for a plain file its length, for a gzip file the ISIZE
 * trailer (uncompressed length mod 2^32) and deflate's maximum ratio. After
 * the data is read, one more byte must not exist.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io.h"

#define DEFLATE_MAX_RATIO 1032u /* deflate never expands data more than this */
#define READ_CHUNK (1u << 30)   /* gzread takes an unsigned length */

typedef struct idx_file {
    const char *path;
    gzFile gz;
    bool gzipped;
    uint64_t disk_size;  /* bytes on disk */
    uint32_t isize;      /* gzip trailer: uncompressed size mod 2^32 */
} idx_file;

static hone_dtype idx_dtype(uint8_t code)
{
    switch (code) {
    case 0x08: return HONE_DT_UINT8;
    case 0x09: return HONE_DT_INT8;
    case 0x0B: return HONE_DT_INT16;
    case 0x0C: return HONE_DT_INT32;
    case 0x0D: return HONE_DT_FLOAT;
    case 0x0E: return HONE_DT_DOUBLE;
    default: return HONE_DT_UNDEF;
    }
}

/* Size on disk, and for gzip files the ISIZE trailer. */
static hone_status probe(hone_ctx *ctx, idx_file *f)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp)
        return hone_fail(ctx, HONE_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat sb;
    uint8_t magic[2] = {0}, tail[4] = {0};
    bool ok = !fstat(fileno(fp), &sb) && S_ISREG(sb.st_mode);
    if (ok) {
        f->disk_size = (uint64_t)sb.st_size;
        f->gzipped = fread(magic, 1, 2, fp) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }
    if (ok && f->gzipped)
        ok = f->disk_size >= 18 && !fseek(fp, -4, SEEK_END) && fread(tail, 1, 4, fp) == 4;
    fclose(fp);
    if (!ok)
        return hone_fail(ctx, f->gzipped ? HONE_ERR_PARSE : HONE_ERR_IO,
                         "%s: %s", f->path, f->gzipped ? "truncated gzip file" : "not a regular file");
    f->isize = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
               (uint32_t)tail[3] << 24;
    return HONE_OK;
}

/* Reads exactly n bytes; a short read is a truncated file. */
static hone_status read_exact(hone_ctx *ctx, idx_file *f, void *dst, uint64_t n, const char *what)
{
    uint8_t *p = dst;
    uint64_t got = 0;
    while (got < n) {
        unsigned want = n - got < READ_CHUNK ? (unsigned)(n - got) : READ_CHUNK;
        int r = gzread(f->gz, p + got, want);
        if (r < 0) {
            int err;
            const char *msg = gzerror(f->gz, &err);
            return hone_fail(ctx, HONE_ERR_PARSE, "%s: %s: %s", f->path, what, msg);
        }
        if (r == 0)
            return hone_fail(ctx, HONE_ERR_PARSE, "%s: truncated %s (%llu of %llu bytes)", f->path,
                             what, (unsigned long long)got, (unsigned long long)n);
        got += (unsigned)r;
    }
    return HONE_OK;
}

/* Magic, type code, rank and dims; returns the header length in *hlen. */
static hone_status read_header(hone_ctx *ctx, idx_file *f, hone_dtype *dt, int *rank,
                               int64_t *dims, uint64_t *hlen)
{
    uint8_t m[4], d[4];
    hone_status st = read_exact(ctx, f, m, 4, "header");
    if (st)
        return st;
    if (m[0] || m[1])
        return hone_fail(ctx, HONE_ERR_PARSE, "%s: not an IDX file (bad magic %02x %02x)", f->path,
                         m[0], m[1]);
    *dt = idx_dtype(m[2]);
    if (*dt == HONE_DT_UNDEF)
        return hone_fail(ctx, HONE_ERR_PARSE, "%s: unknown IDX type code 0x%02x", f->path, m[2]);
    if (m[3] < 1 || m[3] > HONE_MAX_RANK)
        return hone_fail(ctx, HONE_ERR_LIMIT, "%s: IDX rank %d is outside [1, %d]", f->path, m[3],
                         HONE_MAX_RANK);
    *rank = m[3];
    for (int i = 0; i < *rank; i++) {
        if ((st = read_exact(ctx, f, d, 4, "header")))
            return st;
        dims[i] = (int64_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
    }
    *hlen = 4 + 4 * (uint64_t)*rank;
    return HONE_OK;
}

/* The file's size must agree with header + data before any allocation. */
static hone_status check_size(hone_ctx *ctx, const idx_file *f, uint64_t hlen, uint64_t need)
{
    uint64_t total = hlen + need;
    if (!f->gzipped) {
        if (f->disk_size != total)
            return hone_fail(ctx, HONE_ERR_PARSE, "%s: the header implies %llu bytes, the file has %llu",
                             f->path, (unsigned long long)total, (unsigned long long)f->disk_size);
        return HONE_OK;
    }
    if (f->isize != (uint32_t)total || total / DEFLATE_MAX_RATIO > f->disk_size)
        return hone_fail(ctx, HONE_ERR_PARSE,
                         "%s: the header implies %llu bytes, the gzip stream holds %u (mod 2^32) "
                         "in %llu compressed bytes",
                         f->path, (unsigned long long)total, f->isize,
                         (unsigned long long)f->disk_size);
    return HONE_OK;
}

/* IDX data is big-endian; swap each element on little-endian hosts. */
static void to_host_order(hone_tensor *t)
{
    const uint16_t one = 1;
    size_t es = hone_dtype_size(t->dtype);
    if (es == 1 || *(const uint8_t *)&one == 0)
        return;
    uint8_t *p = t->data;
    for (int64_t i = 0; i < t->numel; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t x = p[a];
            p[a] = p[b];
            p[b] = x;
        }
}

/* Header, size check, payload, and nothing after it. */
static hone_status read_idx(hone_ctx *ctx, idx_file *f, hone_tensor **out)
{
    hone_dtype dt = HONE_DT_UNDEF;
    int rank = 0;
    int64_t dims[HONE_MAX_RANK], numel = 0;
    uint64_t hlen = 0;
    hone_status st = read_header(ctx, f, &dt, &rank, dims, &hlen);
    if (!st && (st = hone_shape_numel(ctx, rank, dims, &numel)))
        hone_fail_wrap(ctx, "%s", f->path);
    if (!st)
        st = check_size(ctx, f, hlen, (uint64_t)numel * hone_dtype_size(dt));
    hone_tensor *t = NULL;
    if (!st && (st = hone_tensor_new(ctx, dt, rank, dims, &t)))
        hone_fail_wrap(ctx, "%s", f->path);
    if (!st)
        st = read_exact(ctx, f, t->data, hone_tensor_nbytes(t), "data");
    uint8_t extra;
    if (!st && gzread(f->gz, &extra, 1) != 0)
        st = hone_fail(ctx, HONE_ERR_PARSE, "%s: unexpected bytes after the data", f->path);
    if (st) {
        hone_tensor_free(t);
        return st;
    }
    to_host_order(t);
    *out = t;
    return HONE_OK;
}

hone_status hone_idx_read(hone_ctx *ctx, const char *path, hone_tensor **out)
{
    idx_file f = {.path = path};
    hone_status st = probe(ctx, &f);
    if (st)
        return st;
    f.gz = gzopen(path, "rb");
    if (!f.gz)
        return hone_fail(ctx, HONE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(f.gz, 1u << 17);
    st = read_idx(ctx, &f, out);
    gzclose(f.gz);
    return st;
}
