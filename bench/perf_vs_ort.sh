#!/usr/bin/env bash
# Speed of hone-compiled models against ONNX Runtime 1.30 (CPU) on torchvision
# models (random weights, batch 1, 224x224) and the shared reference models
# (batch 1), and writes docs/PERFORMANCE.md from what it measured.
#
# Per model: the MACs from `hone stats`; ONNX Runtime's latency (bench/ort_run.js,
# THREADS intra-op threads, 3 warm-ups, REPEAT timed runs); and, once `hone compile`
# exists, the compile time, the compiled model's latency (bench/latency with the
# same input, threads and run counts), its GFLOP/s (2 x MACs / median time), the
# speed ratio ORT_ms / hone_ms, and its max relative error against ORT's output and against
# hone's reference interpreter (`hone run`, the same input).
# Without `hone compile` it says so and writes the ONNX Runtime columns only.
#
# The two are timed in ROUNDS alternating rounds (ORT, hone, ORT, hone, ...), so that
# both meet the same phases of a shared machine; a column's median is the median of
# the rounds' medians, its min the least run, its p90 the median of the rounds' p90s,
# and the notes list every round's ratio. The notes also give the machine's two-thread
# efficiency at the start and the end (bench/conv2d_bench --scaling: the same FMA loop on
# one thread, then on two at once; 1.0 when two CPUs run it as fast as one).
#
# usage: bench/perf_vs_ort.sh
# env:   THREADS (2)  REPEAT (20)  ROUNDS (3)  HONE (build/hone)  LATENCY (build/bench/latency)
#        CONV_BENCH (build/bench/conv2d_bench)  HONE_SHARED (../shared)
#        DOC (docs/PERFORMANCE.md)  SKIP_SETUP=1 (no setup.sh)
#        BENCH_NOTE (a sentence added to the document's notes)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bench/setup.sh >&2
THREADS=${THREADS:-2} REPEAT=${REPEAT:-20} ROUNDS=${ROUNDS:-3}
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
CONV_BENCH=${CONV_BENCH:-build/bench/conv2d_bench}
SHARED=${HONE_SHARED:-../shared} DOC=${DOC:-docs/PERFORMANCE.md}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
scaling() { "$CONV_BENCH" --scaling 2>/dev/null | awk '$1 == "two_thread_efficiency" { print $2 }' | grep . || echo "-"; }
SCALE0=$(scaling)

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

# The median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Columns over the rounds' latency reports $T/$1.N.txt: "median min p90 rss".
summary() { # prefix
  local f=("$T/$1".*.txt)
  printf '%s %s %s %s\n' "$(for x in "${f[@]}"; do kv median_ms "$x"; done | median)" \
    "$(for x in "${f[@]}"; do kv min_ms "$x"; done | sort -g | head -1)" \
    "$(for x in "${f[@]}"; do kv p90_ms "$x"; done | median)" \
    "$(for x in "${f[@]}"; do kv peak_rss_mb "$x"; done | sort -g | tail -1)"
}

# Compiles the model to $T/$1.so; prints the compile time in s.
compile_model() { # name model iname npy shape
  local t0 t1 shape=(); [ $COMPILE_SHAPE = 0 ] || shape=(--input-shape "$3=$5")
  t0=$(date +%s.%N)
  if ! "$HONE" compile "$2" -o "$T/$1.so" --name "$1" "${shape[@]}" >"$T/compile.log" 2>&1; then
    echo "perf_vs_ort: hone compile $2 failed: $(head -c 300 "$T/compile.log")" >&2; return 1; fi
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

# One table row per model into $T/rows: ROUNDS alternating rounds of ORT and hone.
bench_model() { # name model iname npy shape
  local m; m=$(macs "$2" "$3" "$5")
  local cs=- r ratios=""
  rm -f "$T"/ort.*.txt "$T"/hone.*.txt
  if [ $COMPILE = 1 ]; then cs=$(compile_model "$@") || cs=failed; fi
  for r in $(seq 1 "$ROUNDS"); do
    rm -rf "$T/o"
    if ! node bench/ort_run.js "$2" "$T/o" "$3=$4" --repeat "$REPEAT" --threads "$THREADS" \
         >"$T/ort.$r.txt" 2>"$T/ort.err"; then
      echo "perf_vs_ort: ONNX Runtime failed on $2: $(head -c 300 "$T/ort.err")" >&2; return 0; fi
    [ "$cs" != - ] && [ "$cs" != failed ] || continue
    rm -rf "$T/h"; mkdir -p "$T/h"
    if ! "$LATENCY" "$T/$1.so" --name "$1" --input "$3=$4" --repeat "$REPEAT" --threads "$THREADS" \
         --output-dir "$T/h" >"$T/hone.$r.txt"; then
      echo "perf_vs_ort: latency $1 failed" >&2; cs=failed; rm -f "$T"/hone.*.txt; continue; fi
    ratios+="${ratios:+ / }$(awk -v o="$(kv median_ms "$T/ort.$r.txt")" -v h="$(kv median_ms "$T/hone.$r.txt")" 'BEGIN { printf "%.2f", o / h }')"
  done
  local os; read -r -a os <<<"$(summary ort)"
  local gm; gm=$(awk -v m="$m" 'BEGIN { if (m == "-") print "-"; else printf "%.3f", m / 1e9 }')
  local row="| $1 | $5 | $gm | ${os[0]} | ${os[1]} | ${os[2]} | ${os[3]} | $(gflops "$m" "${os[0]}") |"
  if [ $COMPILE = 1 ]; then
    if [ "$cs" = failed ] || [ "$cs" = - ]; then
      row+=" failed | - | - | - | - | - | - | - | - |"
    else
      local hs; read -r -a hs <<<"$(summary hone)"
      local err; err=$(/usr/bin/python3 bench/npy_compare.py "$T"/h/*.npy "$T"/o/*.npy 1 | awk '{ print $4 }')
      # the same input through hone's reference interpreter
      local ierr=-; rm -rf "$T/i"; mkdir -p "$T/i"
      if "$HONE" run "$2" --input "$3=$4" --output-dir "$T/i" >/dev/null 2>&1; then
        ierr=$(/usr/bin/python3 bench/npy_compare.py "$T"/h/*.npy "$T"/i/*.npy 1 | awk '{ print $4 }')
      fi
      row+=" $cs | ${hs[0]} | ${hs[1]} | ${hs[2]} | ${hs[3]} | $(gflops "$m" "${hs[0]}") | $(awk -v o="${os[0]}" -v h="${hs[0]}" 'BEGIN { printf "%.2f", o / h }') | $err | $ierr |"
      echo "- $1: ORT/hone in each round: $ratios." >>"$T/rounds"
    fi
  fi
  echo "$row" | tee -a "$T/rows" >&2
}

: >"$T/rows"; : >"$T/notes"; : >"$T/rounds"
while read -r name model iname npy shape; do
  bench_model "$name" "$model" "$iname" "$npy" "$shape"
done < <(models)
SCALE1=$(scaling)

{
  echo "# Performance: hone-compiled models vs ONNX Runtime"
  echo
  echo "Measured by \`bench/perf_vs_ort.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Reproduce with:"
  echo
  echo '```'
  echo "THREADS=$THREADS REPEAT=$REPEAT ROUNDS=$ROUNDS bench/perf_vs_ort.sh"
  echo '```'
  echo
  echo "- Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs available"
  echo "  (lscpu: $(lscpu | sed -n 's/^CPU(s): *//p' | head -1) CPUs, $(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1) thread(s) per core); load average (1, 5, 15 min) at start: $LOAD."
  echo "- ONNX Runtime $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' bench/node_modules/onnxruntime-node/package.json)"
  echo "  (onnxruntime-node, CPU execution provider, graph optimisation level \"all\")."
  echo "- hone: \`$HONE\` from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)')."
  echo "- Method: batch 1 and one fixed random input per model; $THREADS intra-op threads for"
  echo "  both; $ROUNDS alternating rounds (ORT, then hone) of 3 warm-up runs and $REPEAT timed"
  echo "  runs each; median = the median of the rounds' medians of the wall time of one run in"
  echo "  ms, min = the least run, p90 = the median of the rounds' 90th percentiles. Peak RSS is"
  echo "  the whole process's (for ORT, node and its runtime included). GFLOP/s = 2 × MACs"
  echo "  (\`hone stats\`) / median time."
  echo "- Two-thread efficiency of this machine (\`conv2d_bench --scaling\`: one FMA loop on one"
  echo "  thread, then on two at once; 1.00 = two CPUs each as fast as one alone): $SCALE0 at the"
  echo "  start, $SCALE1 at the end."
  echo
  if [ $COMPILE = 1 ]; then
    echo "| model | input | GMACs | ORT median ms | ORT min ms | ORT p90 ms | ORT peak RSS MB | ORT GFLOP/s | hone compile s | hone median ms | hone min ms | hone p90 ms | hone peak RSS MB | hone GFLOP/s | ORT/hone | max rel err vs ORT | max rel err vs interpreter |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
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
  cat "$T/rounds"
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
