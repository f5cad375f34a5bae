#!/usr/bin/env bash
# adder_results: the "## Adder (PKKD, AdderSR)" section of docs/RESULTS.md.
#
#   fmnist_resnet14: the CNN, and the `adder` pass with kd=none, kd=logits and
#     kd=pkkd (SEEDS seeds each), trained on the Fashion-MNIST training images
#     (--limit CLS_LIMIT, CLS_VAL of them held out by the pass), scored on the
#     10,000 test images;
#   fmnist_sr_x2: the CNN, and the pass (kd=pkkd) without and with AdderSR's
#     shortcut=1 power=1, trained on LR/HR pairs made here from the Fashion-MNIST
#     *training* images (HR = the image, LR = 2x2 average pool of pixel/255),
#     scored on ../shared/data/fmnist_sr (test_lr.npy, test_hr.npy, --target-scale 1/255);
#   for every model: multiplications, additions and energy from `hone stats`
#     (batch 1), compiled latency at batch 1 (bench/latency, THREADS threads, the
#     CNN timed in the same run), pass wall time; and bench/adder_bench.sh.
#
# usage: bench/adder_results.sh [--write]   (--write replaces the section in docs/RESULTS.md)
# env: EVAL_LIMIT (all test samples; smaller only for a dry run) CLS_STEPS (300) SR_STEPS (300) SEEDS (1) CLS_LIMIT (21000) CLS_VAL (1000)
#      SR_LIMIT (12000) SR_VAL (1000) THREADS (2) HONE LATENCY HONE_SHARED
#      PKKD_OPTS (more options of the classifier's kd=pkkd runs, e.g. ",layers=all")
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
SHARED=${HONE_SHARED:-$(git rev-parse --show-toplevel)/../shared}
[ -d "$SHARED" ] || SHARED=/work/shared
CLS_STEPS=${CLS_STEPS:-300} SR_STEPS=${SR_STEPS:-300} SEEDS=${SEEDS:-1}
CLS_LIMIT=${CLS_LIMIT:-21000} CLS_VAL=${CLS_VAL:-1000}
SR_LIMIT=${SR_LIMIT:-12000} SR_VAL=${SR_VAL:-1000} THREADS=${THREADS:-2}
PKKD_OPTS=${PKKD_OPTS:-}
EVAL=(); [ -n "${EVAL_LIMIT:-}" ] && EVAL=(--limit "$EVAL_LIMIT")
export OPENBLAS_NUM_THREADS=$THREADS
FMD=/usr/share/datasets/fashion-mnist
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
CLS=models/fmnist_resnet14.onnx SR=$SHARED/models/fmnist_sr_x2.onnx SRD=$SHARED/data/fmnist_sr
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
START=$(date +%s)
log() { echo "[adder_results $(($(date +%s) - START)) s] $*" >&2; }

# ---- SR training pairs from the training images (never the test set) ----
PY=python3
$PY -c 'import numpy' 2>/dev/null || PY=/usr/bin/python3
$PY - "$FMD/train-images-idx3-ubyte.gz" "$T" "$SR_LIMIT" <<'PYEOF'
import gzip, sys, numpy as np
with gzip.open(sys.argv[1]) as f:
    hr = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[: int(sys.argv[3])]
lr = (hr.astype(np.float32) / 255).reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))
np.save(sys.argv[2] + "/sr_lr.npy", lr.astype(np.float32))
np.save(sys.argv[2] + "/sr_hr.npy", np.ascontiguousarray(hr))
PYEOF

# ---- helpers ----
top1() { "$HONE" eval "$1" --data "$FMD/t10k-images-idx3-ubyte.gz" --labels "$FMD/t10k-labels-idx1-ubyte.gz" "${NORM[@]}" "${EVAL[@]}" | awk '$1=="top1"{printf "%.2f", 100*$2}'; }
psnr() { "$HONE" eval "$1" --data "$SRD/test_lr.npy" --targets "$SRD/test_hr.npy" --target-scale 0.00392156862745098 "${EVAL[@]}" | awk '$1=="psnr"{printf "%.2f", $2}'; }
stat() { "$HONE" stats "$1" --input-shape "$2" | awk -v k="$3" '$1==k{print $2}'; }
# compiled latency (median ms, batch 1) of model $1 with input shape $2
lat() {
    "$HONE" compile "$1" --input-shape "$2" -o "$T/lat.so" >/dev/null
    "$LATENCY" "$T/lat.so" --name lat --threads "$THREADS" --warmup 10 --repeat 100 | awk '$1=="median_ms"{print $2}'
}
# pass wall time (s) and held-out metrics from a --report file
wall() { grep -o '"wall_ms": [0-9.]*' "$1" | head -1 | awk '{printf "%.0f", $2/1000}'; }
field() { grep -o "\"$2\":[-0-9.e]*" "$1" | head -1 | cut -d: -f2; }

ROWS=$T/rows.md
: >"$ROWS"
# row MODEL_LABEL FILE INPUT_SHAPE METRIC PASS_REPORT(or -) CNN_FILE: the CNN is timed
# again right before the model, so each ratio compares two back-to-back runs
row() {
    local label=$1 m=$2 shape=$3 metric=$4 rep=$5 cnn=$6
    local mu ad en l w base
    mu=$(stat "$m" "$shape" mults) ad=$(stat "$m" "$shape" adds) en=$(stat "$m" "$shape" energy_pj)
    base=$(lat "$cnn" "$shape")
    l=$base; [ "$m" != "$cnn" ] && l=$(lat "$m" "$shape")
    w=-; [ "$rep" != - ] && w="$(wall "$rep") s"
    awk -v lb="$label" -v me="$metric" -v mu="$mu" -v ad="$ad" -v en="$en" -v l="$l" -v b="$base" -v w="$w" \
        'BEGIN { printf "| %s | %s | %.2fM | %.2fM | %.1f | %.3f (%.2fx) | %s |\n", lb, me, mu/1e6, ad/1e6, en/1e6, l, l/b, w }' >>"$ROWS"
}

# ---- classifier ----
CLS_SHAPE=input=1x1x28x28
log "CNN fmnist_resnet14"
CNN_TOP1=$(top1 "$CLS")
echo "| **fmnist_resnet14** | test top-1 % | mults | adds | energy uJ | latency ms (vs CNN) | pass time |" >>"$ROWS"
echo "|---|---:|---:|---:|---:|---:|---:|" >>"$ROWS"
row "CNN (original)" "$CLS" "$CLS_SHAPE" "$CNN_TOP1" - "$CLS"
SUMMARY=$T/summary.txt
: >"$SUMMARY"
for kd in none logits pkkd; do
    accs=()
    for s in $(seq 1 "$SEEDS"); do
        log "classifier kd=$kd seed=$s"
        out=$T/cls_${kd}_$s.onnx rep=$T/cls_${kd}_$s.json
        extra=; [ "$kd" = pkkd ] && extra=$PKKD_OPTS
        nice -n 5 "$HONE" opt "$CLS" --passes="adder{kd=$kd,steps=$CLS_STEPS,seed=$s$extra}" \
            --data "$FMD/train-images-idx3-ubyte.gz" --labels "$FMD/train-labels-idx1-ubyte.gz" "${NORM[@]}" \
            --limit "$CLS_LIMIT" --val-split "$CLS_VAL" --report="$rep" -o "$out" 2>"$T/log_${kd}_$s.txt"
        a=$(top1 "$out"); accs+=("$a")
        echo "cls $kd seed $s test $a held-out-before $(field "$rep" converted) held-out-after $(field "$rep" trained) cnn-held-out $(field "$rep" cnn)" >>"$SUMMARY"
    done
    mean=$(printf '%s\n' "${accs[@]}" | awk '{s+=$1} END {printf "%.2f", s/NR}')
    eval "MEAN_$kd=$mean"
    label="adder, kd=$kd"; [ "$SEEDS" -gt 1 ] && label="$label (mean of $SEEDS: ${accs[*]})"
    row "$label" "$T/cls_${kd}_1.onnx" "$CLS_SHAPE" "$mean" "$T/cls_${kd}_1.json" "$CLS"
done

# ---- super-resolution ----
SR_SHAPE=lr=1x1x14x14
log "CNN fmnist_sr_x2"
CNN_PSNR=$(psnr "$SR")
{ echo; echo "| **fmnist_sr_x2** | test PSNR dB | mults | adds | energy uJ | latency ms (vs CNN) | pass time |"
  echo "|---|---:|---:|---:|---:|---:|---:|"; } >>"$ROWS"
row "CNN (original)" "$SR" "$SR_SHAPE" "$CNN_PSNR" - "$SR"
for cfg in "plain:" "shortcut+power:,shortcut=true,power=true"; do
    name=${cfg%%:*} opts=${cfg#*:}
    log "SR adder $name"
    out=$T/sr_$name.onnx rep=$T/sr_$name.json
    nice -n 5 "$HONE" opt "$SR" --passes="adder{steps=$SR_STEPS$opts}" --data "$T/sr_lr.npy" \
        --targets "$T/sr_hr.npy" --target-scale 0.00392156862745098 --val-split "$SR_VAL" \
        --report="$rep" -o "$out" 2>"$T/log_sr_$name.txt"
    p=$(psnr "$out")
    [ "$name" = plain ] && PSNR_PLAIN=$p || PSNR_SP=$p
    echo "sr $name test $p held-out-before $(field "$rep" converted) held-out-after $(field "$rep" trained) cnn-held-out $(field "$rep" cnn)" >>"$SUMMARY"
    row "adder, $name" "$out" "$SR_SHAPE" "$p" "$rep" "$SR"
done

# ---- targets (issue 10) ----
en() { stat "$1" "$2" energy_pj; }
E_CLS=$(en "$CLS" "$CLS_SHAPE") E_CLSA=$(en "$T/cls_pkkd_1.onnx" "$CLS_SHAPE")
E_SR=$(en "$SR" "$SR_SHAPE") E_SRA=$(en "$T/sr_shortcut+power.onnx" "$SR_SHAPE")
WMAX=$(for f in "$T"/*.json; do wall "$f"; echo; done | sort -n | tail -1)
TARGETS=$(awk -v c="$CNN_TOP1" -v n="$MEAN_none" -v l="$MEAN_logits" -v p="$MEAN_pkkd" \
    -v sc="$CNN_PSNR" -v sp="$PSNR_SP" -v s0="$PSNR_PLAIN" -v ec="$E_CLS" -v ea="$E_CLSA" \
    -v es="$E_SR" -v esa="$E_SRA" -v w="$WMAX" 'function ok(b) { return b ? "met" : "**missed**" }
    BEGIN {
      printf "- classifier: pkkd within 1.0 point of the CNN: %s (%.2f vs %.2f, %+.2f points)\n", ok(p >= c - 1.0), p, c, p - c
      printf "- classifier: pkkd at least as accurate as kd=none and kd=logits: %s (%.2f vs %.2f and %.2f)\n", ok(p >= n && p >= l), p, n, l
      printf "- SR: shortcut+power within 0.5 dB of the CNN: %s (%.2f vs %.2f dB, %+.2f); without them %.2f dB\n", ok(sp >= sc - 0.5), sp, sc, sp - sc, s0
      printf "- energy at least 2x lower: classifier %s (%.2fx), SR %s (%.2fx)\n", ok(ec >= 2 * ea), ec / ea, ok(es >= 2 * esa), es / esa
      printf "- pass time under 20 minutes per model: %s (longest %d s)\n", ok(w < 1200), w
    }')

log "adder_bench"
BENCH=$(THREADS=1 REPEAT=50 bench/adder_bench.sh)
BENCH2=$(THREADS=$THREADS REPEAT=50 bench/adder_bench.sh)
log "done"

# ---- the section ----
SECTION=$T/section.md
{
cat <<EOF
## Adder (PKKD, AdderSR)

Produced by \`bench/adder_results.sh --write\` (CLS_STEPS=$CLS_STEPS SR_STEPS=$SR_STEPS PKKD_OPTS="$PKKD_OPTS"
SEEDS=$SEEDS CLS_LIMIT=$CLS_LIMIT CLS_VAL=$CLS_VAL SR_LIMIT=$SR_LIMIT SR_VAL=$SR_VAL
THREADS=$THREADS), one run, $(date -u +%Y-%m-%d) on the shared 2-core machine. Pass: \`adder\`
(passes/adder.c, options in docs/PASSES.md); ops: hone.Adder2d, hone.SignedPower
(docs/CUSTOM_OPS.md).

Method and choices (PKKD and AdderSR publish no code): every Conv but the stem and the
last layer becomes hone.Adder2d (same weights as a start) + BatchNormalization (bias moved
into it by unfold-bn, running statistics re-estimated on 1024 training samples after the
conversion, so each BN maps its adder's output to the conv output's per-channel mean and
spread). Training: Nesterov SGD (momentum 0.9, weight decay 1e-4 added after AdderNet's
adaptive scaling eta = 0.2), cosine schedule from lr 0.1, batch 64, the step budgets above.
Loss = CE with the labels (L1 to the HR targets for SR) + 1.0 x distillation (KD at T = 4 on
the logits; L1 to the CNN's output for SR) + 1.0 x PKKD (kd=pkkd only). PKKD: student
Laplace kernel exp(Y_adder / s_a) followed by a 1x1 conv (identity init), teacher Gaussian
kernel exp(-||x - f||^2 / s_c) from the CNN's conv at the same place, s_a and s_c = sigma x
their mean over a calibration batch (sigma = 1), mean-squared error averaged over the
matched layers: the last converted layer of each resolution (layers.1/c2, layers.3/c2,
layers.5/c2 in fmnist_resnet14; body.8 in fmnist_sr_x2). Teacher frozen (teacher=cotrain,
the "progressive" variant, is implemented but not measured here).$([ -n "$PKKD_OPTS" ] && printf ' The classifier pkkd rows ran with the options "%s" on top (they override the choices above).' "$PKKD_OPTS") AdderSR: shortcut=1 adds
the layer input after the BN (all 4 SR adder layers qualify), power=1 inserts
sign(y)|y|^alpha (alpha from 1, trained) between adder and BN. Held-out data for the pass's
own metric: CLS_VAL / SR_VAL training samples; every figure below is on the test data
(10,000 Fashion-MNIST test images; the 2,000-image fmnist_sr set), which no pass saw.
Mults/adds/energy: \`hone stats --input-shape\` at batch 1 (45 nm figures fp32 add 0.9 pJ,
mult 3.7 pJ; BN counted as one mult + one add per element). Latency: \`hone compile\` then
bench/latency, batch 1, $THREADS threads, median of 100 runs, the CNN timed again right
before each model (the ratio is adder / CNN latency of that pair).

EOF
cat "$ROWS"
cat <<EOF

Targets of issue 10 on these numbers:

$TARGETS

Held-out (pass) metrics, before training (right after conversion and BN calibration) and
after, per run:

\`\`\`
$(cat "$SUMMARY")
\`\`\`

Published (METHODS.md section 4): ImageNet ResNet-50 CNN 76.2 / AdderNet 74.9 / PKKD 76.8
top-1; ResNet-18 69.8 / 67.0 / 68.8; CIFAR-10 ResNet-20 AdderNet 92.02 -> PKKD 92.96.
AdderSR (Set5 PSNR): EDSR x2 38.11 -> 37.92, VDSR x2 37.53 -> 37.37, about 2x less energy.

Kernel microbenchmark (bench/adder_bench.sh: one layer compiled at -O0, median of 50
runs after 5 warm-ups, conv and adder timed back to back), 1 thread:

$BENCH

$THREADS threads:

$BENCH2
EOF
} >"$SECTION"

if [ "${1:-}" = --write ]; then
    $PY - docs/RESULTS.md "$SECTION" <<'PYEOF'
import sys
doc, sec = open(sys.argv[1]).read(), open(sys.argv[2]).read()
head = "## Adder (PKKD, AdderSR)"
i = doc.find(head)
if i >= 0:
    j = doc.find("\n## ", i + len(head))
    doc = doc[:i] + (doc[j + 1:] if j >= 0 else "")
doc = doc.rstrip("\n") + "\n\n" + sec
open(sys.argv[1], "w").write(doc)
PYEOF
fi
cat "$SECTION"
