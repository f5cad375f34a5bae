#!/usr/bin/env bash
# hone eval on the shared reference models against their published metrics
# (../shared/models/reference_metrics_*.json); with --write-doc the table goes into
# docs/CONFORMANCE.md under "## Reference accuracy".
# usage: bench/reference_eval.sh [--write-doc]      env: HONE (build/hone), HONE_SHARED (../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone} S=${HONE_SHARED:-../shared} DOC=docs/CONFORMANCE.md
F=/usr/share/datasets/fashion-mnist
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
NORM="--scale 0.00392156862745098 --mean 0.2860 --std 0.3530"
ref() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$S/models/$1')); v=list(d.values())[0]; print(v['$2'])"; }
run() { # name reference metric-line-command...
  local name=$1 want=$2; shift 2
  local t0 t1 got
  t0=$(date +%s.%N); got=$("$@" | tail -1); t1=$(date +%s.%N)
  printf '| %s | %s | %s | %.1f |\n' "$name" "$got" "$want" "$(echo "$t1 - $t0" | bc)"
}
{
  echo '| model and data | hone eval | reference | seconds |'
  echo '|---|---|---|---|'
  run "fmnist_resnet14, Fashion-MNIST t10k (10,000 images)" "top1 $(ref reference_metrics_cls.json test_top1) (PyTorch)" \
    "$HONE" eval "$S/models/fmnist_resnet14.onnx" --data "$F/t10k-images-idx3-ubyte.gz" \
    --labels "$F/t10k-labels-idx1-ubyte.gz" $NORM
  run "fmnist_sr_x2, data/fmnist_sr (2,000 images)" "psnr $(ref reference_metrics_sr.json data_fmnist_sr_2000_psnr_db_onnxruntime) (ONNX Runtime)" \
    "$HONE" eval "$S/models/fmnist_sr_x2.onnx" --data "$S/data/fmnist_sr/test_lr.npy" \
    --targets "$S/data/fmnist_sr/test_hr.npy" --target-scale 0.00392156862745098 --metric psnr
  run "mfmnist_tsn, data/moving_fmnist test (2,000 clips)" "top1 $(ref reference_metrics_temporal.json test_top1) (PyTorch)" \
    "$HONE" eval "$S/models/mfmnist_tsn.onnx" --data "$S/data/moving_fmnist/test_x.npy" \
    --labels "$S/data/moving_fmnist/test_y.npy" $NORM
} | tee "$T/table"
[ "${1:-}" = --write-doc ] || exit 0
{
  echo "## Reference accuracy"
  echo
  echo "\`hone eval\` (interpreter) on the shared reference models and their data, against the"
  echo "metrics measured when they were made. Command: \`bench/reference_eval.sh --write-doc\`"
  echo "($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))."
  echo
  cat "$T/table"
} > "$T/section"
awk -v sec="$T/section" '
  /^## / { skip = ($0 == "## Reference accuracy") }
  skip && !done { while ((getline l < sec) > 0) print l; print ""; done = 1 }
  !skip { print }
  END { if (!done) { print ""; while ((getline l < sec) > 0) print l } }
' "$DOC" > "$T/doc" && mv "$T/doc" "$DOC"
echo "reference_eval: wrote the section into $DOC" >&2
