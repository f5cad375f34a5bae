#!/usr/bin/env bash
# CLI behaviour: exit codes and clear errors for bad input. Usage: run_cli_tests.sh HONE SRC_DIR
# Exit codes: 0 ok, 1 failure of the work, 2 usage error; 128 and above (a signal) is a crash
# and fails every check. Fixtures come from scripts/make_bad_inputs.py (committed).
set -u
HONE=$1; SRC=$2
D=$SRC/tests/cli/data; B=$SRC/tests/bad_inputs
# Under AddressSanitizer a leak must not hide behind the expected exit status 1.
export ASAN_OPTIONS="exitcode=86${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:exitcode=87${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { # name expected_rc expected_output_substring -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && grep -q -- "$pat" "$T/err" "$T/out"; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want, text '$pat'), output:"; head -5 "$T/err" "$T/out"; fi
}
check_last() { # name expected_last_stdout_line -- cmd...
  local name=$1 want=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = 0 ] && [ "$(tail -n 1 "$T/out")" = "$want" ]; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc, want last line '$want', output:"; head -5 "$T/err" "$T/out"; fi
}
sweep() { # name file -- cmd... (the literal @ in cmd is replaced by the mutated file)
  # XORs every byte of file in turn with 0xff; each run must end with status 0 or 1.
  local name=$1 file=$2; shift 3
  local n bad=0 i b rc; n=$(stat -c %s "$file")
  for ((i = 0; i < n; i++)); do
    cp "$file" "$T/m.${file##*.}"
    b=$(od -An -tu1 -j"$i" -N1 "$file")
    printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$T/m.${file##*.}" bs=1 seek="$i" conv=notrunc status=none
    "${@/#@/$T/m.${file##*.}}" >/dev/null 2>"$T/err"; rc=$?
    if [ "$rc" -gt 1 ]; then bad=$((bad+1)); echo "FAIL $name: byte $i flipped -> rc=$rc"; head -3 "$T/err"; fi
  done
  if [ "$bad" = 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
}

# ---- basics and usage errors (exit 2) ----
check no-args 2 "usage" -- "$HONE"
check help 0 "commands" -- "$HONE" --help
check unknown-cmd 2 "unknown command" -- "$HONE" frobnicate
check dump-bad-flag 2 "unknown option" -- "$HONE" dump --frob "$D/base.onnx"
check run-bad-flag 2 "unknown or incomplete" -- "$HONE" run "$D/base.onnx" --frob
check run-no-model 2 "no model" -- "$HONE" run
check eval-no-args 2 "no model" -- "$HONE" eval
check eval-no-data 2 "--data" -- "$HONE" eval "$D/cls_sym.onnx"
check eval-bad-flag 2 "unknown or incomplete" -- "$HONE" eval "$D/cls_sym.onnx" --data x.npy --frob
check eval-bad-batch 2 "bad value '0' for --batch" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --batch 0
check eval-bad-scale 2 "bad value 'abc' for --scale" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --scale abc
check eval-bad-metric 2 "unknown metric" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --metric f1
check eval-psnr-no-targets 2 "psnr needs --targets" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --metric psnr
check eval-both 2 "not both" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --targets "$D/cls_y.npy"
check eval-zero-std 2 "must not be 0" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --std 0
check stats-no-model 2 "no model" -- "$HONE" stats
check stats-bad-shape 2 "bad --input-shape" -- "$HONE" stats "$D/cls_sym.onnx" --input-shape x=4xq

# ---- missing and malformed models: exit 1, the message names the file (and node) ----
check missing-file 1 "cannot open" -- "$HONE" dump "$T/nope.onnx"
head -c 1000 /dev/urandom > "$T/random.onnx"
check random-bytes 1 "random.onnx" -- "$HONE" dump "$T/random.onnx"
for f in "$B"/*.onnx; do
  n=$(basename "$f")
  check "dump-$n" 1 "$n" -- "$HONE" dump "$f"
  check "run-$n" 1 "$n" -- "$HONE" run "$f" --input "x=$D/cls_x2.npy"
done
check cycle-names-node 1 "cycle through node 'add_a' (Add)" -- "$HONE" dump "$B/cyclic.onnx"
check missing-init-names-node 1 "node 'add0' (Add): input 'w'" -- "$HONE" dump "$B/missing_initializer.onnx"
check type-mismatch-names-node 1 "node 'add0' (Add): input types differ" -- "$HONE" dump "$B/type_mismatch.onnx"
check unsupported-names-node 1 "relu (node 'relu0')" -- "$HONE" dump "$B/flip_op_type.onnx"
check extdata-dotdot 1 "'../x' escapes" -- "$HONE" dump "$B/extdata_dotdot.onnx"
check extdata-absolute 1 "'/etc/passwd' escapes" -- "$HONE" dump "$B/extdata_absolute.onnx"
check huge-init-dim 1 "dimension 0 is 4611686018427387904" -- "$HONE" dump "$B/dim_2p62_initializer.onnx"
check huge-input-dim 1 "'x' dim 0 is 4611686018427387904" -- "$HONE" dump "$B/dim_2p62_input.onnx"

# ---- malformed data files ----
for f in "$B"/*.npy; do
  n=$(basename "$f")
  check "run-input-$n" 1 "$n" -- "$HONE" run "$D/cls_sym.onnx" --input "x=$f"
  check "eval-data-$n" 1 "$n" -- "$HONE" eval "$D/cls_sym.onnx" --data "$f" --labels "$D/cls_y.npy"
done
for f in "$B"/*.idx "$B"/*.gz; do
  n=$(basename "$f")
  check "eval-data-$n" 1 "$n" -- "$HONE" eval "$D/cls_sym.onnx" --data "$f" --labels "$D/cls_y.npy"
done
check eval-labels-mismatch 1 "has 2 samples but" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x2.npy" --labels "$D/cls_y.npy"
check eval-unknown-ext 1 "unknown data file type" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/base.onnx" --labels "$D/cls_y.npy"
check eval-shape-mismatch 1 "do not fit model input 'x'" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_y.npy" --labels "$D/cls_y.npy"

# ---- single byte flips anywhere never crash ----
sweep flip-model "$D/cls_sym.onnx" -- "$HONE" dump @
sweep flip-npy "$D/cls_x2.npy" -- "$HONE" run "$D/cls_sym.onnx" --input x=@
sweep flip-idx "$D/cls_x.idx" -- "$HONE" eval "$D/cls_sym.onnx" --data @ --labels "$D/cls_y.npy"
sweep flip-gz "$D/cls_y-idx1-ubyte.gz" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels @

# ---- hone run writes .npy outputs ----
check run-output 0 "logits: f32\[2,3\]" -- "$HONE" run "$D/cls_sym.onnx" --input "x=$D/cls_x2.npy" --output-dir "$T"
if [ -f "$T/logits.npy" ] && head -c 128 "$T/logits.npy" | grep -q "'shape': (2, 3,)" &&
   tail -c 24 "$T/logits.npy" | cmp -s - "$D/cls_logits2.raw"; then pass=$((pass+1))
else fail=$((fail+1)); echo "FAIL run-output-npy: $T/logits.npy missing or wrong"; fi

# ---- hone eval on synthetic data with known answers ----
# 10 samples, 3 labels wrong (samples 1, 4, 8): 0.7; the first 5 hold 2 wrong ones: 0.6.
check_last eval-top1-npy "top1 0.7000" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy"
check_last eval-top1-idx-gz "top1 0.7000" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.idx" --labels "$D/cls_y-idx1-ubyte.gz"
check_last eval-top1-batch3 "top1 0.7000" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --batch 3
check_last eval-top1-limit "top1 0.6000" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --limit 5 --batch 2
check_last eval-top1-fixed1 "top1 0.7000" -- "$HONE" eval "$D/cls_b1.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy"
check_last eval-top1-fixed4-pad "top1 0.6000" -- "$HONE" eval "$D/cls_b4.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --limit 5
check_last eval-top1-reshape "top1 0.7000" -- "$HONE" eval "$D/cls_fit.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --metric top1
# (x*scale - mean)/std = (300 - x)/2 changes the ranking: by hand, the predictions become
# 1,1,1,1,1,2,1,1,1,1 against labels 2,2,0,2,1,1,1,0,0,0 -> 2 hits (samples 4 and 6)
check_last eval-normalised "top1 0.2000" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --scale -1 --mean -300 --std 2
# image 0: 0.1 vs 0 -> 20 dB; image 1: -0.3 clamped to 0 vs 255/255 -> 0 dB; mean 10 dB
check_last eval-psnr "psnr 10.000" -- "$HONE" eval "$D/sr_id.onnx" --data "$D/psnr_x.npy" --targets "$D/psnr_t.npy"
# with --target-scale 0 the targets are all 0: image 0 is 20 dB, image 1 is 100 dB (MSE floor)
check_last eval-psnr-target-scale "psnr 60.000" -- "$HONE" eval "$D/sr_id.onnx" --data "$D/psnr_x.npy" --targets "$D/psnr_t.npy" --target-scale 0

# ---- hone stats ----
check stats-params 0 "parameters 6" -- "$HONE" stats "$D/cls_sym.onnx"
check stats-symbolic-note 0 "counted as 1" -- "$HONE" stats "$D/cls_sym.onnx"
# Mul, Add, Relu: one FLOP per output element each, 4x3 outputs; Identity is free
check stats-fixed 0 "^flops 36$" -- "$HONE" stats "$D/cls_sym.onnx" --input-shape x=4x3
check stats-bad-input 1 "no input 'q'" -- "$HONE" stats "$D/cls_sym.onnx" --input-shape q=4x3
check stats-conflict 1 "dim 1 cannot be 5" -- "$HONE" stats "$D/cls_sym.onnx" --input-shape x=4x5
check stats-per-pass 0 "fold-bn .* -> " -- "$HONE" stats "$(ls "$SRC"/tests/passes/fold-bn/*.in.txt | head -1)" -O2

# ---- atomic outputs: a write that fails halfway (full disk, injected) leaves the
# previous file intact and no temporary file behind ----
mkdir -p "$T/atomic"
cp "$D/base.onnx" "$T/atomic/out.onnx"
HONE_FAULT_WRITE=1 "$HONE" opt "$D/cls_sym.onnx" -O2 -o "$T/atomic/out.onnx" >"$T/out" 2>"$T/err"
if [ $? = 1 ] && grep -q "No space left" "$T/err" && cmp -s "$D/base.onnx" "$T/atomic/out.onnx" \
   && [ -z "$(ls -A "$T/atomic" | grep -v '^out.onnx$')" ]; then pass=$((pass+1))
else fail=$((fail+1)); echo "FAIL atomic-write: previous file changed or temp file left"; cat "$T/err"; fi
HONE_FAULT_WRITE=1 "$HONE" run "$D/cls_sym.onnx" --input x="$D/cls_x.npy" --output-dir "$T/atomic" >"$T/out" 2>"$T/err"
if [ $? = 1 ] && [ -z "$(ls -A "$T/atomic" | grep -v '^out.onnx$')" ]; then pass=$((pass+1))
else fail=$((fail+1)); echo "FAIL atomic-npy: partial output left"; ls -A "$T/atomic"; fi

# ---- resource limits (global flags) ----
check limit-bad-value 2 "needs a positive size" -- "$HONE" --max-memory=lots dump "$D/base.onnx"
check limit-dim 1 "above the limit 1" -- "$HONE" --max-dim=1 dump "$D/cls_b4.onnx"
check limit-nodes 1 "above the limit 1" -- "$HONE" dump "$D/cls_sym.onnx" --max-nodes=1
check limit-depth 1 "deeper than the limit 2" -- "$HONE" dump "$D/cls_sym.onnx" --max-depth=2
check limit-memory 1 "above --max-memory" -- "$HONE" eval "$D/cls_sym.onnx" --data "$D/cls_x.npy" --labels "$D/cls_y.npy" --max-memory=8

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
