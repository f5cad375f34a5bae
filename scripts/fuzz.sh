#!/usr/bin/env bash
# Runs the libFuzzer harnesses (ONNX import+verify+infer+export, pipeline and text-IR
# parsers, data loaders) for SECONDS each, seeded from the ONNX test data and the bad-input
# corpus. Crashing inputs land in BUILD/crashes/<harness>/; copy each into
# tests/fuzz/regressions/<harness>/ once fixed, so the normal suite replays it.
# usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
B=$1; SECS=${2:-60}
C=$B/corpus
mkdir -p "$C"/{onnx,pipeline,loaders} "$B"/crashes/{onnx,pipeline,loaders}
if [ -z "$(ls -A "$C/onnx")" ]; then
  i=0
  for m in /usr/share/libonnx-testdata/data/*/*/model.onnx models/*.onnx tests/bad_inputs/*.onnx; do
    [ -f "$m" ] && cp "$m" "$C/onnx/seed$((i++)).onnx"
  done
  for p in 'fold-constants,dce' 'scop{rate=0.45,seed=1}' 'fuse-conv{residual=false},cse' \
           'fold-bn{x=1}' ''; do printf '%s' "$p" > "$C/pipeline/p$((i++))"; done
  for t in tests/passes/*/*.txt; do cp "$t" "$C/pipeline/t$((i++))"; done
  k=0
  for f in tests/bad_inputs/*.npy tests/bad_inputs/*.idx tests/bad_inputs/*.gz tests/cli/data/*.npy; do
    [ -f "$f" ] || continue
    case "$f" in *.npy) b='\x00';; *.idx) b='\x01';; *.gz) b='\x02';; esac
    { printf "$b"; cat "$f"; } > "$C/loaders/l$((k++))"
  done
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
for h in onnx pipeline loaders; do
  echo "== fuzz_$h for ${SECS}s"
  "$B/tests/fuzz_$h" -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$B/crashes/$h/" "$C/$h" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|SUMMARY' || true
  n=$(ls "$B/crashes/$h" | wc -l)
  echo "   crashing inputs: $n"
done
