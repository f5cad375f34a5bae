#!/usr/bin/env bash
# Training throughput, hone vs PyTorch, on models/fmnist_resnet14.onnx (Fashion-MNIST
# ResNet-14): images/s of SGD steps (forward, backward, Nesterov update) at batch 128 with
# 2 threads, one run of each on the same machine, both from the same Kaiming-normal
# initialisation. hone runs `hone finetune --reinit` and times steps from its --log CSV;
# PyTorch (Debian python3-torch) runs bench/torch_train.py --throughput on the same
# architecture. Both skip the first WARMUP steps and time the next STEPS.
# RUNS (default 1) repeats the whole measurement, both sides each time, and reports every run
# and the median ratio (the machine is shared: figures swing between runs).
# usage: bench/train_throughput.sh [--write-doc] [HONE_BINARY] [STEPS] [WARMUP] [RUNS]
# --write-doc replaces the section "## Training throughput" of docs/PERFORMANCE.md (appending
# it when missing) with these numbers, leaving the rest of the file as it is.
set -euo pipefail
WRITE_DOC=0
if [ "${1:-}" = --write-doc ]; then WRITE_DOC=1; shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HONE=${1:-$ROOT/build/hone}
STEPS=${2:-20}
WARMUP=${3:-2}
RUNS=${4:-1}
BATCH=128
THREADS=2
D=/usr/share/datasets/fashion-mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

# hone_run: images/s of hone's training steps.
hone_run() {
    "$HONE" finetune "$ROOT/models/fmnist_resnet14.onnx" \
        --data "$D/train-images-idx3-ubyte.gz" --labels "$D/train-labels-idx1-ubyte.gz" \
        --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 \
        --limit $(((STEPS + WARMUP) * BATCH)) --epochs 1 --batch $BATCH \
        --optim nesterov --lr 0.01 --wd 5e-4 --clip 2 --schedule constant --reinit \
        --log "$T/log.csv" -o "$T/out.onnx" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
    # step rows: kind,epoch,step,loss,lr,grad_norm,heldout,time_s (training seconds so far)
    awk -F, -v w=$WARMUP -v n=$((STEPS + WARMUP)) -v b=$BATCH '
        $1 == "step" && $3 == w - 1 { t0 = $8 }
        $1 == "step" && $3 == n - 1 { t1 = $8 }
        END { printf "%.1f", (n - w) * b / (t1 - t0) }' "$T/log.csv"
}

# PyTorch's OpenMP threads spin while they wait; on a machine shared with other jobs that
# collapses throughput, so it runs with both wait policies and the faster one is compared.
torch_run() {
    OMP_WAIT_POLICY=$1 /usr/bin/python3 "$ROOT/bench/torch_train.py" --throughput "$STEPS" \
        --warmup-steps "$WARMUP" --batch $BATCH --threads $THREADS --optim nesterov --lr 0.01 \
        --wd 5e-4 --clip 2 2>/dev/null | awk '/^images_per_s/ { print $2 }'
}

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "machine $machine"
# one table row per run: run | hone | torch (ACTIVE / PASSIVE) | ratio | load
: > "$T/rows"
: > "$T/ratios"
for run in $(seq 1 "$RUNS"); do
    hone=$(hone_run)
    torch_active=$(torch_run ACTIVE)
    torch_passive=$(torch_run PASSIVE)
    torch=$(awk -v a="$torch_active" -v p="$torch_passive" 'BEGIN { print (a > p ? a : p) }')
    ratio=$(awk -v h="$hone" -v p="$torch" 'BEGIN { printf "%.2f", h / p }')
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "run $run: hone_images_per_s $hone torch_images_per_s $torch (OMP_WAIT_POLICY ACTIVE" \
         "$torch_active, PASSIVE $torch_passive) hone_vs_torch ${ratio}x load $load"
    echo "| $run | $hone | $torch ($torch_active / $torch_passive) | ${ratio}x | $load |" >> "$T/rows"
    echo "$ratio" >> "$T/ratios"
done
median=$(sort -n "$T/ratios" | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "hone_vs_torch_median ${median}x over $RUNS run(s)"
[ "$WRITE_DOC" = 1 ] || exit 0

DOC=$ROOT/docs/PERFORMANCE.md
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)
{
    echo "## Training throughput"
    echo
    echo "Measured by \`bench/train_throughput.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (hone commit"
    echo "$commit; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)). Reproduce with:"
    echo
    echo '```'
    echo "bench/train_throughput.sh --write-doc build/hone $STEPS $WARMUP $RUNS"
    echo '```'
    echo
    echo "- Machine: $machine. Model: models/fmnist_resnet14.onnx (ResNet-14, BN folded,"
    echo "  20 MMACs per image), Fashion-MNIST training images, batch $BATCH, $THREADS threads for both"
    echo "  (OPENBLAS_NUM_THREADS/OMP_NUM_THREADS, torch.set_num_threads); OPENBLAS_CORETYPE as the"
    echo "  environment sets it (${OPENBLAS_CORETYPE:-unset})."
    echo "- Method: SGD steps (forward, cross-entropy, backward, gradient-norm clipping, Nesterov"
    echo "  update with weight decay); $WARMUP untimed warm-up steps, then $STEPS timed steps. Each"
    echo "  of the $RUNS run(s) measures every configuration once, one after the other. hone:"
    echo "  \`hone finetune\` (reference interpreter with the training program of passes/train; Conv"
    echo "  kernels split images over a pool of $THREADS threads, their GEMMs on hone's AVX-512 SGEMM where"
    echo "  the CPU has AVX-512F, the rest on OpenBLAS), timed from its --log CSV. PyTorch $torch_version (Debian python3-torch,"
    echo "  eager mode): bench/torch_train.py --throughput on the same architecture and weight"
    echo "  initialisation as \`--reinit\`, run with OMP_WAIT_POLICY=ACTIVE and PASSIVE; the"
    echo "  ratios compare the faster. Load: the 1-minute load average after the run."
    echo
    echo "| run | hone images/s | PyTorch images/s (ACTIVE / PASSIVE) | hone / PyTorch | load |"
    echo "|---|---|---|---|---|"
    cat "$T/rows"
    echo
    echo "Median hone / PyTorch over the runs: **${median}x**."
    echo
} > "$T/section"
if [ -f "$DOC" ]; then
    awk '/^## Training throughput/ { skip = 1; next } skip && /^## / { skip = 0 } !skip' "$DOC" \
        > "$T/doc"
else
    printf '# Performance\n\n' > "$T/doc"
fi
# exactly one blank line between the kept text and the section
sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$T/doc" > "$T/doc2"
{ cat "$T/doc2"; echo; cat "$T/section"; } > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
echo "train_throughput: wrote $DOC" >&2
