#!/usr/bin/env bash
# Training throughput, hone vs PyTorch, on models/fmnist_resnet14.onnx (Fashion-MNIST
# ResNet-14): images/s of SGD steps (forward, backward, Nesterov update) at batch 128 with
# 2 threads, one run of each on the same machine. hone runs `hone finetune` and times steps
# from its --log CSV; PyTorch (Debian python3-torch) runs bench/torch_train.py --throughput
# on the same architecture. Both skip the first WARMUP steps and time the next STEPS.
# usage: bench/train_throughput.sh [HONE_BINARY] [STEPS] [WARMUP]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HONE=${1:-$ROOT/build/hone}
STEPS=${2:-20}
WARMUP=${3:-2}
BATCH=128
THREADS=2
D=/usr/share/datasets/fashion-mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

"$HONE" finetune "$ROOT/models/fmnist_resnet14.onnx" \
    --data "$D/train-images-idx3-ubyte.gz" --labels "$D/train-labels-idx1-ubyte.gz" \
    --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 \
    --limit $(((STEPS + WARMUP) * BATCH)) --epochs 1 --batch $BATCH \
    --optim nesterov --lr 0.01 --wd 5e-4 --schedule constant \
    --log "$T/log.csv" -o "$T/out.onnx" >/dev/null 2>"$T/err" || { cat "$T/err"; exit 1; }
# step rows: kind,epoch,step,loss,lr,grad_norm,heldout,time_s (training seconds so far)
hone=$(awk -F, -v w=$WARMUP -v n=$((STEPS + WARMUP)) -v b=$BATCH '
    $1 == "step" && $3 == w - 1 { t0 = $8 }
    $1 == "step" && $3 == n - 1 { t1 = $8 }
    END { printf "%.1f", (n - w) * b / (t1 - t0) }' "$T/log.csv")

torch=$(/usr/bin/python3 "$ROOT/bench/torch_train.py" --throughput "$STEPS" --warmup-steps "$WARMUP" \
    --batch $BATCH --threads $THREADS --optim nesterov --lr 0.01 --wd 5e-4 |
    awk '/^images_per_s/ { print $2 }')

echo "machine $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "hone_images_per_s $hone"
echo "torch_images_per_s $torch"
awk -v h="$hone" -v p="$torch" 'BEGIN { printf "hone_vs_torch %.2fx\n", h / p }'
