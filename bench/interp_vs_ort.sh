#!/usr/bin/env bash
# hone's reference interpreter against ONNX Runtime 1.30 on torchvision models
# (random weights) and the shared reference models. Prints one row per model.
# usage: bench/interp_vs_ort.sh   (run from anywhere; needs ../shared for the shared models)
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
HONE=build/hone
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
printf '| model | output | max abs err | max rel err | argmax equal | status |\n|---|---|---|---|---|---|\n'
row() { # name model input_name input.npy
  local name=$1 model=$2 iname=$3 input=$4
  rm -rf "$T/h" "$T/o"; mkdir -p "$T/h" "$T/o"
  if ! $HONE run "$model" --input "$iname=$input" --output-dir "$T/h" >/dev/null 2>"$T/err"; then
    printf '| %s | - | - | - | - | hone failed: %s |\n' "$name" "$(head -c 200 "$T/err")"; return; fi
  node bench/ort_run.js "$model" "$T/o" "$iname=$input" >/dev/null
  for f in "$T"/o/*.npy; do
    local o; o=$(basename "$f")
    local r status=ok
    r=$(/usr/bin/python3 bench/npy_compare.py "$T/h/$o" "$f" 1e-4) || status="ABOVE 1e-4"
    set -- $r
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "${o%.npy}" "$2" "$4" "$6" "$status"
  done
}
for m in resnet18 resnet50 mobilenet_v2 squeezenet1_1; do
  row "$m" bench/models/$m.onnx input bench/models/$m.input.npy
done
SH=../shared/models
if [ -d "$SH" ]; then
  /usr/bin/python3 - "$T" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
t = sys.argv[1]
np.save(f"{t}/cls.npy", rng.standard_normal((4, 1, 28, 28)).astype(np.float32))
np.save(f"{t}/sr.npy", rng.random((4, 1, 14, 14)).astype(np.float32))
np.save(f"{t}/tsn.npy", rng.standard_normal((2, 8, 1, 28, 28)).astype(np.float32))
PY
  row fmnist_resnet14 $SH/fmnist_resnet14.onnx input "$T/cls.npy"
  row fmnist_sr_x2 $SH/fmnist_sr_x2.onnx lr "$T/sr.npy"
  row mfmnist_tsn $SH/mfmnist_tsn.onnx clip "$T/tsn.npy"
fi
