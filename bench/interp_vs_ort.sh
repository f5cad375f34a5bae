#!/usr/bin/env bash
# hone's reference interpreter against ONNX Runtime 1.30 on torchvision models
# (random weights) and the shared reference models. Prints one table row per
# model output (max abs error, max error relative to the largest reference
# magnitude, whether the argmax of each sample agrees) and, with --write-doc,
# puts the table into docs/CONFORMANCE.md under "## Interpreter vs ONNX Runtime"
# (the section is replaced, the rest of the file kept; the file is created when
# missing).
# usage: bench/interp_vs_ort.sh [--write-doc]
# env:   HONE (build/hone)  HONE_SHARED (../shared)  DOC (docs/CONFORMANCE.md)
#        SKIP_SETUP=1 (do not run bench/setup.sh)  RTOL (1e-4: the pass threshold)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bench/setup.sh >&2
HONE=${HONE:-build/hone} SHARED=${HONE_SHARED:-../shared} DOC=${DOC:-docs/CONFORMANCE.md}
RTOL=${RTOL:-1e-4}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# Text fit for a table cell: one line, no '|', at most 160 characters.
cell() { tr '\n|' ' /' <"$1" | head -c 160; }

row() { # name model input_name input.npy
  local name=$1 model=$2 iname=$3 input=$4
  rm -rf "$T/h" "$T/o"; mkdir -p "$T/h" "$T/o"
  if ! $HONE run "$model" --input "$iname=$input" --output-dir "$T/h" >/dev/null 2>"$T/err"; then
    printf '| %s | - | - | - | - | hone failed: %s |\n' "$name" "$(cell "$T/err")"; return; fi
  if ! node bench/ort_run.js "$model" "$T/o" "$iname=$input" >/dev/null 2>"$T/err"; then
    printf '| %s | - | - | - | - | ORT failed: %s |\n' "$name" "$(cell "$T/err")"; return; fi
  for f in "$T"/o/*.npy; do
    local o; o=$(basename "$f")
    if [ ! -f "$T/h/$o" ]; then
      printf '| %s | %s | - | - | - | hone wrote no %s |\n' "$name" "${o%.npy}" "$o"; continue; fi
    local r status=ok
    r=$(/usr/bin/python3 bench/npy_compare.py "$T/h/$o" "$f" "$RTOL") || status="ABOVE $RTOL"
    set -- $r
    if [ "$1" != max_abs ]; then
      printf '| %s | %s | - | - | - | %s |\n' "$name" "${o%.npy}" "$r"; continue; fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "${o%.npy}" "$2" "$4" "$6" "$status"
  done
}

table() {
  printf '| model | output | max abs err | max rel err | argmax equal | status |\n'
  printf '|---|---|---|---|---|---|\n'
  for m in resnet18 resnet50 mobilenet_v2 squeezenet1_1; do
    row "$m" bench/models/$m.onnx input bench/models/$m.input.npy
  done
  [ -d "$SHARED/models" ] || return 0
  /usr/bin/python3 bench/shared_inputs.py "$T" 4 2
  row fmnist_resnet14 $SHARED/models/fmnist_resnet14.onnx input "$T/cls.npy"
  row fmnist_sr_x2 $SHARED/models/fmnist_sr_x2.onnx lr "$T/sr.npy"
  row mfmnist_tsn $SHARED/models/mfmnist_tsn.onnx clip "$T/tsn.npy"
}

# The document section: how it was made, then the table.
section() {
  echo "## Interpreter vs ONNX Runtime"
  echo
  echo "\`hone run\` (the reference interpreter) against ONNX Runtime"
  echo "$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' bench/node_modules/onnxruntime-node/package.json) (onnxruntime-node, CPU) on the same inputs: torchvision models with"
  echo "random weights (batch 1, 224x224, bench/export_torchvision.py) and the shared reference"
  echo "models (random inputs, batch 4, or 2 clips for mfmnist_tsn). Max rel err is the max abs"
  echo "error divided by the largest reference magnitude; status is ok when it is at most $RTOL."
  echo "Measured by \`bench/interp_vs_ort.sh --write-doc\` on $(date -u '+%Y-%m-%d') with \`$HONE\`,"
  echo "in a checkout at commit $(git rev-parse --short HEAD)."
  [ -z "${BENCH_NOTE:-}" ] || { echo; echo "$BENCH_NOTE"; }
  echo
  cat "$T/table"
}

# Replaces (or appends) the section in $DOC, keeping every other section.
write_doc() {
  section >"$T/section"
  mkdir -p "$(dirname "$DOC")"
  [ -f "$DOC" ] || : >"$DOC"
  awk -v sec="$T/section" '
    /^## / { skip = ($0 == "## Interpreter vs ONNX Runtime") }
    skip && !done { while ((getline l < sec) > 0) print l; print ""; done = 1 }
    !skip { print }
    END { if (!done) { if (NR) print ""; while ((getline l < sec) > 0) print l } }
  ' "$DOC" >"$T/doc"
  mv "$T/doc" "$DOC"
  echo "interp_vs_ort: wrote the section into $DOC" >&2
}

table | tee "$T/table"
[ "${1:-}" != --write-doc ] || write_doc
