/*
 * hone training engine, data-parallel slice: the module map.
 *
 * Training runs data-parallel when hone is built with an MPI transport and
 * started by mpirun: every rank runs the same command on the same files, and
 * hone_fit / hone_bn_recalibrate (loop.c, bnstat.c) split each global batch
 * between the ranks, average the gradients and statistics, and keep the
 * ranks' weights identical. Everything else in hone runs unchanged on every
 * rank (passes are deterministic, so every rank reaches the same training
 * calls in the same order); the command-line tool lets rank 0 alone write
 * files and progress.
 *
 *   dist.c      ranks and collectives behind a small transport table. The
 *               default is one process: rank 0 of 1, every collective a
 *               no-op. dist_mpi.c (built with -DHONE_MPI=ON, and into the
 *               test-only hone_mpi) registers MPI_COMM_WORLD, duplicated
 *               with MPI_ERRORS_RETURN, so a dead rank or a broken
 *               connection comes back as an error naming the operation.
 *               Gradient averaging packs the gradients into a few large
 *               buckets (HONE_DIST_BUCKET_BYTES) and sums each with one
 *               allreduce.
 *   ckpt.c      training checkpoints: parameters, BN running statistics,
 *               optimiser state and the loop position (epoch, step; the
 *               loop's random draws are keyed by seed, epoch and step, so
 *               this is the random-number position too), written atomically
 *               by rank 0 and read back by every rank on --resume.
 *
 * Every function below except rank/size/active is collective: all ranks call
 * it in the same order. Failures name the operation and, for a transport
 * error, say that a rank died or a connection broke.
 */
#ifndef HONE_TRAIN_DIST_H
#define HONE_TRAIN_DIST_H

#include "loop.h"
#include "train.h"

/* ---------- dist.c ---------- */

/* Gradient buckets: at most this many bytes per allreduce. */
#define HONE_DIST_BUCKET_BYTES ((int64_t)16 << 20)

/* A transport: what dist_mpi.c provides. Calls return 0 or a transport error
 * code that `error` turns into text. */
typedef struct hone_dist_transport {
    const char *name;
    int (*start)(int *rank, int *size);   /* 0 and the world, or an error */
    int (*sum_f64)(double *v, int64_t n);
    int (*sum_f32)(float *v, int64_t n);
    int (*bcast)(void *v, int64_t bytes, int root);
    void (*error)(int code, char *buf, size_t n);
} hone_dist_transport;

/* Installs a transport; it starts at the first hone_dist_* call. */
void hone_dist_register(const hone_dist_transport *t);

int hone_dist_rank(void);
int hone_dist_size(void);
/* More than one rank. */
bool hone_dist_active(void);
/* The name of the transport in use ("single" without one). */
const char *hone_dist_transport_name(void);

/* Sums n values over the ranks in place; `what` names the operation in errors. */
hone_status hone_dist_sum_f64(hone_ctx *ctx, double *v, int64_t n, const char *what);
hone_status hone_dist_sum_f32(hone_ctx *ctx, float *v, int64_t n, const char *what);
/* Copies rank 0's bytes to every rank. */
hone_status hone_dist_bcast(hone_ctx *ctx, void *v, int64_t bytes, const char *what);
/* Agreement on an outcome: every rank passes its own status; when any rank
 * failed every rank returns an error: the failing ranks keep their message,
 * the others say which rank failed. Sums `extra` (n_extra doubles) on the way. */
hone_status hone_dist_agree(hone_ctx *ctx, hone_status local, const char *what,
                            double *extra, int n_extra);
/* Whether a failure was agreed by every rank (hone_dist_agree): the ranks
 * then end together instead of one aborting the job. */
bool hone_dist_failed_together(void);
/* Test hook: HONE_FAULT_RANK_EXIT=R:S kills rank R with SIGKILL at step S,
 * as a crashed machine would. */
void hone_dist_fault_point(int64_t step);

/* Gradient averaging over the ranks, one buffer set per trainer. */
typedef struct hone_dist_grads hone_dist_grads;

/* bucket_bytes: most bytes per allreduce (0: HONE_DIST_BUCKET_BYTES). */
hone_status hone_dist_grads_new(hone_ctx *ctx, hone_trainer *tr, int64_t bucket_bytes,
                                hone_dist_grads **out);
void hone_dist_grads_free(hone_dist_grads *d);
/* out[i] = sum over ranks of w * grads[i] (grads[i] NULL counts as zero),
 * into tensors the object owns: hone_dist_grads_get. */
hone_status hone_dist_grads_reduce(hone_dist_grads *d, const hone_tensor *const *grads, double w,
                                   int64_t step);
hone_tensor *hone_dist_grads_get(hone_dist_grads *d, int i);
/* Bytes one rank sends into the allreduces per step, and seconds spent in them. */
int64_t hone_dist_grads_bytes(const hone_dist_grads *d);
/* Allreduce calls per step (buckets). */
int hone_dist_grads_buckets(const hone_dist_grads *d);
double hone_dist_grads_seconds(const hone_dist_grads *d);

/* Makes the trainer's state the same on every rank: BN running statistics
 * become their average over ranks (exact: the per-step blend is linear, so
 * averaging once equals averaging every step), parameters rank 0's. */
hone_status hone_dist_sync_trainer(hone_ctx *ctx, hone_trainer *tr);

/* ---------- ckpt.c ---------- */

/* Where a run stands: what a checkpoint records besides tensors. */
typedef struct hone_ckpt_pos {
    uint64_t seed;
    int64_t epoch;        /* epochs completed */
    int64_t step;         /* optimiser steps taken */
    int64_t images;       /* samples trained on (all ranks) */
    double train_s;       /* training seconds so far */
    int64_t n_train, batch; /* must match on resume */
    int32_t optim;        /* hone_optim_kind */
} hone_ckpt_pos;

/* DIR/checkpoint.hone. */
char *hone_ckpt_path(const char *dir);
/* Rank 0 writes the checkpoint atomically (creating dir); every rank returns
 * the same outcome. */
hone_status hone_ckpt_save(hone_ctx *ctx, const char *dir, hone_trainer *tr, hone_optim *o,
                           const hone_ckpt_pos *pos);
/* Loads dir's checkpoint into the trainer and optimiser when there is one
 * (*found false otherwise: a fresh start); fails when it belongs to another
 * model, data size, batch, optimiser or seed than `expect`. */
hone_status hone_ckpt_load(hone_ctx *ctx, const char *dir, hone_trainer *tr, hone_optim *o,
                           const hone_ckpt_pos *expect, hone_ckpt_pos *pos, bool *found);

#endif
