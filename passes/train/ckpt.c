/*
 * Training checkpoints: DIR/checkpoint.hone, written atomically after each
 * epoch by rank 0 and read by every rank on resume.
 *
 * Layout (host byte order; a checkpoint resumes on the machine kind that
 * wrote it):
 *   "HONECKP1"
 *   seed u64, epoch i64, step i64, images i64, train_s f64, n_train i64,
 *   batch i64, optimiser i32, parameters i32, BN layers i32, 0 i32
 *   per parameter: name length u32, name, numel i64, values f32[numel],
 *                  optimiser steps i64, state count i64, state f32[count]
 *   per BN layer:  numel i64 (0 when it has no running statistics),
 *                  mean f32[numel], var f32[numel]
 *   FNV-1a 64 of everything before it, u64
 * The loop's random draws (shuffle, flips) are keyed by seed, epoch and
 * step, so the header is the random-number position as well. A checkpoint
 * is only accepted by a run of the same model (parameter names and sizes),
 * data size, batch, optimiser and seed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist.h"
#include "io.h"

#define MAGIC "HONECKP1"

char *hone_ckpt_path(const char *dir)
{
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    HONE_ASSERT(p);
    snprintf(p, n, "%s/checkpoint.hone", dir);
    return p;
}

/* ===================== writing ===================== */

static void put(FILE *f, const void *p, size_t n)
{
    if (n)
        fwrite(p, 1, n, f);
}

static void put_i64(FILE *f, int64_t v)
{
    put(f, &v, sizeof v);
}

static void put_header(FILE *f, const hone_ckpt_pos *pos, int n_params, int n_bn)
{
    int32_t w[4] = {pos->optim, n_params, n_bn, 0};
    put(f, MAGIC, 8);
    put(f, &pos->seed, sizeof pos->seed);
    put_i64(f, pos->epoch);
    put_i64(f, pos->step);
    put_i64(f, pos->images);
    put(f, &pos->train_s, sizeof pos->train_s);
    put_i64(f, pos->n_train);
    put_i64(f, pos->batch);
    put(f, w, sizeof w);
}

static void put_param(FILE *f, hone_trainer *tr, hone_optim *o, int i)
{
    const char *name = hone_trainer_param_name(tr, i);
    const hone_tensor *p = hone_trainer_param(tr, i);
    uint32_t len = (uint32_t)strlen(name);
    int64_t n, *t;
    const float *s = hone_optim_state(o, i, &n, &t);
    put(f, &len, sizeof len);
    put(f, name, len);
    put_i64(f, p->numel);
    put(f, p->data, sizeof(float) * (size_t)p->numel);
    put_i64(f, *t);
    put_i64(f, n);
    put(f, s, sizeof(float) * (size_t)n);
}

static void put_bn(FILE *f, hone_trainer *tr, int i)
{
    hone_tensor *mean, *var;
    hone_trainer_bn_running(tr, i, &mean, &var);
    bool ok = mean && var && mean->dtype == HONE_DT_FLOAT && var->dtype == HONE_DT_FLOAT &&
              mean->numel == var->numel;
    put_i64(f, ok ? mean->numel : 0);
    if (ok) {
        put(f, mean->data, sizeof(float) * (size_t)mean->numel);
        put(f, var->data, sizeof(float) * (size_t)var->numel);
    }
}

/* The whole checkpoint as one buffer. */
static hone_status serialise(hone_ctx *ctx, hone_trainer *tr, hone_optim *o,
                             const hone_ckpt_pos *pos, char **buf, size_t *len)
{
    FILE *f = open_memstream(buf, len);
    if (!f)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory for a checkpoint");
    int np = hone_trainer_n_params(tr), nb = hone_trainer_n_bn(tr);
    put_header(f, pos, np, nb);
    for (int i = 0; i < np; i++)
        put_param(f, tr, o, i);
    for (int i = 0; i < nb; i++)
        put_bn(f, tr, i);
    if (fflush(f)) {
        fclose(f);
        free(*buf);
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory for a checkpoint");
    }
    uint64_t h = hone_fnv1a64((const uint8_t *)*buf, *len);
    put(f, &h, sizeof h);
    fclose(f);
    return HONE_OK;
}

static hone_status write_ckpt(hone_ctx *ctx, const char *dir, hone_trainer *tr, hone_optim *o,
                              const hone_ckpt_pos *pos)
{
    if (mkdir(dir, 0755) && errno != EEXIST)
        return hone_fail(ctx, HONE_ERR_IO, "%s: cannot create the checkpoint folder: %s", dir,
                         strerror(errno));
    char *buf = NULL, *path = hone_ckpt_path(dir);
    size_t len = 0;
    hone_status st = serialise(ctx, tr, o, pos, &buf, &len);
    if (!st)
        st = hone_write_file_atomic(ctx, path, buf, len);
    free(buf);
    free(path);
    return st;
}

hone_status hone_ckpt_save(hone_ctx *ctx, const char *dir, hone_trainer *tr, hone_optim *o,
                           const hone_ckpt_pos *pos)
{
    hone_status st = hone_dist_rank() == 0 ? write_ckpt(ctx, dir, tr, o, pos) : HONE_OK;
    return hone_dist_agree(ctx, st, "writing the checkpoint", NULL, 0);
}

/* ===================== reading ===================== */

typedef struct cursor {
    hone_ctx *ctx;
    const char *path;
    const uint8_t *p, *end;
    hone_status st;
} cursor;

/* Takes n bytes into dst (may be NULL: skipped); a short file sets an error. */
static bool take(cursor *c, void *dst, size_t n)
{
    if (c->st)
        return false;
    if ((size_t)(c->end - c->p) < n) {
        c->st = hone_fail(c->ctx, HONE_ERR_IO, "%s: truncated checkpoint", c->path);
        return false;
    }
    if (dst && n)
        memcpy(dst, c->p, n);
    c->p += n;
    return true;
}

static int64_t take_i64(cursor *c)
{
    int64_t v = 0;
    take(c, &v, sizeof v);
    return v;
}

static hone_status mismatch(cursor *c, const char *what)
{
    if (!c->st)
        c->st = hone_fail(c->ctx, HONE_ERR_ARG, "%s: the checkpoint belongs to another run (%s "
                          "differ); remove it or give another --checkpoint folder", c->path, what);
    return c->st;
}

static void take_header(cursor *c, hone_ckpt_pos *pos, int32_t *w)
{
    char magic[8];
    if (take(c, magic, 8) && memcmp(magic, MAGIC, 8))
        c->st = hone_fail(c->ctx, HONE_ERR_IO, "%s: not a hone checkpoint", c->path);
    take(c, &pos->seed, sizeof pos->seed);
    pos->epoch = take_i64(c);
    pos->step = take_i64(c);
    pos->images = take_i64(c);
    take(c, &pos->train_s, sizeof pos->train_s);
    pos->n_train = take_i64(c);
    pos->batch = take_i64(c);
    take(c, w, sizeof(int32_t) * 4);
    pos->optim = w[0];
}

/* Values of n floats into dst when the stored count is n. */
static void take_floats(cursor *c, float *dst, int64_t n, const char *what)
{
    if (take_i64(c) != n) {
        mismatch(c, what);
        return;
    }
    take(c, dst, sizeof(float) * (size_t)n);
}

static void take_param(cursor *c, hone_trainer *tr, hone_optim *o, int i)
{
    const char *name = hone_trainer_param_name(tr, i);
    hone_tensor *p = hone_trainer_param(tr, i);
    uint32_t len = 0;
    int64_t n, *t;
    float *s = hone_optim_state(o, i, &n, &t);
    if (!take(c, &len, sizeof len))
        return;
    if (len != strlen(name) || (size_t)(c->end - c->p) < len || memcmp(c->p, name, len)) {
        mismatch(c, "parameter names");
        return;
    }
    take(c, NULL, len);
    take_floats(c, p->data, p->numel, "parameter sizes");
    *t = take_i64(c);
    take_floats(c, s, n, "optimiser states");
}

static void take_bn(cursor *c, hone_trainer *tr, int i)
{
    hone_tensor *mean, *var;
    hone_trainer_bn_running(tr, i, &mean, &var);
    int64_t n = take_i64(c);
    bool ok = mean && var && mean->dtype == HONE_DT_FLOAT && var->dtype == HONE_DT_FLOAT &&
              mean->numel == var->numel;
    if (n != (ok ? mean->numel : 0)) {
        mismatch(c, "BN layers");
        return;
    }
    if (ok && take(c, mean->data, sizeof(float) * (size_t)n))
        take(c, var->data, sizeof(float) * (size_t)n);
}

/* The header against what this run expects. */
static void check_pos(cursor *c, const hone_ckpt_pos *pos, const hone_ckpt_pos *e, int32_t *w,
                      hone_trainer *tr)
{
    if (pos->seed != e->seed)
        mismatch(c, "seeds");
    else if (pos->n_train != e->n_train || pos->batch != e->batch)
        mismatch(c, "training sample counts or batch sizes");
    else if (pos->optim != e->optim)
        mismatch(c, "optimisers");
    else if (w[1] != hone_trainer_n_params(tr) || w[2] != hone_trainer_n_bn(tr))
        mismatch(c, "parameter or BN counts");
}

static hone_status parse(cursor *c, hone_trainer *tr, hone_optim *o, const hone_ckpt_pos *expect,
                         hone_ckpt_pos *pos)
{
    int32_t w[4] = {0};
    size_t len = (size_t)(c->end - c->p);
    uint64_t h;
    if (len < 8 + sizeof h || (memcpy(&h, c->end - sizeof h, sizeof h),
                               h != hone_fnv1a64(c->p, len - sizeof h)))
        return hone_fail(c->ctx, HONE_ERR_IO, "%s: damaged checkpoint (checksum mismatch)",
                         c->path);
    c->end -= sizeof h;
    take_header(c, pos, w);
    if (!c->st)
        check_pos(c, pos, expect, w, tr);
    for (int i = 0; i < hone_trainer_n_params(tr) && !c->st; i++)
        take_param(c, tr, o, i);
    for (int i = 0; i < hone_trainer_n_bn(tr) && !c->st; i++)
        take_bn(c, tr, i);
    if (!c->st && c->p != c->end)
        c->st = hone_fail(c->ctx, HONE_ERR_IO, "%s: trailing bytes in the checkpoint", c->path);
    return c->st;
}

hone_status hone_ckpt_load(hone_ctx *ctx, const char *dir, hone_trainer *tr, hone_optim *o,
                           const hone_ckpt_pos *expect, hone_ckpt_pos *pos, bool *found)
{
    char *path = hone_ckpt_path(dir);
    struct stat sb;
    uint8_t *buf = NULL;
    size_t len = 0;
    hone_status st = HONE_OK;
    *found = stat(path, &sb) == 0;
    if (*found)
        st = hone_read_file(ctx, path, &buf, &len);
    if (*found && !st) {
        cursor c = {ctx, path, buf, buf + len, HONE_OK};
        st = parse(&c, tr, o, expect, pos);
    }
    free(buf);
    free(path);
    return st;
}
