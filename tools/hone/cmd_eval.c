/*
 * hone eval MODEL.onnx --data FILE (--labels FILE | --targets FILE) ...:
 * evaluates a single-input model on a dataset in the reference interpreter
 * and prints the metric as the last stdout line ("top1 0.9317",
 * "psnr 25.196"). Samples are normalised and reshaped to the model input
 * (frontend/io/dataset.c), run in batches of --batch when the model's batch
 * dimension is symbolic, or in batches of its fixed size (the last one zero
 * padded), and scored by frontend/io/metric.c. Progress goes to stderr, and
 * only when stderr is a terminal.
 *
 * Shifting inference (--shift-clips K, for video models that take fewer
 * frames than a clip holds): a model input [N, Tm, ...] and clips of Td >= Tm
 * frames; the model runs on K windows of Tm consecutive frames at offsets
 * spread evenly over [0, Td - Tm] (the centred one when K = 1) and the clip's
 * logits are their mean.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "interp.h"
#include "onnx.h"

void help_eval(FILE *f)
{
    fprintf(f,
            "usage: hone eval MODEL.onnx --data FILE (--labels FILE | --targets FILE)\n"
            "                 [--metric top1|psnr] [--scale S] [--mean M] [--std S]\n"
            "                 [--target-scale S] [--limit N] [--batch B] [--shift-clips K]\n\n"
            "Runs MODEL on every sample of FILE (.npy, IDX .gz/-ubyte, or .pb; first dimension =\n"
            "samples) and prints the metric as the last line of stdout.\n"
            "  --scale, --mean, --std  input normalisation (x*scale - mean)/std (default 1, 0, 1)\n"
            "  --metric top1           argmax of the output vs integer labels (default with --labels)\n"
            "  --metric psnr           mean over images of 10*log10(1/MSE), output clamped to [0,1],\n"
            "                          targets times --target-scale (default 1/255 for uint8\n"
            "                          targets, else 1) (default with --targets)\n"
            "  --limit N               only the first N samples\n"
            "  --batch B               batch size for a symbolic batch dimension (default 64)\n"
            "  --shift-clips K         video models [N,Tm,...] on clips of Td >= Tm frames: mean\n"
            "                          logits over K windows of Tm frames at offsets spread over\n"
            "                          [0, Td-Tm] (top1 only)\n");
}

typedef enum { METRIC_NONE, METRIC_TOP1, METRIC_PSNR } metric_kind;

typedef struct eval_args {
    const char *model, *data, *labels, *targets;
    metric_kind metric;
    hone_norm norm;
    double target_scale;  /* < 0: by target dtype */
    int64_t limit, batch;
    int64_t shift;        /* --shift-clips windows; 0: off */
} eval_args;

/* Parses a whole-string number; false on junk. */
static bool parse_f64(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end;
}

static bool parse_i64(const char *s, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    *v = x;
    return end != s && !*end && x > 0;
}

static int parse_metric(const char *v, eval_args *a)
{
    if (!strcmp(v, "top1"))
        a->metric = METRIC_TOP1;
    else if (!strcmp(v, "psnr"))
        a->metric = METRIC_PSNR;
    else
        return cli_usage("eval", "unknown metric '%s' (top1 or psnr)", v);
    return EXIT_OK;
}

/* One numeric option: 1 when argv[*i] was one, 0 when not, -1 on a bad value. */
static int numeric_opt(int argc, char **argv, int *i, eval_args *a)
{
    static const char *const names[] = {"--scale", "--mean", "--std", "--target-scale",
                                        "--limit", "--batch"};
    double *dst[] = {&a->norm.scale, &a->norm.mean, &a->norm.std, &a->target_scale};
    for (int k = 0; k < 6; k++) {
        const char *v = cli_opt(argc, argv, i, names[k]);
        if (!v)
            continue;
        bool ok = k < 4 ? parse_f64(v, dst[k]) : parse_i64(v, k == 4 ? &a->limit : &a->batch);
        if (!ok)
            cli_usage("eval", "bad value '%s' for %s", v, names[k]);
        return ok ? 1 : -1;
    }
    return 0;
}

static int check_args(eval_args *a)
{
    if (!a->model)
        return cli_usage("eval", "no model given");
    if (!a->data)
        return cli_usage("eval", "--data is required");
    if (a->labels && a->targets)
        return cli_usage("eval", "give --labels or --targets, not both");
    if (a->metric == METRIC_NONE)
        a->metric = a->targets ? METRIC_PSNR : METRIC_TOP1;
    if (a->metric == METRIC_TOP1 && !a->labels)
        return cli_usage("eval", "metric top1 needs --labels");
    if (a->metric == METRIC_PSNR && !a->targets)
        return cli_usage("eval", "metric psnr needs --targets");
    if (a->norm.std == 0)
        return cli_usage("eval", "--std must not be 0");
    if (a->shift && a->metric != METRIC_TOP1)
        return cli_usage("eval", "--shift-clips averages logits: it needs --metric top1");
    return EXIT_OK;
}

static int parse(int argc, char **argv, eval_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = numeric_opt(argc, argv, &i, a);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if ((v = cli_opt(argc, argv, &i, "--data")))
            a->data = v;
        else if ((v = cli_opt(argc, argv, &i, "--labels")))
            a->labels = v;
        else if ((v = cli_opt(argc, argv, &i, "--targets")))
            a->targets = v;
        else if ((v = cli_opt(argc, argv, &i, "--shift-clips"))) {
            if (!parse_i64(v, &a->shift))
                return cli_usage("eval", "bad value '%s' for --shift-clips", v);
        } else if ((v = cli_opt(argc, argv, &i, "--metric"))) {
            if (parse_metric(v, a))
                return EXIT_USAGE;
        } else if (argv[i][0] == '-')
            return cli_usage("eval", "unknown or incomplete option '%s'", argv[i]);
        else if (!a->model)
            a->model = argv[i];
        else
            return cli_usage("eval", "unexpected argument '%s'", argv[i]);
    }
    return check_args(a);
}

/* Everything one evaluation holds; released by release(). */
typedef struct eval_state {
    hone_ctx ctx;
    hone_graph *g;
    hone_tensor *x, *y;       /* model-ready samples; labels or targets */
    int64_t n, fixed_batch;   /* samples; model's batch dim (0 = symbolic) */
    int64_t clip_frames;      /* --shift-clips: frames per clip (Td) */
    double score;             /* hits or PSNR sum */
} eval_state;

static void release(eval_state *s)
{
    hone_tensor_free(s->x);
    hone_tensor_free(s->y);
    hone_graph_free(s->g);
}

/* --shift-clips: shapes the samples [N, Td, <input dims 2..>] for a model
 * input [N, Tm, ...] with Td >= Tm and at least K distinct windows. */
static hone_status fit_clips(eval_state *s, const eval_args *a)
{
    const hone_value *in = s->g->inputs[0];
    hone_tensor *x = s->x;
    int64_t frame = 1, per = x->dims[0] ? x->numel / x->dims[0] : 0;
    bool ok = in->rank >= 3 && in->dims[1] >= 1;
    for (int i = 2; ok && i < in->rank; i++)
        ok = in->dims[i] >= 1 && (frame *= in->dims[i]) > 0;
    if (!ok)
        return hone_fail(&s->ctx, HONE_ERR_SHAPE, "--shift-clips needs a model input [N,T,...] "
                         "with known frame count and frame shape (input '%s' rank %d)",
                         in->name, in->rank);
    int64_t tm = in->dims[1], td = per / frame;
    if (per % frame || td < tm)
        return hone_fail(&s->ctx, HONE_ERR_SHAPE, "--shift-clips: samples of %lld values are not "
                         "clips of at least %lld frames of %lld values", (long long)per,
                         (long long)tm, (long long)frame);
    if (a->shift > td - tm + 1)
        return hone_fail(&s->ctx, HONE_ERR_ARG, "--shift-clips %lld: clips of %lld frames hold "
                         "only %lld distinct windows of %lld frames", (long long)a->shift,
                         (long long)td, (long long)(td - tm + 1), (long long)tm);
    x->rank = in->rank;
    x->dims[1] = td;
    for (int i = 2; i < in->rank; i++)
        x->dims[i] = in->dims[i];
    s->clip_frames = td;
    return HONE_OK;
}

/* First frame of window j of k over clips of td frames for a model of tm. */
static int64_t window_offset(int64_t j, int64_t k, int64_t td, int64_t tm)
{
    return k == 1 ? (td - tm) / 2 : (j * (td - tm) * 2 + (k - 1)) / (2 * (k - 1));
}

/* Frames [off, off+tm) of every clip of xb [rows, Td, ...] as [rows, tm, ...]. */
static hone_status window(hone_ctx *ctx, const hone_tensor *xb, int64_t off, int64_t tm,
                          hone_tensor **out)
{
    int64_t dims[HONE_MAX_RANK];
    memcpy(dims, xb->dims, sizeof dims);
    dims[1] = tm;
    hone_status st = hone_tensor_new(ctx, xb->dtype, xb->rank, dims, out);
    if (st)
        return st;
    size_t es = hone_dtype_size(xb->dtype);
    int64_t frame = xb->numel / (xb->dims[0] * xb->dims[1]);
    for (int64_t r = 0; r < xb->dims[0]; r++)
        memcpy((uint8_t *)(*out)->data + (size_t)(r * tm * frame) * es,
               (const uint8_t *)xb->data + (size_t)((r * xb->dims[1] + off) * frame) * es,
               (size_t)(tm * frame) * es);
    return HONE_OK;
}

/* Mean of the first output over the --shift-clips windows of clips xb. */
static hone_status run_windows(eval_state *s, const eval_args *a, const hone_tensor *xb,
                               hone_tensor **mean)
{
    int64_t tm = s->g->inputs[0]->dims[1];
    hone_status st = HONE_OK;
    *mean = NULL;
    for (int64_t j = 0; j < a->shift && !st; j++) {
        hone_tensor *xw, *outs[s->g->n_outputs + 1];
        st = window(&s->ctx, xb, window_offset(j, a->shift, s->clip_frames, tm), tm, &xw);
        if (st)
            break;
        st = hone_interp_run(&s->ctx, s->g, (const hone_tensor **)&xw, outs, NULL);
        hone_tensor_free(xw);
        if (st)
            break;
        if (outs[0]->dtype != HONE_DT_FLOAT || (*mean && (*mean)->numel != outs[0]->numel))
            st = hone_fail(&s->ctx, HONE_ERR_SHAPE, "--shift-clips: the model's output is not "
                           "float logits of one shape");
        else if (!*mean)
            *mean = hone_tensor_clone(outs[0]);
        else
            for (int64_t e = 0; e < outs[0]->numel; e++)
                ((float *)(*mean)->data)[e] += ((const float *)outs[0]->data)[e];
        for (int i = 0; i < s->g->n_outputs; i++)
            hone_tensor_free(outs[i]);
    }
    for (int64_t e = 0; !st && e < (*mean)->numel; e++)
        ((float *)(*mean)->data)[e] /= (float)a->shift;
    return st;
}

/* Samples converted to the input's type and reshaped to its per-sample shape. */
static hone_status prepare_samples(eval_state *s, const eval_args *a, hone_tensor *raw)
{
    const hone_value *in = s->g->inputs[0];
    hone_status st = HONE_OK;
    if (in->dtype == HONE_DT_FLOAT || in->dtype == HONE_DT_UNDEF) {
        st = hone_data_to_float(&s->ctx, raw, a->norm, &s->x);
        hone_tensor_free(raw);
    } else if (in->dtype == raw->dtype) {
        s->x = raw;
    } else {
        st = hone_fail(&s->ctx, HONE_ERR_ARG, "%s holds %s samples, model input '%s' takes %s",
                       a->data, hone_dtype_onnx_name(raw->dtype), in->name,
                       hone_dtype_onnx_name(in->dtype));
        hone_tensor_free(raw);
    }
    if (!st)
        st = a->shift ? fit_clips(s, a) : hone_data_fit_shape(&s->ctx, s->x, s->g, in);
    if (st && !strstr(s->ctx.msg, a->data))
        hone_fail_wrap(&s->ctx, "%s", a->data);
    return st;
}

/* Loads the model, the samples and the labels or targets. */
static hone_status load(eval_state *s, const eval_args *a)
{
    hone_ctx *ctx = &s->ctx;
    hone_tensor *raw = NULL;
    const char *ypath = a->labels ? a->labels : a->targets;
    int64_t ny;
    hone_status st = hone_onnx_load(ctx, a->model, &s->g);
    if (!st && (s->g->n_inputs != 1 || s->g->n_outputs < 1))
        st = hone_fail(ctx, HONE_ERR_ARG, "%s: eval needs a model with one input (it has %d)",
                       a->model, s->g->n_inputs);
    if (!st && !(st = hone_data_load(ctx, a->data, &raw)))
        st = hone_data_count(ctx, raw, a->data, &s->n);
    if (!st && !(st = hone_data_load(ctx, ypath, &s->y)))
        st = hone_data_count(ctx, s->y, ypath, &ny);
    if (!st && ny != s->n)
        st = hone_fail(ctx, HONE_ERR_SHAPE, "%s has %lld samples but %s has %lld", a->data,
                       (long long)s->n, ypath, (long long)ny);
    if (!st && a->labels && s->y->numel != ny)
        st = hone_fail(ctx, HONE_ERR_SHAPE, "%s: labels must be one integer per sample, not %lld "
                       "values for %lld samples", ypath, (long long)s->y->numel, (long long)ny);
    if (st) {
        hone_tensor_free(raw);
        return st;
    }
    hone_data_limit(raw, a->limit);
    hone_data_limit(s->y, a->limit);
    s->n = raw->dims[0];
    return prepare_samples(s, a, raw);
}

/* Runs one batch of sample indices and adds its score. */
static hone_status run_batch(eval_state *s, const eval_args *a, const int64_t *idx, int64_t k)
{
    hone_tensor *xb, *outs[s->g->n_outputs + 1];
    int64_t rows = s->fixed_batch ? s->fixed_batch : k;
    hone_status st = hone_data_gather(&s->ctx, s->x, idx, k, rows, &xb);
    if (st)
        return st;
    if (a->shift) {
        hone_tensor *mean;
        int64_t hits = 0;
        st = run_windows(s, a, xb, &mean);
        hone_tensor_free(xb);
        if (!st)
            st = hone_metric_top1(&s->ctx, mean, s->y, idx, k, &hits);
        hone_tensor_free(mean);
        s->score += (double)hits;
        return st;
    }
    st = hone_interp_run(&s->ctx, s->g, (const hone_tensor **)&xb, outs, NULL);
    hone_tensor_free(xb);
    if (st)
        return st;
    if (a->metric == METRIC_TOP1) {
        int64_t hits = 0;
        st = hone_metric_top1(&s->ctx, outs[0], s->y, idx, k, &hits);
        s->score += (double)hits;
    } else {
        double scale = a->target_scale >= 0 ? a->target_scale
                       : s->y->dtype == HONE_DT_UINT8 ? 1.0 / 255.0 : 1.0;
        st = hone_metric_psnr(&s->ctx, outs[0], s->y, idx, k, scale, &s->score);
    }
    for (int i = 0; i < s->g->n_outputs; i++)
        hone_tensor_free(outs[i]);
    return st;
}

static hone_status run_all(eval_state *s, const eval_args *a)
{
    const hone_value *in = s->g->inputs[0];
    s->fixed_batch = in->rank >= 1 && in->dims[0] >= 1 ? in->dims[0] : 0;
    hone_batcher b;
    hone_status st = hone_batcher_init(&s->ctx, &b, s->n, s->fixed_batch ? s->fixed_batch : a->batch);
    bool tty = isatty(STDERR_FILENO);
    const int64_t *idx;
    int64_t k, done = 0;
    while (!st && (k = hone_batcher_next(&b, &idx)) > 0) {
        st = run_batch(s, a, idx, k);
        done += k;
        if (tty)
            fprintf(stderr, "\reval: %lld/%lld", (long long)done, (long long)s->n);
    }
    if (tty)
        fputc('\n', stderr);
    hone_batcher_free(&b);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    eval_args a = {.norm = HONE_NORM_NONE, .target_scale = -1, .limit = -1, .batch = 64};
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    eval_state s = {0};
    hone_ctx_init(&s.ctx);
    hone_status st = load(&s, &a);
    if (!st && s.n == 0)
        st = hone_fail(&s.ctx, HONE_ERR_ARG, "%s: no samples to evaluate", a.data);
    if (!st)
        st = run_all(&s, &a);
    if (!st) {
        printf("samples %lld\n", (long long)s.n);
        if (a.shift)
            printf("windows %lld of %lld frames per %lld-frame clip\n", (long long)a.shift,
                   (long long)s.g->inputs[0]->dims[1], (long long)s.clip_frames);
        if (a.metric == METRIC_TOP1)
            printf("top1 %.4f\n", s.score / (double)s.n);
        else
            printf("psnr %.3f\n", s.score / (double)s.n);
    }
    rc = st ? cli_fail(&s.ctx) : EXIT_OK;
    release(&s);
    return rc;
}
