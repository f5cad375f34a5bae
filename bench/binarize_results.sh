#!/usr/bin/env bash
# The "## Binarization" section of docs/RESULTS.md: the binarize pass on fmnist_resnet14
# (93.17% top-1), W1 and W1A1, lns (learned mapping + noisy-label loss) against ste (the
# naive sign + straight-through ablation) at the same budget, per seed: top-1 on the
# 10,000 Fashion-MNIST test images (never seen by the pass, which trains on the training
# images and holds VAL of them out for its own metric), model file size, binarized-layer
# storage, compiled latency (ratio against the fp32 model compiled and timed in the same
# run), and pass time; then the compiled binary-conv microbenchmark (bench/binconv_bench)
# and an ONNX Runtime cross-check of one `hone opt --portable` model.
#
# A rerun replaces the whole section, the hand-written notes after the tables included.
#
# usage: bench/binarize_results.sh        (from a built tree: build/hone, build/bench/*)
# env:   STEPS (150) SEEDS ("1") BATCH (64) VAL (2000) REPEAT (200) HONE LATENCY BENCH
#        RESULTS (docs/RESULTS.md) KEEP (a directory to keep the models in)
#        TEST_LIMIT (10000; smaller only to smoke-test the script)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
HONE=${HONE:-build/hone} LATENCY=${LATENCY:-build/bench/latency}
BENCH=${BENCH:-build/bench/binconv_bench} RESULTS=${RESULTS:-docs/RESULTS.md}
STEPS=${STEPS:-150} SEEDS=${SEEDS:-1} BATCH=${BATCH:-64} VAL=${VAL:-2000} REPEAT=${REPEAT:-200}
SHARED=${HONE_SHARED:-$(git rev-parse --show-toplevel)/../shared}
[ -d "$SHARED" ] || SHARED=/work/shared
FM=/usr/share/datasets/fashion-mnist
NORM=(--scale 0.00392156862745098 --mean 0.2860 --std 0.3530)
MODEL=models/fmnist_resnet14.onnx
PY=/usr/bin/python3
T=${KEEP:-$(mktemp -d)}; mkdir -p "$T"
export OPENBLAS_NUM_THREADS=1
start=$(date +%s)

top1() { nice -n 5 "$HONE" eval "$1" --data $FM/t10k-images-idx3-ubyte.gz --limit "${TEST_LIMIT:-10000}" \
  --labels $FM/t10k-labels-idx1-ubyte.gz "${NORM[@]}" --batch 100 | tail -n 1 | awk '{ print $2 }'; }

# Compiled latency in ms (batch 1, one thread): median of REPEAT runs.
latency() { # model name
  "$HONE" compile "$1" -o "$T/$2.so" --name "$2" --input-shape input=1x1x28x28 >/dev/null
  "$LATENCY" "$T/$2.so" --name "$2" --repeat "$REPEAT" --threads 1 | awk '/median_ms/ { print $2 }'
}

# Fields of the pass's --report entry: wall seconds, binarized-layer fp32 and packed bytes.
report() { $PY - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
e = [p for p in r["passes"] if p["pass"].startswith("binarize")][0]
d = e["detail"]
print("%.1f %d %d %.4f" % (e["wall_ms"] / 1e3, d["fp32_bytes"], d["binary_bytes"], d["metric_after"]))
EOF
}

echo "binarize_results: fp32 baseline" >&2
base_top1=$(top1 $MODEL)
base_size=$(stat -c %s $MODEL)
base_ms=$(latency $MODEL fp32)

: >"$T/rows"
# Training: the W1 and the W1A1 runs as two parallel streams (the machine has 2 cores).
train() { # acts
  for method in ste lns; do
    for seed in $SEEDS; do
      name=${method}_${1}_s$seed
      echo "binarize_results: $name ($STEPS steps, $(( $(date +%s) - start )) s so far)" >&2
      nice -n 5 "$HONE" opt $MODEL -o "$T/$name.onnx" --report "$T/$name.json" \
        --passes="binarize{method=$method,acts=$1,steps=$STEPS,batch=$BATCH,seed=$seed}" \
        --data $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz \
        "${NORM[@]}" --val-split "$VAL" 2>"$T/$name.log" >/dev/null
    done
  done
}
train fp & pid=$!
train sign
wait $pid
# Measurements, one at a time.
for acts in fp sign; do
  for method in ste lns; do
    for seed in $SEEDS; do
      name=${method}_${acts}_s$seed
      read -r pass_s fp_b bin_b held <<<"$(report "$T/$name.json")"
      echo "$acts $method $seed $(top1 "$T/$name.onnx") $(stat -c %s "$T/$name.onnx") \
$(latency "$T/$name.onnx" "$name") $pass_s $fp_b $bin_b $held" >>"$T/rows"
    done
  done
done

echo "binarize_results: microbenchmark and ONNX Runtime cross-check" >&2
"$BENCH" >"$T/micro.txt"
# ORT on the portable form of the last W1A1 lns model vs hone's interpreter, 64 test images.
$PY - "$T/x64.npy" <<'EOF'
import gzip, sys, numpy as np
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = np.frombuffer(raw, np.uint8, offset=16)[:64 * 784].astype(np.float32)
np.save(sys.argv[1], ((x * 0.00392156862745098 - 0.2860) / 0.3530).reshape(64, 1, 28, 28))
EOF
last=lns_sign_s${SEEDS##* }
"$HONE" opt "$T/$last.onnx" -O0 --portable -o "$T/portable.onnx" 2>/dev/null >/dev/null
mkdir -p "$T/hone_out" "$T/ort_out"
"$HONE" run "$T/$last.onnx" --input "$T/x64.npy" --output-dir "$T/hone_out" >/dev/null
ort="not run (bench/node_modules lacks onnxruntime-node: run bench/setup.sh)"
NODE_PATH=${NODE_PATH:-$PWD/bench/node_modules:${ORT_MODULES:-/work/main/bench/node_modules}}
if NODE_PATH=$NODE_PATH node -e "require('onnxruntime-node')" 2>/dev/null; then
  NODE_PATH=$NODE_PATH node bench/ort_run.js "$T/portable.onnx" "$T/ort_out" input="$T/x64.npy" >/dev/null
  ort=$($PY - "$T/hone_out" "$T/ort_out" <<'EOF'
import glob, sys, numpy as np
a = np.load(glob.glob(sys.argv[1] + "/*.npy")[0]); b = np.load(glob.glob(sys.argv[2] + "/*.npy")[0])
print("max |hone - ORT| = %.2e over 64x10 logits (max |logit| %.1f), argmax agreement %d/64"
      % (np.abs(a - b).max(), np.abs(a).max(), (a.argmax(1) == b.argmax(1)).sum()))
EOF
)
fi
total=$(( $(date +%s) - start ))

# ---- the section ----
$PY - "$T/rows" "$base_top1" "$base_size" "$base_ms" "$STEPS" "$BATCH" "$VAL" "$SEEDS" \
  "$total" "$T/micro.txt" "$ort" >"$T/section.md" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
b1, bsize, bms = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
steps, batch, val, seeds, total = sys.argv[5:10]
micro = open(sys.argv[10]).read().strip().splitlines()
ort = sys.argv[11]
n = len(seeds.split())
P = print
P("## Binarization\n")
P("Produced by `bench/binarize_results.sh` (STEPS=%s SEEDS=\"%s\"; %d min on the shared 2-core "
  "machine, the W1 and W1A1 trainings as two parallel streams, measurements after them, one at a time). Pass: `binarize` (passes/binarize.c, options in docs/PASSES.md, "
  "op in docs/CUSTOM_OPS.md). Model: fmnist_resnet14 (93.17%% published top-1); the 12 3x3 convs "
  "of the residual blocks are binarized, the first conv, the two 1x1 downsample convs and the "
  "final Gemm stay fp32. Training: %s Adam steps of batch %s (cosine from lr 5e-4), CE + KD "
  "(T=4, 0.9 KD) against the fp32 model on the 60,000 training images minus %s held out for the "
  "pass's own metric; BN re-inserted after each binarized conv for training and folded into "
  "the binary conv's scale and bias at the end. lns: lambda 0.05, rho 0.05, mapping net "
  "conv3x3 C->2C-BN-ReLU-2C->2C-BN-ReLU-2C->C, its output times map-gain 0.1, added to "
  "W/max|W| with its last conv zero (starts exactly at sign(W)). W1A1 binarizes each binarized conv's input as sign(x - T) with "
  "a learned per-channel threshold T. Top-1 on the 10,000 test images (never used by the pass); "
  "%d seed%s per configuration%s."
  % (steps, seeds, int(total) // 60, steps, batch, val, n, "" if n == 1 else "s",
     " (the budget did not allow 3 on the shared machine)" if n < 3 else ""))
P("")
P("| model | method | seed | test top-1 | drop (points) | held-out top-1 (pass) | file bytes | "
  "binarized layers: fp32 bytes -> packed | compiled latency ms (ratio to fp32) | pass time s |")
P("|---|---|---|---|---|---|---|---|---|---|")
P("| fp32 (input model) | - | - | %.2f%% | - | - | %d | - | %.3f (1.00) | - |" % (100 * b1, bsize, bms))
for a, m, s, t1, size, ms, ps, fpb, binb, held in rows:
    P("| %s | %s | %s | %.2f%% | %.2f | %.2f%% | %s | %s -> %s (%.1fx) | %.3f (%.2f) | %s |"
      % ("W1" if a == "fp" else "W1A1", m, s, 100 * float(t1), 100 * (b1 - float(t1)),
         100 * float(held), size, fpb, binb, int(fpb) / int(binb), float(ms), float(ms) / bms, ps))
P("")
P("Mean over seeds (test top-1, drop from the fp32 model's %.2f%%):\n" % (100 * b1))
P("| model | ste | lns | target drop | met |")
P("|---|---|---|---|---|")
for a, name, target in (("fp", "W1", 2.5), ("sign", "W1A1", 7.0)):
    mean = {m: st.mean(float(r[3]) for r in rows if r[0] == a and r[1] == m) for m in ("ste", "lns")}
    drop = 100 * (b1 - mean["lns"])
    P("| %s | %.2f%% | %.2f%% | <= %.1f | drop %.2f: %s; lns %s ste |"
      % (name, 100 * mean["ste"], 100 * mean["lns"], target, drop,
         "yes" if drop <= target else "no", ">=" if mean["lns"] >= mean["ste"] else "<"))
P("")
P("Published (METHODS.md, arXiv 2010.04871): CIFAR-10 ResNet-20 1W1A 85.78%% (DoReFa 85.06%%); "
  "ImageNet ResNet-18 59.4%% / 81.7%% top-1/top-5. Those are full training runs of hundreds of "
  "epochs; the rows above are %s steps (%.2f epochs) of fine-tuning." % (steps, int(steps) * int(batch) / 60000))
P("")
P("Compiled binary conv vs hone's compiled fp32 Conv (`build/bench/binconv_bench`, one "
  "thread each side, median of repeated runs, same process; W1A1 = XNOR + popcount, W1 = "
  "sign-select accumulation from the bits; bytes = weights only, binary = packed bits + "
  "per-channel scale):\n")
for l in micro:
    P(l)
P("")
P("Portable form (`hone opt --portable`: float Conv with +-alpha weights, Where(x < T, -1, 1)) "
  "of the last W1A1 lns model in ONNX Runtime vs hone's interpreter on the hone.BinaryConv "
  "model: %s." % ort)
EOF

# Replace (or append) the section in RESULTS.
$PY - "$RESULTS" "$T/section.md" <<'EOF'
import re, sys
doc = open(sys.argv[1]).read() if __import__("os").path.exists(sys.argv[1]) else ""
sec = open(sys.argv[2]).read()
m = re.search(r"^## Binarization\n.*?(?=^## |\Z)", doc, re.S | re.M)
doc = doc[:m.start()] + sec + ("\n" + doc[m.end():] if doc[m.end():].strip() else "") if m \
    else doc.rstrip("\n") + "\n\n" + sec
open(sys.argv[1] + ".tmp", "w").write(doc)
__import__("os").replace(sys.argv[1] + ".tmp", sys.argv[1])
EOF
echo "binarize_results: done in $total s; section written to $RESULTS (work files in $T)" >&2
