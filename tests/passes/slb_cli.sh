#!/usr/bin/env bash
# slb end to end from the command line on the bundled fmnist_resnet14: a short slb run
# (4-bit weights, 8-bit activations) on 256 training images, the result scored on 300
# test images by `hone eval`, packed with pack-lowbit (same logits, smaller file) and
# run compiled after qdq-to-integer (ConvInteger: the integer conv kernel) with the logits close to the
# interpreter's; --strip keeps the logits and shrinks the file. Usage: slb_cli.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
FM=/usr/share/datasets/fashion-mnist
MODEL=$SRC/models/fmnist_resnet14.onnx
[ -f $FM/train-images-idx3-ubyte.gz ] || { echo "SKIP: Fashion-MNIST not installed at $FM"; exit 0; }
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
fail=0
die() { echo "FAIL $*"; fail=1; }

"$HONE" opt "$MODEL" --passes='slb{bits=4,acts=8,steps=2,samples=128}' -o "$T/q.onnx" \
  --data $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz "${NORM[@]}" \
  --limit 256 --val-split 64 >"$T/opt.out" 2>"$T/opt.err" || die "slb: $(tail -3 "$T/opt.err")"
grep -q "held-out top1" "$T/opt.err" || die "slb printed no held-out metric"
top1=$("$HONE" eval "$T/q.onnx" --data $FM/t10k-images-idx3-ubyte.gz \
  --labels $FM/t10k-labels-idx1-ubyte.gz "${NORM[@]}" --limit 300 2>/dev/null | awk '/top1/ { print $2 }')
awk -v t="${top1:-0}" 'BEGIN { exit !(t >= 0.85) }' || die "W4A8 top-1 on 300 test images is ${top1:-none}, want >= 0.85"

"$HONE" opt "$T/q.onnx" --passes=pack-lowbit -o "$T/p.onnx" >/dev/null 2>&1 || die "pack-lowbit failed"
[ "$(stat -c %s "$T/p.onnx")" -lt "$(stat -c %s "$T/q.onnx")" ] || die "packed file not smaller"
"$HONE" dump "$T/p.onnx" 2>/dev/null | grep -q "hone.DequantizePacked" || die "no packed weights"
/usr/bin/python3 - "$T/x.npy" <<'PY' || die "cannot write an input"
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(3).standard_normal((4, 1, 28, 28)).astype(np.float32))
PY
mkdir -p "$T/a" "$T/b" "$T/c"
"$HONE" run "$T/q.onnx" --input input="$T/x.npy" --output-dir "$T/a" >/dev/null 2>&1 || die "run q"
"$HONE" run "$T/p.onnx" --input input="$T/x.npy" --output-dir "$T/b" >/dev/null 2>&1 || die "run p"
cmp -s "$T/a/logits.npy" "$T/b/logits.npy" || die "packed and standard forms differ"
# compiled code keeps the packed weights packed (unpacked on the fly, not folded to float)
# and computes what the interpreter computes
"$HONE" compile "$T/p.onnx" --emit=llvm-ir -o "$T/p.ll" --input-shape input=4x1x28x28 >/dev/null 2>&1 ||
  die "compile of the packed form failed"
grep -q "hone_rt_dequantize_packed" "$T/p.ll" || die "packed weights were folded to float"
mkdir -p "$T/pj"
"$HONE" run "$T/p.onnx" --jit --input input="$T/x.npy" --output-dir "$T/pj" >/dev/null 2>&1 || die "run p --jit"
/usr/bin/python3 - "$T/b/logits.npy" "$T/pj/logits.npy" <<'PY' || die "compiled packed form differs from the interpreter"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
sys.exit(0 if np.abs(a - b).max() <= 1e-5 * np.abs(a).max() else 1)
PY
# --strip: short names, no value_info; same logits bit for bit, a smaller file, the
# graph's input and output names kept, none of the exporter's /layers/... names left.
"$HONE" opt "$T/p.onnx" -O0 --strip -o "$T/s.onnx" >/dev/null 2>&1 || die "opt --strip failed"
[ "$(stat -c %s "$T/s.onnx")" -lt "$(stat -c %s "$T/p.onnx")" ] || die "stripped file not smaller"
"$HONE" dump "$T/s.onnx" 2>/dev/null | grep -q "/layers" && die "stripped file keeps the original names"
mkdir -p "$T/s"
"$HONE" run "$T/s.onnx" --input input="$T/x.npy" --output-dir "$T/s" >/dev/null 2>&1 || die "run s"
cmp -s "$T/a/logits.npy" "$T/s/logits.npy" || die "stripped and standard forms differ"
# qdq-to-integer: fused hone.QConv nodes (conv, residual, Relu and QuantizeLinear in one)
# give the same bits as the unfused ConvInteger/Cast/Mul/Add chain (fuse=false), and the
# compiled code the same as the interpreter within float rounding of the other ops
"$HONE" opt "$T/q.onnx" --passes=qdq-to-integer -o "$T/i.onnx" >/dev/null 2>&1 || die "qdq-to-integer"
"$HONE" dump "$T/i.onnx" 2>/dev/null | grep -q "hone.QConv" || die "no hone.QConv after qdq-to-integer"
"$HONE" dump "$T/i.onnx" 2>/dev/null | grep -q "ConvInteger" && die "ConvInteger left after fusing"
"$HONE" opt "$T/q.onnx" --passes='qdq-to-integer{fuse=false}' -o "$T/u.onnx" >/dev/null 2>&1 ||
  die "qdq-to-integer{fuse=false}"
"$HONE" dump "$T/u.onnx" 2>/dev/null | grep -q "ConvInteger" || die "no ConvInteger with fuse=false"
mkdir -p "$T/fi" "$T/ui"
"$HONE" run "$T/i.onnx" --input input="$T/x.npy" --output-dir "$T/fi" >/dev/null 2>&1 || die "run i"
"$HONE" run "$T/u.onnx" --input input="$T/x.npy" --output-dir "$T/ui" >/dev/null 2>&1 || die "run u"
cmp -s "$T/fi/logits.npy" "$T/ui/logits.npy" || die "fused and unfused integer forms differ"
"$HONE" run "$T/i.onnx" --jit --input input="$T/x.npy" --output-dir "$T/c" >/dev/null 2>&1 || die "run --jit"
/usr/bin/python3 - "$T/fi/logits.npy" "$T/c/logits.npy" <<'PY' || die "compiled QConv model differs from the interpreter"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
sys.exit(0 if np.abs(a - b).max() <= 1e-5 * np.abs(a).max() else 1)
PY
/usr/bin/python3 - "$T/a/logits.npy" "$T/c/logits.npy" <<'PY' || die "compiled logits differ from the interpreter's"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
sys.exit(0 if np.abs(a - b).max() <= 0.05 * np.abs(a).max() and (a.argmax(1) == b.argmax(1)).all() else 1)
PY
# hone.QConv written by hand, weights a graph input (packed at run time in compiled code),
# residual, Relu and uint8 output: interpreter, JIT and a numpy reference agree exactly
cat >"$T/qc.txt" <<'IR'
graph qc (ir 8; ai.onnx 13; hone 1) {
  input %x: u8[2,4,9,7]
  input %w: i8[6,4,3,3]
  input %z: f32[2,6,9,7]
  const %xz: u8[] = [7]
  const %s: f32[6] = [0.01, 0.02, 0.03, 0.015, 0.025, 0.005]
  const %b: f32[6] = [0.5, -0.5, 1, -1, 0.25, 0]
  const %ys: f32[] = [0.05]
  const %yz: u8[] = [3]
  %y: u8[2,6,9,7] = hone.QConv(%x, %w, %xz, %s, %b, %z, %ys, %yz) {kernel_shape=[3,3], pads=[1,1,1,1], activation="Relu"}  # q
  output %y: u8[2,6,9,7]
}
IR
"$HONE" opt "$T/qc.txt" -O0 -o "$T/qc.onnx" >/dev/null 2>&1 || die "QConv text model"
/usr/bin/python3 - "$T" <<'PY' || die "cannot write QConv inputs"
import sys, numpy as np
r = np.random.default_rng(1)
np.save(sys.argv[1] + "/qx.npy", r.integers(0, 256, (2, 4, 9, 7)).astype(np.uint8))
np.save(sys.argv[1] + "/qw.npy", r.integers(-128, 128, (6, 4, 3, 3)).astype(np.int8))
np.save(sys.argv[1] + "/qz.npy", r.standard_normal((2, 6, 9, 7)).astype(np.float32))
PY
mkdir -p "$T/qa" "$T/qb"
Q=(--input x="$T/qx.npy" --input w="$T/qw.npy" --input z="$T/qz.npy")
"$HONE" run "$T/qc.onnx" "${Q[@]}" --output-dir "$T/qa" >/dev/null 2>&1 || die "run QConv"
"$HONE" run "$T/qc.onnx" --jit "${Q[@]}" --output-dir "$T/qb" >/dev/null 2>&1 || die "run QConv --jit"
cmp -s "$T/qa/y.npy" "$T/qb/y.npy" || die "compiled QConv differs from the interpreter"
/usr/bin/python3 - "$T" <<'PY' || die "QConv differs from the numpy reference"
import sys, numpy as np
t = sys.argv[1]
x = np.load(t + "/qx.npy").astype(np.int64) - 7
w = np.load(t + "/qw.npy").astype(np.int64)
z = np.load(t + "/qz.npy")
s = np.array([0.01, 0.02, 0.03, 0.015, 0.025, 0.005], np.float32)
b = np.array([0.5, -0.5, 1, -1, 0.25, 0], np.float32)
xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
acc = sum(np.einsum("ncij,mc->nmij", xp[:, :, ky:ky + 9, kx:kx + 7], w[:, :, ky, kx])
          for ky in range(3) for kx in range(3))
v = acc.astype(np.float32) * s[None, :, None, None] + b[None, :, None, None]
v = np.maximum((v + z).astype(np.float32), 0)
q = np.clip(np.rint((v / np.float32(0.05)).astype(np.float32)) + 3, 0, 255).astype(np.uint8)
sys.exit(0 if (q == np.load(t + "/qa/y.npy")).all() else 1)
PY
[ $fail = 0 ] && echo "slb_cli: all passed"
exit $fail
