#!/usr/bin/env bash
# The abm pass and hone eval --shift-clips from the command line, on tiny TSN-style video
# models written here (text IR, seeded weights) and Fashion-MNIST images read as clips
# (784 pixels = 4 frames of 14x14). Usage: run_abm_cli.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { # name expected_rc expected_output_substring -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && grep -q -- "$pat" "$T/err" "$T/out"; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want, text '$pat'), output:"; head -5 "$T/err" "$T/out"; fi
}
FMD=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMD/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: $FMD missing (scripts/install-deps.sh installs it)"; exit 0
fi
X=$FMD/train-images-idx3-ubyte.gz; Y=$FMD/train-labels-idx1-ubyte.gz
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)

# weights NAME DIMS COUNT SEED: a constant line with seeded values in (-0.3, 0.3)
weights() {
  awk -v n="$1" -v d="$2" -v c="$3" -v s="$4" 'BEGIN {
    printf "  const %%%s: f32[%s] = [", n, d; x = s;
    for (i = 0; i < c; i++) { x = (x * 1103515245 + 12345) % 2147483648;
      printf "%s%.5f", (i ? ", " : ""), (x / 2147483648 - 0.5) * 0.6 }
    print "]" }'
}
# video F: a TSN over F frames of 1x14x14: stem, an identity block, a projection block,
# pooled features [N,F,8] averaged over time, 10 logits
video() {
  local F=$1
  echo "graph tsn$F (ir 8; ai.onnx 13) {"
  echo "  input %clip: f32[N,$F,1,14,14]"
  echo "  const %fs: i64[4] = [-1, 1, 14, 14]"
  echo "  const %hs: i64[3] = [-1, $F, 8]"
  weights w0 4,1,3,3 36 1; weights b0 4 4 2
  weights w1 4,4,3,3 144 3; weights b1 4 4 4
  weights w2 4,4,3,3 144 5; weights b2 4 4 6
  weights w3 8,4,3,3 288 7; weights b3 8 8 8
  weights w4 8,8,3,3 576 9; weights b4 8 8 10
  weights ws 8,4,1,1 32 11; weights bs 8 8 12
  weights fw 10,8 80 13; weights fb 10 10 14
  cat <<IR
  %f: f32[?,1,14,14] = Reshape(%clip, %fs)  # frames
  %s: f32[?,4,14,14] = Conv(%f, %w0, %b0) {kernel_shape=[3,3], pads=[1,1,1,1]}  # stem
  %sr: f32[?,4,14,14] = Relu(%s)  # stem_relu
  %a1: f32[?,4,14,14] = Conv(%sr, %w1, %b1) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b0c1
  %r1: f32[?,4,14,14] = Relu(%a1)  # b0r
  %a2: f32[?,4,14,14] = Conv(%r1, %w2, %b2) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b0c2
  %s1: f32[?,4,14,14] = Add(%a2, %sr)  # b0add
  %o1: f32[?,4,14,14] = Relu(%s1)  # b0out
  %a3: f32[?,8,7,7] = Conv(%o1, %w3, %b3) {kernel_shape=[3,3], pads=[1,1,1,1], strides=[2,2]}  # b1c1
  %r3: f32[?,8,7,7] = Relu(%a3)  # b1r
  %a4: f32[?,8,7,7] = Conv(%r3, %w4, %b4) {kernel_shape=[3,3], pads=[1,1,1,1]}  # b1c2
  %sc: f32[?,8,7,7] = Conv(%o1, %ws, %bs) {kernel_shape=[1,1], strides=[2,2]}  # b1sc
  %s2: f32[?,8,7,7] = Add(%a4, %sc)  # b1add
  %o2: f32[?,8,7,7] = Relu(%s2)  # b1out
  %gp: f32[?,8,1,1] = GlobalAveragePool(%o2)  # gap
  %fl: f32[?,8] = Flatten(%gp) {axis=1}  # flat
  %h: f32[?,$F,8] = Reshape(%fl, %hs)  # head_reshape
  %m: f32[?,8] = ReduceMean(%h) {axes=[1], keepdims=0}  # head
  %logits: f32[?,10] = Gemm(%m, %fw, %fb) {transB=1}  # fc
  output %logits: f32[?,10]
}
IR
}
video 4 > "$T/v4.txt"; video 2 > "$T/v2.txt"
check make-v4 0 "" -- "$HONE" opt "$T/v4.txt" --passes=dce -o "$T/v4.onnx"
check make-v2 0 "" -- "$HONE" opt "$T/v2.txt" --passes=dce -o "$T/v2.onnx"

# insertion keeps the function (both variants), at every block
check abm-exact-cin 0 "0 above tolerance" -- "$HONE" compare "$T/v4.onnx" --passes='abm{epochs=0,blocks=all}' --rtol 1e-4 --atol 1e-5
check abm-exact-ain 0 "0 above tolerance" -- "$HONE" compare "$T/v4.onnx" --passes='abm{epochs=0,blocks=all,variant=a-in,beta=0.25}' --rtol 1e-4 --atol 1e-5
check abm-log 0 "frames T=4" -- "$HONE" opt "$T/v4.onnx" --passes='abm{epochs=0}' -o "$T/e.onnx"
cp "$T/err" "$T/log"
check abm-paper-empty 0 "converting all" -- cat "$T/log"
# a non-video model: a clear error
check abm-not-video 1 "not a frame-level video model" -- "$HONE" opt "$SRC/models/fmnist_resnet14.onnx" --passes='abm{epochs=0}' -o "$T/x.onnx"
check abm-bad-blocks 1 "block numbers below 2" -- "$HONE" opt "$T/v4.onnx" --passes='abm{epochs=0,blocks=7}' -o "$T/x.onnx"
check abm-needs-data 1 "needs training clips" -- "$HONE" opt "$T/v4.onnx" --passes='abm{steps=2}' -o "$T/x.onnx"

# end to end: fine-tune, report, evaluate, compile and run the result
check abm-train 0 "fine-tuned 3 steps" -- "$HONE" opt "$T/v4.onnx" --passes='abm{blocks=all,steps=3,batch=8,lr=0.01}' --data "$X" --labels "$Y" "${NORM[@]}" --limit 64 --val-split 16 --report="$T/r.json" -o "$T/t.onnx"
check abm-report 0 '"trained":true' -- cat "$T/r.json"
check abm-eval 0 "top1 0" -- "$HONE" eval "$T/t.onnx" --data "$X" --labels "$Y" "${NORM[@]}" --limit 32
check abm-compile 0 "" -- "$HONE" compile "$T/t.onnx" --input-shape clip=2x4x1x14x14 -o "$T/t.so"

# shifting inference: the centred window alone equals plain eval of that window's frames
check shift-one 0 "windows 1 of 2 frames per 4-frame clip" -- "$HONE" eval "$T/v2.onnx" --data "$X" --labels "$Y" "${NORM[@]}" --limit 48 --shift-clips 1
grep top1 "$T/out" > "$T/s1"
# frames 1..2 of each 4-frame clip = bytes 196..587 of each 784-byte image
{ printf '\x00\x00\x08\x02\x00\x00\x00\x30\x00\x00\x01\x88'
  zcat "$X" | tail -c +17 | head -c $((48 * 784)) | od -An -v -tx1 | tr -s ' \n' '  ' |
    awk '{ for (i = 1; i <= NF; i++) { k = (i - 1) % 784; if (k >= 196 && k < 588) printf "\\x%s", $i } }' |
    xargs -0 printf '%b'; } > "$T/mid-idx2-ubyte"
{ printf '\x00\x00\x08\x01\x00\x00\x00\x30'; zcat "$Y" | tail -c +9 | head -c 48; } > "$T/y48-idx1-ubyte"
check shift-mid 0 "top1" -- "$HONE" eval "$T/v2.onnx" --data "$T/mid-idx2-ubyte" --labels "$T/y48-idx1-ubyte" "${NORM[@]}"
grep top1 "$T/out" > "$T/s2"
check shift-one-equal 0 "same" -- bash -c 'diff "$1" "$2" && echo same' _ "$T/s1" "$T/s2"
check shift-three 0 "windows 3 of 2 frames per 4-frame clip" -- "$HONE" eval "$T/v2.onnx" --data "$X" --labels "$Y" "${NORM[@]}" --limit 48 --shift-clips 3
check shift-too-many 1 "only 3 distinct windows" -- "$HONE" eval "$T/v2.onnx" --data "$X" --labels "$Y" "${NORM[@]}" --limit 8 --shift-clips 4
check shift-same-length 0 "windows 1 of 4 frames" -- "$HONE" eval "$T/v4.onnx" --data "$X" --labels "$Y" "${NORM[@]}" --limit 16 --shift-clips 1
check shift-not-video 1 "distinct windows" -- "$HONE" eval "$SRC/models/fmnist_resnet14.onnx" --data "$X" --labels "$Y" --limit 8 --shift-clips 2
check shift-psnr 2 "needs --metric top1" -- "$HONE" eval "$T/v2.onnx" --data "$X" --targets "$Y" --shift-clips 2
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
