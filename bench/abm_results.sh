#!/usr/bin/env bash
# bench/abm_results.sh: the "## ABM" section of docs/RESULTS.md (approximated bilinear
# modules on Moving Fashion-MNIST, passes/abm.c).
#
# Rows: the shared mfmnist_tsn as given; the naive ablation (the same frame-averaging model
# fine-tuned with the same budget: abm{blocks=none}); ABM-C-in and ABM-A-in fine-tuned, per
# seed. Each: top-1 on the 2,000 test clips (never seen by a pass: the passes train on
# train_x minus VAL held-out clips and score those), params, FLOPs per clip, compiled
# latency per clip (1 thread, median of REPEAT runs, as a ratio to the TSN measured in the
# same run), pass wall time. Also: the insertion exactness (abm{epochs=0} against the
# original, max abs logit error on 64 test clips) and ONNX Runtime against hone on the
# trained ABM models.
#
# usage: bench/abm_results.sh        (writes the section into docs/RESULTS.md)
# env:   STEPS (150) LR (0.01) BATCH (16) VAL (200) THREADS (2: OpenBLAS threads per job) SEEDS ("1") AIN_SEEDS (SEEDS)
#        REPEAT (50) HONE (build/hone) LATENCY (build/bench/latency) OUT (docs/RESULTS.md)
#        HONE_SHARED (../shared, else /work/shared)
#        ORT_NODE_MODULES (bench/node_modules, else /work/main/bench/node_modules)
#        LIMIT (unset; a number: smoke-test this script on that many clips)
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
SHARED=${HONE_SHARED:-$ROOT/../shared}
[ -d "$SHARED/models" ] || SHARED=/work/shared
HONE=${HONE:-build/hone}; LATENCY=${LATENCY:-build/bench/latency}
STEPS=${STEPS:-150}; LR=${LR:-0.01}; BATCH=${BATCH:-16}; VAL=${VAL:-200}; THREADS=${THREADS:-2}
SEEDS=${SEEDS:-1}; AIN_SEEDS=${AIN_SEEDS:-$SEEDS}; REPEAT=${REPEAT:-50}
OUT=${OUT:-docs/RESULTS.md}
D=$SHARED/data/moving_fmnist; M=$SHARED/models/mfmnist_tsn.onnx
for f in "$M" "$D/train_x.npy" "$D/train_y.npy" "$D/test_x.npy" "$D/test_y.npy"; do
  [ -f "$f" ] || { echo "abm_results: $f missing" >&2; exit 1; }
done
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
SHAPE=(--input-shape clip=1x8x1x28x28)
export OPENBLAS_NUM_THREADS=2
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
START=$(date +%s)
log() { echo "[abm_results $(( $(date +%s) - START ))s] $*" >&2; }

LIM=(); [ -n "${LIMIT:-}" ] && LIM=(--limit "$LIMIT")   # smoke runs of this script only
top1() { OPENBLAS_NUM_THREADS=$THREADS nice -n 5 "$HONE" eval "$1" --data "$D/test_x.npy" \
           --labels "$D/test_y.npy" "${NORM[@]}" --batch 50 "${LIM[@]}" |
         awk '/^top1/ {print $2}'; }
params() { "$HONE" stats "$1" | awk '/^parameters/ {print $2}'; }
flops() { "$HONE" stats "$1" "${SHAPE[@]}" | awk '/^flops/ {print $2}'; }
lat() { # model name -> median ms per clip (compiled, 1 thread)
  "$HONE" compile "$1" "${SHAPE[@]}" -o "$W/$2.so" >/dev/null 2>&1
  OPENBLAS_NUM_THREADS=1 "$LATENCY" "$W/$2.so" --repeat "$REPEAT" --threads 1 | awk '/^median_ms/ {print $2}'
}
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['passes'][0]; print($2)" "$1"; }

# rows: name|pipeline|label
ROWS=("tsn_ft|abm{blocks=none,steps=$STEPS,batch=$BATCH,lr=$LR,seed=1}|TSN fine-tuned (naive ablation), seed 1")
for s in $SEEDS; do
  ROWS+=("cin_s$s|abm{variant=c-in,steps=$STEPS,batch=$BATCH,lr=$LR,seed=$s}|ABM-C-in, seed $s")
done
for s in $AIN_SEEDS; do
  ROWS+=("ain_s$s|abm{variant=a-in,beta=0.125,steps=$STEPS,batch=$BATCH,lr=$LR,seed=$s}|ABM-A-in (beta 1/8), seed $s")
done

# Training and scoring run as parallel jobs (THREADS OpenBLAS threads each): accuracy does not
# depend on it, and the shared machine gives each job its share. Latencies are measured
# afterwards, one model at a time.
train_row() { # name pipeline
  local name=$1 pipe=$2 t
  t=$(date +%s.%N)
  OPENBLAS_NUM_THREADS=$THREADS nice -n 5 "$HONE" opt "$M" --passes="$pipe" --data "$D/train_x.npy" \
    --labels "$D/train_y.npy" "${NORM[@]}" "${LIM[@]}" --val-split "$VAL" --report "$W/$name.json" \
    -o "$W/$name.onnx" 2>"$W/$name.log"
  awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}' > "$W/$name.secs"
  top1 "$W/$name.onnx" > "$W/$name.top1"
}
log "training ${#ROWS[@]} rows in parallel"
pids=()
for r in "${ROWS[@]}"; do
  IFS='|' read -r name pipe label <<<"$r"
  log "$label: $pipe"
  train_row "$name" "$pipe" & pids+=($!)
done
top1 "$M" > "$W/tsn.top1" & pids+=($!)
for p in "${pids[@]}"; do wait "$p" || { echo "abm_results: a job failed; logs:" >&2; tail -n 3 "$W"/*.log >&2; exit 1; }; done
log "latency and sizes"
T0=$(cat "$W/tsn.top1"); P0=$(params "$M"); F0=$(flops "$M"); L0=$(lat "$M" tsn)
TABLE="| mfmnist_tsn as given | - | $T0 | $P0 | $F0 | $L0 | 1.00 | - |"
for r in "${ROWS[@]}"; do
  IFS='|' read -r name pipe label <<<"$r"
  held=$(json "$W/$name.json" "'%.4f -> %.4f' % (d['detail']['heldout_before'], d['detail']['heldout_after'])")
  tt=$(cat "$W/$name.top1"); p=$(params "$W/$name.onnx"); f=$(flops "$W/$name.onnx")
  l=$(lat "$W/$name.onnx" "$name"); secs=$(cat "$W/$name.secs")
  ratio=$(awk -v a="$l" -v b="$L0" 'BEGIN {printf "%.2f", a / b}')
  TABLE+=$'\n'"| $label | $held | $tt | $p | $f | $l | $ratio | $secs |"
  echo "$name $tt $secs" >> "$W/rows.txt"
  log "$label: test top-1 $tt, held-out $held, ${secs}s"
done
L1=$(lat "$M" tsn2)
log "insertion exactness and ONNX Runtime"
/usr/bin/python3 - "$D/test_x.npy" "$W/clips.npy" <<'PY'
import sys, numpy as np
x = np.load(sys.argv[1])[:64].astype(np.float32)
np.save(sys.argv[2], (((x / 255) - 0.2860) / 0.3530)[:, :, None].astype(np.float32))
PY
maxabs() { /usr/bin/python3 bench/npy_compare.py "$1" "$2" 1 | awk '{print $2}'; }
mkdir -p "$W/o0"; "$HONE" run "$M" --input clip="$W/clips.npy" --output-dir "$W/o0" >/dev/null
EXACT=""
for v in c-in a-in; do
  "$HONE" opt "$M" --passes="abm{variant=$v,epochs=0}" -o "$W/ins_$v.onnx" 2>/dev/null
  mkdir -p "$W/i_$v"; "$HONE" run "$W/ins_$v.onnx" --input clip="$W/clips.npy" --output-dir "$W/i_$v" >/dev/null
  maxabs "$W/i_$v/logits.npy" "$W/o0/logits.npy" > "$W/exact_$v"
  EXACT+="$v $(cat "$W/exact_$v"); "
done
ORT=""
NP=${ORT_NODE_MODULES:-$ROOT/bench/node_modules}
[ -d "$NP/onnxruntime-node" ] || NP=/work/main/bench/node_modules
if [ -d "$NP/onnxruntime-node" ]; then
  for name in cin_s$(echo $SEEDS | awk '{print $1}') ain_s$(echo $AIN_SEEDS | awk '{print $1}'); do
    mkdir -p "$W/h_$name" "$W/r_$name"
    "$HONE" run "$W/$name.onnx" --input clip="$W/clips.npy" --output-dir "$W/h_$name" >/dev/null
    NODE_PATH=$NP node bench/ort_run.js "$W/$name.onnx" "$W/r_$name" clip="$W/clips.npy" >/dev/null 2>&1
    ORT+="$name $(maxabs "$W/h_$name/logits.npy" "$W/r_$name/logits.npy"); "
  done
else
  ORT="not run (bench/node_modules missing: bench/setup.sh installs ONNX Runtime)"
fi
TOTAL=$(( $(date +%s) - START ))
TARGETS=$(awk -v exc="$(cat "$W/exact_c-in")" -v exa="$(cat "$W/exact_a-in")" \
  -v load="$(cut -d' ' -f1 /proc/loadavg)" '
  function verdict(ok) { return ok ? "met" : "missed" }
  /^tsn_ft/ { tsn = $2 } /^cin/ { if ($2 > cin) cin = $2; if ($3 > cs) cs = $3 }
  /^ain/ { if ($2 > ain) ain = $2; if ($3 > as) as = $3 }
  END {
    best = cin > ain ? cin : ain
    printf "ABM >= 95%% test top-1: best ABM-C-in %s, best ABM-A-in %s: %s. ", cin, ain, verdict(best >= 0.95)
    printf "TSN ablation <= 55%%: %s: %s. ", tsn, verdict(tsn <= 0.55)
    printf "Insertion exact within 1e-5: c-in %s, a-in %s: %s. ", exc, exa, verdict(exc <= 1e-5 && exa <= 1e-5)
    printf "Pass time <= 20 min on 2 cores: ABM-C-in %s s, ABM-A-in %s s wall (the rows in parallel, load %s at the end): %s.", cs, as, load, verdict(cs <= 1200 && as <= 1200)
  }' "$W/rows.txt")
CPU=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')

SECTION=$(cat <<EOF
## ABM

Approximated bilinear modules (ICCV 2019, arXiv 2007.12887; METHODS.md section 5), pass
\`abm\` (passes/abm.c), on Moving Fashion-MNIST (\`../shared/data/moving_fmnist\`: 6 motion
classes, each with a time-reversed twin, 8 frames of 28x28 per clip; 6,000 training and
2,000 test clips). Produced by \`bench/abm_results.sh\` (STEPS=$STEPS LR=$LR BATCH=$BATCH VAL=$VAL
SEEDS="$SEEDS" AIN_SEEDS="$AIN_SEEDS"), measured $(date -u +%Y-%m-%d) on $CPU with 2 cores shared with
other jobs (load $(cut -d' ' -f1-3 /proc/loadavg) at the end), hone commit $(git rev-parse --short HEAD); the whole
script took ${TOTAL} s.

Every fine-tuned row gets the same budget: $STEPS SGD steps of $BATCH clips
($((STEPS * BATCH)) clip presentations, $(awk -v s=$STEPS -v b=$BATCH -v v=$VAL 'BEGIN {printf "%.2f", s * b / (6000 - v)}') epochs of the
$((6000 - VAL)) training clips), momentum 0.9, weight decay 5e-4, gradient-norm clip 20 (as
METHODS.md), cosine schedule from lr $LR, cross-entropy on the labels, seed = shuffling seed.
The $VAL held-out training clips (the pass's fixed val split) give the held-out column
(before -> after fine-tuning); the 2,000 test clips are used only for the test column.
The shared model has one residual block per stage, so the paper's choice (stage 1
untouched, the first block of each later stage untouched) leaves no block: the pass then
converts all three blocks (it says so in its log and report). The naive ablation is the same
pass with \`blocks=none\`: the frame-averaging model fine-tuned with the same budget.
FLOPs are per clip (8 frames); latency is the hone-compiled model (\`hone compile\`,
\`bench/latency\`, 1 thread, median of $REPEAT runs, one clip) and its ratio to the TSN
compiled and timed in the same run (the TSN timed again after all rows: $L1 ms); pass time
is the wall time of \`hone opt\` with the pass (fine-tuning and the held-out scoring before
and after), with the rows trained as parallel jobs ($THREADS threads each) on the 2 shared cores.

| model | held-out top-1 ($VAL train clips, before -> after) | test top-1 (2,000 clips) | params | FLOPs/clip | latency ms/clip | vs TSN | pass time s |
|---|---|---|---|---|---|---|---|
$TABLE

Choices for this budget: lr 0.01 instead of METHODS.md's 1e-3 (a development run of the same pass, 150 steps on the first 2,400 training clips, 300 held out, reached held-out top-1 0.847 at lr 0.01 and 0.830 at 1e-3); one seed per row instead of three, and 150 steps, because the 2 cores were shared by up to 30 runnable jobs (a rerun at 250 steps with a second C-in seed was stopped unfinished when its C-in rows ran at 16 s per step).

Targets of issue #11 on this run: $TARGETS

Insertion exactness (\`abm{epochs=0}\` against the original, max abs logit error on 64 test
clips): $EXACT
ONNX Runtime (bench/ort_run.js) against hone's interpreter on the fine-tuned models, max abs
logit error on the same clips: $ORT
The deployed graph uses only standard ONNX ops (Reshape, Slice, Pad, Concat, Conv, Mul): the
C-in module's 2-D conv over the channel blocks (t, t-1, t+1) is exactly a 3x3x3 conv over
(B, C, T, H, W) (tests/unit/test_abm.c checks it against a direct 3-D convolution), so the
backend runs each temporal conv as one im2col+GEMM kernel after one copy per shifted frame
block.

Published (Something-Something v1 top-1, ResNet-34, no Kinetics pre-training): ABM-C-in
8x3 frames 44.14; ABM-A-in 16x3 45.67; frame-averaging baseline 18.09.

Command: \`bench/abm_results.sh\`
EOF
)
printf '%s\n' "$SECTION" > "$W/section.md"
/usr/bin/python3 - "$OUT" "$W/section.md" <<'PY'
import os, sys
path, sec = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
start = text.find("\n## ABM\n")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + text[end:] if end >= 0 else text[:start]
text = text.rstrip("\n") + "\n\n" + sec.strip("\n") + "\n"
open(path + ".tmp", "w").write(text)
os.replace(path + ".tmp", path)
PY
log "wrote the ## ABM section of $OUT"
echo "$TABLE"
