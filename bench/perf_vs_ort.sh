#!/usr/bin/env bash
# Speed of hone-compiled models against ONNX Runtime 1.30 (CPU) on torchvision
# models (random weights, batch 1, 224x224) and the shared reference models
# (batch 1), and writes docs/PERFORMANCE.md from what it measured.
#
# Per model: the MACs from `hone stats`; ONNX Runtime's latency (bench/ort_run.js,
# THREADS intra-op threads, 3 warm-ups, REPEAT timed runs); and, once `hone compile`
# exists, the compile time, the compiled model's latency (bench/latency with the
# same input, threads and run counts), its GFLOP/s (2 x MACs / median time), the
# speed ratio ORT_ms / hone_ms, and its max relative error against ORT's output.
# Without `hone compile` it says so and writes the ONNX Runtime columns only.
#
# usage: bench/perf_vs_ort.sh
# env:   THREADS (2)  REPEAT (20)  HONE (build/hone)  LATENCY (build/bench/latency)
#        HONE_SHARED (../shared)  DOC (docs/PERFORMANCE.md)  SKIP_SETUP=1 (no setup.sh)
#        BENCH_NOTE (a sentence added to the document's notes)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bench/setup.sh >&2
THREADS=${THREADS:-2} REPEAT=${REPEAT:-20}
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
SHARED=${HONE_SHARED:-../shared} DOC=${DOC:-docs/PERFORMANCE.md}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

COMPILE_SHAPE=0
if "$HONE" compile --help >/dev/null 2>&1; then
  COMPILE=1
  ! "$HONE" compile --help 2>&1 | grep -q -- --input-shape || COMPILE_SHAPE=1
else
  COMPILE=0
  echo "perf_vs_ort: '$HONE compile' is not available (the LLVM backend is not merged yet):" \
       "measuring ONNX Runtime only; the compiled-model columns are left out." >&2
fi

kv() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# The models: name, file, input name, input .npy, input shape.
models() {
  for m in resnet18 resnet50 mobilenet_v2 squeezenet1_1; do
    echo "$m bench/models/$m.onnx input bench/models/$m.input.npy 1x3x224x224"
  done
  [ -d "$SHARED/models" ] || return 0
  /usr/bin/python3 bench/shared_inputs.py "$T" 1 1
  echo "fmnist_resnet14 $SHARED/models/fmnist_resnet14.onnx input $T/cls.npy 1x1x28x28"
  echo "fmnist_sr_x2 $SHARED/models/fmnist_sr_x2.onnx lr $T/sr.npy 1x1x14x14"
  echo "mfmnist_tsn $SHARED/models/mfmnist_tsn.onnx clip $T/tsn.npy 1x8x1x28x28"
}

# MACs of the model at the benchmark's input shape, or "-" when hone cannot load it.
macs() { # model iname shape
  "$HONE" stats "$1" --input-shape "$2=$3" 2>"$T/stats.err" | awk '$1 == "macs" { print $2 }' \
    | grep . || { echo "- \`hone stats\` cannot load $1, so its GMACs and GFLOP/s are not given:" \
                     "$(tr '\n|' ' /' <"$T/stats.err" | head -c 200)" | tee -a "$T/notes" >&2; echo -; }
}

gflops() { # macs ms
  awk -v m="$1" -v t="$2" 'BEGIN { if (m == "-" || t <= 0) print "-"; else printf "%.1f", 2 * m / (t * 1e6) }'
}

# Times and checks the compiled model: prints "compile_s median min p90 rss gflops ratio err".
compiled_cols() { # name model iname npy shape macs ort_ms
  local t0 t1 so=$T/$1.so
  t0=$(date +%s.%N)
  local shape=(); [ $COMPILE_SHAPE = 0 ] || shape=(--input-shape "$3=$5")
  if ! "$HONE" compile "$2" -o "$so" --name "$1" "${shape[@]}" >"$T/compile.log" 2>&1; then
    echo "perf_vs_ort: hone compile $2 failed: $(head -c 300 "$T/compile.log")" >&2; return 1; fi
  t1=$(date +%s.%N)
  rm -rf "$T/h"; mkdir -p "$T/h"
  "$LATENCY" "$so" --name "$1" --input "$3=$4" --repeat "$REPEAT" --threads "$THREADS" \
    --output-dir "$T/h" >"$T/lat.txt" || { echo "perf_vs_ort: latency $1 failed" >&2; return 1; }
  local med; med=$(kv median_ms "$T/lat.txt")
  local err; err=$(/usr/bin/python3 bench/npy_compare.py "$T"/h/*.npy "$T"/o/*.npy 1 | awk '{ print $4 }')
  printf '%s %s %s %s %s %s %s %s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
    "$med" "$(kv min_ms "$T/lat.txt")" "$(kv p90_ms "$T/lat.txt")" "$(kv peak_rss_mb "$T/lat.txt")" \
    "$(gflops "$6" "$med")" "$(awk -v o="$7" -v h="$med" 'BEGIN { printf "%.2f", o / h }')" "$err"
}

# One table row per model into $T/rows.
bench_model() { # name model iname npy shape
  local m; m=$(macs "$2" "$3" "$5")
  rm -rf "$T/o"
  if ! node bench/ort_run.js "$2" "$T/o" "$3=$4" --repeat "$REPEAT" --threads "$THREADS" \
       >"$T/ort.txt" 2>"$T/ort.err"; then
    echo "perf_vs_ort: ONNX Runtime failed on $2: $(head -c 300 "$T/ort.err")" >&2; return 0; fi
  local o=$T/ort.txt gm; gm=$(awk -v m="$m" 'BEGIN { if (m == "-") print "-"; else printf "%.3f", m / 1e9 }')
  local row="| $1 | $5 | $gm | $(kv median_ms $o) | $(kv min_ms $o) | $(kv p90_ms $o) | $(kv peak_rss_mb $o) | $(gflops "$m" "$(kv median_ms $o)") |"
  if [ $COMPILE = 1 ]; then
    local c; c=$(compiled_cols "$@" "$m" "$(kv median_ms $o)") || c="failed - - - - - - -"
    row+=" $(echo "$c" | tr ' ' '\n' | paste -sd'|' | sed 's/|/ | /g') |"
  fi
  echo "$row" | tee -a "$T/rows" >&2
}

: >"$T/rows"; : >"$T/notes"
while read -r name model iname npy shape; do
  bench_model "$name" "$model" "$iname" "$npy" "$shape"
done < <(models)

{
  echo "# Performance: hone-compiled models vs ONNX Runtime"
  echo
  echo "Measured by \`bench/perf_vs_ort.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Reproduce with:"
  echo
  echo '```'
  echo "THREADS=$THREADS REPEAT=$REPEAT bench/perf_vs_ort.sh"
  echo '```'
  echo
  echo "- Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs available"
  echo "  (lscpu: $(lscpu | sed -n 's/^CPU(s): *//p' | head -1) CPUs, $(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1) thread(s) per core); load average (1, 5, 15 min) at start: $LOAD."
  echo "- ONNX Runtime $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' bench/node_modules/onnxruntime-node/package.json)"
  echo "  (onnxruntime-node, CPU execution provider, graph optimisation level \"all\")."
  echo "- hone: \`$HONE\` from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)')."
  echo "- Method: batch 1 and one fixed random input per model; $THREADS intra-op threads for"
  echo "  both; 3 warm-up runs, then $REPEAT timed runs; median, min and 90th percentile of the"
  echo "  wall time of one run in ms. Peak RSS is the whole process's (for ORT, node and its"
  echo "  runtime included). GFLOP/s = 2 × MACs (\`hone stats\`) / median time."
  echo
  if [ $COMPILE = 1 ]; then
    echo "| model | input | GMACs | ORT median ms | ORT min ms | ORT p90 ms | ORT peak RSS MB | ORT GFLOP/s | hone compile s | hone median ms | hone min ms | hone p90 ms | hone peak RSS MB | hone GFLOP/s | ORT/hone | max rel err vs ORT |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  else
    echo "| model | input | GMACs | ORT median ms | ORT min ms | ORT p90 ms | ORT peak RSS MB | ORT GFLOP/s |"
    echo "|---|---|---|---|---|---|---|---|"
  fi
  cat "$T/rows"
  echo
  echo "Notes:"
  echo
  if [ $COMPILE = 0 ]; then
    echo "- The hone-compiled columns (compile time, latency, GFLOP/s, ORT/hone ratio) await the"
    echo "  LLVM backend: \`hone compile\` was not available in this build. The reference"
    echo "  interpreter (\`hone run\`) is not timed: it is a correctness reference, not a runtime."
  fi
  cat "$T/notes"
  echo "- The random-weight torchvision models run the same arithmetic as trained ones; their"
  echo "  outputs are not meaningful classifications."
  [ -z "${BENCH_NOTE:-}" ] || echo "- $BENCH_NOTE"
} >"$T/doc"
mkdir -p "$(dirname "$DOC")"
# Keep the other scripts' sections ("## ..." headings, e.g. training throughput).
if [ -f "$DOC" ]; then
  awk 'f || /^## /{f=1; print}' "$DOC" > "$T/rest"
  [ -s "$T/rest" ] && { echo; cat "$T/rest"; } >> "$T/doc"
fi
mv "$T/doc" "$DOC"
echo "perf_vs_ort: wrote $DOC" >&2
