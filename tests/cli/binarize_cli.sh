#!/usr/bin/env bash
# End-to-end binarize from the command line on the bundled fmnist_resnet14 (a few
# training steps): hone opt binarize (W1A1, label-free), hone eval, the compiled
# model (--jit) printing exactly the interpreter's numbers, and --portable writing
# standard ONNX only. The pass trains on test images here: this checks the plumbing,
# not accuracy. Usage: binarize_cli.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then echo "skipped: $FM not installed"; exit 0; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
NORM="--scale 0.00392156862745098 --mean 0.2860 --std 0.3530"
fail=0
bad() { echo "FAIL $1"; head -5 "$T/err" 2>/dev/null; fail=1; }
"$HONE" opt "$SRC/models/fmnist_resnet14.onnx" -o "$T/b.onnx" \
  --passes='binarize{steps=2,batch=16,acts=sign,samples=32}' --report "$T/r.json" \
  --data "$FM/t10k-images-idx3-ubyte.gz" $NORM --limit 96 --val-split 32 >"$T/out" 2>"$T/err" \
  || bad "opt binarize"
grep -q "12 convs binarized (lns, W1A1)" "$T/err" || bad "pass log line"
grep -q '"binary_bytes"' "$T/r.json" || bad "report detail"
"$HONE" dump "$T/b.onnx" >"$T/dump" 2>"$T/err" || bad "dump"
[ "$(grep -c 'hone.BinaryConv' "$T/dump")" = 12 ] || bad "12 BinaryConv nodes"
grep -q 'SignSTE\|NoisyLabelLoss\|BatchNormalization' "$T/dump" && bad "training nodes left"
"$HONE" eval "$T/b.onnx" --data "$FM/t10k-images-idx3-ubyte.gz" \
  --labels "$FM/t10k-labels-idx1-ubyte.gz" $NORM --limit 64 >"$T/out" 2>"$T/err" || bad "eval"
grep -q '^top1 0\.[0-9]*' "$T/out" || bad "eval prints top1"
"$HONE" run "$T/b.onnx" --input "$SRC/tests/cli/data/fmnist_x1.npy" >"$T/i" 2>"$T/err" || bad "run"
"$HONE" run "$T/b.onnx" --input "$SRC/tests/cli/data/fmnist_x1.npy" --jit >"$T/j" 2>"$T/err" \
  || bad "run --jit"
cmp -s "$T/i" "$T/j" || bad "jit output differs from the interpreter: $(cat "$T/i" "$T/j")"
"$HONE" opt "$T/b.onnx" -O0 --portable -o "$T/p.onnx" >"$T/out" 2>"$T/err" || bad "--portable"
grep -q "12 hone.BinaryConv rewritten" "$T/err" || bad "portable count"
"$HONE" dump "$T/p.onnx" >"$T/pd" 2>"$T/err" || bad "dump portable"
grep -q 'hone' "$T/pd" && bad "portable model still uses the hone domain"
exit $fail
