#!/usr/bin/env bash
# hone's main job on the bundled default: take the bundled Fashion-MNIST classifier,
# optimise it with the default pipeline, show what changed, check that the optimised
# model computes the same function, and evaluate both on the Fashion-MNIST test set.
# usage: scripts/demo.sh [HONE]   (make demo passes the freshly built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${1:-build/hone}
MODEL=models/fmnist_resnet14.onnx
DATA=/usr/share/datasets/fashion-mnist
OUT=out/demo
LIMIT=${HONE_DEMO_LIMIT:-10000}
mkdir -p "$OUT"
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)

echo "== 1. the bundled model: $MODEL"
"$HONE" stats "$MODEL" --input-shape input=1x1x28x28

echo
echo "== 2. optimise with the default pipeline (-O3), timing each pass"
"$HONE" opt "$MODEL" -O3 -o "$OUT/fmnist_resnet14.opt.onnx" --time-passes --report "$OUT/report.json"
echo "   wrote $OUT/fmnist_resnet14.opt.onnx and $OUT/report.json"

echo
echo "== 3. what changed"
"$HONE" stats "$OUT/fmnist_resnet14.opt.onnx" --input-shape input=1x1x28x28

echo
echo "== 4. same function? every value compared, original vs optimised (seeded random input)"
"$HONE" compare "$MODEL" -O3 | tail -4

echo
echo "== 5. compile to native code (LLVM), then latency on a batch of 2 images: interpreter vs compiled"
"$HONE" compile "$OUT/fmnist_resnet14.opt.onnx" -o "$OUT/fmnist_resnet14.so" --name fmnist \
  --input-shape input=1x1x28x28 | sed 's/^/   /'
echo "   (and $OUT/fmnist_resnet14.h: the C header a program includes to call fmnist_run)"
X=tests/backend/fmnist_x.npy
"$HONE" run "$MODEL" --input input=$X --repeat 200 | grep latency | sed 's/^/   original, /'
"$HONE" run "$OUT/fmnist_resnet14.opt.onnx" --input input=$X --jit --repeat 200 | grep latency \
  | sed 's/^/   optimised, /'

echo
echo "== 6. accuracy on the Fashion-MNIST test set ($LIMIT images), original vs optimised"
"$HONE" eval "$MODEL" --data "$DATA/t10k-images-idx3-ubyte.gz" --labels "$DATA/t10k-labels-idx1-ubyte.gz" \
  "${NORM[@]}" --limit "$LIMIT" | tail -1 | sed 's/^/   original:  /'
"$HONE" eval "$OUT/fmnist_resnet14.opt.onnx" --data "$DATA/t10k-images-idx3-ubyte.gz" \
  --labels "$DATA/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" --limit "$LIMIT" | tail -1 | sed 's/^/   optimised: /'

echo
echo "== 7. SCOP knockoff pruning: remove half the FLOPs, fine-tune, compile (quick budget: ${HONE_DEMO_SCOP_TRAIN:-6000}"
echo "   training images, a 10% held-out split of them for the before/after metric; the full run is bench/scop_results.sh)"
TRAIN=(--data "$DATA/train-images-idx3-ubyte.gz" --labels "$DATA/train-labels-idx1-ubyte.gz" "${NORM[@]}"
       --limit "${HONE_DEMO_SCOP_TRAIN:-6000}")
"$HONE" opt "$MODEL" --passes='scop{flops=0.5,beta-steps=30,ft-steps=120}' "${TRAIN[@]}" \
  --report "$OUT/scop.json" -o "$OUT/fmnist_resnet14.scop.onnx" 2>&1 | grep -v 'step [0-9]*/' | sed 's/^/   /'
echo "   (per-layer widths, params, FLOPs, metrics and phase times: $OUT/scop.json)"
"$HONE" opt "$OUT/fmnist_resnet14.scop.onnx" -O3 -o "$OUT/fmnist_resnet14.scop.opt.onnx" >/dev/null
"$HONE" compile "$OUT/fmnist_resnet14.scop.onnx" -o "$OUT/fmnist_resnet14.scop.so" --name fmnist_scop \
  --input-shape input=1x1x28x28 | sed 's/^/   /'
echo "   latency on a batch of 2 images, compiled: original (-O3) vs SCOP-pruned (-O3)"
"$HONE" run "$OUT/fmnist_resnet14.opt.onnx" --input input=$X --jit --repeat 200 | grep latency \
  | sed 's/^/   original, /'
"$HONE" run "$OUT/fmnist_resnet14.scop.opt.onnx" --input input=$X --jit --repeat 200 | grep latency \
  | sed 's/^/   pruned,   /'
echo "   accuracy on the Fashion-MNIST test set ($LIMIT images)"
"$HONE" eval "$MODEL" --data "$DATA/t10k-images-idx3-ubyte.gz" --labels "$DATA/t10k-labels-idx1-ubyte.gz" \
  "${NORM[@]}" --limit "$LIMIT" | tail -1 | sed 's/^/   original: /'
"$HONE" eval "$OUT/fmnist_resnet14.scop.onnx" --data "$DATA/t10k-images-idx3-ubyte.gz" \
  --labels "$DATA/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" --limit "$LIMIT" | tail -1 | sed 's/^/   pruned:   /'
echo "   (one command does prune + -O3 + native code: hone compile $MODEL --passes='scop{flops=0.5}' \\"
echo "    --data ... --labels ... --input-shape input=1x1x28x28 -o m.so)"
