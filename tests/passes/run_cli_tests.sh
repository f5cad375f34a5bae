#!/usr/bin/env bash
# The pass commands from the outside: hone opt / dump / compare / passes, their pass flags,
# exit codes and error messages, and the -O2 acceptance check on the bundled models (and on
# ../shared/models when present): no BatchNormalization, Identity, Dropout or shape
# computation left, outputs equal within 1e-5 relative. Usage: run_cli_tests.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CASES=$SRC/tests/passes
pass=0; fail=0
check() { # name expected_rc pattern(in stdout+stderr, "" for none) -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -q -- "$pat" "$T/out" "$T/err"; }; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want, pattern '$pat'), output:"; head -5 "$T/err" "$T/out"; fi
}
lacks() { # name pattern file: the file must not match
  if grep -q -E -- "$2" "$3"; then fail=$((fail+1)); echo "FAIL $1: '$2' found in $3"; grep -E -- "$2" "$3" | head -3
  else pass=$((pass+1)); fi
}
BLOCK=$CASES/pipelines/resnet_block.in.txt
BN=$CASES/fold-bn/conv_bn.in.txt

check passes-list 0 "fold-bn" -- "$HONE" passes
"$HONE" passes --markdown > "$T/PASSES.md"
check passes-doc 0 "" -- diff "$T/PASSES.md" "$SRC/docs/PASSES.md"

check opt-text 0 "nodes" -- "$HONE" opt "$BLOCK" -O3 -o "$T/block.txt"
check opt-fused 0 "hone.FusedConv" -- cat "$T/block.txt"
check opt-onnx 0 "" -- "$HONE" opt "$BLOCK" -O2 -o "$T/block.onnx"
check opt-reload 0 "Conv" -- "$HONE" dump "$T/block.onnx"
lacks opt-o2-clean "BatchNormalization|Identity|Dropout|Shape|Gather" "$T/out"
check opt-o3-onnx 0 "" -- "$HONE" opt "$T/block.onnx" -O3 -o "$T/block3.onnx"
check opt-o3-runs 0 "0 above tolerance" -- "$HONE" compare "$T/block3.onnx" -O0
check opt-o0 0 "" -- "$HONE" opt "$BLOCK" -O0 -o "$T/same.txt"
check opt-o0-keeps 0 "BatchNormalization" -- cat "$T/same.txt"

check bad-pass 2 "unknown pass 'bogus' (valid passes: fold-constants" -- "$HONE" opt "$BLOCK" --passes='dce,bogus' -o "$T/x.txt"
check bad-option 2 "no option 'size' (valid: max-size)" -- "$HONE" opt "$BLOCK" --passes='fold-constants{size=1}' -o "$T/x.txt"
check bad-value 2 "expects an integer, got 'lots'" -- "$HONE" dump "$BLOCK" --passes='fold-constants{max-size=lots}'
check both-levels 2 "either --passes or -O" -- "$HONE" opt "$BLOCK" --passes=dce -O2 -o "$T/x.txt"
check bad-level 2 "-O0 to -O3" -- "$HONE" opt "$BLOCK" -O7 -o "$T/x.txt"
check bad-disable 2 "cannot disable unknown pass 'nope'" -- "$HONE" opt "$BLOCK" --disable-pass=nope -o "$T/x.txt"
check bad-print 1 "unknown pass 'nope'" -- "$HONE" dump "$BLOCK" -O1 --print-after=nope
check no-output 2 "no output" -- "$HONE" opt "$BLOCK" -O2
check missing-model 1 "cannot open" -- "$HONE" opt "$T/none.onnx" -o "$T/x.txt"
printf 'graph g () {\n  input %%x: f32[2]\n  %%y: f32[2] = Frob(%%x)  # f\n  output %%y: f32[2]\n}\n' > "$T/frob.txt"
check unsupported-text 1 "Frob" -- "$HONE" opt "$T/frob.txt" -o "$T/x.txt"
printf 'graph g () {\n  input %%x: f32[2\n}\n' > "$T/bad.txt"
check bad-text 1 "line 2" -- "$HONE" dump "$T/bad.txt"

check print-after 0 "// after pass 2: fold-constants" -- "$HONE" dump "$BLOCK" -O1 --print-after=fold-constants
check print-dir 0 "" -- "$HONE" dump "$BLOCK" -O2 --print-after=all --print-dir="$T/dumps"
check print-dir-files 0 "graph block" -- cat "$T/dumps/01-remove-identity.txt" "$T/dumps/08-fold-bn.txt"
check disable 0 "BatchNormalization" -- "$HONE" dump "$BLOCK" -O2 --disable-pass=fold-bn
check time-passes 0 "wall ms" -- "$HONE" opt "$BLOCK" -O3 --time-passes -o "$T/x.txt"
check report 0 "" -- "$HONE" opt "$BLOCK" -O3 --report="$T/r.json" -o "$T/x.txt"
check report-json 0 "\"pass\": \"fuse-conv\"" -- cat "$T/r.json"
# unfold-bn: BN inserted after every conv, statistics from --data, function kept;
# fold-bn folds it back; the data flags' errors name what is missing
FM=$SRC/models/fmnist_resnet14.onnx
FMD=/usr/share/datasets/fashion-mnist
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
check unfold-bn 0 "52 nodes" -- "$HONE" opt "$FM" --passes=unfold-bn --report="$T/u.json" -o "$T/u.onnx"
check unfold-bn-count 0 '"BN inserted": 15' -- cat "$T/u.json"
check unfold-bn-same 0 "0 above tolerance" -- "$HONE" compare "$FM" --passes=unfold-bn
if [ -f "$FMD/t10k-images-idx3-ubyte.gz" ]; then
  check unfold-bn-data 0 "" -- "$HONE" opt "$FM" --passes=unfold-bn --data "$FMD/t10k-images-idx3-ubyte.gz" "${NORM[@]}" --limit 256 -o "$T/ud.onnx"
  check unfold-bn-data-same 0 "top1 0.9" -- "$HONE" eval "$T/ud.onnx" --data "$FMD/t10k-images-idx3-ubyte.gz" --labels "$FMD/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" --limit 500
  grep top1 "$T/out" > "$T/e1"
  "$HONE" eval "$FM" --data "$FMD/t10k-images-idx3-ubyte.gz" --labels "$FMD/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" --limit 500 > "$T/e0" 2>&1
  check unfold-bn-data-equal 0 "" -- diff <(grep top1 "$T/e0") "$T/e1"
fi
check unfold-fold 0 "0 above tolerance" -- "$HONE" compare "$FM" --passes=unfold-bn,fold-bn
check data-no-data 1 "need --data" -- "$HONE" opt "$FM" --passes=unfold-bn --labels "$T/x.npy" -o "$T/x.onnx"
check data-missing 1 "cannot open" -- "$HONE" opt "$FM" --passes=unfold-bn --data "$T/none.npy" -o "$T/x.onnx"
check data-bad-split 2 "bad value" -- "$HONE" opt "$FM" --passes=unfold-bn --val-split -1 -o "$T/x.onnx"
check dump-dot 0 "digraph" -- "$HONE" dump "$BLOCK" --format=dot
check dump-json 0 "\"op\": \"BatchNormalization\"" -- "$HONE" dump "$BLOCK" --format=json
if command -v python3 >/dev/null; then
  "$HONE" dump "$BLOCK" -O3 --format=json > "$T/g.json"
  check dump-json-valid 0 "" -- python3 -m json.tool "$T/g.json"
  check report-json-valid 0 "" -- python3 -m json.tool "$T/r.json"
fi
check dump-format 2 "unknown format 'xml'" -- "$HONE" dump "$BLOCK" --format=xml

check compare-o3 0 "0 above tolerance" -- "$HONE" compare "$BLOCK" -O3
check compare-exact 1 "first divergence: %n" -- "$HONE" compare "$BN" --passes=fold-bn --rtol 0 --atol 0
check compare-input 1 "cannot open" -- "$HONE" compare "$BLOCK" --input x="$T/none.npy"
check compare-name 1 "no input named 'q'" -- "$HONE" compare "$BLOCK" --input q="$T/none.npy"

for m in "$SRC"/models/*.onnx "$SRC"/../shared/models/*.onnx; do
  [ -f "$m" ] || continue
  b=$(basename "$m" .onnx)
  check "$b-opt" 0 "" -- "$HONE" opt "$m" -O2 -o "$T/$b.onnx"
  "$HONE" dump "$T/$b.onnx" > "$T/$b.txt" 2>&1
  lacks "$b-clean" "= (BatchNormalization|Identity|Dropout|Shape|Gather|Unsqueeze|Concat|Constant)\(" "$T/$b.txt"
  check "$b-o2-equal" 0 "0 above tolerance" -- "$HONE" compare "$m" -O2 --rtol 1e-5 --atol 1e-6
  check "$b-o3-equal" 0 "0 above tolerance" -- "$HONE" compare "$m" -O3 --rtol 1e-5 --atol 1e-6
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
