#!/usr/bin/env bash
# CPU time per training step, hone vs PyTorch, one thread each, on models/fmnist_resnet14.onnx
# (batch 128, the same SGD recipe as bench/train_throughput.sh). CPU time (perf stat
# task-clock) depends far less on other jobs than wall time does, so this compares the
# two engines' efficiency on a shared machine. Each side runs twice, with SHORT and with
# SHORT + 20 steps; the difference over 20 is the cost of one step (start-up, data loading
# and model writing cancel). ROUNDS alternates the engines; every round is reported.
# usage: bench/train_cpu_per_step.sh [HONE_BINARY] [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HONE=${1:-$ROOT/build/hone}
ROUNDS=${2:-2}
SHORT=3
D=/usr/share/datasets/fashion-mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
command -v perf >/dev/null || { echo "train_cpu_per_step: perf is not installed" >&2; exit 1; }

# cpu_ms CMD...: task-clock milliseconds of CMD
cpu_ms() {
    perf stat -e task-clock -x, -o "$T/stat" "$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
    awk -F, '$3 == "task-clock" { print $1 }' "$T/stat"
}
hone_steps() {
    cpu_ms "$HONE" finetune "$ROOT/models/fmnist_resnet14.onnx" \
        --data "$D/train-images-idx3-ubyte.gz" --labels "$D/train-labels-idx1-ubyte.gz" \
        --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 --limit $(($1 * 128)) \
        --epochs 1 --batch 128 --optim nesterov --lr 0.01 --wd 5e-4 --clip 2 \
        --schedule constant --reinit -o "$T/out.onnx"
}
torch_steps() {
    cpu_ms /usr/bin/python3 "$ROOT/bench/torch_train.py" --throughput "$1" --warmup-steps 1 \
        --batch 128 --threads 1 --optim nesterov --lr 0.01 --wd 5e-4 --clip 2
}
per_step() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 20 }'; }

for r in $(seq 1 "$ROUNDS"); do
    h=$(per_step "$(hone_steps $SHORT)" "$(hone_steps $((SHORT + 20)))")
    p=$(per_step "$(torch_steps $SHORT)" "$(torch_steps $((SHORT + 20)))")
    echo "round $r: CPU ms per step: hone $h, PyTorch $p;" \
         "PyTorch / hone $(awk -v h="$h" -v p="$p" 'BEGIN { printf "%.2f", p / h }')x;" \
         "load $(cut -d' ' -f1 /proc/loadavg)"
done
