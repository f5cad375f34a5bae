#!/usr/bin/env bash
# The "## SLB" section of docs/RESULTS.md: low-bit weights on fmnist_resnet14 by slb
# (passes/slb.c) against its ablations quantize-rtn and quantize-ste, and W8A8 on the
# torchvision ResNet-18. Per setting (weight bits : activation bits) and method: top-1 on
# the 10,000 Fashion-MNIST test images (never seen by a pass), the file sizes of the
# standard-ONNX and the packed form, the compiled latency relative to the fp32 model
# compiled and timed in the same run, and how often ONNX Runtime and hone's interpreter
# predict the same class on the standard-ONNX output.
# usage: bench/slb_results.sh            (writes the section into $DOC)
# env:   HONE (build/hone)  LATENCY (build/bench/latency)  HONE_SHARED (../shared)
#        STEPS (100: slb/ste budget in steps of 64)  LIMIT (10000 training samples, 10% held
#        out)  SEEDS ("1")  SETTINGS ("1:32 2:32 4:32 4:8 8:8")  REPEAT (300 latency runs)
#        R18 (1: the ResNet-18 W8A8 rows)  DOC (docs/RESULTS.md)  KEEP (a dir to keep models in)
#        JOBS (2: settings run at once)  DOC_ONLY=1 with KEEP: write the section from the rows
#        a stopped run finished (COMMIT: the commit they were measured at; NOTE: one more bullet)
set -euo pipefail
cd "$(dirname "$0")/.."
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency} DOC=${DOC:-docs/RESULTS.md}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}   # DOC_ONLY: the commit the rows were measured at
SHARED=${HONE_SHARED:-$(git rev-parse --show-toplevel)/../shared}
[ -d "$SHARED" ] || SHARED=/work/shared
STEPS=${STEPS:-100} LIMIT=${LIMIT:-10000} SEEDS=${SEEDS:-1} REPEAT=${REPEAT:-300} R18=${R18:-1}
JOBS=${JOBS:-2} R18_REPEAT=$((REPEAT / 10 > 15 ? REPEAT / 10 : 15))
SETTINGS=${SETTINGS:-"1:32 2:32 4:32 4:8 8:8"}
MODEL=$SHARED/models/fmnist_resnet14.onnx
[ -f "$MODEL" ] || MODEL=models/fmnist_resnet14.onnx
FM=/usr/share/datasets/fashion-mnist
ORT_DIR=bench; [ -d bench/node_modules ] || ORT_DIR=/work/main/bench
T=${KEEP:-$(mktemp -d)}; mkdir -p "$T"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
if [ "${DOC_ONLY:-0}" != 1 ]; then   # a rebuild during the run changes nothing
  mkdir -p "$T/bin"; cp "$HONE" "$LATENCY" "$T/bin/"
fi
HONE=$T/bin/$(basename "$HONE") LATENCY=$T/bin/$(basename "$LATENCY")
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
DATA=(--data $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz "${NORM[@]}"
      --limit "$LIMIT" --val-split 0.1)
START=$(date +%s) LOAD=${LOAD:-$(cut -d' ' -f1-3 /proc/loadavg)}
log() { echo "[slb_results $(($(date +%s) - START))s] $*" >&2; }

CHUNKS=$($PY bench/slb_eval.py prep "$T" 2500)
CHUNKS=${TEST_CHUNKS:-$CHUNKS}   # trial runs only: fewer than the 4 chunks of 2500 test images
mkdir -p "$T/bin"

# Top-1 (%) on the test set by hone's interpreter and, for standard ONNX, the share (%)
# of test images on which ONNX Runtime predicts the same class: prints "top1 agree".
score() { # model name ort(0|1)
  for ((k = 0; k < CHUNKS; k++)); do
    mkdir -p "$T/h_$2_$k"
    $HONE run "$1" --input input="$T/t$k.npy" --output-dir "$T/h_$2_$k" >/dev/null
    [ "$3" = 0 ] || node $ORT_DIR/ort_run.js "$1" "$T/o_$2_$k" input="$T/t$k.npy" >/dev/null
  done
  if [ "$3" = 1 ]; then $PY bench/slb_eval.py score "$T/h_$2_" "$CHUNKS" "$T/labels.npy" "$T/o_$2_"
  else $PY bench/slb_eval.py score "$T/h_$2_" "$CHUNKS" "$T/labels.npy"; fi
  rm -rf "$T"/h_"$2"_* "$T"/o_"$2"_*
}

# Compiles a model (-O3) at a fixed input shape.
compile() { # model name shape
  $HONE compile "$1" -o "$T/$2.so" --name lat --input-shape "input=$3" >/dev/null 2>&1
}
# Fastest compiled run (ms) at batch 1 of a compiled model: on a machine shared by many
# jobs the minimum estimates the uncontended time far better than the median.
median() { # name repeat
  $LATENCY "$T/$1.so" --name lat --repeat "$2" --threads 2 | awk '$1 == "min_ms" { print $2 }'
}
# Latency of model name relative to the fp32 model's, both timed now, alternately
# (3 rounds of REPEAT/3 runs each; the minima summed), since the machine's load drifts.
rel_latency() { # name [ref]
  local ref=${2:-fp32} a=0 b=0 r=$((REPEAT / 3 > 5 ? REPEAT / 3 : 5))
  [ -f "$T/$1.so" ] && [ -f "$T/$ref.so" ] || { echo "-"; return; }
  for _ in 1 2 3; do
    a=$(awk -v a="$a" -v b="$(median "$1" $r)" 'BEGIN { print a + b }')
    b=$(awk -v a="$b" -v b="$(median "$ref" $r)" 'BEGIN { print a + b }')
  done
  ratio "$a" "$b"
}

kb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "-"; else printf "%.2f", a / b }'; }

if [ "${DOC_ONLY:-0}" = 1 ]; then   # rewrite the section from a KEEP dir's finished rows
  read -r FP_TOP1 FP_MS FP_KB START <"$T/fp.txt"
else
log "fp32 baseline"
read -r FP_TOP1 _ < <(score "$MODEL" fp32 0)
compile "$MODEL" fp32 1x1x28x28 || true
FP_MS=$(median fp32 "$REPEAT")
FP_KB=$(kb "$MODEL")
echo "$FP_TOP1 $FP_MS $FP_KB $START" >"$T/fp.txt"
# One setting (weight bits:activation bits), every method and seed: rows into $T/rows.<s>.
run_setting() { # wb:ab
  local s=$1 wb=${1%:*} ab=${1#*:} m seed p name t0 t1 held top1 agree lat seedcol drop
  : >"$T/rows.$s"
  for m in rtn ste slb; do
    for seed in $SEEDS; do
      [ $m = rtn ] && [ "$seed" != "${SEEDS%% *}" ] && continue
      case $m in
        rtn) p="quantize-rtn{bits=$wb,acts=$ab}" ;;
        ste) p="quantize-ste{bits=$wb,acts=$ab,steps=$STEPS,seed=$seed}" ;;
        slb) p="slb{bits=$wb,acts=$ab,steps=$STEPS,seed=$seed}" ;;
      esac
      name=w${wb}a${ab}_${m}_$seed
      log "$name: $p"
      t0=$(date +%s)
      $HONE opt "$MODEL" --passes="$p" -o "$T/$name.onnx" "${DATA[@]}" --report "$T/$name.json" \
        >/dev/null 2>"$T/$name.log" || { log "failed: $(tail -3 "$T/$name.log")"; continue; }
      t1=$(date +%s)
      $HONE opt "$T/$name.onnx" --passes=pack-lowbit -o "$T/$name.packed.onnx" >/dev/null 2>&1
      held=$(sed -n 's/.*held-out top1: [0-9.]* before, \([0-9.]*\) after.*/\1/p' "$T/$name.log")
      read -r top1 agree < <(score "$T/$name.onnx" "$name" 1)
      compile "$T/$name.onnx" "$name" 1x1x28x28 || true
      lat=$(rel_latency "$name")
      [ $m = rtn ] && seedcol=- || seedcol=$seed
      drop=$(awk -v a="$FP_TOP1" -v b="$top1" 'BEGIN { printf "%.2f", a - b }')
      printf '| W%s/A%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$wb" "$ab" \
        "$m" "$seedcol" "$top1" "$drop" "$(awk -v h="$held" 'BEGIN { printf "%.2f", 100 * h }')" \
        "$(kb "$T/$name.onnx")" "$(kb "$T/$name.packed.onnx")" \
        "$(ratio "$(stat -c %s "$MODEL")" "$(stat -c %s "$T/$name.packed.onnx")")" \
        "$lat" "$agree" "$((t1 - t0))" | tee -a "$T/rows.$s" >&2
    done
  done
}

# ResNet-18 W8A8 vs fp32, compiled: rows into $T/r18.
run_r18() {
  local ms32 ms8 same
  : >"$T/r18"
  R18_MODEL=$ORT_DIR/models/resnet18.onnx
  if [ "$R18" = 1 ] && [ -f "$R18_MODEL" ]; then
    log "ResNet-18 W8A8 (quantize-rtn, random calibration data)"
    $PY bench/slb_eval.py random "$T/r18cal.npy" 32 3 224 224
    $HONE opt "$R18_MODEL" --passes='quantize-rtn{bits=8,acts=8,keep-first=false,samples=32}' \
      -o "$T/r18q.onnx" --data "$T/r18cal.npy" --val-split 0 2>"$T/r18.log" || log "r18 failed"
    if [ -f "$T/r18q.onnx" ]; then
      compile "$R18_MODEL" r18 1x3x224x224 || true
      compile "$T/r18q.onnx" r18q 1x3x224x224 || true
      ms32=0 ms8=0
      for _ in 1 2 3; do
        ms32=$(awk -v a="$ms32" -v b="$(median r18 $((R18_REPEAT / 3)))" 'BEGIN { print a + b }')
        ms8=$(awk -v a="$ms8" -v b="$(median r18q $((R18_REPEAT / 3)))" 'BEGIN { print a + b }')
      done
      ms32=$(awk -v a="$ms32" 'BEGIN { printf "%.2f", a / 3 }') ms8=$(awk -v a="$ms8" 'BEGIN { printf "%.2f", a / 3 }')
      mkdir -p "$T/r18h0"
      $HONE run "$T/r18q.onnx" --input input=$ORT_DIR/models/resnet18.input.npy --output-dir "$T/r18h0" >/dev/null
      node $ORT_DIR/ort_run.js "$T/r18q.onnx" "$T/r18o0" input=$ORT_DIR/models/resnet18.input.npy >/dev/null
      same=$($PY -c "import numpy as n,glob; a=n.load(glob.glob('$T/r18h0/*.npy')[0]); b=n.load(glob.glob('$T/r18o0/*.npy')[0]); print(('yes' if (a.argmax(1)==b.argmax(1)).all() else 'no') + ' (max diff %.2g of max %.2g)' % (abs(a-b).max(), abs(a).max()))")
      printf '| ResNet-18 fp32 | %s | 1.00 | %s | - |\n' "$ms32" "$(kb "$R18_MODEL")" >>"$T/r18"
      printf '| ResNet-18 W8A8 (quantize-rtn) | %s | %s | %s | %s |\n' "$ms8" \
        "$(ratio "$ms32" "$ms8")" "$(kb "$T/r18q.onnx")" "$same" >>"$T/r18"
    fi
  fi
}

# Settings (and the ResNet-18 rows) run JOBS at a time (the machine is shared by many jobs; each setting is serial).
for s in r18 $SETTINGS; do
  if [ "$s" = r18 ]; then run_r18 & else run_setting "$s" & fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done
wait
fi
: >"$T/rows"
for s in $SETTINGS; do [ ! -f "$T/rows.$s" ] || cat "$T/rows.$s" >>"$T/rows"; done

section() {
  echo "## SLB"
  echo
  echo "Low-bit weights for \`fmnist_resnet14\` (fp32 top-1 on the 10,000 Fashion-MNIST test"
  echo "images: $FP_TOP1%) by \`slb\` (searching for low-bit weights, passes/slb.c) against its"
  echo "naive ablations \`quantize-rtn\` (round to nearest + BN re-estimation) and \`quantize-ste\`"
  echo "(straight-through fine-tuning, same budget). Measured by \`bench/slb_results.sh\` on"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC') ($(( ($(date +%s) - START) / 60 )) min), hone at commit $COMMIT; reproduce with:"
  echo
  echo '```'
  echo "STEPS=$STEPS LIMIT=$LIMIT SEEDS=\"$SEEDS\" SETTINGS=\"$SETTINGS\" REPEAT=$REPEAT JOBS=$JOBS bench/slb_results.sh"
  echo '```'
  echo
  echo "- Data: the first $LIMIT Fashion-MNIST training images; 10% of them held out (the"
  echo "  \"held-out\" column, used by no choice here); the test set is only scored."
  echo "- Budget: slb and quantize-ste train $STEPS steps of batch 64 (Adam, lr 0.001, cosine;"
  echo "  CE + KD from the fp32 model, alpha 0.5, T 4), i.e. $((STEPS * 64)) images, about"
  echo "  $(awk -v s="$STEPS" -v l="$LIMIT" 'BEGIN { printf "%.2f", s * 64 / (0.9 * l) }') passes over the training subset; seeds: $SEEDS (one run per method"
  echo "  and seed; rtn has no randomness and runs once). slb's temperature: t0 5,"
  echo "  x1.05 per 1% of the steps from 20% to 80%, then the argmax level."
  echo "- All methods: per-output-channel scales (MSE-best clipping of the pretrained weights),"
  echo "  the first conv and the final Gemm in float, BN re-introduced for training"
  echo "  (unfold-bn), re-estimated on 1024 training images with the discrete weights, then"
  echo "  folded into the per-channel dequantization scales. A8: uint8 activations before"
  echo "  every quantized conv, min/max ranges over those 1024 images."
  echo "- Sizes: the standard-ONNX output (int8 codes + DequantizeLinear) and hone's packed form"
  echo "  (\`pack-lowbit\`: b-bit indices in hone.DequantizePacked); x smaller = fp32 file"
  echo "  ($FP_KB KB) / packed file. Latency: \`hone compile\` (-O3) at batch 1, 2 threads;"
  echo "  the sum of the model's fastest run in each of 3 rounds of $((REPEAT / 3)) runs divided by"
  echo "  the same for the fp32 model, timed alternately with it (the fp32 model alone: fastest"
  echo "  of $REPEAT runs $FP_MS ms). Fastest, not median: with a load average near the one"
  echo "  below, medians of identical models differed by 2-20x in trial runs. In -O3,"
  echo "  qdq-to-integer turns each A8 conv, with its Relu and the QuantizeLinear after it,"
  echo "  into one hone.QConv, which runs the AVX-512 VNNI kernel with that epilogue in its"
  echo "  store (runtime/qconv.c); weight-only models get their weights dequantized to float"
  echo "  at compile time (no low-bit unpacking kernel), so they run at fp32 speed."
  echo "- A8 biases are written as int32 codes at x_scale * w_scale through DequantizeLinear,"
  echo "  as ONNX quantizers write them, so ONNX Runtime's fused int8 kernels add the same"
  echo "  bias as the spec'd ops."
  echo "- ORT agree: share of test images on which ONNX Runtime (bench/ort_run.js) and hone's"
  echo "  interpreter predict the same class for the standard-ONNX output."
  echo "- Load average at start: $LOAD (the machine is shared; latencies are ratios for that reason)."
  [ -z "${NOTE:-}" ] || echo "- $NOTE"
  echo
  echo "| weights/acts | method | seed | test top-1 % | drop (points) | held-out top-1 % | ONNX KB | packed KB | x smaller | latency vs fp32 | ORT agree % | pass s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  echo "| fp32 | - | - | $FP_TOP1 | 0 | - | $FP_KB | - | 1.00 | 1.00 | - | - |"
  cat "$T/rows"
  echo
  echo "Mean test top-1 over the seeds (± sample std; rtn has no seed), and whether slb is at"
  echo "least as accurate as both ablations:"
  echo
  echo "| weights/acts | rtn % | ste % | slb % | slb >= rtn and ste |"
  echo "|---|---|---|---|---|"
  awk -F'|' -v order="$SETTINGS" '
    { gsub(/ /, "", $2); gsub(/ /, "", $3); k = $2 SUBSEP $3; v = $5 + 0
      n[k]++; s[k] += v; q[k] += v * v; seen[$2] = 1 }
    function cell(k,   m, sd) {
      if (!n[k]) return "-"
      m = s[k] / n[k]; sd = n[k] > 1 ? sqrt((q[k] - n[k] * m * m) / (n[k] - 1)) : 0
      return sprintf("%.2f ± %.2f (n=%d)", m, sd < 0 ? 0 : sd, n[k]) }
    function mean(k) { return n[k] ? s[k] / n[k] : -1 }
    END {
      c = split(order, st, " ")
      for (i = 1; i <= c; i++) {
        split(st[i], b, ":"); key = "W" b[1] "/A" b[2]
        if (!(key in seen)) continue
        ok = mean(key SUBSEP "slb") >= mean(key SUBSEP "rtn") - 1e-9 && mean(key SUBSEP "slb") >= mean(key SUBSEP "ste") - 1e-9
        printf "| %s | %s | %s | %s | %s |\n", key, cell(key SUBSEP "rtn"), cell(key SUBSEP "ste"), cell(key SUBSEP "slb"), ok ? "yes" : "no"
      }
    }' "$T/rows"
  echo
  echo "ONNX Runtime and hone's interpreter on every slb output (standard ONNX), from"
  echo "\`bench/ort_agree.sh\`: same predicted class with ONNX Runtime at its full graph"
  echo "optimisation (it fuses DequantizeLinear -> Conv -> Relu -> QuantizeLinear chains into"
  echo "its own int8 kernel, exact integer sums requantized in its own arithmetic) and with graph optimisations"
  echo "disabled (every op as the ONNX spec defines it), and ONNX Runtime's two modes against"
  echo "each other:"
  echo
  cat "$T/agree"
  echo
  echo "Sizes in every form, including hone's deployment form (\`pack-lowbit\` then \`hone opt"
  echo "--strip\`: short value names, no node names, no intermediate value_info), from"
  echo "\`bench/lowbit_sizes.sh\` (sizes depend only on the graph's structure):"
  echo
  cat "$T/sizes"
  echo
  echo "Published (SLB paper, arXiv 2009.08695; other models and datasets, for scale):"
  echo
  echo "| model | W/A bits | top-1 % |"
  echo "|---|---|---|"
  echo "| CIFAR-10 ResNet-20 | 1/1 | 85.5 |"
  echo "| CIFAR-10 ResNet-20 | 1/32 | 90.6 |"
  echo "| CIFAR-10 ResNet-20 | 2/2 | 90.6 |"
  echo "| CIFAR-10 ResNet-20 | 4/4 | 91.6 |"
  echo "| CIFAR-10 VGG-Small | 2/2 | 93.5 |"
  echo "| CIFAR-10 VGG-Small | 4/32 | 94.1 |"
  echo "| ImageNet ResNet-18 | 2/32 | 68.4 |"
  echo "| ImageNet ResNet-18 | 1/32 | 67.1 |"
  if [ -s "$T/r18" ]; then
    echo
    echo "torchvision ResNet-18 (bench/models/resnet18.onnx, random weights), W8A8 by"
    echo "\`quantize-rtn{bits=8,acts=8,keep-first=false}\` calibrated on 32 random N(0,1) images;"
    echo "compiled at batch 1, fastest run of 3 alternating rounds of $((R18_REPEAT / 3)) runs each"
    echo "(mean of the 3 minima), same run. ORT same class: ORT and hone's interpreter agree on"
    echo "the argmax of bench/models/resnet18.input.npy (random weights: the 1000 logits are close"
    echo "together, so one activation rounded to the neighbouring uint8 level can swap the top two)."
    echo
    echo "| model | fastest ms | speed-up vs fp32 | file KB | ORT same class |"
    echo "|---|---|---|---|---|"
    cat "$T/r18"
  fi
}

HONE=$HONE bench/lowbit_sizes.sh >"$T/sizes" 2>/dev/null || echo "(bench/lowbit_sizes.sh failed)" >"$T/sizes"
# shellcheck disable=SC2046
HONE=$HONE bench/ort_agree.sh $(ls "$T"/w*_slb_*.onnx 2>/dev/null | grep -v packed) >"$T/agree" 2>/dev/null ||
  echo "(bench/ort_agree.sh failed)" >"$T/agree"
section >"$T/section"
[ -f "$DOC" ] || : >"$DOC"
awk -v sec="$T/section" '
  /^## / { skip = ($0 == "## SLB") }
  skip && !done { while ((getline l < sec) > 0) print l; print ""; done = 1 }
  !skip { print }
  END { if (!done) { if (NR) print ""; while ((getline l < sec) > 0) print l } }
' "$DOC" >"$T/doc.new"
mv "$T/doc.new" "$DOC"
log "wrote $DOC"
