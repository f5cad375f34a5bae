#!/usr/bin/env bash
# Data-parallel training throughput on this machine (docs/SCALING.md):
# `hone finetune` on models/fmnist_resnet14.onnx (Fashion-MNIST ResNet-14),
# global batch 128, STEPS Nesterov-SGD steps, no held-out split, in three
# set-ups measured in the same run one after the other:
#   1 process with 1 OpenBLAS thread, 1 process with 2 threads, and
#   mpirun -np 2 with 1 thread per rank (64 samples per rank and step).
# images/s is hone's own figure (samples / training seconds, allreduce
# included); for the 2-rank run it also prints the bytes each rank allreduces
# per step and the share of training time rank 0 spent in allreduce calls
# (waiting for the other rank included). images per CPU-second divides the
# samples trained by the CPU time (user + system) of the whole command, all
# ranks and threads, loading included: unlike images/s it hardly moves when
# other jobs share the machine, and shows what the data-parallel path costs.
# usage: bench/scaling.sh [HONE] [HONE_MPI] [STEPS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HONE=${1:-$ROOT/build/hone}
HONE_MPI=${2:-$ROOT/build/tests/hone_mpi}
STEPS=${3:-16}
BATCH=128
D=/usr/share/datasets/fashion-mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(finetune "$ROOT/models/fmnist_resnet14.onnx" --data "$D/train-images-idx3-ubyte.gz"
      --labels "$D/train-labels-idx1-ubyte.gz" --scale 0.00392156862745098 --mean 0.2860
      --std 0.3530 --limit $((STEPS * BATCH)) --epochs 1 --batch $BATCH --lr 0.01
      --schedule constant -o "$T/out.onnx")
field() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
run() { # name threads cmd...: output in $T/name.out, CPU seconds in $T/name.cpu
  local name=$1; shift
  local TIMEFORMAT='%U %S'
  { time OPENBLAS_NUM_THREADS=$1 "${@:2}" >"$T/$name.out" 2>"$T/$name.err" ||
      { cat "$T/$name.err"; exit 1; } ; } 2>"$T/$name.time"
  awk '{ print $1 + $2 }' "$T/$name.time" >"$T/$name.cpu"
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
run one1 1 "$HONE" "${ARGS[@]}"
run one2 2 "$HONE" "${ARGS[@]}"
run two 1 mpirun --oversubscribe --bind-to none --allow-run-as-root -x OPENBLAS_NUM_THREADS \
  -np 2 "$HONE_MPI" "${ARGS[@]}"
a=$(field images_per_s "$T/one1.out"); b=$(field images_per_s "$T/one2.out")
c=$(field images_per_s "$T/two.out")
bytes=$(field allreduce_bytes_per_step "$T/two.out"); ar=$(field allreduce_s "$T/two.out")
train_s=$(awk -v n=$((STEPS * BATCH)) -v r="$c" 'BEGIN { printf "%.2f", n / r }')
echo "load average before: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo
n=$((STEPS * BATCH))
echo "| set-up | images/s | vs 1 process, 1 thread | images per CPU-second | vs 1 process, 1 thread |"
echo "|---|---|---|---|---|"
awk -v a="$a" -v b="$b" -v c="$c" -v n=$n -v ca="$(cat "$T/one1.cpu")" \
    -v cb="$(cat "$T/one2.cpu")" -v cc="$(cat "$T/two.cpu")" 'BEGIN {
  printf "| 1 process, 1 thread | %.1f | 1.00 | %.1f | 1.00 |\n", a, n / ca
  printf "| 1 process, 2 threads | %.1f | %.2f | %.1f | %.2f |\n", b, b / a, n / cb, ca / cb
  printf "| mpirun -np 2, 1 thread each | %.1f | %.2f | %.1f | %.2f |\n", c, c / a, n / cc, ca / cc }'
echo
echo "allreduce per step and rank: $bytes bytes ($((bytes / 4)) float32 gradients)"
echo "rank 0 in allreduce: ${ar} s of ${train_s} s training ($(awk -v a="$ar" -v t="$train_s" 'BEGIN { printf "%.1f", 100 * a / t }')%)"
