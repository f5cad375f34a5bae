#!/usr/bin/env bash
# The default pipeline (-O2) on real exports: what is left of BatchNormalization,
# Identity/Dropout and shape-computation subgraphs, the largest error of any value
# against the unoptimised model (hone compare, seeded random input), and the pipeline's
# wall time (--time-passes). Prints a markdown table.
# usage: bench/passes_check.sh   (needs bench/setup.sh's models; ../shared for the shared ones)
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
HONE=build/hone
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
SHAPE_OPS='Shape|Size|ConstantOfShape|Range|Constant'  # ops that only exist to compute shapes
count() { "$HONE" dump "$1" | grep -cE " = ($2)\(" || true; }
printf '| model | nodes before -> after | BN left | Identity/Dropout left | shape ops left | max err / scale | values compared | -O2 wall ms | ORT on -O2 output vs hone on original |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
row() { # name model [input_name input.npy]
  local name=$1 m=$2 iname=${3:-} input=${4:-}
  "$HONE" opt "$m" -O2 -o "$T/o.onnx" --time-passes 2>"$T/time" >"$T/opt"
  local before after ms
  before=$("$HONE" dump "$m" | grep -c ' = ')
  after=$("$HONE" dump "$T/o.onnx" | grep -c ' = ')
  ms=$(awk '/^total/{print $2}' "$T/time")
  "$HONE" compare "$m" -O2 --rtol 1e-5 > "$T/cmp" || true
  local maxrel ncmp
  # largest error relative to the value's scale (max abs err / max |original|) over all values
  maxrel=$(awk '$1!="value" && NF>=5 && $NF~/^[0-9.e+-]+$/ {if ($NF+0>m) m=$NF+0} END{printf "%.1e", m}' "$T/cmp")
  ncmp=$(tail -1 "$T/cmp")
  local ort="-"
  if [ -n "$input" ]; then  # other runtimes must open what hone opt writes
    rm -rf "$T/h" "$T/r"; mkdir -p "$T/h" "$T/r"
    "$HONE" run "$m" --input "$iname=$input" --output-dir "$T/h" >/dev/null
    node bench/ort_run.js "$T/o.onnx" "$T/r" "$iname=$input" >/dev/null
    ort=$(/usr/bin/python3 bench/npy_compare.py "$T/h/output.npy" "$T/r/output.npy" 1e-4 || true)
  fi
  printf '| %s | %s -> %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$before" "$after" \
    "$(count "$T/o.onnx" BatchNormalization)" "$(count "$T/o.onnx" 'Identity|Dropout')" \
    "$(count "$T/o.onnx" "$SHAPE_OPS")" "$maxrel" "$ncmp" "$ms" "$ort"
}
for m in resnet50 mobilenet_v2 resnet18 squeezenet1_1; do
  row "${m}_raw" "bench/models/${m}_raw.onnx" input "bench/models/$m.input.npy"
done
if [ -d ../shared/models ]; then
  for m in fmnist_resnet14 fmnist_sr_x2 mfmnist_tsn; do row "$m" "../shared/models/$m.onnx"; done
fi
