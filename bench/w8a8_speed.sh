#!/usr/bin/env bash
# W8A8 against fp32, both compiled by hone, on torchvision ResNet-18 (random weights,
# bench/models/resnet18.onnx from bench/setup.sh): quantize-rtn{bits=8,acts=8} calibrated
# on 32 random N(0,1) images, `hone compile` (-O3: qdq-to-integer turns the quantized convs
# into ConvInteger, the VNNI kernel on weights packed at compile time) at batch 1, then
# ROUNDS alternating rounds of REPEAT runs of each with bench/latency (THREADS threads):
# median and fastest per round, and the speed-up from the medians' and the minima's means.
# Also whether ONNX Runtime and hone's interpreter pick the same class for the quantized
# model. Prints markdown.
# usage: bench/w8a8_speed.sh   env: HONE LATENCY THREADS (2) ROUNDS (5) REPEAT (20)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-5} REPEAT=${REPEAT:-20}
ORT_DIR=bench; [ -d bench/node_modules ] || ORT_DIR=/work/main/bench
M=$ORT_DIR/models/resnet18.onnx X=$ORT_DIR/models/resnet18.input.npy
[ -f "$M" ] || { echo "w8a8_speed: $M missing (bench/setup.sh exports it)" >&2; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
/usr/bin/python3 bench/slb_eval.py random "$T/cal.npy" 32 3 224 224
"$HONE" opt "$M" --passes='quantize-rtn{bits=8,acts=8,keep-first=false,samples=32}' \
  -o "$T/q.onnx" --data "$T/cal.npy" --val-split 0 >/dev/null 2>"$T/q.log" || { cat "$T/q.log" >&2; exit 1; }
"$HONE" compile "$M" -o "$T/f.so" --name m --input-shape input=1x3x224x224 >/dev/null
"$HONE" compile "$T/q.onnx" -o "$T/q.so" --name m --input-shape input=1x3x224x224 >/dev/null
lat() { "$LATENCY" "$1" --name m --input input="$X" --repeat "$REPEAT" --threads "$THREADS"; }
echo "| round | fp32 median ms | W8A8 median ms | fp32 min ms | W8A8 min ms |"
echo "|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  lat "$T/f.so" >"$T/f.txt"; lat "$T/q.so" >"$T/q.txt"
  v() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
  echo "| $r | $(v median_ms "$T/f.txt") | $(v median_ms "$T/q.txt") | $(v min_ms "$T/f.txt") | $(v min_ms "$T/q.txt") |" |
    tee -a "$T/rows"
done
awk -F'|' '{ fm += $3; qm += $4; fn += $5; qn += $6; n++ }
  END { printf "\nSpeed-up of W8A8 over fp32: %.2fx from the mean medians (%.2f / %.2f ms), %.2fx from the mean minima (%.2f / %.2f ms).\n", fm / qm, fm / n, qm / n, fn / qn, fn / n, qn / n }' "$T/rows"
mkdir -p "$T/h" "$T/o"
"$HONE" run "$T/q.onnx" --input input="$X" --output-dir "$T/h" >/dev/null
node "$ORT_DIR/ort_run.js" "$T/q.onnx" "$T/o" input="$X" >/dev/null
/usr/bin/python3 -c "import numpy as n,glob; a=n.load(glob.glob('$T/h/*.npy')[0]); b=n.load(glob.glob('$T/o/*.npy')[0]); print('ONNX Runtime and hone pick the same class: ' + ('yes' if (a.argmax(1)==b.argmax(1)).all() else 'no') + ' (max difference %.2g of max %.2g).' % (abs(a-b).max(), abs(a).max()))"
echo "Files: fp32 $(($(stat -c %s "$M") / 1024)) KB, W8A8 $(($(stat -c %s "$T/q.onnx") / 1024)) KB; threads $THREADS; load average $(cut -d' ' -f1-3 /proc/loadavg)."
