/*
 * Data files on the command line, shared by finetune and the pass-running
 * commands (opt, compile, stats, dump, compare): --data, --labels, --targets
 * (--target-scale), --scale/--mean/--std, --limit and --val-split. Samples
 * are loaded by extension (.npy, IDX, .pb), normalised (x*scale - mean)/std
 * and reshaped to the model's first input; targets to its first output.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_data_init(cli_data *d)
{
    memset(d, 0, sizeof *d);
    d->norm = HONE_NORM_NONE;
    d->target_scale = -1;
    d->limit = -1;
    d->val_split = 0.1;
}

void cli_data_free(cli_data *d)
{
    hone_tensor_free(d->x);
    hone_tensor_free(d->labels_t);
    hone_tensor_free(d->targets_t);
    d->x = d->labels_t = d->targets_t = NULL;
}

void cli_data_help(FILE *f)
{
    fprintf(f, "data flags (passes that calibrate or fine-tune):\n"
               "  --data FILE           samples (.npy, IDX .gz/-ubyte, .pb; first dim = samples)\n"
               "  --labels FILE         integer class per sample (else: label-free distillation\n"
               "                        from the original model)\n"
               "  --targets FILE        image-to-image targets, times --target-scale S (default\n"
               "                        1/255 for uint8, else 1)\n"
               "  --scale S --mean M --std S   input normalisation (x*scale - mean)/std\n"
               "  --limit N             only the first N samples\n"
               "  --val-split F         held out for selection and the pass's metric: a share\n"
               "                        in (0,1) or a sample count (default 0.1)\n");
}

static bool parse_num(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

int cli_data_flag(const char *cmd, int argc, char **argv, int *i, cli_data *d)
{
    struct { const char *name; const char **dst; } paths[] = {
        {"--data", &d->data}, {"--labels", &d->labels}, {"--targets", &d->targets},
    };
    struct { const char *name; double *dst; double lo; } nums[] = {
        {"--scale", &d->norm.scale, -INFINITY}, {"--mean", &d->norm.mean, -INFINITY},
        {"--std", &d->norm.std, -INFINITY},     {"--target-scale", &d->target_scale, 0},
        {"--val-split", &d->val_split, 0},
    };
    const char *v;
    for (size_t k = 0; k < sizeof paths / sizeof *paths; k++)
        if ((v = cli_opt(argc, argv, i, paths[k].name))) {
            *paths[k].dst = v;
            return 1;
        }
    for (size_t k = 0; k < sizeof nums / sizeof *nums; k++)
        if ((v = cli_opt(argc, argv, i, nums[k].name))) {
            if (!parse_num(v, nums[k].dst) || *nums[k].dst < nums[k].lo)
                return cli_usage(cmd, "bad value '%s' for %s", v, nums[k].name), -1;
            if (nums[k].dst == &d->norm.std && d->norm.std == 0)
                return cli_usage(cmd, "--std must not be 0"), -1;
            if (nums[k].dst == &d->val_split && d->val_split >= 1 &&
                d->val_split != floor(d->val_split))
                return cli_usage(cmd, "--val-split is a share in (0,1) or a whole sample count"),
                       -1;
            return 1;
        }
    if ((v = cli_opt(argc, argv, i, "--limit"))) {
        double x;
        if (!parse_num(v, &x) || x < 1 || x != floor(x))
            return cli_usage(cmd, "bad value '%s' for --limit", v), -1;
        d->limit = (int64_t)x;
        return 1;
    }
    return 0;
}

/* Loads a data file, keeps its first `limit` samples and checks the count. */
static hone_status load_samples(hone_ctx *ctx, const char *path, int64_t limit, int64_t want,
                                hone_tensor **out)
{
    int64_t n;
    hone_status st = hone_data_load(ctx, path, out);
    if (!st)
        hone_data_limit(*out, limit);
    if (!st)
        st = hone_data_count(ctx, *out, path, &n);
    if (!st && want >= 0 && n != want)
        st = hone_fail(ctx, HONE_ERR_SHAPE, "%s has %lld samples, the data %lld", path,
                       (long long)n, (long long)want);
    return st;
}

/* Float copy of raw (freed), normalised by nm and shaped like value v of g. */
static hone_status to_model_float(hone_ctx *ctx, hone_tensor *raw, hone_norm nm,
                                  const hone_graph *g, const hone_value *v, const char *path,
                                  hone_tensor **out)
{
    hone_status st = hone_data_to_float(ctx, raw, nm, out);
    hone_tensor_free(raw);
    if (!st)
        st = hone_data_fit_shape(ctx, *out, g, v);
    if (st && !strstr(ctx->msg, path))
        hone_fail_wrap(ctx, "%s", path);
    return st;
}

hone_status cli_data_load(hone_ctx *ctx, cli_data *d, const hone_graph *g)
{
    hone_tensor *raw;
    if (!d->data)
        return d->labels || d->targets
                   ? hone_fail(ctx, HONE_ERR_ARG, "--labels and --targets need --data")
                   : HONE_OK;
    if (d->labels && d->targets)
        return hone_fail(ctx, HONE_ERR_ARG, "give --labels or --targets, not both");
    if (g->n_inputs < 1 || g->n_outputs < 1)
        return hone_fail(ctx, HONE_ERR_ARG, "data needs a model with an input and an output");
    hone_status st = load_samples(ctx, d->data, d->limit, -1, &raw);
    if (!st)
        st = to_model_float(ctx, raw, d->norm, g, g->inputs[0], d->data, &d->x);
    if (!st && d->labels)
        st = load_samples(ctx, d->labels, d->limit, d->x->dims[0], &d->labels_t);
    if (!st && d->targets && !(st = load_samples(ctx, d->targets, d->limit, d->x->dims[0], &raw))) {
        double scale = d->target_scale >= 0 ? d->target_scale
                       : raw->dtype == HONE_DT_UINT8 ? 1.0 / 255.0 : 1.0;
        st = to_model_float(ctx, raw, (hone_norm){scale, 0, 1}, g, g->outputs[0], d->targets,
                            &d->targets_t);
    }
    if (st)
        cli_data_free(d);
    return st;
}
