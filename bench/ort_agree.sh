#!/usr/bin/env bash
# How often ONNX Runtime and hone's interpreter predict the same class on the 10,000
# Fashion-MNIST test images, for models written as standard ONNX (slb and its ablations),
# with ONNX Runtime at its full graph optimisation ("all": it fuses QuantizeLinear /
# DequantizeLinear pairs around a conv into its own int8 kernels, which requantize in their
# own arithmetic) and with graph optimisations disabled (every op run as the ONNX spec
# defines it, the semantics hone's interpreter implements). Also how often the two ONNX
# Runtime modes agree with each other. Prints one markdown row per model.
# usage: bench/ort_agree.sh MODEL.onnx...    env: HONE (build/hone)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone}
ORT_DIR=bench; [ -d bench/node_modules ] || ORT_DIR=/work/main/bench
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CHUNKS=$(/usr/bin/python3 bench/slb_eval.py prep "$T" 2500)
echo "| model | ORT (all) agree % | ORT (disabled) agree % | ORT all vs disabled % |"
echo "|---|---|---|---|"
for m in "$@"; do
  for ((k = 0; k < CHUNKS; k++)); do
    mkdir -p "$T/h$k" "$T/a$k" "$T/d$k"
    "$HONE" run "$m" --input input="$T/t$k.npy" --output-dir "$T/h$k" >/dev/null
    node "$ORT_DIR/ort_run.js" "$m" "$T/a$k" input="$T/t$k.npy" >/dev/null
    ORT_OPT_LEVEL=disabled node "$ORT_DIR/ort_run.js" "$m" "$T/d$k" input="$T/t$k.npy" >/dev/null
  done
  /usr/bin/python3 - "$T" "$CHUNKS" "$(basename "$m" .onnx)" <<'PY'
import sys, glob, numpy as np
t, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
load = lambda p: np.concatenate([np.load(glob.glob(f"{t}/{p}{k}/*.npy")[0]) for k in range(n)]).argmax(1)
h, a, d = load("h"), load("a"), load("d")
print(f"| {name} | {100 * (h == a).mean():.2f} | {100 * (h == d).mean():.2f} | {100 * (a == d).mean():.2f} |")
PY
  rm -rf "$T"/h* "$T"/a* "$T"/d*
done
