#!/usr/bin/env bash
# adder_bench: compiled hone.Adder2d against hone's compiled fp32 Conv on the
# same shapes (the 3x3 layers of fmnist_resnet14 and fmnist_sr_x2, batch 1
# and 8), one run of each side in the same invocation, same thread count.
# Each model is one layer written as text IR (weights: the reader's seeded
# fill), compiled with -O0 (no graph passes, so the layer stays as written)
# and timed with bench/latency (median of REPEAT runs after 5 warm-ups).
# Prints a markdown table: shape, conv ms, adder ms, adder speed / conv speed.
#
# usage: bench/adder_bench.sh          env: THREADS (1) REPEAT (50) HONE LATENCY
set -euo pipefail
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
THREADS=${THREADS:-1} REPEAT=${REPEAT:-50}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# layer N C H W M: one model file per op
layer() {
    local op=$1 n=$2 c=$3 h=$4 w=$5 m=$6 dom="ai.onnx 13" name=$1
    [ "$op" = Adder2d ] && { op=hone.Adder2d; dom="ai.onnx 13; hone 1"; }
    cat <<IR
graph $name (ir 8; $dom) {
  input %x: f32[$n,$c,$h,$w]
  const %w: f32[$m,$c,3,3]
  %y: f32[$n,$m,$h,$w] = $op(%x, %w) {dilations=[1,1], group=1, kernel_shape=[3,3], pads=[1,1,1,1], strides=[1,1]}
  output %y: f32[$n,$m,$h,$w]
}
IR
}

# median ms of one compiled layer
time_layer() {
    layer "$@" >"$T/m.txt"
    "$HONE" compile "$T/m.txt" -O0 -o "$T/m.so" >/dev/null
    "$LATENCY" "$T/m.so" --name m --threads "$THREADS" --warmup 5 --repeat "$REPEAT" |
        awk '$1 == "median_ms" {print $2}'
}

echo "| shape (N,C,HxW -> M, 3x3) | conv ms | adder ms | adder speed / conv |"
echo "|---|---:|---:|---:|"
for s in "1 16 28 28 16" "1 32 14 14 32" "1 64 7 7 64" "8 16 28 28 16" "8 32 14 14 32" "8 64 7 7 64"; do
    set -- $s
    c=$(time_layer Conv "$@")
    a=$(time_layer Adder2d "$@")
    awk -v c="$c" -v a="$a" -v s="$1,$2,$3x$4 -> $5" \
        'BEGIN { printf "| %s | %.4f | %.4f | %.2fx |\n", s, c, a, c / a }'
done
