/*
 * hone finetune MODEL.onnx --data FILE ... -o OUT.onnx: trains a model's
 * weights on a dataset and writes the trained model.
 *
 * The command only parses flags, loads files and reports progress; the work
 * is hone_fit (passes/train/loop.c). Targets come from --labels (cross-
 * entropy), --targets (MSE or L1, times --target-scale), a --teacher model
 * (label-free distillation: the teacher's outputs on each batch are the
 * targets), or labels and a teacher together (CE + KD). Samples are
 * normalised (x*scale - mean)/std and reshaped to the model input like
 * `hone eval` does. Progress goes to stderr: a one-line bar with loss,
 * images/s and ETA redrawn in place when stderr is a terminal, otherwise one
 * line per epoch. --log writes per-step losses and per-epoch held-out
 * metrics as CSV (time_s: training seconds so far for a step, the epoch's
 * training seconds for an epoch row), atomically when training ends (also
 * when it fails). The
 * model is written atomically. The last stdout lines summarise the run.
 * --checkpoint DIR saves the training state after every epoch and --resume
 * continues from it. Under mpirun (an MPI-enabled build, docs/SCALING.md)
 * every rank trains its share of each batch and rank 0 alone prints
 * progress and writes the model, the log and the checkpoints.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "io.h"
#include "onnx.h"
#include "train/dist.h"
#include "train/loop.h"

void help_finetune(FILE *f)
{
    fprintf(f,
            "usage: hone finetune MODEL.onnx --data FILE [--labels FILE] [--teacher MODEL.onnx]\n"
            "                     [--targets FILE [--target-scale S]] --epochs N --lr LR\n"
            "                     -o OUT.onnx [options]\n\n"
            "Trains MODEL's weights on the samples of FILE (.npy, IDX .gz/-ubyte or .pb; first\n"
            "dimension = samples) and writes the trained model to OUT.onnx.\n"
            "targets:\n"
            "  --labels FILE          integer class per sample: cross-entropy\n"
            "  --targets FILE         outputs per sample, times --target-scale (default 1/255 for\n"
            "                         uint8, else 1): MSE (or --loss l1)\n"
            "  --teacher MODEL.onnx   label-free: the teacher's outputs on each batch are the\n"
            "                         targets (soft cross-entropy at --kd-temperature,\n"
            "                         default 4);\n"
            "                         with --labels: kd-alpha*KD*T^2 + (1-kd-alpha)*CE\n"
            "  --loss ce|kd|ce-kd|mse|l1   override the loss chosen from the above\n"
            "  --kd-temperature T, --kd-alpha A (default 0.9)\n"
            "optimisation:\n"
            "  --optim sgd|nesterov|adam|adamw (default nesterov)   --momentum M (default 0.9)\n"
            "  --wd WD                weight decay (L2; decoupled for adamw) (default 0)\n"
            "  --batch B              (default 128)   --clip NORM  global gradient-norm bound\n"
            "  --schedule cosine|step|onecycle|constant (default cosine)\n"
            "  --warmup E             linear warm-up over E epochs (not onecycle)\n"
            "  --milestones E1,E2..   step schedule: epochs where lr *= --gamma (default 0.1)\n"
            "  --min-lr LR            cosine floor (default 0)\n"
            "data:\n"
            "  --scale S --mean M --std S   input normalisation (x*scale - mean)/std\n"
            "  --limit N              only the first N samples\n"
            "  --val-split F          hold out a share F in (0,1), or F samples when F >= 1,\n"
            "                         of the training samples (fixed draw); their metric is\n"
            "                         reported after each epoch (top1, psnr, or agreement\n"
            "                         with the teacher)\n"
            "  --flip                 mirror each sample horizontally with probability 1/2\n"
            "  --reinit               re-initialise weights first (Kaiming-normal, zero\n"
            "                         biases)\n"
            "  --seed S               shuffling, augmentation and init seed (default 1)\n"
            "  --log FILE.csv         per-step loss and per-epoch metric (columns kind,epoch,\n"
            "                         step,loss,lr,grad_norm,heldout,time_s)\n"
            "  --checkpoint DIR       save weights, optimiser state and position to\n"
            "                         DIR/checkpoint.hone after every epoch (atomically)\n"
            "  --resume               continue from DIR's checkpoint (from the start when\n"
            "                         there is none); same model, data, batch and seed\n"
            "Under mpirun (a hone built with -DHONE_MPI=ON) training is data-parallel: --batch\n"
            "is the global batch, shared out between the ranks (docs/SCALING.md).\n");
}

typedef struct ft_args {
    const char *model, *data, *labels, *targets, *teacher, *out, *log, *loss, *checkpoint;
    hone_norm norm;
    double target_scale;            /* < 0: by target dtype */
    int64_t limit;
    double epochs, seed;
    double kd_temperature, kd_alpha;  /* < 0: the trainer's defaults */
    bool flip, reinit, resume;
    hone_fit_spec fit;
} ft_args;

/* Parses a whole-string number; false on junk. */
static bool parse_f64(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

/* Parses "E1,E2,..." into the step-schedule milestones (epochs). */
static bool parse_milestones(const char *s, hone_fit_spec *f)
{
    f->n_milestones = 0;
    while (*s) {
        char *end;
        if (f->n_milestones == HONE_SCHED_MAX_MILESTONES)
            return false;
        f->milestones[f->n_milestones++] = strtod(s, &end);
        if (end == s || (*end && *end != ','))
            return false;
        s = *end ? end + 1 : end;
    }
    return f->n_milestones > 0;
}

typedef struct num_opt {
    const char *name;
    double *dst;
    double lo;          /* smallest value accepted */
    bool whole;         /* must be an integer */
} num_opt;

/* One numeric option: 1 when argv[*i] was one, 0 when not, -1 on a bad value. */
static int numeric_opt(int argc, char **argv, int *i, ft_args *a, double *limit, double *batch)
{
    hone_fit_spec *f = &a->fit;
    const num_opt opts[] = {
        {"--epochs", &a->epochs, 1, true},       {"--lr", &f->lr, 0, false},
        {"--batch", batch, 1, true},             {"--momentum", &f->optim.momentum, 0, false},
        {"--wd", &f->optim.weight_decay, 0, false}, {"--clip", &f->optim.clip_norm, 0, false},
        {"--kd-temperature", &a->kd_temperature, 0, false}, {"--kd-alpha", &a->kd_alpha, 0, false},
        {"--val-split", &f->val_split, 0, false}, {"--seed", &a->seed, 0, true},
        {"--scale", &a->norm.scale, -INFINITY, false}, {"--mean", &a->norm.mean, -INFINITY, false},
        {"--std", &a->norm.std, -INFINITY, false}, {"--target-scale", &a->target_scale, 0, false},
        {"--limit", limit, 1, true},             {"--warmup", &f->warmup_epochs, 0, false},
        {"--gamma", &f->gamma, 0, false},        {"--min-lr", &f->min_lr, 0, false},
    };
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        const char *v = cli_opt(argc, argv, i, opts[k].name);
        if (!v)
            continue;
        double x;
        if (!parse_f64(v, &x) || x < opts[k].lo || (opts[k].whole && x != floor(x))) {
            cli_usage("finetune", "bad value '%s' for %s", v, opts[k].name);
            return -1;
        }
        *opts[k].dst = x;
        return 1;
    }
    return 0;
}

/* --optim, --schedule, --milestones: 1 when handled, 0 when not, -1 on a bad value. */
static int choice_opt(int argc, char **argv, int *i, ft_args *a)
{
    const char *v;
    int k = 0;
    if ((v = cli_opt(argc, argv, i, "--optim"))) {
        if ((k = hone_optim_parse(v)) < 0)
            cli_usage("finetune", "unknown optimiser '%s' (sgd, nesterov, adam, adamw)", v);
        a->fit.optim.kind = (hone_optim_kind)k;
    } else if ((v = cli_opt(argc, argv, i, "--schedule"))) {
        if ((k = hone_schedule_parse(v)) < 0)
            cli_usage("finetune", "unknown schedule '%s' (cosine, step, onecycle, constant)", v);
        a->fit.schedule = (hone_sched_kind)k;
    } else if ((v = cli_opt(argc, argv, i, "--milestones"))) {
        if (!parse_milestones(v, &a->fit) && (k = -1))
            cli_usage("finetune", "bad --milestones '%s' (want E1,E2,... epochs, at most %d)", v,
                      HONE_SCHED_MAX_MILESTONES);
    } else {
        return 0;
    }
    return k < 0 ? -1 : 1;
}

/* File options; true when argv[*i] was one. */
static bool path_opt(int argc, char **argv, int *i, ft_args *a)
{
    struct { const char *name; const char **dst; } opts[] = {
        {"--data", &a->data},       {"--labels", &a->labels}, {"--targets", &a->targets},
        {"--teacher", &a->teacher}, {"-o", &a->out},          {"--log", &a->log},
        {"--loss", &a->loss},       {"--checkpoint", &a->checkpoint},
    };
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        const char *v = cli_opt(argc, argv, i, opts[k].name);
        if (v) {
            *opts[k].dst = v;
            return true;
        }
    }
    return false;
}

/* Loss from --loss, or from what targets were given. */
static int choose_loss(ft_args *a)
{
    static const struct { const char *name; hone_loss_kind k; } names[] = {
        {"ce", HONE_LOSS_CE}, {"kd", HONE_LOSS_KD}, {"ce-kd", HONE_LOSS_CE_KD},
        {"mse", HONE_LOSS_MSE}, {"l1", HONE_LOSS_L1},
    };
    hone_train_spec *t = &a->fit.train;
    if (!a->loss) {
        t->loss = a->targets ? HONE_LOSS_MSE
                  : a->labels && a->teacher ? HONE_LOSS_CE_KD
                  : a->labels ? HONE_LOSS_CE : HONE_LOSS_KD;
        return EXIT_OK;
    }
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (!strcmp(a->loss, names[k].name)) {
            t->loss = names[k].k;
            return EXIT_OK;
        }
    return cli_usage("finetune", "unknown loss '%s' (ce, kd, ce-kd, mse, l1)", a->loss);
}

static int check_args(ft_args *a)
{
    if (!a->model)
        return cli_usage("finetune", "no model given");
    if (!a->data || !a->out)
        return cli_usage("finetune", "--data and -o are required");
    if (a->epochs < 1 || !(a->fit.lr > 0))
        return cli_usage("finetune", "--epochs N and --lr LR (> 0) are required");
    if (!a->labels && !a->targets && !a->teacher)
        return cli_usage("finetune", "give --labels, --targets or --teacher");
    if (a->labels && a->targets)
        return cli_usage("finetune", "give --labels or --targets, not both");
    if (a->norm.std == 0)
        return cli_usage("finetune", "--std must not be 0");
    if (a->fit.val_split >= 1 && a->fit.val_split != floor(a->fit.val_split))
        return cli_usage("finetune", "--val-split is a share in (0,1) or a whole sample count");
    if (a->resume && !a->checkpoint)
        return cli_usage("finetune", "--resume needs --checkpoint DIR");
    if (a->kd_temperature == 0 || a->kd_alpha > 1)
        return cli_usage("finetune", "--kd-temperature must be > 0 and --kd-alpha in [0, 1]");
    if (a->kd_temperature > 0)
        a->fit.train.temperature = (float)a->kd_temperature;
    if (a->kd_alpha >= 0)
        a->fit.train.kd_alpha = (float)a->kd_alpha;
    a->fit.epochs = (int)(a->epochs < 1e6 ? a->epochs : 1e6);
    a->fit.seed = (uint64_t)a->seed;
    return choose_loss(a);
}

static int parse(int argc, char **argv, ft_args *a)
{
    double limit = -1, batch = 128;
    for (int i = 1; i < argc; i++) {
        int r = numeric_opt(argc, argv, &i, a, &limit, &batch);
        if (!r)
            r = choice_opt(argc, argv, &i, a);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0 || path_opt(argc, argv, &i, a))
            continue;
        if (!strcmp(argv[i], "--flip"))
            a->flip = true;
        else if (!strcmp(argv[i], "--reinit"))
            a->reinit = true;
        else if (!strcmp(argv[i], "--resume"))
            a->resume = true;
        else if (argv[i][0] == '-')
            return cli_usage("finetune", "unknown or incomplete option '%s'", argv[i]);
        else if (!a->model)
            a->model = argv[i];
        else
            return cli_usage("finetune", "unexpected argument '%s'", argv[i]);
    }
    a->limit = (int64_t)limit;
    a->fit.batch = (int64_t)(batch < 1e9 ? batch : 1e9);
    a->fit.flip = a->flip;
    a->fit.checkpoint_dir = a->checkpoint;
    a->fit.resume = a->resume;
    return check_args(a);
}

/* ===================== loading ===================== */

typedef struct ft_state {
    hone_ctx ctx;
    hone_graph *g, *teacher;
    hone_tensor *x, *labels, *targets;
    char *log;                      /* CSV text (open_memstream) */
    size_t log_len;
    FILE *logf;
    bool tty;
    bool writer;                    /* rank 0: prints progress, writes files */
    double last_draw;
} ft_state;

static void release(ft_state *s)
{
    hone_graph_free(s->g);
    hone_graph_free(s->teacher);
    hone_tensor_free(s->x);
    hone_tensor_free(s->labels);
    hone_tensor_free(s->targets);
    if (s->logf)
        fclose(s->logf);
    free(s->log);
}

/* Model, teacher, samples and labels or targets (cli_data.c loads the files). */
static hone_status load(ft_state *s, const ft_args *a)
{
    hone_ctx *ctx = &s->ctx;
    hone_status st = hone_onnx_load(ctx, a->model, &s->g);
    if (!st && a->teacher)
        st = hone_onnx_load(ctx, a->teacher, &s->teacher);
    if (!st && (s->g->n_inputs != 1 || s->g->n_outputs < 1))
        st = hone_fail(ctx, HONE_ERR_ARG, "%s: finetune needs a model with one input (it has %d)",
                       a->model, s->g->n_inputs);
    if (st)
        return st;
    cli_data d;
    cli_data_init(&d);
    d.data = a->data;
    d.labels = a->labels;
    d.targets = a->targets;
    d.norm = a->norm;
    d.target_scale = a->target_scale;
    d.limit = a->limit;
    st = cli_data_load(ctx, &d, s->g);
    s->x = d.x;
    s->labels = d.labels_t;
    s->targets = d.targets_t;
    return st;
}

/* ===================== progress and log ===================== */

/* "1:02:03" or "2:03" into buf. */
static const char *hms(double s, char *buf, size_t n)
{
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static void draw_bar(ft_state *s, const hone_fit_step_info *in)
{
    enum { WIDTH = 24 };
    char bar[WIDTH + 1], eta[32];
    double done = in->epoch_size ? (double)in->epoch_images / (double)in->epoch_size : 1;
    int fill = (int)(done * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[WIDTH] = 0;
    double images = (double)in->epoch * (double)in->epoch_size + (double)in->epoch_images;
    double rate = in->elapsed_s > 0 ? images / in->elapsed_s : 0;
    double left = (double)in->epochs * (double)in->epoch_size - images;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %3.0f%%  loss %.4f  %.0f img/s  ETA %s",
            in->epoch + 1, in->epochs, bar, 100 * done, in->loss, rate,
            hms(rate > 0 ? left / rate : 0, eta, sizeof eta));
}

static void on_step(void *user, const hone_fit_step_info *in)
{
    ft_state *s = user;
    if (!s->writer)
        return;
    if (s->logf)
        fprintf(s->logf, "step,%d,%lld,%.6g,%.6g,%.6g,,%.4f\n", in->epoch + 1,
                (long long)in->step, in->loss, in->lr, in->grad_norm, in->elapsed_s);
    /* redrawn at most ten times a second of training */
    if (s->tty && (in->elapsed_s - s->last_draw > 0.1 || in->epoch_images == in->epoch_size)) {
        draw_bar(s, in);
        s->last_draw = in->elapsed_s;
    }
}

static void on_epoch(void *user, const hone_fit_epoch_info *in)
{
    ft_state *s = user;
    char metric[64] = "", cell[32] = "";
    if (!s->writer)
        return;
    if (in->metric_kind != HONE_FIT_METRIC_NONE) {
        snprintf(metric, sizeof metric, "  held-out %s %.4f", hone_fit_metric_name(in->metric_kind),
                 in->metric);
        snprintf(cell, sizeof cell, "%.6g", in->metric);
    }
    fprintf(stderr, "%sepoch %d/%d  loss %.4f%s  lr %.3g  %.0f img/s  %.1fs\n",
            s->tty ? "\r\033[K" : "", in->epoch + 1, in->epochs, in->loss, metric, in->lr,
            in->images_per_s, in->epoch_s);
    if (s->logf)
        fprintf(s->logf, "epoch,%d,%lld,%.6g,%.6g,,%s,%.4f\n", in->epoch + 1,
                (long long)in->step, in->loss, in->lr, cell, in->epoch_s);
}

static hone_status open_log(ft_state *s, const ft_args *a)
{
    if (!a->log)
        return HONE_OK;
    s->logf = open_memstream(&s->log, &s->log_len);
    if (!s->logf)
        return hone_fail(&s->ctx, HONE_ERR_NOMEM, "out of memory for the log");
    fprintf(s->logf, "kind,epoch,step,loss,lr,grad_norm,heldout,time_s\n");
    return HONE_OK;
}

/* Writes the CSV log (what there is of it, also after a failure). */
static hone_status write_log(ft_state *s, const ft_args *a)
{
    if (!s->logf)
        return HONE_OK;
    fclose(s->logf);
    s->logf = NULL;
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    hone_status st = hone_write_file_atomic(&ctx, a->log, s->log, s->log_len);
    if (st)
        fprintf(stderr, "hone: error: %s\n", ctx.msg);
    return st;
}

/* ===================== the command ===================== */

static void print_summary(const ft_args *a, const hone_fit_result *r)
{
    if (r->ranks > 1)
        printf("ranks %d\nallreduce_bytes_per_step %lld\nallreduce_s %.3f\n", r->ranks,
               (long long)r->allreduce_bytes, r->allreduce_s);
    if (r->resumed_epochs)
        printf("resumed_after_epoch %lld\n", (long long)r->resumed_epochs);
    printf("train_samples %lld\nheldout_samples %lld\nsteps %lld\n", (long long)r->n_train,
           (long long)r->n_held, (long long)r->steps);
    printf("images_per_s %.1f\nloss %.4f\n", r->images_per_s, r->loss);
    if (r->metric_kind != HONE_FIT_METRIC_NONE)
        printf("heldout_%s %.4f\n", hone_fit_metric_name(r->metric_kind), r->metric);
    printf("wrote %s\n", a->out);
}

static hone_status run(ft_state *s, ft_args *a, hone_fit_result *r)
{
    hone_status st = load(s, a);
    if (!st && a->reinit)
        st = hone_model_reinit(&s->ctx, s->g, a->fit.seed, NULL);
    if (!st)
        st = open_log(s, a);
    if (st)
        return st;
    hone_fit_data d = {s->x, s->labels, s->targets};
    a->fit.teacher = s->teacher;
    a->fit.on_step = on_step;
    a->fit.on_epoch = on_epoch;
    a->fit.user = s;
    st = hone_fit(&s->ctx, s->g, &d, &a->fit, r);
    if (s->tty && st)
        fputc('\n', stderr);
    if (!st && s->writer)
        st = hone_onnx_save(&s->ctx, s->g, a->out);
    return st;
}

int cmd_finetune(int argc, char **argv)
{
    ft_args a = {.norm = HONE_NORM_NONE, .target_scale = -1, .seed = 1, .kd_temperature = -1,
                 .kd_alpha = -1};
    hone_fit_spec_init(&a.fit);
    a.fit.lr = 0;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    ft_state s = {.writer = hone_dist_rank() == 0};
    s.tty = s.writer && isatty(STDERR_FILENO);
    hone_ctx_init(&s.ctx);
    hone_fit_result r;
    hone_status st = run(&s, &a, &r);
    hone_status lst = s.writer ? write_log(&s, &a) : HONE_OK;
    if (!st && s.writer)
        print_summary(&a, &r);
    rc = st ? cli_fail(&s.ctx) : lst ? EXIT_FAIL : EXIT_OK;
    release(&s);
    return rc;
}
