/*
 * Ranks, collectives and gradient averaging for data-parallel training.
 *
 * The module holds one transport table. Without one registered (the default
 * build) there is a single rank and every collective returns at once, so
 * hone_fit's one-process path is untouched. dist_mpi.c registers MPI from a
 * constructor; the transport starts lazily at the first call here, so a
 * command that never asks runs as before.
 *
 * Gradient averaging: each step every rank scales its batch-mean gradients
 * by its share of the global batch (k_rank / K) and the ranks sum them, which
 * gives the mean gradient over the whole global batch, what one process
 * computes on that batch. The gradients are packed into a few contiguous
 * float buckets of at most HONE_DIST_BUCKET_BYTES so the transport sees
 * large messages (one allreduce per bucket), then unpacked into tensors
 * shaped like the parameters.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

static const hone_dist_transport *transport;
static int world_rank, world_size = 1;
static bool started, failed_together;

void hone_dist_register(const hone_dist_transport *t)
{
    transport = t;
}

/* Starts the transport once; a transport that fails to start leaves one rank. */
static void start(void)
{
    if (started)
        return;
    started = true;
    if (transport && transport->start(&world_rank, &world_size)) {
        world_rank = 0;
        world_size = 1;
        transport = NULL;
    }
}

int hone_dist_rank(void)
{
    start();
    return world_rank;
}

int hone_dist_size(void)
{
    start();
    return world_size;
}

bool hone_dist_active(void)
{
    return hone_dist_size() > 1;
}

const char *hone_dist_transport_name(void)
{
    return hone_dist_active() ? transport->name : "single";
}

/* A transport error as a hone error naming the operation. */
static hone_status transport_fail(hone_ctx *ctx, int code, const char *what)
{
    char msg[256] = "";
    transport->error(code, msg, sizeof msg);
    return hone_fail(ctx, HONE_ERR_IO, "rank %d of %d: %s failed: %s (another rank died or the "
                     "connection to it broke)", world_rank, world_size, what, msg);
}

hone_status hone_dist_sum_f64(hone_ctx *ctx, double *v, int64_t n, const char *what)
{
    int rc = hone_dist_active() && n > 0 ? transport->sum_f64(v, n) : 0;
    return rc ? transport_fail(ctx, rc, what) : HONE_OK;
}

hone_status hone_dist_sum_f32(hone_ctx *ctx, float *v, int64_t n, const char *what)
{
    int rc = hone_dist_active() && n > 0 ? transport->sum_f32(v, n) : 0;
    return rc ? transport_fail(ctx, rc, what) : HONE_OK;
}

hone_status hone_dist_bcast(hone_ctx *ctx, void *v, int64_t bytes, const char *what)
{
    int rc = hone_dist_active() && bytes > 0 ? transport->bcast(v, bytes, 0) : 0;
    return rc ? transport_fail(ctx, rc, what) : HONE_OK;
}

/* Slots of the agreement vector: one failure flag per rank, then the extras. */
hone_status hone_dist_agree(hone_ctx *ctx, hone_status local, const char *what,
                            double *extra, int n_extra)
{
    if (!hone_dist_active())
        return local;
    int n = world_size + n_extra;
    double *v = calloc((size_t)n, sizeof *v);
    if (!v)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory");
    v[world_rank] = local ? 1 : 0;
    if (n_extra)
        memcpy(v + world_size, extra, sizeof *v * (size_t)n_extra);
    hone_status st = hone_dist_sum_f64(ctx, v, n, what);
    int failed = -1;
    for (int r = 0; r < world_size && !st && failed < 0; r++)
        failed = v[r] != 0 ? r : -1;
    if (!st && n_extra)
        memcpy(extra, v + world_size, sizeof *v * (size_t)n_extra);
    free(v);
    failed_together = !st && (local || failed >= 0);
    if (st || local)
        return st ? st : local;
    if (failed >= 0)
        return hone_fail(ctx, HONE_ERR_ARG, "rank %d of %d stopped: rank %d failed during %s "
                         "(its error is printed above)", world_rank, world_size, failed, what);
    return HONE_OK;
}

bool hone_dist_failed_together(void)
{
    return failed_together;
}

void hone_dist_fault_point(int64_t step)
{
    const char *f = getenv("HONE_FAULT_RANK_EXIT");
    long r, s;
    if (f && hone_dist_active() && sscanf(f, "%ld:%ld", &r, &s) == 2 && r == world_rank &&
        s == step)
        raise(SIGKILL);
}

/* ===================== gradient buckets ===================== */

typedef struct bucket {
    float *buf;
    int first, end;              /* parameters [first, end) */
    int64_t len;                 /* floats */
} bucket;

struct hone_dist_grads {
    hone_ctx *ctx;
    int n;
    hone_tensor **out;           /* averaged gradients, shaped like the parameters */
    bucket *b;
    int n_b;
    int64_t bytes;
    double seconds;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Groups consecutive parameters into buckets of at most HONE_DIST_BUCKET_BYTES
 * (a larger parameter gets a bucket of its own). */
static hone_status make_buckets(hone_dist_grads *d, int64_t bucket_bytes)
{
    d->b = calloc((size_t)d->n + 1, sizeof *d->b);
    if (!d->b)
        return hone_fail(d->ctx, HONE_ERR_NOMEM, "out of memory");
    int64_t cap = (bucket_bytes > 0 ? bucket_bytes : HONE_DIST_BUCKET_BYTES) /
                  (int64_t)sizeof(float);
    for (int i = 0; i < d->n; i++) {
        bucket *cur = d->n_b ? &d->b[d->n_b - 1] : NULL;
        int64_t k = d->out[i]->numel;
        if (!cur || (cur->len + k > cap && cur->len > 0)) {
            cur = &d->b[d->n_b++];
            cur->first = i;
        }
        cur->end = i + 1;
        cur->len += k;
    }
    for (int i = 0; i < d->n_b; i++) {
        d->b[i].buf = malloc(sizeof(float) * (size_t)(d->b[i].len + 1));
        if (!d->b[i].buf)
            return hone_fail(d->ctx, HONE_ERR_NOMEM, "out of memory for gradient buckets");
        d->bytes += d->b[i].len * (int64_t)sizeof(float);
    }
    return HONE_OK;
}

hone_status hone_dist_grads_new(hone_ctx *ctx, hone_trainer *tr, int64_t bucket_bytes,
                                hone_dist_grads **out)
{
    hone_dist_grads *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        return hone_fail(ctx, HONE_ERR_NOMEM, "out of memory");
    d->ctx = ctx;
    d->n = hone_trainer_n_params(tr);
    d->out = calloc((size_t)d->n + 1, sizeof *d->out);
    hone_status st = d->out ? HONE_OK : hone_fail(ctx, HONE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < d->n && !st; i++) {
        const hone_tensor *p = hone_trainer_param(tr, i);
        st = hone_tensor_new(ctx, HONE_DT_FLOAT, p->rank, p->dims, &d->out[i]);
    }
    if (!st)
        st = make_buckets(d, bucket_bytes);
    if (st) {
        hone_dist_grads_free(d);
        return st;
    }
    *out = d;
    return HONE_OK;
}

void hone_dist_grads_free(hone_dist_grads *d)
{
    if (!d)
        return;
    for (int i = 0; d->out && i < d->n; i++)
        hone_tensor_free(d->out[i]);
    for (int i = 0; d->b && i < d->n_b; i++)
        free(d->b[i].buf);
    free(d->out);
    free(d->b);
    free(d);
}

/* w * grads[first..end) into the bucket (zeros for a missing gradient). */
static void pack(bucket *b, const hone_tensor *const *grads, hone_tensor **out, float w)
{
    float *p = b->buf;
    for (int i = b->first; i < b->end; i++) {
        int64_t k = out[i]->numel;
        const float *g = grads[i] ? grads[i]->data : NULL;
        for (int64_t j = 0; j < k; j++)
            p[j] = g ? w * g[j] : 0.0f;
        p += k;
    }
}

static void unpack(const bucket *b, hone_tensor **out)
{
    const float *p = b->buf;
    for (int i = b->first; i < b->end; i++) {
        memcpy(out[i]->data, p, sizeof(float) * (size_t)out[i]->numel);
        p += out[i]->numel;
    }
}

hone_status hone_dist_grads_reduce(hone_dist_grads *d, const hone_tensor *const *grads, double w,
                                   int64_t step)
{
    char what[64];
    snprintf(what, sizeof what, "the gradient allreduce of step %lld", (long long)step);
    for (int i = 0; i < d->n; i++)
        if (grads[i] && grads[i]->numel != d->out[i]->numel)
            return hone_fail(d->ctx, HONE_ERR_SHAPE, "gradient %d has %lld values for a "
                             "parameter of %lld", i, (long long)grads[i]->numel,
                             (long long)d->out[i]->numel);
    double t0 = now_s();
    hone_status st = HONE_OK;
    for (int i = 0; i < d->n_b && !st; i++) {
        pack(&d->b[i], grads, d->out, (float)w);
        st = hone_dist_sum_f32(d->ctx, d->b[i].buf, d->b[i].len, what);
        if (!st)
            unpack(&d->b[i], d->out);
    }
    d->seconds += now_s() - t0;
    return st;
}

hone_tensor *hone_dist_grads_get(hone_dist_grads *d, int i)
{
    return i >= 0 && i < d->n ? d->out[i] : NULL;
}

int64_t hone_dist_grads_bytes(const hone_dist_grads *d)
{
    return d->bytes;
}

int hone_dist_grads_buckets(const hone_dist_grads *d)
{
    return d->n_b;
}

double hone_dist_grads_seconds(const hone_dist_grads *d)
{
    return d->seconds;
}

/* ===================== trainer state ===================== */

/* Averages one float tensor over the ranks in place. */
static hone_status average(hone_ctx *ctx, hone_tensor *t, const char *what)
{
    float *v = t->data;
    hone_status st = hone_dist_sum_f32(ctx, v, t->numel, what);
    for (int64_t j = 0; !st && j < t->numel; j++)
        v[j] /= (float)world_size;
    return st;
}

hone_status hone_dist_sync_trainer(hone_ctx *ctx, hone_trainer *tr)
{
    if (!hone_dist_active())
        return HONE_OK;
    hone_status st = HONE_OK;
    for (int i = 0; i < hone_trainer_n_bn(tr) && !st; i++) {
        hone_tensor *mean, *var;
        hone_trainer_bn_running(tr, i, &mean, &var);
        if (mean && var && mean->dtype == HONE_DT_FLOAT && var->dtype == HONE_DT_FLOAT &&
            !(st = average(ctx, mean, "the BN statistics allreduce")))
            st = average(ctx, var, "the BN statistics allreduce");
    }
    for (int i = 0; i < hone_trainer_n_params(tr) && !st; i++) {
        hone_tensor *p = hone_trainer_param(tr, i);
        st = hone_dist_bcast(ctx, p->data, (int64_t)hone_tensor_nbytes(p),
                             "the parameter broadcast");
    }
    return st;
}
