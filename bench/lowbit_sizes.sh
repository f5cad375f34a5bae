#!/usr/bin/env bash
# File sizes of fmnist_resnet14 at each low-bit setting, in the three forms hone writes:
# standard ONNX (int8 codes + DequantizeLinear), packed (`pack-lowbit`: b-bit indices
# in hone.DequantizePacked) and packed + `hone opt --strip` (short value names, no node
# names, no value_info for intermediates). Sizes depend on the graph's structure only,
# not on the weights' values, so quantize-rtn gives every method's size; a 2-step slb run
# per setting checks that (its sizes are printed beside rtn's and must be equal). The
# stripped forms are compared with the fp32 model stripped the same way.
# usage: bench/lowbit_sizes.sh   env: HONE (build/hone)  SETTINGS ("1:32 2:32 4:32 4:8 8:8")
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone}
SETTINGS=${SETTINGS:-"1:32 2:32 4:32 4:8 8:8"}
MODEL=models/fmnist_resnet14.onnx
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
DATA=(--data $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz
      --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 --limit 512 --val-split 0.25)
size() { stat -c %s "$1"; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
FP=$(size "$MODEL")
$HONE opt "$MODEL" -O0 --strip -o "$T/fp.s.onnx" >/dev/null 2>&1
FPS=$(size "$T/fp.s.onnx")   # the fp32 model stripped too: its x smaller compares like with like
echo "| weights/acts | ONNX KB | packed KB | x smaller | packed+strip KB | x smaller than fp32+strip | slb sizes equal |"
echo "|---|---|---|---|---|---|---|"
echo "| fp32 | $(kb "$FP") | - | 1.00 | $(kb "$FPS") | 1.00 | - |"
for s in $SETTINGS; do
  wb=${s%:*} ab=${s#*:}
  for m in rtn slb; do
    case $m in
      rtn) p="quantize-rtn{bits=$wb,acts=$ab}" ;;
      slb) p="slb{bits=$wb,acts=$ab,steps=2,samples=128}" ;;
    esac
    $HONE opt "$MODEL" --passes="$p" -o "$T/$m.onnx" "${DATA[@]}" >/dev/null 2>"$T/$m.log" ||
      { tail -3 "$T/$m.log" >&2; exit 1; }
    $HONE opt "$T/$m.onnx" --passes=pack-lowbit -o "$T/$m.p.onnx" >/dev/null 2>&1
    $HONE opt "$T/$m.p.onnx" -O0 --strip -o "$T/$m.s.onnx" >/dev/null 2>&1
  done
  same=yes
  for f in .onnx .p.onnx .s.onnx; do
    [ "$(size "$T/rtn$f")" = "$(size "$T/slb$f")" ] || same="no ($f)"
  done
  q=$(size "$T/rtn.onnx") p=$(size "$T/rtn.p.onnx") st=$(size "$T/rtn.s.onnx")
  echo "| W$wb/A$ab | $(kb "$q") | $(kb "$p") | $(x "$FP" "$p") | $(kb "$st") | $(x "$FPS" "$st") | $same |"
done
