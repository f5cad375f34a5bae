#!/usr/bin/env bash
# The adder pass from the command line, small enough for the suite: conversion
# only (steps=0: 14 convs -> hone.Adder2d + BN, stem and classifier kept, the ONNX
# file reloads with the hone domain, hone stats counts fewer multiplications and
# less energy), a 3-step PKKD run with a co-trained teacher, AdderSR's options on
# a tiny image-to-image run, and option errors. Usage: adder_cli.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { # name expected_rc pattern(in stdout+stderr, "" for none) -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -q -- "$pat" "$T/out" "$T/err"; }; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want, pattern '$pat'), output:"; head -5 "$T/err" "$T/out"; fi
}
FM=$SRC/models/fmnist_resnet14.onnx
FMD=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMD/train-images-idx3-ubyte.gz" ]; then echo "skip: no Fashion-MNIST at $FMD"; exit 0; fi
DATA=(--data "$FMD/train-images-idx3-ubyte.gz" --labels "$FMD/train-labels-idx1-ubyte.gz"
      --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 --limit 128 --val-split 32)

check convert 0 "" -- "$HONE" opt "$FM" --passes='adder{steps=0,samples=64}' "${DATA[@]}" --report="$T/r.json" -o "$T/a.onnx"
check convert-count 0 '"convs to Adder2d": 14' -- cat "$T/r.json"
check convert-metric 0 '"metric":"top1"' -- cat "$T/r.json"
check reload 0 "hone.Adder2d" -- "$HONE" dump "$T/a.onnx"
check stem-kept 0 "= Conv(%input" -- "$HONE" dump "$T/a.onnx"
"$HONE" stats "$FM" --input-shape input=1x1x28x28 > "$T/s0" 2>&1
"$HONE" stats "$T/a.onnx" --input-shape input=1x1x28x28 > "$T/s1" 2>&1
m0=$(awk '$1=="mults"{print $2}' "$T/s0"); m1=$(awk '$1=="mults"{print $2}' "$T/s1")
e0=$(awk '$1=="energy_pj"{print $2}' "$T/s0"); e1=$(awk '$1=="energy_pj"{print $2}' "$T/s1")
check fewer-mults 0 "" -- test "$m1" -lt $((m0 / 20))
check less-energy 0 "" -- awk -v a="$e0" -v b="$e1" 'BEGIN { exit !(b < a / 2) }'

# 8 steps: with the teacher at the adders' learning rate the loss was NaN from step 4
check pkkd-train 0 "step 8/8" -- "$HONE" opt "$FM" --passes='adder{steps=8,batch=16,samples=32,kd=pkkd,teacher=cotrain}' "${DATA[@]}" -o "$T/p.onnx"
check pkkd-eval 0 "top1" -- "$HONE" eval "$T/p.onnx" --data "$FMD/t10k-images-idx3-ubyte.gz" --labels "$FMD/t10k-labels-idx1-ubyte.gz" --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 --limit 64

SHARED=${HONE_SHARED:-$SRC/../shared}
[ -d "$SHARED" ] || SHARED=/work/shared
SR=$SHARED/models/fmnist_sr_x2.onnx
SRD=$SHARED/data/fmnist_sr
if [ -f "$SR" ] && [ -f "$SRD/test_lr.npy" ]; then
  check sr-train 0 "held-out psnr" -- "$HONE" opt "$SR" --passes='adder{steps=2,batch=8,samples=16,shortcut=true,power=true}' \
    --data "$SRD/test_lr.npy" --targets "$SRD/test_hr.npy" --target-scale 0.00392156862745098 --limit 48 --val-split 16 --report="$T/sr.json" -o "$T/sr.onnx"
  check sr-report 0 '"metric":"psnr"' -- cat "$T/sr.json"
  check sr-shortcuts 0 '"shortcuts": 4' -- cat "$T/sr.json"
  check sr-power 0 "hone.SignedPower" -- "$HONE" dump "$T/sr.onnx"
else
  echo "skip: AdderSR checks need $SR and $SRD"
fi

check bad-kd 1 "kd=bogus is not pkkd, logits or none" -- "$HONE" opt "$FM" --passes='adder{kd=bogus}' "${DATA[@]}" -o "$T/x.onnx"
check bad-teacher 1 "teacher=x is not frozen or cotrain" -- "$HONE" opt "$FM" --passes='adder{teacher=x}' "${DATA[@]}" -o "$T/x.onnx"
check bad-teacher-lr 1 "teacher-lr > 0" -- "$HONE" opt "$FM" --passes='adder{teacher=cotrain,teacher-lr=0}' "${DATA[@]}" -o "$T/x.onnx"
check no-data 1 "needs training samples" -- "$HONE" opt "$FM" --passes=adder -o "$T/x.onnx"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
