#!/usr/bin/env bash
# Data-parallel equivalence on this machine: mpirun -np 2 with global batch 2B
# (B per rank) gives the weights one process gives with batch 2B, within
# float rounding, and not those of one process with batch B (the control);
# rank 0 alone writes the model and prints progress; hone opt's BN
# re-estimation split over 2 ranks gives one process's statistics.
source "$(dirname "$0")/common.sh"

run one 0 -- "$HONE" "${TRAIN[@]}" --epochs 2 --batch 32 -o "$T/one.onnx"
run two 0 -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${TRAIN[@]}" --epochs 2 --batch 32 -o "$T/two.onnx"
has two out "ranks 2"
has two out "allreduce_bytes_per_step"
same_weights "2 ranks x 16 = 1 process x 32" "$T/one.onnx" "$T/two.onnx" 1e-4
# the held-out metric, computed half on each rank, is the one process's
if [ "$(grep heldout_top1 "$T/one.out")" = "$(grep heldout_top1 "$T/two.out")" ]; then ok
else bad "held-out metric: $(grep heldout_top1 "$T/one.out") vs $(grep heldout_top1 "$T/two.out")"; fi
# one rank wrote and printed
[ "$(grep -c '^wrote ' "$T/two.out")" = 1 ] && ok || bad "2 ranks: 'wrote' printed $(grep -c '^wrote ' "$T/two.out") times"
[ "$(grep -c '^epoch 2/2' "$T/two.err")" = 1 ] && ok || bad "2 ranks: progress printed $(grep -c '^epoch 2/2' "$T/two.err") times"
# control: batch 16 in one process is a different training, beyond the tolerance
run half 0 -- "$HONE" "${TRAIN[@]}" --epochs 2 --batch 16 -o "$T/half.onnx"
if "$WDIFF" "$T/one.onnx" "$T/half.onnx" 1e-4 >"$T/wd.out"; then bad "control: batch 16 matches batch 32: $(cat "$T/wd.out")"
else ok; echo "control (1 process x 16): $(cat "$T/wd.out")"; fi

# hone opt: BN re-estimation (hone_bn_recalibrate) split between the ranks
OPT=(opt "$MODEL" --passes="unfold-bn,recalibrate-bn{batch=16}" "${DATA[@]}")
run opt1 0 -- "$HONE" "${OPT[@]}" -o "$T/opt1.onnx"
run opt2 0 -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${OPT[@]}" -o "$T/opt2.onnx"
same_weights "recalibrate-bn on 2 ranks = 1 process" "$T/opt1.onnx" "$T/opt2.onnx" 1e-5
finish
