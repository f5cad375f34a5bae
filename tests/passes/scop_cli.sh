#!/usr/bin/env bash
# scop and prune-l1 from the command line on the bundled Fashion-MNIST ResNet with a tiny
# budget: the pruned model is smaller (FLOPs and params from the report), still classifies
# (top-1 on 500 test images), label-free distillation runs, compile prunes and compiles in
# one command, and bad options fail clearly. Usage: scop_cli.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
FMD=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMD/train-images-idx3-ubyte.gz" ]; then echo "skip: $FMD missing"; exit 0; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
FM=$SRC/models/fmnist_resnet14.onnx
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
TRAIN=(--data "$FMD/train-images-idx3-ubyte.gz" --labels "$FMD/train-labels-idx1-ubyte.gz" "${NORM[@]}" --limit 384)
TEST=(--data "$FMD/t10k-images-idx3-ubyte.gz" --labels "$FMD/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" --limit 500)
TINY="beta-steps=3,ft-steps=6,batch=32"
pass=0; fail=0
check() { # name expected_rc pattern(in stdout+stderr, "" for none) -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -q -E -- "$pat" "$T/out" "$T/err"; }; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want, pattern '$pat'), output:"; tail -n 5 "$T/err" "$T/out"; fi
}
# value of "key": N in a JSON report
num() { grep -o "\"$1\":[0-9][0-9.e+-]*" "$2" | head -1 | cut -d: -f2; }
ratio_below() { # name a b limit: a/b < limit
  if awk -v a="$2" -v b="$3" -v l="$4" 'BEGIN { exit !(b > 0 && a / b < l) }'; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $1: $2 / $3 not below $4"; fi
}
top1_at_least() { # name min: top-1 printed by the last command
  local v; v=$(grep -o 'top1 [0-9.]*' "$T/out" "$T/err" | head -1 | awk '{print $2}')
  if awk -v v="${v:-0}" -v m="$2" 'BEGIN { exit !(v >= m) }'; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $1: top1 '${v}' below $2"; fi
}

check scop 0 "held-out top1" -- "$HONE" opt "$FM" --passes="scop{flops=0.5,$TINY}" "${TRAIN[@]}" --report "$T/s.json" -o "$T/s.onnx"
check scop-report 0 '"layers pruned": 6' -- cat "$T/s.json"
check scop-detail 0 '"method":"scop","layers":\[\{"conv":"/layers/layers.0/c1/Conv"' -- cat "$T/s.json"
ratio_below scop-flops "$(num flops_after "$T/s.json")" "$(num flops_before "$T/s.json")" 0.51
ratio_below scop-params "$(num params_after "$T/s.json")" "$(num params_before "$T/s.json")" 0.7
check scop-no-bn 1 "" -- grep -q BatchNormalization <("$HONE" dump "$T/s.onnx")
check scop-eval 0 "top1" -- "$HONE" eval "$T/s.onnx" "${TEST[@]}"
top1_at_least scop-accuracy 0.5

check l1 0 "" -- "$HONE" opt "$FM" --passes="prune-l1{rate=0.5,ft-steps=6,batch=32}" "${TRAIN[@]}" --report "$T/l.json" -o "$T/l.onnx"
check l1-detail 0 '"method":"prune-l1".*"channels":64,"kept":32' -- cat "$T/l.json"
check l1-eval 0 "top1" -- "$HONE" eval "$T/l.onnx" "${TEST[@]}"
top1_at_least l1-accuracy 0.5

# label-free: distils from the original model, metric = agreement with it
check scop-label-free 0 "held-out agree" -- "$HONE" opt "$FM" --passes="scop{rate=0.4,knockoff=noise,$TINY}" \
  --data "$FMD/train-images-idx3-ubyte.gz" "${NORM[@]}" --limit 256 -o "$T/f.onnx"

# one command: prune, then the -O3 pipeline (BN folded, conv+relu fused), then native code
check compile 0 "wrote" -- "$HONE" compile "$FM" --passes="scop{flops=0.3,$TINY}" "${TRAIN[@]}" \
  --input-shape input=1x1x28x28 -o "$T/m.so"
check compile-so 0 "" -- test -s "$T/m.so"

check no-data 1 "pass 'scop' needs training data" -- "$HONE" opt "$FM" --passes=scop{rate=0.4} -o "$T/x.onnx"
check bad-knockoff 1 "knockoff must be permute or noise" -- "$HONE" opt "$FM" --passes="scop{rate=0.4,knockoff=gan,$TINY}" "${TRAIN[@]}" -o "$T/x.onnx"
check no-target 1 "give rate=, flops= or params=" -- "$HONE" opt "$FM" --passes="prune-l1{ft-steps=1}" "${TRAIN[@]}" -o "$T/x.onnx"
check too-much 1 "out of reach" -- "$HONE" opt "$FM" --passes="prune-l1{flops=0.99,ft-steps=1}" "${TRAIN[@]}" -o "$T/x.onnx"

echo "scop_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
