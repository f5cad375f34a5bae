#!/usr/bin/env bash
# Latency of the less common ops the LLVM backend lowers (backend/lower_extra.c)
# against the reference interpreter, measured in the same run: a batch matmul
# Einsum (bij,bjk->bik, 16x64x64), a bicubic reflection-padded GridSample
# (8x64x64 image, 64x64 grid) and a TopK (k = 5 of 1000, 256 rows). Each model
# is written from text IR, its inputs drawn uniformly (fixed seed), and run
# with `hone run --repeat REPEAT` in the interpreter and with --jit; prints the
# best and mean latency of each and the ratio interpreter / JIT (best times).
#
# usage: bench/extra_ops.sh
# env:   HONE (build/hone)  REPEAT (20)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone} REPEAT=${REPEAT:-20}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# npy NAME DIMS LO HI: a float32 .npy of uniform values (python3 standard library only).
npy() {
  python3 - "$T/$1.npy" "$2" "$3" "$4" <<'EOF'
import random, struct, sys
path, dims, lo, hi = sys.argv[1], [int(d) for d in sys.argv[2].split(',')], float(sys.argv[3]), float(sys.argv[4])
random.seed(path)
n = 1
for d in dims:
    n *= d
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s,), }" % ", ".join(map(str, dims))
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % n, *[random.uniform(lo, hi) for _ in range(n)]))
EOF
}

# model NAME TEXT: the ONNX model of a text IR graph.
model() {
  printf '%s\n' "$2" > "$T/$1.txt"
  "$HONE" opt "$T/$1.txt" -O0 -o "$T/$1.onnx" >/dev/null
}

model ein 'graph ein (ir 8; ai.onnx 13) {
  input %a: f32[16,64,64]
  input %b: f32[16,64,64]
  %y: f32[16,64,64] = Einsum(%a, %b) {equation="bij,bjk->bik"}
  output %y: f32[16,64,64]
}'
model gs 'graph gs (ir 8; ai.onnx 16) {
  input %x: f32[1,8,64,64]
  input %g: f32[1,64,64,2]
  %y: f32[1,8,64,64] = GridSample(%x, %g) {mode="bicubic", padding_mode="reflection"}
  output %y: f32[1,8,64,64]
}'
model tk 'graph tk (ir 8; ai.onnx 13) {
  input %x: f32[256,1000]
  const %k: i64[1] = [5]
  %v: f32[256,5], %i: i64[256,5] = TopK(%x, %k)
  output %v: f32[256,5]
  output %i: i64[256,5]
}'
npy a 16,64,64 -1 1; npy b 16,64,64 -1 1
npy x 1,8,64,64 -1 1; npy g 1,64,64,2 -1.2 1.2
npy t 256,1000 -1 1

# best NAME ARGS...: "best mean" latency in ms of one configuration.
best() {
  "$HONE" run "$T/$1.onnx" "${@:2}" --repeat "$REPEAT" 2>&1 |
    sed -n 's/^latency ([a-z]*): mean \([0-9.]*\) ms, best \([0-9.]*\) ms.*/\2 \1/p'
}

printf '%-10s %22s %22s %8s\n' op "interpreter best/mean" "jit best/mean" ratio
for m in "ein --input a=$T/a.npy --input b=$T/b.npy" "gs --input x=$T/x.npy --input g=$T/g.npy" \
         "tk --input x=$T/t.npy"; do
  set -- $m
  read -r ib im <<<"$(best "$@")"
  read -r jb jm <<<"$(best "$@" --jit)"
  printf '%-10s %10s/%-11s %10s/%-11s %8.1f\n' "$1" "$ib" "$im" "$jb" "$jm" \
    "$(python3 -c "print($ib / $jb)")"
done
