/*
 * Whole-file reads with a size limit, and atomic writes: data goes to a
 * temporary file in the destination folder, is flushed to disk, and only then
 * renamed over the destination, so an interrupted run never leaves a
 * half-written output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

hone_status hone_read_file(hone_ctx *ctx, const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return hone_fail(ctx, HONE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return hone_fail(ctx, HONE_ERR_IO, "%s: not a regular file", path);
    }
    if ((int64_t)sb.st_size > ctx->limits.max_bytes) {
        fclose(f);
        return hone_fail(ctx, HONE_ERR_LIMIT, "%s: file of %lld bytes exceeds the limit", path,
                         (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return hone_fail(ctx, HONE_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return hone_fail(ctx, HONE_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return HONE_OK;
}

char *hone_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

uint64_t hone_fnv1a64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

hone_status hone_write_file_atomic(hone_ctx *ctx, const char *path, const void *buf, size_t len)
{
    char *dir = hone_path_dir(path);
    size_t n = strlen(dir) + 32;
    char *tmp = malloc(n);
    HONE_ASSERT(dir && tmp);
    snprintf(tmp, n, "%s/.hone-tmp-XXXXXX", dir);
    free(dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hone_status st = hone_fail(ctx, HONE_ERR_IO, "%s: cannot create a temporary file: %s",
                                   path, strerror(errno));
        free(tmp);
        return st;
    }
    /* Fault injection for tests: HONE_FAULT_WRITE=1 makes every atomic write
     * stop halfway with ENOSPC, as a full disk would. */
    const char *fault = getenv("HONE_FAULT_WRITE");
    size_t limit = fault && *fault == '1' ? len / 2 : len;
    const uint8_t *p = buf;
    size_t left = len;
    while (left > len - limit) {
        ssize_t w = write(fd, p, left - (len - limit));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    if (left && limit < len)
        errno = ENOSPC;
    int bad = left != 0 || fsync(fd) != 0;
    int err = errno;
    bad |= close(fd) != 0;
    if (!bad)
        chmod(tmp, 0644);
    if (bad || rename(tmp, path) != 0) {
        if (!bad)
            err = errno;
        unlink(tmp);
        free(tmp);
        return hone_fail(ctx, HONE_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    free(tmp);
    return HONE_OK;
}
