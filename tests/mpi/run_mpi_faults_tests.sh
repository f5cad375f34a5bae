#!/usr/bin/env bash
# Faults: rank 1 killed (SIGKILL, as a crashed machine) during epoch 2 ends
# the run with a clear message, no model file, and the epoch-1 checkpoint;
# --resume continues from it to the weights of an uninterrupted run, bit for
# bit; a checkpoint of another run is refused.
source "$(dirname "$0")/common.sh"
RUN=("${TRAIN[@]}" --epochs 2 --batch 32)

run full 0 -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" -o "$T/full.onnx"
# step 6 is in epoch 2 (4 steps an epoch)
run killed fail -- "${MPIRUN[@]}" -np 2 -x HONE_FAULT_RANK_EXIT=1:6 "$HONE_MPI" "${RUN[@]}" \
  --checkpoint "$T/ck" -o "$T/killed.onnx"
[ ! -e "$T/killed.onnx" ] && ok || bad "killed run left $T/killed.onnx"
[ -z "$(ls -A "$T" | grep hone-tmp)" ] && ok || bad "killed run left a temporary file"
[ -f "$T/ck/checkpoint.hone" ] && ok || bad "no checkpoint after epoch 1"
has killed err "rank 0 of 2: stopped by mpirun because another rank failed"
run resumed 0 -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" --checkpoint "$T/ck" --resume \
  -o "$T/resumed.onnx"
has resumed out "resumed_after_epoch 1"
same_weights "resumed = uninterrupted" "$T/full.onnx" "$T/resumed.onnx" 0
# another seed is another run: refused with the reason
run other 1 -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" --seed 4 --checkpoint "$T/ck" \
  --resume -o "$T/other.onnx"
has other err "belongs to another run (seeds differ)"
# an error on rank 0 alone (its checkpoint cannot be written): the ranks agree
# on it and both stop with an error, the other naming the failed rank
run unwritable fail -- "${MPIRUN[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" \
  --checkpoint /proc/hone-no-such-dir -o "$T/unwritable.onnx"
has unwritable err "cannot create the checkpoint folder"
has unwritable err "rank 1 of 2 stopped: rank 0 failed during writing the checkpoint"
[ ! -e "$T/unwritable.onnx" ] && ok || bad "the failed run left $T/unwritable.onnx"
# usage: --resume needs a folder
run noresume 2 -- "$HONE" "${RUN[@]}" --resume -o "$T/x.onnx"
has noresume err "--resume needs --checkpoint DIR"
finish
